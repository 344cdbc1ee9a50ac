//! PostgreSQL binary COPY writer: header, tuples and trailer.
//!
//! Header: signature `PGCOPY\n\xff\r\n\0`, flags int32 0, header-extension length int32 0.
//! Tuple: int16 field count, then per field an int32 length and the bytes (-1 for NULL).
//! Trailer: int16 -1. Integers big-endian; `jsonb` = version byte 1 + JSON text; `timestamptz` =
//! int64 µs since 2000-01-01T00:00:00Z.

use std::collections::TryReserveError;

use super::collapse::{AlertRow, EventRow, GroupRow, LabelSetRow};
use crate::rfc3339::PG_EPOCH_OFFSET_US;

pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Appends one COPY stream to a byte buffer.
pub struct CopyWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> CopyWriter<'b> {
    /// Start a stream (writes the header).
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        CopyWriter { buf }
    }

    /// Append fields only, no stream header: a binary array's elements have the same form as
    /// COPY's fields (length, then bytes; -1 for NULL), see [`super::pgarrays`].
    pub fn fields(buf: &'b mut Vec<u8>) -> Self {
        CopyWriter { buf }
    }

    #[inline]
    pub fn tuple(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    #[inline]
    pub fn int8(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn int4(&mut self, v: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn text(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(v as u8);
    }

    #[inline]
    pub fn jsonb(&mut self, json: &str) {
        self.buf
            .extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(json.as_bytes());
    }

    /// `timestamptz` from µs since the Unix epoch.
    #[inline]
    pub fn timestamptz(&mut self, unix_us: i64) {
        self.int8(unix_us - PG_EPOCH_OFFSET_US);
    }

    #[inline]
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    #[inline]
    pub fn opt_timestamptz(&mut self, unix_us: Option<i64>) {
        match unix_us {
            Some(us) => self.timestamptz(us),
            None => self.null(),
        }
    }

    /// End the stream (writes the trailer).
    pub fn finish(self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

/// `label_sets(fingerprint int8, labels jsonb, alertname text, severity text)`.
pub fn write_label_sets(
    buf: &mut Vec<u8>,
    rows: &[LabelSetRow<'_>],
) -> Result<(), TryReserveError> {
    buf.try_reserve(
        21 + rows
            .iter()
            .map(|r| 2 + 12 + 5 + r.labels_json.len() + 8 + r.alertname.len() + r.severity.len())
            .sum::<usize>(),
    )?;
    let mut w = CopyWriter::new(buf);
    for r in rows {
        w.tuple(4);
        w.int8(r.fingerprint);
        w.jsonb(r.labels_json);
        w.text(r.alertname);
        w.text(r.severity);
    }
    w.finish();
    Ok(())
}

/// `notification_groups(id int8, receiver text, group_key text, last_used timestamptz)`.
pub fn write_groups(buf: &mut Vec<u8>, rows: &[GroupRow<'_>]) -> Result<(), TryReserveError> {
    buf.try_reserve(
        21 + rows
            .iter()
            .map(|r| 2 + 2 * 12 + 8 + r.receiver.len() + r.group_key.len())
            .sum::<usize>(),
    )?;
    let mut w = CopyWriter::new(buf);
    for r in rows {
        w.tuple(4);
        w.int8(r.id);
        w.text(r.receiver);
        w.text(r.group_key);
        w.timestamptz(r.last_used_us);
    }
    w.finish();
    Ok(())
}

/// `alert_events(fingerprint int8, starts_at timestamptz, status text, ends_at timestamptz NULL,
/// received_at timestamptz, group_id int8, source text, generator_url text, annotations jsonb)`.
pub fn write_events(buf: &mut Vec<u8>, rows: &[EventRow<'_>]) -> Result<(), TryReserveError> {
    buf.try_reserve(
        21 + rows
            .iter()
            .map(|r| {
                2 + 5 * 12 + 4 * 4 + 8 + 1 + 12 + r.generator_url.len() + r.annotations_json.len()
            })
            .sum::<usize>(),
    )?;
    let mut w = CopyWriter::new(buf);
    for r in rows {
        w.tuple(9);
        w.int8(r.fingerprint);
        w.timestamptz(r.starts_at_us);
        w.text(r.status.as_str());
        w.opt_timestamptz(r.ends_at_us);
        w.timestamptz(r.received_at_us);
        w.int8(r.group_id);
        w.text(r.source);
        w.text(r.generator_url);
        w.jsonb(r.annotations_json);
    }
    w.finish();
    Ok(())
}

/// `alerts(fingerprint int8, starts_at timestamptz, status text, ends_at timestamptz NULL,
/// first_seen timestamptz, last_seen timestamptz, notifications int4, group_id int8,
/// status_from_ends bool)`.
pub fn write_alerts(buf: &mut Vec<u8>, rows: &[AlertRow]) -> Result<(), TryReserveError> {
    // Fixed width: 9 fields, the widest status ("resolved").
    buf.try_reserve(21 + rows.len() * (2 + 6 * 12 + 12 + 8 + 8 + 5))?;
    let mut w = CopyWriter::new(buf);
    for r in rows {
        w.tuple(9);
        w.int8(r.fingerprint);
        w.timestamptz(r.starts_at_us);
        w.text(r.status.as_str());
        w.opt_timestamptz(r.ends_at_us);
        w.timestamptz(r.first_seen_us);
        w.timestamptz(r.last_seen_us);
        w.int4(r.notifications);
        w.int8(r.group_id);
        w.bool(r.status_from_ends);
    }
    w.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    const TRAILER: &[u8] = b"\xff\xff";

    #[test]
    fn empty_stream() {
        let mut buf = Vec::new();
        write_label_sets(&mut buf, &[]).unwrap();
        assert_eq!(buf, [HEADER, TRAILER].concat());
        assert_eq!(buf.len(), 21);
    }

    #[test]
    fn label_set_row_layout() {
        let mut buf = Vec::new();
        write_label_sets(
            &mut buf,
            &[LabelSetRow {
                fingerprint: -2,
                labels_json: r#"{"a":"é"}"#,
                alertname: "A",
                severity: "",
            }],
        )
        .unwrap();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&[0, 4]); // 4 fields
        want.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]); // int8 -2
        let json = r#"{"a":"é"}"#.as_bytes();
        want.extend_from_slice(&((json.len() + 1) as i32).to_be_bytes());
        want.push(1);
        want.extend_from_slice(json);
        want.extend_from_slice(&[0, 0, 0, 1, b'A']);
        want.extend_from_slice(&[0, 0, 0, 0]); // empty text is length 0, not NULL
        want.extend_from_slice(TRAILER);
        assert_eq!(buf, want);
    }

    #[test]
    fn alert_row_layout_with_null_and_timestamps() {
        let mut buf = Vec::new();
        let t = PG_EPOCH_OFFSET_US + 1; // 2000-01-01T00:00:00.000001Z
        write_alerts(
            &mut buf,
            &[AlertRow {
                fingerprint: 0x0102030405060708,
                starts_at_us: t,
                status: Status::Firing,
                ends_at_us: None,
                first_seen_us: PG_EPOCH_OFFSET_US,
                last_seen_us: PG_EPOCH_OFFSET_US - 1,
                notifications: 3,
                group_id: 0x0a0b,
                status_from_ends: true,
            }],
        )
        .unwrap();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&[0, 9]);
        want.extend_from_slice(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 6]);
        want.extend_from_slice(b"firing");
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // NULL ends_at
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 3]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x0a, 0x0b]);
        want.extend_from_slice(&[0, 0, 0, 1, 1]); // bool true
        want.extend_from_slice(TRAILER);
        assert_eq!(buf, want);
    }

    #[test]
    fn event_row_field_count_and_order() {
        let mut buf = Vec::new();
        let row = EventRow {
            fingerprint: 1,
            starts_at_us: PG_EPOCH_OFFSET_US,
            status: Status::Resolved,
            ends_at_us: Some(PG_EPOCH_OFFSET_US + 2),
            received_at_us: PG_EPOCH_OFFSET_US + 3,
            group_id: -1,
            source: "alertmanager",
            generator_url: "",
            annotations_json: "{}",
        };
        write_events(&mut buf, &[row.clone(), row]).unwrap();
        let body = &buf[HEADER.len()..buf.len() - 2];
        assert_eq!(&body[..2], &[0, 9]);
        let mut fields = Vec::new();
        let mut p = 2;
        while fields.len() < 9 {
            let len = i32::from_be_bytes(body[p..p + 4].try_into().unwrap());
            p += 4;
            fields.push(body[p..p + len.max(0) as usize].to_vec());
            p += len.max(0) as usize;
        }
        assert_eq!(fields[0], 1i64.to_be_bytes());
        assert_eq!(fields[1], 0i64.to_be_bytes());
        assert_eq!(fields[2], b"resolved");
        assert_eq!(fields[3], 2i64.to_be_bytes());
        assert_eq!(fields[4], 3i64.to_be_bytes());
        assert_eq!(fields[5], (-1i64).to_be_bytes());
        assert_eq!(fields[6], b"alertmanager");
        assert_eq!(fields[7], b"");
        assert_eq!(fields[8], b"\x01{}");
        assert_eq!(&body[p..p + 2], &[0, 9]); // second tuple follows
        assert_eq!(&buf[buf.len() - 2..], TRAILER);
    }

    #[test]
    fn group_row_layout() {
        let mut buf = Vec::new();
        write_groups(
            &mut buf,
            &[GroupRow {
                id: 7,
                receiver: "rx",
                group_key: "",
                last_used_us: PG_EPOCH_OFFSET_US + 5,
            }],
        )
        .unwrap();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&[0, 4]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 0, 0, 2, b'r', b'x']);
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5]);
        want.extend_from_slice(TRAILER);
        assert_eq!(buf, want);
    }
}
