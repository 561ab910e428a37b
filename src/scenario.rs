//! Scenario files: the workload, the topology and the manifests of one run.
//!
//! [`load`] reads a scenario YAML file, the manifests and traces it names
//! (relative to the scenario file), and returns a validated [`Scenario`]:
//! every duration an integer [`SimDuration`], every count checked, every
//! client expanded. All problems of a file are reported together. The
//! format is documented in `docs/scenario-format.md`; this module and that
//! page change together.

mod backend;
mod client;
mod expect;
mod rate_limit_mode;
mod rate_limit_service;
pub mod schema;
mod sweep;
mod trace;
mod variants;

pub use backend::{BackendWindow, EndpointFailure, Overload};
pub use client::{
    BackoffKind, ClientKind, ClientRetries, ClientSpec, Connection, OpenArrival, RequestTemplate,
};
pub use expect::{Bound, Expectation, Metric, Scope, StatusMatch, Window};
pub use rate_limit_mode::RateLimitMode;
pub use rate_limit_service::{Fault, FaultKind, RateLimitServiceSpec, RedisSpec};
pub use sweep::{
    DEFAULT_METRICS, Goal, MAX_SEEDS, Parameter, SweepMetric, SweepSpec, expand_range,
};
pub use trace::{TraceColumns, TraceRow, parse_trace, read_trace};
pub use variants::{
    CompareSpec, Variant, is_valid_name as is_valid_variant_name, parse_cli_override,
};

use std::path::{Path, PathBuf};

use crate::dist::{self, Dist, Quantity};
use crate::gateway::GatewayModel;
use crate::local_rate_limit::RefillModel;
use crate::manifest;
use crate::overrides::{self, Override, Target};
use crate::time::SimDuration;
use crate::yaml::{self, Diagnostics, Node, Value};

/// A validated scenario, ready to simulate.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The scenario file, for messages and for resolving relative paths.
    pub file: PathBuf,
    pub seed: u64,
    /// Simulated time after which the run stops; `None` runs until every
    /// client has finished.
    pub duration: Option<SimDuration>,
    /// Wall-clock Unix time (seconds) at simulated time zero.
    pub start_unix_s: u64,
    pub envoy: EnvoySpec,
    pub backends: Vec<BackendSpec>,
    pub clients: Vec<ClientSpec>,
    pub gateway: GatewayModel,
    /// The rate limit service and Redis behind global rate limits.
    pub rate_limit_service: RateLimitServiceSpec,
    /// Set when every policy's rate limit was rewritten to this mode.
    pub rate_limit_mode: Option<RateLimitMode>,
    /// Variants for `trafficsim compare`, from the `compare:` section.
    pub compare: Option<CompareSpec>,
    /// Manifest paths read, as written, for the run manifest.
    pub manifest_sources: Vec<String>,
    /// The manifest files and folders the scenario names, resolved against
    /// its folder (before any [`ManifestOverride`]).
    pub manifest_paths: Vec<PathBuf>,
    pub output: OutputSpec,
    pub limits: Limits,
    /// Parameters `trafficsim sweep` varies, when the file defines them.
    pub sweep: Option<SweepSpec>,
    /// The `expect:` list, in file order; empty when the file has none.
    pub expectations: Vec<Expectation>,
}

/// Manifests read in place of the ones the scenario names, to run the same
/// traffic against another set of policies (`trafficsim diff`).
#[derive(Clone, Debug)]
pub enum ManifestOverride {
    /// The objects of these files and folders replace every
    /// BackendTrafficPolicy of the scenario's manifests. Their Gateways and
    /// routes replace the scenario's objects of the same kind, namespace
    /// and name, or are added.
    Replace(Vec<PathBuf>),
    /// Each manifest path of the scenario, which must lie under `from`, is
    /// read at the same relative place under `to` instead: the same files
    /// as another version of the repository has them.
    Reroot {
        from: PathBuf,
        to: PathBuf,
        /// Names that version in messages, such as `git:HEAD~1`.
        label: String,
    },
}

/// Options of [`load_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub manifests: Option<ManifestOverride>,
}

