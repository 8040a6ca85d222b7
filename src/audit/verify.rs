//! `mfa-facade audit verify`: what any mix of sinks and collectors gathered
//! (files, stdin, copies), checked chain by chain.
//!
//! Records are grouped by their chain, (`source`, `run`), whatever the
//! order they come in, and put in seq order; identical copies from several
//! inputs count once, a copy repeated within one input is a replay. Each
//! chain is checked record by record (its hash, its seq following the one
//! before, its `prev_hash` naming that one's hash), each run's first record
//! (`run_started`) against the head of the run it names as its
//! predecessor, and each checkpoint (`seal`) against the record it seals
//! and, with a public key, against its signature. Nothing is skipped
//! silently: lines that are not audit records are counted and named.
//!
//! What it finds, the first problem of each chain, names the input, line,
//! chain and seq: edited (a hash that does not hold), deleted (a gap),
//! replayed, inserted (after a run's end), a missing run (a run that a
//! later one links to, or that a checkpoint seals, with no records), cut
//! off (records end before their last checkpoint), rewritten (a record
//! that differs from its checkpoint, though re-chained), a forged
//! checkpoint (another key, or an edit). What a chain alone cannot show —
//! records after the last checkpoint — is reported as an unsealed tail.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::chain::{GENESIS, hash_of};
use super::seal::{Checkpoint, PublicKey};

/// One input: a file, stdin, or a copy under another name.
pub struct Input {
    pub name: String,
    pub text: String,
}

/// Where a line came from.
#[derive(Clone, Debug)]
struct At {
    input: usize,
    line: usize,
}

struct Record {
    at: At,
    seq: u64,
    hash: String,
    prev_hash: String,
    map: Map<String, Value>,
}

/// A chain's name: (source, run); empty for records written before runs
/// had names.
type ChainId = (String, String);

/// A run's first record and the predecessor it names: (run, seq, hash).
type Link = (ChainId, At, Option<(String, u64, String)>);

/// What `verify` was asked.
#[derive(Default)]
pub struct Options<'a> {
    /// Checkpoints must carry a good signature by this key.
    pub public_key: Option<&'a PublicKey>,
    /// A head published outside the records (`--anchor SEQ:HASH`).
    pub anchor: Option<(u64, String)>,
}

/// What one chain holds.
#[derive(Debug, Default)]
pub struct ChainReport {
    pub source: String,
    pub run: String,
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The last seq a checkpoint seals, if any.
    pub sealed_through: Option<u64>,
    /// Records after the last checkpoint.
    pub unsealed: u64,
    /// A `run_ended` record and a final checkpoint that seals it.
    pub ended: bool,
    /// The chain's first records are not among the inputs (older files).
    pub starts_mid_way: bool,
}

/// Everything `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub chains: Vec<ChainReport>,
    pub records: u64,
    pub checkpoints: u64,
    /// Identical copies of one record in several inputs, counted once.
    pub duplicates: u64,
    /// Lines that are neither records nor checkpoints: `input:line`.
    pub other_lines: Vec<String>,
    /// Lines out of seq order within one input (collected copies may be).
    pub out_of_order: u64,
    /// What is wrong: `input:line: chain: what`.
    pub problems: Vec<String>,
    pub signatures_checked: bool,
    /// History index entries checked against their records.
    pub index_entries: u64,
    /// History index entries whose chain is not among the inputs.
    pub index_unchecked: u64,
    /// History records without an index entry in the unsealed tail of a
    /// run that did not end (killed between its records and their index:
    /// what a chain alone cannot show, as its unsealed tail).
    pub index_missing_in_tail: u64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether every chain is sealed to its end and ended cleanly (`--strict`).
    pub fn sealed_and_ended(&self) -> bool {
        self.chains.iter().all(|c| c.unsealed == 0 && c.ended)
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// Whether a line that did not parse as a record was meant to be one.
fn looks_like_a_record(line: &str) -> bool {
    line.contains("\"prev_hash\"")
        || line.contains("\"call_id\"")
        || line.contains(super::seal::CHECKPOINT)
}

/// What an input holds, by its name: a history index (`<file>.history`, an
/// S3 `history/<pool>/<revision>.json`), a drift claim (S3 `drift/…`,
/// nothing to check), or records and checkpoints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Records,
    Index,
    Claim,
}

