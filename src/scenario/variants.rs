//! Variants of a scenario for `trafficsim compare`: named sets of
//! overrides (see [`crate::overrides`]), declared in the scenario's
//! `compare:` section or given on the command line as `NAME:PATH=VALUE`.

use super::client::read_rate;
use crate::overrides::{self, Override};
use crate::yaml::{Diagnostics, Node, Value};

/// The scenario's `compare:` section.
#[derive(Clone, Debug, Default)]
pub struct CompareSpec {
    /// The limit the admitted rate is drawn against, in requests per second.
    pub limit_per_s: Option<f64>,
    pub variants: Vec<Variant>,
}

/// A named set of overrides; no overrides runs the scenario as written.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub overrides: Vec<Override>,
}

/// Returns whether `name` can name a variant, which becomes a folder name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses a command-line variant, `NAME:PATH=VALUE`, such as
/// `global:rate_limit_mode=global` or
/// `tight:BackendTrafficPolicy/limit:spec.rateLimit.local.rules[0].limit.requests=50`.
pub fn parse_cli_override(text: &str) -> Result<(String, Override), String> {
    let (name, rest) = text.split_once(':').ok_or_else(|| {
        format!(
            "invalid variant `{text}`: expected NAME:PATH=VALUE, such as \
             `global:rate_limit_mode=global`"
        )
    })?;
    let name = name.trim();
    if !is_valid_name(name) {
        return Err(format!(
            "invalid variant name `{name}` in `{text}`: a variant is written NAME:PATH=VALUE, \
             and NAME becomes a folder name, so use letters, digits, `-`, `_` and `.`"
        ));
    }
    let change =
        overrides::parse(rest).map_err(|message| format!("variant `{name}`: {message}"))?;
    Ok((name.to_string(), change))
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

/// Reads one variant: `name` and `set`, a mapping from override path to
/// value. A variant without `set` runs the scenario as written.
fn read_variant(node: &Node, diagnostics: &mut Diagnostics) -> Option<Variant> {
    let fields = node.fields(diagnostics, &["name", "set"])?;
    let name_node = fields.require("name", diagnostics)?;
    let name = name_node.string(diagnostics)?;
    if !is_valid_name(&name) {
        diagnostics.error(
            name_node,
            format!(
                "variant name `{name}` is used as a folder name: use letters, digits, `-`, `_` \
                 and `.`, not starting with `.`"
            ),
        );
        return None;
    }
    let mut changes = Vec::new();
    let mut ok = true;
    let entries = match fields.get("set") {
        Some(set) => set.entries(diagnostics)?,
        None => &[],
    };
    for (path, value) in entries {
        let Value::Scalar { text, .. } = &value.value else {
            diagnostics.error(
                value,
                format!(
                    "expected one value such as `3` or `global`, found {}",
                    value.kind_name()
                ),
            );
            ok = false;
            continue;
        };
        match overrides::parse_path(path) {
            Ok(path) => changes.push(Override {
                path,
                value: text.clone(),
            }),
            Err(message) => {
                diagnostics.error(value, message);
                ok = false;
            }
        }
    }
    ok.then_some(Variant {
        name,
        overrides: changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(text: &str) -> Result<CompareSpec, String> {
        let documents =
            crate::yaml::parse_str(text, Path::new("s.yaml")).map_err(|d| d.to_string())?;
        let mut diagnostics = Diagnostics::for_file(Path::new("s.yaml"));
        match read_compare(&documents[0].root, &mut diagnostics) {
            Some(spec) if diagnostics.is_empty() => Ok(spec),
            _ => Err(diagnostics.to_string()),
        }
    }

    #[test]
    fn compare_section_reads_variants() {
        let spec = read(
            "limit: 2000/m\nvariants:\n- name: as-written\n- name: r3\n  set: {envoy.replicas: 3, \
             rate_limit_mode: global}\n",
        )
        .unwrap();
        assert!((spec.limit_per_s.unwrap() - 2000.0 / 60.0).abs() < 1e-9);
        assert!(spec.variants[0].overrides.is_empty());
        assert_eq!(spec.variants[1].overrides.len(), 2);
        assert_eq!(
            spec.variants[1].overrides[0].to_string(),
            "envoy.replicas=3"
        );
    }

    #[test]
    fn compare_section_problems_are_reported() {
        let error = read(
            "variants:\n- {name: a}\n- {name: a}\n- {name: b/c}\n- {name: d, set: {x: [1]}}\n",
        )
        .unwrap_err();
        assert!(error.contains("`a` is used twice"), "{error}");
        assert!(error.contains("`b/c` is used as a folder name"), "{error}");
        assert!(error.contains("expected one value"), "{error}");
    }

    #[test]
    fn command_line_variants_parse() {
        let (name, change) = parse_cli_override("r3:envoy.replicas=3").unwrap();
        assert_eq!(name, "r3");
        assert_eq!(change.to_string(), "envoy.replicas=3");
        let (_, change) = parse_cli_override("tight:BackendTrafficPolicy/limit:spec.x=5").unwrap();
        assert_eq!(change.path.text, "BackendTrafficPolicy/limit:spec.x");
        assert!(parse_cli_override("no-colon").is_err());
        assert!(parse_cli_override("BackendTrafficPolicy/x:spec.a=1").is_err());
        assert!(parse_cli_override("v:a..b=1").is_err());
    }
}
