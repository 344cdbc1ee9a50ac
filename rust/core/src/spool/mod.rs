//! The durable local spool: request bodies that could not be committed to the database in time,
//! appended to segment files (framed, CRC-checked, fsynced per group) until a replayer has
//! committed them. [`frame`] is the record format, [`segment`] the files.

pub mod frame;
pub mod segment;

pub use segment::{list, read, segment_path, Contents, Quarantined, Record, Recovery, Writer};
