//! Global rate limiting end to end: Envoy's ratelimit filter, the rate limit
//! service and Redis, through small scenarios with inline manifests.
//! Expectations follow envoyproxy/ratelimit's fixed windows and Envoy
//! 1.40's filter (20 ms timeout, fail open unless configured otherwise).

use std::path::{Path, PathBuf};

use trafficsim::overrides::{self, Override};
use trafficsim::scenario::{self, Scenario};
use trafficsim::sim::{self, RunOptions, RunOutput};
use trafficsim::time::SimDuration;

const GATEWAY: &str = "
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: eg, namespace: default}
    spec:
      gatewayClassName: eg
      listeners: [{name: http, protocol: HTTP, port: 80}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: api, namespace: default}
    spec:
      parentRefs: [{name: eg}]
      rules:
        - matches: [{path: {type: PathPrefix, value: /api}}]
          backendRefs: [{name: backend, port: 8080}]
";

/// Builds a policy on the `api` route with the given `rateLimit` body,
/// indented for the policy's `rateLimit:` key.
fn policy(rate_limit: &str) -> String {
    format!(
        "
  - apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: BackendTrafficPolicy
    metadata: {{name: limit, namespace: default}}
    spec:
      targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: api}}]
      rateLimit:
{rate_limit}"
    )
}

/// Writes a scenario file made of `head` (top-level fields), the gateway,
/// `manifests` (more inline objects) and `tail` (backends, clients, ...).
fn write(name: &str, head: &str, manifests: &str, tail: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-global-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    let text = format!("name: {name}\n{head}\nmanifests:{GATEWAY}{manifests}\n{tail}");
    std::fs::write(&path, text).unwrap();
    path
}

fn load(path: &Path, overrides: &[(&str, &str)]) -> Scenario {
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|(path, value)| overrides::parse(&format!("{path}={value}")).unwrap())
        .collect();
    match scenario::load_with(path, &overrides) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{} does not load:\n{diagnostics}", path.display()),
    }
}

fn run(scenario: &Scenario) -> RunOutput {
    let options = RunOptions {
        record_requests: true,
        ..RunOptions::default()
    };
    sim::run_with(scenario, scenario.seed, options)
}

fn status_count(output: &RunOutput, status: u16) -> u64 {
    output
        .metrics
        .total_statuses()
        .get(&status)
        .copied()
        .unwrap_or(0)
}

const BACKEND: &str = "
backends:
  - name: backend
    endpoints: 2
    service_time: 5ms
";

/// Writes a scenario with one route limited to 10 a minute. Its client
/// sends 10 requests in the last second of a minute and 10 in the first
/// second of the next.
fn boundary_burst() -> PathBuf {
    let rules = "        local:
          rules:
            - limit: {requests: 10, unit: Minute}
";
    let clients = "
clients:
  - name: burst
    kind: open
    rate: 10
    arrival: constant
    requests: 20
    start: 59s
    path: /api
";
    write(
        "boundary-burst",
        "seed: 3\nstart_time: \"2026-01-01T00:00:00Z\"",
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    )
}

#[test]
fn fixed_window_admits_a_double_burst() {
    let path = boundary_burst();
    let global = run(&load(&path, &[("rate_limit_mode", "global")]));
    assert_eq!(status_count(&global, 200), 20);
    assert_eq!(status_count(&global, 429), 0);
}

#[test]
fn token_bucket_stops_the_double_burst() {
    let path = boundary_burst();
    let local = run(&load(&path, &[("rate_limit_mode", "local")]));
    // The bucket starts full (10) and refills one token every 6 s.
    assert_eq!(status_count(&local, 200), 10);
    assert_eq!(status_count(&local, 429), 10);
}

