//! A VFS over SQLite's default one that gathers the small writes of a WAL file into a few large
//! ones per commit.
//!
//! SQLite writes every WAL frame as two calls, its 24-byte header and then the page, so a commit
//! that dirties n pages makes 2n `pwrite`s. A 1-alert flush dirties several index pages per alert:
//! `strace -c` counted 6.8 `pwrite`s per alert on the writer's connection (flushes of 19 alerts),
//! and a system call's own cost is paid per call, whatever its size (1 KiB pages halved the bytes
//! and left the writer's CPU as it was). Gathered, the same flushes made 0.5 per alert.
//!
//! Only files that SQLite opens as a WAL (`SQLITE_OPEN_WAL`) are wrapped. Every other file is the
//! default VFS's own. A wrapped file keeps contiguous writes in memory and writes them at once, in
//! order, before anything can observe the file: a sync, a read, a truncation, a size query, a file
//! control or the close. A write that does not follow the held bytes, or would make them pass
//! [`HOLD_BYTES`], writes them first.
//!
//! Why this keeps SQLite's guarantees: readers see new frames only once the commit has published
//! them in the wal-index, and with `synchronous = FULL` or `EXTRA` SQLite syncs the WAL before it
//! publishes. The held writes reach the file before that sync. The writer connection refuses
//! this VFS under any other `synchronous` (see `Writer::open`). Frames that a transaction spills
//! before its commit are read back through this file, and the read writes them first. A crash
//! loses only writes that were not yet synced, which SQLite's recovery drops by their checksums
//! anyway.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name under which the VFS is registered (never as the default).
pub const C_NAME: &CStr = c"webhookfast-wal-buffer";

/// Held bytes at most: 16 frames of 4 KiB pages, and the most one write to the default VFS may
/// carry (SQLite's largest page). The unix VFS writes at most 128 KiB - 1 bytes per call
/// (`seekAndWriteFd` masks the length with `0x1ffff`), and a longer write comes back as
/// SQLITE_FULL; holding more would only add memory, not save calls.
pub const HOLD_BYTES: usize = 1 << 16;

pub const SQLITE_OPEN_WAL: c_int = 0x0008_0000;
const SQLITE_OK: c_int = 0;

/// `sqlite3_file`: every open file starts with its methods.
#[repr(C)]
pub struct File {
    methods: *const IoMethods,
}

type Close = unsafe extern "C" fn(*mut File) -> c_int;
type Read = unsafe extern "C" fn(*mut File, *mut c_void, c_int, i64) -> c_int;
type Write = unsafe extern "C" fn(*mut File, *const c_void, c_int, i64) -> c_int;
type Truncate = unsafe extern "C" fn(*mut File, i64) -> c_int;
type Sync = unsafe extern "C" fn(*mut File, c_int) -> c_int;
type FileSize = unsafe extern "C" fn(*mut File, *mut i64) -> c_int;
type LockCall = unsafe extern "C" fn(*mut File, c_int) -> c_int;
type CheckReserved = unsafe extern "C" fn(*mut File, *mut c_int) -> c_int;
type FileControl = unsafe extern "C" fn(*mut File, c_int, *mut c_void) -> c_int;
type FileInt = unsafe extern "C" fn(*mut File) -> c_int;

/// `sqlite3_io_methods`, version 1 (a WAL file is never mapped or used for shared memory: those
/// calls go to the database file), followed by the version 2 and 3 slots, left empty here.
#[repr(C)]
pub struct IoMethods {
    version: c_int,
    close: Option<Close>,
    read: Option<Read>,
    write: Option<Write>,
    truncate: Option<Truncate>,
    sync: Option<Sync>,
    file_size: Option<FileSize>,
    lock: Option<LockCall>,
    unlock: Option<LockCall>,
    check_reserved_lock: Option<CheckReserved>,
    file_control: Option<FileControl>,
    sector_size: Option<FileInt>,
    device_characteristics: Option<FileInt>,
    later_versions: [*const c_void; 6],
}

// Plain code addresses and nulls: shareable between threads.
unsafe impl std::marker::Sync for IoMethods {}

type Open = unsafe extern "C" fn(*mut Vfs, *const c_char, *mut File, c_int, *mut c_int) -> c_int;

/// The xDelete … xNextSystemCall slots of a version-3 `sqlite3_vfs`, copied from the default VFS.
const OTHER_SLOTS: usize = 15;

/// `sqlite3_vfs`, with the calls this VFS does not change kept as opaque slots.
#[repr(C)]
pub struct Vfs {
    version: c_int,
    os_file_size: c_int,
    max_pathname: c_int,
    next: *mut Vfs,
    name: *const c_char,
    app_data: *mut c_void,
    open: Option<Open>,
    others: [*const c_void; OTHER_SLOTS],
}

