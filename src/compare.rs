//! `trafficsim compare`: runs variants of one scenario on the same seed and
//! puts their results side by side in a table, `compare.csv`,
//! `compare.json` and charts.
//!
//! Every variant runs with the same seed, and each client draws from its own
//! named random stream. While the variants leave the clients alone, each
//! client therefore sends the same requests at the same times in every
//! variant (common random numbers), and the differences come from the
//! policy and the topology, not from the draws.

pub mod charts;
mod table;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::metrics::LatencySummary;
use crate::report::{self, ReportError};
use crate::scenario::{self, Scenario, Variant};
use crate::sim::{self, RunOutput};
use crate::yaml::Diagnostics;

pub use table::{csv, human_table};

/// Builds variants from command-line arguments in the order their names
/// first appear: `NAME:PATH=VALUE` adds an override to variant `NAME`, and a
/// bare `NAME` is a variant that runs the scenario as written.
pub fn variants_from_args(args: &[String]) -> Result<Vec<Variant>, String> {
    let mut variants: Vec<Variant> = Vec::new();
    for arg in args {
        let (name, change) = if arg.contains(':') {
            let (name, change) = scenario::parse_cli_override(arg)?;
            (name, Some(change))
        } else {
            let name = arg.trim().to_string();
            if !scenario::is_valid_variant_name(&name) {
                return Err(format!(
                    "invalid variant `{arg}`: expected NAME or NAME:PATH=VALUE, where NAME uses \
                     letters, digits, `-`, `_` and `.`"
                ));
            }
            (name, None)
        };
        let position = match variants.iter().position(|v| v.name == name) {
            Some(position) => position,
            None => {
                variants.push(Variant {
                    name,
                    overrides: Vec::new(),
                });
                variants.len() - 1
            }
        };
        variants[position].overrides.extend(change);
    }
    Ok(variants)
}

/// One variant, loaded and run.
pub struct VariantRun {
    pub name: String,
    pub scenario: Scenario,
    pub output: RunOutput,
}

/// A variant that could not be loaded.
#[derive(Debug)]
pub struct VariantError {
    pub variant: String,
    pub diagnostics: Diagnostics,
}

/// Loads every variant of the scenario at `path`: the file with each
/// variant's overrides applied. Returns the first variant that fails with
/// all of its problems.
pub fn load_variants(
    path: &Path,
    variants: &[Variant],
) -> Result<Vec<(String, Scenario)>, VariantError> {
    variants
        .iter()
        .map(|variant| {
            scenario::load_with(path, &variant.overrides)
                .map(|loaded| (variant.name.clone(), loaded))
                .map_err(|diagnostics| VariantError {
                    variant: variant.name.clone(),
                    diagnostics,
                })
        })
        .collect()
}

/// Runs every variant with `seed`, on up to `threads` threads at once.
/// Results come back in input order, so the thread count never changes
/// them.
pub fn run_variants(
    scenarios: Vec<(String, Scenario)>,
    seed: u64,
    threads: usize,
) -> Vec<VariantRun> {
    let mut runs = Vec::with_capacity(scenarios.len());
    let mut pending = scenarios.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<(String, Scenario)> = pending.by_ref().take(threads.max(1)).collect();
        let outputs: Vec<RunOutput> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, loaded)| scope.spawn(move || sim::run(loaded, seed)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    // A panic in a run is a bug: raise it again here.
                    handle
                        .join()
                        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
                })
                .collect()
        });
        for ((name, loaded), output) in batch.into_iter().zip(outputs) {
            runs.push(VariantRun {
                name,
                scenario: loaded,
                output,
            });
        }
    }
    runs
}

/// One client instance's outcome: a "user" of the fairness figure.
#[derive(Clone, Debug, PartialEq)]
pub struct UserOutcome {
    /// `<client>` or, for a client with several instances, `<client>/<n>`.
    pub name: String,
    pub requests: u64,
    pub admitted: u64,
    pub rejected_429: u64,
}

