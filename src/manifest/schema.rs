//! Checks shared by the Kubernetes object readers: the value shapes that the
//! Gateway API and Envoy Gateway CRDs constrain with patterns and bounds.
//!
//! Each check records a diagnostic and returns `None`, as the readers in
//! `crate::yaml` do, so a file's problems are all reported together.

use crate::time::SimDuration;
use crate::yaml::{Diagnostics, Fields, Node};

/// Reads a Gateway API duration: one to four groups of up to five digits
/// followed by `h`, `m`, `s` or `ms`, such as `1h30m` or `250ms`. This is
/// the pattern `^([0-9]{1,5}(h|m|s|ms)){1,4}$` of the CRDs.
pub fn gateway_duration(node: &Node, diagnostics: &mut Diagnostics) -> Option<SimDuration> {
    let text = node.str(diagnostics)?;
    match parse_gateway_duration(text) {
        Some(duration) => Some(duration),
        None => {
            diagnostics.error(
                node,
                format!(
                    "invalid duration `{text}`: expected 1 to 4 groups of up to 5 digits \
                     with a unit h, m, s or ms, such as `1h30m` or `250ms`"
                ),
            );
            None
        }
    }
}

/// Parses the Gateway API duration notation; `None` when `text` does not
/// match the CRD pattern.
pub fn parse_gateway_duration(text: &str) -> Option<SimDuration> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut groups = 0;
    let mut total_millis: u64 = 0;
    while position < bytes.len() {
        let digits_start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        let digits = &text[digits_start..position];
        if digits.is_empty() || digits.len() > 5 {
            return None;
        }
        let value: u64 = digits.parse().ok()?;
        let rest = &text[position..];
        let (unit_millis, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return None;
        };
        position += unit_len;
        groups += 1;
        total_millis = total_millis.checked_add(value.checked_mul(unit_millis)?)?;
    }
    if groups == 0 || groups > 4 {
        return None;
    }
    Some(SimDuration::from_millis(total_millis))
}

/// Reads a string whose length (in characters) lies in `min..=max`.
pub fn bounded_string(
    node: &Node,
    diagnostics: &mut Diagnostics,
    min: usize,
    max: usize,
) -> Option<String> {
    let text = node.str(diagnostics)?;
    let length = text.chars().count();
    if length < min || length > max {
        let message = if min > 0 && length < min {
            format!("must be at least {min} characters long, found {length}")
        } else {
            format!("must be at most {max} characters long, found {length}")
        };
        diagnostics.error(node, message);
        return None;
    }
    Some(text.to_string())
}

/// Reads an optional field with `read`, returning `None` when it is absent
/// and `Some(None)` when it is present but invalid.
pub fn optional<'a, T>(
    fields: &Fields<'a>,
    key: &str,
    diagnostics: &mut Diagnostics,
    read: impl FnOnce(&'a Node, &mut Diagnostics) -> Option<T>,
) -> Option<Option<T>> {
    fields.get(key).map(|node| read(node, diagnostics))
}

/// Reads a list field, each item with `read`; an absent field is empty.
/// Reports a list longer than `max_items`.
pub fn list<'a, T>(
    fields: &Fields<'a>,
    key: &str,
    max_items: usize,
    diagnostics: &mut Diagnostics,
    mut read: impl FnMut(&'a Node, &mut Diagnostics) -> Option<T>,
) -> Vec<T> {
    let Some(node) = fields.get(key) else {
        return Vec::new();
    };
    let Some(items) = node.seq(diagnostics) else {
        return Vec::new();
    };
    if items.len() > max_items {
        diagnostics.error(
            node,
            format!("must have at most {max_items} items, found {}", items.len()),
        );
    }
    items
        .iter()
        .filter_map(|item| read(item, diagnostics))
        .collect()
}

/// Checks a DNS-1123 subdomain (lower-case labels of letters, digits and
/// `-`, joined by dots), the pattern of `sectionName` and host names.
pub fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_durations_follow_crd_pattern() {
        assert_eq!(
            parse_gateway_duration("1h30m"),
            Some(SimDuration::from_secs(5400))
        );
        assert_eq!(
            parse_gateway_duration("250ms"),
            Some(SimDuration::from_millis(250))
        );
        assert_eq!(parse_gateway_duration("0s"), Some(SimDuration::ZERO));
        assert_eq!(parse_gateway_duration("1.5s"), None);
        assert_eq!(parse_gateway_duration("123456s"), None);
        assert_eq!(parse_gateway_duration("1h1m1s1ms1h"), None);
        assert_eq!(parse_gateway_duration("22mib"), None);
        assert_eq!(parse_gateway_duration(""), None);
    }

    #[test]
    fn dns_subdomain_rejects_upper_case() {
        assert!(is_dns_subdomain("rule-1"));
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("Rule"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_subdomain(""));
    }
}
