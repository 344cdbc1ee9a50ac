//! Format detection and decoding: body bytes → [`Batch`] or [`PayloadError`].
//!
//! Parsing uses serde_json with hand-written visitors (strings borrowed from the body when they
//! have no escapes). The JSON path of an error is collected on the error path only: every visitor
//! that sees a child fail pushes the child's key or index into [`Ctx`], so the happy path pays
//! nothing for it. Semantic errors record their reason in [`Ctx`] and travel through serde as an
//! opaque custom error, which serde_json stamps with a line/column (turned into a byte offset).

mod alert;
mod alertmanager;
pub mod depth;
mod fields;
mod generic;
mod object;
mod prometheus;

use std::cell::{Cell, RefCell};

use serde::de;

use crate::error::{excerpt, PayloadError, Reason};
use crate::limits::Limits;
use crate::model::{Batch, Format, Status};

/// Detect the format of `body`, parse and validate it, and fingerprint every alert.
///
/// `received_at_us` (µs since the Unix epoch) stamps the batch and decides firing/resolved where
/// the payload has no status. Never panics, whatever the input.
pub fn decode(body: &[u8], limits: &Limits, received_at_us: i64) -> Result<Batch, PayloadError> {
    decode_within(body, limits, received_at_us, usize::MAX)
}

/// [`decode`], refusing with [`Reason::DecodedTooLarge`] as soon as the alerts decoded so far hold
/// more than `max_decoded_bytes` ([`Batch::decoded_bytes`]): a body is never decoded past the
/// memory its caller can spare, whatever its shape (many short labels take 10-15x their JSON).
pub fn decode_within(
    body: &[u8],
    limits: &Limits,
    received_at_us: i64,
    max_decoded_bytes: usize,
) -> Result<Batch, PayloadError> {
    decode_sized(body, limits, received_at_us, max_decoded_bytes).map(|(batch, _)| batch)
}

/// [`decode_within`], with the batch's [`Batch::decoded_bytes`], which its last check measures
/// anyway (a caller that keeps the size need not walk the alerts again).
pub fn decode_sized(
    body: &[u8],
    limits: &Limits,
    received_at_us: i64,
    max_decoded_bytes: usize,
) -> Result<(Batch, usize), PayloadError> {
    let batch = decode_body(body, limits, received_at_us, max_decoded_bytes)?;
    let held = batch.decoded_bytes();
    if held > max_decoded_bytes {
        return Err(too_large(held, max_decoded_bytes));
    }
    Ok((batch, held))
}

fn too_large(held: usize, max: usize) -> PayloadError {
    PayloadError::new(
        Reason::DecodedTooLarge,
        format!("decoded, this body takes more than {max} bytes (at least {held})"),
    )
}

fn decode_body(
    body: &[u8],
    limits: &Limits,
    received_at_us: i64,
    max_decoded_bytes: usize,
) -> Result<Batch, PayloadError> {
    let Some(first) = body
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    else {
        return Err(PayloadError::new(Reason::EmptyBody, "empty body").at(0));
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        PayloadError::new(Reason::InvalidUtf8, "body is not valid UTF-8").at(e.valid_up_to())
    })?;
    if let Err(off) = depth::check_depth(body, limits.max_depth) {
        return Err(PayloadError::new(
            Reason::TooDeep,
            format!("JSON nested deeper than {} levels", limits.max_depth),
        )
        .at(off));
    }
    let ctx = Ctx::new(limits, received_at_us);
    ctx.set_budget(max_decoded_bytes);
    match body[first] {
        b'[' => prometheus::decode(&ctx, text),
        b'{' => decode_object(&ctx, text),
        _ => match serde_json::from_str::<de::IgnoredAny>(text) {
            Ok(_) => Err(PayloadError::new(
                Reason::UnknownFormat,
                "not an alert payload: expected a JSON object or array",
            )
            .at(first)),
            Err(e) => Err(ctx.to_payload_error(e, text, 0)),
        },
    }
}

/// A top-level object: the Alertmanager webhook (v4) when it has `alerts`, else the generic single
/// alert when it has `labels`, else an unknown format.
fn decode_object(ctx: &Ctx<'_>, text: &str) -> Result<Batch, PayloadError> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = object::TopSeed {
        ctx,
        capacity: alert::capacity_hint(text.len()),
    };
    let top = seed
        .deserialize(&mut de)
        .and_then(|t| de.end().map(|_| t))
        .map_err(|e| ctx.to_payload_error(e, text, 0))?;
    match top.alerts {
        Some(_) => alertmanager::finish(ctx, text, top),
        None if top.get("labels").is_some() => generic::finish(ctx, text, &top),
        None => Err(PayloadError::new(
            Reason::UnknownFormat,
            "not an alert payload: an object needs \"alerts\" (Alertmanager) or \"labels\" (generic)",
        )
        .at(0)),
    }
}

/// What a semantic failure recorded before turning into an opaque serde error.
#[derive(Debug)]
struct Detail {
    reason: Reason,
    message: String,
    /// Bytes to go back from the position serde_json reports (to point at the value's start).
    back: usize,
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Decoding context shared by the visitors of one body.
pub(crate) struct Ctx<'l> {
    pub limits: &'l Limits,
    pub received_at_us: i64,
    detail: RefCell<Option<Detail>>,
    /// Innermost segment first; filled only while an error propagates.
    path: RefCell<Vec<Seg>>,
    /// Decoded bytes still allowed (see [`decode_within`]).
    budget: Cell<usize>,
    /// The budget the decode started with (for the message).
    budget_start: Cell<usize>,
}

