//! The resolved gateway model printed back as Envoy 1.40 configuration.
//!
//! [`route_fragments`] turns one route of a [`GatewayModel`] and the
//! cluster it forwards to into the Envoy fragments Envoy Gateway v1.9 would
//! program: the route's `typed_per_filter_config` for the local rate limit
//! filter, its `retry_policy`, `timeout` and `hash_policy`, the fault
//! filter's body, and the cluster's `circuit_breakers`, load balancer and
//! `outlier_detection`. Each fragment is keyed by where it goes in an
//! Envoy bootstrap, so a recording harness can place it in its own
//! skeleton and real Envoy runs the same policy the simulation runs.
//!
//! [`recording_case`] adds what the harness also needs from a scenario:
//! the endpoints' behaviour and the clients as workload steps. Scenarios
//! that the harness cannot reproduce (concurrent client definitions,
//! random service times, several routes) are rejected with the reason.
//! The mapping is documented in `docs/fidelity.md`.

use serde_json::{Map, Value, json};

use crate::dist::Dist;
use crate::gateway::{
    Cluster, FaultInjection, GatewayModel, HashOn, HeaderMatcher, LoadBalancer, LocalRateLimit,
    OutlierDetection, RateLimitAction, RetryOn, RetryPolicy, RouteAction, StringMatch,
    TokenBucketSpec,
};
use crate::scenario::{BackendSpec, ClientKind, EndpointFailure, OpenArrival, Scenario};
use crate::time::SimDuration;

/// Error: a model or scenario has no Envoy translation here, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Untranslatable(pub String);

fn untranslatable<T>(message: impl Into<String>) -> Result<T, Untranslatable> {
    Err(Untranslatable(message.into()))
}

/// Formats a duration as a protobuf JSON `Duration`, such as `0.025s`.
pub fn duration(span: SimDuration) -> String {
    let nanos = span.as_nanos();
    let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    if frac == 0 {
        return format!("{secs}s");
    }
    let digits = format!("{frac:09}");
    format!("{secs}.{}s", digits.trim_end_matches('0'))
}

/// Builds the Envoy fragments of route `route_index` and of its cluster,
/// keyed by placement: `route_local_ratelimit`, `retry_policy`, `route_timeout`,
/// `hash_policy`, `fault`, `circuit_breakers`, `lb_policy`,
/// `least_request_lb_config`, `maglev_lb_config`, `common_lb_config`,
/// `outlier_detection` and `connect_timeout`. Absent features have no key.
pub fn route_fragments(
    model: &GatewayModel,
    route_index: usize,
) -> Result<Map<String, Value>, Untranslatable> {
    let Some(route) = model.routes.get(route_index) else {
        return untranslatable(format!("route {route_index} does not exist"));
    };
    let cluster = match route.action {
        RouteAction::Forward { cluster } => match model.clusters.get(cluster) {
            Some(cluster) => cluster,
            None => return untranslatable(format!("route {} has no cluster", route.name)),
        },
        RouteAction::DirectResponse { status, .. } => {
            return untranslatable(format!(
                "route {} answers {status} directly; there is no cluster to configure",
                route.name
            ));
        }
    };
    if route.global_rate_limit.is_some() || !route.shared_global_rate_limits.is_empty() {
        return untranslatable(format!(
            "route {} has global rate limits, which need a rate limit service",
            route.name
        ));
    }
    let mut out = Map::new();
    if let Some(local) = &route.local_rate_limit {
        out.insert("route_local_ratelimit".into(), local_rate_limit(local)?);
    }
    if let Some(retry) = &route.retry {
        out.insert("retry_policy".into(), retry_policy(retry));
    }
    let timeout = route.timeouts.request.unwrap_or(SimDuration::ZERO);
    out.insert("route_timeout".into(), json!(duration(timeout)));
    if let Some(fault) = &route.fault {
        out.insert("fault".into(), fault_filter(fault));
    }
    cluster_fragments(cluster, &mut out);
    if let LoadBalancer::ConsistentHash { hash_on, .. } = &cluster.load_balancer {
        out.insert("hash_policy".into(), hash_policy(hash_on));
    }
    Ok(out)
}

fn bucket(spec: &TokenBucketSpec) -> Value {
    json!({
        "max_tokens": spec.max_tokens,
        "tokens_per_fill": spec.tokens_per_fill,
        "fill_interval": duration(spec.fill_interval),
    })
}

fn percent_100(runtime_key: &str) -> Value {
    json!({
        "runtime_key": runtime_key,
        "default_value": {"numerator": 100, "denominator": "HUNDRED"},
    })
}