#[test]
fn window_edges_follow_the_wall_clock() {
    // Starting 30 s into a minute moves the window edge to 30 s of
    // simulated time, inside the burst's first second of sending.
    let path = boundary_burst();
    let global = run(&load(
        &path,
        &[
            ("rate_limit_mode", "global"),
            ("start_time", "2026-01-01T00:00:30Z"),
        ],
    ));
    assert_eq!(status_count(&global, 200), 10);
    assert_eq!(status_count(&global, 429), 10);
}

/// Writes a scenario with 100 a minute on one route and 1000 a minute
/// offered for 30 minutes.
fn steady_overload() -> PathBuf {
    let rules = "        local:
          rules:
            - limit: {requests: 100, unit: Minute}
";
    let clients = "
clients:
  - name: steady
    kind: open
    rate: 1000/m
    arrival: poisson
    path: /api
";
    write(
        "steady-overload",
        "seed: 11\nduration: 30m\nenvoy: {replicas: 5, spread: round-robin}",
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    )
}

#[test]
fn global_limit_holds_for_any_replica_count() {
    let path = steady_overload();
    let configured = 100.0 * 30.0;
    for replicas in ["1", "3", "5"] {
        let output = run(&load(
            &path,
            &[("rate_limit_mode", "global"), ("envoy.replicas", replicas)],
        ));
        let admitted = status_count(&output, 200) as f64;
        let error = (admitted - configured).abs() / configured;
        assert!(
            error <= 0.01,
            "{replicas} replicas admitted {admitted}, configured {configured}"
        );
    }
}

#[test]
fn local_limit_multiplies_by_replicas() {
    let path = steady_overload();
    let output = run(&load(&path, &[("rate_limit_mode", "local")]));
    let admitted = status_count(&output, 200) as f64;
    // Five buckets refilled at 100 a minute, each starting full with 100.
    let expected = 5.0 * 100.0 * 30.0 + 5.0 * 100.0;
    assert!(
        (admitted - expected).abs() / expected < 0.02,
        "local admitted {admitted}, expected about {expected}"
    );
}

fn slow_redis(extra: &str) -> Scenario {
    let rules = "        global:
          rules:
            - limit: {requests: 5, unit: Minute}
";
    let clients = "
clients:
  - name: loop
    kind: sequential
    requests: 50
    think_time: 100ms
    path: /api
";
    let head = format!("seed: 5\nrate_limit_service:\n  redis:\n    service_time: 25ms\n{extra}");
    let path = write(
        &format!("slow-redis{}", extra.len()),
        &head,
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    );
    load(&path, &[])
}

#[test]
fn slow_redis_fails_open() {
    let output = run(&slow_redis(""));
    assert_eq!(status_count(&output, 200), 50);
    assert_eq!(status_count(&output, 429), 0);
    let stat = |name: &str| {
        output.envoy_stats.get(&format!(
            "cluster.httproute/default/api/rule/0.ratelimit.{name}"
        ))
    };
    assert_eq!(stat("failure_mode_allowed"), 50);
    assert_eq!(stat("error"), 50);
    assert_eq!(stat("ok"), 0);
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.timeouts, 50);
    assert_eq!(global.passed_unlimited, 50);
}

