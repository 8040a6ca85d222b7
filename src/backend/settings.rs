//! `[backend]`: which backend, and its timeouts, retries and data caps.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

/// Default AWS Region when neither the file nor the AWS environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Time to open a TCP/TLS connection to Cognito.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_100;
/// Time for one attempt of one Cognito call.
pub const DEFAULT_ATTEMPT_TIMEOUT_MS: u64 = 5_000;
/// Time for one Cognito call, all retries included.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 15_000;
/// Attempts per Cognito call, the first included (the SDK's standard retry
/// with its token-bucket retry budget).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded backend: Cognito's rules, state in `data_file`.
    #[default]
    Local,
    /// Amazon Cognito through the AWS SDK.
    Cognito,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    #[schemars(extend("x-production" = "the default is the local backend, a file on this machine, not Cognito"))]
    pub kind: BackendKind,
    /// local backend: where pools, users and settings persist.
    pub data_file: PathBuf,
    /// cognito: the AWS Region. Unset: the SDK's chain (AWS_REGION, profile),
    /// then [`DEFAULT_REGION`]. local: the Region in the ids of new pools
    /// (default [`DEFAULT_REGION`]).
    #[schemars(extend("x-production" = "the pools' Region, not whatever the SDK's chain finds"))]
    pub region: Option<String>,
    /// cognito: another endpoint, e.g. a local emulator. Unset: AWS's own.
    pub endpoint_url: Option<String>,
    /// cognito: the Regions whose pools the facade serves; each call goes
    /// to its pool's Region (the prefix of the pool id, or of the access
    /// token's issuer), through one SDK client per Region, built when first
    /// needed. Empty: `region` alone. A pool elsewhere is refused
    /// (FAILED_PRECONDITION, `REGION_NOT_SERVED`) before any call.
    pub regions: Vec<String>,
    /// cognito: an endpoint for one Region (a VPC endpoint, an emulator),
    /// instead of `endpoint_url` or AWS's own: `{ "eu-west-1" = "https://..." }`.
    pub region_endpoints: std::collections::BTreeMap<String, String>,
    /// cognito: `[[backend.accounts]]`, pools served with another account's
    /// role; the first whose `user_pools` match a pool serves it, the base
    /// credential chain the rest.
    pub accounts: Vec<AccountConfig>,
    #[schemars(range(min = 1, max = 600_000))]
    pub connect_timeout_ms: u64,
    #[schemars(range(min = 1, max = 600_000))]
    pub attempt_timeout_ms: u64,
    #[schemars(range(min = 1, max = 600_000))]
    pub call_timeout_ms: u64,
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
    /// local: the most user pools the data file holds (fixtures CreateUserPool).
    #[schemars(range(min = 1, max = 100_000))]
    pub max_pools: usize,
    /// local: the most users one pool holds (fixtures CreateUser).
    #[schemars(range(min = 1, max = 100_000_000))]
    pub max_users_per_pool: usize,
    /// local: the most bytes the data file (a SQLite database) may grow to;
    /// a change past it is refused as Cognito's LimitExceededException and
    /// changes nothing.
    #[schemars(range(min = 1024 * 1024, max = 1024 * 1024 * 1024 * 1024_u64))]
    pub max_data_bytes: u64,
    /// local: the most attributes one user carries.
    #[schemars(range(min = 1, max = 1_000))]
    pub max_user_attributes: usize,
    /// local: the most bytes of one user's attribute names and values together.
    #[schemars(range(min = 1, max = 1024 * 1024))]
    pub max_user_attribute_bytes: usize,
    /// local: the most MFA_SETUP sessions alive at once.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_sessions: usize,
    /// local: how long an MFA_SETUP session lives, 180 to 900 seconds
    /// (Cognito's MFA code validity: 3 to 15 minutes; 3 by default).
    #[schemars(range(min = MFA_SETUP_SESSION_SECONDS.0, max = MFA_SETUP_SESSION_SECONDS.1))]
    pub mfa_setup_session_seconds: u64,
    /// local: the most passkeys one user holds (fixtures
    /// RegisterWebAuthnCredential).
    #[schemars(range(min = 1, max = 1_000))]
    pub max_web_authn_credentials: usize,
    /// local: the most tracked devices one user holds (fixtures
    /// RememberDevice).
    #[schemars(range(min = 1, max = 10_000))]
    pub max_devices_per_user: usize,
    /// Pool changes (Set/UpdateUserPoolMfaConfig, validate_only included)
    /// first check the pool's own state (DescribeUserPool: feature plan,
    /// email and SMS sending, sign-in policy, account recovery) and refuse
    /// as FAILED_PRECONDITION what it cannot take. Off: only Cognito checks.
    pub preflight: bool,
    /// cognito: how long a pool's state is kept; 0 reads it for every change.
    #[schemars(range(min = 0, max = 300_000))]
    pub pool_state_ttl_ms: u64,
    /// cognito: the most pools whose state is kept at once.
    #[schemars(range(min = 1, max = 100_000))]
    pub max_pool_states: usize,
    /// cognito: make every admin call in a session of its pool's
    /// `[[backend.accounts]]` role whose STS SourceIdentity names the
    /// caller, so Cognito's CloudTrail entries name it too
    /// (`src/backend/cognito/source_identity.rs`). Needs an account for
    /// every pool served and `sts:SetSourceIdentity` in each role's trust
    /// policy.
    pub source_identity: bool,
    /// cognito, with `source_identity`: the most (account, caller) sessions
    /// kept, the least recently used dropped first (its next call assumes
    /// the role again).
    #[schemars(range(min = 1, max = 100_000))]
    pub max_source_identity_sessions: usize,
}

