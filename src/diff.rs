//! `trafficsim diff`: one scenario run with two sets of manifests, before
//! and after a policy change, on the same seeds.
//!
//! Both sides run with seeds `seed`, `seed + 1`, ... Each client draws
//! from a stream keyed by the seed and the client's name, so with the same
//! seed both sides send the same requests at the same times (common random
//! numbers), and only the policy differs. The change of each metric is
//! judged on the paired differences `after - before` of each seed: their
//! mean, and a Student t interval that is far narrower than comparing two
//! independent means. A change is significant when that interval excludes
//! zero.
//!
//! What replaces what is stated at [`ManifestSource`]. Reading revisions
//! from git is in `diff/git.rs`, the table and JSON in `diff/render.rs`.

mod git;
mod render;

pub use render::{render_human, render_json};

use std::path::{Path, PathBuf};

use crate::chart::{self, LineChart, LineSeries};
use crate::check::{self, Quantity, Unmeasured};
use crate::confidence::{Interval, mean_interval};
use crate::metrics::status_column;
use crate::scenario::{
    self, LoadOptions, ManifestOverride, Metric, Scenario, Scope, StatusMatch, Window,
};
use crate::sim::RunOutput;
use crate::yaml::Diagnostics;

/// The manifests of one side of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestSource {
    /// The scenario's own `manifests:`, as the files are now.
    Scenario,
    /// A file or folder of manifests. Every BackendTrafficPolicy of the
    /// scenario's manifests is dropped and this one's are used. Its
    /// Gateways and routes replace the scenario's objects of the same kind,
    /// namespace and name, or are added.
    Path(PathBuf),
    /// `git:REV`: the scenario's manifest paths as they are at revision
    /// `REV` of the current directory's repository, in place of all of the
    /// scenario's manifest files (inline manifests stay).
    /// `git:REV:PATH`: the file or folder `PATH` (relative to the
    /// repository's top folder) at `REV`, used as [`ManifestSource::Path`].
    Git { rev: String, path: Option<String> },
}

impl ManifestSource {
    /// Reads a command-line value: `git:REV`, `git:REV:PATH`, or a path.
    pub fn parse(text: &str) -> ManifestSource {
        match text.strip_prefix("git:") {
            Some(rest) => match rest.split_once(':') {
                Some((rev, path)) if !path.is_empty() => ManifestSource::Git {
                    rev: rev.to_string(),
                    path: Some(path.to_string()),
                },
                Some((rev, _)) => ManifestSource::Git {
                    rev: rev.to_string(),
                    path: None,
                },
                None => ManifestSource::Git {
                    rev: rest.to_string(),
                    path: None,
                },
            },
            None => ManifestSource::Path(PathBuf::from(text)),
        }
    }

    /// Returns the source as the user wrote it, for reports.
    pub fn label(&self) -> String {
        match self {
            ManifestSource::Scenario => "the scenario's manifests".to_string(),
            ManifestSource::Path(path) => path.display().to_string(),
            ManifestSource::Git { rev, path: None } => format!("git:{rev}"),
            ManifestSource::Git {
                rev,
                path: Some(path),
            } => format!("git:{rev}:{path}"),
        }
    }
}

/// How many runs a diff makes and how it judges them.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// Runs per side.
    pub seeds: u32,
    /// First seed; the scenario's `seed` when `None`.
    pub base_seed: Option<u64>,
    /// Two-sided confidence level of the intervals, such as 0.95.
    pub confidence: f64,
}

/// Reasons a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{file} has {} problem{}:\n{diagnostics}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Scenario {
        file: String,
        diagnostics: Diagnostics,
    },
    #[error("{0}")]
    Source(String),
}

/// One metric before and after.
#[derive(Clone, Debug)]
pub struct MetricDiff {
    pub metric: String,
    pub scope: String,
    pub before: Option<Interval>,
    pub after: Option<Interval>,
    /// Mean and interval of the paired differences `after - before`.
    pub change: Option<Interval>,
    pub significant: bool,
    /// Reason a side has no value, when one has none.
    pub problem: Option<String>,
}

/// Per-bucket rates and spend of one side, for the charts. Each point is
/// `(mean, lowest, highest)` over the seeds.
#[derive(Clone, Debug, Default)]
pub struct SideSeries {
    /// Responses per second by outcome: 2xx, 429, and 5xx.
    pub rates: [Vec<(f64, f64, f64)>; 3],
    /// Cumulative spend in USD at the end of each bucket.
    pub spend: Vec<(f64, f64, f64)>,
}

