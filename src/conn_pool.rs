//! Envoy's HTTP/1.1 upstream connection pool for one worker and one host.
//!
//! Mirrors `conn_pool_base.cc` as of Envoy 1.40: a request takes an idle
//! connection if there is one; otherwise it must fit under
//! `max_pending_requests` to wait, and the pool opens connections (subject
//! to `max_connections`, except that a pool with no connection at all may
//! always open one) for the waiting requests. A request is checked against
//! `max_requests` only when it is attached to a connection, and overflow
//! there is an immediate failure, never a wait. One connection carries one
//! request at a time, and a connection that has carried
//! `max_requests_per_connection` requests is closed when the last one ends.
//!
//! The pool decides; the caller (`sim`) schedules connection set-up and
//! sends attached requests upstream.

use std::collections::VecDeque;

use crate::circuit_breaker::Resources;

/// The id the caller uses for one upstream attempt.
pub type AttemptId = u32;

/// Why a request failed at the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// `max_pending_requests` reached (stat `upstream_rq_pending_overflow`).
    Pending,
    /// `max_requests` reached at attach time (stat
    /// `upstream_rq_active_overflow`).
    Active,
}

/// What happened to a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Attached to an idle connection; send it upstream now.
    Attached,
    /// Waiting for a connection.
    Queued,
    Overflow(Overflow),
}

/// Counters of pool events, named after Envoy's cluster stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    pub upstream_cx_total: u64,
    pub upstream_cx_overflow: u64,
    pub upstream_cx_destroy_local: u64,
    pub upstream_cx_destroy_remote: u64,
    /// Connections closed for reaching `max_requests_per_connection`.
    pub upstream_cx_max_requests: u64,
    pub upstream_rq_pending_total: u64,
    pub upstream_rq_pending_overflow: u64,
    pub upstream_rq_active_overflow: u64,
}

/// One pool's connections and waiting requests.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    pub idle: u32,
    pub busy: u32,
    pub connecting: u32,
    /// Busy connections to close when their request ends, because the
    /// pool was drained while they were busy.
    pub draining: u32,
    pending: VecDeque<AttemptId>,
    /// Requests each connection may carry; `None` is unlimited.
    max_requests_per_connection: Option<u32>,
    /// Requests carried so far by each idle connection, the most recently
    /// freed last (it is reused first). Kept only when
    /// `max_requests_per_connection` is set.
    idle_served: Vec<u32>,
    /// Requests carried so far, the current one included, by the connection
    /// of each attached attempt. Kept only when
    /// `max_requests_per_connection` is set.
    busy_served: Vec<(AttemptId, u32)>,
}

impl Pool {
    /// Creates an empty pool whose connections close after
    /// `max_requests_per_connection` requests (`None`: never).
    pub fn new(max_requests_per_connection: Option<u32>) -> Pool {
        Pool {
            max_requests_per_connection,
            ..Pool::default()
        }
    }

