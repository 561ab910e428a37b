//! `trafficsim diff`: paired runs before and after a policy change, the
//! manifests each side replaces, git revisions, and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trafficsim::diff::{self, DiffOptions, ManifestSource};
use trafficsim::scenario::{self, LoadOptions, ManifestOverride};

fn tutorial_manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tutorial/manifests")
}

fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trafficsim-diff-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Returns a policy of `requests` per minute on the tutorial's `backend`
/// route.
fn policy(requests: u32) -> String {
    format!(
        "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata:
  name: limit
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: backend
  rateLimit:
    local:
      rules:
        - limit:
            requests: {requests}
            unit: Minute
"
    )
}

/// Poisson traffic of 120 a minute for 2 minutes through `manifests`.
fn scenario_text(manifests: &[&str]) -> String {
    let list: String = manifests.iter().map(|m| format!("  - {m}\n")).collect();
    format!(
        "\
name: poisson
seed: 11
duration: 2m
manifests:
{list}backends:
  - name: backend
    service_time: 5ms
clients:
  - name: users
    kind: open
    rate: 120/m
output:
  bucket: 10s
"
    )
}

/// A folder with the tutorial gateway, a 60-a-minute policy and the
/// scenario; returns the scenario's path.
fn setup(dir: &Path) -> PathBuf {
    std::fs::copy(
        tutorial_manifests().join("gateway.yaml"),
        dir.join("gateway.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("policy.yaml"), policy(60)).unwrap();
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario_text(&["gateway.yaml", "policy.yaml"])).unwrap();
    path
}

fn options(seeds: u32) -> DiffOptions {
    DiffOptions {
        seeds,
        base_seed: None,
        confidence: 0.95,
    }
}

fn row<'r>(report: &'r diff::DiffReport, metric: &str) -> &'r diff::MetricDiff {
    report
        .rows
        .iter()
        .find(|r| r.metric == metric && r.scope == "run")
        .unwrap_or_else(|| panic!("no row {metric}"))
}

#[test]
fn same_policy_changes_nothing() {
    let dir = folder("same");
    let path = setup(&dir);
    let before = ManifestSource::Path(dir.join("policy.yaml"));
    let report = diff::diff(&path, &before, &ManifestSource::Scenario, &options(4)).unwrap();
    assert_eq!(report.seeds, [11, 12, 13, 14]);
    for row in &report.rows {
        assert!(!row.significant, "{} of {}", row.metric, row.scope);
        let change = row.change.unwrap();
        assert_eq!(change.mean, 0.0, "{} of {}", row.metric, row.scope);
        assert_eq!(change.std_dev, 0.0, "common random numbers pair the runs");
    }
}

#[test]
fn tighter_policy_is_a_significant_change() {
    let dir = folder("tighter");
    let path = setup(&dir);
    std::fs::write(dir.join("tight.yaml"), policy(30)).unwrap();
    let before = ManifestSource::Scenario;
    let after = ManifestSource::Path(dir.join("tight.yaml"));
    let report = diff::diff(&path, &before, &after, &options(5)).unwrap();

    let limited = row(&report, "status_fraction(429)");
    assert!(limited.significant);
    let change = limited.change.unwrap();
    assert!(change.low() > 0.0, "{change:?}");
    let (before, after) = (limited.before.unwrap(), limited.after.unwrap());
    assert!((after.mean - before.mean - change.mean).abs() < 1e-12);

    let admitted = row(&report, "admitted_rate");
    assert!(admitted.significant);
    assert!(admitted.change.unwrap().high() < 0.0);

    let json = diff::render_json(&report);
    assert_eq!(json["before"], "the scenario's manifests");
    assert_eq!(json["seeds"].as_array().map(Vec::len), Some(5));
    let text = diff::render_human(&report);
    assert!(text.contains("status_fraction(429)"), "{text}");
    assert!(text.contains(" *\n"), "{text}");
}

#[test]
fn replacement_drops_policies_and_same_named_objects() {
    let dir = folder("replace");
    let path = setup(&dir);
    let replacement = dir.join("replacement");
    std::fs::create_dir_all(&replacement).unwrap();
    // The same HTTPRoute serving another host, and no policy at all.
    let route = std::fs::read_to_string(tutorial_manifests().join("gateway.yaml"))
        .unwrap()
        .split("---")
        .nth(1)
        .unwrap()
        .replace("www.example.com", "api.example.com");
    std::fs::write(replacement.join("route.yaml"), route).unwrap();
    let options = LoadOptions {
        manifests: Some(ManifestOverride::Replace(vec![replacement])),
    };
    let scenario = scenario::load_with_options(&path, &[], &options).unwrap();
    let routes = &scenario.gateway.routes;
    assert_eq!(routes.len(), 1, "the route is replaced, not duplicated");
    assert_eq!(routes[0].hostnames, ["api.example.com"]);
    assert!(
        routes[0].local_rate_limit.is_none(),
        "the policy is dropped"
    );
    assert!(scenario.gateway.policies.is_empty());
}

fn trafficsim(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trafficsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn command_writes_charts_and_exits_zero() {
    let dir = folder("command");
    let path = setup(&dir);
    std::fs::write(dir.join("tight.yaml"), policy(30)).unwrap();
    let out = dir.join("charts");
    let output = trafficsim(
        &[
            "diff",
            path.to_str().unwrap(),
            "--before",
            "tight.yaml",
            "--seeds",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("before tight.yaml, after the scenario's manifests"));
    assert!(out.join("diff-rates.svg").exists());
    assert!(out.join("diff-rates.png").exists());
    assert!(
        !out.join("diff-spend.svg").exists(),
        "free requests need no spend chart"
    );
}

#[test]
fn command_rejects_bad_input_with_two() {
    let dir = folder("bad");
    let path = setup(&dir);
    let path = path.to_str().unwrap();
    let cases: [&[&str]; 4] = [
        &["diff", path, "--before", "missing.yaml"],
        &["diff", path, "--before", "policy.yaml", "--seeds", "0"],
        &[
            "diff",
            path,
            "--before",
            "policy.yaml",
            "--confidence",
            "1.5",
        ],
        &["diff", "nope.yaml", "--before", "policy.yaml"],
    ];
    for args in cases {
        let output = trafficsim(args, &dir);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("trafficsim: error: "), "{stderr}");
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn git_revision_supplies_the_before_manifests() {
    let dir = folder("git");
    let path = setup(&dir);
    git(&dir, &["init", "--quiet"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "--quiet", "-m", "60 a minute"]);
    std::fs::write(dir.join("policy.yaml"), policy(30)).unwrap();
    let out = folder("git-charts");

    for before in ["git:HEAD", "git:HEAD:policy.yaml"] {
        let output = trafficsim(
            &[
                "diff",
                path.to_str().unwrap(),
                "--before",
                before,
                "--seeds",
                "3",
                "--format",
                "json",
                "--out",
                out.to_str().unwrap(),
            ],
            &dir,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{before}: {stderr}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["before"], before);
        let limited = json["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "status_fraction(429)" && m["scope"] == "run")
            .unwrap();
        assert_eq!(limited["significant"], true, "{before}: {limited}");
        assert!(limited["change"]["mean"].as_f64().unwrap() > 0.0);
    }

    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let changed = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        changed.trim(),
        "M policy.yaml",
        "the repository is left alone"
    );

    let output = trafficsim(
        &[
            "diff",
            path.to_str().unwrap(),
            "--before",
            "git:no-such-rev",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("git revision `no-such-rev` not found"),
        "{stderr}"
    );
}
