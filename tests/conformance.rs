//! Conformance against real Envoy: every case under `tests/conformance/cases/`
//! is simulated and compared with what Envoy 1.40 did for the same policy.
//!
//! A case folder contains `scenario.yaml` (the policy and the workload),
//! `case.json` (how to compare), `envoy.yaml` (the bootstrap real Envoy ran,
//! generated from the scenario by `trafficsim envoy-config`) and
//! `recorded.json` (the outcome of several real runs). Re-record with
//! `python3 tests/conformance/record/record.py`; see `docs/fidelity.md`.
//!
//! The compared quantities are, per workload step, the count of each status
//! and of each `x-envoy-attempt-count`, the requests each endpoint answered
//! when the case says so, and Envoy's policy stats. An `exact` case must
//! equal every real run. A `tolerance` case must fall inside
//! `[min - a, max + a]` of the real runs, where
//! `a = spread_factor * (max - min) + sampling_sigmas * sd`, where `sd` is
//! the standard deviation of the difference of two independent samples of
//! the count (binomial over the step's `n` requests with the share `p`
//! pooled from the real runs and the simulation, or Poisson for counts
//! that can exceed `n`, such as attempts).
//!
//! `docs/fidelity.md` is generated here: set `TRAFFICSIM_BLESS=1` to
//! rewrite it; otherwise the test fails when it is out of date.

#[path = "conformance/support.rs"]
mod support;

use support::{Case, Verdict, load_cases, render_fidelity};

use std::path::Path;

#[test]
fn conformance_cases_agree_with_envoy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = load_cases(&root.join("tests/conformance/cases"));
    assert!(cases.len() >= 40, "only {} conformance cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let result = case.compare();
        // An unmodelled case may agree by chance in one recording; a
        // suspected bug that agrees has been fixed.
        let explained = case.suspected_bug().or(case.unmodelled());
        match (&result.verdict, explained) {
            (Verdict::Out, None) => failures.push(format!(
                "{}: simulation disagrees with Envoy:\n{}",
                case.name,
                result.disagreements.join("\n")
            )),
            (Verdict::Exact | Verdict::Within, _) if case.suspected_bug().is_some() => failures
                .push(format!(
                    "{}: agrees with Envoy now; remove `suspected_bug` from case.json",
                    case.name
                )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn generated_envoy_config_matches_recording() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for case in load_cases(&root.join("tests/conformance/cases")) {
        let generated = case.generate_config();
        assert_eq!(
            Some(&generated),
            case.recorded.get("generated"),
            "{}: the Envoy configuration generated from scenario.yaml changed since the \
             recording; re-record the case",
            case.name
        );
    }
}

#[test]
fn fidelity_report_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Case> = load_cases(&root.join("tests/conformance/cases"));
    let text = render_fidelity(&cases);
    let path = root.join("docs/fidelity.md");
    if std::env::var_os("TRAFFICSIM_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write docs/fidelity.md");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == text,
        "docs/fidelity.md is out of date; run `TRAFFICSIM_BLESS=1 cargo test --test conformance`"
    );
}
