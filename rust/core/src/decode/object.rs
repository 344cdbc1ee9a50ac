//! A top-level JSON object, before its format is known: `alerts` is parsed in place (an
//! Alertmanager webhook); every other known key is captured as a raw slice of the body and parsed
//! once the format is known, so that a key of the other format is simply ignored.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::alert::{Alerts, AlertsSeed, Mode};
use super::fields::{CowStr, Opt, SeenKeys};
use super::Ctx;
use crate::error::{excerpt, PayloadError, Reason};
use crate::model::replace_nul;

/// Known top-level keys other than `alerts` (both formats).
pub(crate) const KEYS: [&str; 14] = [
    "version",
    "receiver",
    "status",
    "groupKey",
    "truncatedAlerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
];

pub(crate) fn key_index(name: &str) -> usize {
    KEYS.iter().position(|k| *k == name).unwrap_or(usize::MAX)
}

pub(crate) struct Top<'de> {
    pub alerts: Option<Alerts>,
    pub raw: [Option<&'de RawValue>; KEYS.len()],
}

impl<'de> Top<'de> {
    pub fn get(&self, name: &str) -> Option<&'de RawValue> {
        self.raw.get(key_index(name)).copied().flatten()
    }
}

pub(crate) struct TopSeed<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
    pub capacity: usize,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = Top<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Top<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = Top<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let ctx = self.ctx;
        let mut top = Top {
            alerts: None,
            raw: [None; KEYS.len()],
        };
        let mut unknown = SeenKeys::default();
        while let Some(key) = map.next_key_seed(CowStr)? {
            let dup = || -> A::Error {
                ctx.push_key(&key);
                ctx.fail(
                    Reason::DuplicateKey,
                    format!("duplicate key \"{}\"", excerpt(&key, 40)),
                )
            };
            if key == "alerts" {
                if top.alerts.is_some() {
                    return Err(dup());
                }
                let seed = AlertsSeed {
                    ctx,
                    mode: Mode::Alertmanager,
                    capacity: self.capacity,
                };
                match map.next_value_seed(seed) {
                    Ok(a) => top.alerts = Some(a),
                    Err(e) => {
                        ctx.push_key("alerts");
                        return Err(e);
                    }
                }
            } else if let Some(slot) = top.raw.get_mut(key_index(&key)) {
                if slot.is_some() {
                    return Err(dup());
                }
                match map.next_value::<&'de RawValue>() {
                    Ok(v) => *slot = Some(v),
                    Err(e) => {
                        ctx.push_key(&key);
                        return Err(e);
                    }
                }
            } else {
                if let Err(e) = map.next_value::<IgnoredAny>() {
                    ctx.push_key(&key);
                    return Err(e);
                }
                if !unknown.insert(key.clone()) {
                    return Err(dup());
                }
            }
        }
        Ok(top)
    }
}

/// Parse a captured raw value with `seed`; errors get `key` as path and body offsets.
pub(crate) fn sub<'de, S: DeserializeSeed<'de>>(
    ctx: &Ctx<'_>,
    text: &str,
    raw: &'de RawValue,
    key: &str,
    seed: S,
) -> Result<S::Value, PayloadError> {
    let s = raw.get();
    let base = (s.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    let base = if base <= text.len() { base } else { 0 };
    let mut de = serde_json::Deserializer::from_str(s);
    seed.deserialize(&mut de).map_err(|e| {
        ctx.push_key(key);
        ctx.to_payload_error(e, s, base)
    })
}

pub(crate) fn raw_offset(text: &str, raw: &RawValue) -> Option<usize> {
    let off = (raw.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    (off <= text.len()).then_some(off)
}

/// Refuse a captured value whose JSON type is not `want` (`{` or `"`); `null` is accepted.
pub(crate) fn check_kind(
    ctx: &Ctx<'_>,
    text: &str,
    raw: Option<&RawValue>,
    key: &str,
    want: u8,
) -> Result<(), PayloadError> {
    let Some(raw) = raw else { return Ok(()) };
    let first = raw.get().as_bytes().first().copied().unwrap_or(b'n');
    if first == want || first == b'n' {
        return Ok(());
    }
    ctx.push_key(key);
    let what = if want == b'{' {
        "an object"
    } else {
        "a string"
    };
    Err(ctx.error(
        Reason::WrongType,
        format!("wrong JSON type, expected {what}"),
        raw_offset(text, raw),
    ))
}

/// Optional string field of a captured value (null → absent).
pub(crate) fn opt_str(
    ctx: &Ctx<'_>,
    text: &str,
    top: &Top<'_>,
    key: &str,
) -> Result<Option<String>, PayloadError> {
    match top.get(key) {
        None => Ok(None),
        Some(raw) => {
            Ok(sub(ctx, text, raw, key, Opt(CowStr))?.map(|s| replace_nul(&s).into_owned()))
        }
    }
}
