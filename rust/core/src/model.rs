//! The decoded payload: [`Batch`] of [`Alert`]s, plus [`Format`] and [`Status`].

use std::borrow::Cow;

/// The payload format a body was detected as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Alertmanager,
    Prometheus,
    Generic,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Alertmanager => "alertmanager",
            Format::Prometheus => "prometheus",
            Format::Generic => "generic",
        }
    }
}

/// Alert status. `Firing < Resolved` (the order rows are sorted in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "firing" => Some(Status::Firing),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// One decoded alert. Every string here is the *stored* form (U+0000 replaced by U+FFFD); the
/// fingerprint was computed on the original label bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub fingerprint: u64,
    pub status: Status,
    pub starts_at_us: i64,
    /// `None` when not ended (absent or Go's zero time).
    pub ends_at_us: Option<i64>,
    /// Sorted by name (bytewise), unique names.
    pub labels: Vec<(String, String)>,
    /// Canonical JSON of `labels`: compact, keys sorted.
    pub labels_json: String,
    /// Sorted by name (bytewise), unique names.
    pub annotations: Vec<(String, String)>,
    /// Canonical JSON of `annotations`: compact, keys sorted.
    pub annotations_json: String,
    /// Value of the `alertname` label, or "".
    pub alertname: String,
    /// Value of the `severity` label, or "".
    pub severity: String,
    /// generatorURL, or "".
    pub generator_url: String,
}

impl Alert {
    /// Bytes this alert owns on the heap (its strings and label/annotation vectors), rounded up as
    /// in [`Batch::decoded_bytes`]; the struct itself is counted with the vector that holds it.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let pairs = |v: &Vec<(String, String)>| {
            heap_block(v.capacity() * size_of::<(String, String)>())
                + v.iter()
                    .map(|(k, v)| heap_block(k.capacity()) + heap_block(v.capacity()))
                    .sum::<usize>()
        };
        pairs(&self.labels)
            + pairs(&self.annotations)
            + heap_block(self.labels_json.capacity())
            + heap_block(self.annotations_json.capacity())
            + heap_block(self.alertname.capacity())
            + heap_block(self.severity.capacity())
            + heap_block(self.generator_url.capacity())
    }
}

/// An allocation of `capacity` bytes as the allocator hands it out (16-byte granularity).
fn heap_block(capacity: usize) -> usize {
    if capacity == 0 {
        0
    } else {
        capacity.saturating_add(15) & !15
    }
}

/// The alerts of one accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub format: Format,
    pub receiver: String,
    pub group_key: String,
    pub received_at_us: i64,
    pub alerts: Vec<Alert>,
    pub firing: usize,
    pub resolved: usize,
    /// Alerts whose sent `fingerprint` differs from the computed one.
    pub fingerprint_mismatches: usize,
    /// Alerts that had at least one U+0000 replaced in a stored string.
    pub nul_replaced: usize,
    pub body_bytes: usize,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// The key under which this batch's `(receiver, group_key)` is stored once (the
    /// `notification_groups` table): the first 8 bytes of a SHA-256 over both, as a signed
    /// integer. A cryptographic hash, so that no sender can make its pair collide with another's.
    pub fn group_id(&self) -> i64 {
        notification_group_id(&self.receiver, &self.group_key)
    }

    /// Bytes of memory this batch holds: its structs and every string and vector it owns, each
    /// allocation rounded up to 16 bytes (the allocator's granularity for small blocks). Not the
    /// body it came from: many short labels take many times their JSON.
    pub fn decoded_bytes(&self) -> usize {
        use std::mem::size_of;
        size_of::<Batch>()
            + heap_block(self.receiver.capacity())
            + heap_block(self.group_key.capacity())
            + heap_block(self.alerts.capacity() * size_of::<Alert>())
            + self.alerts.iter().map(Alert::heap_bytes).sum::<usize>()
    }

    /// Hex fingerprints in payload order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| crate::fingerprint::fingerprint_hex(a.fingerprint))
            .collect()
    }
}

/// See [`Batch::group_id`]. The receiver's length goes first, so that no other split of the same
/// bytes into (receiver, group key) gets the same key.
pub fn notification_group_id(receiver: &str, group_key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((receiver.len() as u64).to_le_bytes());
    h.update(receiver.as_bytes());
    h.update(group_key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// U+0000 replaced by U+FFFD (PostgreSQL text/jsonb cannot store NUL).
#[inline]
pub fn replace_nul(s: &str) -> Cow<'_, str> {
    if s.as_bytes().contains(&0) {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Bytes serde_json escapes in a string: `"`, `\\` and the controls U+0000..U+001F.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Append `s` as a JSON string literal, escaped exactly as serde_json does.
pub fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    // Copy the runs between escapes in one go (most strings are a single run).
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.push_str(&s[start..i]);
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "",
        };
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json() {
        let mut samples: Vec<String> = vec![
            "".into(),
            "plain".into(),
            "q\"b\\s/".into(),
            "<b>&amp;</b>".into(),
            "\u{2028}\u{2029}".into(),
            "é团队⚠️🔥".into(),
            "\u{7f}\u{80}".into(),
        ];
        for c in 0u8..0x20 {
            samples.push(format!("a{}b", c as char));
        }
        for s in samples {
            let mut out = String::new();
            write_json_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn nul_replacement() {
        assert!(matches!(replace_nul("abc"), Cow::Borrowed("abc")));
        assert_eq!(replace_nul("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn decoded_bytes_cover_every_string_held() {
        let body = br#"{"alerts":[{"status":"firing","labels":{"a":"1","b":"2"},"annotations":{"s":"x"},"startsAt":"2026-01-01T00:00:00Z"}]}"#;
        let b = crate::decode(body, &crate::Limits::default(), 0).unwrap();
        let a = &b.alerts[0];
        let strings: usize = a
            .labels
            .iter()
            .chain(&a.annotations)
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + a.labels_json.len()
            + a.annotations_json.len();
        assert!(
            b.decoded_bytes()
                >= std::mem::size_of::<Batch>() + std::mem::size_of::<Alert>() + strings
        );
        // Six one-byte strings take a 16-byte block each.
        assert!(b.decoded_bytes() > b.body_bytes);
        let mut more = b.clone();
        more.receiver = "r".repeat(1000);
        assert!(more.decoded_bytes() >= b.decoded_bytes() + 1000);
    }

    #[test]
    fn group_ids_tell_pairs_apart() {
        let id = notification_group_id;
        assert_eq!(id("r", "g"), id("r", "g"));
        assert_ne!(id("r", "g"), id("rg", ""));
        assert_ne!(id("r", "g"), id("", "rg"));
        assert_ne!(id("r", "g"), id("g", "r"));
        // Pinned: the key is stored, so it must never change between versions.
        assert_eq!(
            id("", ""),
            i64::from_be_bytes([0xaf, 0x55, 0x70, 0xf5, 0xa1, 0x81, 0x0b, 0x7a])
        );
    }

    #[test]
    fn status_and_format_strings() {
        assert_eq!(Status::parse("firing"), Some(Status::Firing));
        assert_eq!(Status::parse("resolved"), Some(Status::Resolved));
        assert_eq!(Status::parse("Firing"), None);
        assert!(Status::Firing < Status::Resolved);
        assert_eq!(Format::Prometheus.as_str(), "prometheus");
    }
}
