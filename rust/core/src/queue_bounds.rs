//! The ingest queue's bounds: the alerts and bytes of decoded batches that wait for or ride in a
//! flush, and what a new body may decode into.
//!
//! Counted here, not in Python: byte counts pass 256 at the first request, and every step of a
//! Python `int` past 256 is a new object, five per request (benches/test_allocations.py).

use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub alerts: u64,
    pub bytes: u64,
}

/// Shared by reference (the Python class is frozen): a mutex makes each check-and-add one step
/// even for a caller on another thread, and costs nothing the event loop notices uncontended.
#[derive(Debug)]
pub struct QueueBounds {
    pub max_alerts: u64,
    pub max_bytes: u64,
    queued: Mutex<Queued>,
}

impl QueueBounds {
    pub fn new(max_alerts: u64, max_bytes: u64) -> Self {
        Self {
            max_alerts,
            max_bytes,
            queued: Mutex::new(Queued::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.queued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn queued(&self) -> Queued {
        *self.lock()
    }

    /// Counts a batch in if it fits under both bounds, or if the queue is empty: the first batch
    /// always enters, whatever its size (its decoding was bounded by [`Self::decode_budget`]).
    pub fn admit(&self, alerts: u64, bytes: u64) -> bool {
        let mut q = self.lock();
        let fits = q
            .alerts
            .checked_add(alerts)
            .is_some_and(|a| a <= self.max_alerts)
            && q.bytes
                .checked_add(bytes)
                .is_some_and(|b| b <= self.max_bytes);
        if !fits && q.alerts > 0 {
            return false;
        }
        q.alerts = q.alerts.saturating_add(alerts);
        q.bytes = q.bytes.saturating_add(bytes);
        true
    }

    /// Counts a batch out (committed, refused, spooled or given up).
    pub fn release(&self, alerts: u64, bytes: u64) {
        let mut q = self.lock();
        debug_assert!(
            q.alerts >= alerts && q.bytes >= bytes,
            "released more than queued"
        );
        q.alerts = q.alerts.saturating_sub(alerts);
        q.bytes = q.bytes.saturating_sub(bytes);
    }

    /// Bytes a new batch may still hold, None while the queue is empty.
    pub fn room(&self) -> Option<u64> {
        let q = self.lock();
        (q.alerts > 0).then(|| self.max_bytes.saturating_sub(q.bytes))
    }

    /// What a new body may decode into: `lone` while the queue is empty (a batch alone always
    /// enters), else the room left and never less than `floor` (what a batch of no alerts holds:
    /// such a request never reaches the queue, so the room must not refuse it).
    pub fn decode_budget(&self, floor: u64, lone: u64) -> u64 {
        match self.room() {
            None => lone,
            Some(room) => room.max(floor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_batch_enters_whatever_its_size() {
        let b = QueueBounds::new(10, 100);
        assert!(b.admit(50, 5_000));
        assert_eq!(
            b.queued(),
            Queued {
                alerts: 50,
                bytes: 5_000
            }
        );
        // The next one does not, even a small one, until the first leaves.
        assert!(!b.admit(1, 1));
        b.release(50, 5_000);
        assert_eq!(b.queued(), Queued::default());
        assert!(b.admit(1, 1));
    }

    #[test]
    fn both_bounds_apply_and_a_refusal_counts_nothing() {
        let b = QueueBounds::new(10, 100);
        assert!(b.admit(4, 40));
        assert!(b.admit(6, 60)); // exactly at both bounds
        assert!(!b.admit(1, 0)); // alerts over
        b.release(6, 60);
        assert!(!b.admit(1, 61)); // bytes over
        assert!(b.admit(6, 60));
        assert_eq!(
            b.queued(),
            Queued {
                alerts: 10,
                bytes: 100
            }
        );
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let b = QueueBounds::new(u64::MAX, u64::MAX);
        assert!(b.admit(1, u64::MAX));
        assert!(!b.admit(1, 1)); // would wrap to 0 and pass
        assert_eq!(b.room(), Some(0));
    }

    #[test]
    fn the_decode_budget_follows_the_room() {
        let b = QueueBounds::new(1_000, 100_000);
        assert_eq!(b.room(), None);
        assert_eq!(b.decode_budget(16_384, 3_000_000), 3_000_000);
        assert!(b.admit(1, 20_000));
        assert_eq!(b.room(), Some(80_000));
        assert_eq!(b.decode_budget(16_384, 3_000_000), 80_000);
        assert!(b.admit(1, 75_000));
        assert_eq!(b.room(), Some(5_000));
        assert_eq!(b.decode_budget(16_384, 3_000_000), 16_384);
        assert!(!b.admit(1, 16_000));
    }

    #[test]
    fn counts_stay_exact_across_threads() {
        let b = std::sync::Arc::new(QueueBounds::new(u64::MAX, u64::MAX));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        assert!(b.admit(2, 300));
                        b.release(1, 100);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            b.queued(),
            Queued {
                alerts: 40_000,
                bytes: 8_000_000
            }
        );
    }
}
