//! ListUserMfaStatus: a pool's MFA coverage, user by user, then a summary.
//!
//! One call's way (DESIGN.md §5), stretched over a stream:
//!
//!   authorize -> validate (the request and its page_token) -> the caller's
//!     budget -> a walk slot (`limits.walk.max_concurrent`) -> the pool's
//!     MFA configuration (GetUserPoolMfaConfig) -> first page
//!     -> [its own task] per user: pace, AdminGetUserAuthFactors, send;
//!        per page: pace, ListUsers -> summary -> one completed record ->
//!        log line
//!
//! Not AdminGetUser: AWS documents that it "contributes to your monthly
//! active user (MAU) count"; AdminGetUserAuthFactors answers the same MFA
//! members and the factors a user has registered, and its documentation
//! makes no MAU statement (docs/coverage.md).
//!
//! Pacing: every Cognito call of a walk first takes a cell of the walks'
//! share of its quota category (`LimitId::Walk`, `limits.walk.share` of
//! UserList and UserRead, all walks together) and, with the quota guard
//! on, of the category's own bucket and the user's: so a walk and every
//! other caller draw on the one quota, and the walk never takes more than
//! its share. A refusal makes the walk wait its retry-after, never fail.
//! Cognito's own throttling (another consumer of the account) is waited
//! out a bounded number of times.
//!
//! Resumption: each message carries a `page_token`, the walk's cursor
//! after that user (the ListUsers page it is on, how many of that page
//! were sent, and the summary so far), so a new call resumes there and its
//! summary still covers the whole pool. The cursor is bound to the pool
//! and filter and authenticated: HMAC-SHA256 under a key derived from the
//! deployment secret (`[server] secret_file`), so any replica resumes it
//! and nobody can forge or edit one; a token whose MAC does not hold is
//! INVALID_ARGUMENT (and recorded) before anything is read. Every counter
//! it carries is checked on the way in and only ever saturates.
//!
//! Cancellation: the task watches its channel; when the client goes away
//! (the stream is dropped) it stops at once, wherever it waits.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{CallContext, Facade, Target};
use crate::audit::settings::AuditLevel;
use crate::audit::{CallAudit, Completed};
use crate::backend::Backend;
use crate::domain::{
    AuthFactor, ListedUser, PoolMfaConfig, UserAuthFactors, UserRef, UsersPage,
    pool_state::Recovery, rules, rules::Violations,
};
use crate::error::{Error, Result};
use crate::hash::HmacKey;
use crate::limits::{CognitoOp, Limiter, UpstreamCall};
use crate::method;

/// Users per ListUsers page: Cognito's most (ListUsers.Limit, 0 to 60).
pub const PAGE_SIZE: i32 = 60;
/// The longest page_token a walk takes back.
pub const MAX_PAGE_TOKEN: usize = 8192;
/// Messages the walk reads ahead of a slow client; then it waits.
const AHEAD: usize = 16;
/// Cognito's own throttling of a walk's call, waited out at most this many
/// times in a row (250 ms, doubling), then the walk ends with it.
const UPSTREAM_RETRIES: u32 = 6;
/// The cursor's layout (3: the summary counts sign-ins under ON and
/// registered factors).
const CURSOR_VERSION: u8 = 3;
/// The most users one walk and the walks it resumes may count: far past
/// any pool (Cognito's largest are tens of millions), far below overflow.
pub const MAX_WALK_USERS: u64 = 1 << 40;
/// The label of the cursor's key, derived from the deployment secret.
pub const CURSOR_KEY_LABEL: &str = "mfa-facade walk cursor v1";

/// The request.
pub struct ListUserMfaStatus {
    pub user_pool_id: String,
    pub filter: String,
    pub page_token: String,
}

/// What a walk sends: a user, then the summary.
#[derive(Debug)]
pub enum WalkItem {
    User(UserStatus),
    Summary(Coverage),
}

/// One user's MFA state, as the stream shows it.
#[derive(Debug)]
pub struct UserStatus {
    pub index: u64,
    /// `None` when records fingerprint usernames: then only the sub names
    /// the user.
    pub username: Option<String>,
    pub sub: String,
    pub user_status: String,
    pub enabled: bool,
    pub preferred_mfa_setting: Option<String>,
    pub user_mfa_setting_list: Vec<String>,
    pub page_token: String,
    /// ConfiguredUserAuthFactors, by Cognito's names.
    pub configured_user_auth_factors: Vec<&'static str>,
    /// `None` for a disabled user.
    pub if_on: Option<IfOn>,
    pub has_phone_number: bool,
    pub has_email: bool,
    /// Whether MFA ON would leave the user without the password recovery
    /// it has now ([`PoolFactors::loses_recovery_if_on`]).
    pub loses_recovery_if_on: bool,
}

/// A user's next sign-in if the pool's MFA were ON (Cognito developer
/// guide, "Adding MFA to a user pool"; COGNITO.md §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfOn {
    /// Challenged with a factor it has.
    Prompted,
    /// Sent to MFA set-up: it has none, and the pool offers TOTP.
    Setup,
    /// It has none and there is none to set up.
    CannotSignIn,
}