#[test]
fn slow_redis_still_counts_every_hit() {
    // Envoy gives up after 20 ms, but Redis runs every pipeline.
    let output = run(&slow_redis(""));
    let stats = &output.global_rate_limit.as_ref().unwrap().service_stats;
    let total: u64 = stats
        .iter()
        .filter(|(name, _)| name.ends_with(".total_hits"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(total, 50);
}

#[test]
fn slow_redis_fails_closed_with_500() {
    let output = run(&slow_redis("  fail_closed: true\n"));
    assert_eq!(status_count(&output, 500), 50);
    assert_eq!(status_count(&output, 200), 0);
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.failed_closed, 50);
    assert_eq!(global.passed_unlimited, 0);
}

#[test]
fn summary_counts_requests_passed_unlimited() {
    let scenario = slow_redis("");
    let output = run(&scenario);
    let text = trafficsim::report::human_summary(&scenario, &output, &PathBuf::from("out"));
    assert!(text.contains("50 requests passed unlimited"), "{text}");
    let summary = trafficsim::report::summary(&scenario, &output);
    assert_eq!(summary["global_rate_limit"]["passed_unlimited"], 50);
}

/// Loads a scenario with a route to an LLM limited to `budget` tokens a
/// minute, charged from the response's token count, and an agent that
/// loops on it.
fn token_budget(budget: u32) -> Scenario {
    let rules = format!(
        "        global:
          rules:
            - limit: {{requests: {budget}, unit: Minute}}
              cost:
                request: {{from: Number, number: 0}}
                response:
                  from: Metadata
                  metadata: {{namespace: io.envoy.ai_gateway, key: llm_total_token}}
"
    );
    let tail = "
backends:
  - name: backend
    service_time: 400ms
    per_output_token: 2ms
    cost: {input_usd_per_million: 3, output_usd_per_million: 15}
clients:
  - name: agent
    kind: agent
    think_time: 0s
    retry_delay: 500ms
    method: POST
    path: /api/chat
    tokens: {input: 1000, output: 500}
";
    let path = write(
        "token-budget",
        "seed: 9\nduration: 10m",
        &policy(&rules),
        tail,
    );
    load(&path, &[])
}

#[test]
fn token_budget_stops_an_agent_loop() {
    let budget = 10_000u64;
    let per_request = 1_500u64;
    let output = run(&token_budget(budget as u32));
    // Tokens are charged when a response ends; bucket them by minute.
    let mut per_minute = [0u64; 10];
    for record in output.requests.iter().filter(|r| r.status == 200) {
        let minute = (record.completed.as_nanos() / 60_000_000_000) as usize;
        if let Some(slot) = per_minute.get_mut(minute) {
            *slot += per_request;
        }
    }
    for (minute, tokens) in per_minute.iter().enumerate() {
        // Requests pass while the counter is at or under the budget, so the
        // last one admitted may take it over by at most one response.
        assert!(
            *tokens <= budget + per_request,
            "minute {minute}: {tokens} tokens, budget {budget}"
        );
        assert!(
            *tokens + per_request >= budget,
            "minute {minute}: only {tokens} tokens, budget {budget}"
        );
    }
    assert!(status_count(&output, 429) > 0);
}

#[test]
fn token_budget_saves_spend() {
    let limited = run(&token_budget(10_000));
    let unlimited = run(&token_budget(100_000_000));
    let spend =
        |output: &RunOutput| -> f64 { output.metrics.groups.iter().map(|g| g.spend_usd()).sum() };
    // Unlimited, the agent makes about 80 calls a minute, 10 times more.
    assert!(
        spend(&unlimited) > 5.0 * spend(&limited),
        "limited ${}, unlimited ${}",
        spend(&limited),
        spend(&unlimited)
    );
    assert_eq!(status_count(&unlimited, 429), 0);
}

#[test]
fn local_limit_runs_before_global() {
    let rules = "        local:
          rules:
            - limit: {requests: 5, unit: Minute}
        global:
          rules:
            - limit: {requests: 8, unit: Minute}
";
    let clients = "
clients:
  - name: loop
    kind: sequential
    requests: 12
    path: /api
";
    let path = write(
        "local-and-global",
        "seed: 2",
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    );
    let output = run(&load(&path, &[]));
    // The local bucket rejects 7 of 12, which never reach the service.
    assert_eq!(status_count(&output, 200), 5);
    assert_eq!(
        output.envoy_stats.get("http_local_rate_limit.rate_limited"),
        7
    );
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.calls, 5);
    assert_eq!(global.over_limit, 0);
}

