//! The `report.html` of `trafficsim diff`: the table of changes and the
//! overlay charts, built with the page helpers of [`super`].

use crate::chart::{self, ChartError};
use crate::diff::{self, DiffReport};

use super::{Html, Section, escape, figure, page};

/// Builds the diff's page from the same report as the printed table and
/// the chart files.
pub fn diff_page(report: &DiffReport) -> Result<String, ChartError> {
    // The printed table is aligned in columns, so it is kept as it is.
    let changes = Html::raw(format!(
        "<pre>{}</pre>",
        escape(&diff::render_human(report))
    ));
    let mut charts = Html::default();
    for (stem, line_chart) in diff::charts(report) {
        let caption = format!("{} (also {stem}.svg and {stem}.png).", line_chart.title);
        charts.push(figure(&chart::lines_svg(&line_chart)?, &caption));
    }
    let sections = vec![
        Section::new("Changes", changes),
        Section::new("Charts", charts),
    ];
    Ok(page(
        &format!("trafficsim diff: {}", report.scenario),
        &sections,
    ))
}
