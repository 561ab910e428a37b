//! Parameter overrides: set one field of a scenario or of a manifest
//! object by its YAML path before the file is read.
//!
//! Sweeps and comparisons vary a scenario through these. A path names a
//! field of the scenario (`envoy.replicas`, `clients[0].rate`,
//! `clients[steady].rate` picking the list item whose `name` is `steady`)
//! or of a Kubernetes object, prefixed with the object's kind and name
//! (`BackendTrafficPolicy/capacity:spec.circuitBreaker.maxParallelRequests`,
//! optionally `Kind/namespace/name:`). Missing mappings on the way are
//! created, so a field the file leaves out can still be set.

use std::fmt;

use crate::yaml::{Location, Node, Value};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
    /// The list item whose `name` field equals this.
    Named(String),
}

/// Which document an override applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Scenario,
    Object {
        kind: String,
        namespace: Option<String>,
        name: String,
    },
}

/// A field path with its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    pub target: Target,
    pub segments: Vec<Segment>,
    /// The path as written, for messages and output columns.
    pub text: String,
}

/// One field set to one value (the value as YAML scalar text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub path: FieldPath,
    pub value: String,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path.text, self.value)
    }
}

/// Parses a field path such as `envoy.replicas` or
/// `BackendTrafficPolicy/capacity:spec.circuitBreaker.maxParallelRequests`.
pub fn parse_path(text: &str) -> Result<FieldPath, String> {
    let (target, rest) = match text.split_once(':') {
        Some((object, rest)) if object.contains('/') => {
            let parts: Vec<&str> = object.split('/').collect();
            let target = match parts.as_slice() {
                [kind, name] => Target::Object {
                    kind: kind.to_string(),
                    namespace: None,
                    name: name.to_string(),
                },
                [kind, namespace, name] => Target::Object {
                    kind: kind.to_string(),
                    namespace: Some(namespace.to_string()),
                    name: name.to_string(),
                },
                _ => {
                    return Err(format!(
                        "object `{object}` must be written Kind/name or Kind/namespace/name"
                    ));
                }
            };
            (target, rest)
        }
        _ => (Target::Scenario, text),
    };
    let mut segments = Vec::new();
    for part in rest.split('.') {
        if part.is_empty() {
            return Err(format!("path `{text}` has an empty step"));
        }
        let (key, mut brackets) = match part.find('[') {
            Some(index) => (&part[..index], &part[index..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while !brackets.is_empty() {
            let close = brackets
                .find(']')
                .ok_or_else(|| format!("path `{text}` has `[` without `]`"))?;
            let inner = &brackets[1..close];
            if inner.is_empty() {
                return Err(format!("path `{text}` has an empty `[]`"));
            }
            segments.push(match inner.parse::<usize>() {
                Ok(index) => Segment::Index(index),
                Err(_) => Segment::Named(inner.to_string()),
            });
            brackets = &brackets[close + 1..];
            if !brackets.is_empty() && !brackets.starts_with('[') {
                return Err(format!("path `{text}`: expected `.` or `[` after `]`"));
            }
        }
    }
    if segments.is_empty() {
        return Err(format!("path `{text}` names no field"));
    }
    Ok(FieldPath {
        target,
        segments,
        text: text.to_string(),
    })
}

/// Parses `PATH=VALUE`.
pub fn parse(text: &str) -> Result<Override, String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("override `{text}` must be written PATH=VALUE"))?;
    Ok(Override {
        path: parse_path(path.trim())?,
        value: value.trim().to_string(),
    })
}

fn scalar(value: &str, location: Location, path: &str) -> Node {
    Node {
        value: Value::Scalar {
            text: value.to_string(),
            quoted: false,
        },
        location,
        path: path.to_string(),
    }
}

fn empty_mapping(location: Location, path: &str) -> Node {
    Node {
        value: Value::Mapping(Vec::new()),
        location,
        path: path.to_string(),
    }
}

/// Sets the field at `segments` under `root` to the scalar `value`.
pub fn set(root: &mut Node, segments: &[Segment], value: &str, text: &str) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        *root = scalar(value, root.location, &root.path);
        return Ok(());
    };
    let location = root.location;
    let child_path = |base: &str, step: &str| {
        if base.is_empty() {
            step.to_string()
        } else if step.starts_with('[') {
            format!("{base}{step}")
        } else {
            format!("{base}.{step}")
        }
    };
    match first {
        Segment::Key(key) => {
            if root.is_null() {
                *root = empty_mapping(location, &root.path);
            }
            let base = root.path.clone();
            let Value::Mapping(entries) = &mut root.value else {
                return Err(format!(
                    "{text}: `{}` is not a mapping",
                    display_path(&base)
                ));
            };
            let position = match entries.iter().position(|(k, _)| k == key) {
                Some(position) => position,
                None => {
                    let path = child_path(&base, key);
                    let child = if rest.is_empty() {
                        scalar(value, location, &path)
                    } else {
                        empty_mapping(location, &path)
                    };
                    entries.push((key.clone(), child));
                    entries.len() - 1
                }
            };
            set(&mut entries[position].1, rest, value, text)
        }
        Segment::Index(index) => {
            let base = root.path.clone();
            let Value::Sequence(items) = &mut root.value else {
                return Err(format!("{text}: `{}` is not a list", display_path(&base)));
            };
            let len = items.len();
            let item = items.get_mut(*index).ok_or_else(|| {
                format!(
                    "{text}: `{}` has {len} items, no item {index}",
                    display_path(&base)
                )
            })?;
            set(item, rest, value, text)
        }
        Segment::Named(name) => {
            let base = root.path.clone();
            let Value::Sequence(items) = &mut root.value else {
                return Err(format!("{text}: `{}` is not a list", display_path(&base)));
            };
            let item = items
                .iter_mut()
                .find(|item| item.get("name").and_then(|n| n.scalar()) == Some(name.as_str()))
                .ok_or_else(|| {
                    format!(
                        "{text}: `{}` has no item named `{name}`",
                        display_path(&base)
                    )
                })?;
            set(item, rest, value, text)
        }
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        path
    }
}

