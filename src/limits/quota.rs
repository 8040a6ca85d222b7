//! Which Cognito calls a facade call makes, and which of Cognito's
//! request-rate quotas each one spends (COGNITO.md §4).

/// A quota category: account- and Region-wide, summed over all user pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    UserPoolResourceUpdate,
    UserPoolResourceRead,
    UserResourceUpdate,
    UserRead,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::UserPoolResourceUpdate,
        Category::UserPoolResourceRead,
        Category::UserResourceUpdate,
        Category::UserRead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::UserPoolResourceUpdate => "UserPoolResourceUpdate",
            Category::UserPoolResourceRead => "UserPoolResourceRead",
            Category::UserResourceUpdate => "UserResourceUpdate",
            Category::UserRead => "UserRead",
        }
    }
}

/// A Cognito operation the facade calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CognitoOp {
    GetUserPoolMfaConfig,
    SetUserPoolMfaConfig,
    SetUserMfaPreference,
    AdminSetUserMfaPreference,
    AssociateSoftwareToken,
    VerifySoftwareToken,
    GetUser,
    AdminGetUser,
    AdminDeleteSoftwareToken,
}

/// Whether a call reads or writes one end user's data, for Cognito's
/// per-user limit (10 reads and 10 writes per second per user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

impl CognitoOp {
    /// The operations with a limit per user pool ("each operation in this
    /// category at most 5 RPS per user pool").
    pub const PER_POOL: [CognitoOp; 2] = [
        CognitoOp::GetUserPoolMfaConfig,
        CognitoOp::SetUserPoolMfaConfig,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CognitoOp::GetUserPoolMfaConfig => "GetUserPoolMfaConfig",
            CognitoOp::SetUserPoolMfaConfig => "SetUserPoolMfaConfig",
            CognitoOp::SetUserMfaPreference => "SetUserMFAPreference",
            CognitoOp::AdminSetUserMfaPreference => "AdminSetUserMFAPreference",
            CognitoOp::AssociateSoftwareToken => "AssociateSoftwareToken",
            CognitoOp::VerifySoftwareToken => "VerifySoftwareToken",
            CognitoOp::GetUser => "GetUser",
            CognitoOp::AdminGetUser => "AdminGetUser",
            CognitoOp::AdminDeleteSoftwareToken => "AdminDeleteSoftwareToken",
        }
    }

    /// The quota category. AdminDeleteSoftwareToken is not in Cognito's
    /// published table; it is a write to one user's MFA, so it is counted
    /// as UserResourceUpdate like its siblings.
    pub fn category(self) -> Category {
        match self {
            CognitoOp::GetUserPoolMfaConfig => Category::UserPoolResourceRead,
            CognitoOp::SetUserPoolMfaConfig => Category::UserPoolResourceUpdate,
            CognitoOp::SetUserMfaPreference
            | CognitoOp::AdminSetUserMfaPreference
            | CognitoOp::AssociateSoftwareToken
            | CognitoOp::VerifySoftwareToken
            | CognitoOp::AdminDeleteSoftwareToken => Category::UserResourceUpdate,
            CognitoOp::GetUser | CognitoOp::AdminGetUser => Category::UserRead,
        }
    }

    pub fn per_pool(self) -> bool {
        Self::PER_POOL.contains(&self)
    }

    /// Reads or writes one end user's data; `None` for pool operations.
    pub fn access(self) -> Option<Access> {
        match self.category() {
            Category::UserResourceUpdate => Some(Access::Write),
            Category::UserRead => Some(Access::Read),
            Category::UserPoolResourceRead | Category::UserPoolResourceUpdate => None,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_quota_table() {
        use CognitoOp::*;
        for (op, category) in [
            (SetUserPoolMfaConfig, Category::UserPoolResourceUpdate),
            (GetUserPoolMfaConfig, Category::UserPoolResourceRead),
            (SetUserMfaPreference, Category::UserResourceUpdate),
            (AdminSetUserMfaPreference, Category::UserResourceUpdate),
            (AssociateSoftwareToken, Category::UserResourceUpdate),
            (VerifySoftwareToken, Category::UserResourceUpdate),
            (GetUser, Category::UserRead),
            (AdminGetUser, Category::UserRead),
        ] {
            assert_eq!(op.category(), category, "{}", op.name());
        }
        assert!(SetUserPoolMfaConfig.per_pool() && GetUserPoolMfaConfig.per_pool());
        assert!(!AdminGetUser.per_pool());
        assert_eq!(AdminGetUser.access(), Some(Access::Read));
        assert_eq!(VerifySoftwareToken.access(), Some(Access::Write));
        assert_eq!(SetUserPoolMfaConfig.access(), None);
    }
}
