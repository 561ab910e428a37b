//! A run's numbers in the formats dashboards read: Envoy's final counters
//! and gauges in Prometheus text format, named as Envoy's
//! `/stats/prometheus` endpoint names them, and the run's time series in
//! OpenMetrics text format with timestamps.
//!
//! Envoy (1.40) turns a stat name into a Prometheus metric in three steps.
//! Tag extraction removes variable parts of the name and makes them labels:
//! `cluster.<name>.upstream_rq_503` becomes `cluster.upstream_rq` with
//! `envoy_response_code="503"` and `envoy_cluster_name="<name>"`. The rest
//! gets the `envoy_` prefix, and every character other than a letter, digit
//! or `_` becomes `_`. This module applies the default extraction rules of
//! Envoy's `source/common/config/well_known_names.cc` that can match the
//! stats the simulator keeps, in the same order, so the labels also come
//! out in Envoy's order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::metrics::STATUS_COLUMNS;
use crate::scenario::Scenario;
use crate::sim::RunOutput;

/// The local rate limit filter's `stat_prefix` as Envoy Gateway v1.9
/// configures it on every listener with a local limit.
const LOCAL_RATE_LIMIT_STAT_PREFIX: &str = "http_local_rate_limiter";

/// One metric after tag extraction: its Prometheus name and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusName {
    pub name: String,
    /// Label names and values, in the order Envoy extracts them.
    pub labels: Vec<(String, String)>,
}

/// Turns a full Envoy stat name (with its stat prefixes, as real Envoy
/// keeps it) into its Prometheus name and labels.
pub fn prometheus_name(stat: &str) -> PrometheusName {
    let mut name = stat.to_string();
    let mut labels = Vec::new();
    if let Some(code) = strip_response_code(&mut name) {
        labels.push(("envoy_response_code".to_string(), code));
    }
    if let Some(class) = strip_response_code_class(&mut name) {
        labels.push(("envoy_response_code_class".to_string(), class));
    }
    let tokenized: [(&str, &str); 3] = [
        ("envoy_cluster_name", "cluster"),
        ("envoy_http_conn_manager_prefix", "http"),
        ("envoy_local_http_ratelimit_prefix", ""),
    ];
    for (label, first) in tokenized {
        let value = if first.is_empty() {
            strip_token_before(&mut name, "http_local_rate_limit")
        } else {
            strip_token_after(&mut name, first)
        };
        if let Some(value) = value {
            labels.push((label.to_string(), value));
        }
    }
    PrometheusName {
        name: sanitize(&format!("envoy_{name}")),
        labels,
    }
}

/// `*_rq_<3 digits>` at the end: removes `_<code>`, as Envoy's
/// `envoy.response_code` rule does.
fn strip_response_code(name: &mut String) -> Option<String> {
    let (head, code) = name.rsplit_once('_')?;
    let is_code = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
    if !is_code || !head.ends_with("_rq") {
        return None;
    }
    let code = code.to_string();
    name.truncate(head.len());
    Some(code)
}

/// `*_rq_<digit>xx` at the end: removes the digit, leaving `*_rq_xx`, as
/// Envoy's `envoy.response_code_class` rule does.
fn strip_response_code_class(name: &mut String) -> Option<String> {
    let head = name.strip_suffix("xx")?;
    let (head, digit) = head.split_at(head.len().checked_sub(1)?);
    if !head.ends_with("_rq_") || !digit.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digit = digit.to_string();
    *name = format!("{head}xx");
    Some(digit)
}

/// `<first>.<value>.<rest>`: removes `<value>.`, as Envoy's tokenized rules
/// `cluster.$.**` and `http.$.**` do. The value is one dot-free token.
fn strip_token_after(name: &mut String, first: &str) -> Option<String> {
    let rest = name.strip_prefix(first)?.strip_prefix('.')?;
    let (value, tail) = rest.split_once('.')?;
    if value.is_empty() || tail.is_empty() {
        return None;
    }
    let value = value.to_string();
    *name = format!("{first}.{tail}");
    Some(value)
}

/// `<value>.<marker>.<rest>`: removes `<value>.`, as Envoy's tokenized rule
/// `$.http_local_rate_limit.**` does.
fn strip_token_before(name: &mut String, marker: &str) -> Option<String> {
    let (value, tail) = name.split_once('.')?;
    let tail_ok = tail
        .strip_prefix(marker)
        .is_some_and(|rest| rest.starts_with('.'));
    if value.is_empty() || !tail_ok {
        return None;
    }
    let value = value.to_string();
    *name = tail.to_string();
    Some(value)
}

/// Replaces every character other than an ASCII letter, digit or `_`
/// with `_`, as Envoy does for metric names.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Escapes a label value for the Prometheus and OpenMetrics text formats.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn label_text(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_label(value)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// Returns the `stat_prefix` of the HTTP connection manager on a Gateway
/// port, as Envoy Gateway v1.9 names it: `http-<Envoy port>`, where a
/// Gateway port below 1024 listens on 10000 more inside the Envoy pod.
fn http_stat_prefix(gateway_port: u16) -> String {
    // NOTE: an HTTPS listener's prefix is `https-<port>`; the gateway model
    // does not record TLS, so every listener is named as plain HTTP.
    let envoy_port = if gateway_port < 1024 {
        u32::from(gateway_port) + 10_000
    } else {
        u32::from(gateway_port)
    };
    format!("http-{envoy_port}")
}

