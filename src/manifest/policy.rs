//! Envoy Gateway's `BackendTrafficPolicy` (`gateway.envoyproxy.io/v1alpha1`,
//! v1.9) as written, with the CRD's defaults and validation rules applied.
//!
//! What the Kubernetes API server would reject (schema types, enums,
//! ranges, CEL rules) is a diagnostic here. What the API server accepts but
//! Envoy Gateway's translator rejects (a `Distinct` header with a value, an
//! invalid regex, a second catch-all rule) is kept as written so the
//! translator can mark the policy `Accepted=False`, as Envoy Gateway does.

use std::collections::BTreeMap;

use super::gateway_api::{ObjectMeta, section_name};
use super::schema::{bounded_string, gateway_duration, list, optional};
use crate::gateway::RateLimitUnit;
use crate::time::SimDuration;
use crate::yaml::{Diagnostics, Fields, Node};

#[derive(Clone, Debug)]
pub struct BackendTrafficPolicy {
    pub meta: ObjectMeta,
    /// `spec` as written, kept for `mergeType` merges (which work on the
    /// documents and then read the result again).
    pub spec_node: Node,
    pub spec: PolicySpec,
}

#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    /// `targetRefs`, or the deprecated single `targetRef`.
    pub target_refs: Vec<TargetRef>,
    pub uses_deprecated_target_ref: bool,
    pub target_selectors: Vec<TargetSelector>,
    /// `StrategicMerge` or `JSONMerge`; the CRD has no enum, so any other
    /// value reaches the translator.
    pub merge_type: Option<String>,
    pub rate_limit: Option<RateLimitSpec>,
    pub circuit_breaker: Option<CircuitBreakerSpec>,
    pub retry: Option<RetrySpec>,
    pub timeout: Option<TimeoutSpec>,
    pub load_balancer: Option<LoadBalancerSpec>,
    pub health_check: Option<HealthCheckSpec>,
    pub fault_injection: Option<FaultInjectionSpec>,
    /// Fields that were read but that the simulation does not model.
    pub ignored: Vec<String>,
    /// Envoy Gateway's translation errors for fields the simulation does
    /// not model otherwise, as `(feature, message)`.
    pub unmodelled_errors: Vec<(&'static str, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRef {
    pub kind: String,
    pub name: String,
    pub section_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TargetSelector {
    pub kind: String,
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<LabelExpression>,
    /// `namespaces.from` when it is `All` or `Selector`. Only objects of
    /// the policy's own namespace are selected, so translation notes it.
    pub other_namespaces: Option<String>,
}

#[derive(Clone, Debug)]
pub struct LabelExpression {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    pub values: Vec<String>,
}

impl TargetSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels_match = self
            .match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value));
        labels_match
            && self.match_expressions.iter().all(|expression| {
                let value = labels.get(&expression.key);
                match expression.operator.as_str() {
                    "In" => value.is_some_and(|v| expression.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !expression.values.contains(v)),
                    "Exists" => value.is_some(),
                    _ => value.is_none(),
                }
            })
    }
}

#[derive(Clone, Debug, Default)]
pub struct RateLimitSpec {
    /// The deprecated `type: Local|Global` discriminator.
    pub kind: Option<String>,
    /// `local.rules`; `Some(empty)` for `local: {}`.
    pub local: Option<Vec<RateLimitRule>>,
    pub global: Option<Vec<RateLimitRule>>,
}

