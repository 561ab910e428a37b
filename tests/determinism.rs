//! Same scenario and seed give byte-identical outputs; another seed gives
//! other draws.

use std::path::{Path, PathBuf};

use trafficsim::{report, scenario, sim};

fn write_outputs(file: &str, seed: u64, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let mut scenario = scenario::load(&path).unwrap_or_else(|d| panic!("{d}"));
    // A minute is enough to exercise every component and keeps debug
    // builds quick.
    scenario.duration = Some(trafficsim::time::SimDuration::from_secs(60));
    let output = sim::run(&scenario, seed);
    report::write_run(dir, &scenario, &output, "test").unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "trafficsim-determinism-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn same_seed_gives_identical_bytes() {
    for file in [
        "scenarios/tutorial/five-replicas-local.yaml",
        "scenarios/runaway-llm-agent.yaml",
    ] {
        let first = write_outputs(file, 11, &scratch("a"));
        let second = write_outputs(file, 11, &scratch("b"));
        let names: Vec<&str> = first.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".trafficsim-output",
                "manifest.json",
                "outcomes.png",
                "outcomes.svg",
                "report.html",
                "spend.png",
                "spend.svg",
                "summary.json",
                "timeseries.csv"
            ]
        );
        for ((name, a), (_, b)) in first.iter().zip(&second) {
            assert!(a == b, "{file}: {name} differs between two runs");
        }
    }
}

#[test]
fn other_seed_changes_draws() {
    let file = "scenarios/tutorial/five-replicas-local.yaml";
    let first = write_outputs(file, 1, &scratch("c"));
    let second = write_outputs(file, 2, &scratch("d"));
    let summary = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .find(|(name, _)| name == "summary.json")
            .map(|(_, bytes)| bytes.clone())
            .unwrap()
    };
    assert_ne!(summary(&first), summary(&second));
}

#[test]
fn adding_a_client_keeps_other_draws() {
    // Each client draws from its own stream, so a new client does not
    // change the latencies another client sees from an unloaded backend.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tutorial/basic-limit.yaml");
    let mut scenario = scenario::load(&base).unwrap();
    scenario.gateway.routes[0].local_rate_limit = None;
    let alone = sim::run(&scenario, 5);
    let mut extra = scenario.clients[0].clone();
    extra.name = "extra".to_string();
    extra.start = trafficsim::time::SimDuration::from_secs(60);
    scenario.clients.insert(0, extra);
    let together = sim::run(&scenario, 5);
    let latency =
        |output: &sim::RunOutput, group: usize| output.metrics.groups[group].latency.clone();
    assert_eq!(latency(&alone, 0), latency(&together, 1));
}

#[test]
fn outputs_never_replace_foreign_files() {
    let dir = scratch("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("summary.json"), b"someone else's file").unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tutorial/basic-limit.yaml");
    let scenario = scenario::load(&path).unwrap();
    let output = sim::run(&scenario, 1);
    let error = report::write_run(&dir, &scenario, &output, "test").unwrap_err();
    assert!(error.to_string().contains("did not write"), "{error}");
    assert_eq!(
        std::fs::read(dir.join("summary.json")).unwrap(),
        b"someone else's file"
    );

    // A folder trafficsim made may be written again.
    let ours = scratch("ours");
    report::write_run(&ours, &scenario, &output, "test").unwrap();
    report::write_run(&ours, &scenario, &output, "test").unwrap();
}
