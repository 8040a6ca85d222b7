//! SHA-256, HMAC-SHA256 and hex, in one place for the crate: the audit
//! chain and its fingerprints, etags, API-key hashes and limit keys.
//!
//! Backed by AWS-LC (already linked for TLS and the SDK), whose SHA-256
//! picks the CPU's SHA extensions, else AVX2/AVX/SSSE3 code; the portable
//! `sha2` crate it replaced on these paths fell back to plain Rust on CPUs
//! (and under valgrind) without SHA-NI, at about 3,500 instructions per
//! 64-byte block, which was most of a read's audit cost (bench/RESULTS.md).

use aws_lc_rs::{digest, hmac};

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Whether `signature` (ASN.1 DER) is an ECDSA P-256 / SHA-256 signature of
/// `message` by the uncompressed SEC1 point `public_key` (a passkey's ES256
/// key, as the local backend checks a packed self-attestation).
pub fn verify_es256(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(message, signature)
        .is_ok()
}

/// An incremental SHA-256.
pub struct Sha256(digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }
}

impl Sha256 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// A key for HMAC-SHA256, set up once.
#[derive(Clone)]
pub struct HmacKey(hmac::Key);

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn sign(&self, bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, bytes).as_ref());
        out
    }

    /// A token the facade hands out and takes back (a page token):
    /// `base64url(body).base64url(mac)`, the MAC (its first [`TOKEN_MAC_BYTES`])
    /// over the first part.
    pub fn seal_token(&self, body: &[u8]) -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let mut token = URL_SAFE_NO_PAD.encode(body);
        let mac = self.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(&mac[..TOKEN_MAC_BYTES]));
        token
    }

    /// The body of a token [`HmacKey::seal_token`] made with this key; the
    /// MAC is checked before the body is decoded.
    pub fn open_token(&self, token: &str) -> Option<Vec<u8>> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let (body, mac) = token.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.sign(body.as_bytes());
        if !mac_eq(&mac, &expected[..TOKEN_MAC_BYTES]) {
            return None;
        }
        URL_SAFE_NO_PAD.decode(body).ok()
    }
}

/// The bytes of a token's MAC (128 bits).
pub const TOKEN_MAC_BYTES: usize = 16;

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<key>)")
    }
}

/// The least bytes a deployment secret (`[server] secret_file`) holds.
pub const MIN_SECRET_BYTES: usize = 32;

/// The deployment secret every replica shares (`[server] secret_file`),
/// from which each purpose derives a key of its own, so that no key serves
/// two purposes: `derive(label)` is HMAC-SHA256(secret, label).
#[derive(Clone)]
pub struct DeploymentSecret {
    key: HmacKey,
    /// Whether every replica holds the same secret (a file, or a local data
    /// file's), or this process made its own.
    shared: bool,
}

impl DeploymentSecret {
    /// A secret shared by the deployment (at least [`MIN_SECRET_BYTES`]).
    pub fn shared(bytes: &[u8]) -> Self {
        Self {
            key: HmacKey::new(bytes),
            shared: true,
        }
    }

    /// A secret of this process alone: what it keys cannot be checked by
    /// another replica.
    /// Fails only without an OS random source: never a key anyone could compute.
    pub fn random() -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("no randomness for the deployment secret: {e}"))?;
        Ok(Self {
            key: HmacKey::new(&bytes),
            shared: false,
        })
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The key for one purpose.
    pub fn derive(&self, label: &str) -> HmacKey {
        HmacKey::new(&self.key.sign(label.as_bytes()))
    }
}

impl std::fmt::Debug for DeploymentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeploymentSecret(<secret>)")
    }
}

/// Whether two MACs are equal, in time that does not depend on where they differ.
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// 128 bits of SHA-256 over `parts`, each prefixed by its length (so
/// `["ab", "c"]` and `["a", "bc"]` differ): the rate limiter's bucket keys,
/// the same small size whatever they name, and naming no one in clear.
pub fn key_of(parts: &[&str]) -> [u8; 16] {
    let mut h = Sha256::default();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finish();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes` into `out`, which holds exactly twice as many.
pub fn hex_to_slice(bytes: &[u8], out: &mut [u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Lower-case hex of `bytes`, appended to `out`.
pub fn hex_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_to_slice(bytes, &mut out);
    // Hex digits are ASCII: the conversion cannot fail.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // FIPS 180-2 "abc"; RFC 4231 test case 2.
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut inc = Sha256::default();
        inc.update(b"a");
        inc.update(b"bc");
        assert_eq!(inc.finish(), sha256(b"abc"));
        assert_eq!(
            hex(&HmacKey::new(b"Jefe").sign(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
        assert_eq!(hex(&[]), "");
    }
}
