//! What a run measures: outcomes and latency per client, spend, and a time
//! series per bucket of simulated time.
//!
//! Latency percentiles come from HDR histograms (microsecond resolution,
//! three significant figures for the whole run, two per time bucket), so
//! memory does not grow with the number of requests. Buckets are closed as
//! simulated time passes them and kept as compact rows.
//!
//! [`Probe`]s are extra totals asked for before a run (by `trafficsim
//! check` and `trafficsim diff`): one scope (the run, a client, some
//! routes or a replica) over one span of simulated time. Each is a fixed
//! set of counters and one histogram, so they too keep memory flat.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::time::{SimDuration, SimTime};

mod tally;

use tally::Tally;

/// Recorded in place of a status for a call the client gave up on: its
/// timeout fired and it had no retry left.
pub const CLIENT_TIMEOUT_STATUS: u16 = 0;

/// Endpoints beyond this many get totals but no per-bucket series.
pub const MAX_ENDPOINT_SERIES: usize = 64;

/// The reason an attempt reached a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    /// The first attempt of a call's first request.
    First,
    /// An Envoy retry.
    EnvoyRetry,
    /// The first Envoy attempt of a client's retry.
    ClientRetry,
}

/// Largest latency recorded exactly: one hour, in microseconds; longer
/// latencies are recorded as one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn new_histogram(significant_figures: u8) -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, significant_figures)
        .expect("constant histogram bounds are valid")
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    pub fn from_histogram(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// Totals for one client definition (all its instances).
#[derive(Clone, Debug)]
pub struct GroupMetrics {
    pub name: String,
    /// Calls the client made; each is one request plus the client's own
    /// retries of it.
    pub requests: u64,
    /// HTTP requests sent: `requests` plus `client_retries`.
    pub http_requests: u64,
    /// Requests the client sent again after a failure or its timeout.
    pub client_retries: u64,
    /// Requests the client abandoned when its timeout fired.
    pub client_timeouts: u64,
    /// Final status of each call, per status code
    /// ([`CLIENT_TIMEOUT_STATUS`] for calls given up); complete once
    /// [`Metrics::finish`] has run.
    pub statuses: BTreeMap<u16, u64>,
    /// Counts per status, since the last [`Metrics::finish`], of the calls
    /// of no known instance. `finish` moves them and the instances' counts
    /// into `statuses`. A run produces few distinct statuses, so a short
    /// list is cheaper to count in than a map.
    status_tally: StatusTally,
    /// Latency of each call, from its first send to its final outcome;
    /// complete once [`Metrics::finish`] has run.
    pub latency: Histogram<u64>,
    /// Latency of the requests whose final status was a 2xx; complete
    /// once [`Metrics::finish`] has run.
    pub latency_2xx: Histogram<u64>,
    /// Latency of the other calls. [`Metrics::finish`] adds it and
    /// `latency_2xx` into `latency`, which gives the same histogram as
    /// recording every call there, for one record per call fewer.
    latency_non_2xx: Histogram<u64>,
    /// Latencies since the last [`Metrics::finish`], which records them
    /// in `latency_2xx` and `latency_non_2xx`.
    tally_2xx: Tally,
    tally_non_2xx: Tally,
    /// Attempts that reached a backend: first attempts and retries (by
    /// Envoy or by the client).
    pub backend_first_attempts: u64,
    pub backend_retries: u64,
    pub backend_envoy_retries: u64,
    pub backend_client_retries: u64,
    pub spend_first_attempts_usd: f64,
    pub spend_retries_usd: f64,
    /// Backend executions of POST or PATCH calls beyond the first of each
    /// call: effects that may have happened twice.
    pub duplicate_executions: u64,
    /// Responses Envoy sent, by `x-envoy-attempt-count` (0 for a local
    /// reply); complete once [`Metrics::finish`] has run.
    pub attempt_counts: BTreeMap<u32, u64>,
    /// Responses per attempt count since the last [`Metrics::finish`],
    /// indexed by the count.
    attempt_tally: Vec<u64>,
    pub first_sent: Option<SimTime>,
    pub last_completed: Option<SimTime>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Per-instance requests and statuses, when the client has instances.
    pub instances: Vec<InstanceMetrics>,
}

#[derive(Clone, Debug, Default)]
pub struct InstanceMetrics {
    pub requests: u64,
    /// Final status of each call, per status code; complete once
    /// [`Metrics::finish`] has run.
    pub statuses: BTreeMap<u16, u64>,
    status_tally: StatusTally,
}

/// Counts per status code in the order first seen.
#[derive(Clone, Debug, Default)]
struct StatusTally(Vec<(u16, u64)>);

impl StatusTally {
    fn count(&mut self, status: u16) {
        match self.0.iter_mut().find(|(seen, _)| *seen == status) {
            Some((_, count)) => *count += 1,
            None => self.0.push((status, 1)),
        }
    }

    /// Adds the counts to `statuses` and starts again from zero.
    fn drain_into(&mut self, statuses: &mut BTreeMap<u16, u64>) {
        for (status, count) in self.0.drain(..) {
            *statuses.entry(status).or_insert(0) += count;
        }
    }

    /// Adds the counts to both `first` and `second` and starts again from
    /// zero.
    fn drain_into_both(&mut self, first: &mut BTreeMap<u16, u64>, second: &mut BTreeMap<u16, u64>) {
        for (status, count) in self.0.drain(..) {
            *first.entry(status).or_insert(0) += count;
            *second.entry(status).or_insert(0) += count;
        }
    }
}

impl GroupMetrics {
    fn new(name: &str, instances: u32) -> GroupMetrics {
        let latency_2xx = new_histogram(3);
        GroupMetrics {
            name: name.to_string(),
            requests: 0,
            http_requests: 0,
            client_retries: 0,
            client_timeouts: 0,
            statuses: BTreeMap::new(),
            status_tally: StatusTally::default(),
            latency: new_histogram(3),
            tally_2xx: Tally::for_histogram(&latency_2xx),
            tally_non_2xx: Tally::for_histogram(&latency_2xx),
            latency_2xx,
            latency_non_2xx: new_histogram(3),
            backend_first_attempts: 0,
            backend_retries: 0,
            backend_envoy_retries: 0,
            backend_client_retries: 0,
            spend_first_attempts_usd: 0.0,
            spend_retries_usd: 0.0,
            duplicate_executions: 0,
            attempt_counts: BTreeMap::new(),
            attempt_tally: Vec::new(),
            first_sent: None,
            last_completed: None,
            input_tokens: 0,
            output_tokens: 0,
            instances: vec![InstanceMetrics::default(); instances as usize],
        }
    }

    pub fn spend_usd(&self) -> f64 {
        self.spend_first_attempts_usd + self.spend_retries_usd
    }

    pub fn completed(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// Attempt counts below this are counted in a vector indexed by the count.
/// Larger ones, from very long retry policies, go directly into the map.
const MAX_TALLIED_ATTEMPTS: usize = 64;

/// Status columns of the time series, in CSV order.
pub const STATUS_COLUMNS: [&str; 8] = [
    "count_2xx",
    "count_429",
    "count_500",
    "count_503",
    "count_504",
    "count_other_4xx",
    "count_other",
    "count_client_timeout",
];

/// The column a status is counted in.
pub fn status_column(status: u16) -> usize {
    match status {
        CLIENT_TIMEOUT_STATUS => 7,
        200..=299 => 0,
        429 => 1,
        500 => 2,
        503 => 3,
        504 => 4,
        400..=499 => 5,
        _ => 6,
    }
}

/// One closed bucket of one client.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    pub bucket: u64,
    pub group: usize,
    pub completed: u64,
    pub statuses: [u64; STATUS_COLUMNS.len()],
    pub backend_requests: u64,
    /// The part of `backend_requests` that were retries, by Envoy or by
    /// the client.
    pub backend_retries: u64,
    pub spend_usd: f64,
    /// Percentiles of the requests completed in the bucket; `None` when
    /// none completed.
    pub latency: Option<LatencySummary>,
}

struct OpenBucket {
    completed: u64,
    statuses: [u64; STATUS_COLUMNS.len()],
    backend_requests: u64,
    backend_retries: u64,
    spend_usd: f64,
    /// Latencies of the bucket, recorded in `latency` when it closes.
    tally: Tally,
    latency: Histogram<u64>,
}

impl OpenBucket {
    fn new() -> OpenBucket {
        let latency = new_histogram(2);
        OpenBucket {
            completed: 0,
            statuses: [0; STATUS_COLUMNS.len()],
            backend_requests: 0,
            backend_retries: 0,
            spend_usd: 0.0,
            tally: Tally::for_histogram(&latency),
            latency,
        }
    }

    fn is_empty(&self) -> bool {
        self.completed == 0 && self.backend_requests == 0 && self.spend_usd == 0.0
    }
}

/// The requests a [`Probe`] counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeScope {
    /// Every request of the run.
    Run,
    /// Requests of one client definition, by index in the scenario.
    Client(usize),
    /// Requests that matched one of these routes, by index in the gateway
    /// model's route table.
    Routes(Vec<usize>),
    /// Requests sent to one Envoy replica, by index.
    Replica(u32),
}

/// Client, route and replica of a request, which probes filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// Index of the client definition.
    pub group: usize,
    /// Index of the matched route; `None` when no route matched.
    pub route: Option<usize>,
    pub replica: u32,
}

