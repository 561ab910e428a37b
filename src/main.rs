//! The `trafficsim` command line: parses arguments, calls the library and
//! maps outcomes to exit codes (0 ok, 1 a check failed, 2 bad input).
//! Data goes to stdout; messages go to stderr as `trafficsim: error: ...`,
//! with the chain of causes on the same line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand};

use trafficsim::progress::{self, ProgressLine};
use trafficsim::yaml::Diagnostics;
use trafficsim::{check, compare, diff, report, scenario, sim};

#[derive(Parser)]
#[command(
    name = "trafficsim",
    version,
    about = "Simulate traffic through Envoy Gateway: rate limits, circuit breakers, retries and spend"
)]
struct Cli {
    /// Print only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print the files written and the time taken.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write its summary, time series, charts and
    /// report.html.
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
        /// Also write Envoy's final counters and gauges to FILE in
        /// Prometheus text format, under Envoy's metric names.
        #[arg(long, value_name = "FILE")]
        prometheus: Option<PathBuf>,
        /// Also write the time series to FILE in OpenMetrics text format,
        /// stamped from the scenario's start_time.
        #[arg(long, value_name = "FILE")]
        openmetrics: Option<PathBuf>,
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
        /// Also write the results as a self-contained HTML page to this
        /// file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
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
    },
    /// Print the Envoy configuration of a scenario's route and cluster,
    /// with its backend and clients, as one case of the conformance
    /// recording harness (JSON on stdout).
    EnvoyConfig {
        /// Scenario file (YAML) with exactly one route and one backend.
        scenario: PathBuf,
    },
    /// Write a starter scenario for existing manifests: every route with
    /// its backends, a client per route, TODO marks where traffic and
    /// costs go.
    Init {
        /// Manifest file or folder (searched for *.yaml and *.yml).
        #[arg(long = "from", value_name = "DIR_OR_FILE")]
        from: PathBuf,
        /// Scenario file to write. Without it the scenario goes to stdout,
        /// with manifest paths relative to the current folder.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of scenario files, for editors.
    Schema,
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), for `man -l -`.
    Man {
        /// A subcommand whose own page to print, such as `run`.
        subcommand: Option<String>,
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// How much the command prints besides its data and its errors.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Why a command failed, which decides the exit code.
enum Failure {
    /// A check or policy failed: exit 1.
    Check,
    /// Ctrl-C stopped the work after it wrote what was finished: exit 130,
    /// as shells report SIGINT.
    Interrupted,
    /// Bad input or an output that could not be written: exit 2. The
    /// message has already been printed when `None`.
    Input(Option<anyhow::Error>),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Input(Some(error))
    }
}

/// Set by the first Ctrl-C: runs and sweeps stop and write what they
/// finished, marked as partial. A second Ctrl-C exits at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Exit status after an interruption, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return command_line_error(&error),
    };
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "\ntrafficsim: interrupted; writing what was finished (Ctrl-C again to quit now)"
        );
    });
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            seed,
            trace,
            prometheus,
            openmetrics,
        } => run(&RunArgs {
            path: &scenario,
            out,
            seed,
            trace,
            prometheus,
            openmetrics,
            verbosity,
        }),
        Command::Compare {
            scenario,
            variants,
            out,
            seed,
        } => compare(&scenario, &variants, out, seed, verbosity),
        Command::Validate {
            paths,
            replicas,
            format,
        } => validate(&paths, replicas, format),
        Command::Check {
            paths,
            junit,
            format,
            html,
        } => run_check(&paths, junit.as_deref(), html.as_deref(), format),
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
        Command::Init { from, out, force } => init(&from, out.as_deref(), force, verbosity),
        Command::Schema => print_stdout(&scenario::schema::json_schema_text()),
        Command::Completions { shell } => completions(shell),
        Command::Man { subcommand } => man(subcommand.as_deref()),
        Command::Sweep {
            scenario,
            params,
            seeds,
            metrics,
            threads,
            shard,
            out,
        } => sweep(
            &scenario,
            &params,
            seeds,
            &metrics,
            threads,
            shard.as_deref(),
            out,
            verbosity == Verbosity::Quiet,
        ),
        Command::Merge { shards, out } => merge(&shards, &out, verbosity == Verbosity::Quiet),
        Command::EnvoyConfig { scenario } => envoy_config(&scenario),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Check) => ExitCode::from(1),
        Err(Failure::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(Failure::Input(error)) => {
            if let Some(error) = error {
                print_error(&error);
            }
            ExitCode::from(2)
        }
    }
}

