//! The hash chain: each record carries `seq`, `prev_hash` and `hash`, the
//! SHA-256 of its canonical form (every field but `hash`, keys sorted at
//! every depth, no spaces). `verify` walks files in chain order and names
//! the first record that was edited, deleted or moved.
//!
//! A chain proves what lies between its ends. Cutting off the tail leaves a
//! shorter valid chain: only an outside anchor (the head the service prints
//! to stdout every `anchor_interval_seconds`) catches that, with
//! `audit verify --anchor SEQ:HASH`.

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::{Map, Value};

/// The `prev_hash` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `v` with keys sorted at every depth and no whitespace.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of a record: SHA-256 over its canonical form without `hash`.
pub fn hash_of(record: &Map<String, Value>) -> String {
    let mut without = record.clone();
    without.remove("hash");
    let mut text = String::new();
    canonical(&Value::Object(without), &mut text);
    crate::hash::hex(&crate::hash::sha256(text.as_bytes()))
}

/// A record made ready for the chain by the thread that submits it: its
/// fields serialized once, in canonical order, without `seq`, `prev_hash`
/// and `hash`. The writer, which alone knows the chain's head, then only
/// hashes and copies bytes ([`Unsealed::seal`]): the form it hashes and
/// writes is exactly [`canonical`]'s, so `verify` recomputes the same hash.
pub struct Unsealed {
    /// `"key":value` pieces, keys sorted, each value canonical.
    text: Vec<u8>,
    /// Where each field's piece ends in `text`.
    ends: Vec<usize>,
    /// Before which field `hash`, `prev_hash` and `seq` go.
    slots: [usize; 3],
}

/// The fields the writer adds, in sorted order.
const SEALED: [&str; 3] = ["hash", "prev_hash", "seq"];

/// The fields of a record, added in any order, each serialized as it is
/// added (values through serde_json, whose maps keep keys sorted at every
/// depth: its `preserve_order` feature is off, and a test here fails if a
/// dependency turns it on).
#[derive(Clone, Default)]
pub struct Fields {
    values: Vec<u8>,
    /// Each field's key and where its value lies in `values`.
    spans: Vec<(Cow<'static, str>, usize, usize)>,
}

impl Fields {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            values: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(16),
        }
    }

    /// A copy with room for `bytes` more of values and a few more fields.
    pub fn copy_with_room(&self, bytes: usize) -> Self {
        let mut values = Vec::with_capacity(self.values.len() + bytes);
        values.extend_from_slice(&self.values);
        let mut spans = Vec::with_capacity(self.spans.len() + 8);
        spans.extend_from_slice(&self.spans);
        Self { values, spans }
    }

    /// Adds (or, added again, replaces) a field.
    pub fn put(&mut self, key: impl Into<Cow<'static, str>>, value: &(impl Serialize + ?Sized)) {
        let start = self.values.len();
        // Serializing into a Vec fails only for maps with non-string keys,
        // which records never hold; such a value reads as null.
        if serde_json::to_writer(&mut self.values, value).is_err() {
            self.values.truncate(start);
            self.values.extend_from_slice(b"null");
        }
        self.spans.push((key.into(), start, self.values.len()));
    }
}

impl Fields {
    /// Adds a field whose value is already canonical JSON.
    pub fn put_raw(&mut self, key: &'static str, json: &[u8]) {
        let start = self.values.len();
        self.values.extend_from_slice(json);
        self.spans.push((key.into(), start, self.values.len()));
    }

    /// The bytes the fields take in a record: keys, values, separators.
    pub fn size(&self) -> usize {
        self.spans
            .iter()
            .map(|(k, start, end)| k.len() + 4 + (end - start))
            .sum()
    }

    /// Replaces the largest fields by [`super::bound::omitted`] markers
    /// until the fields take at most `max` bytes.
    pub fn shrink_to(&mut self, max: usize) {
        while self.size() > max {
            let Some(i) = (0..self.spans.len()).max_by_key(|&i| self.spans[i].2 - self.spans[i].1)
            else {
                return;
            };
            let (_, start, end) = self.spans[i].clone();
            let marker = super::bound::omitted(&self.values[start..end]);
            let at = self.values.len();
            let _ = serde_json::to_writer(&mut self.values, &marker);
            if self.values.len() - at >= end - start {
                // Nothing left worth replacing.
                self.values.truncate(at);
                return;
            }
            self.spans[i].1 = at;
            self.spans[i].2 = self.values.len();
        }
    }
}