/// Builds the per-route `LocalRateLimit` as Envoy Gateway v1.9 writes it.
fn local_rate_limit(config: &LocalRateLimit) -> Result<Value, Untranslatable> {
    let mut body = Map::new();
    body.insert("stat_prefix".into(), json!("http_local_rate_limiter"));
    body.insert("token_bucket".into(), bucket(&config.default_bucket));
    body.insert(
        "filter_enabled".into(),
        percent_100("local_rate_limit_enabled"),
    );
    body.insert(
        "filter_enforced".into(),
        percent_100("local_rate_limit_enforced"),
    );
    body.insert(
        "enable_x_ratelimit_headers".into(),
        json!("DRAFT_VERSION_03"),
    );
    if !config.descriptors.is_empty() {
        let descriptors: Vec<Value> = config
            .descriptors
            .iter()
            .map(|descriptor| {
                let entries: Vec<Value> = descriptor
                    .entries
                    .iter()
                    .map(|entry| {
                        let key = envoy_entry_key(config, &entry.key);
                        match &entry.value {
                            Some(value) => json!({"key": key, "value": value}),
                            None => json!({"key": key}),
                        }
                    })
                    .collect();
                json!({"entries": entries, "token_bucket": bucket(&descriptor.bucket)})
            })
            .collect();
        body.insert("descriptors".into(), Value::Array(descriptors));
    }
    body.insert(
        "always_consume_default_token_bucket".into(),
        json!(config.always_consume_default_token_bucket),
    );
    if !config.rate_limits.is_empty() {
        let mut rate_limits = Vec::new();
        for entry in &config.rate_limits {
            let actions = entry
                .actions
                .iter()
                .map(action)
                .collect::<Result<Vec<_>, _>>()?;
            rate_limits.push(json!({"actions": actions}));
        }
        body.insert("rate_limits".into(), Value::Array(rate_limits));
    }
    // Envoy's per-route default is 20, and Envoy Gateway v1.9 leaves it unset.
    if config.max_dynamic_descriptors != 20 {
        body.insert(
            "max_dynamic_descriptors".into(),
            json!(config.max_dynamic_descriptors),
        );
    }
    if config.status != 429 {
        body.insert("status".into(), json!({"code": config.status}));
    }
    Ok(Value::Object(body))
}

/// Returns the key Envoy gives an entry. The address actions take no
/// descriptor key in Envoy 1.40, so their entries are always
/// `masked_remote_address` and `remote_address`, whatever key the model
/// uses for them.
fn envoy_entry_key(config: &LocalRateLimit, key: &str) -> String {
    for entry in &config.rate_limits {
        for action in &entry.actions {
            match action {
                RateLimitAction::RemoteAddressMatch { descriptor_key, .. }
                    if descriptor_key == key =>
                {
                    return "masked_remote_address".to_string();
                }
                RateLimitAction::RemoteAddress { descriptor_key } if descriptor_key == key => {
                    return "remote_address".to_string();
                }
                _ => {}
            }
        }
    }
    key.to_string()
}

fn string_match(matcher: &StringMatch) -> Value {
    match matcher {
        StringMatch::Exact(value) => json!({"exact": value}),
        StringMatch::Prefix(value) => json!({"prefix": value}),
        StringMatch::Regex(regex) => json!({"safe_regex": {"regex": regex.source}}),
    }
}

fn header_matcher(header: &HeaderMatcher) -> Value {
    let mut out = json!({"name": header.name, "string_match": string_match(&header.matcher)});
    if header.invert {
        out["invert_match"] = json!(true);
    }
    out
}

