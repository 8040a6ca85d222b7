//! Guardrails: what an organisation holds every caller to when it changes
//! a pool's MFA configuration, whatever the caller's grants — "production
//! pools never go to MFA OFF", "SMS only with an ExternalId". The model is
//! Kubernetes' ValidatingAdmissionPolicy (PRECEDENTS.md §9a): each
//! `[[guardrails]]` entry is a CEL expression that must hold (evaluate to
//! `true`) for the pools and methods it names, with a message, and actions
//! from `deny` (refuse the change: FAILED_PRECONDITION naming the
//! guardrail), `warn` (let it through; the caller gets the message in the
//! `x-mfa-facade-warning` trailer and the record holds it) and `audit`
//! (the record alone holds it).
//!
//! Expressions are compiled when the configuration loads: a parse error,
//! a variable other than the ones below, or a result that is not a bool on
//! a configuration with every block present refuses the file, naming the
//! guardrail. (The `cel` crate parses and evaluates; it has no type
//! checker, so that trial evaluation stands in for one.) At run time an
//! expression that fails to evaluate counts as not holding: a `deny`
//! guardrail fails closed.
//!
//! What an expression sees (`docs/guardrails.md` shows each):
//! - `before`, `after`: the pool's MFA configuration before the change and
//!   the whole of it after (an update's merge), with the API's field names;
//!   a factor block is absent when the factor is off (`has(after.email_mfa_configuration)`);
//!   secrets appear only as `has_external_id`;
//! - `request`: `method` (short name), `user_pool_id`, `validate_only`;
//! - `principal`: `name`, `proven_by`;
//! - `state`: the pool's state the pre-flight read (`tier`,
//!   `email_sending_account`, `first_auth_factors`, `recovery`, ...), empty
//!   when `backend.preflight = false`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use crate::domain::{
    FactorConfiguration, MfaMode, PoolMfaConfig, PoolState, SmsConfiguration, UserVerification,
};
use crate::glob::glob_match;

use super::settings::{GuardrailAction, GuardrailConfig};

/// The methods that change one user, not a pool, that guardrails cover:
/// their expressions see `request.username` and empty `before`, `after` and
/// `state`.
pub const USER_CHANGES: [&str; 1] = [crate::method::ADMIN_RESET_USER_MFA.name];

/// The methods that change (or check a change of) a pool's configuration.
const POOL_CHANGES: [&str; 3] = [
    crate::method::SET_USER_POOL_MFA_CONFIG.name,
    crate::method::UPDATE_USER_POOL_MFA_CONFIG.name,
    crate::method::CHECK_USER_POOL_MFA_CONFIG.name,
];

/// The variables an expression may name.
pub const VARIABLES: [&str; 5] = ["before", "after", "request", "principal", "state"];
/// The most bytes of one expression (`guardrails[].expression`).
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// A compiled guardrail.
pub struct Guardrail {
    pub name: String,
    user_pools: Vec<String>,
    methods: Vec<String>,
    /// Whether the expression gives a bool on a change of one user: a
    /// guardrail whose methods reach AdminResetUserMfa only by a wildcard
    /// covers it only then (an expression written for pool changes, over
    /// `after.…` without `has()`, never fails a reset closed).
    covers_users: bool,
    program: cel::Program,
    pub message: String,
    pub actions: Vec<GuardrailAction>,
}

/// The guardrails of one configuration, compiled.
#[derive(Default, Clone)]
pub struct Guardrails(Arc<Vec<Guardrail>>);

/// What a change meets: every guardrail that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub guardrail: String,
    pub message: String,
    pub actions: Vec<GuardrailAction>,
    /// Set when the expression could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Finding {
    /// The message, and why it could not be told when it could not.
    pub fn detail(&self) -> String {
        match &self.error {
            None => self.message.clone(),
            Some(e) => format!(
                "{} (the expression could not be evaluated: {e})",
                self.message
            ),
        }
    }

    /// `name: message`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.guardrail, self.detail())
    }

    pub fn denies(&self) -> bool {
        self.actions.contains(&GuardrailAction::Deny)
    }
    pub fn warns(&self) -> bool {
        self.actions.contains(&GuardrailAction::Warn)
    }
}

/// What an expression is evaluated over.
pub struct Subject<'a> {
    pub method: &'a str,
    pub user_pool_id: &'a str,
    pub validate_only: bool,
    pub principal: (&'a str, &'a str),
    /// The change: a pool's configuration before and after, or (a change
    /// of one user: AdminResetUserMfa) the user, with `before`, `after`
    /// and `state` empty.
    pub change: Changed<'a>,
    pub state: Option<&'a PoolState>,
}

