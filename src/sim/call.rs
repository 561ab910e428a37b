//! Client calls: one request and the client library's own retries of it,
//! the client's timeout, and the call's final outcome.
//!
//! A call lives in [`Workload::calls`] until it has ended and nothing
//! refers to it any more: neither a request in flight nor an attempt on
//! its way to a backend, which may still count a repeated execution.
//! When the client's timeout fires it closes its connection, so Envoy stops
//! working on that request, while the backend finishes what it started.

use super::proxy::{Request, UNROUTED};
use super::workload::{Instance, UserRequest, Workload};
use super::{Event, Handle, RequestRecord, World};
use crate::client_retry::{self, TryOutcome};
use crate::metrics::{CLIENT_TIMEOUT_STATUS, Site};
use crate::scenario::ClientRetries;
use crate::time::{SimDuration, SimTime};

/// One call of a client instance.
pub(crate) struct Call {
    pub instance: u32,
    /// Closed-loop worker that made the call.
    pub slot: u32,
    pub started: SimTime,
    /// Requests sent so far: 1 plus the client's retries.
    pub tries: u32,
    /// The request awaiting its response; `None` between tries.
    pub current: Option<Handle>,
    /// The last backoff wait, from which decorrelated jitter grows.
    pub previous_wait: SimDuration,
    /// Times an attempt of the call started at a backend.
    pub executions: u32,
    /// Requests in flight and attempts on their way to a backend that
    /// refer to the call.
    pub refs: u32,
    pub finished: bool,
    /// The source of the call's headers and path.
    pub request: CallRequest,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The headers and path a call sends. Most calls send those of their
/// instance or of a user in the instance's user cache, which stay put for
/// the whole run, so the call names them rather than holding a copy.
pub(crate) enum CallRequest {
    /// The instance's own headers and path.
    Own,
    /// Those of this user in the instance's user cache.
    User(u32),
    /// Those of a user beyond the cache, expanded for this call alone.
    Expanded(Box<UserRequest>),
}

impl Call {
    /// Returns the headers and path the call sends. `instance` must be
    /// the call's own.
    pub fn headers_and_path<'a>(
        &'a self,
        instance: &'a Instance,
    ) -> (&'a [(String, String)], &'a str) {
        match &self.request {
            CallRequest::Own => (&instance.headers, &instance.path),
            CallRequest::User(user) => {
                let cached = instance.user_cache[*user as usize]
                    .as_ref()
                    .expect("a call's user is in its instance's user cache");
                (&cached.request.0, &cached.request.1)
            }
            CallRequest::Expanded(expanded) => (&expanded.0, &expanded.1),
        }
    }
}

impl Workload {
    /// Counts one more reference to `call` and returns it, or `None` when
    /// the call is gone.
    pub fn retain_call(&mut self, call: Handle) -> Option<&Call> {
        let call = self.calls.get_mut(call)?;
        call.refs += 1;
        Some(call)
    }

    /// Drops one reference to `call`, freeing a finished call with none
    /// left.
    pub fn release_call(&mut self, call: Handle) {
        let Some(state) = self.calls.get_mut(call) else {
            return;
        };
        state.refs = state.refs.saturating_sub(1);
        if state.finished && state.refs == 0 {
            self.calls.remove(call);
        }
    }

    /// Counts an execution of `call` at a backend and releases the
    /// attempt's reference. Returns true when the call had already been
    /// executed.
    pub fn record_execution(&mut self, call: Handle) -> bool {
        let repeated = match self.calls.get_mut(call) {
            Some(state) => {
                state.executions += 1;
                state.executions > 1
            }
            None => false,
        };
        self.release_call(call);
        repeated
    }
}

/// Client, route and replica of a request, for probes.
fn request_site(request: &Request) -> Site {
    Site {
        group: request.group as usize,
        route: request.route(),
        replica: request.replica,
    }
}

