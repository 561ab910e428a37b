//! A BackendTrafficPolicy's traffic features (rate limits, circuit
//! breaker, retry, timeouts, load balancer, passive health check, fault
//! injection) as Envoy Gateway v1.9 translates them, with its error
//! messages.
//!
//! The result is attached to routes and clusters by `attach.rs`; the
//! rate-limit part stays in its intermediate form until then because it
//! depends on the route's name and listener.

use super::policy::{
    CircuitBreakerSpec, FaultInjectionSpec, HealthCheckSpec, LoadBalancerSpec, PolicySpec,
    RetrySpec, TimeoutSpec,
};
use super::rate_limit::{IrRateLimit, build_rate_limit};
use crate::gateway::{
    CircuitBreaker, FaultAbort, FaultDelay, FaultInjection, HashOn, LoadBalancer, OutlierDetection,
    RetryBudget, RetryOn, RetryPolicy,
};
use crate::time::SimDuration;

/// Envoy's retry back-off base interval when none is configured.
pub const DEFAULT_RETRY_BASE_INTERVAL: SimDuration = SimDuration::from_millis(25);

/// Everything one policy sets on a route and its cluster.
#[derive(Clone, Debug, Default)]
pub struct TrafficFeatures {
    pub rate_limit: Option<IrRateLimit>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub load_balancer: Option<LoadBalancer>,
    pub outlier_detection: Option<OutlierDetection>,
    /// Percent; `None` leaves Envoy's 50.
    pub panic_threshold: Option<f64>,
    pub retry: Option<RetryPolicy>,
    pub timeout: Option<TimeoutSpec>,
    pub fault: Option<FaultInjection>,
}

/// Translates a policy spec. The error, when present, is the message Envoy
/// Gateway puts in the `Accepted=False` condition, with every failing
/// feature prefixed by its name.
pub fn build_features(
    spec: &PolicySpec,
    policy_key: &str,
    global_rate_limit_enabled: bool,
) -> (TrafficFeatures, Option<String>) {
    let mut features = TrafficFeatures::default();
    let mut errors: Vec<String> = Vec::new();
    if let Some(rate_limit) = &spec.rate_limit {
        match build_rate_limit(rate_limit, policy_key, global_rate_limit_enabled) {
            Ok(ir) => features.rate_limit = Some(ir),
            Err(error) => errors.push(format!("RateLimit: {error}")),
        }
    }
    let unmodelled = |feature: &'static str| {
        spec.unmodelled_errors
            .iter()
            .filter(move |(name, _)| *name == feature)
            .map(|(name, message)| format!("{name}: {message}"))
    };
    errors.extend(unmodelled("BandwidthLimit"));
    if let Some(load_balancer) = &spec.load_balancer {
        match build_load_balancer(load_balancer) {
            Ok(lb) => features.load_balancer = Some(lb),
            Err(error) => errors.push(format!("LoadBalancer: {error}")),
        }
    }
    if let Some(health_check) = &spec.health_check {
        features.outlier_detection = build_outlier_detection(health_check);
        features.panic_threshold = health_check.panic_threshold.map(f64::from);
    }
    features.circuit_breaker = spec.circuit_breaker.as_ref().map(build_circuit_breaker);
    features.fault = spec.fault_injection.as_ref().map(build_fault);
    if let Some(retry) = &spec.retry {
        match build_retry(retry) {
            Ok(policy) => features.retry = Some(policy),
            Err(error) => errors.push(format!("Retry: {error}")),
        }
    }
    features.timeout = spec.timeout.clone();
    errors.extend(unmodelled("BackendConnection"));
    errors.extend(unmodelled("RequestBuffer"));
    let error = if errors.is_empty() {
        None
    } else {
        Some(condition_message(&errors.join("\n")))
    };
    (features, error)
}

