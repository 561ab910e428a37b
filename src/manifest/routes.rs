//! The Envoy route table Envoy Gateway v1.9 builds from Gateways and
//! routes: one route per listener x route rule x match x hostname, named
//! as Envoy Gateway names them and sorted in its match-precedence order.
//!
//! Policies are attached afterwards (`attach.rs`); this module only decides
//! which requests reach which rule.

use std::cmp::Ordering;

use super::gateway_api::{
    AllowedNamespaces, Gateway, Listener, MatchKind, NamedMatch, PathSpec, Route, RuleRetry,
};
use crate::time::SimDuration;

/// One Envoy route before policies are applied.
#[derive(Clone, Debug)]
pub struct BuiltRoute {
    pub name: String,
    /// Index into the sorted route objects.
    pub route_index: usize,
    /// `namespace/name` of the route object.
    pub route_key: String,
    pub rule_index: usize,
    pub rule_name: Option<String>,
    /// Index into the sorted Gateways.
    pub gateway_index: usize,
    pub listener_name: String,
    /// Envoy Gateway's listener name, `<gw-namespace>/<gw-name>/<listener>`,
    /// which is also the global rate limit domain.
    pub listener_key: String,
    pub port: u16,
    /// `*` when the route matches any host.
    pub hostname: String,
    pub path: Option<PathSpec>,
    /// Header conditions, with the method as a `:method` exact match last,
    /// as Envoy Gateway lists them.
    pub headers: Vec<NamedMatch>,
    pub query_params: Vec<NamedMatch>,
    pub method: Option<String>,
    /// `<kind>/<namespace>/<name>/rule/<index>`.
    pub cluster_name: String,
    pub has_backends: bool,
    pub request_timeout: Option<SimDuration>,
    pub rule_retry: Option<RuleRetry>,
}

/// Builds the routes of every HTTP listener, each listener's routes in Envoy
/// order, listeners in Gateway then listener order. `notes` collects
/// parent references that attach nowhere.
pub fn build_routes(
    gateways: &[Gateway],
    routes: &[Route],
    notes: &mut Vec<String>,
) -> Vec<BuiltRoute> {
    let mut per_listener: Vec<Vec<BuiltRoute>> = Vec::new();
    let mut listener_slots: Vec<(usize, usize)> = Vec::new();
    for (gateway_index, gateway) in gateways.iter().enumerate() {
        for (listener_index, listener) in gateway.listeners.iter().enumerate() {
            if listener.carries_http() {
                listener_slots.push((gateway_index, listener_index));
                per_listener.push(Vec::new());
            }
        }
    }
    for (route_index, route) in routes.iter().enumerate() {
        let mut attached = false;
        for parent in &route.parent_refs {
            if parent.kind != "Gateway" {
                continue;
            }
            let namespace = parent.namespace.as_deref().unwrap_or(&route.meta.namespace);
            let Some(gateway_index) = gateways
                .iter()
                .position(|g| g.meta.namespace == namespace && g.meta.name == parent.name)
            else {
                continue;
            };
            let gateway = &gateways[gateway_index];
            for (slot, (slot_gateway, listener_index)) in listener_slots.iter().enumerate() {
                if *slot_gateway != gateway_index {
                    continue;
                }
                let listener = &gateway.listeners[*listener_index];
                if parent
                    .section_name
                    .as_ref()
                    .is_some_and(|s| *s != listener.name)
                    || parent.port.is_some_and(|p| p != listener.port)
                    || !namespace_allowed(listener, &gateway.meta.namespace, &route.meta.namespace)
                {
                    continue;
                }
                let hosts = compute_hosts(&route.hostnames, listener, &gateway.listeners);
                if hosts.is_empty() {
                    continue;
                }
                attached = true;
                for host in &hosts {
                    per_listener[slot].extend(rule_routes(
                        route,
                        route_index,
                        gateway,
                        gateway_index,
                        listener,
                        host,
                    ));
                }
            }
        }
        if !attached {
            notes.push(format!(
                "{}: {} {} attaches to no listener (check parentRefs, sectionName, \
                 allowedRoutes and hostnames); its rules are not routed",
                route.meta.origin(),
                route.kind.kind_name(),
                route.meta.key()
            ));
        }
    }
    for routes in &mut per_listener {
        // Envoy Gateway sorts with a stable sort in descending order of its
        // "less" function, so equal routes keep their insertion order.
        routes.sort_by(|a, b| compare_precedence(b, a));
    }
    per_listener.into_iter().flatten().collect()
}

