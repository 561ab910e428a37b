//! The `clients:` section: who sends traffic, how much and when.

use std::path::Path;
use std::sync::Arc;

use super::positive_count;
use super::trace::{TraceColumns, TraceRow, read_trace};
use crate::dist::{self, Dist, Quantity};
use crate::time::SimDuration;
use crate::yaml::{self, Diagnostics, Node};

/// One client definition; `count` instances of it run side by side.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub name: String,
    pub kind: ClientKind,
    pub count: u32,
    /// Delay before the first request: from time zero, or from when the
    /// `after` client finished.
    pub start: SimDuration,
    /// Index of the client definition whose every instance must finish
    /// before this one starts.
    pub after: Option<usize>,
    /// Simulated time after which no new request is sent.
    pub stop: Option<SimDuration>,
    pub request: RequestTemplate,
    pub connection: Connection,
    /// How long the client waits for a response before it gives up on the
    /// request and closes its connection; `None` waits forever.
    pub timeout: Option<SimDuration>,
    /// The client's own retries; `None` never retries.
    pub retries: Option<ClientRetries>,
}

/// A client library's retry loop, as in the OpenAI and Anthropic SDKs. The
/// defaults (2 retries, exponential from 500 ms to 8 s) are theirs, except
/// that the SDKs also shorten each wait by up to 25% at random.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRetries {
    /// Retries after the first request of a call.
    pub max: u32,
    pub backoff: BackoffKind,
    /// First wait of the exponential kinds, and the floor of
    /// decorrelated jitter.
    pub base: SimDuration,
    /// Longest wait.
    pub cap: SimDuration,
    /// Wait for the duration of a `retry-after` response header of 60 s or
    /// less (the SDKs' limit), in place of the backoff.
    pub respect_retry_after: bool,
    /// Response statuses that are retried; a client timeout always is.
    pub statuses: Vec<u16>,
}

/// How long a client waits before retry `n` (0 for the first retry), with
/// `b` the base and `c` the cap, as named in the AWS Architecture Blog's
/// "Exponential Backoff And Jitter" (Marc Brooker, 2015).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffKind {
    /// No wait at all.
    None,
    /// `min(c, b * 2^n)`.
    Exponential,
    /// Uniform in `[0, min(c, b * 2^n))`.
    FullJitter,
    /// Half of `min(c, b * 2^n)` plus uniform in the other half.
    EqualJitter,
    /// `min(c, uniform in [b, 3 * previous wait))`, starting from `b`.
    DecorrelatedJitter,
}

impl BackoffKind {
    pub fn name(self) -> &'static str {
        match self {
            BackoffKind::None => "none",
            BackoffKind::Exponential => "exponential",
            BackoffKind::FullJitter => "full-jitter",
            BackoffKind::EqualJitter => "equal-jitter",
            BackoffKind::DecorrelatedJitter => "decorrelated-jitter",
        }
    }
}

/// Returns the statuses the OpenAI and Anthropic Python SDKs retry: 408,
/// 409, 429 and every 5xx.
fn default_retry_statuses() -> Vec<u16> {
    let mut statuses = vec![408, 409, 429];
    statuses.extend(500..=599);
    statuses
}

/// How a client reuses its connection to Envoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// One connection for the client's life: the same Envoy worker serves
    /// every request (with sticky spread, the same replica too).
    KeepAlive,
    /// A new connection per request, as `curl` in a loop opens.
    PerRequest,
}

