//! End-to-end checks of reading and translation on small manifests.

use super::*;
use crate::gateway::{DescriptorEntry, PathMatch, RateLimitAction};

fn load(text: &str) -> Result<ManifestSet, Diagnostics> {
    let documents = yaml::parse_str(text, Path::new("m.yaml"))?;
    let roots: Vec<Node> = documents.into_iter().map(|d| d.root).collect();
    load_nodes(&roots, Path::new("m.yaml"))
}

fn model(text: &str) -> GatewayModel {
    match load(text) {
        Ok(set) => translate(&set, &TranslateOptions::default()),
        Err(diagnostics) => panic!("unexpected load errors:\n{diagnostics}"),
    }
}

const GATEWAY: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
  - {name: http, protocol: HTTP, port: 80}
";

const ROUTE: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [www.example.com]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /}
    - path: {type: Exact, value: /login}
    backendRefs: [{name: backend, port: 3000}]
  - name: api
    matches:
    - path: {value: /api}
      headers: [{name: x-tier, value: gold}]
    backendRefs: [{name: api, port: 8080, weight: 3}, {name: api-v2, port: 8080}]
";

fn with(parts: &[&str]) -> String {
    parts.join("---\n")
}

#[test]
fn routes_are_named_and_sorted_like_envoy_gateway() {
    let model = model(&with(&[GATEWAY, ROUTE]));
    let names: Vec<&str> = model.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "httproute/default/backend/rule/0/match/1/www_example_com",
            "httproute/default/backend/rule/1/match/0/www_example_com",
            "httproute/default/backend/rule/0/match/0/www_example_com",
        ]
    );
    assert!(matches!(&model.routes[0].path, PathMatch::Exact(p) if p == "/login"));
    assert_eq!(
        model.routes[0].hostnames,
        vec!["www.example.com".to_string()]
    );
    assert_eq!(model.routes[0].listener, "default/eg/http");
    assert_eq!(model.clusters.len(), 2);
    assert_eq!(model.clusters[1].name, "httproute/default/backend/rule/1");
    assert_eq!(model.clusters[1].backends[0].weight, 3);
    assert_eq!(model.clusters[1].backends[1].weight, 1);
    assert_eq!(model.clusters[0].circuit_breaker.max_retries, 1024);
}

#[test]
fn other_kinds_become_notes() {
    // TCPRoute is two letters from HTTPRoute, yet a real kind, not a typo.
    let cases = [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: backend}\nspec: {}\n",
            "skipped Service `backend`",
        ),
        (
            "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\n\
             metadata: {name: db}\nspec: {}\n",
            "skipped TCPRoute `db`",
        ),
    ];
    for (object, note) in cases {
        let model = model(&with(&[GATEWAY, object, ROUTE]));
        assert_eq!(model.notes.len(), 1, "{note}");
        assert!(model.notes[0].contains(note), "{}", model.notes[0]);
    }
}

#[test]
fn misspelt_simulated_kinds_are_errors() {
    let policy = "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicies\n\
                  metadata: {name: p, namespace: default}\nspec: {}\n";
    let error = load(&with(&[GATEWAY, policy])).unwrap_err().to_string();
    assert!(
        error.contains(
            "unknown kind `BackendTrafficPolicies`; did you mean `BackendTrafficPolicy`?"
        ),
        "{error}"
    );
}

#[test]
fn mappings_without_kind_are_errors() {
    let scenario = "name: demo\nseed: 1\nduration: 10s\n";
    let error = load(scenario).unwrap_err().to_string();
    assert!(
        error.contains(
            "expected a Kubernetes object with `kind`, found a mapping with keys name, seed, duration"
        ),
        "{error}"
    );
}

#[test]
fn selector_namespaces_beyond_same_become_notes() {
    let policy = |from: &str| {
        format!(
            "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\n\
             metadata: {{name: p, namespace: default}}\nspec:\n  targetSelectors:\n  \
             - {{group: gateway.networking.k8s.io, kind: HTTPRoute, namespaces: {{from: {from}}}}}\n"
        )
    };
    let same = model(&with(&[GATEWAY, ROUTE, &policy("Same")]));
    assert!(same.notes.is_empty(), "{:?}", same.notes);
    let all = model(&with(&[GATEWAY, ROUTE, &policy("All")]));
    assert_eq!(all.notes.len(), 1);
    assert!(
        all.notes[0].contains("`namespaces.from: All` selects only objects in namespace `default`"),
        "{}",
        all.notes[0]
    );
}