/// What of a pool decides a sign-in under ON: the factors its MFA
/// configuration enables; and the channels its password recovery may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolFactors {
    pub sms: bool,
    pub email: bool,
    pub totp: bool,
    /// AccountRecoverySetting names verified_email / verified_phone_number
    /// (none set: Cognito's legacy behaviour, phone then email: both).
    pub recover_by_email: bool,
    pub recover_by_phone: bool,
}

impl PoolFactors {
    pub fn of(config: &PoolMfaConfig, recovery: &[Recovery]) -> Self {
        let legacy = recovery.is_empty();
        Self {
            sms: config.sms.is_some(),
            email: config.email.is_some(),
            totp: config.totp_enabled(),
            recover_by_email: legacy || recovery.contains(&Recovery::VerifiedEmail),
            recover_by_phone: legacy || recovery.contains(&Recovery::VerifiedPhoneNumber),
        }
    }

    /// Whether MFA ON would take the user's password recovery away.
    /// AccountRecoverySettingType (botocore 1.44.8): "SMS doesn't qualify
    /// for a valid password recovery mechanism if the user also has SMS
    /// multi-factor authentication (MFA) activated. Email MFA is also
    /// disqualifying for account recovery with email." A channel recovers
    /// a password when the pool's setting names it, the user's attribute
    /// is verified, and MFA does not use it. Under ON, a user with no TOTP
    /// app is challenged through the channels the pool enables and the
    /// user has: true when the user can recover a password now and could
    /// by none of its channels then. (That ON counts as "activated" for a
    /// user who never enabled the factor is a guess, docs/differences.md.)
    pub fn loses_recovery_if_on(self, user: &ListedUser, factors: &UserAuthFactors) -> bool {
        if !user.enabled {
            return false;
        }
        let totp = factors.has_totp_app();
        let sms_now = factors.enables("SMS_MFA");
        let email_now = factors.enables("EMAIL_OTP");
        let sms_on = sms_now || (!totp && self.sms && user.has_phone_number);
        let email_on = email_now || (!totp && self.email && user.has_email);
        let recoverable = |sms: bool, email: bool| {
            (self.recover_by_phone && user.phone_number_verified && !sms)
                || (self.recover_by_email && user.email_verified && !email)
        };
        recoverable(sms_now, email_now) && !recoverable(sms_on, email_on)
    }

    /// The guide's rule: a user with a registered authenticator (a TOTP
    /// app), or with a phone_number or email attribute for a
    /// factor the pool enables (Cognito sends to unverified ones too), is
    /// prompted; any other is sent to set-up when the pool offers TOTP, and
    /// else cannot sign in. A disabled user is `None`. (What ON does to the
    /// user's password recovery: [`PoolFactors::loses_recovery_if_on`].)
    pub fn if_on(self, user: &ListedUser, factors: &UserAuthFactors) -> Option<IfOn> {
        if !user.enabled {
            return None;
        }
        let prompted = factors.has_totp_app()
            || (self.sms && user.has_phone_number)
            || (self.email && user.has_email);
        Some(if prompted {
            IfOn::Prompted
        } else if self.totp {
            IfOn::Setup
        } else {
            IfOn::CannotSignIn
        })
    }
}

/// The factors a summary counts by name; any other is counted as OTHER,
/// so that the summary (and the cursor carrying it) stays small whatever
/// upstream answers.
const KNOWN_FACTORS: [&str; 4] = ["SMS_MFA", "SOFTWARE_TOKEN_MFA", "EMAIL_OTP", "WEB_AUTHN"];

/// The summary of a walk, over every user it and the walks it resumes read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub users: u64,
    pub enabled_factors: BTreeMap<String, u64>,
    pub preferred_factors: BTreeMap<String, u64>,
    pub without_mfa: u64,
    pub setup_required_if_on: u64,
    pub disabled: u64,
    pub vanished: u64,
    pub configured_factors: BTreeMap<String, u64>,
    pub prompted_if_on: u64,
    pub cannot_sign_in_if_on: u64,
    /// Users MFA ON would leave without password recovery (absent from
    /// cursors made before it was counted: 0).
    #[serde(default)]
    pub recovery_lost_if_on: u64,
}

fn factor_key(name: &str) -> String {
    if KNOWN_FACTORS.contains(&name) {
        name.to_owned()
    } else {
        "OTHER".to_owned()
    }
}

