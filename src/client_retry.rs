//! A client library's own retries: which outcomes it retries and how long
//! it waits first. Envoy's retries are in `retry`. When each wait starts,
//! and what a client timeout does to the request in flight, is in `sim`.

use crate::rng::{self, Stream};
use crate::scenario::{BackoffKind, ClientRetries};
use crate::time::SimDuration;

/// The longest `retry-after` the OpenAI and Anthropic Python SDKs obey. A
/// longer one, or none, leaves the wait to their own backoff.
pub const MAX_RETRY_AFTER: SimDuration = SimDuration::from_secs(60);

/// The outcome of one try of a call at the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryOutcome {
    /// A response with this status and, maybe, a `retry-after` header.
    Response {
        status: u16,
        retry_after: Option<SimDuration>,
    },
    /// The client's timeout fired first.
    TimedOut,
}

/// Decides whether a client with `policy` retries after `outcome`, given
/// the retries it has made so far.
pub fn should_retry(policy: &ClientRetries, outcome: TryOutcome, retries_done: u32) -> bool {
    if retries_done >= policy.max {
        return false;
    }
    match outcome {
        TryOutcome::TimedOut => true,
        TryOutcome::Response { status, .. } => policy.statuses.contains(&status),
    }
}

/// Computes the wait before retry number `retry` (0 for the first) of one
/// call. `previous` is the call's last wait, from which decorrelated jitter
/// grows, and is updated.
pub fn wait_before_retry(
    policy: &ClientRetries,
    outcome: TryOutcome,
    retry: u32,
    previous: &mut SimDuration,
    rng: &mut Stream,
) -> SimDuration {
    if policy.respect_retry_after
        && let TryOutcome::Response {
            retry_after: Some(wait),
            ..
        } = outcome
        && wait <= MAX_RETRY_AFTER
    {
        return wait;
    }
    let wait = backoff(
        policy.backoff,
        policy.base,
        policy.cap,
        retry,
        *previous,
        rng,
    );
    *previous = wait;
    wait
}

/// Computes one wait of the named backoff schedule. Only decorrelated
/// jitter reads `previous`, which is `base` before the first retry.
pub fn backoff(
    kind: BackoffKind,
    base: SimDuration,
    cap: SimDuration,
    retry: u32,
    previous: SimDuration,
    rng: &mut Stream,
) -> SimDuration {
    let exponential = || {
        let factor = 1u64.checked_shl(retry.min(63)).unwrap_or(u64::MAX);
        base.saturating_mul(factor).min(cap)
    };
    match kind {
        BackoffKind::None => SimDuration::ZERO,
        BackoffKind::Exponential => exponential(),
        BackoffKind::FullJitter => uniform(SimDuration::ZERO, exponential(), rng),
        BackoffKind::EqualJitter => {
            let ceiling = exponential();
            let half = SimDuration::from_nanos(ceiling.as_nanos() / 2);
            half + uniform(SimDuration::ZERO, half, rng)
        }
        BackoffKind::DecorrelatedJitter => {
            let previous = previous.max(base);
            uniform(base, previous.saturating_mul(3), rng).min(cap)
        }
    }
}

/// Draws uniformly from `[low, high)`, or returns `low` for an empty range.
fn uniform(low: SimDuration, high: SimDuration, rng: &mut Stream) -> SimDuration {
    let span = high.as_nanos().saturating_sub(low.as_nanos());
    if span == 0 {
        return low;
    }
    low + SimDuration::from_nanos(rng::below(rng, span))
}

/// Returns the previous wait a call starts from, for decorrelated jitter.
pub fn first_previous_wait(policy: &ClientRetries) -> SimDuration {
    policy.base
}