/// Totals of one scope over the simulated time `[from, to)`.
///
/// A completion counts at the time its response reaches the client and a
/// backend attempt at the time it reaches the backend, as in the rows.
#[derive(Clone, Debug)]
pub struct Probe {
    pub scope: ProbeScope,
    pub from: SimTime,
    /// End of the span (exclusive); `None` runs to the end of the run.
    pub to: Option<SimTime>,
    /// Final status seen by clients, per status code.
    pub statuses: BTreeMap<u16, u64>,
    pub latency: Histogram<u64>,
    pub backend_first_attempts: u64,
    pub backend_retries: u64,
    pub spend_usd: f64,
}

impl Probe {
    pub fn new(scope: ProbeScope, from: SimTime, to: Option<SimTime>) -> Probe {
        Probe {
            scope,
            from,
            to,
            statuses: BTreeMap::new(),
            latency: new_histogram(3),
            backend_first_attempts: 0,
            backend_retries: 0,
            spend_usd: 0.0,
        }
    }

    fn counts(&self, site: &Site, now: SimTime) -> bool {
        let in_span = now >= self.from && self.to.is_none_or(|to| now < to);
        in_span
            && match &self.scope {
                ProbeScope::Run => true,
                ProbeScope::Client(group) => *group == site.group,
                ProbeScope::Routes(routes) => site.route.is_some_and(|r| routes.contains(&r)),
                ProbeScope::Replica(replica) => *replica == site.replica,
            }
    }

