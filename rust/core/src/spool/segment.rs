//! Segment files of a spool directory: `<seq, 20 digits>.wfs`, appended in order and deleted
//! whole once replayed. Damaged stretches are copied to `quarantine/` before they are skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::{self, Item};

const SUFFIX: &str = ".wfs";
pub const QUARANTINE_DIR: &str = "quarantine";

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

/// The segments of `dir` as `(seq, length)`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, entry.metadata()?.len()));
    }
    out.sort_unstable();
    Ok(out)
}

/// Make a directory entry (a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// What opening a spool found and repaired.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of an unfinished last record cut off (the crash came mid-write: never acknowledged).
    pub torn_bytes: u64,
}

/// Appends records to the newest segment, fsyncing every group before it returns.
pub struct Writer {
    dir: PathBuf,
    file: File,
    seq: u64,
    len: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
}

impl Writer {
    /// Open the spool in `dir` (created if missing) for appending: the newest segment's torn tail,
    /// if any, is cut off first.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<(Writer, Recovery)> {
        fs::create_dir_all(dir)?;
        let mut recovery = Recovery::default();
        let (seq, file, len) = match list(dir)?.last() {
            Some(&(seq, _)) => {
                let path = segment_path(dir, seq);
                let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
                let mut buf = Vec::new();
                file.read_to_end(&mut buf)?;
                let mut len = buf.len() as u64;
                if let Some(Item::Tail { start }) = frame::walk(&buf).last() {
                    recovery.torn_bytes = len - *start as u64;
                    len = *start as u64;
                    file.set_len(len)?;
                    file.sync_all()?;
                }
                (seq, file, len)
            }
            None => {
                let file = create_segment(dir, 1)?;
                (1, file, 0)
            }
        };
        let mut file = file;
        file.seek(SeekFrom::Start(len))?;
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            seq,
            len,
            segment_bytes: segment_bytes.max(1),
            buf: Vec::new(),
        };
        Ok((writer, recovery))
    }

    /// The segment being appended to and its durable length.
    pub fn position(&self) -> (u64, u64) {
        (self.seq, self.len)
    }

    /// Append `records` (`(received_at_us, body)`) and fsync once; return the segment they went
    /// to and each record's end offset in it. On failure (disk full…) nothing of the group stays.
    pub fn append(&mut self, records: &[(i64, &[u8])]) -> io::Result<(u64, Vec<u64>)> {
        if self.len >= self.segment_bytes {
            self.rotate()?;
        }
        self.buf.clear();
        let mut ends = Vec::with_capacity(records.len());
        for (received_at_us, body) in records {
            frame::encode(&mut self.buf, *received_at_us, body);
            ends.push(self.len + self.buf.len() as u64);
        }
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if self.buf.capacity() > 4 * self.segment_bytes as usize {
            self.buf = Vec::new(); // one huge group must not pin its buffer for ever
        }
        if let Err(err) = written {
            // Cut the partial group off so that later appends follow whole records.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(err);
        }
        self.len = *ends.last().unwrap_or(&self.len);
        Ok((self.seq, ends))
    }

    /// Start a new segment (so that a fully replayed one can be deleted).
    pub fn rotate(&mut self) -> io::Result<()> {
        let file = create_segment(&self.dir, self.seq + 1)?;
        self.file = file;
        self.seq += 1;
        self.len = 0;
        Ok(())
    }
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(segment_path(dir, seq))?;
    sync_dir(dir)?;
    Ok(file)
}

/// A record read back for replay; `end` is its end offset in the segment.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub start: u64,
    pub end: u64,
    pub received_at_us: i64,
    pub body: Vec<u8>,
}

/// A damaged stretch `[start, end)` of a segment, copied to `path` and skipped.
#[derive(Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub start: u64,
    pub end: u64,
    pub path: PathBuf,
}

#[derive(Debug, Default)]
pub struct Contents {
    pub records: Vec<Record>,
    pub quarantined: Vec<Quarantined>,
}

/// Read segment `seq` of `dir` from `from` (a record boundary) to `end` (its durable length).
/// Damaged stretches, a damaged end included, are copied to `quarantine/` and reported.
pub fn read(dir: &Path, seq: u64, from: u64, end: u64) -> io::Result<Contents> {
    let mut file = File::open(segment_path(dir, seq))?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(end.saturating_sub(from) as usize);
    file.take(end.saturating_sub(from)).read_to_end(&mut buf)?;
    let mut out = Contents::default();
    let damaged = |start: usize, stop: usize, out: &mut Contents| -> io::Result<()> {
        let (start, stop) = (from + start as u64, from + stop as u64);
        let path = quarantine(
            dir,
            seq,
            start,
            &buf[(start - from) as usize..(stop - from) as usize],
        )?;
        out.quarantined.push(Quarantined {
            start,
            end: stop,
            path,
        });
        Ok(())
    };
    for item in frame::walk(&buf) {
        match item {
            Item::Record {
                start,
                end,
                received_at_us,
                body,
            } => out.records.push(Record {
                start: from + start as u64,
                end: from + end as u64,
                received_at_us,
                body: body.to_vec(),
            }),
            Item::Corrupt { start, end } => damaged(start, end, &mut out)?,
            Item::Tail { start } => damaged(start, buf.len(), &mut out)?,
        }
    }
    Ok(out)
}

