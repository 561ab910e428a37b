//! The page every chart shares (size, title, legend column, axes, fonts)
//! and the two encoders: SVG text and PNG bytes. The charts themselves
//! only prepare their data and draw series on the axes built here.

use std::ops::Range;

use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{self, TickFormat};
use super::canvas::Canvas;
use super::font;

/// Size of both the SVG and the PNG, in pixels.
pub(super) const WIDTH: u32 = 1000;
pub(super) const HEIGHT: u32 = 600;

/// Width of the legend column at the right of the plot, in pixels.
const LEGEND_WIDTH: u32 = 210;
const LEGEND_ROW_HEIGHT: i32 = 22;
/// Maximum characters of a legend name. Longer names are cut to fit the
/// column.
const LEGEND_NAME_CHARS: usize = 24;
/// Maximum characters of a title. Longer titles are cut to fit the page.
const TITLE_CHARS: usize = 80;
/// Maximum characters of an axis description. Longer ones are cut to fit
/// the axis.
const AXIS_DESC_CHARS: usize = 60;

const TITLE_SIZE: f64 = 26.0;
const AXIS_DESC_SIZE: f64 = 18.0;
const TICK_LABEL_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 16.0;

/// Maximum buckets drawn per chart. Longer series are merged into this many
/// wider buckets, more than the plot has pixels across, so the picture
/// keeps its detail while drawing stays bounded.
pub(super) const MAX_DRAWN_BUCKETS: usize = 1000;

pub(super) const X_TICKS: usize = 10;
const Y_TICKS: usize = 8;

const GRID: RGBColor = RGBColor(225, 225, 225);
const TEXT: RGBColor = RGBColor(40, 40, 40);

/// Line colours, assigned in order. Grey is left out so it can mark a
/// summed remainder.
pub(super) const PALETTE: [RGBColor; 11] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(132, 60, 57),
];

pub(super) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;
pub(super) type Axes<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One chart, drawable on any plotters backend.
pub(super) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

const FONT_REJECTED: &str =
    "invalid bundled font: assets/fonts/DejaVuSans.ttf was corrupt when trafficsim was built";

/// Renders `figure` as an SVG document.
pub(super) fn render_svg(figure: &impl Figure) -> Result<String, String> {
    if !font::ensure_registered() {
        return Err(FONT_REJECTED.to_string());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        figure.draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Renders `figure` as a PNG image (8-bit RGB, no ancillary chunks, so the
/// bytes depend on the pixels alone).
pub(super) fn render_png(figure: &impl Figure) -> Result<Vec<u8>, String> {
    if !font::ensure_registered() {
        return Err(FONT_REJECTED.to_string());
    }
    let Some(font) = font::dejavu_sans() else {
        return Err(FONT_REJECTED.to_string());
    };
    let mut pixels = vec![255u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let bitmap =
            BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut pixels, (WIDTH, HEIGHT))
                .map_err(|e| e.to_string())?;
        let root = Canvas::new(bitmap, font).into_drawing_area();
        figure.draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&pixels).map_err(|e| format!("PNG encoding failed: {e}"))
}

fn encode_png(pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(bytes)
}

/// Mark that a legend entry draws for its series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Swatch {
    /// A filled square, for areas.
    Area,
    /// A short thick line, for lines.
    Line,
}

#[derive(Clone, Debug)]
pub(super) struct LegendEntry {
    pub name: String,
    pub color: RGBColor,
    pub swatch: Swatch,
}

/// Everything around the plot: the title, the axis descriptions and the
/// legend entries, top to bottom.
pub(super) struct Frame<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub legend: &'a [LegendEntry],
    /// Most labels on the x axis.
    pub x_ticks: usize,
}

pub(super) fn font_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((font::FAMILY, size).into_font()).color(&TEXT)
}

/// Clears the page, draws the title and the legend column, and returns
/// axes over `x` and `y` with a grid and formatted tick labels.
pub(super) fn draw_axes<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    frame: &Frame,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Axes<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let title = clean_text(frame.title, TITLE_CHARS);
    let body = root.titled(&title, font_style(TITLE_SIZE))?;
    let (plot_area, legend_area) = body.split_horizontally(WIDTH - LEGEND_WIDTH);
    draw_legend(&legend_area, frame.legend)?;

    let x_format = TickFormat::for_range(&x, frame.x_ticks);
    let y_format = TickFormat::for_range(&y, Y_TICKS);
    let mut axes = ChartBuilder::on(&plot_area)
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)?;
    axes.configure_mesh()
        .x_desc(clean_text(frame.x_desc, AXIS_DESC_CHARS))
        .y_desc(clean_text(frame.y_desc, AXIS_DESC_CHARS))
        .axis_desc_style(font_style(AXIS_DESC_SIZE))
        .label_style(font_style(TICK_LABEL_SIZE))
        .x_labels(frame.x_ticks)
        .y_labels(Y_TICKS)
        .x_label_formatter(&|v| x_format.format(*v))
        .y_label_formatter(&|v| y_format.format(*v))
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(TEXT)
        .draw()?;
    Ok(axes)
}

