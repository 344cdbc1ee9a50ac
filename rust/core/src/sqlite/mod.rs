//! A flush written to SQLite from Rust: the rows of [`RowTuples`] bound straight from Rust memory
//! and inserted in one transaction, on a connection of its own, without Python.
//!
//! Through Python's `sqlite3` module every row was a Python tuple and every value a Python object
//! bound one by one, on the event loop's thread (a fifth of its time on a 1-alert flush load,
//! `perf`); from another thread, each row's hand-back of the GIL could wait out the switch
//! interval. Here the caller releases the GIL for the whole transaction. The SQL and the
//! connection's settings come from the caller (the Python store), which keeps them in one place.

pub mod library;
pub mod wal_buffer;

use std::ffi::{c_int, CStr, CString};
use std::fmt;
use std::path::Path;
use std::ptr;

pub use library::Library;
use library::{Db, Stmt};

use crate::rows::RowTuples;

/// A failed SQLite call: its extended result code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    /// Whether SQLite refused these rows rather than failed (a constraint, a value too big):
    /// what Python's sqlite3 raises as IntegrityError or DataError.
    pub fn refused_content(&self) -> bool {
        matches!(
            self.code & 0xff,
            library::SQLITE_CONSTRAINT | library::SQLITE_TOOBIG | library::SQLITE_MISMATCH
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// The four statements of a flush, in the order the rows are written: groups, label sets,
/// events, alerts (each with one `?` per column of its tuple).
pub struct Statements<'a> {
    pub groups: &'a str,
    pub label_sets: &'a str,
    pub events: &'a str,
    pub alerts: &'a str,
}

enum Value<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

/// One write connection with its four statements prepared.
pub struct Writer {
    lib: &'static Library,
    db: *mut Db,
    statements: [*mut Stmt; 4],
    wal_buffered: bool,
}

// The connection is used by one thread at a time (the store's thread; `&mut self` everywhere).
unsafe impl Send for Writer {}

impl Writer {
    /// Opens `path` (which must exist: the migrations made it), runs `setup` (the connection's
    /// PRAGMAs) and prepares `statements`.
    ///
    /// The connection gathers its WAL writes ([`wal_buffer`]) when SQLite syncs the WAL at every
    /// commit (`synchronous` FULL or EXTRA) both before and after `setup`; otherwise it is opened
    /// again on the default VFS.
    pub fn open(
        lib: &'static Library,
        path: &Path,
        setup: &str,
        statements: &Statements<'_>,
    ) -> Result<Writer, Error> {
        let cpath = c_string(path.to_string_lossy().as_ref())?;
        // On the buffering VFS only if every commit syncs, before and after the setup.
        let buffered = match lib.wal_buffer_vfs() {
            Some(vfs) => {
                let mut w = Writer::connect(lib, &cpath, Some(vfs))?;
                let safe =
                    w.syncs_every_commit()? && w.exec(setup).is_ok() && w.syncs_every_commit()?;
                safe.then(|| {
                    w.wal_buffered = true;
                    w
                })
            }
            None => None,
        };
        let mut writer = match buffered {
            Some(w) => w,
            None => {
                let mut w = Writer::connect(lib, &cpath, None)?;
                w.exec(setup)?;
                w
            }
        };
        let sqls = [
            statements.groups,
            statements.label_sets,
            statements.events,
            statements.alerts,
        ];
        for (slot, sql) in writer.statements.iter_mut().zip(sqls) {
            let csql = c_string(sql)?;
            let mut stmt: *mut Stmt = ptr::null_mut();
            // SAFETY: valid connection, C string and out-pointer.
            let rc = unsafe {
                (lib.prepare_v2)(writer.db, csql.as_ptr(), -1, &mut stmt, ptr::null_mut())
            };
            if rc != library::SQLITE_OK {
                return Err(last_error(lib, writer.db, rc));
            }
            *slot = stmt;
        }
        Ok(writer)
    }

    /// A connection to `path` on the VFS named `vfs` (the default when None).
    fn connect(lib: &'static Library, path: &CStr, vfs: Option<&CStr>) -> Result<Writer, Error> {
        let mut db: *mut Db = ptr::null_mut();
        // SAFETY: valid C strings and out-pointer; the handle is closed by Drop even on failure.
        let rc = unsafe {
            (lib.open_v2)(
                path.as_ptr(),
                &mut db,
                library::SQLITE_OPEN_READWRITE | library::SQLITE_OPEN_NOMUTEX,
                vfs.map_or(ptr::null(), CStr::as_ptr),
            )
        };
        let writer = Writer {
            lib,
            db,
            statements: [ptr::null_mut(); 4],
            wal_buffered: false,
        };
        if db.is_null() {
            return Err(Error {
                code: rc,
                message: "out of memory opening the database".to_owned(),
            });
        }
        writer.check(rc)?;
        Ok(writer)
    }

    /// Whether this connection gathers its WAL writes into a few large ones per commit
    /// ([`wal_buffer`]).
    pub fn wal_buffered(&self) -> bool {
        self.wal_buffered
    }

    /// Whether `PRAGMA synchronous` is FULL (2) or EXTRA (3): every commit syncs the WAL.
    fn syncs_every_commit(&mut self) -> Result<bool, Error> {
        let lib = self.lib;
        let mut stmt: *mut Stmt = ptr::null_mut();
        // SAFETY: valid connection, static C string and out-pointer; the statement is finalized
        // below on every path.
        let rc = unsafe {
            (lib.prepare_v2)(
                self.db,
                c"PRAGMA synchronous".as_ptr(),
                -1,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != library::SQLITE_OK {
            return Err(last_error(lib, self.db, rc));
        }
        // SAFETY: the statement just prepared; column 0 exists when a row is returned.
        let level = unsafe {
            let level = if (lib.step)(stmt) == library::SQLITE_ROW {
                Some((lib.column_int64)(stmt, 0))
            } else {
                None
            };
            (lib.finalize)(stmt);
            level
        };
        Ok(matches!(level, Some(2 | 3)))
    }

    /// Writes `rows` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`; rolled back on any error).
    pub fn write(&mut self, rows: &RowTuples<'_>) -> Result<(), Error> {
        self.exec("BEGIN IMMEDIATE")?;
        let written = self.insert_all(rows).and_then(|()| self.exec("COMMIT"));
        if written.is_err() && !self.in_autocommit() {
            // The first error is the one to report; a failed rollback leaves nothing more to do.
            let _ = self.exec("ROLLBACK");
        }
        written
    }

    fn insert_all(&mut self, rows: &RowTuples<'_>) -> Result<(), Error> {
        for &(id, receiver, group_key, last_used) in &rows.groups {
            self.insert(
                0,
                &[
                    Value::Int(id),
                    Value::Text(receiver),
                    Value::Text(group_key),
                    Value::Int(last_used),
                ],
            )?;
        }
        for &(fingerprint, labels, alertname, severity) in &rows.label_sets {
            self.insert(
                1,
                &[
                    Value::Int(fingerprint),
                    Value::Text(labels),
                    Value::Text(alertname),
                    Value::Text(severity),
                ],
            )?;
        }
        for &(fp, starts, status, ends, received, group, source, url, annotations) in &rows.events {
            self.insert(
                2,
                &[
                    Value::Int(fp),
                    Value::Int(starts),
                    Value::Text(status),
                    ends.map_or(Value::Null, Value::Int),
                    Value::Int(received),
                    Value::Int(group),
                    Value::Text(source),
                    Value::Text(url),
                    Value::Text(annotations),
                ],
            )?;
        }
        for &(fp, starts, status, ends, first, last, notifications, group, from_ends) in
            &rows.alerts
        {
            self.insert(
                3,
                &[
                    Value::Int(fp),
                    Value::Int(starts),
                    Value::Text(status),
                    ends.map_or(Value::Null, Value::Int),
                    Value::Int(first),
                    Value::Int(last),
                    Value::Int(i64::from(notifications)),
                    Value::Int(group),
                    Value::Int(i64::from(from_ends)),
                ],
            )?;
        }
        Ok(())
    }

    /// Binds `values` to statement `which` and runs it to the end.
    fn insert(&mut self, which: usize, values: &[Value<'_>]) -> Result<(), Error> {
        let stmt = self.statements[which];
        let result = self.bind_and_step(stmt, values);
        // SAFETY: resetting a statement of this connection (its bindings are overwritten by the
        // next row; text pointers are not used again).
        unsafe { (self.lib.reset)(stmt) };
        result
    }

    fn bind_and_step(&self, stmt: *mut Stmt, values: &[Value<'_>]) -> Result<(), Error> {
        let lib = self.lib;
        for (i, value) in values.iter().enumerate() {
            let column = i as c_int + 1;
            // SAFETY: a prepared statement of this connection; text is bound SQLITE_STATIC (None):
            // it outlives the step below, and `insert` resets the statement before returning.
            let rc = unsafe {
                match *value {
                    Value::Int(v) => (lib.bind_int64)(stmt, column, v),
                    Value::Null => (lib.bind_null)(stmt, column),
                    Value::Text(s) => {
                        let Ok(len) = c_int::try_from(s.len()) else {
                            return Err(Error {
                                code: library::SQLITE_TOOBIG,
                                message: "string or blob too big".to_owned(),
                            });
                        };
                        (lib.bind_text)(stmt, column, s.as_ptr().cast(), len, None)
                    }
                }
            };
            self.check(rc)?;
        }
        // SAFETY: as above.
        let mut rc = unsafe { (lib.step)(stmt) };
        while rc == library::SQLITE_ROW {
            rc = unsafe { (lib.step)(stmt) }; // a RETURNING clause: rows dropped
        }
        if rc == library::SQLITE_DONE {
            Ok(())
        } else {
            Err(last_error(lib, self.db, rc))
        }
    }

    fn exec(&mut self, sql: &str) -> Result<(), Error> {
        let csql = c_string(sql)?;
        // SAFETY: valid connection and C string; no callback, no error-message out-pointer.
        let rc = unsafe {
            (self.lib.exec)(
                self.db,
                csql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        self.check(rc)
    }

    fn check(&self, rc: c_int) -> Result<(), Error> {
        if rc == library::SQLITE_OK {
            Ok(())
        } else {
            Err(last_error(self.lib, self.db, rc))
        }
    }

    fn in_autocommit(&self) -> bool {
        // SAFETY: valid connection.
        unsafe { (self.lib.get_autocommit)(self.db) != 0 }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: statements of this connection, finalized once; then the connection, closed once.
        unsafe {
            for stmt in self.statements {
                if !stmt.is_null() {
                    (self.lib.finalize)(stmt);
                }
            }
            if !self.db.is_null() {
                (self.lib.close_v2)(self.db);
            }
        }
    }
}

fn c_string(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error {
        code: library::SQLITE_MISUSE,
        message: "NUL byte in SQL or path".to_owned(),
    })
}

fn last_error(lib: &Library, db: *mut Db, rc: c_int) -> Error {
    // SAFETY: valid connection; errmsg returns a NUL-terminated string owned by SQLite.
    let (code, message) = unsafe {
        let code = (lib.extended_errcode)(db);
        let msg = CStr::from_ptr((lib.errmsg)(db))
            .to_string_lossy()
            .into_owned();
        (code, msg)
    };
    // The extended code of the connection can be stale when the failing call set none (a bind).
    let code = if code & 0xff == rc & 0xff { code } else { rc };
    Error { code, message }
}

#[cfg(test)]
mod tests;