/// What a guarded call changes.
pub enum Changed<'a> {
    Pool {
        before: &'a PoolMfaConfig,
        after: &'a PoolMfaConfig,
    },
    User {
        username: &'a str,
    },
}

/// Whether a guardrail's `methods` name `method` (a full name).
fn names_method(methods: &[String], method: &str) -> bool {
    let short = method.rsplit('/').next().unwrap_or(method);
    methods
        .iter()
        .any(|m| glob_match(m, method, Some('/')) || glob_match(m, short, None))
}

/// `trial`: the context of a configuration and state with every member
/// present, built once for all the guardrails of a file.
fn compile_one(
    c: &GuardrailConfig,
    trial: Option<&Result<cel::Context<'static, 'static>, String>>,
) -> Result<cel::Program, String> {
    if c.expression.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression is {} bytes, more than {MAX_EXPRESSION_BYTES}",
            c.expression.len()
        ));
    }
    let program = cel::Program::compile(&c.expression)
        .map_err(|e| format!("the expression does not parse: {e}"))?;
    let references = program.references();
    let mut unknown: Vec<&str> = references
        .variables()
        .into_iter()
        .filter(|v| !VARIABLES.contains(v))
        .collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        return Err(format!(
            "the expression names {}; it may name only {}",
            unknown.join(", "),
            VARIABLES.join(", ")
        ));
    }
    // An expression that cannot give a bool on the full trial is wrong in
    // its types.
    match trial.map(|t| evaluate(&program, t)) {
        None | Some(Ok(_)) => Ok(program),
        Some(Err(e)) => Err(format!(
            "the expression does not give a bool on a full configuration: {e}"
        )),
    }
}

