//! `trafficsim compare` end to end, with the shipped
//! `scenarios/local-vs-global.yaml`: variants, common random numbers, the
//! figures of the comparison and its output files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trafficsim::compare::{self, VariantRun};
use trafficsim::scenario;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/local-vs-global.yaml")
}

fn run_shipped(threads: usize) -> Vec<VariantRun> {
    let path = shipped();
    let base = scenario::load(&path).unwrap_or_else(|d| panic!("does not load:\n{d}"));
    let variants = base
        .compare
        .as_ref()
        .expect("a compare section")
        .variants
        .clone();
    let loaded = compare::load_variants(&path, &variants)
        .unwrap_or_else(|e| panic!("variant {} does not load:\n{}", e.variant, e.diagnostics));
    compare::run_variants(loaded, base.seed, threads)
}

/// Runs the shipped comparison once, on two threads, for every test that
/// reads it.
fn shipped_runs() -> &'static [VariantRun] {
    static RUNS: OnceLock<Vec<VariantRun>> = OnceLock::new();
    RUNS.get_or_init(|| run_shipped(2))
}

#[test]
fn shipped_scenario_compares_local_and_global() {
    let runs = shipped_runs();
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["local", "global"]);
    let local = compare::summarize(&runs[0]);
    let global = compare::summarize(&runs[1]);

    // Each replica gets a fifth of each user's 300 a minute: no local 429.
    assert_eq!(local.rejected_429, 0);
    assert_eq!(local.admitted, local.completed);

    // Globally each user gets 100 a minute in the nine minutes Redis is
    // up; in the minute it is down, every request passes unlimited.
    assert_eq!(global.admitted - global.passed_unlimited, 20 * 100 * 9);
    assert!(
        (5_600..=6_400).contains(&global.passed_unlimited),
        "{} passed unlimited",
        global.passed_unlimited
    );
    let fairness = global.fairness_429.expect("global has 429s");
    assert!(fairness > 0.99, "fairness {fairness}");
    assert_eq!(local.fairness_429, None);
    assert!(global.spend_usd < 0.5 * local.spend_usd);
}

#[test]
fn unlimited_requests_fall_in_the_redis_outage() {
    let runs = shipped_runs();
    let report = runs[1]
        .output
        .global_rate_limit
        .as_ref()
        .expect("global limits");
    // Buckets are 10 s; Redis is down from 300 s to 360 s.
    for (bucket, count) in report.passed_unlimited_per_bucket.iter().enumerate() {
        if *count > 0 {
            assert!((29..36).contains(&bucket), "{count} in bucket {bucket}");
        }
    }
    assert!(runs[0].output.global_rate_limit.is_none());
}

#[test]
fn variants_share_client_draws() {
    let runs = shipped_runs();
    let users = |run: &VariantRun| -> Vec<u64> {
        compare::summarize(run)
            .users
            .iter()
            .map(|user| user.requests)
            .collect()
    };
    assert_eq!(users(&runs[0]), users(&runs[1]));
    assert_eq!(users(&runs[0]).len(), 20);
}

#[test]
fn thread_count_does_not_change_results() {
    let one = run_shipped(1);
    let two = shipped_runs();
    let csv = |runs: &[VariantRun]| {
        let summaries: Vec<_> = runs.iter().map(compare::summarize).collect();
        compare::csv(&summaries, Some(2000.0 / 60.0))
    };
    assert_eq!(csv(&one), csv(two));
}

#[test]
fn outputs_are_written() {
    let runs = shipped_runs();
    let summaries: Vec<_> = runs.iter().map(compare::summarize).collect();
    let dir = std::env::temp_dir().join(format!("trafficsim-compare-{}", std::process::id()));
    let outputs = compare::CompareOutputs {
        dir: &dir,
        scenario_name: "local-vs-global",
        seed: 1,
        limit_per_s: Some(2000.0 / 60.0),
        tool_version: "test",
    };
    compare::write_outputs(&outputs, runs, &summaries).unwrap();
    let csv = std::fs::read_to_string(dir.join("compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().nth(2).unwrap().starts_with("global,"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["variants"][1]["users"].as_array().unwrap().len(), 20);
    for chart in [
        "admitted",
        "latency-p99",
        "spend",
        "rejected-per-user",
        "passed-unlimited",
    ] {
        assert!(dir.join(format!("{chart}.png")).exists(), "{chart}.png");
        assert!(dir.join(format!("{chart}.svg")).exists(), "{chart}.svg");
    }
    assert!(dir.join("global/summary.json").exists());
    assert!(dir.join("local/timeseries.csv").exists());
}

#[test]
fn command_line_variants_merge_by_name() {
    let args = [
        "baseline".to_string(),
        "r3:envoy.replicas=3".to_string(),
        "r3:rate_limit_mode=global".to_string(),
    ];
    let variants = compare::variants_from_args(&args).unwrap();
    assert_eq!(variants.len(), 2);
    assert!(variants[0].overrides.is_empty());
    assert_eq!(variants[1].overrides.len(), 2);
    let loaded = compare::load_variants(&shipped(), &variants).unwrap();
    assert_eq!(loaded[1].1.envoy.replicas, 3);
    assert_eq!(
        loaded[1].1.rate_limit_mode,
        Some(scenario::RateLimitMode::Global)
    );
    assert!(compare::variants_from_args(&["bad name".to_string()]).is_err());
}

#[test]
fn bad_variant_value_is_reported_with_its_path() {
    let args = ["x:envoy.replicas=0".to_string()];
    let variants = compare::variants_from_args(&args).unwrap();
    let error = compare::load_variants(&shipped(), &variants).unwrap_err();
    assert_eq!(error.variant, "x");
    let text = error.diagnostics.to_string();
    assert!(
        text.contains("envoy.replicas: replicas must be from 1"),
        "{text}"
    );
}

#[test]
fn replica_count_keeps_client_draws() {
    // Random spread and per-request worker choices draw from their own
    // streams, so changing the replica count changes no client's requests.
    let args: Vec<String> = [
        "r1:envoy.replicas=1",
        "r1:envoy.spread=random",
        "r1:duration=2m",
        "r3:envoy.replicas=3",
        "r3:envoy.spread=random",
        "r3:duration=2m",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let variants = compare::variants_from_args(&args).unwrap();
    let loaded = compare::load_variants(&shipped(), &variants).unwrap();
    let runs = compare::run_variants(loaded, 1, 2);
    let requests = |run: &VariantRun| -> Vec<u64> {
        compare::summarize(run)
            .users
            .iter()
            .map(|user| user.requests)
            .collect()
    };
    assert_eq!(requests(&runs[0]), requests(&runs[1]));
}
