//! `trafficsim check`: runs a scenario, measures each of its expectations
//! and judges it against its bound.
//!
//! An expectation with `seeds: n` is measured on the runs with seeds
//! `seed`, `seed + 1`, ..., `seed + n - 1` (wrapping at 2^64), where `seed`
//! is the scenario's. The scenario runs once per seed, however many
//! expectations share it. With one seed the measured value itself is
//! judged. With more, the verdict is made on the Student t confidence
//! interval of the mean. `max` passes when the upper end is at or below
//! the limit, and `min` when the lower end is at or above it. `between`
//! passes when the whole interval lies inside. A bound that the interval
//! crosses fails, so a pass means the bound is met at that confidence.
//!
//! Rendering (table, JUnit XML, JSON) is in `check/render.rs`.

mod render;

pub use render::{render_human, render_json, render_junit};

use crate::confidence::{Interval, mean_interval};
use crate::metrics::{Probe, ProbeScope};
use crate::scenario::{Expectation, Metric, Scenario, Scope, Window};
use crate::sim::{self, RunOptions, RunOutput};
use crate::time::SimTime;
use crate::yaml::{Diagnostics, suggest};

/// One quantity to measure in a run: a metric of a scope over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub metric: Metric,
    pub scope: Scope,
    pub window: Window,
}

impl Quantity {
    pub fn of(expectation: &Expectation) -> Quantity {
        Quantity {
            metric: expectation.metric.clone(),
            scope: expectation.scope.clone(),
            window: expectation.window,
        }
    }
}

/// The judgement of one expectation.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub expectation: Expectation,
    /// Measured value per seed, in seed order.
    pub values: Vec<f64>,
    /// Mean and interval of `values`; `None` when a value could not be
    /// measured.
    pub interval: Option<Interval>,
    pub passed: bool,
    /// Reason no value could be measured, when one could not.
    pub problem: Option<String>,
}

/// Every verdict of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioCheck {
    pub name: String,
    pub file: std::path::PathBuf,
    /// Seeds run, in order. Expectation `i` uses the first
    /// `expectations[i].seeds` of them.
    pub seeds: Vec<u64>,
    pub verdicts: Vec<Verdict>,
    /// Notes and warnings of the runs for the user, each once: unaccepted
    /// policies, and runs a limit stopped early.
    pub notes: Vec<String>,
}

impl ScenarioCheck {
    pub fn failures(&self) -> usize {
        self.verdicts.iter().filter(|v| !v.passed).count()
    }
}

/// Reason a metric has no value in one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmeasured {
    /// No request of the scope completed in the window, so a fraction or
    /// a percentile is undefined.
    NoRequests,
    /// The window ends before it starts, once cut at the end of the run.
    EmptyWindow,
    /// The run has no Envoy stat of that name.
    UnknownStat(String),
}

impl std::fmt::Display for Unmeasured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmeasured::NoRequests => {
                f.write_str("no request of the scope completed in the window")
            }
            Unmeasured::EmptyWindow => f.write_str("the run ended before the window started"),
            Unmeasured::UnknownStat(stat) => write!(f, "the run has no Envoy stat `{stat}`"),
        }
    }
}

