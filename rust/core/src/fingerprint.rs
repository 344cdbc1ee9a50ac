//! Prometheus `model.LabelSet.Fingerprint()`: FNV-1a 64 over the labels sorted by name (bytewise),
//! hashing each name, a 0xff byte, the value, a 0xff byte. No Unicode normalisation.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// Fingerprint of (name, value) byte pairs that are **already sorted by name** (bytewise).
#[inline]
pub fn fingerprint_iter<'a>(labels: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> u64 {
    let mut h = OFFSET;
    for (n, v) in labels {
        h = fnv(h, n);
        h = fnv(h, &[0xff]);
        h = fnv(h, v);
        h = fnv(h, &[0xff]);
    }
    h
}

/// Fingerprint of labels that are **already sorted by name** (bytewise) and have unique names.
#[inline]
pub fn fingerprint_sorted<N: AsRef<[u8]>, V: AsRef<[u8]>>(labels: &[(N, V)]) -> u64 {
    fingerprint_iter(labels.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
}

/// Fingerprint of labels in any order (sorted here).
pub fn fingerprint<N: AsRef<[u8]>, V: AsRef<[u8]>>(labels: &[(N, V)]) -> u64 {
    let mut refs: Vec<(&[u8], &[u8])> = labels
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .collect();
    refs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    fingerprint_sorted(&refs)
}

/// 16 lowercase hex digits, zero padded (Go's `%016x`).
pub fn fingerprint_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Parse exactly 16 hex digits (either case), as Alertmanager sends them.
pub fn parse_fingerprint_hex(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The stored (signed 64-bit) form: the same bits reinterpreted.
#[inline]
pub fn fingerprint_to_int(fp: u64) -> i64 {
    fp as i64
}

/// The fingerprint of a stored signed 64-bit integer.
#[inline]
pub fn fingerprint_from_int(v: i64) -> u64 {
    v as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(labels: &[(&str, &str)]) -> String {
        fingerprint_hex(fingerprint(labels))
    }

    #[test]
    fn reference_vectors() {
        assert_eq!(hex(&[("alertname", "Alert1")]), "0f8c8eae06af0c03");
        assert_eq!(
            hex(&[
                ("alertname", "HighCPU"),
                ("instance", "server-1"),
                ("job", "node-exporter"),
                ("severity", "warning")
            ]),
            "47173f03a36b568e"
        );
        assert_eq!(hex(&[]), "cbf29ce484222325");
    }

    #[test]
    fn order_independent() {
        let a = hex(&[
            ("severity", "warning"),
            ("job", "node-exporter"),
            ("alertname", "HighCPU"),
            ("instance", "server-1"),
        ]);
        assert_eq!(a, "47173f03a36b568e");
    }

    #[test]
    fn unicode_and_no_normalisation() {
        let nfc = hex(&[("alertname", "caf\u{e9}")]);
        let nfd = hex(&[("alertname", "cafe\u{301}")]);
        assert_ne!(nfc, nfd);
        // Hash of the raw UTF-8 bytes.
        let mut h = OFFSET;
        for part in [&b"alertname"[..], &[0xff], "caf\u{e9}".as_bytes(), &[0xff]] {
            h = fnv(h, part);
        }
        assert_eq!(nfc, fingerprint_hex(h));
        assert_eq!(hex(&[("équipe", "团队-存储")]).len(), 16);
    }

    #[test]
    fn separator_prevents_ambiguity() {
        assert_ne!(hex(&[("a", "bc")]), hex(&[("ab", "c")]));
        assert_ne!(hex(&[("a", "")]), hex(&[]));
    }

    #[test]
    fn big_value_and_many_labels() {
        let big = "v".repeat(64 * 1024);
        let fp1 = fingerprint(&[("alertname", big.as_str())]);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"alertname\xff");
        bytes.extend_from_slice(big.as_bytes());
        bytes.push(0xff);
        assert_eq!(fp1, fnv(OFFSET, &bytes));

        let labels: Vec<(String, String)> = (0..100)
            .map(|i| (format!("l{i:03}"), format!("v{i}")))
            .collect();
        let mut rev = labels.clone();
        rev.reverse();
        assert_eq!(fingerprint(&labels), fingerprint(&rev));
        assert_eq!(fingerprint(&labels), fingerprint_sorted(&labels));
    }

    #[test]
    fn hex_and_int_forms() {
        assert_eq!(fingerprint_hex(0), "0000000000000000");
        assert_eq!(fingerprint_hex(0xf), "000000000000000f");
        assert_eq!(
            parse_fingerprint_hex("0f8c8eae06af0c03"),
            Some(0x0f8c8eae06af0c03)
        );
        assert_eq!(
            parse_fingerprint_hex("0F8C8EAE06AF0C03"),
            Some(0x0f8c8eae06af0c03)
        );
        assert_eq!(parse_fingerprint_hex("f8c8eae06af0c03"), None);
        assert_eq!(parse_fingerprint_hex("+f8c8eae06af0c03"), None);
        assert_eq!(parse_fingerprint_hex("0f8c8eae06af0c0g"), None);
        let fp = 0xcbf29ce484222325u64;
        assert!(fingerprint_to_int(fp) < 0);
        assert_eq!(fingerprint_from_int(fingerprint_to_int(fp)), fp);
        assert_eq!(fingerprint_to_int(u64::MAX), -1);
        assert_eq!(fingerprint_to_int(0x0f8c8eae06af0c03), 0x0f8c8eae06af0c03);
    }
}
