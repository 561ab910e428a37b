//! The `trafficsim` command line: parses arguments, calls the library and
//! maps outcomes to exit codes (0 ok, 1 a check failed, 2 bad input).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use trafficsim::{report, scenario, sim};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario,
            out,
            seed,
            trace,
            quiet,
        } => run(&scenario, out, seed, trace, quiet),
        Command::Validate {
            paths,
            replicas,
            format,
        } => validate(&paths, replicas, format),
        Command::EnvoyConfig { scenario } => envoy_config(&scenario),
    }
}

fn load_scenario(path: &std::path::Path) -> Option<scenario::Scenario> {
    match scenario::load(path) {
        Ok(scenario) => Some(scenario),
        Err(diagnostics) => {
            eprintln!(
                "trafficsim: error: {} has {} problem{}:",
                path.display(),
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            eprintln!("{diagnostics}");
            None
        }
    }
}

fn envoy_config(path: &std::path::Path) -> ExitCode {
    let Some(scenario) = load_scenario(path) else {
        return ExitCode::from(2);
    };
    match trafficsim::envoy_config::recording_case(&scenario) {
        Ok(case) => {
            println!("{case:#}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "trafficsim: error: {} has no Envoy translation: {error}",
                path.display()
            );
            ExitCode::from(2)
        }
    }
}

fn run(
    path: &std::path::Path,
    out: Option<PathBuf>,
    seed: Option<u64>,
    trace: bool,
    quiet: bool,
) -> ExitCode {
    let Some(scenario) = load_scenario(path) else {
        return ExitCode::from(2);
    };
    let seed = seed.unwrap_or(scenario.seed);
    let options = sim::RunOptions {
        record_requests: trace,
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