#[derive(Clone, Debug)]
pub struct RateLimitRule {
    pub selectors: Vec<ClientSelector>,
    pub requests: u32,
    pub unit: RateLimitUnit,
    pub from_metadata: Option<MetadataKey>,
    pub request_cost: Option<Cost>,
    pub response_cost: Option<Cost>,
    pub shared: Option<bool>,
    pub shadow_mode: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataKey {
    pub namespace: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cost {
    Number(u64),
    Metadata(MetadataKey),
    /// `from` was given without `number` or `metadata`.
    Empty,
}

/// One `clientSelectors` entry; its conditions all have to hold.
#[derive(Clone, Debug, Default)]
pub struct ClientSelector {
    pub headers: Vec<ValueSelector>,
    pub methods: Vec<MethodSelector>,
    pub path: Option<PathSelector>,
    pub source_cidr: Option<CidrSelector>,
    pub query_params: Vec<ValueSelector>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorKind {
    Exact,
    RegularExpression,
    Distinct,
}

/// A header or query parameter condition, as written.
#[derive(Clone, Debug)]
pub struct ValueSelector {
    pub name: String,
    pub kind: SelectorKind,
    pub value: Option<String>,
    pub invert: bool,
}

#[derive(Clone, Debug)]
pub struct MethodSelector {
    pub value: String,
    pub invert: bool,
}

#[derive(Clone, Debug)]
pub struct PathSelector {
    /// `Exact`, `PathPrefix` or `RegularExpression`.
    pub kind: String,
    pub value: String,
    pub invert: bool,
}

#[derive(Clone, Debug)]
pub struct CidrSelector {
    pub distinct: bool,
    pub value: String,
    pub invert: bool,
}

#[derive(Clone, Debug, Default)]
pub struct CircuitBreakerSpec {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_parallel_requests: u32,
    pub max_parallel_retries: u32,
    pub max_requests_per_connection: Option<u32>,
    pub per_endpoint_max_connections: Option<u32>,
    pub retry_budget: Option<RetryBudgetSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryBudgetSpec {
    /// Percent, from `numerator / denominator`.
    pub percent: f64,
    pub min_retry_concurrency: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct RetrySpec {
    pub num_retries: u32,
    pub retry_on: Option<RetryOnSpec>,
    pub per_retry: Option<PerRetrySpec>,
}

#[derive(Clone, Debug, Default)]
pub struct RetryOnSpec {
    pub triggers: Vec<String>,
    pub http_status_codes: Vec<u16>,
    /// Whether `httpStatusCodes` was written (an empty list still replaces
    /// Envoy Gateway's default `[503]`).
    pub has_status_codes: bool,
}

#[derive(Clone, Debug, Default)]
pub struct PerRetrySpec {
    pub timeout: Option<SimDuration>,
    pub base_interval: Option<SimDuration>,
    pub max_interval: Option<SimDuration>,
}

#[derive(Clone, Debug, Default)]
pub struct TimeoutSpec {
    pub connect_timeout: Option<SimDuration>,
    pub connection_idle_timeout: Option<SimDuration>,
    pub max_connection_duration: Option<SimDuration>,
    pub request_timeout: Option<SimDuration>,
    pub max_stream_duration: Option<SimDuration>,
    pub stream_idle_timeout: Option<SimDuration>,
}

#[derive(Clone, Debug)]
pub struct LoadBalancerSpec {
    /// `ConsistentHash`, `LeastRequest`, `Random`, `RoundRobin`,
    /// `BackendUtilization` or `DynamicModule`.
    pub kind: String,
    pub consistent_hash: Option<ConsistentHashSpec>,
    /// Sub-fields read but not simulated, such as `slowStart`.
    pub ignored: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ConsistentHashSpec {
    /// `SourceIP`, `Header`, `Headers`, `Cookie` or `QueryParams`.
    pub kind: String,
    pub header_names: Vec<String>,
    pub cookie_name: Option<String>,
    pub query_params: Vec<String>,
    pub table_size: u64,
}

#[derive(Clone, Debug, Default)]
pub struct HealthCheckSpec {
    pub passive: Option<PassiveHealthCheckSpec>,
    pub panic_threshold: Option<u32>,
}

/// Passive health checking, with the CRD's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct PassiveHealthCheckSpec {
    pub interval: SimDuration,
    pub base_ejection_time: SimDuration,
    pub consecutive_5xx_errors: u32,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_local_origin_failures: u32,
    pub split_external_local_origin_errors: bool,
    pub max_ejection_percent: u32,
    pub failure_percentage_threshold: Option<u32>,
    pub always_eject_one_endpoint: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FaultInjectionSpec {
    pub delay: Option<(SimDuration, f64)>,
    /// HTTP status (or gRPC status, mapped by the translator) and percentage.
    pub abort: Option<FaultAbortSpec>,
}

#[derive(Clone, Debug)]
pub struct FaultAbortSpec {
    /// `None` for a gRPC abort (`grpcStatus`), which Envoy responds to with
    /// HTTP 200 and the status in `grpc-status`.
    pub http_status: Option<u16>,
    pub percentage: f64,
}

/// Spec fields that are valid but have no effect in the simulation.
const IGNORED_FIELDS: &[&str] = &[
    "tcpKeepalive",
    "proxyProtocol",
    "connection",
    "dns",
    "http2",
    "bandwidthLimit",
    "admissionControl",
    "responseOverride",
    "compression",
    "compressor",
    "httpUpgrade",
    "requestBuffer",
    "telemetry",
    "useClientProtocol",
    "routingType",
];

const SPEC_FIELDS: &[&str] = &[
    "targetRef",
    "targetRefs",
    "targetSelectors",
    "mergeType",
    "rateLimit",
    "circuitBreaker",
    "retry",
    "timeout",
    "loadBalancer",
    "healthCheck",
    "faultInjection",
    "tcpKeepalive",
    "proxyProtocol",
    "connection",
    "dns",
    "http2",
    "bandwidthLimit",
    "admissionControl",
    "responseOverride",
    "compression",
    "compressor",
    "httpUpgrade",
    "requestBuffer",
    "telemetry",
    "useClientProtocol",
    "routingType",
];

/// Envoy Gateway's range checks on the byte sizes of fields that are not
/// simulated: each must fit Envoy's 32-bit fields.
fn size_errors(fields: &Fields) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let scalar = |node: Option<&Node>| node.and_then(Node::scalar).map(str::to_string);
    let bandwidth = fields.get("bandwidthLimit");
    for direction in ["request", "response"] {
        let limit = bandwidth
            .and_then(|b| b.get(direction))
            .and_then(|d| d.get("limit"));
        let Some(value) = scalar(limit.and_then(|l| l.get("value"))) else {
            continue;
        };
        let unit =
            scalar(limit.and_then(|l| l.get("unit"))).unwrap_or_else(|| "Second".to_string());
        let seconds: i128 = match unit.as_str() {
            "Minute" => 60,
            "Hour" => 3600,
            _ => 1,
        };
        if let Some(bytes) = quantity_bytes(&value)
            && bytes >= 0
            && bytes / (seconds * 1024) == 0
        {
            errors.push((
                "BandwidthLimit",
                format!(
                    "{direction}: bandwidth limit of {bytes} bytes per {unit} is below the \
                     minimum of 1 KiB/s"
                ),
            ));
        }
    }
    let buffer = scalar(fields.get("connection").and_then(|c| c.get("bufferLimit")));
    if let Some(text) = buffer
        && quantity_bytes(&text).is_some_and(|bytes| !(0..=u32::MAX as i128).contains(&bytes))
    {
        let text = canonical_quantity(&text);
        errors.push((
            "BackendConnection",
            format!("BufferLimit value {text} is out of range"),
        ));
    }
    let request_buffer = scalar(fields.get("requestBuffer").and_then(|c| c.get("limit")));
    if let Some(text) = request_buffer
        && quantity_bytes(&text).is_some_and(|bytes| !(0..=u32::MAX as i128).contains(&bytes))
    {
        let text = canonical_quantity(&text);
        errors.push((
            "RequestBuffer",
            format!("limit value {text} is out of range, must be between 0 and 4294967295"),
        ));
    }
    errors
}

/// Formats a quantity as Kubernetes prints it: the largest suffix of the same
/// family that keeps the number whole (`1000G` becomes `1T`).
fn canonical_quantity(text: &str) -> String {
    const DECIMAL: &[&str] = &["", "k", "M", "G", "T", "P", "E"];
    const BINARY: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let Ok(mut number) = digits.parse::<u128>() else {
        return text.to_string();
    };
    let (family, base) = if BINARY.contains(&suffix) && !suffix.is_empty() {
        (BINARY, 1024)
    } else {
        (DECIMAL, 1000)
    };
    let Some(mut position) = family.iter().position(|s| *s == suffix) else {
        return text.to_string();
    };
    while number != 0 && number % base == 0 && position + 1 < family.len() {
        number /= base;
        position += 1;
    }
    format!("{number}{}", family[position])
}

/// Parses the value of a Kubernetes quantity such as `512Ki`, `1T` or `100`;
/// `None` for fractions and text that is not a quantity.
fn quantity_bytes(text: &str) -> Option<i128> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: i128 = number.parse().ok()?;
    let scale: i128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

const TARGET_KINDS: &[&str] = &[
    "Gateway",
    "ListenerSet",
    "HTTPRoute",
    "GRPCRoute",
    "UDPRoute",
    "TCPRoute",
    "TLSRoute",
];
const ROUTE_KINDS: &[&str] = &["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"];
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

pub fn read_policy(
    object: &Node,
    meta: ObjectMeta,
    diagnostics: &mut Diagnostics,
) -> Option<BackendTrafficPolicy> {
    let Some(spec_node) = object.get("spec").filter(|n| !n.is_null()) else {
        diagnostics.error(object, "missing required field `spec`");
        return None;
    };
    let spec = read_spec(spec_node, diagnostics)?;
    Some(BackendTrafficPolicy {
        meta,
        spec_node: spec_node.clone(),
        spec,
    })
}

/// Reads a policy `spec`; also used again on the result of a merge.
pub fn read_spec(node: &Node, diagnostics: &mut Diagnostics) -> Option<PolicySpec> {
    let fields = node.fields(diagnostics, SPEC_FIELDS)?;
    let mut spec = PolicySpec::default();
    read_targets(&fields, &mut spec, diagnostics);
    spec.merge_type = fields.get("mergeType").and_then(|n| n.string(diagnostics));
    if let Some(merge) = fields.get("mergeType") {
        if spec.merge_type.as_deref() == Some("Replace") {
            diagnostics.error(
                merge,
                "Replace is not a valid MergeType for BackendTrafficPolicySpec",
            );
        }
        let all_routes = spec
            .target_refs
            .iter()
            .map(|t| t.kind.as_str())
            .chain(spec.target_selectors.iter().map(|s| s.kind.as_str()))
            .all(|kind| ROUTE_KINDS.contains(&kind));
        if !all_routes {
            diagnostics.error(merge, "mergeType can only be used with xRoute targets");
        }
    }
    spec.rate_limit = fields
        .get("rateLimit")
        .and_then(|n| read_rate_limit(n, diagnostics));
    spec.circuit_breaker = fields
        .get("circuitBreaker")
        .and_then(|n| read_circuit_breaker(n, diagnostics));
    spec.retry = fields.get("retry").and_then(|n| read_retry(n, diagnostics));
    spec.timeout = fields
        .get("timeout")
        .and_then(|n| read_timeout(n, diagnostics));
    spec.load_balancer = fields
        .get("loadBalancer")
        .and_then(|n| read_load_balancer(n, diagnostics));
    spec.health_check = fields
        .get("healthCheck")
        .and_then(|n| read_health_check(n, diagnostics));
    spec.fault_injection = fields
        .get("faultInjection")
        .and_then(|n| read_fault_injection(n, diagnostics));
    spec.ignored = IGNORED_FIELDS
        .iter()
        .filter(|key| fields.has(key))
        .map(|key| key.to_string())
        .collect();
    if let Some(load_balancer) = &spec.load_balancer {
        spec.ignored.extend(load_balancer.ignored.iter().cloned());
    }
    spec.unmodelled_errors = size_errors(&fields);
    if fields
        .get("healthCheck")
        .and_then(|n| n.get("active"))
        .is_some()
    {
        spec.ignored.push("healthCheck.active".to_string());
    }
    Some(spec)
}

fn read_targets(fields: &Fields, spec: &mut PolicySpec, diagnostics: &mut Diagnostics) {
    let single = fields
        .get("targetRef")
        .and_then(|n| read_target_ref(n, diagnostics));
    let many = list(fields, "targetRefs", 16, diagnostics, read_target_ref);
    spec.target_selectors = list(
        fields,
        "targetSelectors",
        16,
        diagnostics,
        read_target_selector,
    );
    let has_single = fields.has("targetRef");
    let has_many = fields.has("targetRefs");
    if has_single == has_many && spec.target_selectors.is_empty() {
        diagnostics.error(fields.node, "either targetRef or targetRefs must be used");
    }
    spec.uses_deprecated_target_ref = has_single;
    spec.target_refs = match single {
        Some(target) => vec![target],
        None => many,
    };
}

fn read_target_ref(node: &Node, diagnostics: &mut Diagnostics) -> Option<TargetRef> {
    let fields = node.fields(diagnostics, &["group", "kind", "name", "sectionName"])?;
    let group = fields
        .require("group", diagnostics)
        .and_then(|n| n.str(diagnostics));
    if let Some(group) = group
        && group != GATEWAY_GROUP
    {
        diagnostics.error(
            fields.node,
            format!("group must be {GATEWAY_GROUP}, found `{group}`"),
        );
    }
    let kind = fields
        .require("kind", diagnostics)
        .and_then(|n| n.one_of(diagnostics, TARGET_KINDS));
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 253));
    let section_name = fields
        .get("sectionName")
        .and_then(|n| section_name(n, diagnostics));
    Some(TargetRef {
        kind: kind?.to_string(),
        name: name?,
        section_name,
    })
}

fn read_target_selector(node: &Node, diagnostics: &mut Diagnostics) -> Option<TargetSelector> {
    let fields = node.fields(
        diagnostics,
        &[
            "group",
            "kind",
            "matchLabels",
            "matchExpressions",
            "namespaces",
        ],
    )?;
    if let Some(group) = fields.get("group").and_then(|n| n.str(diagnostics))
        && group != GATEWAY_GROUP
    {
        diagnostics.error(fields.node, "group must be gateway.networking.k8s.io");
    }
    let kind = fields
        .require("kind", diagnostics)
        .and_then(|n| n.one_of(diagnostics, TARGET_KINDS));
    let mut match_labels = BTreeMap::new();
    if let Some(entries) = fields
        .get("matchLabels")
        .and_then(|n| n.entries(diagnostics))
    {
        for (key, value) in entries {
            if let Some(text) = value.str(diagnostics) {
                match_labels.insert(key.clone(), text.to_string());
            }
        }
    }
    let match_expressions = list(
        &fields,
        "matchExpressions",
        64,
        diagnostics,
        read_expression,
    );
    let mut other_namespaces = None;
    if let Some(namespaces) = fields.get("namespaces")
        && let Some(namespaces) = namespaces.fields(diagnostics, &["from", "selector"])
    {
        let from = namespaces
            .require("from", diagnostics)
            .and_then(|n| n.one_of(diagnostics, &["Same", "All", "Selector"]));
        other_namespaces = from.filter(|from| *from != "Same").map(str::to_string);
    }
    Some(TargetSelector {
        kind: kind?.to_string(),
        match_labels,
        match_expressions,
        other_namespaces,
    })
}

fn read_expression(node: &Node, diagnostics: &mut Diagnostics) -> Option<LabelExpression> {
    let fields = node.fields(diagnostics, &["key", "operator", "values"])?;
    let key = fields
        .require("key", diagnostics)
        .and_then(|n| n.string(diagnostics));
    let operator = fields
        .require("operator", diagnostics)
        .and_then(|n| n.one_of(diagnostics, &["In", "NotIn", "Exists", "DoesNotExist"]));
    let values = list(&fields, "values", 256, diagnostics, |n, d| n.string(d));
    Some(LabelExpression {
        key: key?,
        operator: operator?.to_string(),
        values,
    })
}

fn read_rate_limit(node: &Node, diagnostics: &mut Diagnostics) -> Option<RateLimitSpec> {
    let fields = node.fields(diagnostics, &["type", "local", "global"])?;
    let kind = fields
        .get("type")
        .and_then(|n| n.one_of(diagnostics, &["Global", "Local"]))
        .map(str::to_string);
    let local = fields.get("local").and_then(|local| {
        let local_fields = local.fields(diagnostics, &["rules"])?;
        let rules = list(&local_fields, "rules", 16, diagnostics, |n, d| {
            read_rate_limit_rule(n, false, d)
        });
        Some(rules)
    });
    let global = fields.get("global").and_then(|global| {
        let global_fields = global.fields(diagnostics, &["rules"])?;
        global_fields.require("rules", diagnostics)?;
        let rules = list(&global_fields, "rules", 256, diagnostics, |n, d| {
            read_rate_limit_rule(n, true, d)
        });
        Some(rules)
    });
    Some(RateLimitSpec {
        kind,
        local,
        global,
    })
}

fn read_rate_limit_rule(
    node: &Node,
    global: bool,
    diagnostics: &mut Diagnostics,
) -> Option<RateLimitRule> {
    let fields = node.fields(
        diagnostics,
        &[
            "clientSelectors",
            "limit",
            "cost",
            "shared",
            "shadowMode",
            "xRateLimitHeaders",
        ],
    )?;
    let selectors = list(
        &fields,
        "clientSelectors",
        8,
        diagnostics,
        read_client_selector,
    );
    let limit = fields.require("limit", diagnostics)?;
    let limit_fields = limit.fields(diagnostics, &["requests", "unit", "fromMetadata"])?;
    let requests = limit_fields
        .require("requests", diagnostics)
        .and_then(|n| n.u32(diagnostics));
    let unit = limit_fields
        .require("unit", diagnostics)
        .and_then(|n| read_unit(n, diagnostics));
    let from_metadata = limit_fields
        .get("fromMetadata")
        .and_then(|n| read_metadata_key(n, diagnostics));
    if !global && let Some(node) = limit_fields.get("fromMetadata") {
        diagnostics.error(
            node,
            "limit fromMetadata is not supported for Local Rate Limits",
        );
    }
    let mut request_cost = None;
    let mut response_cost = None;
    if let Some(cost) = fields.get("cost")
        && let Some(cost_fields) = cost.fields(diagnostics, &["request", "response"])
    {
        if !cost_fields.has("request") && !cost_fields.has("response") {
            diagnostics.error(
                cost,
                "at least one of request or response must be specified",
            );
        }
        request_cost = cost_fields
            .get("request")
            .and_then(|n| read_cost(n, diagnostics));
        response_cost = cost_fields
            .get("response")
            .and_then(|n| read_cost(n, diagnostics));
        if !global && let Some(node) = cost_fields.get("response") {
            diagnostics.error(node, "response cost is not supported for Local Rate Limits");
        }
    }
    let shared = optional(&fields, "shared", diagnostics, |n, d| n.bool(d)).flatten();
    let shadow_mode = optional(&fields, "shadowMode", diagnostics, |n, d| n.bool(d))
        .flatten()
        .unwrap_or(false);
    // Response headers only; the simulation does not model them.
    fields
        .get("xRateLimitHeaders")
        .and_then(|n| n.one_of(diagnostics, &["Off", "DraftVersion03"]));
    Some(RateLimitRule {
        selectors,
        requests: requests?,
        unit: unit?,
        from_metadata,
        request_cost,
        response_cost,
        shared,
        shadow_mode,
    })
}

pub fn read_unit(node: &Node, diagnostics: &mut Diagnostics) -> Option<RateLimitUnit> {
    let name = node.one_of(
        diagnostics,
        &["Second", "Minute", "Hour", "Day", "Week", "Month", "Year"],
    )?;
    Some(match name {
        "Second" => RateLimitUnit::Second,
        "Minute" => RateLimitUnit::Minute,
        "Hour" => RateLimitUnit::Hour,
        "Day" => RateLimitUnit::Day,
        "Week" => RateLimitUnit::Week,
        "Month" => RateLimitUnit::Month,
        _ => RateLimitUnit::Year,
    })
}

fn read_metadata_key(node: &Node, diagnostics: &mut Diagnostics) -> Option<MetadataKey> {
    let fields = node.fields(diagnostics, &["namespace", "key"])?;
    let namespace = fields
        .require("namespace", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, usize::MAX));
    let key = fields
        .require("key", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, usize::MAX));
    Some(MetadataKey {
        namespace: namespace?,
        key: key?,
    })
}

fn read_cost(node: &Node, diagnostics: &mut Diagnostics) -> Option<Cost> {
    let fields = node.fields(diagnostics, &["from", "number", "metadata"])?;
    fields
        .require("from", diagnostics)
        .and_then(|n| n.one_of(diagnostics, &["Number", "Metadata"]))?;
    if fields.has("number") && fields.has("metadata") {
        diagnostics.error(node, "only one of number or metadata can be specified");
        return None;
    }
    if let Some(number) = fields.get("number") {
        return number.u64(diagnostics).map(Cost::Number);
    }
    if let Some(metadata) = fields.get("metadata") {
        return read_metadata_key(metadata, diagnostics).map(Cost::Metadata);
    }
    Some(Cost::Empty)
}

fn read_client_selector(node: &Node, diagnostics: &mut Diagnostics) -> Option<ClientSelector> {
    let fields = node.fields(
        diagnostics,
        &["headers", "methods", "path", "sourceCIDR", "queryParams"],
    )?;
    if !["headers", "methods", "path", "sourceCIDR", "queryParams"]
        .iter()
        .any(|key| fields.has(key))
    {
        diagnostics.error(
            node,
            "at least one of headers, methods, path, sourceCIDR or queryParams must be specified",
        );
        return None;
    }
    let headers = list(&fields, "headers", 128, diagnostics, |n, d| {
        read_value_selector(n, 1024, d)
    });
    let methods = list(&fields, "methods", 16, diagnostics, read_method_selector);
    let path = fields
        .get("path")
        .and_then(|n| read_path_selector(n, diagnostics));
    let source_cidr = fields
        .get("sourceCIDR")
        .and_then(|n| read_cidr_selector(n, diagnostics));
    let query_params = list(&fields, "queryParams", 16, diagnostics, |n, d| {
        read_value_selector(n, 1024, d)
    });
    Some(ClientSelector {
        headers,
        methods,
        path,
        source_cidr,
        query_params,
    })
}

fn read_value_selector(
    node: &Node,
    max_value: usize,
    diagnostics: &mut Diagnostics,
) -> Option<ValueSelector> {
    let fields = node.fields(diagnostics, &["name", "type", "value", "invert"])?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 256));
    let kind = match fields.get("type") {
        Some(n) => match n.one_of(diagnostics, &["Exact", "RegularExpression", "Distinct"])? {
            "RegularExpression" => SelectorKind::RegularExpression,
            "Distinct" => SelectorKind::Distinct,
            _ => SelectorKind::Exact,
        },
        None => SelectorKind::Exact,
    };
    let value = match fields.get("value") {
        Some(n) => Some(bounded_string(n, diagnostics, 0, max_value)?),
        None => None,
    };
    let invert = optional(&fields, "invert", diagnostics, |n, d| n.bool(d))
        .flatten()
        .unwrap_or(false);
    Some(ValueSelector {
        name: name?,
        kind,
        value,
        invert,
    })
}

