//! The outcomes chart: request rate over time, stacked by status class
//! (2xx, 429, 503, every other status or a client timeout), so the top
//! edge is the total rate.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::OutcomeSeries;
use super::axis::sanitize;
use super::render::{self, DrawResult, Figure, Frame, LegendEntry, Swatch};

const OK_2XX: RGBColor = RGBColor(46, 160, 67);
const RATE_LIMITED_429: RGBColor = RGBColor(245, 140, 30);
const OVERFLOW_503: RGBColor = RGBColor(214, 39, 40);
const OTHER: RGBColor = RGBColor(150, 150, 150);

/// One status class, drawn as the band between the classes below it and
/// the top of its own rates.
struct Layer {
    entry: LegendEntry,
    /// Outline of the band: its top edge left to right, then its bottom
    /// edge right to left. Empty when the class never occurs.
    outline: Vec<(f64, f64)>,
}

pub(super) struct OutcomeFigure {
    title: String,
    x: Range<f64>,
    y: Range<f64>,
    /// Bottom to top: 2xx, 429, 503, other.
    layers: Vec<Layer>,
    has_data: bool,
}

impl OutcomeFigure {
    /// Prepares the drawing of `series`. Missing buckets of a shorter class
    /// and NaN, infinite or negative rates count as 0 requests/s.
    pub(super) fn new(series: &OutcomeSeries) -> Self {
        let classes: [(&str, RGBColor, &[f64]); 4] = [
            ("2xx success", OK_2XX, &series.ok_2xx),
            (
                "429 rate limited",
                RATE_LIMITED_429,
                &series.rate_limited_429,
            ),
            ("503 overflow", OVERFLOW_503, &series.overflow_503),
            ("other or timeout", OTHER, &series.other),
        ];
        let width = render::bucket_width(series.bucket_seconds);
        let buckets = classes
            .iter()
            .map(|(_, _, rates)| rates.len())
            .max()
            .unwrap_or(0);
        let spans = merged_spans(buckets, width);

        // Stack the classes: each layer's top is the previous top plus the
        // class's mean rate over the merged bucket.
        let mut bottom = vec![0.0; spans.len()];
        let mut layers = Vec::with_capacity(classes.len());
        for (name, color, rates) in classes {
            let top: Vec<f64> = spans
                .iter()
                .zip(&bottom)
                .map(|(span, below)| below + mean_rate(rates, span.buckets.clone()))
                .collect();
            let occurs = top.iter().zip(&bottom).any(|(t, b)| t > b);
            let outline = if occurs {
                outline(&spans, &bottom, &top)
            } else {
                Vec::new()
            };
            layers.push(Layer {
                entry: LegendEntry {
                    name: name.to_string(),
                    color,
                    swatch: Swatch::Area,
                },
                outline,
            });
            bottom = top;
        }

        let max_total = bottom.iter().copied().fold(0.0, f64::max);
        Self {
            title: render::title_line(&series.title, "request rate by status"),
            x: 0.0..(buckets.max(1) as f64 * width),
            y: render::zero_based_range(0.0, max_total),
            layers,
            has_data: buckets > 0,
        }
    }
}

/// A drawn bucket: a run of input buckets and the seconds it covers.
struct Span {
    buckets: Range<usize>,
    start_seconds: f64,
    end_seconds: f64,
}

fn merged_spans(buckets: usize, width: f64) -> Vec<Span> {
    let factor = render::merge_factor(buckets);
    (0..buckets.div_ceil(factor))
        .map(|i| {
            let first = i * factor;
            let end = (first + factor).min(buckets);
            Span {
                buckets: first..end,
                start_seconds: first as f64 * width,
                end_seconds: end as f64 * width,
            }
        })
        .collect()
}

/// Returns the mean of `rates[range]` in requests/s, reading absent,
/// non-finite and negative values as 0. All buckets have the same width, so
/// the mean is the rate over the merged bucket.
fn mean_rate(rates: &[f64], range: Range<usize>) -> f64 {
    let count = range.len().max(1) as f64;
    let sum: f64 = range
        .filter_map(|i| rates.get(i))
        .map(|&rate| sanitize(rate).max(0.0))
        .sum();
    sum / count
}