/// Draws the legend column: one row per entry, and when the entries do not
/// fit, a last row saying how many were left out.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    let (_, height) = area.dim_in_pixel();
    let top = 20;
    let fitting_rows = ((height as i32 - top) / LEGEND_ROW_HEIGHT).max(1) as usize;
    let shown_entries = if entries.len() > fitting_rows {
        fitting_rows - 1
    } else {
        entries.len()
    };
    let text_style = font_style(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));

    for (row, entry) in entries.iter().take(shown_entries).enumerate() {
        let center_y = top + row as i32 * LEGEND_ROW_HEIGHT + LEGEND_ROW_HEIGHT / 2;
        match entry.swatch {
            Swatch::Area => area.draw(&Rectangle::new(
                [(8, center_y - 7), (22, center_y + 7)],
                entry.color.filled(),
            ))?,
            Swatch::Line => area.draw(&PathElement::new(
                vec![(4, center_y), (26, center_y)],
                entry.color.stroke_width(3),
            ))?,
        }
        let name = clean_text(&entry.name, LEGEND_NAME_CHARS);
        area.draw(&Text::new(name, (34, center_y), text_style.clone()))?;
    }
    if shown_entries < entries.len() {
        let center_y = top + shown_entries as i32 * LEGEND_ROW_HEIGHT + LEGEND_ROW_HEIGHT / 2;
        let note = format!("and {} more", entries.len() - shown_entries);
        area.draw(&Text::new(note, (34, center_y), text_style))?;
    }
    Ok(())
}

/// Writes "no data" in the middle of the plot, for charts with nothing to
/// draw.
pub(super) fn draw_no_data<DB: DrawingBackend>(axes: &Axes<'_, DB>) -> DrawResult<DB> {
    draw_note(axes, "no data")
}

/// Writes `text` in the middle of the plotting area.
pub(super) fn draw_note<DB: DrawingBackend>(axes: &Axes<'_, DB>, text: &str) -> DrawResult<DB> {
    let area = axes.plotting_area().strip_coord_spec();
    let (width, height) = area.dim_in_pixel();
    let style = font_style(AXIS_DESC_SIZE).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        text,
        (width as i32 / 2, height as i32 / 2),
        style,
    ))
}

/// Returns how many input buckets go into one drawn bucket so that
/// `buckets` input buckets draw as at most MAX_DRAWN_BUCKETS.
pub(super) fn merge_factor(buckets: usize) -> usize {
    buckets.div_ceil(MAX_DRAWN_BUCKETS).max(1)
}

/// Returns the bucket width in seconds to draw with: `seconds` when it is
/// finite and positive, otherwise 1.
pub(super) fn bucket_width(seconds: f64) -> f64 {
    let seconds = axis::sanitize(seconds);
    if seconds > 0.0 { seconds } else { 1.0 }
}

/// Returns `text` on one line and cut to at most `max_chars` characters,
/// ending in an ellipsis when cut. Control characters become spaces because
/// XML forbids most of them and a chart label has a single line.
pub(super) fn clean_text(text: &str, max_chars: usize) -> String {
    let one_line = text.chars().map(|c| if c.is_control() { ' ' } else { c });
    if text.chars().count() <= max_chars {
        return one_line.collect();
    }
    let mut cut: String = one_line.take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Returns the title line: the caller's title, if any, and a description of
/// what the chart shows.
pub(super) fn title_line(title: &str, description: &str) -> String {
    let title = title.trim();
    if title.is_empty() {
        description.to_string()
    } else {
        format!("{title}: {description}")
    }
}

/// Returns a y range over `min..=max` that also includes 0, with headroom
/// on the sides away from 0.
pub(super) fn zero_based_range(min: f64, max: f64) -> Range<f64> {
    axis::axis_range(min.min(0.0), max.max(0.0), 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_cuts_long_text() {
        assert_eq!(clean_text("abc", 3), "abc");
        assert_eq!(clean_text("abcdef", 4), "abc…");
        assert_eq!(clean_text("ééééé", 2), "é…");
    }

    #[test]
    fn clean_text_replaces_control_characters() {
        assert_eq!(clean_text("a\nb\0c", 10), "a b c");
    }

    #[test]
    fn merge_factor_bounds_drawn_buckets() {
        assert_eq!(merge_factor(0), 1);
        assert_eq!(merge_factor(MAX_DRAWN_BUCKETS), 1);
        assert_eq!(merge_factor(MAX_DRAWN_BUCKETS + 1), 2);
        assert_eq!(
            merge_factor(usize::MAX),
            usize::MAX.div_ceil(MAX_DRAWN_BUCKETS)
        );
    }

    #[test]
    fn bucket_width_falls_back_to_one_second() {
        assert_eq!(bucket_width(0.5), 0.5);
        assert_eq!(bucket_width(0.0), 1.0);
        assert_eq!(bucket_width(-2.0), 1.0);
        assert_eq!(bucket_width(f64::NAN), 1.0);
    }

    #[test]
    fn title_line_skips_empty_title() {
        assert_eq!(title_line("  ", "spend"), "spend");
        assert_eq!(title_line("burst", "spend"), "burst: spend");
    }
}
