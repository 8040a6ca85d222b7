//! `[auth]` and `[policy]`: who may call, and what they may do.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

use crate::settings::MAX_SECONDS;

/// Who may call: `[auth]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `[[auth.api_keys]]`: callers proven by the `x-api-key` header.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Server reflection without credentials (grpcurl list/describe). Health
    /// is always open.
    pub open_reflection: bool,
    /// `[auth.jwt]`: callers proven by a JWT bearer token.
    pub jwt: Option<JwtConfig>,
    /// More `[[api_keys]]` in a file of their own (e.g. a Kubernetes
    /// Secret), added to the ones above.
    #[schemars(extend("x-production" = "the callers and their keys, from a Secret (or [auth.jwt], or [tls] client certificates)"))]
    pub api_keys_file: Option<PathBuf>,
    /// How often the config file, the keys file and the JWKS file are
    /// checked for changes; SIGHUP reloads at once.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub reload_interval_seconds: u64,
}

/// The keys file: `[[api_keys]]` entries and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysFile {
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
}

/// JWT bearer tokens checked against a JWKS.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS file (e.g. the cluster's /openid/v1/jwks, mounted).
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, e.g. https://kubernetes.default.svc/openid/v1/jwks.
    /// https, or http to a loopback address only.
    pub jwks_url: Option<String>,
    /// Extra CA certificates (PEM) to trust for `jwks_url`, e.g. the
    /// cluster's /var/run/secrets/kubernetes.io/serviceaccount/ca.crt.
    pub jwks_ca_file: Option<PathBuf>,
    /// A file whose content is sent as `Authorization: Bearer` when fetching
    /// `jwks_url` (the pod's own service-account token, re-read each fetch).
    pub jwks_bearer_token_file: Option<PathBuf>,
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry one of them.
    pub audiences: Vec<String>,
    /// The claim that names the principal.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Allowed algorithms: asymmetric only (RS*, PS*, ES256, ES384, EdDSA).
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on exp and nbf, at most 300 s.
    #[serde(default = "default_leeway_seconds")]
    #[schemars(range(min = 0, max = MAX_JWT_LEEWAY_SECONDS))]
    pub leeway_seconds: u64,
    /// How often the JWKS is re-read.
    #[serde(default = "default_refresh_seconds")]
    #[schemars(range(min = 10, max = MAX_SECONDS))]
    pub refresh_seconds: u64,
    /// The least time between two re-reads caused by unknown kids.
    #[serde(default = "default_min_refetch_seconds")]
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub min_refetch_seconds: u64,
    /// Put before every principal a token proves, e.g. `oidc:` (as
    /// Kubernetes' `--oidc-username-prefix`); policy rules name the
    /// prefixed form.
    #[serde(default)]
    pub principal_prefix: String,
    /// Accepted header `typ` values, compared without case and without an
    /// `application/` prefix (e.g. `["at+jwt"]`). Empty (the default): any,
    /// or none.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Claims a token must carry with exactly these string values, e.g.
    /// `{ token_use = "access" }` for Cognito-style access tokens.
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// The largest JWKS document read (from the file or the URL).
    #[serde(default = "default_max_jwks_bytes")]
    #[schemars(range(min = 1024, max = 16 * 1024 * 1024))]
    pub max_jwks_bytes: usize,
    /// How long the last good JWKS keeps verifying tokens while every
    /// refresh fails; past it, bearer tokens are refused.
    #[serde(default = "default_max_stale_seconds")]
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub max_stale_seconds: u64,
}

/// Default `auth.jwt.max_jwks_bytes`.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Default `auth.jwt.max_stale_seconds`.
pub const DEFAULT_MAX_STALE_SECONDS: u64 = 24 * 3600;

fn default_max_jwks_bytes() -> usize {
    DEFAULT_MAX_JWKS_BYTES
}
fn default_max_stale_seconds() -> u64 {
    DEFAULT_MAX_STALE_SECONDS
}

/// Default clock-skew leeway for JWT exp/nbf.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u64 = 30;
/// The largest leeway a configuration may set.
pub const MAX_JWT_LEEWAY_SECONDS: u64 = 300;

fn default_principal_claim() -> String {
    "sub".into()
}
fn default_jwt_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_leeway_seconds() -> u64 {
    DEFAULT_JWT_LEEWAY_SECONDS
}
fn default_refresh_seconds() -> u64 {
    300
}
fn default_min_refetch_seconds() -> u64 {
    30
}

