//! The audit writer: one thread owns the chain and the sinks. Calls hand it
//! records over a bounded channel; it seals them (seq, prev_hash, hash),
//! appends them to the file and/or stdout, syncs by the fsync policy, and
//! only then acknowledges. Group commit: one fsync for every
//! `group_commit_records` records or `group_commit_ms`, whichever comes
//! first; per record: one fsync each.
//!
//! The file is append-only, created owner-only (0600), and rotated by size
//! to `<file>.<first seq, 20 digits>`, so names sort in chain order; the
//! oldest rotated files beyond `max_files` are deleted, and the directory
//! is fsynced whenever a file appears or goes. The chain continues across
//! rotations and restarts: at start-up the head is read back from the
//! newest file by scanning back from its end, whatever the size of its last
//! record, and a torn last line of any size, never acknowledged, is cut off.
//!
//! The queue is bounded in records and in bytes. The head advances once
//! the file holds a batch durably, whatever stdout does after, so a sink
//! failure never makes two records with one seq. If the writer thread ends
//! other than by `close`, [`Sink::stopped`] says why (health turns
//! NOT_SERVING on it) and `mfa_facade_audit_writer_up` drops to 0.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::chain::{Fields, Head, Unsealed, key};
use super::s3::S3Sink;
use super::seal::{Sealer, is_checkpoint_line};
use super::settings::{AuditConfig, FsyncPolicy};

/// Records waiting for the writer at most; more is an overloaded sink.
const QUEUE: usize = 65_536;
/// Bytes read back per step when scanning the file from its end.
const SCAN_CHUNK: u64 = 64 * 1024;

/// The writer's answer: durable, or why not.
pub type Ack = Result<(), String>;

pub enum Msg {
    Record {
        record: Unsealed,
        ack: Option<oneshot::Sender<Ack>>,
    },
    /// Answers once everything sent before it is durable.
    Flush(oneshot::Sender<Ack>),
}

/// The records between the callers and the writer. A caller wakes the
/// writer only when it sleeps and has asked for it (the first record of a
/// group, or a full group), so a busy writer costs callers a lock and a
/// push, not a wake-up each.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    /// `audit.max_queue_bytes`.
    max_bytes: usize,
    /// Why the writer ended, when it ended other than by `close`.
    stopped: Mutex<Option<String>>,
}

struct QueueState {
    msgs: Vec<Msg>,
    /// The bytes of the records in `msgs`.
    bytes: usize,
    /// The writer sleeps and wants waking once `msgs` holds this many.
    wake_at: Option<usize>,
    /// No more records: the sink was dropped, or the writer stopped.
    closed: bool,
}

impl Msg {
    /// A caller waits for this one to be durable.
    fn awaited(&self) -> bool {
        match self {
            Msg::Record { ack, .. } => ack.is_some(),
            Msg::Flush(_) => true,
        }
    }
}

