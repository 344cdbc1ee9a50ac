//! The aggregates of `GET /api/v1/stats` over one window, computed from the window's rows.
//!
//! Why here and not in SQL: on PostgreSQL the three aggregates cost about 40 ms of executor time
//! per request on 1,000,000 history rows (sorting and grouping 16k-33k rows at a few hundred ns per
//! row and operator). Two index-only scans that only collect their columns into arrays
//! ([`crate::pgarray`]) cost about a third of that, and the aggregation below about 2 ms for the
//! ~16k started and ~16k resolved instances of a 24 h window, parsing included.
//!
//! The SQL versions in `python/webhookfast/api/sql.py` remain the definition: SQLite runs them,
//! and the tests check that both give the same answers. The maps are keyed by fingerprints, which
//! senders choose through their labels: foldhash's per-process random seed keeps them from aiming
//! many keys at one bucket.
//!
//! The window has two sets of alert instances:
//! * *started*: instances whose `starts_at` is in the window (one firing each);
//! * *resolved*: instances with status resolved whose `ends_at` is in the window.
//!
//! From them: the label sets that started most often ([`top_firing`]), the label sets with at
//! least N state changes (starts plus resolutions, [`flapping`]), and per alertname the count,
//! p50, p90 and maximum of `ends_at - starts_at` ([`time_to_resolve`]). Orders and ties are the
//! SQL's: counts descending then fingerprint ascending (as a signed 64-bit integer); p90
//! descending then alertname in byte order.

use foldhash::{HashMap, HashMapExt};

use crate::pgarray::{int8s, ArrayError, INT8_OID, TIMESTAMPTZ_OID};

/// A label set and how many of its instances started in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub fingerprint: i64,
    pub firings: u64,
}

/// A label set whose instances started or resolved at least N times in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flapping {
    pub fingerprint: i64,
    pub changes: u64,
    pub firing: u64,
}

/// Time to resolve of one alertname, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve<'a> {
    pub alertname: &'a str,
    pub resolved: u64,
    pub p50_us: i64,
    pub p90_us: i64,
    pub max_us: i64,
}

/// The window's rows as PostgreSQL sends them: binary arrays of the started instances'
/// fingerprints and of the resolved instances' fingerprints, starts and ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowArrays<'b> {
    pub started: Option<&'b [u8]>,
    pub fingerprints: Option<&'b [u8]>,
    pub starts: Option<&'b [u8]>,
    pub ends: Option<&'b [u8]>,
}

impl WindowArrays<'_> {
    /// Bytes of all four arrays (what decides whether to compute without the GIL).
    pub fn len(&self) -> usize {
        [self.started, self.fingerprints, self.starts, self.ends]
            .iter()
            .flatten()
            .map(|b| b.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The three aggregates of one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<'a> {
    pub top_firing: Vec<Firing>,
    pub flapping: Vec<Flapping>,
    pub time_to_resolve: Vec<Resolve<'a>>,
}

/// [`top_firing`], [`flapping`] and [`time_to_resolve`] of one window from its arrays; a resolved
/// instance whose fingerprint `alertname_of` cannot name is left out of time to resolve (as the
/// SQL's join with `label_sets` leaves it out). An error for a malformed array or resolved
/// columns of different lengths.
pub fn window<'a>(
    arrays: WindowArrays<'_>,
    alertname_of: impl Fn(i64) -> Option<&'a str>,
    top: usize,
    flap_min_changes: u64,
) -> Result<Window<'a>, ArrayError> {
    let column = |buf: Option<&[u8]>, oid| buf.map_or(Ok(Vec::new()), |b| int8s(b, oid));
    let started = column(arrays.started, INT8_OID)?;
    let fps = column(arrays.fingerprints, INT8_OID)?;
    let starts = column(arrays.starts, TIMESTAMPTZ_OID)?;
    let ends = column(arrays.ends, TIMESTAMPTZ_OID)?;
    if starts.len() != fps.len() || ends.len() != fps.len() {
        return Err(ArrayError(
            "the resolved instances' columns differ in length".to_owned(),
        ));
    }
    let started = counts(&started);
    let named = (0..fps.len()).filter_map(|i| {
        let name = alertname_of(fps[i])?;
        Some((name, ends[i].saturating_sub(starts[i])))
    });
    Ok(Window {
        top_firing: top_firing(&started, top),
        flapping: flapping(&started, &fps, flap_min_changes, top),
        time_to_resolve: time_to_resolve(named, top),
    })
}

