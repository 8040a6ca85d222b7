//! A pool's own state where it decides whether an MFA configuration can be
//! applied (COGNITO.md §3.1), and the rules that read it: the pre-flight.
//!
//! Cognito checks a SetUserPoolMfaConfig against the pool's feature plan,
//! its email and SMS sending, its sign-in policy and its account recovery,
//! and refuses what does not fit — some of it with an error, some of it
//! silently (email MFA that can never send). The facade reads these members
//! of DescribeUserPool ([`PoolState`]) and applies [`preflight`] before a
//! change and in `validate_only`, so a caller learns what is wrong, and
//! which pool property says so, before anything is written. The local
//! backend keeps the same state and answers the same rules with Cognito's
//! exceptions ([`Rule::cognito_error`]), so both backends hold one list.

use serde::{Deserialize, Serialize};

use super::{FactorConfiguration, MfaMode, PoolMfaConfig, SmsConfiguration};

/// UserPoolTierType: the feature plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    Lite,
    Essentials,
    Plus,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Lite, Tier::Essentials, Tier::Plus];

    /// The tier Cognito names `name`, if this build knows it.
    pub fn from_cognito(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.cognito_name() == name)
    }

    /// As Cognito's API spells it.
    pub fn cognito_name(self) -> &'static str {
        match self {
            Tier::Lite => "LITE",
            Tier::Essentials => "ESSENTIALS",
            Tier::Plus => "PLUS",
        }
    }
}

/// EmailSendingAccountType: who sends the pool's email.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailSendingAccount {
    /// Cognito's own sender: the default of every pool, and not enough for
    /// email MFA.
    #[default]
    CognitoDefault,
    /// The pool's own Amazon SES identity.
    Developer,
}

/// AuthFactorType: a factor a user may sign in with first (a pool's
/// AllowedFirstAuthFactors), or one a user has set up
/// (ConfiguredUserAuthFactors, where SOFTWARE_TOKEN appears too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthFactor {
    Password,
    EmailOtp,
    SmsOtp,
    WebAuthn,
    SoftwareToken,
}

impl AuthFactor {
    pub fn cognito_name(self) -> &'static str {
        match self {
            AuthFactor::Password => "PASSWORD",
            AuthFactor::EmailOtp => "EMAIL_OTP",
            AuthFactor::SmsOtp => "SMS_OTP",
            AuthFactor::WebAuthn => "WEB_AUTHN",
            AuthFactor::SoftwareToken => "SOFTWARE_TOKEN",
        }
    }

    pub const ALL: [AuthFactor; 5] = [
        AuthFactor::Password,
        AuthFactor::EmailOtp,
        AuthFactor::SmsOtp,
        AuthFactor::WebAuthn,
        AuthFactor::SoftwareToken,
    ];

    pub fn from_cognito(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.cognito_name() == name)
    }
}

/// RecoveryOptionNameType: a way to recover a forgotten password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    VerifiedEmail,
    VerifiedPhoneNumber,
    AdminOnly,
}

impl Recovery {
    pub const ALL: [Recovery; 3] = [
        Recovery::VerifiedEmail,
        Recovery::VerifiedPhoneNumber,
        Recovery::AdminOnly,
    ];

    /// The option Cognito names `name`, if this build knows it.
    pub fn from_cognito(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.cognito_name() == name)
    }

    /// As Cognito's API spells it.
    pub fn cognito_name(self) -> &'static str {
        match self {
            Recovery::VerifiedEmail => "verified_email",
            Recovery::VerifiedPhoneNumber => "verified_phone_number",
            Recovery::AdminOnly => "admin_only",
        }
    }
}

impl EmailSendingAccount {
    /// As Cognito's API spells it.
    pub fn cognito_name(self) -> &'static str {
        match self {
            EmailSendingAccount::CognitoDefault => "COGNITO_DEFAULT",
            EmailSendingAccount::Developer => "DEVELOPER",
        }
    }
}

