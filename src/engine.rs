//! The event queue: a priority queue of events ordered by `(time, seq)`.
//!
//! `seq` increases by one for every event scheduled, so events due at the
//! same instant run in the order they were scheduled. That order is part of
//! the contract: it makes every run reproducible and is what the tests of
//! simultaneous arrivals rely on. The queue knows nothing of what events
//! mean; the simulation in `sim` defines them.
//!
//! Events due at the current instant, such as the hops a scenario gives no
//! latency, skip the heap and wait in a FIFO list. The list pops them in
//! exactly the `(time, seq)` order the heap would, at a fraction of the
//! cost. Heap entries due now that were scheduled earlier still run first.
//!
//! The heap is a radix heap, which relies on the clock never going back.
//! Events stay in a slab, so a heap entry is 24 bytes.

mod radix_heap;

use std::collections::VecDeque;

use crate::time::{SimDuration, SimTime};
use radix_heap::{Entry, RadixHeap};

/// Pending events and the current simulated time.
pub struct EventQueue<E> {
    /// Events due later than `now`, as slots in `events`.
    heap: RadixHeap<u32>,
    /// Events due at `now`, in schedule order. Empty whenever the clock
    /// advances.
    due_now: VecDeque<E>,
    events: Vec<Option<E>>,
    free: Vec<u32>,
    now: SimTime,
    next_seq: u64,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: RadixHeap::new(),
            due_now: VecDeque::new(),
            events: Vec::new(),
            free: Vec::new(),
            now: SimTime::ZERO,
            next_seq: 0,
            popped: 0,
        }
    }

    /// The time of the event being processed (or of the last one).
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `time`; a time in the past is moved to now, so
    /// time never goes backwards.
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if time <= self.now {
            self.due_now.push_back(event);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.events[slot as usize] = Some(event);
                slot
            }
            None => {
                self.events.push(Some(event));
                (self.events.len() - 1) as u32
            }
        };
        self.heap.push(Entry {
            time,
            seq,
            value: slot,
        });
    }

    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.schedule_at(self.now + delay, event);
    }

    /// Removes the earliest event and advances the clock to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.pop_at_or_before(SimTime::MAX)
    }

    /// Removes the earliest event if it is due at or before `limit`, and
    /// advances the clock to its time.
    pub fn pop_at_or_before(&mut self, limit: SimTime) -> Option<(SimTime, E)> {
        // A heap entry due now was scheduled before the clock reached now,
        // so it runs before every event in `due_now`. The heap's last key
        // popped is the one that set `now`.
        if !self.due_now.is_empty() && !self.heap.has_entry_at_last_time() {
            if self.now > limit {
                return None;
            }
            self.popped += 1;
            return self.due_now.pop_front().map(|event| (self.now, event));
        }
        let entry = self.heap.pop_at_or_before(limit)?;
        debug_assert!(entry.time >= self.now, "simulated time went backwards");
        self.now = entry.time;
        self.popped += 1;
        let event = self.events[entry.value as usize].take()?;
        self.free.push(entry.value);
        Some((entry.time, event))
    }

    /// The time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        if self.due_now.is_empty() {
            self.heap.peek_time()
        } else {
            Some(self.now)
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len() + self.due_now.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.due_now.is_empty()
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.popped
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::rng::{Streams, below};

    #[test]
    fn equal_times_pop_in_schedule_order() {
        let mut queue = EventQueue::new();
        queue.schedule_at(SimTime::from_nanos(5), "b");
        queue.schedule_at(SimTime::from_nanos(1), "a");
        queue.schedule_at(SimTime::from_nanos(5), "c");
        queue.schedule_at(SimTime::from_nanos(5), "d");
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }

    #[test]
    fn past_times_are_clamped_to_now() {
        let mut queue = EventQueue::new();
        queue.schedule_at(SimTime::from_nanos(10), 1);
        queue.pop();
        queue.schedule_at(SimTime::from_nanos(3), 2);
        assert_eq!(queue.pop(), Some((SimTime::from_nanos(10), 2)));
    }

    #[test]
    fn due_now_events_keep_heap_order() {
        let mut queue = EventQueue::new();
        queue.schedule_at(SimTime::from_nanos(5), "first at 5");
        queue.schedule_at(SimTime::from_nanos(5), "second at 5");
        queue.schedule_at(SimTime::from_nanos(9), "at 9");
        assert_eq!(queue.pop(), Some((SimTime::from_nanos(5), "first at 5")));
        // Scheduled at the current instant: after the heap's "second at 5".
        queue.schedule_at(SimTime::from_nanos(5), "now, later seq");
        queue.schedule_at(SimTime::from_nanos(2), "past, clamped");
        assert_eq!(queue.len(), 4);
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop().map(|(_, e)| e)).collect();
        assert_eq!(
            order,
            ["second at 5", "now, later seq", "past, clamped", "at 9"]
        );
        assert_eq!(queue.events_processed(), 5);
    }

    #[test]
    fn clock_advances_with_pops() {
        let mut queue = EventQueue::new();
        queue.schedule_in(SimDuration::from_millis(2), ());
        assert_eq!(queue.now(), SimTime::ZERO);
        queue.pop();
        assert_eq!(queue.now(), SimTime::from_nanos(2_000_000));
        assert_eq!(queue.events_processed(), 1);
    }

    /// Random schedules and pops, checked against a `BTreeMap` of `(time,
    /// seq)` in which a past time counts as now. About a third of the
    /// events are due now or earlier, so `due_now` and the heap interleave,
    /// and pops take limits before, at and after the next event.
    #[test]
    fn random_schedules_match_btree_map() {
        for seed in 0..20 {
            let mut rng = Streams::new(seed).stream("event queue", 0);
            let mut queue = EventQueue::new();
            let mut reference = BTreeMap::new();
            let mut seq = 0u64;
            for _ in 0..5_000 {
                if below(&mut rng, 3) < 2 {
                    let now = queue.now().as_nanos();
                    let time = match below(&mut rng, 3) {
                        0 => now.saturating_sub(below(&mut rng, 100)),
                        _ => {
                            let bits = below(&mut rng, 30);
                            now + below(&mut rng, 1 << bits)
                        }
                    };
                    queue.schedule_at(SimTime::from_nanos(time), seq);
                    reference.insert((time.max(now), seq), seq);
                    seq += 1;
                } else {
                    let now = queue.now().as_nanos();
                    let limit = match below(&mut rng, 3) {
                        0 => u64::MAX,
                        1 => now.saturating_sub(below(&mut rng, 100)),
                        _ => now + below(&mut rng, 1 << 20),
                    };
                    let expected = match reference.first_key_value() {
                        Some((&(time, _), _)) if time <= limit => reference
                            .pop_first()
                            .map(|((time, _), event)| (time, event)),
                        _ => None,
                    };
                    let popped = queue
                        .pop_at_or_before(SimTime::from_nanos(limit))
                        .map(|(time, event)| (time.as_nanos(), event));
                    assert_eq!(popped, expected, "seed {seed}");
                    if let Some((time, _)) = popped {
                        assert_eq!(queue.now().as_nanos(), time, "seed {seed}");
                    }
                }
                assert_eq!(queue.len(), reference.len(), "seed {seed}");
                assert_eq!(
                    queue.peek_time().map(SimTime::as_nanos),
                    reference.keys().next().map(|&(time, _)| time),
                    "seed {seed}"
                );
            }
            assert_eq!(queue.events_processed(), seq - queue.len() as u64);
        }
    }
}
