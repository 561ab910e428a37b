//! Attaching BackendTrafficPolicies to Envoy routes as Envoy Gateway v1.9
//! does: targets in the policy's own namespace, processed from the most
//! specific scope (route rule, route, listener, Gateway) to the least, each
//! route taking the features of the first policy that reaches it, with
//! `mergeType` merges, conflicts and the status conditions Envoy Gateway
//! reports.

use std::collections::{BTreeMap, BTreeSet};

use super::features::{TrafficFeatures, build_features};
use super::gateway_api::{Gateway, Route};
use super::merge::merge_specs;
use super::policy::{BackendTrafficPolicy, PolicySpec, read_spec};
use super::rate_limit::merge_rate_limits;
use super::routes::BuiltRoute;
use crate::gateway::{AncestorStatus, PolicyCondition, PolicyStatus};
use crate::yaml::Diagnostics;

/// The reason given to a policy none of whose targets was read. Envoy
/// Gateway reports nothing for it; it is not an error of the policy.
pub const NOT_ATTACHED: &str = "NotAttached";

/// The features a policy gave one Envoy route.
#[derive(Clone, Debug)]
pub struct AppliedTraffic {
    /// Index of the policy whose features apply (for a merge, the route's).
    pub policy: usize,
    pub features: TrafficFeatures,
}

/// A policy that failed to translate and turned a route into a 500.
#[derive(Clone, Debug)]
pub struct FailedTraffic {
    pub policy: usize,
    pub message: String,
}

pub struct Attachment {
    pub statuses: Vec<PolicyStatus>,
    /// Per built route, in the same order.
    pub traffic: Vec<Option<AppliedTraffic>>,
    pub failures: Vec<Option<FailedTraffic>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Gateway(usize),
    Listener(usize, String),
    Route(usize),
}

struct Target {
    kind: String,
    name: String,
    section: Option<String>,
}

struct Attacher<'a> {
    gateways: &'a [Gateway],
    routes: &'a [Route],
    policies: &'a [BackendTrafficPolicy],
    built: &'a [BuiltRoute],
    global_enabled: bool,
    traffic: Vec<Option<AppliedTraffic>>,
    failures: Vec<Option<FailedTraffic>>,
    ancestors: Vec<Vec<AncestorStatus>>,
    handled: Vec<bool>,
    /// Scopes each policy attached to without a conflict.
    attached_scopes: Vec<Vec<Scope>>,
    taken_scopes: BTreeSet<(Scope, Option<String>)>,
    /// Routes (indices) targeted by a route-level policy, per policy.
    route_targets: Vec<Vec<usize>>,
    merged_routes: BTreeSet<usize>,
}

/// Applies `policies` to `built` routes. All inputs are in Envoy
/// Gateway's processing order (creation time, then namespace and name).
pub fn attach_policies(
    gateways: &[Gateway],
    routes: &[Route],
    policies: &[BackendTrafficPolicy],
    built: &[BuiltRoute],
    global_enabled: bool,
) -> Attachment {
    let mut attacher = Attacher {
        gateways,
        routes,
        policies,
        built,
        global_enabled,
        traffic: vec![None; built.len()],
        failures: vec![None; built.len()],
        ancestors: vec![Vec::new(); policies.len()],
        handled: vec![false; policies.len()],
        attached_scopes: vec![Vec::new(); policies.len()],
        taken_scopes: BTreeSet::new(),
        route_targets: vec![Vec::new(); policies.len()],
        merged_routes: BTreeSet::new(),
    };
    let gateway_policy_map = attacher.gateway_policy_map();
    for rule_level in [true, false] {
        for index in 0..policies.len() {
            for target in attacher.targets(index) {
                let is_route = matches!(target.kind.as_str(), "HTTPRoute" | "GRPCRoute");
                if is_route && target.section.is_some() == rule_level {
                    attacher.process_route_target(index, &target, &gateway_policy_map);
                }
            }
        }
    }
    for listener_level in [true, false] {
        for index in 0..policies.len() {
            for target in attacher.targets(index) {
                if target.kind == "Gateway" && target.section.is_some() == listener_level {
                    attacher.process_gateway_target(index, &target);
                }
            }
        }
    }
    attacher.finish()
}

