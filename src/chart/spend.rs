//! The spend chart: cumulative spend per client over time, one line per
//! client, the biggest spenders first in the legend.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::SpendSeries;
use super::axis::sanitize;
use super::render::{self, DrawResult, Figure, Frame, LegendEntry, PALETTE, Swatch};

/// Maximum lines on one chart. With more clients, the top spenders get
/// MAX_LINES - 1 lines and the rest are summed into one.
const MAX_LINES: usize = PALETTE.len() + 1;
/// Colour of the line that sums the clients past the top spenders.
const REMAINDER: RGBColor = RGBColor(127, 127, 127);

struct Line {
    entry: LegendEntry,
    points: Vec<(f64, f64)>,
}

pub(super) struct SpendFigure {
    title: String,
    x: Range<f64>,
    y: Range<f64>,
    /// In order of final spend, largest first.
    lines: Vec<Line>,
    has_data: bool,
}

impl SpendFigure {
    /// Prepares the drawing of `series`. NaN and infinite amounts count as
    /// 0 USD, and a client with fewer buckets than the longest keeps its
    /// last amount for the rest of the run.
    pub(super) fn new(series: &SpendSeries) -> Self {
        let width = render::bucket_width(series.bucket_seconds);
        let buckets = series
            .clients
            .iter()
            .map(|(_, spend)| spend.len())
            .max()
            .unwrap_or(0);
        let ranked = rank_clients(series, buckets);
        let grouped = group_remainder(ranked);

        // Spend is cumulative, so a merged bucket shows the amount at its end.
        let factor = render::merge_factor(buckets);
        let ends: Vec<usize> = (1..=buckets.div_ceil(factor))
            .map(|i| (i * factor).min(buckets))
            .collect();
        let lines: Vec<Line> = grouped
            .into_iter()
            .enumerate()
            .map(|(rank, (name, color, spend))| {
                let mut points = vec![(0.0, 0.0)];
                points.extend(ends.iter().map(|&end| (end as f64 * width, spend[end - 1])));
                let color = color.unwrap_or(PALETTE[rank % PALETTE.len()]);
                let entry = LegendEntry {
                    name,
                    color,
                    swatch: Swatch::Line,
                };
                Line { entry, points }
            })
            .collect();

        let amounts = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let (min, max) = amounts.fold((0.0, 0.0), |(lo, hi): (f64, f64), v| (lo.min(v), hi.max(v)));
        Self {
            title: render::title_line(&series.title, "cumulative spend by client"),
            x: 0.0..(buckets.max(1) as f64 * width),
            y: render::zero_based_range(min, max),
            lines,
            has_data: buckets > 0,
        }
    }
}

/// A client's name and its cumulative spend in USD, one amount per bucket.
type Client = (String, Vec<f64>);

/// Returns every client with `buckets` sanitized amounts, sorted by final
/// spend, largest first. Equal spends keep their input order.
fn rank_clients(series: &SpendSeries, buckets: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = series
        .clients
        .iter()
        .map(|(name, spend)| {
            let mut amounts: Vec<f64> = spend.iter().map(|&usd| sanitize(usd)).collect();
            let last = amounts.last().copied().unwrap_or(0.0);
            amounts.resize(buckets, last);
            (name.clone(), amounts)
        })
        .collect();
    let final_spend = |client: &Client| client.1.last().copied().unwrap_or(0.0);
    clients.sort_by(|a, b| final_spend(b).total_cmp(&final_spend(a)));
    clients
}