/// This VFS, followed by what its calls need: SQLite hands xOpen the `Vfs` it registered, the
/// first field of this struct.
#[repr(C)]
struct Shim {
    vfs: Vfs,
    default: *mut Vfs,
}

/// A wrapped WAL file: its own methods, then the default VFS's file, which SQLite allocates
/// right after it (`os_file_size` counts both).
#[repr(C)]
struct WalFile {
    base: File,
    inner: *mut File,
    held: Vec<u8>,
    held_at: i64,
}

const WAL_FILE_BYTES: usize = size_of::<WalFile>().next_multiple_of(16);

static WAL_METHODS: IoMethods = IoMethods {
    version: 1,
    close: Some(wal_close),
    read: Some(wal_read),
    write: Some(wal_write),
    truncate: Some(wal_truncate),
    sync: Some(wal_sync),
    file_size: Some(wal_file_size),
    lock: Some(wal_lock),
    unlock: Some(wal_unlock),
    check_reserved_lock: Some(wal_check_reserved_lock),
    file_control: Some(wal_file_control),
    sector_size: Some(wal_sector_size),
    device_characteristics: Some(wal_device_characteristics),
    later_versions: [ptr::null(); 6],
};

static WRITES_ASKED: AtomicU64 = AtomicU64::new(0);
static WRITES_MADE: AtomicU64 = AtomicU64::new(0);

/// (writes SQLite asked of wrapped WAL files, writes made to them), since the process started.
pub fn write_counts() -> (u64, u64) {
    (
        WRITES_ASKED.load(Ordering::Relaxed),
        WRITES_MADE.load(Ordering::Relaxed),
    )
}

/// A VFS wrapping `default` (the library's default VFS), ready for `sqlite3_vfs_register`; it
/// lives as long as the process, as a registered VFS must.
///
/// # Safety
/// `default` must point to a valid, registered `sqlite3_vfs` that outlives the process's use of
/// SQLite (the default VFS does).
pub unsafe fn new(default: *mut Vfs) -> *mut Vfs {
    // Read through the raw pointer: a VFS of version 1 or 2 is shorter than `Vfs`.
    let version = (*default).version;
    let mut vfs = Vfs {
        version,
        os_file_size: (*default).os_file_size + WAL_FILE_BYTES as c_int,
        max_pathname: (*default).max_pathname,
        next: ptr::null_mut(),
        name: C_NAME.as_ptr(),
        // The default VFS's own data: its calls copied below may read it.
        app_data: (*default).app_data,
        open: Some(open),
        others: [ptr::null(); OTHER_SLOTS],
    };
    // Only the slots that the default VFS's version has.
    let slots = match version {
        1 => 11,
        2 => 12,
        _ => OTHER_SLOTS,
    };
    ptr::copy_nonoverlapping(
        ptr::addr_of!((*default).others) as *const *const c_void,
        vfs.others.as_mut_ptr(),
        slots,
    );
    let shim = Box::leak(Box::new(Shim { vfs, default }));
    &mut shim.vfs
}

unsafe extern "C" fn open(
    vfs: *mut Vfs,
    name: *const c_char,
    file: *mut File,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let shim = vfs as *mut Shim;
    let default = (*shim).default;
    let Some(default_open) = (*default).open else {
        return 1; // SQLITE_ERROR: a VFS without xOpen cannot be
    };
    if flags & SQLITE_OPEN_WAL == 0 {
        return default_open(default, name, file, flags, out_flags);
    }
    let wal = file as *mut WalFile;
    let inner = (file as *mut u8).add(WAL_FILE_BYTES) as *mut File;
    // Until it is open, SQLite must not call this file's methods (it checks for null).
    (*file).methods = ptr::null();
    (*inner).methods = ptr::null();
    let rc = default_open(default, name, inner, flags, out_flags);
    if rc != SQLITE_OK {
        if let Some(close) = (*inner).methods.as_ref().and_then(|m| m.close) {
            close(inner);
        }
        return rc;
    }
    ptr::addr_of_mut!((*wal).inner).write(inner);
    ptr::addr_of_mut!((*wal).held).write(Vec::with_capacity(HOLD_BYTES));
    ptr::addr_of_mut!((*wal).held_at).write(0);
    (*file).methods = &WAL_METHODS;
    SQLITE_OK
}

unsafe fn wal<'a>(file: *mut File) -> &'a mut WalFile {
    &mut *(file as *mut WalFile)
}

unsafe fn inner_methods<'a>(w: &WalFile) -> &'a IoMethods {
    &*(*w.inner).methods
}