/// Adds to a stat name, as the simulator keeps it, the stat prefixes that
/// real Envoy puts in it.
fn full_stat_name(stat: &str, http_prefix: &str) -> String {
    if let Some(rest) = stat.strip_prefix("http.") {
        return format!("http.{http_prefix}.{rest}");
    }
    if stat.starts_with("http_local_rate_limit.") {
        return format!("{LOCAL_RATE_LIMIT_STAT_PREFIX}.{stat}");
    }
    stat.to_string()
}

/// Samples of one metric family, keyed by their label text.
type Family = BTreeMap<String, u64>;

fn families<'a>(
    stats: impl Iterator<Item = (&'a String, &'a u64)>,
    http_prefix: &str,
) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (stat, value) in stats {
        let metric = prometheus_name(&full_stat_name(stat, http_prefix));
        let samples = families.entry(metric.name).or_default();
        *samples.entry(label_text(&metric.labels)).or_insert(0) += value;
    }
    families
}

fn write_families(text: &mut String, families: &BTreeMap<String, Family>, kind: &str) {
    for (name, samples) in families {
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    }
}

/// Writes Envoy's counters and gauges at the end of the run in Prometheus
/// text format (version 0.0.4), summed over replicas, as one scrape of a
/// Gateway whose replicas are added up (`sum without (pod)`).
pub fn prometheus_text(scenario: &Scenario, output: &RunOutput) -> String {
    let mut ports: Vec<u16> = scenario.gateway.routes.iter().map(|r| r.port).collect();
    ports.sort_unstable();
    ports.dedup();
    let http_prefix = http_stat_prefix(ports.first().copied().unwrap_or(80));

    let mut text = format!(
        "# trafficsim scenario {} seed {}: Envoy stats at the end of the run\n",
        scenario.name, output.seed
    );
    if ports.len() > 1 {
        // NOTE: the simulator counts HTTP connection manager stats once for
        // all listeners, so they carry the first listener's prefix.
        let _ = writeln!(
            text,
            "# NOTE: http stats are summed over the listeners on ports {:?} and labelled {http_prefix}",
            ports
        );
    }
    let counters = families(output.envoy_stats.0.iter(), &http_prefix);
    let gauges = families(output.envoy_gauges.0.iter(), &http_prefix);
    write_families(&mut text, &counters, "counter");
    write_families(&mut text, &gauges, "gauge");
    text
}

