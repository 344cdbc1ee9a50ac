//! One spool record on disk: `magic (4) | length (u32 LE) | CRC32 (u32 LE) | payload`, with
//! payload = `received_at_us (i64 LE) | body`. The CRC covers the length and the payload, so a
//! flipped length is caught like a flipped body byte; the magic lets a reader find the next record
//! after a corrupt one instead of losing everything behind it.

use memchr::memmem;

pub const MAGIC: [u8; 4] = *b"WFS1";
pub const HEADER_BYTES: usize = 12;
const STAMP_BYTES: usize = 8;
/// A length beyond this is corruption, not a record (bodies are capped far below it).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 31;

/// Append the frame of one record to `out`.
pub fn encode(out: &mut Vec<u8>, received_at_us: i64, body: &[u8]) {
    let len = u32::try_from(STAMP_BYTES + body.len()).expect("spool record over 4 GiB");
    let stamp = received_at_us.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_le_bytes());
    crc.update(&stamp);
    crc.update(body);
    out.reserve(HEADER_BYTES + len as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&stamp);
    out.extend_from_slice(body);
}

/// The size on disk of a record whose body has `body_len` bytes.
pub fn framed_len(body_len: usize) -> usize {
    HEADER_BYTES + STAMP_BYTES + body_len
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole, verified record of `len` bytes (header included).
    Record {
        received_at_us: i64,
        body: &'a [u8],
        len: usize,
    },
    /// Not a record here: wrong magic, impossible length, CRC mismatch, or cut short.
    Bad,
}

/// Parse and verify the frame at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    if buf.len() < HEADER_BYTES || buf[..4] != MAGIC {
        return Parsed::Bad;
    }
    let len = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
    if !(STAMP_BYTES..=MAX_PAYLOAD_BYTES).contains(&len) || buf.len() - HEADER_BYTES < len {
        return Parsed::Bad;
    }
    let payload = &buf[HEADER_BYTES..HEADER_BYTES + len];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[4..8]);
    crc.update(payload);
    if crc.finalize() != u32::from_le_bytes(buf[8..12].try_into().unwrap()) {
        return Parsed::Bad;
    }
    Parsed::Record {
        received_at_us: i64::from_le_bytes(payload[..STAMP_BYTES].try_into().unwrap()),
        body: &payload[STAMP_BYTES..],
        len: HEADER_BYTES + len,
    }
}

/// What a stretch of segment bytes holds, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Record {
        start: usize,
        end: usize,
        received_at_us: i64,
        body: &'a [u8],
    },
    /// Bytes that are no record, followed by a verified record: damage in the middle.
    Corrupt { start: usize, end: usize },
    /// Bytes that are no record up to the end of `buf`: a torn write if this is the end of the
    /// spool (never acknowledged), damage otherwise.
    Tail { start: usize },
}

/// Split `buf` (which starts at a record boundary) into records and damaged stretches.
pub fn walk(buf: &[u8]) -> Vec<Item<'_>> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match parse(&buf[pos..]) {
            Parsed::Record {
                received_at_us,
                body,
                len,
            } => {
                items.push(Item::Record {
                    start: pos,
                    end: pos + len,
                    received_at_us,
                    body,
                });
                pos += len;
            }
            Parsed::Bad => match next_record(buf, pos + 1) {
                Some(next) => {
                    items.push(Item::Corrupt {
                        start: pos,
                        end: next,
                    });
                    pos = next;
                }
                None => {
                    items.push(Item::Tail { start: pos });
                    break;
                }
            },
        }
    }
    items
}

/// The offset of the first verified record at or after `from`.
fn next_record(buf: &[u8], from: usize) -> Option<usize> {
    let finder = memmem::Finder::new(&MAGIC);
    let mut at = from;
    while at < buf.len() {
        let found = at + finder.find(&buf[at..])?;
        if matches!(parse(&buf[found..]), Parsed::Record { .. }) {
            return Some(found);
        }
        at = found + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            encode(&mut out, 1_000 + i as i64, body);
        }
        out
    }

    fn records(items: &[Item<'_>]) -> Vec<(i64, Vec<u8>)> {
        items
            .iter()
            .filter_map(|item| match item {
                Item::Record {
                    received_at_us,
                    body,
                    ..
                } => Some((*received_at_us, body.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let buf = frames(&[b"{\"a\":1}", b"", b"[1,2,3]"]);
        assert_eq!(buf.len(), framed_len(7) + framed_len(0) + framed_len(7));
        let items = walk(&buf);
        assert_eq!(
            records(&items),
            vec![
                (1000, b"{\"a\":1}".to_vec()),
                (1001, vec![]),
                (1002, b"[1,2,3]".to_vec())
            ]
        );
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn every_truncation_is_a_tail_after_the_whole_records() {
        let buf = frames(&[b"first body", b"second body"]);
        let first = framed_len(10);
        for cut in first + 1..buf.len() {
            let items = walk(&buf[..cut]);
            assert_eq!(
                records(&items),
                vec![(1000, b"first body".to_vec())],
                "cut at {cut}"
            );
            assert_eq!(
                items.last(),
                Some(&Item::Tail { start: first }),
                "cut at {cut}"
            );
        }
        assert_eq!(walk(&buf[..first]).len(), 1);
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_middle_record_is_corrupt_and_the_rest_survives() {
        let buf = frames(&[b"one", b"two two", b"three"]);
        let (a, b) = (framed_len(3), framed_len(3) + framed_len(7));
        for at in a..b {
            let mut bad = buf.clone();
            bad[at] ^= 0x40;
            let items = walk(&bad);
            assert_eq!(
                records(&items),
                vec![(1000, b"one".to_vec()), (1002, b"three".to_vec())],
                "flip at {at}"
            );
            assert!(
                items.contains(&Item::Corrupt { start: a, end: b }),
                "flip at {at}: {items:?}"
            );
        }
    }

    #[test]
    fn a_huge_length_is_not_trusted() {
        let mut buf = frames(&[b"x", b"y"]);
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let items = walk(&buf);
        assert_eq!(records(&items), vec![(1001, b"y".to_vec())]);
        assert_eq!(
            items[0],
            Item::Corrupt {
                start: 0,
                end: framed_len(1)
            }
        );
    }

    #[test]
    fn a_body_that_contains_the_magic_does_not_confuse_the_resync() {
        let inner = frames(&[b"nested"]);
        let buf = frames(&[&inner, b"after"]);
        assert_eq!(
            records(&walk(&buf)),
            vec![(1000, inner.clone()), (1001, b"after".to_vec())]
        );
        let mut bad = buf.clone();
        bad[0] = b'X'; // the outer record is damaged: the nested frame is found, then "after"
        let items = walk(&bad);
        assert_eq!(records(&items).last(), Some(&(1001, b"after".to_vec())));
    }

    #[test]
    fn garbage_only_is_one_tail() {
        assert_eq!(walk(b"not a spool at all"), vec![Item::Tail { start: 0 }]);
        assert_eq!(walk(b""), vec![]);
    }
}
