//! `trafficsim sweep` and `merge` through the built binary: the output does
//! not depend on the thread count or on sharding.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn trafficsim(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_trafficsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the trafficsim binary runs");
    assert!(
        output.status.success(),
        "trafficsim {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

const SMALL: [&str; 8] = [
    "--param",
    "envoy.replicas=1,2",
    "--param",
    "BackendTrafficPolicy/capacity:spec.circuitBreaker.maxParallelRequests=8..24:16",
    "--param",
    "duration=5s",
    "--seeds",
    "2",
];

fn sweep(dir: &Path, extra: &[&str]) {
    let mut args = vec!["sweep", "scenarios/capacity-plan.yaml", "-q", "--out"];
    let dir = dir.to_string_lossy().into_owned();
    args.push(&dir);
    args.extend(SMALL);
    args.extend(extra);
    trafficsim(&args);
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn thread_count_does_not_change_output() {
    let one = scratch("one");
    let two = scratch("two");
    sweep(&one, &["--threads", "1"]);
    sweep(&two, &["--threads", "2"]);
    for file in [
        "sweep.csv",
        "sweep.json",
        "sweep_fraction_503.svg",
        "sweep_latency_ms_p99.png",
    ] {
        assert!(read(&one, file) == read(&two, file), "{file} differs");
    }
    let csv = String::from_utf8(read(&one, "sweep.csv")).unwrap();
    // 4 points x 2 seeds, then 4 mean rows, after the header.
    assert_eq!(csv.lines().filter(|l| l.starts_with("run,")).count(), 8);
    assert_eq!(csv.lines().filter(|l| l.starts_with("mean,")).count(), 4);
}

#[test]
fn merged_shards_equal_one_run() {
    let whole = scratch("whole");
    sweep(&whole, &[]);
    let shards = scratch("shards");
    sweep(&shards, &["--shard", "1/3"]);
    sweep(&shards, &["--shard", "2/3"]);
    sweep(&shards, &["--shard", "3/3"]);
    let merged = scratch("merged");
    let files: Vec<String> = (1..=3)
        .map(|i| {
            shards
                .join(format!("sweep-shard-{i}-of-3.json"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let merged_text = merged.to_string_lossy().into_owned();
    let mut args = vec!["merge", "-q", "--out", merged_text.as_str()];
    args.extend(files.iter().map(String::as_str));
    trafficsim(&args);
    for file in ["sweep.csv", "sweep.json", "sweep_admitted_per_s.png"] {
        assert!(read(&whole, file) == read(&merged, file), "{file} differs");
    }
}

#[test]
fn merge_rejects_missing_shards() {
    let shards = scratch("partial");
    sweep(&shards, &["--shard", "1/2"]);
    let file = shards.join("sweep-shard-1-of-2.json");
    let output = Command::new(env!("CARGO_BIN_EXE_trafficsim"))
        .args(["merge", "--out"])
        .arg(scratch("partial-out"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("some shards are missing"), "{stderr}");
}

#[test]
fn bad_parameters_are_input_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_trafficsim"))
        .args([
            "sweep",
            "scenarios/capacity-plan.yaml",
            "--param",
            "envoy.replicas=1,zero",
            "--out",
        ])
        .arg(scratch("bad"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("envoy.replicas=zero"), "{stderr}");
    assert!(
        stderr.contains("envoy.replicas: expected an integer"),
        "{stderr}"
    );
}
