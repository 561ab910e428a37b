//! `report.html`: one self-contained page per run, sweep and comparison
//! with the charts, the summary tables and the resolved policies in plain
//! words. Other commands build their page the same way, through [`page`].
//!
//! The page loads nothing: the style sheet is inline, the charts are inline
//! SVG, and there is no script, so it opens offline in any browser and
//! shows no console errors. Its bytes depend only on the run (no date, no
//! path of the machine), like every other output.
//!
//! Other reports build a page from [`Section`]s with the helpers below:
//! [`table`], [`paragraph`], [`list`], [`figure`] and [`details`] escape
//! every text they are given, so callers pass plain strings.

mod check;
mod compare;
mod diff;
mod sweep;

pub use check::check_page;
pub use compare::compare_page;
pub use diff::diff_page;
pub use sweep::sweep_page;

use std::fmt::Write as _;

use crate::chart::{self, ChartError};
use crate::metrics::LatencySummary;
use crate::scenario::Scenario;
use crate::sim::RunOutput;
use crate::validate::{self, PolicyReport};

/// A fragment of HTML, already escaped. Build one with the helpers of this
/// module, or with [`Html::raw`] for markup you wrote yourself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Wraps markup as it is; the caller vouches that it is well formed
    /// and contains no untrusted text.
    pub fn raw(markup: impl Into<String>) -> Html {
        Html(markup.into())
    }

    /// Escapes `text` for use as HTML content.
    pub fn text(text: &str) -> Html {
        Html(escape(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends another fragment.
    pub fn push(&mut self, other: Html) {
        self.0.push_str(&other.0);
    }
}

/// One titled part of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub body: Html,
}

impl Section {
    pub fn new(title: impl Into<String>, body: Html) -> Section {
        Section {
            title: title.into(),
            body,
        }
    }
}

/// Escapes a sentence written for the terminal and shows each `quoted`
/// span in it as `<code>`. An unpaired backtick stays as it is.
pub fn prose(text: &str) -> String {
    let spans: Vec<&str> = text.split('`').collect();
    let mut html = String::with_capacity(text.len());
    for (index, span) in spans.iter().enumerate() {
        let inside = index % 2 == 1;
        if inside && index + 1 < spans.len() {
            let _ = write!(html, "<code>{}</code>", escape(span));
        } else {
            if inside {
                html.push('`');
            }
            html.push_str(&escape(span));
        }
    }
    html
}

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;\
padding:1rem 1.5rem;color:#222;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;\
padding-bottom:.2rem;margin-top:2rem}\
nav a{margin-right:1rem}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}\
figure{margin:1rem 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.9rem;color:#555}pre{overflow-x:auto;font-size:.85rem}\
.ok{color:#1a7f37}.bad{color:#b42318}.warn{color:#9a6700}\
code{background:#f3f3f3;padding:0 .2rem}\
footer{margin-top:2rem;font-size:.8rem;color:#666}";

/// Builds a complete HTML document: the title, a table of contents, then
/// each section with its heading.
pub fn page(title: &str, sections: &[Section]) -> String {
    let mut text = String::new();
    text.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    text.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(text, "<title>{}</title>", escape(title));
    let _ = writeln!(text, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(text, "<h1>{}</h1>", escape(title));
    text.push_str("<nav>");
    for (index, section) in sections.iter().enumerate() {
        let _ = write!(text, "<a href=\"#s{index}\">{}</a>", escape(&section.title));
    }
    text.push_str("</nav>\n");
    for (index, section) in sections.iter().enumerate() {
        let _ = writeln!(
            text,
            "<section id=\"s{index}\">\n<h2>{}</h2>\n{}\n</section>",
            escape(&section.title),
            section.body.as_str()
        );
    }
    let _ = writeln!(
        text,
        "<footer>Written by trafficsim {}.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    text
}

/// Builds a table with a header row. Cells that look like numbers are
/// aligned right.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Html {
    let mut text = String::from("<table>\n<thead><tr>");
    for header in headers {
        let _ = write!(text, "<th>{}</th>", escape(header));
    }
    text.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        text.push_str("<tr>");
        for cell in row {
            let numeric = !cell.is_empty()
                && cell
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '$' | ',' | '%'));
            let class = if numeric { " class=\"n\"" } else { "" };
            let _ = write!(text, "<td{class}>{}</td>", escape(cell));
        }
        text.push_str("</tr>\n");
    }
    text.push_str("</tbody>\n</table>");
    Html(text)
}

pub fn paragraph(text: &str) -> Html {
    Html(format!("<p>{}</p>", prose(text)))
}

/// Builds a bulleted list, one item per string.
pub fn list(items: &[String]) -> Html {
    if items.is_empty() {
        return Html::default();
    }
    let mut text = String::from("<ul>\n");
    for item in items {
        let _ = writeln!(text, "<li>{}</li>", prose(item));
    }
    text.push_str("</ul>");
    Html(text)
}

/// Embeds a chart as inline SVG with a caption. `svg` is the text a chart
/// function of [`crate::chart`] returns.
pub fn figure(svg: &str, caption: &str) -> Html {
    // Screen readers announce the chart by its caption.
    let labelled = svg.trim().replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(caption)),
        1,
    );
    Html(format!(
        "<figure>\n{labelled}\n<figcaption>{}</figcaption>\n</figure>",
        escape(caption)
    ))
}