/// The figures of one variant that the comparison shows.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantSummary {
    pub name: String,
    pub simulated_s: f64,
    pub requests: u64,
    /// Requests with a final response before the end of the run.
    pub completed: u64,
    /// Requests whose final response was a 2xx.
    pub admitted: u64,
    pub admitted_per_s: f64,
    pub rejected_429: u64,
    pub status_500: u64,
    pub status_503: u64,
    pub status_504: u64,
    pub users: Vec<UserOutcome>,
    /// Jain's fairness index of the users' 429 counts: 1 when every user
    /// gets as many 429s as every other, 1/n when one user gets them all.
    /// `None` without 429s or with fewer than two users.
    pub fairness_429: Option<f64>,
    /// Latency of every response.
    pub latency_ms: LatencySummary,
    /// Latency of the 2xx responses: what admitted requests pay, including
    /// the wait for the rate limit service.
    pub latency_2xx_ms: LatencySummary,
    pub spend_usd: f64,
    /// Requests that passed a global limit without a decision because the
    /// call to the rate limit service failed (fail open).
    pub passed_unlimited: u64,
    pub rate_limit_calls: u64,
    pub rate_limit_errors: u64,
}

/// Sums a status over every client.
fn status_count(output: &RunOutput, status: u16) -> u64 {
    output
        .metrics
        .total_statuses()
        .get(&status)
        .copied()
        .unwrap_or(0)
}

/// Collects the figures of one variant.
pub fn summarize(run: &VariantRun) -> VariantSummary {
    let output = &run.output;
    let metrics = &output.metrics;
    let statuses = metrics.total_statuses();
    let admitted: u64 = statuses
        .iter()
        .filter(|(status, _)| (200..300).contains(*status))
        .map(|(_, count)| count)
        .sum();
    let simulated_s = output.end.as_secs_f64();
    let mut users = Vec::new();
    for group in &metrics.groups {
        let several = group.instances.len() > 1;
        for (index, instance) in group.instances.iter().enumerate() {
            let count = |status: u16| instance.statuses.get(&status).copied().unwrap_or(0);
            let admitted = instance
                .statuses
                .iter()
                .filter(|(status, _)| (200..300).contains(*status))
                .map(|(_, count)| count)
                .sum();
            users.push(UserOutcome {
                name: if several {
                    format!("{}/{index}", group.name)
                } else {
                    group.name.clone()
                },
                requests: instance.requests,
                admitted,
                rejected_429: count(429),
            });
        }
    }
    let rejections: Vec<f64> = users.iter().map(|u| u.rejected_429 as f64).collect();
    let global = output.global_rate_limit.clone().unwrap_or_default();
    VariantSummary {
        name: run.name.clone(),
        simulated_s,
        requests: metrics.total_requests(),
        completed: statuses.values().sum(),
        admitted,
        admitted_per_s: if simulated_s > 0.0 {
            admitted as f64 / simulated_s
        } else {
            0.0
        },
        rejected_429: status_count(output, 429),
        status_500: status_count(output, 500),
        status_503: status_count(output, 503),
        status_504: status_count(output, 504),
        fairness_429: jain_index(&rejections),
        users,
        latency_ms: LatencySummary::from_histogram(&metrics.total_latency()),
        latency_2xx_ms: LatencySummary::from_histogram(&metrics.total_latency_2xx()),
        spend_usd: metrics.groups.iter().map(|g| g.spend_usd()).sum(),
        passed_unlimited: global.passed_unlimited,
        rate_limit_calls: global.calls,
        rate_limit_errors: global.error,
    }
}

/// Jain's fairness index `(sum x)^2 / (n * sum x^2)`, or `None` for fewer
/// than two values or when all are zero.
pub fn jain_index(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    if squares <= 0.0 {
        return None;
    }
    Some(sum * sum / (values.len() as f64 * squares))
}

