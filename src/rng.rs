//! Named random streams derived from one seed.
//!
//! Every component that draws random numbers (each client, backend
//! endpoint, Envoy replica) owns a stream derived from `(seed, name,
//! index)`. Adding a client therefore leaves every other component's draws
//! unchanged.
//!
//! The generator is xoshiro256++ from `rand_xoshiro` 0.8, chosen for speed:
//! a draw is a few adds, shifts, rotates and xors on 32 bytes of state. The
//! Rand project allows changes to a generator's output only in a new minor
//! version (The Rust Rand Book, "Reproducibility"), so the `0.8`
//! requirement in Cargo.toml keeps the output fixed. Changing the
//! generator, the derivation below or the way draws become values
//! ([`unit_f64`], [`below`], [`exp1`]) changes every recorded result.

use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every component uses.
pub type Stream = Xoshiro256PlusPlus;

/// Derives independent streams from a run's seed.
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    seed: u64,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        Streams { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The stream for component `name` number `index`.
    ///
    /// xoshiro256++ must not start from an all-zero state, which would
    /// give zeros forever. The key's four words are splitmix64's mix of four
    /// distinct counter values, and the mix is a bijection on `u64`, so at
    /// most one of the words can be zero. `Xoshiro256PlusPlus::from_seed`
    /// (0.8.2) would also replace an all-zero seed with a fixed nonzero one.
    pub fn stream(&self, name: &str, index: u64) -> Stream {
        let mut state = self.seed
            ^ fnv1a(name.as_bytes()).rotate_left(17)
            ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut key = [0u8; 32];
        for chunk in key.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        Xoshiro256PlusPlus::from_seed(key)
    }
}

/// FNV-1a, 64-bit: a fixed, documented hash of a component name.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a::new();
    hasher.write(bytes);
    hasher.finish()
}

