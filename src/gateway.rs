//! The resolved gateway: Envoy routes and clusters as Envoy Gateway v1.9
//! would program them into Envoy, ready for the simulation to execute.
//!
//! This is the hand-off between the manifest reader (which knows YAML,
//! Kubernetes objects and Envoy Gateway's translation rules) and the
//! simulation (which knows only these types). Field names follow Envoy's
//! own configuration, so a resolved model can be printed back as the Envoy
//! configuration it stands for. Nothing here knows about YAML.

use std::net::IpAddr;

use crate::time::SimDuration;

/// Everything the proxies need: the route table and the upstream clusters.
#[derive(Clone, Debug, Default)]
pub struct GatewayModel {
    /// Routes in the order Envoy evaluates them; the first match wins.
    pub routes: Vec<Route>,
    pub clusters: Vec<Cluster>,
    /// One entry per BackendTrafficPolicy read, with its status.
    pub policies: Vec<PolicyStatus>,
    /// Objects that were read but skipped (other kinds), and why.
    pub notes: Vec<String>,
}

/// One Envoy route: one listener x HTTPRoute rule x match x hostname.
#[derive(Clone, Debug)]
pub struct Route {
    /// Envoy Gateway's route name, such as
    /// `httproute/default/backend/rule/0/match/0/*`.
    pub name: String,
    /// `namespace/name` of the HTTPRoute this route came from.
    pub http_route: String,
    pub rule_index: usize,
    /// Envoy Gateway's listener name, `<gateway-namespace>/<gateway>/<listener>`;
    /// also the domain of the route's non-shared global rate limits.
    pub listener: String,
    /// The listener's port.
    pub port: u16,
    /// Host names this route answers (lowercase); empty means any host.
    /// A leading `*.` is a wildcard for one or more labels.
    pub hostnames: Vec<String>,
    pub path: PathMatch,
    pub headers: Vec<HeaderMatcher>,
    pub query_params: Vec<QueryParamMatcher>,
    /// Upper-case method such as `GET`; `None` matches every method.
    pub method: Option<String>,
    pub action: RouteAction,
    /// `namespace/name` of the BackendTrafficPolicy whose features apply.
    pub policy: Option<String>,
    pub local_rate_limit: Option<LocalRateLimit>,
    /// Global limits in the listener's domain (rules without `shared`).
    pub global_rate_limit: Option<GlobalRateLimit>,
    /// Global limits of `shared: true` rules, one entry per policy domain
    /// (`<policy-namespace>/<policy>`); their counters are shared by every
    /// route the policy applies to.
    pub shared_global_rate_limits: Vec<GlobalRateLimit>,
    pub retry: Option<RetryPolicy>,
    pub timeouts: RouteTimeouts,
    pub fault: Option<FaultInjection>,
}

#[derive(Clone, Debug)]
pub enum RouteAction {
    /// Forward to the cluster at this index of [`GatewayModel::clusters`].
    Forward { cluster: usize },
    /// Answer directly without any upstream, as Envoy Gateway does for a
    /// route whose policy failed to translate (status 500).
    DirectResponse { status: u16, reason: String },
}

#[derive(Clone, Debug)]
pub enum PathMatch {
    /// Matches the path (without query) exactly.
    Exact(String),
    /// Matches whole path segments: `/api` matches `/api` and `/api/x`,
    /// not `/apix`. `/` matches everything.
    Prefix(String),
    /// RE2-style regular expression matched against the whole path.
    Regex(Regex),
}

/// A compiled regular expression that keeps its source text.
#[derive(Clone, Debug)]
pub struct Regex {
    pub source: String,
    /// Anchored at both ends, as Envoy's `safe_regex` full-match.
    pub compiled: regex::Regex,
}

impl Regex {
    /// Compiles `source` for full-string matching.
    pub fn new(source: &str) -> Result<Regex, regex::Error> {
        let compiled = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Regex {
            source: source.to_string(),
            compiled,
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }
}

#[derive(Clone, Debug)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl StringMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(expected) => value == expected,
            StringMatch::Prefix(prefix) => value.starts_with(prefix.as_str()),
            StringMatch::Regex(regex) => regex.is_match(value),
        }
    }
}