/// The members of DescribeUserPool the pre-flight reads. What Cognito does
/// not report is `None` (or empty), and a rule that needs it does not fire:
/// the pre-flight refuses only on what it was told.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    /// UserPoolTier.
    pub tier: Option<Tier>,
    /// MfaConfiguration, as the pool has it now.
    pub mfa_configuration: Option<MfaMode>,
    /// SmsConfiguration: the pool's SMS sender (the one SMS MFA uses).
    pub sms_configuration: Option<SmsConfiguration>,
    /// SmsConfigurationFailure: why Cognito cannot send SMS with it (the
    /// SNS sandbox, a role it cannot assume).
    pub sms_configuration_failure: Option<String>,
    /// EmailConfiguration.EmailSendingAccount (absent means COGNITO_DEFAULT,
    /// as for a pool that never set one).
    pub email_sending_account: EmailSendingAccount,
    /// EmailConfigurationFailure.
    pub email_configuration_failure: Option<String>,
    /// Policies.SignInPolicy.AllowedFirstAuthFactors (empty: PASSWORD, the
    /// default of a pool without choice-based sign-in).
    pub first_auth_factors: Vec<AuthFactor>,
    /// AccountRecoverySetting.RecoveryMechanisms, by priority (empty: not
    /// set, Cognito's legacy phone-then-email).
    pub recovery: Vec<Recovery>,
    /// AutoVerifiedAttributes: `phone_number`, `email`.
    #[serde(default)]
    pub auto_verified_attributes: Vec<String>,
    /// Domain, else CustomDomain: the pool's domain (the relying party of
    /// its passkeys when the WebAuthn configuration names none).
    #[serde(default)]
    pub domain: Option<String>,
}

/// The most bytes of a failure text kept from upstream.
pub const MAX_FAILURE_TEXT: usize = 256;

/// Whose a state rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Cognito refuses the change: the pre-flight answers FAILED_PRECONDITION
    /// before the call, and the local backend Cognito's own exception.
    Cognito,
    /// Cognito accepts the change, but it will not work as the caller
    /// expects: a finding of CheckUserPoolMfaConfig and an
    /// `x-mfa-facade-warning`, never a refusal (unless a guardrail over
    /// `state` makes it one).
    Advice,
}

/// One state rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `PreconditionFailure.Violation.type`: stable, for callers to match.
    pub name: &'static str,
    pub kind: RuleKind,
    /// Where it comes from (COGNITO.md's source keys).
    pub source: &'static str,
    /// `PreconditionFailure.Violation.subject`: the pool property (the
    /// DescribeUserPool member, or the request field it meets).
    pub subject: &'static str,
    /// What Cognito answers when the local backend is asked to break it.
    cognito_exception: &'static str,
    /// Cognito's message. Where AWS's exact wording is unconfirmed
    /// (COGNITO.md §3.1 and §5), the rule's comment below says so; the
    /// caller is not told, since it cannot act on it.
    cognito_message: &'static str,
}

impl Rule {
    /// The exception and message Cognito answers for this rule.
    pub fn cognito_error(&self) -> (&'static str, &'static str) {
        (self.cognito_exception, self.cognito_message)
    }
}

/// Email MFA on the Lite plan. Source: [BC] SetUserPoolMfaConfig
/// (FeatureUnavailableInTierException); aws-amplify/amplify-backend#2805 for
/// the message's form. The email-MFA wording is unconfirmed.
pub const EMAIL_MFA_TIER: Rule = Rule {
    name: "EMAIL_MFA_NEEDS_ESSENTIALS",
    kind: RuleKind::Cognito,
    source: "botocore SetUserPoolMfaConfig: FeatureUnavailableInTierException; EmailMfaConfigType",
    subject: "UserPoolTier",
    cognito_exception: "FeatureUnavailableInTierException",
    cognito_message: "The following features need to be disabled for the LITE pricing tier configured: Email MFA",
};

/// Email MFA without the pool's own SES identity. Source: [DG-MFA], [DG-ESS]
/// ("An active email configuration with your own Amazon SES resources");
/// AWS CDK refuses the same. That SetUserPoolMfaConfig refuses it is
/// unconfirmed (COGNITO.md §6.4): advice, so no change Cognito may accept
/// is refused.
pub const EMAIL_MFA_SENDER: Rule = Rule {
    name: "EMAIL_MFA_NEEDS_SES",
    kind: RuleKind::Advice,
    source: "developer guide, MFA: email MFA needs the pool's own Amazon SES (DEVELOPER); Cognito's refusal unconfirmed",
    subject: "EmailConfiguration.EmailSendingAccount",
    cognito_exception: "InvalidParameterException",
    cognito_message: "Email MFA requires an email configuration with EmailSendingAccount DEVELOPER.",
};

