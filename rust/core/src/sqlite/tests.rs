use std::ffi::CString;
use std::path::PathBuf;
use std::ptr;

use super::*;
use crate::rows::RowTuples;

const SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
CREATE TABLE IF NOT EXISTS g (id INTEGER PRIMARY KEY, receiver TEXT, group_key TEXT, last_used INTEGER);
CREATE TABLE IF NOT EXISTS l (fp INTEGER PRIMARY KEY, labels TEXT, alertname TEXT, severity TEXT);
CREATE TABLE IF NOT EXISTS e (fp INTEGER, starts INTEGER, status TEXT, ends INTEGER, received INTEGER,
    grp INTEGER, source TEXT, url TEXT, annotations TEXT NOT NULL, PRIMARY KEY (fp, starts));
CREATE TABLE IF NOT EXISTS a (fp INTEGER, starts INTEGER, status TEXT, ends INTEGER, first INTEGER,
    last INTEGER, n INTEGER, grp INTEGER, from_ends INTEGER, PRIMARY KEY (fp, starts));";

const STATEMENTS: Statements<'static> = Statements {
    groups: "INSERT INTO g VALUES (?, ?, ?, ?)",
    label_sets: "INSERT INTO l VALUES (?, ?, ?, ?)",
    events: "INSERT INTO e VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    alerts: "INSERT INTO a VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
};

fn library() -> &'static Library {
    Library::load("libsqlite3.so.0").expect("the system's SQLite (Debian's libsqlite3-0)")
}

fn database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::write(&path, b"").unwrap(); // an empty file is an empty database
    (dir, path)
}

fn rows(fp: i64) -> RowTuples<'static> {
    RowTuples {
        groups: vec![(7, "team\0x", "{}:{alertname=\"A\"}", 1)],
        label_sets: vec![(fp, "{\"alertname\":\"A\"}", "A", "")],
        events: vec![(fp, 10, "firing", None, 11, 7, "am", "", "{}")],
        alerts: vec![(fp, 10, "firing", Some(20), 11, 11, 1, 7, true)],
    }
}

#[test]
fn a_flush_is_committed_and_survives_the_connection() {
    let lib = library();
    assert!(lib.version().starts_with('3'));
    let (_dir, path) = database();
    let mut w = Writer::open(lib, &path, SETUP, &STATEMENTS).unwrap();
    let mut first = rows(1);
    first.groups.clear();
    w.write(&first).unwrap();
    drop(w);
    // A new connection sees the committed row: inserting it again breaks the primary key.
    let mut w = Writer::open(lib, &path, SETUP, &STATEMENTS).unwrap();
    let err = w.write(&rows(1)).unwrap_err();
    assert!(err.refused_content(), "{err}");
    assert_eq!(err.code & 0xff, library::SQLITE_CONSTRAINT);
    assert!(err.message.contains("UNIQUE"), "{err}");
}

#[test]
fn a_refused_flush_leaves_nothing_behind() {
    let (_dir, path) = database();
    let mut w = Writer::open(library(), &path, SETUP, &STATEMENTS).unwrap();
    let mut twice = rows(2);
    twice.alerts.push(twice.alerts[0]); // the second copy breaks the primary key, last
    assert!(w.write(&twice).unwrap_err().refused_content());
    // Rolled back: every row of it, the groups written first included, can be written now.
    w.write(&rows(2)).unwrap();
    assert!(w.in_autocommit());
}

#[test]
fn other_failures_are_not_refusals_and_the_connection_goes_on() {
    let (_dir, path) = database();
    let mut w = Writer::open(library(), &path, SETUP, &STATEMENTS).unwrap();
    w.write(&rows(3)).unwrap();
    let err = w.exec("INSERT INTO nowhere VALUES (1)").unwrap_err();
    assert!(!err.refused_content());
    assert!(err.message.contains("no such table"), "{err}");
    let mut next = rows(4);
    next.groups.clear(); // group 7 is stored already (the real statement has ON CONFLICT)
    w.write(&next).unwrap();
}

#[test]
fn opening_needs_an_existing_database_and_valid_sql() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert!(Writer::open(lib, &missing, SETUP, &STATEMENTS).is_err());
    assert!(
        !missing.exists(),
        "never created: the migrations make the database"
    );
    let (_dir, path) = database();
    let bad = Statements {
        alerts: "INSERT INTO nowhere VALUES (?)",
        ..STATEMENTS
    };
    let err = Writer::open(lib, &path, SETUP, &bad).err().unwrap();
    assert!(err.message.contains("no such table"), "{err}");
}

#[test]
fn a_library_not_loaded_is_not_loaded_by_already_loaded() {
    let err = Library::already_loaded("/nonexistent/libsqlite3.so.0")
        .err()
        .unwrap();
    assert!(err.contains("/nonexistent/libsqlite3.so.0"), "{err}");
    // Once loaded (here by the tests themselves), it is found.
    library();
    assert!(Library::already_loaded("libsqlite3.so.0").is_ok());
}

