//! Properties of Envoy's token bucket under arbitrary request times.

use proptest::prelude::*;
use trafficsim::descriptor::RequestAttrs;
use trafficsim::gateway::{
    DescriptorEntry, LocalDescriptor, LocalRateLimit, RateLimitAction, RateLimitActions,
    TokenBucketSpec,
};
use trafficsim::local_rate_limit::{AttrsKey, Decision, LocalLimiter, RefillModel, TokenBucket};
use trafficsim::time::{SimDuration, SimTime};

fn spec() -> impl Strategy<Value = TokenBucketSpec> {
    (1u32..200, 1u32..200, 50u64..120_000).prop_map(|(max, per_fill, interval_ms)| {
        TokenBucketSpec {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval: SimDuration::from_millis(interval_ms),
        }
    })
}

fn descriptor(
    entries: &[(&str, Option<&str>)],
    bucket: TokenBucketSpec,
    shadow: bool,
) -> LocalDescriptor {
    LocalDescriptor {
        entries: entries
            .iter()
            .map(|(key, value)| DescriptorEntry {
                key: key.to_string(),
                value: value.map(str::to_string),
            })
            .collect(),
        bucket,
        shadow_mode: shadow,
    }
}

fn header_action(header: &str, key: &str) -> RateLimitAction {
    RateLimitAction::RequestHeaders {
        header_name: header.into(),
        descriptor_key: key.into(),
    }
}

fn entry(actions: Vec<RateLimitAction>) -> RateLimitActions {
    RateLimitActions {
        actions,
        hits_addend: None,
        apply_on_stream_done: false,
    }
}

/// A local rate limit with per-user buckets, an exact bucket for user 1,
/// a bucket every request matches and per-user-and-team buckets, at random
/// rates, so that requests match several descriptors in varying order.
fn limit_config() -> impl Strategy<Value = (LocalRateLimit, RefillModel)> {
    (
        prop::collection::vec(spec(), 5),
        prop::collection::vec(any::<bool>(), 2),
        any::<bool>(),
        1usize..6,
        any::<bool>(),
    )
        .prop_map(|(specs, shadow, always_default, capacity, timer)| {
            let config = LocalRateLimit {
                default_bucket: specs[4],
                descriptors: vec![
                    descriptor(&[("user", None)], specs[0], shadow[0]),
                    descriptor(&[("user", Some("u1"))], specs[1], false),
                    descriptor(&[("tier", Some("all"))], specs[2], false),
                    descriptor(&[("user", None), ("team", None)], specs[3], shadow[1]),
                ],
                rate_limits: vec![
                    entry(vec![header_action("x-user-id", "user")]),
                    entry(vec![RateLimitAction::GenericKey {
                        descriptor_key: "tier".into(),
                        descriptor_value: "all".into(),
                    }]),
                    entry(vec![
                        header_action("x-user-id", "user"),
                        header_action("x-team", "team"),
                    ]),
                ],
                always_consume_default_token_bucket: always_default,
                max_dynamic_descriptors: capacity,
                status: 429,
            };
            let model = if timer {
                RefillModel::Timer
            } else {
                RefillModel::Continuous
            };
            (config, model)
        })
}

/// The headers of user `user`: every fourth user sends no team.
fn user_headers(user: u32) -> Vec<(String, String)> {
    let mut headers = vec![("x-user-id".to_string(), format!("u{user}"))];
    if user % 4 != 3 {
        headers.push(("x-team".to_string(), format!("t{}", user % 3)));
    }
    headers
}

fn times() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..600_000_000_000, 1..300).prop_map(|mut t| {
        t.sort_unstable();
        t
    })
}

proptest! {
    #[test]
    fn continuous_bucket_never_exceeds_capacity_plus_refill(spec in spec(), times in times()) {
        let mut bucket = TokenBucket::new(&spec, RefillModel::Continuous, SimTime::ZERO);
        let admitted: Vec<u64> = times
            .iter()
            .copied()
            .filter(|t| bucket.consume(1.0, SimTime::from_nanos(*t)))
            .collect();
        let rate = f64::from(spec.tokens_per_fill) / spec.fill_interval.as_secs_f64();
        for (i, start) in admitted.iter().enumerate() {
            for (j, end) in admitted.iter().enumerate().skip(i) {
                let window_s = (end - start) as f64 / 1e9;
                let allowed = f64::from(spec.max_tokens) + rate * window_s;
                let count = (j - i + 1) as f64;
                prop_assert!(
                    count <= allowed + 1e-6,
                    "{count} admitted in {window_s} s, allowed {allowed}"
                );
            }
        }
    }

    #[test]
    fn timer_bucket_never_exceeds_capacity_plus_fills(spec in spec(), times in times()) {
        let mut bucket = TokenBucket::new(&spec, RefillModel::Timer, SimTime::ZERO);
        let interval = spec.fill_interval.as_nanos();
        let admitted: Vec<u64> = times
            .iter()
            .copied()
            .filter(|t| bucket.consume(1.0, SimTime::from_nanos(*t)))
            .collect();
        for (i, start) in admitted.iter().enumerate() {
            for (j, end) in admitted.iter().enumerate().skip(i) {
                let ticks = end / interval - start / interval;
                let allowed = u64::from(spec.max_tokens) + ticks * u64::from(spec.tokens_per_fill);
                prop_assert!((j - i + 1) as u64 <= allowed);
            }
        }
    }

    #[test]
    fn idle_bucket_allows_a_full_burst(spec in spec(), idle_s in 0u64..100_000) {
        // After enough idle time the burst equals the capacity, never more.
        let mut bucket = TokenBucket::new(&spec, RefillModel::Continuous, SimTime::ZERO);
        let full = SimDuration::from_secs_rounded(
            f64::from(spec.max_tokens) * spec.fill_interval.as_secs_f64() / f64::from(spec.tokens_per_fill),
        );
        let now = SimTime::ZERO + full + SimDuration::from_secs(idle_s);
        let burst = (0..spec.max_tokens + 10).filter(|_| bucket.consume(1.0, now)).count();
        prop_assert_eq!(burst, spec.max_tokens as usize);
    }
}

proptest! {
    #[test]
    fn repeated_check_decides_as_check(
        (config, model) in limit_config(),
        requests in prop::collection::vec((0u32..8, 0u64..5_000, any::<bool>()), 1..400),
    ) {
        let mut cached = LocalLimiter::new(&config, model, SimTime::ZERO);
        let mut uncached = LocalLimiter::new(&config, model, SimTime::ZERO);
        let headers: Vec<Vec<(String, String)>> = (0..8).map(user_headers).collect();
        let mut now = SimTime::ZERO;
        for (user, gap_ms, keyed) in requests {
            now += SimDuration::from_millis(gap_ms);
            let request = RequestAttrs {
                host: "example.com",
                path: "/",
                method: "GET",
                headers: &headers[user as usize],
                source_ip: "10.0.0.1".parse().unwrap(),
            };
            // Users 0 to 3 are variants of client 0, users 4 to 7 of client 1.
            let key = AttrsKey { client: user / 4, variant: user % 4 };
            let decision: Decision = if keyed {
                cached.check_repeated(&|| request, key, now)
            } else {
                cached.check(&request, now)
            };
            prop_assert_eq!(decision, uncached.check(&request, now));
            prop_assert_eq!(cached.evictions(), uncached.evictions());
        }
    }
}