/// Email MFA with "email only" account recovery. Source: [DG-MFA];
/// hashicorp/terraform-provider-aws#41049. Wording unconfirmed.
pub const EMAIL_MFA_RECOVERY: Rule = Rule {
    name: "EMAIL_MFA_WITH_EMAIL_ONLY_RECOVERY",
    kind: RuleKind::Cognito,
    source: "developer guide, MFA; hashicorp/terraform-provider-aws#41049",
    subject: "AccountRecoverySetting",
    cognito_exception: "InvalidParameterException",
    cognito_message: "Email MFA cannot be enabled when account recovery is email only.",
};

/// MFA ON while EMAIL_OTP or SMS_OTP may be a first factor. Source:
/// go-to-k/cdkd#1975 and PR #2069 (wording confirmed there, 2026-08).
pub const ON_WITH_OTP_FIRST_FACTOR: Rule = Rule {
    name: "MFA_ON_WITH_OTP_FIRST_FACTOR",
    kind: RuleKind::Cognito,
    source: "developer guide, MFA; go-to-k/cdkd#1975",
    subject: "Policies.SignInPolicy.AllowedFirstAuthFactors",
    cognito_exception: "InvalidParameterException",
    cognito_message: "Only PASSWORD and WEB_AUTHN (if configured) can be enabled as an auth factor if MFA is enabled",
};

/// MFA ON with WEB_AUTHN a first factor and the passkey not a second one.
/// Source: go-to-k/cdkd#2064 (wording confirmed there, 2026-08-20).
pub const ON_WITH_SINGLE_FACTOR_PASSKEY: Rule = Rule {
    name: "MFA_ON_WITH_SINGLE_FACTOR_PASSKEY",
    kind: RuleKind::Cognito,
    source: "go-to-k/cdkd#2064",
    subject: "WebAuthnConfiguration.FactorConfiguration",
    cognito_exception: "InvalidParameterException",
    cognito_message: "Cannot set WebAuthn factor configuration to SINGLE_FACTOR if MFA is required and WebAuthn is an allowed first auth factor",
};

/// SMS MFA while Cognito reports the pool's SMS sending failing (the SNS
/// sandbox, a role it cannot assume). Cognito accepts the call; in the SNS
/// sandbox it still sends to SNS-verified numbers ([DG-MFA]), and the field
/// is not set at all when the pool's creator lacked SNS permissions ([BC]):
/// advice, never a refusal. Source: [BC] UserPoolType.SmsConfigurationFailure
/// ("SNSSandbox", "InvalidSmsRoleTrustRelationshipException").
pub const SMS_SENDING_FAILED: Rule = Rule {
    name: "SMS_CONFIGURATION_FAILED",
    kind: RuleKind::Advice,
    source: "botocore UserPoolType.SmsConfigurationFailure; developer guide, SMS sandbox",
    subject: "SmsConfigurationFailure",
    cognito_exception: "InvalidSmsRoleTrustRelationshipException",
    cognito_message: "The user pool's SMS configuration is failing; SMS MFA codes cannot be sent.",
};

/// A WebAuthn configuration on the Lite plan: the whole
/// WebAuthnConfigurationType is "Essentials tier or higher" (API
/// reference). The message follows EMAIL_MFA_TIER's form; its wording is
/// unconfirmed.
pub const WEB_AUTHN_TIER: Rule = Rule {
    name: "WEB_AUTHN_NEEDS_ESSENTIALS",
    subject: "UserPoolTier",
    kind: RuleKind::Cognito,
    source: "API reference WebAuthnConfigurationType: Essentials tier or higher",
    cognito_exception: "FeatureUnavailableInTierException",
    cognito_message: "The following features need to be disabled for the LITE pricing tier configured: WebAuthn",
};

/// phone_number auto-verification without an SMS configuration: Cognito's
/// SetUserPoolMfaConfig answers "SMS configuration is required when
/// phone_number is selected for auto verification"
/// (hashicorp/terraform-provider-aws#28294, the wording confirmed there).
pub const AUTO_VERIFIED_PHONE_NEEDS_SMS: Rule = Rule {
    name: "AUTO_VERIFIED_PHONE_NEEDS_SMS",
    subject: "AutoVerifiedAttributes",
    kind: RuleKind::Cognito,
    source: "hashicorp/terraform-provider-aws#28294: SetUserPoolMfaConfig's answer",
    cognito_exception: "InvalidParameterException",
    cognito_message: "SMS configuration is required when phone_number is selected for auto verification",
};