/// The Envoy fleet: replicas, workers and how clients reach them.
#[derive(Clone, Debug)]
pub struct EnvoySpec {
    pub replicas: u32,
    /// Worker threads per replica; each has its own upstream connection
    /// pools and load-balancer state.
    pub workers: u32,
    pub spread: Spread,
    pub token_bucket: RefillModel,
    /// One-way network latency between a client and Envoy.
    pub client_latency: SimDuration,
    /// One-way network latency between Envoy and a backend endpoint.
    pub upstream_latency: SimDuration,
    /// Time to open an upstream TCP connection.
    pub connect_time: SimDuration,
    /// Envoy's cluster `update_merge_window`: how long host health changes
    /// may wait before reaching the workers' load balancers.
    pub update_merge_window: SimDuration,
    /// Replaces every local rate limit's LRU capacity for per-value
    /// buckets (Envoy's route-level `max_dynamic_descriptors`, which Envoy
    /// Gateway leaves at Envoy's default of 20).
    pub max_dynamic_descriptors: Option<usize>,
}

/// How requests are spread over Envoy replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// Each request goes to the next replica in turn.
    RoundRobin,
    /// Each request goes to a replica drawn at random.
    Random,
    /// Each client keeps one replica for its whole life, as a Kubernetes
    /// Service does for a client with keep-alive connections.
    Sticky,
}

impl Spread {
    pub fn name(self) -> &'static str {
        match self {
            Spread::RoundRobin => "round-robin",
            Spread::Random => "random",
            Spread::Sticky => "sticky",
        }
    }
}

/// One backend Service and its endpoints.
#[derive(Clone, Debug)]
pub struct BackendSpec {
    /// Matches `backendRefs[].name` of the HTTPRoutes.
    pub name: String,
    pub namespace: String,
    pub endpoints: u32,
    /// Requests one endpoint serves at once; more wait in its queue.
    pub concurrency: u32,
    /// Seconds.
    pub service_time: Dist,
    /// Added to the service time for each output token of a request, as an
    /// LLM generates tokens one after another.
    pub per_output_token: SimDuration,
    pub errors: Vec<ErrorResponse>,
    pub cost: CostModel,
    /// Windows of changed behaviour, in the order written.
    pub schedule: Vec<BackendWindow>,
    pub overload: Option<Overload>,
    /// Attempts one endpoint keeps waiting when all its `concurrency` slots
    /// are busy; `None` is unbounded. An attempt that finds the queue full
    /// is answered with `queue_full_status` at once.
    pub queue_capacity: Option<u32>,
    pub queue_full_status: u16,
}

/// A share of requests answered with an error status.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    pub status: u16,
    pub probability: f64,
    /// Sent as the `retry-after` header of these responses.
    pub retry_after: Option<SimDuration>,
}

/// What one request reaching the backend costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostModel {
    pub per_request_usd: f64,
    pub input_usd_per_million: f64,
    pub output_usd_per_million: f64,
}

impl CostModel {
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.per_request_usd
            + input_tokens as f64 * self.input_usd_per_million / 1e6
            + output_tokens as f64 * self.output_usd_per_million / 1e6
    }

    pub fn is_free(&self) -> bool {
        self.per_request_usd == 0.0
            && self.input_usd_per_million == 0.0
            && self.output_usd_per_million == 0.0
    }
}

#[derive(Clone, Debug)]
pub struct OutputSpec {
    /// Width of one time-series bucket.
    pub bucket: SimDuration,
}

/// Bounds that stop a run which would otherwise not end or not fit.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_events: u64,
    pub max_in_flight: u64,
    /// Used when the scenario gives no `duration`.
    pub max_duration: SimDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 2_000_000_000,
            max_in_flight: 1_000_000,
            max_duration: SimDuration::from_secs(7 * 86_400),
        }
    }
}

/// 2026-01-01T00:00:00Z, the default wall-clock start.
pub const DEFAULT_START_UNIX_S: u64 = 1_767_225_600;

/// Reads and validates a scenario file and everything it references.
pub fn load(path: &Path) -> Result<Scenario, Diagnostics> {
    load_with(path, &[])
}

