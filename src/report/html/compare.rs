//! The `report.html` of a comparison: the variants, the comparison charts
//! and table, and a link to each variant's own report, built with the page
//! helpers of [`super`].

use std::fmt::Write as _;

use crate::chart::{self, ChartError};
use crate::compare::{self, VariantRun, VariantSummary};

use super::{Html, Section, escape, figure, page, paragraph, table};

/// Builds the comparison's page from the same runs and summaries as
/// `compare.csv` and the chart files.
pub fn compare_page(
    scenario_name: &str,
    seed: u64,
    limit_per_s: Option<f64>,
    runs: &[VariantRun],
    summaries: &[VariantSummary],
) -> Result<String, ChartError> {
    let mut overview = paragraph(&format!(
        "{} variants of {scenario_name}, all with seed {seed}, so every client draws the \
         same requests in each.",
        runs.len()
    ));
    if let Some(limit) = limit_per_s {
        overview.push(paragraph(&format!(
            "Configured limit: {limit:.2} requests per second."
        )));
    }
    overview.push(variant_links(runs));

    let mut charts = Html::default();
    for (stem, line_chart) in compare::charts::build(scenario_name, limit_per_s, runs, summaries) {
        let caption = format!("{} (also {stem}.svg and {stem}.png).", line_chart.title);
        charts.push(figure(&chart::lines_svg(&line_chart)?, &caption));
    }

    let sections = vec![
        Section::new("Variants", overview),
        Section::new("Charts", charts),
        Section::new("Table", csv_table(&compare::csv(summaries, limit_per_s))),
    ];
    Ok(page(
        &format!("trafficsim compare: {scenario_name}"),
        &sections,
    ))
}

/// Links to each variant's own `report.html`, in its folder.
fn variant_links(runs: &[VariantRun]) -> Html {
    let mut text = String::from("<ul>\n");
    for run in runs {
        let name = escape(&run.name);
        let _ = writeln!(
            text,
            "<li><a href=\"{name}/report.html\">{name}</a>: its own report</li>"
        );
    }
    text.push_str("</ul>");
    Html::raw(text)
}

/// Shows a CSV text as a table.
fn csv_table(text: &str) -> Html {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(headers) => headers.iter().map(str::to_string).collect(),
        Err(_) => return paragraph("compare.csv could not be read back."),
    };
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .map(|record| record.iter().map(str::to_string).collect())
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&header_refs, &rows)
}
