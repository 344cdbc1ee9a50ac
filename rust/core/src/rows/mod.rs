//! Storage rows for one flush: [`RowEncoder`] collapses the batches ([`collapse`]) and encodes the
//! rows as PostgreSQL binary COPY streams ([`pgcopy`]) or plain tuples for SQLite and unnest arrays ([`tuples`]).

pub mod collapse;
pub mod pgarrays;
pub mod pgcopy;
pub mod tuples;

pub use collapse::{collapse, merge, AlertRow, Collapsed, EventRow, GroupRow, LabelSetRow, State};
pub use pgarrays::PgArrays;
pub use tuples::{AlertTuple, EventTuple, GroupTuple, LabelSetTuple, RowTuples};

use std::collections::TryReserveError;
use std::fmt;

use crate::model::Batch;

/// The rows of a flush did not fit in memory. Their buffers are sized from the request, so the
/// allocation is tried first and its failure is an error to answer, not an abort of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfMemory(pub TryReserveError);

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not enough memory for the rows of a flush: {}", self.0)
    }
}

impl std::error::Error for OutOfMemory {}

impl From<TryReserveError> for OutOfMemory {
    fn from(e: TryReserveError) -> Self {
        OutOfMemory(e)
    }
}

/// One flush as four complete binary COPY streams, with their row counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PgCopy {
    pub groups: Vec<u8>,
    pub label_sets: Vec<u8>,
    pub events: Vec<u8>,
    pub alerts: Vec<u8>,
    pub group_rows: usize,
    pub label_set_rows: usize,
    pub event_rows: usize,
    pub alert_rows: usize,
}

/// Turns the batches of one flush into storage rows. With `reuse_buffers` the COPY buffers keep
/// their capacity from one flush to the next; without, every flush gets fresh buffers.
#[derive(Debug, Default)]
pub struct RowEncoder {
    reuse_buffers: bool,
    out: PgCopy,
    arrays: PgArrays,
}

impl RowEncoder {
    pub fn new(reuse_buffers: bool) -> Self {
        RowEncoder {
            reuse_buffers,
            out: PgCopy::default(),
            arrays: PgArrays::default(),
        }
    }

    pub fn reuse_buffers(&self) -> bool {
        self.reuse_buffers
    }

    /// Encode `batches` as COPY streams; the result borrows the encoder's buffers.
    pub fn pg_copy(&mut self, batches: &[&Batch]) -> Result<&PgCopy, OutOfMemory> {
        if self.reuse_buffers {
            self.out.groups.clear();
            self.out.label_sets.clear();
            self.out.events.clear();
            self.out.alerts.clear();
        } else {
            self.out = PgCopy::default();
        }
        let c = collapse(batches);
        let written = pgcopy::write_groups(&mut self.out.groups, &c.groups)
            .and_then(|()| pgcopy::write_label_sets(&mut self.out.label_sets, &c.label_sets))
            .and_then(|()| pgcopy::write_events(&mut self.out.events, &c.events))
            .and_then(|()| pgcopy::write_alerts(&mut self.out.alerts, &c.alerts));
        if let Err(e) = written {
            // Half-written streams must not be reused as if complete.
            self.out = PgCopy::default();
            return Err(e.into());
        }
        self.out.group_rows = c.groups.len();
        self.out.label_set_rows = c.label_sets.len();
        self.out.event_rows = c.events.len();
        self.out.alert_rows = c.alerts.len();
        Ok(&self.out)
    }

    /// Encode `batches` as one binary array per column (`webhookfast_flush`'s parameters), with
    /// the label set, event and alert row counts; the arrays borrow the encoder's buffer.
    pub fn pg_arrays(
        &mut self,
        batches: &[&Batch],
    ) -> Result<(&PgArrays, [usize; 3]), OutOfMemory> {
        if !self.reuse_buffers {
            self.arrays = PgArrays::default();
        }
        let c = collapse(batches);
        if let Err(e) = pgarrays::write_arrays(&mut self.arrays, &c) {
            self.arrays = PgArrays::default();
            return Err(e.into());
        }
        Ok((
            &self.arrays,
            [c.label_sets.len(), c.events.len(), c.alerts.len()],
        ))
    }

