//! Signed checkpoints (PRECEDENTS.md §10, as CloudTrail's digest files):
//! the writer seals its chain with a signature the log pipeline cannot
//! forge, so that whoever can write to the pipeline cannot rewrite, drop or
//! cut records unnoticed.
//!
//! A checkpoint is one JSON line, `{"audit_checkpoint":{...}}`, written to
//! every sink beside the records: `source`, `run`, `first_seq` (the run's
//! `run_started` record), `seq` and `hash` (the chain's head), `time`,
//! `prev` (the SHA-256 of the run's previous checkpoint line, `null` for
//! its first), `ended` (the run's last, at drain), `alg` and `key_id` (the
//! first 16 hex digits of the SHA-256 of the public key), and `signature`
//! (base64) over [`DOMAIN`] and the canonical JSON of all the rest.
//! Without `[audit.signing]` checkpoints are still written, with `alg`
//! "none" and no signature: anchors for a reader who trusts the pipeline.
//!
//! Keys are Ed25519: the private key a PKCS#8 PEM file (`openssl genpkey
//! -algorithm ed25519`, or `mfa-facade audit keygen`), the public key an
//! SPKI PEM (`openssl pkey -pubout`).

use std::path::Path;

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a checkpoint's signature covers first: no other message of any
/// protocol begins with it.
pub const DOMAIN: &[u8] = b"mfa-facade audit checkpoint v1\n";
/// The key of a checkpoint line.
pub const CHECKPOINT: &str = "audit_checkpoint";

/// Whether a line a sink wrote is a checkpoint (its canonical JSON begins
/// with its one key), not a record.
pub fn is_checkpoint_line(line: &[u8]) -> bool {
    line.starts_with(b"{\"audit_checkpoint\"")
}
/// The `alg` of a checkpoint signed by an AWS KMS ECC_NIST_P256 key
/// (ECDSA over SHA-256, the signature DER-encoded as KMS returns it).
pub const ALG_P256: &str = "ecdsa-p256-sha256";
/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1):
/// the 65-byte uncompressed point follows.
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The `key_id` of a P-256 key: the first 16 hex digits of the SHA-256 of
/// its SubjectPublicKeyInfo DER (what KMS's GetPublicKey returns).
pub fn spki_key_id(der: &[u8]) -> String {
    key_id(der)
}

/// What signs a checkpoint: an Ed25519 key from a file, or an AWS KMS key.
pub trait CheckpointSigner: Send {
    fn alg(&self) -> &'static str;
    fn key_id(&self) -> &str;
    /// The signature of `message`, or why there is none this time.
    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32-byte
/// key follows.
const SPKI_ED25519: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The fields of a checkpoint, in canonical (sorted) order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub alg: String,
    pub ended: bool,
    pub first_seq: u64,
    pub hash: String,
    pub key_id: Option<String>,
    pub prev: Option<String>,
    pub run: String,
    pub seq: u64,
    pub signature: Option<String>,
    pub source: String,
    pub time: String,
}

impl Checkpoint {
    /// The bytes the signature covers: [`DOMAIN`], then the canonical JSON
    /// of every field but `signature`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("signature");
        }
        let mut text = String::new();
        super::chain::canonical(&v, &mut text);
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// The line a sink writes, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut text = String::new();
        let v = serde_json::json!({ CHECKPOINT: self });
        super::chain::canonical(&v, &mut text);
        text.push('\n');
        text.into_bytes()
    }

    /// What the next checkpoint's `prev` names: SHA-256 of this line.
    pub fn digest(&self) -> String {
        let line = self.line();
        crate::hash::hex(&crate::hash::sha256(&line[..line.len() - 1]))
    }

    /// A checkpoint line's checkpoint, if `v` is one.
    pub fn of(v: &Value) -> Option<Result<Self, String>> {
        let inner = v.as_object()?.get(CHECKPOINT)?;
        Some(
            serde_json::from_value(inner.clone())
                .map_err(|e| format!("a checkpoint that does not read as one ({e})")),
        )
    }
}

/// The writer's signing key.
pub struct Signer {
    key: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(ed25519, key_id {})", self.key_id)
    }
}

/// The first 16 hex digits of the SHA-256 of a raw public key.
fn key_id(public: &[u8]) -> String {
    crate::hash::hex(&crate::hash::sha256(public)[..8])
}

