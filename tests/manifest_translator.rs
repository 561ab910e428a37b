//! Envoy Gateway's own translator test vectors, replayed through the
//! manifest reader and translator.
//!
//! Each `tests/data/envoy-gateway/translator/*.in.yaml` has a `*.out.yaml`
//! with what Envoy Gateway v1.9 produced: policy status conditions and the
//! intermediate representation of every route. For every pair this test
//! checks that each BackendTrafficPolicy ancestor gets the same `Accepted`
//! status, reason and message, and that every route gets the same direct
//! 500 response, rate-limit rules and buckets, circuit breaker, retry,
//! timeouts, load balancer, passive health check and fault injection.
//!
//! Fields the simulator deliberately leaves out of the comparison:
//!
//! | field (out.yaml)                          | why |
//! |-------------------------------------------|-----|
//! | `traffic.admissionControl`, `bandwidthLimit`, `backendConnection`, `compression`, `dns`, `http2`, `httpUpgrade`, `proxyProtocol`, `requestBuffer`, `responseOverride`, `tcpKeepalive`, `telemetry` | no effect on request outcomes the simulator models; `validate` lists them as not simulated |
//! | `traffic.healthCheck.active`              | active health checking is not simulated; passive (outlier detection) is |
//! | `traffic.loadBalancer.*.slowStart`, `zoneAware`, `endpointOverride`, `backendUtilization` | endpoints all share one zone and start warm |
//! | `traffic.timeout.http` other than `requestTimeout`, `timeout.tcp` | connection-level timeouts are not simulated (`connectTimeout` is, on the cluster) |
//! | rate-limit `xRateLimitOption`, listener `headers` | response headers only |
//! | status conditions other than `Accepted` (`Overridden`, `Merged`, `Warning`) | compared in unit tests where the simulator builds them; their exact wording lists scopes the simulator does not model (ListenerSets) |
//! | routes of TCP, UDP and TLS listeners | only HTTP traffic is simulated |
//!
//! Some inputs are not valid Kubernetes objects: Envoy Gateway's tests
//! feed them to the translator directly, bypassing the API server, while
//! the simulator checks them as the API server would. Those vectors are
//! listed in `REJECTED_BY_API_SERVER` with the reason, and the test checks
//! that they are rejected with a diagnostic naming the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trafficsim::gateway::{
    GatewayModel, LoadBalancer, RateLimitAction, Route, RouteAction, StringMatch,
};
use trafficsim::manifest::{self, TranslateOptions};
use trafficsim::yaml::{self, Node, Value};

const DATA: &str = "tests/data/envoy-gateway";

/// Vectors whose input the Kubernetes API server would reject: the vector
/// name, the text the simulator's diagnostic must contain, and why.
const REJECTED_BY_API_SERVER: &[(&str, &str, &str)] = &[
    (
        "backendtrafficpolicy-status-fault-injection",
        "abort.httpStatus: expected an integer from 200 to 600, found `14`",
        "the CRD bounds httpStatus to 200..600 and fixedDelay to whole units such as 5s",
    ),
    (
        "backendtrafficpolicy-with-circuitbreakers-error",
        "circuitBreaker.maxConnections: expected an integer from 0 to 4294967295, found `-1`",
        "the CRD's minimum for every threshold is 0",
    ),
    (
        "backendtrafficpolicy-with-loadbalancer-invalid-consistent-hash-table-size",
        "consistentHash: missing required field `type`",
        "the CRD requires consistentHash.type (the table size check is a unit test)",
    ),
    (
        "backendtrafficpolicy-with-timeout-error",
        "invalid duration `22mib`",
        "the CRD's duration pattern allows only h, m, s and ms",
    ),
];

/// Vectors that depend on objects the simulator does not read, with why.
const OUT_OF_SCOPE: &[(&str, &str)] = &[
    (
        "backendtrafficpolicy-listenerset",
        "ListenerSets are not read",
    ),
    (
        "backendtrafficpolicy-listenerset-merge",
        "ListenerSets are not read",
    ),
    (
        "backendtrafficpolicy-with-response-override-invalid-valueref",
        "ConfigMaps are not read, so a missing one cannot be detected",
    ),
    (
        "backendtrafficpolicy-with-tcp-udp-listeners-apply-on-route",
        "TCPRoutes and UDPRoutes are not read; only HTTP traffic is simulated",
    ),
];

