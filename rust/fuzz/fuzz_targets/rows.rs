//! decode → rows: whatever the bytes, `RowEncoder` must never panic, and the rows it writes must
//! stay proportional to the body (per-notification strings such as the receiver are written once,
//! not once per alert). Run with `FUZZ_TARGET=rows ./scripts/fuzz.sh`; libFuzzer's -malloc_limit_mb
//! (set there) turns any over-allocation into a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhookfast_core::{decode, Limits, RowEncoder};

/// "Now" fixed, so that a crash replays identically.
const RECEIVED_AT_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

/// Fixed bytes of a row, whatever it holds: tuple header, field lengths, integers, timestamps,
/// status and source names (generously).
const ROW_OVERHEAD: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode(data, &Limits::default(), RECEIVED_AT_US) else {
        return;
    };
    // The same request twice in one flush (a retry, an HA twin): it collapses into the same rows.
    let mut twin = batch.clone();
    twin.received_at_us += 1;
    let batches = [&batch, &twin];
    let alerts = batch.len();

    let mut encoder = RowEncoder::new(true);
    let copy = encoder.pg_copy(&batches).expect("a fuzz input fits in memory").clone();
    assert!(copy.group_rows <= 1, "one request is one notification group");
    assert!(copy.label_set_rows <= alerts && copy.alert_rows <= alerts);
    assert!(copy.event_rows <= 2 * alerts, "at most a firing and a resolved row per alert");
    // Every string of the rows is a copy of a part of the body (escapes only shrink when stored
    // and grow back when written as JSON), stored at most once per label set, event or alert, and
    // each body byte ends up in at most: labels (+ alertname/severity), annotations, the
    // generator URL, or the group.
    let total = copy.groups.len() + copy.label_sets.len() + copy.events.len() + copy.alerts.len();
    let bound = 4 * 21 + 3 * ROW_OVERHEAD * (alerts + 1) + 4 * data.len();
    assert!(total <= bound, "rows of {total} bytes for a {} byte body ({alerts} alerts)", data.len());

    let rows = encoder.row_tuples(&batches).expect("a fuzz input fits in memory");
    assert_eq!(rows.groups.len(), copy.group_rows);
    assert_eq!(rows.label_sets.len(), copy.label_set_rows);
    assert_eq!(rows.events.len(), copy.event_rows);
    assert_eq!(rows.alerts.len(), copy.alert_rows);
    for alert in &rows.alerts {
        assert_eq!(alert.6, 2, "both deliveries counted");
        assert_eq!(alert.7, batch.group_id());
    }
});
