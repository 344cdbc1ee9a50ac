//! Decoder tests: formats, fixtures, every error reason, paths and offsets.

use super::*;
use crate::fingerprint::fingerprint_hex;
use crate::rfc3339::parse_rfc3339_us;

const NOW: i64 = 1_800_000_000_000_000; // 2027-01-15T08:00:00Z

fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/payloads")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

fn ok(body: &str) -> Batch {
    decode(body.as_bytes(), &Limits::default(), NOW).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn err(body: &str) -> PayloadError {
    err_with(body, &Limits::default())
}

fn err_with(body: &str, limits: &Limits) -> PayloadError {
    match decode(body.as_bytes(), limits, NOW) {
        Ok(b) => panic!("{body} should fail, got {b:?}"),
        Err(e) => {
            assert!(e.message.len() < 200, "message too long: {}", e.message);
            e
        }
    }
}

fn am(alerts: &str) -> String {
    format!(
        r#"{{"version":"4","receiver":"r","status":"firing","groupKey":"g","alerts":[{alerts}]}}"#
    )
}

const A1: &str =
    r#"{"status":"firing","labels":{"alertname":"Alert1"},"startsAt":"2025-01-10T10:00:00Z"}"#;

#[test]
fn every_fixture_fingerprint_matches_alertmanager() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".json") || name.ends_with(".headers.json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let batch =
            decode(&body, &Limits::default(), NOW).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(batch.fingerprint_mismatches, 0, "{name}");
        // Compare with the fingerprints Alertmanager itself sent.
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(alerts) = v.get("alerts").and_then(|a| a.as_array()) {
            assert_eq!(alerts.len(), batch.len());
            for (a, got) in alerts.iter().zip(batch.fingerprints()) {
                if let Some(fp) = a.get("fingerprint").and_then(|f| f.as_str()) {
                    assert_eq!(fp, got, "{name}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} fingerprints checked");
}

#[test]
fn alertmanager_largest() {
    let body = fixture("firing_largest.json");
    let b = decode(&body, &Limits::default(), NOW).unwrap();
    assert_eq!(b.format, Format::Alertmanager);
    assert_eq!(b.len(), 40);
    assert_eq!(b.firing, 40);
    assert_eq!(b.resolved, 0);
    assert_eq!(b.body_bytes, body.len());
    assert_eq!(b.receiver, "webhookfast");
    assert!(!b.group_key.is_empty());
    for a in &b.alerts {
        assert_eq!(a.ends_at_us, None);
        assert!(a.labels.windows(2).all(|w| w[0].0 < w[1].0));
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&a.labels_json).unwrap();
        assert_eq!(parsed.len(), a.labels.len());
    }
}

#[test]
fn alertmanager_single_fields() {
    let b = decode(&fixture("firing_single.json"), &Limits::default(), NOW).unwrap();
    let a = &b.alerts[0];
    assert_eq!(fingerprint_hex(a.fingerprint), "1a8c34c6c39d78c5");
    assert_eq!(a.alertname, "Température élevée");
    assert_eq!(a.severity, "page ⚠️");
    assert_eq!(a.status, Status::Firing);
    assert_eq!(
        a.starts_at_us,
        parse_rfc3339_us("2026-11-27T18:39:21.835Z").unwrap()
    );
    assert_eq!(a.ends_at_us, None);
    assert!(a
        .generator_url
        .starts_with("http://prometheus.example.internal:9090/graph?g0.expr=up%7Bi%3D"));
    assert_eq!(a.annotations.len(), 3);
    assert!(a
        .annotations_json
        .starts_with(r#"{"description":"Value is 95.90% (threshold 90%).\nSecond line"#));
    assert!(a.annotations_json.contains("<b>&amp;</b>"));
    assert_eq!(
        a.labels_json,
        r#"{"alertname":"Température élevée","instance":"C:\\hosts\\3","job":"blackbox \"http\"","severity":"page ⚠️","team":"团队-存储"}"#
    );
}

#[test]
fn alertmanager_resolved_group() {
    let b = decode(&fixture("resolved_group.json"), &Limits::default(), NOW).unwrap();
    assert!(b.resolved > 0);
    for a in b.alerts.iter().filter(|a| a.status == Status::Resolved) {
        assert!(a.ends_at_us.is_some());
    }
}

#[test]
fn handwritten_minimal() {
    let b = decode(
        &fixture("handwritten_minimal_v4.json"),
        &Limits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!((b.firing, b.resolved), (2, 1));
    assert_eq!(b.fingerprints()[0], "0f8c8eae06af0c03");
    assert_eq!(b.group_key, "test");
    assert_eq!(b.receiver, "default");
    assert_eq!(
        b.alerts[1].ends_at_us,
        Some(parse_rfc3339_us("2025-01-10T11:00:00Z").unwrap())
    );
    assert_eq!(b.alerts[0].annotations_json, "{}");
    assert_eq!(b.alerts[0].generator_url, "");
}

#[test]
fn nul_is_replaced_but_fingerprint_uses_original_bytes() {
    let b = decode(&fixture("firing_edge_nul.json"), &Limits::default(), NOW).unwrap();
    assert_eq!(b.fingerprint_mismatches, 0);
    assert_eq!(b.fingerprints()[0], "50005477a8757573");
    assert_eq!(b.nul_replaced, 1);
    let a = &b.alerts[0];
    assert_eq!(a.labels[1].1, "a\u{FFFD}b\u{1}c\u{1f}");
    assert!(!a.labels_json.contains("\\u0000"));
    assert!(a.labels_json.contains("\\u0001"));
    // NUL in an annotation, generatorURL and receiver too.
    let body = r#"{"receiver":"r\u0000","alerts":[{"status":"firing","labels":{"a":"x"},"annotations":{"s":"\u0000"},"generatorURL":"u\u0000","startsAt":"2025-01-10T10:00:00Z"}]}"#;
    let b = ok(body);
    assert_eq!(b.receiver, "r\u{FFFD}");
    assert_eq!(b.nul_replaced, 1);
    let a = &b.alerts[0];
    assert_eq!(a.annotations[0].1, "\u{FFFD}");
    assert_eq!(a.generator_url, "u\u{FFFD}");
}

#[test]
fn nul_in_a_name_is_refused() {
    // Replaced, "a\u0000" would collide with a real "a\u{FFFD}" label.
    for (body, path) in [
        (
            r#"{"alerts":[{"status":"firing","labels":{"a\u0000":"1","a\ufffd":"2"},"startsAt":"2025-01-10T10:00:00Z"}]}"#,
            "alerts[0].labels.a\u{0}",
        ),
        (
            r#"{"labels":{"a":"1"},"annotations":{"n\u0000":"x"}}"#,
            "annotations.n\u{0}",
        ),
    ] {
        let e = decode(body.as_bytes(), &Limits::default(), NOW).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidLabel, "{body}");
        assert_eq!(e.path.as_deref(), Some(path));
    }
}

#[test]
fn controls_fixture() {
    let b = decode(
        &fixture("firing_edge_controls.json"),
        &Limits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(b.fingerprints()[0], "f3b41f85c02b2cfe");
    assert_eq!(b.nul_replaced, 0);
    assert!(b.alerts[0].labels_json.contains(r#""Ctl\tName\u0007""#));
}

#[test]
fn prometheus_fixtures() {
    let body = fixture("prometheus_firing.json");
    let before = parse_rfc3339_us("2026-11-27T21:46:00Z").unwrap();
    let b = decode(&body, &Limits::default(), before).unwrap();
    assert_eq!(b.format, Format::Prometheus);
    assert_eq!(b.resolved, 0);
    assert!(b.firing > 0);
    assert_eq!(b.receiver, "");
    assert_eq!(b.group_key, "");
    // endsAt is kept as sent (the expiry Prometheus announced).
    assert_eq!(
        b.alerts[0].ends_at_us,
        Some(parse_rfc3339_us("2026-11-27T21:49:14.593Z").unwrap())
    );
    // After endsAt, the same body is resolved.
    let after = parse_rfc3339_us("2026-11-27T21:49:14.593Z").unwrap();
    let b = decode(&body, &Limits::default(), after).unwrap();
    assert_eq!(b.firing, 0);
    let r = decode(
        &fixture("prometheus_resolved.json"),
        &Limits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(r.firing, 0);
    assert!(r.resolved > 0);
    let rep = decode(
        &fixture("prometheus_firing_repeated_in_batch.json"),
        &Limits::default(),
        before,
    )
    .unwrap();
    let fps = rep.fingerprints();
    let mut uniq = fps.clone();
    uniq.sort();
    uniq.dedup();
    assert!(uniq.len() < fps.len(), "fixture repeats an alert");
}

#[test]
fn prometheus_defaults_and_ignored_keys() {
    let b = ok(
        r#"[{"labels":{"alertname":"X"}},{"labels":{"alertname":"Y"},"endsAt":"0001-01-01T00:00:00Z","status":"bogus","fingerprint":"zz"}]"#,
    );
    assert_eq!(b.len(), 2);
    assert_eq!(b.alerts[0].starts_at_us, NOW);
    assert_eq!(b.alerts[0].status, Status::Firing);
    assert_eq!(b.alerts[1].ends_at_us, None);
    assert_eq!(ok("[]").len(), 0);
    assert_eq!(ok(" [ ] \n").format, Format::Prometheus);
}

#[test]
fn generic_single_alert() {
    let b = ok(
        r#"{"labels":{"alertname":"Backup failed","host":"db1"},"annotations":{"summary":"s"},"receiver":"cron","generatorURL":"http://x"}"#,
    );
    assert_eq!(b.format, Format::Generic);
    assert_eq!(b.receiver, "cron");
    assert_eq!(b.group_key, "");
    let a = &b.alerts[0];
    assert_eq!(a.status, Status::Firing);
    assert_eq!(a.starts_at_us, NOW);
    assert_eq!(a.generator_url, "http://x");
    // Resolved by a past endsAt, or explicitly.
    let b = ok(r#"{"labels":{"a":"b"},"endsAt":"2020-01-01T00:00:00Z"}"#);
    assert_eq!(b.alerts[0].status, Status::Resolved);
    let b = ok(r#"{"labels":{"a":"b"},"endsAt":"2999-01-01T00:00:00Z"}"#);
    assert_eq!(b.alerts[0].status, Status::Firing);
    let b = ok(r#"{"labels":{"a":"b"},"status":"resolved"}"#);
    assert_eq!(b.alerts[0].status, Status::Resolved);
    let b = ok(r#"{"labels":{"a":"b"},"status":"firing","endsAt":"2020-01-01T00:00:00Z"}"#);
    assert_eq!(b.alerts[0].status, Status::Firing);
    // Alertmanager-only keys are ignored in a generic body, whatever their type.
    let b = ok(r#"{"labels":{"a":"b"},"version":5,"groupLabels":[1]}"#);
    assert_eq!(b.len(), 1);
}

#[test]
fn alertmanager_ignores_generic_and_unknown_keys() {
    let body = r#"{"alerts":[],"labels":7,"startsAt":"nope","notification_reason":"x","routeLabels":{"a":[1,{"b":null}]},"big":1e999999,"huge":123456789012345678901234567890}"#;
    let b = ok(body);
    assert_eq!(b.format, Format::Alertmanager);
    assert_eq!(b.len(), 0);
    let b = ok(&am(
        r#"{"status":"firing","labels":{},"startsAt":"2025-01-10T10:00:00Z","extra":{"x":[1,2]},"endsAt":null,"annotations":null,"generatorURL":null}"#,
    ));
    assert_eq!(b.fingerprints(), vec!["cbf29ce484222325"]);
}

#[test]
fn fingerprint_mismatch_is_counted() {
    let b = ok(&am(
        r#"{"status":"firing","labels":{"alertname":"Alert1"},"startsAt":"2025-01-10T10:00:00Z","fingerprint":"0000000000000000"}"#,
    ));
    assert_eq!(b.fingerprint_mismatches, 1);
    assert_eq!(b.fingerprints()[0], "0f8c8eae06af0c03");
    let b = ok(&am(
        r#"{"status":"firing","labels":{"alertname":"Alert1"},"startsAt":"2025-01-10T10:00:00Z","fingerprint":"0F8C8EAE06AF0C03"}"#,
    ));
    assert_eq!(b.fingerprint_mismatches, 0);
}

#[test]
fn format_errors() {
    assert_eq!(err("").reason, Reason::EmptyBody);
    assert_eq!(err(" \n\t").reason, Reason::EmptyBody);
    for body in [
        "{}",
        "\"x\"",
        "1",
        "null",
        "true",
        r#"{"foo":{"alerts":[]}}"#,
    ] {
        let e = err(body);
        assert_eq!(e.reason, Reason::UnknownFormat, "{body}");
        assert_eq!(e.path, None);
    }
    for body in [
        "x",
        "{",
        "[",
        "{\"alerts\":[}",
        "{\"alerts\":[]} x",
        "{\"alerts\":[]}{}",
        "{'a':1}",
        "{\"alerts\":[],\"x\":01}",
        "[{\"labels\":{}},]",
        "\u{feff}[]",
    ] {
        let e = err(body);
        assert_eq!(e.reason, Reason::InvalidJson, "{body}");
    }
}

#[test]
fn invalid_utf8() {
    let mut body = br#"{"alerts":[{"status":"firing","labels":{"a":""#.to_vec();
    let at = body.len();
    body.extend_from_slice(b"\xff\"}}]}");
    let e = decode(&body, &Limits::default(), NOW).unwrap_err();
    assert_eq!(e.reason, Reason::InvalidUtf8);
    assert_eq!(e.offset, Some(at));
    // A lone surrogate escape in a string we read is refused by serde_json as a bad escape:
    // reported as invalid_json (with its path). Inside an ignored unknown key it is not looked at.
    for s in ["\\ud800", "\\udc00", "\\ud800x", "\\ud800\\u0041"] {
        let e = err(&am(&format!(
            r#"{{"status":"firing","labels":{{"a":"{s}"}},"startsAt":"2025-01-10T10:00:00Z"}}"#
        )));
        assert_eq!(e.reason, Reason::InvalidJson, "{s}");
        assert_eq!(e.path.as_deref(), Some("alerts[0].labels.a"));
    }
    ok(r#"{"alerts":[],"x":"\udc00"}"#);
    // A valid pair is fine.
    let b = ok(&am(
        r#"{"status":"firing","labels":{"a":"\ud83d\udd25"},"startsAt":"2025-01-10T10:00:00Z"}"#,
    ));
    assert_eq!(b.alerts[0].labels[0].1, "🔥");
}

#[test]
fn too_deep() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = err(&deep);
    assert_eq!(e.reason, Reason::TooDeep);
    assert_eq!(e.offset, Some(32));
    let e = err(&"[".repeat(100_000));
    assert_eq!(e.reason, Reason::TooDeep);
    // Depth counts unknown keys too: top(1) alerts(2) alert(3) x(4) [5].
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let body =
        am(r#"{"status":"firing","labels":{},"startsAt":"2025-01-10T10:00:00Z","x":{"y":[]}}"#);
    assert_eq!(err_with(&body, &limits).reason, Reason::TooDeep);
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    assert!(decode(body.as_bytes(), &limits, NOW).is_ok());
    // Beyond serde_json's own recursion limit (128): ignored values are skipped without recursion.
    let limits = Limits {
        max_depth: 1000,
        ..Limits::default()
    };
    let deep = format!(
        r#"{{"alerts":[],"x":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(decode(deep.as_bytes(), &limits, NOW).is_ok());
}

#[test]
fn unsupported_version() {
    let e = err(r#"{"version":"5","alerts":[]}"#);
    assert_eq!(e.reason, Reason::UnsupportedVersion);
    assert_eq!(e.path.as_deref(), Some("version"));
    assert_eq!(e.offset, Some(11));
    assert_eq!(
        err(r#"{"version":4,"alerts":[]}"#).reason,
        Reason::WrongType
    );
    ok(r#"{"version":"4","alerts":[]}"#);
    ok(r#"{"alerts":[]}"#);
}

#[test]
fn wrong_types() {
    let cases = [
        (r#"{"alerts":{}}"#, "alerts"),
        (r#"{"alerts":[1]}"#, "alerts[0]"),
        (r#"{"alerts":[],"receiver":1}"#, "receiver"),
        (r#"{"alerts":[],"groupKey":[]}"#, "groupKey"),
        (r#"{"alerts":[],"truncatedAlerts":-1}"#, "truncatedAlerts"),
        (r#"{"alerts":[],"truncatedAlerts":1.5}"#, "truncatedAlerts"),
        (r#"{"alerts":[],"truncatedAlerts":"3"}"#, "truncatedAlerts"),
        (r#"{"alerts":[],"groupLabels":"x"}"#, "groupLabels"),
        (r#"{"alerts":[],"externalURL":{}}"#, "externalURL"),
        (r#"{"alerts":[],"status":7}"#, "status"),
        (r#"{"labels":[]}"#, "labels"),
        (r#"{"labels":{"a":1}}"#, "labels.a"),
        (r#"{"labels":{"a":null}}"#, "labels.a"),
        (
            r#"{"labels":{},"annotations":{"s":["x"]}}"#,
            "annotations.s",
        ),
        (r#"{"labels":{},"receiver":false}"#, "receiver"),
        (
            r#"[{"labels":{"a":"b"}},{"labels":{"severity":{}}}]"#,
            "[1].labels.severity",
        ),
        (r#"[{"labels":null}]"#, "[0].labels"),
        (r#"[{"labels":{},"startsAt":1}]"#, "[0].startsAt"),
        (r#"[{"labels":{},"generatorURL":1}]"#, "[0].generatorURL"),
        (r#"[[]]"#, "[0]"),
    ];
    for (body, path) in cases {
        let e = err(body);
        assert_eq!(
            (e.reason, e.path.as_deref()),
            (Reason::WrongType, Some(path)),
            "{body}: {}",
            e.message
        );
        assert!(!e.message.contains('{'), "{}", e.message);
    }
    ok(
        r#"{"alerts":[],"truncatedAlerts":0,"groupLabels":{},"commonLabels":null,"externalURL":"http://x"}"#,
    );
    ok(r#"{"alerts":[],"truncatedAlerts":18446744073709551615}"#);
    // The message never echoes a long input string.
    let long = "z".repeat(500);
    let e = err(&format!(
        r#"{{"alerts":[{{"status":"firing","labels":"{long}"}}]}}"#
    ));
    assert_eq!(e.reason, Reason::WrongType);
    assert!(!e.message.contains("zzzz"), "{}", e.message);
    assert_eq!(
        e.message,
        "wrong JSON type: got string, expected an object of strings"
    );
}

#[test]
fn missing_fields() {
    let cases = [
        (
            am(r#"{"labels":{},"startsAt":"2025-01-10T10:00:00Z"}"#),
            "alerts[0].status",
        ),
        (
            am(r#"{"status":"firing","startsAt":"2025-01-10T10:00:00Z"}"#),
            "alerts[0].labels",
        ),
        (
            am(&format!(r#"{A1},{{"status":"firing","labels":{{}}}}"#)),
            "alerts[1].startsAt",
        ),
        (
            am(r#"{"status":null,"labels":{},"startsAt":"2025-01-10T10:00:00Z"}"#),
            "alerts[0].status",
        ),
        (r#"[{"annotations":{}}]"#.to_owned(), "[0].labels"),
    ];
    for (body, path) in cases {
        let e = err(&body);
        if body.contains("\"status\":null") {
            assert_eq!(e.reason, Reason::WrongType, "{body}");
            continue;
        }
        assert_eq!(
            (e.reason, e.path.as_deref()),
            (Reason::MissingField, Some(path)),
            "{body}"
        );
        assert!(e.offset.is_some());
    }
}

#[test]
fn duplicate_keys() {
    let cases = [
        (r#"{"alerts":[],"alerts":[]}"#.to_owned(), "alerts"),
        (
            r#"{"alerts":[],"receiver":"a","receiver":"b"}"#.to_owned(),
            "receiver",
        ),
        (r#"{"alerts":[],"x":1,"x":2}"#.to_owned(), "x"),
        (
            am(
                r#"{"status":"firing","status":"firing","labels":{},"startsAt":"2025-01-10T10:00:00Z"}"#,
            ),
            "alerts[0].status",
        ),
        (
            am(
                r#"{"status":"firing","labels":{"a":"1","b":"2","a":"3"},"startsAt":"2025-01-10T10:00:00Z"}"#,
            ),
            "alerts[0].labels.a",
        ),
        (
            am(
                r#"{"status":"firing","labels":{},"annotations":{"s":"1","s":"1"},"startsAt":"2025-01-10T10:00:00Z"}"#,
            ),
            "alerts[0].annotations.s",
        ),
        (
            am(r#"{"status":"firing","labels":{},"startsAt":"2025-01-10T10:00:00Z","u":1,"u":1}"#),
            "alerts[0].u",
        ),
        (
            r#"{"labels":{"a":"b"},"labels":{"a":"b"}}"#.to_owned(),
            "labels",
        ),
        (
            r#"[{"labels":{"a":"b","\u0061":"c"}}]"#.to_owned(),
            "[0].labels.a",
        ),
    ];
    for (body, path) in cases {
        let e = err(&body);
        assert_eq!(
            (e.reason, e.path.as_deref()),
            (Reason::DuplicateKey, Some(path)),
            "{body}"
        );
    }
    // Many distinct unknown keys are fine.
    let many: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
    ok(&format!(r#"{{"alerts":[],{}}}"#, many.join(",")));
}

#[test]
fn invalid_status_time_fingerprint_label() {
    let e = err(&am(
        r#"{"status":"pending","labels":{},"startsAt":"2025-01-10T10:00:00Z"}"#,
    ));
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidStatus, Some("alerts[0].status"))
    );
    let e = err(r#"{"alerts":[],"status":"FIRING"}"#);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidStatus, Some("status"))
    );
    let e = err(r#"{"labels":{},"status":"x"}"#);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidStatus, Some("status"))
    );

    let body = am(&format!(
        r#"{A1},{A1},{A1},{{"status":"firing","labels":{{}},"startsAt":"2025-13-10T10:00:00Z"}}"#
    ));
    let e = err(&body);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidTime, Some("alerts[3].startsAt"))
    );
    assert_eq!(e.offset, body.find("\"2025-13"));
    let e = err(&am(
        r#"{"status":"firing","labels":{},"startsAt":"0001-01-01T00:00:00Z"}"#,
    ));
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidTime, Some("alerts[0].startsAt"))
    );
    let e = err(&am(
        r#"{"status":"firing","labels":{},"startsAt":"2025-01-10T10:00:00Z","endsAt":"yesterday"}"#,
    ));
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidTime, Some("alerts[0].endsAt"))
    );
    let e = err(r#"{"labels":{},"startsAt":"2025-01-10"}"#);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidTime, Some("startsAt"))
    );
    assert_eq!(e.offset, Some(24));
    // Escaped text is still parsed (owned string path).
    ok(r#"{"labels":{},"startsAt":"2025-01-10T10:00:00\u005a"}"#);

    for fp in ["\"123\"", "\"0f8c8eae06af0c0x\"", "\"0f8c8eae06af0c031\""] {
        let e = err(&am(&format!(
            r#"{{"status":"firing","labels":{{}},"startsAt":"2025-01-10T10:00:00Z","fingerprint":{fp}}}"#
        )));
        assert_eq!(
            (e.reason, e.path.as_deref()),
            (Reason::InvalidFingerprint, Some("alerts[0].fingerprint"))
        );
    }
    let e = err(&am(
        r#"{"status":"firing","labels":{"a":"b","":"x"},"startsAt":"2025-01-10T10:00:00Z"}"#,
    ));
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::InvalidLabel, Some("alerts[0].labels"))
    );
    // An empty annotation name is allowed.
    ok(r#"{"labels":{"a":"b"},"annotations":{"":"x"}}"#);
}

#[test]
fn limits() {
    let l = Limits {
        max_alerts: 2,
        max_labels: 2,
        max_annotations: 1,
        max_name_bytes: 9,
        max_value_bytes: 6,
        max_depth: 32,
    };
    let two = format!("{A1},{A1}");
    assert_eq!(decode(am(&two).as_bytes(), &l, NOW).unwrap().len(), 2);
    let e = err_with(&am(&format!("{A1},{A1},{A1}")), &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::TooManyAlerts, Some("alerts[2]"))
    );
    let e = err_with(r#"[{"labels":{}},{"labels":{}},{"labels":{}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::TooManyAlerts, Some("[2]"))
    );
    let e = err_with(r#"{"labels":{}}"#, &Limits { max_alerts: 0, ..l });
    assert_eq!(e.reason, Reason::TooManyAlerts);
    assert!(decode(b"[]", &Limits { max_alerts: 0, ..l }, NOW).is_ok());
    assert!(decode(br#"{"alerts":[]}"#, &Limits { max_alerts: 0, ..l }, NOW).is_ok());

    let e = err_with(r#"[{"labels":{"a":"1","b":"2","c":"3"}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::TooManyLabels, Some("[0].labels"))
    );
    let e = err_with(r#"[{"labels":{},"annotations":{"a":"1","b":"2"}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::TooManyAnnotations, Some("[0].annotations"))
    );
    let e = err_with(r#"[{"labels":{"abcdefghij":"1"}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::NameTooLong, Some("[0].labels.abcdefghij"))
    );
    let e = err_with(r#"[{"labels":{},"annotations":{"abcdefghij":"1"}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::NameTooLong, Some("[0].annotations.abcdefghij"))
    );
    let e = err_with(r#"[{"labels":{"abcd":"1234567"}}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::ValueTooLong, Some("[0].labels.abcd"))
    );
    assert_eq!(e.offset, Some(19));
    let e = err_with(r#"[{"labels":{"abcd":"123456\n"}}]"#, &l);
    assert_eq!(e.reason, Reason::ValueTooLong);
    let e = err_with(r#"[{"labels":{},"generatorURL":"http://x"}]"#, &l);
    assert_eq!(
        (e.reason, e.path.as_deref()),
        (Reason::ValueTooLong, Some("[0].generatorURL"))
    );
    assert!(decode(
        br#"[{"labels":{"abcdefghi":"123456"},"annotations":{"abcd":"123456"}}]"#,
        &l,
        NOW
    )
    .is_ok());
    // Limits are in bytes, after unescaping: "é" is 2 bytes.
    let e = err_with(r#"[{"labels":{"abcd":"\u00e9\u00e9\u00e9\u00e9"}}]"#, &l);
    assert_eq!(e.reason, Reason::ValueTooLong);
    assert!(decode(r#"[{"labels":{"abcd":"ééé"}}]"#.as_bytes(), &l, NOW).is_ok());
}

#[test]
fn long_name_is_cut_in_path() {
    let long = "n".repeat(2000);
    let e = err(&format!(r#"[{{"labels":{{"{long}":"1"}}}}]"#));
    assert_eq!(e.reason, Reason::NameTooLong);
    assert!(e.path.unwrap().len() < 100);
}

#[test]
fn syntax_error_offsets_and_paths() {
    let body = "{\n  \"alerts\": [\n    {\"status\": \"firing\", \"labels\": {\"a\": \"b\"}, \"startsAt\": \"2025-01-10T10:00:00Z\",}\n  ]\n}";
    let e = err(body);
    assert_eq!(e.reason, Reason::InvalidJson);
    assert_eq!(e.path.as_deref(), Some("alerts[0]"));
    let off = e.offset.unwrap();
    assert!(
        (body.find(",}").unwrap()..=body.find(",}").unwrap() + 2).contains(&off),
        "{off}"
    );
    let e = err("{\"alerts\": [");
    assert_eq!(e.reason, Reason::InvalidJson);
    assert_eq!(e.offset, Some(12));
    // Truncated after an element: reported where the next element would be.
    let e = err("[{\"labels\":{\"a\":\"b\"}}");
    assert_eq!(e.reason, Reason::InvalidJson);
    assert_eq!(e.path.as_deref(), Some("[1]"));
    let e = err("{\"alerts\":[]");
    assert_eq!((e.reason, e.path), (Reason::InvalidJson, None));
}

#[test]
fn times_keep_precision_and_offset() {
    let b = ok(&am(
        r#"{"status":"resolved","labels":{},"startsAt":"2026-11-28T00:09:21.835123999+05:30","endsAt":"2026-11-27T18:40:00-00:00"}"#,
    ));
    let a = &b.alerts[0];
    assert_eq!(
        a.starts_at_us,
        parse_rfc3339_us("2026-11-27T18:39:21.835123Z").unwrap()
    );
    assert_eq!(
        a.ends_at_us,
        Some(parse_rfc3339_us("2026-11-27T18:40:00Z").unwrap())
    );
    assert_eq!(b.resolved, 1);
}

#[test]
fn escaped_keys_are_recognised() {
    let b = ok(
        r#"{"\u0061lerts":[{"st\u0061tus":"firing","labels":{"alertname":"Alert1"},"startsAt":"2025-01-10T10:00:00Z"}]}"#,
    );
    assert_eq!(b.fingerprints(), vec!["0f8c8eae06af0c03"]);
}

#[test]
fn never_panics_on_mutations() {
    // Every truncation and many single-byte mutations of real payloads: no panic.
    let limits = Limits::default();
    for name in [
        "firing_single.json",
        "handwritten_minimal_v4.json",
        "firing_edge_nul.json",
        "prometheus_firing.json",
    ] {
        let body = fixture(name);
        for cut in 0..body.len().min(1500) {
            let _ = decode(&body[..cut], &limits, NOW);
        }
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = body.clone();
            let i = (seed as usize) % m.len();
            let bytes = b"{}[]\",:\\0\x00\xff n-e";
            m[i] = bytes[(seed >> 32) as usize % bytes.len()];
            let _ = decode(&m, &limits, NOW);
        }
    }
}

/// labels_json/annotations_json are built in one pass (strings borrowed from the body copied
/// as-is, unescaped ones escaped): they must equal serde_json's canonical form of the stored maps.
#[test]
fn canonical_json_matches_serde_json() {
    use std::collections::BTreeMap;
    let body = r#"{"alerts":[{"status":"firing","labels":{"a":"plain","b\"q":"x\\y\u003c\u00e9\n","c":"\u0001\u001f\u007f","d":"\u0000"},"annotations":{"z":"é团队 ⚠️","y":"\t\"</b>&"},"startsAt":"2025-01-10T10:00:00Z"}]}"#;
    let b = decode(body.as_bytes(), &Limits::default(), 0).unwrap();
    let a = &b.alerts[0];
    for (pairs, json) in [
        (&a.labels, &a.labels_json),
        (&a.annotations, &a.annotations_json),
    ] {
        let map: BTreeMap<&str, &str> = pairs.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(*json, serde_json::to_string(&map).unwrap());
    }
    assert_eq!(b.nul_replaced, 1);
}

#[test]
fn a_decode_budget_stops_the_decoder_before_the_body_is_decoded_whole() {
    // Many short labels: the decoded batch holds far more than its JSON.
    let mut body = String::from("[");
    for i in 0..2_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"labels":{{"alertname":"A{i}","a":"1","b":"2","c":"3"}}}}"#
        ));
    }
    body.push(']');
    let limits = Limits::default();
    let whole = crate::decode(body.as_bytes(), &limits, 0).unwrap();
    let held = whole.decoded_bytes();
    assert!(held > 4 * body.len(), "{held} vs {}", body.len());
    // Exactly enough passes, one byte less is refused, and so is a budget far below.
    let again = crate::decode_within(body.as_bytes(), &limits, 0, held).unwrap();
    assert_eq!(again, whole);
    // The size decode_sized hands back is the one measured.
    let (sized, size) = crate::decode_sized(body.as_bytes(), &limits, 0, held).unwrap();
    assert_eq!((sized, size), (whole.clone(), held));
    let err = crate::decode_within(body.as_bytes(), &limits, 0, held - 1).unwrap_err();
    assert_eq!(err.reason, Reason::DecodedTooLarge);
    let err = crate::decode_within(body.as_bytes(), &limits, 0, body.len()).unwrap_err();
    assert_eq!(err.reason, Reason::DecodedTooLarge);
    // Stopped early: the path points at the alert that went over, well before the end.
    let path = err.path.expect("a path");
    let index: usize = path
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .unwrap();
    assert!(index < 1_000, "{path}");
    // Other formats: an Alertmanager notification and one generic alert.
    let am = format!(
        r#"{{"version":"4","receiver":"r","groupKey":"g","status":"firing","alerts":{}}}"#,
        body.replace(
            r#"{"labels""#,
            r#"{"status":"firing","startsAt":"2026-01-01T00:00:00Z","labels""#
        )
    );
    let err = crate::decode_within(am.as_bytes(), &limits, 0, am.len()).unwrap_err();
    assert_eq!(err.reason, Reason::DecodedTooLarge);
    let one = br#"{"labels":{"alertname":"x"}}"#;
    let err = crate::decode_within(one, &limits, 0, 10).unwrap_err();
    assert_eq!(err.reason, Reason::DecodedTooLarge);
}
