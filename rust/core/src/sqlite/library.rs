//! The SQLite C API, looked up at run time in a shared library that the process already has.
//!
//! Two copies of SQLite in one process must never open the same database: POSIX locks belong to
//! the process, and one copy closing its descriptor drops the other's locks (sqlite.org/howtocorrupt.html,
//! 2.2.1). So this crate links no SQLite of its own: the writer uses the very library Python's
//! `sqlite3` module was loaded with (`dlopen` with `RTLD_NOLOAD`), and nothing when that is not a
//! shared library of its own (a Python with SQLite linked in statically).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

use super::wal_buffer::{self, Vfs};

pub type Db = c_void;
pub type Stmt = c_void;

pub const SQLITE_OK: c_int = 0;
pub const SQLITE_ROW: c_int = 100;
pub const SQLITE_DONE: c_int = 101;
pub const SQLITE_TOOBIG: c_int = 18;
pub const SQLITE_CONSTRAINT: c_int = 19;
pub const SQLITE_MISMATCH: c_int = 20;
pub const SQLITE_MISUSE: c_int = 21;
pub const SQLITE_OPEN_READWRITE: c_int = 0x0000_0002;
pub const SQLITE_OPEN_NOMUTEX: c_int = 0x0000_8000;

type LibVersion = unsafe extern "C" fn() -> *const c_char;
type OpenV2 = unsafe extern "C" fn(*const c_char, *mut *mut Db, c_int, *const c_char) -> c_int;
type CloseV2 = unsafe extern "C" fn(*mut Db) -> c_int;
type ExecCallback =
    Option<unsafe extern "C" fn(*mut c_void, c_int, *mut *mut c_char, *mut *mut c_char) -> c_int>;
type Exec = unsafe extern "C" fn(
    *mut Db,
    *const c_char,
    ExecCallback,
    *mut c_void,
    *mut *mut c_char,
) -> c_int;
type PrepareV2 = unsafe extern "C" fn(
    *mut Db,
    *const c_char,
    c_int,
    *mut *mut Stmt,
    *mut *const c_char,
) -> c_int;
type BindInt64 = unsafe extern "C" fn(*mut Stmt, c_int, i64) -> c_int;
type BindNull = unsafe extern "C" fn(*mut Stmt, c_int) -> c_int;
type BindText = unsafe extern "C" fn(
    *mut Stmt,
    c_int,
    *const c_char,
    c_int,
    Option<unsafe extern "C" fn(*mut c_void)>,
) -> c_int;
type StmtCall = unsafe extern "C" fn(*mut Stmt) -> c_int;
type ErrMsg = unsafe extern "C" fn(*mut Db) -> *const c_char;
type DbInt = unsafe extern "C" fn(*mut Db) -> c_int;
type ColumnInt64 = unsafe extern "C" fn(*mut Stmt, c_int) -> i64;
type VfsFind = unsafe extern "C" fn(*const c_char) -> *mut Vfs;
type VfsRegister = unsafe extern "C" fn(*mut Vfs, c_int) -> c_int;

/// The functions the writer calls, as the C API declares them (sqlite3.h).
pub struct Library {
    pub libversion: LibVersion,
    pub open_v2: OpenV2,
    pub close_v2: CloseV2,
    pub exec: Exec,
    pub prepare_v2: PrepareV2,
    pub bind_int64: BindInt64,
    pub bind_null: BindNull,
    pub bind_text: BindText,
    pub step: StmtCall,
    pub reset: StmtCall,
    pub finalize: StmtCall,
    pub errmsg: ErrMsg,
    pub extended_errcode: DbInt,
    pub get_autocommit: DbInt,
    pub column_int64: ColumnInt64,
    vfs_find: VfsFind,
    vfs_register: VfsRegister,
    /// Whether the WAL-buffering VFS is registered in this library (once tried).
    wal_buffer: OnceLock<bool>,
}

// The function pointers are plain code addresses: shareable between threads.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

