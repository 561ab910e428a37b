//! The `trafficsim` command line: parses arguments, calls the library and
//! maps outcomes to exit codes (0 ok, 1 a check failed, 2 bad input).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use trafficsim::yaml::Diagnostics;
use trafficsim::{check, compare, diff, report, scenario, sim};

#[derive(Parser)]
#[command(
    name = "trafficsim",
    version,
    about = "Simulate traffic through Envoy Gateway: rate limits, circuit breakers, retries and spend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write its summary, time series and charts.
    Run {
        /// Scenario file (YAML).
        scenario: PathBuf,
        /// Output folder; defaults to outputs/<scenario name>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Random seed (an unsigned integer); overrides the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write requests.csv with one row per completed request
        /// (memory then grows with the number of requests).
        #[arg(long)]
        trace: bool,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run variants of one scenario on the same seed and show their results
    /// side by side: admitted rate against the limit, 429s per user and
    /// their fairness, p99 latency, spend, and requests that passed without
    /// their global limit.
    Compare {
        /// Scenario file (YAML).
        scenario: PathBuf,
        /// A variant as NAME:PATH=VALUE, where PATH is a dotted path into
        /// the scenario and VALUE is YAML, such as
        /// `global:rate_limit_mode=global` or `r3:envoy.replicas=3`. Repeat
        /// the flag for more variants or more fields of one variant; a bare
        /// NAME runs the scenario as written. Without this flag the
        /// scenario's `compare.variants` are run.
        #[arg(long = "variant", value_name = "NAME:PATH=VALUE")]
        variants: Vec<String>,
        /// Output folder; defaults to outputs/<scenario name>-compare.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Random seed (an unsigned integer) for every variant; overrides
        /// the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check BackendTrafficPolicies as Envoy Gateway would: accepted or
    /// invalid, the routes each applies to, its limits and warnings.
    Validate {
        /// Manifest files or folders (searched for *.yaml and *.yml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Envoy replicas the Gateway runs (a count); local limits apply
        /// per replica.
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: ValidateFormat,
    },
    /// Run scenarios and judge their `expect:` lists. Exit 0 when every
    /// expectation passes, 1 when any fails, 2 on bad input.
    Check {
        /// Scenario files, or folders whose *.yaml and *.yml files are all
        /// scenarios with expectations.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also write the results as JUnit XML (one test case per
        /// expectation) to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
    },
    /// Run a scenario with the manifests before and after a policy change,
    /// on the same seeds, and report each metric's change with a
    /// confidence interval.
    Diff {
        /// Scenario file (YAML).
        scenario: PathBuf,
        /// Manifests before the change: a file or folder whose objects
        /// replace the scenario's BackendTrafficPolicies, `git:REV` for
        /// the scenario's manifest files at a git revision, or
        /// `git:REV:PATH` for a file or folder at a revision.
        #[arg(long, value_name = "DIR_OR_FILE|git:REV")]
        before: String,
        /// Manifests after the change, in the same forms; defaults to the
        /// scenario's manifests as they are.
        #[arg(long, value_name = "DIR_OR_FILE|git:REV")]
        after: Option<String>,
        /// Runs per side (a count from 1 to 1000), with seeds seed,
        /// seed + 1, ...
        #[arg(long, default_value_t = 10)]
        seeds: u32,
        /// First seed (an unsigned integer); defaults to the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Confidence level of the intervals (a fraction from 0.5 to 0.999).
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
        /// Folder for the overlay charts; defaults to
        /// outputs/<scenario name>/diff.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
    },
    /// Run a scenario over a grid of parameter values and seeds, in
    /// parallel, and write sweep.csv and capacity-planning charts.
    Sweep {
        /// Scenario file (YAML); its `sweep:` section, if any, is the default plan.
        scenario: PathBuf,
        /// A parameter and its values: PATH=V1,V2,... or PATH=FROM..TO[:STEP]
        /// (repeatable; replaces the scenario's parameters).
        #[arg(long = "param")]
        params: Vec<String>,
        /// Runs per point, with seeds seed, seed+1, ... (a count).
        #[arg(long)]
        seeds: Option<u32>,
        /// Metrics to report (repeatable), such as fraction_503 or latency_ms_p99.
        #[arg(long = "metric")]
        metrics: Vec<String>,
        /// Worker threads (a count); 0 uses every core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Run only part I of N of the points (I/N) and write a shard file for `merge`.
        #[arg(long)]
        shard: Option<String>,
        /// Output folder; defaults to outputs/<scenario name>-sweep.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Combine the shard files of a sharded sweep into the output one run
    /// would have written.
    Merge {
        /// Shard files (sweep-shard-I-of-N.json).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print the Envoy configuration of a scenario's route and cluster,
    /// with its backend and clients, as one case of the conformance
    /// recording harness (JSON on stdout).
    EnvoyConfig {
        /// Scenario file (YAML) with exactly one route and one backend.
        scenario: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ValidateFormat {
    Human,
    Json,
}

/// Set by the first Ctrl-C: runs and sweeps stop and write what they
/// finished, marked as partial. A second Ctrl-C exits at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Exit status after an interruption, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "\ntrafficsim: interrupted; writing what was finished (Ctrl-C again to quit now)"
        );
    });
    match cli.command {
        Command::Run {
            scenario,
            out,
            seed,
            trace,
            quiet,
        } => run(&scenario, out, seed, trace, quiet),
        Command::Compare {
            scenario,
            variants,
            out,
            seed,
            quiet,
        } => compare(&scenario, &variants, out, seed, quiet),
        Command::Validate {
            paths,
            replicas,
            format,
        } => validate(&paths, replicas, format),
        Command::Check {
            paths,
            junit,
            format,
        } => run_check(&paths, junit.as_deref(), format),
        Command::Diff {
            scenario,
            before,
            after,
            seeds,
            seed,
            confidence,
            out,
            format,
        } => {
            let options = diff::DiffOptions {
                seeds,
                base_seed: seed,
                confidence,
            };
            run_diff(&scenario, &before, after.as_deref(), &options, out, format)
        }
        Command::Sweep {
            scenario,
            params,
            seeds,
            metrics,
            threads,
            shard,
            out,
            quiet,
        } => sweep(
            &scenario,
            &params,
            seeds,
            &metrics,
            threads,
            shard.as_deref(),
            out,
            quiet,
        ),
        Command::Merge { shards, out, quiet } => merge(&shards, &out, quiet),
        Command::EnvoyConfig { scenario } => envoy_config(&scenario),
    }
}

fn envoy_config(path: &std::path::Path) -> ExitCode {
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            return input_error(format!("{} has problems:\n{diagnostics}", path.display()));
        }
    };
    match trafficsim::envoy_config::recording_case(&scenario) {
        Ok(case) => {
            println!("{case:#}");
            ExitCode::SUCCESS
        }
        Err(error) => input_error(format!(
            "{} has no Envoy translation: {error}",
            path.display()
        )),
    }
}