impl<'a> Attacher<'a> {
    /// Collects the targets of a policy: `targetRefs` (or `targetRef`) and the
    /// objects its `targetSelectors` pick in its namespace.
    fn targets(&self, index: usize) -> Vec<Target> {
        let policy = &self.policies[index];
        let mut targets: Vec<Target> = policy
            .spec
            .target_refs
            .iter()
            .map(|t| Target {
                kind: t.kind.clone(),
                name: t.name.clone(),
                section: t.section_name.clone(),
            })
            .collect();
        for selector in &policy.spec.target_selectors {
            let mut names: Vec<(String, String)> = Vec::new();
            for gateway in self.gateways {
                if selector.kind == "Gateway"
                    && gateway.meta.namespace == policy.meta.namespace
                    && selector.matches(&gateway.meta.labels)
                {
                    names.push(("Gateway".to_string(), gateway.meta.name.clone()));
                }
            }
            for route in self.routes {
                if selector.kind == route.kind.kind_name()
                    && route.meta.namespace == policy.meta.namespace
                    && selector.matches(&route.meta.labels)
                {
                    names.push((selector.kind.clone(), route.meta.name.clone()));
                }
            }
            for (kind, name) in names {
                if !targets
                    .iter()
                    .any(|t| t.kind == kind && t.name == name && t.section.is_none())
                {
                    targets.push(Target {
                        kind,
                        name,
                        section: None,
                    });
                }
            }
        }
        targets
    }

    /// Finds the first policy attached to each Gateway and each listener, used
    /// as the parent of a `mergeType` route policy.
    fn gateway_policy_map(&self) -> BTreeMap<(usize, Option<String>), usize> {
        let mut map = BTreeMap::new();
        for index in 0..self.policies.len() {
            for target in self.targets(index) {
                if target.kind != "Gateway" {
                    continue;
                }
                let Some(gateway) = self.find_gateway(index, &target.name) else {
                    continue;
                };
                if let Some(section) = &target.section
                    && !self.gateways[gateway]
                        .listeners
                        .iter()
                        .any(|l| l.name == *section)
                {
                    continue;
                }
                map.entry((gateway, target.section.clone()))
                    .or_insert(index);
            }
        }
        map
    }

    fn find_gateway(&self, policy: usize, name: &str) -> Option<usize> {
        let namespace = &self.policies[policy].meta.namespace;
        self.gateways
            .iter()
            .position(|g| g.meta.namespace == *namespace && g.meta.name == name)
    }

    fn find_route(&self, policy: usize, kind: &str, name: &str) -> Option<usize> {
        let namespace = &self.policies[policy].meta.namespace;
        self.routes.iter().position(|r| {
            r.kind.kind_name() == kind && r.meta.namespace == *namespace && r.meta.name == name
        })
    }

    fn features(&self, index: usize) -> (TrafficFeatures, Option<String>) {
        let policy = &self.policies[index];
        build_features(&policy.spec, &policy.meta.key(), self.global_enabled)
    }

