//! The comparison charts: one line per variant on each chart.

use std::path::Path;

use super::{VariantRun, VariantSummary};
use crate::chart::{self, LineChart, LineSeries};
use crate::report::{self, ReportError};

/// Writes `admitted`, `latency-p99`, `spend`, `rejected-per-user` and, when
/// any variant has a global rate limit, `passed-unlimited` (each as SVG and
/// PNG) into `dir`.
pub(super) fn write(
    dir: &Path,
    scenario_name: &str,
    limit_per_s: Option<f64>,
    runs: &[VariantRun],
    summaries: &[VariantSummary],
) -> Result<(), ReportError> {
    let series: Vec<RunSeries> = runs.iter().map(RunSeries::new).collect();

    let mut admitted = LineChart {
        title: format!("{scenario_name}: admitted requests"),
        x_label: "time (s)".to_string(),
        y_label: "2xx responses per second".to_string(),
        series: series
            .iter()
            .map(|s| line(&s.name, s.bucket_s, &s.admitted_per_s))
            .collect(),
    };
    if let Some(limit) = limit_per_s {
        let end = series.iter().map(|s| s.end_s).fold(0.0, f64::max);
        admitted.series.push(LineSeries {
            name: "configured limit".to_string(),
            points: vec![(0.0, limit), (end, limit)],
            band: None,
        });
    }
    chart::write_lines(dir, "admitted", &admitted)?;

    let latency = LineChart {
        title: format!("{scenario_name}: p99 latency of all responses, slowest client"),
        x_label: "time (s)".to_string(),
        y_label: "p99 latency (ms)".to_string(),
        series: series
            .iter()
            .map(|s| sparse_line(&s.name, s.bucket_s, &s.p99_ms))
            .collect(),
    };
    chart::write_lines(dir, "latency-p99", &latency)?;

    let spend = LineChart {
        title: format!("{scenario_name}: cumulative spend"),
        x_label: "time (s)".to_string(),
        y_label: "spend (USD)".to_string(),
        series: series
            .iter()
            .map(|s| cumulative_line(&s.name, s.bucket_s, &s.cumulative_spend_usd))
            .collect(),
    };
    chart::write_lines(dir, "spend", &spend)?;

    let per_user = LineChart {
        title: format!("{scenario_name}: 429 responses per user"),
        x_label: "user (client instance, in order)".to_string(),
        y_label: "429 responses".to_string(),
        series: summaries
            .iter()
            .map(|summary| LineSeries {
                name: summary.name.clone(),
                points: summary
                    .users
                    .iter()
                    .enumerate()
                    .map(|(index, user)| (index as f64, user.rejected_429 as f64))
                    .collect(),
                band: None,
            })
            .collect(),
    };
    chart::write_lines(dir, "rejected-per-user", &per_user)?;

    if runs
        .iter()
        .any(|run| run.output.global_rate_limit.is_some())
    {
        let unlimited = LineChart {
            title: format!("{scenario_name}: requests passed without their global limit"),
            x_label: "time (s)".to_string(),
            y_label: "requests per second (rate limit service failed, fail open)".to_string(),
            series: series
                .iter()
                .map(|s| line(&s.name, s.bucket_s, &s.passed_unlimited_per_s))
                .collect(),
        };
        chart::write_lines(dir, "passed-unlimited", &unlimited)?;
    }
    Ok(())
}

/// Dense per-bucket series of one run.
struct RunSeries {
    name: String,
    bucket_s: f64,
    end_s: f64,
    admitted_per_s: Vec<f64>,
    /// Highest p99 among the clients; `None` for a bucket where nothing
    /// completed.
    p99_ms: Vec<Option<f64>>,
    cumulative_spend_usd: Vec<f64>,
    passed_unlimited_per_s: Vec<f64>,
}

impl RunSeries {
    fn new(run: &VariantRun) -> RunSeries {
        let (mut outcomes, spend) = report::chart_series(&run.scenario, &run.output);
        let bucket_s = outcomes.bucket_seconds;
        let end_s = run.output.end.as_secs_f64();
        // Only buckets that start before the end of the run, so the lines do
        // not drop to zero in a bucket that was never simulated.
        let buckets = if bucket_s > 0.0 {
            ((end_s / bucket_s).ceil() as usize).clamp(1, outcomes.ok_2xx.len().max(1))
        } else {
            outcomes.ok_2xx.len()
        };
        outcomes.ok_2xx.truncate(buckets);

        let mut p99_ms: Vec<Option<f64>> = vec![None; buckets];
        for row in &run.output.metrics.rows {
            let index = (row.bucket as usize).min(buckets.saturating_sub(1));
            if let (Some(latency), Some(slot)) = (&row.latency, p99_ms.get_mut(index)) {
                *slot = Some(slot.map_or(latency.p99, |p| p.max(latency.p99)));
            }
        }

        let mut cumulative_spend_usd = vec![0.0; buckets];
        for (_, client) in &spend.clients {
            for (total, value) in cumulative_spend_usd.iter_mut().zip(client.iter()) {
                *total += value;
            }
        }

        let mut passed_unlimited_per_s = vec![0.0; buckets];
        if let Some(global) = &run.output.global_rate_limit {
            for (index, count) in global.passed_unlimited_per_bucket.iter().enumerate() {
                if let Some(slot) = passed_unlimited_per_s.get_mut(index) {
                    *slot = *count as f64 / bucket_s;
                }
            }
        }
        RunSeries {
            name: run.name.clone(),
            bucket_s,
            end_s,
            admitted_per_s: outcomes.ok_2xx,
            p99_ms,
            cumulative_spend_usd,
            passed_unlimited_per_s,
        }
    }
}

/// Builds a line with one point per bucket, at the bucket's start.
fn line(name: &str, bucket_s: f64, values: &[f64]) -> LineSeries {
    LineSeries {
        name: name.to_string(),
        points: values
            .iter()
            .enumerate()
            .map(|(index, value)| (index as f64 * bucket_s, *value))
            .collect(),
        band: None,
    }
}

/// Builds a line of running totals, each bucket's total at its end.
fn cumulative_line(name: &str, bucket_s: f64, totals: &[f64]) -> LineSeries {
    let start = std::iter::once((0.0, 0.0));
    let ends = totals
        .iter()
        .enumerate()
        .map(|(index, total)| ((index + 1) as f64 * bucket_s, *total));
    LineSeries {
        name: name.to_string(),
        points: start.chain(ends).collect(),
        band: None,
    }
}

/// Like [`line`], skipping buckets without a value.
fn sparse_line(name: &str, bucket_s: f64, values: &[Option<f64>]) -> LineSeries {
    LineSeries {
        name: name.to_string(),
        points: values
            .iter()
            .enumerate()
            .filter_map(|(index, value)| value.map(|v| (index as f64 * bucket_s, v)))
            .collect(),
        band: None,
    }
}
