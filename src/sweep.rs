//! `trafficsim sweep`: run a scenario over a grid of parameter values and
//! several seeds, in parallel, and turn the results into capacity-planning
//! tables and charts.
//!
//! Every (point, seed) run is independent and deterministic; runs are
//! spread over threads with rayon and collected in job order, so the
//! output is the same whatever the thread count. A sweep can also be cut
//! into shards run on different machines; `merge` rebuilds exactly the
//! output one run would have written.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::chart::{self, LineChart, LineSeries};
use crate::confidence::{self, Estimate};
use crate::metrics::LatencySummary;
use crate::overrides::{self, Override};
use crate::report::{self, ReportError};
use crate::scenario::{self, Goal, Parameter, Scenario, SweepMetric, SweepSpec};
use crate::sim::{self, RunOutput};
use crate::yaml::Diagnostics;

/// Everything a sweep needs to run and to be merged from shards.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPlan {
    pub scenario_file: PathBuf,
    pub name: String,
    pub base_seed: u64,
    pub spec: SweepSpec,
}

/// One run of one point with one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobResult {
    pub job: usize,
    pub point: usize,
    pub seed: u64,
    /// Values of every metric in [`SweepMetric::ALL`] order.
    pub values: Vec<f64>,
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Plan(String),
    #[error("point {point} ({overrides}) does not load:\n{diagnostics}")]
    Point {
        point: usize,
        overrides: String,
        diagnostics: Diagnostics,
    },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
    #[error("cannot read shard file {path}: {reason}")]
    Shard { path: PathBuf, reason: String },
}

impl SweepPlan {
    /// Builds the plan from the scenario's `sweep:` section, replaced or
    /// extended by command-line parameters, seeds and metrics.
    pub fn new(
        scenario: &Scenario,
        parameters: Vec<Parameter>,
        seeds: Option<u32>,
        metrics: Vec<SweepMetric>,
    ) -> Result<SweepPlan, String> {
        let mut spec = scenario.sweep.clone().unwrap_or(SweepSpec {
            parameters: Vec::new(),
            seeds: 1,
            confidence: 0.95,
            metrics: scenario::DEFAULT_METRICS.to_vec(),
            goals: Vec::new(),
        });
        if !parameters.is_empty() {
            spec.parameters = parameters;
        }
        if let Some(seeds) = seeds {
            if !(1..=scenario::MAX_SEEDS).contains(&seeds) {
                return Err(format!(
                    "--seeds must be from 1 to {}, found {seeds}",
                    scenario::MAX_SEEDS
                ));
            }
            spec.seeds = seeds;
        }
        if !metrics.is_empty() {
            spec.metrics = metrics;
        }
        if spec.parameters.is_empty() {
            return Err(format!(
                "{} has no `sweep:` section and no --param was given; name at least one parameter",
                scenario.file.display()
            ));
        }
        let points: u64 = spec
            .parameters
            .iter()
            .map(|p| p.values.len() as u64)
            .product();
        if points * u64::from(spec.seeds) > 1_000_000 {
            return Err(format!(
                "{points} points x {} seeds is more than the 1000000 runs a sweep accepts",
                spec.seeds
            ));
        }
        Ok(SweepPlan {
            scenario_file: scenario.file.clone(),
            name: scenario.name.clone(),
            base_seed: scenario.seed,
            spec,
        })
    }

    pub fn point_count(&self) -> usize {
        self.spec
            .parameters
            .iter()
            .map(|p| p.values.len())
            .product()
    }

    pub fn job_count(&self) -> usize {
        self.point_count() * self.spec.seeds as usize
    }

    /// Value index of each parameter at `point`; the last parameter varies
    /// fastest.
    pub fn coordinates(&self, point: usize) -> Vec<usize> {
        let mut rest = point;
        let mut coordinates = vec![0; self.spec.parameters.len()];
        for (index, parameter) in self.spec.parameters.iter().enumerate().rev() {
            coordinates[index] = rest % parameter.values.len();
            rest /= parameter.values.len();
        }
        coordinates
    }

