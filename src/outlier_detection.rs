//! Envoy's outlier detection (Envoy Gateway's passive health check) for one
//! cluster in one Envoy replica, and the update merge window that delays
//! host health changes on their way to the workers' load balancers.
//!
//! Follows `outlier_detection_impl.cc` and `cluster_manager_impl.cc` of
//! Envoy 1.40. The caller reports how each upstream attempt ended
//! ([`Detector::observe`]) and calls [`Detector::on_interval`] on every
//! interval tick; both return the hosts whose ejection state changed. The
//! caller then closes the ejected host's idle connections at once and passes
//! the change through a [`MergeWindow`] to the load balancers. Which hosts a
//! load balancer picks, and what panic mode does, is `load_balancer`'s
//! business.

use crate::gateway::OutlierDetection;
use crate::rng::{self, Stream};
use crate::time::{SimDuration, SimTime};

/// Envoy's default threshold for each consecutive-failure counter.
const DEFAULT_CONSECUTIVE_THRESHOLD: u32 = 5;
/// Envoy's default failure-percentage threshold, used for detection even
/// when enforcement is off.
const DEFAULT_FAILURE_PERCENTAGE_THRESHOLD: u32 = 85;
/// Enforcement percentages Envoy Gateway leaves at Envoy's defaults.
const ENFORCING_CONSECUTIVE_5XX: u32 = 100;
const ENFORCING_CONSECUTIVE_LOCAL_ORIGIN_FAILURE: u32 = 100;
const ENFORCING_LOCAL_ORIGIN_SUCCESS_RATE: u32 = 100;
const ENFORCING_LOCAL_ORIGIN_FAILURE_PERCENTAGE: u32 = 0;

/// How one upstream attempt ended, as the detector sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Response headers with this status.
    Response(u16),
    /// The connection failed or the stream was reset before a response
    /// (Envoy's `LocalOriginConnectFailed`, counted as a 503 unless local
    /// errors are split).
    ConnectFailure,
    /// A per-try or route timeout (`LocalOriginTimeout`, counted as a 504
    /// unless local errors are split).
    Timeout,
    /// A connection was ready for the attempt (`LocalOriginConnectSuccess`);
    /// counted only when local errors are split.
    ConnectSuccess,
}

/// The reason for an ejection, named as in Envoy's stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EjectionKind {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    ConsecutiveLocalOriginFailure,
    SuccessRate,
    LocalOriginSuccessRate,
    FailurePercentage,
    LocalOriginFailurePercentage,
}

impl EjectionKind {
    pub const ALL: [EjectionKind; 7] = [
        EjectionKind::Consecutive5xx,
        EjectionKind::ConsecutiveGatewayFailure,
        EjectionKind::ConsecutiveLocalOriginFailure,
        EjectionKind::SuccessRate,
        EjectionKind::LocalOriginSuccessRate,
        EjectionKind::FailurePercentage,
        EjectionKind::LocalOriginFailurePercentage,
    ];

    /// Returns the suffix of Envoy's `ejections_detected_*` and
    /// `ejections_enforced_*` stats.
    pub fn stat_name(self) -> &'static str {
        match self {
            EjectionKind::Consecutive5xx => "consecutive_5xx",
            EjectionKind::ConsecutiveGatewayFailure => "consecutive_gateway_failure",
            EjectionKind::ConsecutiveLocalOriginFailure => "consecutive_local_origin_failure",
            EjectionKind::SuccessRate => "success_rate",
            EjectionKind::LocalOriginSuccessRate => "local_origin_success_rate",
            EjectionKind::FailurePercentage => "failure_percentage",
            EjectionKind::LocalOriginFailurePercentage => "local_origin_failure_percentage",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A host whose ejection state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// Index into the cluster's hosts.
    pub host: usize,
    /// True for an ejection, false for the host's return.
    pub ejected: bool,
    /// The reason of an ejection; `None` for a return.
    pub kind: Option<EjectionKind>,
}

/// Counters of one detector, named after Envoy's `outlier_detection.*`
/// stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Hosts ejected now (a gauge).
    pub ejections_active: u64,
    /// Envoy's deprecated total: ejections allowed by
    /// `max_ejection_percent` for consecutive 5xx and success rate,
    /// enforced or not.
    pub ejections_total: u64,
    pub ejections_overflow: u64,
    pub ejections_enforced_total: u64,
    /// Deprecated in Envoy: consecutive-5xx detections that found the host
    /// not yet ejected.
    pub ejections_consecutive_5xx: u64,
    /// Deprecated in Envoy: hosts below the success-rate threshold.
    pub ejections_success_rate: u64,
    /// Indexed by [`EjectionKind`].
    pub detected: [u64; 7],
    /// Indexed by [`EjectionKind`].
    pub enforced: [u64; 7],
}

