//! The scenario's `expect:` list: what `trafficsim check` judges after a
//! run. Each expectation names a metric, a scope, an optional time window
//! and a bound, and how many seeds to judge it over.
//!
//! Reading checks every name against the scenario (clients, routes,
//! replicas) and every window against `output.bucket`. Measuring and
//! judging are left to `check`; Envoy stat names are checked there too,
//! because they are only known once a run has produced them.

use crate::gateway::GatewayModel;
use crate::time::SimDuration;
use crate::yaml::{Diagnostics, Location, Node, Value, suggest};

use super::ClientSpec;

/// One expectation, resolved against the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// Shown in reports: the `name` field, or one built from the metric,
    /// scope and window.
    pub name: String,
    pub metric: Metric,
    pub scope: Scope,
    pub window: Window,
    pub bound: Bound,
    /// Runs to judge over, with seeds `seed`, `seed + 1`, ...
    pub seeds: u32,
    /// Two-sided confidence level of the interval, such as 0.95.
    pub confidence: f64,
    /// Location of the expectation in the scenario file.
    pub location: Location,
    pub path: String,
}

/// The quantity an expectation measures.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// Share of completed requests whose final status matches, 0 to 1.
    StatusFraction(Vec<StatusMatch>),
    /// Completed requests whose final status matches.
    StatusCount(Vec<StatusMatch>),
    /// Requests whose response reached the client.
    Completed,
    /// Requests Envoy forwarded to a backend that passed every rate limit
    /// and circuit breaker: the first attempt of each client call.
    Admitted,
    /// [`Metric::Admitted`] per second of the window.
    AdmittedRate,
    /// A latency percentile (0 to 100; 100 is the maximum), milliseconds.
    LatencyMs(f64),
    /// Cost of every attempt that reached a backend, retries included.
    SpendUsd,
    /// Retried attempts that reached a backend: Envoy's and the clients'.
    Retries,
    /// Attempts that reached a backend, first attempts and retries.
    BackendRequests,
    /// An Envoy stat by its Envoy name, at the end of the run.
    EnvoyStat(String),
}

const METRICS: &[&str] = &[
    "status_fraction",
    "status_count",
    "completed",
    "admitted",
    "admitted_rate",
    "latency_ms",
    "spend_usd",
    "retries",
    "backend_requests",
    "envoy_stat",
];

impl Metric {
    /// Returns the metric's name as written in `metric:`.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::StatusFraction(_) => "status_fraction",
            Metric::StatusCount(_) => "status_count",
            Metric::Completed => "completed",
            Metric::Admitted => "admitted",
            Metric::AdmittedRate => "admitted_rate",
            Metric::LatencyMs(_) => "latency_ms",
            Metric::SpendUsd => "spend_usd",
            Metric::Retries => "retries",
            Metric::BackendRequests => "backend_requests",
            Metric::EnvoyStat(_) => "envoy_stat",
        }
    }

    /// Describes the metric with its parameter, such as
    /// `status_fraction(429)`.
    pub fn describe(&self) -> String {
        match self {
            Metric::StatusFraction(statuses) | Metric::StatusCount(statuses) => {
                let list: Vec<String> = statuses.iter().map(StatusMatch::to_string).collect();
                format!("{}({})", self.name(), list.join(","))
            }
            Metric::LatencyMs(percentile) => format!("latency_ms(p{percentile})"),
            Metric::EnvoyStat(stat) => format!("envoy_stat({stat})"),
            _ => self.name().to_string(),
        }
    }
}

/// A status code or a status class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    /// `2xx` is `Class(2)`.
    Class(u16),
}

impl StatusMatch {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Code(code) => status == code,
            StatusMatch::Class(class) => status / 100 == class,
        }
    }
}