/// Single checks where the simulator deliberately differs from the
/// vector: the vector, a text of the check, and why.
const EXPECTED_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "backendtrafficpolicy-status-conditions",
    "target-httproute-in-gateway-1 on envoy-gateway/gateway-1 Accepted",
    "Envoy Gateway's translator tests keep the file order, while the running controller \
         sorts policies by creation time, then namespace and name, before attaching them; the \
         simulator sorts as the controller does, so of two policies on one route the other wins",
)];

fn vectors() -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join("translator"))
        .expect("the translator vectors are checked in")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    inputs.sort();
    inputs
}

fn vector_name(input: &Path) -> String {
    input
        .file_name()
        .map(|name| {
            name.to_string_lossy()
                .trim_end_matches(".in.yaml")
                .to_string()
        })
        .unwrap_or_default()
}

fn parse(path: &Path) -> Node {
    let text = std::fs::read_to_string(path).expect("vector is readable");
    let mut documents = yaml::parse_str(&text, path).expect("vector is valid YAML");
    documents.remove(0).root
}

fn items(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    }
}

fn entries(node: Option<&Node>) -> &[(String, Node)] {
    match node.map(|n| &n.value) {
        Some(Value::Mapping(entries)) => entries,
        _ => &[],
    }
}

fn text<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Node::scalar)
}

/// Envoy Gateway's `Accepted` conditions per policy and ancestor:
/// `(policy, ancestor) -> (status, reason, message)`.
fn expected_statuses(out: &Node) -> BTreeMap<(String, String), (bool, String, String)> {
    let mut statuses = BTreeMap::new();
    for policy in items(out.get("backendTrafficPolicies")) {
        let Some(meta) = policy.get("metadata") else {
            continue;
        };
        let name = format!(
            "{}/{}",
            text(meta, "namespace").unwrap_or("default"),
            text(meta, "name").unwrap_or("")
        );
        let ancestors = items(policy.get("status").and_then(|s| s.get("ancestors")));
        for ancestor in ancestors {
            let Some(reference) = ancestor.get("ancestorRef") else {
                continue;
            };
            if text(reference, "kind").is_some_and(|k| k != "Gateway") {
                continue;
            }
            let mut key = format!(
                "{}/{}",
                text(reference, "namespace").unwrap_or("default"),
                text(reference, "name").unwrap_or("")
            );
            if let Some(section) = text(reference, "sectionName") {
                key = format!("{key}/{section}");
            }
            for condition in items(ancestor.get("conditions")) {
                if text(condition, "type") == Some("Accepted") {
                    statuses.insert(
                        (name.clone(), key.clone()),
                        (
                            text(condition, "status") == Some("True"),
                            text(condition, "reason").unwrap_or("").to_string(),
                            text(condition, "message").unwrap_or("").to_string(),
                        ),
                    );
                }
            }
        }
    }
    statuses
}

/// Messages that quote a Go regexp error are compared up to the point
/// where Go's and Rust's parsers word the reason differently.
fn comparable_message(message: &str) -> String {
    let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find("error parsing regexp:") {
        Some(position) => flat[..position].to_string(),
        None => flat,
    }
}

fn duration_text(node: Option<&Node>) -> Option<String> {
    node.and_then(Node::scalar).map(|text| {
        let millis = go_duration_millis(text);
        format!("{millis}ms")
    })
}

/// Parses a Go duration string such as `1m0s`, `5.4s` or `250ms` into
/// milliseconds.
fn go_duration_millis(text: &str) -> u64 {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let value: f64 = number.parse().unwrap_or(0.0);
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3_600_000.0,
                "m" => 60_000.0,
                "s" => 1_000.0,
                "ms" => 1.0,
                _ => 0.0,
            };
    }
    total.round() as u64
}