fn envoy_config(path: &std::path::Path) -> Result<(), Failure> {
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => return Err(diagnostics_failure(path, &diagnostics)),
    };
    match trafficsim::envoy_config::recording_case(&scenario) {
        Ok(case) => print_stdout(&format!("{case:#}\n")),
        Err(error) => Err(input_error(format!(
            "{} has no Envoy translation: {error}",
            path.display()
        ))),
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

/// Prints clap's help and version text as they are, and its usage errors
/// as `trafficsim: error: ...` like every other error, with clap's exit
/// code (2 for a usage error).
fn command_line_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    let help_or_version = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if help_or_version {
        let _ = error.print();
        return ExitCode::from(code);
    }
    let rendered = error.render();
    let text = if progress::stderr_color() {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    eprint!("trafficsim: {text}");
    ExitCode::from(code)
}

/// Prints `trafficsim: error: <error>: <cause>: ...` on one line.
fn print_error(error: &anyhow::Error) {
    let label = if progress::stderr_color() {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    eprintln!("trafficsim: {label} {error:#}");
}

fn print_warning(message: &str) {
    let label = if progress::stderr_color() {
        "\x1b[1;33mwarning:\x1b[0m"
    } else {
        "warning:"
    };
    eprintln!("trafficsim: {label} {message}");
}

/// Prints every problem of a file that failed to load, then fails with
/// exit code 2.
fn diagnostics_failure(path: &Path, diagnostics: &trafficsim::yaml::Diagnostics) -> Failure {
    print_error(&anyhow::anyhow!(
        "{} has {} problem{}:",
        path.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    ));
    eprintln!("{diagnostics}");
    Failure::Input(None)
}

/// Writes `text` to standard output. A reader that closed the pipe early,
/// such as `head`, stopped reading on purpose, so that is not an error.
fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => {
            result.context("failed to write to stdout")?;
            Ok(())
        }
    }
}

struct RunArgs<'a> {
    path: &'a Path,
    out: Option<PathBuf>,
    seed: Option<u64>,
    trace: bool,
    prometheus: Option<PathBuf>,
    openmetrics: Option<PathBuf>,
    verbosity: Verbosity,
}

fn run(args: &RunArgs<'_>) -> Result<(), Failure> {
    let started = Instant::now();
    let scenario = match scenario::load(args.path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => return Err(diagnostics_failure(args.path, &diagnostics)),
    };
    let seed = args.seed.unwrap_or(scenario.seed);
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("outputs").join(&scenario.name));
    // Checked before the run, so a folder that cannot take the outputs
    // fails at once instead of after a long simulation.
    report::prepare_output_dir(&dir)
        .with_context(|| format!("failed to write the outputs of {}", scenario.name))?;
    for file in [&args.prometheus, &args.openmetrics].into_iter().flatten() {
        check_parent_folder(file)?;
    }
    if args.verbosity > Verbosity::Quiet {
        warn_if_large(&scenario);
    }
    let options = sim::RunOptions {
        record_requests: args.trace,
        stop: Some(&INTERRUPTED),
    };
    let mut line = ProgressLine::new(args.verbosity > Verbosity::Quiet);
    let output = sim::run_observed(&scenario, seed, options, &mut |progress| {
        // Without a `duration` the run ends when the clients are done, which
        // is not known in advance, so no percentage is shown.
        let fraction = scenario
            .duration
            .map(|_| progress.now.as_secs_f64() / progress.end.as_secs_f64().max(1e-9));
        let detail = format!(
            "{}: {:.0} s simulated, {} events",
            scenario.name,
            progress.now.as_secs_f64(),
            progress.events
        );
        line.update(fraction, &detail);
    });
    line.finish();
    if args.verbosity > Verbosity::Quiet {
        for note in &output.notes {
            eprintln!("trafficsim: note: {note}");
        }
    }
    if let Some(truncation) = &output.truncated {
        print_warning(&truncation.to_string());
    }

    let mut written = report::write_run(&dir, &scenario, &output, env!("CARGO_PKG_VERSION"))
        .with_context(|| format!("failed to write the outputs of {}", scenario.name))?;
    if args.trace {
        let path = dir.join("requests.csv");
        let text = report::requests_csv(&scenario, &output);
        report::write_atomic(&path, text.as_bytes()).map_err(anyhow::Error::new)?;
        written.push(path);
    }
    if let Some(path) = &args.prometheus {
        let text = report::prometheus::prometheus_text(&scenario, &output);
        report::write_atomic(path, text.as_bytes()).map_err(anyhow::Error::new)?;
        written.push(path.clone());
    }
    if let Some(path) = &args.openmetrics {
        let text = report::prometheus::openmetrics_text(&scenario, &output);
        report::write_atomic(path, text.as_bytes()).map_err(anyhow::Error::new)?;
        written.push(path.clone());
    }

    if args.verbosity > Verbosity::Quiet {
        write_stdout(&report::human_summary(&scenario, &output, &dir));
    }
    if args.verbosity == Verbosity::Verbose {
        for path in &written {
            eprintln!("trafficsim: wrote {}", path.display());
        }
        eprintln!(
            "trafficsim: took {:.2} s for {} events",
            started.elapsed().as_secs_f64(),
            output.events
        );
    }
    if matches!(output.truncated, Some(sim::Truncation::Interrupted(_))) {
        return Err(Failure::Interrupted);
    }
    Ok(())
}

