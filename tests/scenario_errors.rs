//! Bad scenario files: every problem reported at once, each naming the
//! file, line, column and YAML path, with the likely fix.

use std::path::PathBuf;

use trafficsim::scenario;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn errors(name: &str, text: &str) -> Vec<String> {
    let path = write(name, text);
    let diagnostics = match scenario::load(&path) {
        Ok(_) => panic!("{name} was accepted"),
        Err(diagnostics) => diagnostics,
    };
    let prefix = format!("{}:", path.display());
    diagnostics
        .to_string()
        .lines()
        .map(|line| line.strip_prefix(&prefix).unwrap_or(line).to_string())
        .collect()
}

#[test]
fn every_problem_is_reported_in_order() {
    let got = errors(
        "many.yaml",
        "\
name: bad
seed: -3
envoy:
  replica: 2
  workers: 0
manifests:
  - missing.yaml
  - apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: BackendTrafficPolicy
    metadata: {name: p, namespace: default}
    spec:
      targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
      circuitBreaker: {maxRequests: 5}
backends:
  - name: backend
    service_time: {lognormal: {median: 2s, p99: 1s}}
clients:
  - name: a
    kind: closed
    requests: 10
  - name: b
    kind: sequentail
",
    );
    let expected = [
        "2:7: seed: expected a non-negative integer, found `-3`",
        "4:12: envoy.replica: unknown field `replica`; did you mean `replicas`?",
        "5:12: envoy.workers: workers must be from 1 to 1024, found 0",
        "7:5: manifests[0]: manifest path ",
        "13:37: manifests[1].spec.circuitBreaker.maxRequests: unknown field `maxRequests`; did you mean `maxParallelRequests`?",
        "16:31: backends[0].service_time.lognormal: lognormal needs 0 < median <= p99, found median 2 and p99 1",
        "18:5: clients[0]: missing required field `concurrency`",
        "22:11: clients[1].kind: unsupported value `sequentail`; did you mean `sequential`?",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (line, want) in got.iter().zip(expected) {
        assert!(
            line.starts_with(want),
            "got {line:?}, expected it to start with {want:?}"
        );
    }
}

#[test]
fn undefined_backends_are_named() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let got = errors(
        "backend.yaml",
        &format!(
            "manifests: ['{manifests}']\nbackends:\n  - name: other\nclients:\n  - {{kind: sequential, requests: 1}}\n"
        ),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("backend `default/backend`, which the scenario does not define"),
        "{got:?}"
    );
}

#[test]
fn endless_clients_need_a_duration() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let got = errors(
        "endless.yaml",
        &format!(
            "manifests: ['{manifests}']\nbackends:\n  - name: backend\nclients:\n  - {{name: loop, kind: agent}}\n"
        ),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("client `loop` never stops on its own"),
        "{got:?}"
    );
    assert!(got[0].starts_with("5:5: "), "points at the client: {got:?}");
}

#[test]
fn empty_file_is_reported_at_line_one() {
    for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# only a comment\n")] {
        let got = errors(name, text);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("1:1: scenario file is empty"), "{got:?}");
        assert!(got[0].contains("trafficsim init"), "{got:?}");
    }
}

#[test]
fn bad_rates_and_durations_are_explained() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let got = errors(
        "rates.yaml",
        &format!(
            "duration: 1e30h\nmanifests: ['{manifests}']\nbackends:\n  - name: backend\nclients:\n  - {{kind: open, rate: 5/fortnight}}\n  - {{kind: open, rate: -1}}\n  - {{kind: sequential, requests: 0}}\n"
        ),
    );
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got[0].contains("duration: duration `1e30h` is too long"),
        "{got:?}"
    );
    assert!(got[1].contains("unknown rate unit `fortnight`"), "{got:?}");
    assert!(got[2].contains("must be more than zero"), "{got:?}");
    assert!(got[3].contains("requests must be at least 1"), "{got:?}");
}

#[test]
fn numbers_at_their_edges() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let cases = [
        ("clients: []", "clients must list at least one client"),
        (
            "duration: 0s\nclients: [{kind: sequential, requests: 1}]",
            "duration must be longer than zero",
        ),
        (
            "duration: -1s\nclients: [{kind: sequential, requests: 1}]",
            "duration `-1s` is negative",
        ),
        (
            "clients: [{kind: closed, requests: 18446744073709551616, concurrency: 3}]",
            "is larger than 18446744073709551615",
        ),
        (
            "clients: [{kind: open, rate: 1e30/s}]\nduration: 1s",
            "at most 1e9 requests per second",
        ),
        (
            "envoy: {replicas: 4294967295}\nclients: [{kind: sequential, requests: 1}]",
            "replicas must be from 1 to 10000",
        ),
    ];
    for (index, (body, expected)) in cases.iter().enumerate() {
        let text = format!("manifests: ['{manifests}']\nbackends: [{{name: backend}}]\n{body}\n");
        let got = errors(&format!("edge-{index}.yaml"), &text);
        assert_eq!(got.len(), 1, "{body}: {got:#?}");
        assert!(got[0].contains(expected), "{body}: {got:?}");
    }
}

#[test]
fn huge_requests_count_is_accepted_as_written() {
    // requests: 4294967295 is a valid count; the run is bounded by the
    // scenario's duration, not rejected.
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let path = write(
        "huge.yaml",
        &format!(
            "duration: 1s\nmanifests: ['{manifests}']\nbackends: [{{name: backend}}]\nclients: [{{kind: sequential, requests: 4294967295, think_time: 100ms}}]\n"
        ),
    );
    let scenario = scenario::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let output = trafficsim::sim::run(&scenario, 1);
    assert!(output.metrics.total_requests() <= 11);
}

#[test]
fn tabs_and_crlf_and_bom() {
    let manifests = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/manifests/gateway.yaml"
    );
    let tabs = errors(
        "tabs.yaml",
        &format!("manifests: ['{manifests}']\nbackends:\n\t- name: backend\n"),
    );
    assert!(tabs[0].contains("indent with spaces"), "{tabs:?}");
    let crlf = format!(
        "\u{feff}manifests: ['{manifests}']\r\nbackends: [{{name: backend}}]\r\nclients: [{{kind: sequential, requests: 2}}]\r\n"
    );
    let path = write("crlf.yaml", &crlf);
    assert!(scenario::load(&path).is_ok());
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let previous = level - 1;
        bomb.push_str(&format!(
            "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
        ));
    }
    let got = errors("bomb.yaml", &bomb);
    assert!(got[0].contains("expands to more than"), "{got:?}");
    let deep = format!("{}{}\n", "[".repeat(300), "]".repeat(300));
    let got = errors("deep.yaml", &deep);
    assert!(
        got[0].contains("nesting is deeper") || got[0].contains("recursion limit"),
        "{got:?}"
    );
}