/// Describes one rate-limit rule in a form both sides can produce.
fn ir_rule(rule: &Node) -> Vec<String> {
    let mut conditions = Vec::new();
    for header in items(rule.get("headerMatches")) {
        conditions.push(ir_match("header", header));
    }
    if let Some(path) = rule.get("pathMatch") {
        conditions.push(ir_match("path", path));
    }
    if let Some(cidr) = rule.get("cidrMatch") {
        conditions.push(format!(
            "cidr {} distinct={} invert={}",
            text(cidr, "cidr").unwrap_or(""),
            text(cidr, "distinct") == Some("true"),
            text(cidr, "invert") == Some("true"),
        ));
    }
    for param in items(rule.get("queryParamMatches")) {
        conditions.push(ir_match("query", param));
    }
    let limit = rule.get("limit");
    let requests = limit.and_then(|l| text(l, "requests")).unwrap_or("");
    let unit = limit.and_then(|l| text(l, "unit")).unwrap_or("");
    let shadow = text(rule, "shadowMode") == Some("true");
    let methods: Vec<String> = items(rule.get("methodMatches"))
        .iter()
        .map(|m| ir_match("method", m))
        .collect();
    let variants = if methods.is_empty() {
        vec![None]
    } else {
        methods.into_iter().map(Some).collect()
    };
    variants
        .into_iter()
        .map(|method| {
            let mut all = conditions.clone();
            if let Some(method) = method {
                all.push(method);
            }
            all.sort();
            format!("{requests}/{unit} shadow={shadow} [{}]", all.join("; "))
        })
        .collect()
}

fn ir_match(what: &str, node: &Node) -> String {
    let name = text(node, "name").unwrap_or("").to_ascii_lowercase();
    let invert = text(node, "invert") == Some("true");
    let test = if text(node, "distinct") == Some("true") {
        "distinct".to_string()
    } else if let Some(value) = text(node, "exact") {
        format!("exact {value}")
    } else if let Some(value) = text(node, "prefix") {
        format!("prefix {value}")
    } else if let Some(value) = text(node, "safeRegex") {
        format!("regex {value}")
    } else {
        "?".to_string()
    };
    match what {
        "method" | "path" => format!("{what} {test} invert={invert}"),
        _ => format!("{what} {name} {test} invert={invert}"),
    }
}

fn model_match(action: &RateLimitAction) -> Option<String> {
    let describe = |matcher: &StringMatch| match matcher {
        StringMatch::Exact(value) => format!("exact {value}"),
        StringMatch::Prefix(value) => format!("prefix {value}"),
        StringMatch::Regex(regex) => format!("regex {}", regex.source),
    };
    match action {
        RateLimitAction::RequestHeaders { header_name, .. } => {
            Some(format!("header {header_name} distinct invert=false"))
        }
        RateLimitAction::QueryParameters {
            query_parameter_name,
            ..
        } => Some(format!(
            "query {} distinct invert=false",
            query_parameter_name.to_ascii_lowercase()
        )),
        RateLimitAction::HeaderValueMatch {
            descriptor_key,
            expect_match,
            headers,
            ..
        } => {
            let header = headers.first()?;
            let test = describe(&header.matcher);
            let invert = !expect_match;
            if descriptor_key.ends_with("-method") {
                Some(format!("method {test} invert={invert}"))
            } else if descriptor_key.ends_with("-path") {
                Some(format!("path {test} invert={invert}"))
            } else {
                Some(format!("header {} {test} invert={invert}", header.name))
            }
        }
        RateLimitAction::QueryParameterValueMatch {
            expect_match,
            params,
            ..
        } => {
            let param = params.first()?;
            Some(format!(
                "query {} {} invert={}",
                param.name.to_ascii_lowercase(),
                describe(&param.matcher),
                !expect_match
            ))
        }
        RateLimitAction::RemoteAddressMatch {
            descriptor_value,
            invert,
            ..
        } => Some(format!(
            "cidr {} distinct=false invert={invert}",
            descriptor_value.trim_start_matches("invert:")
        )),
        RateLimitAction::RemoteAddress { .. } | RateLimitAction::GenericKey { .. } => None,
    }
}

/// Folds the "distinct" source-address action into the CIDR condition.
fn model_conditions(actions: &[RateLimitAction]) -> Vec<String> {
    let distinct_address = actions
        .iter()
        .any(|a| matches!(a, RateLimitAction::RemoteAddress { .. }));
    let mut conditions: Vec<String> = actions
        .iter()
        .filter_map(model_match)
        .map(|c| {
            if distinct_address && c.starts_with("cidr ") {
                c.replace("distinct=false", "distinct=true")
            } else {
                c
            }
        })
        .collect();
    conditions.sort();
    conditions
}