/// Builds the contents of `compare.json`.
pub fn json_report(
    scenario_name: &str,
    seed: u64,
    limit_per_s: Option<f64>,
    summaries: &[VariantSummary],
) -> Value {
    let variants: Vec<Value> = summaries
        .iter()
        .map(|summary| {
            let users: Vec<Value> = summary
                .users
                .iter()
                .map(|user| {
                    json!({
                        "name": user.name,
                        "requests": user.requests,
                        "admitted": user.admitted,
                        "rejected_429": user.rejected_429,
                    })
                })
                .collect();
            let mut variant = Map::new();
            variant.insert("name".into(), json!(summary.name));
            variant.insert("simulated_s".into(), json!(round(summary.simulated_s, 3)));
            variant.insert("requests".into(), json!(summary.requests));
            variant.insert("completed".into(), json!(summary.completed));
            variant.insert("admitted".into(), json!(summary.admitted));
            variant.insert(
                "admitted_per_s".into(),
                json!(round(summary.admitted_per_s, 4)),
            );
            variant.insert(
                "admitted_to_limit_ratio".into(),
                json!(limit_per_s.map(|limit| round(summary.admitted_per_s / limit, 4))),
            );
            variant.insert("rejected_429".into(), json!(summary.rejected_429));
            variant.insert("status_500".into(), json!(summary.status_500));
            variant.insert("status_503".into(), json!(summary.status_503));
            variant.insert("status_504".into(), json!(summary.status_504));
            variant.insert(
                "fairness_429_jain".into(),
                json!(summary.fairness_429.map(|f| round(f, 4))),
            );
            variant.insert(
                "latency_ms".into(),
                json!({
                    "p50": round(summary.latency_ms.p50, 3),
                    "p99": round(summary.latency_ms.p99, 3),
                    "max": round(summary.latency_ms.max, 3),
                }),
            );
            variant.insert(
                "latency_2xx_ms".into(),
                json!({
                    "p50": round(summary.latency_2xx_ms.p50, 3),
                    "p99": round(summary.latency_2xx_ms.p99, 3),
                    "max": round(summary.latency_2xx_ms.max, 3),
                }),
            );
            variant.insert("spend_usd".into(), json!(round(summary.spend_usd, 9)));
            variant.insert("passed_unlimited".into(), json!(summary.passed_unlimited));
            variant.insert("rate_limit_calls".into(), json!(summary.rate_limit_calls));
            variant.insert("rate_limit_errors".into(), json!(summary.rate_limit_errors));
            variant.insert("users".into(), Value::Array(users));
            Value::Object(variant)
        })
        .collect();
    json!({
        "scenario": scenario_name,
        "seed": seed,
        "limit_per_s": limit_per_s,
        "variants": variants,
    })
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The output folder of a comparison and the facts its files record.
pub struct CompareOutputs<'a> {
    pub dir: &'a Path,
    pub scenario_name: &'a str,
    pub seed: u64,
    pub limit_per_s: Option<f64>,
    pub tool_version: &'a str,
}

/// Writes `compare.csv`, `compare.json`, the comparison charts, and each
/// variant's own run outputs in a folder named after it.
pub fn write_outputs(
    outputs: &CompareOutputs<'_>,
    runs: &[VariantRun],
    summaries: &[VariantSummary],
) -> Result<Vec<PathBuf>, ReportError> {
    let dir = outputs.dir;
    crate::report::prepare_output_dir(dir)?;
    let mut written = Vec::new();
    for run in runs {
        let variant_dir = dir.join(&run.name);
        report::write_run(
            &variant_dir,
            &run.scenario,
            &run.output,
            outputs.tool_version,
        )?;
        written.push(variant_dir);
    }

    let csv_path = dir.join("compare.csv");
    report::write_atomic(&csv_path, csv(summaries, outputs.limit_per_s).as_bytes())?;
    let json = json_report(
        outputs.scenario_name,
        outputs.seed,
        outputs.limit_per_s,
        summaries,
    );
    let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
    text.push('\n');
    let json_path = dir.join("compare.json");
    report::write_atomic(&json_path, text.as_bytes())?;
    written.push(csv_path);
    written.push(json_path);

    charts::write(
        dir,
        outputs.scenario_name,
        outputs.limit_per_s,
        runs,
        summaries,
    )?;
    let page = report::html::compare_page(
        outputs.scenario_name,
        outputs.seed,
        outputs.limit_per_s,
        runs,
        summaries,
    )?;
    let page_path = dir.join("report.html");
    report::write_atomic(&page_path, page.as_bytes())?;
    written.push(page_path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_bounds() {
        assert_eq!(jain_index(&[5.0, 5.0, 5.0]), Some(1.0));
        let one_of_four = jain_index(&[8.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((one_of_four - 0.25).abs() < 1e-12);
        assert_eq!(jain_index(&[0.0, 0.0]), None);
        assert_eq!(jain_index(&[3.0]), None);
    }
}
