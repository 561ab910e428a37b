//! Envoy's request path in each replica: route matching and the fault and
//! local rate limit filters, up to the router (`router.rs`), which sends
//! attempts through the connection pools and outlier detection
//! (`upstream.rs`).
//!
//! The order of the HTTP filters is Envoy Gateway's: fault injection, the
//! local rate limit, the global rate limit, then the router. A local reply
//! (404, 429, the fault filter's abort, a route's direct response) never
//! reaches a cluster and is never retried.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::backend::Backends;
use super::call::{Call, CallRequest};
use super::rate_limit_service::{self, GlobalFilterState};
use super::stats::{ClusterStats, EnvoyStats, HttpStats};
use super::workload::{Instance, Workload};
use super::{Event, Handle, Slab, World};
use crate::circuit_breaker::Resources;
use crate::conn_pool::{AttemptId, Overflow, Pool};
use crate::descriptor::RequestAttrs;
use crate::gateway::{GatewayModel, HashOn, PathMatch, Route, RouteAction};
use crate::load_balancer::Balancer;
use crate::local_rate_limit::{AttrsKey, Decision, LocalLimiter};
use crate::outlier_detection::{Detector, MergeWindow};
use crate::retry::Backoff;
use crate::rng::{self, Stream, Streams};
use crate::scenario::Scenario;
use crate::time::{SimDuration, SimTime};

/// A downstream request, from the client's send to its final response.
pub(crate) struct Request {
    pub group: u32,
    /// The client call this request is one try of.
    pub call: Handle,
    /// True when the client is retrying the call with this request.
    pub client_retry: bool,
    pub replica: u32,
    pub worker: u32,
    /// The client instance that sent it, in `Workload::instances`.
    pub instance: u32,
    /// Index of the matched route, or [`UNROUTED`] before routing and
    /// when no route matches.
    pub route: u32,
    /// Status the fault filter aborts the request with once its delay
    /// ends.
    pub fault_abort: Option<u16>,
    /// Set once the request reaches the router, which a request that a
    /// filter replies to never does.
    pub router: Option<RouterState>,
    pub global: GlobalFilterState,
    /// True when the response is the backend's 2xx, which carries the
    /// call's token counts for the response cost of global rate limits.
    pub response_2xx: bool,
}

impl Request {
    /// Index of the matched route, once the request was routed.
    pub fn route(&self) -> Option<usize> {
        (self.route != UNROUTED).then_some(self.route as usize)
    }

    /// Upstream attempts made so far: the `x-envoy-attempt-count` Envoy
    /// returns (0 for a local reply).
    pub fn attempts(&self) -> u32 {
        self.router.as_ref().map_or(0, |r| r.attempts)
    }

    /// Host index, within the cluster, of the last attempt made.
    pub fn last_host(&self) -> Option<u32> {
        self.router.as_ref().and_then(|r| r.hosts_tried.last())
    }

    /// Returns what routing and rate limiting read of the request: its
    /// call's path and headers and its instance's method, host and address.
    pub(super) fn attrs<'a>(&self, workload: &'a Workload) -> RequestAttrs<'a> {
        let instance = &workload.instances[self.instance as usize];
        let call = workload.calls.get(self.call).expect(CALL_NOT_FOUND);
        attrs_of(instance, call)
    }
}

/// The value of [`Request::route`] for a request not routed yet, or
/// matching no route.
pub(super) const UNROUTED: u32 = u32::MAX;

/// The router's state for one request.
pub(crate) struct RouterState {
    pub(super) cluster: u32,
    pub(super) retries_remaining: u32,
    pub(super) backoff: Option<Backoff>,
    /// A retry circuit-breaker slot is held (from scheduling a retry until
    /// the retried attempt's outcome is judged).
    pub(super) retry_held: bool,
    pub(super) retried: bool,
    pub(super) current: Option<Handle>,
    /// Attempts started, counting those a circuit breaker rejected.
    pub(super) attempts: u32,
    /// Hosts of the attempts so far, for the `previous_hosts` retry
    /// predicate.
    pub(super) hosts_tried: HostsTried,
    pub(super) done: bool,
}

/// Hosts of a request's attempts, in order. The last one is kept apart,
/// so a request that is never retried allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct HostsTried {
    last: Option<u32>,
    earlier: Vec<u32>,
}

