//! JSON strings on the hot paths (audit records' fields, log lines): most
//! values have nothing to escape, which is found a block at a time, and
//! they are then copied whole.

/// Whether `s` holds a byte a JSON string must escape: `"`, `\` or a
/// control character (what serde_json escapes; it leaves DEL and non-ASCII
/// as they are). Eight bytes at a time: a word has a byte below 0x20, or
/// equal to `"` or `\`, exactly when these bit tricks say so (a borrow can
/// mark a byte above a true find, never a word without one).
pub fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let zero = |w: u64| below(w, 1);
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_ne_bytes(bytes);
        if below(w, 0x20)
            || zero(w ^ (ONES * u64::from(b'"')))
            || zero(w ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends `s` as a JSON string, exactly as serde_json writes it.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    push_unescaped(out, s);
}

/// Appends `s` between quotes as it is: for a string known to hold
/// nothing JSON escapes ([`needs_escape`] false).
pub fn push_unescaped(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let long = "x".repeat(40) + "\"" + &"y".repeat(20);
        for s in [
            "",
            "plain",
            "é and ü",
            "a\"b",
            "back\\slash",
            "nl\n",
            "\u{1}",
            "\u{7f}del",
            "sixteen bytes ok",
            "sixteen bytes \"!",
            "eight\tb!",
            "\u{1f}\u{20}\u{7f}\u{80}\u{ff}",
            "ÿÿÿÿÿÿÿÿ\\",
            long.as_str(),
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
            assert_eq!(
                needs_escape(s.as_bytes()),
                s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
                "{s:?}"
            );
        }
    }
}