impl DetectorStats {
    pub fn detected(&self, kind: EjectionKind) -> u64 {
        self.detected[kind.index()]
    }

    pub fn enforced(&self, kind: EjectionKind) -> u64 {
        self.enforced[kind.index()]
    }
}

/// Requests and successes of the current and the last finished interval.
#[derive(Clone, Debug, Default)]
struct SuccessRateBuckets {
    current_success: u64,
    current_total: u64,
    last_success: u64,
    last_total: u64,
}

impl SuccessRateBuckets {
    fn record(&mut self, success: bool) {
        self.current_total += 1;
        if success {
            self.current_success += 1;
        }
    }

    fn swap(&mut self) {
        self.last_success = self.current_success;
        self.last_total = self.current_total;
        self.current_success = 0;
        self.current_total = 0;
    }

    /// Success rate in percent and request volume of the last interval.
    fn last_interval(&self) -> Option<(f64, u64)> {
        (self.last_total > 0).then(|| {
            (
                self.last_success as f64 * 100.0 / self.last_total as f64,
                self.last_total,
            )
        })
    }
}

#[derive(Clone, Debug, Default)]
struct HostMonitor {
    consecutive_5xx: u32,
    consecutive_gateway_failure: u32,
    consecutive_local_origin_failure: u32,
    ejected: bool,
    ejected_at: SimTime,
    returned_at: Option<SimTime>,
    /// Envoy's `ejectTimeBackoff`: the ejection lasts this many base
    /// ejection times (capped by the maximum).
    backoff: u64,
    ejections: u64,
    external: SuccessRateBuckets,
    local_origin: SuccessRateBuckets,
}

impl HostMonitor {
    fn reset_counters(&mut self) {
        self.consecutive_5xx = 0;
        self.consecutive_gateway_failure = 0;
        self.consecutive_local_origin_failure = 0;
    }
}

/// The outlier detector of one cluster in one replica.
#[derive(Clone, Debug)]
pub struct Detector {
    config: OutlierDetection,
    /// `max(max_ejection_time, base_ejection_time)`, as Envoy applies it.
    max_ejection_time: SimDuration,
    hosts: Vec<HostMonitor>,
    pub stats: DetectorStats,
}

impl Detector {
    pub fn new(config: &OutlierDetection, hosts: usize) -> Detector {
        Detector {
            max_ejection_time: config.max_ejection_time.max(config.base_ejection_time),
            config: config.clone(),
            hosts: vec![HostMonitor::default(); hosts],
            stats: DetectorStats::default(),
        }
    }

    pub fn interval(&self) -> SimDuration {
        self.config.interval
    }

    pub fn is_ejected(&self, host: usize) -> bool {
        self.hosts.get(host).is_some_and(|h| h.ejected)
    }

    pub fn ejected_count(&self) -> u64 {
        self.stats.ejections_active
    }

    /// Times `host` has been ejected.
    pub fn ejections_of(&self, host: usize) -> u64 {
        self.hosts.get(host).map_or(0, |h| h.ejections)
    }

    /// Records how an attempt on `host` ended. Returns the ejection it
    /// caused, if any. `rng` is drawn only for enforcement percentages
    /// strictly between 0 and 100.
    pub fn observe(
        &mut self,
        host: usize,
        observation: Observation,
        now: SimTime,
        rng: &mut Stream,
    ) -> Option<HealthChange> {
        if host >= self.hosts.len() {
            return None;
        }
        let split = self.config.split_external_local_origin_errors;
        match observation {
            Observation::Response(status) => self.put_status(host, status, now, rng),
            Observation::ConnectFailure if !split => self.put_status(host, 503, now, rng),
            Observation::Timeout if !split => self.put_status(host, 504, now, rng),
            Observation::ConnectFailure | Observation::Timeout => {
                self.local_origin_failure(host, now, rng)
            }
            Observation::ConnectSuccess if split => {
                let monitor = &mut self.hosts[host];
                monitor.local_origin.record(true);
                monitor.consecutive_local_origin_failure = 0;
                None
            }
            Observation::ConnectSuccess => None,
        }
    }