/// Everything a diff found.
#[derive(Clone, Debug)]
pub struct DiffReport {
    pub scenario: String,
    pub before: String,
    pub after: String,
    pub seeds: Vec<u64>,
    pub confidence: f64,
    pub bucket_seconds: f64,
    pub rows: Vec<MetricDiff>,
    pub before_series: SideSeries,
    pub after_series: SideSeries,
    /// Whether any backend has a price, so spend is worth showing.
    pub priced: bool,
    /// Notes of each side's runs, each once, such as a policy Envoy
    /// Gateway does not accept.
    pub before_notes: Vec<String>,
    pub after_notes: Vec<String>,
}

/// Runs `scenario_path` with the manifests of `before` and of `after`.
pub fn diff(
    scenario_path: &Path,
    before: &ManifestSource,
    after: &ManifestSource,
    options: &DiffOptions,
) -> Result<DiffReport, DiffError> {
    let as_written = load(scenario_path, &LoadOptions::default(), "")?;
    let before_scenario = load_side(scenario_path, &as_written, before)?;
    let after_scenario = load_side(scenario_path, &as_written, after)?;

    let quantities_before = quantities(&before_scenario);
    let quantities_after = quantities(&after_scenario);
    let seeds = check::seed_list(options.base_seed.unwrap_or(as_written.seed), options.seeds);
    let before_runs = run_side(&before_scenario, &quantities_before, &seeds);
    let after_runs = run_side(&after_scenario, &quantities_after, &seeds);

    let mut rows: Vec<MetricDiff> = quantities_before
        .iter()
        .enumerate()
        .map(|(index, quantity)| {
            let pick = |runs: &[SideRun]| -> Vec<Result<f64, Unmeasured>> {
                runs.iter().map(|run| run.values[index].clone()).collect()
            };
            compare(
                quantity,
                &pick(&before_runs),
                &pick(&after_runs),
                options.confidence,
            )
        })
        .collect();
    // The last rows are the expectations; their names say more than the
    // metric alone.
    let fixed = rows.len() - as_written.expectations.len();
    for (row, expectation) in rows[fixed..].iter_mut().zip(&as_written.expectations) {
        row.metric = expectation.name.clone();
    }
    let bucket = as_written.output.bucket;
    Ok(DiffReport {
        scenario: as_written.name.clone(),
        before: before.label(),
        after: after.label(),
        seeds,
        confidence: options.confidence,
        bucket_seconds: bucket.as_secs_f64(),
        rows,
        before_series: side_series(&before_runs, bucket.as_secs_f64()),
        after_series: side_series(&after_runs, bucket.as_secs_f64()),
        priced: as_written.backends.iter().any(|b| !b.cost.is_free()),
        before_notes: check::distinct_notes(before_runs.iter().flat_map(|r| &r.notes)),
        after_notes: check::distinct_notes(after_runs.iter().flat_map(|r| &r.notes)),
    })
}

fn load(path: &Path, options: &LoadOptions, side: &str) -> Result<Scenario, DiffError> {
    scenario::load_with_options(path, &[], options).map_err(|diagnostics| DiffError::Scenario {
        file: if side.is_empty() {
            path.display().to_string()
        } else {
            format!("{} with the manifests of {side}", path.display())
        },
        diagnostics,
    })
}

fn load_side(
    path: &Path,
    as_written: &Scenario,
    source: &ManifestSource,
) -> Result<Scenario, DiffError> {
    let label = source.label();
    match source {
        ManifestSource::Scenario => Ok(as_written.clone()),
        ManifestSource::Path(replacement) => {
            if !replacement.exists() {
                return Err(DiffError::Source(format!(
                    "manifest path {} does not exist",
                    replacement.display()
                )));
            }
            let options = LoadOptions {
                manifests: Some(ManifestOverride::Replace(vec![replacement.clone()])),
            };
            load(path, &options, &label)
        }
        ManifestSource::Git {
            rev,
            path: Some(inside),
        } => {
            let checkout =
                git::checkout(rev, &[PathBuf::from(inside)]).map_err(DiffError::Source)?;
            let extracted = checkout.dir.join(inside);
            if !extracted.exists() {
                return Err(DiffError::Source(format!(
                    "{inside} does not exist at git revision `{rev}` (paths are relative to the \
                     repository's top folder)"
                )));
            }
            let options = LoadOptions {
                manifests: Some(ManifestOverride::Replace(vec![extracted])),
            };
            load(path, &options, &label)
        }
        ManifestSource::Git { rev, path: None } => {
            let root = git::repository_root().map_err(DiffError::Source)?;
            let mut relative = Vec::new();
            for manifest in &as_written.manifest_paths {
                let inside = git::relative_to(&root, manifest).ok_or_else(|| {
                    DiffError::Source(format!(
                        "manifest path {} is outside the repository at {}, so it cannot be read \
                         at git revision `{rev}`",
                        manifest.display(),
                        root.display()
                    ))
                })?;
                relative.push(inside);
            }
            let checkout = git::checkout(rev, &relative).map_err(DiffError::Source)?;
            let options = LoadOptions {
                manifests: Some(ManifestOverride::Reroot {
                    from: checkout.root.clone(),
                    to: checkout.dir.clone(),
                    label: label.clone(),
                }),
            };
            load(path, &options, &label)
        }
    }
}

