//! A backend's behaviour over time: the `schedule:` windows in which some
//! endpoints fail, slow down, reset, reject connections or stop responding,
//! and the `overload:` model in which service time grows with the number of
//! requests served at once. The simulation of these lives in `sim::backend`.

use crate::time::{SimDuration, SimTime};
use crate::yaml::{Diagnostics, Node};

/// One window of changed behaviour of some endpoints of a backend.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendWindow {
    /// Start, from simulated time zero.
    pub from: SimDuration,
    /// End (exclusive); `None` lasts until the run ends.
    pub to: Option<SimDuration>,
    /// Endpoint indices the window applies to; `None` means all.
    pub endpoints: Option<Vec<u32>>,
    /// Error status returned with probability `error_probability`.
    pub status: Option<u16>,
    pub error_probability: f64,
    /// `retry-after` sent with the window's error responses.
    pub retry_after: Option<SimDuration>,
    /// Added to every service time.
    pub add_delay: SimDuration,
    /// Multiplies every service time.
    pub slowdown_factor: f64,
    pub failure: Option<EndpointFailure>,
}

/// The way an endpoint stops serving during a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointFailure {
    /// The process is gone: connections are rejected at once and open ones
    /// are closed when the window starts.
    Refuse,
    /// The host is unreachable: connection attempts time out, and requests
    /// on open connections, including those being served when the window
    /// starts, get no response.
    NoAnswer,
    /// Every arriving request gets a TCP reset in place of a response.
    Reset,
}

impl BackendWindow {
    /// True when the window covers `endpoint` at `now`.
    pub fn applies(&self, endpoint: u32, now: SimTime) -> bool {
        let elapsed = now.saturating_since(SimTime::ZERO);
        elapsed >= self.from
            && self.to.is_none_or(|to| elapsed < to)
            && self
                .endpoints
                .as_ref()
                .is_none_or(|list| list.contains(&endpoint))
    }
}

/// Service time growing with concurrency: each request in service beyond
/// `threshold` (counting the one starting) stretches the service time of a
/// starting request by `slowdown_per_request` of its base value.
///
/// With `threshold * slowdown_per_request > 1` the throughput of an
/// endpoint falls as concurrency grows past the threshold, the capacity
/// collapse behind metastable failures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overload {
    pub threshold: u32,
    pub slowdown_per_request: f64,
}

impl Overload {
    /// Returns the factor applied to a service time that starts with
    /// `in_service` requests being served, this one included.
    pub fn factor(&self, in_service: u32) -> f64 {
        1.0 + self.slowdown_per_request * f64::from(in_service.saturating_sub(self.threshold))
    }
}

const WINDOW_FIELDS: &[&str] = &[
    "from",
    "to",
    "endpoints",
    "status",
    "error_probability",
    "retry_after",
    "add_delay",
    "slowdown_factor",
    "refuse",
    "no_answer",
    "reset",
];