impl Default for JwtConfig {
    /// Every default, with no JWKS, issuer or audience: a base for code
    /// that builds a configuration (tests); a file must name all three.
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwks_url: None,
            jwks_ca_file: None,
            jwks_bearer_token_file: None,
            issuer: String::new(),
            audiences: Vec::new(),
            principal_claim: default_principal_claim(),
            algorithms: default_jwt_algorithms(),
            leeway_seconds: default_leeway_seconds(),
            refresh_seconds: default_refresh_seconds(),
            min_refetch_seconds: default_min_refetch_seconds(),
            principal_prefix: String::new(),
            allowed_types: Vec::new(),
            required_claims: BTreeMap::new(),
            max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
            max_stale_seconds: DEFAULT_MAX_STALE_SECONDS,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            open_reflection: true,
            jwt: None,
            api_keys_file: None,
            reload_interval_seconds: 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The caller's name, as policy rules and audit records see it.
    pub principal: String,
    /// Lower-case hex SHA-256 of the key (`mfa-facade hash-key` prints it).
    pub sha256: String,
}

/// What callers may do: `[policy]`. Deny by default.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub rules: Vec<PolicyRuleConfig>,
}

/// `[[policy.rules]]`: grants every principal matching `principals` every
/// method matching `methods` on every user pool matching `user_pools`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleConfig {
    pub principals: Vec<String>,
    pub methods: Vec<String>,
    pub user_pools: Vec<String>,
    /// How the principal must have been proven: any of `api_key`, `jwt`,
    /// `mtls`. Empty (the default): any of them.
    #[serde(default)]
    pub proven_by: Vec<String>,
}

/// What a guardrail does when its expression does not hold.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailAction {
    /// Refuse the change: FAILED_PRECONDITION naming the guardrail.
    Deny,
    /// Let it through with the message in the `x-mfa-facade-warning`
    /// trailer and the audit record.
    Warn,
    /// Let it through; the audit record holds the message.
    Audit,
}

/// `[[guardrails]]`: a CEL expression every change of a pool's MFA
/// configuration covered by `user_pools` and `methods` must satisfy
/// (`auth::guardrails`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    pub name: String,
    pub user_pools: Vec<String>,
    /// Globs over method names, full (`cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig`)
    /// or short (`SetUserPoolMfaConfig`).
    pub methods: Vec<String>,
    /// Must evaluate to `true` for the change to pass.
    pub expression: String,
    pub message: String,
    pub actions: Vec<GuardrailAction>,
}

/// The most bytes of a guardrail's message.
pub const MAX_GUARDRAIL_MESSAGE_BYTES: usize = 512;
/// The most guardrails in one configuration.
pub const MAX_GUARDRAILS: usize = 256;

/// The names `policy.rules[].proven_by` takes.
pub const PROVEN_BY: [&str; 3] = ["api_key", "jwt", "mtls"];

impl AuthConfig {
    /// The rules serde cannot express; each error names its key.
    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        let mut seen = std::collections::HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.principal.trim().is_empty() {
                err(
                    &format!("auth.api_keys[{i}].principal"),
                    "must name the caller".into(),
                );
            }
            let is_hash = k.sha256.len() == 64
                && k.sha256
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
            if !is_hash {
                err(
                    &format!("auth.api_keys[{i}].sha256"),
                    "must be 64 lower-case hex characters (`mfa-facade hash-key` prints it)".into(),
                );
            } else if !seen.insert(k.sha256.clone()) {
                err(
                    &format!("auth.api_keys[{i}].sha256"),
                    "the same key is configured twice".into(),
                );
            }
        }
        if let Some(j) = &self.jwt {
            match (&j.jwks_file, &j.jwks_url) {
                (Some(_), Some(_)) => {
                    err("auth.jwt", "give jwks_file or jwks_url, not both".into())
                }
                (None, None) => err(
                    "auth.jwt.jwks_file",
                    "is required (the JWKS to verify tokens with)".into(),
                ),
                (None, Some(url)) => {
                    if let Err(why) = crate::auth::jwt::check_jwks_url(url) {
                        err("auth.jwt.jwks_url", why);
                    }
                }
                (Some(_), None) => {}
            }
            if j.issuer.trim().is_empty() {
                err("auth.jwt.issuer", "is required".into());
            }
            if j.audiences.is_empty() || j.audiences.iter().any(|a| a.is_empty()) {
                err(
                    "auth.jwt.audiences",
                    "must list at least one audience; tokens without one are refused".into(),
                );
            }
            if j.principal_claim.is_empty() {
                err("auth.jwt.principal_claim", "must name a claim".into());
            }
            if j.algorithms.is_empty() {
                err(
                    "auth.jwt.algorithms",
                    "must allow at least one algorithm".into(),
                );
            }
            for a in &j.algorithms {
                if crate::auth::jwt::parse_algorithm(a).is_none() {
                    err(
                        "auth.jwt.algorithms",
                        format!(
                            "{a:?} is not allowed: only asymmetric algorithms ({}); never none or HS*",
                            crate::auth::jwt::ASYMMETRIC.join(", ")
                        ),
                    );
                }
            }
            if j.principal_prefix.len() > 64 {
                err(
                    "auth.jwt.principal_prefix",
                    "is at most 64 characters".into(),
                );
            }
            if j.allowed_types.iter().any(|t| t.trim().is_empty()) {
                err(
                    "auth.jwt.allowed_types",
                    "must not hold an empty type".into(),
                );
            }
            for (claim, value) in &j.required_claims {
                if claim.is_empty() || value.is_empty() {
                    err(
                        "auth.jwt.required_claims",
                        format!("{claim:?} = {value:?}: claim and value must not be empty"),
                    );
                }
            }
        }
    }
}

