//! `webhookfast._core`: the thin PyO3 binding over the pure-Rust `webhookfast-core` crate.
//! Only conversion and binding code lives here; see `python/webhookfast/_core.pyi` for the API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock, RwLockReadGuard, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyException, PyMemoryError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PyMapping, PyString, PyTuple};

use webhookfast_core as core;

/// Rust-side allocations only (Python objects stay on pymalloc). A decoded alert is ~25 small
/// strings and vectors; glibc malloc+free was ~25% of `decode`, mimalloc cuts `decode` by ~24%
/// (callgrind, rust/core/examples/ircount vs ircount_mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bodies at least this large are decoded with the GIL released.
const DETACH_BODY_BYTES: usize = 32 * 1024;
/// Flushes with at least this many alerts are encoded with the GIL released.
const DETACH_ROWS: usize = 256;
/// Statistics arrays at least this large are aggregated with the GIL released; exported as
/// `_core.WINDOW_STATS_DETACH_BYTES`, the size past which the history API calls window_stats on a
/// thread of its own.
const DETACH_STATS_BYTES: usize = 1 << 20;

/// Validation limits for one request body. Every limit is inclusive.
#[pyclass(module = "webhookfast._core", get_all, set_all)]
#[derive(Clone)]
struct Limits {
    max_alerts: usize,
    max_labels: usize,
    max_annotations: usize,
    max_name_bytes: usize,
    max_value_bytes: usize,
    max_depth: usize,
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (
        *,
        max_alerts = 10000,
        max_labels = 128,
        max_annotations = 128,
        max_name_bytes = 1024,
        max_value_bytes = 65536,
        max_depth = 32,
    ))]
    fn new(
        max_alerts: usize,
        max_labels: usize,
        max_annotations: usize,
        max_name_bytes: usize,
        max_value_bytes: usize,
        max_depth: usize,
    ) -> Self {
        Limits {
            max_alerts,
            max_labels,
            max_annotations,
            max_name_bytes,
            max_value_bytes,
            max_depth,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Limits(max_alerts={}, max_labels={}, max_annotations={}, max_name_bytes={}, max_value_bytes={}, max_depth={})",
            self.max_alerts, self.max_labels, self.max_annotations, self.max_name_bytes, self.max_value_bytes, self.max_depth
        )
    }
}

impl Limits {
    fn core(&self) -> core::Limits {
        core::Limits {
            max_alerts: self.max_alerts,
            max_labels: self.max_labels,
            max_annotations: self.max_annotations,
            max_name_bytes: self.max_name_bytes,
            max_value_bytes: self.max_value_bytes,
            max_depth: self.max_depth,
        }
    }
}

pyo3::create_exception!(
    webhookfast._core,
    PayloadError,
    PyValueError,
    "A body that is not a valid alert payload.\n\n``reason`` is a stable machine-readable code, ``path`` the JSON path of the\noffending value (``None`` when the body is not JSON at all), ``offset`` the byte offset into\nthe body (``None`` when unknown). ``str(err)`` is a short message."
);

/// A `PayloadError` instance (`str(err)` is the message) with `reason`, `path`, `offset` and
/// `message` set as instance attributes.
fn payload_error(py: Python<'_>, e: core::PayloadError) -> PyErr {
    let err = PayloadError::new_err(e.message.clone());
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("reason", e.reason.as_str())?;
        value.setattr("path", e.path)?;
        value.setattr("offset", e.offset)?;
        value.setattr("message", e.message)?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(other) => other,
    }
}

/// The alerts of one accepted request, decoded and held in Rust memory.
#[pyclass(module = "webhookfast._core", frozen)]
struct Batch {
    inner: core::Batch,
    /// Measured by the decoder's last check (`decode_sized`): the queue's bounds read it when
    /// the batch enters and when it leaves.
    decoded_bytes: u64,
}

impl Batch {
    /// `(alerts, bytes)` it counts against the queue's bounds, with what is kept beside it.
    fn queued(&self, extra_bytes: u64) -> (u64, u64) {
        (
            self.inner.len() as u64,
            self.decoded_bytes.saturating_add(extra_bytes),
        )
    }
}

