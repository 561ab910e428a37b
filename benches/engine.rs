//! Simulation speed: a whole shipped scenario per iteration, and the bare
//! event queue for comparison.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use trafficsim::engine::EventQueue;
use trafficsim::time::SimTime;
use trafficsim::{scenario, sim};

fn five_replicas(c: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tutorial/five-replicas-local.yaml");
    let scenario = match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    c.bench_function("five_replicas_local_10_minutes", |b| {
        b.iter(|| sim::run(&scenario, 1).events)
    });
}

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

criterion_group!(benches, five_replicas, queue_push_pop);
criterion_main!(benches);