/// Envoy Gateway's rendering of an error in a status condition: the first
/// letter upper case and a final full stop.
pub fn condition_message(message: &str) -> String {
    let mut chars = message.chars();
    let mut text = match chars.next() {
        Some(first) if first.is_alphabetic() => first.to_uppercase().chain(chars).collect(),
        _ => message.to_string(),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

pub fn build_circuit_breaker(spec: &CircuitBreakerSpec) -> CircuitBreaker {
    CircuitBreaker {
        max_connections: spec.max_connections,
        max_pending_requests: spec.max_pending_requests,
        max_requests: spec.max_parallel_requests,
        max_retries: spec.max_parallel_retries,
        retry_budget: spec.retry_budget.as_ref().map(|budget| RetryBudget {
            budget_percent: budget.percent,
            // Envoy's default when the budget leaves it out.
            min_retry_concurrency: budget.min_retry_concurrency.unwrap_or(3),
        }),
        max_requests_per_connection: spec.max_requests_per_connection,
        per_host_max_connections: spec.per_endpoint_max_connections,
    }
}

fn build_load_balancer(spec: &LoadBalancerSpec) -> Result<LoadBalancer, String> {
    match spec.kind.as_str() {
        "ConsistentHash" => {
            let Some(hash) = &spec.consistent_hash else {
                return Err("ConsistentHash: consistentHash is required".to_string());
            };
            if !is_prime(hash.table_size) {
                return Err(format!(
                    "ConsistentHash: invalid TableSize value {}",
                    hash.table_size
                ));
            }
            let hash_on = match hash.kind.as_str() {
                "SourceIP" => HashOn::SourceIp,
                "Cookie" => HashOn::Cookie(hash.cookie_name.clone().unwrap_or_default()),
                "QueryParams" => HashOn::QueryParams(hash.query_params.clone()),
                _ => HashOn::Headers(
                    hash.header_names
                        .iter()
                        .map(|name| name.to_ascii_lowercase())
                        .collect(),
                ),
            };
            Ok(LoadBalancer::ConsistentHash {
                hash_on,
                table_size: hash.table_size,
            })
        }
        "Random" => Ok(LoadBalancer::Random),
        "RoundRobin" => Ok(LoadBalancer::RoundRobin),
        // NOTE: BackendUtilization (weights from backend load reports) and
        // DynamicModule are simulated as Envoy's default least-request.
        _ => Ok(LoadBalancer::LeastRequest { choice_count: 2 }),
    }
}

/// Primality by trial division; table sizes are at most 5000011.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut divisor = 2;
    while divisor * divisor <= n {
        if n.is_multiple_of(divisor) {
            return false;
        }
        divisor += 1;
    }
    true
}

/// Envoy's outlier detection as Envoy Gateway v1.9 sets it: the policy's
/// values (CRD defaults filled in) and Envoy's defaults for the rest.
fn build_outlier_detection(spec: &HealthCheckSpec) -> Option<OutlierDetection> {
    let passive = spec.passive.as_ref()?;
    Some(OutlierDetection {
        interval: passive.interval,
        base_ejection_time: passive.base_ejection_time,
        max_ejection_time: SimDuration::from_secs(300),
        consecutive_5xx: Some(passive.consecutive_5xx_errors),
        consecutive_gateway_failure: passive.consecutive_gateway_errors,
        enforcing_consecutive_gateway_failure: if passive.consecutive_gateway_errors.is_some() {
            100
        } else {
            0
        },
        consecutive_local_origin_failure: Some(passive.consecutive_local_origin_failures),
        split_external_local_origin_errors: passive.split_external_local_origin_errors,
        // Envoy Gateway omits a zero, which leaves Envoy's default of 10.
        max_ejection_percent: if passive.max_ejection_percent > 0 {
            passive.max_ejection_percent
        } else {
            10
        },
        always_eject_one_host: passive.always_eject_one_endpoint,
        failure_percentage_threshold: passive.failure_percentage_threshold,
        enforcing_failure_percentage: if passive.failure_percentage_threshold.is_some() {
            100
        } else {
            0
        },
        success_rate_minimum_hosts: 5,
        success_rate_request_volume: 100,
        success_rate_stdev_factor: 1900,
        enforcing_success_rate: 100,
        failure_percentage_minimum_hosts: 5,
        failure_percentage_request_volume: 50,
    })
}

/// Rounds a percentage as Envoy Gateway stores it: millionths, truncated.
fn fractional_percent(percent: f64) -> f64 {
    (percent * 10_000.0).trunc() / 10_000.0
}

fn build_fault(spec: &FaultInjectionSpec) -> FaultInjection {
    FaultInjection {
        delay: spec.delay.map(|(fixed_delay, percentage)| FaultDelay {
            fixed_delay,
            percentage: fractional_percent(percentage),
        }),
        abort: spec.abort.as_ref().map(|abort| FaultAbort {
            // A gRPC abort is an HTTP 200 whose grpc-status carries the
            // error.
            http_status: abort.http_status.unwrap_or(200),
            percentage: fractional_percent(abort.percentage),
        }),
    }
}

/// Returns the default `retry_on` of Envoy Gateway v1.9: `connect-failure,
/// refused-stream, unavailable, cancelled, retriable-status-codes`.
fn default_retry_on() -> RetryOn {
    RetryOn {
        connect_failure: true,
        refused_stream: true,
        unavailable: true,
        cancelled: true,
        retriable_status_codes: true,
        ..RetryOn::default()
    }
}

fn retry_on(triggers: &[String]) -> RetryOn {
    let mut on = RetryOn::default();
    for trigger in triggers {
        match trigger.as_str() {
            "5xx" => on.server_error_5xx = true,
            "gateway-error" => on.gateway_error = true,
            "reset" => on.reset = true,
            "reset-before-request" => on.reset_before_request = true,
            "connect-failure" => on.connect_failure = true,
            "retriable-4xx" => on.retriable_4xx = true,
            "refused-stream" => on.refused_stream = true,
            "retriable-status-codes" => on.retriable_status_codes = true,
            "cancelled" => on.cancelled = true,
            "deadline-exceeded" => on.deadline_exceeded = true,
            "internal" => on.internal = true,
            "resource-exhausted" => on.resource_exhausted = true,
            _ => on.unavailable = true,
        }
    }
    on
}

/// Envoy's retry policy from a policy's `retry`. Quirk of Envoy Gateway
/// v1.9: once `retryOn` is written, its `httpStatusCodes` replace the
/// default `[503]` even when the list is empty.
pub fn build_retry(spec: &RetrySpec) -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy {
        num_retries: spec.num_retries,
        retry_on: default_retry_on(),
        retriable_status_codes: vec![503],
        per_try_timeout: None,
        base_interval: DEFAULT_RETRY_BASE_INTERVAL,
        max_interval: DEFAULT_RETRY_BASE_INTERVAL.saturating_mul(10),
    };
    if let Some(on) = &spec.retry_on
        && (!on.triggers.is_empty() || on.has_status_codes)
    {
        if !on.triggers.is_empty() {
            policy.retry_on = retry_on(&on.triggers);
        }
        policy.retriable_status_codes = on.http_status_codes.clone();
    }
    if let Some(per_retry) = &spec.per_retry {
        policy.per_try_timeout = per_retry.timeout;
        if per_retry.base_interval == Some(SimDuration::ZERO) {
            return Err("baseInterval cannot be set to 0s".to_string());
        }
        if per_retry.max_interval == Some(SimDuration::ZERO) {
            return Err("maxInterval cannot be set to 0s".to_string());
        }
        if let (Some(base), Some(max)) = (per_retry.base_interval, per_retry.max_interval)
            && base > max
        {
            return Err("maxInterval cannot be less than baseInterval".to_string());
        }
        if let Some(base) = per_retry.base_interval {
            policy.base_interval = base;
            policy.max_interval = base.saturating_mul(10);
        }
        if let Some(max) = per_retry.max_interval {
            policy.max_interval = max;
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::policy::{PerRetrySpec, RetryOnSpec};

    #[test]
    fn retry_defaults_follow_envoy_gateway() {
        let policy = build_retry(&RetrySpec {
            num_retries: 2,
            ..RetrySpec::default()
        })
        .unwrap();
        assert_eq!(policy.retriable_status_codes, vec![503]);
        assert!(policy.retry_on.connect_failure);
        assert!(!policy.retry_on.server_error_5xx);
        assert_eq!(policy.max_interval, SimDuration::from_millis(250));
    }

    #[test]
    fn retry_triggers_drop_default_codes() {
        let policy = build_retry(&RetrySpec {
            num_retries: 5,
            retry_on: Some(RetryOnSpec {
                triggers: vec!["retriable-status-codes".to_string()],
                http_status_codes: Vec::new(),
                has_status_codes: false,
            }),
            ..RetrySpec::default()
        })
        .unwrap();
        assert!(policy.retriable_status_codes.is_empty());
        assert!(!policy.retry_on.connect_failure);
    }

    #[test]
    fn zero_base_interval_is_an_error() {
        let error = build_retry(&RetrySpec {
            per_retry: Some(PerRetrySpec {
                base_interval: Some(SimDuration::ZERO),
                ..PerRetrySpec::default()
            }),
            ..RetrySpec::default()
        })
        .unwrap_err();
        assert_eq!(error, "baseInterval cannot be set to 0s");
    }

    #[test]
    fn condition_messages_end_with_full_stop() {
        assert_eq!(condition_message("retry: x"), "Retry: x.");
        assert_eq!(condition_message("Done."), "Done.");
    }

    #[test]
    fn table_size_must_be_prime() {
        assert!(is_prime(65_537));
        assert!(is_prime(5_000_011));
        assert!(!is_prime(1024));
    }
}