    fn process_route_target(
        &mut self,
        index: usize,
        target: &Target,
        gateway_policies: &BTreeMap<(usize, Option<String>), usize>,
    ) {
        let Some(route) = self.find_route(index, &target.kind, &target.name) else {
            return;
        };
        self.handled[index] = true;
        let ancestors = self.route_ancestors(route);
        if target.section.is_none() {
            self.route_targets[index].push(route);
        }
        if let Err((reason, message)) = self.resolve_route(index, route, target) {
            for ancestor in &ancestors {
                self.set_condition(index, ancestor, "Accepted", false, reason, &message);
            }
            return;
        }
        let selects = |built: &BuiltRoute| {
            built.route_index == route
                && target
                    .section
                    .as_ref()
                    .is_none_or(|section| built.rule_name.as_ref() == Some(section))
        };
        match self.policies[index].spec.merge_type.clone() {
            None => {
                let (features, error) = self.features(index);
                self.apply(index, &features, error.as_deref(), |b| selects(b));
                if let Some(message) = error {
                    for ancestor in &ancestors {
                        self.set_condition(index, ancestor, "Accepted", false, "Invalid", &message);
                    }
                }
            }
            Some(merge_type) => {
                for (gateway, listener) in self.route_listeners(route) {
                    let ancestor = format!("{}/{}", self.gateways[gateway].meta.key(), listener);
                    let parent = gateway_policies
                        .get(&(gateway, Some(listener.clone())))
                        .or_else(|| gateway_policies.get(&(gateway, None)))
                        .copied();
                    let on_listener = |b: &BuiltRoute| {
                        selects(b) && b.gateway_index == gateway && b.listener_name == listener
                    };
                    let (features, error) = match parent {
                        None => self.features(index),
                        Some(parent) => match self.merged_features(index, parent, &merge_type) {
                            Ok(pair) => pair,
                            Err(message) => {
                                self.set_condition(
                                    index, &ancestor, "Accepted", false, "Invalid", &message,
                                );
                                continue;
                            }
                        },
                    };
                    self.apply(index, &features, error.as_deref(), on_listener);
                    if let Some(message) = error {
                        self.set_condition(
                            index, &ancestor, "Accepted", false, "Invalid", &message,
                        );
                        continue;
                    }
                    if let Some(parent) = parent {
                        self.merged_routes.insert(route);
                        let parent_key = self.policies[parent].meta.key();
                        self.set_condition(
                            index,
                            &ancestor,
                            "Merged",
                            true,
                            "Merged",
                            &format!("Merged with policy {parent_key}"),
                        );
                    }
                }
            }
        }
        for ancestor in &ancestors {
            self.set_accepted_if_unset(index, ancestor);
        }
        self.deprecation_warning(index, &ancestors);
    }

    /// Merges the route policy `index` into its parent, first as policy
    /// documents and then, for rate limits, rule by rule (the rules keep
    /// the name of the policy they came from).
    fn merged_features(
        &self,
        index: usize,
        parent: usize,
        merge_type: &str,
    ) -> Result<(TrafficFeatures, Option<String>), String> {
        let strategic = match merge_type {
            "StrategicMerge" => true,
            "JSONMerge" => false,
            other => {
                return Err(format!(
                    "Error merging policies: unsupported merge type: {other}."
                ));
            }
        };
        let policy = &self.policies[index];
        let parent_policy = &self.policies[parent];
        let merged_node = merge_specs(&parent_policy.spec_node, &policy.spec_node, strategic);
        let mut diagnostics = Diagnostics::default();
        let spec: PolicySpec = read_spec(&merged_node, &mut diagnostics)
            .ok_or_else(|| "Error merging policies: the merged policy is invalid.".to_string())?;
        let (mut features, error) = build_features(&spec, &policy.meta.key(), self.global_enabled);
        let route_limits = policy.spec.rate_limit.is_some();
        let parent_limits = parent_policy.spec.rate_limit.is_some();
        if route_limits && parent_limits {
            let (parent_features, _) = self.features(parent);
            let (route_features, _) = self.features(index);
            if let (Some(base), Some(patch)) =
                (parent_features.rate_limit, route_features.rate_limit)
            {
                features.rate_limit = Some(merge_rate_limits(&base, &patch, strategic));
            }
        } else if parent_limits {
            let (parent_features, _) = self.features(parent);
            if parent_features.rate_limit.is_some() {
                features.rate_limit = parent_features.rate_limit;
            }
        }
        Ok((features, error))
    }

