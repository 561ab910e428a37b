//! `trafficsim check`: every comparator, metric, scope and window, the
//! multi-seed verdict, the input errors, and the command's exit codes and
//! reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trafficsim::check::{self, ScenarioCheck, Verdict};
use trafficsim::confidence::mean_interval;
use trafficsim::scenario;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tutorial/manifests")
}

/// Creates an empty folder for one test's files.
fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-check-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a scenario whose `{manifests}` placeholder names the tutorial
/// manifests folder.
fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let text = text.replace("{manifests}", &manifests().display().to_string());
    std::fs::write(&path, text).unwrap();
    path
}

/// The tutorial's basic limit: 10 sequential requests against 5 a
/// minute give 5x200 then 5x429.
const BASIC: &str = "\
name: basic
manifests:
  - {manifests}/gateway.yaml
  - {manifests}/basic-limit.yaml
backends:
  - name: backend
    service_time: 1ms
clients:
  - name: curl-loop
    kind: sequential
    requests: 10
expect:
";

/// Five replicas with 100 a minute each and a steady 1000 a minute,
/// round robin, in 1-minute buckets. The second client is a light
/// Poisson stream whose counts vary with the seed.
const FLEET: &str = "\
name: fleet
seed: 3
duration: 3m
envoy:
  replicas: 5
manifests:
  - {manifests}/gateway.yaml
  - {manifests}/five-replicas-local.yaml
backends:
  - name: backend
    service_time: 2ms
    cost:
      per_request_usd: 0.01
clients:
  - name: steady
    kind: open
    rate: 1000/m
    arrival: constant
  - name: noise
    kind: open
    rate: 20/m
output:
  bucket: 1m
expect:
";

fn run_check(dir: &Path, base: &str, expect: &str) -> ScenarioCheck {
    let path = write_scenario(dir, "scenario.yaml", &format!("{base}{expect}"));
    let scenario = match scenario::load(&path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("scenario does not load:\n{diagnostics}"),
    };
    match check::check_scenario(&scenario) {
        Ok(result) => result,
        Err(diagnostics) => panic!("check failed:\n{diagnostics}"),
    }
}