#[test]
fn listener_set_targets_are_named_as_not_simulated() {
    let policy = "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\n\
                  metadata: {name: p, namespace: default}\nspec:\n  targetRefs:\n  \
                  - {group: gateway.networking.k8s.io, kind: ListenerSet, name: ls}\n";
    let model = model(&with(&[GATEWAY, ROUTE, policy]));
    let status = &model.policies[0];
    assert!(!status.accepted);
    assert!(
        status
            .message
            .contains("targets ListenerSet, which trafficsim does not simulate"),
        "{}",
        status.message
    );
}

#[test]
fn list_objects_and_bundles_are_read() {
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n",
        GATEWAY.replace('\n', "\n  ").trim_end()
    );
    let set = load(&list).unwrap();
    assert_eq!(set.gateways.len(), 1);
    let bundle = "gateways:\n- apiVersion: gateway.networking.k8s.io/v1\n  kind: Gateway\n  metadata: {name: g}\n  spec: {gatewayClassName: eg, listeners: [{name: l, port: 80, protocol: HTTP}]}\nsecrets: [{kind: Secret}]\n";
    let set = load(bundle).unwrap();
    assert_eq!(set.gateways.len(), 1);
    assert_eq!(set.notes.len(), 1);
}

#[test]
fn all_problems_of_a_file_are_reported() {
    let policy = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: p}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg}]
  circuitBreaker: {maxRequests: 10}
  rateLimit:
    local:
      rules:
      - limit: {requests: 5, unit: Minutes}
";
    let error = load(&with(&[GATEWAY, policy])).unwrap_err().to_string();
    assert!(error.contains("m.yaml:14:33: spec.circuitBreaker.maxRequests: unknown field `maxRequests`; did you mean `maxParallelRequests`?"), "{error}");
    assert!(error.contains("spec.rateLimit.local.rules[0].limit.unit: unsupported value `Minutes`; did you mean `Minute`?"), "{error}");
}

const LOCAL_POLICY: &str = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: per-user}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg}]
  rateLimit:
    local:
      rules:
      - clientSelectors:
        - headers: [{name: x-user-id, type: Distinct}]
        limit: {requests: 3, unit: Hour}
      - limit: {requests: 10, unit: Hour}
";

#[test]
fn gateway_policy_gives_each_route_its_buckets() {
    let model = model(&with(&[GATEWAY, ROUTE, LOCAL_POLICY]));
    for route in &model.routes {
        let local = route.local_rate_limit.as_ref().unwrap();
        assert_eq!(local.default_bucket.max_tokens, 10);
        assert_eq!(
            local.descriptors[0].entries,
            vec![DescriptorEntry {
                key: "rule-0-match-0".to_string(),
                value: None
            }]
        );
        assert!(matches!(
            &local.rate_limits[0].actions[0],
            RateLimitAction::RequestHeaders { header_name, .. } if header_name == "x-user-id"
        ));
        assert_eq!(route.policy.as_deref(), Some("default/per-user"));
    }
    let status = &model.policies[0];
    assert!(status.accepted, "{status:?}");
    assert_eq!(status.applies_to.len(), 3);
}

#[test]
fn empty_route_policy_replaces_gateway_limits() {
    let route_policy = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: route-lb}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  loadBalancer: {type: RoundRobin}
";
    let model = model(&with(&[GATEWAY, ROUTE, LOCAL_POLICY, route_policy]));
    assert!(model.routes.iter().all(|r| r.local_rate_limit.is_none()));
    assert!(
        model
            .routes
            .iter()
            .all(|r| r.policy.as_deref() == Some("default/route-lb"))
    );
    let route_status = model
        .policies
        .iter()
        .find(|p| p.name == "default/route-lb")
        .unwrap();
    assert_eq!(route_status.overrides, vec!["default/per-user".to_string()]);
    let gateway_status = model
        .policies
        .iter()
        .find(|p| p.name == "default/per-user")
        .unwrap();
    assert!(gateway_status.applies_to.is_empty());
    assert_eq!(model.clusters[0].load_balancer, LoadBalancer::RoundRobin);
}

#[test]
fn invalid_policy_turns_routes_into_500() {
    let policy = LOCAL_POLICY.replace("{requests: 3, unit: Hour}", "{requests: 3, unit: Minute}");
    let model = model(&with(&[GATEWAY, ROUTE, &policy]));
    let status = &model.policies[0];
    assert!(!status.accepted);
    assert_eq!(status.reason, "Invalid");
    assert_eq!(
        status.message,
        "RateLimit: local rateLimit rule limit unit must be a multiple of the default limit unit."
    );
    for route in &model.routes {
        assert!(matches!(
            route.action,
            RouteAction::DirectResponse { status: 500, .. }
        ));
    }
}