/// Returns at most MAX_LINES lines: the ranked clients, or with more than
/// that, the top MAX_LINES - 1 and one line summing the rest. The summed
/// line carries its own colour.
fn group_remainder(ranked: Vec<Client>) -> Vec<(String, Option<RGBColor>, Vec<f64>)> {
    if ranked.len() <= MAX_LINES {
        return ranked
            .into_iter()
            .map(|(name, spend)| (name, None, spend))
            .collect();
    }
    let mut ranked = ranked.into_iter();
    let mut lines: Vec<_> = ranked
        .by_ref()
        .take(MAX_LINES - 1)
        .map(|(name, spend)| (name, None, spend))
        .collect();
    let rest: Vec<Client> = ranked.collect();
    let buckets = rest.first().map_or(0, |client| client.1.len());
    let sum: Vec<f64> = (0..buckets)
        .map(|i| rest.iter().filter_map(|client| client.1.get(i)).sum())
        .collect();
    let name = format!("other clients ({})", rest.len());
    lines.push((name, Some(REMAINDER), sum));
    lines
}

impl Figure for SpendFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let legend: Vec<LegendEntry> = self.lines.iter().map(|l| l.entry.clone()).collect();
        let frame = Frame {
            title: &self.title,
            x_desc: "time (s)",
            y_desc: "cumulative spend (USD)",
            legend: &legend,
            x_ticks: render::X_TICKS,
        };
        let mut axes = render::draw_axes(root, &frame, self.x.clone(), self.y.clone())?;
        if !self.has_data {
            return render::draw_no_data(&axes);
        }
        // Draw the smallest spenders first so the largest lie on top.
        for line in self.lines.iter().rev() {
            let style = line.entry.color.stroke_width(2);
            axes.draw_series(LineSeries::new(line.points.iter().copied(), style))?;
        }
        let nothing_spent = self
            .lines
            .iter()
            .all(|line| line.points.iter().all(|&(_, usd)| usd == 0.0));
        if nothing_spent {
            // A flat line at zero reads like a broken chart without this.
            return render::draw_note(&axes, "no spend: no priced request reached a backend");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(clients: Vec<(&str, Vec<f64>)>) -> SpendSeries {
        SpendSeries {
            title: "t".to_string(),
            bucket_seconds: 10.0,
            clients: clients
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
        }
    }

    fn names(figure: &SpendFigure) -> Vec<&str> {
        figure.lines.iter().map(|l| l.entry.name.as_str()).collect()
    }

    #[test]
    fn clients_ranked_by_final_spend() {
        let figure = SpendFigure::new(&spend(vec![
            ("small", vec![1.0, 2.0]),
            ("big", vec![1.0, 9.0]),
            ("tie", vec![0.0, 2.0]),
        ]));
        assert_eq!(names(&figure), ["big", "small", "tie"]);
        assert_eq!(
            figure.lines[0].points,
            [(0.0, 0.0), (10.0, 1.0), (20.0, 9.0)]
        );
        assert_eq!(figure.x, 0.0..20.0);
    }

    #[test]
    fn many_clients_sum_the_rest() {
        let clients: Vec<(String, Vec<f64>)> = (0..20)
            .map(|i| (format!("c{i:02}"), vec![i as f64]))
            .collect();
        let series = SpendSeries {
            title: String::new(),
            bucket_seconds: 1.0,
            clients,
        };
        let figure = SpendFigure::new(&series);
        assert_eq!(figure.lines.len(), MAX_LINES);
        assert_eq!(figure.lines[0].entry.name, "c19");
        let rest = &figure.lines[MAX_LINES - 1];
        assert_eq!(rest.entry.name, "other clients (9)");
        assert_eq!(rest.entry.color, REMAINDER);
        assert_eq!(rest.points[1].1, (0..9).sum::<i32>() as f64);
    }

    #[test]
    fn short_client_keeps_last_amount() {
        let figure = SpendFigure::new(&spend(vec![
            ("long", vec![1.0, 2.0, 3.0]),
            ("short", vec![f64::NAN, 5.0]),
        ]));
        let short = &figure.lines[0];
        assert_eq!(short.entry.name, "short");
        assert_eq!(
            short.points,
            [(0.0, 0.0), (10.0, 0.0), (20.0, 5.0), (30.0, 5.0)]
        );
    }

    #[test]
    fn no_clients_has_no_data() {
        let figure = SpendFigure::new(&spend(Vec::new()));
        assert!(!figure.has_data);
        assert_eq!(figure.y, 0.0..1.0);
    }
}