/// Reads `schedule:`, checking endpoint indices against `endpoints`.
pub(super) fn read_schedule(
    node: &Node,
    endpoints: Option<u32>,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<BackendWindow>> {
    let mut windows = Vec::new();
    let mut ok = true;
    for item in node.seq(diagnostics)? {
        match read_window(item, endpoints, diagnostics) {
            Some(window) => windows.push(window),
            None => ok = false,
        }
    }
    ok.then_some(windows)
}

fn read_window(
    node: &Node,
    endpoint_count: Option<u32>,
    diagnostics: &mut Diagnostics,
) -> Option<BackendWindow> {
    let fields = node.fields(diagnostics, WINDOW_FIELDS)?;
    let duration = |key: &str, diagnostics: &mut Diagnostics| match fields.get(key) {
        Some(n) => n.duration(diagnostics).map(Some),
        None => Some(None),
    };
    let from = duration("from", diagnostics);
    let to = duration("to", diagnostics);
    let retry_after = duration("retry_after", diagnostics);
    let add_delay = duration("add_delay", diagnostics);
    let endpoints = match fields.get("endpoints") {
        Some(n) => read_endpoint_list(n, endpoint_count, diagnostics).map(Some),
        None => Some(None),
    };
    let status = match fields.get("status") {
        Some(n) => n.int_in(diagnostics, 100, 599).map(|s| Some(s as u16)),
        None => Some(None),
    };
    let error_probability = match fields.get("error_probability") {
        Some(n) => n.f64_in(diagnostics, 0.0, 1.0).map(Some),
        None => Some(None),
    };
    let slowdown_factor = match fields.get("slowdown_factor") {
        Some(n) => n.f64_in(diagnostics, 0.0, 1e6).map(Some),
        None => Some(None),
    };
    let flag = |key: &str, diagnostics: &mut Diagnostics| match fields.get(key) {
        Some(n) => n.bool(diagnostics),
        None => Some(false),
    };
    let refuse = flag("refuse", diagnostics);
    let no_answer = flag("no_answer", diagnostics);
    let reset = flag("reset", diagnostics);

    let (from, to, retry_after, add_delay) = (from?, to?, retry_after?, add_delay?);
    let (endpoints, status, error_probability) = (endpoints?, status?, error_probability?);
    let (slowdown_factor, refuse, no_answer, reset) =
        (slowdown_factor?, refuse?, no_answer?, reset?);
    let from = from.unwrap_or(SimDuration::ZERO);
    if let Some(to) = to
        && to <= from
    {
        diagnostics.error(
            node,
            format!(
                "window ends at {to}, not after its start {from}; `to` must be later than `from`"
            ),
        );
        return None;
    }
    if status.is_none() && (error_probability.is_some() || retry_after.is_some()) {
        diagnostics.error(
            node,
            "`error_probability` and `retry_after` need the `status` of the error response",
        );
        return None;
    }
    let failures: Vec<EndpointFailure> = [
        (refuse, EndpointFailure::Refuse),
        (no_answer, EndpointFailure::NoAnswer),
        (reset, EndpointFailure::Reset),
    ]
    .into_iter()
    .filter_map(|(set, failure)| set.then_some(failure))
    .collect();
    if failures.len() > 1 {
        diagnostics.error(
            node,
            "a window sets at most one of `refuse`, `no_answer` and `reset`",
        );
        return None;
    }
    if status.is_none() && add_delay.is_none() && slowdown_factor.is_none() && failures.is_empty() {
        diagnostics.error(
            node,
            "the window changes nothing; set `status`, `add_delay`, `slowdown_factor`, `refuse`, \
             `no_answer` or `reset`",
        );
        return None;
    }
    Some(BackendWindow {
        from,
        to,
        endpoints,
        status,
        error_probability: error_probability.unwrap_or(1.0),
        retry_after,
        add_delay: add_delay.unwrap_or(SimDuration::ZERO),
        slowdown_factor: slowdown_factor.unwrap_or(1.0),
        failure: failures.first().copied(),
    })
}

fn read_endpoint_list(
    node: &Node,
    endpoint_count: Option<u32>,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<u32>> {
    let items = node.seq(diagnostics)?;
    if items.is_empty() {
        diagnostics.error(
            node,
            "endpoints must list at least one endpoint index; leave it out for all endpoints",
        );
        return None;
    }
    let mut list = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(index) = item.int_in(diagnostics, 0, i64::from(u32::MAX)) else {
            ok = false;
            continue;
        };
        let index = index as u32;
        if let Some(count) = endpoint_count
            && index >= count
        {
            diagnostics.error(
                item,
                format!(
                    "endpoint index {index} is out of range: the backend has {count} endpoints, \
                     numbered from 0"
                ),
            );
            ok = false;
            continue;
        }
        list.push(index);
    }
    ok.then_some(list)
}

/// Reads `overload: {threshold, slowdown_per_request}`.
pub(super) fn read_overload(node: &Node, diagnostics: &mut Diagnostics) -> Option<Overload> {
    let fields = node.fields(diagnostics, &["threshold", "slowdown_per_request"])?;
    let threshold = fields
        .require("threshold", diagnostics)
        .and_then(|n| n.int_in(diagnostics, 0, 1_000_000));
    let slowdown = fields
        .require("slowdown_per_request", diagnostics)
        .and_then(|n| n.f64_in(diagnostics, 0.0, 1e6));
    Some(Overload {
        threshold: threshold? as u32,
        slowdown_per_request: slowdown?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(endpoints: Option<Vec<u32>>) -> BackendWindow {
        BackendWindow {
            from: SimDuration::from_secs(10),
            to: Some(SimDuration::from_secs(20)),
            endpoints,
            status: Some(503),
            error_probability: 1.0,
            retry_after: None,
            add_delay: SimDuration::ZERO,
            slowdown_factor: 1.0,
            failure: None,
        }
    }

    #[test]
    fn window_covers_its_span_and_endpoints() {
        let at = |s| SimTime::ZERO + SimDuration::from_secs(s);
        let all = window(None);
        assert!(!all.applies(0, at(9)));
        assert!(all.applies(5, at(10)));
        assert!(!all.applies(0, at(20)));
        let some = window(Some(vec![2]));
        assert!(some.applies(2, at(15)));
        assert!(!some.applies(1, at(15)));
    }

    #[test]
    fn overload_stretches_beyond_threshold() {
        let overload = Overload {
            threshold: 8,
            slowdown_per_request: 0.25,
        };
        assert_eq!(overload.factor(8), 1.0);
        assert_eq!(overload.factor(12), 2.0);
    }
}
