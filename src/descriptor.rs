//! Rate-limit descriptors: what Envoy's `rate_limits` actions produce from a
//! request.
//!
//! Both the local and the global rate limit filter turn a request into a
//! list of descriptors, one per `rate_limits` entry whose actions all
//! produce an entry. This module evaluates those actions against a
//! request's attributes; what a descriptor then costs is left to
//! `local_rate_limit` and `global_rate_limit`.

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
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
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

/// Builds the descriptor of one `rate_limits` entry, or `None` when one of
/// its actions produces nothing.
pub fn build(entry: &RateLimitActions, request: &RequestAttrs<'_>) -> Option<Descriptor> {
    let mut descriptor = Vec::with_capacity(entry.actions.len());
    for action in &entry.actions {
        descriptor.push(evaluate(action, request)?);
    }
    Some(descriptor)
}

/// Builds every descriptor a request produces, in `rate_limits` order.
pub fn build_all(entries: &[RateLimitActions], request: &RequestAttrs<'_>) -> Vec<Descriptor> {
    entries
        .iter()
        .filter_map(|entry| build(entry, request))
        .collect()
}

fn evaluate(action: &RateLimitAction, request: &RequestAttrs<'_>) -> Option<(String, String)> {
    match action {
        RateLimitAction::RequestHeaders {
            header_name,
            descriptor_key,
        } => request
            .header(header_name)
            .map(|value| (descriptor_key.clone(), value.to_string())),
        RateLimitAction::HeaderValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            headers,
        } => (headers_match(headers, request) == *expect_match)
            .then(|| (descriptor_key.clone(), descriptor_value.clone())),
        RateLimitAction::RemoteAddressMatch {
            descriptor_key,
            descriptor_value,
            ranges,
            invert,
        } => {
            let inside = ranges.iter().any(|range| range.contains(request.source_ip));
            (inside != *invert).then(|| (descriptor_key.clone(), descriptor_value.clone()))
        }
        RateLimitAction::RemoteAddress { descriptor_key } => {
            Some((descriptor_key.clone(), request.source_ip.to_string()))
        }
        RateLimitAction::QueryParameterValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            params,
        } => (query_params_match(params, request) == *expect_match)
            .then(|| (descriptor_key.clone(), descriptor_value.clone())),
        RateLimitAction::QueryParameters {
            query_parameter_name,
            descriptor_key,
        } => request
            .query_param(query_parameter_name)
            .map(|value| (descriptor_key.clone(), value.to_string())),
        RateLimitAction::GenericKey {
            descriptor_key,
            descriptor_value,
        } => Some((descriptor_key.clone(), descriptor_value.clone())),
    }
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