/// Instances per fingerprint: what [`top_firing`] ranks and [`flapping`] adds resolutions to.
pub fn counts(fingerprints: &[i64]) -> HashMap<i64, u64> {
    let mut by_fp: HashMap<i64, u64> = HashMap::with_capacity(fingerprints.len() / 2);
    for &fp in fingerprints {
        *by_fp.entry(fp).or_default() += 1;
    }
    by_fp
}

/// The first `top` items in `cmp` order; sorts only what it keeps.
fn best<T>(mut items: Vec<T>, top: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    if items.len() > top {
        if top == 0 {
            return Vec::new();
        }
        items.select_nth_unstable_by(top - 1, &cmp);
        items.truncate(top);
    }
    items.sort_unstable_by(cmp);
    items
}

/// Label sets by instances started in the window (`started`: [`counts`] of their fingerprints),
/// most first, at most `top`.
pub fn top_firing(started: &HashMap<i64, u64>, top: usize) -> Vec<Firing> {
    let items = started
        .iter()
        .map(|(&fingerprint, &firings)| Firing {
            fingerprint,
            firings,
        })
        .collect();
    best(items, top, |a, b| {
        b.firings
            .cmp(&a.firings)
            .then(a.fingerprint.cmp(&b.fingerprint))
    })
}

/// Label sets with at least `min_changes` starts (`started`: [`counts`] of their fingerprints)
/// plus resolutions in the window, most first.
pub fn flapping(
    started: &HashMap<i64, u64>,
    resolved: &[i64],
    min_changes: u64,
    top: usize,
) -> Vec<Flapping> {
    let mut by_fp: HashMap<i64, (u64, u64)> =
        started.iter().map(|(&fp, &n)| (fp, (n, 0))).collect();
    for &fp in resolved {
        by_fp.entry(fp).or_default().1 += 1;
    }
    let items = by_fp
        .into_iter()
        .filter(|(_, (f, r))| f + r >= min_changes)
        .map(|(fingerprint, (firing, resolved))| Flapping {
            fingerprint,
            changes: firing + resolved,
            firing,
        })
        .collect();
    best(items, top, |a, b| {
        b.changes
            .cmp(&a.changes)
            .then(a.fingerprint.cmp(&b.fingerprint))
    })
}

/// The nearest-rank percentile `pct` of `n` sorted values: the value at rank ceil(pct·n/100),
/// in integers (the SQLite query's `(pct·n + 99) / 100`; PostgreSQL's percentile_disc picks the
/// same rank).
fn rank(pct: usize, n: usize) -> usize {
    (pct * n).div_ceil(100)
}

