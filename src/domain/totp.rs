//! RFC 6238 TOTP as Cognito uses it: HMAC-SHA1, 6 digits, 30-second steps.

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;

/// Decodes an RFC 4648 base32 secret leniently, as authenticator apps do:
/// case-insensitive, padding and spaces ignored, trailing bits dropped.
pub fn decode_base32(secret: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(secret.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in secret.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes bytes as unpadded upper-case base32, the form Cognito returns.
pub fn encode_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The code for one time step (HOTP, RFC 4226, with the counter = step).
pub fn code_at_step(key: &[u8], step: u64) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = (u32::from(hash[offset] & 0x7f) << 24)
        | (u32::from(hash[offset + 1]) << 16)
        | (u32::from(hash[offset + 2]) << 8)
        | u32::from(hash[offset + 3]);
    format!("{:06}", binary % 10u32.pow(DIGITS))
}

/// The code an authenticator shows at `unix_seconds`.
pub fn code_at(key: &[u8], unix_seconds: u64) -> String {
    code_at_step(key, unix_seconds / STEP_SECONDS)
}

/// True when `code` matches the step of `unix_seconds` or one step either
/// side (Cognito's ±30 s tolerance). Compared in constant time.
pub fn verify(key: &[u8], code: &str, unix_seconds: u64) -> bool {
    matching_step(key, code, unix_seconds).is_some()
}

/// The time step `code` matches, of the step of `unix_seconds` and one
/// either side (the latest if several do), so that a verifier can refuse a
/// code of a step already used (RFC 6238 §5.2). Every step is compared,
/// in constant time.
pub fn matching_step(key: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    let step = unix_seconds / STEP_SECONDS;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = code_at_step(key, s);
        let ok = expected.len() == code.len()
            && expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if ok {
            found = Some(s);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 key "12345678901234567890", truncated to 6 digits.
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(key, t), code, "t={t}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_skew_only() {
        let key = b"12345678901234567890";
        let now = 1_234_567_890;
        assert!(verify(key, &code_at(key, now), now));
        assert!(verify(key, &code_at(key, now - 30), now));
        assert!(verify(key, &code_at(key, now + 30), now));
        assert!(!verify(key, &code_at(key, now - 90), now));
        assert!(!verify(key, "12345", now));
    }

    #[test]
    fn base32_round_trip_and_lenient_decode() {
        let key = b"12345678901234567890";
        let encoded = encode_base32(key);
        assert_eq!(encoded, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            decode_base32(&encoded.to_lowercase()).as_deref(),
            Some(&key[..])
        );
        // moto's fixed secret is 12 characters, not a whole number of bytes.
        assert_eq!(decode_base32("asdfasdfasdf").map(|k| k.len()), Some(7));
        assert_eq!(decode_base32("not base32!"), None);
    }
}
