//! Variants of a scenario for `trafficsim compare`: named sets of
//! overrides, each a dotted path into the scenario's YAML and the value to
//! put there. Variants come from the scenario's `compare:` section or from
//! the command line (`NAME:PATH=VALUE`).
//!
//! A path names mapping keys separated by dots. A list item is chosen by
//! its index (`clients[0]` or `clients.0`) or by its `name` field
//! (`clients.steady`). Missing mapping keys are created, so a variant can set
//! a field the scenario leaves at its default.

use std::path::Path;

use super::client::read_rate;
use crate::yaml::{self, Diagnostics, Location, Node, Value};

/// The scenario's `compare:` section.
#[derive(Clone, Debug, Default)]
pub struct CompareSpec {
    /// The limit the admitted rate is drawn against, in requests per second.
    pub limit_per_s: Option<f64>,
    pub variants: Vec<Variant>,
}

/// A named set of overrides.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub overrides: Vec<Override>,
}

/// A value to put at a path of the scenario's YAML.
#[derive(Clone, Debug)]
pub struct Override {
    /// Dotted path such as `envoy.replicas` or `clients.steady.rate`.
    pub path: String,
    pub value: Node,
}

/// Whether `name` can name a variant: it becomes a folder name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses a command-line variant, `NAME:PATH=VALUE`. The value is YAML, so
/// `3`, `global`, `[a.yaml, b.yaml]` and `{kind: down}` all work.
pub fn parse_cli_override(text: &str) -> Result<(String, Override), String> {
    let usage = "expected NAME:PATH=VALUE, such as `global:rate_limit_mode=global`";
    let (name, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("invalid variant `{text}`: {usage}"))?;
    let (path, value) = rest
        .split_once('=')
        .ok_or_else(|| format!("invalid variant `{text}`: {usage}"))?;
    let (name, path) = (name.trim(), path.trim());
    if !is_valid_name(name) {
        return Err(format!(
            "invalid variant name `{name}`: it is used as a folder name, so use letters, digits, \
             `-`, `_` and `.`, not starting with `.`"
        ));
    }
    parse_path(path).map_err(|message| format!("invalid variant `{text}`: {message}"))?;
    let source = format!("--variant {name}");
    let documents = yaml::parse_str(value, Path::new(&source))
        .map_err(|diagnostics| format!("invalid value in variant `{text}`: {diagnostics}"))?;
    let mut value = match documents.into_iter().next() {
        Some(document) => document.root,
        None => Node {
            value: Value::Null,
            location: Location::default(),
            path: String::new(),
        },
    };
    // Line 0 marks a value that comes from the command line; it takes the
    // location of the node it replaces.
    relocate(&mut value, Location::default());
    Ok((
        name.to_string(),
        Override {
            path: path.to_string(),
            value,
        },
    ))
}

/// Reads the `compare:` section.
pub(super) fn read_compare(node: &Node, diagnostics: &mut Diagnostics) -> Option<CompareSpec> {
    let fields = node.fields(diagnostics, &["limit", "variants"])?;
    let limit_per_s = match fields.get("limit") {
        Some(n) => Some(read_rate(n, diagnostics)?),
        None => None,
    };
    let mut variants: Vec<Variant> = Vec::new();
    let mut ok = true;
    if let Some(list) = fields.get("variants") {
        for item in list.seq(diagnostics)? {
            match read_variant(item, diagnostics) {
                Some(variant) if variants.iter().any(|v| v.name == variant.name) => {
                    diagnostics.error(
                        item,
                        format!("variant name `{}` is used twice", variant.name),
                    );
                    ok = false;
                }
                Some(variant) => variants.push(variant),
                None => ok = false,
            }
        }
    }
    ok.then_some(CompareSpec {
        limit_per_s,
        variants,
    })
}

