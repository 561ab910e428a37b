//! Simulation speed: the benchmark model shared with the SimPy reference,
//! a shipped tutorial scenario, and the bare event queue for comparison.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use trafficsim::engine::EventQueue;
use trafficsim::time::SimTime;
use trafficsim::{scenario, sim};

fn load(relative: &str) -> scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    }
}

/// About 240,000 requests: 120 s at 2000 requests per second.
fn benchmark_model(c: &mut Criterion) {
    let scenario = load("scenarios/bench/five-replicas-local-limits.yaml");
    let mut group = c.benchmark_group("benchmark_model");
    group.sample_size(10);
    group.bench_function("120s_2000rps", |b| b.iter(|| sim::run(&scenario, 1).events));
    group.finish();
}

/// 10 minutes at 1000 requests per minute through 5 replicas.
fn five_replicas(c: &mut Criterion) {
    let scenario = load("scenarios/tutorial/five-replicas-local.yaml");
    c.bench_function("five_replicas_local_10_minutes", |b| {
        b.iter(|| sim::run(&scenario, 1).events)
    });
}

/// Four minutes of the retry storm: client and Envoy retries, timeouts and
/// a backend queue growing without bound, about 870,000 events.
fn retry_storm(c: &mut Criterion) {
    let scenario = load("scenarios/retry-storm.yaml");
    let mut group = c.benchmark_group("retry_storm");
    group.sample_size(10);
    group.bench_function("4_minutes", |b| b.iter(|| sim::run(&scenario, 1).events));
    group.finish();
}

/// Measures the shipped comparison's global variant: 10 minutes of 20
/// users at 5 requests per second, each through the rate limit service and
/// Redis.
fn global_rate_limit(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/local-vs-global.yaml");
    let global = match trafficsim::overrides::parse("rate_limit_mode=global") {
        Ok(change) => change,
        Err(message) => panic!("{message}"),
    };
    let scenario = match scenario::load_with(&path, &[global]) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    let mut group = c.benchmark_group("global_rate_limit");
    group.sample_size(10);
    group.bench_function("local_vs_global_10_minutes", |b| {
        b.iter(|| sim::run(&scenario, 1).events)
    });
    group.finish();
}

/// 100,000 pushes and pops of random times: the data structure alone.
fn queue_push_pop(c: &mut Criterion) {
    c.bench_function("event_queue_100k", |b| {
        b.iter(|| {
            let mut queue = EventQueue::new();
            let mut state: u64 = 1;
            for i in 0..100_000u64 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                queue.schedule_at(SimTime::from_nanos(state >> 40), i);
            }
            let mut sum = 0u64;
            while let Some((_, value)) = queue.pop() {
                sum = sum.wrapping_add(value);
            }
            sum
        })
    });
}

criterion_group!(
    benches,
    benchmark_model,
    five_replicas,
    retry_storm,
    global_rate_limit,
    queue_push_pop
);
criterion_main!(benches);
