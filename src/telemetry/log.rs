//! Logs: one JSON object per line on stderr, through a shared buffer. What
//! is logged is in `crate::events`.

use std::{
    fmt::{self, Write as _},
    io::{BufWriter, Write},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    registry::LookupSpan,
};

/// The log's buffer: lines gather here and reach stderr in one write(2)
/// when it is full or at the next flush.
pub const LOG_BUFFER_BYTES: usize = 64 * 1024;
/// How often buffered lines are written out, at most: a line waits for
/// this long or less, and a quiet server holds none for longer.
pub const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Keeps the log's flusher running; dropping it writes out what is
/// buffered.
#[must_use = "dropping the guard stops the log's flusher"]
pub struct LogGuard {
    buffered: Option<Buffered>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        if let Some(buffered) = &self.buffered {
            let _ = buffered.lock().flush();
        }
    }
}

/// stderr behind a [`LOG_BUFFER_BYTES`] buffer that every thread shares:
/// a call appends its line under a lock and goes on, where it used to wait
/// for a write(2) of its own (at full load a fifth of a read call's time,
/// bench/RESULTS.md). When the buffer fills, the call that fills it writes
/// it out, so nothing is dropped and a flood is held back as stderr held it
/// back before. What is buffered when the process is killed (SIGKILL) —
/// at most [`LOG_FLUSH_INTERVAL`] of lines — is lost; audit records are not
/// logs and keep their own durability.
#[derive(Clone)]
struct Buffered(Arc<Mutex<BufWriter<std::io::Stderr>>>);

impl Buffered {
    fn lock(&self) -> std::sync::MutexGuard<'_, BufWriter<std::io::Stderr>> {
        // A writer that panicked mid-line leaves bytes, not a broken buffer.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One event's writer: the shared buffer, borrowed.
struct Line<'a>(&'a Buffered);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().flush()
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self)
    }
}

/// Installs the JSON log subscriber; `RUST_LOG` filters (default `info`).
/// Lines go to stderr through a shared buffer ([`Buffered`]), written out
/// every [`LOG_FLUSH_INTERVAL`] and whenever it fills.
pub fn init_logging() -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let buffered = Buffered(Arc::new(Mutex::new(BufWriter::with_capacity(
        LOG_BUFFER_BYTES,
        std::io::stderr(),
    ))));
    // A second call (tests) keeps the first subscriber.
    let installed = tracing_subscriber::fmt()
        .event_format(JsonLine)
        .with_env_filter(filter)
        .with_writer(buffered.clone())
        .try_init();
    if installed.is_err() {
        return LogGuard {
            buffered: None,
            stop: None,
            flusher: None,
        };
    }
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let mut guard = LogGuard {
        buffered: Some(buffered.clone()),
        stop: None,
        flusher: None,
    };
    let flusher = std::thread::Builder::new()
        .name("mfa-facade-log".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            loop {
                let last = !matches!(
                    stopped.recv_timeout(LOG_FLUSH_INTERVAL),
                    Err(RecvTimeoutError::Timeout)
                );
                // A failed write to stderr has nowhere to be reported.
                let _ = buffered.lock().flush();
                if last {
                    return;
                }
            }
        });
    // Without a thread, lines still go out whenever the buffer fills, and
    // at exit.
    if let Ok(flusher) = flusher {
        guard.stop = Some(stop);
        guard.flusher = Some(flusher);
    }
    guard
}

/// One JSON object per event, on one line: `timestamp` (RFC 3339, UTC,
/// microseconds), `level`, the event's fields in the order written, then
/// `target`: the shape of tracing-subscriber's flattened JSON format, which
/// this replaces because it cost ~19,000 instructions a line (a serde map
/// written through an `io::Write` adaptor, piece by piece); this writes the
/// same object straight into the line buffer (bench/RESULTS.md).
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events forwarded from the `log` crate carry their real level and
        // target in `log.*` fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        // The line is built in this thread's buffer, then written at once
        // (one call through the writer rather than one per piece). An event
        // logged while a line is being built (from a field's Debug) gets a
        // buffer of its own.
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            let mut fresh = String::new();
            let mut held = line.try_borrow_mut();
            let line = held.as_deref_mut().unwrap_or(&mut fresh);
            line.clear();
            line.push_str("{\"timestamp\":\"");
            crate::timefmt::rfc3339_micros(SystemTime::now(), line);
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            let mut fields = JsonFields {
                line,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result?;
            line.push_str(",\"target\":");
            string(line, meta.target());
            line.push_str("}\n");
            w.write_str(line)
        })
    }
}

/// Writes each field as `,"name":value`.
struct JsonFields<'a> {
    line: &'a mut String,
    result: fmt::Result,
}

impl JsonFields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.line.push(',');
        string(self.line, field.name());
        self.line.push(':');
        self.result = value(self.line);
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| {
            string(w, value);
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| {
            w.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| {
            w.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| {
            w.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w| {
            if value.is_finite() {
                w.push_str(ryu::Buffer::new().format_finite(value));
            } else {
                w.push_str("null");
            }
            Ok(())
        });
    }
}

/// A JSON string: quoted, with `"`, `\\` and control characters escaped.
fn string(w: &mut String, s: &str) {
    w.push('"');
    escape(w, s);
    w.push('"');
}

fn escape(w: &mut String, s: &str) {
    // Most values have nothing to escape: one copy.
    if !crate::json::needs_escape(s.as_bytes()) {
        w.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes end a run: `i` is a character boundary.
        w.push_str(&s[start..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            w.push_str("\\u00");
            w.push(char::from(HEX[usize::from(b >> 4)]));
            w.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            w.push_str(escaped);
        }
        start = i + 1;
    }
    w.push_str(&s[start..]);
}

/// Escapes what is written through it (a `Debug` or `Display` value).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json_wants() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    /// A line of every field kind parses as JSON and keeps each value.
    #[test]
    fn a_line_is_one_json_object() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let error = "bad \"thing\"\n";
            tracing::warn!(
                event = "e",
                n = 7u64,
                m = -3i64,
                ok = true,
                ms = 1.5f64,
                nan = f64::NAN,
                %error,
                "Something {} happened.",
                "odd"
            );
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["event"], "e");
        assert_eq!(v["n"], 7);
        assert_eq!(v["m"], -3);
        assert_eq!(v["ok"], true);
        assert_eq!(v["ms"], 1.5);
        assert!(v["nan"].is_null());
        assert_eq!(v["error"], "bad \"thing\"\n");
        assert_eq!(v["message"], "Something odd happened.");
        assert_eq!(v["target"], module_path!());
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-02T17:10:11.123456Z".len(), "{ts}");
        assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    }
}