    pub fn overrides(&self, point: usize) -> Vec<Override> {
        self.coordinates(point)
            .into_iter()
            .zip(&self.spec.parameters)
            .map(|(value, parameter)| Override {
                path: parameter.path.clone(),
                value: parameter.values[value].clone(),
            })
            .collect()
    }

    fn describe_point(&self, point: usize) -> String {
        self.overrides(point)
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The plan as JSON, stored in shard files.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario_file": self.scenario_file.display().to_string(),
            "name": self.name,
            "base_seed": self.base_seed,
            "seeds": self.spec.seeds,
            "confidence": self.spec.confidence,
            "parameters": self.spec.parameters.iter().map(|p| json!({
                "path": p.path.text, "values": p.values,
            })).collect::<Vec<_>>(),
            "metrics": self.spec.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "goals": self.spec.goals.iter().map(|g| json!({
                "metric": g.metric.name(), "max": g.max, "min": g.min,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(value: &Value) -> Result<SweepPlan, String> {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("missing `{key}`"))
        };
        let number = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("missing `{key}`"))
        };
        let metric = |name: Option<&str>| {
            name.and_then(SweepMetric::from_name)
                .ok_or_else(|| format!("unknown metric {name:?}"))
        };
        let mut parameters = Vec::new();
        for parameter in value
            .get("parameters")
            .and_then(Value::as_array)
            .ok_or("missing `parameters`")?
        {
            let path = parameter
                .get("path")
                .and_then(Value::as_str)
                .ok_or("parameter without path")?;
            let values = parameter
                .get("values")
                .and_then(Value::as_array)
                .ok_or("parameter without values")?
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or("non-text value"))
                .collect::<Result<Vec<_>, _>>()?;
            parameters.push(Parameter {
                path: overrides::parse_path(path)?,
                values,
            });
        }
        let mut metrics = Vec::new();
        for name in value
            .get("metrics")
            .and_then(Value::as_array)
            .ok_or("missing `metrics`")?
        {
            metrics.push(metric(name.as_str())?);
        }
        let mut goals = Vec::new();
        for goal in value
            .get("goals")
            .and_then(Value::as_array)
            .ok_or("missing `goals`")?
        {
            goals.push(Goal {
                metric: metric(goal.get("metric").and_then(Value::as_str))?,
                max: goal.get("max").and_then(Value::as_f64),
                min: goal.get("min").and_then(Value::as_f64),
            });
        }
        Ok(SweepPlan {
            scenario_file: PathBuf::from(text("scenario_file")?),
            name: text("name")?,
            base_seed: number("base_seed")?,
            spec: SweepSpec {
                parameters,
                seeds: number("seeds")? as u32,
                confidence: value
                    .get("confidence")
                    .and_then(Value::as_f64)
                    .ok_or("missing `confidence`")?,
                metrics,
                goals,
            },
        })
    }
}

/// Which part of the jobs to run: shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}` must be written I/N, such as 2/8"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("shard `{text}`: `{v}` is not a number"))
        };
        let (index, count) = (parse(index)?, parse(count)?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard `{text}`: I must be from 1 to N"));
        }
        Ok(Shard { index, count })
    }

    /// Points are dealt to shards in turn, so each shard gets a similar mix.
    fn owns_point(&self, point: usize) -> bool {
        point % self.count == self.index - 1
    }
}