/// Lists the metrics compared: a fixed set for the run and for each client,
/// then the scenario's expectations.
fn quantities(scenario: &Scenario) -> Vec<Quantity> {
    let priced = scenario.backends.iter().any(|b| !b.cost.is_free());
    let mut scopes = vec![Scope::Run];
    if scenario.clients.len() > 1 {
        scopes.extend(
            scenario
                .clients
                .iter()
                .enumerate()
                .map(|(index, client)| Scope::Client {
                    name: client.name.clone(),
                    index,
                }),
        );
    }
    let mut metrics = vec![
        Metric::StatusFraction(vec![StatusMatch::Class(2)]),
        Metric::StatusFraction(vec![StatusMatch::Code(429)]),
        Metric::StatusFraction(vec![StatusMatch::Class(5)]),
        Metric::AdmittedRate,
        Metric::LatencyMs(50.0),
        Metric::LatencyMs(99.0),
        Metric::Retries,
    ];
    if priced {
        metrics.push(Metric::SpendUsd);
    }
    let mut quantities = Vec::new();
    for scope in scopes {
        for metric in &metrics {
            quantities.push(Quantity {
                metric: metric.clone(),
                scope: scope.clone(),
                window: Window::default(),
            });
        }
    }
    quantities.extend(scenario.expectations.iter().map(Quantity::of));
    quantities
}

/// Measurements of one run of one side.
struct SideRun {
    values: Vec<Result<f64, Unmeasured>>,
    /// Per bucket: 2xx, 429 and 5xx completions, and spend in USD.
    buckets: Vec<[f64; 4]>,
    notes: Vec<String>,
}

fn run_side(scenario: &Scenario, quantities: &[Quantity], seeds: &[u64]) -> Vec<SideRun> {
    check::map_seeds(seeds, |seed| {
        let output = check::run_probed(scenario, quantities, seed);
        SideRun {
            values: check::measure_all(quantities, &output),
            buckets: bucket_totals(&output),
            notes: check::run_notes(&output),
        }
    })
}

fn bucket_totals(output: &RunOutput) -> Vec<[f64; 4]> {
    let metrics = &output.metrics;
    // Buckets that started before the end; a run ending on a boundary
    // has no bucket after it.
    let width = metrics.bucket.as_nanos().max(1);
    let count = output.end.as_nanos().div_ceil(width).max(1) as usize;
    let mut buckets = vec![[0.0; 4]; count];
    let (ok, limited) = (status_column(200), status_column(429));
    let errors = [status_column(500), status_column(503), status_column(504)];
    for row in &metrics.rows {
        let bucket = &mut buckets[(row.bucket as usize).min(count - 1)];
        bucket[0] += row.statuses[ok] as f64;
        bucket[1] += row.statuses[limited] as f64;
        bucket[2] += errors.iter().map(|&c| row.statuses[c] as f64).sum::<f64>();
        bucket[3] += row.spend_usd;
    }
    buckets
}

/// Mean, lowest and highest over seeds of each bucket; runs shorter than
/// the longest count as 0 requests and unchanged spend after their end.
fn side_series(runs: &[SideRun], bucket_seconds: f64) -> SideSeries {
    let length = runs.iter().map(|r| r.buckets.len()).max().unwrap_or(0);
    let mut series = SideSeries::default();
    let cumulative: Vec<Vec<f64>> = runs
        .iter()
        .map(|run| {
            let mut total = 0.0;
            (0..length)
                .map(|i| {
                    total += run.buckets.get(i).map_or(0.0, |b| b[3]);
                    total
                })
                .collect()
        })
        .collect();
    for i in 0..length {
        for (outcome, line) in series.rates.iter_mut().enumerate() {
            let values: Vec<f64> = runs
                .iter()
                .map(|run| run.buckets.get(i).map_or(0.0, |b| b[outcome]) / bucket_seconds)
                .collect();
            line.push(spread(&values));
        }
        let values: Vec<f64> = cumulative.iter().map(|c| c[i]).collect();
        series.spend.push(spread(&values));
    }
    series
}

/// `(mean, lowest, highest)` of `values`, which must not be empty.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, low, high)
}

/// `after - before`, with differences of float rounding alone (a sum
/// taken in another order) counted as 0 so they are never significant.
fn difference(before: f64, after: f64) -> f64 {
    let change = after - before;
    if change.abs() <= 1e-9 * before.abs().max(after.abs()) {
        0.0
    } else {
        change
    }
}

