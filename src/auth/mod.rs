//! Who is calling (authentication, a tower layer on metadata only) and what
//! they may do (authorization, a deny-by-default policy).
//!
//! The layer decides the caller's [`Principal`] once and puts it into the
//! request's extensions; the call pipeline (`call::Facade`) then checks the
//! policy on the decoded target: method and user pool (the local fixtures
//! too: each names the pool it acts on). Health is always open; reflection
//! is open or closed by `auth.open_reflection`, and when closed is checked
//! here, on the method alone, since it names no pool.
//!
//! A principal is a name and how it was proven ([`ProvenBy`]). The three
//! proofs share one name space only as far as the operator lets them:
//! `[auth.jwt] principal_prefix` and `[tls] principal_prefix` put a prefix
//! before every name a token or a certificate proves, and a rule's
//! `proven_by` admits only the proofs it lists.
//!
//! The state sits behind an `ArcSwap` so keys and policy can be replaced
//! while connections stay up.

pub mod api_key;
pub mod guardrails;
pub mod jwt;
pub mod policy;
pub mod settings;

use std::sync::Arc;

use arc_swap::ArcSwap;

use api_key::ApiKeys;
use jwt::JwtVerifier;
use policy::Policy;
use settings::ApiKeyConfig;

/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "x-api-key";
const API_KEY: http::HeaderName = http::HeaderName::from_static(API_KEY_HEADER);
/// The principal of the development key a first run prints.
pub const DEV_PRINCIPAL: &str = "dev";

/// How a client certificate names its principal (`[tls]`).
#[derive(Clone, Debug, Default)]
pub struct MtlsNaming {
    /// Put before the SPIFFE ID or CN.
    pub prefix: String,
    /// Take the CN even when the certificate has SANs.
    pub cn_with_sans: bool,
}

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenBy {
    ApiKey,
    Jwt,
    Mtls,
}

impl ProvenBy {
    pub fn name(self) -> &'static str {
        match self {
            ProvenBy::ApiKey => "api_key",
            ProvenBy::Jwt => "jwt",
            ProvenBy::Mtls => "mtls",
        }
    }
}

/// The authenticated caller, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub proven_by: ProvenBy,
    /// The key of the principal's own rate-limit bucket, over how it was
    /// proven and its name ([`crate::hash::key_of`]): an API key's is
    /// computed once, when the keys are loaded.
    pub budget_key: [u8; 16],
}

impl Principal {
    pub fn new(name: String, proven_by: ProvenBy) -> Self {
        let budget_key = crate::hash::key_of(&[proven_by.name(), &name]);
        Self {
            name,
            proven_by,
            budget_key,
        }
    }
}

/// Keys, policy and switches: everything a reload replaces at once.
#[derive(Clone, Default)]
pub struct AuthState {
    pub api_keys: ApiKeys,
    pub jwt: Option<Arc<JwtVerifier>>,
    pub policy: Policy,
    /// `[[guardrails]]`, compiled; reloaded with the policy.
    pub guardrails: guardrails::Guardrails,
    pub open_reflection: bool,
    pub mtls: MtlsNaming,
}

impl AuthState {
    pub fn with_jwt(mut self, verifier: Arc<JwtVerifier>) -> Self {
        self.jwt = Some(verifier);
        self
    }

    /// One key for one principal that may call everything: the first run's
    /// development key, and the tests' key.
    pub fn single_key(principal: &str, key: &str) -> Self {
        Self {
            api_keys: ApiKeys::new(&[ApiKeyConfig {
                principal: principal.into(),
                sha256: api_key::hash_key(key),
            }]),
            jwt: None,
            policy: Policy::allow_all(&[principal]),
            guardrails: guardrails::Guardrails::default(),
            open_reflection: true,
            mtls: MtlsNaming::default(),
        }
    }

