//! One alert object (Alertmanager's and Prometheus' shape) and arrays of them; building the
//! stored [`Alert`] (fingerprint, NUL replacement, canonical JSON).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{
    CowStr, FingerprintSeed, MapKind, Opt, Pairs, SeenKeys, StatusSeed, StrMap, Time, ValueStr,
};
use super::Ctx;
use crate::error::{excerpt, Reason};
use crate::fingerprint::fingerprint_iter;
use crate::model::{write_json_str, Alert, Status};
use crate::rfc3339::GO_ZERO_US;

/// Which rules apply to an alert object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// status, labels, startsAt required; fingerprint checked.
    Alertmanager,
    /// Only labels required; status derived from endsAt; `status`/`fingerprint` keys ignored.
    Prometheus,
    /// Only labels required; status optional (derived from endsAt when absent).
    Generic,
}

/// An alert's fields as found in the body.
#[derive(Default)]
pub(crate) struct RawAlert<'de> {
    pub status: Option<Status>,
    pub labels: Option<Pairs<'de>>,
    pub annotations: Option<Pairs<'de>>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub generator_url: Option<Cow<'de, str>>,
    pub fingerprint: Option<u64>,
}

/// Decoded alerts of one body with their counters.
#[derive(Default)]
pub(crate) struct Alerts {
    pub list: Vec<Alert>,
    pub mismatches: usize,
    pub nul_replaced: usize,
}

impl Alerts {
    pub fn push(&mut self, b: Built) {
        self.mismatches += b.mismatch as usize;
        self.nul_replaced += b.nul as usize;
        self.list.push(b.alert);
    }
}

pub(crate) struct Built {
    pub alert: Alert,
    pub mismatch: bool,
    pub nul: bool,
}

/// Why [`build`] refused an alert whose fields each parsed.
pub(crate) enum Refusal {
    /// A required field is missing.
    Missing(&'static str),
    /// `endsAt` is before `startsAt` (Alertmanager's API refuses it too: "start time must be
    /// before end time"); it would give a negative time to resolve.
    EndsBeforeStarts,
}

impl Refusal {
    /// The field the error points at, its code and message.
    pub(crate) fn explain(&self) -> (&'static str, Reason, String) {
        match self {
            Refusal::Missing(field) => (
                field,
                Reason::MissingField,
                format!("missing required field \"{field}\""),
            ),
            Refusal::EndsBeforeStarts => (
                "endsAt",
                Reason::InvalidTime,
                "endsAt is before startsAt".to_owned(),
            ),
        }
    }
}

/// The stored form of a string (U+0000 → U+FFFD); sets `nul` when something was replaced.
/// A string borrowed from the body had no escapes, so it holds no U+0000 (JSON forbids raw
/// control characters): only unescaped (owned) strings need the scan.
#[inline]
fn store(s: Cow<'_, str>, nul: &mut bool) -> String {
    match s {
        Cow::Borrowed(b) => b.to_owned(),
        Cow::Owned(o) if o.as_bytes().contains(&0) => {
            *nul = true;
            o.replace('\0', "\u{FFFD}")
        }
        Cow::Owned(o) => o,
    }
}

/// Append `s` as a JSON string literal. A string borrowed from the body has nothing to escape
/// (no `\\` in the source, and no raw `"` or control character in valid JSON), so it is copied.
#[inline]
fn push_json_str(out: &mut String, s: &str, borrowed: bool) {
    if borrowed {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        write_json_str(out, s);
    }
}

/// Stored pairs and their canonical JSON, built in one pass (the pairs arrive sorted, and names
/// holding a NUL were refused while parsing, so replacing U+0000 in values keeps that order).
fn store_pairs(pairs: Pairs<'_>, nul: &mut bool) -> (Vec<(String, String)>, String) {
    let len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut json = String::with_capacity(len + 2);
    json.push('{');
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let (k_borrowed, v_borrowed) =
            (matches!(k, Cow::Borrowed(_)), matches!(v, Cow::Borrowed(_)));
        let k = store(k, nul);
        let v = store(v, nul);
        if !out.is_empty() {
            json.push(',');
        }
        push_json_str(&mut json, &k, k_borrowed);
        json.push(':');
        push_json_str(&mut json, &v, v_borrowed);
        out.push((k, v));
    }
    json.push('}');
    (out, json)
}

