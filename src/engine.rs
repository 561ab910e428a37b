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

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::time::{SimDuration, SimTime};

/// A heap entry: the ordering key and where the event is stored. Events
/// themselves stay in a slab, so the heap moves only these 24 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    time: SimTime,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so the max-heap pops the earliest `(time, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl Entry {
    /// `(time, seq)` as one integer, which compares without branches.
    fn key(&self) -> u128 {
        (u128::from(self.time.as_nanos()) << 64) | u128::from(self.seq)
    }
}

/// Pending events and the current simulated time.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry>,
    /// Events due at `now`, with their sequence numbers, in schedule
    /// order. Empty whenever the clock advances.
    due_now: VecDeque<(u64, E)>,
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
            heap: BinaryHeap::new(),
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
            self.due_now.push_back((seq, event));
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
        self.heap.push(Entry { time, seq, slot });
    }

    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.schedule_at(self.now + delay, event);
    }

    /// Removes the earliest event and advances the clock to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if let Some(&(seq, _)) = self.due_now.front() {
            let heap_first = self
                .heap
                .peek()
                .is_some_and(|entry| (entry.time, entry.seq) < (self.now, seq));
            if !heap_first {
                self.popped += 1;
                return self.due_now.pop_front().map(|(_, event)| (self.now, event));
            }
        }
        let entry = self.heap.pop()?;
        debug_assert!(entry.time >= self.now, "simulated time went backwards");
        self.now = entry.time;
        self.popped += 1;
        let event = self.events[entry.slot as usize].take()?;
        self.free.push(entry.slot);
        Some((entry.time, event))
    }

    /// The time of the earliest pending event.
    pub fn peek_time(&self) -> Option<SimTime> {
        if self.due_now.is_empty() {
            self.heap.peek().map(|entry| entry.time)
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
    use super::*;

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
}
