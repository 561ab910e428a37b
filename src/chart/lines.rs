//! The generic line chart for comparisons and sweeps: named lines over a
//! shared x axis, each with an optional shaded band (a range such as
//! min..max across seeds).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{self, sanitize};
use super::render::{self, DrawResult, Figure, Frame, LegendEntry, PALETTE, Swatch};
use super::{LineChart, LineSeries};

/// Series with at most this many points also get a marker at each point,
/// so a sweep shows where it was measured.
const MARKER_LIMIT: usize = 60;
/// Maximum points drawn per line or band. Longer ones are thinned to every
/// k-th point, keeping the last, so drawing time stays bounded.
const MAX_POINTS: usize = 2000;
/// Opacity of a band's fill.
const BAND_OPACITY: f64 = 0.2;

struct Line {
    entry: LegendEntry,
    points: Vec<(f64, f64)>,
    /// (x, low, high) in input order.
    band: Vec<(f64, f64, f64)>,
}

pub(super) struct LinesFigure {
    title: String,
    x_desc: String,
    y_desc: String,
    x: Range<f64>,
    y: Range<f64>,
    /// Most labels on the x axis: fewer when x takes only whole values, so
    /// a sweep over replicas is not labelled 1.5, 2.5.
    x_ticks: usize,
    lines: Vec<Line>,
    has_data: bool,
}

impl LinesFigure {
    /// Prepares the drawing of `chart`. NaN and infinite coordinates count
    /// as 0, and points are joined in input order.
    pub(super) fn new(chart: &LineChart) -> Self {
        let lines: Vec<Line> = chart
            .series
            .iter()
            .enumerate()
            .map(|(i, series)| sanitize_series(series, PALETTE[i % PALETTE.len()]))
            .collect();

        let xs = lines.iter().flat_map(|l| {
            let points = l.points.iter().map(|p| p.0);
            points.chain(l.band.iter().map(|b| b.0))
        });
        let ys = lines.iter().flat_map(|l| {
            let points = l.points.iter().map(|p| p.1);
            points.chain(l.band.iter().flat_map(|b| [b.1, b.2]))
        });
        let has_data = xs.clone().next().is_some();
        let whole_xs = xs.clone().all(|x| x.fract() == 0.0);
        let (x_min, x_max) = bounds(xs).unwrap_or((0.0, 0.0));
        let x_ticks = whole_x_ticks(whole_xs, x_max - x_min);
        let (y_min, y_max) = bounds(ys).unwrap_or((0.0, 0.0));
        Self {
            title: chart.title.trim().to_string(),
            x_desc: chart.x_label.clone(),
            y_desc: chart.y_label.clone(),
            x: axis::axis_range(x_min, x_max, 0.03),
            y: render::zero_based_range(y_min, y_max),
            x_ticks,
            lines,
            has_data,
        }
    }
}

fn sanitize_series(series: &LineSeries, color: RGBColor) -> Line {
    let points = thin(&series.points).map(|&(x, y)| (sanitize(x), sanitize(y)));
    let band = thin(series.band.as_deref().unwrap_or_default());
    Line {
        entry: LegendEntry {
            name: series.name.clone(),
            color,
            swatch: Swatch::Line,
        },
        points: points.collect(),
        band: band
            .map(|&(x, low, high)| (sanitize(x), sanitize(low), sanitize(high)))
            .collect(),
    }
}

/// Returns every k-th item of `items` and the last one, at most about
/// MAX_POINTS in all.
// NOTE: thinning by stride can skip a spike between kept points. Comparison
// and sweep charts have a few dozen points, far below the bound.
fn thin<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let stride = items.len().div_ceil(MAX_POINTS).max(1);
    let last = items.len().checked_sub(1);
    items
        .iter()
        .enumerate()
        .filter(move |&(i, _)| i % stride == 0 || Some(i) == last)
        .map(|(_, item)| item)
}

/// Returns how many x labels to ask for: one per whole number when every
/// x is whole and the span is short, so no label falls between them.
fn whole_x_ticks(whole_xs: bool, span: f64) -> usize {
    if whole_xs && span < render::X_TICKS as f64 {
        (span as usize + 1).max(2)
    } else {
        render::X_TICKS
    }
}

/// Returns the smallest and largest of `values`, or None when empty.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
    })
}