impl Unsealed {
    /// The bytes of the fields, as the writer will copy them.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Puts the fields in canonical order; fields named like the chain's
    /// own are left out, and of a key added twice the last value counts.
    pub fn from_fields(mut fields: Fields) -> Self {
        // Stable: of equal keys, the last added stays last.
        fields.spans.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = Vec::with_capacity(fields.values.len() + 16 * fields.spans.len());
        let mut ends = Vec::with_capacity(fields.spans.len());
        let mut slots = [usize::MAX; 3];
        let mut spans = fields.spans.iter().peekable();
        while let Some((k, start, end)) = spans.next() {
            if SEALED.contains(&k.as_ref()) || spans.peek().is_some_and(|(next, ..)| next == k) {
                continue;
            }
            for (slot, name) in slots.iter_mut().zip(SEALED) {
                if *slot == usize::MAX && name < k.as_ref() {
                    *slot = ends.len();
                }
            }
            if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                // Record keys are identifiers: nothing to escape.
                text.push(b'"');
                text.extend_from_slice(k.as_bytes());
                text.extend_from_slice(b"\":");
            } else {
                let _ = serde_json::to_writer(&mut text, k.as_ref());
                text.push(b':');
            }
            text.extend_from_slice(&fields.values[*start..*end]);
            ends.push(text.len());
        }
        for slot in &mut slots {
            if *slot == usize::MAX {
                *slot = ends.len();
            }
        }
        Self { text, ends, slots }
    }

    /// The record's canonical form without `hash`, with `seq` and
    /// `prev_hash`, into `out`; returns where in `out` the `hash` field
    /// goes (the start of the field after it: `prev_hash` always follows).
    fn emit(&self, seq: &str, prev_hash: &str, out: &mut Vec<u8>) -> usize {
        let sealed: [Option<[&[u8]; 3]>; 3] = [
            None,
            Some([b"\"prev_hash\":\"", prev_hash.as_bytes(), b"\""]),
            Some([b"\"seq\":", seq.as_bytes(), b""]),
        ];
        out.push(b'{');
        let opened = out.len();
        let mut hash_at = None;
        let field = |out: &mut Vec<u8>, parts: &[&[u8]]| {
            if out.len() > opened {
                out.push(b',');
            }
            for p in parts {
                out.extend_from_slice(p);
            }
        };
        let mut start = 0;
        for i in 0..=self.ends.len() {
            for (k, (slot, piece)) in self.slots.iter().zip(&sealed).enumerate() {
                if *slot != i {
                    continue;
                }
                if k == 0 {
                    // `hash` goes before the next field, whose comma is
                    // still to come: the next field begins after it.
                    hash_at.get_or_insert(out.len() + usize::from(out.len() > opened));
                }
                if let Some(parts) = piece {
                    field(out, parts);
                }
            }
            if let Some(&end) = self.ends.get(i) {
                field(out, &[&self.text[start..end]]);
                start = end;
            }
        }
        out.push(b'}');
        hash_at.unwrap_or(opened)
    }

    /// Seals the record as number `seq` after `prev_hash`: returns its
    /// line (with the newline) and its hash. One pass writes the form that
    /// is hashed; the `hash` field is then put into it where it sorts.
    pub fn seal(&self, seq: u64, prev_hash: &str) -> (Vec<u8>, String) {
        let seq = seq.to_string();
        let mut line = Vec::with_capacity(self.text.len() + 200);
        let at = self.emit(&seq, prev_hash, &mut line);
        let hash = crate::hash::hex(&crate::hash::sha256(&line));
        let mut piece = Vec::with_capacity(hash.len() + 10);
        piece.extend_from_slice(b"\"hash\":\"");
        piece.extend_from_slice(hash.as_bytes());
        piece.extend_from_slice(b"\",");
        line.splice(at..at, piece);
        line.push(b'\n');
        (line, hash)
    }
}

/// The end of a chain: the last record's seq and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.into(),
        }
    }
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub files: usize,
    pub first_seq: u64,
    pub head: Head,
    /// The chain does not start at seq 1: earlier files were not given.
    pub starts_mid_chain: bool,
}