impl HostsTried {
    pub(super) fn push(&mut self, host: u32) {
        if let Some(previous) = self.last.replace(host) {
            self.earlier.push(previous);
        }
    }

    pub(super) fn contains(&self, host: u32) -> bool {
        self.last == Some(host) || self.earlier.contains(&host)
    }

    pub(super) fn last(&self) -> Option<u32> {
        self.last
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AttemptState {
    /// Waiting in a pool for a connection.
    Queued,
    /// Attached to a connection and sent upstream.
    Active,
}

/// One upstream attempt of a request.
pub(crate) struct Attempt {
    pub(super) request: Handle,
    pub(super) replica: u32,
    pub(super) cluster: u32,
    pub(super) worker: u32,
    pub(super) host: u32,
    pub(super) state: AttemptState,
    /// True for an Envoy retry.
    pub(super) retry: bool,
}

pub(super) struct ClusterState {
    pub(super) resources: Resources,
    /// Indexed by `worker * hosts + host`.
    pub(super) pools: Vec<Pool>,
    pub(super) balancers: Vec<Balancer>,
    pub(super) host_active: Vec<u32>,
    /// Host health as the workers' load balancers see it, which lags
    /// `main_healthy` by the update merge window.
    pub(super) host_healthy: Vec<bool>,
    /// Host health on Envoy's main thread, changed one host at a time as
    /// the detector reports ejections and returns.
    pub(super) main_healthy: Vec<bool>,
    pub(super) detector: Option<Detector>,
    pub(super) merge_window: MergeWindow,
    pub(super) stats: ClusterStats,
}

pub(crate) struct Replica {
    pub(super) rng: Stream,
    pub(super) limiters: Vec<Option<LocalLimiter>>,
    pub(super) clusters: Vec<ClusterState>,
    pub(super) stats: HttpStats,
}

/// One ejection or return, for the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierEvent {
    pub at: SimTime,
    pub replica: u32,
    pub cluster: String,
    /// Host index within the cluster.
    pub host: u32,
    /// Envoy's stat suffix of the ejection's reason; `None` for a return.
    pub ejected_for: Option<&'static str>,
}

/// Ejections and returns kept for the summary; later ones are only counted.
pub(super) const MAX_OUTLIER_EVENTS: usize = 1_000;

pub(crate) struct Proxies {
    pub requests: Slab<Request>,
    pub(super) attempts: Slab<Attempt>,
    pub(super) replicas: Vec<Replica>,
    /// Requests sent by clients and not yet answered.
    pub in_flight: u64,
    /// Global endpoint index of each host of each cluster.
    pub(super) cluster_hosts: Vec<Vec<usize>>,
    pub(super) scratch: Vec<(AttemptId, Result<(), Overflow>)>,
    pub outlier_events: Vec<OutlierEvent>,
    pub outlier_events_dropped: u64,
}

impl Proxies {
    pub fn new(scenario: &Scenario, backends: &Backends, streams: &Streams) -> Proxies {
        let model = &scenario.gateway;
        let mut cluster_hosts = Vec::new();
        let mut cluster_groups = Vec::new();
        for cluster in &model.clusters {
            let mut hosts = Vec::new();
            let mut groups = Vec::new();
            for backend in &cluster.backends {
                let endpoints = backends.endpoints_of(scenario, &backend.namespace, &backend.name);
                let positions: Vec<usize> = (hosts.len()..hosts.len() + endpoints.len()).collect();
                hosts.extend(endpoints);
                if backend.weight > 0 {
                    groups.push((positions, backend.weight));
                }
            }
            cluster_hosts.push(hosts);
            cluster_groups.push(groups);
        }
        let workers = scenario.envoy.workers;
        let replicas = (0..scenario.envoy.replicas)
            .map(|index| {
                let mut rng = streams.stream("replica", u64::from(index));
                let limiters = model
                    .routes
                    .iter()
                    .map(|route| {
                        route.local_rate_limit.as_ref().map(|config| {
                            let mut config = config.clone();
                            if let Some(capacity) = scenario.envoy.max_dynamic_descriptors {
                                config.max_dynamic_descriptors = capacity;
                            }
                            LocalLimiter::new(&config, scenario.envoy.token_bucket, SimTime::ZERO)
                        })
                    })
                    .collect();
                let clusters = model
                    .clusters
                    .iter()
                    .enumerate()
                    .map(|(cluster_index, cluster)| {
                        let global_rate_limit = model.routes.iter().any(|route| {
                            matches!(route.action, RouteAction::Forward { cluster } if cluster == cluster_index)
                                && rate_limit_service::global_filter(route, 0).is_some()
                        });
                        let hosts = cluster_hosts[cluster_index].len();
                        let balancers = (0..workers)
                            .map(|_| {
                                Balancer::new(
                                    &cluster.load_balancer,
                                    cluster_groups[cluster_index].clone(),
                                    cluster.healthy_panic_threshold,
                                    &mut rng,
                                )
                            })
                            .collect();
                        ClusterState {
                            resources: Resources::new(&cluster.circuit_breaker),
                            pools: vec![
                                Pool::new(cluster.circuit_breaker.max_requests_per_connection);
                                hosts * workers as usize
                            ],
                            balancers,
                            host_active: vec![0; hosts],
                            host_healthy: vec![true; hosts],
                            main_healthy: vec![true; hosts],
                            detector: cluster
                                .outlier_detection
                                .as_ref()
                                .map(|config| Detector::new(config, hosts)),
                            merge_window: MergeWindow::new(scenario.envoy.update_merge_window),
                            stats: ClusterStats {
                                global_rate_limit,
                                ..ClusterStats::default()
                            },
                        }
                    })
                    .collect();
                Replica {
                    rng,
                    limiters,
                    clusters,
                    stats: HttpStats::default(),
                }
            })
            .collect();
        Proxies {
            requests: Slab::default(),
            attempts: Slab::default(),
            replicas,
            in_flight: 0,
            cluster_hosts,
            scratch: Vec::new(),
            outlier_events: Vec::new(),
            outlier_events_dropped: 0,
        }
    }