impl WalFile {
    /// Writes the held bytes (forgotten even if the write fails: SQLite then fails the
    /// transaction, and writes its frames again in the next one).
    unsafe fn write_held(&mut self) -> c_int {
        if self.held.is_empty() {
            return SQLITE_OK;
        }
        let write = inner_methods(self).write.expect("a file's xWrite");
        WRITES_MADE.fetch_add(1, Ordering::Relaxed);
        let rc = write(
            self.inner,
            self.held.as_ptr() as *const c_void,
            self.held.len() as c_int,
            self.held_at,
        );
        self.held.clear();
        rc
    }
}

unsafe extern "C" fn wal_write(
    file: *mut File,
    data: *const c_void,
    amount: c_int,
    at: i64,
) -> c_int {
    let w = wal(file);
    WRITES_ASKED.fetch_add(1, Ordering::Relaxed);
    let n = amount.max(0) as usize;
    let follows = at == w.held_at + w.held.len() as i64;
    if !w.held.is_empty() && (!follows || w.held.len() + n > HOLD_BYTES) {
        let rc = w.write_held();
        if rc != SQLITE_OK {
            return rc;
        }
    }
    if n > HOLD_BYTES {
        let write = inner_methods(w).write.expect("a file's xWrite");
        WRITES_MADE.fetch_add(1, Ordering::Relaxed);
        return write(w.inner, data, amount, at);
    }
    if w.held.is_empty() {
        w.held_at = at;
    }
    if n > 0 {
        w.held
            .extend_from_slice(std::slice::from_raw_parts(data as *const u8, n));
    }
    SQLITE_OK
}

unsafe extern "C" fn wal_close(file: *mut File) -> c_int {
    let w = wal(file);
    let written = w.write_held();
    let close = inner_methods(w).close.expect("a file's xClose");
    let closed = close(w.inner);
    ptr::drop_in_place(ptr::addr_of_mut!(w.held));
    (*file).methods = ptr::null();
    if written != SQLITE_OK {
        written
    } else {
        closed
    }
}

/// The wrapped file once its held writes are written, or the error that writing them gave:
/// every call that can observe the file goes through here first.
unsafe fn written<'a>(file: *mut File) -> Result<&'a mut WalFile, c_int> {
    let w = wal(file);
    match w.write_held() {
        SQLITE_OK => Ok(w),
        rc => Err(rc),
    }
}

unsafe extern "C" fn wal_read(file: *mut File, buf: *mut c_void, amount: c_int, at: i64) -> c_int {
    written(file).map_or_else(
        |rc| rc,
        |w| (inner_methods(w).read.expect("a file's xRead"))(w.inner, buf, amount, at),
    )
}

unsafe extern "C" fn wal_truncate(file: *mut File, size: i64) -> c_int {
    written(file).map_or_else(
        |rc| rc,
        |w| (inner_methods(w).truncate.expect("a file's xTruncate"))(w.inner, size),
    )
}

unsafe extern "C" fn wal_sync(file: *mut File, flags: c_int) -> c_int {
    written(file).map_or_else(
        |rc| rc,
        |w| (inner_methods(w).sync.expect("a file's xSync"))(w.inner, flags),
    )
}

unsafe extern "C" fn wal_file_size(file: *mut File, size: *mut i64) -> c_int {
    written(file).map_or_else(
        |rc| rc,
        |w| (inner_methods(w).file_size.expect("a file's xFileSize"))(w.inner, size),
    )
}

unsafe extern "C" fn wal_file_control(file: *mut File, op: c_int, arg: *mut c_void) -> c_int {
    written(file).map_or_else(
        |rc| rc,
        // SQLITE_NOTFOUND: a file control the file does not know
        |w| {
            inner_methods(w)
                .file_control
                .map_or(12, |control| control(w.inner, op, arg))
        },
    )
}

unsafe extern "C" fn wal_lock(file: *mut File, level: c_int) -> c_int {
    let w = wal(file);
    (inner_methods(w).lock.expect("a file's xLock"))(w.inner, level)
}

unsafe extern "C" fn wal_unlock(file: *mut File, level: c_int) -> c_int {
    let w = wal(file);
    (inner_methods(w).unlock.expect("a file's xUnlock"))(w.inner, level)
}

unsafe extern "C" fn wal_check_reserved_lock(file: *mut File, out: *mut c_int) -> c_int {
    let w = wal(file);
    (inner_methods(w)
        .check_reserved_lock
        .expect("a file's xCheckReservedLock"))(w.inner, out)
}

unsafe extern "C" fn wal_sector_size(file: *mut File) -> c_int {
    let w = wal(file);
    match inner_methods(w).sector_size {
        Some(size) => size(w.inner),
        None => 4096,
    }
}

unsafe extern "C" fn wal_device_characteristics(file: *mut File) -> c_int {
    let w = wal(file);
    match inner_methods(w).device_characteristics {
        Some(chars) => chars(w.inner),
        None => 0,
    }
}
