//! Tests of the chart files as a caller sees them: what is written, what the
//! SVG contains, what the PNG looks like, and that bad input never panics.

use super::*;

/// A fresh directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("trafficsim-chart-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        fs::read(self.0.join(file)).unwrap_or_default()
    }

    fn read_svg(&self, file: &str) -> String {
        String::from_utf8(self.read(file)).unwrap_or_default()
    }

    fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn outcomes_sample() -> OutcomeSeries {
    let ramp = |scale: f64| {
        (0..120)
            .map(|i| scale * (i as f64 / 10.0).sin().abs())
            .collect()
    };
    OutcomeSeries {
        title: "runaway-llm-agent".to_string(),
        bucket_seconds: 5.0,
        ok_2xx: ramp(40.0),
        rate_limited_429: ramp(25.0),
        overflow_503: ramp(8.0),
        other: ramp(2.0),
    }
}

fn spend_sample(clients: usize) -> SpendSeries {
    let clients = (0..clients)
        .map(|c| {
            let per_bucket = 0.02 * (c + 1) as f64;
            let spend = (1..=60).map(|i| per_bucket * i as f64).collect();
            (format!("agent-{c}"), spend)
        })
        .collect();
    SpendSeries {
        title: "runaway-llm-agent".to_string(),
        bucket_seconds: 10.0,
        clients,
    }
}

fn lines_sample() -> LineChart {
    let series = ["local", "global"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let y = |x: f64| 0.5 / (x + i as f64);
            LineSeries {
                name: name.to_string(),
                points: (1..=8).map(|x| (x as f64, y(x as f64))).collect(),
                band: Some(
                    (1..=8)
                        .map(|x| (x as f64, 0.8 * y(x as f64), 1.2 * y(x as f64)))
                        .collect(),
                ),
            }
        })
        .collect();
    LineChart {
        title: "429 fraction by replicas".to_string(),
        x_label: "replicas".to_string(),
        y_label: "429 fraction".to_string(),
        series,
    }
}

/// Decodes a PNG into (width, height, RGB pixels).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let Ok(mut reader) = png::Decoder::new(bytes).read_info() else {
        return (0, 0, Vec::new());
    };
    let mut pixels = vec![0; reader.output_buffer_size()];
    let Ok(info) = reader.next_frame(&mut pixels) else {
        return (0, 0, Vec::new());
    };
    (info.width, info.height, pixels)
}

