//! The simulation: clients, Envoy replicas and backends exchanging events
//! on one queue.
//!
//! [`run`] is a pure function of `(scenario, seed)`: it reads no clock, no
//! environment and no file, and it is single-threaded. Each component draws
//! from its own named random stream, so adding a client does not change the
//! draws of any other. The submodules split the world by concept: clients
//! (`workload`), Envoy's request path (`proxy`), its router (`router`) and
//! upstream connections with outlier detection (`upstream`), backend
//! endpoints (`backend`) and Envoy's stat names (`stats`).

mod backend;
mod call;
mod proxy;
mod rate_limit_service;
mod router;
mod stats;
mod timers;
mod upstream;
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use crate::engine::EventQueue;
use crate::global_rate_limit::CallResult;
use crate::metrics::{Metrics, Probe};
use crate::rng::Streams;
use crate::scenario::Scenario;
use crate::time::{SimDuration, SimTime};

pub use proxy::OutlierEvent;
pub use rate_limit_service::GlobalRateLimitReport;
pub use stats::EnvoyStats;

use crate::scenario::EndpointFailure;

/// A slab slot handle: index plus generation, so an event about a freed
/// and reused slot is recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    pub index: u32,
    pub generation: u32,
}

/// A slab of values addressed by [`Handle`]s.
pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, value: T) -> Handle {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(value);
            return Handle {
                index,
                generation: slot.0,
            };
        }
        let index = self.slots.len() as u32;
        self.slots.push((0, Some(value)));
        Handle {
            index,
            generation: 0,
        }
    }

    pub fn get(&self, handle: Handle) -> Option<&T> {
        match self.slots.get(handle.index as usize) {
            Some((generation, Some(value))) if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, handle: Handle) -> Option<&mut T> {
        match self.slots.get_mut(handle.index as usize) {
            Some((generation, Some(value))) if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    pub fn remove(&mut self, handle: Handle) -> Option<T> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.0 != handle.generation || slot.1.is_none() {
            return None;
        }
        self.live -= 1;
        self.free.push(handle.index);
        slot.1.take()
    }

    /// Drops the value of `handle` where it lies, without moving it out as
    /// [`Slab::remove`] does. Returns false when the handle is stale.
    pub fn discard(&mut self, handle: Handle) -> bool {
        match self.slots.get_mut(handle.index as usize) {
            Some((generation, value)) if *generation == handle.generation && value.is_some() => {
                self.live -= 1;
                self.free.push(handle.index);
                *value = None;
                true
            }
            _ => false,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// The handle of the live value at `index`, if any.
    pub fn handle_at(&self, index: u32) -> Option<Handle> {
        match self.slots.get(index as usize) {
            Some((generation, Some(_))) => Some(Handle {
                index,
                generation: *generation,
            }),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots ever allocated: the high-water mark of live values.
    pub fn capacity_used(&self) -> usize {
        self.slots.len()
    }
}

/// Everything that happens in the simulation.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// A client definition may start its instances (its start delay ended).
    GroupStart {
        group: u32,
    },
    /// A client instance sends its next request (`slot` is the worker of a
    /// closed-loop client).
    ClientSend {
        instance: u32,
        slot: u32,
    },
    /// A client's timeout for try number `try_number` of a call fired.
    ClientTimeout {
        call: Handle,
        try_number: u32,
    },
    /// A client's wait before retrying a call ended.
    ClientRetry {
        call: Handle,
    },
    /// A request reached its Envoy replica.
    ArriveAtProxy {
        request: Handle,
    },
    /// The fault filter's delay ended.
    FaultDelayDone {
        request: Handle,
    },
    /// An upstream connection finished its handshake.
    Connected {
        replica: u32,
        cluster: u32,
        worker: u32,
        host: u32,
    },
    /// An upstream connection attempt was rejected or timed out.
    ConnectFailed {
        replica: u32,
        cluster: u32,
        worker: u32,
        host: u32,
        timed_out: bool,
    },
    /// An attempt reached its backend endpoint. `work` is its handle in
    /// `Backends::in_transit`.
    BackendArrive {
        endpoint: u32,
        work: Handle,
    },
    /// An endpoint finished serving an attempt it took in `epoch`.
    BackendDone {
        endpoint: u32,
        attempt: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
        epoch: u32,
    },
    /// Response headers of an attempt reached Envoy.
    UpstreamResponse {
        attempt: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
    },
    /// The backend reset an attempt's stream or closed its connection.
    UpstreamReset {
        attempt: Handle,
    },
    /// An endpoint's `refuse` or `no_answer` window starts.
    EndpointFailureStarts {
        endpoint: u32,
        failure: EndpointFailure,
    },
    /// An outlier detector's interval timer fired.
    OutlierTick {
        replica: u32,
        cluster: u32,
    },
    /// Host health changes held by the update merge window are due.
    HealthDelivery {
        replica: u32,
        cluster: u32,
    },
    RetryBackoffDone {
        request: Handle,
    },
    /// The route timeouts of one route that are due now fire.
    RouteTimeouts {
        route: u32,
    },
    PerTryTimeout {
        attempt: Handle,
    },
    /// The final response reached the client.
    ResponseAtClient {
        request: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
    },
    /// A global rate limit call reached its service replica.
    RateLimitCallArrive {
        call: Handle,
    },
    /// A call's pipeline reached a Redis of bounded concurrency.
    RedisArrive {
        call: Handle,
    },
    /// Redis runs the pipeline of a call.
    RedisExecute {
        call: Handle,
    },
    /// Redis's response reached the service replica.
    RedisResponse {
        call: Handle,
    },
    /// The result of a call reached the Envoy filter waiting for it.
    RateLimitResponse {
        request: Handle,
        call: Handle,
        result: CallResult,
    },
    /// Envoy's deadline for a call passed.
    RateLimitTimeout {
        request: Handle,
        call: Handle,
    },
}

/// Why a run stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truncation {
    MaxEvents(u64),
    MaxInFlight(u64),
    /// The stop flag was set at this simulated time.
    Interrupted(SimTime),
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Truncation::MaxEvents(limit) => write!(
                f,
                "stopped after {limit} events (limits.max_events); raise it in the scenario's \
                 `limits:` section if the run is meant to be this large"
            ),
            Truncation::MaxInFlight(limit) => write!(
                f,
                "stopped with more than {limit} requests in flight (limits.max_in_flight); the \
                 system is overloaded without bound, or raise the limit in the scenario's \
                 `limits:` section"
            ),
            Truncation::Interrupted(at) => write!(
                f,
                "interrupted at {at} of simulated time; the outputs cover the run up to there \
                 and are partial"
            ),
        }
    }
}

/// The result of one run.
pub struct RunOutput {
    pub seed: u64,
    pub metrics: Metrics,
    pub envoy_stats: EnvoyStats,
    /// Envoy's gauges at the end of the run, summed over replicas, under
    /// Envoy's names (`cluster.<name>.upstream_rq_active`, ...).
    pub envoy_gauges: EnvoyStats,
    /// Envoy's stats of each replica, in replica order; their sum is
    /// `envoy_stats`.
    pub envoy_stats_per_replica: Vec<EnvoyStats>,
    /// Simulated time at which the run ended.
    pub end: SimTime,
    pub events: u64,
    /// Requests still in flight when the run ended.
    pub in_flight_at_end: u64,
    /// Set when a limit stopped the run early.
    pub truncated: Option<Truncation>,
    /// Notes for the user about how the scenario was simulated.
    pub notes: Vec<String>,
    /// Highest circuit-breaker usage per cluster name, summed over nothing:
    /// the maximum over replicas.
    pub peak_active_requests: BTreeMap<String, u32>,
    /// Per-request records, when asked for.
    pub requests: Vec<RequestRecord>,
    /// Outlier ejections and returns, in time order (at most 1000).
    pub outlier_events: Vec<OutlierEvent>,
    /// Ejections and returns beyond those kept.
    pub outlier_events_dropped: u64,
    /// Global rate limiting, when a route has a global limit.
    pub global_rate_limit: Option<GlobalRateLimitReport>,
}

/// What to keep beyond the aggregate metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Keep one [`RequestRecord`] per completed request. Memory then grows
    /// with the number of requests.
    pub record_requests: bool,
    /// When this flag is set (for example on Ctrl-C) the run stops at the
    /// next check, every 1024 events, and is marked as interrupted.
    pub stop: Option<&'static AtomicBool>,
}

