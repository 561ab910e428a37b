//! The comparison as text: the table printed on stdout and `compare.csv`.

use std::fmt::Write as _;

use super::VariantSummary;

/// `compare.csv`: one row per variant, units in the column names, floats
/// in fixed formats so identical runs give identical bytes.
pub fn csv(summaries: &[VariantSummary], limit_per_s: Option<f64>) -> String {
    let mut text = String::from(
        "variant,simulated_s,requests,admitted,admitted_per_s,limit_per_s,\
         admitted_to_limit_ratio,rejected_429,status_500,status_503,status_504,\
         fairness_429_jain,latency_ms_p50,latency_ms_p99,latency_2xx_ms_p50,latency_2xx_ms_p99,\
         spend_usd,passed_unlimited,\
         rate_limit_calls,rate_limit_errors\n",
    );
    for summary in summaries {
        let limit = limit_per_s.map_or(String::new(), |l| format!("{l:.4}"));
        let ratio = limit_per_s.map_or(String::new(), |l| {
            format!("{:.4}", summary.admitted_per_s / l)
        });
        let fairness = summary
            .fairness_429
            .map_or(String::new(), |f| format!("{f:.4}"));
        let _ = writeln!(
            text,
            "{},{:.3},{},{},{:.4},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.9},{},{},{}",
            summary.name,
            summary.simulated_s,
            summary.requests,
            summary.admitted,
            summary.admitted_per_s,
            limit,
            ratio,
            summary.rejected_429,
            summary.status_500,
            summary.status_503,
            summary.status_504,
            fairness,
            summary.latency_ms.p50,
            summary.latency_ms.p99,
            summary.latency_2xx_ms.p50,
            summary.latency_2xx_ms.p99,
            summary.spend_usd,
            summary.passed_unlimited,
            summary.rate_limit_calls,
            summary.rate_limit_errors,
        );
    }
    text
}

/// Formats the table printed after a comparison, one row per variant.
pub fn human_table(summaries: &[VariantSummary], limit_per_s: Option<f64>) -> String {
    let mut header = vec![
        "variant",
        "requests",
        "admitted/s",
        "429",
        "500",
        "429 fairness",
        "p99 ms",
        "p99 2xx ms",
        "spend $",
        "passed unlimited",
    ];
    if limit_per_s.is_some() {
        header.insert(3, "of limit");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for summary in summaries {
        let mut row = vec![
            summary.name.clone(),
            summary.requests.to_string(),
            format!("{:.2}", summary.admitted_per_s),
            summary.rejected_429.to_string(),
            summary.status_500.to_string(),
            summary
                .fairness_429
                .map_or("-".to_string(), |f| format!("{f:.3}")),
            format!("{:.1}", summary.latency_ms.p99),
            format!("{:.1}", summary.latency_2xx_ms.p99),
            format!("{:.4}", summary.spend_usd),
            summary.passed_unlimited.to_string(),
        ];
        if let Some(limit) = limit_per_s {
            row.insert(3, format!("{:.0}%", 100.0 * summary.admitted_per_s / limit));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let line = |cells: Vec<String>, text: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(text, "  {}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut text);
    for row in rows {
        line(row, &mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::LatencySummary;

    fn summary(name: &str, admitted_per_s: f64) -> VariantSummary {
        VariantSummary {
            name: name.to_string(),
            simulated_s: 60.0,
            requests: 100,
            completed: 100,
            admitted: (admitted_per_s * 60.0) as u64,
            admitted_per_s,
            rejected_429: 10,
            status_500: 0,
            status_503: 0,
            status_504: 0,
            users: Vec::new(),
            fairness_429: Some(1.0),
            latency_ms: LatencySummary::default(),
            latency_2xx_ms: LatencySummary::default(),
            spend_usd: 0.5,
            passed_unlimited: 3,
            rate_limit_calls: 100,
            rate_limit_errors: 3,
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_the_limit_share() {
        let text = human_table(&[summary("local", 5.0), summary("global", 1.0)], Some(1.0));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("of limit"), "{text}");
        assert!(lines[1].contains("500%"), "{text}");
        assert!(lines[2].contains("100%"), "{text}");
        assert_eq!(lines[1].len(), lines[2].len(), "{text}");
    }

    #[test]
    fn csv_has_one_row_per_variant() {
        let text = csv(&[summary("a", 1.0)], None);
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("a,60.000,100,60,1.0000,,,10,")
        );
    }
}