/// Fails when the folder for `file` does not exist, so a misspelt output
/// path is reported before a run rather than after it.
fn check_parent_folder(file: &Path) -> Result<(), Failure> {
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => return Ok(()),
    };
    if parent.is_dir() {
        return Ok(());
    }
    Err(input_error(format!(
        "cannot write {}: folder {} does not exist; create it or choose another path",
        file.display(),
        parent.display()
    )))
}

/// Wraps `message` as a bad-input failure (exit 2).
fn input_error(message: impl std::fmt::Display) -> Failure {
    Failure::Input(Some(anyhow::anyhow!("{message}")))
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
) -> Result<(), Failure> {
    use trafficsim::sweep::{self, Shard, SweepPlan};
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => {
            return Err(diagnostics_failure(path, &diagnostics));
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
            Err(message) => return Err(input_error(message)),
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
                return Err(input_error(format!(
                    "unknown metric `{name}`; expected one of: {}",
                    known.join(", ")
                )));
            }
        }
    }
    let plan = match SweepPlan::new(&scenario, parameters, seeds, chosen) {
        Ok(plan) => plan,
        Err(message) => return Err(input_error(message)),
    };
    let shard = match shard.map(Shard::parse).transpose() {
        Ok(shard) => shard,
        Err(message) => return Err(input_error(message)),
    };
    let dir =
        out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("{}-sweep", scenario.name)));
    report::prepare_output_dir(&dir).map_err(anyhow::Error::new)?;
    let results = match sweep::run(&plan, shard, threads, Some(&INTERRUPTED)) {
        Ok(results) => results,
        Err(error) => return Err(anyhow::Error::new(error).into()),
    };
    if let Some(shard) = shard {
        return match sweep::write_shard(&dir, &plan, shard, &results) {
            Ok(file) => {
                if !quiet {
                    write_stdout(&format!(
                        "shard {}/{}: {} runs written to {}\n",
                        shard.index,
                        shard.count,
                        results.len(),
                        file.display()
                    ));
                }
                Ok(())
            }
            Err(error) => Err(anyhow::Error::new(error).into()),
        };
    }
    finish_sweep(&dir, &plan, &results, quiet)
}

fn finish_sweep(
    dir: &std::path::Path,
    plan: &trafficsim::sweep::SweepPlan,
    results: &[trafficsim::sweep::JobResult],
    quiet: bool,
) -> Result<(), Failure> {
    if let Err(error) = trafficsim::sweep::write_outputs(dir, plan, results) {
        return Err(anyhow::Error::new(error).into());
    }
    if results.iter().any(|r| r.truncated) {
        eprintln!(
            "trafficsim: warning: some runs hit a limit and stopped early; see the `truncated` column of sweep.csv"
        );
    }
    if !quiet {
        write_stdout(&trafficsim::sweep::human_table(plan, results));
        write_stdout(&format!("outputs in {}\n", dir.display()));
    }
    if results.len() < plan.job_count() {
        eprintln!(
            "trafficsim: warning: interrupted; {} of {} runs finished and the outputs are partial",
            results.len(),
            plan.job_count()
        );
        return Err(Failure::Interrupted);
    }
    Ok(())
}

