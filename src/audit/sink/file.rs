//! The audit file: append-only, owner-only, rotated by size, its head
//! read back from its end at start-up.

use super::*;

/// The audit file and its rotation.
pub(super) struct ChainFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) max_bytes: u64,
    /// Rotated files kept at most.
    pub(super) max_files: usize,
    pub(super) head: Head,
    /// The run that wrote `head`, for the next run's `prev_run`.
    pub(super) last_run: Option<String>,
}

/// The position just past the last `\n` of `file` at or before `end`,
/// reading back [`SCAN_CHUNK`] bytes at a time (0 when there is none).
pub(super) fn after_last_newline(file: &mut File, end: u64) -> io::Result<u64> {
    let mut to = end;
    let mut buf = vec![0u8; SCAN_CHUNK as usize];
    while to > 0 {
        let from = to.saturating_sub(SCAN_CHUNK);
        let chunk = &mut buf[..(to - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        if let Some(p) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(from + p as u64 + 1);
        }
        to = from;
    }
    Ok(0)
}

/// The chain's head as the last complete record of `file` holds it, and the
/// run that wrote it, cutting off a torn last line first. Memory stays
/// small whatever the record's size: the record is parsed as a stream that
/// keeps only `seq`, `hash` and `run`.
pub(super) fn last_head(file: &mut File) -> io::Result<Option<(Head, Option<String>)>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let end = after_last_newline(file, len)?;
    if end < len {
        // A record whose write never finished was never acknowledged.
        crate::events::AuditTornTail { bytes: len - end }.emit();
        file.set_len(end)?;
        file.sync_all()?;
    }
    // The last record: checkpoint lines after it are passed over (a few at
    // most: one per flush of an idle writer is never written twice).
    let mut end = end;
    for _ in 0..MAX_TRAILING_CHECKPOINTS {
        if end == 0 {
            return Ok(None);
        }
        let start = after_last_newline(file, end - 1)?;
        file.seek(SeekFrom::Start(start))?;
        let mut head = [0u8; 20];
        let n = Read::by_ref(file).take(20).read(&mut head)?;
        if is_checkpoint_line(&head[..n]) {
            end = start;
            continue;
        }
        file.seek(SeekFrom::Start(start))?;
        let line = BufReader::new(Read::by_ref(file).take(end - 1 - start));
        return head_of(line).map(Some);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the audit file ends with more checkpoint lines than a writer leaves",
    ))
}

/// Checkpoint lines after a file's last record, at most.
pub(super) const MAX_TRAILING_CHECKPOINTS: usize = 64;

/// `seq`, `hash` and `run` of one record, every other field skipped unread.
#[derive(serde::Deserialize)]
pub(super) struct HeadFields {
    pub(super) seq: u64,
    pub(super) hash: String,
    #[serde(default)]
    pub(super) run: Option<String>,
}

/// A record's head and the run that wrote it (`None` for a record of a
/// version before runs had names).
pub(super) fn head_of(line: impl Read) -> io::Result<(Head, Option<String>)> {
    let f: HeadFields = serde_json::from_reader(line).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the last audit record has no readable seq and hash: {e}"),
        )
    })?;
    Ok((
        Head {
            seq: f.seq,
            hash: f.hash,
        },
        f.run,
    ))
}

/// Rotated files of `path`: `<name>.<digits>`, oldest first.
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    found
}

pub(super) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Opens (or creates, owner-only) an audit file for appending; a new file
/// is made durable in its directory at once.
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let existed = path.exists();
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if !existed {
        sync_dir(path);
    } else if file.metadata()?.permissions().mode() & 0o077 != 0 {
        crate::events::AuditFileMode { path }.emit();
    }
    Ok(file)
}

impl ChainFile {
    pub(super) fn open(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<Self> {
        let mut file = open_append(path)?;
        let last = match last_head(&mut file)? {
            Some(last) => Some(last),
            // Rotated just before a crash: the chain goes on from there.
            None => match rotated(path).last() {
                Some(prev) => {
                    let mut prev = OpenOptions::new().read(true).write(true).open(prev)?;
                    last_head(&mut prev)?
                }
                None => None,
            },
        };
        let (head, last_run) = last.unwrap_or_else(|| (Head::genesis(), None));
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            max_bytes,
            max_files,
            head,
            last_run,
        })
    }

    /// The seq of this file's first record.
    pub(super) fn first_seq(&self) -> io::Result<u64> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(0))?;
        // Streamed: an old file's first line may be of any length.
        let mut first = BufReader::new(f);
        for line in BufRead::split(&mut first, b'\n').take(MAX_TRAILING_CHECKPOINTS) {
            let line = line?;
            if !is_checkpoint_line(&line) {
                return Ok(head_of(&line[..])?.0.seq);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the audit file starts with no record",
        ))
    }

    pub(super) fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let first = self.first_seq()?;
        let mut to = self.path.clone().into_os_string();
        to.push(format!(".{first:020}"));
        std::fs::rename(&self.path, &to)?;
        self.file = open_append(&self.path)?;
        self.len = 0;
        sync_dir(&self.path);
        self.retire();
        Ok(())
    }

    /// Deletes the oldest rotated files beyond `max_files`.
    pub(super) fn retire(&self) {
        let files = rotated(&self.path);
        let excess = files.len().saturating_sub(self.max_files);
        for old in &files[..excess] {
            match std::fs::remove_file(old) {
                Ok(()) => crate::events::AuditFileDeleted {
                    path: old,
                    max_files: self.max_files,
                }
                .emit(),
                Err(e) => crate::events::AuditFileDeleteFailed {
                    path: old,
                    error: &e,
                }
                .emit(),
            }
        }
        if excess > 0 {
            sync_dir(&self.path);
        }
    }

    /// Appends the lines, rotating first when one would pass the size.
    pub(super) fn append(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut buf = Vec::new();
        for line in lines {
            let pending = self.len + buf.len() as u64;
            if pending > 0 && pending + line.len() as u64 > self.max_bytes {
                self.file.write_all(&buf)?;
                self.len += buf.len() as u64;
                buf.clear();
                self.rotate()?;
            }
            buf.extend_from_slice(line);
        }
        self.file.write_all(&buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// Whether the disk under `file` can take a record more past `len`:
/// blocks reserved without changing the file's size (fallocate with
/// KEEP_SIZE). A filesystem without fallocate says nothing either way.
pub(super) fn has_room(file: &File, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(room)) = (
        libc::off_t::try_from(len),
        libc::off_t::try_from(crate::audit::bound::MAX_RECORD_BYTES),
    ) else {
        return false;
    };
    // SAFETY: a plain syscall on a descriptor `file` owns and keeps open.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, room) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EOPNOTSUPP)
}