/// A WebAuthn configuration with no relying party id on a pool with no
/// domain: SetUserPoolMfaConfig does not model the refusal, and passkey
/// registration then fails with WebAuthnConfigurationMissingException
/// ([BC]): advice.
pub const WEB_AUTHN_NEEDS_RELYING_PARTY: Rule = Rule {
    name: "WEB_AUTHN_NEEDS_RELYING_PARTY",
    subject: "WebAuthnConfiguration.RelyingPartyId",
    kind: RuleKind::Advice,
    source: "botocore WebAuthnConfigurationMissingException (StartWebAuthnRegistration); API reference WebAuthnConfigurationType.RelyingPartyId",
    cognito_exception: "WebAuthnConfigurationMissingException",
    cognito_message: "WebAuthn configuration is missing.",
};

/// Every state rule, in the order they are checked.
pub const RULES: [Rule; 9] = [
    EMAIL_MFA_TIER,
    EMAIL_MFA_SENDER,
    EMAIL_MFA_RECOVERY,
    ON_WITH_OTP_FIRST_FACTOR,
    ON_WITH_SINGLE_FACTOR_PASSKEY,
    SMS_SENDING_FAILED,
    WEB_AUTHN_TIER,
    AUTO_VERIFIED_PHONE_NEEDS_SMS,
    WEB_AUTHN_NEEDS_RELYING_PARTY,
];

/// One rule that `after` breaks on this pool, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Precondition {
    #[serde(rename = "type")]
    pub rule: &'static str,
    pub subject: &'static str,
    pub description: String,
    pub kind: RuleKind,
    #[serde(skip)]
    pub cognito: (&'static str, &'static str),
}

impl Precondition {
    /// Cognito refuses it (else it is advice).
    pub fn refused(&self) -> bool {
        self.kind == RuleKind::Cognito
    }
}

fn broken(rule: Rule, description: String) -> Precondition {
    Precondition {
        rule: rule.name,
        subject: rule.subject,
        description,
        kind: rule.kind,
        cognito: rule.cognito_error(),
    }
}

