//! The `rate_limit_service:` section: the replicas of the rate limit
//! service and the Redis behind them, their latencies and fault windows,
//! and the filter settings Envoy Gateway takes from its own configuration
//! (`rateLimit.timeout`, `rateLimit.failClosed`).

use crate::dist::{self, Dist, Quantity};
use crate::time::SimDuration;
use crate::yaml::{Diagnostics, Node};

use super::positive_count;

/// The rate limit service and Redis, as the scenario describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitServiceSpec {
    /// Replicas (pods) of the service. Each Envoy worker keeps one gRPC
    /// connection and so talks to one replica.
    pub replicas: u32,
    /// One-way network latency between Envoy and a service replica.
    pub network_latency: SimDuration,
    /// Seconds a replica spends on one call, apart from waiting for Redis.
    pub service_time: Dist,
    /// Envoy's deadline for the service's response; Envoy Gateway's default
    /// is 20 ms.
    pub timeout: SimDuration,
    /// Reject with 500 when the call fails, instead of letting the request
    /// through without a limit.
    pub fail_closed: bool,
    /// The service's local cache of keys known to be over limit.
    pub local_cache: bool,
    /// Calls one replica processes at once; more wait in arrival order.
    /// `None` processes every call at once, so a replica never saturates.
    pub concurrency: Option<u32>,
    /// Fault windows of the service replicas (`down` or `slow`).
    pub faults: Vec<Fault>,
    pub redis: RedisSpec,
}

/// The Redis that stores the counters of every service replica.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisSpec {
    /// One-way network latency between a service replica and Redis.
    pub network_latency: SimDuration,
    /// Seconds Redis takes to run one pipeline.
    pub service_time: Dist,
    /// Pipelines Redis runs at once; more wait in arrival order. `None`
    /// runs every pipeline at once, so Redis never saturates.
    pub concurrency: Option<u32>,
    /// Fault windows (`down`, `slow` or `partition`).
    pub faults: Vec<Fault>,
}

/// A window of simulated time during which a component misbehaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub from: SimDuration,
    pub to: SimDuration,
    pub kind: FaultKind,
    /// Service replicas affected (0-based); empty means all of them.
    pub replicas: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Refuses connections: every call or pipeline fails at once.
    Down,
    /// Responds `delay` later than usual.
    Slow { delay: SimDuration },
    /// Redis only: the listed service replicas cannot reach Redis, so their
    /// pipelines get no response until the service's own Redis timeout.
    Partition,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Down => "down",
            FaultKind::Slow { .. } => "slow",
            FaultKind::Partition => "partition",
        }
    }
}

impl Fault {
    /// Returns whether the fault is active at `at` for service replica
    /// `replica`.
    pub fn applies(&self, at: SimDuration, replica: u32) -> bool {
        at >= self.from
            && at < self.to
            && (self.replicas.is_empty() || self.replicas.contains(&replica))
    }
}

impl Default for RateLimitServiceSpec {
    fn default() -> Self {
        RateLimitServiceSpec {
            replicas: 1,
            network_latency: SimDuration::from_micros(250),
            service_time: Dist::Constant(0.000_1),
            timeout: SimDuration::from_millis(20),
            fail_closed: false,
            local_cache: false,
            concurrency: None,
            faults: Vec::new(),
            redis: RedisSpec::default(),
        }
    }
}

impl Default for RedisSpec {
    fn default() -> Self {
        RedisSpec {
            network_latency: SimDuration::from_micros(250),
            service_time: Dist::Constant(0.000_1),
            concurrency: None,
            faults: Vec::new(),
        }
    }
}