/// Like [`load`], with fields of the scenario or of its manifest objects
/// set to other values first.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Scenario, Diagnostics> {
    load_with_options(path, overrides, &LoadOptions::default())
}

/// Like [`load_with`], with the manifests also changed as `options` sets.
pub fn load_with_options(
    path: &Path,
    overrides: &[Override],
    options: &LoadOptions,
) -> Result<Scenario, Diagnostics> {
    let documents = yaml::load_file(path)?;
    read_documents(documents, path, overrides, options)
}

/// Reads a scenario from text; `path` names it in diagnostics and anchors
/// the relative paths it contains.
pub fn parse_str(text: &str, path: &Path) -> Result<Scenario, Diagnostics> {
    let documents = yaml::parse_str(text, path)?;
    read_documents(documents, path, &[], &LoadOptions::default())
}

fn read_documents(
    mut documents: Vec<yaml::Document>,
    path: &Path,
    overrides: &[Override],
    options: &LoadOptions,
) -> Result<Scenario, Diagnostics> {
    let mut diagnostics = Diagnostics::for_file(path);
    let Some(document) = documents.first().cloned() else {
        diagnostics.error_at(
            yaml::Location { line: 1, column: 1 },
            "",
            "scenario file is empty; start from `trafficsim init --from MANIFESTS` or a \
             scenario under scenarios/",
        );
        return Err(diagnostics);
    };
    if documents.len() > 1 {
        diagnostics.error(
            &documents[1].root,
            "a scenario file holds one document; put manifests in their own files",
        );
    }
    let mut root = document.root.clone();
    for over in overrides
        .iter()
        .filter(|o| o.path.target == Target::Scenario)
    {
        if let Err(message) =
            overrides::set(&mut root, &over.path.segments, &over.value, &over.path.text)
        {
            diagnostics.error(&root, message);
        }
    }
    documents.clear();
    let object_overrides: Vec<&Override> = overrides
        .iter()
        .filter(|o| o.path.target != Target::Scenario)
        .collect();
    let scenario = read_scenario(&root, path, &object_overrides, options, &mut diagnostics);
    match scenario {
        Some(scenario) if diagnostics.is_empty() => Ok(scenario),
        _ => {
            diagnostics.sort();
            Err(diagnostics)
        }
    }
}