    /// One way in per call: an x-api-key if sent, else a bearer token if
    /// sent, else a client certificate (already verified against the client
    /// CA by the TLS handshake). A credential that is sent and wrong is
    /// refused; it never falls through to another.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        client_cert: Option<&[u8]>,
    ) -> Result<Principal, &'static str> {
        let mut keys = headers.get_all(&API_KEY).iter();
        match (keys.next(), keys.next()) {
            (Some(key), None) => {
                return self
                    .api_keys
                    .principal(key.as_bytes())
                    .cloned()
                    .ok_or("the x-api-key is not valid");
            }
            (Some(_), Some(_)) => return Err("send one x-api-key header, not several"),
            (None, _) => {}
        }
        let mut auths = headers.get_all(http::header::AUTHORIZATION).iter();
        let authorization = match (auths.next(), auths.next()) {
            (Some(a), None) => a
                .to_str()
                .map_err(|_| "the authorization header is not text")?,
            (Some(_), Some(_)) => return Err("send one authorization header, not several"),
            (None, _) => {
                return match client_cert {
                    Some(der) => mtls_principal(der, &self.mtls)
                        .map(|name| Principal::new(name, ProvenBy::Mtls)),
                    None => Err(
                        "no credentials: send an x-api-key header, a bearer token or a client certificate",
                    ),
                };
            }
        };
        let token = authorization
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .filter(|t| !t.is_empty() && !t.contains(' '))
            .ok_or("the authorization header must be: Bearer <token>")?;
        let jwt = self
            .jwt
            .as_ref()
            .ok_or("bearer tokens are not accepted by this server")?;
        Ok(Principal::new(jwt.verify(token).await?, ProvenBy::Jwt))
    }
}

/// The principal a client certificate names, after `naming.prefix`:
///
/// - its SPIFFE ID, when a URI SAN is a `spiffe://` one. An X509-SVID has
///   exactly one URI SAN; a certificate with a SPIFFE ID among several URI
///   SANs is refused, not read by its first.
/// - else its subject CN, only when it has no SAN at all (or
///   `naming.cn_with_sans`): a certificate issued for DNS names or other
///   URIs is not also an identity by its CN.
pub fn mtls_principal(der: &[u8], naming: &MtlsNaming) -> Result<String, &'static str> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| "the client certificate cannot be read")?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| "the client certificate's SAN extension cannot be read")?;
    let names = san.map_or(&[][..], |s| s.value.general_names.as_slice());
    let uris: Vec<&str> = names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    let named = |name: &str| format!("{}{name}", naming.prefix);
    if uris.iter().any(|u| u.starts_with("spiffe://")) {
        return match uris.as_slice() {
            [one] => Ok(named(one)),
            _ => {
                Err("the client certificate has several URI SANs: a SPIFFE ID must be the only one")
            }
        };
    }
    if !names.is_empty() && !naming.cn_with_sans {
        return Err(
            "the client certificate has SANs but no SPIFFE ID; its CN is not taken as a principal",
        );
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
        .map(named)
        .ok_or("the client certificate names no SPIFFE ID and no CN")
}

/// The live auth state, replaceable while serving.
pub type SharedAuth = Arc<ArcSwap<AuthState>>;

pub fn shared(state: AuthState) -> SharedAuth {
    Arc::new(ArcSwap::from_pointee(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn authentication_takes_one_exact_key() {
        let state = AuthState::single_key("svc", "secret-key");
        let mut h = http::HeaderMap::new();
        assert!(state.authenticate(&h, None).await.is_err());
        h.insert(API_KEY_HEADER, "secret-key".parse().unwrap());
        assert_eq!(state.authenticate(&h, None).await.unwrap().name, "svc");
        h.append(API_KEY_HEADER, "secret-key".parse().unwrap());
        assert!(state.authenticate(&h, None).await.is_err(), "two keys");
        let mut h = http::HeaderMap::new();
        h.insert(API_KEY_HEADER, " secret-key".parse().unwrap());
        assert!(
            state.authenticate(&h, None).await.is_err(),
            "whitespace is part of the key"
        );
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer abc.def.ghi".parse().unwrap(),
        );
        assert_eq!(
            state.authenticate(&h, None).await.unwrap_err(),
            "bearer tokens are not accepted by this server"
        );
    }
}