fn read_method_selector(node: &Node, diagnostics: &mut Diagnostics) -> Option<MethodSelector> {
    let fields = node.fields(diagnostics, &["value", "invert"])?;
    let value = fields.require("value", diagnostics).and_then(|n| {
        n.one_of(
            diagnostics,
            &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
            ],
        )
    });
    let invert = optional(&fields, "invert", diagnostics, |n, d| n.bool(d))
        .flatten()
        .unwrap_or(false);
    Some(MethodSelector {
        value: value?.to_string(),
        invert,
    })
}

fn read_path_selector(node: &Node, diagnostics: &mut Diagnostics) -> Option<PathSelector> {
    let fields = node.fields(diagnostics, &["type", "value", "invert"])?;
    let kind = match fields.get("type") {
        Some(n) => n.one_of(diagnostics, &["Exact", "PathPrefix", "RegularExpression"])?,
        None => "PathPrefix",
    };
    let value = match fields.get("value") {
        Some(n) => bounded_string(n, diagnostics, 0, 1024)?,
        None => "/".to_string(),
    };
    let invert = optional(&fields, "invert", diagnostics, |n, d| n.bool(d))
        .flatten()
        .unwrap_or(false);
    Some(PathSelector {
        kind: kind.to_string(),
        value,
        invert,
    })
}

