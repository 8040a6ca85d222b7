//! The hash chain: each record carries `seq`, `prev_hash` and `hash`, the
//! SHA-256 of its canonical form (every field but `hash`, keys sorted at
//! every depth, no spaces). `verify.rs` checks chains; `seal.rs` signs
//! their heads.
//!
//! A chain proves what lies between its ends, and only to someone who
//! trusts whoever could rewrite it whole: a signed checkpoint of its head
//! (`seal`) is what makes an edit, a cut tail or a dropped run show.

use std::borrow::Cow;

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
    /// `"key":value,` pieces (each with its comma), keys sorted, each
    /// value canonical.
    text: Vec<u8>,
    /// Where in `text` `hash`, `prev_hash` and `seq` go: each at the start
    /// of a piece, or at the end.
    cuts: [usize; 3],
}

/// The fields the writer adds, in sorted order.
const SEALED: [&str; 3] = ["hash", "prev_hash", "seq"];

/// A key's first eight bytes, big-endian, zero-padded: keys whose prefixes
/// differ are ordered as their prefixes are.
fn prefix(key: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// Orders keys with their [`prefix`]es: byte order, as `str`'s.
fn by_key(a: (u64, &str), b: (u64, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// A field name the code writes: an identifier, its `"name":` piece made
/// at compile time by [`key!`], so nothing is checked or escaped per call.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub piece: &'static str,
}

/// The [`Key`] of a field name (an identifier, by the macro's grammar).
macro_rules! key {
    ($name:ident) => {
        $crate::audit::chain::Key {
            name: stringify!($name),
            piece: concat!("\"", stringify!($name), "\":"),
        }
    };
}
pub(crate) use key;

/// The fields of a record, added in any order, each written as it is
/// added as its `"key":value` piece (values through serde_json, whose maps
/// keep keys sorted at every depth: its `preserve_order` feature is off,
/// and a test here fails if a dependency turns it on).
#[derive(Clone, Default)]
pub struct Fields {
    pieces: Vec<u8>,
    spans: Vec<Span>,
}

/// Where one field lies in [`Fields::pieces`], and its key.
#[derive(Clone)]
struct Span {
    /// The key's [`prefix`], for sorting.
    prefix: u64,
    key: Cow<'static, str>,
    /// The piece's start; its value's start; its end.
    start: usize,
    value: usize,
    end: usize,
}

impl Span {
    fn key(&self) -> (u64, &str) {
        (self.prefix, &self.key)
    }
}

impl Fields {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            pieces: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(12),
        }
    }

    /// Adds every field of `other`, after these.
    pub fn extend(&mut self, other: &Fields) {
        let offset = self.pieces.len();
        self.pieces.extend_from_slice(&other.pieces);
        self.spans.extend(other.spans.iter().map(|s| Span {
            start: s.start + offset,
            value: s.value + offset,
            end: s.end + offset,
            ..s.clone()
        }));
    }

    /// Writes `"key":` and returns where the piece and its value start.
    fn open(&mut self, key: &str) -> (usize, usize) {
        let start = self.pieces.len();
        if is_identifier(key) {
            // Record keys are identifiers: nothing to escape.
            self.pieces.push(b'"');
            self.pieces.extend_from_slice(key.as_bytes());
            self.pieces.extend_from_slice(b"\":");
        } else {
            crate::json::push_str(&mut self.pieces, key);
            self.pieces.push(b':');
        }
        (start, self.pieces.len())
    }

    fn close(&mut self, key: Cow<'static, str>, (start, value): (usize, usize)) {
        self.spans.push(Span {
            prefix: prefix(&key),
            key,
            start,
            value,
            end: self.pieces.len(),
        });
    }

    /// Writes a [`Key`]'s `"name":`.
    fn open_key(&mut self, key: Key) -> (usize, usize) {
        let start = self.pieces.len();
        self.pieces.extend_from_slice(key.piece.as_bytes());
        (start, self.pieces.len())
    }

    /// Writes `value` after a piece's key opened at `opened`.
    fn write_value(&mut self, opened: (usize, usize), value: &(impl Serialize + ?Sized)) {
        // Serializing into a Vec fails only for maps with non-string keys,
        // which records never hold; such a value reads as null.
        if serde_json::to_writer(&mut self.pieces, value).is_err() {
            self.pieces.truncate(opened.1);
            self.pieces.extend_from_slice(b"null");
        }
    }

    /// Adds a field the code names: [`Fields::put`] without a look at the key.
    pub fn put_value(&mut self, key: Key, value: &(impl Serialize + ?Sized)) {
        let opened = self.open_key(key);
        self.write_value(opened, value);
        self.close(Cow::Borrowed(key.name), opened);
    }

    /// Adds (or, added again, replaces) a field.
    pub fn put(&mut self, key: impl Into<Cow<'static, str>>, value: &(impl Serialize + ?Sized)) {
        let key = key.into();
        let opened = self.open(&key);
        self.write_value(opened, value);
        self.close(key, opened);
    }

    /// Adds a string field (or null): [`Fields::put`]'s result, without
    /// serde's byte-at-a-time escaping when there is nothing to escape.
    pub fn put_str(&mut self, key: Key, value: Option<&str>) {
        let opened = self.open_key(key);
        match value {
            Some(s) => crate::json::push_str(&mut self.pieces, s),
            None => self.pieces.extend_from_slice(b"null"),
        }
        self.close(Cow::Borrowed(key.name), opened);
    }

    /// Adds a string field whose value the code made of characters a JSON
    /// string holds as they are (hex, digits, a static name, an address):
    /// [`Fields::put_str`] without the look for something to escape.
    pub fn put_plain(&mut self, key: Key, value: &str) {
        debug_assert!(
            !crate::json::needs_escape(value.as_bytes()),
            "{value:?} is not plain"
        );
        let opened = self.open_key(key);
        crate::json::push_unescaped(&mut self.pieces, value);
        self.close(Cow::Borrowed(key.name), opened);
    }

    /// Adds a field whose value is already canonical JSON.
    pub fn put_raw(&mut self, key: Key, json: &[u8]) {
        let opened = self.open_key(key);
        self.pieces.extend_from_slice(json);
        self.close(Cow::Borrowed(key.name), opened);
    }

    /// The bytes the fields take in a record: keys, values, separators.
    pub fn size(&self) -> usize {
        self.spans.iter().map(|s| s.end - s.start + 1).sum()
    }

    /// Replaces the largest fields by [`super::bound::omitted`] markers
    /// until the fields take at most `max` bytes.
    pub fn shrink_to(&mut self, max: usize) {
        while self.size() > max {
            let Some(i) =
                (0..self.spans.len()).max_by_key(|&i| self.spans[i].end - self.spans[i].value)
            else {
                return;
            };
            let span = self.spans[i].clone();
            let marker = super::bound::omitted(&self.pieces[span.value..span.end]);
            let at = self.pieces.len();
            let opened = self.open(&span.key);
            let _ = serde_json::to_writer(&mut self.pieces, &marker);
            if self.pieces.len() - opened.1 >= span.end - span.value {
                // Nothing left worth replacing.
                self.pieces.truncate(at);
                return;
            }
            self.spans[i] = Span {
                start: opened.0,
                value: opened.1,
                end: self.pieces.len(),
                ..span
            };
        }
    }
}

