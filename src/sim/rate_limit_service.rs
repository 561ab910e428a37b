//! The rate limit service and its Redis as parts of the simulated world,
//! and the global rate limit filters of Envoy's request path.
//!
//! A call from a filter crosses the network to one service replica. The
//! replica plans it after its service time and sends one pipeline to
//! Redis, which runs it after its own service time. The response travels
//! back the same way. Fault windows apply when a call reaches its replica
//! and when a pipeline is sent to and reaches Redis. Envoy waits for the
//! response or its timeout, whichever comes first. The service finishes its
//! work either way, so counters still grow after Envoy has given up, as in
//! the real system.
//!
//! Each Envoy worker keeps one gRPC connection to the service, and a
//! Kubernetes Service picks the replica once per connection. Worker `w` of
//! Envoy replica `r` therefore talks to service replica
//! `(r * workers + w) mod replicas` for the whole run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use super::{Event, Handle, Slab, World};
use crate::gateway::{GlobalRateLimit, HitsAddend, Route, RouteAction};
use crate::global_rate_limit::{
    self, CallPlan, CallResult, FilterDecision, FilterSettings, LimitStats, LocalCache, Phase,
    RateLimitRequest, Redis, ServiceConfig, TokenUsage,
};
use crate::rng::{Stream, Streams};
use crate::scenario::{FaultKind, Scenario};
use crate::time::{SimDuration, SimTime};

/// Time the service waits for Redis before it returns an error: its
/// `REDIS_TIMEOUT` default.
const REDIS_TIMEOUT: SimDuration = SimDuration::from_secs(10);

/// The per-request state of the global rate limit filters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GlobalFilterState {
    /// Index of the next filter to run.
    pub next: u32,
    /// Filters whose request phase ran; each may call again when the
    /// stream ends.
    pub reached: u32,
    /// The call the request is waiting for.
    pub waiting: Option<Handle>,
    /// A filter failed open, so the request passed without that limit.
    pub unlimited: bool,
}

/// Counts of a run's global rate limit calls and their outcomes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalRateLimitReport {
    /// Calls Envoy made while holding a request.
    pub calls: u64,
    /// Calls Envoy made when a stream ended (response cost).
    pub stream_done_calls: u64,
    /// Responses that let the request continue.
    pub ok: u64,
    /// Responses over the limit: requests rejected with 429.
    pub over_limit: u64,
    /// Calls that failed or timed out.
    pub error: u64,
    /// Of `error`, calls with no response before the filter's timeout.
    pub timeouts: u64,
    /// Failed calls whose request went on without the limit (fail open).
    pub failure_mode_allowed: u64,
    /// Failed calls whose request was rejected (fail closed).
    pub failed_closed: u64,
    /// Requests that reached the router after at least one filter failed
    /// open: requests that passed without their global limit.
    pub passed_unlimited: u64,
    /// `passed_unlimited` per time bucket of the run's time series.
    pub passed_unlimited_per_bucket: Vec<u64>,
    /// The service's own per-limit stats, by name.
    pub service_stats: BTreeMap<String, u64>,
    /// Most counters Redis held at once.
    pub redis_peak_keys: u64,
    /// With a Redis `concurrency`: the maximum number of pipelines waiting
    /// at once, and the maximum wait.
    pub redis_queue: Option<RedisQueueReport>,
    /// With a service `concurrency`: the maximum time a call waited for
    /// its replica.
    pub service_max_wait: Option<SimDuration>,
}

/// How far Redis fell behind when it runs a bounded number of pipelines.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RedisQueueReport {
    pub peak_waiting: u64,
    /// Maximum wait of the pipelines Redis started before the run ended.
    pub max_wait: SimDuration,
    /// Pipelines still waiting when the run ended.
    pub waiting_at_end: u64,
}

/// One call between Envoy and the service.
struct Call {
    /// The request waiting for the response; `None` for a stream-done call.
    request: Option<Handle>,
    service_replica: u32,
    message: RateLimitRequest,
    plan: CallPlan,
    /// Counter values Redis returned, one per planned descriptor.
    counts: Vec<u64>,
    /// Time Redis takes to run the pipeline, drawn when it is sent.
    redis_time: SimDuration,
    /// When the pipeline reached Redis, while it waits for a free slot.
    redis_arrived: SimTime,
}

/// Pipelines Redis is running and those waiting, when its concurrency is
/// bounded.
#[derive(Default)]
struct RedisQueue {
    running: u32,
    waiting: VecDeque<Handle>,
    report: RedisQueueReport,
}