fn action(action: &RateLimitAction) -> Result<Value, Untranslatable> {
    Ok(match action {
        RateLimitAction::RequestHeaders {
            header_name,
            descriptor_key,
        } => json!({"request_headers": {
            "header_name": header_name,
            "descriptor_key": descriptor_key,
        }}),
        RateLimitAction::HeaderValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            headers,
        } => json!({"header_value_match": {
            "descriptor_key": descriptor_key,
            "descriptor_value": descriptor_value,
            "expect_match": expect_match,
            "headers": headers.iter().map(header_matcher).collect::<Vec<_>>(),
        }}),
        RateLimitAction::RemoteAddressMatch { ranges, invert, .. } => {
            // `masked_remote_address` masks the client address to the
            // range's length. The descriptor entry's value is the range, so
            // only clients inside it produce a matching entry.
            if *invert || ranges.len() != 1 {
                return untranslatable(
                    "an inverted or multi-range source CIDR selector has no single Envoy action",
                );
            }
            let range = ranges[0];
            let mask = if range.address.is_ipv4() {
                json!({"v4_prefix_mask_len": range.prefix_len})
            } else {
                json!({"v6_prefix_mask_len": range.prefix_len})
            };
            json!({ "masked_remote_address": mask })
        }
        RateLimitAction::RemoteAddress { .. } => json!({"remote_address": {}}),
        RateLimitAction::QueryParameterValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            params,
        } => json!({"query_parameter_value_match": {
            "descriptor_key": descriptor_key,
            "descriptor_value": descriptor_value,
            "expect_match": expect_match,
            "query_parameters": params
                .iter()
                .map(|p| json!({"name": p.name, "string_match": string_match(&p.matcher)}))
                .collect::<Vec<_>>(),
        }}),
        RateLimitAction::QueryParameters {
            query_parameter_name,
            descriptor_key,
        } => json!({"query_parameters": {
            "query_parameter_name": query_parameter_name,
            "descriptor_key": descriptor_key,
        }}),
        RateLimitAction::GenericKey {
            descriptor_key,
            descriptor_value,
        } => json!({"generic_key": {
            "descriptor_key": descriptor_key,
            "descriptor_value": descriptor_value,
        }}),
    })
}

/// Envoy's `retry_on` string for the flags that are set, in a fixed order.
pub fn retry_on(on: &RetryOn) -> String {
    let flags = [
        (on.server_error_5xx, "5xx"),
        (on.gateway_error, "gateway-error"),
        (on.reset, "reset"),
        (on.reset_before_request, "reset-before-request"),
        (on.connect_failure, "connect-failure"),
        (on.retriable_4xx, "retriable-4xx"),
        (on.refused_stream, "refused-stream"),
        (on.retriable_status_codes, "retriable-status-codes"),
        (on.cancelled, "cancelled"),
        (on.deadline_exceeded, "deadline-exceeded"),
        (on.internal, "internal"),
        (on.resource_exhausted, "resource-exhausted"),
        (on.unavailable, "unavailable"),
        (on.envoy_ratelimited, "envoy-ratelimited"),
    ];
    let names: Vec<&str> = flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
    names.join(",")
}

/// Builds the route's `retry_policy`, with the previous-hosts predicate
/// that Envoy Gateway v1.9 adds to every retry policy.
fn retry_policy(policy: &RetryPolicy) -> Value {
    let mut out = json!({
        "retry_on": retry_on(&policy.retry_on),
        "num_retries": policy.num_retries,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
            },
        }],
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {
            "base_interval": duration(policy.base_interval),
            "max_interval": duration(policy.max_interval),
        },
    });
    if !policy.retriable_status_codes.is_empty() {
        out["retriable_status_codes"] = json!(policy.retriable_status_codes);
    }
    if let Some(per_try) = policy.per_try_timeout {
        out["per_try_timeout"] = json!(duration(per_try));
    }
    out
}

/// Converts a percentage to Envoy's `FractionalPercent` per million, so
/// fractions of a percent survive.
fn fractional_percent(percent: f64) -> Value {
    let per_million = (percent.clamp(0.0, 100.0) * 10_000.0).round() as u64;
    json!({"numerator": per_million, "denominator": "MILLION"})
}

fn fault_filter(fault: &FaultInjection) -> Value {
    let mut out = Map::new();
    if let Some(delay) = &fault.delay {
        out.insert(
            "delay".into(),
            json!({
                "fixed_delay": duration(delay.fixed_delay),
                "percentage": fractional_percent(delay.percentage),
            }),
        );
    }
    if let Some(abort) = &fault.abort {
        out.insert(
            "abort".into(),
            json!({
                "http_status": abort.http_status,
                "percentage": fractional_percent(abort.percentage),
            }),
        );
    }
    Value::Object(out)
}

