//! Envoy's router for one request: a host for each attempt, retries with
//! back-off under the retry circuit breaker, the route and per-try
//! timeouts, and the final response. Connections, pools and outlier
//! detection are in `upstream.rs`.
//!
//! Follows `router.cc` and `retry_state_impl.cc` of Envoy 1.40. A circuit
//! breaker's 503 (`x-envoy-overloaded`) is never retried and is not
//! reported to outlier detection; every other failure of an attempt is.

use super::backend::BackendWork;
use super::proxy::{
    Attempt, AttemptState, HostsTried, Replica, Request, RouterState, hash_request,
};
use super::{Event, Handle, World};
use crate::conn_pool::Admission;
use crate::gateway::RouteAction;
use crate::load_balancer::HostView;
use crate::outlier_detection::Observation;
use crate::retry::{self, AttemptOutcome, Backoff};
use crate::time::SimDuration;

/// Envoy Gateway sets the `previous_hosts` retry predicate with this many
/// host selection attempts, so a retry avoids the hosts already tried.
const HOST_SELECTION_ATTEMPTS: u32 = 5;

impl World<'_> {
    /// Starts the router: its retry state, the route timeout (armed once,
    /// never restarted by retries) and the first attempt.
    pub(super) fn router_start(&mut self, handle: Handle) {
        let model = &self.scenario.gateway;
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return;
        };
        let Some(route_index) = request.route() else {
            return;
        };
        let route = &model.routes[route_index];
        let RouteAction::Forward { cluster } = route.action else {
            return;
        };
        let (retries_remaining, backoff) = match &route.retry {
            Some(policy) => (policy.num_retries, Some(Backoff::for_policy(policy))),
            None => (0, None),
        };
        request.router = Some(RouterState {
            cluster: cluster as u32,
            retries_remaining,
            backoff,
            retry_held: false,
            retried: false,
            current: None,
            attempts: 0,
            hosts_tried: HostsTried::default(),
            done: false,
        });
        if let Some(timeout) = route.timeouts.request {
            let deadline = self.now() + timeout;
            let route = route_index as u32;
            if self.route_timers[route_index].push(deadline, handle) {
                self.queue
                    .schedule_at(deadline, Event::RouteTimeouts { route });
            }
        }
        self.start_attempt(handle, false);
    }

    /// Picks a host and hands a new attempt to that host's pool.
    fn start_attempt(&mut self, handle: Handle, is_retry: bool) {
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return;
        };
        let Some(cluster_index) = request.router.as_ref().map(|router| router.cluster) else {
            return;
        };
        let (replica_index, worker) = (request.replica, request.worker);
        let replica = &mut self.proxies.replicas[replica_index as usize];
        let cluster = &mut replica.clusters[cluster_index as usize];
        let hash = cluster.balancers[worker as usize]
            .hash_on()
            .and_then(|on| hash_request(on, &request.attrs(&self.workload)));
        // Hashing reads the whole request, so the router is borrowed for
        // changes only from here on.
        let Some(router) = request.router.as_mut() else {
            return;
        };
        let view = HostView {
            active: &cluster.host_active,
            healthy: &cluster.host_healthy,
        };
        let tries = if is_retry { HOST_SELECTION_ATTEMPTS } else { 1 };
        let mut pick = None;
        for _ in 0..tries {
            pick = cluster.balancers[worker as usize].pick(&view, hash, &mut replica.rng);
            match pick {
                Some(p) if router.hosts_tried.contains(p.host as u32) => continue,
                _ => break,
            }
        }
        let Some(pick) = pick else {
            cluster.stats.no_healthy_upstream += 1;
            cluster.stats.count_code(503);
            self.finish_request(handle, 503, None);
            return;
        };
        if pick.panic {
            cluster.stats.lb_healthy_panic += 1;
        }
        let host = pick.host as u32;
        let attempt = self.proxies.attempts.insert(Attempt {
            request: handle,
            replica: replica_index,
            cluster: cluster_index,
            worker,
            host,
            state: AttemptState::Queued,
            retry: is_retry,
        });
        router.current = Some(attempt);
        router.attempts += 1;
        router.hosts_tried.push(host);
        let pool_index = self.proxies.pool_index(cluster_index, worker, host);
        let cluster =
            &mut self.proxies.replicas[replica_index as usize].clusters[cluster_index as usize];
        let admission = cluster.pools[pool_index].request(
            attempt.index,
            &mut cluster.resources,
            &mut cluster.stats.pool,
        );
        match admission {
            Admission::Attached => self.send_upstream(attempt),
            Admission::Queued => self.open_connections(replica_index, cluster_index, worker, host),
            Admission::Overflow(_) => self.overflow(attempt),
        }
    }

    pub(super) fn router_mut(&mut self, handle: Handle) -> Option<&mut RouterState> {
        self.proxies
            .requests
            .get_mut(handle)
            .and_then(|r| r.router.as_mut())
    }

    /// Fails an attempt a circuit breaker rejected: 503 with
    /// `x-envoy-overloaded`, never retried.
    pub(super) fn overflow(&mut self, attempt: Handle) {
        let Some(state) = self.proxies.attempts.remove(attempt) else {
            return;
        };
        let cluster =
            &mut self.proxies.replicas[state.replica as usize].clusters[state.cluster as usize];
        cluster.stats.count_code(503);
        if let Some(router) = self.router_mut(state.request) {
            router.current = None;
        }
        self.finish_request(state.request, 503, None);
    }

    /// Sends an attempt attached to a connection on its way to the backend.
    /// The per-try timeout starts here, not while the attempt waited for a
    /// connection.
    pub(super) fn send_upstream(&mut self, attempt_handle: Handle) {
        let Some(attempt) = self.proxies.attempts.get_mut(attempt_handle) else {
            return;
        };
        attempt.state = AttemptState::Active;
        let (replica, cluster_index, host, request_handle, retry) = (
            attempt.replica,
            attempt.cluster,
            attempt.host,
            attempt.request,
            attempt.retry,
        );
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        cluster.stats.upstream_rq_total += 1;
        cluster.host_active[host as usize] += 1;
        self.observe_outlier(replica, cluster_index, host, Observation::ConnectSuccess);

        let Some(request) = self.proxies.requests.get(request_handle) else {
            return;
        };
        let route = request.route().unwrap_or(0);
        let endpoint = self.proxies.cluster_hosts[cluster_index as usize][host as usize] as u32;
        let (input_tokens, output_tokens) = self
            .workload
            .retain_call(request.call)
            .map_or((0, 0), |call| (call.input_tokens, call.output_tokens));
        let work = BackendWork {
            attempt: attempt_handle,
            group: request.group,
            call: request.call,
            route: route as u32,
            replica,
            retry,
            client_retry: request.client_retry,
            instance: request.instance,
            input_tokens,
            output_tokens,
            delay: self.scenario.clients[request.group as usize].request.delay,
        };

        let route = &self.scenario.gateway.routes[route];
        let per_try = route.retry.as_ref().and_then(|p| p.per_try_timeout);
        // Envoy ignores a per-try timeout at or above the route timeout.
        let per_try = per_try.filter(|t| route.timeouts.request.is_none_or(|global| *t < global));
        if let Some(per_try) = per_try {
            self.schedule_in(
                per_try,
                Event::PerTryTimeout {
                    attempt: attempt_handle,
                },
            );
        }
        let latency = self.scenario.envoy.upstream_latency;
        if latency.is_zero() {
            // Nothing happens between sending and arriving, and arriving
            // only schedules later events, so the hop needs no queue event.
            self.backend_arrive(endpoint, work);
        } else {
            let work = self.backends.in_transit.insert(work);
            self.schedule_in(latency, Event::BackendArrive { endpoint, work });
        }
    }

    /// Ends an attempt: frees its connection (closing it when `close`) and
    /// its host's active count, or takes it out of its pool's queue.
    /// Returns the attempt.
    pub(super) fn end_active_attempt(&mut self, handle: Handle, close: bool) -> Option<Attempt> {
        let attempt = self.proxies.attempts.remove(handle)?;
        self.release_attempt(handle, &attempt, close);
        if let Some(router) = self.router_mut(attempt.request) {
            router.current = None;
        }
        Some(attempt)
    }

    /// Frees what an attempt already taken out of `attempts` held in its
    /// pool: its connection (closed when `close`) and its host's active
    /// count, or its place in the pool's queue.
    fn release_attempt(&mut self, handle: Handle, attempt: &Attempt, close: bool) {
        let pool_index = self
            .proxies
            .pool_index(attempt.cluster, attempt.worker, attempt.host);
        let cluster =
            &mut self.proxies.replicas[attempt.replica as usize].clusters[attempt.cluster as usize];
        let pool = &mut cluster.pools[pool_index];
        match attempt.state {
            AttemptState::Active => {
                cluster.host_active[attempt.host as usize] -= 1;
                pool.release(
                    handle.index,
                    close,
                    &mut cluster.resources,
                    &mut cluster.stats.pool,
                );
            }
            AttemptState::Queued => {
                pool.cancel_pending(handle.index, &mut cluster.resources);
            }
        }
    }

    /// Returns the request, replica, cluster and host of an attempt that is
    /// still on its connection, or `None` once it ended or while it waits
    /// in a pool.
    fn active_attempt(&self, handle: Handle) -> Option<(Handle, u32, u32, u32)> {
        let attempt = self.proxies.attempts.get(handle)?;
        (attempt.state == AttemptState::Active).then_some((
            attempt.request,
            attempt.replica,
            attempt.cluster,
            attempt.host,
        ))
    }

    /// Handles the response headers of an attempt: the router decides on a
    /// retry, frees the connection and, unless retrying, sends the response
    /// on to the client.
    pub(super) fn upstream_response(
        &mut self,
        attempt_handle: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
    ) {
        // The attempt leaves the slab at once, so every step below reads
        // this copy. None of them looks for the attempt in the slab.
        if self.active_attempt(attempt_handle).is_none() {
            return;
        }
        let Some(attempt) = self.proxies.attempts.remove(attempt_handle) else {
            return;
        };
        let (request_handle, replica, cluster_index) =
            (attempt.request, attempt.replica, attempt.cluster);
        self.observe_outlier(
            replica,
            cluster_index,
            attempt.host,
            Observation::Response(status),
        );
        let outcome = AttemptOutcome::Response {
            status,
            ratelimited: false,
        };
        let retry = self.retry_decision(request_handle, replica, cluster_index, outcome);
        // Envoy resets an attempt it retries instead of reading its body,
        // which closes the HTTP/1.1 connection.
        self.release_attempt(attempt_handle, &attempt, retry);
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        cluster.stats.upstream_rq_completed += 1;
        cluster.stats.count_code(status);
        if let Some(request) = self.proxies.requests.get_mut(request_handle) {
            if let Some(router) = request.router.as_mut() {
                router.current = None;
            }
            if !retry {
                // A 2xx response carries the token counts that response
                // costs of global rate limits charge.
                request.response_2xx = (200..300).contains(&status);
                if finish_router(request, &mut self.proxies.replicas) {
                    let replica = request.replica;
                    self.send_response(request_handle, replica, status, retry_after);
                }
            }
        }
        self.serve_pool(&attempt);
    }

    /// Handles an attempt whose stream the backend reset, or whose
    /// connection it closed, before responding: a 503 (`connection
    /// termination`) unless retried under `reset`, `5xx` or `gateway-error`.
    pub(super) fn upstream_reset(&mut self, attempt_handle: Handle) {
        let Some((request_handle, replica, cluster, host)) = self.active_attempt(attempt_handle)
        else {
            return;
        };
        self.observe_outlier(replica, cluster, host, Observation::ConnectFailure);
        let retry = self.retry_decision(request_handle, replica, cluster, AttemptOutcome::Reset);

        let Some(attempt) = self.proxies.attempts.remove(attempt_handle) else {
            return;
        };
        let pool_index = self
            .proxies
            .pool_index(attempt.cluster, attempt.worker, attempt.host);
        let cluster =
            &mut self.proxies.replicas[attempt.replica as usize].clusters[attempt.cluster as usize];
        cluster.host_active[attempt.host as usize] -= 1;
        cluster.pools[pool_index].release_closed_by_peer(
            attempt_handle.index,
            &mut cluster.resources,
            &mut cluster.stats.pool,
        );
        cluster.stats.upstream_rq_rx_reset += 1;
        if let Some(router) = self.router_mut(request_handle) {
            router.current = None;
        }

        if !retry {
            let cluster = &mut self.proxies.replicas[attempt.replica as usize].clusters
                [attempt.cluster as usize];
            cluster.stats.count_code(503);
            self.finish_request(request_handle, 503, None);
        }
        self.serve_pool(&attempt);
    }

    /// Fails a queued attempt whose pool could not connect and purged its
    /// queue: a 503 (`connection failure` or `connection timeout`) unless
    /// retried under `connect-failure`, `reset`, `5xx` or `gateway-error`.
    pub(super) fn fail_queued_attempt(&mut self, attempt_handle: Handle) {
        let Some(attempt) = self.proxies.attempts.get(attempt_handle) else {
            return;
        };
        let (request_handle, replica, cluster, host) = (
            attempt.request,
            attempt.replica,
            attempt.cluster,
            attempt.host,
        );
        self.observe_outlier(replica, cluster, host, Observation::ConnectFailure);
        let retry = self.retry_decision(
            request_handle,
            replica,
            cluster,
            AttemptOutcome::ConnectFailure,
        );
        // The pool has already dropped the attempt from its queue.
        if self.proxies.attempts.remove(attempt_handle).is_none() {
            return;
        }
        if let Some(router) = self.router_mut(request_handle) {
            router.current = None;
        }
        if !retry {
            let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster as usize];
            cluster.stats.count_code(503);
            self.finish_request(request_handle, 503, None);
        }
    }

    /// Resets an attempt from Envoy's side because its downstream request
    /// went away: the connection is closed (`upstream_rq_tx_reset`).
    pub(super) fn reset_attempt_locally(&mut self, attempt_handle: Handle) {
        let active = self
            .proxies
            .attempts
            .get(attempt_handle)
            .is_some_and(|a| a.state == AttemptState::Active);
        let Some(attempt) = self.end_active_attempt(attempt_handle, active) else {
            return;
        };
        if active {
            let cluster = &mut self.proxies.replicas[attempt.replica as usize].clusters
                [attempt.cluster as usize];
            cluster.stats.upstream_rq_tx_reset += 1;
        }
        self.serve_pool(&attempt);
    }

    pub(super) fn per_try_timeout(&mut self, attempt_handle: Handle) {
        let Some((request_handle, replica, cluster_index, host)) =
            self.active_attempt(attempt_handle)
        else {
            return;
        };
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        cluster.stats.upstream_rq_per_try_timeout += 1;
        self.observe_outlier(replica, cluster_index, host, Observation::Timeout);
        let retry = self.retry_decision(
            request_handle,
            replica,
            cluster_index,
            AttemptOutcome::PerTryTimeout,
        );
        let Some(attempt) = self.end_active_attempt(attempt_handle, true) else {
            return;
        };
        if !retry {
            let cluster = &mut self.proxies.replicas[attempt.replica as usize].clusters
                [attempt.cluster as usize];
            cluster.stats.count_code(504);
            self.finish_request(request_handle, 504, None);
        }
        self.serve_pool(&attempt);
    }

    /// Envoy's `shouldRetry` for an attempt through `replica_index` and
    /// `cluster_index`: decides and, when retrying, schedules the back-off.
    /// Returns true when a retry was scheduled.
    fn retry_decision(
        &mut self,
        request_handle: Handle,
        replica_index: u32,
        cluster_index: u32,
        outcome: AttemptOutcome,
    ) -> bool {
        let model = &self.scenario.gateway;
        let Some(request) = self.proxies.requests.get_mut(request_handle) else {
            return false;
        };
        let Some(router) = request.router.as_mut() else {
            return false;
        };
        if router.done {
            return false;
        }
        let replica = &mut self.proxies.replicas[replica_index as usize];
        let cluster = &mut replica.clusters[cluster_index as usize];
        // The slot held for the previous retry is given back now.
        if router.retry_held {
            router.retry_held = false;
            cluster.resources.end_retry();
        }
        let Some(policy) = &model.routes[request.route as usize].retry else {
            return false;
        };
        if !retry::is_retriable(policy, outcome) {
            if router.retried {
                cluster.stats.upstream_rq_retry_success += 1;
            }
            return false;
        }
        if router.retries_remaining == 0 {
            cluster.stats.upstream_rq_retry_limit_exceeded += 1;
            return false;
        }
        router.retries_remaining -= 1;
        if !cluster.resources.can_retry() {
            cluster.stats.upstream_rq_retry_overflow += 1;
            return false;
        }
        cluster.resources.start_retry();
        router.retry_held = true;
        router.retried = true;
        let wait_ms = router
            .backoff
            .as_mut()
            .map_or(0, |backoff| backoff.next_ms(&mut replica.rng));
        self.schedule_in(
            SimDuration::from_millis(wait_ms),
            Event::RetryBackoffDone {
                request: request_handle,
            },
        );
        true
    }

    pub(super) fn retry_backoff_done(&mut self, handle: Handle) {
        let live = self
            .proxies
            .requests
            .get(handle)
            .and_then(|r| r.router.as_ref())
            .is_some_and(|router| !router.done && router.current.is_none());
        if !live {
            return;
        }
        // Envoy 1.40 counts a retry when its back-off ends, so a retry cut
        // short by the route timeout is not counted. Measured: with retries
        // cut off that way, upstream_rq_retry was one per attempt after the
        // first, not one per retry scheduled.
        if let Some((replica, cluster)) = self
            .proxies
            .requests
            .get(handle)
            .and_then(|r| Some((r.replica, r.router.as_ref()?.cluster)))
        {
            let stats =
                &mut self.proxies.replicas[replica as usize].clusters[cluster as usize].stats;
            stats.upstream_rq_retry += 1;
            stats.upstream_rq_retry_backoff_exponential += 1;
        }
        self.start_attempt(handle, true);
    }

    /// Handles the route timeout: every attempt is reset and the client
    /// gets 504 `upstream request timeout`.
    /// Fires every due route timeout of `route`, then schedules the next.
    pub(super) fn route_timeouts_due(&mut self, route: u32) {
        let now = self.now();
        while let Some(handle) = self.route_timers[route as usize].pop_due(now) {
            self.route_timeout(handle);
        }
        let requests = &self.proxies.requests;
        let pending = |handle| {
            requests
                .get(handle)
                .and_then(|request| request.router.as_ref())
                .is_some_and(|router| !router.done)
        };
        if let Some(next) = self.route_timers[route as usize].rearm(pending) {
            self.queue.schedule_at(next, Event::RouteTimeouts { route });
        }
    }

    pub(super) fn route_timeout(&mut self, handle: Handle) {
        let Some(request) = self.proxies.requests.get(handle) else {
            return;
        };
        let Some(router) = request.router.as_ref() else {
            return;
        };
        if router.done {
            return;
        }
        let (current, replica, cluster_index) = (router.current, request.replica, router.cluster);
        // Envoy 1.40 counts the timeout once per upstream request in
        // flight, so one that fires during a retry back-off counts nothing.
        if current.is_some() {
            let cluster =
                &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
            cluster.stats.upstream_rq_timeout += 1;
            cluster.stats.count_code(504);
        }
        let attempt = current.and_then(|h| self.proxies.attempts.get(h).map(|a| (h, a)));
        if let Some((attempt_handle, attempt)) = attempt {
            // Only an attempt awaiting its response has a host to blame.
            if attempt.state == AttemptState::Active {
                let (cluster, host) = (attempt.cluster, attempt.host);
                self.observe_outlier(replica, cluster, host, Observation::Timeout);
            }
            if let Some(ended) = self.end_active_attempt(attempt_handle, true) {
                self.finish_request(handle, 504, None);
                self.serve_pool(&ended);
                return;
            }
        }
        self.finish_request(handle, 504, None);
    }

    /// Ends the router's work on a request and sends the final status back
    /// to the client.
    pub(super) fn finish_request(
        &mut self,
        handle: Handle,
        status: u16,
        retry_after: Option<SimDuration>,
    ) {
        let Some(request) = self.proxies.requests.get_mut(handle) else {
            return;
        };
        if finish_router(request, &mut self.proxies.replicas) {
            let replica = request.replica;
            self.send_response(handle, replica, status, retry_after);
        }
    }
}

/// Marks the router of `request` done and gives back the retry slot it
/// holds. Returns false when the router had already finished, so the
/// response was sent before.
fn finish_router(request: &mut Request, replicas: &mut [Replica]) -> bool {
    let Some(router) = request.router.as_mut() else {
        return true;
    };
    if router.done {
        return false;
    }
    router.done = true;
    if router.retry_held {
        router.retry_held = false;
        replicas[request.replica as usize].clusters[router.cluster as usize]
            .resources
            .end_retry();
    }
    true
}