impl Library {
    /// The SQLite library at `path`, if this process has already loaded it (`RTLD_NOLOAD`); it
    /// is never unloaded.
    pub fn already_loaded(path: &str) -> Result<&'static Library, String> {
        Self::open(path, libc::RTLD_NOW | libc::RTLD_NOLOAD)
    }

    /// The SQLite library at `path`, loaded if it is not yet (tests of this crate, which no
    /// Python has loaded one for).
    pub fn load(path: &str) -> Result<&'static Library, String> {
        Self::open(path, libc::RTLD_NOW)
    }

    fn open(path: &str, flags: c_int) -> Result<&'static Library, String> {
        // One table per library file, kept for the life of the process.
        static LOADED: OnceLock<Mutex<Vec<(String, &'static Library)>>> = OnceLock::new();
        let loaded = LOADED.get_or_init(|| Mutex::new(Vec::new()));
        let mut loaded = loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, lib)) = loaded.iter().find(|(p, _)| p == path) {
            return Ok(lib);
        }
        let cpath = CString::new(path).map_err(|_| format!("{path:?}: NUL in path"))?;
        // SAFETY: dlopen with a valid C string; the handle is never closed.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), flags) };
        if handle.is_null() {
            return Err(format!("{path}: {}", dl_error()));
        }
        macro_rules! sym {
            ($name:literal as $ty:ty) => {{
                let name = concat!($name, "\0");
                // SAFETY: a NUL-terminated symbol name; the handle is valid.
                let p = unsafe { libc::dlsym(handle, name.as_ptr() as *const c_char) };
                if p.is_null() {
                    return Err(format!("{path}: no symbol {}", $name));
                }
                // SAFETY: the symbol is the C API function of that name, whose signature the
                // field's type repeats (sqlite3.h).
                unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
            }};
        }
        let lib: &'static Library = Box::leak(Box::new(Library {
            libversion: sym!("sqlite3_libversion" as LibVersion),
            open_v2: sym!("sqlite3_open_v2" as OpenV2),
            close_v2: sym!("sqlite3_close_v2" as CloseV2),
            exec: sym!("sqlite3_exec" as Exec),
            prepare_v2: sym!("sqlite3_prepare_v2" as PrepareV2),
            bind_int64: sym!("sqlite3_bind_int64" as BindInt64),
            bind_null: sym!("sqlite3_bind_null" as BindNull),
            bind_text: sym!("sqlite3_bind_text" as BindText),
            step: sym!("sqlite3_step" as StmtCall),
            reset: sym!("sqlite3_reset" as StmtCall),
            finalize: sym!("sqlite3_finalize" as StmtCall),
            errmsg: sym!("sqlite3_errmsg" as ErrMsg),
            extended_errcode: sym!("sqlite3_extended_errcode" as DbInt),
            get_autocommit: sym!("sqlite3_get_autocommit" as DbInt),
            column_int64: sym!("sqlite3_column_int64" as ColumnInt64),
            vfs_find: sym!("sqlite3_vfs_find" as VfsFind),
            vfs_register: sym!("sqlite3_vfs_register" as VfsRegister),
            wal_buffer: OnceLock::new(),
        }));
        loaded.push((path.to_owned(), lib));
        Ok(lib)
    }

    /// Whether the already-loaded shared object `object` (Python's `_sqlite3` module) resolves
    /// the SQLite C API to this very library: a module with SQLite linked in, or linked to another
    /// copy, does not.
    pub fn used_by(&self, object: &str) -> bool {
        let Ok(cpath) = CString::new(object) else {
            return false;
        };
        // SAFETY: dlopen of an already-loaded object (NOLOAD: never loads one), dlsym with a
        // NUL-terminated name; the handle is never closed (it only counts a reference).
        unsafe {
            let handle = libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if handle.is_null() {
                return false;
            }
            let p = libc::dlsym(handle, c"sqlite3_libversion".as_ptr());
            !p.is_null() && p as usize == self.libversion as usize
        }
    }

    /// The name of the VFS that buffers WAL writes ([`wal_buffer`]), registered in this library
    /// on first use; None if SQLite refused it.
    pub fn wal_buffer_vfs(&self) -> Option<&'static CStr> {
        let registered = *self.wal_buffer.get_or_init(|| {
            // SAFETY: the default VFS (null name) is registered for the life of the process;
            // the new VFS is leaked, as a registered one must live as long.
            unsafe {
                let default = (self.vfs_find)(std::ptr::null());
                if default.is_null() {
                    return false;
                }
                (self.vfs_register)(wal_buffer::new(default), 0) == SQLITE_OK
            }
        });
        registered.then_some(wal_buffer::C_NAME)
    }

    /// `sqlite3_libversion()`, e.g. "3.40.1".
    pub fn version(&self) -> String {
        // SAFETY: returns a static NUL-terminated string.
        unsafe { CStr::from_ptr((self.libversion)()) }
            .to_string_lossy()
            .into_owned()
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "not loaded".to_owned()
    } else {
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}
