//! Invariants that must hold for every run, checked on randomly drawn
//! scenarios. A failure prints the scenario text and seed, which replay it
//! exactly.

use std::path::Path;

use proptest::prelude::*;
use trafficsim::{report, scenario, sim};

/// Parameters of one random scenario.
#[derive(Clone, Debug)]
struct Shape {
    replicas: u32,
    workers: u32,
    spread: &'static str,
    limit: u32,
    unit: &'static str,
    per_user_limit: Option<u32>,
    max_parallel: u32,
    max_pending: u32,
    max_connections: u32,
    retries: Option<u32>,
    error_probability: f64,
    endpoints: u32,
    concurrency: u32,
    rate: u32,
    users: u32,
    agents: u32,
    closed: Option<(u32, u32)>,
    seconds: u32,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        (
            1u32..4,
            1u32..3,
            prop::sample::select(vec!["round-robin", "random", "sticky"]),
        ),
        (
            1u32..200,
            prop::sample::select(vec!["Second", "Minute"]),
            prop::option::of(1u32..20),
        ),
        (1u32..40, 0u32..20, 1u32..40, prop::option::of(0u32..4)),
        (0.0f64..0.5, 1u32..5, 1u32..8),
        (
            1u32..150,
            1u32..50,
            0u32..3,
            prop::option::of((1u32..20, 1u32..60)),
            1u32..5,
        ),
    )
        .prop_map(
            |(
                (replicas, workers, spread),
                (limit, unit, per_user_limit),
                (max_parallel, max_pending, max_connections, retries),
                (error_probability, endpoints, concurrency),
                (rate, users, agents, closed, seconds),
            )| Shape {
                replicas,
                workers,
                spread,
                limit,
                unit,
                per_user_limit,
                max_parallel,
                max_pending,
                max_connections,
                retries,
                error_probability,
                endpoints,
                concurrency,
                rate,
                users,
                agents,
                closed,
                seconds,
            },
        )
}

fn scenario_text(shape: &Shape) -> String {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let mut rules = format!(
        "            - limit: {{requests: {}, unit: {}}}\n",
        shape.limit, shape.unit
    );
    if let Some(per_user) = shape.per_user_limit {
        rules.push_str(&format!(
            "            - clientSelectors: [{{headers: [{{name: x-user-id, type: Distinct}}]}}]\n              limit: {{requests: {per_user}, unit: {}}}\n",
            shape.unit
        ));
    }
    let retry = match shape.retries {
        Some(n) => {
            format!("      retry:\n        numRetries: {n}\n        retryOn: {{triggers: [5xx]}}\n")
        }
        None => String::new(),
    };
    let mut clients = format!(
        "  - {{name: users, kind: open, rate: {}/s, users: {}, headers: {{x-user-id: \"u{{user}}\"}}}}\n",
        shape.rate, shape.users
    );
    if shape.agents > 0 {
        clients.push_str(&format!(
            "  - {{name: agents, kind: agent, count: {}, retry_delay: 5ms}}\n",
            shape.agents
        ));
    }
    if let Some((concurrency, requests)) = shape.closed {
        clients.push_str(&format!(
            "  - {{name: hey, kind: closed, concurrency: {concurrency}, requests: {requests}, delay: 50ms}}\n"
        ));
    }
    format!(
        "name: random
duration: {seconds}s
envoy: {{replicas: {replicas}, workers: {workers}, spread: {spread}}}
manifests:
  - '{manifests}'
  - apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: BackendTrafficPolicy
    metadata: {{name: random, namespace: default}}
    spec:
      targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}}]
      rateLimit:
        local:
          rules:
{rules}      circuitBreaker:
        maxParallelRequests: {max_parallel}
        maxPendingRequests: {max_pending}
        maxConnections: {max_connections}
{retry}backends:
  - name: backend
    endpoints: {endpoints}
    concurrency: {concurrency}
    service_time: {{exponential: {{mean: 20ms}}}}
    errors: [{{status: 503, probability: {error_probability}}}]
clients:
{clients}",
        seconds = shape.seconds,
        replicas = shape.replicas,
        workers = shape.workers,
        spread = shape.spread,
        max_parallel = shape.max_parallel,
        max_pending = shape.max_pending,
        max_connections = shape.max_connections,
        endpoints = shape.endpoints,
        concurrency = shape.concurrency,
        error_probability = shape.error_probability,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn every_run_keeps_its_invariants(shape in shape(), seed in 0u64..1_000) {
        let text = scenario_text(&shape);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("random.yaml");
        let scenario = match scenario::parse_str(&text, &path) {
            Ok(scenario) => scenario,
            Err(diagnostics) => panic!("generated scenario does not load:\n{diagnostics}\n{text}"),
        };
        let output = sim::run(&scenario, seed);
        let metrics = &output.metrics;

        // Every request sent ends in exactly one outcome or is still in flight.
        let sent = metrics.total_requests();
        let completed: u64 = metrics.total_statuses().values().sum();
        prop_assert_eq!(sent, completed + output.in_flight_at_end, "seed {}\n{}", seed, text);
        for group in &metrics.groups {
            let per_instance: u64 = group.instances.iter().map(|i| i.requests).sum();
            prop_assert_eq!(group.requests, per_instance);
            prop_assert_eq!(group.completed(), group.statuses.values().sum::<u64>());
        }

        // The catch-all bucket admits at most its capacity plus refill per
        // replica; a request matching the per-user rule skips it, so the
        // bound applies only without that rule.
        if shape.per_user_limit.is_none() {
            let unit_s = if shape.unit == "Second" { 1.0 } else { 60.0 };
            let per_replica = f64::from(shape.limit) * (1.0 + output.end.as_secs_f64() / unit_s);
            let admitted = output.envoy_stats.get("http_local_rate_limit.ok") as f64;
            prop_assert!(admitted <= f64::from(shape.replicas) * per_replica + 1e-6,
                "{} admitted, bound {}\n{}", admitted, per_replica, text);
        }

        // No replica ever has more active upstream requests than allowed.
        for peak in output.peak_active_requests.values() {
            prop_assert!(*peak <= shape.max_parallel, "peak {} > {}\n{}", peak, shape.max_parallel, text);
        }

        // Same seed, same bytes.
        let again = sim::run(&scenario, seed);
        prop_assert_eq!(
            report::summary(&scenario, &output).to_string(),
            report::summary(&scenario, &again).to_string()
        );
    }
}