fn kind_of(name: &str) -> Kind {
    let s3 = name.starts_with("s3://");
    let s3_index = s3 && index_key(name).is_some_and(|(_, r)| super::history::valid_revision(r));
    if name.ends_with(".history") || s3_index {
        Kind::Index
    } else if s3 && name.contains("/drift/") {
        Kind::Claim
    } else {
        Kind::Records
    }
}

/// The pool and revision an S3 index object's key names.
fn index_key(name: &str) -> Option<(&str, &str)> {
    let (_, rest) = name.rsplit_once("/history/")?;
    let (pool, file) = rest.split_once('/')?;
    Some((pool, file.strip_suffix(".json")?))
}

pub fn verify(inputs: &[Input], opts: &Options<'_>) -> Report {
    let mut report = Report {
        signatures_checked: opts.public_key.is_some(),
        ..Default::default()
    };
    let place = |at: &At| format!("{}:{}", inputs[at.input].name, at.line);
    let mut chains: BTreeMap<ChainId, Vec<Record>> = BTreeMap::new();
    let mut seals: BTreeMap<ChainId, Vec<(At, Checkpoint)>> = BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        if kind_of(&input.name) != Kind::Records {
            continue;
        }
        let mut last_seq: HashMap<ChainId, u64> = HashMap::new();
        for (n, line) in input.text.lines().enumerate() {
            let at = At {
                input: i,
                line: n + 1,
            };
            if line.trim().is_empty() {
                continue;
            }
            let map = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(m)) => m,
                _ if looks_like_a_record(line) => {
                    report
                        .problems
                        .push(format!("{}: not valid JSON: edited or torn", place(&at)));
                    continue;
                }
                _ => {
                    report.other_lines.push(place(&at));
                    continue;
                }
            };
            let value = Value::Object(map);
            if let Some(cp) = Checkpoint::of(&value) {
                match cp {
                    Ok(c) => seals
                        .entry((c.source.clone(), c.run.clone()))
                        .or_default()
                        .push((at, c)),
                    Err(e) => report.problems.push(format!("{}: {e}: edited", place(&at))),
                }
                continue;
            }
            let Value::Object(map) = value else { continue };
            if map.contains_key("audit_anchor") {
                // The unsigned head line of earlier versions: not a record.
                continue;
            }
            let (Some(seq), Some(prev_hash), Some(hash)) = (
                map.get("seq").and_then(Value::as_u64),
                str_of(&map, "prev_hash"),
                str_of(&map, "hash"),
            ) else {
                if looks_like_a_record(line) {
                    report.problems.push(format!(
                        "{}: lacks seq, prev_hash or hash: edited",
                        place(&at)
                    ));
                } else {
                    report.other_lines.push(place(&at));
                }
                continue;
            };
            let id = (
                str_of(&map, "source").unwrap_or_default().to_owned(),
                str_of(&map, "run").unwrap_or_default().to_owned(),
            );
            let last = last_seq.entry(id.clone()).or_insert(0);
            if seq < *last {
                report.out_of_order += 1;
            }
            *last = seq;
            chains.entry(id).or_default().push(Record {
                at,
                seq,
                hash: hash.to_owned(),
                prev_hash: prev_hash.to_owned(),
                map,
            });
        }
    }

    // Each chain on its own.
    let mut heads: BTreeMap<ChainId, (u64, u64, String)> = BTreeMap::new();
    let mut links: Vec<Link> = Vec::new();
    for (id, records) in &mut chains {
        records.sort_by_key(|r| (r.seq, r.at.input, r.at.line));
        let name = chain_name(id);
        let mut out = ChainReport {
            source: id.0.clone(),
            run: id.1.clone(),
            ..Default::default()
        };
        let mut kept: Vec<usize> = Vec::new();
        let mut broken = false;
        for (i, r) in records.iter().enumerate() {
            if let Some(&j) = kept.last() {
                let p = &records[j];
                if p.seq == r.seq {
                    if p.hash == r.hash && p.map == r.map && p.at.input != r.at.input {
                        report.duplicates += 1;
                    } else if p.hash == r.hash && p.map == r.map {
                        report.problems.push(format!(
                            "{}: {name}: seq {} appears again (first at {}): replayed",
                            place(&r.at),
                            r.seq,
                            place(&p.at)
                        ));
                        broken = true;
                    } else {
                        report.problems.push(format!(
                            "{}: {name}: a second, different record claims seq {} (the other at {}): edited or inserted",
                            place(&r.at),
                            r.seq,
                            place(&p.at)
                        ));
                        broken = true;
                    }
                    continue;
                }
            }
            kept.push(i);
        }
        for (k, &i) in kept.iter().enumerate() {
            let r = &records[i];
            if broken {
                break;
            }
            if hash_of(&r.map) != r.hash {
                report.problems.push(format!(
                    "{}: {name}: seq {}: its content does not match its hash: edited",
                    place(&r.at),
                    r.seq
                ));
                break;
            }
            if k == 0 {
                out.first_seq = r.seq;
                let started = str_of(&r.map, "stage") == Some("run_started");
                if started {
                    let link = r.map.get("prev_run").and_then(Value::as_object).map(|p| {
                        (
                            str_of(p, "run").unwrap_or_default().to_owned(),
                            p.get("seq").and_then(Value::as_u64).unwrap_or(0),
                            str_of(p, "hash").unwrap_or_default().to_owned(),
                        )
                    });
                    if link.is_none() && r.prev_hash != GENESIS {
                        report.problems.push(format!(
                            "{}: {name}: its run_started record names no previous run but does not start from the genesis hash: edited",
                            place(&r.at)
                        ));
                        broken = true;
                    }
                    if let Some((_, _, hash)) = &link
                        && *hash != r.prev_hash
                    {
                        report.problems.push(format!(
                            "{}: {name}: its prev_hash is not the head of the run it names: edited",
                            place(&r.at)
                        ));
                        broken = true;
                    }
                    links.push((id.clone(), r.at.clone(), link));
                } else if r.seq == 1 && r.prev_hash == GENESIS {
                    // A chain of records written before runs had names.
                } else {
                    out.starts_mid_way = true;
                    links.push((id.clone(), r.at.clone(), None));
                }
                continue;
            }
            let p = &records[kept[k - 1]];
            let expected = p.seq.saturating_add(1);
            if r.seq != expected {
                report.problems.push(format!(
                    "{}: {name}: expected seq {expected}, found seq {}; records missing: deleted",
                    place(&r.at),
                    r.seq
                ));
                break;
            }
            if r.prev_hash != p.hash {
                report.problems.push(format!(
                    "{}: {name}: seq {}: prev_hash does not match seq {}'s hash: edited or reordered",
                    place(&r.at),
                    r.seq,
                    p.seq
                ));
                break;
            }
            if str_of(&p.map, "stage") == Some("run_ended") {
                report.problems.push(format!(
                    "{}: {name}: seq {} follows the run's run_ended record: inserted",
                    place(&r.at),
                    r.seq
                ));
                break;
            }
        }
        let last = kept.last().map(|&i| &records[i]);
        out.records = kept.len() as u64;
        out.last_seq = last.map_or(0, |r| r.seq);
        let ended_record = last.is_some_and(|r| str_of(&r.map, "stage") == Some("run_ended"));
        if let Some(r) = last {
            heads.insert(id.clone(), (out.first_seq, r.seq, r.hash.clone()));
        }
        // Checkpoints of this chain.
        let by_seq: HashMap<u64, &Record> = kept
            .iter()
            .map(|&i| (records[i].seq, &records[i]))
            .collect();
        if let Some(cps) = seals.get_mut(id) {
            check_seals(
                &name,
                cps,
                &by_seq,
                out.last_seq,
                opts.public_key,
                &place,
                &mut report,
                &mut out,
            );
        }
        out.ended = ended_record && out.sealed_through == Some(out.last_seq) && out.unsealed == 0;
        report.records += out.records;
        report.chains.push(out);
    }
    // Checkpoints of runs none of whose records are here: dropped.
    for (id, cps) in &mut seals {
        if chains.contains_key(id) {
            continue;
        }
        let name = chain_name(id);
        report.checkpoints += cps.len() as u64;
        let valid: Vec<&(At, Checkpoint)> = cps
            .iter()
            .filter(|(_, c)| opts.public_key.is_none_or(|k| k.verifies(c)))
            .collect();
        match valid.iter().max_by_key(|(_, c)| c.seq) {
            Some((at, c)) => report.problems.push(format!(
                "{}: {name}: a checkpoint seals seq {}..{} of this run, and none of its records are here: a run dropped",
                place(at),
                c.first_seq,
                c.seq
            )),
            None => {
                if let Some((at, _)) = cps.first() {
                    report.problems.push(format!(
                        "{}: {name}: a checkpoint with a bad signature (forged, or another key)",
                        place(at)
                    ));
                }
            }
        }
    }
    check_links(&links, &heads, &chains, &place, &mut report);
    check_index(inputs, &chains, &heads, &mut report);
    if let Some((seq, hash)) = &opts.anchor {
        let holder = chains
            .values()
            .flat_map(|rs| rs.iter())
            .find(|r| r.seq == *seq);
        match holder {
            Some(r) if r.hash == *hash => {}
            Some(r) => report.problems.push(format!(
                "{}: seq {seq} differs from the anchor {hash}",
                place(&r.at)
            )),
            None => {
                let end = heads.values().map(|(_, s, _)| *s).max().unwrap_or(0);
                report.problems.push(format!(
                    "the anchor seq {seq} is not in the chain, which ends at seq {end}: records cut off the tail"
                ));
            }
        }
    }
    report
}