/// Validate required fields, derive the status, fingerprint and build the stored alert.
pub(crate) fn build(raw: RawAlert<'_>, mode: Mode, received_at_us: i64) -> Result<Built, Refusal> {
    let labels = raw.labels.ok_or(Refusal::Missing("labels"))?;
    if mode == Mode::Alertmanager {
        if raw.status.is_none() {
            return Err(Refusal::Missing("status"));
        }
        if raw.starts_at.is_none() {
            return Err(Refusal::Missing("startsAt"));
        }
    }
    let ends_at_us = raw.ends_at.filter(|&e| e != GO_ZERO_US);
    // Without startsAt, Alertmanager's API starts an ended alert at its end (else at arrival).
    let starts_at_us = raw.starts_at.or(ends_at_us).unwrap_or(received_at_us);
    if ends_at_us.is_some_and(|e| e < starts_at_us) {
        return Err(Refusal::EndsBeforeStarts);
    }
    let status = match raw.status {
        Some(s) if mode != Mode::Prometheus => s,
        _ => match ends_at_us {
            Some(e) if e <= received_at_us => Status::Resolved,
            _ => Status::Firing,
        },
    };
    let fingerprint = fingerprint_iter(labels.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let mismatch = mode == Mode::Alertmanager && raw.fingerprint.is_some_and(|f| f != fingerprint);

    let mut nul = false;
    let (labels, labels_json) = store_pairs(labels, &mut nul);
    let (annotations, annotations_json) =
        store_pairs(raw.annotations.unwrap_or_default(), &mut nul);
    let generator_url = store(raw.generator_url.unwrap_or(Cow::Borrowed("")), &mut nul);
    let find = |name: &str| {
        labels
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .map(|i| labels[i].1.clone())
            .unwrap_or_default()
    };
    let alertname = find("alertname");
    let severity = find("severity");
    let alert = Alert {
        fingerprint,
        status,
        starts_at_us,
        ends_at_us,
        labels_json,
        annotations_json,
        labels,
        annotations,
        alertname,
        severity,
        generator_url,
    };
    Ok(Built {
        alert,
        mismatch,
        nul,
    })
}

/// One alert object.
pub(crate) struct AlertSeed<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
    pub mode: Mode,
}

impl<'de> DeserializeSeed<'de> for AlertSeed<'_, '_> {
    type Value = Built;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Built, D::Error> {
        d.deserialize_map(self)
    }
}

const F_STATUS: u8 = 1;
const F_LABELS: u8 = 2;
const F_ANNOTATIONS: u8 = 4;
const F_STARTS: u8 = 8;
const F_ENDS: u8 = 16;
const F_URL: u8 = 32;
const F_FP: u8 = 64;

