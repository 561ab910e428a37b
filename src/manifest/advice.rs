//! Warnings about policies that Envoy Gateway accepts but that rarely do
//! what their author meant, each with the fix. They end up in
//! [`PolicyStatus::warnings`](crate::gateway::PolicyStatus) for
//! `trafficsim validate` to show.

use super::policy::{BackendTrafficPolicy, RateLimitRule, SelectorKind};

/// Lists the warnings that follow from the policy's own spec.
pub fn policy_warnings(policy: &BackendTrafficPolicy) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(rate_limit) = &policy.spec.rate_limit {
        let local = rate_limit.local.iter().flatten().map(|r| (r, false));
        let global = rate_limit.global.iter().flatten().map(|r| (r, true));
        for (index, (rule, is_global)) in local.chain(global).enumerate() {
            rule_warnings(rule, index, is_global, &mut warnings);
        }
    }
    for field in &policy.spec.ignored {
        warnings.push(format!(
            "`{field}` is accepted but not simulated; the results do not reflect it"
        ));
    }
    if policy.spec.uses_deprecated_target_ref {
        warnings.push(
            "`targetRef` is deprecated; write `targetRefs:` with a one-item list instead"
                .to_string(),
        );
    }
    warnings
}

fn rule_warnings(rule: &RateLimitRule, index: usize, is_global: bool, warnings: &mut Vec<String>) {
    let kind = if is_global { "global" } else { "local" };
    for selector in &rule.selectors {
        for header in &selector.headers {
            let value = header.value.as_deref();
            if header.kind == SelectorKind::Exact && value == Some("*") {
                warnings.push(format!(
                    "{kind} rule {index}: header `{name}` with `value: \"*\"` matches only \
                     the literal string `*`, not any value; for one bucket per {name} write \
                     `type: Distinct` without a value",
                    name = header.name
                ));
            }
            if header.kind == SelectorKind::Exact && header.invert {
                warnings.push(format!(
                    "{kind} rule {index}: `invert: true` on an Exact match of `{name}` also \
                     applies to every request whose {name} has any other value (signed-in \
                     users included), not only to requests without it; to limit only requests \
                     without the header use `type: RegularExpression`, `value: \".*\"`, \
                     `invert: true`",
                    name = header.name
                ));
            }
        }
    }
    if !is_global && rule.request_cost.is_some() {
        warnings.push(format!(
            "local rule {index}: `cost` is ignored by local rate limits; every request \
             takes one token"
        ));
    }
    if !is_global && rule.shared == Some(true) {
        warnings.push(format!(
            "local rule {index}: `shared` is ignored by local rate limits; each route and \
             each replica keeps its own buckets"
        ));
    }
}
