//! Probability distributions a scenario can name: service times, token
//! counts, think times.
//!
//! A distribution is written in the scenario as a mapping with one key
//! naming its family (`constant`, `exponential`, `lognormal`, `uniform`),
//! or as a bare value meaning a constant. Lognormal is given by its median
//! and 99th percentile, the two figures people read off a latency
//! dashboard.

use rand_distr::Distribution as _;

use crate::rng::{self, Stream};
use crate::yaml::{Diagnostics, Node, Value};

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A distribution over non-negative numbers (seconds, tokens, ...).
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Constant(f64),
    Exponential {
        mean: f64,
    },
    /// `ln X` is normal with mean `mu` and deviation `sigma`.
    LogNormal {
        median: f64,
        p99: f64,
        mu: f64,
        sigma: f64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
}

impl Dist {
    /// Draws one value; never negative.
    pub fn sample(&self, rng: &mut Stream) -> f64 {
        let value = match self {
            Dist::Constant(value) => *value,
            Dist::Exponential { mean } => {
                if *mean <= 0.0 {
                    0.0
                } else {
                    // Scaling a unit-mean draw advances the stream the same
                    // way whatever the mean.
                    mean * rng::exp1(rng)
                }
            }
            Dist::LogNormal { mu, sigma, .. } => match rand_distr::LogNormal::new(*mu, *sigma) {
                Ok(lognormal) => lognormal.sample(rng),
                Err(_) => mu.exp(),
            },
            Dist::Uniform { min, max } => min + (max - min) * rng::unit_f64(rng),
        };
        if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        }
    }

    pub fn mean(&self) -> f64 {
        match self {
            Dist::Constant(value) => *value,
            Dist::Exponential { mean } => *mean,
            Dist::LogNormal { mu, sigma, .. } => (mu + sigma * sigma / 2.0).exp(),
            Dist::Uniform { min, max } => (min + max) / 2.0,
        }
    }

    /// A short description with units, for manifests and summaries.
    pub fn describe(&self, unit: &str) -> String {
        match self {
            Dist::Constant(value) => format!("constant {value}{unit}"),
            Dist::Exponential { mean } => format!("exponential, mean {mean}{unit}"),
            Dist::LogNormal { median, p99, .. } => {
                format!("lognormal, median {median}{unit}, p99 {p99}{unit}")
            }
            Dist::Uniform { min, max } => format!("uniform from {min}{unit} to {max}{unit}"),
        }
    }

    /// The parameters as JSON, for the run manifest.
    pub fn to_json(&self, unit: &str) -> serde_json::Value {
        let key = |name: &str| format!("{name}_{unit}");
        match self {
            Dist::Constant(value) => serde_json::json!({"kind": "constant", key("value"): value}),
            Dist::Exponential { mean } => {
                serde_json::json!({"kind": "exponential", key("mean"): mean})
            }
            Dist::LogNormal { median, p99, .. } => {
                serde_json::json!({"kind": "lognormal", key("median"): median, key("p99"): p99})
            }
            Dist::Uniform { min, max } => {
                serde_json::json!({"kind": "uniform", key("min"): min, key("max"): max})
            }
        }
    }
}

/// How a scalar of the distribution is read: a duration (`250ms`, in
/// seconds once read) or a plain number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Seconds,
    Count,
}

fn read_scalar(node: &Node, quantity: Quantity, diagnostics: &mut Diagnostics) -> Option<f64> {
    match quantity {
        Quantity::Seconds => node.duration(diagnostics).map(|d| d.as_secs_f64()),
        Quantity::Count => {
            let value = node.f64(diagnostics)?;
            if value < 0.0 {
                diagnostics.error(
                    node,
                    format!("expected a number of zero or more, found `{value}`"),
                );
                return None;
            }
            Some(value)
        }
    }
}

