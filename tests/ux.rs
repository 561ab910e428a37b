//! The tool as people meet it: the built binary's subcommands and flags,
//! the scenario JSON Schema and the shipped scenarios' editor comment,
//! the Prometheus exports, and report.html in a real headless browser.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value as Json};
use trafficsim::scenario::schema;
use trafficsim::yaml::{self, Node, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_trafficsim");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-ux-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trafficsim(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Lists every `*.yaml` under `scenarios/` that is a scenario, not a manifest.
fn shipped_scenarios() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![repo("scenarios")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let manifest = text.lines().any(|line| line.starts_with("apiVersion:"));
                if !manifest {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}

/// Converts `node` to the JSON a YAML 1.2 core-schema reader makes of it.
fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Scalar { text, quoted: true } => Json::String(text.clone()),
        Value::Scalar { text, .. } => {
            if let Ok(integer) = text.parse::<i64>() {
                return Json::from(integer);
            }
            if let Ok(number) = text.parse::<f64>()
                && number.is_finite()
            {
                return Json::from(number);
            }
            match text.as_str() {
                "true" => Json::Bool(true),
                "false" => Json::Bool(false),
                _ => Json::String(text.clone()),
            }
        }
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => {
            let map: Map<String, Json> = entries
                .iter()
                .map(|(key, value)| (key.clone(), to_json(value)))
                .collect();
            Json::Object(map)
        }
    }
}

fn yaml_json(path: &Path) -> Json {
    let documents = yaml::load_file(path).unwrap_or_else(|d| panic!("{d}"));
    to_json(&documents[0].root)
}

#[test]
fn schema_file_is_up_to_date() {
    let committed = std::fs::read_to_string(repo("schema/scenario.schema.json")).unwrap();
    assert!(
        committed == schema::json_schema_text(),
        "schema/scenario.schema.json is stale; regenerate it with \
         `cargo run -- schema > schema/scenario.schema.json`"
    );
}

#[test]
fn schema_subcommand_prints_the_schema() {
    let output = trafficsim(&["schema"]);
    assert!(output.status.success());
    assert_eq!(stdout(&output), schema::json_schema_text());
}