fn cluster_fragments(cluster: &Cluster, out: &mut Map<String, Value>) {
    let breaker = &cluster.circuit_breaker;
    let mut thresholds = json!({
        "priority": "DEFAULT",
        "max_connections": breaker.max_connections,
        "max_pending_requests": breaker.max_pending_requests,
        "max_requests": breaker.max_requests,
        "max_retries": breaker.max_retries,
    });
    if let Some(budget) = &breaker.retry_budget {
        thresholds["retry_budget"] = json!({
            "budget_percent": {"value": budget.budget_percent},
            "min_retry_concurrency": budget.min_retry_concurrency,
        });
    }
    let mut breakers = json!({ "thresholds": [thresholds] });
    if let Some(per_host) = breaker.per_host_max_connections {
        breakers["per_host_thresholds"] = json!([{"max_connections": per_host}]);
    }
    out.insert("circuit_breakers".into(), breakers);
    if let Some(limit) = breaker.max_requests_per_connection {
        out.insert(
            "cluster_extra".into(),
            json!({"typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "common_http_protocol_options": {"max_requests_per_connection": limit},
                    "explicit_http_config": {"http_protocol_options": {}},
                },
            }}),
        );
    }
    out.insert(
        "connect_timeout".into(),
        json!(duration(cluster.connect_timeout)),
    );
    match &cluster.load_balancer {
        LoadBalancer::LeastRequest { choice_count } => {
            out.insert("lb_policy".into(), json!("LEAST_REQUEST"));
            out.insert(
                "least_request_lb_config".into(),
                json!({"choice_count": choice_count}),
            );
        }
        LoadBalancer::RoundRobin => {
            out.insert("lb_policy".into(), json!("ROUND_ROBIN"));
        }
        LoadBalancer::Random => {
            out.insert("lb_policy".into(), json!("RANDOM"));
        }
        LoadBalancer::ConsistentHash { table_size, .. } => {
            out.insert("lb_policy".into(), json!("MAGLEV"));
            out.insert("maglev_lb_config".into(), json!({"table_size": table_size}));
        }
    }
    if cluster.healthy_panic_threshold != 50.0 {
        out.insert(
            "common_lb_config".into(),
            json!({"healthy_panic_threshold": {"value": cluster.healthy_panic_threshold}}),
        );
    }
    if let Some(detection) = &cluster.outlier_detection {
        out.insert("outlier_detection".into(), outlier_detection(detection));
    }
}

fn hash_policy(hash_on: &HashOn) -> Value {
    match hash_on {
        HashOn::SourceIp => json!([{"connection_properties": {"source_ip": true}}]),
        HashOn::Headers(names) => Value::Array(
            names
                .iter()
                .map(|name| json!({"header": {"header_name": name}}))
                .collect(),
        ),
        HashOn::Cookie(name) => json!([{"cookie": {"name": name}}]),
        HashOn::QueryParams(names) => Value::Array(
            names
                .iter()
                .map(|name| json!({"query_parameter": {"name": name}}))
                .collect(),
        ),
    }
}

fn outlier_detection(detection: &OutlierDetection) -> Value {
    let mut out = json!({
        "interval": duration(detection.interval),
        "base_ejection_time": duration(detection.base_ejection_time),
        "max_ejection_time": duration(detection.max_ejection_time),
        "max_ejection_percent": detection.max_ejection_percent,
        "enforcing_consecutive_gateway_failure": detection.enforcing_consecutive_gateway_failure,
        "split_external_local_origin_errors": detection.split_external_local_origin_errors,
        "enforcing_success_rate": detection.enforcing_success_rate,
        "success_rate_minimum_hosts": detection.success_rate_minimum_hosts,
        "success_rate_request_volume": detection.success_rate_request_volume,
        "success_rate_stdev_factor": detection.success_rate_stdev_factor,
        "enforcing_failure_percentage": detection.enforcing_failure_percentage,
        "failure_percentage_minimum_hosts": detection.failure_percentage_minimum_hosts,
        "failure_percentage_request_volume": detection.failure_percentage_request_volume,
    });
    if detection.always_eject_one_host {
        out["always_eject_one_host"] = json!(true);
    }
    // Envoy counts consecutive 5xx unless told otherwise; a model without a
    // threshold switches that detector off by never enforcing it.
    match detection.consecutive_5xx {
        Some(count) => out["consecutive_5xx"] = json!(count),
        None => out["enforcing_consecutive_5xx"] = json!(0),
    }
    if let Some(count) = detection.consecutive_gateway_failure {
        out["consecutive_gateway_failure"] = json!(count);
    }
    if let Some(count) = detection.consecutive_local_origin_failure {
        out["consecutive_local_origin_failure"] = json!(count);
    }
    if let Some(threshold) = detection.failure_percentage_threshold {
        out["failure_percentage_threshold"] = json!(threshold);
    }
    out
}