#[derive(Clone, Debug)]
pub enum ClientKind {
    /// One request at a time, like `curl` in a `for` loop.
    Sequential { requests: u64, think_time: Dist },
    /// `concurrency` workers sharing `requests`, like `hey -n M -c N`.
    Closed {
        requests: u64,
        concurrency: u32,
        think_time: Dist,
    },
    /// Requests at a rate, whether or not earlier ones finished.
    Open {
        rate_per_s: f64,
        /// `1 / rate_per_s`, the mean time between requests in seconds:
        /// a gap is drawn with a multiplication, not a division.
        mean_gap_s: f64,
        arrival: OpenArrival,
        requests: Option<u64>,
        /// Each request comes from one of this many users, drawn uniformly;
        /// `{user}` in the request template is replaced by its number.
        users: Option<u32>,
    },
    /// A runaway LLM agent: loops forever, waits `think_time` after a
    /// success and only `retry_delay` after a 429 or 5xx.
    Agent {
        think_time: Dist,
        retry_delay: Dist,
        requests: Option<u64>,
    },
    /// Replays a recorded trace.
    Trace {
        file: String,
        rows: Arc<Vec<TraceRow>>,
        /// 2.0 replays twice as fast.
        speedup: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenArrival {
    Poisson,
    Constant,
}

/// What each request of a client looks like. `{index}` in any text is
/// replaced by the instance number, `{user}` by the user number.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub method: String,
    pub path: String,
    pub host: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Asks the backend to take this long, like `?delay=2s` against a test
    /// backend; replaces the backend's service time.
    pub delay: Option<SimDuration>,
    pub source_ip: String,
    pub input_tokens: Option<Dist>,
    pub output_tokens: Option<Dist>,
}

impl ClientSpec {
    /// An estimate of the requests all instances send in `horizon`, or
    /// `None` when it depends on how fast responses come back (agents
    /// without a request cap). For sequential and closed clients it is an
    /// upper bound: the think time alone, with instant responses.
    pub fn estimated_requests(&self, horizon: Option<SimDuration>) -> Option<u64> {
        let window = self.stop.or(horizon).map(|end| end.as_secs_f64());
        let per_instance = match &self.kind {
            ClientKind::Sequential {
                requests,
                think_time,
            } => cap_by_think_time(*requests, 1, think_time, window),
            ClientKind::Closed {
                requests,
                concurrency,
                think_time,
            } => cap_by_think_time(*requests, *concurrency, think_time, window),
            ClientKind::Open {
                rate_per_s,
                requests,
                ..
            } => {
                let by_rate = window.map(|seconds| (rate_per_s * seconds) as u64);
                match (by_rate, requests) {
                    (Some(a), Some(b)) => a.min(*b),
                    (Some(a), None) => a,
                    (None, Some(b)) => *b,
                    (None, None) => return None,
                }
            }
            ClientKind::Agent { requests, .. } => (*requests)?,
            ClientKind::Trace { rows, .. } => rows.len() as u64,
        };
        Some(per_instance.saturating_mul(u64::from(self.count)))
    }