#[pymethods]
impl Batch {
    /// Interned: the ingest path reads it once per request to pick its metric children.
    #[getter]
    fn format<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match self.inner.format {
            core::Format::Alertmanager => intern!(py, "alertmanager"),
            core::Format::Prometheus => intern!(py, "prometheus"),
            core::Format::Generic => intern!(py, "generic"),
        }
        .clone()
    }
    #[getter]
    fn receiver(&self) -> &str {
        &self.inner.receiver
    }
    #[getter]
    fn group_key(&self) -> &str {
        &self.inner.group_key
    }
    #[getter]
    fn received_at_us(&self) -> i64 {
        self.inner.received_at_us
    }
    #[getter]
    fn firing(&self) -> usize {
        self.inner.firing
    }
    #[getter]
    fn resolved(&self) -> usize {
        self.inner.resolved
    }
    #[getter]
    fn fingerprint_mismatches(&self) -> usize {
        self.inner.fingerprint_mismatches
    }
    #[getter]
    fn nul_replaced(&self) -> usize {
        self.inner.nul_replaced
    }
    #[getter]
    fn body_bytes(&self) -> usize {
        self.inner.body_bytes
    }
    #[getter]
    fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn fingerprints(&self) -> Vec<String> {
        self.inner.fingerprints()
    }
    /// Every alert as a dict (for tests and debugging; not used on the hot path).
    fn to_dicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for a in &self.inner.alerts {
            let d = PyDict::new(py);
            d.set_item("fingerprint", core::fingerprint_hex(a.fingerprint))?;
            d.set_item("status", a.status.as_str())?;
            d.set_item("starts_at_us", a.starts_at_us)?;
            d.set_item("ends_at_us", a.ends_at_us)?;
            let labels = PyDict::new(py);
            for (k, v) in &a.labels {
                labels.set_item(k, v)?;
            }
            d.set_item("labels", labels)?;
            let annotations = PyDict::new(py);
            for (k, v) in &a.annotations {
                annotations.set_item(k, v)?;
            }
            d.set_item("annotations", annotations)?;
            d.set_item("generator_url", &a.generator_url)?;
            list.append(d)?;
        }
        Ok(list)
    }
    fn __repr__(&self) -> String {
        format!(
            "<Batch format={} alerts={} firing={} resolved={}>",
            self.inner.format.as_str(),
            self.inner.len(),
            self.inner.firing,
            self.inner.resolved
        )
    }
}

fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// Detect the format of ``body``, parse and validate it, and fingerprint every alert.
#[pyfunction]
#[pyo3(signature = (body, limits = None, received_at_us = None, max_decoded_bytes = None))]
fn decode(
    py: Python<'_>,
    body: &[u8],
    limits: Option<PyRef<'_, Limits>>,
    received_at_us: Option<i64>,
    max_decoded_bytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<Batch> {
    let limits = limits.map(|l| l.core()).unwrap_or_default();
    let received_at_us = received_at_us.unwrap_or_else(now_us);
    let budget = match max_decoded_bytes {
        None => usize::MAX,
        // Tried by hand, not by a derived enum: a failed variant builds an error, ~10,000
        // instructions a call (scripts/instructions.py).
        Some(arg) => match arg.cast::<DecodeBudget>() {
            Ok(b) => usize::try_from(b.get().bytes()).unwrap_or(usize::MAX),
            Err(_) => arg.extract::<usize>()?,
        },
    };
    let decode = || {
        core::decode_sized(body, &limits, received_at_us, budget).map(|(inner, held)| Batch {
            inner,
            decoded_bytes: held as u64,
        })
    };
    let result = if body.len() >= DETACH_BODY_BYTES {
        py.detach(decode)
    } else {
        decode()
    };
    result.map_err(|e| payload_error(py, e))
}

/// The ingest queue's bounds (see `core::queue_bounds`).
#[pyclass(module = "webhookfast._core", frozen)]
struct QueueBounds {
    inner: core::queue_bounds::QueueBounds,
}

#[pymethods]
impl QueueBounds {
    #[new]
    fn new(max_alerts: u64, max_bytes: u64) -> Self {
        Self {
            inner: core::queue_bounds::QueueBounds::new(max_alerts, max_bytes),
        }
    }
    /// Counts ``batch`` (and ``extra_bytes`` kept with it) in if it fits, or if the queue is empty.
    #[pyo3(signature = (batch, extra_bytes = 0))]
    fn admit(&self, batch: &Bound<'_, Batch>, extra_bytes: u64) -> bool {
        let (alerts, bytes) = batch.get().queued(extra_bytes);
        self.inner.admit(alerts, bytes)
    }
    /// Counts ``batch`` (and ``extra_bytes``) out again.
    #[pyo3(signature = (batch, extra_bytes = 0))]
    fn release(&self, batch: &Bound<'_, Batch>, extra_bytes: u64) {
        let (alerts, bytes) = batch.get().queued(extra_bytes);
        self.inner.release(alerts, bytes);
    }
    #[getter]
    fn alerts(&self) -> u64 {
        self.inner.queued().alerts
    }
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.queued().bytes
    }
    #[getter]
    fn room(&self) -> Option<u64> {
        self.inner.room()
    }
    #[getter]
    fn max_alerts(&self) -> u64 {
        self.inner.max_alerts
    }
    #[getter]
    fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }
}