fn is_identifier(key: &str) -> bool {
    key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A field of one of several [`Fields`]: the part, the field's index in it.
type Entry = (usize, usize);

/// Every field of `parts`, sorted by key and, among equal keys, in the
/// order added (part by part). Each part is sorted alone — in one pass when
/// its fields were added in key order, as the call's records add them —
/// and the parts are then merged.
fn sorted_entries(parts: &[&Fields]) -> Vec<Entry> {
    let span = |&(part, i): &Entry| &parts[part].spans[i];
    let before = |a: &Entry, b: &Entry| by_key(span(a).key(), span(b).key());
    let mut merged: Vec<Entry> = Vec::with_capacity(parts.iter().map(|f| f.spans.len()).sum());
    for (part, fields) in parts.iter().enumerate() {
        let run_start = merged.len();
        merged.extend((0..fields.spans.len()).map(|i| (part, i)));
        let run = &mut merged[run_start..];
        if !run.is_sorted_by(|a, b| before(a, b).is_le()) {
            // Stable: equal keys keep the order they were added in.
            run.sort_by(before);
        }
        // Nothing to merge: the first part, an empty part, or one that
        // sorts after everything before it.
        if run_start == 0
            || run_start == merged.len()
            || before(&merged[run_start - 1], &merged[run_start]).is_le()
        {
            continue;
        }
        // Merge the two sorted runs; of equal keys, the earlier part's first.
        let (left, right) = merged.split_at(run_start);
        let mut out = Vec::with_capacity(merged.len());
        let (mut l, mut r) = (0, 0);
        while l < left.len() && r < right.len() {
            if before(&right[r], &left[l]).is_lt() {
                out.push(right[r]);
                r += 1;
            } else {
                out.push(left[l]);
                l += 1;
            }
        }
        out.extend_from_slice(&left[l..]);
        out.extend_from_slice(&right[r..]);
        merged = out;
    }
    merged
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
    pub fn from_fields(fields: Fields) -> Self {
        Self::from_parts(&[&fields])
    }

    /// The fields of `parts` as if added in turn to one [`Fields`]: a call's
    /// shared fields and one record's own, without copying them together.
    pub fn from_parts(parts: &[&Fields]) -> Self {
        let order = sorted_entries(parts);
        let span = |&(part, i): &Entry| &parts[part].spans[i];
        let sealed = SEALED.map(|name| (prefix(name), name));
        let bytes: usize = parts.iter().map(|f| f.pieces.len()).sum();
        // Each piece and its comma.
        let mut text = Vec::with_capacity(bytes + order.len());
        let mut cuts = [0; 3];
        // The sealed names are sorted, as `order` is: one walk over both.
        let mut next_sealed = 0;
        for (n, entry) in order.iter().enumerate() {
            let field = span(entry);
            let key = field.key();
            let replaced = order
                .get(n + 1)
                .is_some_and(|next| by_key(span(next).key(), key).is_eq());
            if replaced {
                continue;
            }
            while let Some(&name) = sealed.get(next_sealed)
                && by_key(name, key).is_lt()
            {
                cuts[next_sealed] = text.len();
                next_sealed += 1;
            }
            if sealed
                .get(next_sealed)
                .is_some_and(|&s| by_key(s, key).is_eq())
            {
                continue;
            }
            text.extend_from_slice(&parts[entry.0].pieces[field.start..field.end]);
            text.push(b',');
        }
        for cut in cuts.iter_mut().skip(next_sealed) {
            *cut = text.len();
        }
        Self { text, cuts }
    }

    /// The record's canonical form without `hash`, with `seq` and
    /// `prev_hash`, into `out`; returns where in `out` the `hash` field
    /// goes (the start of the field after it: `prev_hash` always follows).
    fn emit(&self, seq: &str, prev_hash: &str, out: &mut Vec<u8>) -> usize {
        out.push(b'{');
        // Every piece written ends with its comma; the last one is dropped.
        let [hash_cut, prev_cut, seq_cut] = self.cuts;
        out.extend_from_slice(&self.text[..hash_cut]);
        // `hash` goes here once it is known: `prev_hash` always follows it.
        let hash_at = out.len();
        out.extend_from_slice(&self.text[hash_cut..prev_cut]);
        out.extend_from_slice(b"\"prev_hash\":\"");
        out.extend_from_slice(prev_hash.as_bytes());
        out.extend_from_slice(b"\",");
        out.extend_from_slice(&self.text[prev_cut..seq_cut]);
        out.extend_from_slice(b"\"seq\":");
        out.extend_from_slice(seq.as_bytes());
        out.push(b',');
        out.extend_from_slice(&self.text[seq_cut..]);
        out.pop();
        out.push(b'}');
        hash_at
    }

    /// Seals the record as number `seq` after `prev_hash`: returns its
    /// line (with the newline) and its hash. One pass writes the form that
    /// is hashed; the `hash` field is then put into it where it sorts.
    pub fn seal(&self, seq: u64, prev_hash: &str) -> (Vec<u8>, String) {
        const OPEN: &[u8] = b"\"hash\":\"";
        const PIECE: usize = OPEN.len() + 64 + 2;
        let mut digits = itoa::Buffer::new();
        let mut line = Vec::with_capacity(self.text.len() + 200);
        let at = self.emit(digits.format(seq), prev_hash, &mut line);
        let digest = crate::hash::sha256(&line);
        // The `hash` field, put where it sorts: the rest moves up once.
        let len = line.len();
        line.resize(len + PIECE, 0);
        line.copy_within(at..len, at + PIECE);
        let piece = &mut line[at..at + PIECE];
        piece[..OPEN.len()].copy_from_slice(OPEN);
        crate::hash::hex_to_slice(&digest, &mut piece[OPEN.len()..OPEN.len() + 64]);
        piece[OPEN.len() + 64..].copy_from_slice(b"\",");
        // Hex digits: the conversion cannot fail.
        let hash = std::str::from_utf8(&piece[OPEN.len()..OPEN.len() + 64])
            .unwrap_or_default()
            .to_owned();
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

    /// Two parts seal exactly as one `Fields` holding the first part's
    /// fields then the second's: interleaved keys, a key in both (the
    /// second's counts), a key twice in one part, the chain's own names,
    /// keys sharing their first eight bytes, keys before and after every
    /// sealed field, and empty parts.
    #[test]
    fn parts_seal_as_their_fields_added_in_turn() {
        let a: &[(&str, Value)] = &[
            ("call_id", json!("c")),
            ("level", json!("metadata")),
            ("principal", json!("p")),
            ("request_id", json!("r")),
            ("user_pool", json!(null)),
            ("request_idx", json!(1)),
        ];
        let b: &[(&str, Value)] = &[
            ("after", json!({"z": 1, "a": 2})),
            ("id", json!("i")),
            ("principal", json!("replaced")),
            ("prev_hash", json!("stale")),
            ("request", json!([1, "two"])),
            ("stage", json!("completed")),
            ("stage", json!("twice")),
            ("zz", json!(true)),
            ("a", json!(0)),
        ];
        let fields = |parts: &[&[(&str, Value)]]| {
            let mut f = Fields::default();
            for part in parts {
                for (k, v) in *part {
                    f.put(k.to_string(), v);
                }
            }
            f
        };
        for (x, y) in [
            (a, b),
            (b, a),
            (a, &[][..]),
            (&[][..], b),
            (&[][..], &[][..]),
        ] {
            let (fx, fy) = (fields(&[x]), fields(&[y]));
            assert_eq!(
                Unsealed::from_parts(&[&fx, &fy]).seal(5, GENESIS),
                Unsealed::from_fields(fields(&[x, y])).seal(5, GENESIS),
                "{x:?} then {y:?}"
            );
        }
    }

    /// What the code writes with [`Fields::put_plain`] (ids, times, hex,
    /// addresses, static names) is written exactly as `put_str` writes it.
    #[test]
    fn plain_values_are_written_as_strings_are() {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut buf)
            .to_owned();
        for value in [
            id.as_str(),
            &crate::timefmt::now(),
            &crate::hash::hex(&[0xab, 0x01, 0xff]),
            "[2001:db8::1]:443",
            "metadata",
            "",
        ] {
            let (mut plain, mut str) = (Fields::default(), Fields::default());
            plain.put_plain(key!(stage), value);
            str.put_str(key!(stage), Some(value));
            assert_eq!(plain.pieces, str.pieces, "{value:?}");
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
