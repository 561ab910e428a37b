//! A run that reaches `limits.max_events` is marked truncated only when an
//! event it would otherwise have processed was still due.

use std::path::Path;

use trafficsim::scenario::{self, Scenario};
use trafficsim::sim::{self, Truncation};
use trafficsim::time::{SimDuration, SimTime};

/// Builds a scenario of one client sending 300 requests at 100 per second
/// to a backend with 5 ms service times, with optional limits.
fn scenario_text(duration: Option<&str>, max_events: Option<u64>) -> String {
    let mut text = String::from(
        "name: run-limits
seed: 3
manifests:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: eg, namespace: default}
    spec:
      gatewayClassName: eg
      listeners: [{name: http, protocol: HTTP, port: 80}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: api, namespace: default}
    spec:
      parentRefs: [{name: eg}]
      rules:
        - matches: [{path: {type: PathPrefix, value: /}}]
          backendRefs: [{name: app, port: 8080}]
backends:
  - name: app
    service_time: 5ms
clients:
  - name: users
    kind: open
    rate: 100/s
    requests: 300
",
    );
    if let Some(duration) = duration {
        text.push_str(&format!("duration: {duration}\n"));
    }
    if let Some(max_events) = max_events {
        text.push_str(&format!("limits:\n  max_events: {max_events}\n"));
    }
    text
}

fn load(text: &str) -> Scenario {
    match scenario::parse_str(text, Path::new("run-limits.yaml")) {
        Ok(scenario) => scenario,
        Err(diagnostics) => panic!("{diagnostics}"),
    }
}

fn run(duration: Option<&str>, max_events: Option<u64>) -> sim::RunOutput {
    let scenario = load(&scenario_text(duration, max_events));
    sim::run(&scenario, scenario.seed)
}

#[test]
fn limit_below_event_count_truncates() {
    let full = run(None, None);
    let limited = run(None, Some(full.events - 1));
    assert_eq!(limited.events, full.events - 1);
    assert_eq!(
        limited.truncated,
        Some(Truncation::MaxEvents(full.events - 1))
    );
}

#[test]
fn limit_at_finished_workload_does_not_truncate() {
    let full = run(None, None);
    assert_eq!(full.truncated, None);
    let limited = run(None, Some(full.events));
    assert_eq!(limited.events, full.events);
    assert_eq!(limited.truncated, None);
}

#[test]
fn limit_at_run_end_does_not_truncate() {
    // 300 requests at 100 per second outlast the 1 s run, so events past
    // the end are still queued when the limit is reached.
    let full = run(Some("1s"), None);
    assert_eq!(full.truncated, None);
    let limited = run(Some("1s"), Some(full.events));
    assert_eq!(limited.events, full.events);
    assert_eq!(limited.truncated, None);
    assert_eq!(limited.end, SimTime::ZERO + SimDuration::from_secs(1));
}