impl std::fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusMatch::Code(code) => write!(f, "{code}"),
            StatusMatch::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// The requests an expectation looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Run,
    /// One client definition (all its instances).
    Client {
        name: String,
        index: usize,
    },
    /// The Envoy routes of one HTTPRoute, or one Envoy route.
    Route {
        name: String,
        routes: Vec<usize>,
    },
    /// One Envoy replica, counted from 0.
    Replica(u32),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Run => f.write_str("run"),
            Scope::Client { name, .. } => write!(f, "client {name}"),
            Scope::Route { name, .. } => write!(f, "route {name}"),
            Scope::Replica(replica) => write!(f, "replica {replica}"),
        }
    }
}

/// The span of simulated time measured: `[from, to)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub from: SimDuration,
    /// `None` runs to the end of the run.
    pub to: Option<SimDuration>,
}

impl Window {
    pub fn is_whole_run(&self) -> bool {
        self.from.is_zero() && self.to.is_none()
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}..{}", self.from, to),
            None if self.from.is_zero() => f.write_str("whole run"),
            None => write!(f, "{}..end", self.from),
        }
    }
}

/// The range a measured value must stay in; the ends are included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Max(f64),
    Min(f64),
    Between(f64, f64),
}

impl Bound {
    /// Returns whether every value from `low` to `high` lies within the bound.
    pub fn contains(&self, low: f64, high: f64) -> bool {
        match *self {
            Bound::Max(max) => high <= max,
            Bound::Min(min) => low >= min,
            Bound::Between(min, max) => low >= min && high <= max,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Max(max) => write!(f, "<= {max}"),
            Bound::Min(min) => write!(f, ">= {min}"),
            Bound::Between(min, max) => write!(f, "{min}..{max}"),
        }
    }
}

/// The parts of the scenario expectations are checked against. A part
/// that failed to read is `None`, and the checks that need it are skipped.
pub(super) struct Context<'a> {
    pub clients: Option<&'a [ClientSpec]>,
    pub gateway: Option<&'a GatewayModel>,
    pub replicas: Option<u32>,
    pub bucket: Option<SimDuration>,
    pub duration: Option<SimDuration>,
}

const FIELDS: &[&str] = &[
    "name",
    "metric",
    "status",
    "percentile",
    "stat",
    "client",
    "route",
    "replica",
    "from",
    "to",
    "max",
    "min",
    "between",
    "seeds",
    "confidence",
];

/// Most seeds one expectation may ask for.
const MAX_SEEDS: i64 = 1_000;

