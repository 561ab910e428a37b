//! `trafficsim validate`: what Envoy Gateway v1.9 would do with a set of
//! manifests, before anyone applies them.
//!
//! For each BackendTrafficPolicy the report gives Envoy Gateway's verdict
//! (Accepted, or Invalid and why), the routes it applies to, the policies
//! it overrides, its limits in plain words, and warnings for settings that
//! are valid but rarely intended. It reads the resolved model only; the
//! translation itself belongs to `manifest`.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value as Json, json};

use crate::gateway::{
    GatewayModel, GlobalRateLimit, LocalRateLimit, PolicyStatus, RateLimitAction, RateLimitUnit,
    Route, TokenBucketSpec,
};
use crate::manifest::{self, ManifestSet, TranslateOptions};
use crate::yaml::Diagnostics;

/// How to run a validation.
#[derive(Clone, Debug)]
pub struct ValidateOptions {
    /// Envoy replicas the Gateway runs; local limits apply per replica.
    pub replicas: u32,
    pub translate: TranslateOptions,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            replicas: 1,
            translate: TranslateOptions::default(),
        }
    }
}

/// The result of validating one set of manifests.
#[derive(Clone, Debug)]
pub struct Report {
    pub policies: Vec<PolicyReport>,
    pub notes: Vec<String>,
    /// Parse errors; when present nothing else was checked.
    pub errors: Option<Diagnostics>,
}

#[derive(Clone, Debug)]
pub struct PolicyReport {
    pub status: PolicyStatus,
    /// `file:line:column` of the policy.
    pub origin: Option<String>,
    /// One line per limit, in plain words.
    pub limits: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    /// 0 when no policy is rejected (one attached to nothing read is
    /// not), 1 when one is, 2 when a file cannot be read or parsed.
    pub fn exit_code(&self) -> u8 {
        if self.errors.is_some() {
            2
        } else if self.policies.iter().any(|p| is_rejected(&p.status)) {
            1
        } else {
            0
        }
    }
}

/// Checks whether Envoy Gateway rejects the policy (invalid, conflicted or a
/// missing section); a policy attached to nothing read is not rejected.
pub fn is_rejected(status: &PolicyStatus) -> bool {
    !status.accepted && status.reason != manifest::NOT_ATTACHED
}

/// Reads, translates and checks the manifests under `paths`.
pub fn validate(paths: &[PathBuf], options: &ValidateOptions) -> Report {
    match manifest::load_paths(paths) {
        Ok(set) => validate_set(&set, options),
        Err(errors) => Report {
            policies: Vec::new(),
            notes: Vec::new(),
            errors: Some(errors),
        },
    }
}

pub fn validate_set(set: &ManifestSet, options: &ValidateOptions) -> Report {
    let model = manifest::translate(set, &options.translate);
    let policies = model
        .policies
        .iter()
        .map(|status| policy_report(&model, Some(set), status, options))
        .collect();
    Report {
        policies,
        notes: model.notes.clone(),
        errors: None,
    }
}

/// Describes every policy of an already translated model, as [`validate`]
/// does. Without the manifests, a report gives no file position and no
/// warning about limits lost to a more specific policy.
pub fn describe_policies(model: &GatewayModel, replicas: u32) -> Vec<PolicyReport> {
    let options = ValidateOptions {
        replicas: replicas.max(1),
        ..Default::default()
    };
    model
        .policies
        .iter()
        .map(|status| policy_report(model, None, status, &options))
        .collect()
}

