//! Unit tests of the global rate limit, driven with explicit Unix seconds.
//! The service's own test vectors (envoyproxy/ratelimit
//! `test/redis/fixed_cache_impl_test.go` and `test/limiter/base_limiter_test.go`)
//! are replayed where the model covers them.

use super::*;
use crate::gateway::{DescriptorEntry, RateLimitAction, RateLimitActions, RateLimitUnit};

fn entry(key: &str, value: Option<&str>) -> DescriptorEntry {
    DescriptorEntry {
        key: key.to_string(),
        value: value.map(str::to_string),
    }
}

fn limit(chain: Vec<DescriptorEntry>, requests: u32, unit: RateLimitUnit) -> GlobalLimit {
    GlobalLimit {
        chain,
        requests_per_unit: requests,
        unit,
        shadow_mode: false,
    }
}

fn config(domain: &str, limits: Vec<GlobalLimit>) -> GlobalRateLimit {
    GlobalRateLimit {
        domain: domain.to_string(),
        rate_limits: Vec::new(),
        limits,
    }
}

fn descriptor(pairs: &[(&str, &str)]) -> Descriptor {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Entries of one descriptor and its `hits_addend`.
type Spec<'a> = (&'a [(&'a str, &'a str)], Option<u64>);

fn call(domain: &str, descriptors: &[Spec<'_>]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_string(),
        descriptors: descriptors
            .iter()
            .map(|(pairs, hits_addend)| RequestDescriptor {
                entries: descriptor(pairs),
                hits_addend: *hits_addend,
            })
            .collect(),
    }
}

/// Plans, runs on Redis and finishes one call at `now`.
fn decide(
    service: &ServiceConfig,
    redis: &mut Redis,
    request: &RateLimitRequest,
    now: u64,
    stats: &mut [LimitStats],
) -> ServiceResponse {
    let plan = service.plan(request, now, None, stats);
    let counts = redis.execute(service, &plan, now);
    service.finish(&plan, &counts, None, stats, now)
}

#[test]
fn cache_key_vectors() {
    let pairs = descriptor(&[("key", "value")]);
    assert_eq!(
        cache_key("", "domain", &pairs, 1, 1234),
        "domain_key_value_1234"
    );
    assert_eq!(
        cache_key("prefix:", "domain", &pairs, 1, 1234),
        "prefix:domain_key_value_1234"
    );
    let nested = descriptor(&[("key2", "value2"), ("subkey2", "subvalue2")]);
    assert_eq!(
        cache_key("", "domain", &nested, 60, 1234),
        "domain_key2_value2_subkey2_subvalue2_1200"
    );
    let hour = RateLimitUnit::Hour.seconds();
    let day = RateLimitUnit::Day.seconds();
    assert!(cache_key("", "d", &pairs, hour, 1_000_000).ends_with("_997200"));
    assert!(cache_key("", "d", &pairs, day, 1_000_000).ends_with("_950400"));
}