fn read_cidr_selector(node: &Node, diagnostics: &mut Diagnostics) -> Option<CidrSelector> {
    let fields = node.fields(diagnostics, &["type", "value", "invert"])?;
    let distinct = match fields.get("type") {
        Some(n) => n.one_of(diagnostics, &["Exact", "Distinct"])? == "Distinct",
        None => false,
    };
    let value = fields
        .require("value", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 256));
    let invert = optional(&fields, "invert", diagnostics, |n, d| n.bool(d))
        .flatten()
        .unwrap_or(false);
    Some(CidrSelector {
        distinct,
        value: value?,
        invert,
    })
}

fn u32_or(fields: &Fields, key: &str, default: u32, diagnostics: &mut Diagnostics) -> Option<u32> {
    match fields.get(key) {
        Some(n) => n.u32(diagnostics),
        None => Some(default),
    }
}

fn read_circuit_breaker(node: &Node, diagnostics: &mut Diagnostics) -> Option<CircuitBreakerSpec> {
    let fields = node.fields(
        diagnostics,
        &[
            "maxConnections",
            // Before `maxPendingRequests`, so that Envoy's own name
            // `maxRequests` is suggested as this one.
            "maxParallelRequests",
            "maxPendingRequests",
            "maxParallelRetries",
            "maxRequestsPerConnection",
            "perEndpoint",
            "retryBudget",
        ],
    )?;
    let max_connections = u32_or(&fields, "maxConnections", 1024, diagnostics);
    let max_pending_requests = u32_or(&fields, "maxPendingRequests", 1024, diagnostics);
    let max_parallel_requests = u32_or(&fields, "maxParallelRequests", 1024, diagnostics);
    let max_parallel_retries = u32_or(&fields, "maxParallelRetries", 1024, diagnostics);
    let max_requests_per_connection = fields
        .get("maxRequestsPerConnection")
        .and_then(|n| n.u32(diagnostics));
    let per_endpoint_max_connections = fields.get("perEndpoint").and_then(|n| {
        let per_endpoint = n.fields(diagnostics, &["maxConnections"])?;
        u32_or(&per_endpoint, "maxConnections", 1024, diagnostics)
    });
    let retry_budget = fields
        .get("retryBudget")
        .and_then(|n| read_retry_budget(n, diagnostics));
    Some(CircuitBreakerSpec {
        max_connections: max_connections?,
        max_pending_requests: max_pending_requests?,
        max_parallel_requests: max_parallel_requests?,
        max_parallel_retries: max_parallel_retries?,
        max_requests_per_connection,
        per_endpoint_max_connections,
        retry_budget,
    })
}

