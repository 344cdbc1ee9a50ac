//! One flush as PostgreSQL binary arrays, one per column (the bytes `array_send` makes), for
//! `SELECT webhookfast_flush(...)` (migration 0010): the parameters travel in binary, so the
//! client does no work per alert and the server none to parse them.
//!
//! Why not COPY for every flush: COPY needs a staging table and a merge statement after it (three
//! round trips more); one call with array parameters is one round trip at any flush size.
//!
//! Array layout (integers big-endian): `ndim i32, has_nulls i32, element_oid u32`, then for a
//! non-empty array `size i32, lower_bound i32`, then per element `len i32` (-1: NULL) and its
//! bytes. Element bytes as in binary COPY ([`super::pgcopy`]): `timestamptz` is µs since
//! 2000-01-01, `jsonb` is the version byte 1 and the JSON text.

use std::collections::TryReserveError;

use super::collapse::Collapsed;
use super::pgcopy::CopyWriter;

pub const BOOL_OID: u32 = 16;
pub const INT8_OID: u32 = 20;
pub const INT4_OID: u32 = 23;
pub const TEXT_OID: u32 = 25;
pub const TIMESTAMPTZ_OID: u32 = 1184;
pub const JSONB_OID: u32 = 3802;

/// The columns, in the function's parameter order: groups (4), label sets (4), events (9),
/// alerts (9). Each entry is the element type of one array.
pub const COLUMN_TYPES: [u32; 26] = [
    // notification_groups: id, receiver, group_key, last_used
    INT8_OID,
    TEXT_OID,
    TEXT_OID,
    TIMESTAMPTZ_OID,
    // label_sets: fingerprint, labels, alertname, severity
    INT8_OID,
    JSONB_OID,
    TEXT_OID,
    TEXT_OID,
    // alert_events: fingerprint, starts_at, status, ends_at, received_at, group_id, source,
    // generator_url, annotations
    INT8_OID,
    TIMESTAMPTZ_OID,
    TEXT_OID,
    TIMESTAMPTZ_OID,
    TIMESTAMPTZ_OID,
    INT8_OID,
    TEXT_OID,
    TEXT_OID,
    JSONB_OID,
    // alerts: fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications,
    // group_id, status_from_ends
    INT8_OID,
    TIMESTAMPTZ_OID,
    TEXT_OID,
    TIMESTAMPTZ_OID,
    TIMESTAMPTZ_OID,
    TIMESTAMPTZ_OID,
    INT4_OID,
    INT8_OID,
    BOOL_OID,
];

/// The 26 arrays of one flush in one buffer: array `i` is `buf[ends[i-1]..ends[i]]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PgArrays {
    pub buf: Vec<u8>,
    pub ends: Vec<usize>,
}

