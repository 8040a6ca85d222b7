//! UpdateUserPoolMfaConfig's field mask: which fields of the pool's
//! configuration a partial update replaces.
//!
//! A path names a field of `UserPoolMfaConfig` in snake_case. A whole block
//! (`sms_mfa_configuration`) is replaced as a unit: present in the patch sets
//! it, absent removes it (switches that factor off). A path inside the SMS or
//! email block edits that block only if the pool already has it: editing the
//! SMS text must not switch SMS MFA on by accident.

use super::{
    EmailMfaConfig, PoolMfaConfig, SmsConfiguration, SmsMfaConfig, SoftwareTokenMfaConfig,
    WebAuthnConfig,
};

/// Every path UpdateUserPoolMfaConfig accepts.
pub const PATHS: &[&str] = &[
    "mfa_configuration",
    "sms_mfa_configuration",
    "sms_mfa_configuration.sms_authentication_message",
    "sms_mfa_configuration.sms_configuration",
    "sms_mfa_configuration.sms_configuration.sns_caller_arn",
    "sms_mfa_configuration.sms_configuration.external_id",
    "sms_mfa_configuration.sms_configuration.sns_region",
    "sms_mfa_configuration.sms_configuration.eums_sms",
    "software_token_mfa_configuration",
    "software_token_mfa_configuration.enabled",
    "email_mfa_configuration",
    "email_mfa_configuration.message",
    "email_mfa_configuration.subject",
    "web_authn_configuration",
    "web_authn_configuration.relying_party_id",
    "web_authn_configuration.user_verification",
    "web_authn_configuration.factor_configuration",
];

/// Why a mask could not be applied.
#[derive(Debug, PartialEq, Eq)]
pub enum MaskError {
    /// Not one of [`PATHS`]; an input error.
    UnknownPath(String),
    /// The path edits a factor block that the pool does not have; a state error.
    BlockNotSet { path: String, block: &'static str },
}

pub fn is_known(path: &str) -> bool {
    PATHS.contains(&path)
}

/// Applies `patch`'s values at `paths` onto `target`, in order.
pub fn apply(
    target: &mut PoolMfaConfig,
    patch: &PoolMfaConfig,
    paths: &[String],
) -> Result<(), MaskError> {
    for path in paths {
        apply_one(target, patch, path)?;
    }
    Ok(())
}

fn existing<'a, B>(
    block: &'a mut Option<B>,
    path: &str,
    name: &'static str,
) -> Result<&'a mut B, MaskError> {
    block.as_mut().ok_or_else(|| MaskError::BlockNotSet {
        path: path.to_owned(),
        block: name,
    })
}

/// The pool's SMS configuration, created inside an existing SMS block.
fn sms_conf<'a>(
    t: &'a mut PoolMfaConfig,
    path: &str,
) -> Result<&'a mut SmsConfiguration, MaskError> {
    Ok(existing(&mut t.sms, path, "sms_mfa_configuration")?
        .sms_configuration
        .get_or_insert_with(SmsConfiguration::default))
}

fn apply_one(t: &mut PoolMfaConfig, p: &PoolMfaConfig, path: &str) -> Result<(), MaskError> {
    const SMS: &str = "sms_mfa_configuration";
    const EMAIL: &str = "email_mfa_configuration";
    let psms = p.sms.as_ref();
    let pconf = psms.and_then(|s| s.sms_configuration.as_ref());
    let pemail = p.email.as_ref();
    let pweb = p.web_authn.as_ref();
    match path {
        "mfa_configuration" => t.mode = p.mode,
        SMS => t.sms = p.sms.clone(),
        "sms_mfa_configuration.sms_authentication_message" => {
            existing(&mut t.sms, path, SMS)?.sms_authentication_message =
                psms.and_then(|s| s.sms_authentication_message.clone());
        }
        "sms_mfa_configuration.sms_configuration" => {
            existing(&mut t.sms, path, SMS)?.sms_configuration = pconf.cloned();
        }
        "sms_mfa_configuration.sms_configuration.sns_caller_arn" => {
            sms_conf(t, path)?.sns_caller_arn = pconf.and_then(|c| c.sns_caller_arn.clone());
        }
        "sms_mfa_configuration.sms_configuration.external_id" => {
            sms_conf(t, path)?.external_id = pconf.and_then(|c| c.external_id.clone());
        }
        "sms_mfa_configuration.sms_configuration.sns_region" => {
            sms_conf(t, path)?.sns_region = pconf.and_then(|c| c.sns_region.clone());
        }
        "sms_mfa_configuration.sms_configuration.eums_sms" => {
            sms_conf(t, path)?.eums_sms = pconf.and_then(|c| c.eums_sms.clone());
        }
        "software_token_mfa_configuration" => t.software_token = p.software_token.clone(),
        "software_token_mfa_configuration.enabled" => {
            t.software_token
                .get_or_insert_with(SoftwareTokenMfaConfig::default)
                .enabled = p.software_token.as_ref().and_then(|s| s.enabled);
        }
        EMAIL => t.email = p.email.clone(),
        "email_mfa_configuration.message" => {
            existing(&mut t.email, path, EMAIL)?.message = pemail.and_then(|e| e.message.clone());
        }
        "email_mfa_configuration.subject" => {
            existing(&mut t.email, path, EMAIL)?.subject = pemail.and_then(|e| e.subject.clone());
        }
        "web_authn_configuration" => t.web_authn = p.web_authn.clone(),
        "web_authn_configuration.relying_party_id" => {
            t.web_authn
                .get_or_insert_with(WebAuthnConfig::default)
                .relying_party_id = pweb.and_then(|w| w.relying_party_id.clone());
        }
        "web_authn_configuration.user_verification" => {
            t.web_authn
                .get_or_insert_with(WebAuthnConfig::default)
                .user_verification = pweb.and_then(|w| w.user_verification);
        }
        "web_authn_configuration.factor_configuration" => {
            t.web_authn
                .get_or_insert_with(WebAuthnConfig::default)
                .factor_configuration = pweb.and_then(|w| w.factor_configuration);
        }
        other => return Err(MaskError::UnknownPath(other.to_owned())),
    }
    Ok(())
}