fn read_retry_budget(node: &Node, diagnostics: &mut Diagnostics) -> Option<RetryBudgetSpec> {
    let fields = node.fields(diagnostics, &["percent", "minRetryConcurrency"])?;
    let percent = fields
        .require("percent", diagnostics)
        .and_then(|n| read_fraction(n, diagnostics));
    let min_retry_concurrency = fields
        .get("minRetryConcurrency")
        .and_then(|n| n.u32(diagnostics));
    Some(RetryBudgetSpec {
        percent: percent?,
        min_retry_concurrency,
    })
}

/// Reads `{numerator, denominator}` (denominator default 100) as a percent.
fn read_fraction(node: &Node, diagnostics: &mut Diagnostics) -> Option<f64> {
    let fields = node.fields(diagnostics, &["numerator", "denominator"])?;
    let numerator = fields
        .require("numerator", diagnostics)
        .and_then(|n| n.int_in(diagnostics, 0, i32::MAX as i64));
    let denominator = match fields.get("denominator") {
        Some(n) => n.int_in(diagnostics, 1, i32::MAX as i64),
        None => Some(100),
    };
    let (numerator, denominator) = (numerator?, denominator?);
    if numerator > denominator {
        diagnostics.error(node, "numerator must be less than or equal to denominator");
        return None;
    }
    Some(numerator as f64 * 100.0 / denominator as f64)
}

