//! Rate-limit descriptors: what Envoy's `rate_limits` actions produce from a
//! request.
//!
//! Both the local and the global rate limit filter turn a request into a
//! list of descriptors, one per `rate_limits` entry whose actions all
//! produce an entry. This module evaluates those actions against a
//! request's attributes; what a descriptor then costs is left to
//! `local_rate_limit` and `global_rate_limit`.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::gateway::{HeaderMatcher, QueryParamMatcher, RateLimitAction, RateLimitActions};

/// The parts of a request that matching and rate limiting look at.
#[derive(Clone, Copy, Debug)]
pub struct RequestAttrs<'a> {
    /// `:authority` without port, lower case.
    pub host: &'a str,
    /// `:path` including the query string.
    pub path: &'a str,
    pub method: &'a str,
    /// Header names in lower case, in the order sent.
    pub headers: &'a [(String, String)],
    pub source_ip: IpAddr,
}

impl<'a> RequestAttrs<'a> {
    /// The first value of a header; pseudo-headers `:path`, `:method` and
    /// `:authority` are answered from the request line.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        match name {
            ":path" => Some(self.path),
            ":method" => Some(self.method),
            ":authority" | "host" => Some(self.host),
            _ => self
                .headers
                .iter()
                // Names are usually stored in the case they are requested
                // in, and an exact comparison is much cheaper.
                .find(|(key, _)| key == name || key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str()),
        }
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &'a str {
        match self.path.find('?') {
            Some(index) => &self.path[..index],
            None => self.path,
        }
    }

    /// The first value of a query parameter, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        let query = self.path.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or(query);
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// True when every matcher matches; an absent header never matches.
pub fn headers_match(matchers: &[HeaderMatcher], request: &RequestAttrs<'_>) -> bool {
    matchers.iter().all(|matcher| {
        let found = request
            .header(&matcher.name)
            .is_some_and(|value| matcher.matcher.matches(value));
        found != matcher.invert
    })
}

/// True when every query matcher matches; an absent parameter never matches.
pub fn query_params_match(matchers: &[QueryParamMatcher], request: &RequestAttrs<'_>) -> bool {
    matchers.iter().all(|matcher| {
        request
            .query_param(&matcher.name)
            .is_some_and(|value| matcher.matcher.matches(value))
    })
}

/// One descriptor: its entries as `(key, value)` pairs in action order.
pub type Descriptor = Vec<(String, String)>;

/// Descriptors of one request, stored in one reusable text buffer so that
/// building them allocates nothing once the buffer has grown.
#[derive(Debug, Default)]
pub struct DescriptorBuffer {
    text: String,
    /// Byte ranges of keys and values, alternating.
    parts: Vec<(u32, u32)>,
    /// Per descriptor: its first part and its number of entries.
    descriptors: Vec<(u32, u32)>,
}

impl DescriptorBuffer {
    pub fn clear(&mut self) {
        self.text.clear();
        self.parts.clear();
        self.descriptors.clear();
    }

    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    fn part(&self, index: usize) -> &str {
        let (start, end) = self.parts[index];
        &self.text[start as usize..end as usize]
    }

