//! Cognito's rules for the local backend: its state rules (a pool's
//! feature plan and Region, a user's factors and preferences), the answers
//! it reads back, and its errors, each with Cognito's exception name so
//! callers see the same gRPC codes as against the real service.

use crate::domain::{
    FactorConfiguration, FactorSettings, MfaMode, MfaPreference, PoolMfaConfig, UserMfaSettings,
};
use crate::error::{CognitoError, Error, Result};

use crate::domain::pool_state::{self, AuthFactor, PoolState, Tier};
use crate::domain::rules::UserFilter;

use super::store::{Data, Factor, FeaturePlan, Pool, User};

/// A Cognito exception, with a request id as Cognito's answers carry one.
pub(super) fn cognito(exception: &str, message: impl Into<String>) -> Error {
    Error::Cognito(CognitoError {
        exception: exception.into(),
        message: message.into(),
        request_id: Some(format!("local-{}", uuid::Uuid::new_v4())),
        http_status: Some(400),
    })
}

pub(super) fn invalid_parameter(message: impl Into<String>) -> Error {
    cognito("InvalidParameterException", message)
}

pub(super) fn pool_not_found(id: &str) -> Error {
    cognito(
        "ResourceNotFoundException",
        format!("User pool {id} does not exist."),
    )
}

pub(super) fn user_not_found() -> Error {
    cognito("UserNotFoundException", "User does not exist.")
}

/// The user whose username is exactly `username` (UserNotFoundException
/// when there is none).
pub(super) fn user(data: &Data, pool_id: &str, username: &str) -> Result<User> {
    data.user(pool_id, username)?.ok_or_else(user_not_found)
}

/// The username of the user an Admin* call names, as the SDK documents
/// `Username`: the username itself, or the user's `sub`, or one of the
/// pool's alias attributes (`alias_attributes`) whose value is verified
/// (`email_verified` / `phone_number_verified` = "true";
/// preferred_username needs no verification), or in a pool with username
/// attributes the email address or phone number the user signs in with,
/// verified or not. A username wins over an alias that happens to equal it.
/// A name with its case folded: each character's Unicode lower case (one
/// fold for lookups and for uniqueness, so the two never disagree).
fn folded(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().flat_map(char::to_lowercase)
}

/// Whether two usernames (or alias values) name the same user in `pool`:
/// as written when the pool is case sensitive, else whatever their case
/// (without allocating).
pub(super) fn same_name(pool: &Pool, a: &str, b: &str) -> bool {
    if pool.state.case_sensitive {
        a == b
    } else {
        folded(a).eq(folded(b))
    }
}

/// A username's key for the pool's uniqueness check: as written when the
/// pool is case sensitive, else folded as [`same_name`] compares.
pub(super) fn name_key(pool: &Pool, name: &str) -> String {
    if pool.state.case_sensitive {
        name.to_owned()
    } else {
        folded(name).collect()
    }
}

/// In a pool with username attributes, which attribute a new user's
/// username is: `email` for an address, `phone_number` for an E.164
/// number, refused with Cognito's InvalidParameterException (SignUp's
/// wording) when it is neither of those the pool takes. `None` for a pool
/// whose usernames are the users' own.
pub(super) fn username_attribute(pool: &Pool, username: &str) -> Result<Option<&'static str>> {
    let takes = |a: &str| pool.state.username_attributes.iter().any(|x| x == a);
    if pool.state.username_attributes.is_empty() {
        return Ok(None);
    }
    if takes("email") && super::fixtures::is_email(username) {
        return Ok(Some("email"));
    }
    if takes("phone_number") && super::fixtures::is_e164(username) {
        return Ok(Some("phone_number"));
    }
    Err(cognito(
        "InvalidParameterException",
        if !takes("phone_number") {
            "Username should be an email."
        } else if !takes("email") {
            "Username should be a phone number."
        } else {
            "Username should be either an email or a phone number."
        },
    ))
}