    pub fn completed(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// Everything measured in one run.
pub struct Metrics {
    pub groups: Vec<GroupMetrics>,
    pub rows: Vec<SeriesRow>,
    pub bucket: SimDuration,
    /// Attempts served (queued or started) by each backend endpoint, in
    /// the scenario's endpoint order.
    pub endpoint_requests: Vec<u64>,
    /// Per bucket with any traffic: the bucket and each endpoint's
    /// requests in it; empty when there are more than
    /// [`MAX_ENDPOINT_SERIES`] endpoints.
    pub endpoint_rows: Vec<(u64, Vec<u32>)>,
    /// Totals asked for before the run, in the order they were added.
    pub probes: Vec<Probe>,
    current: u64,
    /// End of bucket `current`, in nanoseconds. `advance` divides only once
    /// time reaches it, not on every event.
    current_end_nanos: u64,
    open: Vec<OpenBucket>,
    open_endpoints: Vec<u32>,
}

impl Metrics {
    /// `groups` lists each client definition with its instance count;
    /// `endpoints` is the number of backend endpoints.
    pub fn new(groups: &[(String, u32)], bucket: SimDuration, endpoints: usize) -> Metrics {
        let tracked = if endpoints <= MAX_ENDPOINT_SERIES {
            endpoints
        } else {
            0
        };
        Metrics {
            groups: groups
                .iter()
                .map(|(name, instances)| GroupMetrics::new(name, *instances))
                .collect(),
            rows: Vec::new(),
            bucket,
            endpoint_requests: vec![0; endpoints],
            endpoint_rows: Vec::new(),
            probes: Vec::new(),
            current: 0,
            current_end_nanos: bucket.as_nanos().max(1),
            open: groups.iter().map(|_| OpenBucket::new()).collect(),
            open_endpoints: vec![0; tracked],
        }
    }

    fn bucket_of(&self, time: SimTime) -> u64 {
        time.as_nanos() / self.bucket.as_nanos().max(1)
    }

    /// Closes every bucket that ends at or before `now`.
    pub fn advance(&mut self, now: SimTime) {
        if now.as_nanos() < self.current_end_nanos {
            return;
        }
        let target = self.bucket_of(now);
        if target > self.current {
            self.close_current();
            self.current = target;
            self.current_end_nanos = target
                .saturating_add(1)
                .saturating_mul(self.bucket.as_nanos().max(1));
        }
    }

    fn close_current(&mut self) {
        if self.open_endpoints.iter().any(|count| *count > 0) {
            self.endpoint_rows
                .push((self.current, self.open_endpoints.clone()));
            self.open_endpoints.iter_mut().for_each(|count| *count = 0);
        }
        for (group, open) in self.open.iter_mut().enumerate() {
            if open.is_empty() {
                continue;
            }
            open.tally.flush_into(&mut open.latency);
            let latency =
                (!open.latency.is_empty()).then(|| LatencySummary::from_histogram(&open.latency));
            self.rows.push(SeriesRow {
                bucket: self.current,
                group,
                completed: open.completed,
                statuses: open.statuses,
                backend_requests: open.backend_requests,
                backend_retries: open.backend_retries,
                spend_usd: open.spend_usd,
                latency,
            });
            open.completed = 0;
            open.statuses = [0; STATUS_COLUMNS.len()];
            open.backend_requests = 0;
            open.backend_retries = 0;
            open.spend_usd = 0.0;
            open.latency.reset();
        }
    }

    /// Closes the last bucket at the end of the run.
    pub fn finish(&mut self) {
        self.close_current();
        for group in &mut self.groups {
            group.status_tally.drain_into(&mut group.statuses);
            for instance in &mut group.instances {
                instance
                    .status_tally
                    .drain_into_both(&mut instance.statuses, &mut group.statuses);
            }
            for (attempts, count) in group.attempt_tally.iter_mut().enumerate() {
                if *count > 0 {
                    *group.attempt_counts.entry(attempts as u32).or_insert(0) += *count;
                    *count = 0;
                }
            }
            group.tally_2xx.flush_into(&mut group.latency_2xx);
            group.tally_non_2xx.flush_into(&mut group.latency_non_2xx);
            group.latency.reset();
            // All three come from `new_histogram(3)`, with one range, so
            // adding cannot fail.
            let _ = group.latency.add(&group.latency_2xx);
            let _ = group.latency.add(&group.latency_non_2xx);
        }
    }

    /// Records a call started at `now`.
    pub fn record_sent(&mut self, group: usize, instance: u32, now: SimTime) {
        let metrics = &mut self.groups[group];
        metrics.requests += 1;
        metrics.first_sent.get_or_insert(now);
        if let Some(metrics) = metrics.instances.get_mut(instance as usize) {
            metrics.requests += 1;
        }
    }

    /// Records an HTTP request sent: a call's first, or a retry of it.
    pub fn record_http_request(&mut self, group: usize, client_retry: bool) {
        let metrics = &mut self.groups[group];
        metrics.http_requests += 1;
        if client_retry {
            metrics.client_retries += 1;
        }
    }

    /// Records a request the client abandoned when its timeout fired.
    pub fn record_client_timeout(&mut self, group: usize) {
        self.groups[group].client_timeouts += 1;
    }

    /// Records a response from Envoy with `attempts` in
    /// `x-envoy-attempt-count`.
    #[inline]
    pub fn record_attempt_count(&mut self, group: usize, attempts: u32) {
        let metrics = &mut self.groups[group];
        let index = attempts as usize;
        if index < MAX_TALLIED_ATTEMPTS {
            if metrics.attempt_tally.len() <= index {
                metrics.attempt_tally.resize(index + 1, 0);
            }
            metrics.attempt_tally[index] += 1;
        } else {
            *metrics.attempt_counts.entry(attempts).or_insert(0) += 1;
        }
    }

    /// Records a non-idempotent call reaching a backend once more.
    pub fn record_duplicate_execution(&mut self, group: usize) {
        self.groups[group].duplicate_executions += 1;
    }

    /// Records an attempt an endpoint took to serve.
    pub fn record_endpoint_request(&mut self, endpoint: usize) {
        if let Some(total) = self.endpoint_requests.get_mut(endpoint) {
            *total += 1;
        }
        if let Some(count) = self.open_endpoints.get_mut(endpoint) {
            *count += 1;
        }
    }

    /// Records a call's final status reaching its client at `now`.
    pub fn record_completed(
        &mut self,
        group: usize,
        instance: u32,
        status: u16,
        latency: SimDuration,
        now: SimTime,
    ) {
        self.advance(now);
        let micros = (latency.as_nanos() / 1_000).clamp(1, MAX_LATENCY_US);
        let metrics = &mut self.groups[group];
        metrics.last_completed = Some(now);
        // Values are clamped into the histograms' range, so flushing the
        // tallies into them cannot fail.
        if (200..300).contains(&status) {
            metrics.tally_2xx.record(micros);
        } else {
            metrics.tally_non_2xx.record(micros);
        }
        // The group's statuses are the sum of its instances', so a status
        // is counted once, at the instance when there is one.
        match metrics.instances.get_mut(instance as usize) {
            Some(instance) => instance.status_tally.count(status),
            None => metrics.status_tally.count(status),
        }
        let open = &mut self.open[group];
        open.completed += 1;
        open.statuses[status_column(status)] += 1;
        open.tally.record(micros);
    }

    /// Records an attempt reaching a backend at `now`, costing `usd`.
    pub fn record_backend_attempt(
        &mut self,
        group: usize,
        kind: AttemptKind,
        usd: f64,
        input_tokens: u64,
        output_tokens: u64,
        now: SimTime,
    ) {
        self.advance(now);
        let metrics = &mut self.groups[group];
        let open = &mut self.open[group];
        match kind {
            AttemptKind::First => {
                metrics.backend_first_attempts += 1;
                metrics.spend_first_attempts_usd += usd;
            }
            AttemptKind::EnvoyRetry | AttemptKind::ClientRetry => {
                metrics.backend_retries += 1;
                metrics.spend_retries_usd += usd;
                open.backend_retries += 1;
                if kind == AttemptKind::EnvoyRetry {
                    metrics.backend_envoy_retries += 1;
                } else {
                    metrics.backend_client_retries += 1;
                }
            }
        }
        metrics.input_tokens += input_tokens;
        metrics.output_tokens += output_tokens;
        open.backend_requests += 1;
        open.spend_usd += usd;
    }

    /// Counts a request of `site` that completed at `now` in every probe
    /// that covers it.
    pub fn probe_completed(
        &mut self,
        site: &Site,
        status: u16,
        latency: SimDuration,
        now: SimTime,
    ) {
        if self.probes.is_empty() {
            return;
        }
        let micros = (latency.as_nanos() / 1_000).clamp(1, MAX_LATENCY_US);
        for probe in &mut self.probes {
            if probe.counts(site, now) {
                *probe.statuses.entry(status).or_insert(0) += 1;
                // Clamped into the histogram's range, so recording cannot fail.
                let _ = probe.latency.record(micros);
            }
        }
    }

    /// Counts an attempt of `site` that reached a backend at `now`,
    /// costing `usd`, in every probe that covers it. Envoy's and clients'
    /// retries count as retries, as in [`GroupMetrics`].
    pub fn probe_backend_attempt(
        &mut self,
        site: &Site,
        kind: AttemptKind,
        usd: f64,
        now: SimTime,
    ) {
        for probe in &mut self.probes {
            if probe.counts(site, now) {
                if kind == AttemptKind::First {
                    probe.backend_first_attempts += 1;
                } else {
                    probe.backend_retries += 1;
                }
                probe.spend_usd += usd;
            }
        }
    }

    pub fn total_requests(&self) -> u64 {
        self.groups.iter().map(|g| g.requests).sum()
    }

    pub fn total_statuses(&self) -> BTreeMap<u16, u64> {
        let mut total = BTreeMap::new();
        for group in &self.groups {
            for (status, count) in &group.statuses {
                *total.entry(*status).or_insert(0) += count;
            }
        }
        total
    }

    pub fn total_latency(&self) -> Histogram<u64> {
        let mut total = new_histogram(3);
        for group in &self.groups {
            // Identical bounds on both sides, so adding cannot fail.
            let _ = total.add(&group.latency);
        }
        total
    }

    /// Latency of every client's 2xx responses together.
    pub fn total_latency_2xx(&self) -> Histogram<u64> {
        let mut total = new_histogram(3);
        for group in &self.groups {
            // Identical bounds on both sides, so adding cannot fail.
            let _ = total.add(&group.latency_2xx);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_close_as_time_passes() {
        let mut metrics = Metrics::new(&[("a".to_string(), 1)], SimDuration::from_secs(1), 0);
        let ms = SimDuration::from_millis;
        metrics.record_completed(0, 0, 200, ms(5), SimTime::from_nanos(100));
        metrics.record_completed(0, 0, 429, ms(1), SimTime::from_nanos(2_500_000_000));
        metrics.finish();
        assert_eq!(metrics.rows.len(), 2);
        assert_eq!(metrics.rows[0].bucket, 0);
        assert_eq!(metrics.rows[0].statuses[0], 1);
        assert_eq!(metrics.rows[1].bucket, 2);
        assert_eq!(metrics.rows[1].statuses[1], 1);
        assert_eq!(metrics.groups[0].completed(), 2);
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut metrics = Metrics::new(&[("a".to_string(), 1)], SimDuration::from_secs(1), 0);
        for ms in 1..=100 {
            metrics.record_completed(0, 0, 200, SimDuration::from_millis(ms), SimTime::ZERO);
        }
        metrics.finish();
        let summary = LatencySummary::from_histogram(&metrics.groups[0].latency);
        assert!((summary.p50 - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99 - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn probes_filter_by_scope_and_span() {
        let mut metrics = Metrics::new(&[("a".to_string(), 1)], SimDuration::from_secs(1), 0);
        let secs = |s: u64| SimTime::ZERO + SimDuration::from_secs(s);
        metrics.probes = vec![
            Probe::new(ProbeScope::Run, SimTime::ZERO, None),
            Probe::new(ProbeScope::Routes(vec![1]), secs(2), Some(secs(4))),
            Probe::new(ProbeScope::Replica(1), SimTime::ZERO, None),
        ];
        let site = |route, replica| Site {
            group: 0,
            route,
            replica,
        };
        let ms = SimDuration::from_millis(1);
        metrics.probe_completed(&site(Some(1), 0), 200, ms, secs(1));
        metrics.probe_completed(&site(Some(1), 0), 429, ms, secs(2));
        metrics.probe_completed(&site(None, 1), 404, ms, secs(3));
        metrics.probe_completed(&site(Some(1), 1), 200, ms, secs(4));
        metrics.probe_backend_attempt(&site(Some(1), 0), AttemptKind::EnvoyRetry, 0.5, secs(3));
        assert_eq!(metrics.probes[0].completed(), 4);
        assert_eq!(metrics.probes[1].completed(), 1);
        assert_eq!(metrics.probes[1].statuses.get(&429), Some(&1));
        assert_eq!(metrics.probes[1].backend_retries, 1);
        assert_eq!(metrics.probes[2].completed(), 2);
        assert_eq!(metrics.probes[2].spend_usd, 0.0);
    }

    #[test]
    fn spend_separates_retries() {
        let mut metrics = Metrics::new(&[("a".to_string(), 1)], SimDuration::from_secs(1), 0);
        metrics.record_backend_attempt(0, AttemptKind::First, 1.0, 10, 5, SimTime::ZERO);
        metrics.record_backend_attempt(0, AttemptKind::EnvoyRetry, 0.5, 10, 5, SimTime::ZERO);
        metrics.record_backend_attempt(0, AttemptKind::ClientRetry, 0.25, 10, 5, SimTime::ZERO);
        assert_eq!(metrics.groups[0].spend_usd(), 1.75);
        assert_eq!(metrics.groups[0].backend_retries, 2);
        assert_eq!(metrics.groups[0].backend_envoy_retries, 1);
        assert_eq!(metrics.groups[0].backend_client_retries, 1);
        assert_eq!(metrics.groups[0].spend_retries_usd, 0.75);
    }
}
