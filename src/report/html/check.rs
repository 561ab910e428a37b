//! The `report.html` of `trafficsim check --html`: each scenario's
//! expectations with their verdicts, measured values and bounds, built
//! with the page helpers of [`super`].

use crate::check::{ScenarioCheck, measured_text};

use super::{Html, Section, list, page, paragraph, table};

/// Builds the page of a check of one or more scenarios: a summary, then
/// one section per scenario.
pub fn check_page(checks: &[ScenarioCheck]) -> String {
    let total: usize = checks.iter().map(|check| check.verdicts.len()).sum();
    let failed: usize = checks.iter().map(ScenarioCheck::failures).sum();
    let mut summary = paragraph(&format!(
        "{total} expectation{}: {} passed, {failed} failed.",
        if total == 1 { "" } else { "s" },
        total - failed
    ));
    let verdicts: Vec<String> = checks
        .iter()
        .map(|check| {
            let verdict = if check.failures() == 0 {
                "passed"
            } else {
                "FAILED"
            };
            format!("{}: {verdict}", check.name)
        })
        .collect();
    summary.push(list(&verdicts));

    let mut sections = vec![Section::new("Summary", summary)];
    for check in checks {
        sections.push(Section::new(
            format!("{} ({})", check.name, check.file.display()),
            scenario_body(check),
        ));
    }
    page("trafficsim check", &sections)
}

fn scenario_body(check: &ScenarioCheck) -> Html {
    let seeds: Vec<String> = check.seeds.iter().map(u64::to_string).collect();
    let mut body = paragraph(&format!("Seeds: {}.", seeds.join(", ")));
    let rows: Vec<Vec<String>> = check
        .verdicts
        .iter()
        .map(|verdict| {
            vec![
                if verdict.passed { "PASS" } else { "FAIL" }.to_string(),
                verdict.expectation.name.clone(),
                measured_text(verdict),
                verdict.expectation.bound.to_string(),
            ]
        })
        .collect();
    body.push(table(
        &["verdict", "expectation", "measured", "bound"],
        &rows,
    ));
    if !check.notes.is_empty() {
        body.push(paragraph("Notes on the runs:"));
        body.push(list(&check.notes));
    }
    body
}