/// The history index against the records (`audit::history`): each entry
/// is a history record whose hash holds, the same record as the chain's at
/// its seq, under the key its pool and revision make (S3); and, wherever an
/// index is among the inputs (always for S3), every history record of the
/// chains has its entry.
fn check_index(
    inputs: &[Input],
    chains: &BTreeMap<ChainId, Vec<Record>>,
    heads: &BTreeMap<ChainId, (u64, u64, String)>,
    report: &mut Report,
) {
    let mut indexed: std::collections::HashSet<(ChainId, u64)> = Default::default();
    let mut any_index = false;
    let mut s3 = false;
    for input in inputs {
        s3 |= input.name.starts_with("s3://");
        if kind_of(&input.name) != Kind::Index {
            continue;
        }
        any_index = true;
        for (n, line) in input.text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", input.name, n + 1);
            let Some(entry) = super::history::Entry::of_line(line.as_bytes()) else {
                report.problems.push(format!(
                    "{at}: a history index entry that is not a history record whose hash holds: edited"
                ));
                continue;
            };
            report.index_entries += 1;
            if input.name.starts_with("s3://")
                && index_key(&input.name) != Some((&entry.user_pool, &entry.revision))
            {
                report.problems.push(format!(
                    "{at}: the entry is pool {} revision {}, not what its key says: moved",
                    entry.user_pool, entry.revision
                ));
            }
            let id = (entry.source.clone(), entry.run.clone());
            let Some(records) = chains.get(&id) else {
                report.index_unchecked += 1;
                continue;
            };
            // Sorted by seq above: a search, not a scan per entry.
            let at = records.partition_point(|r| r.seq < entry.seq);
            match records.get(at).filter(|r| r.seq == entry.seq) {
                Some(r) if r.hash == entry.hash => {
                    indexed.insert((id, entry.seq));
                }
                Some(r) => report.problems.push(format!(
                    "{at}: the history entry of {} seq {} differs from its record ({}:{}): the index disagrees with the records",
                    chain_name(&id),
                    entry.seq,
                    inputs[r.at.input].name,
                    r.at.line
                )),
                None => {
                    let covered = heads
                        .get(&id)
                        .is_some_and(|(first, last, _)| (*first..=*last).contains(&entry.seq));
                    if covered {
                        report.problems.push(format!(
                            "{at}: the history entry of {} seq {} has no record: the index disagrees with the records",
                            chain_name(&id),
                            entry.seq
                        ));
                    } else {
                        report.index_unchecked += 1;
                    }
                }
            }
        }
    }
    if !any_index && !s3 {
        return;
    }
    for (id, records) in chains {
        // A run that did not end may have been killed between the records
        // of its last writes and their index: its unsealed tail is noted.
        let tail_from = report
            .chains
            .iter()
            .find(|c| (&c.source, &c.run) == (&id.0, &id.1) && !c.ended)
            .map(|c| c.sealed_through.map_or(0, |s| s.saturating_add(1)));
        for r in records {
            if super::history::is_history_record(&r.map)
                && str_of(&r.map, "stage") == Some("completed")
                && !indexed.contains(&(id.clone(), r.seq))
            {
                if tail_from.is_some_and(|from| r.seq >= from) {
                    report.index_missing_in_tail += 1;
                    continue;
                }
                report.problems.push(format!(
                    "{}:{}: {}: seq {} changed pool {}'s MFA configuration and has no history index entry: the index disagrees with the records",
                    inputs[r.at.input].name,
                    r.at.line,
                    chain_name(id),
                    r.seq,
                    str_of(&r.map, "user_pool").unwrap_or_default()
                ));
            }
        }
    }
}

