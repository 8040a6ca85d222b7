//! Bounded text: what the service echoes back (error messages, audit
//! fields) is cut to a named size, and says that it was.

/// `s` if it fits in `max` bytes, else its longest prefix (on a character
/// boundary) that leaves room for a marker naming the original length.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(cut_with(
        s,
        max,
        &format!("…[truncated: {} bytes]", s.len()),
    ))
}

/// The longest prefix of `s` (on a character boundary) that leaves room
/// in `max` bytes for `marker`, then `marker`.
pub fn cut_with(s: &str, max: usize, marker: &str) -> String {
    let mut cut = max.saturating_sub(marker.len()).min(s.len());
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{marker}", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = truncate(&long, 100);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.ends_with("…[truncated: 2000 bytes]"), "{cut}");
        assert!(
            truncate(&long, 3).len() <= 30,
            "a tiny budget still terminates"
        );
    }
}
