//! Axis ranges and tick labels: how raw values become a drawable range and
//! fixed-format text. Nothing here draws.

use std::ops::Range;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;

/// Largest magnitude a chart value keeps. Larger values are clamped so sums
/// of many values and the range arithmetic in plotters stay finite.
pub(super) const MAX_MAGNITUDE: f64 = 1e200;

/// Returns `value` clamped to [-MAX_MAGNITUDE, MAX_MAGNITUDE], with NaN and
/// infinities read as 0.
pub(super) fn sanitize(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE)
    } else {
        0.0
    }
}

/// Returns a non-empty range covering `low..=high`, widened by `headroom`
/// (a fraction of the span) on each side that is not exactly zero, so a
/// zero baseline stays at the edge of the plot. A span of zero, or one too
/// small to label, is widened around its value.
pub(super) fn axis_range(low: f64, high: f64, headroom: f64) -> Range<f64> {
    let (low, high) = (low.min(high), low.max(high));
    let magnitude = low.abs().max(high.abs());
    if magnitude == 0.0 {
        return 0.0..1.0;
    }
    let span = high - low;
    if span <= magnitude * 1e-9 {
        let pad = magnitude * 0.1;
        return (low - pad)..(high + pad);
    }
    let pad = span * headroom;
    let start = if low == 0.0 { 0.0 } else { low - pad };
    let end = if high == 0.0 { 0.0 } else { high + pad };
    start..end
}

/// Number format of the tick labels of one axis, chosen once per axis from
/// its range so every label on it has the same precision.
#[derive(Clone, Copy, Debug)]
pub(super) struct TickFormat {
    style: TickStyle,
    /// Half the step between ticks. Smaller magnitudes print as 0.
    zero_below: f64,
}

#[derive(Clone, Copy, Debug)]
enum TickStyle {
    /// Plain decimal notation with this many digits after the point.
    Fixed { decimals: usize },
    /// The value divided by 1000^power, with an SI prefix (k, M, G, T).
    Prefixed { power: usize, decimals: usize },
    /// Scientific notation with this many digits after the point.
    Scientific { decimals: usize },
}

const SI_PREFIXES: [&str; 4] = ["k", "M", "G", "T"];

impl TickFormat {
    /// Chooses the format for an axis over `range` with at most
    /// `max_ticks` labels, from the ticks plotters will place there.
    pub(super) fn for_range(range: &Range<f64>, max_ticks: usize) -> Self {
        let plain = Self {
            style: TickStyle::Fixed { decimals: 0 },
            zero_below: 0.0,
        };
        // Plotters asserts that a range is not NaN and can loop forever on
        // an infinite one.
        if !(range.start.is_finite() && range.end.is_finite()) {
            return plain;
        }

        let ticks = RangedCoordf64::from(range.clone()).key_points(max_ticks);
        let step = ticks
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .fold(f64::INFINITY, f64::min);
        // With fewer than two ticks there is no step, so the span is used.
        let step = if step.is_finite() {
            step
        } else {
            range.end - range.start
        };
        if !(step > 0.0 && step.is_finite()) {
            return plain;
        }

        // The epsilon keeps a step such as 0.09999999999999998 at 10^-1.
        let magnitude = range.start.abs().max(range.end.abs());
        let step_exponent = (step.log10() + 1e-9).floor();
        let magnitude_exponent = (magnitude.log10() + 1e-9).floor();
        let zero_below = step / 2.0;

        let style = if magnitude < 1e4 && step_exponent >= -4.0 {
            TickStyle::Fixed {
                decimals: digits_below(step_exponent),
            }
        } else if (1e4..1e15).contains(&magnitude) {
            let power = ((magnitude_exponent / 3.0).floor() as usize).clamp(1, SI_PREFIXES.len());
            TickStyle::Prefixed {
                power,
                decimals: digits_below(step_exponent - 3.0 * power as f64),
            }
        } else {
            TickStyle::Scientific {
                decimals: digits_below(step_exponent - magnitude_exponent),
            }
        };
        Self { style, zero_below }
    }