/// Measures one run.
pub fn measure(output: &RunOutput) -> Vec<f64> {
    let metrics = &output.metrics;
    let statuses = metrics.total_statuses();
    let completed: u64 = statuses.values().sum();
    let count = |predicate: &dyn Fn(u16) -> bool| -> u64 {
        statuses
            .iter()
            .filter(|(s, _)| predicate(**s))
            .map(|(_, c)| c)
            .sum()
    };
    let fraction = |n: u64| {
        if completed == 0 {
            0.0
        } else {
            n as f64 / completed as f64
        }
    };
    let ok = count(&|s| (200..300).contains(&s));
    let latency = LatencySummary::from_histogram(&metrics.total_latency());
    let seconds = output.end.as_secs_f64().max(1e-9);
    SweepMetric::ALL
        .iter()
        .map(|metric| match metric {
            SweepMetric::Fraction2xx => fraction(ok),
            SweepMetric::Fraction429 => fraction(count(&|s| s == 429)),
            SweepMetric::Fraction503 => fraction(count(&|s| s == 503)),
            SweepMetric::Fraction5xx => fraction(count(&|s| (500..600).contains(&s))),
            SweepMetric::LatencyP50Ms => latency.p50,
            SweepMetric::LatencyP99Ms => latency.p99,
            SweepMetric::AdmittedPerS => ok as f64 / seconds,
            SweepMetric::SpendUsd => metrics.groups.iter().map(|g| g.spend_usd()).sum(),
            SweepMetric::Requests => metrics.total_requests() as f64,
            SweepMetric::BackendRequests => metrics
                .groups
                .iter()
                .map(|g| (g.backend_first_attempts + g.backend_retries) as f64)
                .sum(),
        })
        .collect()
}

/// Runs the jobs of `shard` (all jobs without one) on `threads` threads
/// (0 means all cores), reporting progress on stderr when it is a
/// terminal. When `stop` is set (Ctrl-C), runs not yet finished are
/// dropped and the result holds only the finished ones.
pub fn run(
    plan: &SweepPlan,
    shard: Option<Shard>,
    threads: usize,
    stop: Option<&'static AtomicBool>,
) -> Result<Vec<JobResult>, SweepError> {
    let points: Vec<usize> = (0..plan.point_count())
        .filter(|point| shard.is_none_or(|s| s.owns_point(*point)))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| SweepError::Plan(format!("cannot start worker threads: {error}")))?;
    pool.install(|| {
        let scenarios: Vec<Result<(usize, Scenario), SweepError>> = points
            .par_iter()
            .map(|point| {
                scenario::load_with(&plan.scenario_file, &plan.overrides(*point))
                    .map(|scenario| (*point, scenario))
                    .map_err(|diagnostics| SweepError::Point {
                        point: *point,
                        overrides: plan.describe_point(*point),
                        diagnostics,
                    })
            })
            .collect();
        let scenarios: Vec<(usize, Scenario)> = scenarios.into_iter().collect::<Result<_, _>>()?;
        let jobs: Vec<(usize, u32)> = scenarios
            .iter()
            .enumerate()
            .flat_map(|(index, _)| (0..plan.spec.seeds).map(move |seed| (index, seed)))
            .collect();
        let progress = Progress::new(jobs.len());
        let options = sim::RunOptions {
            stop,
            ..sim::RunOptions::default()
        };
        let stopped = || stop.is_some_and(|flag| flag.load(Ordering::Relaxed));
        let results: Vec<Option<JobResult>> = jobs
            .par_iter()
            .map(|(index, seed_index)| {
                if stopped() {
                    return None;
                }
                let (point, scenario) = &scenarios[*index];
                let seed = plan.base_seed.wrapping_add(u64::from(*seed_index));
                let output = sim::run_with(scenario, seed, options);
                if matches!(output.truncated, Some(sim::Truncation::Interrupted(_))) {
                    return None;
                }
                progress.tick();
                Some(JobResult {
                    job: point * plan.spec.seeds as usize + *seed_index as usize,
                    point: *point,
                    seed,
                    values: measure(&output),
                    truncated: output.truncated.is_some(),
                })
            })
            .collect();
        progress.finish();
        Ok(results.into_iter().flatten().collect())
    })
}