/// A header condition; an absent header never matches (even with `invert`
/// the matcher itself fails, and the caller applies `expect_match`).
#[derive(Clone, Debug)]
pub struct HeaderMatcher {
    /// Lower-case header name, or a pseudo-header such as `:path`, `:method`.
    pub name: String,
    pub matcher: StringMatch,
    /// Envoy's `invert_match` on the matcher itself (route matching); the
    /// rate-limit translation uses `expect_match` instead.
    pub invert: bool,
}

#[derive(Clone, Debug)]
pub struct QueryParamMatcher {
    pub name: String,
    pub matcher: StringMatch,
}

/// Route-level timeouts; `None` disables a timeout.
#[derive(Clone, Debug)]
pub struct RouteTimeouts {
    /// Envoy's route `timeout`: from the end of the downstream request to
    /// the response, across all retries. Envoy's default is 15 s.
    pub request: Option<SimDuration>,
}

impl Default for RouteTimeouts {
    fn default() -> Self {
        RouteTimeouts {
            request: Some(SimDuration::from_secs(15)),
        }
    }
}

/// The local rate limit filter's per-route configuration
/// (`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`).
#[derive(Clone, Debug)]
pub struct LocalRateLimit {
    /// The route's own `token_bucket`, used for requests that match no
    /// descriptor (and for all requests when
    /// `always_consume_default_token_bucket` is set).
    pub default_bucket: TokenBucketSpec,
    pub descriptors: Vec<LocalDescriptor>,
    /// One entry per `rate_limits` item; each produces at most one request
    /// descriptor.
    pub rate_limits: Vec<RateLimitActions>,
    /// Envoy's default is true; Envoy Gateway sets false.
    pub always_consume_default_token_bucket: bool,
    /// LRU capacity for per-value (wildcard) buckets; Envoy's per-route
    /// default is 20.
    pub max_dynamic_descriptors: usize,
    /// Status of a rejected request; Envoy's default is 429.
    pub status: u16,
}

/// Envoy `TokenBucket`: `max_tokens`, refilled with `tokens_per_fill`
/// every `fill_interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucketSpec {
    pub max_tokens: u32,
    pub tokens_per_fill: u32,
    pub fill_interval: SimDuration,
}

