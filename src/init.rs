//! `trafficsim init`: a starter scenario for manifests a user already has.
//!
//! The scenario names the manifests, defines a backend for every Service
//! the routes send traffic to, and a client for every HTTPRoute rule that
//! sends a request the rule matches (path, host, method, exact headers and
//! query parameters). Routes and the policies attached to them are listed
//! in comments, in the words of `trafficsim validate`. Traffic, service
//! times and prices are placeholders marked `# TODO: fill in`, chosen so the
//! file loads and runs as written.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::gateway::{GatewayModel, HeaderMatcher, PathMatch, Route, RouteAction, StringMatch};
use crate::manifest::{self, TranslateOptions};
use crate::validate;
use crate::yaml::Diagnostics;

/// The reason no starter scenario could be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The manifests could not be read; every problem is listed.
    #[error("the manifests have {count} problem(s):\n{0}", count = .0.len())]
    Manifests(Diagnostics),
    #[error(
        "{} defines no HTTPRoute attached to a Gateway listener, so a scenario would route \
         no request; include the Gateway, and check the listeners' allowedRoutes",
        .0.display()
    )]
    NoRoutes(PathBuf),
    #[error(
        "{} routes no request to a backend, so a scenario would have nothing to run: {}",
        .path.display(),
        .reasons.join("; ")
    )]
    NoBackends { path: PathBuf, reasons: Vec<String> },
}

/// Builds the text of a starter scenario for the manifests under `from`,
/// to be saved as `scenario_path` (manifest paths are written relative to
/// it). Fails with the manifests' problems, or when they route nothing.
pub fn starter_scenario(from: &Path, scenario_path: &Path) -> Result<String, InitError> {
    let set = manifest::load_paths(&[from.to_path_buf()]).map_err(InitError::Manifests)?;
    let model = manifest::translate(&set, &TranslateOptions::default());
    if model.routes.is_empty() {
        return Err(InitError::NoRoutes(from.to_path_buf()));
    }
    // A scenario needs a backend and a client, so manifests where Envoy
    // Gateway sends a direct response on every route give nothing to run.
    let forwards = |route: &Route| matches!(route.action, RouteAction::Forward { .. });
    if !model.routes.iter().any(forwards) {
        let reasons = model
            .routes
            .iter()
            .filter_map(|route| match &route.action {
                RouteAction::DirectResponse { reason, .. } => {
                    Some(format!("{}: {reason}", route.name))
                }
                RouteAction::Forward { .. } => None,
            })
            .collect();
        return Err(InitError::NoBackends {
            path: from.to_path_buf(),
            reasons,
        });
    }
    let manifest_path = relative_path(scenario_path, from);
    Ok(render(&model, &manifest_path, scenario_path))
}

fn render(model: &GatewayModel, manifest_path: &str, scenario_path: &Path) -> String {
    let name = scenario_path
        .file_stem()
        .map(|stem| folder_name(&stem.to_string_lossy()))
        .unwrap_or_else(|| "scenario".to_string());
    let mut text = String::new();
    text.push_str(
        "# A starter scenario written by `trafficsim init`. Fill in every TODO,\n\
         # then run `trafficsim run` on this file. The format is described in\n\
         # docs/scenario-format.md of trafficsim; `trafficsim schema` prints a\n\
         # JSON Schema that editors use to complete and check it.\n",
    );
    let _ = writeln!(text, "name: {}", yaml_string(&name));
    text.push_str("seed: 1\n");
    text.push_str("duration: 1m  # TODO: fill in how long to simulate\n");
    text.push_str("envoy:\n  replicas: 1  # TODO: fill in the Envoy replicas of your Gateway\n");
    text.push_str("manifests:\n");
    let _ = writeln!(text, "  - {}", yaml_string(manifest_path));
    write_routes_comment(&mut text, model);
    write_backends(&mut text, model);
    write_clients(&mut text, model);
    text
}

