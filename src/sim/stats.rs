//! Envoy's stats, counted per replica and reported summed over replicas
//! under Envoy's own names.

use std::collections::BTreeMap;

use crate::conn_pool::PoolCounters;
use crate::outlier_detection::{DetectorStats, EjectionKind, MergeStats};

/// Counters of the HTTP connection manager and its filters.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpStats {
    pub downstream_rq_total: u64,
    /// Requests whose client closed the connection before the response.
    pub downstream_rq_rx_reset: u64,
    /// Indexed by status class: 1xx .. 5xx.
    pub downstream_rq_class: [u64; 5],
    pub no_route: u64,
    pub local_rate_limit_enabled: u64,
    pub local_rate_limit_ok: u64,
    pub local_rate_limit_rate_limited: u64,
    pub local_rate_limit_enforced: u64,
    pub fault_delays_injected: u64,
    pub fault_aborts_injected: u64,
}

impl HttpStats {
    pub fn count_response(&mut self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.downstream_rq_class[class] += 1;
    }
}

/// Counters of one upstream cluster.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClusterStats {
    pub pool: PoolCounters,
    pub upstream_rq_total: u64,
    pub upstream_rq_completed: u64,
    /// Responses per status code, in the order first seen. A short list
    /// is cheaper to count in than a map, and readers sum it by name.
    pub upstream_rq_by_code: Vec<(u16, u64)>,
    pub upstream_rq_retry: u64,
    pub upstream_rq_retry_overflow: u64,
    pub upstream_rq_retry_success: u64,
    pub upstream_rq_retry_limit_exceeded: u64,
    pub upstream_rq_retry_backoff_exponential: u64,
    pub upstream_rq_timeout: u64,
    pub upstream_rq_per_try_timeout: u64,
    pub upstream_cx_connect_fail: u64,
    pub upstream_cx_connect_timeout: u64,
    pub upstream_rq_pending_failure_eject: u64,
    /// Attempts the backend reset.
    pub upstream_rq_rx_reset: u64,
    /// Attempts Envoy reset because the client went away.
    pub upstream_rq_tx_reset: u64,
    pub lb_healthy_panic: u64,
    pub no_healthy_upstream: u64,
    /// Whether a route to this cluster has a global rate limit filter,
    /// whose `ratelimit.*` stats Envoy keeps under the cluster.
    pub global_rate_limit: bool,
    pub ratelimit_ok: u64,
    pub ratelimit_over_limit: u64,
    pub ratelimit_error: u64,
    pub ratelimit_failure_mode_allowed: u64,
}

impl ClusterStats {
    pub fn count_code(&mut self, status: u16) {
        match self
            .upstream_rq_by_code
            .iter_mut()
            .find(|(code, _)| *code == status)
        {
            Some((_, count)) => *count += 1,
            None => self.upstream_rq_by_code.push((status, 1)),
        }
    }
}

/// Final stats of a run, by Envoy's stat name, summed over replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvoyStats(pub BTreeMap<String, u64>);

impl EnvoyStats {
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    fn add(&mut self, name: String, value: u64) {
        *self.0.entry(name).or_insert(0) += value;
    }

    /// Adds `value` to the stat `name`, creating it at 0 first.
    pub(crate) fn add_gauge(&mut self, name: &str, value: u64) {
        self.add(name.to_string(), value);
    }

    pub(crate) fn add_http(&mut self, stats: &HttpStats, has_local_rate_limit: bool) {
        self.add("http.downstream_rq_total".into(), stats.downstream_rq_total);
        for (index, count) in stats.downstream_rq_class.iter().enumerate() {
            self.add(format!("http.downstream_rq_{}xx", index + 1), *count);
        }
        self.add("http.no_route".into(), stats.no_route);
        self.add(
            "http.downstream_rq_rx_reset".into(),
            stats.downstream_rq_rx_reset,
        );
        if has_local_rate_limit {
            let prefix = "http_local_rate_limit";
            self.add(format!("{prefix}.enabled"), stats.local_rate_limit_enabled);
            self.add(format!("{prefix}.ok"), stats.local_rate_limit_ok);
            self.add(
                format!("{prefix}.rate_limited"),
                stats.local_rate_limit_rate_limited,
            );
            self.add(
                format!("{prefix}.enforced"),
                stats.local_rate_limit_enforced,
            );
        }
        if stats.fault_delays_injected + stats.fault_aborts_injected > 0 {
            self.add(
                "http.fault.delays_injected".into(),
                stats.fault_delays_injected,
            );
            self.add(
                "http.fault.aborts_injected".into(),
                stats.fault_aborts_injected,
            );
        }
    }

