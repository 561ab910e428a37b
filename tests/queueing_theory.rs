//! Long simulations checked against queueing theory.
//!
//! An Envoy circuit breaker in front of exponential service times is a
//! queue with a closed-form solution. With HTTP/1.1, `maxConnections` c and
//! `maxPendingRequests` K - c under Poisson arrivals it is M/M/c/K;
//! `maxParallelRequests` alone is an Erlang-B loss system. A local token
//! bucket admits min(offered rate, refill rate) in the long run and a
//! burst of exactly its capacity after an idle period.
//!
//! Each check runs independent replications (seeds 1..=10) and compares
//! the formula with a 99% Student-t confidence interval of the replication
//! means. The scenarios are under `tests/queueing/`.

use std::path::Path;

use trafficsim::scenario::{self, Scenario};
use trafficsim::sim::{self, RequestRecord, RunOptions};
use trafficsim::time::SimTime;

const REPLICATIONS: u64 = 10;
/// Student's t quantile 0.995 for 9 degrees of freedom (two-sided 99%).
const T_99_DF9: f64 = 3.2498;

fn load(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/queueing")
        .join(file);
    match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{file} does not load:\n{diagnostics}"),
    }
}

fn records(scenario: &Scenario, seed: u64) -> Vec<RequestRecord> {
    let options = RunOptions {
        record_requests: true,
        ..RunOptions::default()
    };
    sim::run_with(scenario, seed, options).requests
}

/// Mean and 99% confidence half-width of independent replication values.
fn confidence_interval(values: &[f64]) -> (f64, f64) {
    assert_eq!(values.len() as u64, REPLICATIONS);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, T_99_DF9 * (variance / n).sqrt())
}

fn assert_inside(what: &str, values: &[f64], expected: f64) {
    let (mean, half_width) = confidence_interval(values);
    assert!(
        (mean - expected).abs() <= half_width,
        "{what}: formula {expected:.5}, simulated {mean:.5} ± {half_width:.5} (99% CI)"
    );
}

/// M/M/c/K state probabilities p_0 ..= p_K for arrival rate `lambda` and
/// service rate `mu` per server.
fn mmck_probabilities(lambda: f64, mu: f64, c: u32, k: u32) -> Vec<f64> {
    let a = lambda / mu;
    let mut weights = Vec::new();
    let mut term = 1.0;
    for n in 0..=k {
        if n > 0 {
            // a^n / n! below c servers; a^n / (c! c^(n-c)) at or above.
            term *= a / f64::from(n.min(c));
        }
        weights.push(term);
    }
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// Erlang's B formula by its stable recursion.
fn erlang_b(servers: u32, offered_erlangs: f64) -> f64 {
    let mut blocking = 1.0;
    for k in 1..=servers {
        blocking = offered_erlangs * blocking / (f64::from(k) + offered_erlangs * blocking);
    }
    blocking
}

/// Requests sent in `[from_s, to_s)`: the share rejected with 503 and the
/// mean time in the system of the admitted ones, in seconds.
fn blocking_and_sojourn(records: &[RequestRecord], from_s: u64, to_s: u64) -> (f64, f64) {
    let window =
        SimTime::from_nanos(from_s * 1_000_000_000)..SimTime::from_nanos(to_s * 1_000_000_000);
    let measured: Vec<&RequestRecord> = records
        .iter()
        .filter(|r| window.contains(&r.sent))
        .collect();
    let blocked = measured.iter().filter(|r| r.status == 503).count();
    let admitted: Vec<f64> = measured
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.completed.saturating_since(r.sent).as_secs_f64())
        .collect();
    assert_eq!(
        blocked + admitted.len(),
        measured.len(),
        "unexpected statuses"
    );
    let blocking = blocked as f64 / measured.len() as f64;
    let sojourn = admitted.iter().sum::<f64>() / admitted.len() as f64;
    (blocking, sojourn)
}