/// Builds a block that stays closed until the reader opens it.
pub fn details(summary: &str, body: Html) -> Html {
    Html(format!(
        "<details>\n<summary>{}</summary>\n{}\n</details>",
        escape(summary),
        body.as_str()
    ))
}

/// Builds the `report.html` of one run.
pub fn run_page(scenario: &Scenario, output: &RunOutput) -> Result<String, ChartError> {
    let (outcomes, spend) = super::chart_series(scenario, output);
    let mut charts = figure(
        &chart::outcomes_svg(&outcomes)?,
        "Requests per second by how they ended (also outcomes.svg and outcomes.png).",
    );
    charts.push(figure(
        &chart::spend_svg(&spend)?,
        "Cumulative spend per client (also spend.svg and spend.png).",
    ));
    // The same optional charts as `write_run` writes, under the same
    // conditions.
    if super::has_retries(scenario) {
        charts.push(figure(
            &chart::lines_svg(&super::backend_load_chart(scenario, output))?,
            "Requests reaching the backends, first attempts and retries \
             (also backend-load.svg and backend-load.png).",
        ));
    }
    if super::has_endpoint_story(scenario) && !output.metrics.endpoint_rows.is_empty() {
        charts.push(figure(
            &chart::lines_svg(&super::endpoints_chart(scenario, output))?,
            "Endpoints over time (also endpoints.svg and endpoints.png).",
        ));
    }
    let sections = vec![
        Section::new("Overview", overview(scenario, output)),
        Section::new("Charts", charts),
        Section::new("Clients", clients_table(scenario, output)),
        Section::new("Backends", backends_table(scenario)),
        Section::new("Expectations", expectations(scenario)),
        Section::new("Policies", policies(scenario)),
        Section::new("Routes", routes_table(scenario)),
        Section::new("Envoy stats", envoy_stats(output)),
        Section::new("Files", files()),
    ];
    Ok(page(&format!("trafficsim: {}", scenario.name), &sections))
}

fn overview(scenario: &Scenario, output: &RunOutput) -> Html {
    let mut body = Html::default();
    if !scenario.description.is_empty() {
        body.push(paragraph(&scenario.description));
    }
    let metrics = &output.metrics;
    let statuses: Vec<String> = metrics
        .total_statuses()
        .iter()
        .map(|(status, count)| format!("{} x{count}", super::status_name(*status)))
        .collect();
    let spend: f64 = metrics.groups.iter().map(|g| g.spend_usd()).sum();
    let rows = vec![
        vec!["seed".to_string(), output.seed.to_string()],
        vec![
            "simulated time".to_string(),
            format!("{:.3} s", output.end.as_secs_f64()),
        ],
        vec!["events".to_string(), output.events.to_string()],
        vec!["requests".to_string(), metrics.total_requests().to_string()],
        vec!["statuses".to_string(), statuses.join(", ")],
        vec!["spend".to_string(), format!("${spend:.4}")],
        vec![
            "Envoy replicas".to_string(),
            scenario.envoy.replicas.to_string(),
        ],
        vec![
            "in flight at the end".to_string(),
            output.in_flight_at_end.to_string(),
        ],
    ];
    body.push(table(&["", "value"], &rows));
    if let Some(truncation) = &output.truncated {
        body.push(Html(format!(
            "<p class=\"warn\">The run stopped early: {}</p>",
            escape(&truncation.to_string())
        )));
    }
    if !output.notes.is_empty() {
        body.push(paragraph("Notes on how the scenario was simulated:"));
        body.push(list(&output.notes));
    }
    body
}