    /// Envoy's `putHttpResponseCode`. A counter reaching its threshold
    /// exactly asks for an ejection; a 502, 503 or 504 counts towards both
    /// the 5xx and the gateway-failure counters, gateway first.
    fn put_status(
        &mut self,
        host: usize,
        status: u16,
        now: SimTime,
        rng: &mut Stream,
    ) -> Option<HealthChange> {
        let gateway_threshold = self
            .config
            .consecutive_gateway_failure
            .unwrap_or(DEFAULT_CONSECUTIVE_THRESHOLD);
        let threshold_5xx = self
            .config
            .consecutive_5xx
            .unwrap_or(DEFAULT_CONSECUTIVE_THRESHOLD);
        let monitor = &mut self.hosts[host];
        monitor.external.record(!(500..=599).contains(&status));
        if !(500..=599).contains(&status) {
            monitor.consecutive_5xx = 0;
            monitor.consecutive_gateway_failure = 0;
            return None;
        }
        let mut gateway_hit = false;
        if matches!(status, 502..=504) {
            monitor.consecutive_gateway_failure += 1;
            gateway_hit = monitor.consecutive_gateway_failure == gateway_threshold;
        } else {
            monitor.consecutive_gateway_failure = 0;
        }
        monitor.consecutive_5xx += 1;
        let hit_5xx = monitor.consecutive_5xx == threshold_5xx;
        let mut change = None;
        if gateway_hit {
            change =
                self.on_consecutive_error(host, EjectionKind::ConsecutiveGatewayFailure, now, rng);
        }
        if hit_5xx {
            let second = self.on_consecutive_error(host, EjectionKind::Consecutive5xx, now, rng);
            change = change.or(second);
        }
        change
    }

    fn local_origin_failure(
        &mut self,
        host: usize,
        now: SimTime,
        rng: &mut Stream,
    ) -> Option<HealthChange> {
        let threshold = self
            .config
            .consecutive_local_origin_failure
            .unwrap_or(DEFAULT_CONSECUTIVE_THRESHOLD);
        let monitor = &mut self.hosts[host];
        monitor.local_origin.record(false);
        monitor.consecutive_local_origin_failure += 1;
        if monitor.consecutive_local_origin_failure == threshold {
            return self.on_consecutive_error(
                host,
                EjectionKind::ConsecutiveLocalOriginFailure,
                now,
                rng,
            );
        }
        None
    }

    /// Envoy's `onConsecutiveErrorWorker`. An ejected host keeps its counter
    /// until it returns. Otherwise the detection is counted and the ejection
    /// tried, and the counter is reset whatever the outcome.
    fn on_consecutive_error(
        &mut self,
        host: usize,
        kind: EjectionKind,
        now: SimTime,
        rng: &mut Stream,
    ) -> Option<HealthChange> {
        if self.hosts[host].ejected {
            return None;
        }
        self.stats.detected[kind.index()] += 1;
        let change = self.eject(host, kind, now, rng);
        let monitor = &mut self.hosts[host];
        match kind {
            EjectionKind::Consecutive5xx => {
                self.stats.ejections_consecutive_5xx += 1;
                monitor.consecutive_5xx = 0;
            }
            EjectionKind::ConsecutiveGatewayFailure => monitor.consecutive_gateway_failure = 0,
            _ => monitor.consecutive_local_origin_failure = 0,
        }
        change
    }

    fn enforcing_percent(&self, kind: EjectionKind) -> u32 {
        match kind {
            EjectionKind::Consecutive5xx => ENFORCING_CONSECUTIVE_5XX,
            EjectionKind::ConsecutiveGatewayFailure => {
                self.config.enforcing_consecutive_gateway_failure
            }
            EjectionKind::ConsecutiveLocalOriginFailure => {
                ENFORCING_CONSECUTIVE_LOCAL_ORIGIN_FAILURE
            }
            EjectionKind::SuccessRate => self.config.enforcing_success_rate,
            EjectionKind::LocalOriginSuccessRate => ENFORCING_LOCAL_ORIGIN_SUCCESS_RATE,
            EjectionKind::FailurePercentage => self.config.enforcing_failure_percentage,
            EjectionKind::LocalOriginFailurePercentage => ENFORCING_LOCAL_ORIGIN_FAILURE_PERCENTAGE,
        }
    }

