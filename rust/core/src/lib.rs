//! Pure-Rust core of webhookfast (no Python): detects and decodes alert payloads, validates them
//! against [`Limits`], computes Prometheus fingerprints and encodes storage rows.
//!
//! The entry point is [`decode`]; [`RowEncoder`] turns decoded batches into PostgreSQL binary COPY
//! streams or SQLite rows; [`answers`] writes the big JSON answers of the history API and
//! [`stats`] aggregates the rows of a statistics window (read as PostgreSQL arrays by [`pgarray`],
//! alertnames from [`alertnames`]).

pub mod access_log;
pub mod ack;
pub mod alertnames;
pub mod answers;
pub mod decode;
pub mod error;
pub mod fingerprint;
pub mod limits;
pub mod model;
pub mod pgarray;
pub mod promregex;
pub mod queue_bounds;
pub mod rfc3339;
pub mod rows;
pub mod spool;
pub mod sqlite;
pub mod stats;

pub use decode::{decode, decode_sized, decode_within};
pub use error::{PayloadError, Reason};
pub use fingerprint::{
    fingerprint, fingerprint_from_int, fingerprint_hex, fingerprint_iter, fingerprint_sorted,
    fingerprint_to_int, parse_fingerprint_hex,
};
pub use limits::Limits;
pub use model::{Alert, Batch, Format, Status};

pub use rows::{
    AlertTuple, EventTuple, GroupTuple, LabelSetTuple, OutOfMemory, PgCopy, RowEncoder, RowTuples,
};
