//! Timers that all run for one fixed duration, such as the route timeout of
//! one route. They fire in the order they were set, so a FIFO list with one
//! queue event for its head replaces one queue event per timer: the queue
//! stays small, and a timer whose request already finished costs a list
//! entry instead of a heap operation.

use std::collections::VecDeque;

use crate::time::SimTime;

#[derive(Debug)]
pub(crate) struct FifoTimers<T> {
    entries: VecDeque<(SimTime, T)>,
    /// An event for the head of the list is in the queue.
    armed: bool,
}

impl<T> Default for FifoTimers<T> {
    fn default() -> Self {
        FifoTimers {
            entries: VecDeque::new(),
            armed: false,
        }
    }
}

impl<T: Copy> FifoTimers<T> {
    /// Adds a timer. Returns true when the caller must schedule the list's
    /// event at `deadline` (no event is pending for the list).
    pub fn push(&mut self, deadline: SimTime, item: T) -> bool {
        debug_assert!(
            self.entries
                .back()
                .is_none_or(|(last, _)| *last <= deadline),
            "timers of one list must be set in deadline order"
        );
        self.entries.push_back((deadline, item));
        let schedule = !self.armed;
        self.armed = true;
        schedule
    }

    /// Removes and returns the next timer due at or before `now`.
    pub fn pop_due(&mut self, now: SimTime) -> Option<T> {
        match self.entries.front() {
            Some((deadline, _)) if *deadline <= now => {
                self.entries.pop_front().map(|(_, item)| item)
            }
            _ => None,
        }
    }

    /// After the due timers were taken: the deadline to schedule the list's
    /// next event at, or `None` when the list is empty (and disarmed).
    /// Leading timers for which `pending` returns false (their request
    /// already ended) are dropped first, so they never cost a queue event.
    pub fn rearm(&mut self, mut pending: impl FnMut(T) -> bool) -> Option<SimTime> {
        while let Some(&(_, item)) = self.entries.front() {
            if pending(item) {
                break;
            }
            self.entries.pop_front();
        }
        match self.entries.front() {
            Some((deadline, _)) => Some(*deadline),
            None => {
                self.armed = false;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_order_with_one_event() {
        let mut timers = FifoTimers::default();
        assert!(timers.push(SimTime::from_nanos(10), 'a'));
        assert!(!timers.push(SimTime::from_nanos(10), 'b'));
        assert!(!timers.push(SimTime::from_nanos(30), 'c'));
        assert_eq!(timers.pop_due(SimTime::from_nanos(10)), Some('a'));
        assert_eq!(timers.pop_due(SimTime::from_nanos(10)), Some('b'));
        assert_eq!(timers.pop_due(SimTime::from_nanos(10)), None);
        assert_eq!(timers.rearm(|_| true), Some(SimTime::from_nanos(30)));
        assert_eq!(timers.pop_due(SimTime::from_nanos(30)), Some('c'));
        assert_eq!(timers.rearm(|_| true), None);
        assert!(timers.push(SimTime::from_nanos(40), 'd'));
    }

    #[test]
    fn rearm_skips_timers_no_longer_pending() {
        let mut timers = FifoTimers::default();
        timers.push(SimTime::from_nanos(10), 1);
        timers.push(SimTime::from_nanos(20), 2);
        timers.push(SimTime::from_nanos(30), 3);
        timers.push(SimTime::from_nanos(40), 4);
        assert_eq!(timers.pop_due(SimTime::from_nanos(10)), Some(1));
        // 2 ended early; 3 is still pending, and 4 after it is kept even
        // though it ended, to be dropped when it reaches the head.
        assert_eq!(
            timers.rearm(|item| item != 2 && item != 4),
            Some(SimTime::from_nanos(30))
        );
        assert_eq!(timers.pop_due(SimTime::from_nanos(30)), Some(3));
        assert_eq!(timers.rearm(|item| item != 4), None);
        assert!(timers.push(SimTime::from_nanos(50), 5));
    }
}
