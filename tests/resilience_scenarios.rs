//! Retries, timeouts, outlier detection, load balancing and fault
//! injection, run end to end. Expected numbers come from cases measured on
//! real Envoy 1.40 (with the configuration Envoy Gateway v1.9 generates, or
//! the raw Envoy setting named in the test), from published results, or
//! from the arithmetic given beside them.

use std::path::{Path, PathBuf};

use serde_json::Value;
use trafficsim::report;
use trafficsim::scenario::{self, Scenario};
use trafficsim::sim::{self, RunOptions, RunOutput};

fn load(path: &Path) -> Scenario {
    match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{} does not load:\n{diagnostics}", path.display()),
    }
}

/// Runs a shipped scenario file with `seed`.
fn run_file(file: &str, seed: u64) -> (Scenario, RunOutput) {
    let scenario = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file));
    let options = RunOptions {
        record_requests: true,
        ..RunOptions::default()
    };
    let output = sim::run_with(&scenario, seed, options);
    (scenario, output)
}

/// Writes `yaml` to a scratch file, then loads and runs it with `seed`.
fn run_inline(name: &str, yaml: &str, seed: u64) -> (Scenario, RunOutput) {
    let dir = std::env::temp_dir().join(format!("trafficsim-resilience-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("{name}-{seed}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let scenario = load(&path);
    let options = RunOptions {
        record_requests: true,
        ..RunOptions::default()
    };
    let output = sim::run_with(&scenario, seed, options);
    (scenario, output)
}

fn summary(scenario: &Scenario, output: &RunOutput) -> Value {
    report::summary(scenario, output)
}

/// Sum of every Envoy stat whose name ends with `suffix`.
fn stat(output: &RunOutput, suffix: &str) -> u64 {
    output
        .envoy_stats
        .0
        .iter()
        .filter(|(name, _)| name.ends_with(suffix))
        .map(|(_, value)| value)
        .sum()
}

/// Final statuses `status` of client `client`.
fn count(output: &RunOutput, client: usize, status: u16) -> u64 {
    output.metrics.groups[client]
        .statuses
        .get(&status)
        .copied()
        .unwrap_or(0)
}

/// Successful calls per second of all clients between `from_s` and `to_s`.
fn goodput(output: &RunOutput, from_s: f64, to_s: f64) -> f64 {
    let bucket_s = output.metrics.bucket.as_secs_f64();
    let ok: u64 = output
        .metrics
        .rows
        .iter()
        .filter(|row| {
            let start = row.bucket as f64 * bucket_s;
            start >= from_s && start < to_s
        })
        .map(|row| row.statuses[0])
        .sum();
    ok as f64 / (to_s - from_s)
}

/// A Gateway, an HTTPRoute to `backend` and a BackendTrafficPolicy with
/// `policy` (YAML lines indented for `spec`), as inline manifests.
fn manifests(policy: &str) -> String {
    format!(
        r#"manifests:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {{name: eg, namespace: default}}
    spec:
      gatewayClassName: eg
      listeners: [{{name: http, protocol: HTTP, port: 80}}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {{name: backend, namespace: default}}
    spec:
      parentRefs: [{{name: eg}}]
      rules: [{{backendRefs: [{{name: backend, port: 8080}}]}}]
  - apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: BackendTrafficPolicy
    metadata: {{name: policy, namespace: default}}
    spec:
      targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}}]
{policy}
"#
    )
}

// Retries --------------------------------------------------------------