fn read_scenario(
    root: &Node,
    path: &Path,
    object_overrides: &[&Override],
    options: &LoadOptions,
    diagnostics: &mut Diagnostics,
) -> Option<Scenario> {
    let fields = root.fields(diagnostics, &schema::SCENARIO.names())?;
    let default_name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".to_string());
    let name = match fields.get("name") {
        Some(node) => read_name(node, diagnostics).unwrap_or(default_name),
        None => default_name,
    };
    let description = fields
        .get("description")
        .and_then(|node| node.string(diagnostics))
        .unwrap_or_default();
    let seed = fields
        .get("seed")
        .and_then(|n| n.u64(diagnostics))
        .unwrap_or(1);
    let duration = fields.get("duration").and_then(|node| {
        let duration = node.duration(diagnostics)?;
        if duration.is_zero() {
            diagnostics.error(
                node,
                "duration must be longer than zero; leave it out to run until every client is done",
            );
            return None;
        }
        Some(duration)
    });
    let start_unix_s = match fields.get("start_time") {
        Some(node) => read_start_time(node, diagnostics).unwrap_or(DEFAULT_START_UNIX_S),
        None => DEFAULT_START_UNIX_S,
    };
    let envoy = match fields.get("envoy") {
        Some(node) => read_envoy(node, diagnostics),
        None => Some(default_envoy()),
    };
    let output = match fields.get("output") {
        Some(node) => read_output(node, diagnostics),
        None => Some(OutputSpec {
            bucket: SimDuration::from_secs(1),
        }),
    };
    let limits = match fields.get("limits") {
        Some(node) => read_limits(node, diagnostics),
        None => Some(Limits::default()),
    };
    let rate_limit_service = match fields.get("rate_limit_service") {
        Some(node) => rate_limit_service::read(node, diagnostics),
        None => Some(RateLimitServiceSpec::default()),
    };
    let rate_limit_mode = match fields.get("rate_limit_mode") {
        Some(node) => match node.one_of(diagnostics, &["local", "global"]) {
            Some("local") => Some(Some(RateLimitMode::Local)),
            Some(_) => Some(Some(RateLimitMode::Global)),
            None => None,
        },
        None => Some(None),
    };
    let compare = match fields.get("compare") {
        Some(node) => variants::read_compare(node, diagnostics).map(Some),
        None => Some(None),
    };
    let sweep = match fields.get("sweep") {
        Some(node) => sweep::read_sweep(node, diagnostics).map(Some),
        None => Some(None),
    };

    let backends = fields
        .require("backends", diagnostics)
        .and_then(|node| read_backends(node, diagnostics));
    let clients = fields
        .require("clients", diagnostics)
        .and_then(|node| client::read_clients(node, path, diagnostics));

    let mut manifest_sources = Vec::new();
    let gateway = match (fields.require("manifests", diagnostics), rate_limit_mode) {
        (Some(node), Some(mode)) => {
            let edits = ManifestEdits {
                overrides: object_overrides,
                mode,
                replacement: options.manifests.as_ref(),
            };
            read_manifests(node, path, &edits, &mut manifest_sources, diagnostics)
        }
        _ => None,
    };
    let manifest_paths = written_manifest_paths(root, path);
    let expectations = match fields.get("expect") {
        Some(node) => {
            let context = expect::Context {
                clients: clients.as_deref(),
                gateway: gateway.as_ref(),
                replicas: envoy.as_ref().map(|e| e.replicas),
                bucket: output.as_ref().map(|o| o.bucket),
                duration,
            };
            expect::read_expectations(node, &context, diagnostics)
        }
        None => Some(Vec::new()),
    };

    let (envoy, output, limits, sweep) = (envoy?, output?, limits?, sweep?);
    let (rate_limit_service, rate_limit_mode, compare) =
        (rate_limit_service?, rate_limit_mode?, compare?);
    let expectations = expectations?;
    let (backends, clients, gateway) = (backends?, clients?, gateway?);
    check_backend_references(&gateway, &backends, root, diagnostics);
    check_endless_clients(&clients, duration, root, diagnostics);
    Some(Scenario {
        name,
        description,
        file: path.to_path_buf(),
        seed,
        duration,
        start_unix_s,
        envoy,
        backends,
        clients,
        gateway,
        rate_limit_service,
        rate_limit_mode,
        compare,
        manifest_sources,
        manifest_paths,
        output,
        limits,
        sweep,
        expectations,
    })
}

/// Names become folder names under `outputs/`, so they are restricted.
fn read_name(node: &Node, diagnostics: &mut Diagnostics) -> Option<String> {
    let name = node.string(diagnostics)?;
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !valid {
        diagnostics.error(
            node,
            format!(
                "name `{name}` is used as a folder name: use letters, digits, `-`, `_` and `.`, \
                 not starting with `.`"
            ),
        );
        return None;
    }
    Some(name)
}

fn default_envoy() -> EnvoySpec {
    EnvoySpec {
        replicas: 1,
        workers: 2,
        spread: Spread::RoundRobin,
        token_bucket: RefillModel::Continuous,
        client_latency: SimDuration::from_micros(200),
        upstream_latency: SimDuration::from_micros(100),
        connect_time: SimDuration::ZERO,
        update_merge_window: SimDuration::from_secs(1),
        max_dynamic_descriptors: None,
    }
}

