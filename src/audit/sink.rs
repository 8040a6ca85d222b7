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
use super::history::{FileIndex, IndexNote};
use super::s3::S3Sink;
use super::seal::{Sealer, is_checkpoint_line};
use super::settings::{AuditConfig, FsyncPolicy};

/// Opens a file for appending as the audit file is (owner-only).
pub(crate) fn open_append_file(path: &Path) -> io::Result<File> {
    open_append(path)
}

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
        /// A history record: indexed once it is durable.
        index: Option<IndexNote>,
    },
    /// Answers once everything sent before it is durable.
    Flush(oneshot::Sender<Ack>),
}

mod file;
mod queue;
mod writer;

use file::*;
use queue::*;
use writer::*;

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
    pub fn start(
        config: &AuditConfig,
        sealer: Sealer,
        index: Option<Arc<FileIndex>>,
    ) -> io::Result<Self> {
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
            index,
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
    pub fn send(
        &self,
        record: Unsealed,
        ack: Option<oneshot::Sender<Ack>>,
        index: Option<IndexNote>,
    ) {
        if let Err(Msg::Record { ack, .. }) = self.queue.push(Msg::Record { record, ack, index }) {
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

#[cfg(test)]
mod tests;
