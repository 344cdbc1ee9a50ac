//! What an accepted ingest request is answered, and the ids of requests that came without one.
//!
//! An answer is made for every accepted request, an id for every request that came without a
//! usable one. Written here, each is one Python object (a `bytes`, a `str`) where the Python
//! f-strings they replace made three and four (benches/test_allocations.py).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

// Escaped as orjson escapes (the request id is checked or made safe before, so this is a second
// guard, not the only one).
use crate::answers::string;

/// Appends the JSON answer to an accepted request: `{"status":…,"alerts":…,"request_id":…}`,
/// compact, in that order (what the Python layer wrote with an f-string before).
pub fn write_ack(out: &mut Vec<u8>, status: &str, alerts: u64, request_id: &str) {
    out.extend_from_slice(b"{\"status\":");
    string(out, status);
    // Writing into a Vec cannot fail.
    let _ = write!(out, ",\"alerts\":{alerts},\"request_id\":");
    string(out, request_id);
    out.push(b'}');
}

/// New request ids: a per-process prefix and a hexadecimal counter, unique within the process and
/// short enough to read in a log line. Shared by reference: the counter is atomic, so no caller
/// ever has to wait for another or be refused.
#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            next: AtomicU64::new(1),
        }
    }

    /// Replaces `buf`'s contents with the next id.
    pub fn next_into(&self, buf: &mut String) {
        // Only uniqueness matters, not an order with other memory: relaxed is enough.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        buf.clear();
        buf.push_str(&self.prefix);
        let _ = write!(buf, "{n:x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(status: &str, alerts: u64, request_id: &str) -> String {
        let mut out = Vec::new();
        write_ack(&mut out, status, alerts, request_id);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ack_is_compact_json_in_order() {
        assert_eq!(
            ack("stored", 1, "a1b2c3d4e5f6-1f"),
            r#"{"status":"stored","alerts":1,"request_id":"a1b2c3d4e5f6-1f"}"#
        );
        assert_eq!(
            ack("queued", 18_446_744_073_709_551_615, ""),
            r#"{"status":"queued","alerts":18446744073709551615,"request_id":""}"#
        );
    }

    #[test]
    fn ack_escapes_what_json_must() {
        let text = ack("spooled", 0, "a\"b\\c\u{1}d");
        assert_eq!(
            text,
            r#"{"status":"spooled","alerts":0,"request_id":"a\"b\\c\u0001d"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["request_id"], "a\"b\\c\u{1}d");
    }

    #[test]
    fn ack_appends() {
        let mut out = b"x".to_vec();
        write_ack(&mut out, "stored", 2, "r");
        assert_eq!(out, br#"x{"status":"stored","alerts":2,"request_id":"r"}"#);
    }

    #[test]
    fn ids_count_up_in_hex_after_the_prefix() {
        let ids = RequestIds::new("0123456789ab-");
        let mut buf = String::from("left over");
        let mut seen = Vec::new();
        for _ in 0..17 {
            ids.next_into(&mut buf);
            seen.push(buf.clone());
        }
        assert_eq!(seen[0], "0123456789ab-1");
        assert_eq!(seen[9], "0123456789ab-a");
        assert_eq!(seen[15], "0123456789ab-10");
        assert_eq!(seen[16], "0123456789ab-11");
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
    }

    #[test]
    fn ids_stay_unique_across_threads() {
        let ids = RequestIds::new("p-");
        let seen: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut buf = String::new();
                        (0..1000)
                            .map(|_| {
                                ids.next_into(&mut buf);
                                buf.clone()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 4000);
    }
}