/// Reads `expect:`, a list of expectations.
pub(super) fn read_expectations(
    node: &Node,
    context: &Context<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<Expectation>> {
    let items = node.seq(diagnostics)?;
    let mut expectations = Vec::new();
    let mut ok = true;
    for item in items {
        match read_expectation(item, context, diagnostics) {
            Some(expectation) => expectations.push(expectation),
            None => ok = false,
        }
    }
    ok.then_some(expectations)
}

fn read_expectation(
    node: &Node,
    context: &Context<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Expectation> {
    let fields = node.fields(diagnostics, FIELDS)?;
    let metric = fields
        .require("metric", diagnostics)
        .and_then(|n| read_metric(n, &fields, diagnostics));
    let scope = read_scope(&fields, context, diagnostics);
    let window = read_window(&fields, context, diagnostics);
    let bound = read_bound(&fields, diagnostics);
    let seeds = match fields.get("seeds") {
        Some(n) => super::positive_count(n, "seeds", MAX_SEEDS, diagnostics),
        None => Some(1),
    };
    let confidence = match fields.get("confidence") {
        Some(n) => n.f64_in(diagnostics, 0.5, 0.999),
        None => Some(0.95),
    };
    let name = fields.get("name").and_then(|n| n.string(diagnostics));

    let (metric, scope, window, bound) = (metric?, scope?, window?, bound?);
    if let Metric::EnvoyStat(_) = metric {
        check_envoy_stat_scope(&fields, &scope, &window, diagnostics)?;
    }
    let name = name.unwrap_or_else(|| default_name(&metric, &scope, &window));
    Some(Expectation {
        name,
        metric,
        scope,
        window,
        bound,
        seeds: seeds?,
        confidence: confidence?,
        location: node.location,
        path: node.path.clone(),
    })
}

fn default_name(metric: &Metric, scope: &Scope, window: &Window) -> String {
    let mut name = metric.describe();
    if *scope != Scope::Run {
        name.push_str(&format!(" of {scope}"));
    }
    if !window.is_whole_run() {
        name.push_str(&format!(" over {window}"));
    }
    name
}

/// Reads `metric:` and the one parameter field it needs, and reports a
/// parameter given to a metric that takes none.
fn read_metric(
    node: &Node,
    fields: &crate::yaml::Fields<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Metric> {
    let name = node.one_of(diagnostics, METRICS)?;
    let needs = match name {
        "status_fraction" | "status_count" => Some("status"),
        "latency_ms" => Some("percentile"),
        "envoy_stat" => Some("stat"),
        _ => None,
    };
    let mut ok = true;
    for parameter in ["status", "percentile", "stat"] {
        if Some(parameter) != needs
            && let Some(extra) = fields.get(parameter)
        {
            diagnostics.error(
                extra,
                format!("`{parameter}` does not apply to metric `{name}`; remove it"),
            );
            ok = false;
        }
    }
    let parameter = match needs {
        Some(key) => Some(fields.require(key, diagnostics)?),
        None => None,
    };
    let metric = match (name, parameter) {
        ("status_fraction", Some(n)) => Metric::StatusFraction(read_statuses(n, diagnostics)?),
        ("status_count", Some(n)) => Metric::StatusCount(read_statuses(n, diagnostics)?),
        ("latency_ms", Some(n)) => {
            let percentile = n.f64_in(diagnostics, 0.0, 100.0)?;
            if percentile <= 0.0 {
                diagnostics.error(n, "percentile must be above 0; use 50 for the median");
                return None;
            }
            Metric::LatencyMs(percentile)
        }
        ("envoy_stat", Some(n)) => {
            let stat = n.string(diagnostics)?;
            if stat.is_empty() {
                diagnostics.error(n, "expected an Envoy stat name such as `http.no_route`");
                return None;
            }
            Metric::EnvoyStat(stat)
        }
        ("completed", _) => Metric::Completed,
        ("admitted", _) => Metric::Admitted,
        ("admitted_rate", _) => Metric::AdmittedRate,
        ("spend_usd", _) => Metric::SpendUsd,
        ("retries", _) => Metric::Retries,
        _ => Metric::BackendRequests,
    };
    ok.then_some(metric)
}

/// Reads `status:`: a code (`429`), a class (`5xx`), or a list of them.
fn read_statuses(node: &Node, diagnostics: &mut Diagnostics) -> Option<Vec<StatusMatch>> {
    let items: Vec<&Node> = match &node.value {
        Value::Sequence(items) if !items.is_empty() => items.iter().collect(),
        Value::Sequence(_) => {
            diagnostics.error(node, "status must list at least one status");
            return None;
        }
        _ => vec![node],
    };
    let mut statuses = Vec::new();
    let mut ok = true;
    for item in items {
        match read_status(item, diagnostics) {
            Some(status) => statuses.push(status),
            None => ok = false,
        }
    }
    ok.then_some(statuses)
}

fn read_status(node: &Node, diagnostics: &mut Diagnostics) -> Option<StatusMatch> {
    let text = node.str(diagnostics)?;
    let lower = text.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx")
        && let Ok(class @ 1..=5) = class.parse::<u16>()
    {
        return Some(StatusMatch::Class(class));
    }
    match text.parse::<u16>() {
        Ok(code @ 100..=599) => Some(StatusMatch::Code(code)),
        _ => {
            diagnostics.error(
                node,
                format!(
                    "expected a status code from 100 to 599 or a class such as `5xx`, \
                     found `{text}`"
                ),
            );
            None
        }
    }
}

fn read_scope(
    fields: &crate::yaml::Fields<'_>,
    context: &Context<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Scope> {
    let given: Vec<&str> = ["client", "route", "replica"]
        .into_iter()
        .filter(|key| fields.has(key))
        .collect();
    if given.len() > 1 {
        diagnostics.error(
            fields.node,
            format!(
                "give at most one scope, found {}; leave all out for the whole run",
                given.join(" and ")
            ),
        );
        return None;
    }
    if let Some(node) = fields.get("client") {
        let name = node.string(diagnostics)?;
        let clients = context.clients?;
        return match clients.iter().position(|c| c.name == name) {
            Some(index) => Some(Scope::Client { name, index }),
            None => {
                let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
                let hint = match suggest(&name, &names) {
                    Some(meant) => format!("did you mean `{meant}`?"),
                    None => format!("clients: {}", names.join(", ")),
                };
                diagnostics.error(node, format!("no client is named `{name}`; {hint}"));
                None
            }
        };
    }
    if let Some(node) = fields.get("route") {
        let name = node.string(diagnostics)?;
        let routes = resolve_route(node, &name, context.gateway?, diagnostics)?;
        return Some(Scope::Route { name, routes });
    }
    if let Some(node) = fields.get("replica") {
        let replica = node.u32(diagnostics)?;
        let replicas = context.replicas?;
        if replica >= replicas {
            diagnostics.error(
                node,
                format!(
                    "replica {replica} does not exist; replicas are counted from 0 and the \
                     scenario runs {replicas}"
                ),
            );
            return None;
        }
        return Some(Scope::Replica(replica));
    }
    Some(Scope::Run)
}

/// Finds the Envoy routes `name` stands for: an Envoy route name, an
/// HTTPRoute as `namespace/name`, or an HTTPRoute name alone when only one
/// namespace has it.
fn resolve_route(
    node: &Node,
    name: &str,
    gateway: &GatewayModel,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<usize>> {
    let routes = &gateway.routes;
    if let Some(index) = routes.iter().position(|r| r.name == name) {
        return Some(vec![index]);
    }
    let matching = |key: &dyn Fn(&str) -> bool| -> Vec<usize> {
        (0..routes.len())
            .filter(|&i| key(&routes[i].http_route))
            .collect()
    };

    let exact = matching(&|http_route| http_route == name);
    if !exact.is_empty() {
        return Some(exact);
    }
    let suffix = format!("/{name}");
    let by_name = matching(&|http_route| http_route.ends_with(&suffix));
    let mut namespaces: Vec<&str> = by_name
        .iter()
        .map(|&i| routes[i].http_route.as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    if namespaces.len() > 1 {
        diagnostics.error(
            node,
            format!(
                "route `{name}` is ambiguous; write one of: {}",
                namespaces.join(", ")
            ),
        );
        return None;
    }
    if !by_name.is_empty() {
        return Some(by_name);
    }

    let mut known: Vec<&str> = routes.iter().map(|r| r.http_route.as_str()).collect();
    known.sort_unstable();
    known.dedup();
    diagnostics.error(
        node,
        format!(
            "no route is named `{name}`; write an HTTPRoute as `name` or `namespace/name`, or an \
             Envoy route name (HTTPRoutes: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    );
    None
}

/// Reads `from` and `to`. Both must fall on bucket boundaries, so a
/// windowed value equals the sum of the matching `timeseries.csv` rows.
fn read_window(
    fields: &crate::yaml::Fields<'_>,
    context: &Context<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Window> {
    let mut ok = true;
    let mut read = |key: &str| -> Option<(SimDuration, &Node)> {
        let node = fields.get(key)?;
        let value = node.duration(diagnostics);
        if value.is_none() {
            ok = false;
        }
        Some((value?, node))
    };
    let from = read("from");
    let to = read("to");
    if !ok {
        return None;
    }
    for (value, node) in [from, to].into_iter().flatten() {
        if let Some(bucket) = context.bucket
            && !value.as_nanos().is_multiple_of(bucket.as_nanos().max(1))
        {
            diagnostics.error(
                node,
                format!(
                    "{value} does not fall on a boundary of output.bucket ({bucket}); windows \
                     are measured in whole buckets, so use a multiple of {bucket}"
                ),
            );
            ok = false;
        }
        if let Some(duration) = context.duration
            && value > duration
        {
            diagnostics.error(
                node,
                format!("{value} is after the end of the run (duration {duration})"),
            );
            ok = false;
        }
    }
    if let (Some((from, node)), Some(duration)) = (from, context.duration)
        && from >= duration
    {
        diagnostics.error(
            node,
            format!("`from` ({from}) must be before the end of the run (duration {duration})"),
        );
        ok = false;
    }
    if let (Some((from, _)), Some((to, node))) = (from, to)
        && to <= from
    {
        diagnostics.error(node, format!("`to` ({to}) must be after `from` ({from})"));
        ok = false;
    }
    let window = Window {
        from: from.map_or(SimDuration::ZERO, |(value, _)| value),
        to: to.map(|(value, _)| value),
    };
    ok.then_some(window)
}

fn read_bound(fields: &crate::yaml::Fields<'_>, diagnostics: &mut Diagnostics) -> Option<Bound> {
    let given: Vec<&str> = ["max", "min", "between"]
        .into_iter()
        .filter(|key| fields.has(key))
        .collect();
    match given.as_slice() {
        [] => {
            diagnostics.error(
                fields.node,
                "missing a bound; give `max`, `min` or `between: [low, high]`",
            );
            None
        }
        [_, _, ..] => {
            diagnostics.error(
                fields.node,
                format!(
                    "give one bound, found {}; for a range use `between: [low, high]`",
                    given.join(" and ")
                ),
            );
            None
        }
        ["between"] => {
            let node = fields.get("between")?;
            let items = node.seq(diagnostics)?;
            let [low, high] = items else {
                diagnostics.error(
                    node,
                    format!("expected `[low, high]`, found {} values", items.len()),
                );
                return None;
            };
            let (low, high) = (low.f64(diagnostics), high.f64(diagnostics));
            let (low, high) = (low?, high?);
            if low > high {
                diagnostics.error(node, format!("low end {low} is above high end {high}"));
                return None;
            }
            Some(Bound::Between(low, high))
        }
        [key] => {
            let value = fields.get(key)?.f64(diagnostics)?;
            Some(if *key == "max" {
                Bound::Max(value)
            } else {
                Bound::Min(value)
            })
        }
    }
}

/// Envoy stats are end-of-run totals per replica, so they take no window
/// and no client or route scope.
fn check_envoy_stat_scope(
    fields: &crate::yaml::Fields<'_>,
    scope: &Scope,
    window: &Window,
    diagnostics: &mut Diagnostics,
) -> Option<()> {
    let mut ok = true;
    if matches!(scope, Scope::Client { .. } | Scope::Route { .. }) {
        let key = if fields.has("client") {
            "client"
        } else {
            "route"
        };
        if let Some(node) = fields.get(key) {
            diagnostics.error(
                node,
                format!(
                    "Envoy stats are counted per replica, not per {key}; use `replica:` or no \
                     scope (cluster stats already name their route)"
                ),
            );
        }
        ok = false;
    }
    if !window.is_whole_run() {
        let node = fields
            .get("from")
            .or(fields.get("to"))
            .unwrap_or(fields.node);
        diagnostics.error(
            node,
            "Envoy stats are totals at the end of the run and take no window; remove `from` \
             and `to`",
        );
        ok = false;
    }
    ok.then_some(())
}