/// A scenario as one case of the recording harness: the policy fragments
/// of its first route (see [`route_fragments`]), its backend endpoints and
/// its clients as workload steps.
///
/// Clients become steps in order: each client after the first must start
/// `after` the one before it, and its `start` becomes a pause. A
/// sequential client is a `seq` step, with one new connection per request.
/// A closed client whose workers each send one request is a `burst`, and
/// any other closed client a `closed` step. An open client with constant
/// arrivals is a `rate` step. A `sequential` client with `count` instances
/// of one request each becomes one `seq` step cycling the header that
/// contains `{index}`. A client's `delay` becomes `?delay=` in the path.
pub fn recording_case(scenario: &Scenario) -> Result<Value, Untranslatable> {
    let model = &scenario.gateway;
    if model.routes.len() != 1 {
        return untranslatable(format!(
            "the scenario has {} routes; a recorded case has exactly one",
            model.routes.len()
        ));
    }
    let policy = route_fragments(model, 0)?;
    let mut case = json!({
        "name": scenario.name,
        "title": scenario.description.trim(),
        "concurrency": scenario.envoy.workers,
        "seed": scenario.seed,
        "policy": policy,
    });
    add_endpoints(scenario, &mut case)?;
    case["workload"] = Value::Array(workload_steps(scenario)?);
    Ok(case)
}

fn add_endpoints(scenario: &Scenario, case: &mut Value) -> Result<(), Untranslatable> {
    if scenario.envoy.replicas != 1 {
        return untranslatable("a recorded case runs one Envoy replica");
    }
    let [backend] = scenario.backends.as_slice() else {
        return untranslatable("a recorded case has exactly one backend");
    };
    if backend.overload.is_some() || backend.queue_capacity.is_some() {
        return untranslatable("the recording backend has no overload model or bounded queue");
    }
    case["endpoints"] = json!(backend.endpoints);
    let mut defaults = Map::new();
    match backend.service_time {
        // The recording backend responds at once unless a delay is set, so
        // a service time under 5 ms is left out.
        Dist::Constant(seconds) if seconds < 0.005 => {}
        Dist::Constant(seconds) => {
            defaults.insert("delay_s".into(), json!(seconds));
        }
        _ => {
            return untranslatable(
                "the recording backend serves constant times only; use a constant service_time",
            );
        }
    }
    match backend.errors.as_slice() {
        [] => {}
        [error] => {
            defaults.insert("fail".into(), json!(error.probability));
            defaults.insert("fail_status".into(), json!(error.status));
        }
        _ => return untranslatable("the recording backend has one error status at most"),
    }
    if !defaults.is_empty() {
        case["endpoint_defaults"] = Value::Object(defaults);
    }
    let overrides = schedule_overrides(backend)?;
    if !overrides.is_empty() {
        case["endpoint_overrides"] = Value::Object(overrides);
    }
    Ok(())
}

/// Translates the backend's `schedule` windows into per-endpoint windows
/// of the recording backend, keyed by endpoint index. Windows count from
/// the start of the workload there and from simulated time zero here,
/// which is the same instant.
fn schedule_overrides(backend: &BackendSpec) -> Result<Map<String, Value>, Untranslatable> {
    let mut overrides: Map<String, Value> = Map::new();
    for window in &backend.schedule {
        if window.slowdown_factor != 1.0 || window.retry_after.is_some() {
            return untranslatable(
                "the recording backend has no slowdown factor or retry-after in a window",
            );
        }
        let mut entry = Map::new();
        entry.insert("from_s".into(), json!(window.from.as_secs_f64()));
        if let Some(to) = window.to {
            entry.insert("to_s".into(), json!(to.as_secs_f64()));
        }
        if let Some(status) = window.status {
            if window.error_probability >= 1.0 {
                entry.insert("status".into(), json!(status));
            } else {
                entry.insert("fail".into(), json!(window.error_probability));
                entry.insert("fail_status".into(), json!(status));
            }
        }
        if !window.add_delay.is_zero() {
            entry.insert("add_delay_s".into(), json!(window.add_delay.as_secs_f64()));
        }
        match window.failure {
            None => {}
            Some(EndpointFailure::Refuse) => {
                entry.insert("refuse".into(), json!(true));
            }
            Some(EndpointFailure::Reset) => {
                entry.insert("reset".into(), json!(true));
            }
            Some(EndpointFailure::NoAnswer) => {
                return untranslatable("the recording backend cannot stop answering");
            }
        }
        let endpoints: Vec<u32> = match &window.endpoints {
            Some(list) => list.clone(),
            None => (0..backend.endpoints).collect(),
        };
        for endpoint in endpoints {
            let spec = overrides
                .entry(endpoint.to_string())
                .or_insert_with(|| json!({"schedule": []}));
            if let Some(Value::Array(schedule)) = spec.get_mut("schedule") {
                schedule.push(Value::Object(entry.clone()));
            }
        }
    }
    Ok(overrides)
}