    /// Formats one tick value.
    pub(super) fn format(&self, value: f64) -> String {
        if value.abs() < self.zero_below || value == 0.0 {
            return "0".to_string();
        }
        match self.style {
            TickStyle::Fixed { decimals } => format!("{value:.decimals$}"),
            TickStyle::Prefixed { power, decimals } => {
                let scaled = value / 1000f64.powi(power as i32);
                let prefix = SI_PREFIXES[power - 1];
                format!("{scaled:.decimals$}{prefix}")
            }
            TickStyle::Scientific { decimals } => format!("{value:.decimals$e}"),
        }
    }
}

/// Returns how many digits after the decimal point show a step of
/// 10^exponent, at most 9.
fn digits_below(exponent: f64) -> usize {
    if exponent >= 0.0 {
        0
    } else {
        (-exponent).min(9.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(range: Range<f64>, values: &[f64]) -> Vec<String> {
        let format = TickFormat::for_range(&range, 10);
        values.iter().map(|&v| format.format(v)).collect()
    }

    #[test]
    fn sanitize_reads_non_finite_as_zero() {
        assert_eq!(sanitize(f64::NAN), 0.0);
        assert_eq!(sanitize(f64::INFINITY), 0.0);
        assert_eq!(sanitize(f64::NEG_INFINITY), 0.0);
        assert_eq!(sanitize(f64::MAX), MAX_MAGNITUDE);
        assert_eq!(sanitize(-2.5), -2.5);
    }

    #[test]
    fn axis_range_keeps_zero_baseline() {
        assert_eq!(axis_range(0.0, 100.0, 0.05), 0.0..105.0);
        assert_eq!(axis_range(0.0, 0.0, 0.05), 0.0..1.0);
        assert_eq!(axis_range(-10.0, 0.0, 0.1), -11.0..0.0);
    }

    #[test]
    fn axis_range_widens_flat_data() {
        let range = axis_range(5.0, 5.0, 0.05);
        assert!(range.start < 5.0);
        assert!(range.end > 5.0);
        let huge = axis_range(1e200, 1e200, 0.05);
        assert!(huge.start < huge.end);
    }

    #[test]
    fn ticks_fixed_decimals() {
        assert_eq!(labels(0.0..600.0, &[0.0, 60.0, 600.0]), ["0", "60", "600"]);
        assert_eq!(labels(0.8..8.2, &[1.0, 8.0]), ["1", "8"]);
        assert_eq!(labels(0.0..1.0, &[0.1, 0.5]), ["0.1", "0.5"]);
        assert_eq!(labels(0.0..0.3, &[0.05, 0.25]), ["0.05", "0.25"]);
    }

    #[test]
    fn ticks_with_si_prefix() {
        assert_eq!(
            labels(0.0..2_500_000.0, &[500_000.0, 2_000_000.0]),
            ["0.5M", "2.0M"]
        );
        assert_eq!(labels(0.0..50_000.0, &[10_000.0]), ["10k"]);
    }

    #[test]
    fn ticks_scientific_for_extremes() {
        assert_eq!(labels(0.0..1e20, &[2e19]), ["2.0e19"]);
        assert_eq!(labels(0.0..1e-6, &[2e-7]), ["2.0e-7"]);
    }

    #[test]
    fn ticks_of_non_finite_range_are_plain() {
        assert_eq!(labels(f64::NAN..1.0, &[0.5]), ["0"]);
        assert_eq!(labels(0.0..f64::INFINITY, &[2.0]), ["2"]);
    }

    #[test]
    fn ticks_never_print_negative_zero() {
        assert_eq!(labels(-1.0..1.0, &[-1e-17, -0.0]), ["0", "0"]);
    }
}