#[test]
fn second_gateway_policy_is_conflicted() {
    let second = LOCAL_POLICY.replace("name: per-user", "name: zz-second");
    let model = model(&with(&[GATEWAY, ROUTE, LOCAL_POLICY, &second]));
    let status = model
        .policies
        .iter()
        .find(|p| p.name == "default/zz-second")
        .unwrap();
    assert_eq!(status.reason, "Conflicted");
    assert_eq!(
        status.message,
        "Unable to target Gateway eg, another BackendTrafficPolicy has already attached to it"
    );
}

#[test]
fn rule_section_beats_route_policy() {
    let rule_policy = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: api-rule}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend, sectionName: api}]
  circuitBreaker: {maxParallelRequests: 5}
";
    let model = model(&with(&[GATEWAY, ROUTE, LOCAL_POLICY, rule_policy]));
    let api = model.routes.iter().find(|r| r.rule_index == 1).unwrap();
    assert_eq!(api.policy.as_deref(), Some("default/api-rule"));
    assert!(api.local_rate_limit.is_none());
    let other = model.routes.iter().find(|r| r.rule_index == 0).unwrap();
    assert_eq!(other.policy.as_deref(), Some("default/per-user"));
    let cluster = model
        .clusters
        .iter()
        .find(|c| c.name.ends_with("rule/1"))
        .unwrap();
    assert_eq!(cluster.circuit_breaker.max_requests, 5);
    assert_eq!(cluster.circuit_breaker.max_connections, 1024);
}

#[test]
fn strategic_merge_unions_rate_limit_rules() {
    let route_policy = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: route-extra}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}]
  mergeType: StrategicMerge
  rateLimit:
    local:
      rules:
      - clientSelectors:
        - methods: [{value: POST}]
        limit: {requests: 1, unit: Hour}
";
    let model = model(&with(&[GATEWAY, ROUTE, LOCAL_POLICY, route_policy]));
    let route = &model.routes[0];
    let local = route.local_rate_limit.as_ref().unwrap();
    assert_eq!(local.descriptors.len(), 2);
    // The catch-all comes from the route policy, which has none.
    assert_eq!(local.default_bucket.max_tokens, u32::MAX);
    let status = model
        .policies
        .iter()
        .find(|p| p.name == "default/route-extra")
        .unwrap();
    let merged = status.ancestors[0]
        .conditions
        .iter()
        .find(|c| c.kind == "Merged")
        .unwrap();
    assert_eq!(merged.message, "Merged with policy default/per-user");
}

#[test]
fn global_rules_need_the_rate_limit_service() {
    let policy = "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: global}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg}]
  rateLimit:
    global:
      rules:
      - clientSelectors:
        - headers: [{name: x-user-id, type: Distinct}]
        limit: {requests: 5, unit: Minute}
        cost: {request: {from: Number, number: 2}}
      - limit: {requests: 100, unit: Second}
        shared: true
";
    let set = load(&with(&[GATEWAY, ROUTE, policy])).unwrap();
    let model = translate(&set, &TranslateOptions::default());
    let route = &model.routes[0];
    let global = route.global_rate_limit.as_ref().unwrap();
    assert_eq!(global.domain, "default/eg/http");
    assert_eq!(global.limits[0].chain[0].key, route.name);
    assert_eq!(route.shared_global_rate_limits[0].domain, "default/global");
    assert_eq!(
        route.shared_global_rate_limits[0].limits[0].chain[0].key,
        "default/global/rule/1"
    );
    let disabled = translate(
        &set,
        &TranslateOptions {
            global_rate_limit_enabled: false,
        },
    );
    assert!(!disabled.policies[0].accepted);
    assert!(disabled.policies[0].message.contains("enable Ratelimit"));
}

#[test]
fn redefined_policy_origin_is_the_last_definition() {
    let policy = |parallel: u32| {
        format!(
            "\
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {{name: breaker, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: backend}}]
  circuitBreaker: {{maxParallelRequests: {parallel}}}
"
        )
    };
    let first = policy(7);
    let second = policy(9);
    let text = with(&[GATEWAY, ROUTE, &first, &second]);
    let set = load(&text).unwrap();
    let second_line = text.lines().count() - second.lines().count() + 1;
    assert_eq!(
        set.policy_origin("default/breaker"),
        Some(format!("m.yaml:{second_line}:1"))
    );
    let model = translate(&set, &TranslateOptions::default());
    assert_eq!(model.clusters[0].circuit_breaker.max_requests, 9);
}