/// What a body may decode into, given a queue: see `core::queue_bounds::QueueBounds::decode_budget`.
/// Passed to `decode` as its `max_decoded_bytes`, read when decoding starts, so that the ingest
/// path makes no `int` for it.
#[pyclass(module = "webhookfast._core", frozen)]
struct DecodeBudget {
    queue: Py<QueueBounds>,
    floor: u64,
    lone: u64,
}

impl DecodeBudget {
    fn bytes(&self) -> u64 {
        self.queue.get().inner.decode_budget(self.floor, self.lone)
    }
}

#[pymethods]
impl DecodeBudget {
    #[new]
    fn new(queue: Py<QueueBounds>, floor: u64, lone: u64) -> Self {
        Self { queue, floor, lone }
    }
    /// The budget now.
    #[getter(bytes)]
    fn py_bytes(&self) -> u64 {
        self.bytes()
    }
}

/// Prometheus ``LabelSet.Fingerprint()`` as 16 lowercase hex digits.
#[pyfunction]
fn fingerprint(labels: &Bound<'_, PyAny>) -> PyResult<String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Ok(d) = labels.cast::<PyDict>() {
        pairs.reserve(d.len());
        for (k, v) in d.iter() {
            pairs.push((k.extract()?, v.extract()?));
        }
    } else if let Ok(m) = labels.cast::<PyMapping>() {
        for item in m.items()?.iter() {
            let (k, v): (String, String) = item.extract()?;
            pairs.push((k, v));
        }
    } else {
        return Err(PyTypeError::new_err(
            "labels must be a mapping of str to str",
        ));
    }
    Ok(core::fingerprint_hex(core::fingerprint(&pairs)))
}

/// The signed 64-bit integer under which a hex fingerprint is stored.
#[pyfunction]
fn fingerprint_to_int(fp: &str) -> PyResult<i64> {
    core::parse_fingerprint_hex(fp)
        .map(core::fingerprint_to_int)
        .ok_or_else(|| PyValueError::new_err("fingerprint must be 16 hex digits"))
}

/// The hex fingerprint of a stored signed 64-bit integer.
#[pyfunction]
fn fingerprint_from_int(value: i64) -> String {
    core::fingerprint_hex(core::fingerprint_from_int(value))
}

/// Microseconds since the Unix epoch (a signed 64-bit integer, else OverflowError) as
/// ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, clamped to years 0001..9999; ``None`` stays ``None``.
#[pyfunction]
fn format_time(us: Option<i64>) -> Option<String> {
    us.map(core::rfc3339::format_rfc3339_us)
}

/// One row of the alert list query, its strings borrowed from the Python objects (no copies).
struct ListRow {
    fingerprint: i64,
    starts_at: i64,
    first_seen: i64,
    last_seen: i64,
    notifications: i64,
    ends_at: Option<i64>,
    status: PyBackedStr,
    receiver: PyBackedStr,
    labels: PyBackedStr,
    annotations: Option<PyBackedStr>,
}

fn list_row(item: &Bound<'_, PyAny>) -> PyResult<ListRow> {
    let t = item.cast::<PyTuple>()?;
    if t.len() != 10 {
        return Err(PyTypeError::new_err("an alert row has 10 columns"));
    }
    Ok(ListRow {
        fingerprint: t.get_item(0)?.extract()?,
        starts_at: t.get_item(1)?.extract()?,
        first_seen: t.get_item(4)?.extract()?,
        last_seen: t.get_item(5)?.extract()?,
        notifications: t.get_item(6)?.extract()?,
        ends_at: t.get_item(3)?.extract()?,
        status: t.get_item(2)?.extract()?,
        receiver: t.get_item(7)?.extract()?,
        labels: t.get_item(8)?.extract()?,
        annotations: t.get_item(9)?.extract()?,
    })
}

/// The JSON body of one ``GET /api/v1/alerts`` page from the rows of its query
/// ``(fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, receiver,
/// labels, annotations)``: what ``orjson.dumps(..., option=OPT_SORT_KEYS)`` gives for the page.
/// Labels and annotations must be JSON objects of strings (ValueError otherwise).
#[pyfunction]
#[pyo3(signature = (rows, next_cursor = None))]
fn alert_page<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    next_cursor: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let owned = rows
        .try_iter()?
        .map(|item| list_row(&item?))
        .collect::<PyResult<Vec<ListRow>>>()?;
    let refs: Vec<core::answers::AlertRow<'_>> = owned
        .iter()
        .map(|r| core::answers::AlertRow {
            fingerprint: r.fingerprint,
            starts_at: r.starts_at,
            status: &r.status,
            ends_at: r.ends_at,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            notifications: r.notifications,
            receiver: &r.receiver,
            labels: &r.labels,
            annotations: r.annotations.as_deref(),
        })
        .collect();
    let body = core::answers::alert_page(&refs, next_cursor)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &body))
}