#[test]
fn a_library_is_used_by_what_resolves_its_functions_to_it() {
    let lib = library();
    assert!(lib.used_by("libsqlite3.so.0"));
    assert!(!lib.used_by("libc.so.6"), "libc has no SQLite of its own");
    assert!(!lib.used_by("/nonexistent/_sqlite3.so"));
}

/// One integer from `sql` on a connection of the default VFS (as Python's readers open theirs).
fn query_int(path: &std::path::Path, sql: &str) -> i64 {
    let lib = library();
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let csql = CString::new(sql).unwrap();
    let mut db = ptr::null_mut();
    let mut stmt = ptr::null_mut();
    // SAFETY: valid C strings and out-pointers; statement and connection closed below.
    unsafe {
        let rc = (lib.open_v2)(
            cpath.as_ptr(),
            &mut db,
            library::SQLITE_OPEN_READWRITE,
            ptr::null(),
        );
        assert_eq!(rc, library::SQLITE_OK);
        let rc = (lib.prepare_v2)(db, csql.as_ptr(), -1, &mut stmt, ptr::null_mut());
        assert_eq!(rc, library::SQLITE_OK, "{sql}");
        assert_eq!((lib.step)(stmt), library::SQLITE_ROW, "{sql}");
        let value = (lib.column_int64)(stmt, 0);
        (lib.finalize)(stmt);
        (lib.close_v2)(db);
        value
    }
}

/// `n` label-set rows from fingerprint `first` on, each with labels of `width` bytes.
fn label_sets(first: i64, n: i64, width: usize) -> RowTuples<'static> {
    let labels: &'static str =
        Box::leak(format!("{{\"a\":\"{}\"}}", "x".repeat(width)).into_boxed_str());
    RowTuples {
        groups: vec![],
        label_sets: (first..first + n)
            .map(|fp| (fp * 7919 % 1_000_003, labels, "A", ""))
            .collect(),
        events: vec![],
        alerts: vec![],
    }
}

const BAD_PAGES: &str = "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'";

#[test]
fn a_writer_that_syncs_every_commit_gathers_its_wal_writes() {
    let (_dir, path) = database();
    let mut w = Writer::open(library(), &path, SETUP, &STATEMENTS).unwrap();
    assert!(w.wal_buffered());
    let (asked, made) = wal_buffer::write_counts();
    for k in 0..30 {
        w.write(&label_sets(k * 20, 20, 300)).unwrap();
    }
    let (asked, made) = (
        wal_buffer::write_counts().0 - asked,
        wal_buffer::write_counts().1 - made,
    );
    // Two writes per frame asked, about one made per commit (other tests may add theirs).
    assert!(asked >= 30 * 4, "{asked} writes asked");
    assert!(made * 4 <= asked, "{made} writes made for {asked} asked");
    // Committed means on file: a connection of the default VFS reads every row while the writer
    // is still open.
    assert_eq!(query_int(&path, "SELECT count(*) FROM l"), 600);
    drop(w);
    assert_eq!(query_int(&path, BAD_PAGES), 0);
}

#[test]
fn a_writer_whose_commits_do_not_all_sync_keeps_the_default_vfs() {
    let (_dir, path) = database();
    let normal = SETUP.replace("synchronous = FULL", "synchronous = NORMAL");
    let mut w = Writer::open(library(), &path, &normal, &STATEMENTS).unwrap();
    assert!(!w.wal_buffered());
    w.write(&label_sets(0, 10, 10)).unwrap();
    assert_eq!(query_int(&path, "SELECT count(*) FROM l"), 10);
}

#[test]
fn spilled_frames_and_a_restarted_wal_read_back_whole() {
    let (_dir, path) = database();
    // A page cache of ten pages: a large transaction spills frames into the WAL before its
    // commit, and reads them back through the buffering file.
    let setup = format!("{SETUP} PRAGMA cache_size = 10;");
    let mut w = Writer::open(library(), &path, &setup, &STATEMENTS).unwrap();
    assert!(w.wal_buffered());
    w.write(&label_sets(0, 3000, 900)).unwrap();
    // Everything copied into the database and the WAL emptied: the next commit writes the WAL
    // from its start again.
    w.exec("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    for k in 0..5 {
        w.write(&label_sets(3000 + k * 100, 100, 900)).unwrap();
    }
    let refused = w.write(&label_sets(3000, 1, 900)).unwrap_err();
    assert!(refused.refused_content(), "{refused}");
    assert_eq!(query_int(&path, "SELECT count(*) FROM l"), 3500);
    assert_eq!(query_int(&path, BAD_PAGES), 0);
    drop(w);
    assert_eq!(query_int(&path, "SELECT count(*) FROM l"), 3500);
    assert_eq!(query_int(&path, BAD_PAGES), 0);
}
