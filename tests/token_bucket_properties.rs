//! Properties of Envoy's token bucket under arbitrary request times.

use proptest::prelude::*;
use trafficsim::gateway::TokenBucketSpec;
use trafficsim::local_rate_limit::{RefillModel, TokenBucket};
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
