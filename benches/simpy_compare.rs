//! Speed against the SimPy reference model, measured in one run on one
//! machine: `cargo bench --bench simpy_compare`.
//!
//! Runs the benchmark scenario (`scenarios/bench/five-replicas-local-limits.yaml`)
//! and the SimPy model of the same system (`benches/simpy_reference.py`,
//! needs `python3 -m pip install simpy`) with the same parameters and
//! seeds, and prints for each the outcome fractions and the simulated
//! requests per wall-clock second (median of the runs), their ratio, and
//! the engine's events per second against a bare binary-heap loop.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use trafficsim::{scenario, sim};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Outcome counts (200, 429, 503) and simulated requests per second.
struct Measurement {
    counts: [u64; 3],
    requests_per_s: f64,
}

fn trafficsim_run(scenario: &scenario::Scenario, seed: u64) -> (Measurement, f64) {
    let started = Instant::now();
    let output = sim::run(scenario, seed);
    let wall = started.elapsed().as_secs_f64();
    let statuses = output.metrics.total_statuses();
    let count = |status| statuses.get(&status).copied().unwrap_or(0);
    let total: u64 = statuses.values().sum();
    let measurement = Measurement {
        counts: [count(200), count(429), count(503)],
        requests_per_s: total as f64 / wall,
    };
    (measurement, output.events as f64 / wall)
}

fn simpy_run(script: &Path, seconds: u64, seed: u64) -> Option<Measurement> {
    let output = Command::new("python3")
        .arg(script)
        .args([
            "--seconds",
            &seconds.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("simpy: {}", String::from_utf8_lossy(&output.stderr).trim());
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|word| word.strip_prefix(&format!("{name}=")))
            .and_then(|value| value.parse().ok())
    };
    Some(Measurement {
        counts: [
            field("200")? as u64,
            field("429")? as u64,
            field("503")? as u64,
        ],
        requests_per_s: field("requests_per_s")?,
    })
}

/// Events per second of a bare binary heap of (time, seq) keys with the
/// same number of pending entries.
fn bare_heap_events_per_s(pending: usize, events: usize) -> f64 {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap = BinaryHeap::new();
    let mut state: u64 = 1;
    let next = |state: &mut u64| {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        *state >> 44
    };
    for seq in 0..pending as u64 {
        heap.push(Reverse((next(&mut state), seq)));
    }
    let started = Instant::now();
    let mut seq = pending as u64;
    for _ in 0..events {
        if let Some(Reverse((time, _))) = heap.pop() {
            heap.push(Reverse((time + next(&mut state), seq)));
            seq += 1;
        }
    }
    events as f64 / started.elapsed().as_secs_f64()
}

fn fractions(counts: [u64; 3]) -> String {
    let total: u64 = counts.iter().sum::<u64>().max(1);
    format!(
        "200 {:.4}  429 {:.4}  503 {:.4}",
        counts[0] as f64 / total as f64,
        counts[1] as f64 / total as f64,
        counts[2] as f64 / total as f64
    )
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent; only
    // measure when asked to.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("scenarios/bench/five-replicas-local-limits.yaml");
    let scenario = match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    let seconds = scenario
        .duration
        .map_or(120, |d| d.as_nanos() / 1_000_000_000);

    let mut ours = Vec::new();
    let mut events = Vec::new();
    for seed in SEEDS {
        let (measurement, events_per_s) = trafficsim_run(&scenario, seed);
        println!(
            "trafficsim seed {seed}: {}  {:.0} requests/s",
            fractions(measurement.counts),
            measurement.requests_per_s
        );
        ours.push(measurement.requests_per_s);
        events.push(events_per_s);
    }
    let script = root.join("benches/simpy_reference.py");
    let mut theirs = Vec::new();
    for seed in SEEDS {
        match simpy_run(&script, seconds, seed) {
            Some(measurement) => {
                println!(
                    "simpy      seed {seed}: {}  {:.0} requests/s",
                    fractions(measurement.counts),
                    measurement.requests_per_s
                );
                theirs.push(measurement.requests_per_s);
            }
            None => {
                println!("simpy: not available (python3 -m pip install simpy)");
                break;
            }
        }
    }
    let ours_median = median(ours);
    println!("trafficsim median: {ours_median:.0} simulated requests per wall-clock second");
    if !theirs.is_empty() {
        let theirs_median = median(theirs);
        println!("simpy median:      {theirs_median:.0} simulated requests per wall-clock second");
        println!("ratio:             {:.1}x", ours_median / theirs_median);
    }
    let engine = median(events);
    let bare = bare_heap_events_per_s(4_096, 5_000_000);
    println!(
        "engine: {engine:.0} events/s; bare binary heap: {bare:.0} pop+push/s; overhead {:.1}x",
        bare / engine
    );
}