/// Returns the band as a closed outline: the high edge in input order, then
/// the low edge back.
fn band_outline(band: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    let high = band.iter().map(|&(x, _, high)| (x, high));
    let low = band.iter().rev().map(|&(x, low, _)| (x, low));
    high.chain(low).collect()
}

impl Figure for LinesFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let legend: Vec<LegendEntry> = self.lines.iter().map(|l| l.entry.clone()).collect();
        let frame = Frame {
            title: &self.title,
            x_desc: &self.x_desc,
            y_desc: &self.y_desc,
            legend: &legend,
            x_ticks: self.x_ticks,
        };
        let mut axes = render::draw_axes(root, &frame, self.x.clone(), self.y.clone())?;
        if !self.has_data {
            return render::draw_no_data(&axes);
        }

        // Bands go below every line so no line is hidden by another's band.
        for line in self.lines.iter().filter(|l| !l.band.is_empty()) {
            let fill = line.entry.color.mix(BAND_OPACITY).filled();
            if line.band.len() == 1 {
                let (x, low, high) = line.band[0];
                let bar = PathElement::new(vec![(x, low), (x, high)], fill.stroke_width(6));
                axes.draw_series(std::iter::once(bar))?;
            } else {
                let outline = Polygon::new(band_outline(&line.band), fill);
                axes.draw_series(std::iter::once(outline))?;
            }
        }
        for line in &self.lines {
            let color = line.entry.color;
            let path = plotters::series::LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            );
            axes.draw_series(path)?;
            if line.points.len() <= MARKER_LIMIT {
                let markers = line
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.filled()));
                axes.draw_series(markers)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_x_values_get_one_label_each() {
        assert_eq!(whole_x_ticks(true, 4.0), 5);
        assert_eq!(whole_x_ticks(true, 0.0), 2);
        assert_eq!(whole_x_ticks(true, 40.0), render::X_TICKS);
        assert_eq!(whole_x_ticks(false, 4.0), render::X_TICKS);
    }

    fn chart(series: Vec<LineSeries>) -> LineChart {
        LineChart {
            title: "sweep".to_string(),
            x_label: "replicas".to_string(),
            y_label: "429 fraction".to_string(),
            series,
        }
    }

    fn line(name: &str, points: Vec<(f64, f64)>) -> LineSeries {
        LineSeries {
            name: name.to_string(),
            points,
            band: None,
        }
    }

    #[test]
    fn ranges_cover_points_and_bands() {
        let mut with_band = line("a", vec![(1.0, 2.0), (5.0, 4.0)]);
        with_band.band = Some(vec![(1.0, 1.0, 3.0), (6.0, 3.0, 10.0)]);
        let figure = LinesFigure::new(&chart(vec![with_band]));
        assert!(figure.x.start < 1.0);
        assert!(figure.x.end > 6.0);
        assert_eq!(figure.y.start, 0.0);
        assert!(figure.y.end > 10.0);
    }

    #[test]
    fn band_outline_is_closed_loop() {
        let outline = band_outline(&[(0.0, 1.0, 2.0), (1.0, 3.0, 4.0)]);
        assert_eq!(outline, [(0.0, 2.0), (1.0, 4.0), (1.0, 3.0), (0.0, 1.0)]);
    }

    #[test]
    fn non_finite_points_count_as_zero() {
        let figure = LinesFigure::new(&chart(vec![line("a", vec![(f64::NAN, f64::INFINITY)])]));
        assert_eq!(figure.lines[0].points, [(0.0, 0.0)]);
        assert!(figure.has_data);
    }

    #[test]
    fn long_lines_are_thinned() {
        let points: Vec<(f64, f64)> = (0..10 * MAX_POINTS).map(|i| (i as f64, 1.0)).collect();
        let figure = LinesFigure::new(&chart(vec![line("a", points)]));
        let drawn = &figure.lines[0].points;
        assert!(drawn.len() <= MAX_POINTS + 1);
        assert_eq!(drawn.first(), Some(&(0.0, 1.0)));
        assert_eq!(drawn.last(), Some(&((10 * MAX_POINTS - 1) as f64, 1.0)));
    }

    #[test]
    fn no_points_has_no_data() {
        let figure = LinesFigure::new(&chart(vec![line("a", Vec::new())]));
        assert!(!figure.has_data);
        assert_eq!(figure.x, 0.0..1.0);
    }
}