impl Coverage {
    /// Counts one user. Every count saturates: a cursor's counts are
    /// checked on the way in ([`Coverage::sane`]), and this never panics
    /// whatever they hold.
    fn add(
        &mut self,
        user: &ListedUser,
        settings: &UserAuthFactors,
        if_on: Option<IfOn>,
        loses_recovery: bool,
    ) {
        fn bump(n: &mut u64) {
            *n = n.saturating_add(1);
        }
        bump(&mut self.users);
        if loses_recovery {
            bump(&mut self.recovery_lost_if_on);
        }
        let mut configured = Vec::new();
        for f in &settings.configured_user_auth_factors {
            if !configured.contains(f) {
                bump(
                    self.configured_factors
                        .entry(f.cognito_name().to_owned())
                        .or_default(),
                );
                configured.push(*f);
            }
        }
        match if_on {
            Some(IfOn::Prompted) => bump(&mut self.prompted_if_on),
            Some(IfOn::Setup) => bump(&mut self.setup_required_if_on),
            Some(IfOn::CannotSignIn) => bump(&mut self.cannot_sign_in_if_on),
            None => {}
        }
        let mut seen = Vec::new();
        for f in &settings.user_mfa_setting_list {
            let key = factor_key(f);
            if !seen.contains(&key) {
                bump(self.enabled_factors.entry(key.clone()).or_default());
                seen.push(key);
            }
        }
        if let Some(p) = &settings.preferred_mfa_setting {
            bump(self.preferred_factors.entry(factor_key(p)).or_default());
        }
        if settings.user_mfa_setting_list.is_empty() {
            bump(&mut self.without_mfa);
        }
        if !user.enabled {
            bump(&mut self.disabled);
        }
    }

    /// What a walk can have written: the factor names it counts by, and no
    /// count past the users counted (nor those past [`MAX_WALK_USERS`]).
    fn sane(&self) -> bool {
        let names = |m: &BTreeMap<String, u64>| {
            m.len() <= KNOWN_FACTORS.len() + 1
                && m.iter().all(|(k, n)| {
                    (KNOWN_FACTORS.contains(&k.as_str()) || k == "OTHER") && *n <= self.users
                })
        };
        // The registered factors are counted by AuthFactorType's names.
        let configured = self.configured_factors.len() <= AuthFactor::ALL.len()
            && self
                .configured_factors
                .iter()
                .all(|(k, n)| AuthFactor::from_cognito(k).is_some() && *n <= self.users);
        // Each enabled user is counted in one of the three, at most.
        let if_on = self
            .prompted_if_on
            .checked_add(self.setup_required_if_on)
            .and_then(|n| n.checked_add(self.cannot_sign_in_if_on))
            .and_then(|n| n.checked_add(self.disabled))
            .is_some_and(|n| n <= self.users);
        self.users <= MAX_WALK_USERS
            && self.vanished <= MAX_WALK_USERS
            && names(&self.enabled_factors)
            && names(&self.preferred_factors)
            && configured
            && if_on
            && self.without_mfa <= self.users
            && self.disabled <= self.users
            && self.recovery_lost_if_on <= self.users
    }
}

/// Where a walk is: what a page_token carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    v: u8,
    /// A hash of the pool and filter the walk is over.
    b: String,
    /// The ListUsers token of the current page; `None`: the first.
    p: Option<String>,
    /// Users of the current page already sent.
    s: usize,
    /// Users sent by this walk and the ones it resumes.
    n: u64,
    /// The walk has read every user.
    e: bool,
    c: Coverage,
}

fn binding(pool: &str, filter: &str) -> String {
    crate::hash::hex(&crate::hash::key_of(&[pool, filter])[..8])
}

impl Cursor {
    fn start(pool: &str, filter: &str) -> Self {
        Self {
            v: CURSOR_VERSION,
            b: binding(pool, filter),
            ..Default::default()
        }
    }