#[test]
fn shared_rule_counts_across_routes() {
    let manifests = "
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: other, namespace: default}
    spec:
      parentRefs: [{name: eg}]
      rules:
        - matches: [{path: {type: PathPrefix, value: /other}}]
          backendRefs: [{name: backend, port: 8080}]
  - apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: BackendTrafficPolicy
    metadata: {name: shared, namespace: default}
    spec:
      targetRefs:
        - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: api}
        - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: other}
      rateLimit:
        global:
          rules:
            - limit: {requests: 10, unit: Minute}
              shared: SHARED
";
    let clients = "
clients:
  - {name: a, kind: sequential, requests: 10, path: /api}
  - {name: b, kind: sequential, requests: 10, path: /other}
";
    let tail = format!("{BACKEND}{clients}");
    let shared = write(
        "shared",
        "seed: 4",
        &manifests.replace("SHARED", "true"),
        &tail,
    );
    let output = run(&load(&shared, &[]));
    assert_eq!(status_count(&output, 200), 10);
    assert_eq!(status_count(&output, 429), 10);
    let separate = write(
        "separate",
        "seed: 4",
        &manifests.replace("SHARED", "false"),
        &tail,
    );
    let output = run(&load(&separate, &[]));
    assert_eq!(status_count(&output, 200), 20);
}

#[test]
fn shadow_mode_never_rejects() {
    let rules = "        global:
          rules:
            - limit: {requests: 3, unit: Minute}
              shadowMode: true
";
    let clients = "
clients:
  - {name: loop, kind: sequential, requests: 10, path: /api}
";
    let path = write(
        "shadow",
        "seed: 2",
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    );
    let output = run(&load(&path, &[]));
    assert_eq!(status_count(&output, 200), 10);
    let stats = &output.global_rate_limit.as_ref().unwrap().service_stats;
    let shadow: u64 = stats
        .iter()
        .filter(|(name, _)| name.ends_with(".shadow_mode"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(shadow, 7);
}

fn loop_on_limit(head: &str, requests: u32) -> Scenario {
    let rules = "        global:
          rules:
            - limit: {requests: 3, unit: Minute}
";
    let clients = format!(
        "
clients:
  - {{name: loop, kind: sequential, requests: {requests}, think_time: 10ms, path: /api}}
"
    );
    let name = format!("loop-{}", head.len());
    let path = write(&name, head, &policy(rules), &format!("{BACKEND}{clients}"));
    load(&path, &[])
}

#[test]
fn local_cache_answers_over_limit_keys() {
    let head = "seed: 2\nrate_limit_service: {local_cache: true}";
    let output = run(&loop_on_limit(head, 10));
    assert_eq!(status_count(&output, 200), 3);
    let stats = &output.global_rate_limit.as_ref().unwrap().service_stats;
    let cached: u64 = stats
        .iter()
        .filter(|(name, _)| name.ends_with(".over_limit_with_local_cache"))
        .map(|(_, value)| value)
        .sum();
    // The fourth request sets the cache; the six after it never reach Redis.
    assert_eq!(cached, 6);
}

#[test]
fn partitioned_replica_times_out_its_calls() {
    // Two Envoy workers, each on its own service replica; replica 0 cannot
    // reach Redis for the whole run.
    let head = "seed: 2
envoy: {replicas: 1, workers: 2}
rate_limit_service:
  replicas: 2
  redis:
    faults: [{kind: partition, from: 0s, to: 1h, replicas: [0]}]";
    let rules = "        global:
          rules:
            - limit: {requests: 1000, unit: Minute}
";
    let clients = "
clients:
  - {name: many, kind: sequential, count: 20, requests: 5, connection: per-request, path: /api}
";
    let path = write(
        "partition",
        head,
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    );
    let output = run(&load(&path, &[]));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.calls, 100);
    assert_eq!(global.error, global.timeouts);
    assert!(
        (25..=75).contains(&global.error),
        "{} of 100 calls failed",
        global.error
    );
    assert_eq!(global.ok + global.error, 100);
    assert_eq!(status_count(&output, 200), 100);
}

#[test]
fn service_replica_down_fails_fast() {
    let head = "seed: 2
rate_limit_service:
  faults: [{kind: down, from: 0s, to: 1h}]";
    let output = run(&loop_on_limit(head, 10));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.error, 10);
    // A refused connection is an error before the timeout.
    assert_eq!(global.timeouts, 0);
    assert_eq!(status_count(&output, 200), 10);
}