/// Default `backend.max_pools`.
pub const DEFAULT_MAX_POOLS: usize = 1_000;
/// Default `backend.max_users_per_pool`.
pub const DEFAULT_MAX_USERS_PER_POOL: usize = 1_000_000;
/// Default `backend.max_data_bytes`: 4 GiB.
pub const DEFAULT_MAX_DATA_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default `backend.max_user_attributes` (Cognito: 50 custom beside ~20 standard).
pub const DEFAULT_MAX_USER_ATTRIBUTES: usize = 100;
/// Default `backend.max_user_attribute_bytes`.
pub const DEFAULT_MAX_USER_ATTRIBUTE_BYTES: usize = 16 * 1024;
/// Default `backend.max_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// Default `backend.mfa_setup_session_seconds`, and its bounds.
pub const DEFAULT_MFA_SETUP_SESSION_SECONDS: u64 = 180;
pub const MFA_SETUP_SESSION_SECONDS: (u64, u64) = (180, 900);
/// Default `backend.max_web_authn_credentials` per user.
pub const DEFAULT_MAX_WEB_AUTHN_CREDENTIALS: usize = 20;
/// Default `backend.max_devices_per_user`.
pub const DEFAULT_MAX_DEVICES_PER_USER: usize = 100;

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::default(),
            data_file: PathBuf::from(DEFAULT_DATA_FILE),
            region: None,
            endpoint_url: None,
            regions: Vec::new(),
            region_endpoints: Default::default(),
            accounts: Vec::new(),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            attempt_timeout_ms: DEFAULT_ATTEMPT_TIMEOUT_MS,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_pools: DEFAULT_MAX_POOLS,
            max_users_per_pool: DEFAULT_MAX_USERS_PER_POOL,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
            max_user_attributes: DEFAULT_MAX_USER_ATTRIBUTES,
            max_user_attribute_bytes: DEFAULT_MAX_USER_ATTRIBUTE_BYTES,
            max_sessions: DEFAULT_MAX_SESSIONS,
            mfa_setup_session_seconds: DEFAULT_MFA_SETUP_SESSION_SECONDS,
            max_web_authn_credentials: DEFAULT_MAX_WEB_AUTHN_CREDENTIALS,
            max_devices_per_user: DEFAULT_MAX_DEVICES_PER_USER,
            preflight: true,
            pool_state_ttl_ms: DEFAULT_POOL_STATE_TTL_MS,
            max_pool_states: DEFAULT_MAX_POOL_STATES,
            source_identity: false,
            max_source_identity_sessions: DEFAULT_MAX_SOURCE_IDENTITY_SESSIONS,
        }
    }
}

