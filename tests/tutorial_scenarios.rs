//! The shipped tutorial scenarios, run end to end. Each expectation was
//! measured on real Envoy 1.40 with the configuration Envoy Gateway v1.9
//! generates for the same manifests.

use std::path::Path;

use trafficsim::scenario;
use trafficsim::sim::{self, RunOptions, RunOutput};

fn run(file: &str) -> (scenario::Scenario, RunOutput) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let scenario = match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{file} does not load:\n{diagnostics}"),
    };
    let options = RunOptions {
        record_requests: true,
        ..RunOptions::default()
    };
    let output = sim::run_with(&scenario, scenario.seed, options);
    (scenario, output)
}

/// Statuses of one client's requests in the order they were sent.
fn statuses(scenario: &scenario::Scenario, output: &RunOutput, client: &str) -> Vec<u16> {
    let group = scenario
        .clients
        .iter()
        .position(|c| c.name == client)
        .unwrap_or_else(|| panic!("no client {client}"));
    let mut records: Vec<_> = output
        .requests
        .iter()
        .filter(|r| r.group as usize == group)
        .collect();
    records.sort_by_key(|r| (r.sent, r.instance));
    records.iter().map(|r| r.status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn basic_limit_admits_five() {
    let (scenario, output) = run("scenarios/tutorial/basic-limit.yaml");
    let got = statuses(&scenario, &output, "curl-loop");
    assert_eq!(got, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    assert_eq!(
        output.envoy_stats.get("http_local_rate_limit.rate_limited"),
        5
    );
    assert_eq!(output.envoy_stats.get("http_local_rate_limit.ok"), 5);
}

#[test]
fn per_user_distinct_limits_each_user() {
    let (scenario, output) = run("scenarios/tutorial/per-user-distinct.yaml");
    for user in ["alice", "bob"] {
        assert_eq!(
            statuses(&scenario, &output, user),
            [200, 200, 200, 429, 429],
            "{user}"
        );
    }
}

#[test]
fn literal_star_limits_nobody() {
    let (scenario, output) = run("scenarios/tutorial/per-user-literal-star.yaml");
    for user in ["alice", "bob"] {
        assert_eq!(statuses(&scenario, &output, user), [200; 5], "{user}");
    }
}

#[test]
fn anonymous_and_authenticated_tiers() {
    let (scenario, output) = run("scenarios/tutorial/anonymous-vs-authenticated.yaml");
    let anonymous = statuses(&scenario, &output, "anonymous");
    assert_eq!(&anonymous[..10], [200; 10]);
    assert_eq!(&anonymous[10..], [429; 5]);
    assert_eq!(statuses(&scenario, &output, "alice"), [200; 15]);
}

#[test]
fn tiered_literal_star_shares_one_bucket() {
    let (scenario, output) = run("scenarios/tutorial/tiered-literal-star.yaml");
    let anonymous = statuses(&scenario, &output, "anonymous");
    assert_eq!(&anonymous[..10], [200; 10]);
    assert_eq!(&anonymous[10..], [429; 5]);
    assert_eq!(statuses(&scenario, &output, "alice"), [429; 15]);
}

#[test]
fn parallel_requests_overflow_at_once() {
    let (scenario, output) = run("scenarios/tutorial/circuit-breaker-parallel.yaml");
    let got = statuses(&scenario, &output, "burst");
    assert_eq!(count(&got, 200), 5);
    assert_eq!(count(&got, 503), 15);
    let cluster = "cluster.httproute/default/backend/rule/0";
    assert_eq!(
        output
            .envoy_stats
            .get(&format!("{cluster}.upstream_rq_active_overflow")),
        15
    );
    assert_eq!(
        output
            .envoy_stats
            .get(&format!("{cluster}.upstream_rq_total")),
        5
    );
    // The 503s come back at once instead of waiting for a slot.
    let slow_503s = output
        .requests
        .iter()
        .filter(|r| r.status == 503 && r.completed.saturating_since(r.sent).as_secs_f64() > 0.01)
        .count();
    assert_eq!(slow_503s, 0);
}

#[test]
fn hey_against_ten_parallel() {
    let (scenario, output) = run("scenarios/tutorial/circuit-breaker-hey.yaml");
    let got = statuses(&scenario, &output, "hey");
    assert_eq!(count(&got, 200), 10);
    assert_eq!(count(&got, 503), 90);
    // The run takes about one backend delay, not ten.
    assert!(output.end.as_secs_f64() < 2.1, "{}", output.end);
}

#[test]
fn refill_is_continuous() {
    let (scenario, output) = run("scenarios/tutorial/refill.yaml");
    assert_eq!(
        statuses(&scenario, &output, "drain"),
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(statuses(&scenario, &output, "after-wait"), [200, 429]);
}

#[test]
fn five_replicas_admit_five_times_the_limit() {
    let (scenario, output) = run("scenarios/tutorial/five-replicas-local.yaml");
    let group = scenario
        .clients
        .iter()
        .position(|c| c.name == "steady")
        .unwrap();
    // After the first minute's full buckets, each minute admits about
    // 5 replicas x 100.
    let steady: Vec<u64> = output
        .metrics
        .rows
        .iter()
        .filter(|row| row.group == group && row.bucket >= 1)
        .map(|row| row.statuses[0])
        .collect();
    assert_eq!(steady.len(), 9);
    for admitted in steady {
        assert!(
            (490..=510).contains(&admitted),
            "{admitted} admitted in a minute"
        );
    }
}