#[test]
fn redis_down_window_lets_traffic_through() {
    let head = "seed: 2
duration: 3m
rate_limit_service:
  redis:
    faults: [{kind: down, from: 1m, to: 2m}]";
    let rules = "        global:
          rules:
            - limit: {requests: 60, unit: Minute}
";
    let clients = "
clients:
  - {name: steady, kind: open, rate: 5, arrival: constant, path: /api}
";
    let path = write(
        "redis-down",
        head,
        &policy(rules),
        &format!("{BACKEND}{clients}"),
    );
    let output = run(&load(&path, &[]));
    // 60 in each healthy minute, all 300 in the minute Redis is down.
    assert_eq!(status_count(&output, 200), 60 + 300 + 60);
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.passed_unlimited, 300);
    assert_eq!(global.timeouts, 0);
}

#[test]
fn runs_are_deterministic() {
    let scenario = slow_redis("");
    let first = trafficsim::report::summary(&scenario, &run(&scenario));
    let second = trafficsim::report::summary(&scenario, &run(&scenario));
    assert_eq!(first, second);
}

/// The part of the global rate limit path whose concurrency a test bounds.
#[derive(Clone, Copy)]
enum Queue {
    Service,
    Redis,
}

impl Queue {
    fn name(self) -> &'static str {
        match self {
            Queue::Service => "service",
            Queue::Redis => "redis",
        }
    }
}

/// Loads open arrivals at `rate` against a limit far above the load, so
/// only the time `queue` takes decides each call. It takes 1 ms per call,
/// so with `bounded` (`concurrency: 1`) it handles 1,000 a second at most.
/// The other part keeps its fast defaults and never saturates.
fn busy(name: &str, rate: &str, queue: Queue, bounded: bool) -> Scenario {
    let rules = "        global:
          rules:
            - limit: {requests: 1000000, unit: Minute}
";
    let clients = format!(
        "
clients:
  - name: load
    kind: open
    rate: {rate}
    requests: 4000
    path: /api
"
    );
    let indent = match queue {
        Queue::Service => "  ",
        Queue::Redis => "    ",
    };
    let mut section = match queue {
        Queue::Service => String::from("rate_limit_service:\n"),
        Queue::Redis => String::from("rate_limit_service:\n  redis:\n"),
    };
    section.push_str(&format!("{indent}service_time: 1ms\n"));
    if bounded {
        section.push_str(&format!("{indent}concurrency: 1\n"));
    }
    let head = format!("seed: 3\n{section}");
    let path = write(name, &head, &policy(rules), &format!("{BACKEND}{clients}"));
    load(&path, &[])
}

/// Returns the mean wait in `queue` at 500 calls a second over seeds 1 to
/// 10: the mean latency with the queue bounded minus the mean without.
/// Everything else on the path takes constant time, so the difference is
/// exactly the queue's mean wait.
fn mean_queue_wait_ms(queue: Queue) -> f64 {
    let mean_latency_ms = |bounded: bool, seed: u64| {
        let name = format!("{}-md1-{bounded}", queue.name());
        let scenario = busy(&name, "500/s", queue, bounded);
        let output = sim::run_with(&scenario, seed, RunOptions::default());
        output.metrics.total_latency().mean() / 1000.0
    };
    let seeds = 1..=10u64;
    let total: f64 = seeds
        .clone()
        .map(|seed| mean_latency_ms(true, seed) - mean_latency_ms(false, seed))
        .sum();
    total / seeds.count() as f64
}