/// One answered request kept until the access log is next written: its strings held, not copied.
struct KeptRecord {
    method: Py<PyString>,
    path: Py<PyString>,
    route: Py<PyString>,
    status: u16,
    started: f64,
    ended: f64,
    bytes_in: u64,
    bytes_out: u64,
    alerts: u64,
    request_id: Py<PyString>,
    peer: Option<Py<PyString>>,
}

type RouteStatsRow = (String, u16, u64, f64, Vec<u64>);

/// The answered requests of one worker not yet written to the access log or counted in the
/// metrics: see ``_core.pyi``. Kept here rather than as a Python tuple each, which was one more
/// object per request, and its float end time another once the float free list ran dry.
#[pyclass(module = "webhookfast._core")]
struct AccessRecords {
    kept: Vec<KeptRecord>,
    capacity: usize,
}

#[pymethods]
impl AccessRecords {
    #[new]
    fn new(capacity: usize) -> PyResult<Self> {
        if capacity == 0 {
            return Err(PyValueError::new_err("capacity must be at least 1"));
        }
        Ok(Self {
            kept: Vec::with_capacity(capacity),
            capacity,
        })
    }

    #[pyo3(signature = (method, path, route, status, started, ended, bytes_in, bytes_out, alerts, request_id, peer))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        method: Bound<'_, PyString>,
        path: Bound<'_, PyString>,
        route: Bound<'_, PyString>,
        status: u16,
        started: f64,
        ended: f64,
        bytes_in: &Bound<'_, PyAny>,
        bytes_out: u64,
        alerts: u64,
        request_id: Bound<'_, PyString>,
        peer: Option<Bound<'_, PyString>>,
    ) -> PyResult<bool> {
        let bytes_in = match bytes_in.cast::<PyBytes>() {
            Ok(body) => body.as_bytes().len() as u64,
            Err(_) => bytes_in.extract()?,
        };
        self.kept.push(KeptRecord {
            method: method.unbind(),
            path: path.unbind(),
            route: route.unbind(),
            status,
            started,
            ended,
            bytes_in,
            bytes_out,
            alerts,
            request_id: request_id.unbind(),
            peer: peer.map(Bound::unbind),
        });
        Ok(self.kept.len() >= self.capacity)
    }

    fn __len__(&self) -> usize {
        self.kept.len()
    }

    #[pyo3(signature = (wall_offset, bounds, lines = true, stats = true))]
    fn drain<'py>(
        &mut self,
        py: Python<'py>,
        wall_offset: f64,
        bounds: Vec<f64>,
        lines: bool,
        stats: bool,
    ) -> (Bound<'py, PyBytes>, Vec<RouteStatsRow>) {
        let mut out = Vec::with_capacity(if lines { self.kept.len() * 240 } else { 0 });
        let mut per_route = Vec::new();
        // Drained in place: the vector keeps its capacity for the next records.
        for r in self.kept.drain(..) {
            // Lossy: a line is written whatever the path holds (lone surrogates included).
            let (method, path, route, request_id) = (
                r.method.bind(py),
                r.path.bind(py),
                r.route.bind(py),
                r.request_id.bind(py),
            );
            let peer = r.peer.as_ref().map(|p| p.bind(py));
            let (method, path, route, request_id) = (
                method.to_string_lossy(),
                path.to_string_lossy(),
                route.to_string_lossy(),
                request_id.to_string_lossy(),
            );
            let peer = peer.map(|p| p.to_string_lossy());
            let answered = core::access_log::Answered {
                method: &method,
                path: &path,
                route: &route,
                status: r.status,
                started: r.started,
                ended: r.ended,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
                alerts: r.alerts,
                request_id: &request_id,
                peer: peer.as_deref(),
            };
            if lines {
                core::access_log::write_line(&mut out, &answered, wall_offset);
            }
            if stats {
                core::access_log::observe(&mut per_route, &answered, &bounds);
            }
        }
        let rows = per_route
            .into_iter()
            .map(|s| (s.route, s.status, s.count, s.sum, s.buckets))
            .collect();
        (PyBytes::new(py, &out), rows)
    }
}

type TopFiringRow = (i64, u64);
type FlappingRow = (i64, u64, u64);
type ResolveRow = (String, u64, i64, i64, i64);