fn compare(
    quantity: &Quantity,
    before: &[Result<f64, Unmeasured>],
    after: &[Result<f64, Unmeasured>],
    confidence: f64,
) -> MetricDiff {
    let ok = |values: &[Result<f64, Unmeasured>]| -> Vec<f64> {
        values
            .iter()
            .filter_map(|v| v.as_ref().ok().copied())
            .collect()
    };
    let (before_values, after_values) = (ok(before), ok(after));
    let differences: Vec<f64> = before
        .iter()
        .zip(after)
        .filter_map(|(b, a)| Some(difference(*b.as_ref().ok()?, *a.as_ref().ok()?)))
        .collect();
    let problem = before
        .iter()
        .chain(after)
        .find_map(|v| v.as_ref().err())
        .map(|e| e.to_string());
    let interval = |values: &[f64]| (!values.is_empty()).then(|| mean_interval(values, confidence));
    let change = interval(&differences);
    let mut metric = quantity.metric.describe();
    if !quantity.window.is_whole_run() {
        metric.push_str(&format!(" over {}", quantity.window));
    }
    MetricDiff {
        metric,
        scope: quantity.scope.to_string(),
        before: interval(&before_values),
        after: interval(&after_values),
        significant: change.is_some_and(|c| c.excludes_zero()),
        change,
        problem,
    }
}

/// Writes the overlay charts of a diff into `dir`: `diff-rates` (2xx, 429
/// and 5xx per second, before and after) and, when requests are priced,
/// `diff-spend` (cumulative spend). Lines are the mean over seeds, bands
/// the lowest and highest seed. `report.html` beside them shows the
/// charts with the table of changes.
pub fn write_charts(dir: &Path, report: &DiffReport) -> Result<(), crate::report::ReportError> {
    crate::report::prepare_output_dir(dir)?;
    for (stem, line_chart) in charts(report) {
        chart::write_lines(dir, &stem, &line_chart)?;
    }
    let page = crate::report::html::diff_page(report)?;
    crate::report::write_atomic(&dir.join("report.html"), page.as_bytes())
}

/// Builds the overlay charts [`write_charts`] writes, each with its file
/// stem: the rates, and the spend when the scenario has prices.
pub fn charts(report: &DiffReport) -> Vec<(String, LineChart)> {
    let mut charts = Vec::new();
    let names = ["2xx/s", "429/s", "5xx/s"];
    let mut series = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let before = &report.before_series.rates[index];
        let after = &report.after_series.rates[index];
        let any = before.iter().chain(after).any(|p| p.2 > 0.0);
        if !any {
            continue;
        }
        series.push(line(
            &format!("{name} before"),
            before,
            report.bucket_seconds,
        ));
        series.push(line(&format!("{name} after"), after, report.bucket_seconds));
    }
    let rates = LineChart {
        title: format!("{}: before and after", report.scenario),
        x_label: "simulated time (s)".to_string(),
        y_label: "responses per second".to_string(),
        series,
    };
    charts.push(("diff-rates".to_string(), rates));
    if report.priced {
        let spend = LineChart {
            title: format!("{}: cumulative spend", report.scenario),
            x_label: "simulated time (s)".to_string(),
            y_label: "spend (USD)".to_string(),
            series: vec![
                line("before", &report.before_series.spend, report.bucket_seconds),
                line("after", &report.after_series.spend, report.bucket_seconds),
            ],
        };
        charts.push(("diff-spend".to_string(), spend));
    }
    charts
}

fn line(name: &str, points: &[(f64, f64, f64)], bucket_seconds: f64) -> LineSeries {
    let x = |i: usize| i as f64 * bucket_seconds;
    let has_band = points.iter().any(|p| p.1 != p.2);
    LineSeries {
        name: name.to_string(),
        points: points
            .iter()
            .enumerate()
            .map(|(i, p)| (x(i), p.0))
            .collect(),
        band: has_band.then(|| {
            points
                .iter()
                .enumerate()
                .map(|(i, p)| (x(i), p.1, p.2))
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_differences_count_as_zero() {
        assert_eq!(difference(0.1 + 0.2, 0.3), 0.0);
        assert_eq!(difference(2.0, 3.0), 1.0);
        assert_eq!(difference(0.0, 0.0), 0.0);
        assert_eq!(difference(0.0, 1e-15), 1e-15);
    }

    #[test]
    fn sources_parse_git_and_paths() {
        assert_eq!(
            ManifestSource::parse("git:HEAD~1"),
            ManifestSource::Git {
                rev: "HEAD~1".to_string(),
                path: None
            }
        );
        assert_eq!(
            ManifestSource::parse("git:main:policies/"),
            ManifestSource::Git {
                rev: "main".to_string(),
                path: Some("policies/".to_string())
            }
        );
        assert_eq!(
            ManifestSource::parse("policies/new.yaml"),
            ManifestSource::Path(PathBuf::from("policies/new.yaml"))
        );
    }
}