fn namespace_allowed(listener: &Listener, gateway_namespace: &str, route_namespace: &str) -> bool {
    match listener.allowed_namespaces {
        AllowedNamespaces::Same => gateway_namespace == route_namespace,
        AllowedNamespaces::All | AllowedNamespaces::Selector => true,
    }
}

fn rule_routes(
    route: &Route,
    route_index: usize,
    gateway: &Gateway,
    gateway_index: usize,
    listener: &Listener,
    host: &str,
) -> Vec<BuiltRoute> {
    let prefix = format!(
        "{}/{}/{}",
        route.kind.name_prefix(),
        route.meta.namespace,
        route.meta.name
    );
    let host_part = host.replace('.', "_");
    let mut built = Vec::new();
    for (rule_index, rule) in route.rules.iter().enumerate() {
        let cluster_name = format!("{prefix}/rule/{rule_index}");
        let mut push =
            |match_index: i64, path: Option<PathSpec>, headers, query, method: Option<String>| {
                built.push(BuiltRoute {
                    name: format!("{prefix}/rule/{rule_index}/match/{match_index}/{host_part}"),
                    route_index,
                    route_key: route.meta.key(),
                    rule_index,
                    rule_name: rule.name.clone(),
                    gateway_index,
                    listener_name: listener.name.clone(),
                    listener_key: format!(
                        "{}/{}/{}",
                        gateway.meta.namespace, gateway.meta.name, listener.name
                    ),
                    port: listener.port,
                    hostname: host.to_string(),
                    path,
                    headers,
                    query_params: query,
                    method,
                    cluster_name: cluster_name.clone(),
                    has_backends: !rule.backend_refs.is_empty(),
                    request_timeout: rule_request_timeout(
                        rule.request_timeout,
                        rule.backend_request_timeout,
                        rule.retry.is_some(),
                    ),
                    rule_retry: rule.retry.clone(),
                });
            };
        if rule.matches.is_empty() {
            push(-1, None, Vec::new(), Vec::new(), None);
        }
        for (match_index, route_match) in rule.matches.iter().enumerate() {
            let mut headers = route_match.headers.clone();
            if let Some(method) = &route_match.method {
                headers.push(NamedMatch {
                    name: ":method".to_string(),
                    kind: MatchKind::Exact,
                    value: method.clone(),
                });
            }
            push(
                match_index as i64,
                route_match.path.clone(),
                headers,
                route_match.query_params.clone(),
                route_match.method.clone(),
            );
        }
    }
    built
}

/// Returns the route timeout a rule sets: `timeouts.request`, or
/// `timeouts.backendRequest` when the rule has no `retry` (with a retry it
/// is the per-try timeout instead).
fn rule_request_timeout(
    request: Option<SimDuration>,
    backend_request: Option<SimDuration>,
    has_retry: bool,
) -> Option<SimDuration> {
    match backend_request {
        Some(backend) if !has_retry => Some(backend),
        _ => request,
    }
}