    fn resolve_route(
        &mut self,
        index: usize,
        route: usize,
        target: &Target,
    ) -> Result<(), (&'static str, String)> {
        let object = &self.routes[route];
        match &target.section {
            Some(section) => {
                if !object
                    .rules
                    .iter()
                    .any(|r| r.name.as_ref() == Some(section))
                {
                    return Err((
                        "TargetNotFound",
                        format!(
                            "No section name {section} found for {} {}",
                            target.kind,
                            object.meta.key()
                        ),
                    ));
                }
                let key = (Scope::Route(route), Some(section.clone()));
                if !self.taken_scopes.insert(key) {
                    return Err((
                        "Conflicted",
                        format!(
                            "Unable to target RouteRule {}/{section}, another BackendTrafficPolicy \
                             has already attached to it",
                            object.meta.name
                        ),
                    ));
                }
            }
            None => {
                if !self.taken_scopes.insert((Scope::Route(route), None)) {
                    return Err((
                        "Conflicted",
                        format!(
                            "Unable to target {} {}, another BackendTrafficPolicy has already \
                             attached to it",
                            target.kind, object.meta.name
                        ),
                    ));
                }
                self.attached_scopes[index].push(Scope::Route(route));
            }
        }
        Ok(())
    }

    fn process_gateway_target(&mut self, index: usize, target: &Target) {
        let Some(gateway) = self.find_gateway(index, &target.name) else {
            return;
        };
        self.handled[index] = true;
        let gateway_key = self.gateways[gateway].meta.key();
        let ancestor = match &target.section {
            Some(section) => format!("{gateway_key}/{section}"),
            None => gateway_key.clone(),
        };
        let scope = match &target.section {
            Some(section) => {
                if !self.gateways[gateway]
                    .listeners
                    .iter()
                    .any(|l| l.name == *section)
                {
                    let message =
                        format!("No section name {section} found for Gateway {gateway_key}");
                    self.set_condition(
                        index,
                        &ancestor,
                        "Accepted",
                        false,
                        "TargetNotFound",
                        &message,
                    );
                    return;
                }
                Scope::Listener(gateway, section.clone())
            }
            None => Scope::Gateway(gateway),
        };
        if !self.taken_scopes.insert((scope.clone(), None)) {
            let message = match &target.section {
                Some(section) => format!(
                    "Unable to target Listener {gateway_key}/{section}, another \
                     BackendTrafficPolicy has already attached to it"
                ),
                None => format!(
                    "Unable to target Gateway {}, another BackendTrafficPolicy has already \
                     attached to it",
                    target.name
                ),
            };
            self.set_condition(index, &ancestor, "Accepted", false, "Conflicted", &message);
            return;
        }
        self.attached_scopes[index].push(scope);
        let (features, error) = self.features(index);
        let section = target.section.clone();
        self.apply(index, &features, error.as_deref(), |b| {
            b.gateway_index == gateway && section.as_ref().is_none_or(|s| *s == b.listener_name)
        });
        if let Some(message) = error {
            self.set_condition(index, &ancestor, "Accepted", false, "Invalid", &message);
        }
        self.set_accepted_if_unset(index, &ancestor);
        self.deprecation_warning(index, std::slice::from_ref(&ancestor));
    }

    /// Gives `features` to every selected route that no more specific
    /// policy has reached; with an error the route responds with 500 instead.
    fn apply(
        &mut self,
        index: usize,
        features: &TrafficFeatures,
        error: Option<&str>,
        selects: impl Fn(&BuiltRoute) -> bool,
    ) {
        for (position, built) in self.built.iter().enumerate() {
            if !selects(built) || self.traffic[position].is_some() {
                continue;
            }
            match error {
                Some(message) => {
                    self.failures[position] = Some(FailedTraffic {
                        policy: index,
                        message: message.to_string(),
                    });
                }
                None => {
                    self.traffic[position] = Some(AppliedTraffic {
                        policy: index,
                        features: features.clone(),
                    });
                }
            }
        }
    }

    /// Lists the status ancestors of a route-level policy: the route's parent
    /// Gateways, with the parent reference's section name.
    fn route_ancestors(&self, route: usize) -> Vec<String> {
        let object = &self.routes[route];
        let mut ancestors = Vec::new();
        for parent in &object.parent_refs {
            if parent.kind != "Gateway" {
                continue;
            }
            let namespace = parent
                .namespace
                .as_deref()
                .unwrap_or(&object.meta.namespace);
            let mut ancestor = format!("{namespace}/{}", parent.name);
            if let Some(section) = &parent.section_name {
                ancestor = format!("{ancestor}/{section}");
            }
            if !ancestors.contains(&ancestor) {
                ancestors.push(ancestor);
            }
        }
        ancestors
    }