/// Reads `rate_limit_service:`; absent fields keep their defaults.
pub(super) fn read(node: &Node, diagnostics: &mut Diagnostics) -> Option<RateLimitServiceSpec> {
    let fields = node.fields(diagnostics, &super::schema::RATE_LIMIT_SERVICE.names())?;
    let mut spec = RateLimitServiceSpec::default();
    let mut ok = true;
    if let Some(n) = fields.get("replicas") {
        match positive_count(n, "replicas", 1_000, diagnostics) {
            Some(replicas) => spec.replicas = replicas,
            None => ok = false,
        }
    }
    if let Some(n) = fields.get("network_latency") {
        ok &= read_into(n.duration(diagnostics), &mut spec.network_latency);
    }
    if let Some(n) = fields.get("service_time") {
        ok &= read_into(
            dist::read(n, Quantity::Seconds, diagnostics),
            &mut spec.service_time,
        );
    }
    if let Some(n) = fields.get("timeout") {
        match n.duration(diagnostics) {
            Some(timeout) if timeout.is_zero() => {
                diagnostics.error(n, "timeout must be longer than zero");
                ok = false;
            }
            Some(timeout) => spec.timeout = timeout,
            None => ok = false,
        }
    }
    if let Some(n) = fields.get("fail_closed") {
        ok &= read_into(n.bool(diagnostics), &mut spec.fail_closed);
    }
    if let Some(n) = fields.get("local_cache") {
        ok &= read_into(n.bool(diagnostics), &mut spec.local_cache);
    }
    if let Some(n) = fields.get("concurrency") {
        match positive_count(n, "concurrency", 1_000_000, diagnostics) {
            Some(count) => spec.concurrency = Some(count),
            None => ok = false,
        }
    }
    if let Some(n) = fields.get("faults") {
        let allowed = [FaultTarget::Down, FaultTarget::Slow];
        let faults = read_faults(n, &allowed, spec.replicas, diagnostics);
        ok &= read_into(faults, &mut spec.faults);
    }
    if let Some(n) = fields.get("redis") {
        ok &= read_into(read_redis(n, spec.replicas, diagnostics), &mut spec.redis);
    }
    ok.then_some(spec)
}

/// Stores `value` in `slot` when present; returns whether it was.
fn read_into<T>(value: Option<T>, slot: &mut T) -> bool {
    match value {
        Some(value) => {
            *slot = value;
            true
        }
        None => false,
    }
}

fn read_redis(node: &Node, replicas: u32, diagnostics: &mut Diagnostics) -> Option<RedisSpec> {
    let fields = node.fields(diagnostics, &super::schema::REDIS.names())?;
    let mut redis = RedisSpec::default();
    let mut ok = true;
    if let Some(n) = fields.get("network_latency") {
        ok &= read_into(n.duration(diagnostics), &mut redis.network_latency);
    }
    if let Some(n) = fields.get("service_time") {
        ok &= read_into(
            dist::read(n, Quantity::Seconds, diagnostics),
            &mut redis.service_time,
        );
    }
    if let Some(n) = fields.get("concurrency") {
        match positive_count(n, "concurrency", 1_000_000, diagnostics) {
            Some(count) => redis.concurrency = Some(count),
            None => ok = false,
        }
    }
    if let Some(n) = fields.get("faults") {
        let allowed = [FaultTarget::Down, FaultTarget::Slow, FaultTarget::Partition];
        let faults = read_faults(n, &allowed, replicas, diagnostics);
        ok &= read_into(faults, &mut redis.faults);
    }
    ok.then_some(redis)
}

/// The fault kinds a component accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FaultTarget {
    Down,
    Slow,
    Partition,
}

impl FaultTarget {
    fn name(self) -> &'static str {
        match self {
            FaultTarget::Down => "down",
            FaultTarget::Slow => "slow",
            FaultTarget::Partition => "partition",
        }
    }
}

