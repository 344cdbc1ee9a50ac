//! The Alertmanager webhook (version 4): a top-level object with `alerts`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

use super::fields::{CowStr, Opt, StatusSeed};
use super::object::{check_kind, opt_str, raw_offset, sub, Top};
use super::{make_batch, Ctx};
use crate::error::{excerpt, PayloadError, Reason};
use crate::model::{Batch, Format};

/// The Alertmanager webhook (version 4).
pub(crate) fn finish(ctx: &Ctx<'_>, text: &str, mut top: Top<'_>) -> Result<Batch, PayloadError> {
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