fn merge(shards: &[PathBuf], out: &std::path::Path, quiet: bool) -> Result<(), Failure> {
    match trafficsim::sweep::merge(shards) {
        Ok((plan, results)) => finish_sweep(out, &plan, &results, quiet),
        Err(error) => Err(anyhow::Error::new(error).into()),
    }
}

fn compare(
    path: &std::path::Path,
    variant_args: &[String],
    out: Option<PathBuf>,
    seed: Option<u64>,
    verbosity: Verbosity,
) -> Result<(), Failure> {
    let base = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(diagnostics) => return Err(diagnostics_failure(path, &diagnostics)),
    };
    let variants = if variant_args.is_empty() {
        base.compare
            .as_ref()
            .map(|spec| spec.variants.clone())
            .unwrap_or_default()
    } else {
        match compare::variants_from_args(variant_args) {
            Ok(variants) => variants,
            Err(message) => return Err(input_error(message)),
        }
    };
    if variants.len() < 2 {
        return Err(input_error(format!(
            "compare needs at least two variants, found {}; give them with \
             --variant NAME:PATH=VALUE or in the scenario's `compare.variants`",
            variants.len()
        )));
    }
    let loaded = match compare::load_variants(path, &variants) {
        Ok(loaded) => loaded,
        Err(error) => {
            print_error(&anyhow::anyhow!(
                "variant `{}` of {} has {} problem{}:",
                error.variant,
                path.display(),
                error.diagnostics.len(),
                if error.diagnostics.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
            eprintln!("{}", error.diagnostics);
            return Err(Failure::Input(None));
        }
    };
    let seed = seed.unwrap_or(base.seed);
    let dir =
        out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("{}-compare", base.name)));
    report::prepare_output_dir(&dir).map_err(anyhow::Error::new)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = compare::run_variants(loaded, seed, threads);
    for run in &runs {
        if verbosity > Verbosity::Quiet {
            for note in &run.output.notes {
                eprintln!("trafficsim: note: variant {}: {note}", run.name);
            }
        }
        if let Some(truncation) = &run.output.truncated {
            print_warning(&format!("variant {}: {truncation}", run.name));
        }
    }
    let summaries: Vec<compare::VariantSummary> = runs.iter().map(compare::summarize).collect();
    let limit_per_s = base.compare.as_ref().and_then(|spec| spec.limit_per_s);
    let outputs = compare::CompareOutputs {
        dir: &dir,
        scenario_name: &base.name,
        seed,
        limit_per_s,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    compare::write_outputs(&outputs, &runs, &summaries).map_err(anyhow::Error::new)?;
    if verbosity > Verbosity::Quiet {
        write_stdout(&format!(
            "compare {} (seed {seed}): {} variants, the same client draws in each\n",
            base.name,
            runs.len()
        ));
        write_stdout(&compare::human_table(&summaries, limit_per_s));
        if let Some(limit) = limit_per_s {
            write_stdout(&format!("  configured limit {limit:.2} requests/s\n"));
        }
        write_stdout(&format!("  outputs in {}\n", dir.display()));
    }
    Ok(())
}