/// The DER inside the first PEM block labelled `label`.
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Signer {
    /// An Ed25519 private key from a PKCS#8 PEM file (v1, as OpenSSL
    /// writes it, or v2).
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{} is not readable: {e}", path.display()))?;
        let der = pem_block(&text, "PRIVATE KEY").ok_or_else(|| {
            format!(
                "{} holds no PKCS#8 PEM block (-----BEGIN PRIVATE KEY-----)",
                path.display()
            )
        })?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| format!("{} is not an Ed25519 private key: {e}", path.display()))?;
        let key_id = key_id(key.public_key().as_ref());
        Ok(Self { key, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as an SPKI PEM, for `audit verify --public-key`.
    pub fn public_pem(&self) -> String {
        let mut der = SPKI_ED25519.to_vec();
        der.extend_from_slice(self.key.public_key().as_ref());
        pem("PUBLIC KEY", &der)
    }

    /// Signs `c` (its `alg`, `key_id` and `signature` set here).
    pub fn sign(&self, c: &mut Checkpoint) {
        // An Ed25519 signature cannot fail.
        let _ = sign_with(self, c);
    }
}

/// Writes a new Ed25519 key pair: `path` (PKCS#8 PEM, created 0600, never
/// over an existing file) and `path.pub` (SPKI PEM).
pub fn generate(path: &Path) -> Result<Signer, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let doc = Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| "cannot generate an Ed25519 key".to_owned())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(pem("PRIVATE KEY", doc.as_ref()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let signer = Signer::from_pem_file(path)?;
    let public = public_path(path);
    std::fs::write(&public, signer.public_pem())
        .map_err(|e| format!("cannot write {}: {e}", public.display()))?;
    Ok(signer)
}

/// Where the public key of the private key at `path` is written: `path.pub`.
pub fn public_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    p.into()
}

impl CheckpointSigner for Signer {
    fn alg(&self) -> &'static str {
        "ed25519"
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.key.sign(message).as_ref().to_vec())
    }
}

/// Signs `c` with `signer`: its `alg`, `key_id` and `signature`.
pub fn sign_with(signer: &dyn CheckpointSigner, c: &mut Checkpoint) -> Result<(), String> {
    c.alg = signer.alg().into();
    c.key_id = Some(signer.key_id().to_owned());
    c.signature = None;
    let sig = signer.sign_bytes(&c.signed_bytes())?;
    c.signature = Some(STANDARD.encode(sig));
    Ok(())
}

/// A verifier's public key: Ed25519 (`key_file`'s), or P-256 (a KMS key's).
pub struct PublicKey {
    raw: Vec<u8>,
    key_id: String,
    p256: bool,
}

