//! Recorded request traces: a CSV of request times with optional token
//! counts, replayed by a `trace` client.

use std::path::Path;

use crate::time::SimDuration;

/// One recorded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// Offset from the first row of the trace.
    pub offset: SimDuration,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// Column names of a trace file.
#[derive(Clone, Debug)]
pub struct TraceColumns {
    pub time: String,
    pub input_tokens: Option<String>,
    pub output_tokens: Option<String>,
}

/// Reads a trace. Times are either `YYYY-MM-DD HH:MM:SS[.fraction]`
/// (fractions to the nanosecond) or seconds as a decimal number. Rows must
/// be in time order (equal times are fine). Every problem found is
/// returned, each as `file:line: message`.
pub fn read_trace(path: &Path, columns: &TraceColumns) -> Result<Vec<TraceRow>, Vec<String>> {
    let text = crate::yaml::read_text(path).map_err(|error| vec![error])?;
    parse_trace(&text, path, columns)
}

/// Reads a trace from text; `path` names it in messages.
pub fn parse_trace(
    text: &str,
    path: &Path,
    columns: &TraceColumns,
) -> Result<Vec<TraceRow>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            return Err(vec![format!(
                "{}:1: cannot read the header row: {error}",
                path.display()
            )]);
        }
    };
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut errors = Vec::new();
    let time_index = find(&columns.time);
    if time_index.is_none() {
        errors.push(format!(
            "{}:1: missing column `{}`; the header row has: {}",
            path.display(),
            columns.time,
            headers.iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut token_index = |name: &Option<String>| -> Option<usize> {
        let name = name.as_ref()?;
        let index = find(name);
        if index.is_none() {
            errors.push(format!(
                "{}:1: missing column `{name}`; the header row has: {}",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ));
        }
        index
    };
    let input_index = token_index(&columns.input_tokens);
    let output_index = token_index(&columns.output_tokens);
    let Some(time_index) = time_index else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut rows = Vec::new();
    let mut first_ns: Option<u128> = None;
    let mut previous_ns: u128 = 0;
    for (row_number, record) in reader.records().enumerate() {
        let line = row_number + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                errors.push(format!("{}:{line}: {error}", path.display()));
                continue;
            }
        };
        let time_text = record.get(time_index).unwrap_or("").trim();
        let Some(time_ns) = parse_trace_time(time_text) else {
            errors.push(format!(
                "{}:{line}: column `{}`: expected a time such as `2023-11-16 18:15:46.68` or \
                 seconds such as `12.5`, found `{time_text}`",
                path.display(),
                columns.time
            ));
            continue;
        };
        if first_ns.is_some() && time_ns < previous_ns {
            errors.push(format!(
                "{}:{line}: time `{time_text}` is earlier than the row before; sort the trace by time",
                path.display()
            ));
            continue;
        }
        previous_ns = time_ns;
        let first = *first_ns.get_or_insert(time_ns);
        let offset = u64::try_from(time_ns - first).unwrap_or(u64::MAX);
        let mut tokens = |index: Option<usize>, name: &Option<String>| -> Option<u64> {
            let index = index?;
            let text = record.get(index).unwrap_or("").trim();
            match text.parse::<u64>() {
                Ok(value) => Some(value),
                Err(_) => {
                    errors.push(format!(
                        "{}:{line}: column `{}`: expected a whole number of tokens, found `{text}`",
                        path.display(),
                        name.as_deref().unwrap_or("")
                    ));
                    None
                }
            }
        };
        let input_tokens = tokens(input_index, &columns.input_tokens);
        let output_tokens = tokens(output_index, &columns.output_tokens);
        rows.push(TraceRow {
            offset: SimDuration::from_nanos(offset),
            input_tokens,
            output_tokens,
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(format!("{}: the trace has no rows", path.display()));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Nanoseconds since the Unix epoch (or since zero for plain seconds).
fn parse_trace_time(text: &str) -> Option<u128> {
    if text.contains('-') && text.contains(':') {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let seconds = super::parse_rfc3339_utc(&format!("{}Z", whole.replace(' ', "T")))?;
        let fraction_ns = fraction_nanos(fraction)?;
        return Some(u128::from(seconds) * 1_000_000_000 + u128::from(fraction_ns));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let seconds: u64 = whole.parse().ok()?;
    Some(u128::from(seconds) * 1_000_000_000 + u128::from(fraction_nanos(fraction)?))
}

fn fraction_nanos(fraction: &str) -> Option<u64> {
    if fraction.is_empty() {
        return Some(0);
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> TraceColumns {
        TraceColumns {
            time: "TIMESTAMP".into(),
            input_tokens: Some("ContextTokens".into()),
            output_tokens: Some("GeneratedTokens".into()),
        }
    }

    fn write(text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("trafficsim-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.csv", crate::rng::fnv1a(text.as_bytes())));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn azure_format_reads_to_offsets() {
        let path = write(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             2023-11-16 18:15:46.6805900,374,44\n\
             2023-11-16 18:15:50.9951690,396,109\n",
        );
        let rows = read_trace(&path, &columns()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].offset, SimDuration::ZERO);
        assert_eq!(rows[1].offset, SimDuration::from_nanos(4_314_579_000));
        assert_eq!(rows[1].output_tokens, Some(109));
    }

    #[test]
    fn unsorted_rows_and_bad_values_are_all_reported() {
        let path = write(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             10.0,1,1\n\
             5.0,1,1\n\
             later,1,1\n\
             12.0,x,1\n",
        );
        let errors = read_trace(&path, &columns()).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains(":3: time `5.0` is earlier"));
        assert!(errors[1].contains(":4: column `TIMESTAMP`"));
        assert!(errors[2].contains(":5: column `ContextTokens`"));
    }

    #[test]
    fn missing_columns_name_the_header() {
        let path = write("time,tokens\n1,2\n");
        let errors = read_trace(&path, &columns()).unwrap_err();
        assert!(
            errors[0].contains("missing column `TIMESTAMP`"),
            "{errors:?}"
        );
    }
}