    /// The `(key, value)` entries of descriptor `index`.
    pub fn entries(&self, index: usize) -> impl Iterator<Item = (&str, &str)> + '_ {
        let (first, count) = self.descriptors[index];
        (0..count as usize).map(move |entry| {
            let at = first as usize + 2 * entry;
            (self.part(at), self.part(at + 1))
        })
    }

    /// Returns the value of entry `position` of descriptor `index`.
    pub fn value(&self, index: usize, position: usize) -> &str {
        let (first, _) = self.descriptors[index];
        self.part(first as usize + 2 * position + 1)
    }

    pub fn entry_count(&self, index: usize) -> usize {
        self.descriptors[index].1 as usize
    }

    fn push_part(&mut self, write: impl FnOnce(&mut String)) {
        let start = self.text.len() as u32;
        write(&mut self.text);
        self.parts.push((start, self.text.len() as u32));
    }

    /// Appends a descriptor given as pairs.
    pub fn push(&mut self, descriptor: &[(String, String)]) {
        let first = self.parts.len() as u32;
        for (key, value) in descriptor {
            self.push_part(|text| text.push_str(key));
            self.push_part(|text| text.push_str(value));
        }
        self.descriptors.push((first, descriptor.len() as u32));
    }

    /// Appends the descriptor of one `rate_limits` entry; returns false and
    /// leaves the buffer as it was when one of its actions produces nothing.
    pub fn push_entry(&mut self, entry: &RateLimitActions, request: &RequestAttrs<'_>) -> bool {
        let (text_len, parts_len) = (self.text.len(), self.parts.len());
        for action in &entry.actions {
            if !self.push_action(action, request) {
                self.text.truncate(text_len);
                self.parts.truncate(parts_len);
                return false;
            }
        }
        self.descriptors
            .push((parts_len as u32, entry.actions.len() as u32));
        true
    }

    fn push_action(&mut self, action: &RateLimitAction, request: &RequestAttrs<'_>) -> bool {
        let (key, value): (&str, Option<&str>) = match action {
            RateLimitAction::RequestHeaders {
                header_name,
                descriptor_key,
            } => match request.header(header_name) {
                Some(value) => (descriptor_key, Some(value)),
                None => return false,
            },
            RateLimitAction::HeaderValueMatch {
                descriptor_key,
                descriptor_value,
                expect_match,
                headers,
            } => {
                if headers_match(headers, request) != *expect_match {
                    return false;
                }
                (descriptor_key, Some(descriptor_value))
            }
            RateLimitAction::RemoteAddressMatch {
                descriptor_key,
                descriptor_value,
                ranges,
                invert,
            } => {
                let inside = ranges.iter().any(|range| range.contains(request.source_ip));
                if inside == *invert {
                    return false;
                }
                (descriptor_key, Some(descriptor_value))
            }
            RateLimitAction::RemoteAddress { descriptor_key } => (descriptor_key, None),
            RateLimitAction::QueryParameterValueMatch {
                descriptor_key,
                descriptor_value,
                expect_match,
                params,
            } => {
                if query_params_match(params, request) != *expect_match {
                    return false;
                }
                (descriptor_key, Some(descriptor_value))
            }
            RateLimitAction::QueryParameters {
                query_parameter_name,
                descriptor_key,
            } => match request.query_param(query_parameter_name) {
                Some(value) => (descriptor_key, Some(value)),
                None => return false,
            },
            RateLimitAction::GenericKey {
                descriptor_key,
                descriptor_value,
            } => (descriptor_key, Some(descriptor_value)),
        };
        self.push_part(|text| text.push_str(key));
        match value {
            Some(value) => self.push_part(|text| text.push_str(value)),
            None => {
                let ip = request.source_ip;
                self.push_part(|text| {
                    let _ = write!(text, "{ip}");
                });
            }
        }
        true
    }

    /// Descriptor `index` as owned pairs.
    pub fn to_descriptor(&self, index: usize) -> Descriptor {
        self.entries(index)
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}

/// Returns the key of the entry an action produces, and its value when
/// every request gets the same one. Only `request_headers`,
/// `query_parameters` and `remote_address` take their value from the
/// request.
pub fn fixed_entry(action: &RateLimitAction) -> (&str, Option<&str>) {
    match action {
        RateLimitAction::RequestHeaders { descriptor_key, .. }
        | RateLimitAction::QueryParameters { descriptor_key, .. }
        | RateLimitAction::RemoteAddress { descriptor_key } => (descriptor_key, None),
        RateLimitAction::HeaderValueMatch {
            descriptor_key,
            descriptor_value,
            ..
        }
        | RateLimitAction::RemoteAddressMatch {
            descriptor_key,
            descriptor_value,
            ..
        }
        | RateLimitAction::QueryParameterValueMatch {
            descriptor_key,
            descriptor_value,
            ..
        }
        | RateLimitAction::GenericKey {
            descriptor_key,
            descriptor_value,
        } => (descriptor_key, Some(descriptor_value)),
    }
}