    /// Index of the pool of `worker` and `host` in a cluster's `pools`.
    pub(super) fn pool_index(&self, cluster: u32, worker: u32, host: u32) -> usize {
        worker as usize * self.cluster_hosts[cluster as usize].len() + host as usize
    }

    /// Things the user should know before reading the results.
    pub fn startup_notes(&self, scenario: &Scenario) -> Vec<String> {
        let model = &scenario.gateway;
        // What translating the manifests left out: skipped objects and
        // fields that are not simulated.
        let mut notes = model.notes.clone();
        for policy in &model.policies {
            if !policy.accepted {
                // Only an invalid policy turns its routes into 500s; a
                // conflicted or unattached one leaves them as they are.
                let failed: Vec<&str> = model
                    .routes
                    .iter()
                    .filter(|route| {
                        route.policy.as_deref() == Some(policy.name.as_str())
                            && matches!(route.action, RouteAction::DirectResponse { .. })
                    })
                    .map(|route| route.name.as_str())
                    .collect();
                let effect = if failed.is_empty() {
                    "it has no effect on any route".to_string()
                } else {
                    format!(
                        "Envoy Gateway answers 500 on the routes it targets: {}",
                        failed.join(", ")
                    )
                };
                notes.push(format!(
                    "BackendTrafficPolicy {} is not accepted ({}: {}); {effect}",
                    policy.name, policy.reason, policy.message,
                ));
            }
        }
        notes.extend(rate_limit_service::startup_notes(scenario));
        for (index, cluster) in model.clusters.iter().enumerate() {
            let Some(config) = &cluster.outlier_detection else {
                continue;
            };
            let hosts = self.cluster_hosts[index].len();
            if let Some(note) = ejection_capacity_note(&cluster.name, config, hosts) {
                notes.push(note);
            }
        }
        notes
    }

    /// Notes about outlier detection after the run: ejections that
    /// `max_ejection_percent` prevented.
    pub fn outlier_notes(&self, scenario: &Scenario) -> Vec<String> {
        let mut notes = Vec::new();
        for (index, cluster) in scenario.gateway.clusters.iter().enumerate() {
            let Some(config) = &cluster.outlier_detection else {
                continue;
            };
            let mut overflow = 0;
            let mut enforced = 0;
            for replica in &self.replicas {
                if let Some(detector) = &replica.clusters[index].detector {
                    overflow += detector.stats.ejections_overflow;
                    enforced += detector.stats.ejections_enforced_total;
                }
            }
            if overflow == 0 {
                continue;
            }
            let hosts = self.cluster_hosts[index].len();
            notes.push(format!(
                "cluster {}: outlier detection found hosts to eject {overflow} times but \
                 max_ejection_percent {}% of {hosts} hosts did not allow it \
                 (outlier_detection.ejections_overflow {overflow}, {enforced} ejections made)",
                cluster.name, config.max_ejection_percent
            ));
        }
        notes
    }

