//! Cognito's rules for a TOTP code, on the local store: the lockout after
//! wrong codes in a row (COGNITO.md §3, §6.5) and the refusal of a replay.

use super::cognito_rules::cognito;
use super::store::{self, SoftwareToken};
use crate::domain::{Secret, totp};
use crate::error::{Error, Result};

/// Wrong TOTP codes in a row before the lockout starts (COGNITO.md §3:
/// "after 5 failed MFA codes the exponential lockout starts").
pub const TOTP_FAILURES_BEFORE_LOCKOUT: u32 = 5;
/// The longest one lockout lasts: Cognito's back-off doubles from one
/// second up to about 15 minutes.
pub const MAX_TOTP_LOCKOUT_SECONDS: u64 = 900;
/// The failure count resets after this long without a failed attempt
/// (Cognito's authentication-flow lockout: "15 consecutive minutes
/// without attempts"; COGNITO.md §6.5).
pub const TOTP_FAILURE_RESET_SECONDS: u64 = 900;

/// How long a user is locked out after `failures` wrong codes in a row:
/// nothing before the fifth, then 1 s, 2 s, 4 s, ... at most 900 s.
pub fn lockout_seconds(failures: u32) -> u64 {
    match failures.checked_sub(TOTP_FAILURES_BEFORE_LOCKOUT) {
        None => 0,
        Some(n) => 1u64
            .checked_shl(n)
            .unwrap_or(u64::MAX)
            .min(MAX_TOTP_LOCKOUT_SECONDS),
    }
}
/// Checks a TOTP code for VerifySoftwareToken with Cognito's rules: the
/// lockout after five wrong codes in a row (then twice as long each time),
/// a code of a step already accepted refused as a replay. The pending
/// secret of an AssociateSoftwareToken is checked and, if the code is
/// right, becomes the user's authenticator; without one, the code is
/// checked against the verified authenticator (how a replay is tried).
/// The outer error is a call that changes nothing; the inner one a wrong
/// code, which is counted and kept.
pub(super) fn check_code(
    user: &mut store::User,
    code: &Secret,
    friendly_device_name: Option<&str>,
    now: u64,
) -> Result<Result<()>> {
    let m = &mut user.mfa;
    // Fifteen minutes without a failed attempt: the count starts again.
    if m.totp_failures > 0
        && now.saturating_sub(m.totp_last_failure) >= TOTP_FAILURE_RESET_SECONDS
        && m.totp_locked_until <= now
    {
        m.totp_failures = 0;
        m.totp_locked_until = 0;
    }
    if m.totp_locked_until > now {
        return Err(cognito(
            "NotAuthorizedException",
            format!(
                "Too many invalid codes in a row; the user may try again in {} s",
                m.totp_locked_until - now
            ),
        ));
    }
    let (secret, pending) = match (&m.pending_secret, &m.software_token) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(t)) => (t.secret.clone(), false),
        (None, None) => {
            return Err(cognito(
                "SoftwareTokenMFANotFoundException",
                "Software Token MFA does not exist for the user.",
            ));
        }
    };
    let key = totp::decode_base32(secret.expose())
        .ok_or_else(|| Error::Internal("a stored TOTP secret is not base32".into()))?;
    let Some(step) = totp::matching_step(&key, code.expose(), now) else {
        m.totp_failures = m.totp_failures.saturating_add(1);
        m.totp_last_failure = now;
        let lock = lockout_seconds(m.totp_failures);
        if lock > 0 {
            // The clock counts whole seconds and the failure came some
            // time within `now`: one more second, so the lockout lasts at
            // least `lock` from the failure (it ends on the first whole
            // second after that).
            m.totp_locked_until = now.saturating_add(lock).saturating_add(1);
        }
        return Ok(Err(cognito(
            "EnableSoftwareTokenMFAException",
            "Code mismatch and fail enable Software Token MFA",
        )));
    };
    if !pending
        && m.software_token
            .as_ref()
            .is_some_and(|t| step <= t.last_step)
    {
        return Ok(Err(cognito(
            "CodeMismatchException",
            "Your software token has already been used once.",
        )));
    }
    m.totp_failures = 0;
    m.totp_locked_until = 0;
    if pending {
        // The new authenticator replaces the old one only now.
        m.software_token = Some(SoftwareToken {
            secret,
            friendly_device_name: friendly_device_name.map(str::to_owned),
            last_step: step,
        });
        m.pending_secret = None;
    } else if let Some(t) = &mut m.software_token {
        t.last_step = step;
    }
    Ok(Ok(()))
}
