//! Backend endpoints: a fixed number of requests served at once, a FIFO
//! queue for the rest, service times and error responses drawn from the
//! scenario's distributions, and behaviour that changes over time (the
//! backend's `schedule:` windows and `overload:` model).
//!
//! Endpoints are shared by every Envoy replica. An endpoint finishes what
//! it accepted even when Envoy or the client has given up on the request
//! (a timeout), as a real server does, unless the endpoint itself goes
//! away (`refuse` or `no_answer`).

use std::collections::VecDeque;

use super::upstream::ConnectOutcome;
use super::{Event, Handle, Slab, World};
use crate::client_retry;
use crate::metrics::{AttemptKind, Site};
use crate::rng::{self, Stream, Streams};
use crate::scenario::{EndpointFailure, Scenario};
use crate::time::{SimDuration, SimTime};

/// One attempt at a backend: what to bill and how long to take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendWork {
    pub attempt: Handle,
    pub group: u32,
    /// The client call the attempt belongs to.
    pub call: Handle,
    /// Route and replica the attempt came through, for probes.
    pub route: u32,
    pub replica: u32,
    /// An Envoy retry.
    pub retry: bool,
    /// Part of a client's retry of the call.
    pub client_retry: bool,
    /// The client instance that sent the request, in `Workload::instances`.
    pub instance: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Service time the client asked for, replacing the drawn one.
    pub delay: Option<SimDuration>,
}

impl BackendWork {
    fn kind(&self) -> AttemptKind {
        if self.retry {
            AttemptKind::EnvoyRetry
        } else if self.client_retry {
            AttemptKind::ClientRetry
        } else {
            AttemptKind::First
        }
    }

    fn site(&self) -> Site {
        Site {
            group: self.group as usize,
            route: Some(self.route as usize),
            replica: self.replica,
        }
    }
}

pub(crate) struct Endpoint {
    pub backend: usize,
    /// Number among its backend's endpoints, as `schedule:` counts them.
    pub index: u32,
    pub busy: u32,
    queue: VecDeque<BackendWork>,
    rng: Stream,
    /// Bumped when the endpoint drops its work, so the completions already
    /// scheduled for that work are ignored.
    epoch: u32,
}

pub(crate) struct Backends {
    pub endpoints: Vec<Endpoint>,
    /// First endpoint index of each backend of the scenario.
    pub first_endpoint: Vec<usize>,
    /// Attempts on their way to an endpoint. `Event::BackendArrive`
    /// carries a handle into this slab in place of the work itself, so
    /// events stay small.
    pub in_transit: Slab<BackendWork>,
}

impl Backends {
    pub fn new(scenario: &Scenario, streams: &Streams) -> Backends {
        let mut endpoints = Vec::new();
        let mut first_endpoint = Vec::new();
        for (index, backend) in scenario.backends.iter().enumerate() {
            first_endpoint.push(endpoints.len());
            for endpoint in 0..backend.endpoints {
                endpoints.push(Endpoint {
                    backend: index,
                    index: endpoint,
                    busy: 0,
                    queue: VecDeque::new(),
                    rng: streams.stream(
                        &format!("backend/{}/{}", backend.namespace, backend.name),
                        u64::from(endpoint),
                    ),
                    epoch: 0,
                });
            }
        }
        Backends {
            endpoints,
            first_endpoint,
            in_transit: Slab::default(),
        }
    }

    /// Global endpoint indices of a backend by namespace and name.
    pub fn endpoints_of(&self, scenario: &Scenario, namespace: &str, name: &str) -> Vec<usize> {
        scenario
            .backends
            .iter()
            .position(|b| b.name == name && b.namespace == namespace)
            .map(|index| {
                let first = self.first_endpoint[index];
                (first..first + scenario.backends[index].endpoints as usize).collect()
            })
            .unwrap_or_default()
    }

    /// Returns the failure of the first window covering `endpoint` at `now`.
    pub fn failure_at(
        &self,
        scenario: &Scenario,
        endpoint: usize,
        now: SimTime,
    ) -> Option<EndpointFailure> {
        let state = &self.endpoints[endpoint];
        scenario.backends[state.backend]
            .schedule
            .iter()
            .filter(|window| window.applies(state.index, now))
            .find_map(|window| window.failure)
    }

    /// Returns the outcome of a connection attempt to `endpoint` at `now`.
    pub fn connect_outcome(
        &self,
        scenario: &Scenario,
        endpoint: usize,
        now: SimTime,
    ) -> ConnectOutcome {
        match self.failure_at(scenario, endpoint, now) {
            Some(EndpointFailure::Refuse) => ConnectOutcome::Rejected,
            Some(EndpointFailure::NoAnswer) => ConnectOutcome::Unanswered,
            Some(EndpointFailure::Reset) | None => ConnectOutcome::Accepted,
        }
    }

    /// Drops everything the endpoint was serving or queueing.
    pub fn stop_serving(&mut self, endpoint: u32) {
        let state = &mut self.endpoints[endpoint as usize];
        state.epoch = state.epoch.wrapping_add(1);
        state.busy = 0;
        state.queue.clear();
    }
}

/// The service of one attempt: its time and its response.
struct Service {
    time: SimDuration,
    status: u16,
    retry_after: Option<SimDuration>,
}

