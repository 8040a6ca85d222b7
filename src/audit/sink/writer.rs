//! The writer thread: seals, appends, syncs, puts into S3, acknowledges.

use super::*;

/// How long a draining writer goes on trying to put into S3 what it holds.
pub(super) const DRAIN_TRIES: Duration = Duration::from_secs(10);

/// How often a writer whose sinks failed tries them again while no record
/// comes, so that health recovers by itself.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Writer {
    /// `[audit.s3]`.
    pub(super) s3: Option<S3Sink>,
    /// The queue, for whether the writer is draining (an S3 put then stops
    /// trying after [`DRAIN_TRIES`]).
    pub(super) queue: Arc<Queue>,
    pub(super) progress: Arc<Progress>,
    pub(super) file: Option<ChainFile>,
    pub(super) stdout: bool,
    pub(super) fsync: FsyncPolicy,
    pub(super) group: Duration,
    pub(super) group_records: usize,
    /// A checkpoint at least this often while the chain grows.
    pub(super) seal_every: Duration,
    pub(super) head: Head,
    pub(super) sealer: Sealer,
    /// The file sink's history index (`<file>.history`).
    pub(super) index: Option<Arc<FileIndex>>,
}

/// A history record to index once durable: its pool, its revision, its line.
pub(super) type Indexed = (String, String, Vec<u8>);

impl Writer {
    pub(super) fn run(mut self, stopped: &Stopped) {
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
    pub(super) fn own_record(
        &self,
        stage: &'static str,
        fill: impl FnOnce(&mut Fields),
    ) -> (Vec<u8>, Head) {
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
    pub(super) fn started(&mut self) {
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
    pub(super) fn ended(&mut self) {
        let (line, next) = self.own_record("run_ended", |_| {});
        self.write_own(line, next, true);
    }

    /// Writes one of the writer's own records and a checkpoint of it.
    pub(super) fn write_own(&mut self, line: Vec<u8>, next: Head, ended: bool) {
        let mut lines = vec![line];
        lines.extend(self.sealer.checkpoint(next.seq, &next.hash, ended));
        let (durable, result) = self.write(&lines, next.seq, &[]);
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
    pub(super) fn seal(&mut self, ended: bool) {
        let Some(line) = self
            .sealer
            .checkpoint(self.head.seq, &self.head.hash, ended)
        else {
            return;
        };
        let _ = self.write(&[line], self.head.seq, &[]);
    }

    /// Tries the sinks without a record: the file's disk asked for room
    /// for a record past its end (without growing it) and synced, stdout
    /// flushed.
    pub(super) fn probe(&mut self) {
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
    pub(super) fn commit(&mut self, batch: Vec<Msg>) {
        let started = Instant::now();
        let mut head = self.head.clone();
        let mut lines = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        let mut indexed: Vec<Indexed> = Vec::new();
        for msg in batch {
            match msg {
                Msg::Record { record, ack, index } => {
                    let Some(seq) = head.seq.checked_add(1) else {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err("the audit chain is at its last seq".into()));
                        }
                        continue;
                    };
                    let (line, hash) = record.seal(seq, &head.hash);
                    head = Head { seq, hash };
                    if let Some(note) = index {
                        let revision =
                            crate::audit::history::revision(note.micros, &self.sealer.run, seq);
                        indexed.push((note.pool, revision, line.clone()));
                    }
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
        let (durable, result) = self.write(&lines, self.head.seq.saturating_add(1), &indexed);
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
    pub(super) fn write(
        &mut self,
        lines: &[Vec<u8>],
        first_seq: u64,
        indexed: &[Indexed],
    ) -> (bool, io::Result<()>) {
        self.progress.busy(true);
        let written = self.write_sinks(lines, first_seq, indexed);
        self.progress.busy(false);
        self.progress.ended(written.1.is_ok());
        written
    }

    /// History records are indexed only after the sink that holds them
    /// has them: the file's index after the file's sync, S3's entries after
    /// the records object.
    pub(super) fn write_sinks(
        &mut self,
        lines: &[Vec<u8>],
        first_seq: u64,
        indexed: &[Indexed],
    ) -> (bool, io::Result<()>) {
        if lines.is_empty() {
            return (true, Ok(()));
        }
        // A failed index append fails the batch, but only once every sink
        // has it: the file holds it, so S3 and stdout must too (no gap).
        let mut index_failed = None;
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
            if let Some(index) = &self.index
                && let Err(e) = index.append(indexed)
            {
                index_failed = Some(e);
            }
        }
        if self.s3.is_some()
            && let Err(e) = self.put_s3(lines, first_seq, indexed)
        {
            return (self.file.is_some(), Err(io::Error::other(e)));
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            let written = lines
                .iter()
                .try_for_each(|line| out.write_all(line))
                .and_then(|()| out.flush());
            return (true, index_failed.map_or(written, Err));
        }
        (true, index_failed.map_or(Ok(()), Err))
    }

    /// The batch into S3: its records as one object, each checkpoint as
    /// one; each put tried again until it lands (or the drain's tries run
    /// out), so the bucket never has a gap.
    pub(super) fn put_s3(
        &self,
        lines: &[Vec<u8>],
        first_seq: u64,
        indexed: &[Indexed],
    ) -> Result<(), String> {
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
        for (pool, revision, line) in indexed {
            s3.put(
                &s3.history_key(pool, revision),
                line.clone(),
                "application/json",
                failed,
                give_up,
            )?;
        }
        for line in checkpoints {
            let c = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| crate::audit::seal::Checkpoint::of(&v))
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