impl PgArrays {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn array(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Starts one array: its header, for `len` elements (written next with [`CopyWriter`]'s field
/// methods, whose bytes are the same as an array element's).
fn array_header(buf: &mut Vec<u8>, element_oid: u32, len: usize, has_nulls: bool) {
    let ndim: i32 = if len == 0 { 0 } else { 1 };
    buf.extend_from_slice(&ndim.to_be_bytes());
    buf.extend_from_slice(&(has_nulls as i32).to_be_bytes());
    buf.extend_from_slice(&element_oid.to_be_bytes());
    if len > 0 {
        buf.extend_from_slice(&(len as i32).to_be_bytes());
        buf.extend_from_slice(&1i32.to_be_bytes());
    }
}

/// Bytes the arrays of `c` take: 20 per array header and 4 per element, plus the element bytes.
fn size(c: &Collapsed<'_>) -> usize {
    let groups: usize = c
        .groups
        .iter()
        .map(|r| 3 * 8 + r.receiver.len() + r.group_key.len())
        .sum();
    let label_sets: usize = c
        .label_sets
        .iter()
        .map(|r| 8 + 1 + r.labels_json.len() + r.alertname.len() + r.severity.len())
        .sum();
    let events: usize = c
        .events
        .iter()
        .map(|r| 5 * 8 + 8 + 12 + 1 + r.generator_url.len() + r.annotations_json.len())
        .sum();
    let alerts = c.alerts.len() * (6 * 8 + 8 + 4 + 1);
    let elements =
        4 * c.groups.len() + 4 * c.label_sets.len() + 9 * c.events.len() + 9 * c.alerts.len();
    26 * 20 + 4 * elements + groups + label_sets + events + alerts
}

/// Encode the collapsed rows of a flush as the 26 arrays of [`COLUMN_TYPES`] (cleared first).
pub fn write_arrays(out: &mut PgArrays, c: &Collapsed<'_>) -> Result<(), TryReserveError> {
    out.clear();
    out.buf.try_reserve(size(c))?;
    out.ends.try_reserve(COLUMN_TYPES.len())?;
    let mut column = 0;
    // One array per call: its header, then every row's element.
    let mut array =
        |out: &mut PgArrays, n: usize, nulls: bool, f: &dyn Fn(&mut CopyWriter<'_>, usize)| {
            array_header(&mut out.buf, COLUMN_TYPES[column], n, nulls);
            let mut w = CopyWriter::fields(&mut out.buf);
            for i in 0..n {
                f(&mut w, i);
            }
            out.ends.push(out.buf.len());
            column += 1;
        };
    let g = &c.groups;
    array(out, g.len(), false, &|w, i| w.int8(g[i].id));
    array(out, g.len(), false, &|w, i| w.text(g[i].receiver));
    array(out, g.len(), false, &|w, i| w.text(g[i].group_key));
    array(out, g.len(), false, &|w, i| {
        w.timestamptz(g[i].last_used_us)
    });
    let l = &c.label_sets;
    array(out, l.len(), false, &|w, i| w.int8(l[i].fingerprint));
    array(out, l.len(), false, &|w, i| w.jsonb(l[i].labels_json));
    array(out, l.len(), false, &|w, i| w.text(l[i].alertname));
    array(out, l.len(), false, &|w, i| w.text(l[i].severity));
    let e = &c.events;
    let e_nulls = e.iter().any(|r| r.ends_at_us.is_none());
    array(out, e.len(), false, &|w, i| w.int8(e[i].fingerprint));
    array(out, e.len(), false, &|w, i| {
        w.timestamptz(e[i].starts_at_us)
    });
    array(out, e.len(), false, &|w, i| w.text(e[i].status.as_str()));
    array(out, e.len(), e_nulls, &|w, i| {
        w.opt_timestamptz(e[i].ends_at_us)
    });
    array(out, e.len(), false, &|w, i| {
        w.timestamptz(e[i].received_at_us)
    });
    array(out, e.len(), false, &|w, i| w.int8(e[i].group_id));
    array(out, e.len(), false, &|w, i| w.text(e[i].source));
    array(out, e.len(), false, &|w, i| w.text(e[i].generator_url));
    array(out, e.len(), false, &|w, i| w.jsonb(e[i].annotations_json));
    let a = &c.alerts;
    let a_nulls = a.iter().any(|r| r.ends_at_us.is_none());
    array(out, a.len(), false, &|w, i| w.int8(a[i].fingerprint));
    array(out, a.len(), false, &|w, i| {
        w.timestamptz(a[i].starts_at_us)
    });
    array(out, a.len(), false, &|w, i| w.text(a[i].status.as_str()));
    array(out, a.len(), a_nulls, &|w, i| {
        w.opt_timestamptz(a[i].ends_at_us)
    });
    array(out, a.len(), false, &|w, i| {
        w.timestamptz(a[i].first_seen_us)
    });
    array(out, a.len(), false, &|w, i| {
        w.timestamptz(a[i].last_seen_us)
    });
    array(out, a.len(), false, &|w, i| w.int4(a[i].notifications));
    array(out, a.len(), false, &|w, i| w.int8(a[i].group_id));
    array(out, a.len(), false, &|w, i| w.bool(a[i].status_from_ends));
    debug_assert_eq!(out.ends.len(), COLUMN_TYPES.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::rfc3339::PG_EPOCH_OFFSET_US;
    use crate::rows::collapse::{AlertRow, EventRow, GroupRow, LabelSetRow};

    fn rows() -> Collapsed<'static> {
        Collapsed {
            groups: vec![GroupRow {
                id: 7,
                receiver: "rx",
                group_key: "",
                last_used_us: PG_EPOCH_OFFSET_US + 5,
            }],
            label_sets: vec![LabelSetRow {
                fingerprint: -2,
                labels_json: r#"{"a":"é"}"#,
                alertname: "A",
                severity: "",
            }],
            events: vec![EventRow {
                fingerprint: 1,
                starts_at_us: PG_EPOCH_OFFSET_US,
                status: Status::Resolved,
                ends_at_us: None,
                received_at_us: PG_EPOCH_OFFSET_US + 3,
                group_id: 7,
                source: "alertmanager",
                generator_url: "",
                annotations_json: "{}",
            }],
            alerts: vec![
                AlertRow {
                    fingerprint: 1,
                    starts_at_us: PG_EPOCH_OFFSET_US + 1,
                    status: Status::Firing,
                    ends_at_us: Some(PG_EPOCH_OFFSET_US - 1),
                    first_seen_us: PG_EPOCH_OFFSET_US,
                    last_seen_us: PG_EPOCH_OFFSET_US,
                    notifications: 3,
                    group_id: 7,
                    status_from_ends: true,
                };
                2
            ],
        }
    }

    fn header(oid: u32, len: i32, nulls: bool) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&1i32.to_be_bytes());
        h.extend_from_slice(&(nulls as i32).to_be_bytes());
        h.extend_from_slice(&oid.to_be_bytes());
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&1i32.to_be_bytes());
        h
    }

