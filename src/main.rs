//! The `trafficsim` command line: parses arguments, calls the library and
//! maps outcomes to exit codes (0 ok, 1 a check failed, 2 bad input).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use trafficsim::{compare, report, scenario, sim};

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