fn read_envoy(node: &Node, diagnostics: &mut Diagnostics) -> Option<EnvoySpec> {
    let fields = node.fields(diagnostics, &schema::ENVOY.names())?;
    let mut envoy = default_envoy();
    if let Some(n) = fields.get("replicas") {
        envoy.replicas = positive_count(n, "replicas", 10_000, diagnostics)?;
    }
    if let Some(n) = fields.get("workers") {
        envoy.workers = positive_count(n, "workers", 1_024, diagnostics)?;
    }
    if let Some(n) = fields.get("spread") {
        envoy.spread = match n.one_of(diagnostics, &["round-robin", "random", "sticky"])? {
            "round-robin" => Spread::RoundRobin,
            "random" => Spread::Random,
            _ => Spread::Sticky,
        };
    }
    if let Some(n) = fields.get("token_bucket") {
        envoy.token_bucket = match n.one_of(diagnostics, &["continuous", "timer"])? {
            "timer" => RefillModel::Timer,
            _ => RefillModel::Continuous,
        };
    }
    if let Some(n) = fields.get("client_latency") {
        envoy.client_latency = n.duration(diagnostics)?;
    }
    if let Some(n) = fields.get("upstream_latency") {
        envoy.upstream_latency = n.duration(diagnostics)?;
    }
    if let Some(n) = fields.get("connect_time") {
        envoy.connect_time = n.duration(diagnostics)?;
    }
    if let Some(n) = fields.get("update_merge_window") {
        envoy.update_merge_window = n.duration(diagnostics)?;
    }
    if let Some(n) = fields.get("max_dynamic_descriptors") {
        envoy.max_dynamic_descriptors =
            Some(positive_count(n, "max_dynamic_descriptors", 10_000_000, diagnostics)? as usize);
    }
    Some(envoy)
}

/// An integer from 1 to `max`, with a message naming the field.
pub(crate) fn positive_count(
    node: &Node,
    what: &str,
    max: i64,
    diagnostics: &mut Diagnostics,
) -> Option<u32> {
    let value = node.i64(diagnostics)?;
    if value < 1 || value > max {
        diagnostics.error(
            node,
            format!("{what} must be from 1 to {max}, found {value}"),
        );
        return None;
    }
    Some(value as u32)
}

fn read_output(node: &Node, diagnostics: &mut Diagnostics) -> Option<OutputSpec> {
    let fields = node.fields(diagnostics, &schema::OUTPUT.names())?;
    let mut output = OutputSpec {
        bucket: SimDuration::from_secs(1),
    };
    if let Some(n) = fields.get("bucket") {
        let bucket = n.duration(diagnostics)?;
        if bucket < SimDuration::from_millis(1) {
            diagnostics.error(n, "bucket must be at least 1ms");
            return None;
        }
        output.bucket = bucket;
    }
    Some(output)
}

fn read_limits(node: &Node, diagnostics: &mut Diagnostics) -> Option<Limits> {
    let fields = node.fields(diagnostics, &schema::LIMITS.names())?;
    let mut limits = Limits::default();
    if let Some(n) = fields.get("max_events") {
        limits.max_events = n.u64(diagnostics)?;
    }
    if let Some(n) = fields.get("max_in_flight") {
        limits.max_in_flight = n.u64(diagnostics)?;
    }
    if let Some(n) = fields.get("max_duration") {
        limits.max_duration = n.duration(diagnostics)?;
    }
    Some(limits)
}