pub(super) fn resolve_username(data: &Data, pool: &Pool, name: &str) -> Result<String> {
    data.resolve_username(pool, name)?
        .ok_or_else(user_not_found)
}

/// Whether a user may hold an access token or an MFA_SETUP session (sign
/// in): confirmed and enabled, refused as Cognito's sign-in refuses.
pub(super) fn check_can_sign_in(user: &User) -> Result<()> {
    if !user.enabled {
        return Err(cognito("NotAuthorizedException", "User is disabled."));
    }
    match user.status.as_str() {
        "CONFIRMED" => Ok(()),
        "UNCONFIRMED" => Err(cognito(
            "UserNotConfirmedException",
            "User is not confirmed.",
        )),
        "RESET_REQUIRED" => Err(cognito(
            "PasswordResetRequiredException",
            "Password reset required for the user",
        )),
        other => Err(cognito(
            "NotAuthorizedException",
            format!("A user in status {other} cannot sign in until the status changes"),
        )),
    }
}

/// ConfiguredUserAuthFactors: what the user has set up. PASSWORD for
/// every local user (the fixtures create users with a password);
/// EMAIL_OTP and SMS_OTP where the pool allows them as a first factor and
/// the user has the (not unverified) attribute; WEB_AUTHN with at least
/// one passkey; SOFTWARE_TOKEN with a verified authenticator, whether or
/// not TOTP MFA is enabled.
pub(super) fn configured_factors(pool: &Pool, user: &User) -> Vec<AuthFactor> {
    let allowed = |f| pool.state.first_auth_factors.contains(&f);
    let usable = |attribute: &str| {
        user.attributes.contains_key(attribute)
            && user
                .attributes
                .get(&format!("{attribute}_verified"))
                .is_none_or(|v| v != "false")
    };
    let mut out = vec![AuthFactor::Password];
    if allowed(AuthFactor::EmailOtp) && usable("email") {
        out.push(AuthFactor::EmailOtp);
    }
    if allowed(AuthFactor::SmsOtp) && usable("phone_number") {
        out.push(AuthFactor::SmsOtp);
    }
    if !user.web_authn_credentials.is_empty() {
        out.push(AuthFactor::WebAuthn);
    }
    if user.mfa.software_token.is_some() {
        out.push(AuthFactor::SoftwareToken);
    }
    out
}

/// Whether the pool lets its users register passkeys: a plan above Lite
/// (FeatureUnavailableInTierException) that allows WEB_AUTHN as a first
/// factor (WebAuthnNotEnabledException).
pub(super) fn check_passkeys_allowed(pool: &Pool) -> Result<()> {
    if pool.feature_plan == FeaturePlan::Lite {
        return Err(cognito(
            "FeatureUnavailableInTierException",
            "The following features need to be disabled for the LITE pricing tier configured: Passwordless Sign-In",
        ));
    }
    if !pool
        .state
        .first_auth_factors
        .contains(&AuthFactor::WebAuthn)
    {
        return Err(cognito(
            "WebAuthnNotEnabledException",
            "WebAuthn is not an allowed first auth factor of the user pool",
        ));
    }
    Ok(())
}

/// Whether a user matches a ListUsers filter.
pub(super) fn matches_filter(user: &User, filter: Option<&UserFilter>) -> bool {
    let Some(f) = filter else {
        return true;
    };
    let value = match f.attribute.as_str() {
        "username" => Some(user.username.as_str()),
        "sub" => Some(user.sub.as_str()),
        "cognito:user_status" => Some(user.status.as_str()),
        "status" => Some(if user.enabled { "Enabled" } else { "Disabled" }),
        other => user.attributes.get(other).map(String::as_str),
    };
    // Cognito matches cognito:user_status whatever the case
    // (COGNITO.md §6.1); every other attribute as written.
    let fold = f.attribute == "cognito:user_status";
    value.is_some_and(|v| match (f.prefix, fold) {
        (true, false) => v.starts_with(&f.value),
        (false, false) => v == f.value,
        (true, true) => v
            .get(..f.value.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&f.value)),
        (false, true) => v.eq_ignore_ascii_case(&f.value),
    })
}