/// FNV-1a fed piece by piece, so a key written with `write!` hashes to
/// [`fnv1a`] of the formatted text without allocating it.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    pub fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.write(text.as_bytes());
        Ok(())
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` with 53 bits of precision.
pub fn unit_f64(rng: &mut Stream) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Draws a uniform integer in `[0, bound)`. `bound` must be positive, and a
/// bound of 1 (or 0 in release builds) returns 0 without drawing.
///
/// The method is Lemire's multiply-and-shift. The high word of
/// `draw * bound` is the result, and rejecting a few draws makes every
/// result equally likely.
pub fn below(rng: &mut Stream, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    if bound <= 1 {
        return 0;
    }
    let mut product = u128::from(rng.next_u64()) * u128::from(bound);
    // Each result has either floor(2^64 / bound) or one more draws that map
    // to it. Rejecting draws whose low word is below 2^64 mod bound leaves
    // exactly floor(2^64 / bound) for every result. That remainder is below
    // `bound`, so the division is needed only when the low word is too.
    if (product as u64) < bound {
        let threshold = bound.wrapping_neg() % bound;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(bound);
        }
    }
    (product >> 64) as u64
}

/// Draws from the exponential distribution with mean 1, by the ziggurat
/// method of `rand_distr::Exp1` (0.6). Most draws take one `next_u64`, a
/// table lookup and a multiplication. The rest take more values from the
/// stream and evaluate `exp` or `ln`, so the number of values taken varies
/// from draw to draw.
///
/// NOTE: `rand_distr` is built with `std_math`, so that `exp` and `ln` are
/// the platform's, which need not round alike on every platform.
#[inline]
pub fn exp1(rng: &mut Stream) -> f64 {
    rand_distr::Exp1.sample(rng)
}

/// True with probability `p` (clamped to `[0, 1]`).
pub fn chance(rng: &mut Stream, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        unit_f64(rng) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piecewise_hash_equals_whole_hash() {
        use std::fmt::Write;
        let mut hasher = Fnv1a::new();
        let (group, name) = (3, "worker");
        write!(hasher, "{group}/{name}").unwrap();
        assert_eq!(hasher.finish(), fnv1a(b"3/worker"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn streams_are_reproducible() {
        let streams = Streams::new(42);
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(streams.stream("client", 3), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(streams.stream("client", 3), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn names_and_indices_give_distinct_streams() {
        let streams = Streams::new(42);
        let first = streams.stream("client", 0).next_u64();
        assert_ne!(first, streams.stream("client", 1).next_u64());
        assert_ne!(first, streams.stream("backend", 0).next_u64());
        assert_ne!(first, Streams::new(43).stream("client", 0).next_u64());
    }

    #[test]
    fn stream_output_is_pinned() {
        // Changing the generator or the derivation changes every recorded
        // result; these values pin both. They were computed apart from this
        // crate, from the published splitmix64 and xoshiro256++ steps.
        let mut rng = Streams::new(1).stream("client", 0);
        assert_eq!(rng.next_u64(), 0xf9de_ce43_e570_bf4b);
        assert_eq!(rng.next_u64(), 0x286a_bdd5_7505_3d91);
        let unit = unit_f64(&mut Streams::new(1).stream("x", 0));
        assert!((0.0..1.0).contains(&unit));
    }

    #[test]
    fn below_power_of_two_takes_high_bits() {
        // 2^64 mod 2^k is 0, so nothing is rejected and the result is the
        // draw's top k bits.
        for bits in [1u32, 7, 40, 63] {
            let mut rng = Streams::new(9).stream("below", u64::from(bits));
            let mut reference = rng.clone();
            for _ in 0..1_000 {
                let expected = reference.next_u64() >> (64 - bits);
                assert_eq!(below(&mut rng, 1 << bits), expected, "bound 2^{bits}");
            }
        }
    }

    #[test]
    fn below_bound_one_draws_nothing() {
        let mut rng = Streams::new(9).stream("below", 1);
        let reference = rng.clone();
        for _ in 0..100 {
            assert_eq!(below(&mut rng, 1), 0);
        }
        assert_eq!(rng, reference, "a bound of 1 advanced the stream");
    }

    #[test]
    fn below_small_bound_is_uniform() {
        // Chi-squared test over 10 values: 27.88 is the 0.999 quantile with
        // 9 degrees of freedom.
        let mut rng = Streams::new(5).stream("below", 10);
        let draws = 100_000;
        let mut counts = [0u64; 10];
        for _ in 0..draws {
            counts[below(&mut rng, 10) as usize] += 1;
        }
        let expected = draws as f64 / 10.0;
        let chi_squared: f64 = counts
            .iter()
            .map(|&count| (count as f64 - expected).powi(2) / expected)
            .sum();
        assert!(
            chi_squared < 27.88,
            "chi-squared {chi_squared}, counts {counts:?}"
        );
    }

    #[test]
    fn below_rejects_the_surplus_draws() {
        // With bound 3 * 2^62 every result with `result % 3 == 0` has two
        // draws mapping to it and the others one. Without rejection those
        // results would come up half the time instead of a third.
        let bound = 3u64 << 62;
        let mut rng = Streams::new(5).stream("below", 3);
        let draws = 30_000;
        let mut multiples_of_three = 0;
        for _ in 0..draws {
            let value = below(&mut rng, bound);
            assert!(value < bound);
            if value.is_multiple_of(3) {
                multiples_of_three += 1;
            }
        }
        let fraction = multiples_of_three as f64 / draws as f64;
        assert!((fraction - 1.0 / 3.0).abs() < 0.02, "fraction {fraction}");
    }

    #[test]
    fn below_large_bounds_reach_the_top() {
        // A bound just above 2^63 rejects about half of all draws, and the
        // largest bounds almost none. The upper half of each range must
        // still come up about half the time.
        for bound in [(1u64 << 63) + 1, u64::MAX - 1, u64::MAX] {
            let mut rng = Streams::new(9).stream("below", bound);
            let draws = 10_000;
            let mut upper_half = 0;
            for _ in 0..draws {
                let value = below(&mut rng, bound);
                assert!(value < bound, "bound {bound}: {value}");
                if value >= bound / 2 {
                    upper_half += 1;
                }
            }
            let fraction = upper_half as f64 / draws as f64;
            assert!(
                (fraction - 0.5).abs() < 0.03,
                "bound {bound}: fraction {fraction}"
            );
        }
    }

    #[test]
    fn exp1_has_unit_mean_and_tail() {
        let mut rng = Streams::new(11).stream("exp1", 0);
        let draws = 200_000;
        let samples: Vec<f64> = (0..draws).map(|_| exp1(&mut rng)).collect();
        assert!(samples.iter().all(|&x| x >= 0.0), "negative draw");
        assert!(samples.iter().all(|x| x.is_finite()), "infinite draw");

        let mean = samples.iter().sum::<f64>() / draws as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws as f64;
        assert!((variance - 1.0).abs() < 0.03, "variance {variance}");

        // P(X > 3) = e^-3, about 0.0498.
        let tail = samples.iter().filter(|&&x| x > 3.0).count() as f64 / draws as f64;
        assert!((tail - (-3.0f64).exp()).abs() < 0.003, "tail {tail}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Streams::new(7).stream("t", 0);
        for bound in [1u64, 2, 3, 10, 1 << 40] {
            for _ in 0..100 {
                assert!(below(&mut rng, bound) < bound);
            }
        }
    }
}
