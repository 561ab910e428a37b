//! Envoy's router retries: which outcomes are retried and how long to wait.
//!
//! Follows `retry_state_impl.cc` and `backoff_strategy.cc` of Envoy 1.40.
//! The retry circuit breaker (`max_retries` or a retry budget) is counted by
//! `circuit_breaker`; the request lifecycle that calls these functions is
//! in `sim`.

use crate::gateway::{RetryOn, RetryPolicy};
use crate::rng::{self, Stream};
use crate::time::SimDuration;

/// How one upstream attempt ended, as the router sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Response headers arrived with this status. `ratelimited` is true
    /// when they carry `x-envoy-ratelimited`.
    Response { status: u16, ratelimited: bool },
    /// The connection could not be opened (refused or timed out).
    ConnectFailure,
    /// The upstream reset the stream before responding.
    Reset,
    /// The per-try timeout fired.
    PerTryTimeout,
}

/// Whether `outcome` is retriable under `policy`, before counting
/// remaining retries or the retry circuit breaker.
pub fn is_retriable(policy: &RetryPolicy, outcome: AttemptOutcome) -> bool {
    let on: &RetryOn = &policy.retry_on;
    match outcome {
        AttemptOutcome::Response {
            status,
            ratelimited: true,
        } => {
            // A rate-limited response is retried only under
            // `envoy-ratelimited`; no other condition applies to it.
            let _ = status;
            on.envoy_ratelimited
        }
        AttemptOutcome::Response { status, .. } => {
            (on.server_error_5xx && (500..=599).contains(&status))
                || (on.gateway_error && matches!(status, 502..=504))
                || (on.retriable_4xx && status == 409)
                || (on.retriable_status_codes && policy.retriable_status_codes.contains(&status))
        }
        // Nothing was sent upstream yet, so `reset-before-request` applies.
        AttemptOutcome::ConnectFailure => {
            on.connect_failure
                || on.reset_before_request
                || on.reset
                || on.server_error_5xx
                || on.gateway_error
        }
        AttemptOutcome::Reset | AttemptOutcome::PerTryTimeout => {
            on.reset || on.server_error_5xx || on.gateway_error
        }
    }
}

/// Envoy's jittered exponential back-off: each wait is uniform in
/// `[0, interval)` milliseconds, the interval starting at the base and
/// doubling while below half the maximum, then held at the maximum.
#[derive(Clone, Debug)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    next_interval_ms: u64,
}

impl Backoff {
    pub fn new(base: SimDuration, max: SimDuration) -> Backoff {
        let base_ms = (base.as_nanos() / 1_000_000).max(1);
        let max_ms = (max.as_nanos() / 1_000_000).max(base_ms);
        Backoff {
            base_ms,
            max_ms,
            next_interval_ms: base_ms,
        }
    }

    pub fn for_policy(policy: &RetryPolicy) -> Backoff {
        Backoff::new(policy.base_interval, policy.max_interval)
    }

    /// The next wait in whole milliseconds.
    pub fn next_ms(&mut self, rng: &mut Stream) -> u64 {
        self.next_with(rng::below(rng, u64::MAX))
    }

    /// The next wait given a raw random draw (Envoy takes it modulo the
    /// interval); used by tests that replay Envoy's vectors.
    pub fn next_with(&mut self, random: u64) -> u64 {
        let interval = self.next_interval_ms;
        self.next_interval_ms = if interval < self.max_ms / 2 {
            interval * 2
        } else {
            self.max_ms
        };
        random % interval
    }

    pub fn reset(&mut self) {
        self.next_interval_ms = self.base_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(on: RetryOn, codes: Vec<u16>) -> RetryPolicy {
        RetryPolicy {
            num_retries: 3,
            retry_on: on,
            retriable_status_codes: codes,
            per_try_timeout: None,
            base_interval: SimDuration::from_millis(25),
            max_interval: SimDuration::from_millis(250),
        }
    }

    #[test]
    fn backoff_matches_envoy_vectors() {
        let mut backoff = Backoff::new(SimDuration::from_millis(5), SimDuration::from_millis(100));
        let waits: Vec<u64> = (0..7).map(|_| backoff.next_with(9999)).collect();
        assert_eq!(waits, [4, 9, 19, 39, 79, 99, 99]);
        let mut small = Backoff::new(SimDuration::from_millis(25), SimDuration::from_millis(30));
        assert_eq!(small.next_with(27), 2);
        assert_eq!(small.next_with(27), 27);
        small.reset();
        assert_eq!(small.next_with(27), 2);
    }

    #[test]
    fn conditions_select_statuses() {
        let five_xx = policy(
            RetryOn {
                server_error_5xx: true,
                ..RetryOn::default()
            },
            vec![],
        );
        let response = |status| AttemptOutcome::Response {
            status,
            ratelimited: false,
        };
        assert!(is_retriable(&five_xx, response(500)));
        assert!(!is_retriable(&five_xx, response(429)));
        assert!(is_retriable(&five_xx, AttemptOutcome::PerTryTimeout));

        let codes = policy(
            RetryOn {
                retriable_status_codes: true,
                ..RetryOn::default()
            },
            vec![503],
        );
        assert!(is_retriable(&codes, response(503)));
        assert!(!is_retriable(&codes, response(500)));
        assert!(!is_retriable(&codes, AttemptOutcome::Reset));

        let before_request = policy(
            RetryOn {
                reset_before_request: true,
                ..RetryOn::default()
            },
            vec![],
        );
        assert!(is_retriable(
            &before_request,
            AttemptOutcome::ConnectFailure
        ));
        assert!(!is_retriable(&before_request, AttemptOutcome::Reset));
        assert!(!is_retriable(
            &before_request,
            AttemptOutcome::PerTryTimeout
        ));

        let four_xx = policy(
            RetryOn {
                retriable_4xx: true,
                ..RetryOn::default()
            },
            vec![],
        );
        assert!(is_retriable(&four_xx, response(409)));
        assert!(!is_retriable(&four_xx, response(429)));
    }

    #[test]
    fn ratelimited_responses_need_their_own_condition() {
        let everything = policy(
            RetryOn {
                server_error_5xx: true,
                retriable_4xx: true,
                retriable_status_codes: true,
                ..RetryOn::default()
            },
            vec![429],
        );
        let limited = AttemptOutcome::Response {
            status: 429,
            ratelimited: true,
        };
        assert!(!is_retriable(&everything, limited));
    }
}
