//! The access log's JSON lines and the request metrics of many answered requests at once.
//!
//! A request is only kept as what it was (the binding's `AccessRecords`); every few hundred
//! requests or fractions of a second they are written here in one pass. Formatting a line per
//! request in Python (a dict, `orjson.dumps`, the histogram's bisect) cost about a tenth of a
//! 1-alert request.

use std::io::Write;

/// Longest path written to the log, in characters (a path is the sender's to choose).
pub const PATH_CHARS: usize = 256;

/// One answered request, as the Python layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    /// `time.perf_counter()` when it arrived and when it was answered, in seconds.
    pub started: f64,
    pub ended: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub alerts: u64,
    pub request_id: &'a str,
    pub peer: Option<&'a str>,
}

impl Answered<'_> {
    pub fn seconds(&self) -> f64 {
        self.ended - self.started
    }
}

/// Appends `a`'s line, newline included. `wall_offset` turns its `perf_counter` times into Unix
/// times (`time.time() - time.perf_counter()` when the lines are written).
pub fn write_line(out: &mut Vec<u8>, a: &Answered<'_>, wall_offset: f64) {
    let path = match a.path.char_indices().nth(PATH_CHARS) {
        Some((end, _)) => &a.path[..end],
        None => a.path,
    };
    let duration_ms = (a.seconds() * 1e6).round() / 1e3;
    out.extend_from_slice(b"{\"ts\":");
    number(out, a.ended + wall_offset);
    out.extend_from_slice(b",\"method\":");
    string(out, a.method);
    out.extend_from_slice(b",\"path\":");
    string(out, path);
    out.extend_from_slice(b",\"route\":");
    string(out, a.route);
    // Writing into a Vec cannot fail.
    let _ = write!(out, ",\"status\":{}", a.status);
    out.extend_from_slice(b",\"duration_ms\":");
    number(out, duration_ms);
    let _ = write!(
        out,
        ",\"bytes_in\":{},\"bytes_out\":{},\"alerts\":{}",
        a.bytes_in, a.bytes_out, a.alerts
    );
    out.extend_from_slice(b",\"request_id\":");
    string(out, a.request_id);
    out.extend_from_slice(b",\"peer\":");
    match a.peer {
        Some(peer) => string(out, peer),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
}

fn string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes as orjson does: quotes, backslashes and control characters.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn number(out: &mut Vec<u8>, x: f64) {
    // Shortest round-trip form; a non-finite number (never seen) becomes null.
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// Request counts and latency histograms per (route, status), in the layout the Python
/// `RequestObserver` folds: a count, a sum, then one count per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteStats {
    pub route: String,
    pub status: u16,
    pub count: u64,
    pub sum: f64,
    /// Requests per bucket: bucket `i` holds those with `bounds[i-1] < seconds <= bounds[i]`.
    pub buckets: Vec<u64>,
}

/// Adds `a` to `stats` (few distinct keys: a linear search beats hashing). `bounds` are the
/// histogram's upper bounds, ascending, +Inf last.
pub fn observe(stats: &mut Vec<RouteStats>, a: &Answered<'_>, bounds: &[f64]) {
    let seconds = a.seconds();
    let slot = match stats
        .iter()
        .position(|s| s.status == a.status && s.route == a.route)
    {
        Some(i) => &mut stats[i],
        None => {
            stats.push(RouteStats {
                route: a.route.to_owned(),
                status: a.status,
                count: 0,
                sum: 0.0,
                buckets: vec![0; bounds.len()],
            });
            stats.last_mut().expect("just pushed")
        }
    };
    slot.count += 1;
    slot.sum += seconds;
    // Python's bisect_left: the first bound >= seconds (le semantics of Prometheus buckets).
    let i = bounds.partition_point(|b| *b < seconds);
    if let Some(n) = slot.buckets.get_mut(i) {
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered<'a>(path: &'a str, peer: Option<&'a str>) -> Answered<'a> {
        Answered {
            method: "POST",
            path,
            route: "alertmanager",
            status: 200,
            started: 10.0,
            ended: 10.0012345,
            bytes_in: 512,
            bytes_out: 60,
            alerts: 1,
            request_id: "abc-1",
            peer,
        }
    }

    fn line(a: &Answered<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        write_line(&mut out, a, 1_700_000_000.0);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).expect("one JSON object")
    }

    #[test]
    fn a_line_holds_every_field() {
        let v = line(&answered("/api/v1/alerts", Some("127.0.0.1:5000")));
        assert!((v["ts"].as_f64().unwrap() - 1_700_000_010.0012345).abs() < 1e-6);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/api/v1/alerts");
        assert_eq!(v["route"], "alertmanager");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 1.235);
        assert_eq!(v["bytes_in"], 512);
        assert_eq!(v["bytes_out"], 60);
        assert_eq!(v["alerts"], 1);
        assert_eq!(v["request_id"], "abc-1");
        assert_eq!(v["peer"], "127.0.0.1:5000");
        assert_eq!(v.as_object().unwrap().len(), 11);
    }

    #[test]
    fn hostile_strings_stay_one_json_line() {
        let path = "/x\"\\\n\r\t\u{0}\u{1f}é\u{2028}";
        let v = line(&answered(path, None));
        assert_eq!(v["path"], path);
        assert_eq!(v["peer"], serde_json::Value::Null);
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let path = "é".repeat(PATH_CHARS + 10);
        let v = line(&answered(&path, None));
        assert_eq!(v["path"].as_str().unwrap().chars().count(), PATH_CHARS);
        let short = "/a".repeat(10);
        assert_eq!(line(&answered(&short, None))["path"], short.as_str());
    }

    #[test]
    fn requests_are_counted_per_route_and_status_into_le_buckets() {
        let bounds = [0.001, 0.01, f64::INFINITY];
        let mut stats = Vec::new();
        let mut a = answered("/", None);
        a.started = 0.0;
        a.ended = 0.001; // on a bound: that bucket (le)
        observe(&mut stats, &a, &bounds);
        a.ended = 0.005;
        observe(&mut stats, &a, &bounds);
        a.ended = 3.0;
        observe(&mut stats, &a, &bounds);
        a.status = 503;
        observe(&mut stats, &a, &bounds);
        a.route = "healthz";
        observe(&mut stats, &a, &bounds);
        assert_eq!(stats.len(), 3);
        assert_eq!(stats[0].count, 3);
        assert_eq!(stats[0].buckets, vec![1, 1, 1]);
        assert!((stats[0].sum - 3.006).abs() < 1e-9);
        assert_eq!(
            (stats[1].route.as_str(), stats[1].status),
            ("alertmanager", 503)
        );
        assert_eq!(stats[1].buckets, vec![0, 0, 1]);
        assert_eq!((stats[2].route.as_str(), stats[2].count), ("healthz", 1));
    }
}