impl Queue {
    fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
                msgs: Vec::new(),
                bytes: 0,
                wake_at: None,
                closed: false,
            }),
            ready: Condvar::new(),
            max_bytes,
            stopped: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves only plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; gives it back when the queue is full or closed.
    fn push(&self, msg: Msg) -> Result<(), Msg> {
        let size = match &msg {
            Msg::Record { record, .. } => record.len(),
            Msg::Flush(_) => 0,
        };
        let mut state = self.lock();
        if state.closed || state.msgs.len() >= QUEUE || state.bytes + size > self.max_bytes {
            return Err(msg);
        }
        state.bytes += size;
        let awaited = msg.awaited();
        state.msgs.push(msg);
        // A record someone waits for ends a group at once.
        if state
            .wake_at
            .is_some_and(|n| state.msgs.len() >= n || awaited)
        {
            state.wake_at = None;
            self.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer's side: waits until `want` messages are queued, the
    /// deadline passes or the queue closes; then takes what is queued.
    fn take(&self, want: usize, deadline: Instant) -> (Vec<Msg>, bool) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if state.msgs.len() >= want || state.closed || now >= deadline {
                state.wake_at = None;
                state.bytes = 0;
                return (std::mem::take(&mut state.msgs), state.closed);
            }
            state.wake_at = Some(want);
            state = match self.ready.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Closes the queue when the writer thread ends, however it ends, so that
/// callers waiting for durability are answered instead of queueing forever.
struct Stopped(Arc<Queue>);

impl Drop for Stopped {
    fn drop(&mut self) {
        let (msgs, asked) = {
            let mut state = self.0.lock();
            let asked = state.closed;
            state.closed = true;
            state.bytes = 0;
            (std::mem::take(&mut state.msgs), asked)
        };
        crate::meters::audit_writer_up(false);
        if !asked {
            let reason = if std::thread::panicking() {
                "panicked"
            } else {
                "ended"
            };
            crate::events::AuditWriterStopped { reason }.emit();
            *self.0.stopped.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("the audit writer thread {reason}"));
        }
        for msg in msgs {
            let ack = match msg {
                Msg::Record { ack, .. } => ack,
                Msg::Flush(ack) => Some(ack),
            };
            if let Some(ack) = ack {
                let _ = ack.send(Err("the audit writer stopped".into()));
            }
        }
    }
}

/// What the writer is doing, for health: since when it has been inside
/// one write (a sink that does not return: a stdout nobody reads, a hung
/// disk) and since when every write has failed. Milliseconds since
/// `base`, plus one; 0 is "not so".
pub struct Progress {
    base: Instant,
    busy_since: std::sync::atomic::AtomicU64,
    failing_since: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            busy_since: 0.into(),
            failing_since: 0.into(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn busy(&self, busy: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.busy_since
            .store(if busy { self.now() } else { 0 }, Relaxed);
    }

    /// A write (or a probe of the sinks) ended: well, or not.
    fn ended(&self, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if ok {
            self.failing_since.store(0, Relaxed);
        } else if self.failing_since.load(Relaxed) == 0 {
            self.failing_since.store(self.now(), Relaxed);
        }
    }

    fn failing(&self) -> bool {
        self.failing_since
            .load(std::sync::atomic::Ordering::Relaxed)
            != 0
    }

    /// Why the writer has made nothing durable for `stall` or more, if so.
    pub fn stalled(&self, stall: Duration) -> Option<String> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.now();
        let stall_ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
        let since = |at: u64| {
            (at != 0)
                .then(|| now.saturating_sub(at))
                .filter(|d| *d >= stall_ms)
        };
        if let Some(ms) = since(self.busy_since.load(Relaxed)) {
            return Some(format!(
                "one audit write has not returned for {} s (a sink that takes nothing: stdout not read, a hung disk)",
                ms / 1000
            ));
        }
        since(self.failing_since.load(Relaxed))
            .map(|ms| format!("every audit write has failed for {} s", ms / 1000))
    }
}

pub struct Sink {
    queue: Arc<Queue>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    progress: Arc<Progress>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Sink {
    /// Opens the sinks, reads the chain's head back, starts the writer,
    /// which first writes the run's `run_started` record and checkpoint.
    pub fn start(config: &AuditConfig, sealer: Sealer) -> io::Result<Self> {
        let s3 = match &config.s3 {
            Some(c) => Some(S3Sink::connect(c, &sealer.source, &sealer.run)?),
            None => None,
        };
        let file = match &config.file {
            Some(path) => Some(ChainFile::open(
                path,
                config.max_file_bytes,
                config.max_files,
            )?),
            None => None,
        };
        let head = file.as_ref().map_or_else(Head::genesis, |f| f.head.clone());
        let queue = Arc::new(Queue::new(config.max_queue_bytes));
        let progress = Arc::new(Progress::new());
        crate::meters::audit_writer_up(true);
        let writer = Writer {
            s3,
            queue: queue.clone(),
            progress: progress.clone(),
            file,
            stdout: config.stdout,
            fsync: config.fsync,
            // S3: a put per group, so reads wait up to flush_ms to share one.
            group: Duration::from_millis(config.s3.as_ref().map_or(config.group_commit_ms, |s| {
                s.flush_ms.max(config.group_commit_ms)
            })),
            group_records: config
                .s3
                .as_ref()
                .map_or(config.group_commit_records, |s| s.group_records),
            seal_every: Duration::from_secs(
                config
                    .signing
                    .as_ref()
                    .map_or(config.anchor_interval_seconds, |s| s.checkpoint_seconds),
            ),
            head,
            sealer,
        };
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn({
                let queue = queue.clone();
                move || writer.run(&Stopped(queue))
            })?;
        Ok(Self {
            queue,
            writer: Mutex::new(Some(writer)),
            progress,
        })
    }

    /// Why the writer has made nothing durable for `stall`, if it has not.
    pub fn stalled(&self, stall: Duration) -> Option<String> {
        self.progress.stalled(stall)
    }

    /// Queues a record. Without a waiter the record is written all the same;
    /// a full queue drops it (counted) and answers the waiter at once.
    pub fn send(&self, record: Unsealed, ack: Option<oneshot::Sender<Ack>>) {
        if let Err(Msg::Record { ack, .. }) = self.queue.push(Msg::Record { record, ack }) {
            crate::meters::audit_dropped();
            if let Some(ack) = ack {
                let _ = ack.send(Err("the audit writer is overloaded or stopped".into()));
            }
        }
    }

    /// Takes no more records, writes what is queued, prints the final
    /// anchor and waits for the writer to end (at exit; blocks).
    pub fn close(&self) {
        self.queue.close();
        let writer = self.writer.lock().map(|mut w| w.take());
        if let Ok(Some(writer)) = writer {
            let _ = writer.join();
        }
    }

    /// Why the writer thread ended, if it ended other than by `close`.
    pub fn stopped(&self) -> Option<String> {
        self.queue
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until every record sent so far is durable.
    pub async fn flush(&self) -> Ack {
        let (tx, rx) = oneshot::channel();
        self.queue
            .push(Msg::Flush(tx))
            .map_err(|_| "the audit writer is overloaded or stopped".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()))
    }
}

/// The audit file and its rotation.
struct ChainFile {
    path: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
    /// Rotated files kept at most.
    max_files: usize,
    head: Head,
    /// The run that wrote `head`, for the next run's `prev_run`.
    last_run: Option<String>,
}

/// The position just past the last `\n` of `file` at or before `end`,
/// reading back [`SCAN_CHUNK`] bytes at a time (0 when there is none).
fn after_last_newline(file: &mut File, end: u64) -> io::Result<u64> {
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
fn last_head(file: &mut File) -> io::Result<Option<(Head, Option<String>)>> {
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
const MAX_TRAILING_CHECKPOINTS: usize = 64;

/// `seq`, `hash` and `run` of one record, every other field skipped unread.
#[derive(serde::Deserialize)]
struct HeadFields {
    seq: u64,
    hash: String,
    #[serde(default)]
    run: Option<String>,
}

/// A record's head and the run that wrote it (`None` for a record of a
/// version before runs had names).
fn head_of(line: impl Read) -> io::Result<(Head, Option<String>)> {
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

fn sync_dir(path: &Path) {
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
fn open_append(path: &Path) -> io::Result<File> {
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
    fn open(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<Self> {
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
    fn first_seq(&self) -> io::Result<u64> {
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

    fn rotate(&mut self) -> io::Result<()> {
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
    fn retire(&self) {
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
    fn append(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
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

/// How long a draining writer goes on trying to put into S3 what it holds.
const DRAIN_TRIES: Duration = Duration::from_secs(10);

/// How often a writer whose sinks failed tries them again while no record
/// comes, so that health recovers by itself.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether the disk under `file` can take a record more past `len`:
/// blocks reserved without changing the file's size (fallocate with
/// KEEP_SIZE). A filesystem without fallocate says nothing either way.
fn has_room(file: &File, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(room)) = (
        libc::off_t::try_from(len),
        libc::off_t::try_from(super::bound::MAX_RECORD_BYTES),
    ) else {
        return false;
    };
    // SAFETY: a plain syscall on a descriptor `file` owns and keeps open.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, room) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EOPNOTSUPP)
}

struct Writer {
    /// `[audit.s3]`.
    s3: Option<S3Sink>,
    /// The queue, for whether the writer is draining (an S3 put then stops
    /// trying after [`DRAIN_TRIES`]).
    queue: Arc<Queue>,
    progress: Arc<Progress>,
    file: Option<ChainFile>,
    stdout: bool,
    fsync: FsyncPolicy,
    group: Duration,
    group_records: usize,
    /// A checkpoint at least this often while the chain grows.
    seal_every: Duration,
    head: Head,
    sealer: Sealer,
}

impl Writer {
    fn run(mut self, stopped: &Stopped) {
        let queue = &stopped.0;
        // The run is known from its first moment: its first record links
        // to the head the sink knows, and a checkpoint seals it at once.
        self.started();
        let mut next_seal = Instant::now() + self.seal_every;
        loop {
            // Asleep until the first record, or the next checkpoint; a
            // writer whose sinks failed wakes to try them again.
            let wake = if self.progress.failing() {
                next_seal.min(Instant::now() + PROBE_EVERY)
            } else {
                next_seal
            };
            let (mut batch, mut closed) = queue.take(1, wake);
            if batch.is_empty() && !closed && self.progress.failing() {
                self.probe();
            }
            if !batch.is_empty() && self.fsync == FsyncPolicy::Group && !closed {
                // A group: until it is full or its time is up, or a record
                // arrives that a caller waits for (fail_closed): that one is
                // not held for the group, it goes with what is queued now,
                // and what arrives while it syncs makes the next group.
                let deadline = Instant::now() + self.group;
                let mut awaited = batch.iter().any(Msg::awaited);
                while batch.len() < self.group_records
                    && !closed
                    && !awaited
                    && Instant::now() < deadline
                {
                    let (more, c) = queue.take(self.group_records - batch.len(), deadline);
                    awaited = more.iter().any(Msg::awaited);
                    batch.extend(more);
                    closed = c;
                }
            }
            match self.fsync {
                _ if batch.is_empty() => {}
                FsyncPolicy::Group => self.commit(batch),
                FsyncPolicy::Record => {
                    for msg in batch {
                        self.commit(vec![msg]);
                    }
                }
            }
            if closed {
                break;
            }
            if Instant::now() >= next_seal {
                if self.sealer.due(self.head.seq) {
                    self.seal(false);
                }
                next_seal = Instant::now() + self.seal_every;
            }
        }
        self.ended();
    }

    /// A record of the writer's own (`run_started`, `run_ended`), sealed as
    /// the next of the chain: its line, and the head it makes.
    fn own_record(&self, stage: &'static str, fill: impl FnOnce(&mut Fields)) -> (Vec<u8>, Head) {
        let mut f = Fields::with_capacity(256);
        let mut id = uuid::Uuid::encode_buffer();
        f.put_str(
            key!(id),
            Some(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id)),
        );
        fill(&mut f);
        f.put_str(key!(run), Some(&self.sealer.run));
        f.put_str(key!(source), Some(&self.sealer.source));
        f.put_str(key!(stage), Some(stage));
        f.put_str(key!(time), Some(&crate::timefmt::now()));
        let seq = self.head.seq.saturating_add(1);
        let (line, hash) = Unsealed::from_fields(f).seal(seq, &self.head.hash);
        (line, Head { seq, hash })
    }

    /// The run's first record, naming the run before it where the file
    /// knows it, and its first checkpoint.
    fn started(&mut self) {
        let prev_run = (self.head.seq > 0).then(|| {
            serde_json::json!({
                "run": self.file.as_ref().and_then(|f| f.last_run.as_deref()),
                "seq": self.head.seq,
                "hash": self.head.hash,
            })
        });
        let key_id = self.sealer.key_id().map(str::to_owned);
        let (line, next) = self.own_record("run_started", |f| {
            f.put_value(key!(checkpoint_key), &key_id);
            f.put_value(key!(prev_run), &prev_run);
            f.put_str(key!(version), Some(env!("CARGO_PKG_VERSION")));
        });
        self.sealer.first_seq = next.seq;
        self.write_own(line, next, false);
    }

    /// The run's last record and its final checkpoint (at drain).
    fn ended(&mut self) {
        let (line, next) = self.own_record("run_ended", |_| {});
        self.write_own(line, next, true);
    }

    /// Writes one of the writer's own records and a checkpoint of it.
    fn write_own(&mut self, line: Vec<u8>, next: Head, ended: bool) {
        let mut lines = vec![line];
        lines.extend(self.sealer.checkpoint(next.seq, &next.hash, ended));
        let (durable, result) = self.write(&lines, next.seq);
        if durable {
            self.head = next;
        }
        if let Err(e) = result {
            crate::events::AuditWriteFailed {
                records: 1,
                error: &e,
            }
            .emit();
        }
    }

    /// Writes a checkpoint of the head to every sink.
    fn seal(&mut self, ended: bool) {
        let Some(line) = self
            .sealer
            .checkpoint(self.head.seq, &self.head.hash, ended)
        else {
            return;
        };
        let _ = self.write(&[line], self.head.seq);
    }

    /// Tries the sinks without a record: the file's disk asked for room
    /// for a record past its end (without growing it) and synced, stdout
    /// flushed.
    fn probe(&mut self) {
        self.progress.busy(true);
        let mut ok = true;
        if let Some(f) = &mut self.file {
            ok &= has_room(&f.file, f.len) && f.file.sync_data().is_ok();
        }
        if self.stdout {
            ok &= io::stdout().lock().flush().is_ok();
        }
        self.progress.busy(false);
        self.progress.ended(ok);
    }

    /// Seals, writes and syncs a batch; acknowledges each message.
    fn commit(&mut self, batch: Vec<Msg>) {
        let started = Instant::now();
        let mut head = self.head.clone();
        let mut lines = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for msg in batch {
            match msg {
                Msg::Record { record, ack } => {
                    let Some(seq) = head.seq.checked_add(1) else {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err("the audit chain is at its last seq".into()));
                        }
                        continue;
                    };
                    let (line, hash) = record.seal(seq, &head.hash);
                    head = Head { seq, hash };
                    lines.push(line);
                    acks.extend(ack);
                }
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        // A file about to rotate is sealed first: its last line is the
        // checkpoint of its last record.
        let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum();
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.len > 0 && f.len.saturating_add(bytes) > f.max_bytes)
            && self.sealer.due(self.head.seq)
            && let Some(checkpoint) = self
                .sealer
                .checkpoint(self.head.seq, &self.head.hash, false)
        {
            lines.insert(0, checkpoint);
        }
        let (durable, result) = self.write(&lines, self.head.seq.saturating_add(1));
        if durable {
            // The file holds them (or there is no file): whatever stdout
            // did, the next record follows them, so the chain never forks.
            self.head = head;
        }
        match &result {
            Ok(()) => {
                crate::meters::audit_written(lines.len(), started.elapsed().as_secs_f64());
            }
            Err(e) => crate::events::AuditWriteFailed {
                records: lines.len(),
                error: e,
            }
            .emit(),
        }
        let answer = result.map_err(|e| format!("the audit sink failed: {e}"));
        for ack in acks {
            let _ = ack.send(answer.clone());
        }
    }

    /// Writes a batch (records from `first_seq` on, and checkpoints) to the
    /// file, then S3, then stdout. Returns whether the chain moved on (the
    /// file holds the batch durably, or there is no file), and whether every
    /// sink took it. The stall watch sees the write's time and outcome.
    fn write(&mut self, lines: &[Vec<u8>], first_seq: u64) -> (bool, io::Result<()>) {
        self.progress.busy(true);
        let written = self.write_sinks(lines, first_seq);
        self.progress.busy(false);
        self.progress.ended(written.1.is_ok());
        written
    }

    fn write_sinks(&mut self, lines: &[Vec<u8>], first_seq: u64) -> (bool, io::Result<()>) {
        if lines.is_empty() {
            return (true, Ok(()));
        }
        if let Some(f) = &mut self.file {
            let before = f.len;
            let written = f.append(lines).and_then(|()| f.file.sync_data());
            if let Err(e) = written {
                // Leave no half-written record behind the chain's head.
                if f.len >= before {
                    let _ = f.file.set_len(before.min(f.len));
                }
                f.len = before.min(f.len);
                return (false, Err(e));
            }
        }
        if self.s3.is_some()
            && let Err(e) = self.put_s3(lines, first_seq)
        {
            return (self.file.is_some(), Err(io::Error::other(e)));
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            let written = lines
                .iter()
                .try_for_each(|line| out.write_all(line))
                .and_then(|()| out.flush());
            return (true, written);
        }
        (true, Ok(()))
    }

    /// The batch into S3: its records as one object, each checkpoint as
    /// one; each put tried again until it lands (or the drain's tries run
    /// out), so the bucket never has a gap.
    fn put_s3(&self, lines: &[Vec<u8>], first_seq: u64) -> Result<(), String> {
        let Some(s3) = &self.s3 else {
            return Ok(());
        };
        let closed_at = std::cell::Cell::new(None::<Instant>);
        let give_up = || {
            if !self.queue.lock().closed {
                return false;
            }
            let at = closed_at.get().unwrap_or_else(Instant::now);
            closed_at.set(Some(at));
            at.elapsed() >= DRAIN_TRIES
        };
        let failed = |e: &str| {
            crate::events::AuditS3PutFailed { error: e }.emit();
        };
        let (checkpoints, records): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            lines.iter().partition(|l| is_checkpoint_line(l));
        if !records.is_empty() {
            let body: Vec<u8> = records.iter().flat_map(|l| l.iter().copied()).collect();
            s3.put(
                &s3.records_key(first_seq),
                body,
                "application/x-ndjson",
                failed,
                give_up,
            )?;
        }
        for line in checkpoints {
            let c = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| super::seal::Checkpoint::of(&v))
                .and_then(Result::ok);
            let Some(c) = c else { continue };
            s3.put(
                &s3.checkpoint_key(c.seq, c.ended),
                line.clone(),
                "application/json",
                failed,
                give_up,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> Msg {
        let mut f = super::super::chain::Fields::default();
        f.put("pad", &"x".repeat(bytes));
        Msg::Record {
            record: Unsealed::from_fields(f),
            ack: None,
        }
    }

    /// Records no one waits for are held for a group; the first one a
    /// caller waits for is synced at once, taking them along.
    #[test]
    fn a_record_a_caller_waits_for_is_not_held_for_the_group() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let config: AuditConfig = toml::from_str(&format!(
            "file = {:?}\ngroup_commit_ms = 1000\ngroup_commit_records = 65536",
            path.display().to_string()
        ))
        .expect("config");
        let sink =
            Sink::start(&config, Sealer::new("test".into(), "run-1".into(), None)).expect("start");
        let record = |pad: &str| {
            let mut f = super::super::chain::Fields::default();
            f.put("pad", &pad);
            Unsealed::from_fields(f)
        };
        sink.send(record("held"), None);
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        sink.send(record("awaited"), Some(tx));
        assert_eq!(rx.blocking_recv().expect("answered"), Ok(()));
        let waited = started.elapsed();
        // Well inside the 1 s group: it did not wait for the group's end.
        assert!(waited < Duration::from_millis(700), "{waited:?}");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("held") && text.contains("awaited"), "{text}");
        sink.close();
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let q = Queue::new(10_000);
        assert!(q.push(record(4_000)).is_ok());
        assert!(q.push(record(4_000)).is_ok());
        assert!(q.push(record(4_000)).is_err(), "past max_queue_bytes");
        let (taken, _) = q.take(1, Instant::now());
        assert_eq!(taken.len(), 2);
        assert!(q.push(record(4_000)).is_ok(), "taking frees the bytes");
    }

    #[test]
    fn a_writer_that_dies_says_why_and_refuses_what_follows() {
        let q = Arc::new(Queue::new(1 << 20));
        let (tx, rx) = oneshot::channel();
        assert!(q.push(Msg::Flush(tx)).is_ok());
        let guard = Stopped(q.clone());
        let died = std::thread::spawn(move || {
            let _guard = guard;
            panic!("the writer fails");
        })
        .join();
        assert!(died.is_err());
        assert_eq!(
            q.stopped
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default()
                .as_deref(),
            Some("the audit writer thread panicked")
        );
        assert!(
            rx.blocking_recv().is_ok_and(|a| a.is_err()),
            "a waiter is answered"
        );
        assert!(q.push(record(10)).is_err(), "nothing more is queued");
    }

    #[test]
    fn closing_is_not_a_death() {
        let q = Arc::new(Queue::new(1 << 20));
        q.close();
        drop(Stopped(q.clone()));
        assert!(q.stopped.lock().map(|s| s.is_none()).unwrap_or(false));
    }

    #[test]
    fn start_up_reads_the_head_back_past_a_huge_last_record_and_a_huge_torn_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let big = format!(
            "{{\"hash\":\"h2\",\"pad\":\"{}\",\"seq\":2}}\n",
            "y".repeat(5 << 20)
        );
        let first = "{\"hash\":\"h1\",\"seq\":1}\n";
        let text = format!("{first}{big}{}", "z".repeat(3 << 20));
        std::fs::write(&path, text).expect("write");
        let f = ChainFile::open(&path, 1 << 30, 10).expect("open");
        assert_eq!(
            f.head,
            Head {
                seq: 2,
                hash: "h2".into(),
            }
        );
        let len = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(
            len as usize,
            first.len() + big.len(),
            "the torn tail is cut, nothing else"
        );
    }

    #[test]
    fn rotation_keeps_at_most_max_files() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let mut f = ChainFile::open(&path, 4096, 3).expect("open");
        for seq in 1..=200u64 {
            let line = format!(
                "{{\"seq\":{seq},\"hash\":\"h\",\"pad\":\"{}\"}}\n",
                "x".repeat(300)
            );
            f.append(&[line.into_bytes()]).expect("append");
        }
        assert_eq!(rotated(&path).len(), 3);
    }

    #[test]
    fn a_batch_larger_than_a_file_is_split_across_rotations() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let mut f = ChainFile::open(&path, 4096, 1000).expect("open");
        let lines: Vec<Vec<u8>> = (1..=40)
            .map(|seq| {
                format!(
                    "{{\"seq\":{seq},\"hash\":\"h{seq}\",\"pad\":\"{}\"}}\n",
                    "x".repeat(200)
                )
                .into_bytes()
            })
            .collect();
        f.append(&lines).expect("append");
        let files = rotated(&path);
        assert!(files.len() >= 2, "{files:?}");
        for p in files.iter().chain([&path]) {
            let len = std::fs::metadata(p).expect("meta").len();
            assert!(len <= 4096, "{} has {len} bytes", p.display());
        }
    }
}
