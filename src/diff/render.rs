//! The results of `trafficsim diff` as a table for people and as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{DiffReport, MetricDiff};
use crate::confidence::Interval;

/// Formats a value with up to 4 significant digits.
fn number(value: f64) -> String {
    // Float sums over a different order of events can differ by a few
    // ulps; such a difference, and -0, print as 0.
    if value.abs() < 1e-12 {
        return "0".to_string();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let digits = (4 - 1 - value.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn signed(value: f64) -> String {
    if value >= 1e-12 {
        format!("+{}", number(value))
    } else {
        number(value)
    }
}

fn mean_text(interval: Option<&Interval>) -> String {
    interval.map_or("-".to_string(), |i| number(i.mean))
}

fn change_text(row: &MetricDiff) -> String {
    let Some(change) = &row.change else {
        return "-".to_string();
    };
    let mut text = signed(change.mean);
    if change.half_width.is_some() {
        let _ = write!(
            text,
            " ({}..{})",
            signed(change.low()),
            signed(change.high())
        );
    }
    if let Some(before) = &row.before
        && before.mean != 0.0
    {
        let _ = write!(
            text,
            " {}%",
            signed(change.mean / before.mean.abs() * 100.0)
        );
    }
    if row.significant {
        text.push_str(" *");
    }
    text
}

/// Renders the table `trafficsim diff` prints: each metric before, after,
/// and the change with its interval. `*` marks a significant change.
pub fn render_human(report: &DiffReport) -> String {
    let mut text = String::new();
    let seeds = match report.seeds.as_slice() {
        [only] => format!("seed {only}"),
        [first, .., last] => format!("seeds {first}..{last}"),
        [] => "no seeds".to_string(),
    };
    let _ = writeln!(
        text,
        "{}: before {}, after {}; {seeds}, paired by seed",
        report.scenario, report.before, report.after
    );
    let header = [
        "metric".to_string(),
        "scope".to_string(),
        "before".to_string(),
        "after".to_string(),
        format!("change ({}% interval)", number(report.confidence * 100.0)),
    ];

    let mut rows = vec![header];
    for row in &report.rows {
        rows.push([
            row.metric.clone(),
            row.scope.clone(),
            mean_text(row.before.as_ref()),
            mean_text(row.after.as_ref()),
            change_text(row),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let _ = writeln!(
            text,
            "  {:w0$}  {:w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }

    let significant = report.rows.iter().filter(|r| r.significant).count();
    let _ = writeln!(
        text,
        "{significant} of {} metrics changed significantly (*: the interval of the paired \
         change excludes 0)",
        report.rows.len()
    );
    if report.seeds.len() < 2 {
        text.push_str("one seed gives no interval; use --seeds 10 to judge changes\n");
    }
    for row in report.rows.iter().filter(|r| r.problem.is_some()) {
        let _ = writeln!(
            text,
            "note: {} of {}: {}",
            row.metric,
            row.scope,
            row.problem.as_deref().unwrap_or_default()
        );
    }
    text
}

fn interval_json(interval: Option<&Interval>) -> Value {
    match interval {
        Some(i) => json!({
            "mean": i.mean,
            "low": i.half_width.map(|_| i.low()),
            "high": i.half_width.map(|_| i.high()),
            "n": i.n,
        }),
        None => Value::Null,
    }
}

/// Renders the results of a diff as JSON.
pub fn render_json(report: &DiffReport) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|row| {
            json!({
                "metric": row.metric,
                "scope": row.scope,
                "before": interval_json(row.before.as_ref()),
                "after": interval_json(row.after.as_ref()),
                "change": interval_json(row.change.as_ref()),
                "significant": row.significant,
                "problem": row.problem,
            })
        })
        .collect();
    json!({
        "scenario": report.scenario,
        "before": report.before,
        "after": report.after,
        "seeds": report.seeds,
        "confidence": report.confidence,
        "metrics": rows,
    })
}