fn unit_name(seconds: u64) -> &'static str {
    match seconds {
        1 => "Second",
        60 => "Minute",
        3_600 => "Hour",
        86_400 => "Day",
        604_800 => "Week",
        2_592_000 => "Month",
        31_536_000 => "Year",
        _ => "?",
    }
}

fn model_local(route: &Route) -> Option<(String, Vec<String>)> {
    let local = route.local_rate_limit.as_ref()?;
    let default = format!(
        "{}/{}",
        local.default_bucket.max_tokens,
        unit_name(local.default_bucket.fill_interval.as_nanos() / 1_000_000_000)
    );
    let rules = local
        .descriptors
        .iter()
        .zip(&local.rate_limits)
        .map(|(descriptor, rate_limit)| {
            format!(
                "{}/{} shadow={} [{}]",
                descriptor.bucket.max_tokens,
                unit_name(descriptor.bucket.fill_interval.as_nanos() / 1_000_000_000),
                descriptor.shadow_mode,
                model_conditions(&rate_limit.actions).join("; ")
            )
        })
        .collect();
    Some((default, rules))
}

fn model_global(route: &Route) -> Vec<String> {
    let mut rules = Vec::new();
    for global in route
        .global_rate_limit
        .iter()
        .chain(&route.shared_global_rate_limits)
    {
        let shared = global.domain != route.listener;
        let mut request_entries = global
            .rate_limits
            .iter()
            .filter(|r| !r.apply_on_stream_done);
        for limit in &global.limits {
            // Each limit's rule produced one request-time entry per method.
            let methods = limit
                .chain
                .iter()
                .filter(|e| e.key.ends_with("-method"))
                .count()
                .max(1);
            for _ in 0..methods {
                let Some(entry) = request_entries.next() else {
                    break;
                };
                rules.push(format!(
                    "{}/{} shadow={} shared={shared} [{}]",
                    limit.requests_per_unit,
                    limit.unit.name(),
                    limit.shadow_mode,
                    model_conditions(&entry.actions).join("; ")
                ));
            }
        }
    }
    rules.sort();
    rules
}

struct Mismatches(Vec<String>);

impl Mismatches {
    fn check(&mut self, vector: &str, what: &str, expected: String, found: String) {
        if expected != found {
            self.0.push(format!(
                "{vector}: {what}:\n    expected {expected}\n    found    {found}"
            ));
        }
    }
}