    /// Lists the (Gateway, listener) pairs a route is attached to, in route
    /// table order.
    fn route_listeners(&self, route: usize) -> Vec<(usize, String)> {
        let mut pairs: Vec<(usize, String)> = Vec::new();
        for built in self.built.iter().filter(|b| b.route_index == route) {
            let pair = (built.gateway_index, built.listener_name.clone());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        pairs
    }

    fn set_condition(
        &mut self,
        index: usize,
        ancestor: &str,
        kind: &str,
        status: bool,
        reason: &str,
        message: &str,
    ) {
        let ancestors = &mut self.ancestors[index];
        let position = match ancestors.iter().position(|a| a.ancestor == ancestor) {
            Some(position) => position,
            None => {
                ancestors.push(AncestorStatus {
                    ancestor: ancestor.to_string(),
                    conditions: Vec::new(),
                });
                ancestors.len() - 1
            }
        };
        let condition = PolicyCondition {
            kind: kind.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let conditions = &mut ancestors[position].conditions;
        match conditions.iter_mut().find(|c| c.kind == kind) {
            Some(existing) => *existing = condition,
            None => conditions.push(condition),
        }
    }

    fn set_accepted_if_unset(&mut self, index: usize, ancestor: &str) {
        let unset = self.ancestors[index]
            .iter()
            .find(|a| a.ancestor == ancestor)
            .is_none_or(|a| !a.conditions.iter().any(|c| c.kind == "Accepted"));
        if unset {
            self.set_condition(
                index,
                ancestor,
                "Accepted",
                true,
                "Accepted",
                "Policy has been accepted.",
            );
        }
    }

    fn deprecation_warning(&mut self, index: usize, ancestors: &[String]) {
        if !self.policies[index].spec.uses_deprecated_target_ref {
            return;
        }
        for ancestor in ancestors {
            self.set_condition(
                index,
                ancestor,
                "Warning",
                true,
                "DeprecatedField",
                "spec.targetRef is deprecated, use spec.targetRefs instead",
            );
        }
    }

    fn finish(mut self) -> Attachment {
        let overrides = self.overridden_by();
        let mut statuses = Vec::new();
        for (index, policy) in self.policies.iter().enumerate() {
            let key = policy.meta.key();
            let mut applies_to = Vec::new();
            for (position, built) in self.built.iter().enumerate() {
                let applied = self.traffic[position]
                    .as_ref()
                    .is_some_and(|t| t.policy == index)
                    || self.failures[position]
                        .as_ref()
                        .is_some_and(|f| f.policy == index);
                if applied {
                    applies_to.push(built.name.clone());
                }
            }
            if let Some(message) = overrides.get(&index) {
                for ancestor in self.ancestors[index].clone() {
                    self.set_condition(
                        index,
                        &ancestor.ancestor,
                        "Overridden",
                        true,
                        "Overridden",
                        message,
                    );
                }
            }
            let ancestors = std::mem::take(&mut self.ancestors[index]);
            let rejection = ancestors
                .iter()
                .flat_map(|a| a.conditions.iter())
                .find(|c| c.kind == "Accepted" && !c.status);
            let (accepted, reason, message) = match (rejection, self.handled[index]) {
                (Some(condition), _) => {
                    (false, condition.reason.clone(), condition.message.clone())
                }
                (None, true) if !ancestors.is_empty() => (
                    true,
                    "Accepted".to_string(),
                    "Policy has been accepted.".to_string(),
                ),
                _ => (
                    false,
                    NOT_ATTACHED.to_string(),
                    not_attached_message(policy),
                ),
            };
            let overridden_by: Vec<String> = self
                .displacing_policies(index)
                .into_iter()
                .map(|other| self.policies[other].meta.key())
                .collect();
            statuses.push(PolicyStatus {
                name: key,
                accepted,
                reason,
                message,
                applies_to,
                overrides: Vec::new(),
                warnings: Vec::new(),
                ancestors,
                overridden_by,
            });
        }
        // A policy overrides the less specific policies that it displaces.
        for index in 0..statuses.len() {
            for displaced in self.displaced_by(index) {
                let name = statuses[displaced].name.clone();
                if !statuses[index].overrides.contains(&name) {
                    statuses[index].overrides.push(name);
                }
            }
        }
        Attachment {
            statuses,
            traffic: self.traffic,
            failures: self.failures,
        }
    }

    /// Less specific policies (attached to a Gateway or listener) whose
    /// routes the route-level policy `index` took over without merging.
    fn displaced_by(&self, index: usize) -> Vec<usize> {
        let mut displaced = Vec::new();
        for &route in &self.route_targets[index] {
            if self.merged_routes.contains(&route) {
                continue;
            }
            for built in self.built.iter().filter(|b| b.route_index == route) {
                for (other, scopes) in self.attached_scopes.iter().enumerate() {
                    let covers = scopes.iter().any(|scope| match scope {
                        Scope::Gateway(g) => *g == built.gateway_index,
                        Scope::Listener(g, l) => {
                            *g == built.gateway_index && *l == built.listener_name
                        }
                        Scope::Route(_) => false,
                    });
                    if other != index && covers && !displaced.contains(&other) {
                        displaced.push(other);
                    }
                }
            }
        }
        displaced
    }

    fn displacing_policies(&self, index: usize) -> Vec<usize> {
        (0..self.policies.len())
            .filter(|&other| other != index && self.displaced_by(other).contains(&index))
            .collect()
    }

    /// Builds the `Overridden` message of each Gateway- or listener-level policy
    /// that route-level policies displace for some routes.
    fn overridden_by(&self) -> BTreeMap<usize, String> {
        let mut routes_by_policy: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for index in 0..self.policies.len() {
            for displaced in self.displaced_by(index) {
                for &route in &self.route_targets[index] {
                    let key = self.routes[route].meta.key();
                    let entry = routes_by_policy.entry(displaced).or_default();
                    if !entry.contains(&key) {
                        entry.push(key);
                    }
                }
            }
        }
        routes_by_policy
            .into_iter()
            .map(|(policy, mut routes)| {
                routes.sort();
                let message = format!(
                    "This policy is being overridden by other backendTrafficPolicies for these \
                     routes: [{}]",
                    routes.join(", ")
                );
                (policy, message)
            })
            .collect()
    }
}

/// Explains why a policy attached to nothing, naming the target kinds the
/// simulator does not model when the policy uses them.
fn not_attached_message(policy: &BackendTrafficPolicy) -> String {
    let mut unmodelled: Vec<&str> = policy
        .spec
        .target_refs
        .iter()
        .map(|target| target.kind.as_str())
        .chain(policy.spec.target_selectors.iter().map(|s| s.kind.as_str()))
        .filter(|kind| !SIMULATED_TARGET_KINDS.contains(kind))
        .collect();
    unmodelled.sort_unstable();
    unmodelled.dedup();
    if unmodelled.is_empty() {
        return "None of this policy's targets is in the manifests read, so it applies to \
                nothing; Envoy Gateway sets no status on such a policy."
            .to_string();
    }
    format!(
        "This policy targets {}, which trafficsim does not simulate, so it applies to no \
         simulated route; Envoy Gateway would apply it to the traffic of those targets.",
        unmodelled.join(", ")
    )
}

/// Target kinds the simulator models. Reading a policy rejects kinds
/// Envoy Gateway does not accept, so any other kind seen here is one it
/// accepts (a ListenerSet, a TCP, UDP or TLS route) that is not simulated.
const SIMULATED_TARGET_KINDS: [&str; 3] = ["Gateway", "HTTPRoute", "GRPCRoute"];