    /// Envoy's `ejectHost`. Since Envoy 1.27 `max_ejection_percent` caps
    /// `(ejected + 1) / hosts`, so with the default 10 % a cluster of fewer
    /// than 10 hosts never ejects, unless `always_eject_one_host` allows a
    /// first ejection.
    fn eject(
        &mut self,
        host: usize,
        kind: EjectionKind,
        now: SimTime,
        rng: &mut Stream,
    ) -> Option<HealthChange> {
        let active = self.stats.ejections_active;
        let ejected_percent = 100.0 * (active + 1) as f64 / self.hosts.len() as f64;
        let max_percent = f64::from(self.config.max_ejection_percent.min(100));
        let allowed =
            ejected_percent <= max_percent || (self.config.always_eject_one_host && active == 0);
        if !allowed {
            self.stats.ejections_overflow += 1;
            return None;
        }
        if matches!(
            kind,
            EjectionKind::Consecutive5xx | EjectionKind::SuccessRate
        ) {
            self.stats.ejections_total += 1;
        }
        if !enforced(self.enforcing_percent(kind), rng) {
            return None;
        }
        self.stats.ejections_active += 1;
        self.stats.ejections_enforced_total += 1;
        self.stats.enforced[kind.index()] += 1;
        let base = self.config.base_ejection_time;
        let monitor = &mut self.hosts[host];
        monitor.ejected = true;
        monitor.ejected_at = now;
        monitor.ejections += 1;
        // NOTE: Envoy adds `random % (max_ejection_time_jitter + 1)` to each
        // ejection; Envoy Gateway leaves the jitter at 0, so none is drawn.
        if base.saturating_mul(monitor.backoff) < self.max_ejection_time + base {
            monitor.backoff += 1;
        }
        Some(HealthChange {
            host,
            ejected: true,
            kind: Some(kind),
        })
    }

    /// Envoy's interval timer: returns hosts whose ejection time is over,
    /// then runs success-rate and failure-percentage detection on the
    /// interval that just ended, then shortens the next ejection of hosts
    /// that stayed healthy. Changes are appended to `out` in that order.
    pub fn on_interval(&mut self, now: SimTime, rng: &mut Stream, out: &mut Vec<HealthChange>) {
        for host in 0..self.hosts.len() {
            self.check_return(host, now, out);
            let monitor = &mut self.hosts[host];
            monitor.external.swap();
            monitor.local_origin.swap();
        }
        self.success_rate_ejections(false, now, rng, out);
        if self.config.split_external_local_origin_errors {
            self.success_rate_ejections(true, now, rng, out);
        }
        let interval = self.config.interval;
        for monitor in &mut self.hosts {
            if !monitor.ejected
                && monitor
                    .returned_at
                    .is_some_and(|at| now.saturating_since(at) >= interval)
                && monitor.backoff > 0
            {
                monitor.backoff -= 1;
            }
        }
    }

    fn check_return(&mut self, host: usize, now: SimTime, out: &mut Vec<HealthChange>) {
        let base = self.config.base_ejection_time;
        let monitor = &mut self.hosts[host];
        if !monitor.ejected {
            return;
        }
        let ejection = base
            .saturating_mul(monitor.backoff)
            .min(self.max_ejection_time);
        if now.saturating_since(monitor.ejected_at) < ejection {
            return;
        }
        monitor.ejected = false;
        monitor.returned_at = Some(now);
        // Envoy resets the counters so that a few errors right after the
        // return do not eject the host again.
        monitor.reset_counters();
        self.stats.ejections_active = self.stats.ejections_active.saturating_sub(1);
        out.push(HealthChange {
            host,
            ejected: false,
            kind: None,
        });
    }

