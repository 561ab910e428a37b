//! A radix heap: a min-priority queue for keys that never go below the
//! last key popped, which is true of the clock of a discrete-event
//! simulation.
//!
//! The key is `(time, seq)` read as one 128-bit integer. Bucket `b`
//! contains the entries whose key first differs from the last key popped
//! at bit `b`, so every key in a lower bucket is smaller than every key in
//! a higher one. A pop takes the minimum of the lowest non-empty bucket and
//! moves the rest of that bucket to lower buckets, relative to the new last
//! key. Entries only ever move down, so each moves at most 127 times. On
//! the benchmark model an entry moves less than once on average, and a pop
//! compares no keys when its bucket contains one entry.

use crate::time::SimTime;

/// An entry: the ordering key and the value stored with it.
pub(super) struct Entry<T> {
    pub time: SimTime,
    pub seq: u64,
    pub value: T,
}

impl<T> Entry<T> {
    fn key(&self) -> u128 {
        (u128::from(self.time.as_nanos()) << 64) | u128::from(self.seq)
    }
}

pub(super) struct RadixHeap<T> {
    buckets: [Vec<Entry<T>>; u128::BITS as usize],
    /// Bit `b % 64` of word `b / 64` is set when bucket `b` is not empty.
    /// Buckets 0 to 63 contain keys that differ from the last key popped
    /// only in `seq`, so word 0 is not zero exactly when an entry is due at
    /// the time of that key.
    occupied: [u64; 2],
    /// The last key popped, or zero before the first pop. Every key pushed
    /// must be greater.
    last: u128,
    len: usize,
}