fn int8s(buf: Option<&[u8]>, oid: u32) -> PyResult<Vec<i64>> {
    buf.map_or(Ok(Vec::new()), |b| core::pgarray::int8s(b, oid))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The alertname of each fingerprint, remembered across statistics requests (a fingerprint's
/// alertname never changes). Past ``capacity`` names no new one is kept; none is ever removed.
#[pyclass(module = "webhookfast._core", frozen)]
struct AlertNames {
    // A lock, not PyO3's borrow flag: window_stats reads the map with the GIL released. Readers
    // share it; `add` never waits for it (the event loop would wait holding the GIL), it skips
    // remembering instead: the request passes what it fetched to window_stats anyway. Nothing
    // touches Python while holding it.
    inner: RwLock<core::alertnames::AlertNames>,
}

impl AlertNames {
    fn read(&self) -> RwLockReadGuard<'_, core::alertnames::AlertNames> {
        // Nothing panics while holding it (the extension aborts on panic), so no poisoning.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl AlertNames {
    #[new]
    #[pyo3(signature = (capacity = 200_000))]
    fn new(capacity: usize) -> Self {
        Self {
            inner: RwLock::new(core::alertnames::AlertNames::new(capacity)),
        }
    }

    /// The distinct fingerprints of an int8[] (``array_send`` bytes, or ``None``) whose alertname
    /// is not known, ascending.
    fn missing(&self, fingerprints: Option<&[u8]>) -> PyResult<Vec<i64>> {
        let fps = int8s(fingerprints, core::pgarray::INT8_OID)?;
        Ok(self.read().missing(&fps))
    }

    /// Remembers ``(fingerprint, alertname)`` pairs (while fewer than ``capacity`` are kept, and
    /// not while a statistics aggregation reads the map: nothing waits).
    fn add(&self, rows: Vec<(i64, PyBackedStr)>) {
        let mut names = match self.inner.try_write() {
            Ok(names) => names,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        for (fingerprint, alertname) in &rows {
            names.insert(*fingerprint, alertname);
        }
    }

    fn __len__(&self) -> usize {
        self.read().len()
    }
}

/// The aggregates of ``GET /api/v1/stats`` over one window, from PostgreSQL arrays (the bytes of
/// ``array_send(array_agg(...))``; ``None`` for the NULL of an aggregate over no rows).
/// ``started``: int8[] fingerprints of the instances started in the window; ``fingerprints``
/// (int8[]), ``starts`` and ``ends`` (timestamptz[]): the instances resolved in it, grouped for
/// time to resolve by alertname, from ``names`` or else ``fetched`` (the ``(fingerprint,
/// alertname)`` rows this request looked up); an instance whose fingerprint has a name in neither
/// is left out of time to resolve, as the SQL's join with ``label_sets`` leaves it out.
/// Returns ``(top_firing, flapping, time_to_resolve)`` as lists of ``(fingerprint, firings)``,
/// ``(fingerprint, changes, firing)`` and ``(alertname, resolved, p50_us, p90_us, max_us)``, in
/// answer order. Arrays of 1 MiB or more are aggregated without the GIL. ValueError for a
/// malformed array or columns of different lengths.
#[pyfunction]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn window_stats(
    py: Python<'_>,
    started: Option<&[u8]>,
    fingerprints: Option<&[u8]>,
    starts: Option<&[u8]>,
    ends: Option<&[u8]>,
    names: &Bound<'_, AlertNames>,
    fetched: Vec<(i64, PyBackedStr)>,
    top: usize,
    flap_min_changes: u64,
) -> PyResult<(Vec<TopFiringRow>, Vec<FlappingRow>, Vec<ResolveRow>)> {
    let names = names.get();
    let fetched: HashMap<i64, &str> = fetched.iter().map(|(fp, name)| (*fp, &**name)).collect();
    let arrays = core::stats::WindowArrays {
        started,
        fingerprints,
        starts,
        ends,
    };
    let compute = || {
        let known = names.read();
        let window = core::stats::window(
            arrays,
            |fp| known.get(fp).or_else(|| fetched.get(&fp).copied()),
            top,
            flap_min_changes,
        )
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((
            window
                .top_firing
                .into_iter()
                .map(|f| (f.fingerprint, f.firings))
                .collect(),
            window
                .flapping
                .into_iter()
                .map(|f| (f.fingerprint, f.changes, f.firing))
                .collect(),
            window
                .time_to_resolve
                .into_iter()
                .map(|r| {
                    (
                        r.alertname.to_owned(),
                        r.resolved,
                        r.p50_us,
                        r.p90_us,
                        r.max_us,
                    )
                })
                .collect(),
        ))
    };
    if arrays.len() >= DETACH_STATS_BYTES {
        py.detach(compute)
    } else {
        compute()
    }
}

/// One flush encoded as PostgreSQL binary COPY streams (header, tuples and trailer).
#[pyclass(module = "webhookfast._core", frozen)]
struct PgCopy {
    #[pyo3(get)]
    groups: Py<PyBytes>,
    #[pyo3(get)]
    label_sets: Py<PyBytes>,
    #[pyo3(get)]
    events: Py<PyBytes>,
    #[pyo3(get)]
    alerts: Py<PyBytes>,
    #[pyo3(get)]
    group_rows: usize,
    #[pyo3(get)]
    label_set_rows: usize,
    #[pyo3(get)]
    event_rows: usize,
    #[pyo3(get)]
    alert_rows: usize,
}

/// Values at least this long are matched with the GIL released.
const DETACH_MATCH_BYTES: usize = 4096;

/// A Prometheus label-matcher regex (RE2 syntax, fully anchored), compiled once per query.
#[pyclass(module = "webhookfast._core", frozen, weakref)]
struct PromRegex {
    inner: core::promregex::PromRegex,
    #[pyo3(get)]
    pattern: String,
}

#[pymethods]
impl PromRegex {
    #[new]
    fn new(py: Python<'_>, pattern: String) -> PyResult<Self> {
        // Up to ~0.5 s for the largest patterns accepted (thousands of case-folded \pL): not
        // under the GIL.
        let inner = py
            .detach(|| core::promregex::PromRegex::new(&pattern))
            .map_err(|e| PyValueError::new_err(e.message))?;
        Ok(PromRegex { inner, pattern })
    }

    fn fullmatch(&self, py: Python<'_>, value: &str) -> bool {
        if value.len() >= DETACH_MATCH_BYTES {
            py.detach(|| self.inner.is_match(value))
        } else {
            self.inner.is_match(value)
        }
    }

    #[getter]
    fn postgres(&self) -> &str {
        self.inner.postgres()
    }

    fn __repr__(&self) -> String {
        format!("PromRegex({:?})", self.pattern)
    }
}

/// Turns the batches of one flush into storage rows.
#[pyclass(module = "webhookfast._core")]
struct RowEncoder {
    inner: core::RowEncoder,
}

fn out_of_memory(e: core::OutOfMemory) -> PyErr {
    PyMemoryError::new_err(e.to_string())
}

fn batch_refs<'a, 'py>(batches: &'a [Bound<'py, Batch>]) -> Vec<&'a core::Batch> {
    batches.iter().map(|b| &b.get().inner).collect()
}

