//! JSON answers of the history API that are too big to shape in Python: a page of
//! `GET /api/v1/alerts` is up to 1,000 instances, each with four timestamps, a fingerprint and two
//! JSON objects to re-emit. Shaping that in Python took as long as the query itself.
//!
//! The output is byte for byte what `orjson.dumps(obj, option=OPT_SORT_KEYS)` gives for the same
//! page built as dicts (Python tests compare the two): compact, object keys sorted by code point,
//! strings escaped as orjson escapes them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use serde::de::{Deserialize, Deserializer, Visitor};

use crate::rfc3339::write_rfc3339_us;

/// One alert instance as the list query returns it (times in µs since the Unix epoch; labels and
/// annotations as the JSON text the store keeps).
#[derive(Debug, Clone)]
pub struct AlertRow<'a> {
    pub fingerprint: i64,
    pub starts_at: i64,
    pub status: &'a str,
    pub ends_at: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub notifications: i64,
    pub receiver: &'a str,
    pub labels: &'a str,
    pub annotations: Option<&'a str>,
}

/// Stored labels or annotations that are not a JSON object of strings (never written by webhookfast).
#[derive(Debug)]
pub struct StoredJsonError {
    pub row: usize,
    pub column: &'static str,
    pub message: String,
}

impl std::fmt::Display for StoredJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {}: stored {} are not a JSON object of strings: {}",
            self.row, self.column, self.message
        )
    }
}

impl std::error::Error for StoredJsonError {}

