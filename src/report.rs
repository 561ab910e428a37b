//! A run's outputs: `summary.json`, `timeseries.csv`, `manifest.json`, the
//! charts, and the short summary printed for people.
//!
//! Every file is built in memory and written to a temporary sibling, then
//! renamed into place, so a failed run never leaves a half-written output.
//! Floats are printed with fixed formats so identical runs give identical
//! bytes.

mod run_manifest;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::chart::{self, OutcomeSeries, SpendSeries};
use crate::metrics::{LatencySummary, STATUS_COLUMNS};
use crate::scenario::Scenario;
use crate::sim::{GlobalRateLimitReport, RunOutput};

pub use run_manifest::run_manifest;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create output folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let error = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error(source));
    }
    Ok(())
}

fn latency_json(summary: &LatencySummary) -> Value {
    json!({
        "p50": round3(summary.p50),
        "p90": round3(summary.p90),
        "p99": round3(summary.p99),
        "max": round3(summary.max),
        "mean": round3(summary.mean),
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Rounds money to a billionth of a dollar so sums print stably.
fn usd(value: f64) -> f64 {
    (value * 1e9).round() / 1e9
}

fn status_map(statuses: &std::collections::BTreeMap<u16, u64>) -> Value {
    let mut map = Map::new();
    for (status, count) in statuses {
        map.insert(status.to_string(), json!(count));
    }
    Value::Object(map)
}

/// The contents of `summary.json`.
pub fn summary(scenario: &Scenario, output: &RunOutput) -> Value {
    let metrics = &output.metrics;
    let mut clients = Map::new();
    let (mut backend_first, mut backend_retries) = (0u64, 0u64);
    let (mut spend_first, mut spend_retries) = (0.0f64, 0.0f64);
    for (group, spec) in metrics.groups.iter().zip(&scenario.clients) {
        backend_first += group.backend_first_attempts;
        backend_retries += group.backend_retries;
        spend_first += group.spend_first_attempts_usd;
        spend_retries += group.spend_retries_usd;
        let mut client = json!({
            "kind": spec.kind_name(),
            "instances": spec.count,
            "requests": group.requests,
            "completed": group.completed(),
            "status_counts": status_map(&group.statuses),
            "backend_requests": group.backend_first_attempts + group.backend_retries,
            "backend_retries": group.backend_retries,
            "spend_usd": usd(group.spend_usd()),
            "spend_retries_usd": usd(group.spend_retries_usd),
            "input_tokens": group.input_tokens,
            "output_tokens": group.output_tokens,
            "latency_ms": latency_json(&LatencySummary::from_histogram(&group.latency)),
        });
        if spec.count > 1
            && let Value::Object(map) = &mut client
        {
            let instances: Vec<Value> = group
                .instances
                .iter()
                .map(|instance| {
                    json!({
                        "requests": instance.requests,
                        "status_counts": status_map(&instance.statuses),
                    })
                })
                .collect();
            map.insert("per_instance".into(), Value::Array(instances));
        }
        clients.insert(group.name.clone(), client);
    }
    let mut stats = Map::new();
    for (name, value) in &output.envoy_stats.0 {
        stats.insert(name.clone(), json!(value));
    }
    json!({
        "scenario": scenario.name,
        "seed": output.seed,
        "simulated_seconds": round3(output.end.as_secs_f64()),
        "requests": metrics.total_requests(),
        "status_counts": status_map(&metrics.total_statuses()),
        "clients": clients,
        "backend_requests": backend_first + backend_retries,
        "backend_retries": backend_retries,
        "spend_usd": usd(spend_first + spend_retries),
        "spend_retries_usd": usd(spend_retries),
        "latency_ms": latency_json(&LatencySummary::from_histogram(&metrics.total_latency())),
        "in_flight_at_end": output.in_flight_at_end,
        "events": output.events,
        "truncated": output.truncated.as_ref().map(|t| t.to_string()),
        "notes": output.notes,
        "envoy_stats": stats,
        "global_rate_limit": output.global_rate_limit.as_ref().map(global_rate_limit_json),
    })
}

/// Builds the `global_rate_limit` object of `summary.json`.
fn global_rate_limit_json(report: &GlobalRateLimitReport) -> Value {
    let mut service_stats = Map::new();
    for (name, value) in &report.service_stats {
        service_stats.insert(name.clone(), json!(value));
    }
    json!({
        "calls": report.calls,
        "stream_done_calls": report.stream_done_calls,
        "ok": report.ok,
        "over_limit": report.over_limit,
        "error": report.error,
        "timeouts": report.timeouts,
        "failure_mode_allowed": report.failure_mode_allowed,
        "failed_closed": report.failed_closed,
        "passed_unlimited": report.passed_unlimited,
        "redis_peak_keys": report.redis_peak_keys,
        "service_stats": service_stats,
    })
}

/// The contents of `timeseries.csv`: one row per bucket and client that
/// saw any completion or backend request.
pub fn timeseries_csv(output: &RunOutput) -> String {
    let metrics = &output.metrics;
    let bucket_s = metrics.bucket.as_secs_f64();
    let mut text = String::from("time_s,client,completed");
    for column in STATUS_COLUMNS {
        text.push(',');
        text.push_str(column);
    }
    text.push_str(
        ",backend_requests,spend_usd,cumulative_spend_usd,latency_ms_p50,latency_ms_p90,latency_ms_p99\n",
    );
    let mut cumulative = vec![0.0f64; metrics.groups.len()];
    for row in &metrics.rows {
        cumulative[row.group] += row.spend_usd;
        let _ = write!(
            text,
            "{:.3},{},{}",
            row.bucket as f64 * bucket_s,
            csv_field(&metrics.groups[row.group].name),
            row.completed
        );
        for count in row.statuses {
            let _ = write!(text, ",{count}");
        }
        let _ = write!(
            text,
            ",{},{:.9},{:.9}",
            row.backend_requests, row.spend_usd, cumulative[row.group]
        );
        match &row.latency {
            Some(latency) => {
                let _ = writeln!(
                    text,
                    ",{:.3},{:.3},{:.3}",
                    latency.p50, latency.p90, latency.p99
                );
            }
            None => text.push_str(",,,\n"),
        }
    }
    text
}

/// The contents of `requests.csv`: one row per completed request, in
/// completion order.
pub fn requests_csv(scenario: &Scenario, output: &RunOutput) -> String {
    let mut text = String::from("client,instance,sent_s,completed_s,latency_ms,status,attempts\n");
    for record in &output.requests {
        let name = scenario
            .clients
            .get(record.group as usize)
            .map_or("", |c| c.name.as_str());
        let latency = record.completed.saturating_since(record.sent);
        let _ = writeln!(
            text,
            "{},{},{:.9},{:.9},{:.6},{},{}",
            csv_field(name),
            record.instance,
            record.sent.as_secs_f64(),
            record.completed.as_secs_f64(),
            latency.as_millis_f64(),
            record.status,
            record.attempts
        );
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

/// Dense per-bucket series for the charts.
pub fn chart_series(scenario: &Scenario, output: &RunOutput) -> (OutcomeSeries, SpendSeries) {
    let metrics = &output.metrics;
    let bucket_s = metrics.bucket.as_secs_f64();
    let buckets = (output.end.as_nanos() / metrics.bucket.as_nanos().max(1) + 1) as usize;
    let mut outcomes = OutcomeSeries {
        title: scenario.name.clone(),
        bucket_seconds: bucket_s,
        ok_2xx: vec![0.0; buckets],
        rate_limited_429: vec![0.0; buckets],
        overflow_503: vec![0.0; buckets],
        other: vec![0.0; buckets],
    };
    let mut spend: Vec<Vec<f64>> = vec![vec![0.0; buckets]; metrics.groups.len()];
    for row in &metrics.rows {
        let index = (row.bucket as usize).min(buckets - 1);
        let rate = |count: u64| count as f64 / bucket_s;
        outcomes.ok_2xx[index] += rate(row.statuses[0]);
        outcomes.rate_limited_429[index] += rate(row.statuses[1]);
        outcomes.overflow_503[index] += rate(row.statuses[3]);
        outcomes.other[index] +=
            rate(row.statuses[2] + row.statuses[4] + row.statuses[5] + row.statuses[6]);
        spend[row.group][index] += row.spend_usd;
    }
    let clients = metrics
        .groups
        .iter()
        .zip(spend)
        .map(|(group, per_bucket)| {
            let mut total = 0.0;
            let cumulative = per_bucket
                .into_iter()
                .map(|value| {
                    total += value;
                    total
                })
                .collect();
            (group.name.clone(), cumulative)
        })
        .collect();
    let spend = SpendSeries {
        title: scenario.name.clone(),
        bucket_seconds: bucket_s,
        clients,
    };
    (outcomes, spend)
}

/// Writes every output file of a run into `dir`.
pub fn write_run(
    dir: &Path,
    scenario: &Scenario,
    output: &RunOutput,
    tool_version: &str,
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut summary_text =
        serde_json::to_string_pretty(&summary(scenario, output)).unwrap_or_default();
    summary_text.push('\n');
    write_atomic(&dir.join("summary.json"), summary_text.as_bytes())?;
    write_atomic(
        &dir.join("timeseries.csv"),
        timeseries_csv(output).as_bytes(),
    )?;
    let mut manifest_text =
        serde_json::to_string_pretty(&run_manifest(scenario, output.seed, tool_version))
            .unwrap_or_default();
    manifest_text.push('\n');
    write_atomic(&dir.join("manifest.json"), manifest_text.as_bytes())?;
    let (outcomes, spend) = chart_series(scenario, output);
    chart::write_outcomes(dir, "outcomes", &outcomes)?;
    chart::write_spend(dir, "spend", &spend)?;
    Ok(())
}

fn statuses_line(statuses: &std::collections::BTreeMap<u16, u64>) -> String {
    if statuses.is_empty() {
        return "none completed".to_string();
    }
    statuses
        .iter()
        .map(|(status, count)| format!("{status} x{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats the summary line of the global rate limit: responses, errors,
/// and how many requests passed without their limit because a call failed.
fn global_rate_limit_line(report: &GlobalRateLimitReport) -> String {
    let mut line = format!(
        "global rate limit: {} calls, {} ok, {} over limit, {} errors",
        report.calls, report.ok, report.over_limit, report.error
    );
    if report.timeouts > 0 {
        let _ = write!(line, " ({} timed out)", report.timeouts);
    }
    if report.error > 0 {
        let _ = write!(
            line,
            "; {} requests passed unlimited (fail open), {} rejected with an error (fail closed)",
            report.passed_unlimited, report.failed_closed
        );
    }
    line
}

/// The short summary printed after a run.
pub fn human_summary(scenario: &Scenario, output: &RunOutput, dir: &Path) -> String {
    let metrics = &output.metrics;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "scenario {} (seed {}): {:.3} s simulated, {} events",
        scenario.name,
        output.seed,
        output.end.as_secs_f64(),
        output.events
    );
    let _ = writeln!(
        text,
        "  requests {}: {}",
        metrics.total_requests(),
        statuses_line(&metrics.total_statuses())
    );
    for group in &metrics.groups {
        let latency = LatencySummary::from_histogram(&group.latency);
        let _ = writeln!(
            text,
            "  {}: {} requests; {}; p50 {:.1} ms, p99 {:.1} ms; spend ${:.4}",
            group.name,
            group.requests,
            statuses_line(&group.statuses),
            latency.p50,
            latency.p99,
            group.spend_usd()
        );
    }
    let backend: u64 = metrics
        .groups
        .iter()
        .map(|g| g.backend_first_attempts + g.backend_retries)
        .sum();
    let retries: u64 = metrics.groups.iter().map(|g| g.backend_retries).sum();
    let spend: f64 = metrics.groups.iter().map(|g| g.spend_usd()).sum();
    let _ = writeln!(
        text,
        "  backend requests {backend} ({retries} retries); spend ${spend:.4}"
    );
    if let Some(global) = &output.global_rate_limit {
        let _ = writeln!(text, "  {}", global_rate_limit_line(global));
    }
    if output.in_flight_at_end > 0 {
        let _ = writeln!(
            text,
            "  {} requests still in flight at the end",
            output.in_flight_at_end
        );
    }
    let _ = writeln!(text, "  outputs in {}", dir.display());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("trafficsim-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