    /// The same rows as tuples (SQLite inserts them; PostgreSQL sends small flushes as arrays).
    pub fn row_tuples<'a>(&self, batches: &[&'a Batch]) -> Result<RowTuples<'a>, OutOfMemory> {
        Ok(tuples::row_tuples(&collapse(batches))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn fixture_batch(name: &str) -> Batch {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/payloads")
            .join(name);
        crate::decode(
            &std::fs::read(p).unwrap(),
            &Limits::default(),
            1_800_000_000_000_000,
        )
        .unwrap()
    }

    #[test]
    fn reuse_keeps_capacity_and_output_is_identical() {
        let b = fixture_batch("firing_largest.json");
        let mut reuse = RowEncoder::new(true);
        let mut fresh = RowEncoder::new(false);
        let first = reuse.pg_copy(&[&b]).unwrap().clone();
        let cap = reuse.out.events.capacity();
        let ptr = reuse.out.events.as_ptr();
        let again = reuse.pg_copy(&[&b]).unwrap().clone();
        assert_eq!(first, again);
        assert_eq!(reuse.out.events.capacity(), cap);
        assert_eq!(reuse.out.events.as_ptr(), ptr);
        assert_eq!(fresh.pg_copy(&[&b]).unwrap(), &first);
        assert_eq!(
            (
                first.group_rows,
                first.label_set_rows,
                first.event_rows,
                first.alert_rows
            ),
            (1, 40, 40, 40)
        );
        // An empty flush still yields four valid (empty) streams.
        let empty = reuse.pg_copy(&[]).unwrap();
        assert_eq!(empty.alerts.len(), 21);
        assert_eq!(empty.groups.len(), 21);
        assert_eq!((empty.alert_rows, empty.group_rows), (0, 0));
    }

    #[test]
    fn row_tuples_match_collapse() {
        let b = fixture_batch("prometheus_firing_repeated_in_batch.json");
        let enc = RowEncoder::new(true);
        let rows = enc.row_tuples(&[&b, &b]).unwrap();
        let c = collapse(&[&b, &b]);
        assert_eq!(rows.label_sets.len(), c.label_sets.len());
        assert!(rows.events.len() < b.len());
        for (t, r) in rows.alerts.iter().zip(&c.alerts) {
            assert_eq!(t.0, r.fingerprint);
            assert_eq!(t.6, 2); // two batches
            assert_eq!(t.2, "resolved"); // endsAt has passed at received_at
            assert!(t.8); // derived from endsAt
        }
        assert_eq!(rows.events[0].6, "prometheus");
        assert_eq!(rows.events[0].4, 1_800_000_000_000_000);
    }

    #[test]
    fn rows_stay_proportional_to_the_body() {
        // The fuzz target's bound (rust/fuzz/fuzz_targets/rows.rs), on real payloads and on the
        // issue's example: one long receiver and group key with many tiny alerts.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads");
        let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.to_string_lossy().ends_with(".headers.json"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let tiny: Vec<String> = (0..2000)
            .map(|i| format!(r#"{{"status":"firing","labels":{{"i":"{i}"}},"startsAt":"2026-01-01T00:00:00Z"}}"#))
            .collect();
        bodies.push(
            format!(
                r#"{{"receiver":"{}","groupKey":"{}","alerts":[{}]}}"#,
                "r".repeat(200_000),
                "g".repeat(200_000),
                tiny.join(",")
            )
            .into_bytes(),
        );
        for body in bodies {
            let b = crate::decode(&body, &Limits::default(), 1_800_000_000_000_000).unwrap();
            let mut twin = b.clone();
            twin.received_at_us += 1;
            let mut enc = RowEncoder::new(true);
            let c = enc.pg_copy(&[&b, &twin]).unwrap();
            let total = c.groups.len() + c.label_sets.len() + c.events.len() + c.alerts.len();
            let bound = 4 * 21 + 3 * 256 * (b.len() + 1) + 4 * body.len();
            assert!(total <= bound, "{total} > {bound}");
            assert_eq!(c.group_rows, 1);
        }
    }
}
