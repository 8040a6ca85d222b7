//! A pool's MFA history, served from the audit store (issue 36).
//!
//! The audit records stay the source of truth. A *history record* is the
//! completed record of a pool change that succeeded (SetUserPoolMfaConfig,
//! UpdateUserPoolMfaConfig, RestoreUserPoolMfaConfig), or the record of a
//! change the facade saw but did not make (`method` [`EXTERNAL_METHOD`]):
//! it carries `after`, the configuration's `etag` and its `changed_fields`.
//! The writer indexes each one as it writes it, after the records are
//! durable, with the record's own line as the index entry, so an entry is
//! checked as its record is (its hash) and `audit verify` compares the two:
//!
//! - `[audit.s3]`: `<prefix>history/<pool>/<revision>.json`, one small
//!   object per entry, put with `If-None-Match: *` under the bucket's
//!   Object Lock as the records are; every replica reads the same history.
//! - `[audit] file`: `.<file name>.history`, the entries' lines appended
//!   beside the audit file (never rotated: pool changes are few), read into an index of
//!   offsets per pool at start.
//!
//! A revision names an entry and orders a pool's history newest first as
//! text: the record's time (microseconds, inverted), its run and its seq.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use serde_json::{Map, Value};

use super::chain::hash_of;

/// The `method` of the record of a change made behind the facade's back.
pub const EXTERNAL_METHOD: &str = "(external change)";

/// Revisions invert this to sort newest first.
const MAX_MICROS: u64 = 9_999_999_999_999_999;

/// What the writer needs to index a history record: its pool, and its time.
#[derive(Clone, Debug)]
pub struct IndexNote {
    pub pool: String,
    pub micros: u64,
}

/// The revision of the record at (`micros`, `run`, `seq`).
pub fn revision(micros: u64, run: &str, seq: u64) -> String {
    format!("{:016}-{run}-{seq}", MAX_MICROS.saturating_sub(micros))
}

/// The record time a revision names, in microseconds since the epoch.
pub fn micros_of_revision(revision: &str) -> Option<u64> {
    let inverted: u64 = revision.get(..16)?.parse().ok()?;
    MAX_MICROS.checked_sub(inverted)
}

/// The longest revision: 16 digits, a run (16 hex), a seq (20 digits).
pub const MAX_REVISION_LEN: usize = 16 + 1 + 16 + 1 + 20;

/// Whether `r` has a revision's form (what a caller gives back is checked
/// before it names any key).
pub fn valid_revision(r: &str) -> bool {
    let mut parts = r.split('-');
    let (Some(time), Some(run), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    r.len() <= MAX_REVISION_LEN
        && time.len() == 16
        && time.bytes().all(|b| b.is_ascii_digit())
        && (1..=16).contains(&run.len())
        && run.bytes().all(|b| b.is_ascii_hexdigit())
        && (1..=20).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// Microseconds since the epoch of a record's `time`.
pub fn micros_of_time(time: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(time).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_micros()).ok()
}

/// Whether a record is a history record (see the module's doc).
pub fn is_history_record(m: &Map<String, Value>) -> bool {
    m.get("etag").is_some_and(Value::is_string)
        && m.contains_key("after")
        && m.get("user_pool").is_some_and(Value::is_string)
}

/// One revision of a pool's MFA configuration, as its record holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub revision: String,
    pub user_pool: String,
    /// The record's time (RFC 3339, microseconds).
    pub time: String,
    pub micros: u64,
    pub method: String,
    /// Made behind the facade's back: seen, not made, by it.
    pub external: bool,
    pub principal: Option<String>,
    pub proven_by: Option<String>,
    pub request_id: Option<String>,
    /// The configuration after the change, as the record holds it (each
    /// ExternalId as its fingerprint).
    pub after: Value,
    pub etag: String,
    pub changed_fields: Vec<String>,
    /// A restore's revision.
    pub restored_from: Option<String>,
    /// Where the record is in the audit chain.
    pub source: String,
    pub run: String,
    pub seq: u64,
    pub hash: String,
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_owned)
}

impl Entry {
    /// The entry of a record's line: `None` unless it is a history record
    /// whose hash holds.
    pub fn of_line(line: &[u8]) -> Option<Self> {
        let m: Map<String, Value> = serde_json::from_slice(line).ok()?;
        Self::of_record(&m)
    }