/// Longest key kept in an error path.
const PATH_KEY_MAX: usize = 64;

impl<'l> Ctx<'l> {
    pub fn new(limits: &'l Limits, received_at_us: i64) -> Self {
        Ctx {
            limits,
            received_at_us,
            detail: RefCell::new(None),
            path: RefCell::new(Vec::new()),
            budget: Cell::new(usize::MAX),
            budget_start: Cell::new(usize::MAX),
        }
    }

    fn set_budget(&self, bytes: usize) {
        self.budget.set(bytes);
        self.budget_start.set(bytes);
    }

    /// Take `bytes` from the decode's budget; a serde error when it runs out.
    pub fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let left = self.budget.get();
        if bytes > left {
            let max = self.budget_start.get();
            return Err(self.fail(
                Reason::DecodedTooLarge,
                format!("decoded, this body takes more than {max} bytes"),
            ));
        }
        self.budget.set(left - bytes);
        Ok(())
    }

    /// Record a semantic failure; the returned error carries no information itself.
    pub fn fail<E: de::Error>(&self, reason: Reason, message: impl Into<String>) -> E {
        self.fail_back(reason, message, 0)
    }

    /// Like [`fail`](Self::fail), pointing `back` bytes before the position serde_json reports.
    pub fn fail_back<E: de::Error>(
        &self,
        reason: Reason,
        message: impl Into<String>,
        back: usize,
    ) -> E {
        *self.detail.borrow_mut() = Some(Detail {
            reason,
            message: message.into(),
            back,
        });
        E::custom(reason.as_str())
    }

    pub fn push_key(&self, key: &str) {
        self.path
            .borrow_mut()
            .push(Seg::Key(excerpt(key, PATH_KEY_MAX)));
    }

    pub fn push_index(&self, i: usize) {
        self.path.borrow_mut().push(Seg::Index(i));
    }

    fn take_path(&self) -> Option<String> {
        let segs = std::mem::take(&mut *self.path.borrow_mut());
        if segs.is_empty() {
            return None;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        Some(out)
    }

    /// An error found outside serde (after a value was parsed), at the current path.
    pub fn error(
        &self,
        reason: Reason,
        message: impl Into<String>,
        offset: Option<usize>,
    ) -> PayloadError {
        PayloadError {
            reason,
            path: self.take_path(),
            offset,
            message: message.into(),
        }
    }

    /// Turn a serde_json error from parsing `text` (found at byte `base` of the body) into a
    /// [`PayloadError`].
    pub fn to_payload_error(
        &self,
        err: serde_json::Error,
        text: &str,
        base: usize,
    ) -> PayloadError {
        let pos = if err.line() > 0 {
            Some(base + line_col_to_offset(text, err.line(), err.column()))
        } else {
            None
        };
        let path = self.take_path();
        if let Some(d) = self.detail.borrow_mut().take() {
            return PayloadError {
                reason: d.reason,
                path,
                offset: pos.map(|p| p.saturating_sub(d.back)),
                message: d.message,
            };
        }
        let full = err.to_string();
        let msg = match full.rfind(" at line ") {
            Some(i) if err.line() > 0 => &full[..i],
            _ => full.as_str(),
        };
        let (reason, message) = match err.classify() {
            serde_json::error::Category::Data => (Reason::WrongType, data_message(msg)),
            _ if msg.starts_with("recursion limit exceeded") => {
                (Reason::TooDeep, "JSON nested too deeply".to_owned())
            }
            _ => (
                Reason::InvalidJson,
                format!("invalid JSON: {}", excerpt(msg, 80)),
            ),
        };
        PayloadError {
            reason,
            path,
            offset: pos,
            message,
        }
    }
}

/// serde's "invalid type: string \"…\", expected X" without echoing the input.
fn data_message(msg: &str) -> String {
    let expected = msg.rfind(", expected ").map(|i| &msg[i + 2..]);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let kind = rest.split([' ', ',']).next().unwrap_or("");
            let kind = if kind == "floating" {
                "floating point"
            } else {
                kind
            };
            let what = if prefix.starts_with("invalid type") {
                "wrong JSON type"
            } else {
                "invalid value"
            };
            return match expected {
                Some(e) => format!("{what}: got {kind}, {}", excerpt(e, 60)),
                None => format!("{what}: got {kind}"),
            };
        }
    }
    "wrong JSON type".to_owned()
}

/// serde_json's 1-based line and 0-based column (bytes) → byte offset into `text`.
fn line_col_to_offset(text: &str, line: usize, column: usize) -> usize {
    let b = text.as_bytes();
    let mut start = 0;
    for _ in 1..line {
        match b[start..].iter().position(|&c| c == b'\n') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    (start + column).min(b.len())
}

/// Assemble a batch from decoded alerts.
pub(crate) fn make_batch(
    format: Format,
    receiver: String,
    group_key: String,
    ctx: &Ctx<'_>,
    alerts: alert::Alerts,
    body_bytes: usize,
) -> Batch {
    let resolved = alerts
        .list
        .iter()
        .filter(|a| a.status == Status::Resolved)
        .count();
    Batch {
        format,
        receiver,
        group_key,
        received_at_us: ctx.received_at_us,
        firing: alerts.list.len() - resolved,
        resolved,
        fingerprint_mismatches: alerts.mismatches,
        nul_replaced: alerts.nul_replaced,
        body_bytes,
        alerts: alerts.list,
    }
}

#[cfg(test)]
mod tests;