fn chain_name((source, run): &ChainId) -> String {
    if source.is_empty() && run.is_empty() {
        "chain (unnamed)".to_owned()
    } else {
        format!("chain {source}/{run}")
    }
}

/// A chain's checkpoints: each signed (with a key), naming the one before,
/// sealing a record that is here with the hash it names.
#[allow(clippy::too_many_arguments)]
fn check_seals(
    name: &str,
    cps: &mut Vec<(At, Checkpoint)>,
    by_seq: &HashMap<u64, &Record>,
    last_seq: u64,
    key: Option<&PublicKey>,
    place: &dyn Fn(&At) -> String,
    report: &mut Report,
    out: &mut ChainReport,
) {
    // Identical copies (several sinks, several collectors) count once.
    // A digest serializes and hashes: once each, not once per comparison.
    cps.sort_by_cached_key(|a| (a.1.seq, a.1.digest()));
    cps.dedup_by(|a, b| a.1 == b.1);
    report.checkpoints += cps.len() as u64;
    let mut prev: Option<&Checkpoint> = None;
    let mut sealed: Option<u64> = None;
    let mut ended = false;
    for (at, c) in cps.iter() {
        if let Some(k) = key
            && !k.verifies(c)
        {
            report.problems.push(format!(
                "{}: {name}: the checkpoint of seq {} does not verify under the public key: forged, edited, or signed by another key",
                place(at),
                c.seq
            ));
            return;
        }
        let expected_prev = prev.map(Checkpoint::digest);
        if c.prev != expected_prev {
            report.problems.push(format!(
                "{}: {name}: the checkpoint of seq {} does not name the one before it: a checkpoint is missing",
                place(at),
                c.seq
            ));
            return;
        }
        match by_seq.get(&c.seq) {
            Some(r) if r.hash == c.hash => {}
            Some(r) => {
                report.problems.push(format!(
                    "{}: {name}: seq {} differs from its checkpoint: rewritten (and re-chained)",
                    place(&r.at),
                    c.seq
                ));
                return;
            }
            None if c.seq > last_seq => {
                report.problems.push(format!(
                    "{}: {name}: sealed through seq {}, but its records end at seq {last_seq}: records cut off the tail",
                    place(at),
                    c.seq
                ));
                return;
            }
            None => {
                report.problems.push(format!(
                    "{}: {name}: seq {} is sealed but not here: deleted",
                    place(at),
                    c.seq
                ));
                return;
            }
        }
        sealed = Some(c.seq);
        ended |= c.ended;
        prev = Some(c);
    }
    if ended && sealed.is_some_and(|s| s < last_seq) {
        let s = sealed.unwrap_or(0);
        let after = by_seq.get(&s.saturating_add(1));
        report.problems.push(format!(
            "{}: {name}: records after the run's final checkpoint (seq {s}): inserted",
            after.map_or_else(|| "?".to_owned(), |r| place(&r.at))
        ));
    }
    out.sealed_through = sealed;
    out.unsealed = last_seq.saturating_sub(sealed.unwrap_or(out.first_seq.saturating_sub(1)));
}

