//! Every record is bounded, whatever the caller sent: a string longer than
//! [`MAX_STRING_BYTES`] keeps its head and says how long it was and what
//! its SHA-256 was; an array keeps [`MAX_ARRAY_ITEMS`] items and counts the
//! rest; and a record still over [`MAX_RECORD_BYTES`] has its largest
//! fields replaced by a marker with their size and hash
//! ([`super::chain::Fields::shrink_to`]). Secrets are redacted before any
//! of this, so a hash is never of a secret.

use std::borrow::Cow;

use serde_json::Value;

/// The most bytes of one string in a record (an email MFA message of
/// 20,000 characters is kept whole up to this).
pub const MAX_STRING_BYTES: usize = 16 * 1024;
/// The most items of one array in a record (the longest valid array is
/// an `update_mask` of a few dozen paths).
pub const MAX_ARRAY_ITEMS: usize = 256;
/// The most bytes of one record, its newline included (DESIGN.md §5).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The most bytes of a record written to stdout, its newline included:
/// container runtimes (containerd, CRI-O) split a line at 16 KiB, and a
/// collector would then gather a record in two pieces.
pub const MAX_STDOUT_RECORD_BYTES: usize = 16 * 1024 - 1;
/// Room kept in [`MAX_RECORD_BYTES`] for what the writer adds (`seq`,
/// `prev_hash`, `hash`) and the JSON around the fields.
pub const SEAL_ROOM: usize = 512;

/// The first 16 hex digits of the SHA-256 of `bytes`.
pub fn short_hash(bytes: &[u8]) -> String {
    crate::hash::hex(&crate::hash::sha256(bytes)[..8])
}

/// `s` as a record holds it: whole, or cut with what it was.
pub fn text(s: &str) -> Cow<'_, str> {
    text_within(s, MAX_STRING_BYTES)
}

fn text_within(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let marker = format!(
        "…[truncated: {} bytes, sha256 {}]",
        s.len(),
        short_hash(s.as_bytes())
    );
    Cow::Owned(crate::domain::text::cut_with(s, max, &marker))
}

/// Bounds every string and array of `v`, at every depth.
pub fn value(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(cut) = text(s) {
                *s = cut;
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_ARRAY_ITEMS {
                let dropped = items.len() - MAX_ARRAY_ITEMS;
                items.truncate(MAX_ARRAY_ITEMS);
                items.push(Value::String(format!("…[{dropped} more items]")));
            }
            items.iter_mut().for_each(value);
        }
        Value::Object(m) => m.values_mut().for_each(value),
        _ => {}
    }
}

/// What stands in for a field dropped to keep the record bounded.
pub fn omitted(serialized: &[u8]) -> Value {
    serde_json::json!({
        "omitted": "the record would pass 64 KiB",
        "bytes": serialized.len(),
        "sha256": short_hash(serialized),
    })
}

/// Lines a batch may add besides its records (checkpoints), at most.
pub const MAX_TRAILING_LINES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_and_arrays_are_cut_and_say_what_they_were() {
        let long = "x".repeat(2 * 1024 * 1024);
        let cut = text(&long);
        assert!(cut.len() <= MAX_STRING_BYTES);
        assert!(
            cut.contains("truncated: 2097152 bytes, sha256 "),
            "{}",
            &cut[cut.len() - 80..]
        );
        // 1000 items, each long enough to be cut itself (2 GiB of copies of
        // `long` made this test take 30 s for nothing the shorter ones miss).
        let item = "y".repeat(MAX_STRING_BYTES + 1);
        let items = vec![serde_json::Value::String(item); 1000];
        let mut v = serde_json::json!({"a": items, "b": {"c": long}});
        value(&mut v);
        let n = v["a"].as_array().map_or(0, Vec::len);
        assert_eq!(n, MAX_ARRAY_ITEMS + 1);
        assert!(
            v["b"]["c"]
                .as_str()
                .is_some_and(|s| s.len() <= MAX_STRING_BYTES)
        );
    }
}