#[test]
fn outcomes_writes_svg_and_png() {
    let dir = TempDir::new("outcomes-files");
    let result = write_outcomes(&dir.0, "outcomes", &outcomes_sample());
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(dir.file_names(), ["outcomes.png", "outcomes.svg"]);

    let svg = dir.read_svg("outcomes.svg");
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("runaway-llm-agent: request rate by status"));
    for name in [
        "2xx success",
        "429 rate limited",
        "503 overflow",
        "other or timeout",
    ] {
        assert!(svg.contains(name), "legend entry {name} missing");
    }
    assert!(svg.contains("time (s)"));
    assert!(svg.contains("requests/s"));
    assert!(svg.contains(r#"font-family="DejaVu Sans, sans-serif""#));
}

#[test]
fn png_has_signature_size_and_text() {
    let dir = TempDir::new("png");
    let result = write_outcomes(&dir.0, "outcomes", &outcomes_sample());
    assert!(result.is_ok(), "{result:?}");
    let bytes = dir.read("outcomes.png");
    assert_eq!(bytes[..8], PNG_SIGNATURE);
    assert!(bytes.len() > 10_000, "PNG is only {} bytes", bytes.len());

    let (width, height, pixels) = decode_png(&bytes);
    assert_eq!((width, height), (render::WIDTH, render::HEIGHT));
    // The title is dark text in the top 40 rows of a white page.
    let title_rows = &pixels[..40 * width as usize * 3];
    let dark = title_rows
        .chunks(3)
        .filter(|p| p.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 200, "only {dark} dark pixels where the title is");
}

#[test]
fn spend_writes_legend_of_clients() {
    let dir = TempDir::new("spend-files");
    let result = write_spend(&dir.0, "spend", &spend_sample(3));
    assert!(result.is_ok(), "{result:?}");
    let svg = dir.read_svg("spend.svg");
    assert!(svg.contains("runaway-llm-agent: cumulative spend by client"));
    assert!(svg.contains("cumulative spend (USD)"));
    for client in ["agent-0", "agent-1", "agent-2"] {
        assert!(svg.contains(client), "legend entry {client} missing");
    }
    assert_eq!(dir.read("spend.png")[..8], PNG_SIGNATURE);
}

#[test]
fn spend_sums_clients_past_top_eleven() {
    let dir = TempDir::new("spend-many");
    let result = write_spend(&dir.0, "spend", &spend_sample(30));
    assert!(result.is_ok(), "{result:?}");
    let svg = dir.read_svg("spend.svg");
    assert!(svg.contains("other clients (19)"));
    assert!(svg.contains("agent-29"));
    assert!(svg.contains("agent-19"));
    assert!(!svg.contains("agent-18"));
}

#[test]
fn lines_writes_series_and_labels() {
    let dir = TempDir::new("lines-files");
    let result = write_lines(&dir.0, "sweep", &lines_sample());
    assert!(result.is_ok(), "{result:?}");
    let svg = dir.read_svg("sweep.svg");
    for text in ["429 fraction by replicas", "replicas", "local", "global"] {
        assert!(svg.contains(text), "{text} missing");
    }
    assert_eq!(dir.read("sweep.png")[..8], PNG_SIGNATURE);
}

#[test]
fn lines_legend_notes_left_out_series() {
    let series = (0..60)
        .map(|i| LineSeries {
            name: format!("series-{i}"),
            points: vec![(0.0, i as f64), (1.0, i as f64 + 1.0)],
            band: None,
        })
        .collect();
    let chart = LineChart {
        series,
        ..lines_sample()
    };
    let dir = TempDir::new("lines-many");
    let result = write_lines(&dir.0, "many", &chart);
    assert!(result.is_ok(), "{result:?}");
    let svg = dir.read_svg("many.svg");
    assert!(svg.contains("series-0"));
    assert!(svg.contains(" more"));
    assert!(!svg.contains("series-59"));
}

#[test]
fn same_input_gives_identical_bytes() {
    let first = TempDir::new("same-1");
    let second = TempDir::new("same-2");
    for dir in [&first, &second] {
        let results = [
            write_outcomes(&dir.0, "outcomes", &outcomes_sample()),
            write_spend(&dir.0, "spend", &spend_sample(15)),
            write_lines(&dir.0, "lines", &lines_sample()),
        ];
        for result in results {
            assert!(result.is_ok(), "{result:?}");
        }
    }
    for file in ["outcomes", "spend", "lines"]
        .iter()
        .flat_map(|s| [".svg", ".png"].map(|e| format!("{s}{e}")))
    {
        let bytes = first.read(&file);
        assert!(!bytes.is_empty(), "{file} is empty");
        assert!(bytes == second.read(&file), "{file} differs between runs");
    }
}

#[test]
fn rewrite_replaces_file_and_leaves_no_temporary() {
    let dir = TempDir::new("rewrite");
    let mut series = outcomes_sample();
    assert!(write_outcomes(&dir.0, "outcomes", &series).is_ok());
    series.title = "second".to_string();
    assert!(write_outcomes(&dir.0, "outcomes", &series).is_ok());
    assert!(
        dir.read_svg("outcomes.svg")
            .contains("second: request rate")
    );
    assert_eq!(dir.file_names(), ["outcomes.png", "outcomes.svg"]);
}

#[test]
fn title_is_escaped_in_svg() {
    let dir = TempDir::new("escape");
    let series = OutcomeSeries {
        title: "a<b & \"c\"".to_string(),
        ..outcomes_sample()
    };
    assert!(write_outcomes(&dir.0, "outcomes", &series).is_ok());
    let svg = dir.read_svg("outcomes.svg");
    assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
}

#[test]
fn invalid_stem_is_rejected() {
    let dir = TempDir::new("stem");
    for stem in ["", ".", "..", "a/b", "a\\b"] {
        let result = write_outcomes(&dir.0, stem, &outcomes_sample());
        assert!(
            matches!(result, Err(ChartError::InvalidStem { .. })),
            "stem {stem:?} gave {result:?}"
        );
    }
    assert!(dir.file_names().is_empty());
}

#[test]
fn write_error_names_the_file() {
    let dir = TempDir::new("unwritable");
    assert!(fs::create_dir_all(&dir.0).is_ok());
    // A regular file where the output directory should be.
    let blocker = dir.0.join("blocker");
    assert!(fs::write(&blocker, b"").is_ok());
    let result = write_spend(&blocker, "spend", &spend_sample(1));
    let Err(error) = result else {
        panic!("writing under a regular file succeeded");
    };
    assert!(matches!(error, ChartError::Write { .. }), "{error:?}");
    assert!(error.to_string().contains("blocker/spend.svg"), "{error}");
}

/// Edge-case series: nothing, zeros, one bucket, non-finite values, extreme
/// magnitudes, bad bucket widths and a series far longer than the plot.
fn degenerate_values() -> Vec<(&'static str, f64, Vec<f64>)> {
    vec![
        ("empty", 1.0, Vec::new()),
        ("zeros", 1.0, vec![0.0; 50]),
        ("one-bucket", 1.0, vec![3.0]),
        (
            "non-finite",
            1.0,
            vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0],
        ),
        ("huge", 1.0, vec![f64::MAX, 1e300, f64::MAX]),
        ("tiny", 1.0, vec![1e-300, 5e-324, 0.0]),
        ("negative", 1.0, vec![-5.0, -1e300, 2.0]),
        ("zero-width", 0.0, vec![1.0, 2.0]),
        ("nan-width", f64::NAN, vec![1.0, 2.0]),
        ("huge-width", f64::MAX, vec![1.0, 2.0]),
        (
            "long",
            0.001,
            (0..100_000).map(|i| (i % 7) as f64).collect(),
        ),
    ]
}

