//! Typed reads of [`Node`]s that record a diagnostic instead of stopping.
//!
//! Each reader returns `None` after recording what was expected and what was
//! found, so the caller can keep reading the rest of the file and report
//! every problem at once. Field names match case-sensitively, as the
//! Kubernetes API server matches them; a near miss is reported with the
//! spelling that was probably meant.

use super::{Diagnostics, Node, Value};
use crate::time::SimDuration;

/// The fields of a mapping, after unknown keys were reported.
pub struct Fields<'a> {
    pub node: &'a Node,
    entries: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Like [`Fields::get`], but records "missing required field" when absent.
    pub fn require(&self, key: &str, diagnostics: &mut Diagnostics) -> Option<&'a Node> {
        let value = self.get(key);
        if value.is_none() {
            diagnostics.error(self.node, format!("missing required field `{key}`"));
        }
        value
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }
}

/// The known name that `found` was most likely meant to be: an exact match
/// ignoring case, or failing that one within a small edit distance.
pub fn suggest<'k>(found: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = found.to_ascii_lowercase();
    if let Some(exact) = known.iter().find(|k| k.to_ascii_lowercase() == lower) {
        return Some(exact);
    }
    let mut best: Option<(usize, &'k str)> = None;
    for candidate in known {
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_ascii_lowercase());
        let allowed = (candidate.len() / 4).clamp(1, 3);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    if best.is_none() {
        // A shortened name such as `maxRequests` for `maxParallelRequests`:
        // every letter appears in order and at least half the name is there.
        for candidate in known {
            let candidate_lower = candidate.to_ascii_lowercase();
            if lower.len() >= 6
                && lower.len() * 2 >= candidate_lower.len()
                && is_subsequence(&lower, &candidate_lower)
            {
                return Some(candidate);
            }
        }
    }
    best.map(|(_, name)| name)
}

fn is_subsequence(short: &str, long: &str) -> bool {
    let mut remaining = long.chars();
    short.chars().all(|c| remaining.any(|l| l == c))
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, .. } => {
            let shown: String = text.chars().take(60).collect();
            if shown.len() < text.len() {
                format!("`{shown}...`")
            } else {
                format!("`{shown}`")
            }
        }
        _ => node.kind_name().to_string(),
    }
}