fn extract_batches<'py>(batches: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, Batch>>> {
    if batches.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("batches must be a sequence of Batch"));
    }
    let mut out = Vec::new();
    for item in batches.try_iter()? {
        out.push(item?.cast_into::<Batch>().map_err(PyErr::from)?);
    }
    Ok(out)
}

#[pymethods]
impl RowEncoder {
    #[new]
    #[pyo3(signature = (reuse_buffers = true))]
    fn new(reuse_buffers: bool) -> Self {
        RowEncoder {
            inner: core::RowEncoder::new(reuse_buffers),
        }
    }

    fn pg_copy(&mut self, py: Python<'_>, batches: &Bound<'_, PyAny>) -> PyResult<PgCopy> {
        let owned = extract_batches(batches)?;
        let refs = batch_refs(&owned);
        let total: usize = refs.iter().map(|b| b.len()).sum();
        let inner = &mut self.inner;
        let out = if total >= DETACH_ROWS {
            py.detach(|| inner.pg_copy(&refs))
        } else {
            inner.pg_copy(&refs)
        }
        .map_err(out_of_memory)?;
        Ok(PgCopy {
            groups: PyBytes::new(py, &out.groups).unbind(),
            label_sets: PyBytes::new(py, &out.label_sets).unbind(),
            events: PyBytes::new(py, &out.events).unbind(),
            alerts: PyBytes::new(py, &out.alerts).unbind(),
            group_rows: out.group_rows,
            label_set_rows: out.label_set_rows,
            event_rows: out.event_rows,
            alert_rows: out.alert_rows,
        })
    }

    /// `(arrays, label_set_rows, event_rows, alert_rows)`: the 26 binary arrays of
    /// `webhookfast_flush`'s parameters, in order.
    fn pg_arrays<'py>(
        &mut self,
        py: Python<'py>,
        batches: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyTuple>, usize, usize, usize)> {
        let owned = extract_batches(batches)?;
        let refs = batch_refs(&owned);
        let total: usize = refs.iter().map(|b| b.len()).sum();
        let inner = &mut self.inner;
        let (arrays, [label_sets, events, alerts]) = if total >= DETACH_ROWS {
            py.detach(|| inner.pg_arrays(&refs))
        } else {
            inner.pg_arrays(&refs)
        }
        .map_err(out_of_memory)?;
        let items = (0..arrays.len()).map(|i| PyBytes::new(py, arrays.array(i)));
        Ok((PyTuple::new(py, items)?, label_sets, events, alerts))
    }

    fn row_tuples<'py>(
        &self,
        py: Python<'py>,
        batches: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let owned = extract_batches(batches)?;
        let refs = batch_refs(&owned);
        let rows = self.inner.row_tuples(&refs).map_err(out_of_memory)?;
        let groups = PyList::new(py, rows.groups)?;
        let label_sets = PyList::new(py, rows.label_sets)?;
        let events = PyList::new(py, rows.events)?;
        let alerts = PyList::new(py, rows.alerts)?;
        PyTuple::new(py, [groups, label_sets, events, alerts])
    }
}