    #[test]
    fn every_column_in_parameter_order() {
        let mut out = PgArrays::default();
        write_arrays(&mut out, &rows()).unwrap();
        assert_eq!(out.len(), 26);
        let mut want = header(INT8_OID, 1, false);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(out.array(0), want);
        let mut want = header(TEXT_OID, 1, false);
        want.extend_from_slice(&[0, 0, 0, 0]); // empty text, not NULL
        assert_eq!(out.array(2), want);
        let mut want = header(JSONB_OID, 1, false);
        let json = r#"{"a":"é"}"#.as_bytes();
        want.extend_from_slice(&((json.len() + 1) as i32).to_be_bytes());
        want.push(1);
        want.extend_from_slice(json);
        assert_eq!(out.array(5), want);
        // events.ends_at: one NULL, flagged in the header
        let mut want = header(TIMESTAMPTZ_OID, 1, true);
        want.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(out.array(11), want);
        let mut want = header(TEXT_OID, 1, false);
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(b"resolved");
        assert_eq!(out.array(10), want);
        // alerts.ends_at: µs before 2000 are negative
        let mut want = header(TIMESTAMPTZ_OID, 2, false);
        for _ in 0..2 {
            want.extend_from_slice(&[0, 0, 0, 8]);
            want.extend_from_slice(&(-1i64).to_be_bytes());
        }
        assert_eq!(out.array(20), want);
        let mut want = header(INT4_OID, 2, false);
        for _ in 0..2 {
            want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 3]);
        }
        assert_eq!(out.array(23), want);
        let mut want = header(BOOL_OID, 2, false);
        for _ in 0..2 {
            want.extend_from_slice(&[0, 0, 0, 1, 1]);
        }
        assert_eq!(out.array(25), want);
        assert!(
            out.buf.len() <= size(&rows()),
            "the reservation covers the arrays"
        );
    }

    #[test]
    fn empty_flush_is_empty_arrays() {
        let mut out = PgArrays::default();
        write_arrays(&mut out, &rows()).unwrap();
        write_arrays(&mut out, &Collapsed::default()).unwrap();
        assert_eq!(out.len(), 26);
        for (i, oid) in COLUMN_TYPES.iter().enumerate() {
            let mut want = vec![0, 0, 0, 0, 0, 0, 0, 0];
            want.extend_from_slice(&oid.to_be_bytes());
            assert_eq!(out.array(i), want);
        }
    }
}