/// Progress on stderr, only when it is a terminal.
struct Progress {
    total: usize,
    done: AtomicUsize,
    started: Instant,
    last: Mutex<Instant>,
    enabled: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: AtomicUsize::new(0),
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.elapsed().as_millis() < 200 && done < self.total {
            return;
        }
        *last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        let eta = (self.total - done) as f64 / rate.max(1e-9);
        eprint!(
            "\rtrafficsim: sweep {done}/{} runs, {rate:.1} runs/s, about {eta:.0} s left   ",
            self.total
        );
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Clips an interval to the values a metric can take: with few seeds the
/// t interval of a fraction near 0 reaches below 0, which no run can give.
fn clip_to_range(estimate: Estimate, (low, high): (f64, f64)) -> Estimate {
    Estimate {
        low: estimate.low.clamp(low, high),
        high: estimate.high.clamp(low, high),
        ..estimate
    }
}

/// Per-point estimates of every metric.
pub struct PointSummary {
    pub point: usize,
    pub estimates: Vec<Estimate>,
    pub meets_goals: bool,
}

pub fn summarize(plan: &SweepPlan, results: &[JobResult]) -> Vec<PointSummary> {
    let mut by_point: Vec<Vec<&JobResult>> = vec![Vec::new(); plan.point_count()];
    for result in results {
        by_point[result.point].push(result);
    }
    by_point
        .into_iter()
        .enumerate()
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(point, runs)| {
            let estimates: Vec<Estimate> = SweepMetric::ALL
                .iter()
                .enumerate()
                .map(|(index, metric)| {
                    let samples: Vec<f64> = runs.iter().map(|r| r.values[index]).collect();
                    clip_to_range(
                        confidence::estimate(&samples, plan.spec.confidence),
                        metric.range(),
                    )
                })
                .collect();
            let meets_goals = plan.spec.goals.iter().all(|goal| {
                let index = metric_index(goal.metric);
                goal.met_by(estimates[index].mean)
            });
            PointSummary {
                point,
                estimates,
                meets_goals,
            }
        })
        .collect()
}

fn metric_index(metric: SweepMetric) -> usize {
    SweepMetric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or(0)
}

fn number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.6}")
    } else {
        String::new()
    }
}