struct ServiceReplica {
    rng: Stream,
    cache: Option<LocalCache>,
    /// With a bounded concurrency: when each of the replica's slots is
    /// next free, earliest first.
    slots_free_at: BinaryHeap<Reverse<SimTime>>,
}

/// The service replicas, Redis, and the calls in flight between them.
pub(crate) struct RateLimitService {
    config: ServiceConfig,
    stats: Vec<LimitStats>,
    replicas: Vec<ServiceReplica>,
    redis: Redis,
    redis_rng: Stream,
    /// Set when Redis runs a bounded number of pipelines at once.
    redis_queue: Option<RedisQueue>,
    /// Set when service replicas process a bounded number of calls at once.
    service_max_wait: Option<SimDuration>,
    calls: Slab<Call>,
    settings: FilterSettings,
    start_unix_s: u64,
    bucket: SimDuration,
    /// Whether any route has a global rate limit filter.
    pub enabled: bool,
    report: GlobalRateLimitReport,
}

impl RateLimitService {
    pub fn new(scenario: &Scenario, streams: &Streams) -> RateLimitService {
        let spec = &scenario.rate_limit_service;
        let config = ServiceConfig::from_model(&scenario.gateway);
        let replicas = (0..spec.replicas)
            .map(|index| ServiceReplica {
                rng: streams.stream("rate-limit-service", u64::from(index)),
                cache: spec.local_cache.then(LocalCache::default),
                slots_free_at: (0..spec.concurrency.unwrap_or(0))
                    .map(|_| Reverse(SimTime::ZERO))
                    .collect(),
            })
            .collect();
        let enabled = scenario
            .gateway
            .routes
            .iter()
            .any(|route| global_filter(route, 0).is_some());
        RateLimitService {
            stats: vec![LimitStats::default(); config.limits().len()],
            config,
            replicas,
            redis: Redis::default(),
            redis_rng: streams.stream("redis", 0),
            redis_queue: spec.redis.concurrency.map(|_| RedisQueue::default()),
            service_max_wait: spec.concurrency.map(|_| SimDuration::ZERO),
            calls: Slab::default(),
            settings: FilterSettings {
                failure_mode_deny: spec.fail_closed,
                ..FilterSettings::default()
            },
            start_unix_s: scenario.start_unix_s,
            bucket: scenario.output.bucket,
            enabled,
            report: GlobalRateLimitReport::default(),
        }
    }

    /// Converts simulated time `now` to the service's wall clock, in Unix
    /// seconds.
    fn unix_s(&self, now: SimTime) -> u64 {
        self.start_unix_s + now.as_nanos() / 1_000_000_000
    }

    /// Returns the run's totals, or `None` when no route has a global limit.
    pub fn report(&self) -> Option<GlobalRateLimitReport> {
        if !self.enabled {
            return None;
        }
        let mut report = self.report.clone();
        report.service_stats = self.config.stats_by_name(&self.stats);
        report.redis_peak_keys = self.redis.peak_keys() as u64;
        report.service_max_wait = self.service_max_wait;
        report.redis_queue = self.redis_queue.as_ref().map(|queue| RedisQueueReport {
            waiting_at_end: queue.waiting.len() as u64,
            ..queue.report
        });
        Some(report)
    }
}

/// Returns the route's global rate limit filter number `index`, in Envoy
/// Gateway's order: the listener's filter, then one per policy with
/// `shared` rules.
pub(crate) fn global_filter(route: &Route, index: u32) -> Option<&GlobalRateLimit> {
    route
        .global_rate_limit
        .iter()
        .chain(&route.shared_global_rate_limits)
        .nth(index as usize)
}

/// Writes a note for each route whose request cost is read from dynamic
/// metadata. Nothing writes that metadata before the backend responds, so
/// Envoy drops the descriptor and the rule limits nothing on the request
/// path.
pub(crate) fn startup_notes(scenario: &Scenario) -> Vec<String> {
    let mut notes = Vec::new();
    for route in &scenario.gateway.routes {
        let configs = route
            .global_rate_limit
            .iter()
            .chain(&route.shared_global_rate_limits);
        let metadata_on_request = configs.flat_map(|c| &c.rate_limits).any(|entry| {
            !entry.apply_on_stream_done
                && matches!(entry.hits_addend, Some(HitsAddend::Metadata { .. }))
        });
        if metadata_on_request {
            notes.push(format!(
                "route {}: a global rule takes its request cost from dynamic metadata, which is \
                 absent while the request is decoded, so Envoy drops that descriptor and the rule \
                 limits nothing; use `cost.request: {{from: Number, number: 0}}` with \
                 `cost.response` to limit by tokens",
                route.name
            ));
        }
    }
    notes
}