    /// `base64url(json).base64url(mac)` ([`HmacKey::seal_token`]).
    fn encode(&self, key: &HmacKey) -> String {
        key.seal_token(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The cursor of a page_token, if this deployment made it for a walk of
    /// this pool and filter; what is wrong goes to `v`. The MAC is checked
    /// before anything of the token is parsed.
    fn decode(
        v: &mut Violations,
        key: &HmacKey,
        token: &str,
        pool: &str,
        filter: &str,
    ) -> Option<Self> {
        if token.len() > MAX_PAGE_TOKEN {
            v.add(
                "page_token",
                format!("at most {MAX_PAGE_TOKEN} characters (is {})", token.len()),
            );
            return None;
        }
        let not_ours = |v: &mut Violations| {
            v.add(
                "page_token",
                "is not a page_token of ListUserMfaStatus made by this deployment, or was \
                 changed (send one of its messages' page_token unchanged)",
            );
        };
        let Some(body) = key.open_token(token) else {
            not_ours(v);
            return None;
        };
        let cursor = serde_json::from_slice::<Cursor>(&body).ok().filter(|c| {
            c.v == CURSOR_VERSION && c.c.sane() && c.n == c.c.users && c.s <= PAGE_SIZE as usize
        });
        let Some(cursor) = cursor else {
            not_ours(v);
            return None;
        };
        if cursor.b != binding(pool, filter) {
            v.add(
                "page_token",
                "belongs to a walk of another user pool or filter",
            );
            return None;
        }
        if let Some(p) = &cursor.p {
            rules::pagination_token(v, "page_token", p);
        }
        Some(cursor)
    }
}

/// For the fuzz target `walk_cursor`: `data` as a cursor's JSON, bound to a
/// pool and signed with a key of the target's (as if the key had leaked,
/// the worst case), through the real decoder; an accepted cursor is then
/// counted on as a walk does. Nothing here may panic, whatever `data`.
pub fn fuzz_cursor(data: &[u8]) {
    let key = HmacKey::new(b"fuzz-walk-cursor");
    let (pool, filter) = ("us-east-1_fuzz", "");
    let mut v = Violations::default();
    // The raw bytes as a token: refused (no MAC of ours), never a panic.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Cursor::decode(&mut v, &key, text, pool, filter);
    }
    let token = match serde_json::from_slice::<Cursor>(data) {
        Ok(mut c) => {
            c.b = binding(pool, filter);
            c.encode(&key)
        }
        // Not a cursor: signed as it is.
        Err(_) => key.seal_token(data),
    };
    let Some(mut cursor) = Cursor::decode(&mut v, &key, &token, pool, filter) else {
        return;
    };
    let bit = |i: u8| data.first().is_some_and(|b| b & (1 << i) != 0);
    let user = ListedUser {
        username: "u".into(),
        sub: None,
        status: None,
        enabled: bit(0),
        has_phone_number: bit(1),
        has_email: bit(2),
        email_verified: bit(6),
        phone_number_verified: bit(7),
    };
    let settings = UserAuthFactors {
        username: "u".into(),
        preferred_mfa_setting: Some("SMS_MFA".into()),
        user_mfa_setting_list: vec!["SMS_MFA".into(), "NEW".into()],
        configured_user_auth_factors: vec![AuthFactor::WebAuthn, AuthFactor::WebAuthn],
    };
    let pool = PoolFactors {
        sms: bit(3),
        email: bit(4),
        totp: bit(5),
        recover_by_email: bit(6),
        recover_by_phone: bit(7),
    };
    for _ in 0..3 {
        let if_on = pool.if_on(&user, &settings);
        let loses_recovery = pool.loses_recovery_if_on(&user, &settings);
        cursor.c.add(&user, &settings, if_on, loses_recovery);
        cursor.n = cursor.n.saturating_add(1);
        cursor.s = cursor.s.saturating_add(1);
        cursor.c.vanished = cursor.c.vanished.saturating_add(1);
    }
    let _ = cursor.encode(&key);
}

impl ListUserMfaStatus {
    fn validate(&self, v: &mut Violations, key: &HmacKey) -> Cursor {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::user_filter(v, "filter", &self.filter);
        if self.page_token.is_empty() {
            Cursor::start(&self.user_pool_id, &self.filter)
        } else {
            Cursor::decode(v, key, &self.page_token, &self.user_pool_id, &self.filter)
                .unwrap_or_default()
        }
    }
}

/// The audit record's request.
#[derive(Serialize)]
struct AuditRequest<'a> {
    user_pool_id: &'a str,
    filter: &'a str,
    resumed: bool,
}

/// The audit record's response: how far the walk got.
#[derive(Serialize)]
struct AuditResponse<'a> {
    sent: u64,
    summary: &'a Coverage,
}

/// A walk that has started: its task streams into `rx`.
pub type WalkStream = mpsc::Receiver<Result<WalkItem>>;

struct Walker {
    backend: Arc<dyn Backend>,
    limiter: Arc<Limiter>,
    pool: String,
    filter: String,
    sub_only: bool,
    tx: mpsc::Sender<Result<WalkItem>>,
    deadline: tokio::time::Instant,
    max_seconds: u64,
    /// The cursors' key.
    key: HmacKey,
    /// The caller, for backends that act for callers
    /// (`Backend::acts_for_callers`).
    acting: Option<Arc<str>>,
    /// The factors the pool enables, read when the walk opened.
    pool_factors: PoolFactors,
}