/// One completed client call, kept when [`RunOptions::record_requests`]
/// is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Index of the client definition in the scenario.
    pub group: u32,
    pub instance: u32,
    /// When the client sent the call's first request.
    pub sent: SimTime,
    pub completed: SimTime,
    /// Final status; [`crate::metrics::CLIENT_TIMEOUT_STATUS`] when the
    /// client gave up waiting.
    pub status: u16,
    /// Upstream attempts Envoy made for the last request of the call
    /// (`x-envoy-attempt-count`; 0 for a local reply or a timeout).
    pub attempts: u32,
    /// Requests the client sent for the call: 1 plus its own retries.
    pub tries: u32,
    /// Index, within the route's cluster, of the host of the last attempt
    /// of the call's last request; `None` for a local reply.
    pub last_host: Option<u32>,
}

/// Runs `scenario` with `seed`, keeping aggregate metrics only.
pub fn run(scenario: &Scenario, seed: u64) -> RunOutput {
    run_with(scenario, seed, RunOptions::default())
}

/// Runs `scenario` with `seed`.
pub fn run_with(scenario: &Scenario, seed: u64, options: RunOptions) -> RunOutput {
    run_with_probes(scenario, seed, options, Vec::new())
}

/// Runs `scenario` with `seed`, filling `probes` as well; they come back
/// in `metrics.probes` in the same order. Probes only count, so the run's
/// other results are the same as without them.
pub fn run_with_probes(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
    probes: Vec<Probe>,
) -> RunOutput {
    run_inner(scenario, seed, options, probes, &mut |_| {})
}