#[test]
fn degenerate_outcomes_do_not_panic() {
    let dir = TempDir::new("degenerate-outcomes");
    for (name, bucket_seconds, values) in degenerate_values() {
        let series = OutcomeSeries {
            title: name.to_string(),
            bucket_seconds,
            ok_2xx: values.clone(),
            rate_limited_429: values.clone(),
            overflow_503: values.iter().rev().copied().collect(),
            other: values,
        };
        let result = write_outcomes(&dir.0, name, &series);
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

#[test]
fn degenerate_spend_does_not_panic() {
    let dir = TempDir::new("degenerate-spend");
    for (name, bucket_seconds, values) in degenerate_values() {
        let series = SpendSeries {
            title: name.to_string(),
            bucket_seconds,
            clients: vec![
                ("a".to_string(), values.clone()),
                ("b".to_string(), Vec::new()),
                (String::new(), values),
            ],
        };
        let result = write_spend(&dir.0, name, &series);
        assert!(result.is_ok(), "{name}: {result:?}");
    }
    let no_clients = SpendSeries::default();
    let result = write_spend(&dir.0, "no-clients", &no_clients);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn degenerate_lines_do_not_panic() {
    let dir = TempDir::new("degenerate-lines");
    for (name, _, values) in degenerate_values() {
        let points: Vec<(f64, f64)> = values.iter().map(|&v| (v, v)).collect();
        let band = values.iter().map(|&v| (v, -v, v)).collect();
        let chart = LineChart {
            title: name.to_string(),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![
                LineSeries {
                    name: name.to_string(),
                    points,
                    band: Some(band),
                },
                LineSeries {
                    name: "one".to_string(),
                    points: vec![(1.0, 1.0)],
                    band: Some(vec![(1.0, 0.0, 2.0)]),
                },
                LineSeries::default(),
            ],
        };
        let result = write_lines(&dir.0, name, &chart);
        assert!(result.is_ok(), "{name}: {result:?}");
    }
    let result = write_lines(&dir.0, "no-series", &LineChart::default());
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn long_names_and_unusual_text_render() {
    let dir = TempDir::new("text");
    let long = "x".repeat(500);
    let series = SpendSeries {
        title: format!("{long} 日本語 🚀 \u{0}"),
        bucket_seconds: 1.0,
        clients: vec![(long, vec![1.0, 2.0]), ("ünïcödé ✓".to_string(), vec![1.0])],
    };
    let result = write_spend(&dir.0, "text", &series);
    assert!(result.is_ok(), "{result:?}");
}