impl Walker {
    /// Waits for what `f` might wait on, unless the client goes away or the
    /// walk's time is up first.
    async fn bounded<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            r = f => r,
            () = self.tx.closed() => Err(Error::Cancelled("the client cancelled the walk".into())),
            () = tokio::time::sleep_until(self.deadline) => Err(Error::WalkTimedOut(self.max_seconds)),
        }
    }

    /// Takes the walk's cells for one Cognito call, waiting while refused.
    async fn pace(&self, call: UpstreamCall) -> Result<()> {
        let buckets = self.limiter.budgets().walk_buckets(&call);
        loop {
            match self.limiter.check(&buckets).await {
                Ok(()) => return Ok(()),
                Err(refusal) => {
                    self.bounded(async {
                        tokio::time::sleep(refusal.retry_after).await;
                        Ok(())
                    })
                    .await?;
                }
            }
        }
    }

    /// One Cognito call of the walk: paced, bounded, and retried while
    /// Cognito itself throttles.
    async fn call<T, F, Fut>(&self, upstream: UpstreamCall, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = Duration::from_millis(250);
        let mut retries = 0;
        loop {
            self.pace(upstream.clone()).await?;
            let started = Instant::now();
            let result = self
                .bounded(crate::upstream::act_for(self.acting.clone(), f()))
                .await;
            crate::meters::upstream_seconds(
                method::LIST_USER_MFA_STATUS.name,
                self.backend.name(),
                started.elapsed().as_secs_f64(),
            );
            match result {
                Err(e)
                    if retries < UPSTREAM_RETRIES
                        && e.code() == tonic::Code::ResourceExhausted
                        && e.cognito_exception().is_some() =>
                {
                    self.bounded(async {
                        tokio::time::sleep(backoff).await;
                        Ok(())
                    })
                    .await?;
                    backoff *= 2;
                    retries += 1;
                }
                other => return other,
            }
        }
    }

    async fn page(&self, token: Option<&str>) -> Result<UsersPage> {
        let call = UpstreamCall::pool(CognitoOp::ListUsers, &self.pool);
        self.call(call, || {
            self.backend
                .list_users(&self.pool, &self.filter, token, PAGE_SIZE)
        })
        .await
    }

    /// The pool's MFA configuration (which factors it enables) and its
    /// account recovery (DescribeUserPool): one read each per walk.
    async fn pool_factors(&self) -> Result<PoolFactors> {
        let call = UpstreamCall::pool(CognitoOp::GetUserPoolMfaConfig, &self.pool);
        let config = self
            .call(call, || self.backend.get_user_pool_mfa_config(&self.pool))
            .await?;
        let call = UpstreamCall::pool(CognitoOp::DescribeUserPool, &self.pool);
        let state = self
            .call(call, || self.backend.pool_state(&self.pool))
            .await?;
        Ok(PoolFactors::of(&config, &state.recovery))
    }

    /// A user's MFA settings and registered factors
    /// (AdminGetUserAuthFactors: no MAU charge documented, where
    /// AdminGetUser's is); `None` when the user is gone.
    async fn settings(&self, username: &str) -> Result<Option<UserAuthFactors>> {
        let call = UpstreamCall::user(
            CognitoOp::AdminGetUserAuthFactors,
            Some(self.pool.clone()),
            Some(username.to_owned()),
        );
        let user = UserRef::Admin {
            user_pool_id: self.pool.clone(),
            username: username.to_owned(),
        };
        match self
            .call(call, || self.backend.get_user_auth_factors(&user))
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.cognito_exception() == Some("UserNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn send(&self, item: WalkItem) -> Result<()> {
        self.bounded(async {
            self.tx
                .send(Ok(item))
                .await
                .map_err(|_| Error::Cancelled("the client cancelled the walk".into()))
        })
        .await
    }

    /// Walks from `cursor` (on `page`, its current page) to the end.
    async fn walk(&self, cursor: &mut Cursor, mut page: UsersPage) -> Result<()> {
        while !cursor.e {
            let users = std::mem::take(&mut page.users);
            let count = users.len();
            for (i, user) in users.into_iter().enumerate().skip(cursor.s) {
                let settings = self.settings(&user.username).await?;
                cursor.s = i.saturating_add(1);
                let Some(settings) = settings else {
                    cursor.c.vanished = cursor.c.vanished.saturating_add(1);
                    continue;
                };
                let if_on = self.pool_factors.if_on(&user, &settings);
                let loses_recovery = self.pool_factors.loses_recovery_if_on(&user, &settings);
                cursor.c.add(&user, &settings, if_on, loses_recovery);
                cursor.n = cursor.n.saturating_add(1);
                let last = cursor.s == count && page.next.is_none();
                let token = {
                    let mut after = cursor.clone();
                    if after.s == count {
                        after.p = page.next.clone();
                        after.s = 0;
                        after.e = last;
                    }
                    after.encode(&self.key)
                };
                self.send(WalkItem::User(UserStatus {
                    index: cursor.n,
                    username: (!self.sub_only).then(|| user.username.clone()),
                    sub: user.sub.clone().unwrap_or_default(),
                    user_status: user.status.clone().unwrap_or_default(),
                    enabled: user.enabled,
                    preferred_mfa_setting: settings.preferred_mfa_setting,
                    user_mfa_setting_list: settings.user_mfa_setting_list,
                    page_token: token,
                    configured_user_auth_factors: settings
                        .configured_user_auth_factors
                        .iter()
                        .map(|f| f.cognito_name())
                        .collect(),
                    if_on,
                    has_phone_number: user.has_phone_number,
                    has_email: user.has_email,
                    loses_recovery_if_on: loses_recovery,
                }))
                .await?;
            }
            match page.next.take() {
                None => cursor.e = true,
                Some(next) => {
                    page = self.page(Some(&next)).await?;
                    cursor.p = Some(next);
                    cursor.s = 0;
                }
            }
        }
        self.send(WalkItem::Summary(cursor.c.clone())).await
    }
}

/// A walk that passed every stage up to its first page.
struct Opened {
    slot: OwnedSemaphorePermit,
    cursor: Cursor,
    walker: Walker,
    first: UsersPage,
    rx: WalkStream,
}