/// The state rules `after` (the whole configuration the pool would have)
/// breaks on a pool in `state`; empty when it can be applied.
pub fn preflight(state: &PoolState, after: &PoolMfaConfig) -> Vec<Precondition> {
    let mut found = Vec::new();
    if after.email.is_some() {
        if state.tier == Some(Tier::Lite) {
            found.push(broken(
                EMAIL_MFA_TIER,
                "email MFA needs the Essentials or Plus feature plan; this pool is on LITE".into(),
            ));
        }
        if state.email_sending_account != EmailSendingAccount::Developer {
            found.push(broken(
                EMAIL_MFA_SENDER,
                "email MFA needs the pool to send email through its own Amazon SES identity \
                 (EmailSendingAccount DEVELOPER); it sends through COGNITO_DEFAULT"
                    .into(),
            ));
        }
        if state.recovery == [Recovery::VerifiedEmail] {
            found.push(broken(
                EMAIL_MFA_RECOVERY,
                "email MFA cannot be on while account recovery is email only; \
                 recover by verified_email then verified_phone_number instead"
                    .into(),
            ));
        }
    }
    if after.mode == Some(MfaMode::On) {
        let otp: Vec<&str> = state
            .first_auth_factors
            .iter()
            .filter_map(|f| match f {
                AuthFactor::EmailOtp => Some("EMAIL_OTP"),
                AuthFactor::SmsOtp => Some("SMS_OTP"),
                _ => None,
            })
            .collect();
        if !otp.is_empty() {
            found.push(broken(
                ON_WITH_OTP_FIRST_FACTOR,
                format!(
                    "MFA ON needs a sign-in policy whose first factors are only PASSWORD and WEB_AUTHN; \
                     this pool also allows {}",
                    otp.join(" and ")
                ),
            ));
        }
        let multi_factor_passkey = after.web_authn.as_ref().is_some_and(|w| {
            w.factor_configuration == Some(FactorConfiguration::MultiFactorWithUserVerification)
        });
        if state.first_auth_factors.contains(&AuthFactor::WebAuthn) && !multi_factor_passkey {
            found.push(broken(
                ON_WITH_SINGLE_FACTOR_PASSKEY,
                "MFA ON with WEB_AUTHN as a first factor needs web_authn_configuration.factor_configuration \
                 MULTI_FACTOR_WITH_USER_VERIFICATION"
                    .into(),
            ));
        }
    }
    let sends_sms = after
        .sms
        .as_ref()
        .is_some_and(|s| s.sms_configuration.is_some());
    if !sends_sms
        && state
            .auto_verified_attributes
            .iter()
            .any(|a| a == "phone_number")
    {
        found.push(broken(
            AUTO_VERIFIED_PHONE_NEEDS_SMS,
            "the pool auto-verifies phone_number, which needs an SMS configuration: keep \
             sms_mfa_configuration.sms_configuration, or stop auto-verifying phone_number first"
                .into(),
        ));
    }
    if after
        .web_authn
        .as_ref()
        .is_some_and(|w| w.relying_party_id.is_none())
        && state.domain.is_none()
    {
        found.push(broken(
            WEB_AUTHN_NEEDS_RELYING_PARTY,
            "the WebAuthn configuration names no relying_party_id and the pool has no domain: Cognito \
             accepts it, but passkey registration fails (WebAuthnConfigurationMissingException) until \
             one of them is set"
                .into(),
        ));
    }
    if after.web_authn.is_some() && state.tier == Some(Tier::Lite) {
        found.push(broken(
            WEB_AUTHN_TIER,
            "a WebAuthn (passkey) configuration needs the Essentials or Plus feature plan; this pool is on LITE"
                .into(),
        ));
    }
    if let (Some(_), Some(why)) = (&after.sms, &state.sms_configuration_failure) {
        // The failure is the pool's (SNSSandbox is the account's): another
        // sms_configuration in this request does not clear it; Cognito
        // clears it once sending works.
        found.push(broken(
            SMS_SENDING_FAILED,
            format!(
                "the pool's SMS configuration reports a failure ({}): Cognito accepts SMS MFA, but codes \
                 may not reach users (in the SNS sandbox only SNS-verified numbers get them). Fix the \
                 SNS role or move the account out of the SNS sandbox",
                super::text::truncate(why, MAX_FAILURE_TEXT)
            ),
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailMfaConfig, SmsMfaConfig, WebAuthnConfig};

    fn ready() -> PoolState {
        PoolState {
            tier: Some(Tier::Essentials),
            email_sending_account: EmailSendingAccount::Developer,
            domain: Some("auth-acme".into()),
            ..Default::default()
        }
    }

    fn email_on() -> PoolMfaConfig {
        PoolMfaConfig {
            email: Some(EmailMfaConfig::default()),
            mode: Some(MfaMode::Optional),
            ..Default::default()
        }
    }

    fn names(found: &[Precondition]) -> Vec<&str> {
        found.iter().map(|p| p.rule).collect()
    }

    #[test]
    fn email_mfa_needs_the_plan_and_other_recovery_and_is_advised_its_sender() {
        assert!(preflight(&ready(), &email_on()).is_empty());
        let state = PoolState {
            tier: Some(Tier::Lite),
            email_sending_account: EmailSendingAccount::CognitoDefault,
            email_configuration_failure: Some("SES identity not verified".into()),
            recovery: vec![Recovery::VerifiedEmail],
            ..Default::default()
        };
        let found = preflight(&state, &email_on());
        assert_eq!(
            names(&found),
            [
                "EMAIL_MFA_NEEDS_ESSENTIALS",
                "EMAIL_MFA_NEEDS_SES",
                "EMAIL_MFA_WITH_EMAIL_ONLY_RECOVERY"
            ]
        );
        // The deprecated EmailConfigurationFailure decides nothing; the
        // sender is advice (Cognito's refusal unconfirmed), the rest refused.
        let refused: Vec<bool> = found.iter().map(Precondition::refused).collect();
        assert_eq!(refused, [true, false, true]);
        // Without email MFA none of them applies.
        assert!(preflight(&state, &PoolMfaConfig::default()).is_empty());
        // Email then phone is fine; an unknown plan is not refused.
        let state = PoolState {
            tier: None,
            recovery: vec![Recovery::VerifiedEmail, Recovery::VerifiedPhoneNumber],
            ..ready()
        };
        assert!(preflight(&state, &email_on()).is_empty());
    }

    #[test]
    fn mfa_on_needs_a_password_first_sign_in() {
        let on = PoolMfaConfig {
            mode: Some(MfaMode::On),
            ..email_on()
        };
        let state = PoolState {
            first_auth_factors: vec![
                AuthFactor::Password,
                AuthFactor::SmsOtp,
                AuthFactor::WebAuthn,
            ],
            ..ready()
        };
        assert_eq!(
            names(&preflight(&state, &on)),
            [
                "MFA_ON_WITH_OTP_FIRST_FACTOR",
                "MFA_ON_WITH_SINGLE_FACTOR_PASSKEY"
            ]
        );
        // OPTIONAL is accepted with the same sign-in policy.
        assert!(preflight(&state, &email_on()).is_empty());
        let passkey_as_mfa = PoolMfaConfig {
            web_authn: Some(WebAuthnConfig {
                factor_configuration: Some(FactorConfiguration::MultiFactorWithUserVerification),
                ..Default::default()
            }),
            ..on.clone()
        };
        let state = PoolState {
            first_auth_factors: vec![AuthFactor::Password, AuthFactor::WebAuthn],
            ..ready()
        };
        assert!(preflight(&state, &passkey_as_mfa).is_empty());
        assert_eq!(
            names(&preflight(&state, &on)),
            ["MFA_ON_WITH_SINGLE_FACTOR_PASSKEY"]
        );
    }

    #[test]
    fn sms_mfa_while_sms_sending_fails_is_advice_not_a_refusal() {
        let state = PoolState {
            sms_configuration_failure: Some("SNSSandbox".into()),
            ..ready()
        };
        let sms = PoolMfaConfig {
            sms: Some(SmsMfaConfig::default()),
            mode: Some(MfaMode::Optional),
            ..Default::default()
        };
        let found = preflight(&state, &sms);
        assert_eq!(names(&found), ["SMS_CONFIGURATION_FAILED"]);
        assert!(found[0].description.contains("SNSSandbox"));
        assert!(!found[0].refused(), "Cognito accepts it: advice");
        assert!(preflight(&ready(), &sms).is_empty());
        // TOTP alone does not care.
        assert!(preflight(&state, &PoolMfaConfig::default()).is_empty());
    }

    #[test]
    fn a_web_authn_configuration_needs_essentials() {
        let passkeys = PoolMfaConfig {
            web_authn: Some(WebAuthnConfig::default()),
            ..Default::default()
        };
        let lite = PoolState {
            tier: Some(Tier::Lite),
            ..ready()
        };
        let found = preflight(&lite, &passkeys);
        assert_eq!(names(&found), ["WEB_AUTHN_NEEDS_ESSENTIALS"]);
        assert!(found[0].refused());
        assert!(preflight(&ready(), &passkeys).is_empty());
    }

    #[test]
    fn auto_verified_phone_needs_sms_and_a_passkey_its_relying_party() {
        let totp_only = PoolMfaConfig {
            software_token: Some(crate::domain::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mode: Some(MfaMode::Optional),
            ..Default::default()
        };
        let auto_phone = PoolState {
            auto_verified_attributes: vec!["phone_number".into()],
            ..ready()
        };
        let found = preflight(&auto_phone, &totp_only);
        assert_eq!(names(&found), ["AUTO_VERIFIED_PHONE_NEEDS_SMS"]);
        assert!(found[0].refused());
        let with_sms = PoolMfaConfig {
            sms: Some(SmsMfaConfig {
                sms_authentication_message: None,
                sms_configuration: Some(crate::domain::SmsConfiguration::default()),
            }),
            ..totp_only.clone()
        };
        assert!(preflight(&auto_phone, &with_sms).is_empty());
        let email_only = PoolState {
            auto_verified_attributes: vec!["email".into()],
            ..ready()
        };
        assert!(preflight(&email_only, &totp_only).is_empty());
        let passkeys = PoolMfaConfig {
            web_authn: Some(WebAuthnConfig::default()),
            ..totp_only.clone()
        };
        let no_domain = PoolState {
            domain: None,
            ..ready()
        };
        let found = preflight(&no_domain, &passkeys);
        assert_eq!(names(&found), ["WEB_AUTHN_NEEDS_RELYING_PARTY"]);
        assert!(!found[0].refused(), "Cognito accepts it: advice");
        assert!(
            preflight(&ready(), &passkeys).is_empty(),
            "the domain is its relying party"
        );
        let named = PoolMfaConfig {
            web_authn: Some(WebAuthnConfig {
                relying_party_id: Some("auth.example.com".into()),
                ..Default::default()
            }),
            ..totp_only
        };
        assert!(preflight(&no_domain, &named).is_empty());
    }

    #[test]
    fn every_rule_is_named_once() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.name), "{}", r.name);
            assert!(!r.cognito_error().1.is_empty());
        }
    }
}