/// Computes the host names a route matches on a listener, as Envoy Gateway v1.9
/// intersects them: sorted, and without names another listener on the same
/// port claims explicitly.
pub fn compute_hosts(
    route_hostnames: &[String],
    listener: &Listener,
    listeners: &[Listener],
) -> Vec<String> {
    let listener_host = listener.hostname.as_deref().unwrap_or("");
    if route_hostnames.is_empty() {
        return vec![if listener_host.is_empty() {
            "*".to_string()
        } else {
            listener_host.to_string()
        }];
    }
    let mut hosts: Vec<String> = Vec::new();
    for route_host in route_hostnames {
        let route_host = route_host.as_str();
        let mut add = |host: &str| {
            if !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        };
        if listener_host.is_empty() || listener_host == route_host {
            add(route_host);
        } else if listener_host.starts_with('*') && route_host.starts_with('*') {
            if wildcard_matches(route_host, listener_host) {
                add(listener_host);
            }
            if wildcard_matches(listener_host, route_host) {
                add(route_host);
            }
        } else if listener_host.starts_with('*') {
            if wildcard_matches(listener_host, route_host) {
                add(route_host);
            }
        } else if route_host.starts_with('*') && wildcard_matches(route_host, listener_host) {
            add(listener_host);
        }
    }
    for other in listeners {
        if std::ptr::eq(other, listener) || other.port != listener.port {
            continue;
        }
        if let Some(claimed) = &other.hostname {
            hosts.retain(|h| h != claimed);
        }
    }
    hosts.sort();
    hosts
}

/// Checks whether `wildcard` (`*.example.com`) covers `host`: `host` ends with the
/// wildcard's suffix and has at least one more label.
fn wildcard_matches(wildcard: &str, host: &str) -> bool {
    let Some(suffix) = wildcard.strip_prefix('*') else {
        return wildcard == host;
    };
    host.len() > suffix.len()
        && host.ends_with(suffix)
        && !host[..host.len() - suffix.len()].is_empty()
}

/// Envoy Gateway's "less" order on routes (lower precedence first): path
/// kind (prefix < regex < exact), path length, number of header matches,
/// then exact header matches, then query matches the same way.
fn compare_precedence(a: &BuiltRoute, b: &BuiltRoute) -> Ordering {
    path_rank(&a.path)
        .cmp(&path_rank(&b.path))
        .then(path_length(&a.path).cmp(&path_length(&b.path)))
        .then(a.headers.len().cmp(&b.headers.len()))
        .then(exact_count(&a.headers).cmp(&exact_count(&b.headers)))
        .then(a.query_params.len().cmp(&b.query_params.len()))
        .then(exact_count(&a.query_params).cmp(&exact_count(&b.query_params)))
}

fn path_rank(path: &Option<PathSpec>) -> u8 {
    match path {
        Some(PathSpec::Exact(_)) => 3,
        Some(PathSpec::Regex(_)) => 2,
        Some(PathSpec::Prefix(_)) => 1,
        None => 1,
    }
}

fn path_length(path: &Option<PathSpec>) -> usize {
    match path {
        Some(PathSpec::Exact(value)) | Some(PathSpec::Regex(value)) => value.len(),
        Some(PathSpec::Prefix(value)) if value != "/" => value.len(),
        _ => 0,
    }
}

fn exact_count(matches: &[NamedMatch]) -> usize {
    matches
        .iter()
        .filter(|m| m.kind == MatchKind::Exact)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, hostname: Option<&str>) -> Listener {
        Listener {
            name: name.to_string(),
            hostname: hostname.map(str::to_string),
            port: 80,
            protocol: "HTTP".to_string(),
            allowed_namespaces: AllowedNamespaces::Same,
        }
    }

    #[test]
    fn hosts_intersect_with_wildcards() {
        let wildcard = listener("a", Some("*.example.com"));
        let hosts = compute_hosts(
            &["foo.example.com".to_string(), "bar.org".to_string()],
            &wildcard,
            std::slice::from_ref(&wildcard),
        );
        assert_eq!(hosts, vec!["foo.example.com".to_string()]);
        let any = listener("b", None);
        assert_eq!(
            compute_hosts(&[], &any, std::slice::from_ref(&any)),
            vec!["*".to_string()]
        );
    }

    #[test]
    fn other_listener_hostnames_are_removed() {
        let open = listener("open", None);
        let named = listener("named", Some("a.example.com"));
        let all = vec![open.clone(), named];
        let hosts = compute_hosts(
            &["a.example.com".to_string(), "b.example.com".to_string()],
            &all[0],
            &all,
        );
        assert_eq!(hosts, vec!["b.example.com".to_string()]);
    }

    #[test]
    fn wildcard_needs_a_label() {
        assert!(wildcard_matches("*.example.com", "a.example.com"));
        assert!(!wildcard_matches("*.example.com", "example.com"));
    }
}
