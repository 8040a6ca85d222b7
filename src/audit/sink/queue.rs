//! The bounded queue between callers and the writer, and its closing
//! when the writer ends.

use super::*;

/// The records between the callers and the writer. A caller wakes the
/// writer only when it sleeps and has asked for it (the first record of a
/// group, or a full group), so a busy writer costs callers a lock and a
/// push, not a wake-up each.
pub(super) struct Queue {
    pub(super) state: Mutex<QueueState>,
    pub(super) ready: Condvar,
    /// `audit.max_queue_bytes`.
    pub(super) max_bytes: usize,
    /// Why the writer ended, when it ended other than by `close`.
    pub(super) stopped: Mutex<Option<String>>,
}

pub(super) struct QueueState {
    pub(super) msgs: Vec<Msg>,
    /// The bytes of the records in `msgs`.
    pub(super) bytes: usize,
    /// The writer sleeps and wants waking once `msgs` holds this many.
    pub(super) wake_at: Option<usize>,
    /// No more records: the sink was dropped, or the writer stopped.
    pub(super) closed: bool,
}

impl Msg {
    /// A caller waits for this one to be durable.
    pub(super) fn awaited(&self) -> bool {
        match self {
            Msg::Record { ack, .. } => ack.is_some(),
            Msg::Flush(_) => true,
        }
    }
}

impl Queue {
    pub(super) fn new(max_bytes: usize) -> Self {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves only plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; gives it back when the queue is full or closed.
    pub(super) fn push(&self, msg: Msg) -> Result<(), Msg> {
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

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer's side: waits until `want` messages are queued, the
    /// deadline passes or the queue closes; then takes what is queued.
    pub(super) fn take(&self, want: usize, deadline: Instant) -> (Vec<Msg>, bool) {
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
pub(super) struct Stopped(pub(super) Arc<Queue>);

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
