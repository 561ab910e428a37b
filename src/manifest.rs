//! Kubernetes manifests in, the resolved gateway out: reads Gateway,
//! HTTPRoute, GRPCRoute and BackendTrafficPolicy objects and translates
//! them into [`GatewayModel`] exactly as Envoy Gateway v1.9 would program
//! Envoy.
//!
//! Reading applies the CRDs' defaults and rejects what the Kubernetes API
//! server would reject, reporting every problem of a file at once. What
//! the API server accepts but Envoy Gateway's translator rejects becomes a
//! policy status with `accepted: false`, and the routes the policy would
//! have changed answer 500, as in the real gateway. Nothing outside this
//! module knows the shape of Kubernetes objects.

mod advice;
mod attach;
mod features;
mod gateway_api;
mod merge;
mod policy;
mod rate_limit;
mod read;
mod routes;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::gateway::{
    CircuitBreaker, Cluster, GatewayModel, HeaderMatcher, LoadBalancer, PathMatch,
    QueryParamMatcher, Regex, Route, RouteAction, RouteTimeouts, StringMatch, WeightedBackend,
};
use crate::time::SimDuration;
use crate::yaml::{self, Diagnostics, Node};

pub use attach::NOT_ATTACHED;
use attach::{AppliedTraffic, attach_policies};
use features::build_retry;
use gateway_api::{Gateway, MatchKind, NamedMatch, PathSpec, Route as RouteObject};
use policy::{BackendTrafficPolicy, PerRetrySpec, RetryOnSpec, RetrySpec};
use routes::BuiltRoute;

/// The objects read from manifests, with where each came from.
#[derive(Clone, Debug, Default)]
pub struct ManifestSet {
    gateways: Vec<Gateway>,
    /// HTTPRoutes and GRPCRoutes.
    routes: Vec<RouteObject>,
    policies: Vec<BackendTrafficPolicy>,
    /// Objects skipped because their kind does not affect traffic.
    notes: Vec<String>,
}

impl ManifestSet {
    pub fn merge(&mut self, other: ManifestSet) {
        self.gateways.extend(other.gateways);
        self.routes.extend(other.routes);
        self.policies.extend(other.policies);
        self.notes.extend(other.notes);
    }

    /// Puts `other`'s objects in place of this set's policies: every
    /// BackendTrafficPolicy here is dropped, and each Gateway or route in
    /// `other` drops the object here of the same kind, namespace and name.
    /// Then `other` is merged in. Used to run one scenario with another
    /// set of policies.
    pub fn replace_with(&mut self, other: ManifestSet) {
        self.policies.clear();
        self.gateways
            .retain(|g| !other.gateways.iter().any(|o| o.meta.key() == g.meta.key()));
        self.routes.retain(|r| {
            !other
                .routes
                .iter()
                .any(|o| o.kind == r.kind && o.meta.key() == r.meta.key())
        });
        self.merge(other);
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty() && self.routes.is_empty() && self.policies.is_empty()
    }

    /// `namespace/name` of every BackendTrafficPolicy read, in file order.
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.meta.key()).collect()
    }

    /// Spec fields of policy `name` that were read but are not simulated.
    pub fn ignored_policy_fields(&self, name: &str) -> Vec<String> {
        self.policies
            .iter()
            .find(|p| p.meta.key() == name)
            .map(|p| p.spec.ignored.clone())
            .unwrap_or_default()
    }

    /// Whether policy `name` sets `rateLimit`.
    pub fn policy_has_rate_limit(&self, name: &str) -> bool {
        self.policies
            .iter()
            .any(|p| p.meta.key() == name && p.spec.rate_limit.is_some())
    }

    /// `file:line:column` where policy `name` starts.
    pub fn policy_origin(&self, name: &str) -> Option<String> {
        // The last definition is the one in effect, as with `kubectl apply`.
        self.policies
            .iter()
            .rev()
            .find(|p| p.meta.key() == name)
            .map(|p| p.meta.origin())
    }
}

/// Options of Envoy Gateway itself (its `EnvoyGateway` configuration).
#[derive(Clone, Debug)]
pub struct TranslateOptions {
    /// Whether Envoy Gateway's rate limit service is enabled; without it a
    /// policy with global rules is invalid.
    pub global_rate_limit_enabled: bool,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            global_rate_limit_enabled: true,
        }
    }
}

/// Reads files and folders (recursively, `*.yaml` and `*.yml` in sorted
/// order) of manifests. Returns every problem of every file.
pub fn load_paths(paths: &[PathBuf]) -> Result<ManifestSet, Diagnostics> {
    load_paths_edited(paths, &mut |_| Ok(()))
}

