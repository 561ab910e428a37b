//! Counts per bucket of an HDR histogram, added to it in bulk.
//!
//! Recording one value in an `hdrhistogram::Histogram` (version 7.5) costs
//! about 130 instructions under callgrind (range checks, saturating counts,
//! minimum and maximum), which the busiest path of a run pays twice per
//! call. A
//! [`Tally`] finds the value's bucket with one shift and counts it there;
//! [`Tally::flush_into`] then records each bucket's count once. The
//! histogram ends with the counts, minimum and maximum it would have had
//! from recording every value, because every query of a histogram works on
//! whole buckets.

use hdrhistogram::Histogram;

/// Counts of values per bucket of one histogram layout, since the last
/// flush.
#[derive(Clone, Debug)]
pub(super) struct Tally {
    /// Bits kept below a value's leading one bit: values below
    /// `2^(precision + 1)` have a bucket each, and every power-of-two
    /// range above is split into `2^precision` equal buckets.
    precision: u32,
    /// `2^(precision + 1) - 1`, the largest value with a bucket of its own.
    exact: u64,
    /// Count per bucket index; grows to the largest index seen.
    counts: Vec<u64>,
    /// Indexes whose count is not zero, in the order first counted.
    touched: Vec<u32>,
}

impl Tally {
    /// Creates a tally with the bucket layout of `histogram`, which must have a
    /// lowest discernible value of 1.
    pub(super) fn for_histogram(histogram: &Histogram<u64>) -> Tally {
        // Above its exact range an HDR histogram splits [2^32, 2^33) into
        // buckets of width 2^(32 - precision).
        let width = histogram.equivalent_range(1 << 32);
        let precision = 32 - width.trailing_zeros();
        debug_assert_eq!(
            histogram.equivalent_range((1 << (precision + 1)) - 1),
            1,
            "the histogram must count small values exactly"
        );
        Tally {
            precision,
            exact: (1 << (precision + 1)) - 1,
            counts: Vec::new(),
            touched: Vec::new(),
        }
    }

    fn index(&self, value: u64) -> usize {
        let shift = 63 - (value | self.exact).leading_zeros() - self.precision;
        ((shift as usize) << self.precision) + (value >> shift) as usize
    }

    /// Returns the lowest value of bucket `index`.
    fn lowest_value(&self, index: usize) -> u64 {
        let shift = (index >> self.precision).saturating_sub(1);
        ((index - (shift << self.precision)) as u64) << shift
    }

    #[inline]
    pub(super) fn record(&mut self, value: u64) {
        let index = self.index(value);
        match self.counts.get_mut(index) {
            Some(count) if *count > 0 => *count += 1,
            _ => self.record_first(index),
        }
    }

    /// Counts the first value of bucket `index` since the last flush.
    #[cold]
    fn record_first(&mut self, index: usize) {
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] = 1;
        self.touched.push(index as u32);
    }

    /// Records the counts in `histogram`, which must have this tally's
    /// layout and a range that contains every value counted, and starts
    /// again from zero.
    pub(super) fn flush_into(&mut self, histogram: &mut Histogram<u64>) {
        let mut touched = std::mem::take(&mut self.touched);
        for index in touched.drain(..) {
            let count = std::mem::take(&mut self.counts[index as usize]);
            // The caller keeps values within the histogram's range.
            let _ = histogram.record_n(self.lowest_value(index as usize), count);
        }
        self.touched = touched;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(significant_figures: u8) -> Histogram<u64> {
        Histogram::new_with_bounds(1, 3_600_000_000, significant_figures).unwrap()
    }

    #[test]
    fn buckets_match_the_histogram() {
        for figures in [2, 3] {
            let reference = histogram(figures);
            let tally = Tally::for_histogram(&reference);
            let mut value = 1u64;
            while value < 3_600_000_000 {
                for probe in [value - 1, value, value + 1] {
                    if probe == 0 {
                        continue;
                    }
                    let lowest = tally.lowest_value(tally.index(probe));
                    assert_eq!(lowest, reference.lowest_equivalent(probe), "{probe}");
                }
                value = value * 17 / 16 + 1;
            }
        }
    }

    #[test]
    fn flush_equals_recording_each_value() {
        let mut direct = histogram(3);
        let mut tallied = histogram(3);
        let mut tally = Tally::for_histogram(&tallied);
        let mut state = 7u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let value = 1 + (state >> 40) % 2_000_000;
            direct.record(value).unwrap();
            tally.record(value);
        }
        tally.flush_into(&mut tallied);
        assert!(tally.touched.is_empty());
        assert_eq!(tallied, direct);
        assert_eq!(tallied.min(), direct.min());
        assert_eq!(tallied.max(), direct.max());
        assert_eq!(tallied.mean(), direct.mean());
        assert_eq!(
            tallied.value_at_quantile(0.99),
            direct.value_at_quantile(0.99)
        );
    }
}