impl Node {
    /// Reads a mapping, reporting each key not in `known`.
    pub fn fields<'a>(
        &'a self,
        diagnostics: &mut Diagnostics,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Mapping(entries) = &self.value else {
            diagnostics.error(
                self,
                format!("expected a mapping, found {}", describe(self)),
            );
            return None;
        };
        for (key, value) in entries {
            if known.contains(&key.as_str()) {
                continue;
            }
            let message = match suggest(key, known) {
                Some(meant) => format!("unknown field `{key}`; did you mean `{meant}`?"),
                None => format!(
                    "unknown field `{key}`; expected one of: {}",
                    known.join(", ")
                ),
            };
            diagnostics.error(value, message);
        }
        Some(Fields {
            node: self,
            entries,
        })
    }

    /// Reads a mapping whose keys are free-form (labels, headers).
    pub fn entries<'a>(&'a self, diagnostics: &mut Diagnostics) -> Option<&'a [(String, Node)]> {
        match &self.value {
            Value::Mapping(entries) => Some(entries),
            _ => {
                diagnostics.error(
                    self,
                    format!("expected a mapping, found {}", describe(self)),
                );
                None
            }
        }
    }

    pub fn seq<'a>(&'a self, diagnostics: &mut Diagnostics) -> Option<&'a [Node]> {
        match &self.value {
            Value::Sequence(items) => Some(items),
            _ => {
                diagnostics.error(self, format!("expected a list, found {}", describe(self)));
                None
            }
        }
    }

    pub fn str<'a>(&'a self, diagnostics: &mut Diagnostics) -> Option<&'a str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => {
                diagnostics.error(self, format!("expected a string, found {}", describe(self)));
                None
            }
        }
    }

    pub fn string(&self, diagnostics: &mut Diagnostics) -> Option<String> {
        self.str(diagnostics).map(str::to_string)
    }

    pub fn bool(&self, diagnostics: &mut Diagnostics) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => {
                    diagnostics.error(
                        self,
                        format!("expected true or false, found {}", describe(self)),
                    );
                    None
                }
            },
            _ => {
                diagnostics.error(
                    self,
                    format!("expected true or false, found {}", describe(self)),
                );
                None
            }
        }
    }

    /// A plain (unquoted) integer scalar, as YAML 1.2's core schema reads it.
    fn integer_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => Some(text.as_str()),
            _ => None,
        }
    }

    pub fn i64(&self, diagnostics: &mut Diagnostics) -> Option<i64> {
        let parsed = self
            .integer_text()
            .and_then(|text| text.strip_prefix('+').unwrap_or(text).parse::<i64>().ok());
        if parsed.is_none() {
            diagnostics.error(
                self,
                format!("expected an integer, found {}", describe(self)),
            );
        }
        parsed
    }

    /// An integer in `min..=max`, reporting the range when it is outside.
    pub fn int_in(&self, diagnostics: &mut Diagnostics, min: i64, max: i64) -> Option<i64> {
        let text = self.integer_text();
        let Some(text) = text else {
            diagnostics.error(
                self,
                format!("expected an integer, found {}", describe(self)),
            );
            return None;
        };
        let trimmed = text.strip_prefix('+').unwrap_or(text);
        match trimmed.parse::<i128>() {
            Ok(value) if value >= min as i128 && value <= max as i128 => Some(value as i64),
            Ok(_) => {
                diagnostics.error(
                    self,
                    format!(
                        "expected an integer from {min} to {max}, found {}",
                        describe(self)
                    ),
                );
                None
            }
            Err(_) => {
                let message = if trimmed.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    format!("integer {} is out of range {min} to {max}", describe(self))
                } else {
                    format!("expected an integer, found {}", describe(self))
                };
                diagnostics.error(self, message);
                None
            }
        }
    }

    pub fn u64(&self, diagnostics: &mut Diagnostics) -> Option<u64> {
        let text = self.integer_text();
        let parsed = text.and_then(|t| t.strip_prefix('+').unwrap_or(t).parse::<u64>().ok());
        if parsed.is_none() {
            let message = match text {
                Some(t) if t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) => {
                    format!("expected a non-negative integer, found {}", describe(self))
                }
                Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
                    format!("integer {} is larger than {}", describe(self), u64::MAX)
                }
                _ => format!("expected a non-negative integer, found {}", describe(self)),
            };
            diagnostics.error(self, message);
        }
        parsed
    }

    pub fn u32(&self, diagnostics: &mut Diagnostics) -> Option<u32> {
        self.int_in(diagnostics, 0, u32::MAX as i64)
            .map(|v| v as u32)
    }

    /// A finite number (integers are accepted).
    pub fn f64(&self, diagnostics: &mut Diagnostics) -> Option<f64> {
        let parsed = match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => text.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        };
        if parsed.is_none() {
            diagnostics.error(self, format!("expected a number, found {}", describe(self)));
        }
        parsed
    }

    /// A number in `min..=max`.
    pub fn f64_in(&self, diagnostics: &mut Diagnostics, min: f64, max: f64) -> Option<f64> {
        let value = self.f64(diagnostics)?;
        if value < min || value > max {
            diagnostics.error(
                self,
                format!(
                    "expected a number from {min} to {max}, found {}",
                    describe(self)
                ),
            );
            return None;
        }
        Some(value)
    }

    /// One of a fixed set of strings, matched case-sensitively.
    pub fn one_of<'k>(
        &self,
        diagnostics: &mut Diagnostics,
        allowed: &[&'k str],
    ) -> Option<&'k str> {
        let text = self.str(diagnostics)?;
        if let Some(found) = allowed.iter().find(|a| **a == text) {
            return Some(found);
        }
        let message = match suggest(text, allowed) {
            Some(meant) => format!("unsupported value `{text}`; did you mean `{meant}`?"),
            None => format!(
                "unsupported value `{text}`; expected one of: {}",
                allowed.join(", ")
            ),
        };
        diagnostics.error(self, message);
        None
    }

    /// A duration such as `250ms`, `1.5s`, `2m30s` or `1h`.
    ///
    /// Units: `ns`, `us`, `ms`, `s`, `m`, `h`, `d`. A bare `0` is accepted;
    /// negative durations and ones past about 584 years are errors.
    pub fn duration(&self, diagnostics: &mut Diagnostics) -> Option<SimDuration> {
        let text = match &self.value {
            Value::Scalar { text, .. } => text.as_str(),
            _ => {
                diagnostics.error(
                    self,
                    format!(
                        "expected a duration such as `1.5s`, found {}",
                        describe(self)
                    ),
                );
                return None;
            }
        };
        match parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(reason) => {
                diagnostics.error(self, reason);
                None
            }
        }
    }
}

