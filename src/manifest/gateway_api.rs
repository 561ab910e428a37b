//! Gateway API objects as written: `Gateway`, `HTTPRoute` and `GRPCRoute`
//! (`gateway.networking.k8s.io/v1`), with the defaults the CRDs apply.
//!
//! These raw types mirror the YAML; turning them into Envoy routes is the
//! job of `routes.rs`. Fields that do not change how traffic is routed or
//! limited (TLS, filters, session persistence) are accepted and kept only
//! as a note.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::schema::{bounded_string, gateway_duration, is_dns_subdomain, list};
use crate::time::SimDuration;
use crate::yaml::{Diagnostics, Location, Node};

/// `metadata` of any object, and where the object was read.
#[derive(Clone, Debug)]
pub struct ObjectMeta {
    pub name: String,
    /// `default` when absent, as `kubectl apply` fills it in.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 text; Envoy Gateway orders objects by it, then by
    /// namespace and name.
    pub creation_timestamp: Option<String>,
    pub file: Arc<Path>,
    pub location: Location,
}

impl ObjectMeta {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Returns the key by which Envoy Gateway orders objects of one kind.
    pub fn sort_key(&self) -> (String, String, String) {
        (
            self.creation_timestamp.clone().unwrap_or_default(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }

    /// `file:line:column`, for messages about the object as a whole.
    pub fn origin(&self) -> String {
        format!(
            "{}:{}:{}",
            self.file.display(),
            self.location.line,
            self.location.column
        )
    }
}

const METADATA_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "creationTimestamp",
    "generation",
    "uid",
    "resourceVersion",
    "generateName",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Reads `metadata`; `object` is the whole object, for the "missing" report.
pub fn read_metadata(
    object: &Node,
    file: &Arc<Path>,
    diagnostics: &mut Diagnostics,
) -> Option<ObjectMeta> {
    let Some(node) = object.get("metadata").filter(|n| !n.is_null()) else {
        diagnostics.error(object, "missing required field `metadata`");
        return None;
    };
    let fields = node.fields(diagnostics, METADATA_FIELDS)?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 253));
    let namespace = match fields.get("namespace") {
        Some(n) => bounded_string(n, diagnostics, 1, 63),
        None => Some("default".to_string()),
    };
    let mut labels = BTreeMap::new();
    if let Some(entries) = fields.get("labels").and_then(|n| n.entries(diagnostics)) {
        for (key, value) in entries {
            if let Some(text) = value.str(diagnostics) {
                labels.insert(key.clone(), text.to_string());
            }
        }
    }
    let creation_timestamp = fields
        .get("creationTimestamp")
        .and_then(|n| n.string(diagnostics));
    Some(ObjectMeta {
        name: name?,
        namespace: namespace?,
        labels,
        creation_timestamp,
        file: file.clone(),
        location: object.location,
    })
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub meta: ObjectMeta,
    pub listeners: Vec<Listener>,
}

