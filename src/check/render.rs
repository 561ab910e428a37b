//! The results of `trafficsim check` for people (a table), for CI systems
//! (JUnit XML, one test case per expectation) and for programs (JSON).
//!
//! None of them carries a wall-clock time, so the same scenarios give the
//! same bytes.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{ScenarioCheck, Verdict};
use crate::scenario::{Bound, Expectation};

/// Formats a value with up to 6 significant digits, without trailing zeros.
fn number(value: f64) -> String {
    if value == 0.0 {
        // Also prints -0 as 0.
        return "0".to_string();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let digits = (6 - 1 - value.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Describes what was measured: the value, or the mean with its interval.
pub fn measured_text(verdict: &Verdict) -> String {
    if let Some(problem) = &verdict.problem {
        return format!("not measured: {problem}");
    }
    match &verdict.interval {
        Some(interval) if interval.half_width.is_some() => format!(
            "{} ({}..{} at {}%, {} seeds)",
            number(interval.mean),
            number(interval.low()),
            number(interval.high()),
            number(interval.confidence * 100.0),
            interval.n
        ),
        Some(interval) => number(interval.mean),
        None => "not measured".to_string(),
    }
}

fn bound_text(bound: &Bound) -> String {
    match *bound {
        Bound::Max(max) => format!("<= {}", number(max)),
        Bound::Min(min) => format!(">= {}", number(min)),
        Bound::Between(low, high) => format!("{}..{}", number(low), number(high)),
    }
}

/// Renders the table `trafficsim check` prints: one line per expectation
/// with its verdict, measured value and bound, then a total.
pub fn render_human(checks: &[ScenarioCheck]) -> String {
    let mut text = String::new();
    let (mut passed, mut failed) = (0, 0);
    for check in checks {
        let _ = writeln!(
            text,
            "{} ({}), seeds {}",
            check.name,
            check.file.display(),
            seeds_text(&check.seeds)
        );
        let rows: Vec<[String; 4]> = check
            .verdicts
            .iter()
            .map(|verdict| {
                [
                    if verdict.passed { "PASS" } else { "FAIL" }.to_string(),
                    verdict.expectation.name.clone(),
                    measured_text(verdict),
                    bound_text(&verdict.expectation.bound),
                ]
            })
            .collect();
        let width = |column: usize| rows.iter().map(|r| r[column].len()).max().unwrap_or(0);
        let (name_width, measured_width) = (width(1), width(2));
        for row in &rows {
            let _ = writeln!(
                text,
                "  {}  {:name_width$}  {:measured_width$}  {}",
                row[0], row[1], row[2], row[3]
            );
        }
        passed += check.verdicts.len() - check.failures();
        failed += check.failures();
    }
    let _ = writeln!(
        text,
        "{} expectation{}: {passed} passed, {failed} failed",
        passed + failed,
        if passed + failed == 1 { "" } else { "s" }
    );
    text
}

fn seeds_text(seeds: &[u64]) -> String {
    match seeds {
        [] => "none".to_string(),
        [only] => only.to_string(),
        [first, .., last] => format!("{first}..{last}"),
    }
}

/// Escapes text for an XML attribute or element.
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Renders JUnit XML: one `testsuite` per scenario and one `testcase` per
/// expectation, with a `failure` element for each that failed.
pub fn render_junit(checks: &[ScenarioCheck]) -> String {
    let tests: usize = checks.iter().map(|c| c.verdicts.len()).sum();
    let failures: usize = checks.iter().map(ScenarioCheck::failures).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"trafficsim check\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for check in checks {
        let suite = xml_escape(&check.name);
        let file = xml_escape(&check.file.display().to_string());
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" file=\"{file}\">",
            check.verdicts.len(),
            check.failures()
        );
        for verdict in &check.verdicts {
            let expectation = &verdict.expectation;
            let _ = write!(
                xml,
                "    <testcase classname=\"{suite}\" name=\"{}\" file=\"{file}\" line=\"{}\"",
                xml_escape(&expectation.name),
                expectation.location.line
            );
            if verdict.passed {
                xml.push_str("/>\n");
                continue;
            }
            let message = outcome_text(verdict);
            let _ = writeln!(
                xml,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&message),
                xml_escape(&failure_detail(check, verdict))
            );
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Describes a failed verdict: what was measured against what was expected.
fn outcome_text(verdict: &Verdict) -> String {
    let bound = bound_text(&verdict.expectation.bound);
    match &verdict.problem {
        Some(problem) => format!("expected {bound}, but not measured: {problem}"),
        None => format!("measured {}, expected {bound}", measured_text(verdict)),
    }
}

fn failure_detail(check: &ScenarioCheck, verdict: &Verdict) -> String {
    let expectation = &verdict.expectation;
    let mut detail = format!(
        "{}:{}:{}: {}: {} ({}, {}): {}",
        check.file.display(),
        expectation.location.line,
        expectation.location.column,
        expectation.path,
        expectation.metric.describe(),
        expectation.scope,
        expectation.window,
        outcome_text(verdict)
    );
    if verdict.values.len() > 1 {
        let values: Vec<String> = verdict.values.iter().map(|v| number(*v)).collect();
        let _ = write!(detail, "\nvalues per seed: {}", values.join(", "));
    }
    detail
}

fn bound_json(bound: &Bound) -> Value {
    match *bound {
        Bound::Max(max) => json!({ "max": max }),
        Bound::Min(min) => json!({ "min": min }),
        Bound::Between(low, high) => json!({ "between": [low, high] }),
    }
}

fn expectation_json(expectation: &Expectation) -> Value {
    json!({
        "name": expectation.name,
        "metric": expectation.metric.describe(),
        "scope": expectation.scope.to_string(),
        "from_s": expectation.window.from.as_secs_f64(),
        "to_s": expectation.window.to.map(|to| to.as_secs_f64()),
        "bound": bound_json(&expectation.bound),
        "seeds": expectation.seeds,
        "confidence": expectation.confidence,
        "line": expectation.location.line,
    })
}

/// Renders the results as JSON: every scenario, every verdict with its
/// values per seed, and the totals.
pub fn render_json(checks: &[ScenarioCheck]) -> Value {
    let scenarios: Vec<Value> = checks
        .iter()
        .map(|check| {
            let verdicts: Vec<Value> = check
                .verdicts
                .iter()
                .map(|verdict| {
                    let mut value = expectation_json(&verdict.expectation);
                    if let Value::Object(map) = &mut value {
                        map.insert("passed".into(), json!(verdict.passed));
                        map.insert("values".into(), json!(verdict.values));
                        let interval = verdict.interval.as_ref();
                        map.insert("mean".into(), json!(interval.map(|i| i.mean)));
                        let low = interval.and_then(|i| i.half_width.map(|_| i.low()));
                        let high = interval.and_then(|i| i.half_width.map(|_| i.high()));
                        map.insert("low".into(), json!(low));
                        map.insert("high".into(), json!(high));
                        map.insert("problem".into(), json!(verdict.problem));
                    }
                    value
                })
                .collect();
            json!({
                "scenario": check.name,
                "file": check.file.display().to_string(),
                "seeds": check.seeds,
                "expectations": verdicts,
            })
        })
        .collect();
    let total: usize = checks.iter().map(|c| c.verdicts.len()).sum();
    let failed: usize = checks.iter().map(ScenarioCheck::failures).sum();
    json!({
        "passed": total - failed,
        "failed": failed,
        "scenarios": scenarios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_trailing_zeros() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1500.0), "1500");
        assert_eq!(number(0.0123456789), "0.0123457");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn xml_escapes_markup_and_controls() {
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(xml_escape("x\u{1}y"), "x y");
    }
}