/// Writes the run's time series in OpenMetrics text format: per client, the
/// responses by status, backend requests and spend as counters, and the
/// latency percentiles of each bucket as gauges. There is one sample per
/// bucket and client, stamped with the end of the bucket in Unix seconds
/// (the scenario's `start_time` plus simulated time).
pub fn openmetrics_text(scenario: &Scenario, output: &RunOutput) -> String {
    let metrics = &output.metrics;
    let bucket_ns = metrics.bucket.as_nanos().max(1);
    let buckets = (output.end.as_nanos() / bucket_ns + 1) as usize;
    let clients = metrics.groups.len();

    // Dense per-bucket sums, so every counter has a sample in every bucket.
    let mut statuses = vec![[0u64; STATUS_COLUMNS.len()]; buckets * clients];
    let mut backend = vec![0u64; buckets * clients];
    let mut spend = vec![0f64; buckets * clients];
    let mut latency = vec![None; buckets * clients];
    for row in &metrics.rows {
        let index = (row.bucket as usize).min(buckets - 1) * clients + row.group;
        for (total, count) in statuses[index].iter_mut().zip(row.statuses) {
            *total += count;
        }
        backend[index] += row.backend_requests;
        spend[index] += row.spend_usd;
        latency[index] = row.latency;
    }
    let timestamp = |bucket: usize| {
        let end_ns = (bucket as u128 + 1) * u128::from(bucket_ns);
        let seconds = scenario.start_unix_s as f64 + end_ns as f64 / 1e9;
        format!("{seconds:.3}")
    };
    let client_label = |group: usize| escape_label(&metrics.groups[group].name);

    let mut text = String::new();
    text.push_str("# TYPE trafficsim_client_responses counter\n");
    text.push_str("# HELP trafficsim_client_responses Responses received by clients, by status.\n");
    for group in 0..clients {
        // The label is the status column of `timeseries.csv` without its
        // `count_` prefix: `2xx`, `429`, ..., `client_timeout`.
        for (column, name) in STATUS_COLUMNS.iter().enumerate() {
            let status = name.trim_start_matches("count_");
            let mut total = 0u64;
            for bucket in 0..buckets {
                total += statuses[bucket * clients + group][column];
                let _ = writeln!(
                    text,
                    "trafficsim_client_responses_total{{client=\"{}\",status=\"{status}\"}} {total} {}",
                    client_label(group),
                    timestamp(bucket)
                );
            }
        }
    }
    text.push_str("# TYPE trafficsim_client_backend_requests counter\n");
    text.push_str(
        "# HELP trafficsim_client_backend_requests Requests that reached a backend, retries included.\n",
    );
    for group in 0..clients {
        let mut total = 0u64;
        for bucket in 0..buckets {
            total += backend[bucket * clients + group];
            let _ = writeln!(
                text,
                "trafficsim_client_backend_requests_total{{client=\"{}\"}} {total} {}",
                client_label(group),
                timestamp(bucket)
            );
        }
    }
    text.push_str("# TYPE trafficsim_client_spend_usd counter\n");
    text.push_str("# UNIT trafficsim_client_spend_usd usd\n");
    text.push_str("# HELP trafficsim_client_spend_usd Cumulative spend on backend requests.\n");
    for group in 0..clients {
        let mut total = 0f64;
        for bucket in 0..buckets {
            total += spend[bucket * clients + group];
            let _ = writeln!(
                text,
                "trafficsim_client_spend_usd_total{{client=\"{}\"}} {total:.9} {}",
                client_label(group),
                timestamp(bucket)
            );
        }
    }
    text.push_str("# TYPE trafficsim_client_latency_milliseconds gauge\n");
    text.push_str("# UNIT trafficsim_client_latency_milliseconds milliseconds\n");
    text.push_str(
        "# HELP trafficsim_client_latency_milliseconds Latency percentiles of the requests completed in a bucket.\n",
    );
    for group in 0..clients {
        for (percentile, pick) in [("50", 0usize), ("90", 1), ("99", 2)] {
            for bucket in 0..buckets {
                let Some(summary) = &latency[bucket * clients + group] else {
                    continue;
                };
                let value = [summary.p50, summary.p90, summary.p99][pick];
                let _ = writeln!(
                    text,
                    "trafficsim_client_latency_milliseconds{{client=\"{}\",percentile=\"{percentile}\"}} {value:.3} {}",
                    client_label(group),
                    timestamp(bucket)
                );
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stat: &str, name: &str, labels: &[(&str, &str)]) {
        let metric = prometheus_name(stat);
        assert_eq!(metric.name, name, "name of {stat}");
        let expected: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(metric.labels, expected, "labels of {stat}");
    }

    #[test]
    fn cluster_stats_take_the_cluster_label() {
        check(
            "cluster.httproute/default/backend/rule/0.upstream_rq_total",
            "envoy_cluster_upstream_rq_total",
            &[("envoy_cluster_name", "httproute/default/backend/rule/0")],
        );
        check(
            "cluster.c.upstream_rq_pending_overflow",
            "envoy_cluster_upstream_rq_pending_overflow",
            &[("envoy_cluster_name", "c")],
        );
        check(
            "cluster.c.circuit_breakers.default.rq_open",
            "envoy_cluster_circuit_breakers_default_rq_open",
            &[("envoy_cluster_name", "c")],
        );
    }

    #[test]
    fn response_codes_become_labels() {
        check(
            "cluster.c.upstream_rq_503",
            "envoy_cluster_upstream_rq",
            &[("envoy_response_code", "503"), ("envoy_cluster_name", "c")],
        );
        check(
            "cluster.c.upstream_rq_5xx",
            "envoy_cluster_upstream_rq_xx",
            &[
                ("envoy_response_code_class", "5"),
                ("envoy_cluster_name", "c"),
            ],
        );
        check(
            "http.http-10080.downstream_rq_2xx",
            "envoy_http_downstream_rq_xx",
            &[
                ("envoy_response_code_class", "2"),
                ("envoy_http_conn_manager_prefix", "http-10080"),
            ],
        );
    }

    #[test]
    fn local_rate_limit_prefix_becomes_label() {
        check(
            "http_local_rate_limiter.http_local_rate_limit.rate_limited",
            "envoy_http_local_rate_limit_rate_limited",
            &[(
                "envoy_local_http_ratelimit_prefix",
                "http_local_rate_limiter",
            )],
        );
    }

    #[test]
    fn stats_without_tags_keep_their_name() {
        check(
            "cluster.c.upstream_rq_timeout",
            "envoy_cluster_upstream_rq_timeout",
            &[("envoy_cluster_name", "c")],
        );
        check("server.uptime", "envoy_server_uptime", &[]);
    }

    #[test]
    fn simulator_names_get_envoy_gateway_prefixes() {
        assert_eq!(
            full_stat_name("http.downstream_rq_total", "http-10080"),
            "http.http-10080.downstream_rq_total"
        );
        assert_eq!(
            full_stat_name("http_local_rate_limit.ok", "http-10080"),
            "http_local_rate_limiter.http_local_rate_limit.ok"
        );
        assert_eq!(http_stat_prefix(80), "http-10080");
        assert_eq!(http_stat_prefix(8080), "http-8080");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