/// The masked part of a patch alone, applied onto an empty configuration
/// whose SMS and email blocks exist, so that the fields the update sets can
/// be checked with [`super::rules::pool_mfa_config_fields`] before the pool
/// is read.
pub fn masked_part(patch: &PoolMfaConfig, paths: &[String]) -> PoolMfaConfig {
    let mut part = PoolMfaConfig {
        sms: Some(SmsMfaConfig::default()),
        email: Some(EmailMfaConfig::default()),
        ..Default::default()
    };
    for path in paths {
        // Unknown paths are reported by the caller's own check.
        let _ = apply_one(&mut part, patch, path);
    }
    part
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MfaMode, Secret};

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn current() -> PoolMfaConfig {
        PoolMfaConfig {
            mode: Some(MfaMode::Optional),
            sms: Some(SmsMfaConfig {
                sms_authentication_message: Some("old {####}".into()),
                sms_configuration: Some(SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: Some(Secret::new("ext")),
                    sns_region: Some("us-east-1".into()),
                    eums_sms: None,
                }),
            }),
            software_token: Some(SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            email: None,
            web_authn: None,
        }
    }

    #[test]
    fn editing_the_sms_text_keeps_totp_and_the_sns_settings() {
        let mut t = current();
        let patch = PoolMfaConfig {
            sms: Some(SmsMfaConfig {
                sms_authentication_message: Some("new {####}".into()),
                sms_configuration: None,
            }),
            ..Default::default()
        };
        apply(
            &mut t,
            &patch,
            &paths(&["sms_mfa_configuration.sms_authentication_message"]),
        )
        .unwrap();
        let mut expected = current();
        expected.sms.as_mut().unwrap().sms_authentication_message = Some("new {####}".into());
        assert_eq!(t, expected);
    }

    #[test]
    fn a_whole_block_path_replaces_or_removes_the_block() {
        let mut t = current();
        apply(
            &mut t,
            &PoolMfaConfig::default(),
            &paths(&["software_token_mfa_configuration"]),
        )
        .unwrap();
        assert_eq!(t.software_token, None);
        assert_eq!(t.sms, current().sms, "untouched");
        let patch = PoolMfaConfig {
            email: Some(EmailMfaConfig {
                message: Some("code {####}".into()),
                subject: None,
            }),
            mode: Some(MfaMode::On),
            ..Default::default()
        };
        apply(
            &mut t,
            &patch,
            &paths(&["email_mfa_configuration", "mfa_configuration"]),
        )
        .unwrap();
        assert_eq!(t.email, patch.email);
        assert_eq!(t.mode, Some(MfaMode::On));
    }

    #[test]
    fn a_leaf_of_an_absent_factor_block_is_refused_not_created() {
        let mut t = current();
        let err = apply(
            &mut t,
            &PoolMfaConfig::default(),
            &paths(&["email_mfa_configuration.subject"]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            MaskError::BlockNotSet {
                path: "email_mfa_configuration.subject".into(),
                block: "email_mfa_configuration"
            }
        );
        assert_eq!(t, current(), "nothing changed");
    }

    #[test]
    fn unknown_paths_and_the_path_table_agree() {
        for p in PATHS {
            let mut t = current();
            let r = apply(&mut t, &current(), &paths(&[p]));
            assert!(!matches!(r, Err(MaskError::UnknownPath(_))), "{p}");
        }
        let mut t = current();
        assert_eq!(
            apply(&mut t, &current(), &paths(&["smsMfaConfiguration"])),
            Err(MaskError::UnknownPath("smsMfaConfiguration".into()))
        );
        assert!(!is_known("sms_mfa_configuration.nope"));
    }
}