#[derive(Clone, Debug)]
pub struct LocalDescriptor {
    /// Entry keys and values; a `None` value is a wildcard that gives each
    /// distinct request value its own bucket.
    pub entries: Vec<DescriptorEntry>,
    pub bucket: TokenBucketSpec,
    /// Counts but never rejects.
    pub shadow_mode: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DescriptorEntry {
    pub key: String,
    pub value: Option<String>,
}

/// One Envoy `rate_limits` entry: its actions, all of which must produce an
/// entry for the descriptor to exist.
#[derive(Clone, Debug)]
pub struct RateLimitActions {
    pub actions: Vec<RateLimitAction>,
    /// Global limits only: tokens consumed per request (`hits_addend`);
    /// `None` means 1.
    pub hits_addend: Option<HitsAddend>,
    /// Global limits only: sent when the stream ends (response cost).
    pub apply_on_stream_done: bool,
}

#[derive(Clone, Debug)]
pub enum HitsAddend {
    Number(u64),
    /// Taken from dynamic metadata at run time; the simulation reads it
    /// from the response's token count when the key names tokens.
    Metadata {
        namespace: String,
        key: String,
    },
}

#[derive(Clone, Debug)]
pub enum RateLimitAction {
    /// Entry `key = value of header`; no entry when the header is absent.
    RequestHeaders {
        header_name: String,
        descriptor_key: String,
    },
    /// Entry `key = value` when every matcher's result equals
    /// `expect_match`.
    HeaderValueMatch {
        descriptor_key: String,
        descriptor_value: String,
        expect_match: bool,
        headers: Vec<HeaderMatcher>,
    },
    /// Entry `key = value` when the client address is inside one of the
    /// ranges (or outside all of them with `invert`).
    RemoteAddressMatch {
        descriptor_key: String,
        descriptor_value: String,
        ranges: Vec<Cidr>,
        invert: bool,
    },
    /// Entry `key = client address` (Envoy's `remote_address` action).
    RemoteAddress { descriptor_key: String },
    /// Entry `key = value` when every query matcher's result equals
    /// `expect_match`.
    QueryParameterValueMatch {
        descriptor_key: String,
        descriptor_value: String,
        expect_match: bool,
        params: Vec<QueryParamMatcher>,
    },
    /// Entry `key = value of the query parameter`; none when absent.
    QueryParameters {
        query_parameter_name: String,
        descriptor_key: String,
    },
    /// Always produces `key = value`.
    GenericKey {
        descriptor_key: String,
        descriptor_value: String,
    },
}

/// An IPv4 or IPv6 range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Global rate limiting of one route: the Envoy `rate_limits` sent to the
/// rate limit service and the service's limits for them.
#[derive(Clone, Debug)]
pub struct GlobalRateLimit {
    /// Envoy's `RateLimitPerRoute.domain`.
    pub domain: String,
    pub rate_limits: Vec<RateLimitActions>,
    /// The rate limit service's configuration for this domain, flattened:
    /// one entry per descriptor chain that carries a limit.
    pub limits: Vec<GlobalLimit>,
}

#[derive(Clone, Debug)]
pub struct GlobalLimit {
    /// Descriptor chain from the top level down; a `None` value matches any
    /// value and keeps a separate counter per value.
    pub chain: Vec<DescriptorEntry>,
    pub requests_per_unit: u32,
    pub unit: RateLimitUnit,
    pub shadow_mode: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RateLimitUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    /// 30 days, as Envoy Gateway and the rate limit service count it.
    Month,
    /// 365 days.
    Year,
}

impl RateLimitUnit {
    pub fn seconds(self) -> u64 {
        match self {
            RateLimitUnit::Second => 1,
            RateLimitUnit::Minute => 60,
            RateLimitUnit::Hour => 3_600,
            RateLimitUnit::Day => 86_400,
            RateLimitUnit::Week => 604_800,
            RateLimitUnit::Month => 2_592_000,
            RateLimitUnit::Year => 31_536_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RateLimitUnit::Second => "Second",
            RateLimitUnit::Minute => "Minute",
            RateLimitUnit::Hour => "Hour",
            RateLimitUnit::Day => "Day",
            RateLimitUnit::Week => "Week",
            RateLimitUnit::Month => "Month",
            RateLimitUnit::Year => "Year",
        }
    }
}

/// One upstream cluster: an HTTPRoute rule's backends.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Envoy Gateway's cluster name, such as `httproute/default/backend/rule/0`.
    pub name: String,
    pub backends: Vec<WeightedBackend>,
    pub circuit_breaker: CircuitBreaker,
    pub load_balancer: LoadBalancer,
    pub outlier_detection: Option<OutlierDetection>,
    /// Envoy's cluster `connect_timeout`; Envoy Gateway sets 10 s.
    pub connect_timeout: SimDuration,
    /// Below this share of healthy hosts (percent) the load balancer uses
    /// all hosts; Envoy's default is 50, 0 disables panic mode.
    pub healthy_panic_threshold: f64,
}

#[derive(Clone, Debug)]
pub struct WeightedBackend {
    /// Service name as written in the HTTPRoute `backendRefs`.
    pub name: String,
    pub namespace: String,
    pub port: Option<u16>,
    pub weight: u32,
}

/// Envoy's circuit-breaker thresholds for the default priority.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreaker {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    /// `max_requests`: active upstream requests (Envoy Gateway calls it
    /// `maxParallelRequests`).
    pub max_requests: u32,
    /// Concurrent retries; raw Envoy defaults to 3, Envoy Gateway sets 1024.
    pub max_retries: u32,
    pub retry_budget: Option<RetryBudget>,
    /// Requests before an upstream connection is closed; `None` is unlimited.
    pub max_requests_per_connection: Option<u32>,
    pub per_host_max_connections: Option<u32>,
}