/// Lists the Envoy routes and the policies attached, as comments.
fn write_routes_comment(text: &mut String, model: &GatewayModel) {
    text.push_str("\n# Routes Envoy Gateway makes of these manifests:\n");
    for route in &model.routes {
        let target = match route.action {
            RouteAction::Forward { cluster } => model
                .clusters
                .get(cluster)
                .map(|cluster| {
                    let backends: Vec<String> = cluster
                        .backends
                        .iter()
                        .map(|b| format!("{}/{}", b.namespace, b.name))
                        .collect();
                    format!("to {}", backends.join(", "))
                })
                .unwrap_or_default(),
            RouteAction::DirectResponse { status, .. } => format!("answered with {status}"),
        };
        let _ = writeln!(text, "#   {} {target}", comment_line(&route.name));
    }
    let policies = validate::describe_policies(model, 1);
    if policies.is_empty() {
        return;
    }
    text.push_str("# Policies attached (limits are per Envoy replica):\n");
    for policy in &policies {
        let verdict = if policy.status.accepted {
            "Accepted".to_string()
        } else {
            policy.status.reason.clone()
        };
        let _ = writeln!(
            text,
            "#   {} ({verdict})",
            comment_line(&policy.status.name)
        );
        if !policy.status.accepted {
            let _ = writeln!(text, "#     - {}", comment_line(&policy.status.message));
        }
        for line in policy.limits.iter().chain(&policy.warnings) {
            let _ = writeln!(text, "#     - {}", comment_line(line));
        }
    }
}

fn write_backends(text: &mut String, model: &GatewayModel) {
    let mut backends = BTreeSet::new();
    for cluster in &model.clusters {
        for backend in &cluster.backends {
            backends.insert((backend.namespace.clone(), backend.name.clone()));
        }
    }
    text.push_str("\nbackends:\n");
    for (namespace, name) in &backends {
        let _ = writeln!(text, "  - name: {}", yaml_string(name));
        if namespace != "default" {
            let _ = writeln!(text, "    namespace: {}", yaml_string(namespace));
        }
        text.push_str("    endpoints: 1  # TODO: fill in the pods behind the Service\n");
        text.push_str("    concurrency: 100  # TODO: fill in requests one pod serves at once\n");
        text.push_str("    service_time: 10ms  # TODO: fill in, e.g. {lognormal: {median: 50ms, p99: 500ms}}\n");
        text.push_str("    # cost:  # TODO: fill in prices to see spend\n");
        text.push_str("    #   per_request_usd: 0.0001\n");
    }
}

fn write_clients(text: &mut String, model: &GatewayModel) {
    text.push_str("\nclients:\n");
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    for route in &model.routes {
        if !matches!(route.action, RouteAction::Forward { .. }) {
            continue;
        }
        if !seen.insert((route.http_route.clone(), route.rule_index)) {
            continue;
        }
        let base = format!(
            "{}-rule-{}",
            route.http_route.rsplit('/').next().unwrap_or("route"),
            route.rule_index
        );
        let mut name = base.clone();
        let mut suffix = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{suffix}");
            suffix += 1;
        }
        write_client(text, &name, route);
    }
}

fn write_client(text: &mut String, name: &str, route: &Route) {
    let _ = writeln!(text, "  # {}", comment_line(&route.name));
    let _ = writeln!(text, "  - name: {}", yaml_string(name));
    text.push_str("    kind: open\n");
    text.push_str("    rate: 1/s  # TODO: fill in the request rate, e.g. 100/s or 1000/m\n");
    if let Some(method) = &route.method {
        let _ = writeln!(text, "    method: {}", yaml_string(method));
    }
    let (path, path_todo) = request_path(route);
    let _ = write!(text, "    path: {}", yaml_string(&path));
    if path_todo {
        text.push_str("  # TODO: fill in a path the route's regular expression matches");
    }
    text.push('\n');
    if let Some(host) = route.hostnames.first() {
        let host = match host.strip_prefix("*.") {
            Some(domain) => format!("www.{domain}"),
            None => host.clone(),
        };
        let _ = writeln!(text, "    host: {}", yaml_string(&host));
    }
    write_headers(text, &route.headers);
}

