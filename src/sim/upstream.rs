//! Envoy's upstream side of each cluster in each replica: opening
//! connections and their failures, the pools' waiting requests, outlier
//! detection with the host health the load balancers use, and endpoints
//! that reject connections or stop responding.
//!
//! A failed connection attempt fails every request waiting in its pool
//! (Envoy's `purgePendingStreams`), each of which the router may retry. An
//! ejection closes the host's idle connections on every worker at once,
//! while the load balancers learn of it through the update merge window.

use super::proxy::{AttemptState, MAX_OUTLIER_EVENTS, OutlierEvent};
use super::{Event, World};
use crate::outlier_detection::{Delivery, HealthChange, Observation};
use crate::scenario::EndpointFailure;

/// The outcome of a connection attempt to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectOutcome {
    Accepted,
    /// Connection refused: fails after the network round trip.
    Rejected,
    /// Unreachable host: fails when the cluster's connect timeout fires.
    Unanswered,
}

impl World<'_> {
    /// Opens the connections the pool wants for its waiting requests. With
    /// no connect time an accepted connection is ready at once.
    pub(super) fn open_connections(
        &mut self,
        replica: u32,
        cluster_index: u32,
        worker: u32,
        host: u32,
    ) {
        let pool_index = self.proxies.pool_index(cluster_index, worker, host);
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        let pool = &mut cluster.pools[pool_index];
        let opened = pool.open_connections(&mut cluster.resources, &mut cluster.stats.pool);
        if opened == 0 {
            return;
        }
        let endpoint = self.proxies.cluster_hosts[cluster_index as usize][host as usize];
        let now = self.queue.now();
        let outcome = self.backends.connect_outcome(self.scenario, endpoint, now);
        let connect_time = self.scenario.envoy.connect_time;
        let (delay, timed_out) = match outcome {
            ConnectOutcome::Accepted if connect_time.is_zero() => {
                for _ in 0..opened {
                    pool.connected();
                }
                self.attach_pending(replica, cluster_index, worker, host);
                return;
            }
            ConnectOutcome::Accepted => {
                for _ in 0..opened {
                    self.schedule_in(
                        connect_time,
                        Event::Connected {
                            replica,
                            cluster: cluster_index,
                            worker,
                            host,
                        },
                    );
                }
                return;
            }
            ConnectOutcome::Rejected => (connect_time, false),
            ConnectOutcome::Unanswered => (
                self.scenario.gateway.clusters[cluster_index as usize].connect_timeout,
                true,
            ),
        };
        for _ in 0..opened {
            self.schedule_in(
                delay,
                Event::ConnectFailed {
                    replica,
                    cluster: cluster_index,
                    worker,
                    host,
                    timed_out,
                },
            );
        }
    }

    pub(super) fn connected(&mut self, replica: u32, cluster_index: u32, worker: u32, host: u32) {
        let pool_index = self.proxies.pool_index(cluster_index, worker, host);
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        cluster.pools[pool_index].connected();
        self.attach_pending(replica, cluster_index, worker, host);
    }

    /// Handles a failed connection attempt: Envoy fails every request
    /// waiting in that pool (`upstream_rq_pending_failure_eject`), then
    /// opens connections for any request queued since.
    pub(super) fn connect_failed(
        &mut self,
        replica: u32,
        cluster_index: u32,
        worker: u32,
        host: u32,
        timed_out: bool,
    ) {
        let pool_index = self.proxies.pool_index(cluster_index, worker, host);
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        let pool = &mut cluster.pools[pool_index];
        pool.connect_failed(&mut cluster.resources);
        cluster.stats.upstream_cx_connect_fail += 1;
        if timed_out {
            cluster.stats.upstream_cx_connect_timeout += 1;
        }
        let purged = pool.drain_pending(&mut cluster.resources);
        cluster.stats.upstream_rq_pending_failure_eject += purged.len() as u64;
        for index in purged {
            if let Some(attempt) = self.proxies.attempts.handle_at(index) {
                self.fail_queued_attempt(attempt);
            }
        }
        self.open_connections(replica, cluster_index, worker, host);
    }

    pub(super) fn attach_pending(
        &mut self,
        replica: u32,
        cluster_index: u32,
        worker: u32,
        host: u32,
    ) {
        let pool_index = self.proxies.pool_index(cluster_index, worker, host);
        let mut out = std::mem::take(&mut self.proxies.scratch);
        out.clear();
        {
            let cluster =
                &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
            let pool = &mut cluster.pools[pool_index];
            pool.attach_pending(&mut cluster.resources, &mut cluster.stats.pool, &mut out);
        }
        for (index, outcome) in out.drain(..) {
            let Some(attempt) = self.proxies.attempts.handle_at(index) else {
                continue;
            };
            match outcome {
                Ok(()) => self.send_upstream(attempt),
                Err(_) => self.overflow(attempt),
            }
        }
        self.proxies.scratch = out;
    }

    /// Gives a freed or closed connection's pool to its waiting requests,
    /// opening new connections for them when needed.
    pub(super) fn serve_pool(&mut self, attempt: &super::proxy::Attempt) {
        let pool_index = self
            .proxies
            .pool_index(attempt.cluster, attempt.worker, attempt.host);
        let pool = &self.proxies.replicas[attempt.replica as usize].clusters
            [attempt.cluster as usize]
            .pools[pool_index];
        // Only waiting requests make the pool attach or open anything.
        if pool.pending_len() == 0 {
            return;
        }
        self.attach_pending(
            attempt.replica,
            attempt.cluster,
            attempt.worker,
            attempt.host,
        );
        self.open_connections(
            attempt.replica,
            attempt.cluster,
            attempt.worker,
            attempt.host,
        );
    }

    /// Reports an attempt's outcome to the cluster's outlier detector, if
    /// it has one, and applies any ejection that follows.
    pub(super) fn observe_outlier(
        &mut self,
        replica: u32,
        cluster_index: u32,
        host: u32,
        observation: Observation,
    ) {
        let now = self.now();
        let replica_state = &mut self.proxies.replicas[replica as usize];
        let cluster = &mut replica_state.clusters[cluster_index as usize];
        let Some(detector) = cluster.detector.as_mut() else {
            return;
        };
        if let Some(change) =
            detector.observe(host as usize, observation, now, &mut replica_state.rng)
        {
            self.apply_health_change(replica, cluster_index, change);
        }
    }

    /// Runs the detector's interval timer and arms the next tick.
    pub(super) fn outlier_tick(&mut self, replica: u32, cluster_index: u32) {
        let now = self.now();
        let replica_state = &mut self.proxies.replicas[replica as usize];
        let cluster = &mut replica_state.clusters[cluster_index as usize];
        let Some(detector) = cluster.detector.as_mut() else {
            return;
        };
        let mut changes = Vec::new();
        detector.on_interval(now, &mut replica_state.rng, &mut changes);
        let interval = detector.interval();
        for change in changes {
            self.apply_health_change(replica, cluster_index, change);
        }
        if !interval.is_zero() {
            self.schedule_in(
                interval,
                Event::OutlierTick {
                    replica,
                    cluster: cluster_index,
                },
            );
        }
    }

    /// Records an ejection or return, closes an ejected host's idle
    /// connections at once, and passes the change through the merge window.
    fn apply_health_change(&mut self, replica: u32, cluster_index: u32, change: HealthChange) {
        let now = self.now();
        if self.proxies.outlier_events.len() < MAX_OUTLIER_EVENTS {
            self.proxies.outlier_events.push(OutlierEvent {
                at: now,
                replica,
                cluster: self.scenario.gateway.clusters[cluster_index as usize]
                    .name
                    .clone(),
                host: change.host as u32,
                ejected_for: change.kind.map(|kind| kind.stat_name()),
            });
        } else {
            self.proxies.outlier_events_dropped += 1;
        }
        let workers = self.scenario.envoy.workers;
        if change.ejected {
            for worker in 0..workers {
                let pool_index = self
                    .proxies
                    .pool_index(cluster_index, worker, change.host as u32);
                let cluster =
                    &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
                cluster.pools[pool_index].drain(&mut cluster.resources, &mut cluster.stats.pool);
            }
        }
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        if let Some(healthy) = cluster.main_healthy.get_mut(change.host) {
            *healthy = !change.ejected;
        }
        match cluster.merge_window.on_change(now) {
            Delivery::Now => self.deliver_health(replica, cluster_index),
            Delivery::At(at) => self.queue.schedule_at(
                at,
                Event::HealthDelivery {
                    replica,
                    cluster: cluster_index,
                },
            ),
            Delivery::Merged => {}
        }
    }

    /// Delivers the merge window's held changes when they are due.
    pub(super) fn health_delivery(&mut self, replica: u32, cluster_index: u32) {
        let now = self.now();
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        if cluster.merge_window.on_timer(now) {
            self.deliver_health(replica, cluster_index);
        }
    }

    /// Copies the main thread's host health to the workers' view.
    fn deliver_health(&mut self, replica: u32, cluster_index: u32) {
        let cluster = &mut self.proxies.replicas[replica as usize].clusters[cluster_index as usize];
        cluster.host_healthy.clone_from(&cluster.main_healthy);
    }

    /// Stops an endpoint whose process went away (`refuse`) or whose host
    /// became unreachable (`no_answer`). With `refuse` every replica loses
    /// its connections to the endpoint: idle ones close and the requests on
    /// busy ones are reset.
    pub(super) fn endpoint_failure_starts(&mut self, endpoint: u32, failure: EndpointFailure) {
        self.backends.stop_serving(endpoint);
        if failure != EndpointFailure::Refuse {
            return;
        }
        let workers = self.scenario.envoy.workers;
        for cluster_index in 0..self.proxies.cluster_hosts.len() {
            let hosts: Vec<u32> = self.proxies.cluster_hosts[cluster_index]
                .iter()
                .enumerate()
                .filter(|(_, e)| **e == endpoint as usize)
                .map(|(host, _)| host as u32)
                .collect();
            for host in hosts {
                for replica in 0..self.proxies.replicas.len() {
                    for worker in 0..workers {
                        let pool_index =
                            self.proxies.pool_index(cluster_index as u32, worker, host);
                        let cluster = &mut self.proxies.replicas[replica].clusters[cluster_index];
                        cluster.pools[pool_index]
                            .close_idle_by_peer(&mut cluster.resources, &mut cluster.stats.pool);
                    }
                }
            }
        }
        // Reset the attempts in flight to the endpoint, in slab order so the
        // run stays reproducible.
        let mut reset = Vec::new();
        for index in 0..self.proxies.attempts.capacity_used() as u32 {
            let Some(handle) = self.proxies.attempts.handle_at(index) else {
                continue;
            };
            let Some(attempt) = self.proxies.attempts.get(handle) else {
                continue;
            };
            let target =
                self.proxies.cluster_hosts[attempt.cluster as usize][attempt.host as usize];
            if attempt.state == AttemptState::Active && target == endpoint as usize {
                reset.push(handle);
            }
        }
        let latency = self.scenario.envoy.upstream_latency;
        for attempt in reset {
            self.schedule_in(latency, Event::UpstreamReset { attempt });
        }
    }
}