fn clients_table(scenario: &Scenario, output: &RunOutput) -> Html {
    let headers = [
        "client",
        "kind",
        "instances",
        "requests",
        "statuses",
        "backend requests",
        "retries",
        "spend (USD)",
        "p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
    ];
    let rows: Vec<Vec<String>> = output
        .metrics
        .groups
        .iter()
        .zip(&scenario.clients)
        .map(|(group, spec)| {
            let latency = LatencySummary::from_histogram(&group.latency);
            let statuses: Vec<String> = group
                .statuses
                .iter()
                .map(|(status, count)| format!("{} x{count}", super::status_name(*status)))
                .collect();
            vec![
                group.name.clone(),
                spec.kind_name().to_string(),
                spec.count.to_string(),
                group.requests.to_string(),
                statuses.join(", "),
                (group.backend_first_attempts + group.backend_retries).to_string(),
                group.backend_retries.to_string(),
                format!("{:.4}", group.spend_usd()),
                format!("{:.1}", latency.p50),
                format!("{:.1}", latency.p90),
                format!("{:.1}", latency.p99),
            ]
        })
        .collect();
    table(&headers, &rows)
}

/// Lists the scenario's `expect:` items with their bounds; `trafficsim
/// check` judges them over their seeds.
fn expectations(scenario: &Scenario) -> Html {
    if scenario.expectations.is_empty() {
        return paragraph("The scenario has no `expect:` list.");
    }
    let rows: Vec<Vec<String>> = scenario
        .expectations
        .iter()
        .map(|expectation| {
            vec![
                expectation.name.clone(),
                expectation.bound.to_string(),
                expectation.seeds.to_string(),
            ]
        })
        .collect();
    let mut body = paragraph(
        "Judged by `trafficsim check`, which runs each over its seeds; this run alone \
         does not decide them.",
    );
    body.push(table(&["expectation", "bound", "seeds"], &rows));
    body
}

fn backends_table(scenario: &Scenario) -> Html {
    let rows: Vec<Vec<String>> = scenario
        .backends
        .iter()
        .map(|backend| {
            let errors: Vec<String> = backend
                .errors
                .iter()
                .map(|error| format!("{} for {:.2}%", error.status, error.probability * 100.0))
                .collect();
            let cost = &backend.cost;
            vec![
                format!("{}/{}", backend.namespace, backend.name),
                backend.endpoints.to_string(),
                backend.concurrency.to_string(),
                backend.service_time.describe(" s"),
                errors.join(", "),
                format!(
                    "${} per request, ${} and ${} per million input and output tokens",
                    cost.per_request_usd, cost.input_usd_per_million, cost.output_usd_per_million
                ),
            ]
        })
        .collect();
    table(
        &[
            "Service",
            "endpoints",
            "concurrency per endpoint",
            "service time",
            "errors",
            "cost",
        ],
        &rows,
    )
}

/// Describes the policies as `trafficsim validate` does.
fn policies(scenario: &Scenario) -> Html {
    let reports = validate::describe_policies(&scenario.gateway, scenario.envoy.replicas);
    if reports.is_empty() {
        return paragraph("No BackendTrafficPolicy applies: every route is unlimited.");
    }
    let mut body = Html::default();
    for report in &reports {
        body.push(policy(report));
    }
    body
}