    /// Returns the stats of one cluster in one replica.
    pub(super) fn cluster_stats(&mut self, replica: u32, cluster: usize) -> &mut ClusterStats {
        &mut self.replicas[replica as usize].clusters[cluster].stats
    }

    pub fn collect_stats(&self, scenario: &Scenario) -> EnvoyStats {
        let model = &scenario.gateway;
        let mut stats = EnvoyStats::default();
        for replica in &self.replicas {
            add_replica_stats(&mut stats, replica, model);
        }
        stats
    }

    /// Envoy's gauges at the end of the run, summed over replicas: active
    /// and pending upstream requests, open connections, and how many
    /// replicas have each circuit breaker open (at its threshold).
    pub fn collect_gauges(&self, scenario: &Scenario) -> EnvoyStats {
        let mut gauges = EnvoyStats::default();
        // NOTE: `in_flight` also counts requests still on the network
        // between a client and Envoy, which real Envoy has not seen yet.
        gauges.add_gauge("http.downstream_rq_active", self.in_flight);
        for replica in &self.replicas {
            for (index, cluster) in replica.clusters.iter().enumerate() {
                let name = &scenario.gateway.clusters[index].name;
                let resources = &cluster.resources;
                let usage = &resources.usage;
                let open = |is_open: bool| u64::from(is_open);
                let values = [
                    ("upstream_rq_active", u64::from(usage.requests)),
                    (
                        "upstream_rq_pending_active",
                        u64::from(usage.pending_requests),
                    ),
                    ("upstream_cx_active", u64::from(usage.connections)),
                    (
                        "circuit_breakers.default.cx_open",
                        open(!resources.can_open_connection()),
                    ),
                    (
                        "circuit_breakers.default.rq_pending_open",
                        open(!resources.can_queue_pending()),
                    ),
                    (
                        "circuit_breakers.default.rq_open",
                        open(!resources.can_attach_request()),
                    ),
                    (
                        "circuit_breakers.default.rq_retry_open",
                        open(!resources.can_retry()),
                    ),
                ];
                for (stat, value) in values {
                    gauges.add_gauge(&format!("cluster.{name}.{stat}"), value);
                }
            }
        }
        gauges
    }

    /// Collects the stats of each replica on its own, in replica order.
    pub fn collect_replica_stats(&self, scenario: &Scenario) -> Vec<EnvoyStats> {
        self.replicas
            .iter()
            .map(|replica| {
                let mut stats = EnvoyStats::default();
                add_replica_stats(&mut stats, replica, &scenario.gateway);
                stats
            })
            .collect()
    }

    pub fn peak_active_requests(&self, scenario: &Scenario) -> BTreeMap<String, u32> {
        let mut peaks = BTreeMap::new();
        for replica in &self.replicas {
            for (index, cluster) in replica.clusters.iter().enumerate() {
                let name = scenario.gateway.clusters[index].name.clone();
                let peak = peaks.entry(name).or_insert(0);
                *peak = (*peak).max(cluster.resources.peak.requests);
            }
        }
        peaks
    }
}

/// Explains why a cluster's outlier detection can never eject, or can
/// eject only some hosts at once: Envoy (1.27 and later) ejects only while
/// `(ejected + 1) / hosts` stays within `max_ejection_percent`.
fn ejection_capacity_note(
    cluster: &str,
    config: &crate::gateway::OutlierDetection,
    hosts: usize,
) -> Option<String> {
    if hosts == 0 || config.always_eject_one_host {
        return None;
    }
    let percent = u64::from(config.max_ejection_percent.min(100));
    let at_once = (percent * hosts as u64 / 100) as usize;
    if at_once > 0 {
        return None;
    }
    let needed = 100_usize.div_ceil(hosts);
    Some(format!(
        "cluster {cluster}: outlier detection can never eject a host: one ejection of {hosts} \
         hosts is {:.0}%, above maxEjectionPercent {percent}%; set maxEjectionPercent to at \
         least {needed}, or alwaysEjectOneEndpoint: true",
        100.0 / hosts as f64
    ))
}

/// Adds one replica's stats to `stats`.
fn add_replica_stats(stats: &mut EnvoyStats, replica: &Replica, model: &GatewayModel) {
    let has_local = model.routes.iter().any(|r| r.local_rate_limit.is_some());
    stats.add_http(&replica.stats, has_local);
    for (index, cluster) in replica.clusters.iter().enumerate() {
        let name = &model.clusters[index].name;
        stats.add_cluster(name, &cluster.stats);
        if let Some(detector) = &cluster.detector {
            stats.add_outlier(name, &detector.stats, &cluster.merge_window.stats);
        }
    }
}

/// A request that a client instance sends again and again: with the
/// instance's own headers and path, or with those of one user in its user
/// cache. The host, method and source address are the instance's, so all
/// calls of one instance that send one such request carry the same
/// attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Repeated {
    Own,
    User(u32),
}