impl World<'_> {
    /// Sends the next request of a call, to `route` (replica and worker)
    /// when given, or wherever a new connection goes.
    pub(super) fn send_try(&mut self, call_handle: Handle, route: Option<(u32, u32)>) {
        let (replica, worker) = match route {
            Some(route) => route,
            None => {
                let Some(call) = self.workload.calls.get(call_handle) else {
                    return;
                };
                let (instance_index, slot) = (call.instance, call.slot);
                self.pick_envoy(instance_index, slot)
            }
        };
        let Some(call) = self.workload.calls.get_mut(call_handle) else {
            return;
        };
        let instance_index = call.instance;
        let client_retry = call.tries > 0;
        call.tries += 1;
        call.refs += 1;
        let try_number = call.tries;

        let instance = &self.workload.instances[instance_index as usize];
        let client = &self.scenario.clients[instance.group as usize];
        let request = Request {
            group: instance.group,
            call: call_handle,
            client_retry,
            replica,
            worker,
            instance: instance_index,
            route: UNROUTED,
            fault_abort: None,
            router: None,
            global: Default::default(),
            response_2xx: false,
        };

        let handle = self.proxies.requests.insert(request);
        call.current = Some(handle);
        self.proxies.in_flight += 1;
        self.metrics
            .record_http_request(instance.group as usize, client_retry);
        if let Some(timeout) = client.timeout {
            self.queue.schedule_in(
                timeout,
                Event::ClientTimeout {
                    call: call_handle,
                    try_number,
                },
            );
        }
        let latency = self.scenario.envoy.client_latency;
        if latency.is_zero() {
            // Arriving only schedules later events, so a zero-latency hop
            // needs no queue event.
            self.arrive_at_proxy(handle);
        } else {
            self.queue
                .schedule_in(latency, Event::ArriveAtProxy { request: handle });
        }
    }

    /// Handles the response to a request at its client: the call ends, or
    /// the client retries it.
    pub(super) fn response_at_client(
        &mut self,
        handle: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
    ) {
        let Some(request) = self.proxies.requests.get(handle) else {
            return;
        };
        let call_handle = request.call;
        let group = request.group;
        let attempts = request.attempts();
        let site = request_site(request);
        // Only request records read the last host.
        let last_host = if self.options.record_requests {
            request.last_host()
        } else {
            None
        };
        self.proxies.requests.discard(handle);
        self.proxies.in_flight = self.proxies.in_flight.saturating_sub(1);
        self.metrics.record_attempt_count(group as usize, attempts);

        // Release the request's reference to its call as `release_call`
        // would, in the lookup that also checks the call's current request.
        let Some(call) = self.workload.calls.get_mut(call_handle) else {
            return;
        };
        call.refs = call.refs.saturating_sub(1);
        let current = call.current == Some(handle);
        if current {
            call.current = None;
        }
        if call.finished && call.refs == 0 {
            self.workload.calls.remove(call_handle);
            return;
        }
        if !current {
            return;
        }
        let outcome = TryOutcome::Response {
            status,
            retry_after,
        };
        if !self.maybe_retry_call(call_handle, group, outcome) {
            self.complete_call(call_handle, status, attempts, site, last_host);
        }
    }

    /// Handles the client's timeout for one request of a call: the client
    /// closes its connection, then retries or gives up.
    pub(super) fn client_timeout(&mut self, call_handle: Handle, try_number: u32) {
        let Some(call) = self.workload.calls.get(call_handle) else {
            return;
        };
        if call.finished || call.tries != try_number {
            return;
        }
        let Some(request) = call.current else {
            return;
        };
        let group = self.workload.instances[call.instance as usize].group;
        let site = self.proxies.requests.get(request).map_or(
            Site {
                group: group as usize,
                route: None,
                replica: 0,
            },
            request_site,
        );
        if !self.abandon_request(request) {
            return;
        }
        self.metrics.record_client_timeout(group as usize);
        if let Some(call) = self.workload.calls.get_mut(call_handle) {
            call.current = None;
        }
        self.workload.release_call(call_handle);
        if !self.maybe_retry_call(call_handle, group, TryOutcome::TimedOut) {
            self.complete_call(call_handle, CLIENT_TIMEOUT_STATUS, 0, site, None);
        }
    }

    /// Sends the retry of a call once the client's backoff ended.
    pub(super) fn client_retry(&mut self, call_handle: Handle) {
        let live = self
            .workload
            .calls
            .get(call_handle)
            .is_some_and(|call| !call.finished && call.current.is_none());
        if live {
            self.send_try(call_handle, None);
        }
    }

    /// Schedules a retry of the call, made by client definition `group`,
    /// when the client's policy allows one.
    // Always inlined, so that checking for a policy costs no call.
    #[inline(always)]
    fn maybe_retry_call(&mut self, call_handle: Handle, group: u32, outcome: TryOutcome) -> bool {
        // Without a policy nothing else needs looking up.
        let scenario = self.scenario;
        match &scenario.clients[group as usize].retries {
            Some(policy) => self.retry_call(call_handle, policy, outcome),
            None => false,
        }
    }

    /// Schedules a retry of the call when `policy` allows one. Returns true
    /// when it did.
    fn retry_call(
        &mut self,
        call_handle: Handle,
        policy: &ClientRetries,
        outcome: TryOutcome,
    ) -> bool {
        let Some(call) = self.workload.calls.get_mut(call_handle) else {
            return false;
        };
        let instance = &mut self.workload.instances[call.instance as usize];
        let retries_done = call.tries.saturating_sub(1);
        if !client_retry::should_retry(policy, outcome, retries_done) {
            return false;
        }
        let wait = client_retry::wait_before_retry(
            policy,
            outcome,
            retries_done,
            &mut call.previous_wait,
            &mut instance.rng,
        );
        self.queue
            .schedule_in(wait, Event::ClientRetry { call: call_handle });
        true
    }

    /// Ends a call with its final status; `site` is where its last request
    /// went, for probes, and `last_host` the cluster host of that request's
    /// last attempt.
    fn complete_call(
        &mut self,
        call_handle: Handle,
        status: u16,
        attempts: u32,
        site: Site,
        last_host: Option<u32>,
    ) {
        let now = self.now();
        let Some(call) = self.workload.calls.get_mut(call_handle) else {
            return;
        };
        call.finished = true;
        let (instance_index, slot, started, tries) =
            (call.instance, call.slot, call.started, call.tries);
        if call.refs == 0 {
            self.workload.calls.remove(call_handle);
        }
        let instance = &self.workload.instances[instance_index as usize];
        let group = instance.group as usize;
        let latency = now.saturating_since(started);
        self.metrics
            .record_completed(group, instance.index, status, latency, now);
        self.metrics.probe_completed(&site, status, latency, now);
        if self.options.record_requests {
            self.records.push(RequestRecord {
                group: group as u32,
                instance: instance.index,
                sent: started,
                completed: now,
                status,
                attempts,
                tries,
                last_host,
            });
        }
        self.after_call(instance_index, slot, status);
    }
}
