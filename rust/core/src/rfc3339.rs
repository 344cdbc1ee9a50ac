//! A small, strict RFC 3339 parser: `YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|±HH:MM)` to microseconds
//! since the Unix epoch (sub-microsecond digits floored, i.e. rounded toward negative infinity).

/// Microseconds since the Unix epoch of Go's zero time `0001-01-01T00:00:00Z` ("not set").
pub const GO_ZERO_US: i64 = -62_135_596_800_000_000;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Why a timestamp was refused (a static, input-free message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeError(pub &'static str);

#[inline]
fn digits2(b: &[u8], i: usize) -> Option<u32> {
    let (a, c) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    if a < 10 && c < 10 {
        Some(a as u32 * 10 + c as u32)
    } else {
        None
    }
}

#[inline]
fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

#[inline]
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 3339 timestamp into microseconds since the Unix epoch.
pub fn parse_rfc3339_us(s: &str) -> Result<i64, TimeError> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(TimeError("timestamp too short for RFC 3339"));
    }
    let bad = TimeError("not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM))");
    let yh = digits2(b, 0).ok_or(bad)?;
    let yl = digits2(b, 2).ok_or(bad)?;
    let year = (yh * 100 + yl) as i64;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad);
    }
    let month = digits2(b, 5).ok_or(bad)?;
    let day = digits2(b, 8).ok_or(bad)?;
    let hour = digits2(b, 11).ok_or(bad)?;
    let minute = digits2(b, 14).ok_or(bad)?;
    let second = digits2(b, 17).ok_or(bad)?;
    if year < 1 {
        return Err(TimeError("year out of range 0001-9999"));
    }
    if !(1..=12).contains(&month) {
        return Err(TimeError("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimeError("day out of range for month"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(TimeError("time of day out of range"));
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            let pos = i - start;
            if pos < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(TimeError("empty fraction of a second"));
        }
        if n > 9 {
            return Err(TimeError("more than 9 fraction digits"));
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    if i >= b.len() {
        return Err(TimeError("missing time zone offset"));
    }
    let offset_s: i64 = match b[i] {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            if b.len() < i + 6 || b[i + 3] != b':' {
                return Err(TimeError("bad time zone offset"));
            }
            let oh = digits2(b, i + 1).ok_or(TimeError("bad time zone offset"))?;
            let om = digits2(b, i + 4).ok_or(TimeError("bad time zone offset"))?;
            if oh > 23 || om > 59 {
                return Err(TimeError("time zone offset out of range"));
            }
            i += 6;
            let o = (oh * 3600 + om * 60) as i64;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad),
    };
    if i != b.len() {
        return Err(TimeError("trailing characters after timestamp"));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_s;
    let us = secs * 1_000_000 + micros;
    // An offset can move a year-0001 or year-9999 local time outside the four-digit years in UTC;
    // such an instant cannot be formatted back (it would be clamped), so cursors over it could not
    // make progress: refuse it instead of storing a value no answer can represent.
    if !(GO_ZERO_US..=MAX_US).contains(&us) {
        return Err(TimeError("time outside years 0001-9999 in UTC"));
    }
    Ok(us)
}

/// Microseconds since the Unix epoch of `9999-12-31T23:59:59.999999Z`, the last four-digit-year instant.
pub const MAX_US: i64 = 253_402_300_799_999_999;

/// Format microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, clamped to the
/// four-digit years RFC 3339 allows (`0001-01-01T00:00:00.000000Z` … `9999-12-31T23:59:59.999999Z`),
/// so that any stored value (PostgreSQL keeps years up to 294276) formats as a valid timestamp.
pub fn format_rfc3339_us(us: i64) -> String {
    let mut out = Vec::with_capacity(27);
    write_rfc3339_us(&mut out, us);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).expect("ASCII")
}

/// [`format_rfc3339_us`] appended to a buffer (no allocation of its own).
pub fn write_rfc3339_us(out: &mut Vec<u8>, us: i64) {
    write_us(out, us.clamp(GO_ZERO_US, MAX_US));
}

/// `us` must lie in years 0001..9999 (callers clamp).
fn write_us(out: &mut Vec<u8>, us: i64) {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    digits(out, y, 4);
    out.push(b'-');
    digits(out, m, 2);
    out.push(b'-');
    digits(out, d, 2);
    out.push(b'T');
    digits(out, sod / 3600, 2);
    out.push(b':');
    digits(out, sod % 3600 / 60, 2);
    out.push(b':');
    digits(out, sod % 60, 2);
    out.push(b'.');
    digits(out, micros, 6);
    out.push(b'Z');
}

/// `v` (0 <= v < 10^width) as exactly `width` decimal digits.
#[inline]
fn digits(out: &mut Vec<u8>, mut v: i64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instant these tests format lies within years 0001..9999.
    fn format_us(us: i64) -> String {
        assert!((GO_ZERO_US..=MAX_US).contains(&us));
        format_rfc3339_us(us)
    }

    fn p(s: &str) -> Result<i64, TimeError> {
        parse_rfc3339_us(s)
    }

    #[test]
    fn epoch_and_simple() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(p("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(p("2025-01-10T10:00:00Z"), Ok(1_736_503_200_000_000));
        assert_eq!(p("2000-01-01T00:00:00Z"), Ok(PG_EPOCH_OFFSET_US));
        assert_eq!(p("1969-12-31T23:59:59Z"), Ok(-1_000_000));
    }

    #[test]
    fn go_zero_time() {
        assert_eq!(p("0001-01-01T00:00:00Z"), Ok(GO_ZERO_US));
        assert_eq!(p("0001-01-01T00:00:00.000Z"), Ok(GO_ZERO_US));
        // The same instant written with an offset is still the zero time.
        assert_eq!(p("0001-01-01T05:30:00+05:30"), Ok(GO_ZERO_US));
        assert_eq!(format_us(GO_ZERO_US), "0001-01-01T00:00:00.000000Z");
    }

    #[test]
    fn offsets() {
        let utc = p("2026-11-27T18:39:21.835Z").unwrap();
        assert_eq!(p("2026-11-28T00:09:21.835+05:30"), Ok(utc));
        assert_eq!(p("2026-11-27T13:39:21.835-05:00"), Ok(utc));
        assert_eq!(p("2026-11-27T18:39:21.835-00:00"), Ok(utc));
        assert_eq!(p("2026-11-27T18:39:21.835+00:00"), Ok(utc));
        assert_eq!(p("2026-11-27T18:39:21.835z"), Ok(utc));
        assert_eq!(p("2026-11-27t18:39:21.835Z"), Ok(utc));
    }

    #[test]
    fn fractions() {
        let base = p("2024-05-06T07:08:09Z").unwrap();
        assert_eq!(p("2024-05-06T07:08:09.5Z"), Ok(base + 500_000));
        assert_eq!(p("2024-05-06T07:08:09.123Z"), Ok(base + 123_000));
        assert_eq!(p("2024-05-06T07:08:09.123456Z"), Ok(base + 123_456));
        assert_eq!(p("2024-05-06T07:08:09.1234567Z"), Ok(base + 123_456));
        assert_eq!(p("2024-05-06T07:08:09.123456789Z"), Ok(base + 123_456));
        assert_eq!(p("2024-05-06T07:08:09.999999999Z"), Ok(base + 999_999));
        assert_eq!(p("2024-05-06T07:08:09.000000001Z"), Ok(base));
        assert!(p("2024-05-06T07:08:09.1234567890Z").is_err());
        assert!(p("2024-05-06T07:08:09.Z").is_err());
    }

    #[test]
    fn floor_toward_negative_infinity_before_epoch() {
        // 1969-12-31T23:59:59.9999999Z = -0.0000001 s → floor to -1 µs.
        assert_eq!(p("1969-12-31T23:59:59.9999999Z"), Ok(-1));
        assert_eq!(p("1969-12-31T23:59:59.0000009Z"), Ok(-1_000_000));
        assert_eq!(p("0001-01-01T00:00:00.0000009Z"), Ok(GO_ZERO_US));
    }

    #[test]
    fn leap_days() {
        assert!(p("2024-02-29T00:00:00Z").is_ok());
        assert!(p("2000-02-29T00:00:00Z").is_ok());
        assert!(p("2023-02-29T00:00:00Z").is_err());
        assert!(p("1900-02-29T00:00:00Z").is_err());
        assert!(p("2100-02-29T00:00:00Z").is_err());
        assert_eq!(
            p("2024-03-01T00:00:00Z").unwrap() - p("2024-02-28T00:00:00Z").unwrap(),
            2 * 86_400_000_000
        );
    }

    #[test]
    fn invalid_dates_and_times() {
        for s in [
            "",
            "2024",
            "2024-00-10T00:00:00Z",
            "2024-13-10T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-32T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-10T24:00:00Z",
            "2024-01-10T23:60:00Z",
            "2024-01-10T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "2024-01-10 00:00:00Z",
            "2024-01-10T00:00:00",
            "2024-01-10T00:00:00+0530",
            "2024-01-10T00:00:00+24:00",
            "2024-01-10T00:00:00+05:60",
            "2024-01-10T00:00:00Zjunk",
            "2024-01-10T00:00:00+05:30x",
            "2024/01/10T00:00:00Z",
            "+024-01-10T00:00:00Z",
            "2024-1-10T00:00:00Z ",
            "2024-01-10T00:00:00UTC",
            "２０２４-01-10T00:00:00Z",
        ] {
            assert!(p(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn extremes() {
        assert_eq!(
            p("9999-12-31T23:59:59.999999999Z"),
            Ok(253_402_300_799_999_999)
        );
        assert_eq!(
            format_us(253_402_300_799_999_999),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            p("0001-01-01T00:00:00-23:59").unwrap(),
            GO_ZERO_US + (23 * 3600 + 59 * 60) * 1_000_000
        );
    }

    #[test]
    fn clamped_formatting() {
        assert_eq!(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339_us(GO_ZERO_US), "0001-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339_us(GO_ZERO_US - 1),
            "0001-01-01T00:00:00.000000Z"
        );
        assert_eq!(format_rfc3339_us(i64::MIN), "0001-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339_us(MAX_US), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339_us(MAX_US + 1), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339_us(i64::MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            format_rfc3339_us(1_709_210_096_000_123),
            "2024-02-29T12:34:56.000123Z"
        );
        assert_eq!(p("9999-12-31T23:59:59.999999Z"), Ok(MAX_US));
    }

    #[test]
    fn offsets_that_leave_the_four_digit_years_are_refused() {
        let out = Err(TimeError("time outside years 0001-9999 in UTC"));
        assert_eq!(p("0001-01-01T00:00:00+00:01"), out);
        assert_eq!(p("0001-01-01T23:58:59.999999+23:59"), out);
        assert_eq!(p("9999-12-31T23:59:59.999999-00:01"), out);
        assert_eq!(p("9999-12-31T00:01:00-23:59"), out);
        // The edges themselves, reached through an offset, are kept exactly.
        assert_eq!(p("0001-01-01T01:00:00+01:00"), Ok(GO_ZERO_US));
        assert_eq!(p("9999-12-31T22:59:59.999999-01:00"), Ok(MAX_US));
    }

    #[test]
    fn roundtrip_many_days() {
        // Every day from 1999 to 2031 round-trips through format_us.
        let start = p("1999-01-01T00:00:00Z").unwrap();
        for d in 0..(33 * 366) {
            let us = start + d * 86_400_000_000 + 12_345_678;
            let s = format_us(us);
            assert_eq!(p(&s), Ok(us), "{s}");
        }
    }
}