/// One AWS account served through an IAM role that the base credential
/// chain (IRSA on EKS) assumes with STS.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A short name, for health and logs: 1 to 64 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Globs over pool ids (`eu-west-1_Prod*`).
    pub user_pools: Vec<String>,
    /// `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// A file holding the ExternalId the role's trust policy asks for (its
    /// first line); never in the config, the environment or a log.
    pub external_id_file: Option<std::path::PathBuf>,
    #[serde(default = "default_session_name")]
    pub session_name: String,
    /// STS's endpoint for this role (a VPC endpoint; a stub in tests).
    /// Unset: `endpoint_url` when set, else STS's own.
    pub sts_endpoint_url: Option<String>,
}

fn default_session_name() -> String {
    "mfa-facade".into()
}

/// The most `[[backend.accounts]]`.
pub const MAX_ACCOUNTS: usize = 100;

/// The most Regions `backend.regions` lists (AWS has about 35): one SDK
/// client each at most.
pub const MAX_REGIONS: usize = 64;

/// Whether `name` reads as an AWS Region (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`): lower-case words and a number, dash-separated.
pub fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 5
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n > 0)
}

impl BackendConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

/// `backend.data_file` unless set: beside the working directory.
pub const DEFAULT_DATA_FILE: &str = "mfa-facade-data.json";

/// Default `backend.pool_state_ttl_ms`: how long the cognito backend keeps
/// a pool's state (DescribeUserPool) for the pre-flight. The facade's own
/// writes forget it at once; a change made elsewhere (the console,
/// CloudFormation) is seen after at most this long.
pub const DEFAULT_POOL_STATE_TTL_MS: u64 = 10_000;
/// Default `backend.max_pool_states`: the most pools whose state is kept.
pub const DEFAULT_MAX_POOL_STATES: usize = 1_000;

/// The pre-flight of pool changes: `backend.preflight`,
/// `backend.pool_state_ttl_ms`, `backend.max_pool_states`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preflight {
    pub enabled: bool,
    pub ttl: Duration,
    pub max_pools: usize,
}

impl Default for Preflight {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_millis(DEFAULT_POOL_STATE_TTL_MS),
            max_pools: DEFAULT_MAX_POOL_STATES,
        }
    }
}

impl BackendConfig {
    pub fn preflight(&self) -> Preflight {
        Preflight {
            enabled: self.preflight,
            ttl: Duration::from_millis(self.pool_state_ttl_ms),
            max_pools: self.max_pool_states,
        }
    }
}

/// Default `backend.max_source_identity_sessions`.
pub const DEFAULT_MAX_SOURCE_IDENTITY_SESSIONS: usize =
    crate::backend::cognito::source_identity::DEFAULT_MAX_SESSIONS;