fn compare_route(
    vector: &str,
    expected: &Node,
    route: &Route,
    model: &GatewayModel,
    out: &mut Mismatches,
) {
    let name = format!("{} {}", route.listener, route.name);
    let direct = expected
        .get("directResponse")
        .and_then(|d| text(d, "statusCode"))
        .map(str::to_string);
    let found_direct = match &route.action {
        RouteAction::DirectResponse { status, .. } => Some(status.to_string()),
        RouteAction::Forward { .. } => None,
    };
    out.check(
        vector,
        &format!("{name} direct response"),
        format!("{direct:?}"),
        format!("{found_direct:?}"),
    );
    if direct.is_some() {
        return;
    }
    let traffic = expected.get("traffic");
    let rate_limit = traffic.and_then(|t| t.get("rateLimit"));
    let local = rate_limit.and_then(|r| r.get("local")).map(|local| {
        let default = local.get("default");
        let default = format!(
            "{}/{}",
            default.and_then(|d| text(d, "requests")).unwrap_or(""),
            default.and_then(|d| text(d, "unit")).unwrap_or("")
        );
        let rules: Vec<String> = items(local.get("rules")).iter().flat_map(ir_rule).collect();
        (default, rules)
    });
    out.check(
        vector,
        &format!("{name} local rate limit"),
        format!("{local:?}"),
        format!("{:?}", model_local(route)),
    );
    let mut global: Vec<String> = items(
        rate_limit
            .and_then(|r| r.get("global"))
            .and_then(|g| g.get("rules")),
    )
    .iter()
    .flat_map(|rule| {
        let shared = text(rule, "shared") == Some("true");
        ir_rule(rule).into_iter().map(move |r| {
            let (limit, rest) = r.split_once(" shadow=").unwrap_or((&r, ""));
            let (shadow, conditions) = rest.split_once(' ').unwrap_or((rest, ""));
            format!("{limit} shadow={shadow} shared={shared} {conditions}")
        })
    })
    .collect();
    global.sort();
    out.check(
        vector,
        &format!("{name} global rate limit"),
        format!("{global:?}"),
        format!("{:?}", model_global(route)),
    );

    let cluster = match route.action {
        RouteAction::Forward { cluster } => model.clusters.get(cluster),
        RouteAction::DirectResponse { .. } => None,
    };
    if let Some(cluster) = cluster {
        let breaker = traffic.and_then(|t| t.get("circuitBreaker"));
        let field = |key: &str, default: &str| {
            breaker
                .and_then(|b| text(b, key))
                .unwrap_or(default)
                .to_string()
        };
        let expected_breaker = format!(
            "{} {} {} {} {}",
            field("maxConnections", "1024"),
            field("maxPendingRequests", "1024"),
            field("maxParallelRequests", "1024"),
            field("maxParallelRetries", "1024"),
            field("maxRequestsPerConnection", "none"),
        );
        let found = &cluster.circuit_breaker;
        let found_breaker = format!(
            "{} {} {} {} {}",
            found.max_connections,
            found.max_pending_requests,
            found.max_requests,
            found.max_retries,
            found
                .max_requests_per_connection
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none".to_string())
        );
        out.check(
            vector,
            &format!("{name} circuit breaker"),
            expected_breaker,
            found_breaker,
        );

        let lb = traffic.and_then(|t| t.get("loadBalancer"));
        let expected_lb = match lb {
            Some(lb) if lb.get("roundRobin").is_some() => "RoundRobin",
            Some(lb) if lb.get("random").is_some() => "Random",
            Some(lb) if lb.get("consistentHash").is_some() => "ConsistentHash",
            _ => "LeastRequest",
        };
        let found_lb = match &cluster.load_balancer {
            LoadBalancer::RoundRobin => "RoundRobin",
            LoadBalancer::Random => "Random",
            LoadBalancer::ConsistentHash { .. } => "ConsistentHash",
            LoadBalancer::LeastRequest { .. } => "LeastRequest",
        };
        out.check(
            vector,
            &format!("{name} load balancer"),
            expected_lb.to_string(),
            found_lb.to_string(),
        );

        let passive = traffic
            .and_then(|t| t.get("healthCheck"))
            .and_then(|h| h.get("passive"));
        let expected_outlier = passive.map(|p| {
            format!(
                "{:?} {:?} {:?}",
                duration_text(p.get("interval")),
                duration_text(p.get("baseEjectionTime")),
                text(p, "consecutive5XxErrors")
            )
        });
        let found_outlier = cluster.outlier_detection.as_ref().map(|o| {
            format!(
                "{:?} {:?} {:?}",
                Some(format!("{}ms", o.interval.as_nanos() / 1_000_000)),
                Some(format!("{}ms", o.base_ejection_time.as_nanos() / 1_000_000)),
                o.consecutive_5xx.map(|v| v.to_string()).as_deref()
            )
        });
        out.check(
            vector,
            &format!("{name} outlier detection"),
            format!("{expected_outlier:?}"),
            format!("{found_outlier:?}"),
        );
    }

    let retry = expected
        .get("retry")
        .or_else(|| traffic.and_then(|t| t.get("retry")));
    let expected_retry = retry.map(|r| text(r, "numRetries").unwrap_or("2").to_string());
    let found_retry = route.retry.as_ref().map(|r| r.num_retries.to_string());
    out.check(
        vector,
        &format!("{name} retries"),
        format!("{expected_retry:?}"),
        format!("{found_retry:?}"),
    );

    let expected_timeout = duration_text(expected.get("timeout")).or_else(|| {
        duration_text(
            traffic
                .and_then(|t| t.get("timeout"))
                .and_then(|t| t.get("http"))
                .and_then(|h| h.get("requestTimeout")),
        )
    });
    let found_timeout = match route.timeouts.request {
        Some(timeout) if timeout.as_nanos() == 15_000_000_000 && expected_timeout.is_none() => None,
        Some(timeout) => Some(format!("{}ms", timeout.as_nanos() / 1_000_000)),
        None => Some("0ms".to_string()),
    };
    out.check(
        vector,
        &format!("{name} request timeout"),
        format!("{expected_timeout:?}"),
        format!("{found_timeout:?}"),
    );

    let fault = traffic.and_then(|t| t.get("faultInjection"));
    out.check(
        vector,
        &format!("{name} fault injection"),
        format!("{}", fault.is_some()),
        format!("{}", route.fault.is_some()),
    );
}