impl CircuitBreaker {
    /// Envoy's built-in thresholds with the retry limit Envoy Gateway sets.
    pub fn envoy_gateway_default() -> CircuitBreaker {
        CircuitBreaker {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 1024,
            retry_budget: None,
            max_requests_per_connection: None,
            per_host_max_connections: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Percent of active plus pending requests that may be retries.
    pub budget_percent: f64,
    pub min_retry_concurrency: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LoadBalancer {
    /// Two random choices, the one with fewer active requests (Envoy
    /// Gateway's default).
    LeastRequest {
        choice_count: u32,
    },
    RoundRobin,
    Random,
    /// Maglev over a hash of the source IP or of header values.
    ConsistentHash {
        hash_on: HashOn,
        table_size: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum HashOn {
    SourceIp,
    /// Header names, lower case; requests without them hash randomly.
    Headers(Vec<String>),
    Cookie(String),
    QueryParams(Vec<String>),
}

/// Envoy's outlier detection, with Envoy Gateway's defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct OutlierDetection {
    pub interval: SimDuration,
    pub base_ejection_time: SimDuration,
    pub max_ejection_time: SimDuration,
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_failure: Option<u32>,
    /// Percent; 0 means detected but not enforced.
    pub enforcing_consecutive_gateway_failure: u32,
    pub consecutive_local_origin_failure: Option<u32>,
    pub split_external_local_origin_errors: bool,
    pub max_ejection_percent: u32,
    pub always_eject_one_host: bool,
    pub failure_percentage_threshold: Option<u32>,
    pub enforcing_failure_percentage: u32,
    pub success_rate_minimum_hosts: u32,
    pub success_rate_request_volume: u32,
    /// Divided by 1000: 1900 means 1.9 standard deviations.
    pub success_rate_stdev_factor: u32,
    pub enforcing_success_rate: u32,
    pub failure_percentage_minimum_hosts: u32,
    pub failure_percentage_request_volume: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub num_retries: u32,
    pub retry_on: RetryOn,
    /// Status codes for `retriable-status-codes`.
    pub retriable_status_codes: Vec<u16>,
    pub per_try_timeout: Option<SimDuration>,
    pub base_interval: SimDuration,
    pub max_interval: SimDuration,
}

/// The `retry_on` conditions, one flag each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub server_error_5xx: bool,
    pub gateway_error: bool,
    pub reset: bool,
    pub reset_before_request: bool,
    pub connect_failure: bool,
    pub retriable_4xx: bool,
    pub refused_stream: bool,
    pub retriable_status_codes: bool,
    pub cancelled: bool,
    pub deadline_exceeded: bool,
    pub internal: bool,
    pub resource_exhausted: bool,
    pub unavailable: bool,
    pub envoy_ratelimited: bool,
}

/// Envoy's fault filter: delay and abort, drawn independently.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultInjection {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultDelay {
    pub fixed_delay: SimDuration,
    /// Percent of requests, 0..=100.
    pub percentage: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultAbort {
    pub http_status: u16,
    pub percentage: f64,
}

/// What Envoy Gateway reports for one BackendTrafficPolicy.
#[derive(Clone, Debug)]
pub struct PolicyStatus {
    /// `namespace/name`.
    pub name: String,
    pub accepted: bool,
    /// Envoy Gateway's reason: `Accepted`, `Invalid`, `Conflicted`,
    /// `TargetNotFound`.
    pub reason: String,
    pub message: String,
    /// Names of the Envoy routes this policy's features apply to.
    pub applies_to: Vec<String>,
    /// Less specific policies this one displaces for some routes.
    pub overrides: Vec<String>,
    /// More specific policies that displace this one for some routes.
    pub overridden_by: Vec<String>,
    pub warnings: Vec<String>,
    /// The conditions Envoy Gateway reports, per ancestor (Gateway or
    /// listener), as in the policy's `status.ancestors`.
    pub ancestors: Vec<AncestorStatus>,
}

/// The status conditions of a policy for one ancestor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AncestorStatus {
    /// `<namespace>/<gateway>` or `<namespace>/<gateway>/<listener>`.
    pub ancestor: String,
    pub conditions: Vec<PolicyCondition>,
}

/// One Kubernetes status condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCondition {
    /// `Accepted`, `Overridden`, `Merged` or `Warning`.
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_masks_host_bits() {
        let cidr = Cidr {
            address: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
        };
        assert!(cidr.contains("10.1.200.3".parse().unwrap()));
        assert!(!cidr.contains("10.2.0.1".parse().unwrap()));
        let everything = Cidr {
            address: "0.0.0.0".parse().unwrap(),
            prefix_len: 0,
        };
        assert!(everything.contains("192.0.2.1".parse().unwrap()));
        assert!(!everything.contains("::1".parse().unwrap()));
    }

    #[test]
    fn regex_matches_whole_string() {
        let regex = Regex::new("a.c").unwrap();
        assert!(regex.is_match("abc"));
        assert!(!regex.is_match("xabc"));
    }
}