/// Builds the descriptor of one `rate_limits` entry, or `None` when one of
/// its actions produces nothing.
pub fn build(entry: &RateLimitActions, request: &RequestAttrs<'_>) -> Option<Descriptor> {
    let mut buffer = DescriptorBuffer::default();
    buffer
        .push_entry(entry, request)
        .then(|| buffer.to_descriptor(0))
}

/// Builds every descriptor a request produces, in `rate_limits` order.
pub fn build_all(entries: &[RateLimitActions], request: &RequestAttrs<'_>) -> Vec<Descriptor> {
    let mut buffer = DescriptorBuffer::default();
    for entry in entries {
        buffer.push_entry(entry, request);
    }
    (0..buffer.len()).map(|i| buffer.to_descriptor(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{Regex, StringMatch};

    fn request<'a>(headers: &'a [(String, String)]) -> RequestAttrs<'a> {
        RequestAttrs {
            host: "example.com",
            path: "/api/x?user=bob&tier=gold",
            method: "GET",
            headers,
            source_ip: "10.0.0.1".parse().unwrap(),
        }
    }

    fn header_match(value: &str, expect_match: bool) -> RateLimitActions {
        RateLimitActions {
            actions: vec![RateLimitAction::HeaderValueMatch {
                descriptor_key: "rule-0-match-0".into(),
                descriptor_value: "rule-0-match-0".into(),
                expect_match,
                headers: vec![HeaderMatcher {
                    name: "x-user-id".into(),
                    matcher: StringMatch::Exact(value.into()),
                    invert: false,
                }],
            }],
            hits_addend: None,
            apply_on_stream_done: false,
        }
    }

    #[test]
    fn literal_star_matches_only_a_star() {
        let alice = [("x-user-id".to_string(), "alice".to_string())];
        assert!(build(&header_match("*", true), &request(&alice)).is_none());
        let star = [("x-user-id".to_string(), "*".to_string())];
        assert!(build(&header_match("*", true), &request(&star)).is_some());
    }

    #[test]
    fn inverted_match_catches_absent_and_other_values() {
        let entry = header_match("*", false);
        assert!(build(&entry, &request(&[])).is_some());
        let alice = [("x-user-id".to_string(), "alice".to_string())];
        assert!(build(&entry, &request(&alice)).is_some());
    }

    #[test]
    fn inverted_regex_matches_only_absent_header() {
        let entry = RateLimitActions {
            actions: vec![RateLimitAction::HeaderValueMatch {
                descriptor_key: "k".into(),
                descriptor_value: "k".into(),
                expect_match: false,
                headers: vec![HeaderMatcher {
                    name: "x-user-id".into(),
                    matcher: StringMatch::Regex(Regex::new(".*").unwrap()),
                    invert: false,
                }],
            }],
            hits_addend: None,
            apply_on_stream_done: false,
        };
        assert!(build(&entry, &request(&[])).is_some());
        let alice = [("x-user-id".to_string(), "alice".to_string())];
        assert!(build(&entry, &request(&alice)).is_none());
    }

    #[test]
    fn request_headers_needs_the_header() {
        let entry = RateLimitActions {
            actions: vec![RateLimitAction::RequestHeaders {
                header_name: "x-user-id".into(),
                descriptor_key: "user".into(),
            }],
            hits_addend: None,
            apply_on_stream_done: false,
        };
        assert!(build(&entry, &request(&[])).is_none());
        let bob = [("X-User-Id".to_string(), "bob".to_string())];
        assert_eq!(
            build(&entry, &request(&bob)),
            Some(vec![("user".to_string(), "bob".to_string())])
        );
    }

    #[test]
    fn query_parameters_are_read_from_the_path() {
        let attrs = request(&[]);
        assert_eq!(attrs.query_param("tier"), Some("gold"));
        assert_eq!(attrs.query_param("missing"), None);
        assert_eq!(attrs.path_only(), "/api/x");
    }
}
