//! The etag of a pool's MFA configuration: a stable hash of the configuration
//! as read, so that a caller can make a write conditional on what it saw.
//!
//! An etag is given to callers and lands in audit records, so it must not
//! let anyone recover a secret by guessing: the ExternalId (the one secret
//! of a pool's configuration) counts only as its HMAC under a key derived
//! from the deployment secret (`[server] secret_file`, which every replica
//! shares, so every replica computes the same etag). A process without a
//! shared secret leaves the ExternalId's value out (its presence still
//! counts): a change of the ExternalId alone then leaves the etag as it was,
//! which is the price of an etag that cannot be guessed from.

use std::sync::OnceLock;

use super::{PoolMfaConfig, Secret};
use crate::hash::HmacKey;

/// The key the ExternalId is hashed under: set once at start-up.
static KEY: OnceLock<Option<HmacKey>> = OnceLock::new();

/// The label of the etag's key, derived from the deployment secret.
pub const KEY_LABEL: &str = "mfa-facade etag external-id v1";

/// Sets the etag's key (at start-up; the first call wins). `None`: no
/// secret every replica shares, so the ExternalId's value is left out.
pub fn set_key(key: Option<HmacKey>) {
    let _ = KEY.set(key);
}

/// What stands for an ExternalId in the etag's input.
fn stand_in(id: &Secret, key: Option<&HmacKey>) -> Secret {
    match key {
        Some(key) => Secret::new(format!(
            "hmac:{}",
            crate::hash::hex(&key.sign(id.expose().as_bytes()))
        )),
        None => Secret::new("[left out]"),
    }
}

/// The configuration with each ExternalId replaced by its stand-in.
fn without_secrets(config: &PoolMfaConfig, key: Option<&HmacKey>) -> Option<PoolMfaConfig> {
    let sms = config.sms.as_ref()?.sms_configuration.as_ref()?;
    let has_eums = sms
        .eums_sms
        .as_ref()
        .is_some_and(|e| e.external_id.is_some());
    if sms.external_id.is_none() && !has_eums {
        return None;
    }
    let mut c = config.clone();
    if let Some(s) = c.sms.as_mut().and_then(|s| s.sms_configuration.as_mut()) {
        s.external_id = s.external_id.as_ref().map(|id| stand_in(id, key));
        if let Some(e) = s.eums_sms.as_mut() {
            e.external_id = e.external_id.as_ref().map(|id| stand_in(id, key));
        }
    }
    Some(c)
}

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
    compute_with(config, KEY.get().and_then(Option::as_ref))
}

fn compute_with(config: &PoolMfaConfig, key: Option<&HmacKey>) -> String {
    // Serializing plain structs of strings, bools and enums cannot fail; an
    // empty input still gives a well-defined hash. An ExternalId counts as
    // its keyed hash (module doc), never as itself.
    let keyed = without_secrets(config, key);
    let config = keyed.as_ref().unwrap_or(config);
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
        // An ExternalId counts (a change of it is a change of the config
        // under a shared key) but never as itself: with no key set in this
        // test process, its value is left out, its presence is not.
        let with_id = |id: &str| PoolMfaConfig {
            sms: Some(crate::domain::SmsMfaConfig {
                sms_authentication_message: None,
                sms_configuration: Some(crate::domain::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: Some(Secret::new(id)),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let plain = |id: &str| {
            let c = with_id(id);
            crate::hash::hex(
                &crate::hash::sha256(
                    &super::super::secret::exposed(|| serde_json::to_vec(&c)).unwrap_or_default(),
                )[..16],
            )
        };
        assert_ne!(of(&with_id("acme-prod-7")), plain("acme-prod-7"));
        assert_ne!(of(&with_id("acme-prod-7")), of(&a));
        // Under a shared key: the same for every replica, moved by a change
        // of the ExternalId, and not computable without the key.
        let (k1, k2) = (HmacKey::new(b"deployment-1"), HmacKey::new(b"deployment-2"));
        let one = compute_with(&with_id("acme-prod-7"), Some(&k1));
        assert_eq!(one, compute_with(&with_id("acme-prod-7"), Some(&k1)));
        assert_ne!(one, compute_with(&with_id("acme-prod-8"), Some(&k1)));
        assert_ne!(one, compute_with(&with_id("acme-prod-7"), Some(&k2)));
        assert_ne!(one, plain("acme-prod-7"));
        // Without a key, the value is left out: guessing it changes nothing.
        assert_eq!(
            compute_with(&with_id("acme-prod-7"), None),
            compute_with(&with_id("guess"), None)
        );
        // Pinned: the etag must not change between releases for the same config.
        assert_eq!(
            of(&PoolMfaConfig::default()),
            "5e79d542a204cbd3b6e6ffc4a48ff375"
        );
    }
}