impl World<'_> {
    /// Handles an attempt that was in transit reaching its endpoint.
    pub(super) fn arrive_after_transit(&mut self, endpoint_index: u32, work: Handle) {
        if let Some(work) = self.backends.in_transit.remove(work) {
            self.backend_arrive(endpoint_index, work);
        }
    }

    /// Handles an attempt reaching its endpoint: it is charged, then served,
    /// queued, or turned away.
    pub(super) fn backend_arrive(&mut self, endpoint_index: u32, work: BackendWork) {
        let now = self.now();
        let latency = self.scenario.envoy.upstream_latency;
        let failure = self
            .backends
            .failure_at(self.scenario, endpoint_index as usize, now);
        match failure {
            Some(EndpointFailure::Refuse | EndpointFailure::Reset) => {
                self.workload.release_call(work.call);
                let attempt = work.attempt;
                self.schedule_in(latency, Event::UpstreamReset { attempt });
                return;
            }
            Some(EndpointFailure::NoAnswer) => {
                self.workload.release_call(work.call);
                return;
            }
            None => {}
        }

        let endpoint = &self.backends.endpoints[endpoint_index as usize];
        let backend = &self.scenario.backends[endpoint.backend];
        let queue_full = endpoint.busy >= backend.concurrency
            && backend
                .queue_capacity
                .is_some_and(|capacity| endpoint.queue.len() >= capacity as usize);
        if queue_full {
            // Turned away before any work: counted, but not billed.
            self.workload.release_call(work.call);
            self.metrics
                .record_backend_attempt(work.group as usize, work.kind(), 0.0, 0, 0, now);
            self.metrics
                .probe_backend_attempt(&work.site(), work.kind(), 0.0, now);
            let status = backend.queue_full_status;
            self.schedule_in(
                latency,
                Event::UpstreamResponse {
                    attempt: work.attempt,
                    status,
                    retry_after: None,
                },
            );
            return;
        }

        let usd = backend.cost.cost_usd(work.input_tokens, work.output_tokens);
        self.metrics.record_backend_attempt(
            work.group as usize,
            work.kind(),
            usd,
            work.input_tokens,
            work.output_tokens,
            now,
        );
        self.metrics
            .probe_backend_attempt(&work.site(), work.kind(), usd, now);
        self.metrics
            .record_endpoint_request(endpoint_index as usize);
        // The method matters only for a repeat, because running a POST or
        // PATCH twice may repeat its effect.
        let repeated = self.workload.record_execution(work.call);
        if repeated
            && client_retry::is_non_idempotent(
                &self.workload.instances[work.instance as usize].method,
            )
        {
            self.metrics.record_duplicate_execution(work.group as usize);
        }

        let concurrency = backend.concurrency;
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        if endpoint.busy < concurrency {
            self.start_service(endpoint_index, work);
        } else {
            endpoint.queue.push_back(work);
        }
    }

    fn start_service(&mut self, endpoint_index: u32, work: BackendWork) {
        let now = self.now();
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        endpoint.busy += 1;
        let service = draw_service(self.scenario, endpoint, &work, now);
        let epoch = endpoint.epoch;
        self.queue.schedule_in(
            service.time,
            Event::BackendDone {
                endpoint: endpoint_index,
                attempt: work.attempt,
                status: service.status,
                retry_after: service.retry_after,
                epoch,
            },
        );
    }

    /// Handles an endpoint finishing an attempt: the response goes back to
    /// Envoy and the next queued attempt starts.
    pub(super) fn backend_done(
        &mut self,
        endpoint_index: u32,
        attempt: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
        epoch: u32,
    ) {
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        if endpoint.epoch != epoch {
            return;
        }
        endpoint.busy = endpoint.busy.saturating_sub(1);
        let next = endpoint.queue.pop_front();
        let latency = self.scenario.envoy.upstream_latency;
        if let Some(next) = next {
            self.start_service(endpoint_index, next);
        }
        if latency.is_zero() {
            // The endpoint is settled first, so Envoy handling the response
            // at once (and perhaps sending it new work) sees its state as
            // after this instant.
            self.upstream_response(attempt, status, retry_after);
        } else {
            self.queue.schedule_in(
                latency,
                Event::UpstreamResponse {
                    attempt,
                    status,
                    retry_after,
                },
            );
        }
    }
}

/// Draws the service time and response of an attempt starting now. The
/// base draws happen every time, so the stream advances the same way
/// whether or not the client asked for a fixed delay.
fn draw_service(
    scenario: &Scenario,
    endpoint: &mut Endpoint,
    work: &BackendWork,
    now: SimTime,
) -> Service {
    let backend = &scenario.backends[endpoint.backend];
    let drawn = backend.service_time.sample(&mut endpoint.rng);
    let roll = rng::unit_f64(&mut endpoint.rng);
    let generation = backend.per_output_token.saturating_mul(work.output_tokens);
    let base = work
        .delay
        .unwrap_or_else(|| SimDuration::from_secs_rounded(drawn))
        + generation;
    let mut factor = backend
        .overload
        .as_ref()
        .map_or(1.0, |overload| overload.factor(endpoint.busy));

    let mut status = 200;
    let mut retry_after = None;
    let mut cumulative = 0.0;
    for error in &backend.errors {
        cumulative += error.probability;
        if roll < cumulative {
            status = error.status;
            retry_after = error.retry_after;
            break;
        }
    }

    let mut added = SimDuration::ZERO;
    for window in backend
        .schedule
        .iter()
        .filter(|window| window.applies(endpoint.index, now))
    {
        factor *= window.slowdown_factor;
        added = added + window.add_delay;
        if let Some(window_status) = window.status {
            // A later window's error replaces an earlier one.
            if rng::chance(&mut endpoint.rng, window.error_probability) {
                status = window_status;
                retry_after = window.retry_after;
            }
        }
    }

    let scaled = if factor == 1.0 {
        base
    } else {
        SimDuration::from_secs_rounded(base.as_secs_f64() * factor)
    };
    Service {
        time: scaled + added,
        status,
        retry_after,
    }
}