/// Returns a path the route matches, with its exact query parameters, and
/// true when the route's path is a regular expression to satisfy by hand.
fn request_path(route: &Route) -> (String, bool) {
    let (mut path, todo) = match &route.path {
        PathMatch::Exact(path) => (path.clone(), false),
        PathMatch::Prefix(prefix) => (prefix.clone(), false),
        PathMatch::Regex(_) => ("/".to_string(), true),
    };
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query: Vec<String> = route
        .query_params
        .iter()
        .filter_map(|param| match &param.matcher {
            StringMatch::Exact(value) => Some(format!("{}={value}", param.name)),
            _ => None,
        })
        .collect();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    (path, todo)
}

fn write_headers(text: &mut String, headers: &[HeaderMatcher]) {
    if headers.is_empty() {
        return;
    }
    text.push_str("    headers:\n");
    for header in headers {
        let value = match (&header.matcher, header.invert) {
            (StringMatch::Exact(value), false) | (StringMatch::Prefix(value), false) => {
                yaml_string(value)
            }
            _ => format!(
                "\"\"  # TODO: fill in a value the route's {} match accepts",
                comment_line(&header.name)
            ),
        };
        let _ = writeln!(text, "      {}: {value}", yaml_string(&header.name));
    }
}

/// Quotes `text` as a YAML double-quoted scalar, because JSON string
/// syntax is valid YAML.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// Keeps a comment on one line whatever the text holds.
fn comment_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Makes a scenario name of a file name: characters a folder name cannot
/// have become `-`.
fn folder_name(stem: &str) -> String {
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    let name = name.trim_start_matches('.').to_string();
    if name.is_empty() {
        "scenario".to_string()
    } else {
        name
    }
}

/// Writes `target` relative to the folder of `scenario_path`, which need
/// not exist yet. The path is absolute when the two share only the root.
fn relative_path(scenario_path: &Path, target: &Path) -> String {
    let absolute = |path: &Path| -> Option<PathBuf> {
        if let Ok(canonical) = path.canonicalize() {
            return Some(canonical);
        }
        let joined = std::env::current_dir().ok()?.join(path);
        Some(normalize(&joined))
    };

    let base = match scenario_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (Some(base), Some(target)) = (absolute(&base), absolute(target)) else {
        return target.to_string_lossy().into_owned();
    };

    let base_parts: Vec<Component> = base.components().collect();
    let target_parts: Vec<Component> = target.components().collect();
    let common = base_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count();
    // Sharing only the root (or a drive), the absolute path reads better
    // than a climb to the root.
    let only_root = base_parts[..common]
        .iter()
        .all(|part| matches!(part, Component::RootDir | Component::Prefix(_)));
    if only_root {
        return target.to_string_lossy().into_owned();
    }

    let mut relative = PathBuf::new();
    for _ in common..base_parts.len() {
        relative.push("..");
    }
    for part in &target_parts[common..] {
        relative.push(part.as_os_str());
    }
    if relative.as_os_str().is_empty() {
        return ".".to_string();
    }
    relative.to_string_lossy().replace('\\', "/")
}

/// Removes `.` and resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other.as_os_str()),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_strings_are_double_quoted() {
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn folder_names_lose_odd_characters() {
        assert_eq!(folder_name("my scenario"), "my-scenario");
        assert_eq!(folder_name(".hidden"), "hidden");
        assert_eq!(folder_name(""), "scenario");
    }

    #[test]
    fn relative_path_climbs_out_of_the_scenario_folder() {
        let cwd = std::env::current_dir().unwrap();
        let target = cwd.join("scenarios/manifests");
        let scenario = cwd.join("out/new/scenario.yaml");
        assert_eq!(
            relative_path(&scenario, &target),
            "../../scenarios/manifests"
        );
    }
}
