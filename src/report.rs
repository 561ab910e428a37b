//! A run's outputs: `summary.json`, `timeseries.csv`, `manifest.json`, the
//! charts, `report.html`, the Prometheus exports, and the short summary
//! printed for people.
//!
//! Every file is built in memory and written to a temporary sibling, then
//! renamed into place, so a failed run never leaves a half-written output.
//! Floats are printed with fixed formats so identical runs give identical
//! bytes.

pub mod html;
pub mod prometheus;
mod run_manifest;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::chart::{self, LineChart, LineSeries, OutcomeSeries, SpendSeries};
use crate::metrics::{CLIENT_TIMEOUT_STATUS, LatencySummary, STATUS_COLUMNS};
use crate::scenario::Scenario;
use crate::sim::{GlobalRateLimitReport, RunOutput};

pub use run_manifest::run_manifest;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create output folder {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "output folder {path} already holds files trafficsim did not write; choose another \
         folder with --out, or empty this one"
    )]
    ForeignFolder { path: PathBuf },
    #[error("output folder {path} is a file; choose a folder with --out")]
    NotAFolder { path: PathBuf },
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
}

/// Name of the file that marks a folder as written by trafficsim.
pub const OUTPUT_MARKER: &str = ".trafficsim-output";

/// Creates `dir` for outputs, or accepts it when trafficsim made it before
/// (it contains [`OUTPUT_MARKER`]) or when it contains only such folders,
/// so a run never replaces files it did not write. The second case is
/// `outputs/<scenario>/` after `diff` wrote its `diff/` folder there.
pub fn prepare_output_dir(dir: &Path) -> Result<(), ReportError> {
    let create_error = |source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(ReportError::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(create_error)?;
    let marker = dir.join(OUTPUT_MARKER);
    if marker.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(create_error)? {
        let entry = entry.map_err(create_error)?;
        if !entry.path().join(OUTPUT_MARKER).is_file() {
            return Err(ReportError::ForeignFolder {
                path: dir.to_path_buf(),
            });
        }
    }
    write_atomic(
        &marker,
        b"This folder holds outputs written by trafficsim, which may replace them.\n",
    )
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

/// Returns the name of a final status in summaries: the code, or
/// `client_timeout` for a call the client gave up on.
pub fn status_name(status: u16) -> String {
    if status == CLIENT_TIMEOUT_STATUS {
        "client_timeout".to_string()
    } else {
        status.to_string()
    }
}

fn status_map(statuses: &std::collections::BTreeMap<u16, u64>) -> Value {
    let mut map = Map::new();
    for (status, count) in statuses {
        map.insert(status_name(*status), json!(count));
    }
    Value::Object(map)
}

fn count_map(counts: &std::collections::BTreeMap<u32, u64>) -> Value {
    let mut map = Map::new();
    for (key, count) in counts {
        map.insert(key.to_string(), json!(count));
    }
    Value::Object(map)
}

/// Totals over every client of a run.
#[derive(Default)]
struct Totals {
    backend_first: u64,
    backend_retries: u64,
    backend_envoy_retries: u64,
    backend_client_retries: u64,
    spend_first: f64,
    spend_retries: f64,
    client_retries: u64,
    client_timeouts: u64,
    duplicate_executions: u64,
}

impl Totals {
    fn add(&mut self, group: &crate::metrics::GroupMetrics) {
        self.backend_first += group.backend_first_attempts;
        self.backend_retries += group.backend_retries;
        self.backend_envoy_retries += group.backend_envoy_retries;
        self.backend_client_retries += group.backend_client_retries;
        self.spend_first += group.spend_first_attempts_usd;
        self.spend_retries += group.spend_retries_usd;
        self.client_retries += group.client_retries;
        self.client_timeouts += group.client_timeouts;
        self.duplicate_executions += group.duplicate_executions;
    }
}

/// Lists each endpoint's total of attempts served, named by backend and
/// index.
fn endpoints_json(scenario: &Scenario, output: &RunOutput) -> Value {
    let mut list = Vec::new();
    let mut global = 0;
    for backend in &scenario.backends {
        for index in 0..backend.endpoints {
            list.push(json!({
                "backend": format!("{}/{}", backend.namespace, backend.name),
                "endpoint": index,
                "requests": output.metrics.endpoint_requests.get(global).copied().unwrap_or(0),
            }));
            global += 1;
        }
    }
    Value::Array(list)
}

fn outlier_events_json(output: &RunOutput) -> Value {
    let events: Vec<Value> = output
        .outlier_events
        .iter()
        .map(|event| {
            json!({
                "time_s": round3(event.at.as_secs_f64()),
                "replica": event.replica,
                "cluster": event.cluster,
                "host": event.host,
                "action": if event.ejected_for.is_some() { "eject" } else { "return" },
                "reason": event.ejected_for,
            })
        })
        .collect();
    Value::Array(events)
}

/// The contents of `summary.json`.
pub fn summary(scenario: &Scenario, output: &RunOutput) -> Value {
    let metrics = &output.metrics;
    let mut clients = Map::new();
    let mut totals = Totals::default();
    for (group, spec) in metrics.groups.iter().zip(&scenario.clients) {
        totals.add(group);
        let mut client = json!({
            "kind": spec.kind_name(),
            "instances": spec.count,
            "requests": group.requests,
            "http_requests": group.http_requests,
            "client_retries": group.client_retries,
            "client_timeouts": group.client_timeouts,
            "completed": group.completed(),
            "status_counts": status_map(&group.statuses),
            "envoy_attempt_counts": count_map(&group.attempt_counts),
            "backend_requests": group.backend_first_attempts + group.backend_retries,
            "backend_first_attempts": group.backend_first_attempts,
            "backend_retries": group.backend_retries,
            "backend_retries_by_envoy": group.backend_envoy_retries,
            "backend_retries_by_client": group.backend_client_retries,
            "duplicate_executions": group.duplicate_executions,
            "spend_usd": usd(group.spend_usd()),
            "spend_first_attempts_usd": usd(group.spend_first_attempts_usd),
            "spend_retries_usd": usd(group.spend_retries_usd),
            "input_tokens": group.input_tokens,
            "output_tokens": group.output_tokens,
            "latency_ms": latency_json(&LatencySummary::from_histogram(&group.latency)),
            "first_sent_s": group.first_sent.map(|t| round3(t.as_secs_f64())),
            "last_completed_s": group.last_completed.map(|t| round3(t.as_secs_f64())),
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
        "backend_requests": totals.backend_first + totals.backend_retries,
        "backend_first_attempts": totals.backend_first,
        "backend_retries": totals.backend_retries,
        "backend_retries_by_envoy": totals.backend_envoy_retries,
        "backend_retries_by_client": totals.backend_client_retries,
        "client_retries": totals.client_retries,
        "client_timeouts": totals.client_timeouts,
        "duplicate_executions": totals.duplicate_executions,
        "spend_usd": usd(totals.spend_first + totals.spend_retries),
        "spend_first_attempts_usd": usd(totals.spend_first),
        "spend_retries_usd": usd(totals.spend_retries),
        "endpoints": endpoints_json(scenario, output),
        "outlier_events": outlier_events_json(output),
        "outlier_events_not_listed": output.outlier_events_dropped,
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
    let mut summary = json!({
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
    });
    if let Some(wait) = report.service_max_wait {
        summary["service_max_wait_ms"] = json!(round3(wait.as_secs_f64() * 1e3));
    }
    if let Some(queue) = &report.redis_queue {
        summary["redis_peak_waiting"] = json!(queue.peak_waiting);
        summary["redis_max_wait_ms"] = json!(round3(queue.max_wait.as_secs_f64() * 1e3));
        summary["redis_waiting_at_end"] = json!(queue.waiting_at_end);
    }
    summary
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
        ",backend_requests,backend_retries,spend_usd,cumulative_spend_usd,latency_ms_p50,latency_ms_p90,latency_ms_p99\n",
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
            ",{},{},{:.9},{:.9}",
            row.backend_requests, row.backend_retries, row.spend_usd, cumulative[row.group]
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
        outcomes.other[index] += rate(
            row.statuses[2] + row.statuses[4] + row.statuses[5] + row.statuses[6] + row.statuses[7],
        );
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

/// Writes every output file of a run into `dir` and returns their paths.
pub fn write_run(
    dir: &Path,
    scenario: &Scenario,
    output: &RunOutput,
    tool_version: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    prepare_output_dir(dir)?;
    let mut written = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), ReportError> {
        let path = dir.join(name);
        write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    let mut summary_text =
        serde_json::to_string_pretty(&summary(scenario, output)).unwrap_or_default();
    summary_text.push('\n');
    write("summary.json", summary_text.as_bytes())?;
    write("timeseries.csv", timeseries_csv(output).as_bytes())?;
    let mut manifest_text =
        serde_json::to_string_pretty(&run_manifest(scenario, output.seed, tool_version))
            .unwrap_or_default();
    manifest_text.push('\n');
    write("manifest.json", manifest_text.as_bytes())?;

    let mut charts = vec!["outcomes", "spend"];
    let (outcomes, spend) = chart_series(scenario, output);
    chart::write_outcomes(dir, "outcomes", &outcomes)?;
    chart::write_spend(dir, "spend", &spend)?;
    if has_retries(scenario) {
        chart::write_lines(dir, "backend-load", &backend_load_chart(scenario, output))?;
        charts.push("backend-load");
    }
    if has_endpoint_story(scenario) && !output.metrics.endpoint_rows.is_empty() {
        chart::write_lines(dir, "endpoints", &endpoints_chart(scenario, output))?;
        charts.push("endpoints");
    }
    for stem in charts {
        written.push(dir.join(format!("{stem}.svg")));
        written.push(dir.join(format!("{stem}.png")));
    }

    let page = html::run_page(scenario, output)?;
    let path = dir.join("report.html");
    write_atomic(&path, page.as_bytes())?;
    written.push(path);
    Ok(written)
}

/// True when Envoy or a client retries, or a client times out, so the
/// load retries add to the backend is worth a chart.
fn has_retries(scenario: &Scenario) -> bool {
    scenario.gateway.routes.iter().any(|r| r.retry.is_some())
        || scenario
            .clients
            .iter()
            .any(|c| c.retries.is_some() || c.timeout.is_some())
}

/// True when endpoints behave differently over time or may be ejected,
/// so the traffic each one gets is worth a chart.
fn has_endpoint_story(scenario: &Scenario) -> bool {
    scenario.backends.iter().any(|b| !b.schedule.is_empty())
        || scenario
            .gateway
            .clusters
            .iter()
            .any(|c| c.outlier_detection.is_some())
}

/// Returns the number of buckets a line chart shows: those starting before
/// the run ends, so a run ending on a bucket boundary draws no empty bucket
/// as a drop.
fn line_buckets(output: &RunOutput) -> usize {
    let bucket = output.metrics.bucket.as_nanos().max(1);
    output.end.as_nanos().div_ceil(bucket).max(1) as usize
}

/// Requests per second reaching the backends: first attempts and retries
/// (by Envoy or by clients), every client together.
pub fn backend_load_chart(scenario: &Scenario, output: &RunOutput) -> LineChart {
    let metrics = &output.metrics;
    let bucket_s = metrics.bucket.as_secs_f64();
    let buckets = line_buckets(output);
    let mut first = vec![0.0; buckets];
    let mut retries = vec![0.0; buckets];
    let mut timeouts = vec![0.0; buckets];
    for row in &metrics.rows {
        let index = (row.bucket as usize).min(buckets - 1);
        first[index] += (row.backend_requests - row.backend_retries) as f64 / bucket_s;
        retries[index] += row.backend_retries as f64 / bucket_s;
        timeouts[index] += row.statuses[7] as f64 / bucket_s;
    }
    let points = |values: Vec<f64>| -> Vec<(f64, f64)> {
        values
            .into_iter()
            .enumerate()
            .map(|(bucket, value)| (bucket as f64 * bucket_s, value))
            .collect()
    };
    let mut series = vec![
        LineSeries {
            name: "first attempts".to_string(),
            points: points(first),
            band: None,
        },
        LineSeries {
            name: "retries".to_string(),
            points: points(retries),
            band: None,
        },
    ];
    if timeouts.iter().any(|value| *value > 0.0) {
        series.push(LineSeries {
            name: "calls given up".to_string(),
            points: points(timeouts),
            band: None,
        });
    }
    LineChart {
        title: format!("{}: requests reaching the backends", scenario.name),
        x_label: "simulated time (s)".to_string(),
        y_label: "requests per second".to_string(),
        series,
    }
}

/// Requests per second each backend endpoint serves.
pub fn endpoints_chart(scenario: &Scenario, output: &RunOutput) -> LineChart {
    let metrics = &output.metrics;
    let bucket_s = metrics.bucket.as_secs_f64();
    let buckets = line_buckets(output);
    let mut names = Vec::new();
    for backend in &scenario.backends {
        for index in 0..backend.endpoints {
            names.push(format!("{} {index}", backend.name));
        }
    }
    let mut values = vec![vec![0.0; buckets]; names.len()];
    for (bucket, counts) in &metrics.endpoint_rows {
        let index = (*bucket as usize).min(buckets - 1);
        for (endpoint, count) in counts.iter().enumerate() {
            if let Some(series) = values.get_mut(endpoint) {
                series[index] += f64::from(*count) / bucket_s;
            }
        }
    }
    let series = names
        .into_iter()
        .zip(values)
        .map(|(name, per_bucket)| LineSeries {
            name,
            points: per_bucket
                .into_iter()
                .enumerate()
                .map(|(bucket, value)| (bucket as f64 * bucket_s, value))
                .collect(),
            band: None,
        })
        .collect();
    LineChart {
        title: format!("{}: requests per endpoint", scenario.name),
        x_label: "simulated time (s)".to_string(),
        y_label: "requests per second".to_string(),
        series,
    }
}

fn statuses_line(statuses: &std::collections::BTreeMap<u16, u64>) -> String {
    if statuses.is_empty() {
        return "none completed".to_string();
    }
    statuses
        .iter()
        .map(|(status, count)| format!("{} x{count}", status_name(*status)))
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
    if let Some(wait) = report.service_max_wait {
        let _ = write!(
            line,
            "; service calls waited up to {:.1} ms",
            wait.as_secs_f64() * 1e3
        );
    }
    if let Some(queue) = &report.redis_queue {
        let _ = write!(
            line,
            "; Redis pipelines waited up to {:.1} ms, {} at once at most, {} still waiting at \
             the end",
            queue.max_wait.as_secs_f64() * 1e3,
            queue.peak_waiting,
            queue.waiting_at_end
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
        let sent = if group.client_retries > 0 {
            format!(" ({} sent with retries)", group.http_requests)
        } else {
            String::new()
        };
        // Without a completed request there is no latency to show.
        let latency = if group.latency.is_empty() {
            String::new()
        } else {
            format!("; p50 {:.1} ms, p99 {:.1} ms", latency.p50, latency.p99)
        };
        let _ = writeln!(
            text,
            "  {}: {} requests{sent}; {}{latency}; spend ${:.4}",
            group.name,
            group.requests,
            statuses_line(&group.statuses),
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
    let client_retries: u64 = metrics.groups.iter().map(|g| g.client_retries).sum();
    let client_timeouts: u64 = metrics.groups.iter().map(|g| g.client_timeouts).sum();
    if client_retries + client_timeouts > 0 {
        let _ = writeln!(
            text,
            "  client retries {client_retries}, client timeouts {client_timeouts}"
        );
    }
    let duplicates: u64 = metrics.groups.iter().map(|g| g.duplicate_executions).sum();
    if duplicates > 0 {
        let _ = writeln!(
            text,
            "  {duplicates} repeated backend executions of POST or PATCH calls"
        );
    }
    let ejections: u64 = output
        .envoy_stats
        .0
        .iter()
        .filter(|(name, _)| name.ends_with(".outlier_detection.ejections_enforced_total"))
        .map(|(_, count)| count)
        .sum();
    if ejections > 0 {
        let _ = writeln!(text, "  outlier ejections {ejections}");
    }
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

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("trafficsim-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn output_dir_takes_folders_trafficsim_wrote() {
        let dir = scratch("nested");
        prepare_output_dir(&dir.join("diff")).unwrap();
        prepare_output_dir(&dir).unwrap();
        assert!(dir.join(OUTPUT_MARKER).is_file());
    }

    #[test]
    fn output_dir_rejects_foreign_folders() {
        let dir = scratch("foreign-subfolder");
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        let error = prepare_output_dir(&dir).unwrap_err();
        assert!(
            matches!(error, ReportError::ForeignFolder { .. }),
            "{error}"
        );
        assert!(!dir.join(OUTPUT_MARKER).exists());
    }

    #[test]
    fn output_dir_rejects_a_file() {
        let dir = scratch("file");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("summary");
        std::fs::write(&file, b"x").unwrap();
        let error = prepare_output_dir(&file).unwrap_err();
        assert!(matches!(error, ReportError::NotAFolder { .. }), "{error}");
        assert!(error.to_string().contains("is a file"), "{error}");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