pyo3::create_exception!(
    webhookfast._core,
    SqliteError,
    PyException,
    "A failed SQLite write: ``code`` is SQLite's extended result code, ``refused`` whether SQLite\nrefused the rows themselves (a constraint, a value too big) rather than failed."
);

fn sqlite_error(py: Python<'_>, e: core::sqlite::Error) -> PyErr {
    let err = SqliteError::new_err(e.to_string());
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("code", e.code)?;
        value.setattr("refused", e.refused_content())
    };
    match set() {
        Ok(()) => err,
        Err(other) => other,
    }
}

/// Writes flushes to an SQLite database on a connection of its own, with the GIL released
/// (`webhookfast.storage.sqlite`), through the SQLite library this process already loaded.
#[pyclass(module = "webhookfast._core", frozen)]
struct SqliteWriter {
    inner: Mutex<Option<(core::sqlite::Writer, core::RowEncoder)>>,
    #[pyo3(get)]
    library_version: String,
    #[pyo3(get)]
    wal_buffered: bool,
}

#[pymethods]
impl SqliteWriter {
    #[new]
    fn new(
        py: Python<'_>,
        library: &str,
        module: &str,
        database: PathBuf,
        setup: &str,
        statements: (String, String, String, String),
    ) -> PyResult<Self> {
        let lib = core::sqlite::Library::already_loaded(library).map_err(PyValueError::new_err)?;
        if !lib.used_by(module) {
            return Err(PyValueError::new_err(format!(
                "{module} does not use the SQLite library {library}"
            )));
        }
        let (groups, label_sets, events, alerts) = &statements;
        let sql = core::sqlite::Statements {
            groups,
            label_sets,
            events,
            alerts,
        };
        let writer = py
            .detach(|| core::sqlite::Writer::open(lib, &database, setup, &sql))
            .map_err(|e| sqlite_error(py, e))?;
        let wal_buffered = writer.wal_buffered();
        Ok(SqliteWriter {
            inner: Mutex::new(Some((writer, core::RowEncoder::new(true)))),
            library_version: lib.version(),
            wal_buffered,
        })
    }

    /// Encode `batches` and write their rows in one transaction, with the GIL released:
    /// `(label_sets, events, alerts)` written.
    fn write(&self, py: Python<'_>, batches: &Bound<'_, PyAny>) -> PyResult<(usize, usize, usize)> {
        let owned = extract_batches(batches)?;
        let refs = batch_refs(&owned);
        let inner = &self.inner;
        py.detach(|| {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            let Some((writer, encoder)) = guard.as_mut() else {
                return Err(WriteFailure::Sqlite(core::sqlite::Error {
                    code: 21, // SQLITE_MISUSE
                    message: "the writer is closed".to_owned(),
                }));
            };
            let rows = encoder.row_tuples(&refs).map_err(WriteFailure::Memory)?;
            writer.write(&rows).map_err(WriteFailure::Sqlite)?;
            Ok((rows.label_sets.len(), rows.events.len(), rows.alerts.len()))
        })
        .map_err(|e| match e {
            WriteFailure::Memory(e) => out_of_memory(e),
            WriteFailure::Sqlite(e) => sqlite_error(py, e),
        })
    }

    /// Close the connection (SQLite may checkpoint then: call it where blocking is fine).
    fn close(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| drop(inner.lock().unwrap_or_else(|e| e.into_inner()).take()));
    }
}

enum WriteFailure {
    Memory(core::OutOfMemory),
    Sqlite(core::sqlite::Error),
}

/// Appends request bodies to a spool directory, one fsync per group (`webhookfast.spool`).
#[pyclass(module = "webhookfast._core", frozen)]
struct SpoolWriter {
    inner: Mutex<core::spool::Writer>,
    #[pyo3(get)]
    torn_bytes: u64,
}

#[pymethods]
impl SpoolWriter {
    #[new]
    fn new(py: Python<'_>, directory: PathBuf, segment_bytes: u64) -> PyResult<Self> {
        let (inner, recovery) =
            py.detach(|| core::spool::Writer::open(&directory, segment_bytes))?;
        Ok(SpoolWriter {
            inner: Mutex::new(inner),
            torn_bytes: recovery.torn_bytes,
        })
    }