#[test]
fn sequential_retries_reach_99_percent() {
    // 30% 503 and 3 retries: 1 - 0.3^4 = 99.19% succeed.
    let (scenario, output) = run_file("scenarios/tutorial/retry-sequential.yaml", 7);
    let ok = count(&output, 0, 200) as f64 / 2000.0;
    assert!((0.985..=0.997).contains(&ok), "success {ok}");
    let attempts = &output.metrics.groups[0].attempt_counts;
    assert_eq!(attempts.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
    // About 30% of the first attempts are retried (0.3 + 0.09 + 0.027).
    let retries = stat(&output, ".upstream_rq_retry");
    assert!((750..=900).contains(&retries), "retries {retries}");

    let json = summary(&scenario, &output);
    assert_eq!(json["backend_first_attempts"], 2000);
    assert_eq!(json["backend_retries"], retries);
    assert_eq!(json["backend_retries_by_envoy"], retries);
    let spend_retries = json["spend_retries_usd"].as_f64().unwrap();
    assert!((spend_retries - retries as f64 * 0.001).abs() < 1e-6);
    assert!((json["spend_first_attempts_usd"].as_f64().unwrap() - 2.0).abs() < 1e-6);
}

#[test]
fn raw_envoy_retry_breaker_drops_retries() {
    // Measured on Envoy 1.40 with max_retries 3 (raw Envoy's default): 146
    // to 149 of 200 succeeded, and 50 of the 77 retry decisions overflowed.
    // That backend drew 34% 503s for the first attempts; the 30% expected
    // here gives about 155 successes on average.
    let mut successes = 0;
    let mut decisions = 0;
    let mut overflows = 0;
    for seed in 1..=8 {
        let (_, output) = run_file("scenarios/tutorial/retry-concurrent-raw-envoy.yaml", seed);
        let ok = count(&output, 0, 200);
        assert!((135..=172).contains(&ok), "seed {seed}: {ok} succeeded");
        successes += ok;
        let overflow = stat(&output, ".upstream_rq_retry_overflow");
        overflows += overflow;
        decisions += overflow
            + stat(&output, ".upstream_rq_retry")
            + stat(&output, ".upstream_rq_retry_limit_exceeded");
    }
    let mean = successes as f64 / 8.0;
    assert!((145.0..=165.0).contains(&mean), "mean {mean}");
    let share = overflows as f64 / decisions as f64;
    assert!((0.55..=0.75).contains(&share), "overflow share {share}");
}

#[test]
fn envoy_gateway_retry_breaker_keeps_retries() {
    // Measured on Envoy 1.40 with max_retries 1000: 197 to 199 of 200.
    for seed in 1..=4 {
        let (_, output) = run_file("scenarios/tutorial/retry-concurrent.yaml", seed);
        let ok = count(&output, 0, 200);
        assert!(ok >= 195, "seed {seed}: {ok} succeeded");
        assert_eq!(stat(&output, ".upstream_rq_retry_overflow"), 0);
    }
}

#[test]
fn circuit_breaker_503s_are_not_retried() {
    let yaml = format!(
        "name: overflow-not-retried\n{}backends:\n  - name: backend\n    service_time: 1s\n\
         clients:\n  - {{name: burst, kind: closed, concurrency: 20, requests: 20}}\n",
        manifests(
            "      circuitBreaker: {maxParallelRequests: 5}\n      retry: {numRetries: 3, retryOn: {triggers: [\"5xx\"]}}"
        )
    );
    let (_, output) = run_inline("overflow", &yaml, 1);
    assert_eq!(count(&output, 0, 200), 5);
    assert_eq!(count(&output, 0, 503), 15);
    assert_eq!(stat(&output, ".upstream_rq_retry"), 0);
    assert_eq!(stat(&output, ".upstream_rq_active_overflow"), 15);
}

#[test]
fn route_timeout_is_not_restarted_by_retries() {
    // Measured on Envoy 1.40: a 200 ms route timeout against a 500 ms
    // backend answers 504 after 198-204 ms and closes the connection.
    let yaml = format!(
        "name: route-timeout\n{}backends:\n  - name: backend\n    service_time: 500ms\n\
         clients:\n  - {{name: seq, kind: sequential, requests: 10}}\n",
        manifests("      timeout: {http: {requestTimeout: 200ms}}")
    );
    let (_, output) = run_inline("route-timeout", &yaml, 1);
    assert_eq!(count(&output, 0, 504), 10);
    assert_eq!(stat(&output, ".upstream_cx_destroy_local"), 10);
    for record in &output.requests {
        let ms = (record.completed.as_nanos() - record.sent.as_nanos()) as f64 / 1e6;
        assert!((199.0..=202.0).contains(&ms), "{ms} ms");
    }

    // Retries of 100 ms failures stop at the 250 ms route timeout.
    let yaml = format!(
        "name: route-timeout-retries\n{}backends:\n  - name: backend\n    service_time: 100ms\n\
         \x20   errors: [{{status: 503, probability: 1}}]\n\
         clients:\n  - {{name: seq, kind: sequential, requests: 20}}\n",
        manifests(
            "      timeout: {http: {requestTimeout: 250ms}}\n      retry: {numRetries: 10, retryOn: {triggers: [\"5xx\"]}}"
        )
    );
    let (_, output) = run_inline("route-timeout-retries", &yaml, 1);
    assert_eq!(count(&output, 0, 504), 20);
    for record in &output.requests {
        let ms = (record.completed.as_nanos() - record.sent.as_nanos()) as f64 / 1e6;
        assert!((249.0..=252.0).contains(&ms), "{ms} ms");
        assert!(record.attempts <= 3, "{} attempts", record.attempts);
    }
}

#[test]
fn per_try_timeout_starts_at_attach() {
    // One worker and one connection: the second request waits 300 ms for
    // the connection, then takes 100 ms, within its 200 ms per-try timeout.
    let yaml = format!(
        "name: per-try\nenvoy: {{workers: 1}}\n{}backends:\n  - name: backend\n\
         clients:\n\
         \x20 - {{name: slow, kind: sequential, requests: 1, delay: 300ms}}\n\
         \x20 - {{name: fast, kind: sequential, requests: 1, delay: 100ms, start: 1ms}}\n",
        manifests(
            "      circuitBreaker: {maxConnections: 1}\n      retry:\n        numRetries: 1\n        retryOn: {triggers: [\"reset\"]}\n        perRetry: {timeout: 200ms}"
        )
    );
    let (_, output) = run_inline("per-try", &yaml, 1);
    assert_eq!(count(&output, 0, 504), 1, "slow");
    assert_eq!(count(&output, 1, 200), 1, "fast");
    assert_eq!(stat(&output, ".upstream_rq_per_try_timeout"), 2);
}

#[test]
fn post_retries_count_as_duplicates() {
    // The client gives up after 1 s and retries twice. Each try runs its
    // full 2 s at the backend, so every call executes three times.
    let yaml = format!(
        "name: duplicates\n{}backends:\n  - name: backend\n    service_time: 2s\n\
         clients:\n  - name: writer\n    kind: sequential\n    requests: 5\n    method: POST\n\
         \x20   timeout: 1s\n    retries: {{max: 2, backoff: none}}\n",
        manifests("      timeout: {http: {requestTimeout: 15s}}")
    );
    let (scenario, output) = run_inline("duplicates", &yaml, 1);
    let group = &output.metrics.groups[0];
    assert_eq!(count(&output, 0, 0), 5, "every call gives up");
    assert_eq!(group.http_requests, 15);
    assert_eq!(group.client_timeouts, 15);
    assert_eq!(group.client_retries, 10);
    assert_eq!(group.duplicate_executions, 10);
    assert_eq!(group.backend_client_retries, 10);
    // Envoy reset each abandoned attempt and closed its connection.
    assert_eq!(stat(&output, ".upstream_rq_tx_reset"), 15);
    let json = summary(&scenario, &output);
    assert_eq!(
        json["clients"]["writer"]["status_counts"]["client_timeout"],
        5
    );
    assert_eq!(json["duplicate_executions"], 10);
}

#[test]
fn retry_after_sets_the_client_wait() {
    let yaml = format!(
        "name: retry-after\n{}backends:\n  - name: backend\n    service_time: 1ms\n\
         \x20   schedule: [{{to: 1s, status: 429, retry_after: 3s}}]\n\
         clients:\n  - name: sdk\n    kind: sequential\n    requests: 1\n\
         \x20   retries: {{max: 2, backoff: none}}\n",
        manifests("      timeout: {http: {requestTimeout: 15s}}")
    );
    let (_, output) = run_inline("retry-after", &yaml, 1);
    let record = output.requests[0];
    assert_eq!(record.status, 200);
    assert_eq!(record.tries, 2);
    let seconds = record.completed.as_secs_f64();
    assert!((3.0..3.1).contains(&seconds), "{seconds}");
}

// Connections ----------------------------------------------------------

/// Round robin over 4 endpoints: endpoint 2 answers 503 from 1 s to 3 s,
/// endpoint 0 adds 300 ms from 1 s, endpoint 3 rejects connections from
/// 2 s to 4 s; 20 requests a second for 5 s.
fn windows_yaml(policy_extra: &str) -> String {
    format!(
        "name: windows\nenvoy: {{connect_time: 1ms}}\n{}backends:\n  - name: backend\n    endpoints: 4\n\
         \x20   service_time: 1ms\n    schedule:\n\
         \x20     - {{from: 1s, to: 3s, endpoints: [2], status: 503}}\n\
         \x20     - {{from: 1s, endpoints: [0], add_delay: 300ms}}\n\
         \x20     - {{from: 2s, to: 4s, endpoints: [3], refuse: true}}\n\
         clients:\n  - {{name: open20, kind: open, rate: 20, arrival: constant, requests: 100}}\n",
        manifests(&format!(
            "      loadBalancer: {{type: RoundRobin}}\n{policy_extra}"
        ))
    )
}

#[test]
fn refused_connections_fail_fast() {
    // Measured on Envoy 1.40: 19-22 503s, 10-11 connect failures, each
    // answered within 1-3 ms.
    for seed in 1..=3 {
        let (_, output) = run_inline("windows", &windows_yaml(""), seed);
        let failed = count(&output, 0, 503);
        assert!((18..=23).contains(&failed), "seed {seed}: {failed} 503s");
        let connect_failures = stat(&output, ".upstream_cx_connect_fail");
        assert!((9..=12).contains(&connect_failures), "{connect_failures}");
        assert_eq!(
            stat(&output, ".upstream_rq_pending_failure_eject"),
            connect_failures
        );
    }
}

#[test]
fn connect_failures_are_retried() {
    // Envoy Gateway's default retry triggers include connect-failure and
    // retriable-status-codes 503, and retries pick another host.
    let (_, output) = run_inline("windows-retried", &windows_yaml("      retry: {}"), 1);
    assert_eq!(count(&output, 0, 200), 100);
    assert!(stat(&output, ".upstream_rq_retry") >= 20);
}

#[test]
fn unanswered_connects_time_out() {
    let yaml = format!(
        "name: no-answer\n{}backends:\n  - name: backend\n    endpoints: 2\n\
         \x20   schedule: [{{endpoints: [1], no_answer: true}}]\n\
         clients:\n  - {{name: seq, kind: sequential, requests: 20}}\n",
        manifests(
            "      loadBalancer: {type: RoundRobin}\n      timeout: {tcp: {connectTimeout: 2s}}"
        )
    );
    let (_, output) = run_inline("no-answer", &yaml, 1);
    let failed: Vec<_> = output.requests.iter().filter(|r| r.status == 503).collect();
    assert!(!failed.is_empty());
    for record in failed {
        let seconds = (record.completed.as_nanos() - record.sent.as_nanos()) as f64 / 1e9;
        assert!((2.0..2.01).contains(&seconds), "{seconds}");
    }
    assert!(stat(&output, ".upstream_cx_connect_timeout") > 0);
}

// Outlier detection ----------------------------------------------------

/// Open-loop traffic of `requests` at `rate` per second, round robin, a
/// passive health check with extra `passive` fields, and `endpoints`
/// endpoints of which `failing` always answer 503.
fn outlier_yaml(
    endpoints: u32,
    failing: &str,
    passive: &str,
    extra: &str,
    (rate, requests): (u32, u32),
) -> String {
    format!(
        "name: outlier\nenvoy: {{update_merge_window: MERGE}}\n{}backends:\n  - name: backend\n    endpoints: {endpoints}\n\
         \x20   service_time: 1ms\n    schedule: [{{endpoints: [{failing}], status: 503}}]\n\
         clients:\n  - {{name: open, kind: open, rate: {rate}, arrival: constant, requests: {requests}}}\n",
        manifests(&format!(
            "      loadBalancer: {{type: RoundRobin}}\n      healthCheck:\n        passive: {{interval: 1s, baseEjectionTime: 5s{passive}}}\n{extra}"
        )),
    )
}

#[test]
fn outlier_cases_match_envoy() {
    // (case, yaml, merge window, accepted 503 range). Each range is the
    // spread measured on Envoy 1.40 in three runs, widened by a few requests
    // because a random load balancer draw shifts single requests between
    // hosts; the panic case without merge window measured 297 to 299.
    let cases = [
        (
            "ten hosts, one failing",
            outlier_yaml(10, "3", ", maxEjectionPercent: 100", "", (40, 480)),
            "1s",
            10..=14,
        ),
        (
            "three hosts, default 10%",
            outlier_yaml(3, "1", "", "", (30, 180)),
            "1s",
            57..=62,
        ),
        (
            "three hosts, always eject one",
            outlier_yaml(3, "1", ", alwaysEjectOneEndpoint: true", "", (30, 180)),
            "1s",
            5..=5,
        ),
        (
            "panic with three of four failing",
            outlier_yaml(4, "1, 2, 3", ", maxEjectionPercent: 100", "", (40, 400)),
            "1s",
            278..=287,
        ),
        (
            "panic without merge window",
            outlier_yaml(4, "1, 2, 3", ", maxEjectionPercent: 100", "", (40, 400)),
            "0s",
            295..=302,
        ),
        (
            "panic threshold 0",
            outlier_yaml(
                4,
                "1, 2, 3",
                ", maxEjectionPercent: 100",
                "        panicThreshold: 0",
                (40, 400),
            ),
            "1s",
            92..=98,
        ),
    ];
    for (case, yaml, merge, expected) in cases {
        for seed in 1..=3 {
            let yaml = yaml.replace("MERGE", merge);
            let (_, output) = run_inline("outlier", &yaml, seed);
            let failed = count(&output, 0, 503);
            assert!(
                expected.contains(&failed),
                "{case}, seed {seed}: {failed} 503s, expected {expected:?}"
            );
        }
    }
}

#[test]
fn ejection_closes_idle_connections() {
    // Measured on Envoy 1.40: two local closes per ejection with two workers.
    let yaml =
        outlier_yaml(10, "3", ", maxEjectionPercent: 100", "", (40, 480)).replace("MERGE", "1s");
    let (_, output) = run_inline("outlier-closes", &yaml, 1);
    let ejections = stat(&output, ".outlier_detection.ejections_enforced_total");
    assert!(ejections >= 1);
    assert_eq!(stat(&output, ".upstream_cx_destroy_local"), 2 * ejections);
}

#[test]
fn outlier_scenario_ejects_only_in_the_large_cluster() {
    let (scenario, output) = run_file("scenarios/outlier-ejection.yaml", 3);
    let ten = "httproute/default/ten/rule/0";
    let events: Vec<_> = output
        .outlier_events
        .iter()
        .filter(|e| e.cluster == ten)
        .collect();
    assert!(output.outlier_events.iter().all(|e| e.cluster == ten));
    assert!(events.iter().all(|e| e.host == 3));
    // Ejected within a second of the failure starting at 20 s, back on the
    // first 3 s tick after 30 s, ejected again, and back after 60 s more.
    assert_eq!(events.len(), 4);
    let times: Vec<f64> = events.iter().map(|e| e.at.as_secs_f64()).collect();
    assert!(events[0].ejected_for.is_some());
    assert!((20.0..21.0).contains(&times[0]), "{times:?}");
    assert!(events[1].ejected_for.is_none());
    assert_eq!(times[1] % 3.0, 0.0);
    assert!(times[1] - times[0] >= 30.0, "{times:?}");
    assert!(times[1] - times[0] < 33.0, "{times:?}");
    assert!(events[2].ejected_for.is_some());
    assert!(times[3] - times[2] >= 60.0, "{times:?}");
    assert!(times[3] - times[2] < 63.0, "{times:?}");

    // Traffic shifted away from the failing pod of `ten`; `three` never
    // ejected, and about a third of its requests failed for a minute.
    let endpoints = &output.metrics.endpoint_requests;
    assert!(endpoints[3] * 3 < endpoints[0], "{endpoints:?}");
    assert!(count(&output, 0, 503) < 40);
    assert!(count(&output, 1, 503) > 500);
    let notes = summary(&scenario, &output)["notes"].to_string();
    assert!(notes.contains("can never eject"), "{notes}");
    assert!(notes.contains("maxEjectionPercent"), "{notes}");
}

// Load balancing and faults --------------------------------------------

#[test]
fn least_request_avoids_a_slow_host() {
    // Measured on Envoy 1.40 with 8 clients and 80 requests, endpoint 0
    // answering in 500 ms and the others in 10 ms: least request sent it
    // 5-11 requests, round robin exactly 20.
    for (kind, range) in [("LeastRequest", 3..=12), ("RoundRobin", 19..=21)] {
        let yaml = format!(
            "name: slow-host\n{}backends:\n  - name: backend\n    endpoints: 4\n    service_time: 10ms\n\
             \x20   schedule: [{{endpoints: [0], add_delay: 490ms}}]\n\
             clients:\n  - {{name: c8, kind: closed, concurrency: 8, requests: 80}}\n",
            manifests(&format!("      loadBalancer: {{type: {kind}}}"))
        );
        for seed in 1..=3 {
            let (_, output) = run_inline("slow-host", &yaml, seed);
            let slow = output.metrics.endpoint_requests[0];
            assert!(range.contains(&slow), "{kind}, seed {seed}: {slow}");
        }
    }
}

#[test]
fn fault_abort_and_delay_rates() {
    // Measured on Envoy 1.40 over 400 requests: 86-106 aborts, 193-221
    // delays; aborted requests never reach the backend.
    let yaml = format!(
        "name: fault\n{}backends:\n  - name: backend\n    service_time: 1ms\n\
         clients:\n  - {{name: seq, kind: sequential, requests: 4000}}\n",
        manifests(
            "      faultInjection: {delay: {fixedDelay: 100ms, percentage: 50}, abort: {httpStatus: 503, percentage: 25}}"
        )
    );
    let (_, output) = run_inline("fault", &yaml, 1);
    let aborts = stat(&output, "http.fault.aborts_injected");
    let delays = stat(&output, "http.fault.delays_injected");
    assert!((900..=1100).contains(&aborts), "{aborts}");
    assert!((1900..=2100).contains(&delays), "{delays}");
    assert_eq!(count(&output, 0, 503), aborts);
    let group = &output.metrics.groups[0];
    assert_eq!(group.backend_first_attempts, 4000 - aborts);
}

// Shipped stories ------------------------------------------------------

#[test]
fn retry_storm_stays_down_without_protection() {
    let (_, storm) = run_file("scenarios/retry-storm.yaml", 1);
    let baseline = goodput(&storm, 20.0, 60.0);
    assert!(baseline > 200.0, "baseline {baseline}");
    // The slowdown ends at 90 s; a minute later almost nothing succeeds.
    let after = goodput(&storm, 150.0, 240.0);
    assert!(after < baseline * 0.1, "aggressive: {after} of {baseline}");

    for file in [
        "scenarios/retry-storm-protected.yaml",
        "scenarios/retry-storm-backoff.yaml",
    ] {
        let (_, output) = run_file(file, 1);
        let baseline = goodput(&output, 20.0, 60.0);
        let during = goodput(&output, 65.0, 90.0);
        let after = goodput(&output, 150.0, 240.0);
        assert!(during < baseline * 0.5, "{file}: slowdown {during}");
        assert!(after > baseline * 0.9, "{file}: {after} of {baseline}");
    }
}

#[test]
fn retry_budget_alone_recovers_slowly() {
    let (_, budget) = run_file("scenarios/retry-storm-budget.yaml", 1);
    let (_, storm) = run_file("scenarios/retry-storm.yaml", 1);
    let baseline = goodput(&budget, 20.0, 60.0);
    assert!(goodput(&budget, 100.0, 150.0) < baseline * 0.2);
    assert!(goodput(&budget, 210.0, 240.0) > baseline * 0.8);
    // The budget keeps Envoy's own retries to a fraction of the storm's.
    let retries = |output: &RunOutput| output.metrics.groups[0].backend_envoy_retries;
    assert!(retries(&budget) * 5 < retries(&storm));
}

#[test]
fn jitter_ordering_matches_published_result() {
    let (_, output) = run_file("scenarios/backoff-jitter.yaml", 1);
    let groups = &output.metrics.groups;
    let calls = |name: &str| {
        groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.http_requests)
            .unwrap()
    };
    let seconds = |name: &str| {
        let group = groups.iter().find(|g| g.name == name).unwrap();
        let (first, last) = (group.first_sent.unwrap(), group.last_completed.unwrap());
        last.saturating_since(first).as_secs_f64()
    };
    for group in groups {
        assert_eq!(group.statuses.get(&200), Some(&50), "{}", group.name);
    }
    // Plain exponential backoff keeps the clients in step: at most one
    // success per round, so at least 50 + 49 + ... + 1 calls.
    assert!(calls("exponential") >= 1275, "{}", calls("exponential"));
    for jittered in ["full-jitter", "equal-jitter", "decorrelated-jitter"] {
        assert!(calls(jittered) * 2 < calls("exponential"), "{jittered}");
        assert!(
            seconds(jittered) * 10.0 < seconds("exponential"),
            "{jittered}"
        );
    }
    let (full, equal) = (calls("full-jitter") as f64, calls("equal-jitter") as f64);
    assert!(
        (full - equal).abs() < full * 0.1,
        "full {full}, equal {equal}"
    );
    assert!(calls("decorrelated-jitter") > calls("full-jitter"));
    assert!(seconds("equal-jitter") > seconds("full-jitter"));
}

#[test]
fn resilience_runs_are_deterministic() {
    for file in [
        "scenarios/retry-storm.yaml",
        "scenarios/outlier-ejection.yaml",
    ] {
        let (scenario, first) = run_file(file, 5);
        let (_, second) = run_file(file, 5);
        assert_eq!(
            summary(&scenario, &first).to_string(),
            summary(&scenario, &second).to_string(),
            "{file}"
        );
        assert_eq!(
            report::timeseries_csv(&first),
            report::timeseries_csv(&second),
            "{file}"
        );
    }
}