fn policy(report: &PolicyReport) -> Html {
    let status = &report.status;
    let mut text = String::new();
    let (class, verdict) = if status.accepted {
        ("ok", "Accepted")
    } else if validate::is_rejected(status) {
        ("bad", status.reason.as_str())
    } else {
        ("warn", status.reason.as_str())
    };
    let _ = write!(
        text,
        "<h3><code>{}</code> <span class=\"{class}\">{}</span></h3>",
        escape(&status.name),
        escape(verdict)
    );
    if !status.message.is_empty() && !status.accepted {
        let _ = write!(text, "<p>{}</p>", escape(&status.message));
    }
    let mut body = Html(text);
    if !status.applies_to.is_empty() {
        body.push(paragraph("Applies to the routes:"));
        body.push(list(&status.applies_to));
    }
    if !report.limits.is_empty() {
        body.push(paragraph("What it does:"));
        body.push(list(&report.limits));
    }
    if !report.warnings.is_empty() {
        body.push(Html::raw("<p class=\"warn\">Watch out:</p>"));
        body.push(list(&report.warnings));
    }
    body
}

fn routes_table(scenario: &Scenario) -> Html {
    let model = &scenario.gateway;
    let rows: Vec<Vec<String>> = model
        .routes
        .iter()
        .map(|route| {
            let cluster = match route.action {
                crate::gateway::RouteAction::Forward { cluster } => model
                    .clusters
                    .get(cluster)
                    .map_or(String::new(), |c| c.name.clone()),
                _ => "(direct response)".to_string(),
            };
            let hosts = if route.hostnames.is_empty() {
                "*".to_string()
            } else {
                route.hostnames.join(", ")
            };
            vec![
                route.name.clone(),
                hosts,
                cluster,
                route.policy.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["Envoy route", "hosts", "cluster", "policy"], &rows)
}

fn envoy_stats(output: &RunOutput) -> Html {
    let nonzero: Vec<Vec<String>> = output
        .envoy_stats
        .0
        .iter()
        .filter(|(_, value)| **value > 0)
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    let all: Vec<Vec<String>> = output
        .envoy_stats
        .0
        .iter()
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    let mut body =
        paragraph("Counters under Envoy's own names, summed over replicas; the ones above zero:");
    body.push(table(&["stat", "value"], &nonzero));
    body.push(details(
        "Every counter, zeros included",
        table(&["stat", "value"], &all),
    ));
    body
}

fn files() -> Html {
    let names = [
        (
            "summary.json",
            "counts, rates, latency percentiles, spend, Envoy stats",
        ),
        (
            "timeseries.csv",
            "one row per time bucket and client with any completion or backend request",
        ),
        (
            "manifest.json",
            "tool version, seed and every resolved parameter",
        ),
        ("outcomes.png", "the outcomes chart as an image"),
        ("spend.png", "the spend chart as an image"),
    ];
    let mut text = String::from("<ul>\n");
    for (name, what) in names {
        let _ = writeln!(
            text,
            "<li><a href=\"{name}\">{name}</a>: {}</li>",
            escape(what)
        );
    }
    text.push_str("</ul>");
    Html(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn page_escapes_titles_and_links_sections() {
        let text = page("a <b>", &[Section::new("one & two", paragraph("x"))]);
        assert!(text.starts_with("<!DOCTYPE html>"));
        assert!(text.contains("<title>a &lt;b&gt;</title>"));
        assert!(text.contains("<a href=\"#s0\">one &amp; two</a>"));
        assert!(text.contains("<section id=\"s0\">"));
        assert!(!text.contains("<script"));
    }

    #[test]
    fn prose_shows_quoted_spans_as_code() {
        assert_eq!(
            prose("write `value: \"*\"` or `type: Distinct`"),
            "write <code>value: &quot;*&quot;</code> or <code>type: Distinct</code>"
        );
        assert_eq!(prose("a ` b"), "a ` b");
        assert_eq!(prose("`a` and ` <b>"), "<code>a</code> and ` &lt;b&gt;");
    }

    #[test]
    fn table_aligns_numbers_right() {
        let html = table(&["a", "b"], &[vec!["x".to_string(), "12.5".to_string()]]);
        assert!(
            html.as_str()
                .contains("<td>x</td><td class=\"n\">12.5</td>")
        );
    }
}