fn policy_report(
    model: &GatewayModel,
    set: Option<&ManifestSet>,
    status: &PolicyStatus,
    options: &ValidateOptions,
) -> PolicyReport {
    let routes: Vec<&Route> = model
        .routes
        .iter()
        .filter(|r| r.policy.as_deref() == Some(status.name.as_str()))
        .collect();
    let mut limits = Vec::new();
    let mut warnings = status.warnings.clone();
    if let Some(route) = routes.first() {
        describe_route(model, route, options.replicas, &mut limits);
    }
    let has_local = routes.iter().any(|r| r.local_rate_limit.is_some());
    if has_local && options.replicas > 1 {
        warnings.push(format!(
            "local limits apply per Envoy replica: with {} replicas the Gateway as a whole \
             admits up to {} times each limit; use `rateLimit.global` for a cluster-wide limit",
            options.replicas, options.replicas
        ));
    }
    let distinct = routes
        .iter()
        .find_map(|r| r.local_rate_limit.as_ref())
        .is_some_and(|local| {
            local
                .descriptors
                .iter()
                .any(|d| d.entries.iter().any(|e| e.value.is_none()))
        });
    if distinct {
        warnings.push(
            "a local Distinct rule keeps buckets for only 20 distinct values per route \
             (Envoy's default, which Envoy Gateway does not change); with more active \
             values the least recently seen one is evicted and comes back with a full \
             bucket, so the limit stops holding. Use a global limit for large populations"
                .to_string(),
        );
    }
    let retries_post = routes
        .iter()
        .any(|r| r.retry.is_some() && r.method.as_deref().is_none_or(|m| m == "POST"));
    if retries_post {
        warnings.push(
            "retries apply to every method on these routes, POST included; a retried POST \
             may run twice on the backend. Match only idempotent methods in a separate \
             route rule, or use `retryOn.triggers` that fire before the request is sent \
             (`connect-failure`, `reset-before-request`)"
                .to_string(),
        );
    }
    for displaced in &status.overrides {
        let lost_limits = model.policies.iter().any(|p| p.name == *displaced)
            && routes
                .iter()
                .all(|r| r.local_rate_limit.is_none() && r.global_rate_limit.is_none())
            && set.is_some_and(|set| set.policy_has_rate_limit(displaced));
        if lost_limits {
            warnings.push(format!(
                "this policy replaces {displaced} on its routes and sets no rate limit, so \
                 those routes lose {displaced}'s limits; repeat the limits here or set \
                 `mergeType: StrategicMerge`"
            ));
        }
    }
    PolicyReport {
        status: status.clone(),
        origin: set.and_then(|set| set.policy_origin(&status.name)),
        limits,
        warnings,
    }
}