/// Runs above this many requests get a size estimate before they start.
const LARGE_RUN_REQUESTS: u64 = 20_000_000;

/// Prints an estimate of a run's size when it is large, so a long wait is
/// expected rather than mistaken for a hang.
fn warn_if_large(scenario: &scenario::Scenario) {
    let mut total: u64 = 0;
    let mut open_ended = Vec::new();
    for client in &scenario.clients {
        match client.estimated_requests(scenario.duration) {
            Some(requests) => total = total.saturating_add(requests),
            None => open_ended.push(client.name.as_str()),
        }
    }
    if total > LARGE_RUN_REQUESTS {
        eprintln!(
            "trafficsim: note: this run sends about {total} requests{}; expect about {} s at a \
             million requests per second (Ctrl-C stops it and keeps what was done)",
            if open_ended.is_empty() {
                String::new()
            } else {
                format!(" plus those of {}", open_ended.join(", "))
            },
            total / 1_000_000
        );
    }
}

fn input_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("trafficsim: error: {message}");
    ExitCode::from(2)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per command-line option"
)]
fn sweep(
    path: &std::path::Path,
    params: &[String],
    seeds: Option<u32>,
    metrics: &[String],
    threads: usize,
    shard: Option<&str>,
    out: Option<PathBuf>,
    quiet: bool,
) -> ExitCode {
    use trafficsim::sweep::{self, Shard, SweepPlan};
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            return input_error(format!("{} has problems:\n{diagnostics}", path.display()));
        }
    };
    let mut parameters = Vec::new();
    for param in params {
        let parsed = param
            .split_once('=')
            .ok_or_else(|| format!("--param `{param}` must be written PATH=VALUES"))
            .and_then(|(path, values)| {
                let path = trafficsim::overrides::parse_path(path.trim())?;
                let values = if values.contains("..") {
                    scenario::expand_range(values.trim())?
                } else {
                    values.split(',').map(|v| v.trim().to_string()).collect()
                };
                Ok(scenario::Parameter { path, values })
            });
        match parsed {
            Ok(parameter) => parameters.push(parameter),
            Err(message) => return input_error(message),
        }
    }
    let mut chosen = Vec::new();
    for name in metrics {
        match scenario::SweepMetric::from_name(name) {
            Some(metric) => chosen.push(metric),
            None => {
                let known: Vec<&str> = scenario::SweepMetric::ALL
                    .iter()
                    .map(|m| m.name())
                    .collect();
                return input_error(format!(
                    "unknown metric `{name}`; expected one of: {}",
                    known.join(", ")
                ));
            }
        }
    }
    let plan = match SweepPlan::new(&scenario, parameters, seeds, chosen) {
        Ok(plan) => plan,
        Err(message) => return input_error(message),
    };
    let shard = match shard.map(Shard::parse).transpose() {
        Ok(shard) => shard,
        Err(message) => return input_error(message),
    };
    let results = match sweep::run(&plan, shard, threads, Some(&INTERRUPTED)) {
        Ok(results) => results,
        Err(error) => return input_error(error),
    };
    let dir =
        out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("{}-sweep", scenario.name)));
    if let Some(shard) = shard {
        return match sweep::write_shard(&dir, &plan, shard, &results) {
            Ok(file) => {
                if !quiet {
                    println!(
                        "shard {}/{}: {} runs written to {}",
                        shard.index,
                        shard.count,
                        results.len(),
                        file.display()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => input_error(error),
        };
    }
    finish_sweep(&dir, &plan, &results, quiet)
}

fn finish_sweep(
    dir: &std::path::Path,
    plan: &trafficsim::sweep::SweepPlan,
    results: &[trafficsim::sweep::JobResult],
    quiet: bool,
) -> ExitCode {
    if let Err(error) = trafficsim::sweep::write_outputs(dir, plan, results) {
        return input_error(error);
    }
    if results.iter().any(|r| r.truncated) {
        eprintln!(
            "trafficsim: warning: some runs hit a limit and stopped early; see the `truncated` column of sweep.csv"
        );
    }
    if !quiet {
        print!("{}", trafficsim::sweep::human_table(plan, results));
        println!("outputs in {}", dir.display());
    }
    if results.len() < plan.job_count() {
        eprintln!(
            "trafficsim: warning: interrupted; {} of {} runs finished and the outputs are partial",
            results.len(),
            plan.job_count()
        );
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::SUCCESS
}

fn merge(shards: &[PathBuf], out: &std::path::Path, quiet: bool) -> ExitCode {
    match trafficsim::sweep::merge(shards) {
        Ok((plan, results)) => finish_sweep(out, &plan, &results, quiet),
        Err(error) => input_error(error),
    }
}

fn run_diff(
    path: &std::path::Path,
    before: &str,
    after: Option<&str>,
    options: &diff::DiffOptions,
    out: Option<PathBuf>,
    format: ReportFormat,
) -> ExitCode {
    if !(1..=1000).contains(&options.seeds) {
        eprintln!(
            "trafficsim: error: --seeds must be from 1 to 1000, found {}",
            options.seeds
        );
        return ExitCode::from(2);
    }
    if !(0.5..=0.999).contains(&options.confidence) {
        eprintln!(
            "trafficsim: error: --confidence must be from 0.5 to 0.999, found {}",
            options.confidence
        );
        return ExitCode::from(2);
    }
    let before = diff::ManifestSource::parse(before);
    let after = after.map_or(diff::ManifestSource::Scenario, diff::ManifestSource::parse);
    let report = match diff::diff(path, &before, &after, options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("trafficsim: error: {error}");
            return ExitCode::from(2);
        }
    };
    let sides = [
        ("before", &report.before_notes),
        ("after", &report.after_notes),
    ];
    for (side, notes) in sides {
        for note in notes {
            eprintln!("trafficsim: note: {side}: {note}");
        }
    }
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&report.scenario).join("diff"));
    if let Err(error) = diff::write_charts(&dir, &report) {
        eprintln!("trafficsim: error: {error}");
        return ExitCode::from(2);
    }
    match format {
        ReportFormat::Human => {
            write_stdout(&diff::render_human(&report));
            write_stdout(&format!("charts in {}\n", dir.display()));
        }
        ReportFormat::Json => write_stdout(&format!("{:#}\n", diff::render_json(&report))),
    }
    ExitCode::SUCCESS
}