const RETRY_TRIGGERS: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

fn read_retry(node: &Node, diagnostics: &mut Diagnostics) -> Option<RetrySpec> {
    let fields = node.fields(
        diagnostics,
        &[
            "numRetries",
            "numAttemptsPerPriority",
            "retryOn",
            "perRetry",
        ],
    )?;
    let num_retries = match fields.get("numRetries") {
        Some(n) => n
            .int_in(diagnostics, 0, i32::MAX as i64)
            .map(|v| v as u32)?,
        None => 2,
    };
    // Priorities are not simulated: every endpoint has the same one.
    fields
        .get("numAttemptsPerPriority")
        .and_then(|n| n.int_in(diagnostics, 0, i32::MAX as i64));
    let retry_on = fields.get("retryOn").and_then(|n| {
        let on = n.fields(diagnostics, &["triggers", "httpStatusCodes"])?;
        let triggers = list(&on, "triggers", 64, diagnostics, |t, d| {
            t.one_of(d, RETRY_TRIGGERS).map(str::to_string)
        });
        let http_status_codes = list(&on, "httpStatusCodes", 64, diagnostics, |c, d| {
            c.int_in(d, 100, 599).map(|v| v as u16)
        });
        Some(RetryOnSpec {
            triggers,
            http_status_codes,
            has_status_codes: on.has("httpStatusCodes"),
        })
    });
    let per_retry = fields.get("perRetry").and_then(|n| {
        let per = n.fields(diagnostics, &["timeout", "backOff"])?;
        let timeout = per
            .get("timeout")
            .and_then(|t| gateway_duration(t, diagnostics));
        let mut spec = PerRetrySpec {
            timeout,
            ..PerRetrySpec::default()
        };
        if let Some(back_off) = per.get("backOff")
            && let Some(back_off) = back_off.fields(diagnostics, &["baseInterval", "maxInterval"])
        {
            spec.base_interval = back_off
                .get("baseInterval")
                .and_then(|t| gateway_duration(t, diagnostics));
            spec.max_interval = back_off
                .get("maxInterval")
                .and_then(|t| gateway_duration(t, diagnostics));
        }
        Some(spec)
    });
    Some(RetrySpec {
        num_retries,
        retry_on,
        per_retry,
    })
}

fn read_timeout(node: &Node, diagnostics: &mut Diagnostics) -> Option<TimeoutSpec> {
    let fields = node.fields(diagnostics, &["tcp", "http"])?;
    let mut spec = TimeoutSpec::default();
    if let Some(tcp) = fields.get("tcp")
        && let Some(tcp) = tcp.fields(diagnostics, &["connectTimeout"])
    {
        spec.connect_timeout = tcp
            .get("connectTimeout")
            .and_then(|n| gateway_duration(n, diagnostics));
    }
    if let Some(http) = fields.get("http")
        && let Some(http) = http.fields(
            diagnostics,
            &[
                "connectionIdleTimeout",
                "maxConnectionDuration",
                "requestTimeout",
                "maxStreamDuration",
                "streamIdleTimeout",
            ],
        )
    {
        let mut read = |key: &str| http.get(key).and_then(|n| gateway_duration(n, diagnostics));
        spec.connection_idle_timeout = read("connectionIdleTimeout");
        spec.max_connection_duration = read("maxConnectionDuration");
        spec.request_timeout = read("requestTimeout");
        spec.max_stream_duration = read("maxStreamDuration");
        spec.stream_idle_timeout = read("streamIdleTimeout");
    }
    Some(spec)
}

