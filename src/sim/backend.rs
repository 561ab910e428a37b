//! Backend endpoints: a fixed number of requests served at once, a FIFO
//! queue for the rest, and service times and error responses drawn from
//! the scenario's distributions.
//!
//! Endpoints are shared by every Envoy replica. An endpoint finishes what
//! it accepted even when Envoy has given up on the request (a timeout), as
//! a real server does.

use std::collections::VecDeque;

use super::{Event, Handle, World};
use crate::metrics::Site;
use crate::rng::{self, Stream, Streams};
use crate::scenario::Scenario;
use crate::time::SimDuration;

/// One attempt as the backend sees it: what to bill and how long to take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendWork {
    pub attempt: Handle,
    pub group: u32,
    /// Route and replica the attempt came through, for probes.
    pub route: u32,
    pub replica: u32,
    pub retry: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Service time the client asked for, replacing the drawn one.
    pub delay: Option<SimDuration>,
}

pub(crate) struct Endpoint {
    pub backend: usize,
    pub busy: u32,
    queue: VecDeque<BackendWork>,
    rng: Stream,
}

pub(crate) struct Backends {
    pub endpoints: Vec<Endpoint>,
    /// First endpoint index of each backend of the scenario.
    pub first_endpoint: Vec<usize>,
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
                    busy: 0,
                    queue: VecDeque::new(),
                    rng: streams.stream(
                        &format!("backend/{}/{}", backend.namespace, backend.name),
                        u64::from(endpoint),
                    ),
                });
            }
        }
        Backends {
            endpoints,
            first_endpoint,
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
}

impl World<'_> {
    /// An attempt reached its endpoint: it is charged, then served or queued.
    pub(super) fn backend_arrive(&mut self, endpoint_index: u32, work: BackendWork) {
        let backend = self.backends.endpoints[endpoint_index as usize].backend;
        let usd = self.scenario.backends[backend]
            .cost
            .cost_usd(work.input_tokens, work.output_tokens);
        let now = self.now();
        self.metrics.record_backend_attempt(
            work.group as usize,
            work.retry,
            usd,
            work.input_tokens,
            work.output_tokens,
            now,
        );
        let site = Site {
            group: work.group as usize,
            route: Some(work.route as usize),
            replica: work.replica,
        };
        self.metrics
            .probe_backend_attempt(&site, work.retry, usd, now);
        let concurrency = self.scenario.backends[backend].concurrency;
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        if endpoint.busy < concurrency {
            self.start_service(endpoint_index, work);
        } else {
            endpoint.queue.push_back(work);
        }
    }

    fn start_service(&mut self, endpoint_index: u32, work: BackendWork) {
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        let backend = &self.scenario.backends[endpoint.backend];
        endpoint.busy += 1;
        // Draw both values every time so the stream advances the same way
        // whether or not the client asked for a fixed delay.
        let drawn = backend.service_time.sample(&mut endpoint.rng);
        let roll = rng::unit_f64(&mut endpoint.rng);
        let generation = backend.per_output_token.saturating_mul(work.output_tokens);
        let service = work
            .delay
            .unwrap_or_else(|| SimDuration::from_secs_rounded(drawn))
            + generation;
        let mut status = 200;
        let mut cumulative = 0.0;
        for error in &backend.errors {
            cumulative += error.probability;
            if roll < cumulative {
                status = error.status;
                break;
            }
        }
        self.queue.schedule_in(
            service,
            Event::BackendDone {
                endpoint: endpoint_index,
                attempt: work.attempt,
                status,
            },
        );
    }

    /// An endpoint finished an attempt: the response goes back to Envoy and
    /// the next queued attempt starts.
    pub(super) fn backend_done(&mut self, endpoint_index: u32, attempt: Handle, status: u16) {
        let endpoint = &mut self.backends.endpoints[endpoint_index as usize];
        endpoint.busy = endpoint.busy.saturating_sub(1);
        let next = endpoint.queue.pop_front();
        let latency = self.scenario.envoy.upstream_latency;
        self.queue
            .schedule_in(latency, Event::UpstreamResponse { attempt, status });
        if let Some(next) = next {
            self.start_service(endpoint_index, next);
        }
    }
}