fn read_variant(node: &Node, diagnostics: &mut Diagnostics) -> Option<Variant> {
    let fields = node.fields(diagnostics, &["name", "set"])?;
    let name_node = fields.require("name", diagnostics);
    let set = fields.require("set", diagnostics);
    let name = name_node?.string(diagnostics)?;
    if !is_valid_name(&name) {
        diagnostics.error(
            name_node?,
            format!(
                "variant name `{name}` is used as a folder name: use letters, digits, `-`, `_` \
                 and `.`, not starting with `.`"
            ),
        );
        return None;
    }
    let mut overrides = Vec::new();
    let mut ok = true;
    for (path, value) in set?.entries(diagnostics)? {
        if let Err(message) = parse_path(path) {
            diagnostics.error(value, message);
            ok = false;
            continue;
        }
        overrides.push(Override {
            path: path.clone(),
            value: value.clone(),
        });
    }
    ok.then_some(Variant { name, overrides })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut indices) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        if key.is_empty() && (indices.is_empty() || segments.is_empty()) {
            return Err(format!("path `{path}` has an empty part"));
        }
        if !key.is_empty() {
            segments.push(match key.parse::<usize>() {
                Ok(index) => Segment::Index(index),
                Err(_) => Segment::Key(key.to_string()),
            });
        }
        while !indices.is_empty() {
            let index = indices
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(number, rest)| Some((number.parse::<usize>().ok()?, rest)));
            let Some((index, rest)) = index else {
                return Err(format!(
                    "path `{path}` has an invalid list index in `{part}`"
                ));
            };
            segments.push(Segment::Index(index));
            indices = rest;
        }
    }
    Ok(segments)
}

/// Puts an override's value at its path in `root`, the whole scenario.
pub(super) fn apply(root: &mut Node, change: &Override) -> Result<(), String> {
    let segments = parse_path(&change.path)?;
    let mut value = change.value.clone();
    rebase_paths(&mut value, &change.value.path, &change.path);
    set(root, &segments, value, "")
}

fn set(node: &mut Node, segments: &[Segment], mut value: Node, walked: &str) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        if value.location.line == 0 {
            relocate(&mut value, node.location);
        }
        *node = value;
        return Ok(());
    };
    if node.is_null() && matches!(first, Segment::Key(_)) {
        node.value = Value::Mapping(Vec::new());
    }
    let shown = if walked.is_empty() {
        "the scenario"
    } else {
        walked
    };
    let location = node.location;
    match (&mut node.value, first) {
        (Value::Mapping(entries), Segment::Key(key)) => {
            let child_path = join(walked, key);
            if let Some((_, child)) = entries.iter_mut().find(|(k, _)| k == key) {
                return set(child, rest, value, &child_path);
            }
            let mut child = Node {
                value: Value::Null,
                location,
                path: child_path.clone(),
            };
            set(&mut child, rest, value, &child_path)?;
            entries.push((key.clone(), child));
            Ok(())
        }
        (Value::Sequence(items), Segment::Index(index)) => {
            let count = items.len();
            let child_path = format!("{walked}[{index}]");
            match items.get_mut(*index) {
                Some(item) => set(item, rest, value, &child_path),
                None => Err(format!(
                    "{shown} has {count} item{}, so there is no item {index}",
                    if count == 1 { "" } else { "s" }
                )),
            }
        }
        (Value::Sequence(items), Segment::Key(name)) => {
            let position = items
                .iter()
                .position(|item| item.get("name").and_then(Node::scalar) == Some(name));
            match position {
                Some(index) => {
                    let child_path = format!("{walked}[{index}]");
                    set(&mut items[index], rest, value, &child_path)
                }
                None => Err(format!("{shown} has no item named `{name}`")),
            }
        }
        (_, Segment::Index(index)) => Err(format!(
            "{shown} is {}, not a list, so it has no item {index}",
            node.kind_name()
        )),
        (_, Segment::Key(key)) => Err(format!(
            "{shown} is {}, not a mapping, so it has no field `{key}`",
            node.kind_name()
        )),
    }
}

fn join(walked: &str, key: &str) -> String {
    if walked.is_empty() {
        key.to_string()
    } else {
        format!("{walked}.{key}")
    }
}