/// Parses the duration notation described at [`Node::duration`].
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(SimDuration::ZERO);
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "duration `{text}` is negative; durations must be zero or more"
        ));
    }
    if trimmed.is_empty() {
        return Err("expected a duration such as `1.5s`, found an empty value".to_string());
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+'))
            .unwrap_or(rest.len());
        // `e` may start a unit only in no unit we accept, so it is part of the number.
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| !c.is_ascii_alphabetic() && c != 'µ')
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        let value: f64 = number.parse().map_err(|_| {
            format!("expected a duration such as `250ms`, `1.5s` or `2m30s`, found `{text}`")
        })?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "" => {
                return Err(format!(
                    "duration `{text}` has no unit; write for example `{number}s` or `{number}ms`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}`; use ns, us, ms, s, m, h or d"
                ));
            }
        };
        total_nanos += value * scale;
        rest = after;
    }
    if !total_nanos.is_finite() || total_nanos >= u64::MAX as f64 {
        return Err(format!(
            "duration `{text}` is too long; the longest is about 584 years"
        ));
    }
    Ok(SimDuration::from_nanos(total_nanos.round() as u64))
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
    fn near_miss_field_names_are_suggested() {
        let node = root("backoff: 1\nmaxRequests: 2\n");
        let mut diagnostics = Diagnostics::default();
        node.fields(&mut diagnostics, &["backOff", "maxParallelRequests"]);
        let text = diagnostics.to_string();
        assert!(
            text.contains("unknown field `backoff`; did you mean `backOff`?"),
            "{text}"
        );
        assert!(
            text.contains("unknown field `maxRequests`; did you mean `maxParallelRequests`?"),
            "{text}"
        );
    }

    #[test]
    fn durations_parse_compound_forms() {
        assert_eq!(parse_duration("2m30s"), Ok(SimDuration::from_secs(150)));
        assert_eq!(parse_duration("1.5s"), Ok(SimDuration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(SimDuration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(SimDuration::ZERO));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("1e30h").unwrap_err().contains("too long"));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn integers_report_their_range() {
        let node = root("a: -1\nb: 4294967296\nc: 4294967295\nd: \"7\"\n");
        let mut diagnostics = Diagnostics::default();
        let fields = node
            .fields(&mut diagnostics, &["a", "b", "c", "d"])
            .unwrap();
        assert_eq!(fields.get("a").unwrap().u32(&mut diagnostics), None);
        assert_eq!(fields.get("b").unwrap().u32(&mut diagnostics), None);
        assert_eq!(
            fields.get("c").unwrap().u32(&mut diagnostics),
            Some(u32::MAX)
        );
        assert_eq!(fields.get("d").unwrap().u64(&mut diagnostics), None);
        assert_eq!(diagnostics.len(), 3);
    }

    #[test]
    fn enum_values_match_case_sensitively() {
        let node = root("unit: minute\n");
        let mut diagnostics = Diagnostics::default();
        let unit = node
            .get("unit")
            .unwrap()
            .one_of(&mut diagnostics, &["Second", "Minute"]);
        assert_eq!(unit, None);
        assert!(diagnostics.to_string().contains("did you mean `Minute`?"));
    }
}
