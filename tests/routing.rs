//! Requests reach the route their own host, path and headers match, even
//! when many requests of one client share a cached match.

use std::collections::BTreeMap;

use trafficsim::{scenario, sim};

/// Two routes on one path: users whose `x-user-id` ends in an even digit
/// go to a backend that always returns 500, the rest to one that returns
/// 200. Three clients: one always sends `user-1`, one always `user-2`,
/// and one draws among `users` users per request.
fn scenario_text(users: u32) -> String {
    format!(
        "name: per-user-routes
seed: 4
manifests:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {{name: eg, namespace: default}}
    spec:
      gatewayClassName: eg
      listeners: [{{name: http, protocol: HTTP, port: 80}}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {{name: api, namespace: default}}
    spec:
      parentRefs: [{{name: eg}}]
      rules:
        - matches:
            - path: {{type: PathPrefix, value: /}}
              headers:
                - {{type: RegularExpression, name: x-user-id, value: 'user-[0-9]*[02468]'}}
          backendRefs: [{{name: even, port: 8080}}]
        - matches: [{{path: {{type: PathPrefix, value: /}}}}]
          backendRefs: [{{name: odd, port: 8080}}]
backends:
  - name: even
    service_time: 1ms
    errors:
      - {{status: 500, probability: 1.0}}
  - name: odd
    service_time: 1ms
clients:
  - name: one
    kind: open
    rate: 100/s
    requests: 200
    headers: {{x-user-id: user-1}}
  - name: two
    kind: open
    rate: 100/s
    requests: 200
    headers: {{x-user-id: user-2}}
  - name: many
    kind: open
    rate: 500/s
    requests: 4000
    users: {users}
    headers: {{x-user-id: 'user-{{user}}'}}
"
    )
}

fn statuses_by_client(users: u32) -> BTreeMap<String, BTreeMap<u16, u64>> {
    let dir = std::env::temp_dir().join(format!("trafficsim-routing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("users-{users}.yaml"));
    std::fs::write(&path, scenario_text(users)).unwrap();
    let scenario = scenario::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let output = sim::run(&scenario, scenario.seed);
    output
        .metrics
        .groups
        .iter()
        .map(|group| (group.name.clone(), group.statuses.clone()))
        .collect()
}

fn check(users: u32) {
    let statuses = statuses_by_client(users);
    assert_eq!(statuses["one"], BTreeMap::from([(200, 200)]));
    assert_eq!(statuses["two"], BTreeMap::from([(500, 200)]));
    // Half the users are even, drawn uniformly: 2,000 of 4,000 expected,
    // with a standard deviation of about 32.
    let many = &statuses["many"];
    let even = many.get(&500).copied().unwrap_or(0);
    let odd = many.get(&200).copied().unwrap_or(0);
    assert_eq!(even + odd, 4000, "{many:?}");
    assert!((1_850..=2_150).contains(&even), "{many:?}");
}

#[test]
fn few_users_each_reach_their_route() {
    check(10);
}

#[test]
fn users_beyond_the_header_cache_reach_their_route() {
    // More users than the per-client cache of expanded headers contains.
    check(100_000);
}