/// How far a run has got, passed to the observer of [`run_observed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Simulated time of the event just processed.
    pub now: SimTime,
    /// Simulated time at which the run stops at the latest: the scenario's
    /// `duration`, or `limits.max_duration` without one.
    pub end: SimTime,
    pub events: u64,
}

/// Events processed between two calls of a run's observer.
const EVENTS_PER_PROGRESS: u64 = 1 << 16;

/// Runs `scenario` with `seed`, calling `observe` every 65,536 events. The
/// observer receives the run's progress only and cannot change the
/// outcome, so the output is the same as [`run_with`]'s.
pub fn run_observed(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
    observe: &mut dyn FnMut(Progress),
) -> RunOutput {
    run_inner(scenario, seed, options, Vec::new(), observe)
}

fn run_inner(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
    probes: Vec<Probe>,
    observe: &mut dyn FnMut(Progress),
) -> RunOutput {
    let mut world = World::new(scenario, seed);
    world.options = options;
    world.metrics.probes = probes;
    world.start();
    world.run_loop(observe);
    world.finish()
}

/// The whole simulated system.
pub(crate) struct World<'s> {
    pub scenario: &'s Scenario,
    pub queue: EventQueue<Event>,
    pub streams: Streams,
    pub metrics: Metrics,
    pub workload: workload::Workload,
    pub proxies: proxy::Proxies,
    pub backends: backend::Backends,
    pub rate_limit_service: rate_limit_service::RateLimitService,
    pub notes: Vec<String>,
    pub options: RunOptions,
    pub records: Vec<RequestRecord>,
    /// Route timeouts waiting to fire, one list per route.
    pub route_timers: Vec<timers::FifoTimers<Handle>>,
    end: SimTime,
}