/// The pool's state as DescribeUserPool would report it.
pub(super) fn pool_state(pool: &Pool) -> PoolState {
    PoolState {
        tier: Some(match pool.feature_plan {
            FeaturePlan::Lite => Tier::Lite,
            FeaturePlan::Essentials => Tier::Essentials,
            FeaturePlan::Plus => Tier::Plus,
        }),
        mfa_configuration: pool.mfa.mode,
        sms_configuration: pool
            .mfa
            .sms
            .as_ref()
            .and_then(|s| s.sms_configuration.clone()),
        sms_configuration_failure: pool.state.sms_configuration_failure.clone(),
        email_sending_account: pool.state.email_sending_account,
        email_configuration_failure: pool.state.email_configuration_failure.clone(),
        first_auth_factors: pool.state.first_auth_factors.clone(),
        recovery: pool.state.recovery.clone(),
        auto_verified_attributes: pool.state.auto_verified_attributes.clone(),
        domain: pool.state.domain.clone(),
    }
}

/// Cognito's state rules for a pool's new MFA configuration: the domain's
/// ([`pool_state::preflight`]), answered as Cognito answers them, then the
/// ones only the local backend checks.
pub(super) fn check_pool_config(pool: &Pool, config: &PoolMfaConfig) -> Result<()> {
    // Only Cognito's own refusals: it accepts what the pre-flight advises.
    if let Some(broken) = pool_state::preflight(&pool_state(pool), config)
        .iter()
        .find(|p| p.refused())
    {
        let (exception, message) = broken.cognito;
        return Err(cognito(exception, message));
    }
    if pool.feature_plan == FeaturePlan::Lite {
        let mut features = Vec::new();
        if config.web_authn.as_ref().is_some_and(|w| {
            w.factor_configuration == Some(FactorConfiguration::MultiFactorWithUserVerification)
        }) {
            features.push("WebAuthn MFA");
        }
        if !features.is_empty() {
            return Err(cognito(
                "FeatureUnavailableInTierException",
                format!(
                    "The following features need to be disabled for the LITE pricing tier configured: {}",
                    features.join(", ")
                ),
            ));
        }
    }
    if let Some(region) = config
        .sms
        .as_ref()
        .and_then(|s| s.sms_configuration.as_ref())
        .and_then(|c| c.eums_sms.as_ref())
        .and_then(|e| e.region.as_deref())
        && region != pool.region
    {
        return Err(invalid_parameter(format!(
            "EumsSms Region {region} must be the user pool's Region {}",
            pool.region
        )));
    }
    Ok(())
}

/// Applies one settings block to a user, with Cognito's preconditions.
struct FactorChange<'a> {
    factor: Factor,
    settings: FactorSettings,
    label: &'a str,
}

