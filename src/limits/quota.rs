//! Which Cognito calls a facade call makes, and which of Cognito's
//! request-rate quotas each one spends (COGNITO.md §4).

pub use crate::method::{Access, Category, CognitoOp};

/// One Cognito call a facade call will make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamCall {
    pub op: CognitoOp,
    /// The user pool, when known.
    pub pool: Option<String>,
    /// Who the call is about: `pool/username` for admin calls, the access
    /// token's `sub` claim, or a fingerprint of the MFA_SETUP session. A
    /// username and a sub of one person are two keys: the facade cannot
    /// tell they are the same user without asking Cognito.
    pub end_user: Option<String>,
}

impl UpstreamCall {
    pub fn pool(op: CognitoOp, pool: &str) -> Self {
        Self {
            op,
            pool: Some(pool.to_owned()),
            end_user: None,
        }
    }

    pub fn user(op: CognitoOp, pool: Option<String>, end_user: Option<String>) -> Self {
        Self { op, pool, end_user }
    }
}