impl<'s> World<'s> {
    fn new(scenario: &'s Scenario, seed: u64) -> World<'s> {
        let streams = Streams::new(seed);
        let groups: Vec<(String, u32)> = scenario
            .clients
            .iter()
            .map(|client| (client.name.clone(), client.count))
            .collect();
        let backends = backend::Backends::new(scenario, &streams);
        let endpoints = backends.endpoints.len();
        let proxies = proxy::Proxies::new(scenario, &backends, &streams);
        let workload = workload::Workload::new(scenario, &streams);
        let rate_limit_service = rate_limit_service::RateLimitService::new(scenario, &streams);
        let end = match scenario.duration {
            Some(duration) => SimTime::ZERO + duration,
            None => SimTime::ZERO + scenario.limits.max_duration,
        };
        World {
            scenario,
            queue: EventQueue::new(),
            streams,
            metrics: Metrics::new(&groups, scenario.output.bucket, endpoints),
            workload,
            proxies,
            backends,
            rate_limit_service,
            notes: Vec::new(),
            options: RunOptions::default(),
            records: Vec::new(),
            route_timers: scenario
                .gateway
                .routes
                .iter()
                .map(|_| timers::FifoTimers::default())
                .collect(),
            end,
        }
    }

    fn start(&mut self) {
        self.notes.extend(self.proxies.startup_notes(self.scenario));
        for (cluster, spec) in self.scenario.gateway.clusters.iter().enumerate() {
            let Some(detection) = &spec.outlier_detection else {
                continue;
            };
            if detection.interval.is_zero() {
                continue;
            }
            for replica in 0..self.scenario.envoy.replicas {
                self.queue.schedule_at(
                    SimTime::ZERO + detection.interval,
                    Event::OutlierTick {
                        replica,
                        cluster: cluster as u32,
                    },
                );
            }
        }
        for (endpoint, state) in self.backends.endpoints.iter().enumerate() {
            let backend = &self.scenario.backends[state.backend];
            for window in &backend.schedule {
                let covered = window
                    .endpoints
                    .as_ref()
                    .is_none_or(|list| list.contains(&state.index));
                let failure = window.failure.filter(|f| *f != EndpointFailure::Reset);
                if let (true, Some(failure)) = (covered, failure) {
                    self.queue.schedule_at(
                        SimTime::ZERO + window.from,
                        Event::EndpointFailureStarts {
                            endpoint: endpoint as u32,
                            failure,
                        },
                    );
                }
            }
        }
        for (group, client) in self.scenario.clients.iter().enumerate() {
            if client.after.is_none() {
                self.queue.schedule_at(
                    SimTime::ZERO + client.start,
                    Event::GroupStart {
                        group: group as u32,
                    },
                );
            }
        }
    }

    fn run_loop(&mut self, observe: &mut dyn FnMut(Progress)) {
        loop {
            if self.scenario.duration.is_none()
                && self.workload.all_done()
                && self.proxies.in_flight == 0
            {
                break;
            }
            if let Some(truncation) = self.truncation() {
                // A limit truncates the run only if it leaves an event due
                // by the end unprocessed.
                if self.queue.peek_time().is_some_and(|time| time <= self.end) {
                    self.workload.truncated = Some(truncation);
                }
                break;
            }
            let Some((now, event)) = self.queue.pop_at_or_before(self.end) else {
                break;
            };
            self.metrics.advance(now);
            self.dispatch(event);
            let events = self.queue.events_processed();
            if events.is_multiple_of(EVENTS_PER_PROGRESS) {
                observe(Progress {
                    now,
                    end: self.end,
                    events,
                });
            }
        }
    }

    /// Returns the limit reached, or the interruption, that stops the run
    /// before its next event.
    fn truncation(&self) -> Option<Truncation> {
        let limits = &self.scenario.limits;
        if self.queue.events_processed() >= limits.max_events {
            return Some(Truncation::MaxEvents(limits.max_events));
        }
        if self.proxies.in_flight > limits.max_in_flight {
            return Some(Truncation::MaxInFlight(limits.max_in_flight));
        }
        if self.queue.events_processed().is_multiple_of(1024)
            && self
                .options
                .stop
                .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Some(Truncation::Interrupted(self.queue.now()));
        }
        None
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::GroupStart { group } => self.start_group(group as usize),
            Event::ClientSend { instance, slot } => self.client_send(instance, slot),
            Event::ClientTimeout { call, try_number } => self.client_timeout(call, try_number),
            Event::ClientRetry { call } => self.client_retry(call),
            Event::ArriveAtProxy { request } => self.arrive_at_proxy(request),
            Event::FaultDelayDone { request } => self.after_fault_delay(request),
            Event::Connected {
                replica,
                cluster,
                worker,
                host,
            } => self.connected(replica, cluster, worker, host),
            Event::ConnectFailed {
                replica,
                cluster,
                worker,
                host,
                timed_out,
            } => self.connect_failed(replica, cluster, worker, host, timed_out),
            Event::BackendArrive { endpoint, work } => self.arrive_after_transit(endpoint, work),
            Event::BackendDone {
                endpoint,
                attempt,
                status,
                retry_after,
                epoch,
            } => self.backend_done(endpoint, attempt, status, retry_after, epoch),
            Event::UpstreamResponse {
                attempt,
                status,
                retry_after,
            } => self.upstream_response(attempt, status, retry_after),
            Event::UpstreamReset { attempt } => self.upstream_reset(attempt),
            Event::EndpointFailureStarts { endpoint, failure } => {
                self.endpoint_failure_starts(endpoint, failure)
            }
            Event::OutlierTick { replica, cluster } => self.outlier_tick(replica, cluster),
            Event::HealthDelivery { replica, cluster } => self.health_delivery(replica, cluster),
            Event::RetryBackoffDone { request } => self.retry_backoff_done(request),
            Event::RouteTimeouts { route } => self.route_timeouts_due(route),
            Event::PerTryTimeout { attempt } => self.per_try_timeout(attempt),
            Event::ResponseAtClient {
                request,
                status,
                retry_after,
            } => self.response_at_client(request, status, retry_after),
            Event::RateLimitCallArrive { call } => self.rate_limit_call_arrive(call),
            Event::RedisArrive { call } => self.redis_arrive(call),
            Event::RedisExecute { call } => self.redis_execute(call),
            Event::RedisResponse { call } => self.redis_response(call),
            Event::RateLimitResponse {
                request,
                call,
                result,
            } => self.rate_limit_response(request, call, result),
            Event::RateLimitTimeout { request, call } => self.rate_limit_timeout(request, call),
        }
    }

    fn finish(mut self) -> RunOutput {
        let end = if self.scenario.duration.is_some() && self.workload.truncated.is_none() {
            self.end.max(self.queue.now())
        } else {
            self.queue.now()
        };
        self.metrics.advance(end);
        self.metrics.finish();
        let envoy_stats = self.proxies.collect_stats(self.scenario);
        let envoy_gauges = self.proxies.collect_gauges(self.scenario);
        self.notes.extend(self.proxies.outlier_notes(self.scenario));
        let envoy_stats_per_replica = self.proxies.collect_replica_stats(self.scenario);
        let peak_active_requests = self.proxies.peak_active_requests(self.scenario);
        RunOutput {
            seed: self.streams.seed(),
            envoy_stats,
            envoy_gauges,
            envoy_stats_per_replica,
            end,
            events: self.queue.events_processed(),
            in_flight_at_end: self.proxies.in_flight,
            truncated: self.workload.truncated.take(),
            notes: self.notes,
            peak_active_requests,
            requests: self.records,
            global_rate_limit: self.rate_limit_service.report(),
            metrics: self.metrics,
            outlier_events: std::mem::take(&mut self.proxies.outlier_events),
            outlier_events_dropped: self.proxies.outlier_events_dropped,
        }
    }

    pub(crate) fn now(&self) -> SimTime {
        self.queue.now()
    }

    pub(crate) fn schedule_in(&mut self, delay: SimDuration, event: Event) {
        self.queue.schedule_in(delay, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_detects_stale_handles() {
        let mut slab = Slab::default();
        let first = slab.insert("a");
        assert_eq!(slab.remove(first), Some("a"));
        let second = slab.insert("b");
        assert_eq!(second.index, first.index);
        assert!(slab.get(first).is_none());
        assert_eq!(slab.get(second), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }
}