impl<T> RadixHeap<T> {
    pub fn new() -> Self {
        RadixHeap {
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: [0; 2],
            last: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `entry`, whose key must be greater than the last key popped.
    pub fn push(&mut self, entry: Entry<T>) {
        debug_assert!(entry.key() > self.last, "key below the last key popped");
        self.insert(entry);
        self.len += 1;
    }

    /// Returns whether an entry has the same time as the last key popped
    /// (time zero before the first pop).
    pub fn has_entry_at_last_time(&self) -> bool {
        self.occupied[0] != 0
    }

    /// Returns the time of the smallest key.
    pub fn peek_time(&self) -> Option<SimTime> {
        let bucket = &self.buckets[self.lowest_occupied()?];
        bucket.iter().map(|entry| entry.time).min()
    }

    /// Removes the entry with the smallest key if its time is at or before
    /// `limit`.
    pub fn pop_at_or_before(&mut self, limit: SimTime) -> Option<Entry<T>> {
        let index = self.lowest_occupied()?;
        let bucket = &mut self.buckets[index];
        if bucket.len() == 1 {
            if bucket[0].time > limit {
                return None;
            }
            let min = bucket.pop()?;
            self.remove_lowest(index, min.key());
            return Some(min);
        }
        let min_key = bucket.iter().map(Entry::key).min()?;
        if (min_key >> 64) as u64 > limit.as_nanos() {
            return None;
        }
        self.remove_lowest(index, min_key);
        // The rest of the bucket shares its bits above `index` with the new
        // last key and differs from it below, so it moves to lower buckets.
        let mut min = None;
        while let Some(entry) = self.buckets[index].pop() {
            if entry.key() == min_key {
                min = Some(entry);
            } else {
                self.insert(entry);
            }
        }
        min
    }

    /// Updates the occupancy, length and last key for popping `key` from
    /// bucket `index`, the lowest non-empty one. The caller empties it.
    fn remove_lowest(&mut self, index: usize, key: u128) {
        let word = &mut self.occupied[index / 64];
        // Clears the lowest set bit, which is the one for `index`.
        *word &= *word - 1;
        self.len -= 1;
        self.last = key;
    }

    fn lowest_occupied(&self) -> Option<usize> {
        match self.occupied {
            [0, 0] => None,
            [0, high] => Some(64 + high.trailing_zeros() as usize),
            [low, _] => Some(low.trailing_zeros() as usize),
        }
    }

    /// Puts `entry` in its bucket without counting it.
    fn insert(&mut self, entry: Entry<T>) {
        let index = (u128::BITS - 1 - (entry.key() ^ self.last).leading_zeros()) as usize;
        self.buckets[index].push(entry);
        self.occupied[index / 64] |= 1 << (index % 64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::rng::{Streams, below};

    fn pop(heap: &mut RadixHeap<u64>) -> Option<Entry<u64>> {
        heap.pop_at_or_before(SimTime::MAX)
    }

    fn entry(time: u64, seq: u64) -> Entry<u64> {
        Entry {
            time: SimTime::from_nanos(time),
            seq,
            value: seq,
        }
    }

    #[test]
    fn equal_times_pop_by_seq() {
        let mut heap = RadixHeap::new();
        for (time, seq) in [(7, 1), (3, 2), (7, 3), (3, 4), (7, 5)] {
            heap.push(entry(time, seq));
        }
        let order: Vec<u64> = std::iter::from_fn(|| pop(&mut heap).map(|e| e.value)).collect();
        assert_eq!(order, [2, 4, 1, 3, 5]);
        assert!(heap.is_empty());
    }

    #[test]
    fn entries_at_last_time_are_reported() {
        let mut heap = RadixHeap::new();
        heap.push(entry(5, 1));
        heap.push(entry(5, 2));
        heap.push(entry(9, 3));
        assert!(!heap.has_entry_at_last_time());
        assert_eq!(pop(&mut heap).map(|e| e.seq), Some(1));
        assert!(heap.has_entry_at_last_time());
        assert_eq!(pop(&mut heap).map(|e| e.seq), Some(2));
        assert!(!heap.has_entry_at_last_time());
        assert_eq!(heap.peek_time(), Some(SimTime::from_nanos(9)));
    }

    #[test]
    fn extreme_times_keep_order() {
        let mut heap = RadixHeap::new();
        heap.push(entry(u64::MAX, u64::MAX));
        heap.push(entry(u64::MAX, 1));
        heap.push(entry(1, 2));
        let order: Vec<u64> = std::iter::from_fn(|| pop(&mut heap).map(|e| e.seq)).collect();
        assert_eq!(order, [2, 1, u64::MAX]);
    }

    /// Random pushes and pops, checked against a `BTreeMap` of `(time,
    /// seq)`. Delays span several powers of two and include zero, so
    /// entries land in low and high buckets and share times. Half the pops
    /// take a limit up to about 1 ms after the last time popped.
    #[test]
    fn random_operations_match_btree_map() {
        for seed in 0..20 {
            let mut rng = Streams::new(seed).stream("radix heap", 0);
            let mut heap = RadixHeap::new();
            let mut reference = BTreeMap::new();
            let mut now = 0u64;
            let mut seq = 1u64;
            for _ in 0..5_000 {
                if below(&mut rng, 3) < 2 {
                    let bits = below(&mut rng, 40);
                    let delay = below(&mut rng, 1 << bits);
                    heap.push(entry(now + delay, seq));
                    reference.insert((now + delay, seq), seq);
                    seq += 1;
                } else {
                    let limit = match below(&mut rng, 2) {
                        0 => u64::MAX,
                        _ => now + below(&mut rng, 1 << 20),
                    };
                    let expected = match reference.first_key_value() {
                        Some((&(time, _), _)) if time <= limit => reference.pop_first(),
                        _ => None,
                    };
                    let popped = heap.pop_at_or_before(SimTime::from_nanos(limit));
                    assert_eq!(
                        popped.as_ref().map(|e| (e.time.as_nanos(), e.seq)),
                        expected.map(|(key, _)| key),
                        "seed {seed}"
                    );
                    if let Some(popped) = popped {
                        now = popped.time.as_nanos();
                    }
                }
                assert_eq!(heap.len(), reference.len(), "seed {seed}");
                let first_time = reference.keys().next().map(|&(time, _)| time);
                assert_eq!(
                    heap.peek_time().map(SimTime::as_nanos),
                    first_time,
                    "seed {seed}"
                );
                assert_eq!(
                    heap.has_entry_at_last_time(),
                    first_time == Some(now),
                    "seed {seed}"
                );
            }
        }
    }
}