#[test]
fn shipped_scenarios_name_the_schema() {
    let scenarios = shipped_scenarios();
    assert!(scenarios.len() >= 10, "found only {scenarios:?}");
    for path in scenarios {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let Some(relative) = first.strip_prefix("# yaml-language-server: $schema=") else {
            panic!(
                "{} must start with `# yaml-language-server: $schema=<path to \
                 schema/scenario.schema.json>`",
                path.display()
            );
        };
        let target = path.parent().unwrap().join(relative);
        assert_eq!(
            target.canonicalize().unwrap(),
            repo("schema/scenario.schema.json").canonicalize().unwrap(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn shipped_scenarios_satisfy_the_schema() {
    let validator = jsonschema::validator_for(&schema::json_schema()).unwrap();
    for path in shipped_scenarios() {
        let instance = yaml_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn schema_is_a_valid_draft_07_schema() {
    assert!(jsonschema::meta::is_valid(&schema::json_schema()));
}

/// Scenarios the reader accepts outside `scenarios/` (the fuzz corpus
/// seeds) must satisfy the schema too, or editors would flag good files.
#[test]
fn schema_accepts_what_the_reader_accepts() {
    let validator = jsonschema::validator_for(&schema::json_schema()).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo("fuzz/corpus/scenario")).unwrap() {
        let path = entry.unwrap().path();
        if trafficsim::scenario::load(&path).is_err() {
            continue;
        }
        let instance = yaml_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} corpus scenarios load");
}

#[test]
fn schema_rejects_unknown_and_misspelt_fields() {
    let validator = jsonschema::validator_for(&schema::json_schema()).unwrap();
    let mut scenario = yaml_json(&repo("scenarios/tutorial/basic-limit.yaml"));
    assert!(validator.is_valid(&scenario));
    scenario["clients"][0]["think_tme"] = Json::from("1s");
    assert!(!validator.is_valid(&scenario));
    let mut scenario = yaml_json(&repo("scenarios/tutorial/basic-limit.yaml"));
    scenario["envoy"] = serde_json::json!({"replicas": 0});
    assert!(!validator.is_valid(&scenario));
    let mut scenario = yaml_json(&repo("scenarios/tutorial/basic-limit.yaml"));
    scenario["duration"] = Json::from("10 minutes");
    assert!(!validator.is_valid(&scenario));
}

/// Every section's schema properties are the names the reader accepts,
/// because both come from the tables in `scenario::schema`. This checks
/// that no reader slips back to a hand-written list.
#[test]
fn scenario_reader_takes_field_names_from_schema() {
    let mut sources = vec![repo("src/scenario.rs")];
    for entry in std::fs::read_dir(repo("src/scenario")).unwrap() {
        sources.push(entry.unwrap().path());
    }
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        let squashed: String = text.split_whitespace().collect();
        assert!(
            !squashed.contains(".fields(diagnostics,&["),
            "{} lists field names by hand; add them to the tables in \
             src/scenario/schema.rs",
            path.display()
        );
    }
    let json = schema::json_schema();
    let top: Vec<&str> = json["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, schema::SCENARIO.names());
    let clients = json["properties"]["clients"]["items"]["oneOf"]
        .as_array()
        .unwrap();
    for (alternative, (kind, _)) in clients.iter().zip(&schema::CLIENT_KINDS) {
        let names: Vec<&str> = alternative["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, schema::client_field_names(kind), "kind {kind}");
    }
}

#[test]
fn completions_cover_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = trafficsim(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains("trafficsim"), "{shell}");
        assert!(script.contains("prometheus"), "{shell} misses run's flags");
    }
}

#[test]
fn man_page_is_roff() {
    let output = trafficsim(&["man"]);
    assert!(output.status.success());
    let page = stdout(&output);
    assert!(page.contains(".TH trafficsim"));
    assert!(page.contains("completions"));

    let run = trafficsim(&["man", "run"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let page = stdout(&run);
    assert!(page.contains(".TH trafficsim-run"), "{page}");
    assert!(page.contains("prometheus"));

    let unknown = trafficsim(&["man", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn errors_name_the_program_and_exit_2() {
    let output = trafficsim(&["run", "no/such/scenario.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with("trafficsim: error: "),
        "stderr: {message}"
    );
    assert!(
        message.contains("no/such/scenario.yaml"),
        "stderr: {message}"
    );
    // stderr is a pipe here, so it carries no colour whatever NO_COLOR is.
    assert!(!message.contains('\x1b'));
}

#[test]
fn errors_print_each_cause_once() {
    let dir = scratch("cause-chain");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "--out",
        file.join("out").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    let line = message
        .lines()
        .find(|l| l.starts_with("trafficsim: error: "))
        .unwrap_or_else(|| panic!("no error line in: {message}"));
    assert!(
        line.contains("failed to write the outputs of basic-limit: "),
        "{line}"
    );
    assert!(line.contains("cannot create output folder"), "{line}");
    assert_eq!(line.matches("(os error").count(), 1, "{line}");
}

#[test]
fn quiet_run_prints_nothing() {
    let dir = scratch("quiet");
    let out = dir.join("out");
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "");
    assert!(out.join("report.html").exists());
}

#[test]
fn verbose_run_lists_files_written() {
    let dir = scratch("verbose");
    let out = dir.join("out");
    let output = trafficsim(&[
        "-v",
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    for name in [
        "summary.json",
        "timeseries.csv",
        "manifest.json",
        "outcomes.svg",
        "outcomes.png",
        "spend.svg",
        "spend.png",
        "report.html",
    ] {
        let line = format!("trafficsim: wrote {}", out.join(name).display());
        assert!(log.contains(&line), "missing {line:?} in:\n{log}");
        assert!(
            out.join(name).is_file(),
            "{name} was listed but not written"
        );
    }
    assert!(stdout(&output).contains("requests 10: 200 x5, 429 x5"));
}

#[test]
fn prometheus_export_uses_envoy_names() {
    let dir = scratch("prometheus");
    let prometheus = dir.join("stats.prom");
    let openmetrics = dir.join("series.om");
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "-q",
        "--out",
        dir.join("out").to_str().unwrap(),
        "--prometheus",
        prometheus.to_str().unwrap(),
        "--openmetrics",
        openmetrics.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let text = std::fs::read_to_string(&prometheus).unwrap();
    let cluster = "envoy_cluster_name=\"httproute/default/backend/rule/0\"";
    for line in [
        "# TYPE envoy_http_local_rate_limit_rate_limited counter".to_string(),
        "envoy_http_local_rate_limit_rate_limited{envoy_local_http_ratelimit_prefix=\"http_local_rate_limiter\"} 5".to_string(),
        format!("envoy_cluster_upstream_rq{{envoy_response_code=\"200\",{cluster}}} 5"),
        format!("envoy_cluster_upstream_rq_pending_overflow{{{cluster}}} 0"),
        "envoy_http_downstream_rq_xx{envoy_response_code_class=\"4\",envoy_http_conn_manager_prefix=\"http-10080\"} 5".to_string(),
        "# TYPE envoy_cluster_upstream_rq_active gauge".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }

    let series = std::fs::read_to_string(&openmetrics).unwrap();
    assert!(series.ends_with("# EOF\n"));
    // 2026-01-01T00:00:00Z plus the end of the first 1 s bucket.
    assert!(
        series.contains(
            "trafficsim_client_responses_total{client=\"curl-loop\",status=\"429\"} 5 1767225601.000"
        ),
        "{series}"
    );
}

#[test]
fn init_writes_a_scenario_that_runs() {
    let dir = scratch("init");
    let scenario = dir.join("starter.yaml");
    let output = trafficsim(&[
        "init",
        "--from",
        "scenarios/manifests",
        "--out",
        scenario.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("# TODO: fill in"));
    assert!(text.contains("httproute/default/llm-protected/rule/0"));
    assert!(text.contains("name: \"llm\""));
    assert!(text.contains("name: \"model-server\""));
    assert!(text.contains("host: \"llm.example.com\""));
    assert!(
        text.contains(
            "#   default/retries (Conflicted)\n#     - Unable to target HTTPRoute api, another \
             BackendTrafficPolicy has already attached to it\n"
        ),
        "{text}"
    );

    let again = trafficsim(&[
        "init",
        "--from",
        "scenarios/manifests",
        "--out",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2), "init replaced a file");

    let run = trafficsim(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("llm-protected-rule-0"));
}

/// Routes with hosts, methods, exact headers and query parameters: the
/// clients `init` writes must send requests each route matches, so none
/// ends as Envoy's 404 for an unmatched route.
const MATCHING_ROUTES: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{name: eg, namespace: default}]
  hostnames: [\"*.shop.example\"]
  rules:
    - matches:
        - path: {type: Exact, value: /v1/orders}
          method: POST
          headers: [{name: x-tenant, value: acme}]
          queryParams: [{name: debug, value: \"1\"}]
      backendRefs: [{name: orders, port: 80}]
    - matches:
        - path: {type: PathPrefix, value: /v1/carts}
      backendRefs: [{name: carts, port: 80}, {name: carts-canary, port: 80}]
";

#[test]
fn init_clients_match_their_routes() {
    let dir = scratch("init-matching");
    std::fs::write(dir.join("routes.yaml"), MATCHING_ROUTES).unwrap();
    let scenario = dir.join("scenario.yaml");
    let output = trafficsim(&[
        "init",
        "--from",
        dir.join("routes.yaml").to_str().unwrap(),
        "--out",
        scenario.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("manifests:\n  - \"routes.yaml\""), "{text}");
    assert!(text.contains("method: \"POST\""), "{text}");
    assert!(text.contains("path: \"/v1/orders?debug=1\""), "{text}");
    assert!(text.contains("host: \"www.shop.example\""), "{text}");
    assert!(text.contains("\"x-tenant\": \"acme\""), "{text}");
    assert!(text.contains("namespace: \"shop\""), "{text}");
    assert!(text.contains("name: \"carts-canary\""), "{text}");

    let out = dir.join("out");
    let run = trafficsim(&[
        "run",
        scenario.to_str().unwrap(),
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: Json =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let statuses = summary["status_counts"].as_object().unwrap();
    assert!(statuses.contains_key("200"), "{statuses:?}");
    assert!(
        !statuses.contains_key("404"),
        "a client matched no route: {statuses:?}"
    );
}

#[test]
fn init_rejects_manifests_without_routes() {
    let dir = scratch("init-empty");
    std::fs::write(
        dir.join("gateway.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: eg}\n\
         spec: {gatewayClassName: eg, listeners: [{name: http, protocol: HTTP, port: 80}]}\n",
    )
    .unwrap();
    let output = trafficsim(&["init", "--from", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no HTTPRoute"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn init_rejects_manifests_without_backends() {
    let dir = scratch("init-no-backends");
    std::fs::write(
        dir.join("manifests.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: eg}\n\
         spec: {gatewayClassName: eg, listeners: [{name: http, protocol: HTTP, port: 80}]}\n\
         ---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {name: empty}\nspec: {parentRefs: [{name: eg}], rules: [{}]}\n",
    )
    .unwrap();
    let scenario = dir.join("starter.yaml");
    let output = trafficsim(&[
        "init",
        "--from",
        dir.join("manifests.yaml").to_str().unwrap(),
        "--out",
        scenario.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.starts_with("trafficsim: error: "), "{message}");
    assert!(
        message.contains("routes no request to a backend"),
        "{message}"
    );
    assert!(message.contains("has no backendRefs"), "{message}");
    assert!(!scenario.exists(), "init wrote a scenario that cannot run");
}

fn run_report(name: &str) -> PathBuf {
    let dir = scratch(name).join("out");
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/circuit-breaker-hey.yaml",
        "-q",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir.join("report.html")
}

/// Runs trafficsim with `args`, which must succeed, and returns the page
/// it wrote at `page`.
fn written_page(args: &[&str], page: &Path) -> String {
    let output = trafficsim(args);
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn report_html_is_self_contained() {
    let path = run_report("report");
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 2, "two inline charts");
    assert!(!page.contains("<script"));
    assert!(!page.contains("src="), "nothing loaded from elsewhere");
    assert!(!page.contains("href=\"http"));
    assert!(page.contains("maxParallelRequests") || page.contains("parallel requests"));
    assert!(page.contains("Accepted"));
    let again = std::fs::read_to_string(run_report("report-again")).unwrap();
    assert!(page == again, "report.html differs between identical runs");
}

#[test]
fn sweep_writes_report_html() {
    let dir = scratch("sweep").join("out");
    let page = written_page(
        &[
            "sweep",
            "scenarios/tutorial/basic-limit.yaml",
            "--param",
            "envoy.replicas=1,2",
            "-q",
            "--out",
            dir.to_str().unwrap(),
        ],
        &dir.join("report.html"),
    );
    assert!(page.contains("<h1>trafficsim sweep: basic-limit</h1>"));
    assert!(page.contains("envoy.replicas = 1, 2"));
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script"));
}

#[test]
fn compare_writes_report_html() {
    let dir = scratch("compare").join("out");
    let page = written_page(
        &[
            "compare",
            "scenarios/tutorial/basic-limit.yaml",
            "--variant",
            "one:envoy.replicas=1",
            "--variant",
            "two:envoy.replicas=2",
            "-q",
            "--out",
            dir.to_str().unwrap(),
        ],
        &dir.join("report.html"),
    );
    assert!(page.contains("<h1>trafficsim compare: basic-limit</h1>"));
    assert!(page.contains("<a href=\"one/report.html\">one</a>"));
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script"));
    assert!(dir.join("two/report.html").exists());
}

#[test]
fn check_writes_html_results() {
    let dir = scratch("check-html");
    let page_path = dir.join("check.html");
    let page = written_page(
        &[
            "check",
            "scenarios/ci/tutorial-basic-limit.yaml",
            "--html",
            page_path.to_str().unwrap(),
        ],
        &page_path,
    );
    assert!(page.contains("<h1>trafficsim check</h1>"));
    assert!(
        page.contains("<td>PASS</td><td>five requests pass</td>"),
        "{page}"
    );
    assert!(!page.contains("<td>FAIL</td>"));
    assert!(!page.contains("<script"));
}

#[test]
fn diff_writes_report_html() {
    let dir = scratch("diff").join("out");
    let page = written_page(
        &[
            "diff",
            "scenarios/ci/tutorial-basic-limit.yaml",
            "--before",
            "scenarios/tutorial/manifests/per-user-distinct.yaml",
            "--seeds",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
        &dir.join("report.html"),
    );
    assert!(page.contains("<h1>trafficsim diff: tutorial-basic-limit</h1>"));
    assert!(page.contains("status_fraction(429)"), "{page}");
    assert!(page.contains("<svg"));
    assert!(!page.contains("<script"));
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for folder in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = folder.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Opens report.html in headless Chromium from a `file://` URL, with a
/// fresh profile and every background network feature off, then checks
/// that the page logged nothing to the console and that the screenshot
/// shows the outcomes chart's colours.
#[test]
fn report_html_renders_in_chromium() {
    let Some(chromium) = find_chromium() else {
        // .ci/run sets this after installing Chromium, so CI cannot pass
        // without the browser having opened the report.
        assert!(
            std::env::var_os("TRAFFICSIM_REQUIRE_BROWSER").is_none(),
            "TRAFFICSIM_REQUIRE_BROWSER is set but chromium is not on PATH"
        );
        eprintln!("skipped: chromium is not installed (.ci/run installs it)");
        return;
    };
    let report = run_report("chromium").canonicalize().unwrap();
    let dir = scratch("chromium-profile");
    let screenshot = dir.join("report.png");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "chromium failed:\n{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    let file = std::fs::File::open(&screenshot).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let count = |rgb: [u8; 3]| {
        pixels[..frame.buffer_size()]
            .chunks(channels)
            .filter(|p| p[..3] == rgb)
            .count()
    };
    // The 2xx band (#2EA043) and the 503 band (#D62728) of the outcomes chart.
    assert!(
        count([0x2e, 0xa0, 0x43]) > 1_000,
        "no 2xx band in the screenshot"
    );
    assert!(
        count([0xd6, 0x27, 0x28]) > 1_000,
        "no 503 band in the screenshot"
    );
}

#[test]
fn usage_errors_name_the_program() {
    let output = trafficsim(&[
        "run",
        "--seed",
        "abc",
        "scenarios/tutorial/basic-limit.yaml",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with("trafficsim: error: invalid value 'abc' for '--seed"),
        "{message}"
    );

    let version = trafficsim(&["--version"]);
    assert!(version.status.success());
    assert!(stdout(&version).starts_with("trafficsim "));
}

#[test]
fn output_problems_fail_before_the_run() {
    let dir = scratch("early-output-check");
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("did not write"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "the scenario ran before the check");

    let prometheus = dir.join("no-such-folder").join("run.prom");
    let output = trafficsim(&[
        "run",
        "scenarios/tutorial/basic-limit.yaml",
        "--out",
        dir.join("out").to_str().unwrap(),
        "--prometheus",
        prometheus.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such-folder does not exist"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "the scenario ran before the check");
}

#[test]
fn diff_never_writes_into_foreign_folders() {
    let dir = scratch("diff-foreign");
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let output = trafficsim(&[
        "diff",
        "scenarios/ci/tutorial-basic-limit.yaml",
        "--before",
        "scenarios/tutorial/manifests/per-user-distinct.yaml",
        "--seeds",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("did not write"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("report.html").exists());
}

#[test]
fn run_folder_may_hold_the_diff_folder() {
    // `diff` writes into `outputs/<scenario>/diff`, inside the folder a
    // later `run` of the same scenario writes.
    let dir = scratch("diff-then-run");
    let diff = trafficsim(&[
        "diff",
        "scenarios/ci/tutorial-basic-limit.yaml",
        "--before",
        "scenarios/tutorial/manifests/per-user-distinct.yaml",
        "--seeds",
        "2",
        "-q",
        "--out",
        dir.join("diff").to_str().unwrap(),
    ]);
    assert!(diff.status.success(), "{}", stderr(&diff));
    let run = trafficsim(&[
        "run",
        "scenarios/ci/tutorial-basic-limit.yaml",
        "-q",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(dir.join("report.html").exists());
    assert!(dir.join("diff/report.html").exists());
}

#[test]
fn conflicted_policy_note_claims_no_500() {
    let dir = scratch("conflicted-note");
    let scenario = dir.join("conflicted.yaml");
    let manifests = repo("scenarios/tutorial/manifests");
    std::fs::write(
        &scenario,
        format!(
            "name: conflicted\nmanifests:\n  - '{0}/gateway.yaml'\n  - '{0}/basic-limit.yaml'\n  \
             - '{0}/per-user-distinct.yaml'\nbackends:\n  - {{name: backend, service_time: 1ms}}\n\
             clients:\n  - {{name: c, kind: sequential, requests: 3}}\n",
            manifests.display()
        ),
    )
    .unwrap();
    let output = trafficsim(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("(Conflicted: "), "{message}");
    assert!(
        message.contains("it has no effect on any route"),
        "{message}"
    );
    assert!(!message.contains("answers 500"), "{message}");
    assert!(stdout(&output).contains("200 x3"), "{}", stdout(&output));
}

#[test]
fn report_names_client_timeouts() {
    let dir = scratch("client-timeout");
    let scenario = dir.join("timeouts.yaml");
    let manifests = repo("scenarios/tutorial/manifests");
    std::fs::write(
        &scenario,
        format!(
            "name: timeouts\nmanifests: ['{}/gateway.yaml']\n\
             backends:\n  - {{name: backend, service_time: 1s}}\n\
             clients:\n  - {{name: impatient, kind: sequential, requests: 2, timeout: 10ms}}\n",
            manifests.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let page = written_page(
        &[
            "run",
            scenario.to_str().unwrap(),
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
        &out.join("report.html"),
    );
    assert!(page.contains("client_timeout x2"), "{page}");
    assert!(!page.contains(">0 x2"), "{page}");
}

#[test]
fn closed_stdout_does_not_panic() {
    // `trafficsim sweep ... | head -1` closes stdout before the table.
    let out = scratch("closed-stdout").join("out");
    let mut child = Command::new(BINARY)
        .args([
            "sweep",
            "scenarios/tutorial/basic-limit.yaml",
            "--param",
            "envoy.replicas=1,2",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    assert!(output.status.success(), "{message}");
    assert!(out.join("sweep.csv").exists());
}

#[test]
fn sweep_seeds_outside_the_range_are_rejected() {
    for seeds in ["0", "10001"] {
        let dir = scratch(&format!("sweep-seeds-{seeds}"));
        let output = trafficsim(&[
            "sweep",
            "scenarios/capacity-plan.yaml",
            "--seeds",
            seeds,
            "-q",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("--seeds must be from 1 to 10000, found {seeds}")),
            "{}",
            stderr(&output)
        );
        assert!(!dir.join("sweep.csv").exists());
    }
}