#[test]
fn formulas_match_published_values() {
    let p = mmck_probabilities(100.0, 20.0, 5, 10);
    let blocking = p[10];
    let in_system: f64 = p.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
    let sojourn = in_system / (100.0 * (1.0 - blocking));
    assert!((blocking - 0.1175).abs() < 5e-5, "{blocking}");
    assert!((sojourn - 0.06997).abs() < 5e-6, "{sojourn}");
    assert!((erlang_b(10, 8.0) - 0.1217).abs() < 5e-5);
}

#[test]
fn circuit_breaker_is_mmck() {
    let scenario = load("mmck-5-10.yaml");
    let (lambda, mu) = (100.0, 20.0);
    let p = mmck_probabilities(lambda, mu, 5, 10);
    let blocking = p[10];
    let in_system: f64 = p.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
    let sojourn = in_system / (lambda * (1.0 - blocking));

    let mut blockings = Vec::new();
    let mut sojourns = Vec::new();
    for seed in 1..=REPLICATIONS {
        // The first 10 s are warm-up; requests sent after 200 s may still
        // be in flight when the 210 s run ends.
        let (b, w) = blocking_and_sojourn(&records(&scenario, seed), 10, 200);
        blockings.push(b);
        sojourns.push(w);
    }
    assert_inside("M/M/5/10 blocking probability", &blockings, blocking);
    assert_inside("M/M/5/10 mean time in system (s)", &sojourns, sojourn);
}

#[test]
fn parallel_request_limit_is_erlang_b() {
    let scenario = load("erlang-b-10.yaml");
    let expected = erlang_b(10, 160.0 / 20.0);
    let mut blockings = Vec::new();
    let mut sojourns = Vec::new();
    for seed in 1..=REPLICATIONS {
        let (b, w) = blocking_and_sojourn(&records(&scenario, seed), 10, 200);
        blockings.push(b);
        sojourns.push(w);
    }
    assert_inside("Erlang B blocking probability", &blockings, expected);
    // A loss system never queues: admitted requests spend only their
    // service time, whose mean is 50 ms.
    assert_inside("Erlang B mean time in system (s)", &sojourns, 0.050);
}

/// Admitted requests per second over the whole run, one value per seed.
fn admitted_rates(file: &str) -> (Vec<f64>, f64) {
    let scenario = load(file);
    let seconds = scenario
        .duration
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let rates = (1..=REPLICATIONS)
        .map(|seed| {
            let admitted = records(&scenario, seed)
                .iter()
                .filter(|r| r.status == 200)
                .count();
            admitted as f64 / seconds
        })
        .collect();
    (rates, seconds)
}

#[test]
fn token_bucket_admits_refill_rate_under_overload() {
    let (rates, seconds) = admitted_rates("token-bucket-poisson-30.yaml");
    // The bucket starts full, so at most its capacity (10) comes on top of
    // the refill rate over the whole run.
    for rate in &rates {
        assert!(*rate <= 10.0 + 10.0 / seconds + 1e-9, "{rate} per second");
    }
    let (mean, half_width) = confidence_interval(&rates);
    assert!(
        (mean - 10.0).abs() <= half_width + 10.0 / seconds,
        "admitted {mean:.4} ± {half_width:.4} per second, refill 10"
    );
}

#[test]
fn token_bucket_admits_offered_rate_under_light_load() {
    let (rates, _) = admitted_rates("token-bucket-poisson-5.yaml");
    assert_inside("admitted rate under 5/s Poisson", &rates, 5.0);
}

#[test]
fn token_bucket_burst_after_idle_is_capacity() {
    let scenario = load("token-bucket-burst.yaml");
    for seed in 1..=3 {
        let output = records(&scenario, seed);
        let burst: Vec<&RequestRecord> = output.iter().filter(|r| r.group == 1).collect();
        assert_eq!(burst.len(), 100);
        let admitted = burst.iter().filter(|r| r.status == 200).count();
        assert_eq!(admitted, 25, "seed {seed}");
    }
}
