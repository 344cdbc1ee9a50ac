use std::path::PathBuf;

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
