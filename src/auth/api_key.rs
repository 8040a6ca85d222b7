//! API keys: the `x-api-key` header. Only SHA-256 hashes of the keys are
//! configured; a presented key is hashed and compared with every configured
//! hash in constant time, so neither the key nor its position leaks through
//! timing.

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
        Self { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal whose key this is. The key is taken byte for byte:
    /// surrounding white space makes it another key.
    pub fn principal(&self, presented: &[u8]) -> Option<&Principal> {
        let digest: [u8; 32] = sha256(presented);
        let mut found = None;
        for (hash, principal) in &self.entries {
            // No early exit: every entry is compared.
            if ct_eq(hash, &digest) && found.is_none() {
                found = Some(principal);
            }
        }
        found
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
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
