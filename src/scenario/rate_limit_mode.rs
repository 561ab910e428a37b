//! `rate_limit_mode:` rewrites every BackendTrafficPolicy's `rateLimit` so
//! that all its rules are local, or all global, before the manifests are
//! translated. One policy file can then be compared both ways.
//!
//! The rewrite works on the YAML of the manifests, so a rule keeps the file
//! and line it was written at, and the manifest reader checks it as it
//! checks any rule. A rule that only the other mode accepts is reported
//! there: a local rule cannot have `cost.response`, for instance.

use crate::yaml::{Node, Value};

/// The rate limit every policy is rewritten to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitMode {
    /// Token buckets in each Envoy replica.
    Local,
    /// Counters in Redis through the rate limit service.
    Global,
}

impl RateLimitMode {
    pub fn name(self) -> &'static str {
        match self {
            RateLimitMode::Local => "local",
            RateLimitMode::Global => "global",
        }
    }

    fn key(self) -> &'static str {
        self.name()
    }

    fn type_value(self) -> &'static str {
        match self {
            RateLimitMode::Local => "Local",
            RateLimitMode::Global => "Global",
        }
    }

    fn other(self) -> RateLimitMode {
        match self {
            RateLimitMode::Local => RateLimitMode::Global,
            RateLimitMode::Global => RateLimitMode::Local,
        }
    }
}

/// Rewrites the policies in one manifest document: a BackendTrafficPolicy,
/// a `kind: List` of objects, or a bundle with a `backendTrafficPolicies`
/// list. Other objects are left as they are.
pub fn rewrite_document(root: &mut Node, mode: RateLimitMode) {
    let kind = root.get("kind").and_then(Node::scalar).map(str::to_string);
    match kind.as_deref() {
        Some("BackendTrafficPolicy") => rewrite_policy(root, mode),
        Some("List") => {
            if let Some(items) = child_mut(root, "items") {
                for_each_item(items, |item| rewrite_document(item, mode));
            }
        }
        Some(_) => {}
        None => {
            if let Some(policies) = child_mut(root, "backendTrafficPolicies") {
                for_each_item(policies, |item| rewrite_policy(item, mode));
            }
        }
    }
}

fn rewrite_policy(policy: &mut Node, mode: RateLimitMode) {
    let Some(rate_limit) = child_mut(policy, "spec").and_then(|spec| child_mut(spec, "rateLimit"))
    else {
        return;
    };
    let Value::Mapping(entries) = &mut rate_limit.value else {
        return;
    };
    let other = mode.other().key();
    let Some(position) = entries.iter().position(|(key, _)| key == other) else {
        set_type(entries, mode);
        return;
    };
    let (_, moved) = entries.remove(position);
    let moved_rules = moved.get("rules").cloned();
    match entries.iter_mut().find(|(key, _)| key == mode.key()) {
        Some((_, target)) => {
            // Both blocks exist: the moved rules go after the target's own.
            if let (Some(rules), Some(target_rules)) = (moved_rules, child_mut(target, "rules"))
                && let (Value::Sequence(extra), Value::Sequence(list)) =
                    (rules.value, &mut target_rules.value)
            {
                list.extend(extra);
            }
        }
        None => entries.insert(position, (mode.key().to_string(), moved)),
    }
    set_type(entries, mode);
}

/// Updates the deprecated `type` discriminator when the policy sets it.
fn set_type(entries: &mut [(String, Node)], mode: RateLimitMode) {
    if let Some((_, node)) = entries.iter_mut().find(|(key, _)| key == "type")
        && let Value::Scalar { text, .. } = &mut node.value
    {
        *text = mode.type_value().to_string();
    }
}

fn child_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Mapping(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn for_each_item(node: &mut Node, mut visit: impl FnMut(&mut Node)) {
    if let Value::Sequence(items) = &mut node.value {
        items.iter_mut().for_each(&mut visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rewrite(text: &str, mode: RateLimitMode) -> Node {
        let documents = crate::yaml::parse_str(text, Path::new("p.yaml")).unwrap();
        let mut root = documents[0].root.clone();
        rewrite_document(&mut root, mode);
        root
    }

    const POLICY: &str = "\
kind: BackendTrafficPolicy
spec:
  rateLimit:
    type: Local
    local:
      rules:
      - limit: {requests: 100, unit: Minute}
";

    fn rate_limit(root: &Node) -> &Node {
        root.get("spec").and_then(|s| s.get("rateLimit")).unwrap()
    }

    #[test]
    fn local_rules_become_global() {
        let root = rewrite(POLICY, RateLimitMode::Global);
        let rate_limit = rate_limit(&root);
        assert!(rate_limit.get("local").is_none());
        assert!(
            rate_limit
                .get("global")
                .and_then(|g| g.get("rules"))
                .is_some()
        );
        assert_eq!(
            rate_limit.get("type").and_then(Node::scalar),
            Some("Global")
        );
    }

    #[test]
    fn same_mode_changes_nothing() {
        let root = rewrite(POLICY, RateLimitMode::Local);
        assert!(rate_limit(&root).get("local").is_some());
        assert_eq!(
            rate_limit(&root).get("type").and_then(Node::scalar),
            Some("Local")
        );
    }

    #[test]
    fn both_blocks_are_merged() {
        let text = "\
kind: BackendTrafficPolicy
spec:
  rateLimit:
    local:
      rules: [{limit: {requests: 1, unit: Second}}]
    global:
      rules: [{limit: {requests: 2, unit: Second}}]
";
        let root = rewrite(text, RateLimitMode::Global);
        let Some(Value::Sequence(rules)) = rate_limit(&root)
            .get("global")
            .and_then(|g| g.get("rules"))
            .map(|r| &r.value)
        else {
            panic!("global rules are missing");
        };
        assert_eq!(rules.len(), 2);
        assert!(rate_limit(&root).get("local").is_none());
    }

    #[test]
    fn lists_and_other_kinds() {
        let text = "\
kind: List
items:
- kind: HTTPRoute
  spec: {rateLimit: {local: {}}}
- kind: BackendTrafficPolicy
  spec: {rateLimit: {global: {rules: []}}}
";
        let root = rewrite(text, RateLimitMode::Local);
        let Some(Value::Sequence(items)) = root.get("items").map(|i| &i.value) else {
            panic!("items are missing");
        };
        assert!(rate_limit(&items[0]).get("local").is_some());
        assert!(rate_limit(&items[1]).get("local").is_some());
        assert!(rate_limit(&items[1]).get("global").is_none());
    }
}