fn load_errors(dir: &Path, base: &str, expect: &str) -> String {
    let path = write_scenario(dir, "bad.yaml", &format!("{base}{expect}"));
    match scenario::load(&path) {
        Ok(_) => panic!("scenario with bad expectations was accepted"),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

fn value(verdict: &Verdict) -> f64 {
    assert_eq!(verdict.problem, None, "{}", verdict.expectation.name);
    verdict.values[0]
}

#[test]
fn comparators_include_their_ends() {
    let dir = folder("comparators");
    let result = run_check(
        &dir,
        BASIC,
        "  - {metric: status_count, status: 200, max: 5}
  - {metric: status_count, status: 200, max: 4}
  - {metric: status_count, status: 200, min: 5}
  - {metric: status_count, status: 200, min: 6}
  - {metric: status_count, status: 200, between: [5, 5]}
  - {metric: status_count, status: 200, between: [0, 4.5]}
  - {metric: status_count, status: 200, between: [5.5, 9]}
",
    );
    let passed: Vec<bool> = result.verdicts.iter().map(|v| v.passed).collect();
    assert_eq!(passed, [true, false, true, false, true, false, false]);
    assert_eq!(result.failures(), 4);
}

#[test]
fn metrics_measure_the_basic_limit() {
    let dir = folder("metrics");
    let result = run_check(
        &dir,
        BASIC,
        "  - {metric: status_fraction, status: 429, max: 1}
  - {metric: status_fraction, status: [4xx, 5xx], max: 1}
  - {metric: status_count, status: 2xx, max: 100}
  - {metric: completed, max: 100}
  - {metric: admitted, max: 100}
  - {metric: backend_requests, max: 100}
  - {metric: retries, max: 100}
  - {metric: spend_usd, max: 100}
  - {metric: latency_ms, percentile: 100, max: 100}
  - {metric: envoy_stat, stat: http_local_rate_limit.rate_limited, max: 100}
  - {metric: envoy_stat, stat: http.fault.aborts_injected, max: 100}
",
    );
    let values: Vec<f64> = result.verdicts.iter().map(value).collect();
    assert_eq!(values[0], 0.5);
    assert_eq!(values[1], 0.5);
    assert_eq!(values[2], 5.0);
    assert_eq!(values[3], 10.0);
    assert_eq!(values[4], 5.0);
    assert_eq!(values[5], 5.0);
    assert_eq!(values[6], 0.0);
    assert_eq!(values[7], 0.0);
    assert!(values[8] > 1.0, "latency {}", values[8]);
    assert!(values[8] < 5.0, "latency {}", values[8]);
    assert_eq!(values[9], 5.0);
    assert_eq!(values[10], 0.0, "a fault counter never created is 0");
}

#[test]
fn scopes_split_the_fleet() {
    let dir = folder("scopes");
    let result = run_check(
        &dir,
        FLEET,
        "  - {metric: completed, max: 1e9}
  - {metric: completed, client: steady, max: 1e9}
  - {metric: completed, client: noise, max: 1e9}
  - {metric: completed, route: backend, max: 1e9}
  - {metric: completed, route: default/backend, max: 1e9}
  - {metric: completed, route: httproute/default/backend/rule/0/match/0/www_example_com, max: 1e9}
  - {metric: completed, replica: 0, max: 1e9}
  - {metric: completed, replica: 4, max: 1e9}
  - {metric: envoy_stat, stat: http.downstream_rq_total, replica: 2, max: 1e9}
  - {metric: spend_usd, client: steady, max: 1e9}
  - {metric: admitted, client: steady, max: 1e9}
",
    );
    let values: Vec<f64> = result.verdicts.iter().map(value).collect();
    let (run, steady, noise) = (values[0], values[1], values[2]);
    assert_eq!(steady + noise, run);
    assert!(steady >= 2_990.0, "steady completed {steady}");
    assert_eq!(values[3], run, "every request matches the one route");
    assert_eq!(values[4], run);
    assert!(
        (values[6] - run / 5.0).abs() <= 1.0,
        "replica 0: {}",
        values[6]
    );
    assert!(
        (values[7] - run / 5.0).abs() <= 1.0,
        "replica 4: {}",
        values[7]
    );
    assert!(
        (values[8] - run / 5.0).abs() <= 1.0,
        "replica 2: {}",
        values[8]
    );
    assert!(
        (values[9] - values[10] * 0.01).abs() < 1e-9,
        "spend per admitted"
    );
    assert_eq!(values[5], run, "an Envoy route name selects that route");
}

#[test]
fn windows_match_the_time_series() {
    let dir = folder("windows");
    let path = write_scenario(
        &dir,
        "scenario.yaml",
        &format!(
            "{FLEET}  - {{metric: admitted, client: steady, to: 1m, max: 1e9}}
  - {{metric: admitted, client: steady, from: 1m, to: 2m, max: 1e9}}
  - {{metric: admitted, client: steady, from: 2m, max: 1e9}}
  - {{metric: admitted_rate, client: steady, from: 1m, to: 3m, max: 1e9}}
  - {{metric: status_count, status: 429, client: steady, from: 1m, to: 2m, max: 1e9}}
  - {{metric: spend_usd, client: steady, from: 1m, to: 2m, max: 1e9}}
"
        ),
    );
    let scenario = scenario::load(&path).unwrap();
    let result = check::check_scenario(&scenario).unwrap();
    let values: Vec<f64> = result.verdicts.iter().map(value).collect();

    // The same numbers from the rows `timeseries.csv` is written from.
    let output = trafficsim::sim::run(&scenario, scenario.seed);
    let rows = |bucket: u64| {
        output
            .metrics
            .rows
            .iter()
            .filter(move |r| r.group == 0 && r.bucket == bucket)
    };
    let backend = |bucket: u64| rows(bucket).map(|r| r.backend_requests).sum::<u64>() as f64;
    assert_eq!(values[0], backend(0));
    assert_eq!(values[1], backend(1));
    assert_eq!(values[2], backend(2));
    assert_eq!(
        values[0] + values[1] + values[2],
        output.metrics.groups[0].backend_first_attempts as f64
    );
    assert!((values[3] - (backend(1) + backend(2)) / 120.0).abs() < 1e-9);
    let limited: u64 = rows(1).map(|r| r.statuses[1]).sum();
    assert_eq!(values[4], limited as f64);
    let spend: f64 = rows(1).map(|r| r.spend_usd).sum();
    assert!((values[5] - spend).abs() < 1e-9);
    // Five replicas of 100 a minute admit 500 a minute once the full
    // buckets are spent; the noise client takes a few of those tokens.
    assert!(
        (470.0..=500.0).contains(&values[1]),
        "second minute {}",
        values[1]
    );
}

#[test]
fn several_seeds_are_judged_on_the_interval() {
    let dir = folder("seeds");
    let first = run_check(
        &dir,
        FLEET,
        "  - {metric: completed, client: noise, seeds: 8, confidence: 0.9, max: 1e9}\n",
    );
    let verdict = &first.verdicts[0];
    assert_eq!(first.seeds, [3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(verdict.values.len(), 8);
    let interval = verdict.interval.unwrap();
    assert_eq!(interval, mean_interval(&verdict.values, 0.9));
    assert!(interval.half_width.unwrap() > 0.0, "{:?}", verdict.values);

    // A limit between the mean and the interval's upper end fails.
    let (mean, high, low) = (interval.mean, interval.high(), interval.low());
    let expect = format!(
        "  - {{metric: completed, client: noise, seeds: 8, confidence: 0.9, max: {}}}
  - {{metric: completed, client: noise, seeds: 8, confidence: 0.9, max: {}}}
  - {{metric: completed, client: noise, seeds: 8, confidence: 0.9, min: {}}}
  - {{metric: completed, client: noise, seeds: 8, confidence: 0.9, min: {}}}
  - {{metric: completed, client: noise, seeds: 8, confidence: 0.9, between: [{}, {}]}}
  - {{metric: completed, client: noise, seeds: 2, max: 1e9}}
",
        (mean + high) / 2.0,
        high + 0.01,
        (mean + low) / 2.0,
        low - 0.01,
        low - 0.01,
        high + 0.01
    );
    let result = run_check(&dir, FLEET, &expect);
    let passed: Vec<bool> = result.verdicts.iter().map(|v| v.passed).collect();
    assert_eq!(passed, [false, true, false, true, true, true]);
    assert_eq!(result.verdicts[5].values, verdict.values[..2]);
}

#[test]
fn undefined_values_fail_with_a_reason() {
    let dir = folder("undefined");
    // The basic limit's ten requests all complete in the first second.
    let result = run_check(
        &dir,
        BASIC,
        "  - {metric: status_fraction, status: 200, route: backend, from: 1s, max: 1}\n",
    );
    let verdict = &result.verdicts[0];
    assert!(!verdict.passed);
    let problem = verdict.problem.as_deref().unwrap_or_default();
    assert!(problem.contains("no request"), "{problem}");
}

#[test]
fn bad_expectations_are_reported_together() {
    let dir = folder("bad");
    let text = load_errors(
        &dir,
        FLEET,
        "  - {metric: latency, max: 1}
  - {metric: completed}
  - {metric: completed, max: 1, min: 0}
  - {metric: status_count, status: 6xx, max: 1}
  - {metric: completed, percentile: 99, max: 1}
  - {metric: completed, client: stedy, max: 1}
  - {metric: completed, route: nowhere, max: 1}
  - {metric: completed, replica: 5, max: 1}
  - {metric: completed, from: 90s, max: 1}
  - {metric: completed, from: 2m, to: 1m, max: 1}
  - {metric: completed, to: 4m, max: 1}
  - {metric: envoy_stat, stat: http.no_route, client: steady, max: 1}
  - {metric: completed, between: [3, 1]}
  - {metric: completed, client: steady, replica: 1, max: 1}
  - {metric: completed, from: 3m, max: 1}
",
    );
    let expected = [
        "expect[0].metric: unsupported value `latency`; did you mean `latency_ms`?",
        "expect[1]: missing a bound",
        "expect[2]: give one bound, found max and min",
        "expect[3].status: expected a status code from 100 to 599",
        "expect[4].percentile: `percentile` does not apply to metric `completed`",
        "expect[5].client: no client is named `stedy`; did you mean `steady`?",
        "expect[6].route: no route is named `nowhere`",
        "expect[7].replica: replica 5 does not exist",
        "expect[8].from: 90s does not fall on a boundary of output.bucket (1m)",
        "expect[9].to: `to` (1m) must be after `from` (2m)",
        "expect[10].to: 4m is after the end of the run (duration 3m)",
        "expect[11].client: Envoy stats are counted per replica, not per client",
        "expect[12].between: low end 3 is above high end 1",
        "expect[13]: give at most one scope, found client and replica",
        "expect[14].from: `from` (3m) must be before the end of the run (duration 3m)",
    ];
    for message in expected {
        assert!(text.contains(message), "missing `{message}` in:\n{text}");
    }
    assert_eq!(text.lines().count(), expected.len(), "{text}");
}

#[test]
fn unknown_envoy_stat_names_a_near_miss() {
    let dir = folder("stat");
    let path = write_scenario(
        &dir,
        "scenario.yaml",
        &format!("{BASIC}  - {{metric: envoy_stat, stat: http.no_rout, max: 1}}\n"),
    );
    let scenario = scenario::load(&path).unwrap();
    let Err(diagnostics) = check::check_scenario(&scenario) else {
        panic!("an unknown stat was accepted");
    };
    let text = diagnostics.to_string();
    assert!(
        text.contains("expect[0]: the run has no Envoy stat"),
        "{text}"
    );
    assert!(text.contains("did you mean `http.no_route`?"), "{text}");
}

fn trafficsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trafficsim"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn exit_code_is_zero_when_all_pass() {
    let dir = folder("exit0");
    let path = write_scenario(
        &dir,
        "pass.yaml",
        &format!("{BASIC}  - {{name: five pass, metric: admitted, max: 5}}\n"),
    );
    let output = trafficsim(&["check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("PASS  five pass  5  <= 5"), "{text}");
    assert!(text.contains("1 expectation: 1 passed, 0 failed"), "{text}");
}

#[test]
fn exit_code_is_one_when_any_fails() {
    let dir = folder("exit1");
    write_scenario(
        &dir,
        "a-pass.yaml",
        &format!("{BASIC}  - {{metric: admitted, max: 5}}\n"),
    );
    write_scenario(
        &dir,
        "b-fail.yaml",
        &format!("{BASIC}  - {{name: none limited, metric: status_count, status: 429, max: 0}}\n"),
    );
    let junit = dir.join("report.xml");
    let output = trafficsim(&[
        "check",
        dir.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("FAIL  none limited  5  <= 0"), "{text}");
    assert!(
        text.contains("2 expectations: 1 passed, 1 failed"),
        "{text}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\""), "{xml}");
    assert!(xml.contains("<testsuites name=\"trafficsim check\" tests=\"2\" failures=\"1\">"));
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert!(
        xml.contains("<failure message=\"measured 5, expected &lt;= 0\">"),
        "{xml}"
    );
}

#[test]
fn json_format_lists_every_verdict() {
    let dir = folder("json");
    let path = write_scenario(
        &dir,
        "scenario.yaml",
        &format!("{BASIC}  - {{metric: admitted, max: 4}}\n  - {{metric: completed, min: 10}}\n"),
    );
    let output = trafficsim(&["check", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["passed"], 1);
    assert_eq!(json["failed"], 1);
    let verdicts = &json["scenarios"][0]["expectations"];
    assert_eq!(verdicts[0]["passed"], false);
    assert_eq!(verdicts[0]["values"][0], 5.0);
    assert_eq!(verdicts[0]["bound"]["max"], 4.0);
    assert_eq!(verdicts[1]["metric"], "completed");
}

#[test]
fn exit_code_is_two_on_bad_input() {
    let dir = folder("exit2");
    let bad = write_scenario(
        &dir,
        "bad.yaml",
        &format!("{BASIC}  - {{metric: admitted, maximum: 5}}\n"),
    );
    let output = trafficsim(&["check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("bad.yaml:13:33: expect[0].maximum: unknown field `maximum`"),
        "{text}"
    );

    let empty = write_scenario(&dir, "empty.yaml", BASIC.trim_end_matches("expect:\n"));
    let output = trafficsim(&["check", empty.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("has no `expect:` list"));

    let missing = dir.join("missing.yaml");
    let output = trafficsim(&["check", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("does not exist"));

    let output = trafficsim(&["check"]);
    assert_eq!(output.status.code(), Some(2), "no paths is a usage error");
}

#[test]
fn shipped_ci_scenarios_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci");
    let output = trafficsim(&["check", dir.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn probes_leave_the_outputs_unchanged() {
    let dir = folder("unchanged");
    let path = write_scenario(
        &dir,
        "scenario.yaml",
        &format!("{FLEET}  - {{metric: completed, replica: 1, from: 1m, max: 1e9}}\n"),
    );
    let scenario = scenario::load(&path).unwrap();
    let plain = trafficsim::sim::run(&scenario, scenario.seed);
    let quantities: Vec<check::Quantity> = scenario
        .expectations
        .iter()
        .map(check::Quantity::of)
        .collect();
    let probed = check::run_probed(&scenario, &quantities, scenario.seed);
    assert_eq!(probed.metrics.probes.len(), 1);
    let summary = |output| trafficsim::report::summary(&scenario, output).to_string();
    assert_eq!(summary(&plain), summary(&probed));
    assert_eq!(
        trafficsim::report::timeseries_csv(&plain),
        trafficsim::report::timeseries_csv(&probed)
    );
}

#[test]
fn reports_are_the_same_bytes_twice() {
    let dir = folder("twice");
    let path = write_scenario(
        &dir,
        "scenario.yaml",
        &format!("{FLEET}  - {{metric: spend_usd, client: noise, seeds: 4, max: 1}}\n"),
    );
    let scenario = scenario::load(&path).unwrap();
    let first = check::check_scenario(&scenario).unwrap();
    let second = check::check_scenario(&scenario).unwrap();
    let (first, second) = ([first], [second]);
    assert_eq!(check::render_junit(&first), check::render_junit(&second));
    assert_eq!(
        check::render_json(&first).to_string(),
        check::render_json(&second).to_string()
    );
}

#[test]
fn truncated_runs_are_noted() {
    let dir = folder("truncated");
    let base = BASIC.replace("expect:\n", "limits:\n  max_events: 20\nexpect:\n");
    let result = run_check(&dir, &base, "  - {metric: completed, seeds: 2, max: 10}\n");
    assert_eq!(result.notes.len(), 2, "{:?}", result.notes);
    assert!(
        result.notes[0].starts_with("warning: the run with seed 1 stopped after 20 events"),
        "{:?}",
        result.notes
    );
    assert!(result.notes[1].contains("seed 2"), "{:?}", result.notes);
}
