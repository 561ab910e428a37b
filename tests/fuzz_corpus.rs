//! Replays the fuzzers' corpus (`fuzz/corpus/`) through the same entry
//! points, so every input a fuzzer has kept is checked on each test run,
//! without a fuzzer. The corpus seeds must also still load as intended.

use std::path::{Path, PathBuf};

use trafficsim::fuzz_entry;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn scenario_corpus_never_panics() {
    let files = corpus("scenario");
    assert!(files.len() >= 5);
    for file in files {
        let data = std::fs::read(&file).unwrap();
        fuzz_entry::scenario_bytes(&data, &std::env::temp_dir());
    }
}

#[test]
fn manifest_corpus_never_panics() {
    let files = corpus("manifest");
    assert!(files.len() >= 20);
    for file in files {
        let data = std::fs::read(&file).unwrap();
        fuzz_entry::manifest_bytes(&data);
    }
}

#[test]
fn trace_corpus_never_panics() {
    let files = corpus("trace");
    assert!(files.len() >= 3);
    for file in files {
        let data = std::fs::read(&file).unwrap();
        fuzz_entry::trace_bytes(&data);
    }
}

#[test]
fn inline_seed_scenarios_load() {
    // The seeds are only useful to the fuzzer if they reach the simulation.
    for name in [
        "tiers.yaml",
        "open.yaml",
        "closed.yaml",
        "global.yaml",
        "expect.yaml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/scenario")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(diagnostics) = trafficsim::scenario::parse_str(&text, &path) {
            panic!("{name}: {diagnostics}");
        }
    }
}