    /// Envoy's `processSuccessRateEjections` over the buckets of the last
    /// interval, for external (`local_origin` false) or local-origin
    /// results.
    fn success_rate_ejections(
        &mut self,
        local_origin: bool,
        now: SimTime,
        rng: &mut Stream,
        out: &mut Vec<HealthChange>,
    ) {
        let config = &self.config;
        let minimum_hosts = config.success_rate_minimum_hosts as usize;
        let fp_minimum_hosts = config.failure_percentage_minimum_hosts as usize;
        if self.hosts.len() < minimum_hosts && self.hosts.len() < fp_minimum_hosts {
            return;
        }
        let volume = u64::from(config.success_rate_request_volume);
        let fp_volume = u64::from(config.failure_percentage_request_volume);
        let mut rated = Vec::new();
        let mut fp_rated = Vec::new();
        for (host, monitor) in self.hosts.iter().enumerate() {
            if monitor.ejected {
                continue;
            }
            let buckets = if local_origin {
                &monitor.local_origin
            } else {
                &monitor.external
            };
            let Some((rate, requests)) = buckets.last_interval() else {
                continue;
            };
            if requests >= volume {
                rated.push((host, rate));
            }
            if requests >= fp_volume {
                fp_rated.push((host, rate));
            }
        }
        let (sr_kind, fp_kind) = if local_origin {
            (
                EjectionKind::LocalOriginSuccessRate,
                EjectionKind::LocalOriginFailurePercentage,
            )
        } else {
            (EjectionKind::SuccessRate, EjectionKind::FailurePercentage)
        };
        if !rated.is_empty() && rated.len() >= minimum_hosts {
            let factor = f64::from(config.success_rate_stdev_factor) / 1000.0;
            let threshold = success_rate_threshold(&rated, factor);
            for (host, rate) in rated {
                if rate < threshold && !self.hosts[host].ejected {
                    self.stats.ejections_success_rate += 1;
                    self.stats.detected[sr_kind.index()] += 1;
                    out.extend(self.eject(host, sr_kind, now, rng));
                }
            }
        }
        if !fp_rated.is_empty() && fp_rated.len() >= fp_minimum_hosts {
            let threshold = f64::from(
                self.config
                    .failure_percentage_threshold
                    .unwrap_or(DEFAULT_FAILURE_PERCENTAGE_THRESHOLD),
            );
            for (host, rate) in fp_rated {
                if 100.0 - rate >= threshold && !self.hosts[host].ejected {
                    self.stats.detected[fp_kind.index()] += 1;
                    out.extend(self.eject(host, fp_kind, now, rng));
                }
            }
        }
    }
}

/// `mean - factor * stdev` of the success rates (population deviation).
fn success_rate_threshold(rated: &[(usize, f64)], factor: f64) -> f64 {
    let count = rated.len() as f64;
    let mean = rated.iter().map(|(_, rate)| rate).sum::<f64>() / count;
    let variance = rated
        .iter()
        .map(|(_, rate)| (rate - mean).powi(2))
        .sum::<f64>()
        / count;
    mean - factor * variance.sqrt()
}

/// Envoy's runtime `featureEnabled` roll for an enforcement percentage.
fn enforced(percent: u32, rng: &mut Stream) -> bool {
    match percent {
        0 => false,
        100.. => true,
        _ => rng::below(rng, 100) < u64::from(percent),
    }
}

/// The delivery decision for one host health change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Pass the current health of every host to the workers now.
    Now,
    /// Held; pass every held change at this time (the caller schedules it
    /// and then calls [`MergeWindow::on_timer`]).
    At(SimTime),
    /// Held with earlier changes whose delivery is already scheduled.
    Merged,
}

/// Counters named after Envoy's `cluster_manager.*` stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub cluster_updated: u64,
    pub cluster_updated_via_merge: u64,
    pub update_out_of_merge_window: u64,
    pub update_merge_cancelled: u64,
}

/// Envoy's `update_merge_window` (`common_lb_config`, 1 s by default;
/// Envoy Gateway v1.9 leaves it there): a health change reaches the
/// workers' load balancers at once only when no update was delivered in
/// the preceding window. Otherwise it waits, with every later change,
/// until one window after the first held change.
///
/// Measured on Envoy 1.40: of three hosts ejected 25 ms apart, the workers
/// saw the first at once and the other two about a second later. Of three
/// hosts returning on one interval tick, one reached them at once and two a
/// second later.
#[derive(Clone, Debug)]
pub struct MergeWindow {
    window: SimDuration,
    last_delivery: Option<SimTime>,
    timer: Option<SimTime>,
    pub stats: MergeStats,
}

impl MergeWindow {
    pub fn new(window: SimDuration) -> MergeWindow {
        MergeWindow {
            window,
            last_delivery: None,
            timer: None,
            stats: MergeStats::default(),
        }
    }

    /// Decides when a host health change made at `now` reaches the workers.
    pub fn on_change(&mut self, now: SimTime) -> Delivery {
        // Envoy compares whole milliseconds: `delta_ms > timeout`.
        let window_ms = self.window.as_nanos() / 1_000_000;
        if window_ms == 0 {
            self.stats.cluster_updated += 1;
            return Delivery::Now;
        }
        let out_of_window = self
            .last_delivery
            .is_none_or(|last| now.saturating_since(last).as_nanos() / 1_000_000 > window_ms);
        if out_of_window {
            self.stats.update_out_of_merge_window += 1;
            if self.timer.take().is_some() {
                self.stats.update_merge_cancelled += 1;
            }
            self.stats.cluster_updated += 1;
            self.last_delivery = Some(now);
            return Delivery::Now;
        }
        match self.timer {
            Some(_) => Delivery::Merged,
            None => {
                let at = now + self.window;
                self.timer = Some(at);
                Delivery::At(at)
            }
        }
    }