/// True for methods whose repetition may repeat an effect (RFC 9110 leaves
/// POST and PATCH non-idempotent).
pub fn is_non_idempotent(method: &str) -> bool {
    matches!(method, "POST" | "PATCH")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;

    fn policy(kind: BackoffKind) -> ClientRetries {
        ClientRetries {
            max: 3,
            backoff: kind,
            base: SimDuration::from_millis(100),
            cap: SimDuration::from_secs(1),
            respect_retry_after: true,
            statuses: vec![429, 503],
        }
    }

    fn ms(value: u64) -> SimDuration {
        SimDuration::from_millis(value)
    }

    #[test]
    fn exponential_doubles_to_the_cap() {
        let mut rng = Streams::new(1).stream("t", 0);
        let waits: Vec<SimDuration> = (0..6)
            .map(|n| {
                backoff(
                    BackoffKind::Exponential,
                    ms(100),
                    ms(1000),
                    n,
                    ms(100),
                    &mut rng,
                )
            })
            .collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        let huge = backoff(
            BackoffKind::Exponential,
            ms(100),
            ms(1000),
            200,
            ms(100),
            &mut rng,
        );
        assert_eq!(huge, ms(1000));
    }

    #[test]
    fn jittered_waits_stay_in_their_ranges() {
        let mut rng = Streams::new(2).stream("t", 0);
        for n in 0..8 {
            let ceiling = ms(100).saturating_mul(1 << n).min(ms(1000));
            let full = backoff(
                BackoffKind::FullJitter,
                ms(100),
                ms(1000),
                n,
                ms(100),
                &mut rng,
            );
            assert!(full < ceiling, "full {full} for retry {n}");
            let equal = backoff(
                BackoffKind::EqualJitter,
                ms(100),
                ms(1000),
                n,
                ms(100),
                &mut rng,
            );
            let half = SimDuration::from_nanos(ceiling.as_nanos() / 2);
            assert!(equal >= half, "equal {equal} for retry {n}");
            assert!(equal < ceiling, "equal {equal} for retry {n}");
        }
        let mut previous = ms(100);
        for _ in 0..20 {
            let next = backoff(
                BackoffKind::DecorrelatedJitter,
                ms(100),
                ms(1000),
                0,
                previous,
                &mut rng,
            );
            assert!(next >= ms(100), "{next}");
            assert!(next <= ms(1000), "{next}");
            assert!(next < previous.saturating_mul(3).max(ms(101)), "{next}");
            previous = next;
        }
    }

    #[test]
    fn none_never_waits() {
        let mut rng = Streams::new(3).stream("t", 0);
        assert_eq!(
            backoff(BackoffKind::None, ms(100), ms(1000), 4, ms(100), &mut rng),
            SimDuration::ZERO
        );
    }

    #[test]
    fn retry_after_replaces_the_backoff() {
        let mut rng = Streams::new(4).stream("t", 0);
        let mut previous = ms(100);
        let asked = TryOutcome::Response {
            status: 429,
            retry_after: Some(SimDuration::from_secs(2)),
        };
        let policy = policy(BackoffKind::Exponential);
        let wait = wait_before_retry(&policy, asked, 0, &mut previous, &mut rng);
        assert_eq!(wait, SimDuration::from_secs(2));
        // Beyond 60 s the SDKs fall back to their own backoff.
        let too_long = TryOutcome::Response {
            status: 429,
            retry_after: Some(SimDuration::from_secs(120)),
        };
        let wait = wait_before_retry(&policy, too_long, 0, &mut previous, &mut rng);
        assert_eq!(wait, ms(100));
    }

    #[test]
    fn retries_stop_at_max_and_on_other_statuses() {
        let policy = policy(BackoffKind::None);
        let response = |status| TryOutcome::Response {
            status,
            retry_after: None,
        };
        assert!(should_retry(&policy, response(503), 0));
        assert!(should_retry(&policy, TryOutcome::TimedOut, 2));
        assert!(!should_retry(&policy, TryOutcome::TimedOut, 3));
        assert!(!should_retry(&policy, response(404), 0));
        assert!(!should_retry(&policy, response(200), 0));
    }

    #[test]
    fn post_and_patch_are_not_idempotent() {
        assert!(is_non_idempotent("POST"));
        assert!(is_non_idempotent("PATCH"));
        assert!(!is_non_idempotent("PUT"));
        assert!(!is_non_idempotent("GET"));
    }
}