/// Like [`load_paths`], but lets `edit` change each document's tree
/// before it is read (parameter overrides); an error it returns is
/// reported at the document's first line.
pub fn load_paths_edited(
    paths: &[PathBuf],
    edit: &mut dyn FnMut(&mut Node) -> Result<(), String>,
) -> Result<ManifestSet, Diagnostics> {
    let mut set = ManifestSet::default();
    let mut all = Diagnostics::default();
    for path in paths {
        let files = match read::manifest_files(path) {
            Ok(files) => files,
            Err(message) => {
                let mut diagnostics = Diagnostics::for_file(path);
                diagnostics.error_at(yaml::Location { line: 1, column: 1 }, "", message);
                all.extend(diagnostics);
                continue;
            }
        };
        for file in files {
            match load_file(&file, edit) {
                Ok(read) => set.merge(read),
                Err(diagnostics) => all.extend(diagnostics),
            }
        }
    }
    if all.is_empty() { Ok(set) } else { Err(all) }
}

fn load_file(
    file: &Path,
    edit: &mut dyn FnMut(&mut Node) -> Result<(), String>,
) -> Result<ManifestSet, Diagnostics> {
    let documents = yaml::load_file(file)?;
    let mut roots: Vec<Node> = documents.into_iter().map(|d| d.root).collect();
    let mut diagnostics = Diagnostics::for_file(file);
    for root in &mut roots {
        if let Err(message) = edit(root) {
            diagnostics.error(root, message);
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    load_nodes(&roots, file)
}

/// Reads manifests embedded in another YAML file (a scenario's inline
/// `manifests:` items or documents); `file` is used in diagnostics.
pub fn load_nodes(nodes: &[Node], file: &Path) -> Result<ManifestSet, Diagnostics> {
    let mut set = ManifestSet::default();
    let mut diagnostics = Diagnostics::for_file(file);
    let file: Arc<Path> = Arc::from(file);
    for node in nodes {
        read::read_document(node, &file, &mut set, &mut diagnostics);
    }
    if diagnostics.is_empty() {
        Ok(set)
    } else {
        Err(diagnostics)
    }
}

/// Translates the manifests into the Envoy routes, clusters and policy
/// statuses Envoy Gateway v1.9 would produce.
pub fn translate(set: &ManifestSet, options: &TranslateOptions) -> GatewayModel {
    let mut notes = set.notes.clone();
    let set = &latest_definitions(set, &mut notes);
    let mut gateways = set.gateways.clone();
    gateways.sort_by_key(|g| g.meta.sort_key());
    // Envoy Gateway processes HTTPRoutes before GRPCRoutes, each sorted.
    let mut route_objects = set.routes.clone();
    route_objects.sort_by_key(|r| (r.kind, r.meta.sort_key()));
    let mut policies = set.policies.clone();
    policies.sort_by_key(|p| p.meta.sort_key());

    for route in &route_objects {
        for (index, rule) in route.rules.iter().enumerate() {
            for field in &rule.ignored {
                notes.push(format!(
                    "{}: {} {} rule {index}: `{field}` is not simulated",
                    route.meta.origin(),
                    route.kind.kind_name(),
                    route.meta.key()
                ));
            }
        }
    }
    for policy in &policies {
        for selector in &policy.spec.target_selectors {
            if let Some(from) = &selector.other_namespaces {
                notes.push(format!(
                    "{}: BackendTrafficPolicy {}: `targetSelectors` with `namespaces.from: \
                     {from}` selects only objects in namespace `{}` here; those of other \
                     namespaces, which Envoy Gateway attaches where a ReferenceGrant allows, \
                     are not simulated",
                    policy.meta.origin(),
                    policy.meta.key(),
                    policy.meta.namespace
                ));
            }
        }
    }
    let built = routes::build_routes(&gateways, &route_objects, &mut notes);
    let attachment = attach_policies(
        &gateways,
        &route_objects,
        &policies,
        &built,
        options.global_rate_limit_enabled,
    );

    let mut model = GatewayModel {
        notes,
        ..GatewayModel::default()
    };
    for (position, built_route) in built.iter().enumerate() {
        let traffic = attachment.traffic[position].as_ref();
        let cluster = cluster_index(&mut model.clusters, built_route, &route_objects, traffic);
        let policy_name = traffic.map(|t| policies[t.policy].meta.key());
        let mut route = envoy_route(built_route, traffic, policy_name, cluster);
        if let Some(failure) = &attachment.failures[position] {
            let policy = policies[failure.policy].meta.key();
            route.policy = Some(policy.clone());
            route.action = RouteAction::DirectResponse {
                status: 500,
                reason: format!(
                    "BackendTrafficPolicy {policy} is invalid ({}), so Envoy Gateway answers \
                     this route with 500",
                    failure.message
                ),
            };
        }
        model.routes.push(route);
    }
    model.policies = attachment.statuses;
    for (status, policy) in model.policies.iter_mut().zip(&policies) {
        status.warnings.extend(advice::policy_warnings(policy));
    }
    model
}

/// Keeps the last definition of each object, as applying the files in
/// order with `kubectl apply` would, and notes each replaced one.
fn latest_definitions(set: &ManifestSet, notes: &mut Vec<String>) -> ManifestSet {
    fn keep_last<T: Clone>(
        items: &[T],
        key: impl Fn(&T) -> (String, String),
        origin: impl Fn(&T) -> String,
        notes: &mut Vec<String>,
    ) -> Vec<T> {
        let mut kept: Vec<T> = Vec::new();
        for item in items {
            match kept.iter().position(|k| key(k) == key(item)) {
                Some(position) => {
                    let (kind, name) = key(item);
                    notes.push(format!(
                        "{kind} {name} is defined twice; the definition at {} replaces the one \
                         at {}, as applying the files in order would",
                        origin(item),
                        origin(&kept[position])
                    ));
                    kept[position] = item.clone();
                }
                None => kept.push(item.clone()),
            }
        }
        kept
    }
    ManifestSet {
        gateways: keep_last(
            &set.gateways,
            |g| ("Gateway".to_string(), g.meta.key()),
            |g| g.meta.origin(),
            notes,
        ),
        routes: keep_last(
            &set.routes,
            |r| (r.kind.kind_name().to_string(), r.meta.key()),
            |r| r.meta.origin(),
            notes,
        ),
        policies: keep_last(
            &set.policies,
            |p| ("BackendTrafficPolicy".to_string(), p.meta.key()),
            |p| p.meta.origin(),
            notes,
        ),
        notes: Vec::new(),
    }
}

fn cluster_index(
    clusters: &mut Vec<Cluster>,
    built: &BuiltRoute,
    route_objects: &[RouteObject],
    traffic: Option<&AppliedTraffic>,
) -> Option<usize> {
    if !built.has_backends {
        return None;
    }
    if let Some(existing) = clusters.iter().position(|c| c.name == built.cluster_name) {
        // NOTE: one cluster per rule; when listeners with different
        // policies share a rule, the first listener's settings win here,
        // while Envoy Gateway builds a cluster per Gateway.
        return Some(existing);
    }
    let route = &route_objects[built.route_index];
    let rule = &route.rules[built.rule_index];
    let features = traffic.map(|t| &t.features);
    let backends = rule
        .backend_refs
        .iter()
        .map(|backend| WeightedBackend {
            name: backend.name.clone(),
            namespace: backend
                .namespace
                .clone()
                .unwrap_or_else(|| route.meta.namespace.clone()),
            port: backend.port,
            weight: backend.weight,
        })
        .collect();
    clusters.push(Cluster {
        name: built.cluster_name.clone(),
        backends,
        circuit_breaker: features
            .and_then(|f| f.circuit_breaker.clone())
            .unwrap_or_else(CircuitBreaker::envoy_gateway_default),
        load_balancer: features
            .and_then(|f| f.load_balancer.clone())
            .unwrap_or(LoadBalancer::LeastRequest { choice_count: 2 }),
        outlier_detection: features.and_then(|f| f.outlier_detection.clone()),
        connect_timeout: features
            .and_then(|f| f.timeout.as_ref())
            .and_then(|t| t.connect_timeout)
            .unwrap_or(SimDuration::from_secs(10)),
        healthy_panic_threshold: features.and_then(|f| f.panic_threshold).unwrap_or(50.0),
    });
    Some(clusters.len() - 1)
}

fn envoy_route(
    built: &BuiltRoute,
    traffic: Option<&AppliedTraffic>,
    policy: Option<String>,
    cluster: Option<usize>,
) -> Route {
    let features = traffic.map(|t| &t.features);
    let action = match cluster {
        Some(cluster) => RouteAction::Forward { cluster },
        None => RouteAction::DirectResponse {
            status: 500,
            reason: "the route rule has no backendRefs, so Envoy Gateway answers it with 500"
                .to_string(),
        },
    };
    let rate_limit = features.and_then(|f| f.rate_limit.as_ref());
    let local_rate_limit = rate_limit
        .and_then(|r| r.local.as_ref())
        .map(rate_limit::local_to_envoy);
    let mut global = rate_limit
        .and_then(|r| r.global.as_ref())
        .map(|rules| rate_limit::global_to_envoy(rules, &built.name, &built.listener_key))
        .unwrap_or_default();
    let listener_domain = global.iter().position(|g| g.domain == built.listener_key);
    let global_rate_limit = listener_domain.map(|position| global.remove(position));
    Route {
        name: built.name.clone(),
        http_route: built.route_key.clone(),
        rule_index: built.rule_index,
        listener: built.listener_key.clone(),
        port: built.port,
        hostnames: if built.hostname == "*" {
            Vec::new()
        } else {
            vec![built.hostname.to_ascii_lowercase()]
        },
        path: path_match(built.path.as_ref()),
        headers: built
            .headers
            .iter()
            .filter(|h| h.name != ":method")
            .map(header_matcher)
            .collect(),
        query_params: built.query_params.iter().map(query_matcher).collect(),
        method: built.method.clone(),
        action,
        policy,
        local_rate_limit,
        global_rate_limit,
        shared_global_rate_limits: global,
        retry: route_retry(built, features),
        timeouts: route_timeouts(built, features),
        fault: features.and_then(|f| f.fault.clone()),
    }
}

fn compile(source: &str) -> StringMatch {
    // Route regexes were checked while reading; a failure here would mean a
    // pattern Envoy accepts but this engine does not.
    match Regex::new(source) {
        Ok(regex) => StringMatch::Regex(regex),
        Err(_) => StringMatch::Exact(source.to_string()),
    }
}

fn path_match(path: Option<&PathSpec>) -> PathMatch {
    match path {
        Some(PathSpec::Exact(value)) => PathMatch::Exact(value.clone()),
        Some(PathSpec::Prefix(value)) => PathMatch::Prefix(value.clone()),
        Some(PathSpec::Regex(source)) => match Regex::new(source) {
            Ok(regex) => PathMatch::Regex(regex),
            Err(_) => PathMatch::Exact(source.clone()),
        },
        None => PathMatch::Prefix("/".to_string()),
    }
}

fn string_match(condition: &NamedMatch) -> StringMatch {
    match condition.kind {
        MatchKind::Exact => StringMatch::Exact(condition.value.clone()),
        MatchKind::Regex => compile(&condition.value),
        MatchKind::Suffix => compile(&format!(".*{}", regex::escape(&condition.value))),
    }
}

fn header_matcher(condition: &NamedMatch) -> HeaderMatcher {
    HeaderMatcher {
        name: condition.name.to_ascii_lowercase(),
        matcher: string_match(condition),
        invert: false,
    }
}

fn query_matcher(condition: &NamedMatch) -> QueryParamMatcher {
    QueryParamMatcher {
        name: condition.name.clone(),
        matcher: string_match(condition),
    }
}

/// The route's retry policy: the HTTPRoute rule's own `retry` replaces
/// the policy's entirely, as in Envoy Gateway v1.9.
fn route_retry(
    built: &BuiltRoute,
    features: Option<&features::TrafficFeatures>,
) -> Option<crate::gateway::RetryPolicy> {
    let Some(rule_retry) = &built.rule_retry else {
        return features.and_then(|f| f.retry.clone());
    };
    let spec = RetrySpec {
        num_retries: rule_retry.attempts.unwrap_or(2),
        retry_on: (!rule_retry.codes.is_empty()).then(|| RetryOnSpec {
            triggers: Vec::new(),
            http_status_codes: rule_retry.codes.clone(),
            has_status_codes: true,
        }),
        per_retry: Some(PerRetrySpec {
            timeout: None,
            base_interval: rule_retry.backoff,
            max_interval: None,
        }),
    };
    // Only a zero back-off fails, which Envoy would reject as well.
    build_retry(&spec).ok()
}

/// The route timeout: the HTTPRoute rule's, else the policy's
/// `timeout.http.requestTimeout`, else Envoy's 15 s; zero disables it.
fn route_timeouts(
    built: &BuiltRoute,
    features: Option<&features::TrafficFeatures>,
) -> RouteTimeouts {
    let policy_timeout = features
        .and_then(|f| f.timeout.as_ref())
        .and_then(|t| t.request_timeout);
    match built.request_timeout.or(policy_timeout) {
        Some(timeout) if timeout.is_zero() => RouteTimeouts { request: None },
        Some(timeout) => RouteTimeouts {
            request: Some(timeout),
        },
        None => RouteTimeouts::default(),
    }
}

#[cfg(test)]
mod tests;
