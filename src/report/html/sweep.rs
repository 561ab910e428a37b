//! The `report.html` of a sweep: the plan, one chart per metric and the
//! table of points, built with the page helpers of [`super`].

use crate::chart::{self, ChartError};
use crate::sweep::{self, JobResult, SweepPlan};

use super::{Html, Section, figure, list, page, paragraph, table};

/// Builds the sweep's page from the same plan and results as `sweep.csv`
/// and the chart files.
pub fn sweep_page(plan: &SweepPlan, results: &[JobResult]) -> Result<String, ChartError> {
    let parameters: Vec<String> = plan
        .spec
        .parameters
        .iter()
        .map(|parameter| format!("{} = {}", parameter.path.text, parameter.values.join(", ")))
        .collect();
    let mut overview = paragraph(&format!(
        "{} points, {} seed{} each from seed {}, intervals at {:.0}% confidence.",
        plan.point_count(),
        plan.spec.seeds,
        if plan.spec.seeds == 1 { "" } else { "s" },
        plan.base_seed,
        plan.spec.confidence * 100.0
    ));
    overview.push(list(&parameters));
    if results.iter().any(|result| result.truncated) {
        overview.push(Html::raw(
            "<p class=\"warn\">Some runs hit a limit and stopped early; see the \
             <code>truncated</code> column.</p>",
        ));
    }

    let mut charts = Html::default();
    for (stem, line_chart) in sweep::charts(plan, results) {
        let caption = format!("{} (also {stem}.svg and {stem}.png).", line_chart.title);
        charts.push(figure(&chart::lines_svg(&line_chart)?, &caption));
    }

    let sections = vec![
        Section::new("Plan", overview),
        Section::new("Charts", charts),
        Section::new("Points", points_table(plan, results)),
    ];
    Ok(page(&format!("trafficsim sweep: {}", plan.name), &sections))
}

/// Shows `sweep.csv` as a table.
fn points_table(plan: &SweepPlan, results: &[JobResult]) -> Html {
    let text = sweep::sweep_csv(plan, results);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(headers) => headers.iter().map(str::to_string).collect(),
        Err(_) => return paragraph("sweep.csv could not be read back."),
    };
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .map(|record| record.iter().map(str::to_string).collect())
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&header_refs, &rows)
}