/// Per alertname: instances resolved in the window and the p50, p90 and maximum of their
/// durations (µs), from `(alertname, ends - starts)` per instance; largest p90 first, at most
/// `top` alertnames.
pub fn time_to_resolve<'a>(
    resolved: impl IntoIterator<Item = (&'a str, i64)>,
    top: usize,
) -> Vec<Resolve<'a>> {
    let mut by_name: HashMap<&str, Vec<i64>> = HashMap::new();
    for (alertname, duration) in resolved {
        by_name.entry(alertname).or_default().push(duration);
    }
    let items = by_name
        .into_iter()
        .map(|(alertname, mut durations)| {
            durations.sort_unstable();
            let n = durations.len();
            Resolve {
                alertname,
                resolved: n as u64,
                p50_us: durations[rank(50, n) - 1],
                p90_us: durations[rank(90, n) - 1],
                max_us: durations[n - 1],
            }
        })
        .collect();
    best(items, top, |a, b| {
        b.p90_us
            .cmp(&a.p90_us)
            .then(a.alertname.as_bytes().cmp(b.alertname.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttr<'a>(
        names: &'a [&'a str],
        starts: &'a [i64],
        ends: &'a [i64],
        top: usize,
    ) -> Vec<Resolve<'a>> {
        let durations = starts.iter().zip(ends).map(|(s, e)| e - s);
        time_to_resolve(names.iter().copied().zip(durations), top)
    }

    #[test]
    fn top_firing_counts_and_breaks_ties_by_signed_fingerprint() {
        let started = [5, -3, 5, 9, -3, 5, 2, 9];
        let got = top_firing(&counts(&started), 3);
        let want = [(5, 3), (-3, 2), (9, 2)];
        assert_eq!(
            got.iter()
                .map(|f| (f.fingerprint, f.firings))
                .collect::<Vec<_>>(),
            want
        );
        assert_eq!(top_firing(&counts(&started), 10).len(), 4);
        assert!(top_firing(&counts(&started), 0).is_empty());
        assert!(top_firing(&counts(&[]), 5).is_empty());
    }

    #[test]
    fn flapping_adds_starts_and_resolutions_and_applies_the_minimum() {
        let started = [1, 1, 2, 3, 3, 3];
        let resolved = [1, 2, 2, 4];
        let got = flapping(&counts(&started), &resolved, 3, 10);
        let want = [(1, 3, 2), (2, 3, 1), (3, 3, 3)];
        assert_eq!(
            got.iter()
                .map(|f| (f.fingerprint, f.changes, f.firing))
                .collect::<Vec<_>>(),
            want
        );
        assert!(flapping(&counts(&started), &resolved, 4, 10).is_empty());
        assert_eq!(flapping(&counts(&started), &resolved, 1, 2).len(), 2);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        // n = 1..=20 against the definition: the smallest value with at least pct% at or below it.
        for n in 1..=20usize {
            for pct in [50, 90] {
                let r = rank(pct, n);
                assert!(
                    r * 100 >= pct * n && (r - 1) * 100 < pct * n,
                    "n={n} pct={pct} rank={r}"
                );
            }
        }
        let names = ["A"; 10];
        let starts = [0i64; 10];
        let ends: Vec<i64> = (1..=10).rev().collect(); // durations 10..1, unsorted
        let r = ttr(&names, &starts, &ends, 10);
        assert_eq!(
            r,
            [Resolve {
                alertname: "A",
                resolved: 10,
                p50_us: 5,
                p90_us: 9,
                max_us: 10
            }]
        );
    }

    #[test]
    fn time_to_resolve_orders_by_p90_then_alertname_bytes() {
        let names = ["b", "a", "Z", "a", "é"];
        let starts = [100, 0, 0, 0, -50];
        let ends = [130, 30, 30, 10, -20];
        let r = ttr(&names, &starts, &ends, 10);
        let got: Vec<_> = r
            .iter()
            .map(|x| (x.alertname, x.resolved, x.p50_us, x.p90_us))
            .collect();
        assert_eq!(
            got,
            [
                ("Z", 1, 30, 30),
                ("a", 2, 10, 30),
                ("b", 1, 30, 30),
                ("é", 1, 30, 30)
            ]
        );
        let two = ttr(&names, &starts, &ends, 2);
        assert_eq!(
            two.iter().map(|x| x.alertname).collect::<Vec<_>>(),
            ["Z", "a"]
        );
    }

    fn int8_array(oid: u32, values: &[i64]) -> Vec<u8> {
        let elems: Vec<[u8; 8]> = values.iter().map(|v| v.to_be_bytes()).collect();
        let refs: Vec<&[u8]> = elems.iter().map(|e| &e[..]).collect();
        crate::pgarray::tests::encode(oid, &refs)
    }

    #[test]
    fn window_aggregates_the_arrays_and_leaves_out_unnamed_fingerprints() {
        let started = int8_array(INT8_OID, &[7, 7, 7, 3, 3, 9]);
        let fps = int8_array(INT8_OID, &[7, 3, 5]);
        let starts = int8_array(TIMESTAMPTZ_OID, &[0, 0, 0]);
        let ends = int8_array(TIMESTAMPTZ_OID, &[10, 30, 99]);
        let arrays = WindowArrays {
            started: Some(&started),
            fingerprints: Some(&fps),
            starts: Some(&starts),
            ends: Some(&ends),
        };
        assert_eq!(
            arrays.len(),
            started.len() + fps.len() + starts.len() + ends.len()
        );
        let name = |fp: i64| match fp {
            7 => Some("Seven"),
            3 => Some("Three"),
            _ => None, // 5 has no name: left out of time to resolve
        };
        let w = window(arrays, name, 10, 3).unwrap();
        assert_eq!(
            w.top_firing
                .iter()
                .map(|f| (f.fingerprint, f.firings))
                .collect::<Vec<_>>(),
            vec![(7, 3), (3, 2), (9, 1)]
        );
        assert_eq!(
            w.flapping
                .iter()
                .map(|f| (f.fingerprint, f.changes))
                .collect::<Vec<_>>(),
            vec![(7, 4), (3, 3)]
        );
        let names: Vec<_> = w
            .time_to_resolve
            .iter()
            .map(|r| (r.alertname, r.max_us))
            .collect();
        assert_eq!(names, vec![("Three", 30), ("Seven", 10)]);
        // Columns of different lengths are refused; so is a malformed array.
        let short = int8_array(TIMESTAMPTZ_OID, &[0]);
        let bad = WindowArrays {
            starts: Some(&short),
            ..arrays
        };
        assert!(window(bad, name, 10, 3).is_err());
        let broken = WindowArrays {
            started: Some(&started[..5]),
            ..arrays
        };
        assert!(window(broken, name, 10, 3).is_err());
        assert!(WindowArrays::default().is_empty());
    }
}