/// Runs link to their predecessors: a run's first record names the run
/// before it and that run's head. A named run that is here must end with
/// that head; one that is not here is a missing run, unless it is the
/// oldest of its source (the inputs begin there).
fn check_links(
    links: &[Link],
    heads: &BTreeMap<ChainId, (u64, u64, String)>,
    chains: &BTreeMap<ChainId, Vec<Record>>,
    place: &dyn Fn(&At) -> String,
    report: &mut Report,
) {
    // Per source, the runs whose predecessor is not here: (first seq, at, name).
    let mut roots: BTreeMap<&str, Vec<(u64, &At, String)>> = BTreeMap::new();
    for (id, at, link) in links {
        let first = heads.get(id).map_or(0, |h| h.0);
        let Some((run, seq, hash)) = link else {
            // No predecessor named: a new chain (a stdout-only sink knows
            // none), or one that starts mid-way.
            if chains.get(id).is_some_and(|rs| {
                rs.first()
                    .is_some_and(|r| str_of(&r.map, "stage") != Some("run_started"))
            }) {
                roots.entry(id.0.as_str()).or_default().push((
                    first,
                    at,
                    "its earlier records".to_owned(),
                ));
            }
            continue;
        };
        let prev_id = (id.0.clone(), run.clone());
        match heads.get(&prev_id) {
            Some((_, last, head)) if last == seq && head == hash => {}
            Some((_, last, _)) if last > seq => report.problems.push(format!(
                "{}: {}: the run it follows, {run}, has records past seq {seq}, where this run says it ended: inserted or forked",
                place(at),
                chain_name(id)
            )),
            Some((_, last, _)) => report.problems.push(format!(
                "{}: {}: the run it follows, {run}, ends at seq {last} here, not at seq {seq} with the hash this run names: cut off or rewritten",
                place(at),
                chain_name(id)
            )),
            None => roots
                .entry(id.0.as_str())
                .or_default()
                .push((first, at, format!("run {run}"))),
        }
    }
    for (source, mut rs) in roots {
        rs.sort_by_key(|r| r.0);
        // The oldest may begin where the inputs begin; any other is a gap.
        for (_, at, what) in rs.iter().skip(1) {
            report.problems.push(format!(
                "{}: source {source}: {what}, which this run follows, is not here: a run is missing",
                place(at)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{Fields, Unsealed};
    use crate::audit::seal::{Sealer, Signer};

    /// A run of `n` call records after its run_started record, sealed at
    /// its start and at `every`, ended when asked; returns its lines.
    fn run(
        source: &str,
        run: &str,
        prev: Option<(&str, u64, &str)>,
        start_seq: u64,
        n: u64,
        signer: Option<Signer>,
        ended: bool,
    ) -> (Vec<String>, (u64, String)) {
        let mut sealer = Sealer::new(
            source.into(),
            run.into(),
            signer.map(|s| Box::new(s) as Box<dyn crate::audit::seal::CheckpointSigner>),
        );
        let mut lines = Vec::new();
        let mut head = (
            start_seq - 1,
            prev.map_or(GENESIS.to_owned(), |p| p.2.to_owned()),
        );
        let add = |stage: &str, extra: Option<Value>, head: &mut (u64, String)| {
            let mut f = Fields::default();
            f.put("source", source);
            f.put("run", run);
            f.put("stage", stage);
            if let Some(e) = &extra {
                f.put("prev_run", e);
            }
            f.put("n", &head.0);
            let seq = head.0 + 1;
            let (line, hash) = Unsealed::from_fields(f).seal(seq, &head.1);
            *head = (seq, hash);
            String::from_utf8(line)
                .unwrap_or_default()
                .trim_end()
                .to_owned()
        };
        let link = prev.map(|(r, s, h)| serde_json::json!({"run": r, "seq": s, "hash": h}));
        lines.push(add(
            "run_started",
            Some(link.unwrap_or(Value::Null)),
            &mut head,
        ));
        sealer.first_seq = head.0;
        let mut seal = |head: &(u64, String), ended: bool| {
            let line = sealer
                .checkpoint(head.0, &head.1, ended)
                .unwrap_or_default();
            String::from_utf8(line)
                .unwrap_or_default()
                .trim_end()
                .to_owned()
        };
        lines.push(seal(&head, false));
        for i in 0..n {
            lines.push(add("completed", None, &mut head));
            if i % 3 == 2 {
                lines.push(seal(&head, false));
            }
        }
        if ended {
            lines.push(add("run_ended", None, &mut head));
            lines.push(seal(&head, true));
        }
        (lines, head)
    }

    fn input(name: &str, lines: &[String]) -> Input {
        Input {
            name: name.into(),
            text: lines.join("\n") + "\n",
        }
    }

    #[test]
    fn runs_in_any_order_verify_and_each_says_how_it_ended() {
        let (a, head) = run("web-0", "r1", None, 1, 7, None, true);
        let (b, _) = run(
            "web-0",
            "r2",
            Some(("r1", head.0, &head.1)),
            head.0 + 1,
            4,
            None,
            false,
        );
        let (c, _) = run("web-1", "r9", None, 1, 2, None, true);
        let mut all: Vec<String> = a.iter().chain(&b).chain(&c).cloned().collect();
        all.reverse();
        let r = verify(&[input("mixed", &all)], &Options::default());
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.chains.len(), 3);
        let r2 = r.chains.iter().find(|c| c.run == "r2").expect("r2");
        assert!(!r2.ended);
        assert!(r.chains.iter().filter(|c| c.ended).count() == 2);
        assert!(!r.sealed_and_ended());
    }
}