    pub fn of_record(m: &Map<String, Value>) -> Option<Self> {
        if !is_history_record(m) {
            return None;
        }
        let hash = text(m, "hash")?;
        if hash_of(m) != hash {
            return None;
        }
        let time = text(m, "time")?;
        let micros = micros_of_time(&time)?;
        let run = text(m, "run")?;
        let seq = m.get("seq")?.as_u64()?;
        let method = text(m, "method").unwrap_or_default();
        Some(Self {
            revision: revision(micros, &run, seq),
            user_pool: text(m, "user_pool")?,
            external: method == EXTERNAL_METHOD,
            method,
            time,
            micros,
            principal: text(m, "principal"),
            proven_by: text(m, "proven_by"),
            request_id: text(m, "request_id"),
            after: m.get("after").cloned().unwrap_or(Value::Null),
            etag: text(m, "etag")?,
            changed_fields: m
                .get("changed_fields")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            restored_from: text(m, "restored_from"),
            source: text(m, "source").unwrap_or_default(),
            run,
            seq,
            hash,
        })
    }
}

/// One page of a pool's history, newest first; `more` when older entries
/// follow the last one.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub more: bool,
}

/// Where an entry's line lies in the index file.
#[derive(Clone, Debug)]
struct Loc {
    revision: String,
    offset: u64,
    len: u32,
}

/// The file sink's index: `.<audit file>.history`, and each pool's
/// entries' places in it, newest first.
pub struct FileIndex {
    /// Appends (the writer thread only).
    append: Mutex<(File, u64)>,
    /// Reads, at an offset.
    read: File,
    by_pool: RwLock<HashMap<String, Vec<Loc>>>,
}

/// Where the file sink's index of `audit_file` lies: beside it, hidden
/// (`.<name>.history`), so that a collector's glob of the audit files
/// (`audit.jsonl*`) does not take it for one of them.
pub fn index_path(audit_file: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(audit_file.file_name().unwrap_or_default());
    name.push(".history");
    audit_file.with_file_name(name)
}

/// The pool and revision of an index line, reading only the fields that
/// make them (the rest is skipped, not built).
fn place_of(line: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Place<'a> {
        #[serde(borrow)]
        user_pool: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        time: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        run: std::borrow::Cow<'a, str>,
        seq: u64,
    }
    let p: Place<'_> = serde_json::from_slice(line).ok()?;
    let micros = micros_of_time(&p.time)?;
    Some((p.user_pool.into_owned(), revision(micros, &p.run, p.seq)))
}

/// The longest line the index reads back: a record's bound.
const MAX_LINE: u64 = super::bound::MAX_RECORD_BYTES as u64;

impl FileIndex {
    /// The index beside `audit_file`: opened (made, owner-only, when new),
    /// its torn last line cut off, its entries' places read.
    pub fn open(audit_file: &Path) -> io::Result<Self> {
        let path = index_path(audit_file);
        let mut append = super::sink::open_append_file(&path)?;
        let mut by_pool: HashMap<String, Vec<Loc>> = HashMap::new();
        let mut offset = 0u64;
        let mut reader = BufReader::new(File::open(&path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                // A line whose write never finished: never acknowledged.
                append.set_len(offset)?;
                append.sync_all()?;
                break;
            }
            // Only what places the entry: its hash is checked when it is
            // read (a full check of every entry here cost ~13 ms per 1,000).
            if let Some((pool, revision)) = place_of(&line[..n - 1]) {
                by_pool.entry(pool).or_default().push(Loc {
                    revision,
                    offset,
                    len: u32::try_from(n - 1).unwrap_or(u32::MAX),
                });
            }
            offset = offset.saturating_add(n as u64);
        }
        for locs in by_pool.values_mut() {
            locs.sort_by(|a, b| a.revision.cmp(&b.revision));
        }
        let len = append.seek(SeekFrom::End(0))?;
        Ok(Self {
            read: File::open(&path)?,
            append: Mutex::new((append, len)),
            by_pool: RwLock::new(by_pool),
        })
    }