/// Reads a distribution from a scenario node.
pub fn read(node: &Node, quantity: Quantity, diagnostics: &mut Diagnostics) -> Option<Dist> {
    if let Value::Scalar { .. } = node.value {
        return read_scalar(node, quantity, diagnostics).map(Dist::Constant);
    }
    let families = crate::scenario::schema::distribution_family_names();
    let fields = node.fields(diagnostics, &families)?;
    let present: Vec<&str> = fields.keys().collect();
    if present.len() != 1 {
        diagnostics.error(
            node,
            "a distribution names exactly one of constant, exponential, lognormal, uniform",
        );
        return None;
    }
    if let Some(value) = fields.get("constant") {
        return read_scalar(value, quantity, diagnostics).map(Dist::Constant);
    }
    if let Some(body) = fields.get("exponential") {
        let params = body.fields(diagnostics, &["mean"])?;
        let mean = read_scalar(params.require("mean", diagnostics)?, quantity, diagnostics)?;
        return Some(Dist::Exponential { mean });
    }
    if let Some(body) = fields.get("lognormal") {
        let params = body.fields(diagnostics, &["median", "p99"])?;
        let median_node = params.require("median", diagnostics);
        let p99_node = params.require("p99", diagnostics);
        let median = read_scalar(median_node?, quantity, diagnostics)?;
        let p99 = read_scalar(p99_node?, quantity, diagnostics)?;
        if median <= 0.0 || p99 < median {
            diagnostics.error(
                body,
                format!("lognormal needs 0 < median <= p99, found median {median} and p99 {p99}"),
            );
            return None;
        }
        let mu = median.ln();
        let sigma = (p99 / median).ln() / Z_P99;
        return Some(Dist::LogNormal {
            median,
            p99,
            mu,
            sigma,
        });
    }
    if let Some(body) = fields.get("uniform") {
        let params = body.fields(diagnostics, &["min", "max"])?;
        let min_node = params.require("min", diagnostics);
        let max_node = params.require("max", diagnostics);
        let min = read_scalar(min_node?, quantity, diagnostics)?;
        let max = read_scalar(max_node?, quantity, diagnostics)?;
        if max < min {
            diagnostics.error(
                body,
                format!("uniform needs min <= max, found {min} and {max}"),
            );
            return None;
        }
        return Some(Dist::Uniform { min, max });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;
    use crate::yaml::parse_str;
    use std::path::Path;

    fn parse(text: &str, quantity: Quantity) -> Result<Dist, String> {
        let root = parse_str(text, Path::new("t.yaml")).unwrap().remove(0).root;
        let mut diagnostics = Diagnostics::default();
        read(root.get("d").unwrap(), quantity, &mut diagnostics).ok_or(diagnostics.to_string())
    }

    #[test]
    fn shorthand_is_a_constant() {
        assert_eq!(
            parse("d: 50ms", Quantity::Seconds),
            Ok(Dist::Constant(0.05))
        );
        assert_eq!(parse("d: 300", Quantity::Count), Ok(Dist::Constant(300.0)));
    }

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let dist = parse(
            "d: {lognormal: {median: 200ms, p99: 2s}}",
            Quantity::Seconds,
        )
        .unwrap();
        let mut rng = Streams::new(3).stream("t", 0);
        let mut samples: Vec<f64> = (0..200_000).map(|_| dist.sample(&mut rng)).collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((median - 0.2).abs() < 0.01, "median {median}");
        assert!((p99 - 2.0).abs() < 0.15, "p99 {p99}");
    }

    #[test]
    fn exponential_mean_is_close() {
        let dist = parse("d: {exponential: {mean: 40ms}}", Quantity::Seconds).unwrap();
        let mut rng = Streams::new(9).stream("t", 0);
        let n = 100_000;
        let mean = (0..n).map(|_| dist.sample(&mut rng)).sum::<f64>() / n as f64;
        assert!((mean - 0.04).abs() < 0.001, "mean {mean}");
    }

    #[test]
    fn bad_distributions_are_reported() {
        assert!(
            parse("d: {lognormal: {median: 2s, p99: 1s}}", Quantity::Seconds)
                .unwrap_err()
                .contains("median <= p99")
        );
        assert!(
            parse("d: {gaussian: {mean: 1s}}", Quantity::Seconds)
                .unwrap_err()
                .contains("unknown field `gaussian`")
        );
        assert!(
            parse("d: -5", Quantity::Count)
                .unwrap_err()
                .contains("zero or more")
        );
    }
}