#[test]
fn redis_without_concurrency_never_saturates() {
    let output = run(&busy("redis-unbounded", "2000/s", Queue::Redis, false));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.timeouts, 0);
    assert_eq!(global.ok, 4000);
    assert!(global.redis_queue.is_none());
}

#[test]
fn redis_below_capacity_keeps_up() {
    // Half of Redis's capacity: waits stay far below Envoy's 20 ms timeout.
    let output = run(&busy("redis-half", "500/s", Queue::Redis, true));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.timeouts, 0);
    assert_eq!(global.ok, 4000);
    let queue = global.redis_queue.unwrap();
    assert!(queue.peak_waiting >= 1, "{queue:?}");
    assert!(queue.max_wait.as_secs_f64() < 0.015, "{queue:?}");
}

#[test]
fn redis_past_capacity_fails_open() {
    // Twice Redis's capacity: the queue grows without bound, calls time
    // out after 20 ms and requests pass without the limit. The service
    // counts every hit as it plans the pipeline.
    let output = run(&busy("redis-double", "2000/s", Queue::Redis, true));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert!(global.timeouts > 3_500, "{global:?}");
    assert_eq!(global.passed_unlimited, global.timeouts);
    assert_eq!(status_count(&output, 200), 4000);
    let queue = global.redis_queue.unwrap();
    assert!(queue.peak_waiting > 1_000, "{queue:?}");
    assert!(queue.max_wait.as_secs_f64() > 0.9, "{queue:?}");
    // The run ends when the last request does, with Redis still behind.
    assert!(queue.waiting_at_end > 1_000, "{queue:?}");
    let hits: u64 = global
        .service_stats
        .iter()
        .filter(|(name, _)| name.ends_with(".total_hits"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(hits, 4000);
}

#[test]
fn service_below_capacity_keeps_up() {
    let output = run(&busy("service-half", "500/s", Queue::Service, true));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.timeouts, 0);
    assert_eq!(global.ok, 4000);
    let wait = global.service_max_wait.unwrap();
    assert!(wait > SimDuration::ZERO, "{wait:?}");
    assert!(wait < SimDuration::from_millis(15), "{wait:?}");
}

#[test]
fn service_past_capacity_fails_open() {
    let scenario = busy("service-double", "2000/s", Queue::Service, true);
    let output = run(&scenario);
    let global = output.global_rate_limit.as_ref().unwrap();
    assert!(global.timeouts > 3_500, "{global:?}");
    assert_eq!(global.passed_unlimited, global.timeouts);
    assert!(global.service_max_wait.unwrap() > SimDuration::from_millis(900));
    let text = trafficsim::report::human_summary(&scenario, &output, &PathBuf::from("out"));
    assert!(text.contains("service calls waited up to"), "{text}");
}

#[test]
fn service_without_concurrency_never_saturates() {
    let output = run(&busy("service-unbounded", "2000/s", Queue::Service, false));
    let global = output.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.timeouts, 0);
    assert!(global.service_max_wait.is_none());
}

#[test]
fn service_queue_matches_m_d_1_wait() {
    // Poisson calls at 500 a second to one slot taking 1 ms: an M/D/1
    // queue at utilisation 0.5, whose mean wait is rho / (2 mu (1 - rho))
    // = 0.5 ms. Over 10 seeds of 4,000 calls the estimate's standard
    // error is about 0.01 ms.
    let wait_ms = mean_queue_wait_ms(Queue::Service);
    assert!((wait_ms - 0.5).abs() < 0.04, "mean wait {wait_ms} ms");
}

#[test]
fn redis_queue_matches_m_d_1_wait() {
    // The service adds a constant time, so pipelines still reach Redis as
    // a Poisson stream: with one slot of 1 ms at 500 a second, Redis is
    // an M/D/1 queue at utilisation 0.5 with a mean wait of 0.5 ms.
    let wait_ms = mean_queue_wait_ms(Queue::Redis);
    assert!((wait_ms - 0.5).abs() < 0.04, "mean wait {wait_ms} ms");
}
