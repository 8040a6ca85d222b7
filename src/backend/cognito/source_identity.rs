//! `[backend] source_identity`: Cognito's admin calls made in a role
//! session per caller, with STS `SourceIdentity` set to the caller's
//! principal, so that Cognito's own CloudTrail entries (`sourceIdentity`)
//! name the internal service that asked, not only this facade's role.
//!
//! STS (docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html):
//! SourceIdentity is set at AssumeRole, cannot change for the session, is
//! kept through role chaining, and is 2 to 64 of `[A-Za-z0-9_+=,.@-]`. The
//! role's trust policy must allow `sts:SetSourceIdentity` beside
//! `sts:AssumeRole`.
//!
//! Sessions are kept per (account, identity), each with its own identity
//! cache (so one AssumeRole per caller until its credentials near expiry)
//! and its SDK clients per Region; at most `backend.max_source_identity_sessions`
//! of them, the least recently used dropped first.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError, future};
use aws_sdk_cognitoidentityprovider::config::{
    Credentials, IdentityCache, SharedCredentialsProvider, SharedIdentityCache,
};
use aws_sdk_sts::operation::assume_role::builders::AssumeRoleFluentBuilder;

/// AWS's bounds on a SourceIdentity: 2 to 64 characters.
pub const SOURCE_IDENTITY_LEN: (usize, usize) = (2, 64);

/// Default `backend.max_source_identity_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 1_024;

/// How many hex digits of the principal's SHA-256 a mapped identity ends
/// with (48 bits): two principals that read alike stay apart.
const DIGEST_HEX: usize = 12;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// The SourceIdentity that names `principal` in CloudTrail: the principal
/// itself when STS takes it as it is (2 to 64 of `[A-Za-z0-9_+=,.@-]`),
/// else its readable part (each other character as `-`, at most 51 of
/// them) and `.` and 12 hex digits of its SHA-256 —
/// `spiffe://acme/payments` becomes `spiffe---acme-payments.` and a digest.
pub fn source_identity_of(principal: &str) -> String {
    let (min, max) = SOURCE_IDENTITY_LEN;
    if (min..=max).contains(&principal.len()) && principal.chars().all(allowed) {
        return principal.to_owned();
    }
    let readable: String = principal
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .take(max - DIGEST_HEX - 1)
        .collect();
    let digest = crate::hash::hex(&crate::hash::sha256(principal.as_bytes()));
    format!("{readable}.{}", &digest[..DIGEST_HEX])
}

/// One account's AssumeRole (role, session name, ExternalId), as a
/// credential provider with or without a SourceIdentity.
#[derive(Clone, Debug)]
pub struct AssumeRole(AssumeRoleFluentBuilder);

impl AssumeRole {
    pub fn new(
        sts: &aws_types::SdkConfig,
        role_arn: &str,
        session_name: &str,
        external_id: Option<String>,
    ) -> Self {
        // The caller's clients cache what this yields; STS's own client
        // caches nothing.
        let sts = sts
            .clone()
            .into_builder()
            .identity_cache(IdentityCache::no_cache())
            .build();
        let client = aws_sdk_sts::Client::new(&sts);
        Self(
            client
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .set_external_id(external_id),
        )
    }

    /// The role's credentials, in a session whose SourceIdentity is
    /// `identity` when given.
    pub fn provider(&self, identity: Option<&str>) -> SharedCredentialsProvider {
        let mut request = self.0.clone();
        if let Some(identity) = identity {
            request = request.source_identity(identity);
        }
        SharedCredentialsProvider::new(Assumed(request))
    }
}

#[derive(Debug)]
struct Assumed(AssumeRoleFluentBuilder);

impl ProvideCredentials for Assumed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let out = self
                .0
                .clone()
                .send()
                .await
                .map_err(|e| CredentialsError::provider_error(e.into_service_error()))?;
            let c = out.credentials.ok_or_else(|| {
                CredentialsError::unhandled("STS AssumeRole answered without credentials")
            })?;
            let expiry = std::time::SystemTime::try_from(c.expiration).ok();
            provider::Result::Ok(Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                expiry,
                "mfa-facade.AssumeRole",
            ))
        })
    }
}

/// One caller's session in one account: its credentials, their cache, its
/// clients per Region.
struct Session {
    credentials: SharedCredentialsProvider,
    cache: SharedIdentityCache,
    clients: HashMap<String, aws_sdk_cognitoidentityprovider::Client>,
    used: u64,
}

/// The sessions by (account index, SourceIdentity), and a use counter.
#[derive(Default)]
struct Kept {
    tick: u64,
    sessions: HashMap<(usize, String), Session>,
}

/// The sessions, bounded.
pub struct Sessions {
    max: usize,
    inner: Mutex<Kept>,
}

impl Sessions {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: Mutex::default(),
        }
    }

    /// The client of `identity`'s session in `account` (`role`) and
    /// `region`, made with `build(credentials, cache)` the first time.
    pub fn client(
        &self,
        account: usize,
        role: &AssumeRole,
        identity: &str,
        region: &str,
        build: impl FnOnce(
            SharedCredentialsProvider,
            SharedIdentityCache,
        ) -> aws_sdk_cognitoidentityprovider::Client,
    ) -> aws_sdk_cognitoidentityprovider::Client {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Kept { tick, sessions } = &mut *inner;
        *tick = tick.saturating_add(1);
        let key = (account, identity.to_owned());
        if !sessions.contains_key(&key) && sessions.len() >= self.max {
            // Full: the least recently used goes (rare, and O(max)).
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        let session = sessions.entry(key).or_insert_with(|| Session {
            credentials: role.provider(Some(identity)),
            cache: IdentityCache::lazy().build(),
            clients: HashMap::new(),
            used: 0,
        });
        session.used = *tick;
        if let Some(c) = session.clients.get(region) {
            return c.clone();
        }
        let client = build(session.credentials.clone(), session.cache.clone());
        session.clients.insert(region.to_owned(), client.clone());
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_principal_is_its_own_identity() {
        for p in ["billing-svc", "ops@acme.example", "a_b+c=d,e.f"] {
            assert_eq!(source_identity_of(p), p);
        }
    }

    #[test]
    fn any_other_principal_maps_to_a_valid_distinct_identity() {
        let long = "x".repeat(200);
        let cases = [
            "spiffe://acme/ns/payments",
            "spiffe://acme/ns/payments/",
            "system:serviceaccount:ns:app",
            "a",
            "",
            "ünïcode",
            long.as_str(),
        ];
        let mut seen = std::collections::HashSet::new();
        for p in cases {
            let id = source_identity_of(p);
            assert!(
                (2..=64).contains(&id.len()) && id.chars().all(allowed),
                "{p:?} -> {id:?}"
            );
            assert!(seen.insert(id.clone()), "{p:?} collides: {id}");
        }
        assert!(
            source_identity_of("spiffe://acme/ns/payments")
                .starts_with("spiffe---acme-ns-payments.")
        );
    }
}