#[test]
fn second_limit_within_vector() {
    // now 1234, 10 per second, Redis returns 5 after the increment.
    let service = ServiceConfig::from_configs([&config(
        "domain",
        vec![limit(
            vec![entry("key", Some("value"))],
            10,
            RateLimitUnit::Second,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    redis.increment("domain_key_value_1234", 4, 1, 1234);
    let request = call("domain", &[(&[("key", "value")], None)]);
    let response = decide(&service, &mut redis, &request, 1234, &mut stats);
    assert_eq!(response.code, Code::Ok);
    assert_eq!(response.statuses[0].limit_remaining, 5);
    assert_eq!(stats[0].total_hits, 1);
    assert_eq!(stats[0].within_limit, 1);
    // EXPIRE 1: the key is gone one second later.
    assert_eq!(redis.get("domain_key_value_1234", 1235), 0);
}

#[test]
fn nested_minute_limit_over_vector() {
    // now 1234, 10 per minute on a two-level descriptor; Redis returns 11.
    // A sibling descriptor without a limit is OK and never reaches Redis.
    let service = ServiceConfig::from_configs([&config(
        "domain",
        vec![limit(
            vec![
                entry("key2", Some("value2")),
                entry("subkey2", Some("subvalue2")),
            ],
            10,
            RateLimitUnit::Minute,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    redis.increment("domain_key2_value2_subkey2_subvalue2_1200", 10, 60, 1234);
    let request = call(
        "domain",
        &[
            (&[("key", "value")], None),
            (&[("key2", "value2"), ("subkey2", "subvalue2")], None),
        ],
    );
    let plan = service.plan(&request, 1234, None, &mut stats);
    assert_eq!(plan.descriptors[0].limit, None);
    assert_eq!(
        plan.descriptors[1].key,
        "domain_key2_value2_subkey2_subvalue2_1200"
    );
    let counts = redis.execute(&service, &plan, 1234);
    assert_eq!(counts, [0, 11]);
    let response = service.finish(&plan, &counts, None, &mut stats, 1234);
    assert_eq!(response.code, Code::OverLimit);
    assert_eq!(response.statuses[0].code, Code::Ok);
    assert_eq!(response.statuses[1].code, Code::OverLimit);
    assert_eq!(response.statuses[1].limit_remaining, 0);
    assert_eq!(stats[0].over_limit, 1);
    assert_eq!(redis.get("key_value", 1234), 0);
}

#[test]
fn check_only_hits_addend_vector() {
    // An hour limit checked with hits_addend 0 is over limit at 11 of 10,
    // although nothing was added. The day limit with one hit counts it.
    let mut stats = LimitStats::default();
    let hour = descriptor_status(10, false, 11, 0, &mut stats);
    assert_eq!(hour.code, Code::OverLimit);
    assert_eq!(stats.over_limit, 0);
    let mut stats = LimitStats::default();
    let day = descriptor_status(10, false, 13, 1, &mut stats);
    assert_eq!(day.code, Code::OverLimit);
    assert_eq!(stats.over_limit, 1);
}

#[test]
fn near_limit_vectors() {
    // Limit 15 (near threshold 12), one hit each.
    let mut stats = LimitStats::default();
    let status = descriptor_status(15, false, 11, 1, &mut stats);
    assert_eq!((status.code, status.limit_remaining), (Code::Ok, 4));
    assert_eq!(stats.near_limit, 0);
    let status = descriptor_status(15, false, 13, 1, &mut stats);
    assert_eq!((status.code, status.limit_remaining), (Code::Ok, 2));
    assert_eq!(stats.near_limit, 1);
    let status = descriptor_status(15, false, 16, 1, &mut stats);
    assert_eq!(status.code, Code::OverLimit);
    assert_eq!(stats.over_limit, 1);
    assert_eq!(stats.near_limit, 1);
}

#[test]
fn multi_hit_vectors() {
    // (limit, hits, Redis value) -> (code, remaining, over_limit, near_limit)
    let cases = [
        (20, 3, 19, Code::Ok, 1, 0, 3),
        (20, 3, 22, Code::OverLimit, 0, 2, 1),
        (20, 7, 22, Code::OverLimit, 0, 2, 4),
        (10, 3, 30, Code::OverLimit, 0, 3, 0),
    ];
    for (limit, hits, after, code, remaining, over, near) in cases {
        let mut stats = LimitStats::default();
        let status = descriptor_status(limit, false, after, hits, &mut stats);
        let case = format!("limit {limit}, hits {hits}, Redis {after}");
        assert_eq!(status.code, code, "{case}");
        assert_eq!(status.limit_remaining, remaining, "{case}");
        assert_eq!(stats.over_limit, over, "{case}");
        assert_eq!(stats.near_limit, near, "{case}");
    }
}

#[test]
fn local_cache_answers_without_redis() {
    let service = ServiceConfig::from_configs([&config(
        "domain",
        vec![limit(
            vec![entry("key", Some("value"))],
            1,
            RateLimitUnit::Minute,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    let mut cache = LocalCache::default();
    let request = call("domain", &[(&[("key", "value")], None)]);
    for (now, expected) in [(1230, Code::Ok), (1231, Code::OverLimit)] {
        let plan = service.plan(&request, now, Some(&cache), &mut stats);
        assert!(plan.needs_redis());
        let counts = redis.execute(&service, &plan, now);
        let response = service.finish(&plan, &counts, Some(&mut cache), &mut stats, now);
        assert_eq!(response.code, expected);
    }
    // The key went over at 1231, so the next call is decided by the cache.
    let plan = service.plan(&request, 1232, Some(&cache), &mut stats);
    assert!(!plan.needs_redis());
    let response = service.finish(&plan, &[0], Some(&mut cache), &mut stats, 1232);
    assert_eq!(response.code, Code::OverLimit);
    assert_eq!(stats[0].over_limit, 2);
    assert_eq!(stats[0].over_limit_with_local_cache, 1);
    assert_eq!(redis.get("domain_key_value_1200", 1232), 2);
    // The next window has a new key, so the cache no longer matters.
    let plan = service.plan(&request, 1260, Some(&cache), &mut stats);
    assert!(plan.needs_redis());
}

#[test]
fn fixed_window_admits_twice_across_a_boundary() {
    // 10 per minute: ten hits in the last second of a window and ten in
    // the first second of the next all pass. The eleventh in a window does
    // not.
    let service = ServiceConfig::from_configs([&config(
        "d",
        vec![limit(
            vec![entry("route", Some("r"))],
            10,
            RateLimitUnit::Minute,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    let request = call("d", &[(&[("route", "r")], None)]);
    let window_end = 1_767_225_600 + 59;
    for now in [window_end, window_end + 1] {
        for _ in 0..10 {
            let response = decide(&service, &mut redis, &request, now, &mut stats);
            assert_eq!(response.code, Code::Ok, "at {now}");
        }
    }
    let response = decide(&service, &mut redis, &request, window_end + 1, &mut stats);
    assert_eq!(response.code, Code::OverLimit);
    // Counters grow even for rejected hits.
    let key = cache_key("", "d", &descriptor(&[("route", "r")]), 60, window_end + 1);
    assert_eq!(redis.get(&key, window_end + 1), 11);
}

#[test]
fn lookup_prefers_value_over_key() {
    let service = ServiceConfig::from_configs([&config(
        "d",
        vec![
            limit(
                vec![entry("route", Some("r")), entry("user", None)],
                5,
                RateLimitUnit::Minute,
            ),
            limit(
                vec![entry("route", Some("r")), entry("user", Some("vip"))],
                50,
                RateLimitUnit::Minute,
            ),
            limit(
                vec![
                    entry("route", Some("r")),
                    entry("tier", Some("gold")),
                    entry("user", None),
                ],
                7,
                RateLimitUnit::Minute,
            ),
        ],
    )]);
    let find = |pairs: &[(&str, &str)]| service.find_limit("d", &descriptor(pairs));
    assert_eq!(find(&[("route", "r"), ("user", "alice")]), Some(0));
    assert_eq!(find(&[("route", "r"), ("user", "vip")]), Some(1));
    // Shorter than every chain with a limit: the node has no limit.
    assert_eq!(find(&[("route", "r")]), None);
    assert_eq!(find(&[("route", "r"), ("tier", "gold")]), None);
    assert_eq!(
        find(&[("route", "r"), ("tier", "gold"), ("user", "bob")]),
        Some(2)
    );
    // Longer than the chain, or another value at a fixed level.
    assert_eq!(find(&[("route", "r"), ("user", "a"), ("x", "y")]), None);
    assert_eq!(find(&[("route", "other"), ("user", "a")]), None);
    assert_eq!(
        service.find_limit("unknown", &descriptor(&[("route", "r")])),
        None
    );
}

#[test]
fn distinct_values_get_their_own_counters() {
    let service = ServiceConfig::from_configs([&config(
        "d",
        vec![limit(
            vec![entry("route", Some("r")), entry("user", None)],
            1,
            RateLimitUnit::Minute,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    for user in ["alice", "bob"] {
        let request = call("d", &[(&[("route", "r"), ("user", user)], None)]);
        let first = decide(&service, &mut redis, &request, 100, &mut stats);
        let second = decide(&service, &mut redis, &request, 100, &mut stats);
        assert_eq!(first.code, Code::Ok, "{user}");
        assert_eq!(second.code, Code::OverLimit, "{user}");
    }
}

#[test]
fn every_descriptor_counts_even_when_one_is_over() {
    let service = ServiceConfig::from_configs([&config(
        "d",
        vec![
            limit(vec![entry("a", Some("1"))], 1, RateLimitUnit::Minute),
            limit(vec![entry("b", Some("1"))], 100, RateLimitUnit::Minute),
        ],
    )]);
    let mut stats = vec![LimitStats::default(); 2];
    let mut redis = Redis::default();
    let request = call("d", &[(&[("a", "1")], None), (&[("b", "1")], None)]);
    for _ in 0..3 {
        decide(&service, &mut redis, &request, 0, &mut stats);
    }
    assert_eq!(redis.get("d_b_1_0", 0), 3);
    assert_eq!(stats[0].over_limit, 2);
    assert_eq!(stats[1].within_limit, 3);
}

#[test]
fn shadow_mode_answers_ok_and_counts() {
    let mut shadow = limit(vec![entry("a", Some("1"))], 1, RateLimitUnit::Minute);
    shadow.shadow_mode = true;
    let service = ServiceConfig::from_configs([&config("d", vec![shadow])]);
    let mut stats = vec![LimitStats::default(); 1];
    let mut redis = Redis::default();
    let request = call("d", &[(&[("a", "1")], None)]);
    for _ in 0..3 {
        let response = decide(&service, &mut redis, &request, 0, &mut stats);
        assert_eq!(response.code, Code::Ok);
    }
    assert_eq!(stats[0].over_limit, 2);
    assert_eq!(stats[0].shadow_mode, 2);
}

#[test]
fn shared_chains_are_configured_once() {
    let shared = limit(
        vec![entry("ns/p/rule/0", Some("ns/p/rule/0"))],
        5,
        RateLimitUnit::Minute,
    );
    let route_a = config("ns/p", vec![shared.clone()]);
    let route_b = config("ns/p", vec![shared]);
    let service = ServiceConfig::from_configs([&route_a, &route_b]);
    assert_eq!(service.limits().len(), 1);
    assert_eq!(service.limits()[0].stat_key, "ns/p.ns/p/rule/0_ns/p/rule/0");
    let names = service.stats_by_name(&[LimitStats {
        total_hits: 4,
        ..Default::default()
    }]);
    assert_eq!(
        names.get("ratelimit.service.rate_limit.ns/p.ns/p/rule/0_ns/p/rule/0.total_hits"),
        Some(&4)
    );
}

#[test]
fn request_hits_addend_defaults_to_one() {
    let service = ServiceConfig::from_configs([&config(
        "d",
        vec![limit(
            vec![entry("a", Some("1"))],
            10,
            RateLimitUnit::Minute,
        )],
    )]);
    let mut stats = vec![LimitStats::default(); 1];
    let request = call("d", &[(&[("a", "1")], None), (&[("a", "1")], Some(0))]);
    let plan = service.plan(&request, 0, None, &mut stats);
    assert_eq!(plan.descriptors[0].hits, 1);
    assert_eq!(plan.descriptors[1].hits, 0);
    assert_eq!(stats[0].total_hits, 1);
}

fn generic(key: &str) -> RateLimitAction {
    RateLimitAction::GenericKey {
        descriptor_key: key.to_string(),
        descriptor_value: key.to_string(),
    }
}

fn token_config() -> GlobalRateLimit {
    GlobalRateLimit {
        domain: "d".to_string(),
        rate_limits: vec![
            RateLimitActions {
                actions: vec![generic("route")],
                hits_addend: Some(HitsAddend::Number(0)),
                apply_on_stream_done: false,
            },
            RateLimitActions {
                actions: vec![generic("route")],
                hits_addend: Some(HitsAddend::Metadata {
                    namespace: "io.envoy.ai_gateway".to_string(),
                    key: "llm_total_token".to_string(),
                }),
                apply_on_stream_done: true,
            },
        ],
        limits: Vec::new(),
    }
}

fn attrs() -> RequestAttrs<'static> {
    RequestAttrs {
        host: "h",
        path: "/",
        method: "GET",
        headers: &[],
        source_ip: std::net::IpAddr::from([10, 0, 0, 1]),
    }
}

#[test]
fn phases_split_request_and_response_cost() {
    let config = token_config();
    let request = build_request(&config, &attrs(), Phase::Request, None);
    let request = request.expect("the request phase has a descriptor");
    assert_eq!(request.descriptors.len(), 1);
    assert_eq!(request.descriptors[0].hits_addend, Some(0));
    let tokens = TokenUsage {
        input: 30,
        output: 12,
    };
    let done = build_request(&config, &attrs(), Phase::StreamDone, Some(tokens));
    let done = done.expect("the stream-done phase has a descriptor");
    assert_eq!(done.descriptors[0].hits_addend, Some(42));
}

#[test]
fn absent_metadata_drops_the_descriptor() {
    let config = token_config();
    assert_eq!(
        build_request(&config, &attrs(), Phase::StreamDone, None),
        None
    );
    let huge = TokenUsage {
        input: MAX_HITS_ADDEND,
        output: 1,
    };
    assert_eq!(
        build_request(&config, &attrs(), Phase::StreamDone, Some(huge)),
        None
    );
}

#[test]
fn metadata_keys_map_to_token_counts() {
    let tokens = TokenUsage {
        input: 100,
        output: 7,
    };
    assert_eq!(metadata_tokens("llm_input_token", tokens), 100);
    assert_eq!(metadata_tokens("prompt_tokens", tokens), 100);
    assert_eq!(metadata_tokens("llm_total_token", tokens), 107);
    assert_eq!(metadata_tokens("llm_output_token", tokens), 7);
    assert_eq!(metadata_tokens("completion", tokens), 7);
}

#[test]
fn filter_fails_open_unless_told_otherwise() {
    let open = FilterSettings::default();
    assert_eq!(open.decide(CallResult::Ok), FilterDecision::Continue);
    assert_eq!(
        open.decide(CallResult::OverLimit),
        FilterDecision::Reject(429)
    );
    assert_eq!(
        open.decide(CallResult::Error),
        FilterDecision::ContinueUnlimited
    );
    let closed = FilterSettings {
        failure_mode_deny: true,
        ..FilterSettings::default()
    };
    assert_eq!(
        closed.decide(CallResult::Error),
        FilterDecision::Reject(500)
    );
}

#[test]
fn redis_forgets_expired_keys() {
    let mut redis = Redis::default();
    for second in 0..120 {
        redis.increment(&format!("k_{second}"), 1, 1, second);
    }
    assert!(redis.peak_keys() <= 3, "peak {}", redis.peak_keys());
}