impl Repeated {
    /// Returns which repeated request `call` carries, or `None` for a
    /// user beyond the cache, whose headers are expanded for this call
    /// alone.
    pub(super) fn of(call: &Call) -> Option<Repeated> {
        match call.request {
            CallRequest::Own => Some(Repeated::Own),
            CallRequest::User(user) => Some(Repeated::User(user)),
            CallRequest::Expanded(_) => None,
        }
    }

    /// Returns the key of the local rate limit cache for this request of
    /// client instance `instance`.
    fn limiter_key(self, instance: u32) -> AttrsKey {
        let variant = match self {
            Repeated::Own => 0,
            Repeated::User(user) => user + 1,
        };
        AttrsKey {
            client: instance,
            variant,
        }
    }
}

/// Finds the first route matching a request of `instance` made for `call`,
/// matching once per client instance and repeated request (see
/// [`Repeated`]). Routes do not change during a run, and matching reads
/// only the host, method, path and headers.
pub(super) fn matched_route(
    model: &GatewayModel,
    instance: &mut Instance,
    call: &Call,
) -> Option<usize> {
    let repeated = Repeated::of(call);
    let cached = match repeated {
        Some(Repeated::User(user)) => instance
            .user_cache
            .get(user as usize)
            .and_then(|cached| cached.as_ref()?.route),
        Some(Repeated::Own) => instance.own_route,
        None => None,
    };
    if let Some(route) = cached {
        return route.map(|route| route as usize);
    }

    let route = match_route(model, &attrs_of(instance, call));
    let stored = route.map(|route| route as u32);
    match repeated {
        Some(Repeated::User(user)) => {
            if let Some(Some(cached)) = instance.user_cache.get_mut(user as usize) {
                cached.route = Some(stored);
            }
        }
        Some(Repeated::Own) => instance.own_route = Some(stored),
        None => {}
    }
    route
}

/// Returns what routing and rate limiting read of a request of `instance`
/// made for `call`: the call's path and headers and the instance's method,
/// host and address.
fn attrs_of<'a>(instance: &'a Instance, call: &'a Call) -> RequestAttrs<'a> {
    let (headers, path) = call.headers_and_path(instance);
    RequestAttrs {
        host: &instance.host,
        path,
        method: &instance.method,
        headers,
        source_ip: instance.source_ip,
    }
}

/// Runs the filters that follow the fault filter's delay, up to the global
/// rate limit: the fault abort, then the route's local rate limit, which
/// counts its stats in `replica`. Returns the status of the local reply
/// one of them sends, or `None` when the request passes both.
///
/// Inlined because it runs on every request that has no fault delay, and
/// the compiler keeps it apart from `arrive_at_proxy` otherwise.
#[inline(always)]
fn run_filters_after_delay(
    route: &Route,
    route_index: usize,
    fault_abort: Option<u16>,
    replica: &mut Replica,
    workload: &Workload,
    request: &Request,
    now: SimTime,
) -> Option<u16> {
    if let Some(status) = fault_abort {
        replica.stats.fault_aborts_injected += 1;
        return Some(status);
    }
    let config = route.local_rate_limit.as_ref()?;
    let decision = match replica.limiters[route_index].as_mut() {
        Some(limiter) => {
            let instance = &workload.instances[request.instance as usize];
            let call = workload.calls.get(request.call).expect(CALL_NOT_FOUND);
            let attrs = || attrs_of(instance, call);
            match Repeated::of(call) {
                Some(repeated) => {
                    limiter.check_repeated(&attrs, repeated.limiter_key(request.instance), now)
                }
                None => limiter.check(&attrs(), now),
            }
        }
        None => Decision::Allowed,
    };
    replica.stats.local_rate_limit_enabled += 1;
    match decision {
        Decision::Allowed => replica.stats.local_rate_limit_ok += 1,
        Decision::ShadowLimited => {
            replica.stats.local_rate_limit_ok += 1;
            replica.stats.local_rate_limit_rate_limited += 1;
        }
        Decision::Limited => {
            replica.stats.local_rate_limit_rate_limited += 1;
            replica.stats.local_rate_limit_enforced += 1;
            return Some(config.status);
        }
    }
    None
}

