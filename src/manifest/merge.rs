//! `mergeType` merges of two policy specs, done on the YAML documents as
//! Envoy Gateway v1.9 does on the JSON ones: the Gateway policy is the base
//! and the route policy the patch.
//!
//! `JSONMerge` is RFC 7386: mappings merge key by key, a `null` deletes,
//! and anything else (lists included) replaces. `StrategicMerge` is the
//! same except for the lists the BackendTrafficPolicy type marks with a
//! merge key (`compression`, `compressor` and `httpUpgrade`, keyed by
//! `type`), whose items are merged by that key.

use crate::yaml::{Node, Value};

/// Spec fields that strategic merge combines item by item, keyed by `type`.
const KEYED_LISTS: &[&str] = &["compression", "compressor", "httpUpgrade"];

/// Target selection never merges: the result keeps the route policy's.
const ROUTE_ONLY: &[&str] = &["targetRef", "targetRefs", "targetSelectors", "mergeType"];

pub fn merge_specs(base: &Node, patch: &Node, strategic: bool) -> Node {
    let (Value::Mapping(base_entries), Value::Mapping(patch_entries)) = (&base.value, &patch.value)
    else {
        return patch.clone();
    };
    let mut entries: Vec<(String, Node)> = base_entries
        .iter()
        .filter(|(key, _)| !ROUTE_ONLY.contains(&key.as_str()))
        .cloned()
        .collect();
    for (key, value) in patch_entries {
        let existing = entries.iter().position(|(k, _)| k == key);
        if strategic && KEYED_LISTS.contains(&key.as_str()) {
            let merged = match existing {
                Some(position) => merge_keyed_list(&entries[position].1, value),
                None => value.clone(),
            };
            upsert(&mut entries, existing, key, merged);
        } else {
            merge_entry(&mut entries, existing, key, value);
        }
    }
    Node {
        value: Value::Mapping(entries),
        location: patch.location,
        path: patch.path.clone(),
    }
}

fn upsert(entries: &mut Vec<(String, Node)>, existing: Option<usize>, key: &str, value: Node) {
    match existing {
        Some(position) => entries[position].1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

fn merge_entry(
    entries: &mut Vec<(String, Node)>,
    existing: Option<usize>,
    key: &str,
    patch: &Node,
) {
    if patch.is_null() {
        if let Some(position) = existing {
            entries.remove(position);
        }
        return;
    }
    let merged = match existing {
        Some(position) => merge_value(&entries[position].1, patch),
        None => strip_nulls(patch),
    };
    upsert(entries, existing, key, merged);
}

/// RFC 7386 merge of one value.
fn merge_value(base: &Node, patch: &Node) -> Node {
    let (Value::Mapping(base_entries), Value::Mapping(patch_entries)) = (&base.value, &patch.value)
    else {
        return strip_nulls(patch);
    };
    let mut entries = base_entries.clone();
    for (key, value) in patch_entries {
        let existing = entries.iter().position(|(k, _)| k == key);
        merge_entry(&mut entries, existing, key, value);
    }
    Node {
        value: Value::Mapping(entries),
        location: patch.location,
        path: patch.path.clone(),
    }
}

fn strip_nulls(node: &Node) -> Node {
    match &node.value {
        Value::Mapping(entries) => Node {
            value: Value::Mapping(
                entries
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip_nulls(v)))
                    .collect(),
            ),
            location: node.location,
            path: node.path.clone(),
        },
        _ => node.clone(),
    }
}

/// Strategic merge of a list whose items are keyed by `type`.
fn merge_keyed_list(base: &Node, patch: &Node) -> Node {
    let (Value::Sequence(base_items), Value::Sequence(patch_items)) = (&base.value, &patch.value)
    else {
        return patch.clone();
    };
    let mut items = base_items.clone();
    for item in patch_items {
        let key = item.get("type").and_then(Node::scalar);
        let existing = key.and_then(|key| {
            items
                .iter()
                .position(|i| i.get("type").and_then(Node::scalar) == Some(key))
        });
        match existing {
            Some(position) => items[position] = merge_value(&items[position], item),
            None => items.push(item.clone()),
        }
    }
    Node {
        value: Value::Sequence(items),
        location: patch.location,
        path: patch.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_str;
    use std::path::Path;

    fn node(text: &str) -> Node {
        parse_str(text, Path::new("m.yaml")).unwrap().remove(0).root
    }

    #[test]
    fn json_merge_replaces_lists_and_merges_maps() {
        let base = node(
            "targetRefs: [a]\ntimeout: {http: {requestTimeout: 1s}, tcp: {connectTimeout: 2s}}\nretry: {numRetries: 3}\n",
        );
        let patch = node(
            "targetRefs: [b]\nmergeType: JSONMerge\ntimeout: {http: {requestTimeout: 5s}}\nretry: null\n",
        );
        let merged = merge_specs(&base, &patch, false);
        let timeout = merged.get("timeout").unwrap();
        assert_eq!(
            timeout
                .get("http")
                .unwrap()
                .get("requestTimeout")
                .unwrap()
                .scalar(),
            Some("5s")
        );
        assert_eq!(
            timeout
                .get("tcp")
                .unwrap()
                .get("connectTimeout")
                .unwrap()
                .scalar(),
            Some("2s")
        );
        assert!(merged.get("retry").is_none());
        let Value::Sequence(targets) = &merged.get("targetRefs").unwrap().value else {
            panic!("expected a list");
        };
        assert_eq!(targets[0].scalar(), Some("b"));
    }

    #[test]
    fn strategic_merge_keys_upgrade_lists() {
        let base = node("httpUpgrade: [{type: websocket}, {type: spdy}]\n");
        let patch = node("httpUpgrade: [{type: connect}]\n");
        let merged = merge_specs(&base, &patch, true);
        let Value::Sequence(items) = &merged.get("httpUpgrade").unwrap().value else {
            panic!("expected a list");
        };
        assert_eq!(items.len(), 3);
        let replaced = merge_specs(&base, &patch, false);
        let Value::Sequence(items) = &replaced.get("httpUpgrade").unwrap().value else {
            panic!("expected a list");
        };
        assert_eq!(items.len(), 1);
    }
}
