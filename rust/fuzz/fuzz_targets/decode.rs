//! `decode` must never panic, hang or blow its memory, whatever the bytes; when it succeeds, the
//! batch must be self-consistent (counts, limits, fingerprints recomputable from the labels).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhookfast_core::{decode, fingerprint_iter, Limits, Status};

/// "Now" fixed, so that a crash replays identically.
const RECEIVED_AT_US: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match decode(data, &limits, RECEIVED_AT_US) {
        Err(err) => {
            if let Some(off) = err.offset {
                assert!(off <= data.len(), "error offset {off} beyond the body ({} bytes)", data.len());
            }
        }
        Ok(batch) => {
            assert!(batch.alerts.len() <= limits.max_alerts);
            assert_eq!(batch.firing + batch.resolved, batch.alerts.len());
            let resolved = batch.alerts.iter().filter(|a| a.status == Status::Resolved).count();
            assert_eq!(resolved, batch.resolved);
            for alert in &batch.alerts {
                assert!(alert.labels.len() <= limits.max_labels);
                assert!(alert.annotations.len() <= limits.max_annotations);
                if batch.nul_replaced == 0 {
                    assert!(alert.labels.windows(2).all(|w| w[0].0 < w[1].0), "labels not sorted/unique");
                }
                if batch.nul_replaced == 0 {
                    let fp = fingerprint_iter(alert.labels.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
                    assert_eq!(fp, alert.fingerprint, "fingerprint does not match the labels");
                }
            }
        }
    }
});