/// Writes `text` to stdout. A closed stdout (`trafficsim check | head`)
/// is not an error worth failing for: the exit code and any `--junit`
/// file still carry the result.
fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn print_problems(path: &std::path::Path, diagnostics: &Diagnostics) {
    eprintln!(
        "trafficsim: error: {} has {} problem{}:",
        path.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    eprintln!("{diagnostics}");
}

fn run_check(paths: &[PathBuf], junit: Option<&std::path::Path>, format: ReportFormat) -> ExitCode {
    let files = match check::scenario_files(paths) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("trafficsim: error: {message}");
            return ExitCode::from(2);
        }
    };
    let mut scenarios = Vec::new();
    let mut bad_input = false;
    for file in &files {
        match scenario::load(file) {
            Ok(scenario) if scenario.expectations.is_empty() => {
                eprintln!(
                    "trafficsim: error: {} has no `expect:` list, so there is nothing to check",
                    file.display()
                );
                bad_input = true;
            }
            Ok(scenario) => scenarios.push(scenario),
            Err(diagnostics) => {
                print_problems(file, &diagnostics);
                bad_input = true;
            }
        }
    }
    if bad_input {
        return ExitCode::from(2);
    }
    let mut results = Vec::new();
    for scenario in &scenarios {
        match check::check_scenario(scenario) {
            Ok(result) => {
                for note in &result.notes {
                    eprintln!("trafficsim: note: {}: {note}", result.name);
                }
                results.push(result);
            }
            Err(diagnostics) => {
                print_problems(&scenario.file, &diagnostics);
                bad_input = true;
            }
        }
    }
    if bad_input {
        return ExitCode::from(2);
    }
    match format {
        ReportFormat::Human => write_stdout(&check::render_human(&results)),
        ReportFormat::Json => write_stdout(&format!("{:#}\n", check::render_json(&results))),
    }
    if let Some(path) = junit {
        let xml = check::render_junit(&results);
        if let Err(error) = report::write_atomic(path, xml.as_bytes()) {
            eprintln!("trafficsim: error: {error}");
            return ExitCode::from(2);
        }
    }
    let failed = results.iter().any(|r| r.failures() > 0);
    ExitCode::from(u8::from(failed))
}