    /// True when the client would send requests forever.
    pub fn is_endless(&self) -> bool {
        if self.stop.is_some() {
            return false;
        }
        match &self.kind {
            ClientKind::Sequential { .. }
            | ClientKind::Closed { .. }
            | ClientKind::Trace { .. } => false,
            ClientKind::Open { requests, .. } | ClientKind::Agent { requests, .. } => {
                requests.is_none()
            }
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ClientKind::Sequential { .. } => "sequential",
            ClientKind::Closed { .. } => "closed",
            ClientKind::Open { .. } => "open",
            ClientKind::Agent { .. } => "agent",
            ClientKind::Trace { .. } => "trace",
        }
    }
}

/// Caps `requests` by what `workers` loops can send in `window` seconds
/// when each waits `think_time` between requests.
fn cap_by_think_time(requests: u64, workers: u32, think_time: &Dist, window: Option<f64>) -> u64 {
    let mean = think_time.mean();
    match window {
        Some(seconds) if mean > 0.0 => {
            let by_think_time = (f64::from(workers) * seconds / mean).ceil();
            requests.min(by_think_time as u64)
        }
        _ => requests,
    }
}

pub(super) fn read_clients(
    node: &Node,
    scenario_path: &Path,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<ClientSpec>> {
    let items = node.seq(diagnostics)?;
    if items.is_empty() {
        diagnostics.error(node, "clients must list at least one client");
        return None;
    }
    let names: Vec<Option<String>> = items
        .iter()
        .map(|item| {
            item.get("name")
                .and_then(|n| n.scalar())
                .map(str::to_string)
        })
        .collect();
    let mut clients = Vec::new();
    let mut ok = true;
    for (index, item) in items.iter().enumerate() {
        if let Some(name) = &names[index]
            && names[..index]
                .iter()
                .any(|earlier| earlier.as_ref() == Some(name))
        {
            diagnostics.error(item, format!("client name `{name}` is used twice"));
            ok = false;
        }
        match read_client(item, index, &names, scenario_path, diagnostics) {
            Some(client) => clients.push(client),
            None => ok = false,
        }
    }
    ok.then_some(clients)
}

fn read_client(
    node: &Node,
    index: usize,
    names: &[Option<String>],
    scenario_path: &Path,
    diagnostics: &mut Diagnostics,
) -> Option<ClientSpec> {
    let kind_name = node
        .get("kind")
        .and_then(|k| k.scalar())
        .unwrap_or("sequential")
        .to_string();
    let known = super::schema::client_field_names(&kind_name);
    let fields = node.fields(diagnostics, &known)?;
    let name = match fields.get("name") {
        Some(n) => n.string(diagnostics),
        None => Some(format!("client-{index}")),
    };
    if let Some(k) = fields.get("kind") {
        k.one_of(
            diagnostics,
            &["sequential", "closed", "open", "agent", "trace"],
        )?;
    }
    let count = match fields.get("count") {
        Some(n) => positive_count(n, "count", 1_000_000, diagnostics),
        None => Some(1),
    };
    let start = fields
        .get("start")
        .map_or(Some(SimDuration::ZERO), |n| n.duration(diagnostics));
    let stop = match fields.get("stop") {
        Some(n) => n.duration(diagnostics).map(Some),
        None => Some(None),
    };
    let after = match fields.get("after") {
        Some(n) => read_after(n, index, names, diagnostics).map(Some),
        None => Some(None),
    };
    let request = read_request(&fields, diagnostics);
    let default_connection = match kind_name.as_str() {
        "sequential" | "open" | "trace" => Connection::PerRequest,
        _ => Connection::KeepAlive,
    };
    let connection = match fields.get("connection") {
        Some(n) => match n.one_of(diagnostics, &["keep-alive", "per-request"])? {
            "keep-alive" => Some(Connection::KeepAlive),
            _ => Some(Connection::PerRequest),
        },
        None => Some(default_connection),
    };
    let kind = read_kind(&kind_name, &fields, scenario_path, diagnostics);
    let timeout = match fields.get("timeout") {
        Some(n) => read_timeout(n, diagnostics).map(Some),
        None => Some(None),
    };
    let retries = match fields.get("retries") {
        Some(n) => read_retries(n, diagnostics).map(Some),
        None => Some(None),
    };
    Some(ClientSpec {
        name: name?,
        kind: kind?,
        count: count?,
        start: start?,
        after: after?,
        stop: stop?,
        request: request?,
        connection: connection?,
        timeout: timeout?,
        retries: retries?,
    })
}

fn read_timeout(node: &Node, diagnostics: &mut Diagnostics) -> Option<SimDuration> {
    let timeout = node.duration(diagnostics)?;
    if timeout.is_zero() {
        diagnostics.error(
            node,
            "timeout must be longer than zero; leave it out to wait for every response",
        );
        return None;
    }
    Some(timeout)
}

/// Reads `retries: {max, backoff, base, cap, respect_retry_after, statuses}`.
fn read_retries(node: &Node, diagnostics: &mut Diagnostics) -> Option<ClientRetries> {
    let fields = node.fields(diagnostics, &super::schema::CLIENT_RETRIES.names())?;
    let max = match fields.get("max") {
        Some(n) => n.int_in(diagnostics, 0, 1_000).map(|v| v as u32),
        None => Some(2),
    };
    let backoff = match fields.get("backoff") {
        Some(n) => n
            .one_of(diagnostics, &super::schema::BACKOFF_KINDS)
            .map(|name| match name {
                "none" => BackoffKind::None,
                "full-jitter" => BackoffKind::FullJitter,
                "equal-jitter" => BackoffKind::EqualJitter,
                "decorrelated-jitter" => BackoffKind::DecorrelatedJitter,
                _ => BackoffKind::Exponential,
            }),
        None => Some(BackoffKind::Exponential),
    };
    let base = fields
        .get("base")
        .map_or(Some(SimDuration::from_millis(500)), |n| {
            n.duration(diagnostics)
        });
    let cap = fields
        .get("cap")
        .map_or(Some(SimDuration::from_secs(8)), |n| n.duration(diagnostics));
    let respect_retry_after = match fields.get("respect_retry_after") {
        Some(n) => n.bool(diagnostics),
        None => Some(true),
    };
    let statuses = match fields.get("statuses") {
        Some(n) => read_statuses(n, diagnostics),
        None => Some(default_retry_statuses()),
    };
    let (base, cap) = (base?, cap?);
    if cap < base {
        diagnostics.error(
            node,
            format!("retries.cap ({cap}) is shorter than retries.base ({base}); raise the cap"),
        );
        return None;
    }
    Some(ClientRetries {
        max: max?,
        backoff: backoff?,
        base,
        cap,
        respect_retry_after: respect_retry_after?,
        statuses: statuses?,
    })
}

fn read_statuses(node: &Node, diagnostics: &mut Diagnostics) -> Option<Vec<u16>> {
    let mut statuses = Vec::new();
    let mut ok = true;
    for item in node.seq(diagnostics)? {
        match item.int_in(diagnostics, 100, 599) {
            Some(status) => statuses.push(status as u16),
            None => ok = false,
        }
    }
    ok.then_some(statuses)
}

fn read_after(
    node: &Node,
    index: usize,
    names: &[Option<String>],
    diagnostics: &mut Diagnostics,
) -> Option<usize> {
    let target = node.str(diagnostics)?;
    match names[..index]
        .iter()
        .position(|n| n.as_deref() == Some(target))
    {
        Some(position) => Some(position),
        None => {
            let message = if names.iter().any(|n| n.as_deref() == Some(target)) {
                format!("`after: {target}` must name a client listed earlier")
            } else {
                format!("`after: {target}` names no client")
            };
            diagnostics.error(node, message);
            None
        }
    }
}

fn read_request(
    fields: &yaml::Fields<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<RequestTemplate> {
    let method = match fields.get("method") {
        Some(n) => {
            let method = n.string(diagnostics)?;
            if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
                diagnostics.error(n, format!("method `{method}` is not an HTTP method"));
                return None;
            }
            method.to_ascii_uppercase()
        }
        None => "GET".to_string(),
    };
    let path = match fields.get("path") {
        Some(n) => {
            let path = n.string(diagnostics)?;
            if !path.starts_with('/') {
                diagnostics.error(n, format!("path `{path}` must start with `/`"));
                return None;
            }
            path
        }
        None => "/".to_string(),
    };
    let host = match fields.get("host") {
        Some(n) => n.string(diagnostics)?.to_ascii_lowercase(),
        None => "www.example.com".to_string(),
    };
    let mut headers = Vec::new();
    if let Some(n) = fields.get("headers") {
        for (key, value) in n.entries(diagnostics)? {
            if key.is_empty() || key.contains(char::is_whitespace) {
                diagnostics.error(value, format!("header name `{key}` is not valid"));
                continue;
            }
            let text = match &value.value {
                yaml::Value::Scalar { text, .. } => text.clone(),
                _ => {
                    diagnostics.error(value, "expected a header value (a string)");
                    continue;
                }
            };
            headers.push((key.to_ascii_lowercase(), text));
        }
    }
    let delay = match fields.get("delay") {
        Some(n) => Some(n.duration(diagnostics)?),
        None => None,
    };
    let source_ip = match fields.get("source_ip") {
        Some(n) => n.string(diagnostics)?,
        None => "10.0.{index_hi}.{index_lo}".to_string(),
    };
    let (mut input_tokens, mut output_tokens) = (None, None);
    if let Some(n) = fields.get("tokens") {
        let tokens = n.fields(diagnostics, &super::schema::TOKENS.names())?;
        if let Some(i) = tokens.get("input") {
            input_tokens = Some(dist::read(i, Quantity::Count, diagnostics)?);
        }
        if let Some(o) = tokens.get("output") {
            output_tokens = Some(dist::read(o, Quantity::Count, diagnostics)?);
        }
    }
    Some(RequestTemplate {
        method,
        path,
        host,
        headers,
        delay,
        source_ip,
        input_tokens,
        output_tokens,
    })
}

fn read_kind(
    kind: &str,
    fields: &yaml::Fields<'_>,
    scenario_path: &Path,
    diagnostics: &mut Diagnostics,
) -> Option<ClientKind> {
    let think_time = |diagnostics: &mut Diagnostics, key: &str| match fields.get(key) {
        Some(n) => dist::read(n, Quantity::Seconds, diagnostics),
        None => Some(Dist::Constant(0.0)),
    };
    let requests = |diagnostics: &mut Diagnostics| -> Option<Option<u64>> {
        match fields.get("requests") {
            Some(n) => {
                let value = n.u64(diagnostics)?;
                if value == 0 {
                    diagnostics.error(n, "requests must be at least 1");
                    return None;
                }
                Some(Some(value))
            }
            None => Some(None),
        }
    };
    match kind {
        "sequential" => {
            let count = requests(diagnostics);
            if fields.get("requests").is_none() {
                diagnostics.error(fields.node, "a sequential client needs `requests`");
            }
            let think = think_time(diagnostics, "think_time");
            Some(ClientKind::Sequential {
                requests: count??,
                think_time: think?,
            })
        }
        "closed" => {
            if fields.get("requests").is_none() {
                diagnostics.error(fields.node, "a closed client needs `requests`");
            }
            let count = requests(diagnostics);
            let concurrency = match fields.require("concurrency", diagnostics) {
                Some(n) => positive_count(n, "concurrency", 1_000_000, diagnostics),
                None => None,
            };
            let think = think_time(diagnostics, "think_time");
            Some(ClientKind::Closed {
                requests: count??,
                concurrency: concurrency?,
                think_time: think?,
            })
        }
        "open" => {
            let rate = fields
                .require("rate", diagnostics)
                .and_then(|n| read_rate(n, diagnostics));
            let arrival = match fields.get("arrival") {
                Some(n) => match n.one_of(diagnostics, &["poisson", "constant"]) {
                    Some("constant") => Some(OpenArrival::Constant),
                    Some(_) => Some(OpenArrival::Poisson),
                    None => None,
                },
                None => Some(OpenArrival::Poisson),
            };
            let users = match fields.get("users") {
                Some(n) => positive_count(n, "users", 100_000_000, diagnostics).map(Some),
                None => Some(None),
            };
            let count = requests(diagnostics);
            let rate = rate?;
            Some(ClientKind::Open {
                rate_per_s: rate,
                mean_gap_s: 1.0 / rate,
                arrival: arrival?,
                requests: count?,
                users: users?,
            })
        }
        "agent" => {
            let think = think_time(diagnostics, "think_time");
            let retry = think_time(diagnostics, "retry_delay");
            let count = requests(diagnostics);
            Some(ClientKind::Agent {
                think_time: think?,
                retry_delay: retry?,
                requests: count?,
            })
        }
        "trace" => read_trace_kind(fields, scenario_path, diagnostics),
        _ => None,
    }
}

/// A rate: a number of requests per second, or `N/s`, `N/m` (also
/// `N/min`), `N/h`.
pub(super) fn read_rate(node: &Node, diagnostics: &mut Diagnostics) -> Option<f64> {
    let text = node.str(diagnostics)?;
    let (number, per) = match text.split_once('/') {
        Some((number, unit)) => {
            let per = match unit.trim() {
                "s" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                other => {
                    diagnostics.error(
                        node,
                        format!("unknown rate unit `{other}`; use /s, /m or /h"),
                    );
                    return None;
                }
            };
            (number.trim(), per)
        }
        None => (text.trim(), 1.0),
    };
    let value: f64 = match number.parse() {
        Ok(value) => value,
        Err(_) => {
            diagnostics.error(
                node,
                format!("expected a rate such as `100` (per second) or `1000/m`, found `{text}`"),
            );
            return None;
        }
    };
    let rate = value / per;
    if !rate.is_finite() || rate <= 0.0 || rate > 1e9 {
        diagnostics.error(
            node,
            format!("rate `{text}` must be more than zero and at most 1e9 requests per second"),
        );
        return None;
    }
    Some(rate)
}

fn read_trace_kind(
    fields: &yaml::Fields<'_>,
    scenario_path: &Path,
    diagnostics: &mut Diagnostics,
) -> Option<ClientKind> {
    let file_node = fields.require("file", diagnostics)?;
    let file = file_node.string(diagnostics)?;
    let column = |key: &str,
                  default: Option<&str>,
                  diagnostics: &mut Diagnostics|
     -> Option<Option<String>> {
        match fields.get(key) {
            Some(n) => n.string(diagnostics).map(Some),
            None => Some(default.map(str::to_string)),
        }
    };
    let time = column("time_column", Some("TIMESTAMP"), diagnostics)?;
    let input = column("input_tokens_column", None, diagnostics)?;
    let output = column("output_tokens_column", None, diagnostics)?;
    let speedup = match fields.get("speedup") {
        Some(n) => {
            let value = n.f64(diagnostics)?;
            if value <= 0.0 {
                diagnostics.error(n, "speedup must be more than zero");
                return None;
            }
            value
        }
        None => 1.0,
    };
    let columns = TraceColumns {
        time: time.unwrap_or_else(|| "TIMESTAMP".to_string()),
        input_tokens: input,
        output_tokens: output,
    };
    let path = yaml::resolve_relative(scenario_path, &file);
    match read_trace(&path, &columns) {
        Ok(rows) => Some(ClientKind::Trace {
            file,
            rows: Arc::new(rows),
            speedup,
        }),
        Err(errors) => {
            for error in errors {
                diagnostics.error(file_node, error);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(text: &str) -> Vec<ClientSpec> {
        let documents = yaml::parse_str(text, Path::new("s.yaml")).unwrap();
        let mut diagnostics = Diagnostics::for_file(Path::new("s.yaml"));
        let clients = read_clients(&documents[0].root, Path::new("s.yaml"), &mut diagnostics);
        clients.unwrap_or_else(|| panic!("{diagnostics}"))
    }

    #[test]
    fn closed_estimate_is_capped_by_think_time() {
        // 250 workers thinking 1 s each send at most about 250/s, far
        // fewer than the request cap in 4 minutes.
        let client = &clients(
            "- {name: users, kind: closed, concurrency: 250, requests: 100000000, \
             think_time: {exponential: {mean: 1s}}}",
        )[0];
        let four_minutes = Some(SimDuration::from_secs(240));
        assert_eq!(client.estimated_requests(four_minutes), Some(60_000));
        assert_eq!(client.estimated_requests(None), Some(100_000_000));
    }

    #[test]
    fn sequential_estimate_counts_every_instance() {
        let client =
            &clients("- {name: loop, kind: sequential, count: 3, requests: 1000, think_time: 2s}")
                [0];
        let minute = Some(SimDuration::from_secs(60));
        assert_eq!(client.estimated_requests(minute), Some(90));
    }

    #[test]
    fn estimate_without_think_time_is_the_request_cap() {
        let client = &clients("- {name: hey, kind: closed, concurrency: 10, requests: 500}")[0];
        let minute = Some(SimDuration::from_secs(60));
        assert_eq!(client.estimated_requests(minute), Some(500));
    }
}