impl<'de> Visitor<'de> for AlertSeed<'_, '_> {
    type Value = Built;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an alert object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Built, A::Error> {
        let ctx = self.ctx;
        let am = self.mode == Mode::Alertmanager;
        let mut raw = RawAlert::default();
        let mut seen: u8 = 0;
        let mut unknown = SeenKeys::default();
        while let Some(key) = map.next_key_seed(CowStr)? {
            let (bit, name): (u8, &'static str) = match &*key {
                "status" if am => (F_STATUS, "status"),
                "labels" => (F_LABELS, "labels"),
                "annotations" => (F_ANNOTATIONS, "annotations"),
                "startsAt" => (F_STARTS, "startsAt"),
                "endsAt" => (F_ENDS, "endsAt"),
                "generatorURL" => (F_URL, "generatorURL"),
                "fingerprint" if am => (F_FP, "fingerprint"),
                _ => (0, ""),
            };
            if bit == 0 {
                let r = map.next_value::<IgnoredAny>();
                if let Err(e) = r {
                    ctx.push_key(&key);
                    return Err(e);
                }
                if !unknown.insert(key.clone()) {
                    ctx.push_key(&key);
                    return Err(ctx.fail(
                        Reason::DuplicateKey,
                        format!("duplicate key \"{}\"", excerpt(&key, 40)),
                    ));
                }
                continue;
            }
            if seen & bit != 0 {
                ctx.push_key(name);
                return Err(ctx.fail(Reason::DuplicateKey, format!("duplicate key \"{name}\"")));
            }
            seen |= bit;
            let r = match bit {
                F_STATUS => map
                    .next_value_seed(StatusSeed { ctx })
                    .map(|v| raw.status = Some(v)),
                F_LABELS => map
                    .next_value_seed(StrMap {
                        ctx,
                        kind: MapKind::Labels,
                    })
                    .map(|v| raw.labels = Some(v)),
                F_ANNOTATIONS => map
                    .next_value_seed(Opt(StrMap {
                        ctx,
                        kind: MapKind::Annotations,
                    }))
                    .map(|v| raw.annotations = v),
                F_STARTS => map
                    .next_value_seed(Opt(Time {
                        ctx,
                        reject_zero: true,
                    }))
                    .map(|v| raw.starts_at = v),
                F_ENDS => map
                    .next_value_seed(Opt(Time {
                        ctx,
                        reject_zero: false,
                    }))
                    .map(|v| raw.ends_at = v),
                F_URL => map
                    .next_value_seed(Opt(ValueStr { ctx }))
                    .map(|v| raw.generator_url = v),
                _ => map
                    .next_value_seed(Opt(FingerprintSeed { ctx }))
                    .map(|v| raw.fingerprint = v),
            };
            if let Err(e) = r {
                ctx.push_key(name);
                return Err(e);
            }
        }
        build(raw, self.mode, ctx.received_at_us).map_err(|refusal| {
            let (field, reason, message) = refusal.explain();
            ctx.push_key(field);
            ctx.fail(reason, message)
        })
    }
}

/// An array of alert objects, at most `max_alerts` long.
pub(crate) struct AlertsSeed<'c, 'l> {
    pub ctx: &'c Ctx<'l>,
    pub mode: Mode,
    pub capacity: usize,
}

impl<'de> DeserializeSeed<'de> for AlertsSeed<'_, '_> {
    type Value = Alerts;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Alerts, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AlertsSeed<'_, '_> {
    type Value = Alerts;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of alerts")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Alerts, A::Error> {
        let ctx = self.ctx;
        let max = ctx.limits.max_alerts;
        let mut out = Alerts {
            list: Vec::with_capacity(self.capacity.min(max)),
            ..Alerts::default()
        };
        loop {
            let i = out.list.len();
            if i >= max {
                return match seq.next_element::<IgnoredAny>() {
                    Ok(None) => Ok(out),
                    Ok(Some(_)) => {
                        ctx.push_index(i);
                        Err(ctx.fail(Reason::TooManyAlerts, format!("more than {max} alerts")))
                    }
                    Err(e) => {
                        ctx.push_index(i);
                        Err(e)
                    }
                };
            }
            match seq.next_element_seed(AlertSeed {
                ctx,
                mode: self.mode,
            }) {
                Ok(Some(b)) => {
                    // A lower bound of what the batch will hold (its vector's spare capacity is
                    // counted by the exact check after decoding).
                    let held = b.alert.heap_bytes() + std::mem::size_of::<Alert>();
                    if let Err(e) = ctx.charge(held) {
                        ctx.push_index(i);
                        return Err(e);
                    }
                    out.push(b)
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    ctx.push_index(i);
                    return Err(e);
                }
            }
        }
    }
}

/// A capacity guess from the body size (an alert is rarely under ~200 bytes).
pub(crate) fn capacity_hint(body_len: usize) -> usize {
    (body_len / 256).clamp(1, 4096)
}