fn quarantine(dir: &Path, seq: u64, start: u64, bytes: &[u8]) -> io::Result<PathBuf> {
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir)?;
    let path = qdir.join(format!("{seq:020}-{start:012}.bad"));
    let mut file = File::create(&path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir(&qdir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(read: &Contents) -> Vec<&[u8]> {
        read.records.iter().map(|r| r.body.as_slice()).collect()
    }

    #[test]
    fn append_read_rotate_list() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, rec) = Writer::open(dir.path(), 64).unwrap();
        assert_eq!(rec, Recovery::default());
        let (seq, ends) = w.append(&[(1, b"a"), (2, b"bb")]).unwrap();
        assert_eq!((seq, ends.clone()), (1, vec![21, 43]));
        let (seq2, _) = w.append(&[(3, &[b'x'; 50])]).unwrap(); // 43 < 64: same segment
        assert_eq!(seq2, 1);
        let (seq3, ends3) = w.append(&[(4, b"d")]).unwrap(); // past 64: a new segment
        assert_eq!((seq3, ends3), (2, vec![21]));
        assert_eq!(list(dir.path()).unwrap(), vec![(1, 113), (2, 21)]);
        let read1 = read(dir.path(), 1, 21, 113).unwrap();
        assert_eq!(bodies(&read1), vec![b"bb".as_slice(), &[b'x'; 50]]);
        assert_eq!(
            read1.records[0],
            Record {
                start: 21,
                end: 43,
                received_at_us: 2,
                body: b"bb".to_vec()
            }
        );
        assert!(read1.quarantined.is_empty());
    }

    #[test]
    fn open_cuts_a_torn_tail_and_appends_after_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(dir.path(), 1 << 20).unwrap();
        w.append(&[(1, b"kept")]).unwrap();
        drop(w);
        let path = segment_path(dir.path(), 1);
        let mut torn = Vec::new();
        frame::encode(&mut torn, 2, b"never acknowledged");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() - 3]).unwrap();
        drop(f);
        let (mut w, rec) = Writer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.torn_bytes, torn.len() as u64 - 3);
        assert_eq!(w.position(), (1, 24));
        w.append(&[(3, b"next")]).unwrap();
        let r = read(dir.path(), 1, 0, fs::metadata(&path).unwrap().len()).unwrap();
        assert_eq!(bodies(&r), vec![b"kept".as_slice(), b"next"]);
        assert!(r.quarantined.is_empty());
    }

    #[test]
    fn a_corrupt_middle_record_is_quarantined_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(dir.path(), 1 << 20).unwrap();
        w.append(&[(1, b"first"), (2, b"middle"), (3, b"last")])
            .unwrap();
        drop(w);
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let at = frame::framed_len(5) + 14;
        bytes[at] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (_w, rec) = Writer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.torn_bytes, 0, "a damaged middle is no torn tail");
        let r = read(dir.path(), 1, 0, bytes.len() as u64).unwrap();
        assert_eq!(bodies(&r), vec![b"first".as_slice(), b"last"]);
        assert_eq!(r.quarantined.len(), 1);
        let q = &r.quarantined[0];
        assert_eq!(
            (q.start, q.end),
            (
                frame::framed_len(5) as u64,
                (frame::framed_len(5) + frame::framed_len(6)) as u64
            )
        );
        assert_eq!(
            fs::read(&q.path).unwrap(),
            bytes[q.start as usize..q.end as usize]
        );
    }

    #[test]
    fn damage_at_the_end_of_a_sealed_segment_is_quarantined_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(dir.path(), 1 << 20).unwrap();
        w.append(&[(1, b"one"), (2, b"two")]).unwrap();
        drop(w);
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let r = read(dir.path(), 1, 0, n as u64).unwrap();
        assert_eq!(bodies(&r), vec![b"one".as_slice()]);
        assert_eq!(r.quarantined[0].start, frame::framed_len(3) as u64);
    }

    #[test]
    fn a_failed_append_leaves_no_partial_group() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Writer::open(dir.path(), 1 << 20).unwrap();
        w.append(&[(1, b"ok")]).unwrap();
        // A read-only handle in place of the segment: the write fails like a full disk would.
        w.file = File::open(segment_path(dir.path(), 1)).unwrap();
        assert!(w.append(&[(2, b"lost")]).is_err());
        assert_eq!(w.position(), (1, frame::framed_len(2) as u64));
        assert_eq!(
            list(dir.path()).unwrap(),
            vec![(1, frame::framed_len(2) as u64)]
        );
    }

    #[test]
    fn list_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("id"), b"x").unwrap();
        fs::write(dir.path().join("12.wfs"), b"x").unwrap();
        fs::create_dir(dir.path().join(QUARANTINE_DIR)).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![]);
    }
}