fn read_load_balancer(node: &Node, diagnostics: &mut Diagnostics) -> Option<LoadBalancerSpec> {
    let fields = node.fields(
        diagnostics,
        &[
            "type",
            "consistentHash",
            "slowStart",
            "zoneAware",
            "endpointOverride",
            "backendUtilization",
            "dynamicModule",
        ],
    )?;
    let kind = fields.require("type", diagnostics).and_then(|n| {
        n.one_of(
            diagnostics,
            &[
                "ConsistentHash",
                "LeastRequest",
                "Random",
                "RoundRobin",
                "BackendUtilization",
                "DynamicModule",
            ],
        )
    })?;
    for (key, wanted) in [
        ("consistentHash", "ConsistentHash"),
        ("backendUtilization", "BackendUtilization"),
        ("dynamicModule", "DynamicModule"),
    ] {
        if (kind == wanted) != fields.has(key) {
            diagnostics.error(
                node,
                format!("If LoadBalancer type is {wanted}, {key} field needs to be set."),
            );
        }
    }
    let consistent_hash = fields
        .get("consistentHash")
        .and_then(|n| read_consistent_hash(n, diagnostics));
    let slow_start_window = fields.get("slowStart").and_then(|n| {
        let slow = n.fields(diagnostics, &["window"])?;
        slow.require("window", diagnostics)
            .and_then(|w| gateway_duration(w, diagnostics))
    });
    if slow_start_window.is_some() && matches!(kind, "Random" | "ConsistentHash" | "DynamicModule")
    {
        diagnostics.error(
            node,
            "Currently SlowStart is only supported for RoundRobin, LeastRequest and BackendUtilization load balancers.",
        );
    }
    Some(LoadBalancerSpec {
        kind: kind.to_string(),
        consistent_hash,
        ignored: ["slowStart", "zoneAware", "endpointOverride"]
            .iter()
            .filter(|key| fields.has(key))
            .map(|key| format!("loadBalancer.{key}"))
            .collect(),
    })
}

fn read_consistent_hash(node: &Node, diagnostics: &mut Diagnostics) -> Option<ConsistentHashSpec> {
    let fields = node.fields(
        diagnostics,
        &[
            "type",
            "header",
            "headers",
            "cookie",
            "queryParams",
            "tableSize",
        ],
    )?;
    let kind = fields.require("type", diagnostics).and_then(|n| {
        n.one_of(
            diagnostics,
            &["SourceIP", "Header", "Headers", "Cookie", "QueryParams"],
        )
    })?;
    for (key, wanted) in [
        ("header", "Header"),
        ("headers", "Headers"),
        ("cookie", "Cookie"),
        ("queryParams", "QueryParams"),
    ] {
        if (kind == wanted) != fields.has(key) {
            diagnostics.error(
                node,
                format!("If consistent hash type is {wanted}, the {key} field must be set."),
            );
        }
    }
    let named = |n: &Node, d: &mut Diagnostics| {
        let f = n.fields(d, &["name"])?;
        f.require("name", d).and_then(|v| v.string(d))
    };
    let mut header_names = list(&fields, "headers", 64, diagnostics, named);
    if let Some(header) = fields.get("header")
        && let Some(name) = named(header, diagnostics)
    {
        header_names.push(name);
    }
    let query_params = list(&fields, "queryParams", 64, diagnostics, named);
    let cookie_name = fields.get("cookie").and_then(|n| {
        let f = n.fields(diagnostics, &["name", "ttl", "attributes"])?;
        f.require("name", diagnostics)
            .and_then(|v| v.string(diagnostics))
    });
    let table_size = match fields.get("tableSize") {
        Some(n) => n.int_in(diagnostics, 2, 5_000_011).map(|v| v as u64)?,
        None => 65_537,
    };
    Some(ConsistentHashSpec {
        kind: kind.to_string(),
        header_names,
        cookie_name,
        query_params,
        table_size,
    })
}

fn read_health_check(node: &Node, diagnostics: &mut Diagnostics) -> Option<HealthCheckSpec> {
    let fields = node.fields(diagnostics, &["active", "passive", "panicThreshold"])?;
    let passive = fields
        .get("passive")
        .and_then(|n| read_passive(n, diagnostics));
    let panic_threshold = fields
        .get("panicThreshold")
        .and_then(|n| n.int_in(diagnostics, 0, 100))
        .map(|v| v as u32);
    Some(HealthCheckSpec {
        passive,
        panic_threshold,
    })
}

fn read_passive(node: &Node, diagnostics: &mut Diagnostics) -> Option<PassiveHealthCheckSpec> {
    let fields = node.fields(
        diagnostics,
        &[
            "interval",
            "baseEjectionTime",
            "consecutive5XxErrors",
            "consecutiveGatewayErrors",
            "consecutiveLocalOriginFailures",
            "splitExternalLocalOriginErrors",
            "maxEjectionPercent",
            "failurePercentageThreshold",
            "alwaysEjectOneEndpoint",
        ],
    )?;
    let duration_or = |key: &str, default: u64, diagnostics: &mut Diagnostics| match fields.get(key)
    {
        Some(n) => gateway_duration(n, diagnostics),
        None => Some(SimDuration::from_secs(default)),
    };
    let interval = duration_or("interval", 3, diagnostics);
    let base_ejection_time = duration_or("baseEjectionTime", 30, diagnostics);
    let int32 = |n: &Node, d: &mut Diagnostics| n.int_in(d, 0, i32::MAX as i64).map(|v| v as u32);
    let consecutive_5xx_errors = match fields.get("consecutive5XxErrors") {
        Some(n) => int32(n, diagnostics),
        None => Some(5),
    };
    let consecutive_gateway_errors = fields
        .get("consecutiveGatewayErrors")
        .and_then(|n| int32(n, diagnostics));
    let consecutive_local_origin_failures = match fields.get("consecutiveLocalOriginFailures") {
        Some(n) => int32(n, diagnostics),
        None => Some(5),
    };
    let flag = |key: &str, diagnostics: &mut Diagnostics| {
        fields
            .get(key)
            .and_then(|n| n.bool(diagnostics))
            .unwrap_or(false)
    };
    let split_external_local_origin_errors = flag("splitExternalLocalOriginErrors", diagnostics);
    let always_eject_one_endpoint = flag("alwaysEjectOneEndpoint", diagnostics);
    let max_ejection_percent = match fields.get("maxEjectionPercent") {
        Some(n) => n.int_in(diagnostics, 0, 100).map(|v| v as u32),
        None => Some(10),
    };
    let failure_percentage_threshold = fields
        .get("failurePercentageThreshold")
        .and_then(|n| n.int_in(diagnostics, 0, 100))
        .map(|v| v as u32);
    Some(PassiveHealthCheckSpec {
        interval: interval?,
        base_ejection_time: base_ejection_time?,
        consecutive_5xx_errors: consecutive_5xx_errors?,
        consecutive_gateway_errors,
        consecutive_local_origin_failures: consecutive_local_origin_failures?,
        split_external_local_origin_errors,
        max_ejection_percent: max_ejection_percent?,
        failure_percentage_threshold,
        always_eject_one_endpoint,
    })
}