impl Facade {
    /// Opens a coverage walk: every stage of a call up to its first page,
    /// so that a refusal (auth, input, limits, a pool that does not exist)
    /// is the call's status; then the walk streams from its own task.
    pub async fn walk(&self, ctx: &CallContext, op: ListUserMfaStatus) -> Result<WalkStream> {
        let started = Instant::now();
        let m = &method::LIST_USER_MFA_STATUS;
        let mut audit = self.open_record(ctx, m.name, false, Some(&op.user_pool_id), None);
        audit.request(|| AuditRequest {
            user_pool_id: &op.user_pool_id,
            filter: &op.filter,
            resumed: !op.page_token.is_empty(),
        });
        // The walk's record is written however it ends: here for a refusal,
        // by its task at the end of the stream, and for a cancel or a panic
        // by `CallAudit`'s drop, as for every call.
        let end = Ending {
            facade: self.clone(),
            ctx: CallContext {
                request_id: ctx.request_id.clone(),
                principal: ctx.principal.clone(),
                trace: ctx.trace.clone(),
                peer: ctx.peer,
                warnings: Default::default(),
                deadline: None,
            },
            started,
        };
        let Opened {
            slot,
            mut cursor,
            walker,
            first,
            rx,
        } = match self.open_walk(ctx, &op).await {
            Ok(o) => o,
            Err(e) => {
                end.finish(&mut audit, Err(&e), None);
                return Err(e);
            }
        };
        tokio::spawn(async move {
            let _slot = slot;
            let result = walker.walk(&mut cursor, first).await;
            let response = AuditResponse {
                sent: cursor.n,
                summary: &cursor.c,
            };
            end.finish(&mut audit, result.as_ref().map(|_| ()), Some(&response));
            // The record first, then the client sees how the walk ended.
            if let Err(e) = result
                && !matches!(e, Error::Cancelled(_))
            {
                let _ = walker.tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }

    /// The call's admission (as every call's: authorize, validate the
    /// request and its page_token, the caller's budget), then a walk slot
    /// and the first page.
    async fn open_walk(&self, ctx: &CallContext, op: &ListUserMfaStatus) -> Result<Opened> {
        let m = &method::LIST_USER_MFA_STATUS;
        // The walk's Cognito calls wait for their share of the quota as it
        // goes (`pace`): none are decided at the door.
        let (principal, cursor) = self
            .admit(
                ctx.trace.as_ref(),
                ctx.principal.as_ref(),
                m.name,
                Target::Pool(&op.user_pool_id),
                Violations::default(),
                |v| op.validate(v, &self.cursor_key),
                Vec::new,
            )
            .await?;
        let config = &self.limiter.budgets().walk;
        let slot = self.walks.clone().try_acquire_owned().map_err(|_| {
            let limit = "walk:concurrent".to_owned();
            crate::meters::rate_limited(m.name, limit.clone());
            Error::RateLimited {
                description: format!(
                    "at most {} coverage walks at once (limits.walk.max_concurrent)",
                    config.max_concurrent
                ),
                limit,
                retry_after: Duration::from_secs(1),
            }
        })?;
        let (tx, rx) = mpsc::channel(AHEAD);
        let mut walker = Walker {
            backend: self.backend.clone(),
            limiter: self.limiter.clone(),
            pool: op.user_pool_id.clone(),
            filter: op.filter.clone(),
            sub_only: self.auditor.redactor().fingerprints_usernames(),
            tx,
            deadline: tokio::time::Instant::now() + Duration::from_secs(config.max_seconds),
            max_seconds: config.max_seconds,
            key: self.cursor_key.clone(),
            acting: self
                .backend
                .acts_for_callers()
                .then(|| Arc::from(principal.name.as_str())),
            pool_factors: PoolFactors::default(),
        };
        let first = if cursor.e {
            UsersPage::default()
        } else {
            walker.pool_factors = walker.pool_factors().await?;
            walker.page(cursor.p.as_deref()).await?
        };
        Ok(Opened {
            slot,
            cursor,
            walker,
            first,
            rx,
        })
    }
}

/// Who a walk's record and log line are about.
struct Ending {
    facade: Facade,
    /// The call's, kept for its end (the walk's server span ends when the
    /// stream starts; the pages are not traced).
    ctx: CallContext,
    started: Instant,
}

impl Ending {
    /// The walk's one completed record and its log line.
    fn finish(
        &self,
        audit: &mut CallAudit,
        result: std::result::Result<(), &Error>,
        response: Option<&AuditResponse<'_>>,
    ) {
        let response = response
            .filter(|_| audit.level() == AuditLevel::RequestResponse)
            .map(|r| audit.value(r));
        // A read: nothing waits for the record to be durable.
        let _ = audit.completed(
            Completed {
                error: result.err(),
                latency: self.started.elapsed(),
                change: None,
                guardrails: None,
                response,
            },
            false,
        );
        self.facade.log_completed(
            &self.ctx,
            method::LIST_USER_MFA_STATUS.name,
            result,
            self.started.elapsed(),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(enabled: bool) -> ListedUser {
        ListedUser {
            username: "u".into(),
            sub: Some("s".into()),
            status: Some("CONFIRMED".into()),
            enabled,
            has_phone_number: false,
            has_email: false,
            email_verified: false,
            phone_number_verified: false,
        }
    }

    fn with(list: &[&str], preferred: Option<&str>) -> UserAuthFactors {
        UserAuthFactors {
            username: "u".into(),
            preferred_mfa_setting: preferred.map(str::to_owned),
            user_mfa_setting_list: list.iter().map(|s| s.to_string()).collect(),
            configured_user_auth_factors: Vec::new(),
        }
    }

    #[test]
    fn coverage_counts_factors_preferences_and_sign_ins_under_on() {
        let pool = PoolFactors {
            totp: true,
            ..PoolFactors::default()
        };
        let mut c = Coverage::default();
        let mut add = |user: ListedUser, factors: UserAuthFactors| {
            let if_on = pool.if_on(&user, &factors);
            c.add(&user, &factors, if_on, false);
        };
        add(
            listed(true),
            with(&["SMS_MFA", "SOFTWARE_TOKEN_MFA"], Some("SMS_MFA")),
        );
        add(listed(true), with(&[], None));
        add(listed(false), with(&[], None));
        add(listed(true), with(&["NEW_FACTOR", "NEWER"], None));
        let mut passkeys = with(&[], None);
        passkeys.configured_user_auth_factors = vec![AuthFactor::WebAuthn, AuthFactor::Password];
        add(listed(true), passkeys);
        assert_eq!(c.users, 5);
        assert_eq!(c.enabled_factors["SMS_MFA"], 1);
        assert_eq!(c.enabled_factors["SOFTWARE_TOKEN_MFA"], 1);
        assert_eq!(
            c.enabled_factors["OTHER"], 1,
            "unknown names count once, as OTHER"
        );
        assert_eq!(c.preferred_factors["SMS_MFA"], 1);
        assert_eq!(c.configured_factors["WEB_AUTHN"], 1);
        assert_eq!(c.configured_factors["PASSWORD"], 1);
        assert_eq!((c.without_mfa, c.disabled), (3, 1));
        // Prompted: TOTP enabled. Set-up: the other three enabled users (a
        // registered passkey is not passkey MFA).
        assert_eq!(
            (
                c.prompted_if_on,
                c.setup_required_if_on,
                c.cannot_sign_in_if_on
            ),
            (1, 3, 0)
        );
        assert!(c.sane());
    }

    /// The guide's rule, case by case.
    #[test]
    fn a_sign_in_under_on_follows_the_guide() {
        let phone = ListedUser {
            has_phone_number: true,
            ..listed(true)
        };
        let email = ListedUser {
            has_email: true,
            ..listed(true)
        };
        let none = listed(true);
        let sms_only = PoolFactors {
            sms: true,
            ..PoolFactors::default()
        };
        let email_totp = PoolFactors {
            email: true,
            totp: true,
            ..PoolFactors::default()
        };
        let mut totp_registered = with(&[], None);
        totp_registered.configured_user_auth_factors = vec![AuthFactor::SoftwareToken];
        for (pool, user, factors, want) in [
            (sms_only, &phone, with(&[], None), Some(IfOn::Prompted)),
            (sms_only, &email, with(&[], None), Some(IfOn::CannotSignIn)),
            (sms_only, &none, with(&[], None), Some(IfOn::CannotSignIn)),
            (email_totp, &email, with(&[], None), Some(IfOn::Prompted)),
            (email_totp, &phone, with(&[], None), Some(IfOn::Setup)),
            (
                email_totp,
                &none,
                totp_registered.clone(),
                Some(IfOn::Prompted),
            ),
            // Cognito lists no WEB_AUTHN in UserMFASettingList (passkey MFA
            // is shown nowhere); were it listed, it would not prompt alone.
            (
                email_totp,
                &none,
                with(&["WEB_AUTHN"], None),
                Some(IfOn::Setup),
            ),
            (sms_only, &listed(false), with(&[], None), None),
        ] {
            assert_eq!(
                pool.if_on(user, &factors),
                want,
                "{pool:?} {user:?} {factors:?}"
            );
        }
    }

    /// AccountRecoverySettingType: a channel MFA uses does not recover a
    /// password. MFA ON takes recovery away from a user whose every
    /// recovering channel is one ON would challenge through.
    #[test]
    fn mfa_on_takes_recovery_from_users_whose_only_recovery_channel_it_uses() {
        let verified_phone = ListedUser {
            has_phone_number: true,
            phone_number_verified: true,
            ..listed(true)
        };
        let verified_both = ListedUser {
            has_email: true,
            email_verified: true,
            ..verified_phone.clone()
        };
        let unverified_phone = ListedUser {
            has_phone_number: true,
            ..listed(true)
        };
        let sms = |recovery: &[Recovery]| {
            PoolFactors::of(
                &PoolMfaConfig {
                    sms: Some(Default::default()),
                    ..Default::default()
                },
                recovery,
            )
        };
        let phone_only = sms(&[Recovery::VerifiedPhoneNumber]);
        let email_then_phone = sms(&[Recovery::VerifiedEmail, Recovery::VerifiedPhoneNumber]);
        let legacy = sms(&[]);
        let admin_only = sms(&[Recovery::AdminOnly]);
        let mut totp = with(&[], None);
        totp.configured_user_auth_factors = vec![AuthFactor::SoftwareToken];
        for (pool, user, factors, want, why) in [
            (
                phone_only,
                &verified_phone,
                with(&[], None),
                true,
                "SMS MFA takes the one channel",
            ),
            (
                phone_only,
                &verified_both,
                with(&[], None),
                true,
                "email is not a mechanism",
            ),
            (
                email_then_phone,
                &verified_both,
                with(&[], None),
                false,
                "email still recovers",
            ),
            (
                legacy,
                &verified_both,
                with(&[], None),
                false,
                "legacy: email still recovers",
            ),
            (
                legacy,
                &verified_phone,
                with(&[], None),
                true,
                "legacy: phone was the only one",
            ),
            (
                phone_only,
                &unverified_phone,
                with(&[], None),
                false,
                "nothing to lose",
            ),
            (
                phone_only,
                &verified_phone,
                with(&["SMS_MFA"], None),
                false,
                "lost already",
            ),
            (
                phone_only,
                &verified_phone,
                totp,
                false,
                "TOTP is challenged, not SMS",
            ),
            (
                admin_only,
                &verified_phone,
                with(&[], None),
                false,
                "admins reset passwords",
            ),
            (
                phone_only,
                &listed(false),
                with(&[], None),
                false,
                "disabled",
            ),
        ] {
            assert_eq!(pool.loses_recovery_if_on(user, &factors), want, "{why}");
        }
    }

    #[test]
    fn a_page_token_is_bound_to_its_pool_and_filter_and_bounded() {
        let key = HmacKey::new(b"the deployment's cursor key");
        let mut cursor = Cursor::start("us-east-1_A", "");
        cursor.p = Some("abc".into());
        cursor.s = 3;
        cursor.n = 63;
        cursor.c.users = 63;
        let token = cursor.encode(&key);
        let mut v = Violations::default();
        assert_eq!(
            Cursor::decode(&mut v, &key, &token, "us-east-1_A", ""),
            Some(cursor.clone())
        );
        assert!(v.is_empty());
        for (token, pool, filter) in [
            (token.as_str(), "us-east-1_B", ""),
            (token.as_str(), "us-east-1_A", "email = \"x\""),
            ("not-a-token", "us-east-1_A", ""),
        ] {
            let mut v = Violations::default();
            assert_eq!(Cursor::decode(&mut v, &key, token, pool, filter), None);
            assert!(!v.is_empty(), "{token} for {pool} {filter}");
        }
        let mut v = Violations::default();
        let long = "A".repeat(MAX_PAGE_TOKEN + 1);
        assert_eq!(Cursor::decode(&mut v, &key, &long, "us-east-1_A", ""), None);
        // Another deployment's key: refused.
        let mut v = Violations::default();
        let other = HmacKey::new(b"another deployment");
        assert_eq!(
            Cursor::decode(&mut v, &other, &token, "us-east-1_A", ""),
            None
        );
    }

    /// What issue 31 found: a summary counter of 2^64-1 panicked the walk
    /// after it had streamed users. A forged token (no MAC, or another MAC)
    /// is refused before it is parsed; one with our MAC but counts no walk
    /// writes (only a leaked key could make one) is refused too; and the
    /// counting itself saturates.
    #[test]
    fn forged_or_overflowing_cursors_are_refused_and_counting_cannot_panic() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let key = HmacKey::new(b"the deployment's cursor key");
        let mut forged = Cursor::start("us-east-1_A", "");
        forged.c.enabled_factors.insert("SMS_MFA".into(), u64::MAX);
        forged.n = u64::MAX - 2;
        forged.c.users = u64::MAX - 2;
        let unsigned = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap_or_default());
        let edited = {
            let honest = Cursor::start("us-east-1_A", "").encode(&key);
            let (_, mac) = honest.rsplit_once('.').unwrap_or_default();
            format!("{unsigned}.{mac}")
        };
        for token in [unsigned.clone(), edited, forged.encode(&key)] {
            let mut v = Violations::default();
            assert_eq!(
                Cursor::decode(&mut v, &key, &token, "us-east-1_A", ""),
                None,
                "{token}"
            );
            assert!(!v.is_empty());
        }
        let mut bad = Cursor::start("us-east-1_A", "");
        bad.c.enabled_factors = (0..10).map(|i| (i.to_string(), 0)).collect();
        let mut v = Violations::default();
        assert_eq!(
            Cursor::decode(&mut v, &key, &bad.encode(&key), "us-east-1_A", ""),
            None,
            "a summary with names no walk writes is refused"
        );
        // Counting past the end saturates instead of panicking.
        let mut c = forged.c.clone();
        c.users = u64::MAX;
        c.add(
            &listed(true),
            &with(&["SMS_MFA"], Some("SMS_MFA")),
            Some(IfOn::Prompted),
            false,
        );
        assert_eq!(c.users, u64::MAX);
        assert_eq!(c.enabled_factors["SMS_MFA"], u64::MAX);
    }
}