    pub fn connections(&self) -> u32 {
        self.idle + self.busy + self.connecting
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Envoy's `newStream`: attach, queue, or reject a new request.
    pub fn request(
        &mut self,
        attempt: AttemptId,
        resources: &mut Resources,
        counters: &mut PoolCounters,
    ) -> Admission {
        if self.idle > 0 {
            return match self.attach(attempt, resources, counters) {
                Ok(()) => Admission::Attached,
                Err(overflow) => Admission::Overflow(overflow),
            };
        }
        if !resources.can_queue_pending() {
            counters.upstream_rq_pending_overflow += 1;
            return Admission::Overflow(Overflow::Pending);
        }
        resources.queue_pending();
        counters.upstream_rq_pending_total += 1;
        self.pending.push_back(attempt);
        Admission::Queued
    }

    /// Opens connections for waiting requests; returns how many were
    /// started (the caller completes each with [`Pool::connected`] or
    /// [`Pool::connect_failed`]).
    pub fn open_connections(
        &mut self,
        resources: &mut Resources,
        counters: &mut PoolCounters,
    ) -> u32 {
        let mut opened = 0;
        while self.pending.len() as u64 > u64::from(self.connecting) {
            if resources.can_open_connection() || self.connections() == 0 {
                resources.open_connection();
                self.connecting += 1;
                counters.upstream_cx_total += 1;
                opened += 1;
            } else {
                counters.upstream_cx_overflow += 1;
                break;
            }
        }
        opened
    }

    /// A connection finished its handshake and is idle.
    pub fn connected(&mut self) {
        debug_assert!(self.connecting > 0);
        self.connecting = self.connecting.saturating_sub(1);
        self.idle += 1;
        if self.max_requests_per_connection.is_some() {
            self.idle_served.push(0);
        }
    }

    /// A connection attempt failed; its slot is given back.
    pub fn connect_failed(&mut self, resources: &mut Resources) {
        debug_assert!(self.connecting > 0);
        self.connecting = self.connecting.saturating_sub(1);
        resources.close_connection();
    }

    /// Attaches waiting requests to idle connections, oldest first, and
    /// appends each with its outcome to `out`.
    pub fn attach_pending(
        &mut self,
        resources: &mut Resources,
        counters: &mut PoolCounters,
        out: &mut Vec<(AttemptId, Result<(), Overflow>)>,
    ) {
        while self.idle > 0 {
            let Some(attempt) = self.pending.pop_front() else {
                break;
            };
            resources.leave_pending();
            out.push((attempt, self.attach(attempt, resources, counters)));
        }
    }

    /// Removes every waiting request (the host's connections all failed).
    pub fn drain_pending(&mut self, resources: &mut Resources) -> Vec<AttemptId> {
        let drained: Vec<AttemptId> = self.pending.drain(..).collect();
        for _ in &drained {
            resources.leave_pending();
        }
        drained
    }

    /// Removes a waiting request that was cancelled; false if it was not
    /// waiting here.
    pub fn cancel_pending(&mut self, attempt: AttemptId, resources: &mut Resources) -> bool {
        match self.pending.iter().position(|a| *a == attempt) {
            Some(index) => {
                self.pending.remove(index);
                resources.leave_pending();
                true
            }
            None => false,
        }
    }

    /// The request on a busy connection finished. With `close`, Envoy
    /// closes the connection (after a reset, a timeout, or a retried 5xx);
    /// otherwise it becomes idle for the next request, unless the pool was
    /// drained while it was busy.
    ///
    /// `attempt` names the request, so that a connection that has carried
    /// `max_requests_per_connection` requests is closed too.
    pub fn release(
        &mut self,
        attempt: AttemptId,
        close: bool,
        resources: &mut Resources,
        counters: &mut PoolCounters,
    ) {
        debug_assert!(self.busy > 0);
        self.busy = self.busy.saturating_sub(1);
        resources.finish_request();
        let served = self.take_served(attempt);
        let drained = !close && self.draining > 0;
        if drained {
            self.draining -= 1;
        }
        // The pool cannot tell which busy connection ended, so it keeps at
        // most one pending close per busy connection.
        self.draining = self.draining.min(self.busy);
        let worn_out = !close
            && !drained
            && self
                .max_requests_per_connection
                .is_some_and(|limit| served >= limit);
        if close || drained || worn_out {
            resources.close_connection();
            counters.upstream_cx_destroy_local += 1;
            if worn_out {
                counters.upstream_cx_max_requests += 1;
            }
        } else {
            self.idle += 1;
            if self.max_requests_per_connection.is_some() {
                self.idle_served.push(served);
            }
        }
    }

    /// Removes and returns the request count of the connection `attempt`
    /// was attached to.
    fn take_served(&mut self, attempt: AttemptId) -> u32 {
        if self.max_requests_per_connection.is_none() {
            return 0;
        }
        match self.busy_served.iter().position(|(a, _)| *a == attempt) {
            Some(index) => self.busy_served.swap_remove(index).1,
            None => 0,
        }
    }

    /// Releases a busy connection that the peer closed (a reset).
    pub fn release_closed_by_peer(
        &mut self,
        attempt: AttemptId,
        resources: &mut Resources,
        counters: &mut PoolCounters,
    ) {
        debug_assert!(self.busy > 0);
        self.take_served(attempt);
        self.busy = self.busy.saturating_sub(1);
        self.draining = self.draining.min(self.busy);
        resources.finish_request();
        resources.close_connection();
        counters.upstream_cx_destroy_remote += 1;
    }

    /// Closes every idle connection (as an outlier ejection does).
    pub fn close_idle(&mut self, resources: &mut Resources, counters: &mut PoolCounters) {
        for _ in 0..self.idle {
            resources.close_connection();
            counters.upstream_cx_destroy_local += 1;
        }
        self.idle = 0;
        self.idle_served.clear();
    }

    /// Envoy's `DrainExistingConnections`: idle connections close now, busy
    /// ones when their request ends; waiting requests stay and get new
    /// connections.
    pub fn drain(&mut self, resources: &mut Resources, counters: &mut PoolCounters) {
        self.close_idle(resources, counters);
        self.draining = self.busy;
    }

    /// Closes every idle connection because the peer closed them (its
    /// process went away).
    pub fn close_idle_by_peer(&mut self, resources: &mut Resources, counters: &mut PoolCounters) {
        for _ in 0..self.idle {
            resources.close_connection();
            counters.upstream_cx_destroy_remote += 1;
        }
        self.idle = 0;
        self.idle_served.clear();
    }

    fn attach(
        &mut self,
        attempt: AttemptId,
        resources: &mut Resources,
        counters: &mut PoolCounters,
    ) -> Result<(), Overflow> {
        if !resources.can_attach_request() {
            counters.upstream_rq_active_overflow += 1;
            return Err(Overflow::Active);
        }
        resources.attach_request();
        self.idle -= 1;
        self.busy += 1;
        // Request counts matter only under a per-connection limit, and
        // tracking them costs a scan of the busy list on every release.
        if self.max_requests_per_connection.is_some() {
            let served = self.idle_served.pop().unwrap_or(0) + 1;
            self.busy_served.push((attempt, served));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::CircuitBreaker;

    fn limits(max_connections: u32, max_pending: u32, max_requests: u32) -> Resources {
        let mut breaker = CircuitBreaker::envoy_gateway_default();
        breaker.max_connections = max_connections;
        breaker.max_pending_requests = max_pending;
        breaker.max_requests = max_requests;
        Resources::new(&breaker)
    }

    /// Sends `n` requests at one instant with instant connection set-up and
    /// returns (attached, pending overflow, active overflow).
    fn burst(pool: &mut Pool, resources: &mut Resources, n: u32) -> (u32, u32, u32) {
        let mut counters = PoolCounters::default();
        let (mut attached, mut pending_overflow, mut active_overflow) = (0, 0, 0);
        for id in 0..n {
            match pool.request(id, resources, &mut counters) {
                Admission::Attached => attached += 1,
                Admission::Overflow(Overflow::Pending) => pending_overflow += 1,
                Admission::Overflow(Overflow::Active) => active_overflow += 1,
                Admission::Queued => {
                    let opened = pool.open_connections(resources, &mut counters);
                    for _ in 0..opened {
                        pool.connected();
                    }
                    let mut out = Vec::new();
                    pool.attach_pending(resources, &mut counters, &mut out);
                    for (_, outcome) in out {
                        match outcome {
                            Ok(()) => attached += 1,
                            Err(_) => active_overflow += 1,
                        }
                    }
                }
            }
        }
        (attached, pending_overflow, active_overflow)
    }

    #[test]
    fn max_requests_rejects_at_once() {
        // Measured on Envoy 1.40: max_requests 5, 20 at once: 5 served, 15 rejected.
        let mut resources = limits(1024, 10, 5);
        let outcome = burst(&mut Pool::default(), &mut resources, 20);
        assert_eq!(outcome, (5, 0, 15));
    }

    #[test]
    fn zero_pending_rejects_a_cold_pool() {
        let mut resources = limits(1024, 0, 5);
        let outcome = burst(&mut Pool::default(), &mut resources, 20);
        assert_eq!(outcome, (0, 20, 0));
    }

    #[test]
    fn max_connections_queues_the_rest() {
        let mut resources = limits(5, 10, 1024);
        let mut pool = Pool::default();
        let outcome = burst(&mut pool, &mut resources, 20);
        assert_eq!(outcome, (5, 5, 0));
        assert_eq!(pool.pending_len(), 10);
        // A finished request hands its connection to the oldest waiter.
        let mut counters = PoolCounters::default();
        pool.release(0, false, &mut resources, &mut counters);
        let mut out = Vec::new();
        pool.attach_pending(&mut resources, &mut counters, &mut out);
        assert_eq!(out, vec![(5, Ok(()))]);
    }

    #[test]
    fn connection_closes_after_its_request_limit() {
        let mut resources = limits(1024, 1024, 1024);
        let mut counters = PoolCounters::default();
        let mut pool = Pool::new(Some(2));
        let mut out = Vec::new();
        assert_eq!(
            pool.request(0, &mut resources, &mut counters),
            Admission::Queued
        );
        assert_eq!(pool.open_connections(&mut resources, &mut counters), 1);
        pool.connected();
        pool.attach_pending(&mut resources, &mut counters, &mut out);
        pool.release(0, false, &mut resources, &mut counters);
        // The second request reuses the connection, which then closes.
        assert_eq!(
            pool.request(1, &mut resources, &mut counters),
            Admission::Attached
        );
        pool.release(1, false, &mut resources, &mut counters);
        assert_eq!(pool.connections(), 0);
        assert_eq!(counters.upstream_cx_total, 1);
        assert_eq!(counters.upstream_cx_max_requests, 1);
        assert_eq!(counters.upstream_cx_destroy_local, 1);
    }

    #[test]
    fn empty_pool_may_exceed_max_connections() {
        let mut resources = limits(0, 10, 1024);
        let mut counters = PoolCounters::default();
        let mut pool = Pool::default();
        assert_eq!(
            pool.request(0, &mut resources, &mut counters),
            Admission::Queued
        );
        assert_eq!(pool.open_connections(&mut resources, &mut counters), 1);
        assert_eq!(
            pool.request(1, &mut resources, &mut counters),
            Admission::Queued
        );
        assert_eq!(pool.open_connections(&mut resources, &mut counters), 0);
        assert_eq!(counters.upstream_cx_overflow, 1);
    }

    #[test]
    fn drained_pool_closes_busy_connections_later() {
        let mut resources = limits(1024, 10, 1024);
        let mut counters = PoolCounters::default();
        let mut pool = Pool::default();
        burst(&mut pool, &mut resources, 2);
        pool.release(0, false, &mut resources, &mut counters);
        assert_eq!((pool.idle, pool.busy), (1, 1));
        pool.drain(&mut resources, &mut counters);
        assert_eq!(pool.idle, 0);
        assert_eq!(counters.upstream_cx_destroy_local, 1);
        pool.release(1, false, &mut resources, &mut counters);
        assert_eq!(pool.connections(), 0);
        assert_eq!(counters.upstream_cx_destroy_local, 2);
        assert_eq!(resources.usage.connections, 0);
    }

    #[test]
    fn connect_failure_purges_waiters() {
        let mut resources = limits(1024, 10, 1024);
        let mut counters = PoolCounters::default();
        let mut pool = Pool::default();
        pool.request(1, &mut resources, &mut counters);
        pool.request(2, &mut resources, &mut counters);
        assert_eq!(pool.open_connections(&mut resources, &mut counters), 2);
        pool.connect_failed(&mut resources);
        assert_eq!(pool.drain_pending(&mut resources), vec![1, 2]);
        assert_eq!(resources.usage.pending_requests, 0);
        assert_eq!(resources.usage.connections, 1);
    }

    #[test]
    fn cancelled_waiters_leave_the_queue() {
        let mut resources = limits(0, 10, 1024);
        let mut counters = PoolCounters::default();
        let mut pool = Pool::default();
        pool.request(7, &mut resources, &mut counters);
        assert!(pool.cancel_pending(7, &mut resources));
        assert!(!pool.cancel_pending(7, &mut resources));
        assert_eq!(resources.usage.pending_requests, 0);
    }
}