impl PublicKey {
    /// An Ed25519 public key from an SPKI PEM file (or the PKCS#8 private
    /// key file, whose public half it takes).
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{} is not readable: {e}", path.display()))?;
        if let Some(der) = pem_block(&text, "PUBLIC KEY") {
            return Self::from_spki_der(&der).ok_or_else(|| {
                format!("{} is not an Ed25519 or P-256 public key", path.display())
            });
        }
        let signer = Signer::from_pem_file(path)
            .map_err(|_| format!("{} holds no Ed25519 PUBLIC KEY PEM block", path.display()))?;
        let raw = signer.key.public_key().as_ref().to_vec();
        Ok(Self {
            key_id: signer.key_id,
            raw,
            p256: false,
        })
    }

    /// A SubjectPublicKeyInfo (DER): Ed25519, or P-256 as KMS gives it.
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        if let Some(raw) = der
            .strip_prefix(&SPKI_ED25519[..])
            .filter(|k| k.len() == 32)
        {
            return Some(Self {
                key_id: key_id(raw),
                raw: raw.to_vec(),
                p256: false,
            });
        }
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|k| k.len() == 65)?;
        Some(Self {
            key_id: spki_key_id(der),
            raw: point.to_vec(),
            p256: true,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `c` carries a good signature by this key.
    pub fn verifies(&self, c: &Checkpoint) -> bool {
        let Some(sig) = c.signature.as_deref().and_then(|s| STANDARD.decode(s).ok()) else {
            return false;
        };
        let (alg, scheme): (&str, &dyn signature::VerificationAlgorithm) = if self.p256 {
            (ALG_P256, &signature::ECDSA_P256_SHA256_ASN1)
        } else {
            ("ed25519", &signature::ED25519)
        };
        c.alg == alg
            && c.key_id.as_deref() == Some(self.key_id.as_str())
            && UnparsedPublicKey::new(scheme, &self.raw)
                .verify(&c.signed_bytes(), &sig)
                .is_ok()
    }
}

/// What the writer seals with: the chain's identity and, when configured,
/// the key; it makes each checkpoint and remembers the last.
pub struct Sealer {
    pub source: String,
    pub run: String,
    signer: Option<Box<dyn CheckpointSigner>>,
    /// The seq of the run's `run_started` record.
    pub first_seq: u64,
    /// The last checkpoint's head seq, and its digest.
    last: Option<(u64, String)>,
}

impl Sealer {
    pub fn new(source: String, run: String, signer: Option<Box<dyn CheckpointSigner>>) -> Self {
        Self {
            source,
            run,
            signer,
            first_seq: 0,
            last: None,
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        self.signer.as_deref().map(CheckpointSigner::key_id)
    }

    /// Whether the head has moved past the last checkpoint.
    pub fn due(&self, seq: u64) -> bool {
        self.last.as_ref().is_none_or(|(s, _)| *s != seq)
    }

    /// The checkpoint of the head (`seq`, `hash`), as a line; it becomes
    /// the last. `None` when the signer could not sign it this time (KMS
    /// unreachable): logged, and the next checkpoint seals the head.
    pub fn checkpoint(&mut self, seq: u64, hash: &str, ended: bool) -> Option<Vec<u8>> {
        let mut c = Checkpoint {
            alg: "none".into(),
            ended,
            first_seq: self.first_seq,
            hash: hash.to_owned(),
            key_id: None,
            prev: self.last.as_ref().map(|(_, d)| d.clone()),
            run: self.run.clone(),
            seq,
            signature: None,
            source: self.source.clone(),
            time: crate::timefmt::now(),
        };
        if let Some(s) = &self.signer
            && let Err(e) = sign_with(s.as_ref(), &mut c)
        {
            crate::events::AuditCheckpointNotSigned { error: &e }.emit();
            return None;
        }
        self.last = Some((seq, c.digest()));
        Some(c.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_under_its_key_only_and_any_edit_breaks_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.pem");
        let signer = generate(&path).expect("key");
        assert!(generate(&path).is_err(), "never over an existing key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let public = PublicKey::from_pem_file(&public_path(&path)).expect("public");
        assert_eq!(public.key_id(), signer.key_id());
        let mut sealer = Sealer::new("web-0".into(), "r1".into(), Some(Box::new(signer)));
        sealer.first_seq = 1;
        let line = sealer
            .checkpoint(7, &"a".repeat(64), false)
            .expect("signed");
        let v: Value = serde_json::from_slice(&line).expect("json");
        let c = Checkpoint::of(&v).expect("a checkpoint").expect("reads");
        assert!(public.verifies(&c));
        for edit in [
            |c: &mut Checkpoint| c.seq = 8,
            |c: &mut Checkpoint| c.hash = "b".repeat(64),
            |c: &mut Checkpoint| c.source = "web-1".into(),
            |c: &mut Checkpoint| c.ended = true,
            |c: &mut Checkpoint| c.prev = Some("x".into()),
        ] {
            let mut forged = c.clone();
            edit(&mut forged);
            assert!(!public.verifies(&forged), "{forged:?}");
        }
        // Another key's checkpoint of the same head does not verify.
        let other = generate(&dir.path().join("other.pem")).expect("key");
        let mut forged = c.clone();
        other.sign(&mut forged);
        assert!(!public.verifies(&forged));
        // The next checkpoint names this one.
        let next = sealer.checkpoint(9, &"c".repeat(64), true).expect("signed");
        let next = Checkpoint::of(&serde_json::from_slice(&next).expect("json"))
            .expect("cp")
            .expect("reads");
        assert_eq!(next.prev, Some(c.digest()));
        // An OpenSSL-style PKCS#8 v1 PEM reads too (what generate writes).
        assert!(
            std::fs::read_to_string(&path)
                .expect("pem")
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }
}
