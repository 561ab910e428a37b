//! Charts of a run's results, written as SVG and PNG files. The module owns
//! the chart types, their drawing and the file writing. It leaves to its
//! callers what goes into a series and which directory the files go to.
//!
//! Output depends only on the input: text uses the DejaVu Sans font bundled
//! in the binary, never a system font, and neither file carries a timestamp
//! or a random id, so identical input gives identical bytes. Both files are
//! rendered in memory first, then each is written to a temporary sibling
//! and renamed into place, so a failure leaves no partial chart behind.

mod axis;
mod canvas;
mod font;
mod lines;
mod outcomes;
mod render;
mod spend;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use render::Figure;

/// Status-class rates over time, one value per bucket, in requests per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutcomeSeries {
    /// Chart title, such as the scenario name.
    pub title: String,
    /// Width of one bucket, in seconds.
    pub bucket_seconds: f64,
    /// Requests/s that ended with a 2xx status, per bucket.
    pub ok_2xx: Vec<f64>,
    /// Requests/s rejected with 429 by a rate limit, per bucket.
    pub rate_limited_429: Vec<f64>,
    /// Requests/s rejected with 503 by a circuit breaker, per bucket.
    pub overflow_503: Vec<f64>,
    /// Requests/s that ended with any other status (4xx, 500, 504, ...) or
    /// that the client gave up on (its timeout), per bucket.
    pub other: Vec<f64>,
}

/// Cumulative spend per client over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendSeries {
    /// Chart title, such as the scenario name.
    pub title: String,
    /// Width of one bucket, in seconds.
    pub bucket_seconds: f64,
    /// Client name and its cumulative spend in USD at the end of each bucket.
    pub clients: Vec<(String, Vec<f64>)>,
}

/// Named lines over a shared x axis, for comparisons and sweeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineChart {
    pub title: String,
    /// X axis description, with its unit.
    pub x_label: String,
    /// Y axis description, with its unit.
    pub y_label: String,
    pub series: Vec<LineSeries>,
}

/// One line of a [`LineChart`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineSeries {
    pub name: String,
    /// (x, y) points, joined in this order.
    pub points: Vec<(f64, f64)>,
    /// Optional shaded range around the line, as (x, low, high).
    pub band: Option<Vec<(f64, f64, f64)>>,
}

/// A chart that could not be written. Each variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "invalid chart file name {stem:?} in {}: expected a file name without path separators",
        dir.display()
    )]
    InvalidStem { dir: PathBuf, stem: String },
    #[error("failed to render chart {}: {message}", path.display())]
    Render { path: PathBuf, message: String },
    #[error("failed to render chart {title:?}: {message}")]
    RenderSvg { title: String, message: String },
    #[error("failed to write chart {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png`: request rate over time
/// stacked by status class (2xx, 429, 503, other), creating `dir` if needed.
/// NaN, infinite and negative rates are drawn as 0, and a series of more
/// than 1000 buckets is drawn as at most 1000 wider buckets of the mean
/// rate.
pub fn write_outcomes(dir: &Path, stem: &str, series: &OutcomeSeries) -> Result<(), ChartError> {
    write_figure(dir, stem, &outcomes::OutcomeFigure::new(series))
}

/// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png`: one line of cumulative
/// spend per client, creating `dir` if needed. With more than 12 clients the
/// 11 with the largest final spend get their own line and the rest are
/// summed into one "other clients" line. NaN and infinite amounts are drawn
/// as 0.
pub fn write_spend(dir: &Path, stem: &str, series: &SpendSeries) -> Result<(), ChartError> {
    write_figure(dir, stem, &spend::SpendFigure::new(series))
}

/// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png`: the lines of `chart`,
/// bands shaded beneath them, creating `dir` if needed. NaN and infinite
/// coordinates are drawn as 0.
pub fn write_lines(dir: &Path, stem: &str, chart: &LineChart) -> Result<(), ChartError> {
    write_figure(dir, stem, &lines::LinesFigure::new(chart))
}

/// Returns the SVG text of the chart [`write_outcomes`] draws, for
/// embedding in a page.
pub fn outcomes_svg(series: &OutcomeSeries) -> Result<String, ChartError> {
    svg_text(&series.title, &outcomes::OutcomeFigure::new(series))
}

/// Returns the SVG text of the chart [`write_spend`] draws.
pub fn spend_svg(series: &SpendSeries) -> Result<String, ChartError> {
    svg_text(&series.title, &spend::SpendFigure::new(series))
}

/// Returns the SVG text of the chart [`write_lines`] draws.
pub fn lines_svg(chart: &LineChart) -> Result<String, ChartError> {
    svg_text(&chart.title, &lines::LinesFigure::new(chart))
}

fn svg_text(title: &str, figure: &impl Figure) -> Result<String, ChartError> {
    render::render_svg(figure).map_err(|message| ChartError::RenderSvg {
        title: title.to_string(),
        message,
    })
}

fn write_figure(dir: &Path, stem: &str, figure: &impl Figure) -> Result<(), ChartError> {
    if !is_plain_file_name(stem) {
        return Err(ChartError::InvalidStem {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
        });
    }
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));

    let svg = render::render_svg(figure).map_err(|message| ChartError::Render {
        path: svg_path.clone(),
        message,
    })?;
    let png = render::render_png(figure).map_err(|message| ChartError::Render {
        path: png_path.clone(),
        message,
    })?;

    fs::create_dir_all(dir).map_err(|source| ChartError::Write {
        path: svg_path.clone(),
        source,
    })?;
    write_atomically(&svg_path, svg.as_bytes())?;
    write_atomically(&png_path, &png)
}

fn is_plain_file_name(stem: &str) -> bool {
    let has_separator = stem.contains(['/', '\\', '\0']);
    !(stem.is_empty() || stem == "." || stem == ".." || has_separator)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it to `path`, so readers see either the old file or the whole
/// new one. The temporary file is removed on failure.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ChartError> {
    let temp = temporary_sibling(path);
    let result = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    result.map_err(|source| {
        // The temporary file may not exist, and the write error is the one
        // worth reporting, so a failed removal is ignored.
        let _ = fs::remove_file(&temp);
        ChartError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Returns a hidden path beside `path`, unique within this process and
/// across processes, for writing before the rename.
fn temporary_sibling(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp_name = format!(".{name}.{}-{sequence}.tmp", std::process::id());
    path.with_file_name(temp_name)
}

#[cfg(test)]
mod tests;