/// The first bad record, and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

struct Line {
    file: PathBuf,
    line: usize,
    record: Result<Map<String, Value>, String>,
}

fn seq_of(r: &Map<String, Value>) -> Option<u64> {
    r.get("seq").and_then(Value::as_u64)
}

fn read(path: &Path) -> Result<Vec<Line>, Broken> {
    let text = std::fs::read_to_string(path).map_err(|e| Broken {
        file: path.to_owned(),
        line: 0,
        reason: format!("cannot read: {e}"),
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| Line {
            file: path.to_owned(),
            line: i + 1,
            record: match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Err("not a JSON object".into()),
                Err(e) => Err(format!("not valid JSON ({e})")),
            },
        })
        .collect())
}

/// Verifies `files` as one chain, in chain order whatever the order given
/// (files are ordered by their first record's seq). `anchor`, when given,
/// is a (seq, hash) published outside the files: the chain must hold it.
pub fn verify(files: &[PathBuf], anchor: Option<&Head>) -> Result<Verified, Broken> {
    let mut per_file = Vec::new();
    for f in files {
        let lines = read(f)?;
        let first = lines
            .iter()
            .find_map(|l| l.record.as_ref().ok().and_then(seq_of))
            .unwrap_or(u64::MAX);
        per_file.push((first, f.clone(), lines));
    }
    per_file.sort_by_key(|(first, _, _)| *first);
    let lines: Vec<Line> = per_file.into_iter().flat_map(|(_, _, l)| l).collect();
    let Some(first) = lines.first() else {
        return Err(Broken {
            file: files.first().cloned().unwrap_or_default(),
            line: 0,
            reason: "no records".into(),
        });
    };
    let broken = |l: &Line, reason: String| Broken {
        file: l.file.clone(),
        line: l.line,
        reason,
    };
    let mut prev: Option<Head> = None;
    let mut first_seq = 0;
    let mut starts_mid_chain = false;
    let mut anchor_seen = anchor.is_none();
    for (i, l) in lines.iter().enumerate() {
        let record = l
            .record
            .as_ref()
            .map_err(|e| broken(l, format!("{e}: edited or torn")))?;
        let (Some(seq), Some(prev_hash), Some(hash)) = (
            seq_of(record),
            record.get("prev_hash").and_then(Value::as_str),
            record.get("hash").and_then(Value::as_str),
        ) else {
            return Err(broken(l, "lacks seq, prev_hash or hash: edited".into()));
        };
        let computed = hash_of(record);
        if computed != hash {
            return Err(broken(
                l,
                format!("seq {seq}: its content does not match its hash: edited"),
            ));
        }
        match &prev {
            None => {
                first_seq = seq;
                if seq == 1 && prev_hash != GENESIS {
                    return Err(broken(
                        l,
                        "seq 1 does not start from the genesis hash".into(),
                    ));
                }
                starts_mid_chain = seq != 1;
                let _ = first;
            }
            Some(p) => {
                let Some(expected) = p.seq.checked_add(1) else {
                    return Err(broken(
                        l,
                        format!("a record follows seq {}, the last a chain can hold", p.seq),
                    ));
                };
                if seq != expected {
                    // Is the expected record elsewhere? Then it was moved.
                    let moved = lines[i.saturating_add(1)..]
                        .iter()
                        .any(|x| x.record.as_ref().ok().and_then(seq_of) == Some(expected));
                    let what = if moved {
                        "records out of order: reordered"
                    } else if seq > expected {
                        "records missing: deleted"
                    } else {
                        "a record repeats or goes back: reordered"
                    };
                    return Err(broken(
                        l,
                        format!("expected seq {expected}, found seq {seq}; {what}"),
                    ));
                }
                if prev_hash != p.hash {
                    return Err(broken(
                        l,
                        format!("seq {seq}: prev_hash does not match seq {}'s hash", p.seq),
                    ));
                }
            }
        }
        if let Some(a) = anchor
            && a.seq == seq
        {
            if a.hash != hash {
                return Err(broken(
                    l,
                    format!("seq {seq} differs from the anchor {}", a.hash),
                ));
            }
            anchor_seen = true;
        }
        prev = Some(Head {
            seq,
            hash: hash.to_owned(),
        });
    }
    let head = prev.unwrap_or_else(Head::genesis);
    if !anchor_seen && let Some(a) = anchor {
        let last = lines.last().unwrap_or(first);
        return Err(broken(
            last,
            format!(
                "the anchor seq {} is not in the chain, which ends at seq {}: records cut off the tail",
                a.seq, head.seq
            ),
        ));
    }
    Ok(Verified {
        records: lines.len() as u64,
        files: files.len(),
        first_seq,
        head,
        starts_mid_chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The reference the writer's [`Unsealed::seal`] must agree with: a
    /// record sealed as a map, hashed by `hash_of` as `verify` does.
    fn seal(record: &mut Map<String, Value>, seq: u64, prev_hash: &str) -> String {
        record.insert("seq".into(), Value::from(seq));
        record.insert("prev_hash".into(), Value::from(prev_hash));
        record.remove("hash");
        let hash = hash_of(record);
        record.insert("hash".into(), Value::from(hash.clone()));
        hash
    }

    /// A map's fields, as a caller would add them.
    fn unsealed(record: &Map<String, Value>) -> Unsealed {
        let mut fields = Fields::default();
        for (k, v) in record {
            fields.put(k.clone(), v);
        }
        Unsealed::from_fields(fields)
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let mut s = String::new();
        canonical(
            &json!({"b": 1, "a": {"d": [1, {"z": null, "y": "é"}], "c": true}}),
            &mut s,
        );
        assert_eq!(s, r#"{"a":{"c":true,"d":[1,{"y":"é","z":null}]},"b":1}"#);
    }

    #[test]
    fn unsealed_records_seal_to_the_canonical_form_verify_recomputes() {
        for (i, record) in [
            json!({}),
            json!({"a": 1}),
            json!({"zz": "last"}),
            json!({"call_id": "c", "id": "i", "principal": "p", "request": {"b": [1, {"y": "é\"\n", "x": null}], "a": true},
                   "stage": "completed", "time": "t", "latency_us": 12, "after": {"k": 1.5}}),
            json!({"seq": 99, "hash": "stale", "prev_hash": "stale", "m": "fields named like the chain's own are replaced"}),
            json!({"target_user": null, "time": "t", "user_pool": "us-east-1_x", "id": "i", "stage": "received"}),
        ]
        .into_iter()
        .enumerate()
        {
            let map = record.as_object().cloned().unwrap_or_default();
            let seq = 7 + i as u64;
            let (line, hash) = unsealed(&map).seal(seq, GENESIS);
            let line = String::from_utf8(line).unwrap_or_default();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let mut sealed = map.clone();
            assert_eq!(seal(&mut sealed, seq, GENESIS), hash, "record {i}");
            let mut expected = String::new();
            canonical(&Value::Object(sealed.clone()), &mut expected);
            assert_eq!(line.trim_end(), expected, "record {i}");
            let parsed: Value = serde_json::from_str(&line).unwrap_or_default();
            assert_eq!(parsed, Value::Object(sealed));
        }
    }

    #[test]
    fn fields_in_any_order_seal_like_their_map() {
        let mut fields = Fields::default();
        fields.put("stage", "received");
        fields.put("request", &json!({"z": 1, "a": [true, null]}));
        fields.put(String::from("after"), &Some(1.5));
        fields.put("stage", "completed");
        fields.put("seq", &5);
        let map =
            json!({"after": 1.5, "request": {"a": [true, null], "z": 1}, "stage": "completed"});
        let map = map.as_object().cloned().unwrap_or_default();
        assert_eq!(
            Unsealed::from_fields(fields).seal(3, GENESIS),
            unsealed(&map).seal(3, GENESIS)
        );
    }

    #[test]
    fn sealing_chains_records() {
        let mut a = json!({"x": 1}).as_object().cloned().unwrap_or_default();
        let h1 = seal(&mut a, 1, GENESIS);
        assert_eq!(hash_of(&a), h1);
        let mut b = json!({"x": 2}).as_object().cloned().unwrap_or_default();
        seal(&mut b, 2, &h1);
        assert_eq!(b["prev_hash"], json!(h1));
        a.insert("x".into(), json!(3));
        assert_ne!(hash_of(&a), h1, "an edit changes the hash");
    }
}