/// Reads `start_time`: an RFC 3339 UTC instant such as
/// `2026-01-01T00:00:00Z`, or whole Unix seconds.
fn read_start_time(node: &Node, diagnostics: &mut Diagnostics) -> Option<u64> {
    let text = node.str(diagnostics)?;
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(seconds);
    }
    match parse_rfc3339_utc(text) {
        Some(seconds) => Some(seconds),
        None => {
            diagnostics.error(
                node,
                format!(
                    "expected a UTC time such as `2026-01-01T00:00:00Z` or Unix seconds, \
                     found `{text}`"
                ),
            );
            None
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to whole Unix seconds
/// (the fraction is dropped); `None` for anything else.
pub fn parse_rfc3339_utc(text: &str) -> Option<u64> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let time = time.split('.').next()?;
    let mut time_parts = time.split(':');
    let hour: u64 = time_parts.next()?.parse().ok()?;
    let minute: u64 = time_parts.next()?.parse().ok()?;
    let second: u64 = time_parts.next()?.parse().ok()?;
    if date_parts.next().is_some() || time_parts.next().is_some() {
        return None;
    }
    // Four-digit years only: they keep the arithmetic below in range.
    if !(0..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known civil-to-days formula).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn read_backends(node: &Node, diagnostics: &mut Diagnostics) -> Option<Vec<BackendSpec>> {
    let items = node.seq(diagnostics)?;
    if items.is_empty() {
        diagnostics.error(node, "backends must list at least one backend");
        return None;
    }
    let mut backends = Vec::new();
    let mut ok = true;
    for item in items {
        match read_backend(item, diagnostics) {
            Some(backend) => {
                if backends.iter().any(|b: &BackendSpec| {
                    b.name == backend.name && b.namespace == backend.namespace
                }) {
                    diagnostics.error(item, format!("backend `{}` is defined twice", backend.name));
                    ok = false;
                }
                backends.push(backend);
            }
            None => ok = false,
        }
    }
    ok.then_some(backends)
}

fn read_backend(node: &Node, diagnostics: &mut Diagnostics) -> Option<BackendSpec> {
    let fields = node.fields(diagnostics, &schema::BACKEND.names())?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| n.string(diagnostics));
    let namespace = fields
        .get("namespace")
        .and_then(|n| n.string(diagnostics))
        .unwrap_or_else(|| "default".to_string());
    let endpoints = match fields.get("endpoints") {
        Some(n) => positive_count(n, "endpoints", 100_000, diagnostics),
        None => Some(1),
    };
    let concurrency = match fields.get("concurrency") {
        Some(n) => positive_count(n, "concurrency", 1_000_000, diagnostics),
        None => Some(1_000),
    };
    let service_time = match fields.get("service_time") {
        Some(n) => dist::read(n, Quantity::Seconds, diagnostics),
        None => Some(Dist::Constant(0.001)),
    };
    let per_output_token = fields
        .get("per_output_token")
        .map_or(Some(SimDuration::ZERO), |n| n.duration(diagnostics));
    let errors = match fields.get("errors") {
        Some(n) => read_errors(n, diagnostics),
        None => Some(Vec::new()),
    };
    let cost = match fields.get("cost") {
        Some(n) => read_cost(n, diagnostics),
        None => Some(CostModel::default()),
    };
    let schedule = match fields.get("schedule") {
        Some(n) => backend::read_schedule(n, endpoints, diagnostics),
        None => Some(Vec::new()),
    };
    let overload = match fields.get("overload") {
        Some(n) => backend::read_overload(n, diagnostics).map(Some),
        None => Some(None),
    };
    let queue_capacity = match fields.get("queue_capacity") {
        Some(n) => n
            .int_in(diagnostics, 0, i64::from(u32::MAX))
            .map(|v| Some(v as u32)),
        None => Some(None),
    };
    let queue_full_status = match fields.get("queue_full_status") {
        Some(n) => n.int_in(diagnostics, 100, 599).map(|v| v as u16),
        None => Some(503),
    };
    Some(BackendSpec {
        name: name?,
        namespace,
        endpoints: endpoints?,
        concurrency: concurrency?,
        service_time: service_time?,
        per_output_token: per_output_token?,
        errors: errors?,
        cost: cost?,
        schedule: schedule?,
        overload: overload?,
        queue_capacity: queue_capacity?,
        queue_full_status: queue_full_status?,
    })
}

fn read_errors(node: &Node, diagnostics: &mut Diagnostics) -> Option<Vec<ErrorResponse>> {
    let mut errors = Vec::new();
    let mut total = 0.0;
    for item in node.seq(diagnostics)? {
        let fields = item.fields(diagnostics, &schema::ERROR_RESPONSE.names())?;
        let status = fields
            .require("status", diagnostics)
            .and_then(|n| n.int_in(diagnostics, 100, 599));
        let probability = fields
            .require("probability", diagnostics)
            .and_then(|n| n.f64_in(diagnostics, 0.0, 1.0));
        let retry_after = match fields.get("retry_after") {
            Some(n) => Some(Some(n.duration(diagnostics)?)),
            None => Some(None),
        };
        let (status, probability, retry_after) = (status?, probability?, retry_after?);
        total += probability;
        errors.push(ErrorResponse {
            status: status as u16,
            probability,
            retry_after,
        });
    }
    if total > 1.0 + 1e-9 {
        diagnostics.error(
            node,
            format!("error probabilities add up to {total}, more than 1"),
        );
        return None;
    }
    Some(errors)
}

fn read_cost(node: &Node, diagnostics: &mut Diagnostics) -> Option<CostModel> {
    let fields = node.fields(diagnostics, &schema::COST.names())?;
    let mut read = |key: &str| match fields.get(key) {
        Some(n) => n.f64_in(diagnostics, 0.0, 1e12),
        None => Some(0.0),
    };
    Some(CostModel {
        per_request_usd: read("per_request_usd")?,
        input_usd_per_million: read("input_usd_per_million")?,
        output_usd_per_million: read("output_usd_per_million")?,
    })
}

/// What is changed in the manifests before they are read: object
/// overrides, then the rate limit mode.
struct ManifestEdits<'a> {
    overrides: &'a [&'a Override],
    mode: Option<RateLimitMode>,
    /// Manifests read in place of the scenario's, for `trafficsim diff`.
    replacement: Option<&'a ManifestOverride>,
}