impl World<'_> {
    /// Runs the route's global rate limit filters from the next one on,
    /// then hands the request to the router once all of them let it pass.
    pub(super) fn run_global_filters(&mut self, handle: Handle) {
        let scenario = self.scenario;
        loop {
            let Some(request) = self.proxies.requests.get_mut(handle) else {
                return;
            };
            let Some(route_index) = request.route() else {
                return;
            };
            let route = &scenario.gateway.routes[route_index];
            let Some(config) = global_filter(route, request.global.next) else {
                break;
            };
            request.global.next += 1;
            request.global.reached = request.global.next;
            let message = global_rate_limit::build_request(
                config,
                &request.attrs(&self.workload),
                Phase::Request,
                None,
            );
            if let Some(message) = message {
                let (replica, worker) = (request.replica, request.worker);
                self.start_call(Some(handle), replica, worker, message);
                return;
            }
        }
        let unlimited = self
            .proxies
            .requests
            .get(handle)
            .is_some_and(|request| request.global.unlimited);
        if unlimited {
            let report = &mut self.rate_limit_service.report;
            report.passed_unlimited += 1;
            let bucket = (self.queue.now().as_nanos()
                / self.rate_limit_service.bucket.as_nanos().max(1))
                as usize;
            let per_bucket = &mut report.passed_unlimited_per_bucket;
            if per_bucket.len() <= bucket {
                per_bucket.resize(bucket + 1, 0);
            }
            per_bucket[bucket] += 1;
        }
        self.router_start(handle);
    }

    /// Sends the `apply_on_stream_done` descriptors of every filter whose
    /// request phase ran, when the request's stream ends. Nothing waits for
    /// these calls.
    pub(super) fn global_stream_done(&mut self, handle: Handle) {
        let scenario = self.scenario;
        let Some(request) = self.proxies.requests.get(handle) else {
            return;
        };
        if request.global.reached == 0 {
            return;
        }
        let Some(route_index) = request.route() else {
            return;
        };
        let route = &scenario.gateway.routes[route_index];
        let tokens = match self.workload.calls.get(request.call) {
            Some(call) if request.response_2xx => Some(TokenUsage {
                input: call.input_tokens,
                output: call.output_tokens,
            }),
            _ => None,
        };
        let messages: Vec<RateLimitRequest> = (0..request.global.reached)
            .filter_map(|index| global_filter(route, index))
            .filter_map(|config| {
                global_rate_limit::build_request(
                    config,
                    &request.attrs(&self.workload),
                    Phase::StreamDone,
                    tokens,
                )
            })
            .collect();
        let (replica, worker) = (request.replica, request.worker);
        for message in messages {
            self.start_call(None, replica, worker, message);
        }
    }

    fn start_call(
        &mut self,
        request: Option<Handle>,
        replica: u32,
        worker: u32,
        message: RateLimitRequest,
    ) {
        let scenario = self.scenario;
        let spec = &scenario.rate_limit_service;
        let connection = u64::from(replica) * u64::from(scenario.envoy.workers) + u64::from(worker);
        let service_replica = (connection % u64::from(spec.replicas.max(1))) as u32;
        let call = self.rate_limit_service.calls.insert(Call {
            request,
            service_replica,
            message,
            plan: CallPlan::default(),
            counts: Vec::new(),
            redis_time: SimDuration::ZERO,
            redis_arrived: SimTime::ZERO,
        });
        self.schedule_in(spec.network_latency, Event::RateLimitCallArrive { call });
        match request {
            Some(request) => {
                self.rate_limit_service.report.calls += 1;
                if let Some(state) = self.proxies.requests.get_mut(request) {
                    state.global.waiting = Some(call);
                }
                self.schedule_in(spec.timeout, Event::RateLimitTimeout { request, call });
            }
            None => self.rate_limit_service.report.stream_done_calls += 1,
        }
    }

    /// Handles a call reaching its service replica: the replica plans it,
    /// then responds at once or sends the pipeline to Redis.
    pub(super) fn rate_limit_call_arrive(&mut self, call: Handle) {
        let scenario = self.scenario;
        let spec = &scenario.rate_limit_service;
        let now = self.now();
        let at = now.saturating_since(SimTime::ZERO);
        let Some(replica) = self
            .rate_limit_service
            .calls
            .get(call)
            .map(|state| state.service_replica)
        else {
            return;
        };
        let mut extra = SimDuration::ZERO;
        for fault in spec.faults.iter().filter(|f| f.applies(at, replica)) {
            match fault.kind {
                // A refused connection fails the call at once.
                FaultKind::Down => {
                    self.respond(call, CallResult::Error, spec.network_latency);
                    return;
                }
                FaultKind::Slow { delay } => extra = extra + delay,
                FaultKind::Partition => {}
            }
        }
        let service = &mut self.rate_limit_service;
        let unix_s = service.unix_s(now);
        let service_replica = &mut service.replicas[replica as usize];
        let mut processing = sample(&spec.service_time, &mut service_replica.rng) + extra;
        // With bounded concurrency the replica is a FIFO multi-server
        // queue: calls are handled in arrival order, so the call starts
        // when the earliest slot frees. The wait is added to its time.
        // NOTE: the call is planned (its window and the local cache read)
        // on arrival rather than when its wait ends.
        if let Some(Reverse(free_at)) = service_replica.slots_free_at.pop() {
            let start = free_at.max(now);
            service_replica
                .slots_free_at
                .push(Reverse(start + processing));
            let wait = start.saturating_since(now);
            processing = wait + processing;
            if let Some(max_wait) = service.service_max_wait.as_mut() {
                *max_wait = (*max_wait).max(wait);
            }
        }
        let Some(state) = service.calls.get_mut(call) else {
            return;
        };
        state.plan = service.config.plan(
            &state.message,
            unix_s,
            service_replica.cache.as_ref(),
            &mut service.stats,
        );
        if !state.plan.needs_redis() {
            let response = service.config.finish(
                &state.plan,
                &[],
                service_replica.cache.as_mut(),
                &mut service.stats,
                unix_s,
            );
            self.respond(
                call,
                response.code.into(),
                processing + spec.network_latency,
            );
            return;
        }

        // The pipeline leaves after the replica's service time.
        let redis = &spec.redis;
        let sent_at = at + processing;
        let partitioned = redis
            .faults
            .iter()
            .any(|f| f.kind == FaultKind::Partition && f.applies(sent_at, replica));
        if partitioned {
            let give_up = processing + REDIS_TIMEOUT + spec.network_latency;
            self.respond(call, CallResult::Error, give_up);
            return;
        }
        let arrives_at = sent_at + redis.network_latency;
        let mut redis_extra = SimDuration::ZERO;
        for fault in redis
            .faults
            .iter()
            .filter(|f| f.applies(arrives_at, replica))
        {
            match fault.kind {
                FaultKind::Down => {
                    let refused = processing + redis.network_latency + redis.network_latency;
                    self.respond(call, CallResult::Error, refused + spec.network_latency);
                    return;
                }
                FaultKind::Slow { delay } => redis_extra = redis_extra + delay,
                FaultKind::Partition => {}
            }
        }
        // NOTE: Envoy's circuit breaker on the cluster of the service is
        // not simulated. The service and Redis saturate only when the
        // scenario bounds their concurrency.
        let redis_time = sample(&redis.service_time, &mut service.redis_rng) + redis_extra;
        if service.redis_queue.is_none() {
            self.schedule_in(
                processing + redis.network_latency + redis_time,
                Event::RedisExecute { call },
            );
            return;
        }
        if let Some(state) = service.calls.get_mut(call) {
            state.redis_time = redis_time;
        }
        self.schedule_in(
            processing + redis.network_latency,
            Event::RedisArrive { call },
        );
    }

    /// Handles a pipeline reaching a Redis of bounded concurrency: it runs
    /// at once when a slot is free, or waits behind those that came first.
    pub(super) fn redis_arrive(&mut self, call: Handle) {
        let now = self.now();
        let limit = self.scenario.rate_limit_service.redis.concurrency;
        let service = &mut self.rate_limit_service;
        let (Some(queue), Some(limit)) = (service.redis_queue.as_mut(), limit) else {
            return;
        };
        let Some(state) = service.calls.get_mut(call) else {
            return;
        };
        if queue.running < limit {
            queue.running += 1;
            let redis_time = state.redis_time;
            self.schedule_in(redis_time, Event::RedisExecute { call });
            return;
        }
        state.redis_arrived = now;
        queue.waiting.push_back(call);
        let waiting = queue.waiting.len() as u64;
        queue.report.peak_waiting = queue.report.peak_waiting.max(waiting);
    }

    /// Frees the Redis slot of a finished pipeline and starts the first
    /// waiting one in it.
    fn redis_slot_free(&mut self) {
        let now = self.now();
        let service = &mut self.rate_limit_service;
        let Some(queue) = service.redis_queue.as_mut() else {
            return;
        };
        queue.running = queue.running.saturating_sub(1);
        while let Some(next) = queue.waiting.pop_front() {
            let Some(state) = service.calls.get(next) else {
                continue;
            };
            let waited = now.saturating_since(state.redis_arrived);
            queue.report.max_wait = queue.report.max_wait.max(waited);
            queue.running += 1;
            let redis_time = state.redis_time;
            self.schedule_in(redis_time, Event::RedisExecute { call: next });
            return;
        }
    }

    /// Runs a call's pipeline on Redis: every counter is incremented.
    pub(super) fn redis_execute(&mut self, call: Handle) {
        self.redis_slot_free();
        let now = self.now();
        let service = &mut self.rate_limit_service;
        let unix_s = service.unix_s(now);
        let Some(state) = service.calls.get_mut(call) else {
            return;
        };
        state.counts = service.redis.execute(&service.config, &state.plan, unix_s);
        let latency = self.scenario.rate_limit_service.redis.network_latency;
        self.schedule_in(latency, Event::RedisResponse { call });
    }

    /// Handles Redis's response at the service replica, which responds to
    /// Envoy.
    pub(super) fn redis_response(&mut self, call: Handle) {
        let now = self.now();
        let service = &mut self.rate_limit_service;
        let unix_s = service.unix_s(now);
        let Some(state) = service.calls.get(call) else {
            return;
        };
        let cache = service.replicas[state.service_replica as usize]
            .cache
            .as_mut();
        let response = service.config.finish(
            &state.plan,
            &state.counts,
            cache,
            &mut service.stats,
            unix_s,
        );
        let latency = self.scenario.rate_limit_service.network_latency;
        self.respond(call, response.code.into(), latency);
    }

    /// Ends a call at the service. Its result reaches Envoy after `delay`
    /// when a request waits for it.
    fn respond(&mut self, call: Handle, result: CallResult, delay: SimDuration) {
        let Some(state) = self.rate_limit_service.calls.remove(call) else {
            return;
        };
        if let Some(request) = state.request {
            self.schedule_in(
                delay,
                Event::RateLimitResponse {
                    request,
                    call,
                    result,
                },
            );
        }
    }

    pub(super) fn rate_limit_response(&mut self, handle: Handle, call: Handle, result: CallResult) {
        if self.take_waiting(handle, call) {
            self.filter_result(handle, result);
        }
    }

    pub(super) fn rate_limit_timeout(&mut self, handle: Handle, call: Handle) {
        if self.take_waiting(handle, call) {
            self.rate_limit_service.report.timeouts += 1;
            self.filter_result(handle, CallResult::Error);
        }
    }

    /// Stops the request waiting for `call`. Returns false when it no longer
    /// was, because the response came after the timeout or the other way
    /// round.
    fn take_waiting(&mut self, handle: Handle, call: Handle) -> bool {
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return false;
        };
        if request.global.waiting != Some(call) {
            return false;
        }
        request.global.waiting = None;
        true
    }

    /// Applies a call's result in Envoy's filter: the request goes on, or
    /// gets a local reply.
    fn filter_result(&mut self, handle: Handle, result: CallResult) {
        let scenario = self.scenario;
        let Some(request) = self.proxies.requests.get(handle) else {
            return;
        };
        let Some(route_index) = request.route() else {
            return;
        };
        let route = &scenario.gateway.routes[route_index];
        let RouteAction::Forward { cluster } = route.action else {
            return;
        };
        let replica = request.replica;
        let decision = self.rate_limit_service.settings.decide(result);
        let report = &mut self.rate_limit_service.report;
        let stats = self.proxies.cluster_stats(replica, cluster);
        match result {
            CallResult::Ok => {
                stats.ratelimit_ok += 1;
                report.ok += 1;
            }
            CallResult::OverLimit => {
                stats.ratelimit_over_limit += 1;
                report.over_limit += 1;
            }
            CallResult::Error => {
                stats.ratelimit_error += 1;
                report.error += 1;
            }
        }
        match decision {
            FilterDecision::Continue => self.run_global_filters(handle),
            FilterDecision::ContinueUnlimited => {
                stats.ratelimit_failure_mode_allowed += 1;
                report.failure_mode_allowed += 1;
                if let Some(request) = self.proxies.requests.get_mut(handle) {
                    request.global.unlimited = true;
                }
                self.run_global_filters(handle);
            }
            FilterDecision::Reject(status) => {
                if result == CallResult::OverLimit {
                    // Envoy charges the 429 to the cluster's response codes.
                    stats.upstream_rq_completed += 1;
                    stats.count_code(status);
                } else {
                    report.failed_closed += 1;
                }
                self.local_reply(handle, replica, status);
            }
        }
    }
}

fn sample(dist: &crate::dist::Dist, rng: &mut Stream) -> SimDuration {
    SimDuration::from_secs_rounded(dist.sample(rng))
}
