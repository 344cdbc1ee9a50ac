//! SQLite rows: the same columns as the PostgreSQL tables, as plain tuples. Timestamps are
//! µs since the Unix epoch, `None` for a NULL `ends_at`, JSON as text.

use super::collapse::Collapsed;

/// `(fingerprint, labels, alertname, severity)`.
pub type SqliteLabelSetRow<'a> = (i64, &'a str, &'a str, &'a str);
/// `(fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, source,
/// generator_url, annotations)`.
pub type SqliteEventRow<'a> = (
    i64,
    i64,
    &'static str,
    Option<i64>,
    i64,
    &'a str,
    &'a str,
    &'static str,
    &'a str,
    &'a str,
);
/// `(fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, receiver)`.
pub type SqliteAlertRow<'a> = (i64, i64, &'static str, Option<i64>, i64, i64, i32, &'a str);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SqliteRows<'a> {
    pub label_sets: Vec<SqliteLabelSetRow<'a>>,
    pub events: Vec<SqliteEventRow<'a>>,
    pub alerts: Vec<SqliteAlertRow<'a>>,
}

pub fn sqlite_rows<'a>(c: &Collapsed<'a>) -> SqliteRows<'a> {
    SqliteRows {
        label_sets: c
            .label_sets
            .iter()
            .map(|r| (r.fingerprint, r.labels_json, r.alertname, r.severity))
            .collect(),
        events: c
            .events
            .iter()
            .map(|r| {
                (
                    r.fingerprint,
                    r.starts_at_us,
                    r.status.as_str(),
                    r.ends_at_us,
                    r.received_at_us,
                    r.receiver,
                    r.group_key,
                    r.source,
                    r.generator_url,
                    r.annotations_json,
                )
            })
            .collect(),
        alerts: c
            .alerts
            .iter()
            .map(|r| {
                (
                    r.fingerprint,
                    r.starts_at_us,
                    r.status.as_str(),
                    r.ends_at_us,
                    r.first_seen_us,
                    r.last_seen_us,
                    r.notifications,
                    r.receiver,
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::rows::collapse::collapse;

    #[test]
    fn tuples_follow_the_column_order() {
        let body = r#"{"receiver":"rx","groupKey":"gk","alerts":[{"status":"resolved","labels":{"alertname":"A","severity":"warning"},"annotations":{"s":"x"},"startsAt":"1970-01-01T00:00:01Z","endsAt":"1970-01-01T00:00:02Z","generatorURL":"http://g"}]}"#;
        let b = crate::decode(body.as_bytes(), &Limits::default(), 5_000_000).unwrap();
        let rows = sqlite_rows(&collapse(&[&b]));
        let fp = crate::fingerprint::fingerprint_to_int(b.alerts[0].fingerprint);
        assert_eq!(
            rows.label_sets,
            vec![(
                fp,
                r#"{"alertname":"A","severity":"warning"}"#,
                "A",
                "warning"
            )]
        );
        assert_eq!(
            rows.events,
            vec![(
                fp,
                1_000_000,
                "resolved",
                Some(2_000_000),
                5_000_000,
                "rx",
                "gk",
                "alertmanager",
                "http://g",
                r#"{"s":"x"}"#
            )]
        );
        assert_eq!(
            rows.alerts,
            vec![(
                fp,
                1_000_000,
                "resolved",
                Some(2_000_000),
                5_000_000,
                5_000_000,
                1,
                "rx"
            )]
        );
    }
}
