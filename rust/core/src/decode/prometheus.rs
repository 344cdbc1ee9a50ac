//! Prometheus' alert list (what it POSTs to Alertmanager's `/api/v2/alerts`): a top-level array
//! of `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`. No status: an alert is firing
//! while its `endsAt` is absent, zero or after `received_at`, resolved once it is not.

use serde::de::DeserializeSeed;

use super::alert::{capacity_hint, AlertsSeed, Mode};
use super::{make_batch, Ctx};
use crate::error::PayloadError;
use crate::model::{Batch, Format};

pub(crate) fn decode(ctx: &Ctx<'_>, text: &str) -> Result<Batch, PayloadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = AlertsSeed {
        ctx,
        mode: Mode::Prometheus,
        capacity: capacity_hint(text.len()),
    };
    let alerts = seed
        .deserialize(&mut de)
        .and_then(|a| de.end().map(|_| a))
        .map_err(|e| ctx.to_payload_error(e, text, 0))?;
    Ok(make_batch(
        Format::Prometheus,
        String::new(),
        String::new(),
        ctx,
        alerts,
        text.len(),
    ))
}