    pub(crate) fn add_cluster(&mut self, name: &str, stats: &ClusterStats) {
        let mut add = |stat: &str, value: u64| self.add(format!("cluster.{name}.{stat}"), value);
        let pool = &stats.pool;
        add("upstream_cx_total", pool.upstream_cx_total);
        add("upstream_cx_overflow", pool.upstream_cx_overflow);
        add("upstream_cx_destroy_local", pool.upstream_cx_destroy_local);
        add("upstream_cx_max_requests", pool.upstream_cx_max_requests);
        add(
            "upstream_cx_destroy_remote",
            pool.upstream_cx_destroy_remote,
        );
        add("upstream_cx_connect_fail", stats.upstream_cx_connect_fail);
        add(
            "upstream_cx_connect_timeout",
            stats.upstream_cx_connect_timeout,
        );
        add(
            "upstream_rq_pending_failure_eject",
            stats.upstream_rq_pending_failure_eject,
        );
        add("upstream_rq_rx_reset", stats.upstream_rq_rx_reset);
        add("upstream_rq_tx_reset", stats.upstream_rq_tx_reset);
        add("upstream_rq_pending_total", pool.upstream_rq_pending_total);
        add(
            "upstream_rq_pending_overflow",
            pool.upstream_rq_pending_overflow,
        );
        add(
            "upstream_rq_active_overflow",
            pool.upstream_rq_active_overflow,
        );
        add("upstream_rq_total", stats.upstream_rq_total);
        add("upstream_rq_completed", stats.upstream_rq_completed);
        add("upstream_rq_retry", stats.upstream_rq_retry);
        add(
            "upstream_rq_retry_overflow",
            stats.upstream_rq_retry_overflow,
        );
        add("upstream_rq_retry_success", stats.upstream_rq_retry_success);
        add(
            "upstream_rq_retry_limit_exceeded",
            stats.upstream_rq_retry_limit_exceeded,
        );
        add(
            "upstream_rq_retry_backoff_exponential",
            stats.upstream_rq_retry_backoff_exponential,
        );
        add("upstream_rq_timeout", stats.upstream_rq_timeout);
        add(
            "upstream_rq_per_try_timeout",
            stats.upstream_rq_per_try_timeout,
        );
        add("lb_healthy_panic", stats.lb_healthy_panic);
        add("upstream_cx_none_healthy", stats.no_healthy_upstream);
        if stats.global_rate_limit {
            add("ratelimit.ok", stats.ratelimit_ok);
            add("ratelimit.over_limit", stats.ratelimit_over_limit);
            add("ratelimit.error", stats.ratelimit_error);
            add(
                "ratelimit.failure_mode_allowed",
                stats.ratelimit_failure_mode_allowed,
            );
        }
        let mut classes = [0u64; 5];
        for (code, count) in &stats.upstream_rq_by_code {
            add(&format!("upstream_rq_{code}"), *count);
            classes[((code / 100).clamp(1, 5) - 1) as usize] += count;
        }
        for (index, count) in classes.iter().enumerate() {
            add(&format!("upstream_rq_{}xx", index + 1), *count);
        }
    }

    /// Adds a cluster's `outlier_detection.*` stats and the
    /// `cluster_manager.*` merge-window stats (counted per cluster here,
    /// where Envoy counts them for all clusters together).
    pub(crate) fn add_outlier(&mut self, name: &str, detector: &DetectorStats, merge: &MergeStats) {
        let mut add = |stat: &str, value: u64| {
            self.add(format!("cluster.{name}.outlier_detection.{stat}"), value)
        };
        add("ejections_active", detector.ejections_active);
        add("ejections_total", detector.ejections_total);
        add("ejections_overflow", detector.ejections_overflow);
        add(
            "ejections_enforced_total",
            detector.ejections_enforced_total,
        );
        add(
            "ejections_consecutive_5xx",
            detector.ejections_consecutive_5xx,
        );
        add("ejections_success_rate", detector.ejections_success_rate);
        for kind in EjectionKind::ALL {
            let suffix = kind.stat_name();
            add(
                &format!("ejections_detected_{suffix}"),
                detector.detected(kind),
            );
            add(
                &format!("ejections_enforced_{suffix}"),
                detector.enforced(kind),
            );
        }
        let mut add = |stat: &str, value: u64| self.add(format!("cluster_manager.{stat}"), value);
        add("cluster_updated", merge.cluster_updated);
        add("cluster_updated_via_merge", merge.cluster_updated_via_merge);
        add(
            "update_out_of_merge_window",
            merge.update_out_of_merge_window,
        );
        add("update_merge_cancelled", merge.update_merge_cancelled);
    }
}