/// `own`: the user's own call (SetUserMFAPreference with its access
/// token), not an admin's.
pub(super) fn apply_preference(
    pool: &Pool,
    user: &mut User,
    preference: &MfaPreference,
    own: bool,
) -> Result<()> {
    let changes = [
        (Factor::Sms, preference.sms, "SMS"),
        (
            Factor::SoftwareToken,
            preference.software_token,
            "SOFTWARE_TOKEN",
        ),
        (Factor::Email, preference.email, "EMAIL"),
    ];
    let changes: Vec<FactorChange> = changes
        .into_iter()
        .filter_map(|(factor, settings, label)| {
            settings.map(|settings| FactorChange {
                factor,
                settings,
                label,
            })
        })
        .collect();
    let mfa_required = pool.mfa.mode == Some(MfaMode::On);
    for c in &changes {
        let enable = c.settings.enabled == Some(true);
        let enabled_now = match c.factor {
            Factor::Sms => user.mfa.sms_enabled,
            Factor::SoftwareToken => user.mfa.software_token_enabled,
            Factor::Email => user.mfa.email_enabled,
        };
        // The developer guide: with MFA ON, users "can't enable or disable
        // any MFA methods" (COGNITO.md §6.3). The exception and its text
        // are a guess (docs/differences.md).
        if enable && !enabled_now && mfa_required && own {
            return Err(invalid_parameter(format!(
                "{} MFA cannot be turned on by the user while MFA is required for the user pool; an administrator can (AdminSetUserMFAPreference)",
                c.label
            )));
        }
        if enable && !enabled_now {
            match c.factor {
                Factor::Sms if !user.attributes.contains_key("phone_number") => {
                    return Err(invalid_parameter(
                        "User does not have a phone_number set to turn on SMS MFA",
                    ));
                }
                Factor::SoftwareToken if user.mfa.software_token.is_none() => {
                    return Err(invalid_parameter(
                        "User has not verified software token mfa",
                    ));
                }
                Factor::Email if !user.attributes.contains_key("email") => {
                    return Err(invalid_parameter(
                        "User does not have an email set to turn on EMAIL MFA",
                    ));
                }
                Factor::Email if pool.mfa.email.is_none() => {
                    return Err(invalid_parameter(
                        "Email MFA is not enabled for the user pool",
                    ));
                }
                _ => {}
            }
        }
        if !enable && enabled_now && mfa_required {
            return Err(invalid_parameter(format!(
                "{} MFA cannot be turned off while MFA is required for the user pool; only the preferred factor can change",
                c.label
            )));
        }
    }
    for c in &changes {
        let enable = c.settings.enabled == Some(true);
        match c.factor {
            Factor::Sms => user.mfa.sms_enabled = enable,
            Factor::SoftwareToken => user.mfa.software_token_enabled = enable,
            Factor::Email => user.mfa.email_enabled = enable,
        }
        if c.settings.preferred_mfa == Some(true) {
            user.mfa.preferred = Some(c.factor);
        } else if user.mfa.preferred == Some(c.factor) {
            user.mfa.preferred = None;
        }
    }
    if let Some(web) = preference.web_authn {
        let enable = web.enabled == Some(true);
        if enable {
            let multi_factor = pool.mfa.web_authn.as_ref().is_some_and(|w| {
                w.factor_configuration == Some(FactorConfiguration::MultiFactorWithUserVerification)
            });
            if !multi_factor {
                return Err(invalid_parameter(
                    "WebAuthn MFA needs the user pool's WebAuthn FactorConfiguration MULTI_FACTOR_WITH_USER_VERIFICATION",
                ));
            }
            if !(user.mfa.sms_enabled || user.mfa.software_token_enabled || user.mfa.email_enabled)
            {
                return Err(invalid_parameter(
                    "WebAuthn MFA needs another MFA factor (SMS, TOTP or email) enabled for the user",
                ));
            }
        } else if user.mfa.web_authn_enabled && mfa_required {
            return Err(invalid_parameter(
                "WEB_AUTHN MFA cannot be turned off while MFA is required for the user pool",
            ));
        }
        user.mfa.web_authn_enabled = enable;
    }
    Ok(())
}

pub(super) fn settings_of(user: &User) -> UserMfaSettings {
    let m = &user.mfa;
    let list = [
        (m.sms_enabled, Factor::Sms),
        (m.software_token_enabled, Factor::SoftwareToken),
        (m.email_enabled, Factor::Email),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| f.cognito_name().to_owned())
    .collect();
    UserMfaSettings {
        username: user.username.clone(),
        preferred_mfa_setting: m.preferred.map(|f| f.cognito_name().to_owned()),
        user_mfa_setting_list: list,
        mfa_options: Vec::new(),
    }
}