fn run(
    path: &std::path::Path,
    out: Option<PathBuf>,
    seed: Option<u64>,
    trace: bool,
    quiet: bool,
) -> ExitCode {
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            report_problems(path, "", &diagnostics);
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(scenario.seed);
    warn_if_large(&scenario);
    let options = sim::RunOptions {
        record_requests: trace,
        stop: Some(&INTERRUPTED),
    };
    let output = sim::run_with(&scenario, seed, options);
    for note in &output.notes {
        eprintln!("trafficsim: note: {note}");
    }
    if let Some(truncation) = &output.truncated {
        eprintln!("trafficsim: warning: {truncation}");
    }
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&scenario.name));
    if let Err(error) = report::write_run(&dir, &scenario, &output, env!("CARGO_PKG_VERSION")) {
        eprintln!("trafficsim: error: {error}");
        return ExitCode::from(2);
    }
    if trace {
        let path = dir.join("requests.csv");
        let text = report::requests_csv(&scenario, &output);
        if let Err(error) = report::write_atomic(&path, text.as_bytes()) {
            eprintln!("trafficsim: error: {error}");
            return ExitCode::from(2);
        }
    }
    if !quiet {
        print!("{}", report::human_summary(&scenario, &output, &dir));
    }
    if matches!(output.truncated, Some(sim::Truncation::Interrupted(_))) {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::SUCCESS
}

