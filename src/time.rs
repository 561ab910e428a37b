//! Simulated time: an integer count of nanoseconds since the start of a run.
//!
//! Nothing in the simulation reads the wall clock; every instant and span is
//! one of these two types. Constructors are named after their unit and there
//! is no conversion from `f64`, so a rounding decision is always visible at
//! the call site.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> SimTime {
        SimTime(nanos)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start, for reporting and for rate arithmetic.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Time elapsed since `earlier`; zero when `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }

    pub fn saturating_add(self, span: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(span.0))
    }
}

/// 2^63 as a double: doubles below it convert to `i64` exactly.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    pub const fn from_nanos(nanos: u64) -> SimDuration {
        SimDuration(nanos)
    }

    pub const fn from_micros(micros: u64) -> SimDuration {
        SimDuration(micros.saturating_mul(1_000))
    }

    pub const fn from_millis(millis: u64) -> SimDuration {
        SimDuration(millis.saturating_mul(1_000_000))
    }

    pub const fn from_secs(secs: u64) -> SimDuration {
        SimDuration(secs.saturating_mul(1_000_000_000))
    }

    /// Rounds a non-negative number of seconds to the nearest nanosecond,
    /// saturating at the largest span; negative and NaN inputs give zero.
    pub fn from_secs_rounded(secs: f64) -> SimDuration {
        let nanos = secs * 1e9;
        // `f64::round` is a library call on x86-64 without SSE4.1, and
        // this runs for every drawn delay. Truncating and comparing the
        // exact remainder rounds halves up, as `round` does for positive
        // values.
        if nanos.is_nan() || nanos < 0.5 {
            SimDuration(0)
        } else if nanos >= u64::MAX as f64 {
            SimDuration(u64::MAX)
        } else if nanos < I64_LIMIT {
            // Signed conversions are one instruction each way on x86-64;
            // unsigned ones take several. Both are exact in this range.
            let whole = nanos as i64;
            SimDuration(whole as u64 + u64::from(nanos - whole as f64 >= 0.5))
        } else {
            let whole = nanos as u64;
            SimDuration(whole + u64::from(nanos - whole as f64 >= 0.5))
        }
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        // Through `i64` where it fits: the signed conversion is one
        // instruction on x86-64, the unsigned one several. Both give the
        // same value, so where this is inlined the compiler may still
        // choose the unsigned one.
        let nanos = match i64::try_from(self.0) {
            Ok(nanos) => nanos as f64,
            Err(_) => self.0 as f64,
        };
        nanos / 1e9
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn saturating_mul(self, factor: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(factor))
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;

    /// Saturates at [`SimTime::MAX`], which the engine treats as "never".
    fn add(self, span: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(span.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, span: SimDuration) {
        *self = *self + span;
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;

    /// Panics in debug builds when `earlier` is later: time never goes backwards.
    fn sub(self, earlier: SimTime) -> SimDuration {
        debug_assert!(earlier.0 <= self.0, "simulated time went backwards");
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl Add for SimDuration {
    type Output = SimDuration;

    fn add(self, other: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for SimDuration {
    /// Prints the span in the same notation the scenario format accepts,
    /// choosing the largest unit that keeps the value exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        const UNITS: [(u64, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if n == 0 {
            return write!(f, "0s");
        }
        for (size, unit) in UNITS {
            if n.is_multiple_of(size) {
                return write!(f, "{}{}", n / size, unit);
            }
        }
        unreachable!("every span is a whole number of nanoseconds")
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_display_picks_exact_unit() {
        assert_eq!(SimDuration::from_secs(120).to_string(), "2m");
        assert_eq!(SimDuration::from_millis(1500).to_string(), "1500ms");
        assert_eq!(SimDuration::ZERO.to_string(), "0s");
        assert_eq!(SimDuration::from_nanos(7).to_string(), "7ns");
    }

    #[test]
    fn rounded_seconds_saturate() {
        assert_eq!(SimDuration::from_secs_rounded(-1.0), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_rounded(f64::NAN), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_rounded(1e30), SimDuration::MAX);
        assert_eq!(
            SimDuration::from_secs_rounded(0.0125),
            SimDuration::from_micros(12_500)
        );
    }

    #[test]
    fn rounded_seconds_match_round() {
        let reference = |secs: f64| {
            let nanos = (secs * 1e9).round();
            if nanos.is_nan() || nanos <= 0.0 {
                SimDuration(0)
            } else if nanos >= u64::MAX as f64 {
                SimDuration(u64::MAX)
            } else {
                SimDuration(nanos as u64)
            }
        };
        let mut edges = vec![
            0.0,
            -0.0,
            0.5e-9,
            0.5_f64.next_down() / 1e9,
            1.5e-9,
            2.5e-9,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            9_007_199_254.740_993,
            18_446_744_073.709_55,
        ];
        // Halves and their neighbours at many magnitudes.
        for exponent in 0..64 {
            let nanos = (1u64 << exponent) as f64 + 0.5;
            for value in [nanos, nanos.next_down(), nanos.next_up()] {
                edges.push(value / 1e9);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            edges.push(f64::from_bits(state >> 2) % 1e4);
        }
        for secs in edges {
            assert_eq!(
                SimDuration::from_secs_rounded(secs),
                reference(secs),
                "{secs:e}"
            );
        }
    }

    #[test]
    fn adding_saturates_at_max() {
        assert_eq!(SimTime::MAX + SimDuration::from_secs(1), SimTime::MAX);
    }
}
