//! Entry points shared by the fuzzers (`fuzz/`) and the test that replays
//! their corpus: each takes arbitrary bytes and must return, without
//! panicking, whatever the bytes are.

use std::path::Path;

use crate::scenario::{self, TraceColumns};
use crate::{manifest, yaml};

/// Reads `data` as a scenario file placed in `dir` (relative paths in it
/// resolve there). A scenario that loads is also simulated briefly, and
/// its expectations are judged on at most two seeds.
pub fn scenario_bytes(data: &[u8], dir: &Path) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut scenario) = scenario::parse_str(text, &dir.join("fuzz.yaml")) {
        // Bound the run so that a fuzzed scenario cannot run for long.
        scenario.limits.max_events = scenario.limits.max_events.min(20_000);
        scenario.limits.max_in_flight = scenario.limits.max_in_flight.min(1_000);
        let _ = crate::sim::run(&scenario, scenario.seed);
        if !scenario.expectations.is_empty() {
            for expectation in &mut scenario.expectations {
                expectation.seeds = expectation.seeds.min(2);
            }
            let _ = crate::check::check_scenario(&scenario);
        }
    }
}

/// Reads `data` as a manifest file and translates what it holds.
pub fn manifest_bytes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz-manifests.yaml");
    let Ok(documents) = yaml::parse_str(text, file) else {
        return;
    };
    let roots: Vec<yaml::Node> = documents.into_iter().map(|d| d.root).collect();
    if let Ok(set) = manifest::load_nodes(&roots, file) {
        let _ = manifest::translate(&set, &manifest::TranslateOptions::default());
    }
}

/// Reads `data` as a trace CSV with the Azure trace's columns.
pub fn trace_bytes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let columns = TraceColumns {
        time: "TIMESTAMP".to_string(),
        input_tokens: Some("ContextTokens".to_string()),
        output_tokens: Some("GeneratedTokens".to_string()),
    };
    let _ = scenario::parse_trace(text, Path::new("fuzz-trace.csv"), &columns);
}