/// Reads `manifests:`: paths (files or folders, relative to the scenario)
/// and inline Kubernetes objects, then translates them.
fn read_manifests(
    node: &Node,
    scenario_path: &Path,
    edits: &ManifestEdits<'_>,
    sources: &mut Vec<String>,
    diagnostics: &mut Diagnostics,
) -> Option<GatewayModel> {
    let items = node.seq(diagnostics)?;
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for item in items {
        match &item.value {
            Value::Scalar { text, .. } => {
                let mut resolved = yaml::resolve_relative(scenario_path, text);
                if let Some(ManifestOverride::Reroot { from, to, label }) = edits.replacement {
                    let Some(rerooted) = reroot(scenario_path, text, from, to) else {
                        diagnostics.error(
                            item,
                            format!(
                                "manifest path {text} is outside {}, so it cannot be read at {label}",
                                from.display()
                            ),
                        );
                        continue;
                    };
                    if !rerooted.exists() {
                        diagnostics.error(
                            item,
                            format!("manifest path {text} does not exist at {label}"),
                        );
                        continue;
                    }
                    resolved = rerooted;
                }
                if !resolved.exists() {
                    diagnostics.error(
                        item,
                        format!("manifest path {} does not exist", resolved.display()),
                    );
                    continue;
                }
                sources.push(text.clone());
                paths.push(resolved);
            }
            Value::Mapping(_) => inline.push(item.clone()),
            _ => diagnostics.error(
                item,
                "expected a manifest path or an inline Kubernetes object",
            ),
        }
    }
    // Paths that exist and inline objects are still read when another
    // item is missing, so their problems are reported in the same pass.
    let complete = paths.len() + inline.len() == items.len();
    let object_overrides = edits.overrides;
    let mut matched = vec![0usize; object_overrides.len()];
    let mut edit = |root: &mut Node| -> Result<(), String> {
        for (index, over) in object_overrides.iter().enumerate() {
            matched[index] += overrides::apply_to_objects(root, over)?;
        }
        if let Some(mode) = edits.mode {
            rate_limit_mode::rewrite_document(root, mode);
        }
        Ok(())
    };
    for item in &mut inline {
        if let Err(message) = edit(item) {
            diagnostics.error(item, message);
        }
    }
    let mut set = match manifest::load_paths_edited(&paths, &mut edit) {
        Ok(set) => Some(set),
        Err(errors) => {
            diagnostics.extend(errors);
            None
        }
    };
    if !inline.is_empty() {
        sources.push(format!("{} inline objects", inline.len()));
        match manifest::load_nodes(&inline, scenario_path) {
            Ok(more) => {
                if let Some(set) = set.as_mut() {
                    set.merge(more);
                }
            }
            Err(errors) => {
                diagnostics.extend(errors);
                set = None;
            }
        }
    }
    if let Some(ManifestOverride::Replace(replacement)) = edits.replacement {
        sources.push(format!(
            "policies replaced by {}",
            replacement
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        match manifest::load_paths(replacement) {
            Ok(other) => {
                if let Some(set) = set.as_mut() {
                    set.replace_with(other);
                }
            }
            Err(errors) => {
                diagnostics.extend(errors);
                set = None;
            }
        }
    }
    for (over, count) in object_overrides.iter().zip(&matched) {
        if *count == 0 {
            diagnostics.error(
                node,
                format!("override `{over}` matches no object in the manifests"),
            );
            return None;
        }
    }
    let set = set.filter(|_| complete)?;
    Some(manifest::translate(
        &set,
        &manifest::TranslateOptions::default(),
    ))
}

fn written_manifest_paths(root: &Node, scenario_path: &Path) -> Vec<PathBuf> {
    let Some(Value::Sequence(items)) = root.get("manifests").map(|n| &n.value) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| item.scalar())
        .map(|text| yaml::resolve_relative(scenario_path, text))
        .collect()
}

/// Moves the path `written` in the scenario from under `from` to the same
/// place under `to`. Returns `None` when it does not lie under `from`. Both
/// sides are compared as absolute paths with `.` and `..` resolved.
fn reroot(scenario_path: &Path, written: &str, from: &Path, to: &Path) -> Option<PathBuf> {
    let written_path = Path::new(written);
    let joined = if written_path.is_absolute() {
        written_path.to_path_buf()
    } else {
        let dir = scenario_path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::canonicalize(dir).ok()?.join(written_path)
    };
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let relative = normal.strip_prefix(from).ok()?;
    Some(to.join(relative))
}

fn check_backend_references(
    gateway: &GatewayModel,
    backends: &[BackendSpec],
    root: &Node,
    diagnostics: &mut Diagnostics,
) {
    let node = root.get("backends").unwrap_or(root);
    for cluster in &gateway.clusters {
        for backend in &cluster.backends {
            let found = backends
                .iter()
                .any(|b| b.name == backend.name && b.namespace == backend.namespace);
            if !found {
                let defined: Vec<String> = backends
                    .iter()
                    .map(|b| format!("{}/{}", b.namespace, b.name))
                    .collect();
                diagnostics.error(
                    node,
                    format!(
                        "route {} sends traffic to backend `{}/{}`, which the scenario does not \
                         define; add it under backends (defined: {})",
                        cluster.name,
                        backend.namespace,
                        backend.name,
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                );
            }
        }
    }
    if gateway.routes.is_empty() {
        diagnostics.error(
            root.get("manifests").unwrap_or(root),
            "the manifests define no HTTPRoute attached to a Gateway, so no request can be routed",
        );
    }
}

fn check_endless_clients(
    clients: &[ClientSpec],
    duration: Option<SimDuration>,
    root: &Node,
    diagnostics: &mut Diagnostics,
) {
    if duration.is_some() {
        return;
    }
    // The clients were read from this list in order, so each is reported
    // at its own entry.
    let items: &[Node] = match root.get("clients").map(|node| &node.value) {
        Some(yaml::Value::Sequence(items)) => items,
        _ => &[],
    };
    for (index, client) in clients.iter().enumerate() {
        if client.is_endless() {
            diagnostics.error(
                items.get(index).unwrap_or(root),
                format!(
                    "client `{}` never stops on its own; set the scenario's `duration`, or the \
                     client's `requests` or `stop`",
                    client.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_to_unix_seconds() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        // Found by fuzzing: a huge year overflowed the day arithmetic.
        assert_eq!(parse_rfc3339_utc("99999999999999-11-16T18:15:46Z"), None);
        assert_eq!(
            parse_rfc3339_utc("2026-01-01T00:00:00Z"),
            Some(DEFAULT_START_UNIX_S)
        );
        assert_eq!(
            parse_rfc3339_utc("2023-11-16 18:15:46.6805900Z"),
            Some(1_700_158_546)
        );
        assert_eq!(parse_rfc3339_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("yesterday"), None);
    }

    #[test]
    fn cost_adds_request_and_token_prices() {
        let cost = CostModel {
            per_request_usd: 0.001,
            input_usd_per_million: 3.0,
            output_usd_per_million: 15.0,
        };
        let usd = cost.cost_usd(1_000, 500);
        assert!((usd - (0.001 + 0.003 + 0.0075)).abs() < 1e-12);
    }
}