/// Returns the outline of the band between `bottom` and `top`, drawn as
/// steps because each rate applies to its whole bucket.
fn outline(spans: &[Span], bottom: &[f64], top: &[f64]) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(spans.len() * 4);
    for (span, &y) in spans.iter().zip(top) {
        points.push((span.start_seconds, y));
        points.push((span.end_seconds, y));
    }
    for (span, &y) in spans.iter().zip(bottom).rev() {
        points.push((span.end_seconds, y));
        points.push((span.start_seconds, y));
    }
    points
}

impl Figure for OutcomeFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let legend: Vec<LegendEntry> = self.layers.iter().map(|l| l.entry.clone()).collect();
        let frame = Frame {
            title: &self.title,
            x_desc: "time (s)",
            y_desc: "requests/s",
            legend: &legend,
            x_ticks: render::X_TICKS,
        };
        let mut axes = render::draw_axes(root, &frame, self.x.clone(), self.y.clone())?;
        if !self.has_data {
            return render::draw_no_data(&axes);
        }
        for layer in self.layers.iter().filter(|l| !l.outline.is_empty()) {
            let band = Polygon::new(layer.outline.clone(), layer.entry.color.filled());
            axes.draw_series(std::iter::once(band))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ok: Vec<f64>, limited: Vec<f64>) -> OutcomeSeries {
        OutcomeSeries {
            title: "t".to_string(),
            bucket_seconds: 1.0,
            ok_2xx: ok,
            rate_limited_429: limited,
            overflow_503: Vec::new(),
            other: Vec::new(),
        }
    }

    #[test]
    fn layers_stack_in_order() {
        let figure = OutcomeFigure::new(&series(vec![2.0, 4.0], vec![1.0, 1.0]));
        let top_of_429 = &figure.layers[1].outline;
        assert_eq!(
            top_of_429[..4],
            [(0.0, 3.0), (1.0, 3.0), (1.0, 5.0), (2.0, 5.0)]
        );
        assert_eq!(
            top_of_429[4..],
            [(2.0, 4.0), (1.0, 4.0), (1.0, 2.0), (0.0, 2.0)]
        );
        assert!(figure.layers[2].outline.is_empty());
        assert_eq!(figure.y, 0.0..5.25);
        assert_eq!(figure.x, 0.0..2.0);
    }

    #[test]
    fn bad_rates_count_as_zero() {
        let rates = vec![f64::NAN, f64::INFINITY, -3.0, 1.0];
        let figure = OutcomeFigure::new(&series(rates, Vec::new()));
        let top: Vec<f64> = figure.layers[0].outline[..8].iter().map(|p| p.1).collect();
        assert_eq!(top, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn shorter_class_is_padded_with_zero() {
        let figure = OutcomeFigure::new(&series(vec![1.0, 1.0, 1.0], vec![2.0]));
        assert_eq!(figure.x, 0.0..3.0);
        assert_eq!(figure.layers[1].outline[2], (1.0, 1.0));
    }

    #[test]
    fn long_series_are_merged_by_mean() {
        let buckets = render::MAX_DRAWN_BUCKETS * 2;
        let rates: Vec<f64> = (0..buckets).map(|i| (i % 2) as f64 * 2.0).collect();
        let figure = OutcomeFigure::new(&series(rates, Vec::new()));
        let outline = &figure.layers[0].outline;
        assert_eq!(outline.len(), render::MAX_DRAWN_BUCKETS * 4);
        assert!(outline[..outline.len() / 2].iter().all(|p| p.1 == 1.0));
        assert_eq!(figure.x, 0.0..buckets as f64);
    }

    #[test]
    fn empty_series_has_no_data() {
        let figure = OutcomeFigure::new(&series(Vec::new(), Vec::new()));
        assert!(!figure.has_data);
        assert_eq!(figure.x, 0.0..1.0);
        assert_eq!(figure.y, 0.0..1.0);
    }
}
