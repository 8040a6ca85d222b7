//! API keys: the `x-api-key` header. Only SHA-256 hashes of the keys are
//! configured; a presented key is hashed and compared with every configured
//! hash in constant time, so neither the key nor its position leaks through
//! timing. A key that matched is then known by a keyed SipHash tag, so its
//! later calls skip the SHA-256 (whether a key is good, its answer says
//! anyway).

use crate::hash::{hex, sha256};

use super::{Principal, ProvenBy};

use super::settings::ApiKeyConfig;

/// The lower-case hex SHA-256 of a key: what `mfa-facade hash-key` prints
/// and what `[[auth.api_keys]] sha256` holds.
pub fn hash_key(key: &str) -> String {
    hex(&sha256(key.as_bytes()))
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    entries: Vec<([u8; 32], Principal)>,
    /// Keys seen to be good, by a keyed 128-bit tag: a known key is found
    /// without its SHA-256 (~2,000 instructions a call under callgrind).
    known: std::sync::Arc<Known>,
}

/// The presented keys that matched, by a 64-bit SipHash tag under a key
/// drawn at start-up: no more than the entries (each good key has its own
/// hash), nothing secret kept (as the configured SHA-256 hashes, a tag
/// only confirms a guessed key, and keys are random). Filled only after a
/// full SHA-256 match. Another key with a known key's tag would need about
/// 2^64 online tries under a tag key nobody outside the process knows.
#[derive(Debug, Default)]
struct Known {
    tags: std::hash::RandomState,
    found: std::sync::RwLock<std::collections::HashMap<u64, usize>>,
}

impl Known {
    fn tag(&self, presented: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.tags.hash_one(presented)
    }
}

impl ApiKeys {
    /// From validated configuration (the hashes are 64 hex characters).
    pub fn new(config: &[ApiKeyConfig]) -> Self {
        let entries = config
            .iter()
            .filter_map(|k| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut hash).ok()?;
                Some((hash, Principal::new(k.principal.clone(), ProvenBy::ApiKey)))
            })
            .collect();
        Self {
            entries,
            known: Default::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal whose key this is. The key is taken byte for byte:
    /// surrounding white space makes it another key. A key that matched
    /// before is found by its tag; any other is hashed and compared with
    /// every entry.
    pub fn principal(&self, presented: &[u8]) -> Option<&Principal> {
        let tag = self.known.tag(presented);
        let known = self
            .known
            .found
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tag)
            .copied();
        if let Some(i) = known {
            return self.entries.get(i).map(|(_, p)| p);
        }
        let digest: [u8; 32] = sha256(presented);
        let mut found = None;
        for (i, (hash, _)) in self.entries.iter().enumerate() {
            // No early exit: every entry is compared.
            if ct_eq(hash, &digest) && found.is_none() {
                found = Some(i);
            }
        }
        let i = found?;
        self.known
            .found
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tag, i);
        self.entries.get(i).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_finds_its_principal_and_nothing_else_does() {
        let keys = ApiKeys::new(&[
            ApiKeyConfig {
                principal: "billing".into(),
                sha256: hash_key("k-billing"),
            },
            ApiKeyConfig {
                principal: "payments".into(),
                sha256: hash_key("k-payments"),
            },
        ]);
        let name = |key: &[u8]| keys.principal(key).map(|p| p.name.as_str());
        assert_eq!(name(b"k-billing"), Some("billing"));
        assert_eq!(name(b"k-payments"), Some("payments"));
        for wrong in [
            &b"k-billing "[..],
            b" k-billing",
            b"K-BILLING",
            b"",
            b"k-billin",
        ] {
            assert_eq!(name(wrong), None, "{wrong:?}");
        }
        // Again, now found by their tags; the wrong still are not.
        assert_eq!(name(b"k-billing"), Some("billing"));
        assert_eq!(name(b"k-payments"), Some("payments"));
        assert_eq!(name(b"k-billin"), None);
        assert_eq!(keys.known.found.read().map(|f| f.len()).unwrap_or(9), 2);
        // A reload's keys know nothing of the old: a revoked key is refused.
        let reloaded = ApiKeys::new(&[ApiKeyConfig {
            principal: "payments".into(),
            sha256: hash_key("k-payments"),
        }]);
        assert!(reloaded.principal(b"k-billing").is_none());
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