/// `{"alerts":[…],"next_cursor":…}` for one page.
pub fn alert_page(
    rows: &[AlertRow<'_>],
    next_cursor: Option<&str>,
) -> Result<Vec<u8>, StoredJsonError> {
    let mut out = Vec::with_capacity(64 + rows.len() * 512);
    out.extend_from_slice(b"{\"alerts\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        alert(&mut out, i, row)?;
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    match next_cursor {
        Some(c) => string(&mut out, c),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(out)
}

fn alert(out: &mut Vec<u8>, i: usize, r: &AlertRow<'_>) -> Result<(), StoredJsonError> {
    // Keys in sorted order.
    out.extend_from_slice(b"{\"annotations\":");
    match r.annotations {
        Some(text) => stored_json(out, i, "annotations", text)?,
        None => out.extend_from_slice(b"{}"),
    }
    out.extend_from_slice(b",\"ends_at\":");
    match r.ends_at {
        Some(us) => time(out, us),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"fingerprint\":\"");
    let _ = write!(out, "{:016x}", r.fingerprint as u64);
    out.extend_from_slice(b"\",\"first_seen\":");
    time(out, r.first_seen);
    out.extend_from_slice(b",\"labels\":");
    stored_json(out, i, "labels", r.labels)?;
    out.extend_from_slice(b",\"last_seen\":");
    time(out, r.last_seen);
    out.extend_from_slice(b",\"notifications\":");
    let _ = write!(out, "{}", r.notifications);
    out.extend_from_slice(b",\"receiver\":");
    string(out, r.receiver);
    out.extend_from_slice(b",\"starts_at\":");
    time(out, r.starts_at);
    out.extend_from_slice(b",\"status\":");
    string(out, r.status);
    out.push(b'}');
    Ok(())
}

fn time(out: &mut Vec<u8>, us: i64) {
    out.push(b'"');
    write_rfc3339_us(out, us);
    out.push(b'"');
}

/// A JSON string borrowed from the stored text unless it has escapes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(Str).map(Text)
    }
}

fn stored_json(
    out: &mut Vec<u8>,
    row: usize,
    column: &'static str,
    text: &str,
) -> Result<(), StoredJsonError> {
    // The decoder stores labels and annotations as objects of strings only, so that is all this
    // accepts (anything else was written by someone else, and fails loudly instead of guessing
    // how orjson would have written its numbers). The BTreeMap sorts; strings stay borrowed.
    let map = serde_json::from_str::<BTreeMap<Text<'_>, Text<'_>>>(text).map_err(|e| {
        StoredJsonError {
            row,
            column,
            message: e.to_string(),
        }
    })?;
    out.push(b'{');
    for (k, (key, value)) in map.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        string(out, &key.0);
        out.push(b':');
        string(out, &value.0);
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string escaped as orjson escapes it: `"` `\` and the C0 controls (with the short forms
/// `\b \t \n \f \r`, others as `\u00xx`); everything else, DEL and non-ASCII included, as is.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(labels: &'a str, annotations: Option<&'a str>) -> AlertRow<'a> {
        AlertRow {
            fingerprint: -1,
            starts_at: 1_714_557_600_000_000,
            status: "firing",
            ends_at: None,
            first_seen: 1_714_557_600_000_001,
            last_seen: 1_714_557_660_123_456,
            notifications: 3,
            receiver: "team-\"sre\"",
            labels,
            annotations,
        }
    }

    fn page(rows: &[AlertRow<'_>], cursor: Option<&str>) -> String {
        String::from_utf8(alert_page(rows, cursor).unwrap()).unwrap()
    }

    #[test]
    fn empty_page() {
        assert_eq!(page(&[], None), r#"{"alerts":[],"next_cursor":null}"#);
        assert_eq!(
            page(&[], Some("abc")),
            r#"{"alerts":[],"next_cursor":"abc"}"#
        );
    }

    #[test]
    fn one_alert_with_sorted_keys() {
        let r = row(r#"{"severity": "critical", "alertname": "HighCPU"}"#, None);
        assert_eq!(
            page(&[r], None),
            concat!(
                r#"{"alerts":[{"annotations":{},"ends_at":null,"fingerprint":"ffffffffffffffff","#,
                r#""first_seen":"2024-05-01T10:00:00.000001Z","labels":{"alertname":"HighCPU","severity":"critical"},"#,
                r#""last_seen":"2024-05-01T10:01:00.123456Z","notifications":3,"receiver":"team-\"sre\"","#,
                r#""starts_at":"2024-05-01T10:00:00.000000Z","status":"firing"}],"next_cursor":null}"#
            )
        );
    }

    #[test]
    fn escapes_like_orjson() {
        let mut out = Vec::new();
        string(
            &mut out,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é\u{2028}😀",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}é\u{2028}😀\""
        );
    }

    #[test]
    fn annotations_and_ends_at() {
        let mut r = row(r#"{"b":"1","a":"2"}"#, Some(r#"{"z":"last","a":"x"}"#));
        r.ends_at = Some(i64::MAX);
        let s = page(&[r.clone(), r], Some("next"));
        assert!(s.contains(r#""annotations":{"a":"x","z":"last"}"#), "{s}");
        assert!(
            s.contains(r#""ends_at":"9999-12-31T23:59:59.999999Z""#),
            "{s}"
        );
        assert!(s.contains(r#""labels":{"a":"2","b":"1"}"#), "{s}");
        assert!(s.ends_with(r#"}],"next_cursor":"next"}"#), "{s}");
        assert_eq!(s.matches("\"fingerprint\"").count(), 2);
    }

    #[test]
    fn escaped_stored_strings_are_rewritten_canonically() {
        let r = row(r#"{"b\u00e9":"\u0001\/","a":"x","a":"last"}"#, None);
        let s = page(&[r], None);
        assert!(
            s.contains("\"labels\":{\"a\":\"last\",\"bé\":\"\\u0001/\"}"),
            "{s}"
        );
    }

    #[test]
    fn anything_but_an_object_of_strings_is_an_error() {
        let err = alert_page(&[row("{", None)], None).unwrap_err();
        assert_eq!((err.row, err.column), (0, "labels"));
        let ok = row("{}", None);
        for bad in [r#"{"a":1.5}"#, r#"{"a":{"b":"c"}}"#, r#"["a"]"#, "null"] {
            let err = alert_page(&[ok.clone(), row("{}", Some(bad))], None).unwrap_err();
            assert_eq!((err.row, err.column), (1, "annotations"), "{bad}");
        }
    }
}