fn describe_route(model: &GatewayModel, route: &Route, replicas: u32, out: &mut Vec<String>) {
    if let Some(local) = &route.local_rate_limit {
        describe_local(local, replicas, out);
    }
    for global in route
        .global_rate_limit
        .iter()
        .chain(&route.shared_global_rate_limits)
    {
        describe_global(global, route, out);
    }
    if let crate::gateway::RouteAction::Forward { cluster } = route.action
        && let Some(cluster) = model.clusters.get(cluster)
    {
        let breaker = &cluster.circuit_breaker;
        out.push(format!(
            "circuit breaker per route rule and replica: {} parallel requests, {} pending, \
             {} connections, {} parallel retries",
            breaker.max_requests,
            breaker.max_pending_requests,
            breaker.max_connections,
            breaker.max_retries
        ));
    }
    if let Some(retry) = &route.retry {
        out.push(format!(
            "up to {} retries, back-off {} to {}{}",
            retry.num_retries,
            retry.base_interval,
            retry.max_interval,
            if retry.retriable_status_codes.is_empty() {
                String::new()
            } else {
                format!(
                    ", on status {}",
                    retry
                        .retriable_status_codes
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    match route.timeouts.request {
        Some(timeout) => out.push(format!("request timeout {timeout}, retries included")),
        None => out.push("no request timeout".to_string()),
    }
}

fn unit_name(unit_seconds: u64) -> String {
    for unit in [
        RateLimitUnit::Second,
        RateLimitUnit::Minute,
        RateLimitUnit::Hour,
        RateLimitUnit::Day,
        RateLimitUnit::Week,
        RateLimitUnit::Month,
        RateLimitUnit::Year,
    ] {
        if unit.seconds() == unit_seconds {
            return unit.name().to_ascii_lowercase();
        }
    }
    format!("{unit_seconds} s")
}

fn rate(bucket: &TokenBucketSpec) -> String {
    let unit = unit_name(bucket.fill_interval.as_nanos() / 1_000_000_000);
    let noun = if bucket.max_tokens == 1 {
        "request"
    } else {
        "requests"
    };
    format!("{} {noun} per {unit}", bucket.max_tokens)
}

fn describe_local(local: &LocalRateLimit, replicas: u32, out: &mut Vec<String>) {
    let scope = if replicas > 1 {
        format!("per route, per replica ({replicas} replicas)")
    } else {
        "per route, per replica".to_string()
    };
    for (descriptor, rate_limit) in local.descriptors.iter().zip(&local.rate_limits) {
        let mut conditions = Vec::new();
        let mut distinct = Vec::new();
        for action in &rate_limit.actions {
            describe_action(action, &mut conditions, &mut distinct);
        }
        let mut line = rate(&descriptor.bucket);
        if !distinct.is_empty() {
            line.push_str(&format!(" per distinct {}", distinct.join(" and ")));
        }
        if !conditions.is_empty() {
            line.push_str(&format!(" for requests where {}", conditions.join(" and ")));
        }
        line.push_str(&format!(", {scope}"));
        if !distinct.is_empty() {
            line.push_str(&format!(
                "; {} distinct values tracked per route",
                local.max_dynamic_descriptors
            ));
        }
        if descriptor.shadow_mode {
            line.push_str(" (shadow mode: counted, never rejected)");
        }
        out.push(line);
    }
    let default = &local.default_bucket;
    if default.max_tokens == u32::MAX {
        if !local.descriptors.is_empty() {
            out.push("requests that match no rule: not limited".to_string());
        }
    } else {
        let who = if local.descriptors.is_empty() {
            "all requests"
        } else {
            "all other requests"
        };
        out.push(format!("{who}: {} shared by them, {scope}", rate(default)));
    }
}

fn describe_action(
    action: &RateLimitAction,
    conditions: &mut Vec<String>,
    distinct: &mut Vec<String>,
) {
    match action {
        RateLimitAction::RequestHeaders { header_name, .. } => distinct.push(header_name.clone()),
        RateLimitAction::QueryParameters {
            query_parameter_name,
            ..
        } => distinct.push(format!("query parameter {query_parameter_name}")),
        RateLimitAction::RemoteAddress { .. } => distinct.push("client address".to_string()),
        RateLimitAction::HeaderValueMatch {
            expect_match,
            headers,
            ..
        } => {
            for header in headers {
                let test = match &header.matcher {
                    crate::gateway::StringMatch::Exact(value) => format!("is \"{value}\""),
                    crate::gateway::StringMatch::Prefix(value) => {
                        format!("starts with \"{value}\"")
                    }
                    crate::gateway::StringMatch::Regex(regex) => {
                        format!("matches /{}/", regex.source)
                    }
                };
                let text = if *expect_match {
                    format!("{} {test}", header.name)
                } else {
                    format!("{} is absent or not {test}", header.name).replace("not is", "not")
                };
                conditions.push(text);
            }
        }
        RateLimitAction::QueryParameterValueMatch {
            expect_match,
            params,
            ..
        } => {
            for param in params {
                let verb = if *expect_match {
                    "matches"
                } else {
                    "does not match"
                };
                conditions.push(format!(
                    "query parameter {} {verb} {:?}",
                    param.name, param.matcher
                ));
            }
        }
        RateLimitAction::RemoteAddressMatch { ranges, invert, .. } => {
            let list: Vec<String> = ranges.iter().map(ToString::to_string).collect();
            let verb = if *invert { "is outside" } else { "is inside" };
            conditions.push(format!("client address {verb} {}", list.join(", ")));
        }
        RateLimitAction::GenericKey { .. } => {}
    }
}

fn describe_global(global: &GlobalRateLimit, route: &Route, out: &mut Vec<String>) {
    let shared = global.domain != route.listener;
    for limit in &global.limits {
        let distinct: Vec<&str> = limit
            .chain
            .iter()
            .filter(|e| e.value.is_none())
            .map(|e| e.key.as_str())
            .collect();
        let actions = global.rate_limits.iter().find(|r| {
            matches!(r.actions.first(), Some(RateLimitAction::GenericKey { descriptor_value, .. })
                if limit.chain.first().is_some_and(|e| e.value.as_deref() == Some(descriptor_value)))
        });
        let mut conditions = Vec::new();
        let mut distinct_names = Vec::new();
        if let Some(actions) = actions {
            for action in &actions.actions {
                describe_action(action, &mut conditions, &mut distinct_names);
            }
        }
        let noun = if limit.requests_per_unit == 1 {
            "request"
        } else {
            "requests"
        };
        let mut line = format!(
            "{} {noun} per {} (global",
            limit.requests_per_unit,
            limit.unit.name().to_ascii_lowercase()
        );
        line.push_str(if shared {
            ", one counter shared by every route of the policy"
        } else {
            ", per route"
        });
        line.push_str(", all replicas together; fixed windows aligned to the clock)");
        if !distinct_names.is_empty() || !distinct.is_empty() {
            line.push_str(&format!(" per distinct {}", distinct_names.join(" and ")));
        }
        if !conditions.is_empty() {
            line.push_str(&format!(" for requests where {}", conditions.join(" and ")));
        }
        if limit.shadow_mode {
            line.push_str(" (shadow mode: counted, never rejected)");
        }
        out.push(line);
    }
}

/// Renders the report for people.
pub fn render_human(report: &Report) -> String {
    let mut out = String::new();
    if let Some(errors) = &report.errors {
        let _ = writeln!(out, "{errors}");
        return out;
    }
    if report.policies.is_empty() {
        out.push_str("no BackendTrafficPolicy found\n");
    }
    for policy in &report.policies {
        let status = &policy.status;
        let verdict = if status.accepted {
            "Accepted".to_string()
        } else {
            status.reason.clone()
        };
        let _ = write!(out, "BackendTrafficPolicy {}: {verdict}", status.name);
        if let Some(origin) = &policy.origin {
            let _ = write!(out, " ({origin})");
        }
        out.push('\n');
        if !status.accepted {
            let _ = writeln!(out, "  reason: {}", status.message);
            if status.reason == "Invalid" {
                out.push_str(
                    "  effect: Envoy Gateway answers every route this policy targets with 500\n",
                );
            }
        }
        if status.applies_to.is_empty() {
            out.push_str("  applies to: no route\n");
        } else {
            let _ = writeln!(out, "  applies to {} route(s):", status.applies_to.len());
            for route in &status.applies_to {
                let _ = writeln!(out, "    {route}");
            }
        }
        for other in &status.overrides {
            let _ = writeln!(out, "  overrides: {other} (for the routes above)");
        }
        for other in &status.overridden_by {
            let _ = writeln!(out, "  overridden by: {other} (on some routes)");
        }
        if !policy.limits.is_empty() {
            out.push_str("  resolved settings (first route):\n");
            for line in &policy.limits {
                let _ = writeln!(out, "    {line}");
            }
        }
        for warning in &policy.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let invalid = report
        .policies
        .iter()
        .filter(|p| is_rejected(&p.status))
        .count();
    let unattached = report
        .policies
        .iter()
        .filter(|p| p.status.reason == manifest::NOT_ATTACHED)
        .count();
    let _ = write!(
        out,
        "{} polic{} checked, {invalid} not accepted",
        report.policies.len(),
        if report.policies.len() == 1 {
            "y"
        } else {
            "ies"
        }
    );
    // A policy whose targets are in no file read is not a rejection,
    // because they may be in files not given. It is counted so that it
    // does not pass unseen.
    if unattached > 0 {
        let _ = write!(out, ", {unattached} attached to nothing read");
    }
    out.push('\n');
    out
}

/// Renders the report for tools, as JSON.
pub fn render_json(report: &Report) -> Json {
    let errors: Vec<Json> = report
        .errors
        .iter()
        .flat_map(|d| d.iter())
        .map(|d| {
            json!({
                "file": d.file.display().to_string(),
                "line": d.location.line,
                "column": d.location.column,
                "path": d.path,
                "message": d.message,
            })
        })
        .collect();
    let policies: Vec<Json> = report
        .policies
        .iter()
        .map(|p| {
            json!({
                "name": p.status.name,
                "origin": p.origin,
                "accepted": p.status.accepted,
                "reason": p.status.reason,
                "message": p.status.message,
                "applies_to": p.status.applies_to,
                "overrides": p.status.overrides,
                "overridden_by": p.status.overridden_by,
                "limits": p.limits,
                "warnings": p.warnings,
                "ancestors": p.status.ancestors.iter().map(|a| json!({
                    "ancestor": a.ancestor,
                    "conditions": a.conditions.iter().map(|c| json!({
                        "type": c.kind,
                        "status": c.status,
                        "reason": c.reason,
                        "message": c.message,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "exit_code": report.exit_code(),
        "errors": errors,
        "policies": policies,
        "notes": report.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;
    use std::path::Path;

    fn report(text: &str, replicas: u32) -> Report {
        let documents = yaml::parse_str(text, Path::new("v.yaml")).unwrap();
        let roots: Vec<_> = documents.into_iter().map(|d| d.root).collect();
        let set = manifest::load_nodes(&roots, Path::new("v.yaml")).unwrap();
        validate_set(
            &set,
            &ValidateOptions {
                replicas,
                ..ValidateOptions::default()
            },
        )
    }

    const BASE: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: eg}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: limits}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}]
";

    #[test]
    fn distinct_limit_in_plain_words() {
        let text = format!(
            "{BASE}  rateLimit:\n    local:\n      rules:\n      - clientSelectors: [{{headers: [{{name: x-user-id, type: Distinct}}]}}]\n        limit: {{requests: 3, unit: Hour}}\n"
        );
        let report = report(&text, 1);
        assert_eq!(report.exit_code(), 0);
        let limits = &report.policies[0].limits;
        assert_eq!(
            limits[0],
            "3 requests per hour per distinct x-user-id, per route, per replica; 20 distinct values tracked per route"
        );
    }

    #[test]
    fn literal_star_and_replicas_warn() {
        let text = format!(
            "{BASE}  rateLimit:\n    local:\n      rules:\n      - clientSelectors: [{{headers: [{{name: x-user-id, value: \"*\"}}]}}]\n        limit: {{requests: 3, unit: Minute}}\n"
        );
        let report = report(&text, 5);
        let warnings = report.policies[0].warnings.join("\n");
        assert!(
            warnings.contains("matches only the literal string `*`"),
            "{warnings}"
        );
        assert!(warnings.contains("with 5 replicas"), "{warnings}");
    }

    #[test]
    fn invalid_policy_exits_one() {
        let text = format!(
            "{BASE}  rateLimit:\n    local:\n      rules:\n      - clientSelectors: [{{headers: [{{name: x-user-id, type: Distinct, value: a}}]}}]\n        limit: {{requests: 3, unit: Minute}}\n"
        );
        let report = report(&text, 1);
        assert_eq!(report.exit_code(), 1);
        let human = render_human(&report);
        assert!(
            human.contains("answers every route this policy targets with 500"),
            "{human}"
        );
        let json = render_json(&report);
        assert_eq!(json["policies"][0]["accepted"], false);
    }

    #[test]
    fn unreadable_path_exits_two() {
        let report = validate(
            &[PathBuf::from("/nonexistent/manifests")],
            &ValidateOptions::default(),
        );
        assert_eq!(report.exit_code(), 2);
    }
}
