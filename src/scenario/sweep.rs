//! The `sweep:` section: which parameters to vary, over which values, with
//! how many seeds, and what to measure.

use crate::overrides::{self, FieldPath};
use crate::yaml::{Diagnostics, Node, Value};

/// A sweep over one or more parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    pub parameters: Vec<Parameter>,
    /// Runs per point, with seeds `seed, seed + 1, ...` (the same seeds at
    /// every point, so points differ only by the parameters).
    pub seeds: u32,
    /// Confidence level of the intervals, for example 0.95.
    pub confidence: f64,
    pub metrics: Vec<SweepMetric>,
    pub goals: Vec<Goal>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub path: FieldPath,
    /// Values as YAML scalar text, in sweep order.
    pub values: Vec<String>,
}

/// A figure measured for every run of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SweepMetric {
    Fraction2xx,
    Fraction429,
    Fraction503,
    Fraction5xx,
    LatencyP50Ms,
    LatencyP99Ms,
    AdmittedPerS,
    SpendUsd,
    Requests,
    BackendRequests,
}

impl SweepMetric {
    pub const ALL: [SweepMetric; 10] = [
        SweepMetric::Fraction2xx,
        SweepMetric::Fraction429,
        SweepMetric::Fraction503,
        SweepMetric::Fraction5xx,
        SweepMetric::LatencyP50Ms,
        SweepMetric::LatencyP99Ms,
        SweepMetric::AdmittedPerS,
        SweepMetric::SpendUsd,
        SweepMetric::Requests,
        SweepMetric::BackendRequests,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SweepMetric::Fraction2xx => "fraction_2xx",
            SweepMetric::Fraction429 => "fraction_429",
            SweepMetric::Fraction503 => "fraction_503",
            SweepMetric::Fraction5xx => "fraction_5xx",
            SweepMetric::LatencyP50Ms => "latency_ms_p50",
            SweepMetric::LatencyP99Ms => "latency_ms_p99",
            SweepMetric::AdmittedPerS => "admitted_per_s",
            SweepMetric::SpendUsd => "spend_usd",
            SweepMetric::Requests => "requests",
            SweepMetric::BackendRequests => "backend_requests",
        }
    }

    /// Axis label with the unit.
    pub fn label(self) -> &'static str {
        match self {
            SweepMetric::Fraction2xx => "share of requests answered 2xx",
            SweepMetric::Fraction429 => "share of requests answered 429",
            SweepMetric::Fraction503 => "share of requests answered 503",
            SweepMetric::Fraction5xx => "share of requests answered 5xx",
            SweepMetric::LatencyP50Ms => "median latency (ms)",
            SweepMetric::LatencyP99Ms => "p99 latency (ms)",
            SweepMetric::AdmittedPerS => "admitted requests per second",
            SweepMetric::SpendUsd => "spend (USD)",
            SweepMetric::Requests => "requests sent",
            SweepMetric::BackendRequests => "requests reaching backends",
        }
    }

    /// Smallest and largest value the metric can take: fractions lie in
    /// [0, 1], every other metric is a count, rate, time or price.
    pub fn range(self) -> (f64, f64) {
        match self {
            SweepMetric::Fraction2xx
            | SweepMetric::Fraction429
            | SweepMetric::Fraction503
            | SweepMetric::Fraction5xx => (0.0, 1.0),
            _ => (0.0, f64::INFINITY),
        }
    }

    pub fn from_name(name: &str) -> Option<SweepMetric> {
        SweepMetric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A bound a point should meet, used to mark the points that do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Goal {
    pub metric: SweepMetric,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

impl Goal {
    pub fn met_by(&self, value: f64) -> bool {
        self.max.is_none_or(|max| value <= max) && self.min.is_none_or(|min| value >= min)
    }
}

/// Default metrics when a sweep names none.
/// The largest number of seeds a sweep runs per point.
pub const MAX_SEEDS: u32 = 10_000;

pub const DEFAULT_METRICS: [SweepMetric; 5] = [
    SweepMetric::Fraction429,
    SweepMetric::Fraction503,
    SweepMetric::LatencyP99Ms,
    SweepMetric::AdmittedPerS,
    SweepMetric::SpendUsd,
];

/// Expands `FROM..TO[:STEP]`, where the numbers may carry one unit suffix
/// written after each or only after the first (`100/s..300/s:100`).
pub fn expand_range(text: &str) -> Result<Vec<String>, String> {
    let (bounds, step) = match text.split_once(':') {
        Some((bounds, step)) => (bounds, Some(step)),
        None => (text, None),
    };
    let (from, to) = bounds
        .split_once("..")
        .ok_or_else(|| format!("range `{text}` must be written FROM..TO or FROM..TO:STEP"))?;
    let split = |value: &str| -> Result<(f64, String), String> {
        let end = value
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
            .unwrap_or(value.len());
        let number = value[..end]
            .parse::<f64>()
            .map_err(|_| format!("range `{text}`: `{value}` is not a number"))?;
        Ok((number, value[end..].to_string()))
    };
    let (from, suffix) = split(from.trim())?;
    let (to, to_suffix) = split(to.trim())?;
    if !to_suffix.is_empty() && to_suffix != suffix {
        return Err(format!("range `{text}`: both ends must use the same unit"));
    }
    let step = match step {
        Some(step) => split(step.trim())?.0,
        None => 1.0,
    };
    range_values(from, to, step, &suffix).map_err(|reason| format!("range `{text}`: {reason}"))
}

fn range_values(from: f64, to: f64, step: f64, suffix: &str) -> Result<Vec<String>, String> {
    if step.is_nan() || step <= 0.0 || !step.is_finite() {
        return Err("step must be more than zero".to_string());
    }
    if to < from {
        return Err("the end must not be below the start".to_string());
    }
    let count = ((to - from) / step + 1e-9).floor() as u64 + 1;
    if count > 10_000 {
        return Err(format!(
            "{count} values; a sweep parameter takes at most 10000"
        ));
    }
    Ok((0..count)
        .map(|index| {
            let value = from + step * index as f64;
            let rounded = (value * 1e9).round() / 1e9;
            format!("{rounded}{suffix}")
        })
        .collect())
}

pub(super) fn read_sweep(node: &Node, diagnostics: &mut Diagnostics) -> Option<SweepSpec> {
    let fields = node.fields(diagnostics, &super::schema::SWEEP.names())?;
    let mut parameters = Vec::new();
    let mut ok = true;
    if let Some(list) = fields
        .require("parameters", diagnostics)
        .and_then(|n| n.seq(diagnostics))
    {
        for item in list {
            match read_parameter(item, diagnostics) {
                Some(parameter) => parameters.push(parameter),
                None => ok = false,
            }
        }
        if list.is_empty() {
            diagnostics.error(node, "a sweep needs at least one parameter");
            ok = false;
        }
    } else {
        ok = false;
    }
    let seeds = match fields.get("seeds") {
        Some(n) => super::positive_count(n, "seeds", i64::from(MAX_SEEDS), diagnostics)?,
        None => 1,
    };
    let confidence = match fields.get("confidence") {
        Some(n) => {
            let value = n.f64(diagnostics)?;
            if !(value > 0.0 && value < 1.0) {
                diagnostics.error(
                    n,
                    format!("confidence must be between 0 and 1, found {value}"),
                );
                return None;
            }
            value
        }
        None => 0.95,
    };
    let metrics = match fields.get("metrics") {
        Some(n) => {
            let mut metrics = Vec::new();
            for item in n.seq(diagnostics)? {
                metrics.push(read_metric(item, diagnostics)?);
            }
            metrics
        }
        None => DEFAULT_METRICS.to_vec(),
    };
    let mut goals = Vec::new();
    if let Some(n) = fields.get("goals") {
        for item in n.seq(diagnostics)? {
            let goal = item.fields(diagnostics, &super::schema::SWEEP_GOAL.names())?;
            let metric = read_metric(goal.require("metric", diagnostics)?, diagnostics)?;
            let max = match goal.get("max") {
                Some(n) => Some(n.f64(diagnostics)?),
                None => None,
            };
            let min = match goal.get("min") {
                Some(n) => Some(n.f64(diagnostics)?),
                None => None,
            };
            if max.is_none() && min.is_none() {
                diagnostics.error(item, "a goal needs `max`, `min` or both");
                return None;
            }
            goals.push(Goal { metric, max, min });
        }
    }
    ok.then_some(SweepSpec {
        parameters,
        seeds,
        confidence,
        metrics,
        goals,
    })
}

fn read_metric(node: &Node, diagnostics: &mut Diagnostics) -> Option<SweepMetric> {
    let names: Vec<&str> = SweepMetric::ALL.iter().map(|m| m.name()).collect();
    let name = node.one_of(diagnostics, &names)?;
    SweepMetric::from_name(name)
}

fn read_parameter(node: &Node, diagnostics: &mut Diagnostics) -> Option<Parameter> {
    let fields = node.fields(diagnostics, &super::schema::SWEEP_PARAMETER.names())?;
    let path_node = fields.require("path", diagnostics)?;
    let path = match overrides::parse_path(path_node.str(diagnostics)?) {
        Ok(path) => path,
        Err(message) => {
            diagnostics.error(path_node, message);
            return None;
        }
    };
    let values = match (fields.get("values"), fields.get("range")) {
        (Some(values), None) => {
            let mut out = Vec::new();
            for value in values.seq(diagnostics)? {
                match &value.value {
                    Value::Scalar { text, .. } => out.push(text.clone()),
                    _ => {
                        diagnostics.error(value, "expected a scalar value");
                        return None;
                    }
                }
            }
            if out.is_empty() {
                diagnostics.error(values, "values must list at least one value");
                return None;
            }
            out
        }
        (None, Some(range)) => {
            let spec = range.fields(diagnostics, &super::schema::SWEEP_RANGE.names())?;
            let from = spec
                .require("from", diagnostics)
                .and_then(|n| n.f64(diagnostics));
            let to = spec
                .require("to", diagnostics)
                .and_then(|n| n.f64(diagnostics));
            let step = spec.get("step").map_or(Some(1.0), |n| n.f64(diagnostics));
            let suffix = spec
                .get("suffix")
                .map_or(Some(String::new()), |n| n.string(diagnostics));
            match range_values(from?, to?, step?, &suffix?) {
                Ok(values) => values,
                Err(message) => {
                    diagnostics.error(range, message);
                    return None;
                }
            }
        }
        _ => {
            diagnostics.error(node, "a parameter needs either `values` or `range`");
            return None;
        }
    };
    Some(Parameter { path, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_metric() {
        let names: Vec<&str> = SweepMetric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names, super::super::schema::SWEEP_METRICS);
    }

    #[test]
    fn ranges_expand_with_units() {
        assert_eq!(expand_range("1..3").unwrap(), ["1", "2", "3"]);
        assert_eq!(
            expand_range("100/s..300/s:100").unwrap(),
            ["100/s", "200/s", "300/s"]
        );
        assert_eq!(expand_range("0.5..1:0.25").unwrap(), ["0.5", "0.75", "1"]);
        assert!(expand_range("5..1").is_err());
        assert!(expand_range("1..5:0").is_err());
        assert!(expand_range("1ms..5s").is_err());
    }
}