const CALL_NOT_FOUND: &str =
    "call of a request in flight not found, though the request holds a reference to it";

/// Finds the first route matching a request.
pub(crate) fn match_route(model: &GatewayModel, request: &RequestAttrs<'_>) -> Option<usize> {
    model
        .routes
        .iter()
        .position(|route| route_matches(route, request))
}

fn route_matches(route: &Route, request: &RequestAttrs<'_>) -> bool {
    if !route.hostnames.is_empty()
        && !route
            .hostnames
            .iter()
            .any(|h| host_matches(h, request.host))
    {
        return false;
    }
    let path = request.path_only();
    let path_ok = match &route.path {
        PathMatch::Exact(expected) => path == expected,
        PathMatch::Prefix(prefix) => {
            let trimmed = prefix.trim_end_matches('/');
            trimmed.is_empty()
                || path == trimmed
                || (path.starts_with(trimmed) && path[trimmed.len()..].starts_with('/'))
        }
        PathMatch::Regex(regex) => regex.is_match(path),
    };
    path_ok
        && route.method.as_deref().is_none_or(|m| m == request.method)
        && crate::descriptor::headers_match(&route.headers, request)
        && crate::descriptor::query_params_match(&route.query_params, request)
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.split(':').next().unwrap_or(host);
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => pattern == "*" || pattern.eq_ignore_ascii_case(host),
    }
}

pub(super) fn hash_request(hash_on: &HashOn, request: &RequestAttrs<'_>) -> Option<u64> {
    let mut hasher = rng::Fnv1a::new();
    match hash_on {
        HashOn::SourceIp => {
            // Writing into a hasher cannot fail.
            let _ = write!(hasher, "{}", request.source_ip);
        }
        HashOn::Headers(names) => {
            for name in names {
                hasher.write(request.header(name)?.as_bytes());
                hasher.write(b"\x01");
            }
        }
        HashOn::Cookie(name) => {
            let cookies = request.header("cookie")?;
            let value = cookies.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value)
            })?;
            hasher.write(value.as_bytes());
        }
        HashOn::QueryParams(names) => {
            for name in names {
                hasher.write(request.query_param(name)?.as_bytes());
                hasher.write(b"\x01");
            }
        }
    }
    Some(hasher.finish())
}

