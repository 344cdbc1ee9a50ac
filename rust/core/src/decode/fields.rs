//! serde seeds for the leaf fields: strings (borrowed when possible), label/annotation maps,
//! times, statuses, fingerprints, optional values; and duplicate-key tracking.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::Ctx;
use crate::error::{excerpt, Reason};
use crate::fingerprint::parse_fingerprint_hex;
use crate::model::Status;
use crate::rfc3339::{parse_rfc3339_us, GO_ZERO_US};

/// Sorted (by name), unique name/value pairs borrowed from the body where possible.
pub(crate) type Pairs<'de> = Vec<(Cow<'de, str>, Cow<'de, str>)>;

/// Any JSON string, borrowed from the body when it has no escapes.
pub(crate) struct CowStr;

impl<'de> DeserializeSeed<'de> for CowStr {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(CowStrVisitor)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A string value bounded by `max_value_bytes` (label/annotation values, generatorURL).
pub(crate) struct ValueStr<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for ValueStr<'_, '_> {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl ValueStr<'_, '_> {
    fn check<E: de::Error>(&self, len: usize, back: usize) -> Result<(), E> {
        let max = self.ctx.limits.max_value_bytes;
        if len > max {
            return Err(self.ctx.fail_back(
                Reason::ValueTooLong,
                format!("value is {len} bytes, limit is {max}"),
                back,
            ));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ValueStr<'_, '_> {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.check(v.len(), v.len() + 2)?;
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.check(v.len(), 0)?;
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Which string map: decides the limits and whether empty names are allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapKind {
    Labels,
    Annotations,
}

/// A JSON object of string → string, checked against the limits, returned sorted by name.
pub(crate) struct StrMap<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
    pub kind: MapKind,
}

impl<'de> DeserializeSeed<'de> for StrMap<'_, '_> {
    type Value = Pairs<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StrMap<'_, '_> {
    type Value = Pairs<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let limits = ctx.limits;
        let (max_n, too_many, what) = match self.kind {
            MapKind::Labels => (limits.max_labels, Reason::TooManyLabels, "labels"),
            MapKind::Annotations => (
                limits.max_annotations,
                Reason::TooManyAnnotations,
                "annotations",
            ),
        };
        let mut out: Pairs<'de> = Vec::with_capacity(8);
        while let Some(k) = map.next_key_seed(CowStr)? {
            if out.len() >= max_n {
                return Err(ctx.fail(too_many, format!("more than {max_n} {what}")));
            }
            if k.is_empty() && self.kind == MapKind::Labels {
                return Err(ctx.fail(Reason::InvalidLabel, "empty label name"));
            }
            // A NUL in a name would be stored as U+FFFD and could then collide with another name
            // (and jsonb would silently keep one of the two): refuse it. Only escaped (owned)
            // strings can hold one.
            if matches!(k, Cow::Owned(_)) && k.contains('\0') {
                ctx.push_key(&k);
                return Err(ctx.fail(Reason::InvalidLabel, format!("{what} name contains NUL")));
            }
            if k.len() > limits.max_name_bytes {
                ctx.push_key(&k);
                return Err(ctx.fail(
                    Reason::NameTooLong,
                    format!(
                        "name is {} bytes, limit is {}",
                        k.len(),
                        limits.max_name_bytes
                    ),
                ));
            }
            match map.next_value_seed(ValueStr { ctx }) {
                Ok(v) => out.push((k, v)),
                Err(e) => {
                    ctx.push_key(&k);
                    return Err(e);
                }
            }
        }
        if !out.windows(2).all(|w| w[0].0 < w[1].0) {
            out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
                let name = w[0].0.clone();
                ctx.push_key(&name);
                return Err(ctx.fail(
                    Reason::DuplicateKey,
                    format!("duplicate key \"{}\"", excerpt(&name, 40)),
                ));
            }
        }
        Ok(out)
    }
}

/// An RFC 3339 time in µs since the Unix epoch (Go's zero time included, unless refused).
pub(crate) struct Time<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
    pub reject_zero: bool,
}

impl<'de> DeserializeSeed<'de> for Time<'_, '_> {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_str(self)
    }
}

impl Time<'_, '_> {
    fn parse<E: de::Error>(&self, v: &str, back: usize) -> Result<i64, E> {
        match parse_rfc3339_us(v) {
            Ok(us) if us == GO_ZERO_US && self.reject_zero => Err(self.ctx.fail_back(
                Reason::InvalidTime,
                "startsAt is Go's zero time (unset)",
                back,
            )),
            Ok(us) => Ok(us),
            Err(e) => Err(self.ctx.fail_back(Reason::InvalidTime, e.0, back)),
        }
    }
}

impl<'de> Visitor<'de> for Time<'_, '_> {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 time string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<i64, E> {
        self.parse(v, v.len() + 2)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        self.parse(v, 0)
    }
}

/// "firing" or "resolved".
pub(crate) struct StatusSeed<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for StatusSeed<'_, '_> {
    type Value = Status;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Status, D::Error> {
        d.deserialize_str(self)
    }
}

impl StatusSeed<'_, '_> {
    fn parse<E: de::Error>(&self, v: &str, back: usize) -> Result<Status, E> {
        Status::parse(v).ok_or_else(|| {
            self.ctx.fail_back(
                Reason::InvalidStatus,
                format!(
                    "status must be \"firing\" or \"resolved\", not \"{}\"",
                    excerpt(v, 20)
                ),
                back,
            )
        })
    }
}

impl<'de> Visitor<'de> for StatusSeed<'_, '_> {
    type Value = Status;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"firing\" or \"resolved\"")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Status, E> {
        self.parse(v, v.len() + 2)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Status, E> {
        self.parse(v, 0)
    }
}

/// 16 hex digits.
pub(crate) struct FingerprintSeed<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for FingerprintSeed<'_, '_> {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl FingerprintSeed<'_, '_> {
    fn parse<E: de::Error>(&self, v: &str, back: usize) -> Result<u64, E> {
        parse_fingerprint_hex(v).ok_or_else(|| {
            self.ctx.fail_back(
                Reason::InvalidFingerprint,
                "fingerprint must be 16 hex digits",
                back,
            )
        })
    }
}

impl<'de> Visitor<'de> for FingerprintSeed<'_, '_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a 16-hex-digit string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<u64, E> {
        self.parse(v, v.len() + 2)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        self.parse(v, 0)
    }
}

/// `null` → `None`, anything else through the inner seed.
pub(crate) struct Opt<S>(pub S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Opt<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// Unknown keys seen in one object (to refuse duplicates): a short list, a set past 16.
#[derive(Default)]
pub(crate) struct SeenKeys<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenKeys<'de> {
    /// `false` when `key` was seen before.
    pub fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_keys_switches_to_a_set() {
        let mut s = SeenKeys::default();
        for i in 0..100 {
            assert!(s.insert(Cow::Owned(format!("k{i}"))));
        }
        for i in 0..100 {
            assert!(!s.insert(Cow::Owned(format!("k{i}"))));
        }
        let mut s = SeenKeys::default();
        assert!(s.insert(Cow::Borrowed("a")));
        assert!(!s.insert(Cow::Owned("a".into())));
    }
}
