//! `cargo bench -p webhookfast-core --bench decode`: decode throughput on the real payloads, next to
//! the floor of the JSON parser alone (serde_json skipping every value), and the row encoders.

use std::hint::black_box;
use std::time::{Duration, Instant};

use webhookfast_core::{decode, Limits, RowEncoder};

fn bench<F: FnMut()>(name: &str, bytes: usize, mut f: F) {
    // Optional name filter: `cargo bench -p webhookfast-core --bench decode -- largest`.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        if !name.contains(&filter) {
            return;
        }
    }
    for _ in 0..200 {
        f();
    }
    let mut iters = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(700) {
        for _ in 0..100 {
            f();
        }
        iters += 100;
    }
    let per = start.elapsed().as_secs_f64() / iters as f64;
    let mbps = if bytes > 0 {
        format!("{:8.0} MB/s", bytes as f64 / per / 1e6)
    } else {
        String::new()
    };
    println!("{name:<48} {:9.2} µs/iter {mbps}", per * 1e6);
}

fn main() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads");
    let limits = Limits::default();
    let now = 1_800_000_000_000_000;
    for name in [
        "firing_largest.json",
        "firing_single.json",
        "prometheus_firing.json",
    ] {
        let body = std::fs::read(dir.join(name)).unwrap();
        let n = body.len();
        bench(&format!("decode {name}"), n, || {
            black_box(decode(black_box(&body), &limits, now).unwrap());
        });
        bench(&format!("  serde_json IgnoredAny floor {name}"), n, || {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap());
        });
        bench(&format!("  serde_json::Value {name}"), n, || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap());
        });
    }
    let body = std::fs::read(dir.join("firing_largest.json")).unwrap();
    let batch = decode(&body, &limits, now).unwrap();
    let batches: Vec<_> = (0..10).map(|_| &batch).collect();
    let mut reuse = RowEncoder::new(true);
    let mut fresh = RowEncoder::new(false);
    bench("pg_copy 10 x 40 alerts, reuse_buffers=true", 0, || {
        black_box(reuse.pg_copy(black_box(&batches)).unwrap());
    });
    bench("pg_copy 10 x 40 alerts, reuse_buffers=false", 0, || {
        black_box(fresh.pg_copy(black_box(&batches)).unwrap());
    });
    bench("row_tuples 10 x 40 alerts", 0, || {
        black_box(reuse.row_tuples(black_box(&batches)).unwrap());
    });
}