/// Lists the scenario files `paths` name: each file itself, and for each
/// folder the `*.yaml` and `*.yml` files directly inside it, in name order.
pub fn scenario_files(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            if !path.exists() {
                return Err(format!("{} does not exist", path.display()));
            }
            files.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path)
            .map_err(|error| format!("cannot read folder {}: {error}", path.display()))?;
        let mut found: Vec<std::path::PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|file| {
                file.is_file()
                    && file
                        .extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
            })
            .collect();
        if found.is_empty() {
            return Err(format!(
                "folder {} contains no scenario (*.yaml or *.yml) files",
                path.display()
            ));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Returns the seeds of `count` runs, counting up from `base`.
pub fn seed_list(base: u64, count: u32) -> Vec<u64> {
    (0..u64::from(count))
        .map(|i| base.wrapping_add(i))
        .collect()
}

/// Builds the probe that measures `quantity`, or `None` for an Envoy stat,
/// which is read from the run's stats instead.
pub fn probe_for(quantity: &Quantity) -> Option<Probe> {
    if let Metric::EnvoyStat(_) = quantity.metric {
        return None;
    }
    let scope = match &quantity.scope {
        Scope::Run => ProbeScope::Run,
        Scope::Client { index, .. } => ProbeScope::Client(*index),
        Scope::Route { routes, .. } => ProbeScope::Routes(routes.clone()),
        Scope::Replica(replica) => ProbeScope::Replica(*replica),
    };
    let window = quantity.window;
    Some(Probe::new(
        scope,
        SimTime::ZERO + window.from,
        window.to.map(|to| SimTime::ZERO + to),
    ))
}

/// Measures `quantity` in one run. `probe` is its probe after the run
/// (`None` for an Envoy stat).
pub fn measure(
    quantity: &Quantity,
    probe: Option<&Probe>,
    output: &RunOutput,
) -> Result<f64, Unmeasured> {
    if let Metric::EnvoyStat(stat) = &quantity.metric {
        return envoy_stat(stat, &quantity.scope, output);
    }
    let Some(probe) = probe else {
        return Err(Unmeasured::NoRequests);
    };
    let matching = |statuses: &[crate::scenario::StatusMatch]| -> u64 {
        probe
            .statuses
            .iter()
            .filter(|(status, _)| statuses.iter().any(|m| m.matches(**status)))
            .map(|(_, count)| count)
            .sum()
    };
    let completed = probe.completed();
    let value = match &quantity.metric {
        Metric::StatusFraction(statuses) => {
            if completed == 0 {
                return Err(Unmeasured::NoRequests);
            }
            matching(statuses) as f64 / completed as f64
        }
        Metric::StatusCount(statuses) => matching(statuses) as f64,
        Metric::Completed => completed as f64,
        Metric::Admitted => probe.backend_first_attempts as f64,
        Metric::AdmittedRate => {
            let end = probe.to.map_or(output.end, |to| to.min(output.end));
            let span = end.saturating_since(probe.from);
            if span.is_zero() {
                return Err(Unmeasured::EmptyWindow);
            }
            probe.backend_first_attempts as f64 / span.as_secs_f64()
        }
        Metric::LatencyMs(percentile) => {
            if completed == 0 {
                return Err(Unmeasured::NoRequests);
            }
            probe.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
        }
        Metric::SpendUsd => probe.spend_usd,
        Metric::Retries => probe.backend_retries as f64,
        Metric::BackendRequests => (probe.backend_first_attempts + probe.backend_retries) as f64,
        Metric::EnvoyStat(_) => return Err(Unmeasured::NoRequests),
    };
    Ok(value)
}

fn envoy_stat(stat: &str, scope: &Scope, output: &RunOutput) -> Result<f64, Unmeasured> {
    let stats = match scope {
        Scope::Replica(replica) => output.envoy_stats_per_replica.get(*replica as usize),
        _ => Some(&output.envoy_stats),
    };
    if let Some(value) = stats.and_then(|stats| stats.0.get(stat)) {
        return Ok(*value as f64);
    }
    // The simulator reports some counters only once they count: the fault
    // filter's, and any counter of a replica that saw no such event. A name
    // the whole run has is 0 where it is missing.
    if stat.starts_with("http.fault.") || output.envoy_stats.0.contains_key(stat) {
        return Ok(0.0);
    }
    Err(Unmeasured::UnknownStat(stat.to_string()))
}

/// Runs `f` for every seed, spread over the machine's cores, and returns
/// the results in seed order, so the output does not depend on the number
/// of threads.
pub fn map_seeds<T: Send>(seeds: &[u64], f: impl Fn(u64) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(seeds.len())
        .max(1);
    if threads == 1 {
        return seeds.iter().map(|&seed| f(seed)).collect();
    }
    let f = &f;
    let mut indexed: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (thread..seeds.len())
                        .step_by(threads)
                        .map(|index| (index, f(seeds[index])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                // A panic in a run is a bug, so it goes on to the caller's thread.
                Err(payload) => std::panic::resume_unwind(payload),
            })
            .collect()
    });
    indexed.sort_by_key(|(index, _)| *index);
    indexed.into_iter().map(|(_, value)| value).collect()
}

/// Measurements of one run: every quantity, and the run's notes.
#[derive(Clone, Debug)]
pub struct RunMeasures {
    pub values: Vec<Result<f64, Unmeasured>>,
    /// The run's notes, then a warning when a limit stopped it early.
    pub notes: Vec<String>,
}

/// Runs `scenario` once per seed with a probe per quantity and measures
/// every quantity in every run, in seed order.
pub fn measure_runs(
    scenario: &Scenario,
    quantities: &[Quantity],
    seeds: &[u64],
) -> Vec<RunMeasures> {
    map_seeds(seeds, |seed| {
        let output = run_probed(scenario, quantities, seed);
        RunMeasures {
            values: measure_all(quantities, &output),
            notes: run_notes(&output),
        }
    })
}

/// Returns the notes of a run, and a warning naming the seed when a limit
/// stopped it early.
pub fn run_notes(output: &RunOutput) -> Vec<String> {
    let mut notes = output.notes.clone();
    if let Some(truncation) = &output.truncated {
        notes.push(format!(
            "warning: the run with seed {} {truncation}",
            output.seed
        ));
    }
    notes
}