/// The contents of `sweep.csv`: one row per run, then one row per point
/// with the mean and confidence interval of each metric.
pub fn sweep_csv(plan: &SweepPlan, results: &[JobResult]) -> String {
    let mut text = String::from("row,point");
    for parameter in &plan.spec.parameters {
        let _ = write!(text, ",{}", csv_field(&parameter.path.text));
    }
    text.push_str(",seed,runs");
    for metric in &plan.spec.metrics {
        let _ = write!(text, ",{0},{0}_ci_low,{0}_ci_high", metric.name());
    }
    text.push_str(",meets_goals,truncated\n");
    let write_point = |text: &mut String, point: usize| {
        let _ = write!(text, ",{point}");
        for (parameter, value) in plan.spec.parameters.iter().zip(plan.coordinates(point)) {
            let _ = write!(text, ",{}", csv_field(&parameter.values[value]));
        }
    };
    let mut sorted: Vec<&JobResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.job);
    for result in &sorted {
        text.push_str("run");
        write_point(&mut text, result.point);
        let _ = write!(text, ",{},1", result.seed);
        for metric in &plan.spec.metrics {
            let _ = write!(text, ",{},,", number(result.values[metric_index(*metric)]));
        }
        let _ = writeln!(text, ",,{}", result.truncated);
    }
    for summary in summarize(plan, results) {
        text.push_str("mean");
        write_point(&mut text, summary.point);
        let _ = write!(text, ",,{}", summary.estimates[0].samples);
        for metric in &plan.spec.metrics {
            let estimate = summary.estimates[metric_index(*metric)];
            let _ = write!(
                text,
                ",{},{},{}",
                number(estimate.mean),
                number(estimate.low),
                number(estimate.high)
            );
        }
        let truncated = sorted
            .iter()
            .any(|r| r.point == summary.point && r.truncated);
        let _ = writeln!(text, ",{},{truncated}", summary.meets_goals);
    }
    text
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The leading number of a parameter value (`200/s` gives 200), for the
/// x axis; `None` when the value is not numeric.
fn leading_number(value: &str) -> Option<f64> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// One chart per metric: the metric against the first parameter, one line
/// per combination of the other parameters, with the confidence band.
pub fn charts(plan: &SweepPlan, results: &[JobResult]) -> Vec<(String, LineChart)> {
    let summaries = summarize(plan, results);
    let first = &plan.spec.parameters[0];
    let numeric = first.values.iter().all(|v| leading_number(v).is_some());
    let x_of = |index: usize| {
        if numeric {
            leading_number(&first.values[index]).unwrap_or(index as f64)
        } else {
            index as f64
        }
    };
    let x_label = if numeric {
        first.path.text.clone()
    } else {
        format!(
            "{} (position in: {})",
            first.path.text,
            first.values.join(", ")
        )
    };
    plan.spec
        .metrics
        .iter()
        .map(|metric| {
            let index = metric_index(*metric);
            let mut lines: Vec<(String, LineSeries)> = Vec::new();
            for summary in &summaries {
                let coordinates = plan.coordinates(summary.point);
                let key: Vec<String> = plan.spec.parameters[1..]
                    .iter()
                    .zip(&coordinates[1..])
                    .map(|(p, v)| p.values[*v].clone())
                    .collect();
                let name = if key.is_empty() {
                    metric.name().to_string()
                } else {
                    key.join(", ")
                };
                let position = match lines.iter().position(|(n, _)| *n == name) {
                    Some(position) => position,
                    None => {
                        lines.push((
                            name.clone(),
                            LineSeries {
                                name,
                                points: Vec::new(),
                                band: Some(Vec::new()),
                            },
                        ));
                        lines.len() - 1
                    }
                };
                let estimate = summary.estimates[index];
                let x = x_of(coordinates[0]);
                let series = &mut lines[position].1;
                series.points.push((x, estimate.mean));
                if let Some(band) = series.band.as_mut() {
                    band.push((x, estimate.low, estimate.high));
                }
            }
            let lines_by: Vec<&str> = plan.spec.parameters[1..]
                .iter()
                .map(|p| short_name(&p.path.text))
                .collect();
            let title = if lines_by.is_empty() {
                format!("{}: {}", plan.name, metric.name())
            } else {
                format!(
                    "{}: {}; lines: {}",
                    plan.name,
                    metric.name(),
                    lines_by.join(", ")
                )
            };
            let chart = LineChart {
                title,
                x_label: x_label.clone(),
                y_label: metric.label().to_string(),
                series: lines.into_iter().map(|(_, series)| series).collect(),
            };
            (format!("sweep_{}", metric.name()), chart)
        })
        .collect()
}

/// The last step of a path, for legends.
fn short_name(path: &str) -> &str {
    path.rsplit(['.', ':']).next().unwrap_or(path)
}

/// Writes `sweep.csv`, `sweep.json` and the charts into `dir`.
pub fn write_outputs(
    dir: &Path,
    plan: &SweepPlan,
    results: &[JobResult],
) -> Result<(), SweepError> {
    crate::report::prepare_output_dir(dir)?;
    report::write_atomic(&dir.join("sweep.csv"), sweep_csv(plan, results).as_bytes())?;
    let mut text =
        serde_json::to_string_pretty(&results_json(plan, None, results)).unwrap_or_default();
    text.push('\n');
    report::write_atomic(&dir.join("sweep.json"), text.as_bytes())?;
    for (stem, chart) in charts(plan, results) {
        chart::write_lines(dir, &stem, &chart)?;
    }
    let page = report::html::sweep_page(plan, results)?;
    report::write_atomic(&dir.join("report.html"), page.as_bytes())?;
    Ok(())
}

