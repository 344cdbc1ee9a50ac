//! The generic single alert: a top-level object with `labels` (and no `alerts`):
//! `{labels, annotations?, status?, startsAt?, endsAt?, generatorURL?, receiver?}`.

use super::alert::{build, Alerts, Mode, RawAlert};
use super::fields::{MapKind, Opt, StatusSeed, StrMap, Time, ValueStr};
use super::object::{opt_str, sub, Top};
use super::{make_batch, Ctx};
use crate::error::{PayloadError, Reason};
use crate::model::{Batch, Format};

pub(crate) fn finish(ctx: &Ctx<'_>, text: &str, top: &Top<'_>) -> Result<Batch, PayloadError> {
    let mut raw = RawAlert::default();
    if let Some(v) = top.get("labels") {
        raw.labels = Some(sub(
            ctx,
            text,
            v,
            "labels",
            StrMap {
                ctx,
                kind: MapKind::Labels,
            },
        )?);
    }
    if let Some(v) = top.get("annotations") {
        raw.annotations = sub(
            ctx,
            text,
            v,
            "annotations",
            Opt(StrMap {
                ctx,
                kind: MapKind::Annotations,
            }),
        )?;
    }
    if let Some(v) = top.get("status") {
        raw.status = sub(ctx, text, v, "status", Opt(StatusSeed { ctx }))?;
    }
    if let Some(v) = top.get("startsAt") {
        raw.starts_at = sub(
            ctx,
            text,
            v,
            "startsAt",
            Opt(Time {
                ctx,
                reject_zero: true,
            }),
        )?;
    }
    if let Some(v) = top.get("endsAt") {
        raw.ends_at = sub(
            ctx,
            text,
            v,
            "endsAt",
            Opt(Time {
                ctx,
                reject_zero: false,
            }),
        )?;
    }
    if let Some(v) = top.get("generatorURL") {
        raw.generator_url = sub(ctx, text, v, "generatorURL", Opt(ValueStr { ctx }))?;
    }
    let receiver = opt_str(ctx, text, top, "receiver")?.unwrap_or_default();
    let built = build(raw, Mode::Generic, ctx.received_at_us).map_err(|refusal| {
        let (field, reason, message) = refusal.explain();
        ctx.push_key(field);
        ctx.error(reason, message, None)
    })?;
    if ctx.limits.max_alerts < 1 {
        return Err(ctx.error(Reason::TooManyAlerts, "more than 0 alerts", Some(0)));
    }
    let mut alerts = Alerts::default();
    alerts.push(built);
    Ok(make_batch(
        Format::Generic,
        receiver,
        String::new(),
        ctx,
        alerts,
        text.len(),
    ))
}
