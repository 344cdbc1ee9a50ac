//! The alertname of each fingerprint, remembered across statistics requests.
//!
//! Why: time to resolve groups the resolved instances of a window by alertname, and `alerts` holds
//! only the fingerprint. Joining `label_sets` for every instance was a third of the statistics'
//! database time (hashing every label set, then a text column per instance). A fingerprint is the
//! hash of its labels, so its alertname never changes: it can be looked up once and kept. Only
//! the fingerprints not seen before are fetched, usually none.
//!
//! Bounded: past `capacity` names no new name is kept (a request then fetches the names it lacks
//! each time), so a store with millions of label sets costs at most `capacity` entries of memory.
//! Nothing is ever removed: a request that found a name known may rely on it after an `await`,
//! while other requests add theirs.

use foldhash::{HashMap, HashMapExt};

#[derive(Debug)]
pub struct AlertNames {
    names: HashMap<i64, Box<str>>,
    capacity: usize,
}

impl AlertNames {
    pub fn new(capacity: usize) -> Self {
        Self {
            names: HashMap::new(),
            capacity,
        }
    }

    pub fn get(&self, fingerprint: i64) -> Option<&str> {
        self.names.get(&fingerprint).map(|n| &**n)
    }

    /// The distinct fingerprints of `fingerprints` without a known alertname, in ascending order.
    pub fn missing(&self, fingerprints: &[i64]) -> Vec<i64> {
        let mut out: Vec<i64> = fingerprints
            .iter()
            .copied()
            .filter(|fp| !self.names.contains_key(fp))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Keeps a name unless `capacity` names are kept already.
    pub fn insert(&mut self, fingerprint: i64, alertname: &str) {
        if self.names.len() < self.capacity {
            self.names.insert(fingerprint, alertname.into());
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_reports_what_is_missing() {
        let mut names = AlertNames::new(10);
        assert_eq!(names.missing(&[3, -1, 3, 7, -1]), [-1, 3, 7]);
        names.insert(3, "HighCPU");
        names.insert(-1, "");
        assert_eq!(names.get(3), Some("HighCPU"));
        assert_eq!(names.get(-1), Some(""));
        assert_eq!(names.get(7), None);
        assert_eq!(names.missing(&[3, -1, 3, 7, -1]), [7]);
        assert!(names.missing(&[]).is_empty());
    }

    #[test]
    fn keeps_no_more_than_its_capacity_and_forgets_nothing() {
        let mut names = AlertNames::new(2);
        names.insert(1, "a");
        names.insert(2, "b");
        names.insert(3, "c");
        assert_eq!(names.len(), 2);
        assert_eq!(
            (names.get(1), names.get(2), names.get(3)),
            (Some("a"), Some("b"), None)
        );
        assert_eq!(names.missing(&[1, 2, 3]), [3]);
        assert!(AlertNames::new(0).missing(&[5]) == [5]);
    }
}
