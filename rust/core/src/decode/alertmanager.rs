//! A top-level JSON object: the Alertmanager webhook (v4) when it has `alerts`, else the generic
//! single alert when it has `labels`, else an unknown format.
//!
//! `alerts` is parsed in place; every other known key is captured as a raw slice of the body and
//! parsed once the format is known, so that a key of the other format is simply ignored.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::alert::{capacity_hint, Alerts, AlertsSeed, Mode};
use super::fields::{CowStr, Opt, SeenKeys, StatusSeed};
use super::{generic, make_batch, Ctx};
use crate::error::{excerpt, PayloadError, Reason};
use crate::model::{replace_nul, Batch, Format};

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

struct TopSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
    capacity: usize,
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

fn raw_offset(text: &str, raw: &RawValue) -> Option<usize> {
    let off = (raw.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    (off <= text.len()).then_some(off)
}

/// Refuse a captured value whose JSON type is not `want` (`{` or `"`); `null` is accepted.
fn check_kind(
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

/// A top-level object.
pub(crate) fn decode_object(ctx: &Ctx<'_>, text: &str) -> Result<Batch, PayloadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = TopSeed {
        ctx,
        capacity: capacity_hint(text.len()),
    };
    let top = seed
        .deserialize(&mut de)
        .and_then(|t| de.end().map(|_| t))
        .map_err(|e| ctx.to_payload_error(e, text, 0))?;
    match top.alerts {
        Some(_) => finish(ctx, text, top),
        None if top.get("labels").is_some() => generic::finish(ctx, text, &top),
        None => Err(PayloadError::new(
            Reason::UnknownFormat,
            "not an alert payload: an object needs \"alerts\" (Alertmanager) or \"labels\" (generic)",
        )
        .at(0)),
    }
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

/// The Alertmanager webhook (version 4).
fn finish(ctx: &Ctx<'_>, text: &str, mut top: Top<'_>) -> Result<Batch, PayloadError> {
    if let Some(raw) = top.get("version") {
        let v = sub(ctx, text, raw, "version", Opt(CowStr))?;
        if let Some(v) = v {
            if v != "4" {
                ctx.push_key("version");
                return Err(ctx.error(
                    Reason::UnsupportedVersion,
                    format!(
                        "unsupported webhook version \"{}\" (only \"4\")",
                        excerpt(&v, 10)
                    ),
                    raw_offset(text, raw),
                ));
            }
        }
    }
    if let Some(raw) = top.get("status") {
        sub(ctx, text, raw, "status", Opt(StatusSeed { ctx }))?;
    }
    if let Some(raw) = top.get("truncatedAlerts") {
        sub(ctx, text, raw, "truncatedAlerts", Opt(TruncatedSeed))?;
    }
    for key in ["groupLabels", "commonLabels", "commonAnnotations"] {
        check_kind(ctx, text, top.get(key), key, b'{')?;
    }
    check_kind(ctx, text, top.get("externalURL"), "externalURL", b'"')?;
    let receiver = opt_str(ctx, text, &top, "receiver")?.unwrap_or_default();
    let group_key = opt_str(ctx, text, &top, "groupKey")?.unwrap_or_default();
    let alerts = top.alerts.take().unwrap_or_default();
    Ok(make_batch(
        Format::Alertmanager,
        receiver,
        group_key,
        ctx,
        alerts,
        text.len(),
    ))
}

/// `truncatedAlerts`: a non-negative integer.
struct TruncatedSeed;

impl<'de> DeserializeSeed<'de> for TruncatedSeed {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_u64(self)
    }
}

impl<'de> Visitor<'de> for TruncatedSeed {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
}