impl World<'_> {
    /// Sends a reply Envoy generated itself (no upstream response).
    pub(super) fn local_reply(&mut self, handle: Handle, replica: u32, status: u16) {
        self.send_response(handle, replica, status, None);
    }

    /// Sends the final response of a request back to its client.
    pub(super) fn send_response(
        &mut self,
        handle: Handle,
        replica: u32,
        status: u16,
        retry_after: Option<SimDuration>,
    ) {
        // The downstream stream ends here, which is when response costs
        // reach the global rate limit service. Without any global filter,
        // no request reaches one, so there is nothing to send.
        if self.rate_limit_service.enabled {
            self.global_stream_done(handle);
        }
        self.proxies.replicas[replica as usize]
            .stats
            .count_response(status);
        let latency = self.scenario.envoy.client_latency;
        if latency.is_zero() {
            // The client handles the response at once: it records the call
            // and at most schedules its next request. No caller reads the
            // request after sending its response, so the hop needs no
            // queue event.
            self.response_at_client(handle, status, retry_after);
            return;
        }
        self.schedule_in(
            latency,
            Event::ResponseAtClient {
                request: handle,
                status,
                retry_after,
            },
        );
    }

    /// Drops a request whose client closed its connection before the
    /// response (its timeout fired). Envoy resets the request's upstream
    /// attempt, closing that connection, and stops retrying, while the
    /// backend finishes any work it already started. Returns false when
    /// the request was not found.
    pub(super) fn abandon_request(&mut self, handle: Handle) -> bool {
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return false;
        };
        let replica = request.replica;
        let mut current = None;
        let mut release_retry = None;
        if let Some(router) = request.router.as_mut()
            && !router.done
        {
            router.done = true;
            current = router.current;
            if router.retry_held {
                router.retry_held = false;
                release_retry = Some(router.cluster);
            }
        }
        if let Some(cluster) = release_retry {
            self.proxies.replicas[replica as usize].clusters[cluster as usize]
                .resources
                .end_retry();
        }
        self.proxies.replicas[replica as usize]
            .stats
            .downstream_rq_rx_reset += 1;
        if let Some(attempt) = current {
            self.reset_attempt_locally(attempt);
        }
        self.proxies.requests.discard(handle);
        self.proxies.in_flight = self.proxies.in_flight.saturating_sub(1);
        true
    }

    /// A request reached its replica: route it and run the filters.
    pub(super) fn arrive_at_proxy(&mut self, handle: Handle) {
        let scenario = self.scenario;
        let now = self.queue.now();
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return;
        };
        let replica_index = request.replica;
        let call = self.workload.calls.get(request.call).expect(CALL_NOT_FOUND);
        let instance = &mut self.workload.instances[request.instance as usize];
        let route_index = matched_route(&scenario.gateway, instance, call);
        let replica = &mut self.proxies.replicas[replica_index as usize];
        replica.stats.downstream_rq_total += 1;
        let Some(route_index) = route_index else {
            replica.stats.no_route += 1;
            self.local_reply(handle, replica_index, 404);
            return;
        };
        let route = &scenario.gateway.routes[route_index];
        if let RouteAction::DirectResponse { status, .. } = route.action {
            self.local_reply(handle, replica_index, status);
            return;
        }
        let mut abort = None;
        let mut delay = None;
        if let Some(fault) = &route.fault {
            // Envoy draws the delay and the abort independently and applies
            // the abort after the delay.
            if let Some(spec) = &fault.delay
                && rng::chance(&mut replica.rng, spec.percentage / 100.0)
            {
                replica.stats.fault_delays_injected += 1;
                delay = Some(spec.fixed_delay);
            }
            if let Some(spec) = &fault.abort
                && rng::chance(&mut replica.rng, spec.percentage / 100.0)
            {
                abort = Some(spec.http_status);
            }
        }
        request.route = route_index as u32;
        request.fault_abort = abort;
        if let Some(delay) = delay {
            self.schedule_in(delay, Event::FaultDelayDone { request: handle });
            return;
        }
        let reply = run_filters_after_delay(
            route,
            route_index,
            abort,
            replica,
            &self.workload,
            request,
            now,
        );
        self.finish_local_filters(handle, replica_index, route, reply);
    }

    /// The filters after the fault filter's delay: abort, local rate limit,
    /// then the global rate limit and the router.
    pub(super) fn after_fault_delay(&mut self, handle: Handle) {
        let scenario = self.scenario;
        let now = self.queue.now();
        let Some(request) = self.proxies.requests.get(handle) else {
            return;
        };
        let Some(route_index) = request.route() else {
            return;
        };
        let replica_index = request.replica;
        let route = &scenario.gateway.routes[route_index];
        let reply = run_filters_after_delay(
            route,
            route_index,
            request.fault_abort,
            &mut self.proxies.replicas[replica_index as usize],
            &self.workload,
            request,
            now,
        );
        self.finish_local_filters(handle, replica_index, route, reply);
    }

    /// Sends the local reply of the fault or local rate limit filter, if
    /// any, or else hands the request on to the global rate limit filters,
    /// or straight to the router when the route has none.
    fn finish_local_filters(
        &mut self,
        handle: Handle,
        replica: u32,
        route: &Route,
        reply: Option<u16>,
    ) {
        match reply {
            Some(status) => self.local_reply(handle, replica, status),
            None if rate_limit_service::global_filter(route, 0).is_some() => {
                self.run_global_filters(handle)
            }
            None => self.router_start(handle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_hosts_need_a_label() {
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("Example.com", "example.com:8080"));
    }
}
