//! PostgreSQL one-dimensional arrays in the binary format of `array_send` (the bytes a `bytea`
//! column holds after `SELECT array_send(array_agg(col))`).
//!
//! Why: handing a statistic thousands of rows costs PostgreSQL's executor and the client about a
//! microsecond per row and per column; one aggregated array per column costs a memcpy. The history
//! API fetches the rows of a window this way and aggregates them in [`crate::stats`].
//!
//! Layout (all integers big-endian): `ndim: i32, has_nulls: i32, element_oid: u32`, then per
//! dimension `size: i32, lower_bound: i32`, then per element `len: i32` (-1 for NULL) and `len`
//! bytes. An empty array has `ndim = 0` and nothing after the header.

use std::fmt;

/// Element type OIDs (pg_type.oid) this module reads.
pub const INT8_OID: u32 = 20;
pub const TIMESTAMPTZ_OID: u32 = 1184;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayError(pub String);

impl fmt::Display for ArrayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PostgreSQL array: {}", self.0)
    }
}

impl std::error::Error for ArrayError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ArrayError> {
    Err(ArrayError(msg.into()))
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArrayError> {
        let Some(end) = self.pos.checked_add(n).filter(|&end| end <= self.buf.len()) else {
            return err(format!("truncated at byte {}", self.pos));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, ArrayError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reads the header of a one-dimensional array of `element_oid` and calls `each` with every
/// element (NULLs are refused: the columns read are NOT NULL).
fn for_each<'a>(
    buf: &'a [u8],
    element_oid: u32,
    mut each: impl FnMut(&'a [u8]) -> Result<(), ArrayError>,
) -> Result<usize, ArrayError> {
    let mut c = Cursor { buf, pos: 0 };
    let ndim = c.i32()?;
    let _has_nulls = c.i32()?;
    let oid = c.i32()? as u32;
    if oid != element_oid {
        return err(format!("element type {oid}, expected {element_oid}"));
    }
    let count = match ndim {
        0 => 0,
        1 => {
            let size = c.i32()?;
            let _lower_bound = c.i32()?;
            usize::try_from(size).or_else(|_| err(format!("negative size {size}")))?
        }
        _ => return err(format!("{ndim} dimensions, expected 1")),
    };
    for i in 0..count {
        let len = c.i32()?;
        if len < 0 {
            return err(format!("NULL element at {i}"));
        }
        each(c.take(len as usize)?)?;
    }
    if c.pos != buf.len() {
        return err(format!(
            "{} bytes after the last element",
            buf.len() - c.pos
        ));
    }
    Ok(count)
}

/// An `int8[]` or `timestamptz[]` (both are 8-byte big-endian integers; timestamps count
/// microseconds since 2000-01-01).
pub fn int8s(buf: &[u8], element_oid: u32) -> Result<Vec<i64>, ArrayError> {
    if element_oid != INT8_OID && element_oid != TIMESTAMPTZ_OID {
        return err(format!("element type {element_oid} is not 8-byte integers"));
    }
    // Each element takes 12 bytes (length + value): a bogus size in the header cannot make us
    // allocate more than the buffer describes.
    let mut out = Vec::with_capacity(buf.len() / 12);
    for_each(buf, element_oid, |e| match <[u8; 8]>::try_from(e) {
        Ok(b) => {
            out.push(i64::from_be_bytes(b));
            Ok(())
        }
        Err(_) => err(format!("element of {} bytes, expected 8", e.len())),
    })?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What `array_send` writes for a one-dimensional array without NULLs.
    pub(crate) fn encode(oid: u32, elems: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        if elems.is_empty() {
            b.extend(0i32.to_be_bytes());
            b.extend(0i32.to_be_bytes());
            b.extend(oid.to_be_bytes());
            return b;
        }
        b.extend(1i32.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend(oid.to_be_bytes());
        b.extend((elems.len() as i32).to_be_bytes());
        b.extend(1i32.to_be_bytes());
        for e in elems {
            b.extend((e.len() as i32).to_be_bytes());
            b.extend(*e);
        }
        b
    }

    #[test]
    fn reads_int8_arrays() {
        let vals = [i64::MIN, -1, 0, 7, i64::MAX];
        let bytes: Vec<[u8; 8]> = vals.iter().map(|v| v.to_be_bytes()).collect();
        let elems: Vec<&[u8]> = bytes.iter().map(|b| &b[..]).collect();
        assert_eq!(int8s(&encode(INT8_OID, &elems), INT8_OID).unwrap(), vals);
        assert_eq!(
            int8s(&encode(TIMESTAMPTZ_OID, &elems), TIMESTAMPTZ_OID).unwrap(),
            vals
        );
    }

    #[test]
    fn reads_the_empty_array() {
        assert!(int8s(&encode(INT8_OID, &[]), INT8_OID).unwrap().is_empty());
    }

    #[test]
    fn rejects_what_it_does_not_expect() {
        let one = 1i64.to_be_bytes();
        let ok = encode(INT8_OID, &[&one]);
        // wrong element type, wrong width, truncation, trailing bytes, NULL, two dimensions
        assert!(int8s(&ok, TIMESTAMPTZ_OID).is_err());
        assert!(int8s(&encode(INT8_OID, &[&one[..4]]), INT8_OID).is_err());
        assert!(int8s(&ok[..ok.len() - 1], INT8_OID).is_err());
        assert!(int8s(&[&ok[..], &[0]].concat(), INT8_OID).is_err());
        let mut null = ok.clone();
        let at = null.len() - 12;
        null[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(int8s(&null[..null.len() - 8], INT8_OID).is_err());
        let mut two = ok.clone();
        two[..4].copy_from_slice(&2i32.to_be_bytes());
        assert!(int8s(&two, INT8_OID).is_err());
        // a size far beyond the buffer fails cleanly instead of allocating it
        let mut huge = ok.clone();
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(int8s(&huge, INT8_OID).is_err());
        assert!(int8s(&[], INT8_OID).is_err());
    }
}