#[test]
fn translator_vectors_match_envoy_gateway() {
    let mut mismatches = Mismatches(Vec::new());
    let mut compared = 0;
    for input in vectors() {
        let vector = vector_name(&input);
        if OUT_OF_SCOPE.iter().any(|(name, _)| *name == vector) {
            continue;
        }
        let output = input.with_file_name(format!("{vector}.out.yaml"));
        let loaded = manifest::load_paths(std::slice::from_ref(&input));
        let rejection = REJECTED_BY_API_SERVER
            .iter()
            .find(|(name, _, _)| *name == vector);
        let set = match (loaded, rejection) {
            (Err(errors), Some((_, expected, _))) => {
                let text = errors.to_string();
                if !text.contains(expected) {
                    mismatches.0.push(format!(
                        "{vector}: expected a diagnostic containing {expected:?}, found:\n{text}"
                    ));
                }
                continue;
            }
            (Err(errors), None) => {
                mismatches
                    .0
                    .push(format!("{vector}: failed to load:\n{errors}"));
                continue;
            }
            (Ok(_), Some(_)) => {
                mismatches.0.push(format!(
                    "{vector}: loaded, but the API server would reject it"
                ));
                continue;
            }
            (Ok(set), None) => set,
        };
        compared += 1;
        let model = manifest::translate(&set, &TranslateOptions::default());
        let out = parse(&output);
        for ((policy, ancestor), (accepted, reason, message)) in expected_statuses(&out) {
            let found = model
                .policies
                .iter()
                .find(|p| p.name == policy)
                .and_then(|p| p.ancestors.iter().find(|a| a.ancestor == ancestor))
                .and_then(|a| a.conditions.iter().find(|c| c.kind == "Accepted"))
                .map(|c| (c.status, c.reason.clone(), comparable_message(&c.message)));
            mismatches.check(
                &vector,
                &format!("{policy} on {ancestor} Accepted condition"),
                format!(
                    "{:?}",
                    Some((accepted, reason, comparable_message(&message)))
                ),
                format!("{found:?}"),
            );
        }
        for (_, ir) in entries(out.get("xdsIR")) {
            for listener in items(ir.get("http")) {
                let listener_name = text(listener, "name").unwrap_or("");
                for expected in items(listener.get("routes")) {
                    let route_name = text(expected, "name").unwrap_or("");
                    if route_name.ends_with("/cors-preflight") {
                        continue;
                    }
                    let found = model
                        .routes
                        .iter()
                        .find(|r| r.listener == listener_name && r.name == route_name);
                    match found {
                        Some(route) => {
                            compare_route(&vector, expected, route, &model, &mut mismatches)
                        }
                        None => mismatches.0.push(format!(
                            "{vector}: route {listener_name} {route_name} is missing"
                        )),
                    }
                }
            }
        }
    }
    mismatches.0.retain(|mismatch| {
        !EXPECTED_DIFFERENCES
            .iter()
            .any(|(vector, check, _)| mismatch.starts_with(vector) && mismatch.contains(check))
    });
    assert!(compared > 0, "no vectors were compared");
    assert!(
        mismatches.0.is_empty(),
        "{} mismatch(es) over {compared} vectors:\n{}",
        mismatches.0.len(),
        mismatches.0.join("\n")
    );
}

/// Envoy Gateway's end-to-end tests apply each file on its own, so each
/// is validated on its own: every one loads, and every policy is accepted
/// except the one made invalid on purpose.
#[test]
fn e2e_manifests_load_and_validate() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join("e2e"))
        .expect("the e2e manifests are checked in")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "found {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let report =
            trafficsim::validate::validate(std::slice::from_ref(file), &Default::default());
        if let Some(errors) = &report.errors {
            problems.push(format!("{} failed to load:\n{errors}", file.display()));
            continue;
        }
        for policy in &report.policies {
            // Its regex does not compile, so Envoy Gateway rejects it and
            // responds to its route with 500.
            let expected_invalid =
                policy.status.name == "gateway-conformance-infra/policy-httproute";
            let rejected = trafficsim::validate::is_rejected(&policy.status);
            if rejected != expected_invalid {
                problems.push(format!(
                    "{}: {} is {}: {}",
                    file.display(),
                    policy.status.name,
                    policy.status.reason,
                    policy.status.message
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
