//! The etag of a pool's MFA configuration: a stable hash of the configuration
//! as read, so that a caller can make a write conditional on what it saw.

use super::PoolMfaConfig;

/// 32 hex characters (128 bits of SHA-256) over the canonical JSON form of the
/// configuration. Field order is fixed by the struct, so the same
/// configuration always gives the same etag, across processes and versions
/// that keep the domain types.
pub fn of(config: &PoolMfaConfig) -> String {
    // A pure function of the configuration, and reads of one pool repeat
    // it: each thread keeps the last configuration and its etag (a compare
    // of a few fields instead of serializing and hashing, ~6,000
    // instructions, on every Get).
    thread_local! {
        static LAST: std::cell::RefCell<Option<(PoolMfaConfig, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((seen, etag)) if seen == config => etag.clone(),
        _ => {
            let etag = compute(config);
            *last = Some((config.clone(), etag.clone()));
            etag
        }
    })
}

fn compute(config: &PoolMfaConfig) -> String {
    // Serializing plain structs of strings, bools and enums cannot fail; an
    // empty input still gives a well-defined hash. The real ExternalId
    // counts: a change of it is a change of the config.
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
        // The remembered answer is the computed one, and moves with the config.
        assert_eq!(of(&a), compute(&a));
        assert_eq!(of(&b), compute(&b));
        assert_eq!(of(&a), compute(&a));
        // Pinned: the etag must not change between releases for the same config.
        assert_eq!(
            of(&PoolMfaConfig::default()),
            "5e79d542a204cbd3b6e6ffc4a48ff375"
        );
    }
}