impl PolicyConfig {
    /// Every rule names at least one glob of each kind, and known proofs.
    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        for (i, r) in self.rules.iter().enumerate() {
            for (name, globs) in [
                ("principals", &r.principals),
                ("methods", &r.methods),
                ("user_pools", &r.user_pools),
            ] {
                if globs.is_empty() || globs.iter().any(|g| g.is_empty()) {
                    err(
                        &format!("policy.rules[{i}].{name}"),
                        "must list at least one non-empty glob (\"*\" for all)".into(),
                    );
                }
            }
            for p in &r.proven_by {
                if !PROVEN_BY.contains(&p.as_str()) {
                    err(
                        &format!("policy.rules[{i}].proven_by"),
                        format!("{p:?} is not one of {}", PROVEN_BY.join(", ")),
                    );
                }
            }
        }
    }
}

/// `[[guardrails]]`: each named once, scoped, with a message and an
/// action, and an expression that compiles (the error names it).
pub fn validate_guardrails(guardrails: &[GuardrailConfig], err: &mut impl FnMut(&str, String)) {
    if guardrails.len() > MAX_GUARDRAILS {
        err(
            "guardrails",
            format!("{} guardrails; at most {MAX_GUARDRAILS}", guardrails.len()),
        );
        return;
    }
    let mut names = std::collections::HashSet::new();
    for (i, g) in guardrails.iter().enumerate() {
        let at = |k: &str| format!("guardrails[{i}].{k}");
        if g.name.trim().is_empty() || g.name.len() > 128 {
            err(&at("name"), "must be 1 to 128 characters".into());
        } else if !names.insert(g.name.as_str()) {
            err(
                &at("name"),
                format!("{:?} names another guardrail too", g.name),
            );
        }
        for (key, globs) in [("user_pools", &g.user_pools), ("methods", &g.methods)] {
            if globs.is_empty() || globs.iter().any(|p| p.is_empty()) {
                err(
                    &at(key),
                    "must list at least one non-empty glob (\"*\" for all)".into(),
                );
            }
        }
        if g.message.trim().is_empty() || g.message.len() > MAX_GUARDRAIL_MESSAGE_BYTES {
            err(
                &at("message"),
                format!("must be 1 to {MAX_GUARDRAIL_MESSAGE_BYTES} bytes"),
            );
        }
        let mut actions = g.actions.clone();
        actions.sort_by_key(|a| *a as u8);
        actions.dedup();
        if g.actions.is_empty() || actions.len() != g.actions.len() {
            err(
                &at("actions"),
                "must list each of deny, warn, audit at most once, and at least one".into(),
            );
        }
    }
    if let Err(errors) = crate::auth::guardrails::Guardrails::compile(guardrails) {
        for (key, message) in errors {
            err(&key, message);
        }
    }
}

#[cfg(test)]
mod defaults {
    use super::*;

    /// An empty `[auth]` is `AuthConfig::default()` (reflection open, no
    /// keys, no JWT), and a typo is still refused.
    #[test]
    fn serde_and_default_agree() {
        let parsed: AuthConfig =
            crate::settings::assert_one_set_of_defaults("open_reflecton = false");
        assert!(parsed.open_reflection);
    }
}
