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
//! the count, a binomial over the step's `n` requests estimated from the
//! real runs (see `sampling_deviation`).
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

/// Loads a case's scenario and returns the policy fragments generated for it.
fn generated_policy(case: &str) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root
        .join("tests/conformance/cases")
        .join(case)
        .join("scenario.yaml");
    let scenario = match trafficsim::scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{case}: {diagnostics}"),
    };
    match trafficsim::envoy_config::recording_case(&scenario) {
        Ok(generated) => generated["policy"].clone(),
        Err(error) => panic!("{case}: {error}"),
    }
}

#[test]
fn envoy_config_distinct_source_cidr() {
    let policy = generated_policy("lrl-source-cidr-distinct");
    let local = &policy["route_local_ratelimit"];
    let actions = &local["rate_limits"][0]["actions"];
    assert_eq!(
        actions[0],
        serde_json::json!({"masked_remote_address": {"v4_prefix_mask_len": 8}})
    );
    assert_eq!(actions[1], serde_json::json!({"remote_address": {}}));
    let entries = &local["descriptors"][0]["entries"];
    assert_eq!(
        entries[0],
        serde_json::json!({"key": "masked_remote_address", "value": "127.0.0.0/8"})
    );
    // No value: one bucket per client address.
    assert_eq!(entries[1], serde_json::json!({"key": "remote_address"}));
    assert_eq!(local["always_consume_default_token_bucket"], false);
}

#[test]
fn envoy_config_distinct_header() {
    let policy = generated_policy("lrl-distinct-header");
    let local = &policy["route_local_ratelimit"];
    assert_eq!(
        local["rate_limits"][0]["actions"][0],
        serde_json::json!({"request_headers": {
            "header_name": "x-user-id", "descriptor_key": "rule-0-match-0"}})
    );
    assert_eq!(
        local["descriptors"][0]["entries"],
        serde_json::json!([{"key": "rule-0-match-0"}])
    );
    // Without a catch-all rule the route bucket never runs out.
    assert_eq!(local["token_bucket"]["max_tokens"], 4_294_967_295u64);
}

#[test]
fn envoy_config_retry_and_timeouts() {
    let policy = generated_policy("retry-per-try-timeout");
    let retry = &policy["retry_policy"];
    assert_eq!(retry["retry_on"], "5xx");
    assert_eq!(retry["num_retries"], 2);
    assert_eq!(retry["per_try_timeout"], "0.05s");
    assert_eq!(retry["retry_back_off"]["base_interval"], "0.025s");
    assert_eq!(retry["retry_back_off"]["max_interval"], "0.25s");
    assert_eq!(policy["route_timeout"], "15s");
    let thresholds = &policy["circuit_breakers"]["thresholds"][0];
    assert_eq!(thresholds["max_retries"], 1024);
    assert_eq!(policy["lb_policy"], "LEAST_REQUEST");
}

#[test]
fn envoy_config_rejects_global_limits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("trafficsim-envoy-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    let manifests = root.join("tests/conformance/manifests/gateway.yaml");
    let scenario_text = format!(
        "manifests:\n  - {}\n  - apiVersion: gateway.envoyproxy.io/v1alpha1\n    kind: BackendTrafficPolicy\n    metadata: {{name: global, namespace: default}}\n    spec:\n      targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}}]\n      rateLimit:\n        global:\n          rules:\n            - limit: {{requests: 5, unit: Minute}}\nbackends:\n  - name: backend\nclients:\n  - name: curl\n    requests: 1\n",
        manifests.display()
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario_text).expect("write the scenario");
    let scenario = match trafficsim::scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    };
    let error = trafficsim::envoy_config::recording_case(&scenario).unwrap_err();
    assert!(error.0.contains("global rate limits"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readme_states_current_agreement() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = load_cases(&root.join("tests/conformance/cases"));
    let verdicts: Vec<Verdict> = cases.iter().map(|case| case.compare().verdict).collect();
    let count = |verdict: Verdict| verdicts.iter().filter(|v| **v == verdict).count();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let expected = [
        format!("{} conformance cases", cases.len()),
        format!("{} agree exactly", count(Verdict::Exact)),
        format!("{} within a tolerance", count(Verdict::Within)),
    ];
    for phrase in expected {
        assert!(
            readme.contains(&phrase),
            "README.md should say \"{phrase}\""
        );
    }
    assert_eq!(count(Verdict::Out), 0, "README.md says none disagree");
    assert_eq!(
        count(Verdict::Pending),
        0,
        "README.md names no pending case"
    );
}
