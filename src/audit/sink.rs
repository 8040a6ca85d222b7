//! The audit writer: one thread owns the chain and the sinks. Calls hand it
//! records over a bounded channel; it seals them (seq, prev_hash, hash),
//! appends them to the file and/or stdout, syncs by the fsync policy, and
//! only then acknowledges. Group commit: one fsync for every
//! `group_commit_records` records or `group_commit_ms`, whichever comes
//! first; per record: one fsync each.
//!
//! The file is append-only and rotated by size to `<file>.<first seq, 20
//! digits>`, so names sort in chain order; the chain continues across
//! rotations and restarts (the head is read back from the newest file at
//! start-up, and a torn last line, never acknowledged, is cut off).

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;
use tokio::sync::oneshot;

use super::chain::{Head, Unsealed};
use crate::config::{AuditConfig, FsyncPolicy};

/// Records waiting for the writer at most; more is an overloaded sink.
const QUEUE: usize = 65_536;

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
}

struct QueueState {
    msgs: Vec<Msg>,
    /// The writer sleeps and wants waking once `msgs` holds this many.
    wake_at: Option<usize>,
    /// No more records: the sink was dropped, or the writer stopped.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves only plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; gives it back when the queue is full or closed.
    fn push(&self, msg: Msg) -> Result<(), Msg> {
        let mut state = self.lock();
        if state.closed || state.msgs.len() >= QUEUE {
            return Err(msg);
        }
        state.msgs.push(msg);
        if state.wake_at.is_some_and(|n| state.msgs.len() >= n) {
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
        let msgs = {
            let mut state = self.0.lock();
            state.closed = true;
            std::mem::take(&mut state.msgs)
        };
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

pub struct Sink {
    queue: Arc<Queue>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Sink {
    /// Opens the sinks, reads the chain's head back, starts the writer.
    pub fn start(config: &AuditConfig) -> io::Result<Self> {
        let file = match &config.file {
            Some(path) => Some(ChainFile::open(path, config.max_file_bytes)?),
            None => None,
        };
        let head = file.as_ref().map_or_else(Head::genesis, |f| f.head.clone());
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                msgs: Vec::new(),
                wake_at: None,
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let writer = Writer {
            file,
            stdout: config.stdout,
            fsync: config.fsync,
            group: Duration::from_millis(config.group_commit_ms),
            group_records: config.group_commit_records,
            anchor_every: Duration::from_secs(config.anchor_interval_seconds),
            head,
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
        })
    }

    /// Queues a record. Without a waiter the record is written all the same;
    /// a full queue drops it (counted) and answers the waiter at once.
    pub fn send(&self, record: Unsealed, ack: Option<oneshot::Sender<Ack>>) {
        if let Err(Msg::Record { ack, .. }) = self.queue.push(Msg::Record { record, ack }) {
            metrics::counter!("mfa_facade_audit_dropped_total").increment(1);
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
    head: Head,
}

/// The last complete line of `file`, cutting off a torn one.
fn last_line(file: &mut File) -> io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let from = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() != Some(&b'\n') {
        // A record whose write never finished was never acknowledged.
        let keep = tail.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let cut = from + keep as u64;
        tracing::warn!(
            event = "audit_torn_tail",
            bytes = len - cut,
            "cutting off an unfinished last audit record"
        );
        file.set_len(cut)?;
        file.sync_all()?;
        tail.truncate(keep);
    }
    let text = String::from_utf8_lossy(&tail);
    Ok(text.lines().last().map(str::to_owned))
}

fn head_of(line: &str) -> io::Result<Head> {
    let v: Value = serde_json::from_str(line).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the last audit record is not JSON: {e}"),
        )
    })?;
    match (
        v.get("seq").and_then(Value::as_u64),
        v.get("hash").and_then(Value::as_str),
    ) {
        (Some(seq), Some(hash)) => Ok(Head {
            seq,
            hash: hash.to_owned(),
        }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the last audit record has no seq or hash",
        )),
    }
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

impl ChainFile {
    fn open(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let head = match last_line(&mut file)? {
            Some(line) => head_of(&line)?,
            None => match rotated(path).last() {
                // Rotated just before a crash: the chain goes on from there.
                Some(prev) => match last_line(&mut File::open(prev)?)? {
                    Some(line) => head_of(&line)?,
                    None => Head::genesis(),
                },
                None => Head::genesis(),
            },
        };
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            max_bytes,
            head,
        })
    }

    /// The seq of this file's first record.
    fn first_seq(&self) -> io::Result<u64> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(0))?;
        let mut line = String::new();
        BufReader::new(f).read_line(&mut line)?;
        Ok(head_of(line.trim_end())?.seq)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let first = self.first_seq()?;
        let mut to = self.path.clone().into_os_string();
        to.push(format!(".{first:020}"));
        std::fs::rename(&self.path, &to)?;
        self.file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.len = 0;
        sync_dir(&self.path);
        Ok(())
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

struct Writer {
    file: Option<ChainFile>,
    stdout: bool,
    fsync: FsyncPolicy,
    group: Duration,
    group_records: usize,
    anchor_every: Duration,
    head: Head,
}

impl Writer {
    fn run(mut self, stopped: &Stopped) {
        let queue = &stopped.0;
        let mut next_anchor = Instant::now() + self.anchor_every;
        let mut anchored = self.head.clone();
        loop {
            // Asleep until the first record, or the next anchor.
            let (mut batch, mut closed) = queue.take(1, next_anchor);
            if !batch.is_empty() && self.fsync == FsyncPolicy::Group && !closed {
                // A group: until it is full or its time is up.
                let deadline = Instant::now() + self.group;
                while batch.len() < self.group_records && !closed && Instant::now() < deadline {
                    let (more, c) = queue.take(self.group_records - batch.len(), deadline);
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
            if Instant::now() >= next_anchor {
                self.anchor(&mut anchored);
                next_anchor = Instant::now() + self.anchor_every;
            }
        }
        self.anchor(&mut anchored);
    }

    /// Prints the head to stdout: the outside anchor of the chain.
    fn anchor(&self, last: &mut Head) {
        if self.head == *last {
            return;
        }
        *last = self.head.clone();
        let line = serde_json::json!({"audit_anchor": {
            "seq": self.head.seq,
            "hash": self.head.hash,
            "time": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        }});
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
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
                    let (line, hash) = record.seal(head.seq + 1, &head.hash);
                    head = Head {
                        seq: head.seq + 1,
                        hash,
                    };
                    lines.push(line);
                    acks.extend(ack);
                }
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        let result = self.write(&lines);
        match &result {
            Ok(()) => {
                self.head = head;
                metrics::counter!("mfa_facade_audit_records_total").increment(lines.len() as u64);
                metrics::histogram!("mfa_facade_audit_write_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics::counter!("mfa_facade_audit_failures_total").increment(lines.len() as u64);
                tracing::error!(event = "audit_write_failed", records = lines.len(), error = %e, "audit records could not be written");
            }
        }
        let answer = result.map_err(|e| format!("the audit sink failed: {e}"));
        for ack in acks {
            let _ = ack.send(answer.clone());
        }
    }

    fn write(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
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
                return Err(e);
            }
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            for line in lines {
                out.write_all(line)?;
            }
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_larger_than_a_file_is_split_across_rotations() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.jsonl");
        let mut f = ChainFile::open(&path, 4096).expect("open");
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