/// Gives `node` and its children paths under `new_root` in place of
/// `old_root`, so diagnostics name the field the value now fills.
fn rebase_paths(node: &mut Node, old_root: &str, new_root: &str) {
    let rest = node.path.strip_prefix(old_root).unwrap_or("");
    node.path = if rest.is_empty() || rest.starts_with(['[', '.']) {
        format!("{new_root}{rest}")
    } else {
        format!("{new_root}.{rest}")
    };
    match &mut node.value {
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|item| rebase_paths(item, old_root, new_root)),
        Value::Mapping(entries) => entries
            .iter_mut()
            .for_each(|(_, value)| rebase_paths(value, old_root, new_root)),
        Value::Null | Value::Scalar { .. } => {}
    }
}

fn relocate(node: &mut Node, location: Location) {
    node.location = location;
    match &mut node.value {
        Value::Sequence(items) => items.iter_mut().for_each(|item| relocate(item, location)),
        Value::Mapping(entries) => entries
            .iter_mut()
            .for_each(|(_, value)| relocate(value, location)),
        Value::Null | Value::Scalar { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        yaml::parse_str(text, Path::new("s.yaml")).unwrap()[0]
            .root
            .clone()
    }

    fn set_text(root: &mut Node, path: &str, value: &str) -> Result<(), String> {
        let (_, change) = parse_cli_override(&format!("v:{path}={value}"))?;
        apply(root, &change)
    }

    #[test]
    fn paths_reach_keys_indices_and_names() {
        let mut root = parse("envoy: {replicas: 1}\nclients:\n- name: steady\n  rate: 10\n");
        set_text(&mut root, "envoy.replicas", "5").unwrap();
        set_text(&mut root, "clients.steady.rate", "20/s").unwrap();
        set_text(&mut root, "clients[0].count", "3").unwrap();
        set_text(&mut root, "rate_limit_service.redis.service_time", "30ms").unwrap();
        let replicas = root.get("envoy").and_then(|e| e.get("replicas")).unwrap();
        assert_eq!(replicas.scalar(), Some("5"));
        assert_eq!(replicas.path, "envoy.replicas");
        assert_eq!(replicas.location.line, 1);
        let Some(Value::Sequence(clients)) = root.get("clients").map(|c| &c.value) else {
            panic!("clients are missing");
        };
        assert_eq!(clients[0].get("rate").and_then(Node::scalar), Some("20/s"));
        assert_eq!(clients[0].get("count").and_then(Node::scalar), Some("3"));
        let redis = root
            .get("rate_limit_service")
            .and_then(|s| s.get("redis"))
            .and_then(|r| r.get("service_time"))
            .unwrap();
        assert_eq!(redis.path, "rate_limit_service.redis.service_time");
    }

    #[test]
    fn bad_paths_name_what_is_there() {
        let mut root = parse("envoy: {replicas: 1}\nclients: [{name: a}]\n");
        let error = set_text(&mut root, "clients.b.rate", "1").unwrap_err();
        assert_eq!(error, "clients has no item named `b`");
        let error = set_text(&mut root, "clients[3]", "1").unwrap_err();
        assert_eq!(error, "clients has 1 item, so there is no item 3");
        let error = set_text(&mut root, "envoy.replicas.x", "1").unwrap_err();
        assert!(error.contains("not a mapping"), "{error}");
        assert!(parse_cli_override("no-colon").is_err());
        assert!(parse_cli_override("bad/name:a=1").is_err());
        assert!(parse_cli_override("v:a..b=1").is_err());
    }

    #[test]
    fn yaml_values_keep_their_shape() {
        let mut root = parse("manifests: [a.yaml]\n");
        set_text(&mut root, "manifests", "[b.yaml, c.yaml]").unwrap();
        let Some(Value::Sequence(items)) = root.get("manifests").map(|m| &m.value) else {
            panic!("manifests are missing");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].path, "manifests[1]");
    }
}