fn workload_steps(scenario: &Scenario) -> Result<Vec<Value>, Untranslatable> {
    let mut steps = Vec::new();
    for (index, client) in scenario.clients.iter().enumerate() {
        if index > 0 && client.after != Some(index - 1) {
            return untranslatable(format!(
                "client {} must run `after` client {}; recorded steps run one after another",
                client.name,
                scenario.clients[index - 1].name
            ));
        }
        if !client.start.is_zero() {
            steps.push(json!({"kind": "sleep", "s": client.start.as_secs_f64()}));
        }
        let mut path = client.request.path.clone();
        if let Some(delay) = client.request.delay {
            let separator = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{separator}delay={}", delay.as_secs_f64());
        }
        let mut step = match &client.kind {
            ClientKind::Sequential {
                requests,
                think_time,
            } => sequential_step(client, *requests, think_time)?,
            ClientKind::Closed {
                requests,
                concurrency,
                think_time,
            } => {
                if think_time.mean() != 0.0 || client.count != 1 {
                    return untranslatable(format!(
                        "closed client {} needs one instance and no think time",
                        client.name
                    ));
                }
                if *requests == u64::from(*concurrency) {
                    json!({"kind": "burst", "n": requests})
                } else {
                    json!({"kind": "closed", "clients": concurrency, "requests": requests})
                }
            }
            ClientKind::Open {
                rate_per_s,
                arrival: OpenArrival::Constant,
                requests: Some(requests),
                users: None,
                ..
            } if client.count == 1 => {
                json!({"kind": "rate", "rps": rate_per_s, "duration_s": *requests as f64 / rate_per_s})
            }
            _ => {
                return untranslatable(format!(
                    "client {} is a {} client the recording harness cannot replay",
                    client.name,
                    client.kind_name()
                ));
            }
        };
        step["label"] = json!(client.name);
        step["path"] = json!(path);
        let fixed: Map<String, Value> = client
            .request
            .headers
            .iter()
            .filter(|(_, value)| !value.contains("{index}"))
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        if !fixed.is_empty() {
            step["headers"] = Value::Object(fixed);
        }
        steps.push(step);
    }
    Ok(steps)
}

fn sequential_step(
    client: &crate::scenario::ClientSpec,
    requests: u64,
    think_time: &Dist,
) -> Result<Value, Untranslatable> {
    let gap_s = match think_time {
        Dist::Constant(seconds) => *seconds,
        _ => return untranslatable("a recorded sequential client has a constant think_time"),
    };
    let varying: Vec<&(String, String)> = client
        .request
        .headers
        .iter()
        .filter(|(_, value)| value.contains("{index}"))
        .collect();
    let mut step = json!({"kind": "seq", "n": requests});
    match (client.count, varying.as_slice()) {
        (1, _) => {}
        (count, [(name, template)]) if requests == 1 => {
            let values: Vec<String> = (0..count)
                .map(|index| template.replace("{index}", &index.to_string()))
                .collect();
            step = json!({
                "kind": "seq",
                "n": count,
                "vary_header": {"name": name, "values": values},
            });
        }
        _ => {
            return untranslatable(format!(
                "sequential client {} with {} instances must send one request each and vary one \
                 header with {{index}}",
                client.name, client.count
            ));
        }
    }
    if gap_s > 0.0 {
        step["gap_s"] = json!(gap_s);
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_trims_trailing_zeros() {
        assert_eq!(duration(SimDuration::from_secs(60)), "60s");
        assert_eq!(duration(SimDuration::from_millis(25)), "0.025s");
        assert_eq!(duration(SimDuration::from_micros(1_500_000)), "1.5s");
        assert_eq!(duration(SimDuration::ZERO), "0s");
    }

    #[test]
    fn retry_on_lists_flags_in_order() {
        let on = RetryOn {
            server_error_5xx: true,
            connect_failure: true,
            retriable_status_codes: true,
            ..RetryOn::default()
        };
        assert_eq!(retry_on(&on), "5xx,connect-failure,retriable-status-codes");
    }

    #[test]
    fn fractional_percent_keeps_fractions() {
        assert_eq!(
            fractional_percent(12.5),
            json!({"numerator": 125_000, "denominator": "MILLION"})
        );
    }
}