/// Reads a list of faults; `replicas` is the number of service replicas
/// a fault's `replicas` may name.
fn read_faults(
    node: &Node,
    allowed: &[FaultTarget],
    replicas: u32,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<Fault>> {
    let mut faults = Vec::new();
    let mut ok = true;
    for item in node.seq(diagnostics)? {
        match read_fault(item, allowed, replicas, diagnostics) {
            Some(fault) => faults.push(fault),
            None => ok = false,
        }
    }
    ok.then_some(faults)
}

fn read_fault(
    node: &Node,
    allowed: &[FaultTarget],
    replica_count: u32,
    diagnostics: &mut Diagnostics,
) -> Option<Fault> {
    // Service and Redis faults have the same fields; the allowed kinds differ.
    let fields = node.fields(diagnostics, &super::schema::SERVICE_FAULT.names())?;
    let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
    let kind_name = fields
        .require("kind", diagnostics)
        .and_then(|n| n.one_of(diagnostics, &names));
    let from = fields
        .require("from", diagnostics)
        .and_then(|n| n.duration(diagnostics));
    let to = fields
        .require("to", diagnostics)
        .and_then(|n| n.duration(diagnostics));
    let delay = fields.get("delay").map(|n| (n, n.duration(diagnostics)));
    let replicas = match fields.get("replicas") {
        Some(n) => read_replicas(n, replica_count, diagnostics),
        None => Some(Vec::new()),
    };
    let (kind_name, from, to, replicas) = (kind_name?, from?, to?, replicas?);

    if to <= from {
        diagnostics.error(
            node,
            format!("the fault ends at {to}, not after it starts at {from}; set `to` later"),
        );
        return None;
    }
    let kind = fault_kind(node, kind_name, delay, diagnostics)?;
    if kind == FaultKind::Partition && replicas.is_empty() && fields.has("replicas") {
        diagnostics.error(node, "a partition needs at least one replica in `replicas`");
        return None;
    }
    Some(Fault {
        from,
        to,
        kind,
        replicas,
    })
}

/// Builds the kind of a fault from its `kind` and its `delay`, which only
/// a slow fault takes.
fn fault_kind(
    node: &Node,
    kind_name: &str,
    delay: Option<(&Node, Option<SimDuration>)>,
    diagnostics: &mut Diagnostics,
) -> Option<FaultKind> {
    match (kind_name, delay) {
        ("slow", Some((_, Some(delay)))) if !delay.is_zero() => Some(FaultKind::Slow { delay }),
        ("slow", Some((_, None))) => None,
        ("slow", Some((n, Some(_)))) => {
            diagnostics.error(n, "a slow fault needs a `delay` longer than zero");
            None
        }
        ("slow", None) => {
            diagnostics.error(
                node,
                "a slow fault needs `delay`, the time added to each response",
            );
            None
        }
        (_, Some((n, _))) => {
            diagnostics.error(
                n,
                format!("`delay` applies only to slow faults, not {kind_name}"),
            );
            None
        }
        ("down", None) => Some(FaultKind::Down),
        (_, None) => Some(FaultKind::Partition),
    }
}

fn read_replicas(node: &Node, count: u32, diagnostics: &mut Diagnostics) -> Option<Vec<u32>> {
    let mut replicas = Vec::new();
    for item in node.seq(diagnostics)? {
        let index = item.int_in(diagnostics, 0, i64::from(u32::MAX))?;
        if index >= i64::from(count) {
            diagnostics.error(
                item,
                format!(
                    "replica {index} does not exist: the service has {count} replica{}, \
                     numbered from 0",
                    if count == 1 { "" } else { "s" }
                ),
            );
            return None;
        }
        replicas.push(index as u32);
    }
    Some(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_text(text: &str) -> Result<RateLimitServiceSpec, String> {
        let documents =
            crate::yaml::parse_str(text, Path::new("s.yaml")).map_err(|d| d.to_string())?;
        let mut diagnostics = Diagnostics::for_file(Path::new("s.yaml"));
        let spec = read(&documents[0].root, &mut diagnostics);
        match spec {
            Some(spec) if diagnostics.is_empty() => Ok(spec),
            _ => Err(diagnostics.to_string()),
        }
    }

    #[test]
    fn defaults_follow_envoy_gateway() {
        let spec = read_text("{}").unwrap();
        assert_eq!(spec.timeout, SimDuration::from_millis(20));
        assert!(!spec.fail_closed);
        assert!(!spec.local_cache);
        assert_eq!(spec.replicas, 1);
    }

    #[test]
    fn faults_are_read_with_their_kind() {
        let spec = read_text(
            "replicas: 3\nfaults: [{kind: slow, from: 1m, to: 2m, delay: 30ms, replicas: [2]}]\n\
             redis:\n  faults:\n  - {kind: down, from: 4m, to: 5m}\n  - {kind: partition, from: 6m, to: 7m, replicas: [0, 1]}\n",
        )
        .unwrap();
        assert_eq!(
            spec.faults[0].kind,
            FaultKind::Slow {
                delay: SimDuration::from_millis(30)
            }
        );
        assert_eq!(spec.redis.faults[0].kind, FaultKind::Down);
        assert_eq!(spec.redis.faults[1].replicas, [0, 1]);
        assert!(spec.redis.faults[1].applies(SimDuration::from_secs(390), 1));
        assert!(!spec.redis.faults[1].applies(SimDuration::from_secs(390), 2));
        assert!(!spec.redis.faults[1].applies(SimDuration::from_secs(420), 1));
    }

    #[test]
    fn bad_faults_are_all_reported() {
        let error = read_text(
            "faults: [{kind: partition, from: 1m, to: 2m}]\n\
             redis:\n  faults:\n  - {kind: slow, from: 2m, to: 1m, delay: 5ms}\n  - {kind: down, from: 0s, to: 1m, replicas: [4]}\n",
        )
        .unwrap_err();
        assert!(error.contains("expected one of"), "{error}");
        assert!(error.contains("not after it starts"), "{error}");
        assert!(error.contains("replica 4 does not exist"), "{error}");
    }
}