    /// Indexes the history records among the last `lines` lines of
    /// `audit_file` that the index lacks: a process killed between a
    /// batch's sync and its index's leaves them (a batch is at most
    /// `group_commit_records` records). Returns how many it added.
    pub fn repair(&self, audit_file: &Path, lines: usize) -> io::Result<usize> {
        let mut file = match File::open(audit_file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let len = file.seek(SeekFrom::End(0))?;
        let most = (lines as u64).saturating_add(1).saturating_mul(MAX_LINE);
        let mut from = len;
        let mut tail: Vec<u8> = Vec::new();
        while from > 0 && len - from < most {
            let start = from.saturating_sub(256 * 1024);
            let mut chunk = vec![0u8; usize::try_from(from - start).unwrap_or(0)];
            file.read_exact_at(&mut chunk, start)?;
            chunk.extend_from_slice(&tail);
            tail = chunk;
            from = start;
            if tail.iter().filter(|b| **b == b'\n').count() > lines {
                break;
            }
        }
        let mut found = Vec::new();
        let whole = if from > 0 {
            // The first line may be cut: skip it.
            tail.iter()
                .position(|b| *b == b'\n')
                .map_or(&tail[..0], |p| &tail[p + 1..])
        } else {
            &tail[..]
        };
        let candidates: Vec<&[u8]> = whole.split(|b| *b == b'\n').collect();
        let skip = candidates.len().saturating_sub(lines.saturating_add(1));
        {
            let by_pool = self.by_pool.read().unwrap_or_else(|e| e.into_inner());
            for line in candidates.into_iter().skip(skip) {
                if !line.windows(7).any(|w| w == b"\"etag\":") {
                    continue;
                }
                let Some(e) = Entry::of_line(line) else {
                    continue;
                };
                let known = by_pool
                    .get(&e.user_pool)
                    .is_some_and(|l| l.iter().any(|x| x.revision == e.revision));
                if !known {
                    found.push((e.user_pool, e.revision, line.to_vec()));
                }
            }
        }
        self.append(&found)?;
        Ok(found.len())
    }

    /// Appends the entries (pool, revision, record line without its
    /// newline) and syncs them; then they are served.
    pub fn append(&self, entries: &[(String, String, Vec<u8>)]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut guard = self.append.lock().unwrap_or_else(|e| e.into_inner());
        let (file, len) = &mut *guard;
        let start = *len;
        let mut buf = Vec::new();
        let mut locs = Vec::with_capacity(entries.len());
        for (pool, revision, line) in entries {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            locs.push((
                pool.clone(),
                Loc {
                    revision: revision.clone(),
                    offset: start.saturating_add(buf.len() as u64),
                    len: u32::try_from(line.len()).unwrap_or(u32::MAX),
                },
            ));
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            let _ = file.set_len(start);
            return Err(e);
        }
        *len = start.saturating_add(buf.len() as u64);
        drop(guard);
        let mut by_pool = self.by_pool.write().unwrap_or_else(|e| e.into_inner());
        for (pool, loc) in locs {
            let list = by_pool.entry(pool).or_default();
            let at = list.partition_point(|l| l.revision < loc.revision);
            list.insert(at, loc);
        }
        Ok(())
    }

    fn read_entry(&self, loc: &Loc) -> Option<Entry> {
        let mut line = vec![0u8; loc.len as usize];
        self.read.read_exact_at(&mut line, loc.offset).ok()?;
        Entry::of_line(&line)
    }

    fn page(&self, pool: &str, after: Option<&str>, since: Option<u64>, limit: usize) -> Page {
        let locs: Vec<Loc> = {
            let by_pool = self.by_pool.read().unwrap_or_else(|e| e.into_inner());
            let Some(list) = by_pool.get(pool) else {
                return Page::default();
            };
            let from = after.map_or(0, |a| list.partition_point(|l| l.revision.as_str() <= a));
            list[from..]
                .iter()
                .take(limit.saturating_add(1))
                .cloned()
                .collect()
        };
        page_of(locs, since, limit, |l| {
            (l.revision.clone(), self.read_entry(l))
        })
    }

    fn get(&self, pool: &str, revision: &str) -> Option<Entry> {
        let loc = {
            let by_pool = self.by_pool.read().unwrap_or_else(|e| e.into_inner());
            let list = by_pool.get(pool)?;
            let at = list.partition_point(|l| l.revision.as_str() < revision);
            list.get(at).filter(|l| l.revision == revision)?.clone()
        };
        self.read_entry(&loc)
    }

    fn pools(&self) -> Vec<String> {
        let by_pool = self.by_pool.read().unwrap_or_else(|e| e.into_inner());
        by_pool.keys().cloned().collect()
    }
}

/// A page of at most `limit` entries from `items` (up to `limit + 1`,
/// newest first), stopping at the first older than `since`; an item whose
/// entry cannot be read is passed over (its record is what `audit verify`
/// reports).
fn page_of<T>(
    items: Vec<T>,
    since: Option<u64>,
    limit: usize,
    read: impl Fn(&T) -> (String, Option<Entry>),
) -> Page {
    let mut page = Page::default();
    for item in &items {
        let (revision, entry) = read(item);
        if older_than(&revision, since) {
            return page;
        }
        if page.entries.len() == limit {
            page.more = true;
            return page;
        }
        if let Some(e) = entry {
            page.entries.push(e);
        }
    }
    page
}

/// Whether `revision` is older than `since` (microseconds), when given.
fn older_than(revision: &str, since: Option<u64>) -> bool {
    since.is_some_and(|s| micros_of_revision(revision).is_some_and(|m| m < s))
}

/// The entry an S3 index object holds, if it is a history record of
/// `pool` whose hash holds, at the revision its key names.
fn entry_of_object(body: &[u8], pool: &str, revision: &str) -> Option<Entry> {
    Entry::of_line(body.trim_ascii_end()).filter(|e| e.user_pool == pool && e.revision == revision)
}

/// S3 GETs of one history page in flight at once.
const S3_GETS_AT_ONCE: usize = 8;

/// The index objects of `revisions` of `pool`, in their order, read
/// [`S3_GETS_AT_ONCE`] at a time; the first failure ends the read.
async fn fetch(
    s3: &Arc<super::s3::S3History>,
    pool: &str,
    revisions: &[String],
) -> Result<Vec<Option<Vec<u8>>>, String> {
    let gate = Arc::new(tokio::sync::Semaphore::new(S3_GETS_AT_ONCE));
    let mut reads = tokio::task::JoinSet::new();
    for (i, revision) in revisions.iter().enumerate() {
        let (s3, pool, revision, gate) =
            (s3.clone(), pool.to_owned(), revision.clone(), gate.clone());
        reads.spawn(async move {
            let _turn = gate.acquire_owned().await;
            (i, s3.get(&pool, &revision).await)
        });
    }
    let mut out = vec![None; revisions.len()];
    while let Some(done) = reads.join_next().await {
        let (i, body) = done.map_err(|e| format!("reading the history: {e}"))?;
        if let Some(slot) = out.get_mut(i) {
            *slot = body?;
        }
    }
    Ok(out)
}

/// External changes one process remembers having claimed, at most.
const MAX_CLAIMS: usize = 10_000;

/// Where a pool's history is read: the shared S3 sink when there is one,
/// else the audit file's index.
#[derive(Clone)]
pub enum History {
    File(Arc<FileIndex>, Arc<Mutex<HashSet<String>>>),
    S3(Arc<super::s3::S3History>),
}

impl History {
    /// A page of `pool`'s history, newest first, after the revision
    /// `after`, none older than `since` (microseconds).
    pub async fn page(
        &self,
        pool: &str,
        after: Option<&str>,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Page, String> {
        match self {
            History::File(f, _) => Ok(f.page(pool, after, since, limit)),
            History::S3(s3) => {
                let listed = s3.list(pool, after, limit.saturating_add(1)).await?;
                // The entries the page holds: at most `limit`, none older
                // than `since`; their objects read a few at a time.
                let wanted = listed
                    .iter()
                    .take_while(|r| !older_than(r, since))
                    .take(limit)
                    .count();
                let mut bodies = fetch(s3, pool, &listed[..wanted]).await?;
                bodies.resize(listed.len(), None);
                let items: Vec<(String, Option<Vec<u8>>)> =
                    listed.into_iter().zip(bodies).collect();
                Ok(page_of(items, since, limit, |(r, body)| {
                    (
                        r.clone(),
                        body.as_deref().and_then(|b| entry_of_object(b, pool, r)),
                    )
                }))
            }
        }
    }

    /// The newest entry of `pool`.
    pub async fn newest(&self, pool: &str) -> Result<Option<Entry>, String> {
        Ok(self.page(pool, None, None, 1).await?.entries.pop())
    }

    /// The entry `revision` of `pool`.
    pub async fn get(&self, pool: &str, revision: &str) -> Result<Option<Entry>, String> {
        match self {
            History::File(f, _) => Ok(f.get(pool, revision)),
            History::S3(s3) => Ok(s3
                .get(pool, revision)
                .await?
                .and_then(|b| entry_of_object(&b, pool, revision))),
        }
    }

    /// The pools that have a history (for the drift watch's globs).
    pub async fn pools(&self) -> Result<Vec<String>, String> {
        match self {
            History::File(f, _) => Ok(f.pools()),
            History::S3(s3) => s3.pools().await,
        }
    }

    /// Claims the recording of one external change (`key`: the revision
    /// the facade knew and the etag it read): true for the one replica
    /// that records it (S3: a marker object put with If-None-Match; one
    /// machine: this process).
    pub async fn claim(&self, pool: &str, key: &str) -> Result<bool, String> {
        match self {
            History::File(_, claimed) => {
                let mut claimed = claimed.lock().unwrap_or_else(|e| e.into_inner());
                // A claim is needed only until its record is the newest
                // entry: an old one may be forgotten.
                if claimed.len() >= MAX_CLAIMS {
                    claimed.clear();
                }
                Ok(claimed.insert(format!("{pool}/{key}")))
            }
            History::S3(s3) => s3.claim(pool, key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{Fields, Unsealed};

    /// A sealed history record of `pool` at `seq`, its line.
    fn record(pool: &str, seq: u64, time: &str, mode: &str) -> Vec<u8> {
        let mut f = Fields::default();
        f.put("after", &serde_json::json!({"mode": mode}));
        f.put("etag", &format!("{seq:032}"));
        f.put(
            "method",
            "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
        );
        f.put("run", "00aa11bb22cc33dd");
        f.put("source", "web-0");
        f.put("stage", "completed");
        f.put("time", time);
        f.put("user_pool", pool);
        Unsealed::from_fields(f)
            .seal(seq, super::super::chain::GENESIS)
            .0
    }

    /// The file sink's index: served newest first and paged, read back at
    /// start, its torn last line cut; a record the last run wrote but did
    /// not index is indexed by the repair, once.
    #[test]
    fn the_file_index_pages_newest_first_survives_a_reopen_and_repairs_a_killed_run() {
        let dir = tempfile::tempdir().expect("dir");
        let audit = dir.path().join("audit.jsonl");
        let lines = [
            record("p_1", 1, "2026-12-05T10:00:00.000001Z", "On"),
            record("p_2", 2, "2026-12-05T10:00:01.000001Z", "On"),
            record("p_1", 3, "2026-12-05T10:00:02.000001Z", "Optional"),
        ];
        std::fs::write(&audit, lines.concat()).expect("audit");
        let index = FileIndex::open(&audit).expect("open");
        // Only the first was indexed before the "kill".
        let e1 = Entry::of_line(lines[0].trim_ascii_end()).expect("entry");
        index
            .append(&[("p_1".into(), e1.revision.clone(), lines[0].clone())])
            .expect("append");
        assert_eq!(index.repair(&audit, 10).expect("repair"), 2);
        assert_eq!(index.repair(&audit, 10).expect("again"), 0, "once");
        let page = index.page("p_1", None, None, 1);
        assert!(page.more);
        assert_eq!(page.entries[0].seq, 3, "newest first");
        let rest = index.page("p_1", Some(&page.entries[0].revision), None, 1);
        assert_eq!((rest.entries[0].seq, rest.more), (1, false));
        assert_eq!(index.get("p_1", &e1.revision), Some(e1.clone()));
        // `since` after the older entry: only the newer.
        let since = micros_of_time("2026-12-05T10:00:01Z");
        assert_eq!(index.page("p_1", None, since, 10).entries.len(), 1);
        // A torn line at the end (a write cut short) is cut at reopen.
        let path = index_path(&audit);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("index");
        f.write_all(b"{\"torn").expect("torn");
        drop((f, index));
        let index = FileIndex::open(&audit).expect("reopen");
        assert_eq!(index.page("p_1", None, None, 10).entries.len(), 2);
        assert_eq!(index.page("p_2", None, None, 10).entries.len(), 1);
        assert!(
            !std::fs::read_to_string(&path)
                .expect("read")
                .contains("torn")
        );
    }

    #[test]
    fn revisions_sort_newest_first_and_their_form_is_checked() {
        let old = revision(1_700_000_000_000_000, "00aa11bb22cc33dd", 7);
        let new = revision(1_800_000_000_000_000, "00aa11bb22cc33dd", 8);
        assert!(new < old, "{new} {old}");
        assert!(valid_revision(&old) && valid_revision(&new));
        assert_eq!(micros_of_revision(&new), Some(1_800_000_000_000_000));
        for bad in [
            "",
            "../x",
            "8199999999999999-00aa11bb22cc33dd",
            "8199999999999999-00aa11bb22cc33dd-7-1",
            "819999999999999x-00aa11bb22cc33dd-7",
            "8199999999999999-zz-7",
            "8199999999999999-00aa11bb22cc33dd-123456789012345678901",
            "8199999999999999-00aa11bb22cc33dd-",
        ] {
            assert!(!valid_revision(bad), "{bad}");
        }
    }
}