/// The plan and raw results as JSON: `sweep.json`, and the shard files
/// that `merge` reads.
pub fn results_json(plan: &SweepPlan, shard: Option<Shard>, results: &[JobResult]) -> Value {
    let mut sorted: Vec<&JobResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.job);
    json!({
        "plan": plan.to_json(),
        "shard": shard.map(|s| json!([s.index, s.count])),
        "jobs_total": plan.job_count(),
        "partial": results.len() < plan.job_count() && shard.is_none(),
        "metric_order": SweepMetric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "results": sorted.iter().map(|r| json!({
            "job": r.job, "point": r.point, "seed": r.seed, "values": r.values, "truncated": r.truncated,
        })).collect::<Vec<_>>(),
    })
}

/// Writes one shard's raw results to `dir/sweep-shard-I-of-N.json`.
pub fn write_shard(
    dir: &Path,
    plan: &SweepPlan,
    shard: Shard,
    results: &[JobResult],
) -> Result<PathBuf, SweepError> {
    crate::report::prepare_output_dir(dir)?;
    let path = dir.join(format!(
        "sweep-shard-{}-of-{}.json",
        shard.index, shard.count
    ));
    let mut text =
        serde_json::to_string_pretty(&results_json(plan, Some(shard), results)).unwrap_or_default();
    text.push('\n');
    report::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Reads shard files (or `sweep.json` files) and combines them into the
/// plan and every job's result, checking that they belong to one sweep and
/// cover it exactly.
pub fn merge(files: &[PathBuf]) -> Result<(SweepPlan, Vec<JobResult>), SweepError> {
    let mut plan: Option<SweepPlan> = None;
    let mut results: Vec<JobResult> = Vec::new();
    for path in files {
        let error = |reason: String| SweepError::Shard {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
        let this_plan =
            SweepPlan::from_json(value.get("plan").unwrap_or(&Value::Null)).map_err(error)?;
        match &plan {
            Some(existing) if *existing != this_plan => {
                return Err(error(
                    "it belongs to a different sweep than the other files".to_string(),
                ));
            }
            Some(_) => {}
            None => plan = Some(this_plan),
        }
        for item in value
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| error("no results".into()))?
        {
            let field = |key: &str| {
                item.get(key)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| error(format!("result without `{key}`")))
            };
            let values = item
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| error("result without values".into()))?
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            results.push(JobResult {
                job: field("job")? as usize,
                point: field("point")? as usize,
                seed: field("seed")?,
                values,
                truncated: item
                    .get("truncated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
    }
    let plan =
        plan.ok_or_else(|| SweepError::Plan("merge needs at least one shard file".into()))?;
    results.sort_by_key(|r| r.job);
    let before = results.len();
    results.dedup_by_key(|r| r.job);
    if results.len() != before {
        return Err(SweepError::Plan(
            "two shard files hold the same runs".into(),
        ));
    }
    if results.len() != plan.job_count() {
        return Err(SweepError::Plan(format!(
            "the shard files hold {} of the sweep's {} runs; some shards are missing",
            results.len(),
            plan.job_count()
        )));
    }
    Ok((plan, results))
}

/// A table of the per-point means for the terminal.
pub fn human_table(plan: &SweepPlan, results: &[JobResult]) -> String {
    let mut text = String::new();
    let header: Vec<String> = plan
        .spec
        .parameters
        .iter()
        .map(|p| short_name(&p.path.text).to_string())
        .chain(plan.spec.metrics.iter().map(|m| m.name().to_string()))
        .collect();
    let _ = writeln!(
        text,
        "{} points x {} seeds; mean [{:.0}% interval]",
        plan.point_count(),
        plan.spec.seeds,
        plan.spec.confidence * 100.0
    );
    let mut rows = vec![header];
    if !plan.spec.goals.is_empty() {
        rows[0].push("goals".to_string());
    }
    for summary in summarize(plan, results) {
        let mut cells: Vec<String> = plan
            .spec
            .parameters
            .iter()
            .zip(plan.coordinates(summary.point))
            .map(|(p, v)| p.values[v].clone())
            .collect();
        for metric in &plan.spec.metrics {
            let e = summary.estimates[metric_index(*metric)];
            cells.push(if plan.spec.seeds > 1 {
                format!("{:.4} [{:.4}, {:.4}]", e.mean, e.low, e.high)
            } else {
                format!("{:.4}", e.mean)
            });
        }
        if !plan.spec.goals.is_empty() {
            cells.push(if summary.meets_goals {
                "met".into()
            } else {
                "-".into()
            });
        }
        rows.push(cells);
    }
    write_aligned(&mut text, &rows);
    text
}

/// Writes `rows` as left-aligned columns two spaces apart.
fn write_aligned(text: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SweepPlan {
        SweepPlan {
            scenario_file: PathBuf::from("s.yaml"),
            name: "s".into(),
            base_seed: 1,
            spec: SweepSpec {
                parameters: vec![
                    Parameter {
                        path: overrides::parse_path("envoy.replicas").unwrap(),
                        values: vec!["1".into(), "2".into(), "3".into()],
                    },
                    Parameter {
                        path: overrides::parse_path("clients[0].rate").unwrap(),
                        values: vec!["10/s".into(), "20/s".into()],
                    },
                ],
                seeds: 2,
                confidence: 0.95,
                metrics: vec![SweepMetric::Fraction503],
                goals: vec![],
            },
        }
    }

    #[test]
    fn coordinates_vary_the_last_parameter_fastest() {
        let plan = plan();
        assert_eq!(plan.point_count(), 6);
        assert_eq!(plan.coordinates(0), [0, 0]);
        assert_eq!(plan.coordinates(1), [0, 1]);
        assert_eq!(plan.coordinates(5), [2, 1]);
        assert_eq!(
            plan.describe_point(3),
            "envoy.replicas=2, clients[0].rate=20/s"
        );
    }

    #[test]
    fn plans_survive_json() {
        let plan = plan();
        assert_eq!(SweepPlan::from_json(&plan.to_json()).unwrap(), plan);
    }

    /// Two seeds of every point: 503 fractions of 0 and 0.02, so the t
    /// interval of the mean reaches below 0.
    fn results(plan: &SweepPlan) -> Vec<JobResult> {
        let fraction_503 = metric_index(SweepMetric::Fraction503);
        (0..plan.point_count() * 2)
            .map(|job| {
                let mut values = vec![0.0; SweepMetric::ALL.len()];
                values[fraction_503] = if job % 2 == 0 { 0.0 } else { 0.02 };
                JobResult {
                    job,
                    point: job / 2,
                    seed: 1 + job as u64 % 2,
                    values,
                    truncated: false,
                }
            })
            .collect()
    }

    #[test]
    fn intervals_stay_within_the_metric_range() {
        let plan = plan();
        let index = metric_index(SweepMetric::Fraction503);
        for summary in summarize(&plan, &results(&plan)) {
            let estimate = summary.estimates[index];
            assert!((estimate.mean - 0.01).abs() < 1e-12);
            assert_eq!(estimate.low, 0.0);
            assert!(estimate.high > 0.02, "{}", estimate.high);
            assert!(estimate.high <= 1.0, "{}", estimate.high);
        }
    }

    #[test]
    fn human_table_aligns_columns() {
        let plan = plan();
        let table = human_table(&plan, &results(&plan));
        let lines: Vec<&str> = table.lines().skip(1).collect();
        assert_eq!(lines.len(), 7, "{table}");
        let column = lines[0].find("fraction_503").unwrap();
        for line in &lines[1..] {
            assert_eq!(&line[column..column + 6], "0.0100", "{table}");
        }
        assert!(!table.contains("-0."), "{table}");
    }

    #[test]
    fn shards_split_points_disjointly() {
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        for point in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns_point(point)).count(), 1);
        }
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
    }
}