fn read_fault_injection(node: &Node, diagnostics: &mut Diagnostics) -> Option<FaultInjectionSpec> {
    let fields = node.fields(diagnostics, &["delay", "abort"])?;
    if !fields.has("delay") && !fields.has("abort") {
        diagnostics.error(node, "Delay and abort faults are set at least one.");
        return None;
    }
    let percentage = |fields: &Fields, diagnostics: &mut Diagnostics| match fields.get("percentage")
    {
        Some(n) => n.f64(diagnostics),
        None => Some(100.0),
    };
    let delay = fields.get("delay").and_then(|n| {
        let delay = n.fields(diagnostics, &["fixedDelay", "percentage"])?;
        let fixed = delay
            .require("fixedDelay", diagnostics)
            .and_then(|d| gateway_duration(d, diagnostics));
        let percent = percentage(&delay, diagnostics);
        Some((fixed?, percent?))
    });
    let abort = fields.get("abort").and_then(|n| {
        let abort = n.fields(diagnostics, &["httpStatus", "grpcStatus", "percentage"])?;
        let http_status = abort
            .get("httpStatus")
            .and_then(|s| s.int_in(diagnostics, 200, 600))
            .map(|v| v as u16);
        abort
            .get("grpcStatus")
            .and_then(|s| s.int_in(diagnostics, 0, 16));
        if abort.has("httpStatus") == abort.has("grpcStatus") {
            diagnostics.error(n, "exactly one of httpStatus or grpcStatus must be set");
        }
        let percent = percentage(&abort, diagnostics);
        Some(FaultAbortSpec {
            http_status,
            percentage: percent?,
        })
    });
    Some(FaultInjectionSpec { delay, abort })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_str;
    use std::path::Path;

    fn spec(text: &str) -> (Option<PolicySpec>, String) {
        let root = parse_str(text, Path::new("p.yaml")).unwrap().remove(0).root;
        let mut diagnostics = Diagnostics::default();
        let spec = read_spec(&root, &mut diagnostics);
        (spec, diagnostics.to_string())
    }

    const TARGET: &str =
        "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n";

    #[test]
    fn selector_defaults_follow_crd() {
        let (spec, errors) = spec(&format!(
            "{TARGET}rateLimit:\n  local:\n    rules:\n    - clientSelectors:\n      - headers: [{{name: x-user-id, value: \"*\"}}]\n        path: {{}}\n      limit: {{requests: 3, unit: Week}}\n"
        ));
        assert_eq!(errors, "");
        let rules = spec.unwrap().rate_limit.unwrap().local.unwrap();
        let header = &rules[0].selectors[0].headers[0];
        assert_eq!(header.kind, SelectorKind::Exact);
        assert_eq!(header.value.as_deref(), Some("*"));
        let path = rules[0].selectors[0].path.as_ref().unwrap();
        assert_eq!(
            (path.kind.as_str(), path.value.as_str()),
            ("PathPrefix", "/")
        );
        assert_eq!(rules[0].unit, RateLimitUnit::Week);
    }

    #[test]
    fn near_misses_and_ranges_are_reported() {
        let (_, errors) = spec(&format!(
            "{TARGET}circuitBreaker: {{maxRequests: 5, maxConnections: -1}}\nretry:\n  perRetry:\n    backoff: {{baseInterval: 1s}}\n"
        ));
        assert!(
            errors.contains("did you mean `maxParallelRequests`?"),
            "{errors}"
        );
        assert!(
            errors.contains(
                "circuitBreaker.maxConnections: expected an integer from 0 to 4294967295"
            ),
            "{errors}"
        );
        assert!(errors.contains("did you mean `backOff`?"), "{errors}");
    }

    #[test]
    fn crd_rules_reject_local_response_cost() {
        let (_, errors) = spec(&format!(
            "{TARGET}rateLimit:\n  local:\n    rules:\n    - limit: {{requests: 1, unit: Second}}\n      cost: {{response: {{from: Number, number: 1}}}}\n"
        ));
        assert!(
            errors.contains("response cost is not supported for Local Rate Limits"),
            "{errors}"
        );
    }

    #[test]
    fn targets_need_one_form() {
        let (_, errors) = spec("circuitBreaker: {}\n");
        assert!(
            errors.contains("either targetRef or targetRefs must be used"),
            "{errors}"
        );
        let (_, errors) = spec(&format!("{TARGET}mergeType: StrategicMerge\n"));
        assert!(
            errors.contains("mergeType can only be used with xRoute targets"),
            "{errors}"
        );
    }

    #[test]
    fn passive_health_check_defaults() {
        let (spec, errors) = spec(&format!("{TARGET}healthCheck:\n  passive: {{}}\n"));
        assert_eq!(errors, "");
        let passive = spec.unwrap().health_check.unwrap().passive.unwrap();
        assert_eq!(passive.interval, SimDuration::from_secs(3));
        assert_eq!(passive.base_ejection_time, SimDuration::from_secs(30));
        assert_eq!(passive.consecutive_5xx_errors, 5);
        assert_eq!(passive.max_ejection_percent, 10);
    }
}