    /// Delivers the held changes scheduled for `now`. Returns false when an
    /// immediate delivery has cancelled them in the meantime.
    pub fn on_timer(&mut self, now: SimTime) -> bool {
        if self.timer != Some(now) {
            return false;
        }
        self.timer = None;
        self.last_delivery = Some(now);
        self.stats.cluster_updated_via_merge += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;

    fn config() -> OutlierDetection {
        OutlierDetection {
            interval: SimDuration::from_secs(1),
            base_ejection_time: SimDuration::from_secs(5),
            max_ejection_time: SimDuration::from_secs(300),
            consecutive_5xx: Some(5),
            consecutive_gateway_failure: None,
            enforcing_consecutive_gateway_failure: 0,
            consecutive_local_origin_failure: Some(5),
            split_external_local_origin_errors: false,
            max_ejection_percent: 100,
            always_eject_one_host: false,
            failure_percentage_threshold: None,
            enforcing_failure_percentage: 0,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
            enforcing_success_rate: 100,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
        }
    }

    fn at(ms: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_millis(ms)
    }

    fn rng() -> Stream {
        Streams::new(1).stream("outlier-test", 0)
    }

    /// Feeds `count` responses with `status` to `host`; returns the changes.
    fn feed(
        detector: &mut Detector,
        host: usize,
        status: u16,
        count: usize,
        now: SimTime,
    ) -> Vec<HealthChange> {
        let mut rng = rng();
        (0..count)
            .filter_map(|_| detector.observe(host, Observation::Response(status), now, &mut rng))
            .collect()
    }

    /// Runs interval ticks from `from_ms` to `to_ms` (inclusive), every second.
    fn ticks(detector: &mut Detector, from_ms: u64, to_ms: u64) -> Vec<(u64, HealthChange)> {
        let mut out = Vec::new();
        let mut rng = rng();
        let mut ms = from_ms;
        while ms <= to_ms {
            let mut changes = Vec::new();
            detector.on_interval(at(ms), &mut rng, &mut changes);
            out.extend(changes.into_iter().map(|c| (ms, c)));
            ms += 1000;
        }
        out
    }

    #[test]
    fn fifth_consecutive_5xx_ejects() {
        let mut detector = Detector::new(&config(), 10);
        assert!(feed(&mut detector, 3, 503, 4, at(100)).is_empty());
        let changes = feed(&mut detector, 3, 503, 1, at(120));
        assert_eq!(
            changes,
            [HealthChange {
                host: 3,
                ejected: true,
                kind: Some(EjectionKind::Consecutive5xx)
            }]
        );
        assert!(detector.is_ejected(3));
        assert_eq!(detector.stats.ejections_active, 1);
        // A 503 counts as a gateway failure too: detected, not enforced.
        assert_eq!(
            detector
                .stats
                .detected(EjectionKind::ConsecutiveGatewayFailure),
            1
        );
        assert_eq!(
            detector
                .stats
                .enforced(EjectionKind::ConsecutiveGatewayFailure),
            0
        );
    }

    #[test]
    fn success_resets_the_counter() {
        let mut detector = Detector::new(&config(), 10);
        feed(&mut detector, 0, 500, 4, at(0));
        feed(&mut detector, 0, 200, 1, at(0));
        assert!(feed(&mut detector, 0, 500, 4, at(0)).is_empty());
        assert!(!detector.is_ejected(0));
    }

    #[test]
    fn default_percent_spares_small_clusters() {
        // Measured on Envoy 1.40: 3 hosts, one always 503, default 10 %:
        // nothing ejected, two overflows per run of five 503s.
        let mut three = config();
        three.max_ejection_percent = 10;
        let mut detector = Detector::new(&three, 3);
        assert!(feed(&mut detector, 1, 503, 59, at(0)).is_empty());
        assert_eq!(detector.stats.ejections_overflow, 22);
        assert_eq!(detector.stats.detected(EjectionKind::Consecutive5xx), 11);

        // Ten hosts: exactly one ejection fits under 10 %.
        let mut detector = Detector::new(&three, 10);
        assert_eq!(feed(&mut detector, 3, 503, 5, at(0)).len(), 1);
        assert!(feed(&mut detector, 7, 503, 5, at(0)).is_empty());
        assert!(!detector.is_ejected(7));
    }

    #[test]
    fn always_eject_one_host_allows_a_first() {
        let mut small = config();
        small.max_ejection_percent = 10;
        small.always_eject_one_host = true;
        let mut detector = Detector::new(&small, 3);
        assert_eq!(feed(&mut detector, 1, 503, 5, at(0)).len(), 1);
        assert!(feed(&mut detector, 2, 503, 5, at(0)).is_empty());
    }

    #[test]
    fn ejection_ends_on_a_tick_and_doubles() {
        let mut detector = Detector::new(&config(), 10);
        feed(&mut detector, 3, 503, 5, at(950));
        // Base 5 s from 0.95 s: still out at the 5 s tick, back at 6 s.
        let returns = ticks(&mut detector, 1000, 6000);
        assert_eq!(returns.len(), 1);
        assert_eq!(returns[0].0, 6000);
        assert!(!returns[0].1.ejected);
        // The second ejection lasts twice the base time.
        feed(&mut detector, 3, 503, 5, at(7200));
        let returns = ticks(&mut detector, 7000, 18_000);
        assert_eq!(returns.len(), 1);
        assert_eq!(returns[0].0, 18_000);
        assert_eq!(detector.ejections_of(3), 2);
    }

    #[test]
    fn healthy_ticks_shorten_the_next_ejection() {
        let mut detector = Detector::new(&config(), 10);
        feed(&mut detector, 3, 503, 5, at(0));
        ticks(&mut detector, 1000, 5000);
        assert!(!detector.is_ejected(3));
        // Healthy for many intervals: the multiplier decays back to 0, so
        // the next ejection lasts one base time again.
        ticks(&mut detector, 6000, 20_000);
        feed(&mut detector, 3, 503, 5, at(20_500));
        let returns = ticks(&mut detector, 21_000, 26_000);
        assert_eq!(returns.last().map(|r| r.0), Some(26_000));
    }

    #[test]
    fn ejected_host_keeps_its_counter() {
        let mut detector = Detector::new(&config(), 10);
        feed(&mut detector, 3, 503, 5, at(0));
        // Further failures while ejected ask for nothing.
        assert!(feed(&mut detector, 3, 503, 20, at(10)).is_empty());
        assert_eq!(detector.stats.detected(EjectionKind::Consecutive5xx), 1);
    }

    #[test]
    fn gateway_failures_eject_when_enforced() {
        let mut enforced = config();
        enforced.consecutive_gateway_failure = Some(3);
        enforced.enforcing_consecutive_gateway_failure = 100;
        enforced.consecutive_5xx = Some(100);
        let mut detector = Detector::new(&enforced, 10);
        let changes = feed(&mut detector, 2, 504, 3, at(0));
        assert_eq!(
            changes[0].kind,
            Some(EjectionKind::ConsecutiveGatewayFailure)
        );
        // A 500 is a 5xx but breaks a run of gateway failures.
        let mut detector = Detector::new(&enforced, 10);
        feed(&mut detector, 2, 504, 2, at(0));
        feed(&mut detector, 2, 500, 1, at(0));
        assert!(feed(&mut detector, 2, 504, 2, at(0)).is_empty());
    }

    #[test]
    fn local_origin_failures_count_as_5xx_unless_split() {
        let mut detector = Detector::new(&config(), 10);
        let mut rng = rng();
        let mut changes = Vec::new();
        for _ in 0..3 {
            changes.extend(detector.observe(1, Observation::ConnectFailure, at(0), &mut rng));
        }
        for _ in 0..2 {
            changes.extend(detector.observe(1, Observation::Timeout, at(0), &mut rng));
        }
        assert_eq!(changes.len(), 1);

        let mut split = config();
        split.split_external_local_origin_errors = true;
        let mut detector = Detector::new(&split, 10);
        for _ in 0..4 {
            detector.observe(1, Observation::ConnectFailure, at(0), &mut rng);
        }
        // A ready connection resets the local-origin counter.
        detector.observe(1, Observation::ConnectSuccess, at(0), &mut rng);
        let none = detector.observe(1, Observation::ConnectFailure, at(0), &mut rng);
        assert_eq!(none, None);
        // And 5xx responses no longer mix with local errors.
        assert!(feed(&mut detector, 1, 503, 4, at(0)).is_empty());
    }

    #[test]
    fn success_rate_ejects_below_threshold() {
        // Envoy's own example: {50, 100, 100, 100, 100} gives mean 90,
        // stdev 20 and threshold 52, so the host at 50 % goes.
        let rated = [(0, 50.0), (1, 100.0), (2, 100.0), (3, 100.0), (4, 100.0)];
        let threshold = success_rate_threshold(&rated, 1.9);
        assert!((threshold - 52.0).abs() < 1e-9, "{threshold}");
    }

    #[test]
    fn success_rate_needs_volume_and_hosts() {
        let mut detector = Detector::new(&config(), 5);
        let mut rng = rng();
        for host in 0..5 {
            for request in 0..200 {
                // Host 0 fails every other request: never 5 in a row.
                let status = if host == 0 && request % 2 == 0 {
                    500
                } else {
                    200
                };
                detector.observe(host, Observation::Response(status), at(10), &mut rng);
            }
        }
        let mut out = Vec::new();
        detector.on_interval(at(1000), &mut rng, &mut out);
        assert_eq!(
            out,
            [HealthChange {
                host: 0,
                ejected: true,
                kind: Some(EjectionKind::SuccessRate)
            }]
        );

        // Four hosts are below the minimum of five.
        let mut detector = Detector::new(&config(), 4);
        for host in 0..4 {
            for request in 0..200 {
                let status = if host == 0 && request % 2 == 0 {
                    500
                } else {
                    200
                };
                detector.observe(host, Observation::Response(status), at(10), &mut rng);
            }
        }
        let mut out = Vec::new();
        detector.on_interval(at(1000), &mut rng, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn failure_percentage_enforced_when_configured() {
        let mut percentage = config();
        percentage.failure_percentage_threshold = Some(40);
        percentage.enforcing_failure_percentage = 100;
        percentage.enforcing_success_rate = 0;
        let mut detector = Detector::new(&percentage, 5);
        let mut rng = rng();
        for host in 0..5 {
            for request in 0..60 {
                let status = if host == 4 && request % 2 == 0 {
                    503
                } else {
                    200
                };
                detector.observe(host, Observation::Response(status), at(10), &mut rng);
            }
        }
        let mut out = Vec::new();
        detector.on_interval(at(1000), &mut rng, &mut out);
        let kinds: Vec<_> = out.iter().map(|c| (c.host, c.kind)).collect();
        assert_eq!(kinds, [(4, Some(EjectionKind::FailurePercentage))]);
    }

    #[test]
    fn merge_window_holds_changes_after_a_delivery() {
        // Three hosts ejected 25 ms apart, as measured on Envoy 1.40.
        let mut window = MergeWindow::new(SimDuration::from_secs(1));
        assert_eq!(window.on_change(at(401)), Delivery::Now);
        assert_eq!(window.on_change(at(426)), Delivery::At(at(1426)));
        assert_eq!(window.on_change(at(451)), Delivery::Merged);
        assert!(window.on_timer(at(1426)));
        // Three returns on one tick: one at once, two a window later.
        assert_eq!(window.on_change(at(6000)), Delivery::Now);
        assert_eq!(window.on_change(at(6000)), Delivery::At(at(7000)));
        assert_eq!(window.on_change(at(6000)), Delivery::Merged);
        assert!(window.on_timer(at(7000)));
        assert_eq!(window.stats.cluster_updated_via_merge, 2);
        assert_eq!(window.stats.update_out_of_merge_window, 2);
    }

    #[test]
    fn merge_window_compares_whole_milliseconds() {
        let mut window = MergeWindow::new(SimDuration::from_secs(1));
        window.on_change(at(0));
        // 1000.5 ms later is not more than 1000 whole milliseconds.
        let later = at(1000) + SimDuration::from_micros(500);
        assert_eq!(
            window.on_change(later),
            Delivery::At(later + SimDuration::from_secs(1))
        );
    }

    #[test]
    fn late_change_cancels_a_held_delivery() {
        let mut window = MergeWindow::new(SimDuration::from_secs(1));
        window.on_change(at(0));
        assert_eq!(window.on_change(at(900)), Delivery::At(at(1900)));
        // 1.5 s after the last delivery: delivered at once with the held one.
        assert_eq!(window.on_change(at(1500)), Delivery::Now);
        assert!(!window.on_timer(at(1900)));
        assert_eq!(window.stats.update_merge_cancelled, 1);
    }

    #[test]
    fn zero_window_delivers_everything_at_once() {
        let mut window = MergeWindow::new(SimDuration::ZERO);
        for ms in [0, 1, 2] {
            assert_eq!(window.on_change(at(ms)), Delivery::Now);
        }
    }
}