    /// Append `(received_at_us, body)` records and fsync, with the GIL released.
    fn append(
        &self,
        py: Python<'_>,
        records: Vec<(i64, PyBackedBytes)>,
    ) -> PyResult<(u64, Vec<u64>)> {
        let refs: Vec<(i64, &[u8])> = records
            .iter()
            .map(|(at, body)| (*at, body.as_ref()))
            .collect();
        Ok(py.detach(|| self.writer().append(&refs))?)
    }

    fn rotate(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.writer().rotate())?)
    }

    #[getter]
    fn position(&self) -> (u64, u64) {
        self.writer().position()
    }
}

impl SpoolWriter {
    fn writer(&self) -> std::sync::MutexGuard<'_, core::spool::Writer> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The JSON answer to an accepted ingest request.
#[pyfunction]
fn ack_body<'py>(
    py: Python<'py>,
    status: &str,
    alerts: u64,
    request_id: &str,
) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(64 + request_id.len());
    core::ack::write_ack(&mut out, status, alerts, request_id);
    PyBytes::new(py, &out)
}

/// New request ids, one `str` per call (see `core::ack::RequestIds`).
#[pyclass(module = "webhookfast._core", frozen)]
struct RequestIds {
    inner: core::ack::RequestIds,
}

#[pymethods]
impl RequestIds {
    #[new]
    fn new(prefix: &str) -> Self {
        Self {
            inner: core::ack::RequestIds::new(prefix),
        }
    }
    fn new_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        let mut id = String::with_capacity(32);
        self.inner.next_into(&mut id);
        PyString::new(py, &id)
    }
}

/// The segments of a spool directory as `(seq, length)`, oldest first.
#[pyfunction]
fn spool_segments(directory: PathBuf) -> PyResult<Vec<(u64, u64)>> {
    Ok(core::spool::list(&directory)?)
}

type SpoolRecord<'py> = (u64, u64, i64, Bound<'py, PyBytes>);

/// Records of segment `seq` in `[start, end)` as `(start, end, received_at_us, body)`, and the
/// damaged stretches copied to `quarantine/` as `(start, end, path)`; the GIL is released.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn spool_read<'py>(
    py: Python<'py>,
    directory: PathBuf,
    seq: u64,
    start: u64,
    end: u64,
) -> PyResult<(Vec<SpoolRecord<'py>>, Vec<(u64, u64, PathBuf)>)> {
    let contents = py.detach(|| core::spool::read(&directory, seq, start, end))?;
    let records = contents
        .records
        .into_iter()
        .map(|r| (r.start, r.end, r.received_at_us, PyBytes::new(py, &r.body)))
        .collect();
    let quarantined = contents
        .quarantined
        .into_iter()
        .map(|q| (q.start, q.end, q.path))
        .collect();
    Ok((records, quarantined))
}

#[pymodule]
#[pyo3(name = "_core")]
fn webhookfast_core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("WINDOW_STATS_DETACH_BYTES", DETACH_STATS_BYTES)?;
    // The error codes of PayloadError, defined once (here) for the HTTP layer and its docs.
    let reasons = core::Reason::ALL;
    let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    m.add("PAYLOAD_REASONS", PyTuple::new(m.py(), &names)?)?;
    let syntax: Vec<&str> = reasons
        .iter()
        .filter(|r| r.is_syntax())
        .map(|r| r.as_str())
        .collect();
    m.add("SYNTAX_REASONS", PyFrozenSet::new(m.py(), &syntax)?)?;
    // The element type (pg_type oid) of each array RowEncoder.pg_arrays returns, in order.
    m.add(
        "PG_ARRAY_ELEMENT_OIDS",
        PyTuple::new(m.py(), core::rows::pgarrays::COLUMN_TYPES)?,
    )?;
    m.add_class::<Limits>()?;
    m.add("PayloadError", m.py().get_type::<PayloadError>())?;
    m.add_class::<Batch>()?;
    m.add_class::<PgCopy>()?;
    m.add_class::<RowEncoder>()?;
    m.add_class::<AlertNames>()?;
    m.add_class::<PromRegex>()?;
    m.add_class::<SpoolWriter>()?;
    m.add_class::<SqliteWriter>()?;
    m.add_class::<RequestIds>()?;
    m.add_class::<QueueBounds>()?;
    m.add_class::<DecodeBudget>()?;
    m.add_class::<AccessRecords>()?;
    m.add_function(wrap_pyfunction!(ack_body, m)?)?;
    m.add("SqliteError", m.py().get_type::<SqliteError>())?;
    m.add_function(wrap_pyfunction!(spool_segments, m)?)?;
    m.add_function(wrap_pyfunction!(spool_read, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint_to_int, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint_from_int, m)?)?;
    m.add_function(wrap_pyfunction!(format_time, m)?)?;
    m.add_function(wrap_pyfunction!(alert_page, m)?)?;
    m.add_function(wrap_pyfunction!(window_stats, m)?)?;
    Ok(())
}