/// Merges the notes of several runs, keeping the first of each.
pub fn distinct_notes<'a>(notes: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut distinct: Vec<String> = Vec::new();
    for note in notes {
        if !distinct.contains(note) {
            distinct.push(note.clone());
        }
    }
    distinct
}

/// Runs `scenario` with `seed` and a probe for each of `quantities`.
pub fn run_probed(scenario: &Scenario, quantities: &[Quantity], seed: u64) -> RunOutput {
    let probes: Vec<Probe> = quantities.iter().filter_map(probe_for).collect();
    sim::run_with_probes(scenario, seed, RunOptions::default(), probes)
}

/// Measures every quantity in a run made by [`run_probed`] with the same
/// quantities.
pub fn measure_all(quantities: &[Quantity], output: &RunOutput) -> Vec<Result<f64, Unmeasured>> {
    let mut filled = output.metrics.probes.iter();
    quantities
        .iter()
        .map(|quantity| {
            let probe = match quantity.metric {
                Metric::EnvoyStat(_) => None,
                _ => filled.next(),
            };
            measure(quantity, probe, output)
        })
        .collect()
}

/// Runs `scenario` and judges every expectation. An Envoy stat the run
/// does not have is an input error, reported at the expectation.
pub fn check_scenario(scenario: &Scenario) -> Result<ScenarioCheck, Diagnostics> {
    let expectations = &scenario.expectations;
    let count = expectations.iter().map(|e| e.seeds).max().unwrap_or(1);
    let seeds = seed_list(scenario.seed, count);
    let quantities: Vec<Quantity> = expectations.iter().map(Quantity::of).collect();
    let measured = measure_runs(scenario, &quantities, &seeds);
    let mut diagnostics = Diagnostics::for_file(&scenario.file);
    let mut verdicts = Vec::new();
    for (index, expectation) in expectations.iter().enumerate() {
        let runs = &measured[..expectation.seeds as usize];
        let mut values = Vec::new();
        let mut problem = None;
        for (seed, run) in seeds.iter().zip(runs) {
            match &run.values[index] {
                Ok(value) => values.push(*value),
                Err(Unmeasured::UnknownStat(stat)) => {
                    report_unknown_stat(expectation, stat, scenario, &mut diagnostics);
                    problem = Some(Unmeasured::UnknownStat(stat.clone()).to_string());
                    break;
                }
                Err(other) => {
                    problem = Some(format!("{other} with seed {seed}"));
                    break;
                }
            }
        }
        verdicts.push(judge(expectation, values, problem));
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    Ok(ScenarioCheck {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        seeds,
        verdicts,
        notes: distinct_notes(measured.iter().flat_map(|run| &run.notes)),
    })
}

/// Decides one expectation from its values, as the module documentation
/// describes.
pub fn judge(expectation: &Expectation, values: Vec<f64>, problem: Option<String>) -> Verdict {
    if problem.is_some() || values.is_empty() {
        return Verdict {
            expectation: expectation.clone(),
            values,
            interval: None,
            passed: false,
            problem: problem.or_else(|| Some("no value was measured".to_string())),
        };
    }
    let interval = mean_interval(&values, expectation.confidence);
    let passed = expectation.bound.contains(interval.low(), interval.high());
    Verdict {
        expectation: expectation.clone(),
        values,
        interval: Some(interval),
        passed,
        problem: None,
    }
}

fn report_unknown_stat(
    expectation: &Expectation,
    stat: &str,
    scenario: &Scenario,
    diagnostics: &mut Diagnostics,
) {
    let known: Vec<String> = sim::run(scenario, scenario.seed)
        .envoy_stats
        .0
        .into_keys()
        .collect();
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    let hint = match suggest(stat, &names) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => {
            let prefix = stat.split('.').next().unwrap_or(stat);
            let similar: Vec<&str> = names
                .iter()
                .copied()
                .filter(|name| name.starts_with(prefix))
                .take(8)
                .collect();
            if similar.is_empty() {
                "`trafficsim run` writes every stat of a run under `envoy_stats` in summary.json"
                    .to_string()
            } else {
                format!("stats with the same prefix: {}", similar.join(", "))
            }
        }
    };
    diagnostics.error_at(
        expectation.location,
        &expectation.path,
        format!("the run has no Envoy stat `{stat}`; {hint}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_count_up_from_the_base() {
        assert_eq!(seed_list(7, 3), [7, 8, 9]);
        assert_eq!(seed_list(u64::MAX, 2), [u64::MAX, 0]);
    }

    #[test]
    fn parallel_results_keep_seed_order() {
        let seeds = seed_list(0, 37);
        let squares = map_seeds(&seeds, |seed| seed * seed);
        let expected: Vec<u64> = seeds.iter().map(|s| s * s).collect();
        assert_eq!(squares, expected);
    }
}