/// Applies an object override to every matching Kubernetes object in the
/// tree under `root` (objects may sit inside `List` items or bundles).
/// Returns how many objects were changed.
pub fn apply_to_objects(root: &mut Node, over: &Override) -> Result<usize, String> {
    let Target::Object {
        kind,
        namespace,
        name,
    } = &over.path.target
    else {
        return Ok(0);
    };
    if is_object(root, kind, namespace.as_deref(), name) {
        set(root, &over.path.segments, &over.value, &over.path.text)?;
        return Ok(1);
    }
    let mut changed = 0;
    match &mut root.value {
        Value::Mapping(entries) => {
            for (_, child) in entries.iter_mut() {
                changed += apply_to_objects(child, over)?;
            }
        }
        Value::Sequence(items) => {
            for child in items.iter_mut() {
                changed += apply_to_objects(child, over)?;
            }
        }
        Value::Null | Value::Scalar { .. } => {}
    }
    Ok(changed)
}

fn is_object(node: &Node, kind: &str, namespace: Option<&str>, name: &str) -> bool {
    let field = |node: &Node, key: &str| node.get(key).and_then(|n| n.scalar()).map(str::to_string);
    if field(node, "kind").as_deref() != Some(kind) {
        return false;
    }
    let Some(metadata) = node.get("metadata") else {
        return false;
    };
    if field(metadata, "name").as_deref() != Some(name) {
        return false;
    }
    match namespace {
        Some(namespace) => {
            field(metadata, "namespace").as_deref().unwrap_or("default") == namespace
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_str;
    use std::path::Path;

    fn root(text: &str) -> Node {
        parse_str(text, Path::new("t.yaml")).unwrap().remove(0).root
    }

    #[test]
    fn paths_parse_keys_indices_and_names() {
        let path = parse_path("clients[steady].headers.x-user-id").unwrap();
        assert_eq!(path.target, Target::Scenario);
        assert_eq!(
            path.segments,
            [
                Segment::Key("clients".into()),
                Segment::Named("steady".into()),
                Segment::Key("headers".into()),
                Segment::Key("x-user-id".into()),
            ]
        );
        let object =
            parse_path("BackendTrafficPolicy/default/cap:spec.circuitBreaker.maxParallelRequests")
                .unwrap();
        assert_eq!(
            object.target,
            Target::Object {
                kind: "BackendTrafficPolicy".into(),
                namespace: Some("default".into()),
                name: "cap".into()
            }
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[1").is_err());
    }

    #[test]
    fn set_creates_missing_mappings() {
        let mut node = root("envoy: {replicas: 1}\nclients: [{name: a, rate: 5}]\n");
        set(
            &mut node,
            &parse_path("envoy.replicas").unwrap().segments,
            "3",
            "t",
        )
        .unwrap();
        set(
            &mut node,
            &parse_path("envoy.workers").unwrap().segments,
            "4",
            "t",
        )
        .unwrap();
        set(
            &mut node,
            &parse_path("clients[a].rate").unwrap().segments,
            "9/s",
            "t",
        )
        .unwrap();
        set(
            &mut node,
            &parse_path("output.bucket").unwrap().segments,
            "5s",
            "t",
        )
        .unwrap();
        assert_eq!(
            node.get("envoy").unwrap().get("replicas").unwrap().scalar(),
            Some("3")
        );
        assert_eq!(
            node.get("envoy").unwrap().get("workers").unwrap().scalar(),
            Some("4")
        );
        assert_eq!(
            node.get("output").unwrap().get("bucket").unwrap().scalar(),
            Some("5s")
        );
        let Value::Sequence(clients) = &node.get("clients").unwrap().value else {
            panic!("clients is a list");
        };
        assert_eq!(clients[0].get("rate").unwrap().scalar(), Some("9/s"));
        assert!(
            set(
                &mut node,
                &parse_path("clients[b].rate").unwrap().segments,
                "1",
                "t"
            )
            .is_err()
        );
        assert!(
            set(
                &mut node,
                &parse_path("clients[4].rate").unwrap().segments,
                "1",
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn objects_are_found_inside_lists() {
        let mut node = root(
            "kind: List\nitems:\n  - kind: BackendTrafficPolicy\n    metadata: {name: cap}\n    spec: {}\n",
        );
        let over =
            parse("BackendTrafficPolicy/cap:spec.circuitBreaker.maxParallelRequests=50").unwrap();
        assert_eq!(apply_to_objects(&mut node, &over).unwrap(), 1);
        let other = parse("BackendTrafficPolicy/other:spec.x=1").unwrap();
        assert_eq!(apply_to_objects(&mut node, &other).unwrap(), 0);
    }
}