impl BackendConfig {
    /// The rules serde cannot express; each error names its key.
    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        let b = self;
        if let Some(region) = &b.region
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            err(
                "backend.region",
                format!("{region:?} is not an AWS Region name (e.g. us-east-1)"),
            );
        }
        if let Some(url) = &b.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            err(
                "backend.endpoint_url",
                format!("{url:?} must be an http:// or https:// URL"),
            );
        }
        let mut at_most = |key: &str, len: usize, max: usize| {
            if len > max {
                err(key, format!("at most {max} entries ({len} given)"));
            }
        };
        at_most("backend.regions", b.regions.len(), MAX_REGIONS);
        at_most("backend.accounts", b.accounts.len(), MAX_ACCOUNTS);
        if b.source_identity && b.accounts.is_empty() {
            err(
            "backend.source_identity",
            "needs at least one [[backend.accounts]] role to make the callers' sessions in (an account with user_pools = [\"*\"] serves every pool)".into(),
        );
        }
        for (i, r) in b.regions.iter().enumerate() {
            if !is_region(r) {
                err(
                    &format!("backend.regions[{i}]"),
                    format!("{r:?} is not an AWS Region name (e.g. eu-west-1)"),
                );
            } else if b.regions[..i].contains(r) {
                err(
                    &format!("backend.regions[{i}]"),
                    format!("{r} is listed twice"),
                );
            }
        }
        for (i, a) in b.accounts.iter().enumerate() {
            let key = |k: &str| format!("backend.accounts[{i}].{k}");
            if a.name.is_empty()
                || a.name.len() > 64
                || !a
                    .name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            {
                err(&key("name"), "1 to 64 of A-Z, a-z, 0-9, _ and -".into());
            } else if b.accounts[..i].iter().any(|o| o.name == a.name) {
                err(&key("name"), format!("{} is used twice", a.name));
            }
            if a.user_pools.is_empty() {
                err(
                    &key("user_pools"),
                    "must name at least one pool glob".into(),
                );
            }
            let arn_ok = a
                .role_arn
                .strip_prefix("arn:")
                .and_then(|r| r.split_once(":iam::"))
                .and_then(|(partition, rest)| {
                    partition.starts_with("aws").then_some(())?;
                    rest.split_once(":role/")
                })
                .is_some_and(|(account, role)| {
                    account.len() == 12
                        && account.bytes().all(|c| c.is_ascii_digit())
                        && !role.is_empty()
                        && role.len() <= 512
                });
            if !arn_ok {
                err(
                    &key("role_arn"),
                    "must be an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>".into(),
                );
            }
            if let Some(path) = &a.external_id_file
                && !path.is_file()
            {
                err(
                    &key("external_id_file"),
                    format!("{} is not a readable file", path.display()),
                );
            }
            if a.session_name.len() < 2
                || a.session_name.len() > 64
                || !a
                    .session_name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_+=,.@-".contains(&c))
            {
                err(
                    &key("session_name"),
                    "2 to 64 of A-Z, a-z, 0-9 and _+=,.@- (STS's RoleSessionName)".into(),
                );
            }
            if let Some(url) = &a.sts_endpoint_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                err(
                    &key("sts_endpoint_url"),
                    format!("{url:?} must be an http:// or https:// URL"),
                );
            }
        }
        for (r, url) in &b.region_endpoints {
            let key = format!("backend.region_endpoints.\"{r}\"");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                err(&key, format!("{url:?} must be an http:// or https:// URL"));
            }
            let served = b.regions.contains(r) || b.region.as_deref() == Some(r.as_str());
            if !served {
                err(
                    &key,
                    format!("{r} is neither backend.region nor in backend.regions"),
                );
            }
        }
        if b.attempt_timeout_ms > b.call_timeout_ms {
            err(
                "backend.attempt_timeout_ms",
                format!(
                    "{} is longer than backend.call_timeout_ms ({}): no attempt could use it",
                    b.attempt_timeout_ms, b.call_timeout_ms
                ),
            );
        }
    }
}

#[cfg(test)]
mod defaults {
    use super::*;

    /// One set of defaults: an empty `[backend]` is `BackendConfig::default()`,
    /// a key given keeps the others' defaults, and a typo is still refused.
    #[test]
    fn serde_and_default_agree() {
        crate::settings::assert_one_set_of_defaults::<BackendConfig>("max_atempts = 1");
        let one: BackendConfig = toml::from_str("max_attempts = 1").expect("one key");
        assert_eq!(one.max_attempts, 1);
        assert_eq!(one.max_users_per_pool, DEFAULT_MAX_USERS_PER_POOL);
        assert!(one.preflight, "the pre-flight is on unless turned off");
    }
}
