// Deterministic cost probe for callgrind (the shared CI/dev machines are too noisy for timers):
//
// ```text
// cargo build --release --example ircount -p webhookfast-core
// valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*ircount*measure*' \
//     target/release/examples/ircount decode largest 50
// ```
//
// Only `measure` (the loop body, `n` times) is counted, so Ir / n is the cost of one call.
// Payloads: `single` / `largest` fixtures, or `gen:N` (N alerts cycled from the largest fixture,
// each with its own `instance` label and correct fingerprint). Modes: `decode`, `floor` (serde_json
// skipping everything), and `pgcopy` / `sqlite` over 100 decoded batches of the payload.

use std::hint::black_box;

use serde_json::Value;
use webhookfast_core::{decode, fingerprint, fingerprint_hex, Batch, Limits, RowEncoder};

const NOW: i64 = 1_800_000_000_000_000;

fn fixture(name: &str) -> Vec<u8> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads");
    std::fs::read(dir.join(name)).unwrap()
}

/// `n` alerts cycled from the largest fixture, escaped the way Alertmanager (Go) escapes.
fn generated(n: usize) -> Vec<u8> {
    let mut top: Value = serde_json::from_slice(&fixture("firing_largest.json")).unwrap();
    let src = top["alerts"].as_array().unwrap().clone();
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            let mut a = src[i % src.len()].clone();
            a["labels"]["instance"] = Value::from(format!("host-{i}:9100"));
            let labels: Vec<(String, String)> = a["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            a["fingerprint"] = Value::from(fingerprint_hex(fingerprint(&labels)));
            a
        })
        .collect();
    top["alerts"] = Value::from(alerts);
    serde_json::to_string(&top)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

#[inline(never)]
fn measure<F: FnMut()>(n: usize, mut f: F) {
    for _ in 0..n {
        f();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, payload, n) = (&args[1], &args[2], args[3].parse::<usize>().unwrap());
    let body = match payload.as_str() {
        "single" => fixture("firing_single.json"),
        "largest" => fixture("firing_largest.json"),
        p => generated(p.strip_prefix("gen:").unwrap().parse().unwrap()),
    };
    let limits = Limits::default();
    match mode.as_str() {
        "decode" => measure(n, || {
            black_box(decode(black_box(&body), &limits, NOW).unwrap());
        }),
        // The parser alone (serde_json skipping every value): the floor for `decode`.
        "floor" => measure(n, || {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap());
        }),
        "pgcopy" | "sqlite" => {
            let batches: Vec<Batch> = (0..100)
                .map(|i| decode(&body, &limits, NOW + i * 1_000_000).unwrap())
                .collect();
            let refs: Vec<&Batch> = batches.iter().collect();
            let mut enc = RowEncoder::new(true);
            enc.pg_copy(&refs).unwrap(); // warm the reused buffers
            if mode == "pgcopy" {
                measure(n, || {
                    black_box(enc.pg_copy(black_box(&refs)).unwrap());
                });
            } else {
                measure(n, || {
                    black_box(enc.row_tuples(black_box(&refs)).unwrap());
                });
            }
        }
        m => panic!("unknown mode {m}"),
    }
}