/// Prints every problem of a scenario file to stderr.
fn report_problems(
    path: &std::path::Path,
    what: &str,
    diagnostics: &trafficsim::yaml::Diagnostics,
) {
    eprintln!(
        "trafficsim: error: {what}{} has {} problem{}:",
        path.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    eprintln!("{diagnostics}");
}

fn compare(
    path: &std::path::Path,
    variant_args: &[String],
    out: Option<PathBuf>,
    seed: Option<u64>,
    quiet: bool,
) -> ExitCode {
    let base = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            report_problems(path, "", &diagnostics);
            return ExitCode::from(2);
        }
    };
    let variants = if variant_args.is_empty() {
        base.compare
            .as_ref()
            .map(|spec| spec.variants.clone())
            .unwrap_or_default()
    } else {
        match compare::variants_from_args(variant_args) {
            Ok(variants) => variants,
            Err(message) => {
                eprintln!("trafficsim: error: {message}");
                return ExitCode::from(2);
            }
        }
    };
    if variants.len() < 2 {
        eprintln!(
            "trafficsim: error: compare needs at least two variants, found {}; give them with \
             --variant NAME:PATH=VALUE or in the scenario's `compare.variants`",
            variants.len()
        );
        return ExitCode::from(2);
    }
    let loaded = match compare::load_variants(path, &variants) {
        Ok(loaded) => loaded,
        Err(error) => {
            report_problems(
                path,
                &format!("variant `{}` of ", error.variant),
                &error.diagnostics,
            );
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(base.seed);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = compare::run_variants(loaded, seed, threads);
    for run in &runs {
        for note in &run.output.notes {
            eprintln!("trafficsim: note: variant {}: {note}", run.name);
        }
        if let Some(truncation) = &run.output.truncated {
            eprintln!("trafficsim: warning: variant {}: {truncation}", run.name);
        }
    }
    let summaries: Vec<compare::VariantSummary> = runs.iter().map(compare::summarize).collect();
    let limit_per_s = base.compare.as_ref().and_then(|spec| spec.limit_per_s);
    let dir =
        out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("{}-compare", base.name)));
    let outputs = compare::CompareOutputs {
        dir: &dir,
        scenario_name: &base.name,
        seed,
        limit_per_s,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    if let Err(error) = compare::write_outputs(&outputs, &runs, &summaries) {
        eprintln!("trafficsim: error: {error}");
        return ExitCode::from(2);
    }
    if !quiet {
        println!(
            "compare {} (seed {seed}): {} variants, the same client draws in each",
            base.name,
            runs.len()
        );
        print!("{}", compare::human_table(&summaries, limit_per_s));
        if let Some(limit) = limit_per_s {
            println!("  configured limit {limit:.2} requests/s");
        }
        println!("  outputs in {}", dir.display());
    }
    ExitCode::SUCCESS
}

fn validate(paths: &[PathBuf], replicas: u32, format: ValidateFormat) -> ExitCode {
    let options = trafficsim::validate::ValidateOptions {
        replicas: replicas.max(1),
        ..Default::default()
    };
    let report = trafficsim::validate::validate(paths, &options);
    match format {
        ValidateFormat::Json => {
            let json = trafficsim::validate::render_json(&report);
            println!("{json:#}");
        }
        ValidateFormat::Human => match &report.errors {
            Some(errors) => {
                eprintln!(
                    "trafficsim: error: {} problem{} in the manifests:",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
                eprintln!("{errors}");
            }
            None => print!("{}", trafficsim::validate::render_human(&report)),
        },
    }
    ExitCode::from(report.exit_code())
}