fn run_diff(
    path: &std::path::Path,
    before: &str,
    after: Option<&str>,
    options: &diff::DiffOptions,
    out: Option<PathBuf>,
    format: ReportFormat,
) -> Result<(), Failure> {
    if !(1..=1000).contains(&options.seeds) {
        return Err(input_error(format!(
            "--seeds must be from 1 to 1000, found {}",
            options.seeds
        )));
    }
    if !(0.5..=0.999).contains(&options.confidence) {
        return Err(input_error(format!(
            "--confidence must be from 0.5 to 0.999, found {}",
            options.confidence
        )));
    }
    if let Some(dir) = &out {
        report::prepare_output_dir(dir).map_err(anyhow::Error::new)?;
    }
    let before = diff::ManifestSource::parse(before);
    let after = after.map_or(diff::ManifestSource::Scenario, diff::ManifestSource::parse);
    let report = match diff::diff(path, &before, &after, options) {
        Ok(report) => report,
        Err(error) => return Err(anyhow::Error::new(error).into()),
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
    diff::write_charts(&dir, &report).map_err(anyhow::Error::new)?;
    match format {
        ReportFormat::Human => {
            write_stdout(&diff::render_human(&report));
            write_stdout(&format!("charts in {}\n", dir.display()));
        }
        ReportFormat::Json => write_stdout(&format!("{:#}\n", diff::render_json(&report))),
    }
    Ok(())
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
    let _ = diagnostics_failure(path, diagnostics);
}

fn run_check(
    paths: &[PathBuf],
    junit: Option<&std::path::Path>,
    html: Option<&std::path::Path>,
    format: ReportFormat,
) -> Result<(), Failure> {
    let files = match check::scenario_files(paths) {
        Ok(files) => files,
        Err(message) => return Err(input_error(message)),
    };
    let mut scenarios = Vec::new();
    let mut bad_input = false;
    for file in &files {
        match scenario::load(file) {
            Ok(scenario) if scenario.expectations.is_empty() => {
                print_error(&anyhow::anyhow!(
                    "{} has no `expect:` list, so there is nothing to check",
                    file.display()
                ));
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
        return Err(Failure::Input(None));
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
        return Err(Failure::Input(None));
    }
    match format {
        ReportFormat::Human => write_stdout(&check::render_human(&results)),
        ReportFormat::Json => write_stdout(&format!("{:#}\n", check::render_json(&results))),
    }
    if let Some(path) = junit {
        let xml = check::render_junit(&results);
        report::write_atomic(path, xml.as_bytes()).map_err(anyhow::Error::new)?;
    }
    if let Some(path) = html {
        let page = report::html::check_page(&results);
        report::write_atomic(path, page.as_bytes()).map_err(anyhow::Error::new)?;
    }
    if results.iter().any(|r| r.failures() > 0) {
        return Err(Failure::Check);
    }
    Ok(())
}

fn validate(paths: &[PathBuf], replicas: u32, format: ValidateFormat) -> Result<(), Failure> {
    let options = trafficsim::validate::ValidateOptions {
        replicas: replicas.max(1),
        ..Default::default()
    };
    let report = trafficsim::validate::validate(paths, &options);
    match format {
        ValidateFormat::Json => {
            let json = trafficsim::validate::render_json(&report);
            print_stdout(&format!("{json:#}\n"))?;
        }
        ValidateFormat::Human => match &report.errors {
            Some(errors) => {
                print_error(&anyhow::anyhow!(
                    "{} problem{} in the manifests:",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ));
                eprintln!("{errors}");
            }
            None => print_stdout(&trafficsim::validate::render_human(&report))?,
        },
    }
    match report.exit_code() {
        0 => Ok(()),
        1 => Err(Failure::Check),
        _ => Err(Failure::Input(None)),
    }
}

fn init(from: &Path, out: Option<&Path>, force: bool, verbosity: Verbosity) -> Result<(), Failure> {
    let scenario_path = out.unwrap_or(Path::new("scenario.yaml"));
    let text = match trafficsim::init::starter_scenario(from, scenario_path) {
        Ok(text) => text,
        Err(trafficsim::init::InitError::Manifests(diagnostics)) => {
            return Err(diagnostics_failure(from, &diagnostics));
        }
        Err(error) => return Err(anyhow::Error::new(error).into()),
    };
    let Some(out) = out else {
        return print_stdout(&text);
    };
    if out.exists() && !force {
        return Err(anyhow::anyhow!(
            "{} already exists; pass --force to replace it",
            out.display()
        )
        .into());
    }
    report::write_atomic(out, text.as_bytes()).map_err(anyhow::Error::new)?;
    if verbosity > Verbosity::Quiet {
        eprintln!(
            "trafficsim: wrote {}; fill in the TODO marks, then run `trafficsim run {}`",
            out.display(),
            out.display()
        );
    }
    Ok(())
}

fn completions(shell: Shell) -> Result<(), Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "trafficsim", &mut script);
    print_stdout(&String::from_utf8_lossy(&script))
}

fn man(subcommand: Option<&str>) -> Result<(), Failure> {
    let mut command = Cli::command();
    command.build();
    let mut title = "trafficsim".to_string();
    if let Some(name) = subcommand {
        let Some(found) = command.find_subcommand(name) else {
            let names: Vec<String> = command
                .get_subcommands()
                .map(|s| s.get_name().to_string())
                .collect();
            return Err(input_error(format!(
                "no subcommand `{name}`; expected one of: {}",
                names.join(", ")
            )));
        };
        let found = found.clone();
        title = format!("trafficsim-{name}");
        command = found;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .title(title)
        .render(&mut page)
        .context("failed to render the manual page")?;
    print_stdout(&String::from_utf8_lossy(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