impl Guardrails {
    /// Compiles every guardrail; the errors name each by index and name.
    pub fn compile(configs: &[GuardrailConfig]) -> Result<Self, Vec<(String, String)>> {
        // No guardrail: no CEL at all (its context and interpreter are
        // ~0.6 MiB of code a start would otherwise bring into memory).
        if configs.is_empty() {
            return Ok(Self::default());
        }
        let mut compiled = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        let full = sample();
        let trial = context(&Subject {
            method: "SetUserPoolMfaConfig",
            user_pool_id: "us-east-1_Example00",
            validate_only: false,
            principal: ("example", "api_key"),
            change: Changed::Pool {
                before: &full.0,
                after: &full.0,
            },
            state: Some(&full.1),
        });
        // A guardrail that names a change of one user (AdminResetUserMfa)
        // must also give a bool there, where no pool configuration exists:
        // refused at load, never failing closed on a lost phone at 3 am.
        let user_trial = context(&Subject {
            method: USER_CHANGES[0],
            user_pool_id: "us-east-1_Example00",
            validate_only: false,
            principal: ("example", "api_key"),
            change: Changed::User {
                username: "example",
            },
            state: None,
        });
        for (i, c) in configs.iter().enumerate() {
            // Named outright (no wildcard): the reset must be guardable.
            let named = USER_CHANGES.iter().any(|m| {
                let short = m.rsplit('/').next().unwrap_or(m);
                c.methods.iter().any(|g| g == m || g == short)
            });
            // A guardrail over the reset alone is not tried on a pool change.
            let pools = POOL_CHANGES.iter().any(|m| names_method(&c.methods, m)) || !named;
            let checked = compile_one(c, pools.then_some(&trial)).and_then(|program| {
                let total = evaluate(&program, &user_trial).is_ok();
                if named && !total {
                    return Err("it names AdminResetUserMfa, a change of one user, where `before`, `after` and `state` are empty; the expression does not give a bool there (test pool fields with has())"
                        .into());
                }
                Ok((program, total))
            });
            match checked {
                Ok((program, covers_users)) => compiled.push(Guardrail {
                    name: c.name.clone(),
                    user_pools: c.user_pools.clone(),
                    methods: c.methods.clone(),
                    covers_users,
                    program,
                    message: c.message.clone(),
                    actions: c.actions.clone(),
                }),
                Err(e) => errors.push((
                    format!("guardrails[{i}].expression"),
                    format!("guardrail {:?}: {e}", c.name),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Self(Arc::new(compiled)))
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any guardrail covers `method` (full name) on `pool`.
    pub fn apply_to(&self, method: &str, pool: &str) -> bool {
        self.0.iter().any(|g| g.covers(method, pool))
    }

    /// Every guardrail covering the change that does not hold.
    pub fn check(&self, full_method: &str, subject: &Subject<'_>) -> Vec<Finding> {
        let mut found = Vec::new();
        let mut covering = self
            .0
            .iter()
            .filter(|g| g.covers(full_method, subject.user_pool_id))
            .peekable();
        if covering.peek().is_none() {
            return found;
        }
        // The change as CEL values once, for every guardrail that covers it.
        let context = context(subject);
        for g in covering {
            let error = match evaluate(&g.program, &context) {
                Ok(true) => continue,
                Ok(false) => None,
                Err(e) => Some(crate::domain::text::truncate(&e, 256).into_owned()),
            };
            found.push(Finding {
                guardrail: g.name.clone(),
                message: g.message.clone(),
                actions: g.actions.clone(),
                error,
            });
        }
        found
    }
}

impl Guardrail {
    fn covers(&self, method: &str, pool: &str) -> bool {
        (self.covers_users || !USER_CHANGES.contains(&method))
            && names_method(&self.methods, method)
            && self.user_pools.iter().any(|p| glob_match(p, pool, None))
    }
}

/// The variables an expression sees, for one change.
fn context(s: &Subject<'_>) -> Result<cel::Context<'static, 'static>, String> {
    let mut context = cel::Context::default();
    let empty = || Json::Object(Map::new());
    let mut request = json!({"method": s.method.rsplit('/').next().unwrap_or(s.method),
                             "user_pool_id": s.user_pool_id, "validate_only": s.validate_only});
    let (before, after) = match s.change {
        Changed::Pool { before, after } => (config_view(before), config_view(after)),
        Changed::User { username } => {
            request["username"] = json!(username);
            (empty(), empty())
        }
    };
    let vars = [
        ("before", before),
        ("after", after),
        ("request", request),
        (
            "principal",
            json!({"name": s.principal.0, "proven_by": s.principal.1}),
        ),
        (
            "state",
            s.state
                .map(state_view)
                .unwrap_or_else(|| Json::Object(Map::new())),
        ),
    ];
    for (name, value) in vars {
        let value = cel::to_value(value).map_err(|e| e.to_string())?;
        context.add_variable_from_value(name, value);
    }
    Ok(context)
}

/// The expression's bool over `context` (or why there is none).
fn evaluate(
    program: &cel::Program,
    context: &Result<cel::Context<'static, 'static>, String>,
) -> Result<bool, String> {
    let context = context.as_ref().map_err(Clone::clone)?;
    match program.execute(context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("it gave {:?}, not a bool", other.type_of())),
        Err(e) => Err(e.to_string()),
    }
}

fn mode_name(m: Option<MfaMode>) -> &'static str {
    match m {
        Some(MfaMode::On) => "ON",
        Some(MfaMode::Optional) => "OPTIONAL",
        Some(MfaMode::Off) | None => "OFF",
    }
}

/// The pool's state as an expression sees it: DescribeUserPool's members
/// under the API's names, every value spelled as Cognito's API spells it
/// (`mfa_configuration` "OFF"/"ON"/"OPTIONAL", as in `after`), a member
/// only when Cognito reported it, no secret (an ExternalId is only
/// `has_external_id`).
fn state_view(s: &PoolState) -> Json {
    let mut m = Map::new();
    if let Some(tier) = s.tier {
        m.insert("tier".into(), json!(tier.cognito_name()));
    }
    if let Some(mode) = s.mfa_configuration {
        m.insert("mfa_configuration".into(), json!(mode_name(Some(mode))));
    }
    if let Some(c) = &s.sms_configuration {
        m.insert("sms_configuration".into(), sms_configuration_view(c));
    }
    if let Some(f) = &s.sms_configuration_failure {
        m.insert("sms_configuration_failure".into(), json!(f));
    }
    m.insert(
        "email_sending_account".into(),
        json!(s.email_sending_account.cognito_name()),
    );
    if let Some(f) = &s.email_configuration_failure {
        m.insert("email_configuration_failure".into(), json!(f));
    }
    m.insert(
        "first_auth_factors".into(),
        json!(
            s.first_auth_factors
                .iter()
                .map(|f| f.cognito_name())
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "recovery".into(),
        json!(
            s.recovery
                .iter()
                .map(|r| r.cognito_name())
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "auto_verified_attributes".into(),
        json!(s.auto_verified_attributes),
    );
    if let Some(d) = &s.domain {
        m.insert("domain".into(), json!(d));
    }
    Json::Object(m)
}

fn sms_configuration_view(c: &SmsConfiguration) -> Json {
    let mut m = Map::new();
    if let Some(arn) = &c.sns_caller_arn {
        m.insert("sns_caller_arn".into(), json!(arn));
    }
    m.insert("has_external_id".into(), json!(c.external_id.is_some()));
    if let Some(r) = &c.sns_region {
        m.insert("sns_region".into(), json!(r));
    }
    if let Some(e) = &c.eums_sms {
        m.insert(
            "eums_sms".into(),
            json!({"caller_arn": e.caller_arn, "has_external_id": e.external_id.is_some(),
                   "region": e.region}),
        );
    }
    Json::Object(m)
}

/// The configuration as an expression sees it: the API's field names, a
/// block only when it is on, no secret.
fn config_view(c: &PoolMfaConfig) -> Json {
    let mut m = Map::new();
    m.insert("mfa_configuration".into(), json!(mode_name(c.mode)));
    if let Some(sms) = &c.sms {
        let mut s = Map::new();
        if let Some(text) = &sms.sms_authentication_message {
            s.insert("sms_authentication_message".into(), json!(text));
        }
        if let Some(conf) = &sms.sms_configuration {
            s.insert("sms_configuration".into(), sms_configuration_view(conf));
        }
        m.insert("sms_mfa_configuration".into(), Json::Object(s));
    }
    if let Some(t) = &c.software_token {
        m.insert(
            "software_token_mfa_configuration".into(),
            json!({"enabled": t.enabled == Some(true)}),
        );
    }
    if let Some(e) = &c.email {
        m.insert(
            "email_mfa_configuration".into(),
            json!({"message": e.message, "subject": e.subject}),
        );
    }
    if let Some(w) = &c.web_authn {
        m.insert(
            "web_authn_configuration".into(),
            json!({
                "relying_party_id": w.relying_party_id,
                "user_verification": match w.user_verification {
                    Some(UserVerification::Required) => "required",
                    Some(UserVerification::Preferred) | None => "preferred",
                },
                "factor_configuration": match w.factor_configuration {
                    Some(FactorConfiguration::MultiFactorWithUserVerification) => "MULTI_FACTOR_WITH_USER_VERIFICATION",
                    Some(FactorConfiguration::SingleFactor) | None => "SINGLE_FACTOR",
                },
            }),
        );
    }
    Json::Object(m)
}

/// A configuration and a state with every member present, for the trial.
fn sample() -> (PoolMfaConfig, PoolState) {
    use crate::domain::pool_state::{AuthFactor, Recovery, Tier};
    use crate::domain::{
        EmailMfaConfig, EumsSmsConfig, Secret, SmsMfaConfig, SoftwareTokenMfaConfig, WebAuthnConfig,
    };
    let sms = SmsConfiguration {
        sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
        external_id: Some(Secret::new("example")),
        sns_region: Some("us-east-1".into()),
        eums_sms: Some(EumsSmsConfig {
            caller_arn: "arn:aws:iam::123456789012:role/eums".into(),
            external_id: Some(Secret::new("example")),
            region: Some("us-east-1".into()),
            ..Default::default()
        }),
    };
    let config = PoolMfaConfig {
        sms: Some(SmsMfaConfig {
            sms_authentication_message: Some("Code {####}".into()),
            sms_configuration: Some(sms.clone()),
        }),
        software_token: Some(SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        email: Some(EmailMfaConfig {
            message: Some("Code {####}".into()),
            subject: Some("Code".into()),
        }),
        mode: Some(MfaMode::Optional),
        web_authn: Some(WebAuthnConfig {
            relying_party_id: Some("auth.example.com".into()),
            user_verification: Some(UserVerification::Required),
            factor_configuration: Some(FactorConfiguration::MultiFactorWithUserVerification),
        }),
    };
    let state = PoolState {
        tier: Some(Tier::Essentials),
        mfa_configuration: Some(MfaMode::Optional),
        sms_configuration: Some(sms),
        sms_configuration_failure: Some("example".into()),
        email_sending_account: Default::default(),
        email_configuration_failure: Some("example".into()),
        first_auth_factors: vec![AuthFactor::Password],
        recovery: vec![Recovery::VerifiedEmail],
        auto_verified_attributes: vec!["email".into()],
        domain: Some("example".into()),
    };
    (config, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rail(expression: &str, actions: &[GuardrailAction]) -> GuardrailConfig {
        GuardrailConfig {
            name: "g".into(),
            user_pools: vec!["us-east-1_Prod*".into()],
            methods: vec!["*".into()],
            expression: expression.into(),
            message: "m".into(),
            actions: actions.to_vec(),
        }
    }

    fn subject<'a>(
        pool: &'a str,
        before: &'a PoolMfaConfig,
        after: &'a PoolMfaConfig,
    ) -> Subject<'a> {
        Subject {
            method: "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
            user_pool_id: pool,
            validate_only: false,
            principal: ("ops", "api_key"),
            change: Changed::Pool { before, after },
            state: None,
        }
    }

    #[test]
    fn a_guardrail_holds_fails_or_does_not_apply() {
        let g = Guardrails::compile(&[rail(
            "after.mfa_configuration != 'OFF'",
            &[GuardrailAction::Deny],
        )])
        .unwrap();
        let off = PoolMfaConfig {
            mode: Some(MfaMode::Off),
            ..Default::default()
        };
        let on = PoolMfaConfig {
            mode: Some(MfaMode::On),
            ..Default::default()
        };
        let m = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        assert!(g.check(m, &subject("us-east-1_Prod1", &on, &on)).is_empty());
        let found = g.check(m, &subject("us-east-1_Prod1", &on, &off));
        assert_eq!(found.len(), 1);
        assert!(found[0].denies() && found[0].error.is_none());
        // Another pool: not covered.
        assert!(
            g.check(m, &subject("us-east-1_Dev01", &on, &off))
                .is_empty()
        );
    }

    /// Issue 32: one spelling. Every enum value an expression sees, in
    /// `before`, `after` and `state`, is the API's own (the SDK's list of
    /// each enum's values), and `state` spells `mfa_configuration` as
    /// `after` does.
    #[test]
    fn every_value_an_expression_sees_is_spelled_as_cognitos_api() {
        use crate::domain::pool_state::{AuthFactor, EmailSendingAccount, Recovery, Tier};
        use aws_sdk_cognitoidentityprovider::types as api;
        let is_api = |values: &[&str], ours: &Json, what: &str| {
            let ours = ours.as_str().unwrap_or("(not a string)");
            assert!(
                values.contains(&ours),
                "{what}: {ours} is not one of {values:?}"
            );
        };
        for mode in [MfaMode::Off, MfaMode::On, MfaMode::Optional] {
            let after = config_view(&PoolMfaConfig {
                mode: Some(mode),
                ..Default::default()
            });
            let state = state_view(&PoolState {
                mfa_configuration: Some(mode),
                ..Default::default()
            });
            is_api(
                api::UserPoolMfaType::values(),
                &after["mfa_configuration"],
                "after",
            );
            assert_eq!(state["mfa_configuration"], after["mfa_configuration"]);
        }
        for tier in Tier::ALL {
            let state = state_view(&PoolState {
                tier: Some(tier),
                ..Default::default()
            });
            is_api(api::UserPoolTierType::values(), &state["tier"], "tier");
        }
        for account in [
            EmailSendingAccount::CognitoDefault,
            EmailSendingAccount::Developer,
        ] {
            let state = state_view(&PoolState {
                email_sending_account: account,
                ..Default::default()
            });
            is_api(
                api::EmailSendingAccountType::values(),
                &state["email_sending_account"],
                "email_sending_account",
            );
        }
        let state = state_view(&PoolState {
            first_auth_factors: AuthFactor::ALL.to_vec(),
            recovery: Recovery::ALL.to_vec(),
            ..Default::default()
        });
        for f in state["first_auth_factors"].as_array().into_iter().flatten() {
            is_api(api::AuthFactorType::values(), f, "first_auth_factors");
        }
        for r in state["recovery"].as_array().into_iter().flatten() {
            is_api(api::RecoveryOptionNameType::values(), r, "recovery");
        }
        for (uv, fc) in [
            (
                UserVerification::Required,
                FactorConfiguration::SingleFactor,
            ),
            (
                UserVerification::Preferred,
                FactorConfiguration::MultiFactorWithUserVerification,
            ),
        ] {
            let after = config_view(&PoolMfaConfig {
                web_authn: Some(crate::domain::WebAuthnConfig {
                    relying_party_id: None,
                    user_verification: Some(uv),
                    factor_configuration: Some(fc),
                }),
                ..Default::default()
            });
            let w = &after["web_authn_configuration"];
            is_api(
                api::UserVerificationType::values(),
                &w["user_verification"],
                "user_verification",
            );
            is_api(
                api::WebAuthnFactorConfigurationType::values(),
                &w["factor_configuration"],
                "factor_configuration",
            );
        }
    }

    /// The guardrail issue 32 found never firing: a pool that is ON must
    /// stay ON. With `state` spelled "On" it let ON go to OPTIONAL.
    #[test]
    fn a_guardrail_over_state_fires_as_written() {
        let g = Guardrails::compile(&[rail(
            "state.mfa_configuration != 'ON' || after.mfa_configuration == 'ON'",
            &[GuardrailAction::Deny],
        )])
        .unwrap();
        let (on, optional) = (
            PoolMfaConfig {
                mode: Some(MfaMode::On),
                ..Default::default()
            },
            PoolMfaConfig {
                mode: Some(MfaMode::Optional),
                ..Default::default()
            },
        );
        let state = PoolState {
            mfa_configuration: Some(MfaMode::On),
            ..Default::default()
        };
        let m = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        let mut s = subject("us-east-1_Prod1", &on, &optional);
        s.state = Some(&state);
        let found = g.check(m, &s);
        assert_eq!(found.len(), 1, "ON to OPTIONAL is denied");
        assert!(found[0].error.is_none());
        let mut s = subject("us-east-1_Prod1", &on, &on);
        s.state = Some(&state);
        assert!(g.check(m, &s).is_empty());
    }

    #[test]
    fn secrets_are_not_in_what_an_expression_sees() {
        let (config, _) = sample();
        let text = config_view(&config).to_string();
        assert!(!text.contains("example\""), "{text}");
        assert!(text.contains("\"has_external_id\":true"));
    }

    #[test]
    fn a_bad_expression_is_refused_with_its_name() {
        for (expr, why) in [
            ("after.mfa_configuration ==", "does not parse"),
            ("caller.name == 'x'", "names caller"),
            ("after.mfa_configuration", "not a bool"),
            ("after.mfa_configuration > 1", "not give a bool"),
        ] {
            let errors = match Guardrails::compile(&[rail(expr, &[GuardrailAction::Deny])]) {
                Err(e) => e,
                Ok(_) => panic!("{expr} compiled"),
            };
            assert_eq!(errors[0].0, "guardrails[0].expression");
            assert!(
                errors[0].1.contains("guardrail \"g\"") && errors[0].1.contains(why),
                "{expr}: {}",
                errors[0].1
            );
        }
    }

    #[test]
    fn a_reset_is_guarded_by_the_guardrails_that_can_judge_it() {
        use crate::method::ADMIN_RESET_USER_MFA;
        let cfg = |methods: &[&str], expression: &str| GuardrailConfig {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            ..rail(expression, &[GuardrailAction::Deny])
        };
        // Named outright, over pool fields without has(): refused at load.
        let err = Guardrails::compile(&[cfg(
            &["AdminResetUserMfa"],
            "after.mfa_configuration != 'OFF'",
        )])
        .err()
        .unwrap();
        assert!(err[0].1.contains("names AdminResetUserMfa"), "{err:?}");
        // Reached by "*" only: it does not cover the reset.
        let pool_rail =
            Guardrails::compile(&[cfg(&["*"], "after.mfa_configuration != 'OFF'")]).unwrap();
        assert!(pool_rail.apply_to(
            "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
            "us-east-1_Prod1"
        ));
        assert!(!pool_rail.apply_to(ADMIN_RESET_USER_MFA.name, "us-east-1_Prod1"));
        // Written for users: it judges the reset by its username.
        let user_rail = Guardrails::compile(&[cfg(
            &["AdminResetUserMfa"],
            "request.username != 'break-glass'",
        )])
        .unwrap();
        assert!(user_rail.apply_to(ADMIN_RESET_USER_MFA.name, "us-east-1_Prod1"));
        let judge = |username: &str| {
            user_rail.check(
                ADMIN_RESET_USER_MFA.name,
                &Subject {
                    method: ADMIN_RESET_USER_MFA.name,
                    user_pool_id: "us-east-1_Prod1",
                    validate_only: false,
                    principal: ("ops", "api_key"),
                    change: Changed::User { username },
                    state: None,
                },
            )
        };
        assert!(judge("alice").is_empty());
        assert_eq!(judge("break-glass").len(), 1);
    }
}