#[derive(Clone, Debug)]
pub struct Listener {
    pub name: String,
    pub hostname: Option<String>,
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP` or `UDP`; only the first two carry
    /// HTTPRoutes and GRPCRoutes.
    pub protocol: String,
    pub allowed_namespaces: AllowedNamespaces,
}

impl Listener {
    pub fn carries_http(&self) -> bool {
        matches!(self.protocol.as_str(), "HTTP" | "HTTPS")
    }
}

/// `allowedRoutes.namespaces.from`; the CRD default is `Same`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedNamespaces {
    Same,
    All,
    /// Namespaces chosen by labels. Namespace objects are not read, so the
    /// simulation treats this as `All`.
    Selector,
}

pub fn read_gateway(
    object: &Node,
    meta: ObjectMeta,
    diagnostics: &mut Diagnostics,
) -> Option<Gateway> {
    let spec = require_spec(object, diagnostics)?;
    let fields = spec.fields(
        diagnostics,
        &[
            "gatewayClassName",
            "listeners",
            "addresses",
            "infrastructure",
            "backendTLS",
            "allowedListeners",
            "tls",
            "defaultScope",
        ],
    )?;
    fields.require("gatewayClassName", diagnostics);
    let listeners_node = fields.require("listeners", diagnostics)?;
    let listeners = list(&fields, "listeners", 64, diagnostics, read_listener);
    let mut seen = Vec::new();
    for (listener, node) in listeners
        .iter()
        .zip(listeners_node.seq(diagnostics).unwrap_or(&[]))
    {
        if seen.contains(&listener.name) {
            diagnostics.error(node, format!("duplicate listener name `{}`", listener.name));
        }
        seen.push(listener.name.clone());
    }
    Some(Gateway { meta, listeners })
}

fn read_listener(node: &Node, diagnostics: &mut Diagnostics) -> Option<Listener> {
    let fields = node.fields(
        diagnostics,
        &[
            "name",
            "hostname",
            "port",
            "protocol",
            "tls",
            "allowedRoutes",
        ],
    )?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| section_name(n, diagnostics));
    let hostname = fields
        .get("hostname")
        .and_then(|n| hostname(n, diagnostics));
    let port = fields
        .require("port", diagnostics)
        .and_then(|n| n.int_in(diagnostics, 1, 65535))
        .map(|p| p as u16);
    let protocol = fields
        .require("protocol", diagnostics)
        .and_then(|n| n.string(diagnostics));
    let from = fields
        .get("allowedRoutes")
        .and_then(|n| n.fields(diagnostics, &["namespaces", "kinds"]))
        .and_then(|allowed| allowed.get("namespaces"))
        .and_then(|n| n.fields(diagnostics, &["from", "selector"]))
        .and_then(|namespaces| namespaces.get("from"))
        .and_then(|n| n.one_of(diagnostics, &["Same", "All", "Selector"]));
    let allowed_namespaces = match from {
        Some("All") => AllowedNamespaces::All,
        Some("Selector") => AllowedNamespaces::Selector,
        _ => AllowedNamespaces::Same,
    };
    Some(Listener {
        name: name?,
        hostname,
        port: port?,
        protocol: protocol?,
        allowed_namespaces,
    })
}

/// Reads a host name: a DNS subdomain, optionally starting with `*.`.
fn hostname(node: &Node, diagnostics: &mut Diagnostics) -> Option<String> {
    let text = node.str(diagnostics)?;
    let bare = text.strip_prefix("*.").unwrap_or(text);
    if !is_dns_subdomain(bare) {
        diagnostics.error(
            node,
            format!(
                "invalid hostname `{text}`: expected lower-case DNS labels, \
                 optionally starting with `*.`"
            ),
        );
        return None;
    }
    Some(text.to_string())
}

pub fn section_name(node: &Node, diagnostics: &mut Diagnostics) -> Option<String> {
    let text = node.str(diagnostics)?;
    if !is_dns_subdomain(text) {
        diagnostics.error(
            node,
            format!(
                "invalid name `{text}`: expected lower-case letters, digits, `-` and `.` \
                 (a DNS subdomain)"
            ),
        );
        return None;
    }
    Some(text.to_string())
}

fn require_spec<'a>(object: &'a Node, diagnostics: &mut Diagnostics) -> Option<&'a Node> {
    match object.get("spec").filter(|n| !n.is_null()) {
        Some(spec) => Some(spec),
        None => {
            diagnostics.error(object, "missing required field `spec`");
            None
        }
    }
}

/// An HTTPRoute or a GRPCRoute; a gRPC method match is already turned into
/// the path or header match Envoy Gateway derives from it.
#[derive(Clone, Debug)]
pub struct Route {
    pub kind: RouteKind,
    pub meta: ObjectMeta,
    pub parent_refs: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<RouteRule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl RouteKind {
    pub fn kind_name(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }

    /// Returns the lower-case prefix of Envoy Gateway's route and cluster names.
    pub fn name_prefix(self) -> &'static str {
        match self {
            RouteKind::Http => "httproute",
            RouteKind::Grpc => "grpcroute",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ParentRef {
    /// `Gateway` unless written otherwise.
    pub kind: String,
    /// The route's namespace when absent.
    pub namespace: Option<String>,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct RouteRule {
    pub name: Option<String>,
    pub matches: Vec<RouteMatch>,
    pub backend_refs: Vec<BackendRef>,
    /// `timeouts.request`; zero disables the timeout.
    pub request_timeout: Option<SimDuration>,
    /// `timeouts.backendRequest`.
    pub backend_request_timeout: Option<SimDuration>,
    /// The rule's own `retry` (Gateway API), which replaces a policy's.
    pub retry: Option<RuleRetry>,
    /// Names of fields read but not simulated, such as `filters`.
    pub ignored: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RuleRetry {
    pub attempts: Option<u32>,
    pub backoff: Option<SimDuration>,
    pub codes: Vec<u16>,
}

/// One entry of `matches`, with CRD defaults applied.
#[derive(Clone, Debug, Default)]
pub struct RouteMatch {
    pub path: Option<PathSpec>,
    pub headers: Vec<NamedMatch>,
    pub query_params: Vec<NamedMatch>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSpec {
    Exact(String),
    Prefix(String),
    Regex(String),
}

#[derive(Clone, Debug)]
pub struct NamedMatch {
    pub name: String,
    pub kind: MatchKind,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Regex,
    /// Only from gRPC method matches (`:path` ends with `/method`).
    Suffix,
}

#[derive(Clone, Debug)]
pub struct BackendRef {
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<u16>,
    pub weight: u32,
}

pub fn read_route(
    object: &Node,
    kind: RouteKind,
    meta: ObjectMeta,
    diagnostics: &mut Diagnostics,
) -> Option<Route> {
    let spec = require_spec(object, diagnostics)?;
    let fields = spec.fields(
        diagnostics,
        &["parentRefs", "hostnames", "rules", "useDefaultGateways"],
    )?;
    let parent_refs = list(&fields, "parentRefs", 32, diagnostics, read_parent_ref);
    let hostnames = list(&fields, "hostnames", 16, diagnostics, hostname);
    let rules = list(&fields, "rules", 16, diagnostics, |node, diagnostics| {
        read_rule(node, kind, diagnostics)
    });
    let rules = if fields.has("rules") {
        rules
    } else {
        // The CRD defaults `rules` to one rule matching every request with
        // no backend; Envoy Gateway responds to it with a 500.
        vec![RouteRule {
            name: None,
            matches: Vec::new(),
            backend_refs: Vec::new(),
            request_timeout: None,
            backend_request_timeout: None,
            retry: None,
            ignored: Vec::new(),
        }]
    };
    Some(Route {
        kind,
        meta,
        parent_refs,
        hostnames,
        rules,
    })
}

fn read_parent_ref(node: &Node, diagnostics: &mut Diagnostics) -> Option<ParentRef> {
    let fields = node.fields(
        diagnostics,
        &["group", "kind", "namespace", "name", "sectionName", "port"],
    )?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| n.string(diagnostics));
    let kind = fields
        .get("kind")
        .and_then(|n| n.string(diagnostics))
        .unwrap_or_else(|| "Gateway".to_string());
    let namespace = fields.get("namespace").and_then(|n| n.string(diagnostics));
    let section_name = fields
        .get("sectionName")
        .and_then(|n| section_name(n, diagnostics));
    let port = fields
        .get("port")
        .and_then(|n| n.int_in(diagnostics, 1, 65535))
        .map(|p| p as u16);
    Some(ParentRef {
        kind,
        namespace,
        name: name?,
        section_name,
        port,
    })
}

fn read_rule(node: &Node, kind: RouteKind, diagnostics: &mut Diagnostics) -> Option<RouteRule> {
    let known: &[&str] = match kind {
        RouteKind::Http => &[
            "name",
            "matches",
            "filters",
            "backendRefs",
            "timeouts",
            "retry",
            "sessionPersistence",
        ],
        RouteKind::Grpc => &[
            "name",
            "matches",
            "filters",
            "backendRefs",
            "sessionPersistence",
        ],
    };
    let fields = node.fields(diagnostics, known)?;
    let name = fields
        .get("name")
        .and_then(|n| section_name(n, diagnostics));
    let matches = match kind {
        RouteKind::Http => list(&fields, "matches", 64, diagnostics, read_http_match),
        RouteKind::Grpc => list(&fields, "matches", 64, diagnostics, read_grpc_match),
    };
    let backend_refs = list(&fields, "backendRefs", 16, diagnostics, read_backend_ref);
    let timeouts = fields
        .get("timeouts")
        .and_then(|n| n.fields(diagnostics, &["request", "backendRequest"]));
    let (request_timeout, backend_request_timeout) = match timeouts {
        Some(timeouts) => (
            timeouts
                .get("request")
                .and_then(|n| gateway_duration(n, diagnostics)),
            timeouts
                .get("backendRequest")
                .and_then(|n| gateway_duration(n, diagnostics)),
        ),
        None => (None, None),
    };
    let retry = fields
        .get("retry")
        .and_then(|n| read_rule_retry(n, diagnostics));
    let ignored = ["filters", "sessionPersistence"]
        .iter()
        .filter(|key| fields.has(key))
        .map(|key| key.to_string())
        .collect();
    Some(RouteRule {
        name,
        matches,
        backend_refs,
        request_timeout,
        backend_request_timeout,
        retry,
        ignored,
    })
}

fn read_rule_retry(node: &Node, diagnostics: &mut Diagnostics) -> Option<RuleRetry> {
    let fields = node.fields(diagnostics, &["codes", "attempts", "backoff"])?;
    let attempts = fields
        .get("attempts")
        .and_then(|n| n.int_in(diagnostics, 0, i32::MAX as i64))
        .map(|v| v as u32);
    let backoff = fields
        .get("backoff")
        .and_then(|n| gateway_duration(n, diagnostics));
    let codes = list(&fields, "codes", 64, diagnostics, |n, d| {
        n.int_in(d, 400, 599).map(|v| v as u16)
    });
    Some(RuleRetry {
        attempts,
        backoff,
        codes,
    })
}

fn read_http_match(node: &Node, diagnostics: &mut Diagnostics) -> Option<RouteMatch> {
    let fields = node.fields(diagnostics, &["path", "headers", "queryParams", "method"])?;
    let path = match fields.get("path") {
        Some(path) => read_path(path, diagnostics),
        // The CRD default for a match is `path: {type: PathPrefix, value: /}`.
        None => Some(PathSpec::Prefix("/".to_string())),
    };
    let headers = list(&fields, "headers", 16, diagnostics, read_named_match);
    let query_params = list(&fields, "queryParams", 16, diagnostics, read_named_match);
    let method = fields.get("method").and_then(|n| {
        n.one_of(
            diagnostics,
            &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
            ],
        )
        .map(str::to_string)
    });
    Some(RouteMatch {
        path,
        headers,
        query_params,
        method,
    })
}

fn read_path(node: &Node, diagnostics: &mut Diagnostics) -> Option<PathSpec> {
    let fields = node.fields(diagnostics, &["type", "value"])?;
    let kind = match fields.get("type") {
        Some(n) => n.one_of(diagnostics, &["Exact", "PathPrefix", "RegularExpression"])?,
        None => "PathPrefix",
    };
    let value = match fields.get("value") {
        Some(n) => bounded_string(n, diagnostics, 0, 1024)?,
        None => "/".to_string(),
    };
    if kind != "RegularExpression" && !value.starts_with('/') {
        diagnostics.error(node, format!("path value `{value}` must start with `/`"));
        return None;
    }
    Some(match kind {
        "Exact" => PathSpec::Exact(value),
        "RegularExpression" => PathSpec::Regex(value),
        _ => PathSpec::Prefix(value),
    })
}

fn read_named_match(node: &Node, diagnostics: &mut Diagnostics) -> Option<NamedMatch> {
    let fields = node.fields(diagnostics, &["type", "name", "value"])?;
    let kind = match fields.get("type") {
        Some(n) => match n.one_of(diagnostics, &["Exact", "RegularExpression"])? {
            "RegularExpression" => MatchKind::Regex,
            _ => MatchKind::Exact,
        },
        None => MatchKind::Exact,
    };
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 256));
    let value = fields
        .require("value", diagnostics)
        .and_then(|n| bounded_string(n, diagnostics, 1, 4096));
    Some(NamedMatch {
        name: name?,
        kind,
        value: value?,
    })
}

/// The service and method names Envoy Gateway v1.9 substitutes when a
/// regular-expression gRPC match leaves one of them out.
const GRPC_SERVICE_PATTERN: &str = r"(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*";
const GRPC_METHOD_PATTERN: &str = "[A-Za-z_][A-Za-z_0-9]*";

fn read_grpc_match(node: &Node, diagnostics: &mut Diagnostics) -> Option<RouteMatch> {
    let fields = node.fields(diagnostics, &["method", "headers"])?;
    let headers = list(&fields, "headers", 16, diagnostics, read_named_match);
    let mut route_match = RouteMatch {
        headers,
        ..RouteMatch::default()
    };
    let Some(method) = fields.get("method") else {
        return Some(route_match);
    };
    let method_fields = method.fields(diagnostics, &["type", "service", "method"])?;
    let regex = match method_fields.get("type") {
        Some(n) => n.one_of(diagnostics, &["Exact", "RegularExpression"])? == "RegularExpression",
        None => false,
    };
    let service = method_fields
        .get("service")
        .and_then(|n| n.string(diagnostics));
    let name = method_fields
        .get("method")
        .and_then(|n| n.string(diagnostics));
    if service.is_none() && name.is_none() {
        diagnostics.error(
            method,
            "one or both of `service` or `method` must be specified",
        );
        return None;
    }
    // A gRPC request's path is `/<service>/<method>`.
    match (regex, service, name) {
        (false, Some(service), Some(name)) => {
            route_match.path = Some(PathSpec::Exact(format!("/{service}/{name}")));
        }
        (false, None, Some(name)) => route_match.headers.push(NamedMatch {
            name: ":path".to_string(),
            kind: MatchKind::Suffix,
            value: format!("/{name}"),
        }),
        (false, Some(service), None) => {
            route_match.path = Some(PathSpec::Prefix(format!("/{service}")));
        }
        (true, service, name) => {
            let service = service.unwrap_or_else(|| GRPC_SERVICE_PATTERN.to_string());
            let name = name.unwrap_or_else(|| GRPC_METHOD_PATTERN.to_string());
            route_match.path = Some(PathSpec::Regex(format!("/{service}/{name}")));
        }
        (false, None, None) => {}
    }
    Some(route_match)
}

fn read_backend_ref(node: &Node, diagnostics: &mut Diagnostics) -> Option<BackendRef> {
    let fields = node.fields(
        diagnostics,
        &[
            "group",
            "kind",
            "name",
            "namespace",
            "port",
            "weight",
            "filters",
        ],
    )?;
    let name = fields
        .require("name", diagnostics)
        .and_then(|n| n.string(diagnostics));
    let namespace = fields.get("namespace").and_then(|n| n.string(diagnostics));
    let port = fields
        .get("port")
        .and_then(|n| n.int_in(diagnostics, 1, 65535))
        .map(|p| p as u16);
    let weight = match fields.get("weight") {
        Some(n) => n.int_in(diagnostics, 0, 1_000_000).map(|w| w as u32)?,
        None => 1,
    };
    Some(BackendRef {
        name: name?,
        namespace,
        port,
        weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_str;

    fn object(text: &str) -> Node {
        parse_str(text, Path::new("t.yaml")).unwrap().remove(0).root
    }

    fn file() -> Arc<Path> {
        Arc::from(Path::new("t.yaml"))
    }

    #[test]
    fn http_match_defaults_to_prefix_slash() {
        let node = object(
            "metadata: {name: r}\nspec:\n  rules:\n  - matches:\n    - headers: [{name: a, value: b}]\n",
        );
        let mut diagnostics = Diagnostics::default();
        let meta = read_metadata(&node, &file(), &mut diagnostics).unwrap();
        let route = read_route(&node, RouteKind::Http, meta, &mut diagnostics).unwrap();
        assert!(diagnostics.is_empty(), "{diagnostics}");
        assert_eq!(route.meta.namespace, "default");
        let first = &route.rules[0].matches[0];
        assert_eq!(first.path, Some(PathSpec::Prefix("/".to_string())));
        assert_eq!(first.headers[0].kind, MatchKind::Exact);
    }

    #[test]
    fn grpc_method_becomes_path() {
        let node = object(
            "metadata: {name: g}\nspec:\n  rules:\n  - matches:\n    - method: {service: a.B, method: Get}\n    - method: {method: Get}\n",
        );
        let mut diagnostics = Diagnostics::default();
        let meta = read_metadata(&node, &file(), &mut diagnostics).unwrap();
        let route = read_route(&node, RouteKind::Grpc, meta, &mut diagnostics).unwrap();
        let matches = &route.rules[0].matches;
        assert_eq!(
            matches[0].path,
            Some(PathSpec::Exact("/a.B/Get".to_string()))
        );
        assert_eq!(matches[1].headers[0].kind, MatchKind::Suffix);
    }

    #[test]
    fn listener_problems_are_all_reported() {
        let node = object(
            "metadata: {name: gw}\nspec:\n  gatewayClassName: eg\n  listeners:\n  - {name: http, port: 0, protocol: HTTP}\n  - {name: Bad, port: 80, protocl: HTTP}\n",
        );
        let mut diagnostics = Diagnostics::default();
        let meta = read_metadata(&node, &file(), &mut diagnostics).unwrap();
        read_gateway(&node, meta, &mut diagnostics);
        let text = diagnostics.to_string();
        assert!(
            text.contains("spec.listeners[0].port: expected an integer from 1 to 65535"),
            "{text}"
        );
        assert!(text.contains("did you mean `protocol`?"), "{text}");
        assert!(
            text.contains("spec.listeners[1].name: invalid name `Bad`"),
            "{text}"
        );
    }
}
