//! The method table: every gRPC method the pipeline runs, with its
//! service, whether it changes anything, and the Cognito calls it may make
//! (and so the quota categories it spends, COGNITO.md §4). The one list
//! that the operations, the policy, the metrics and the limits read.
//!
//! A leaf: it imports nothing of the crate.

macro_rules! methods {
    ($($id:ident = $service:ident / $name:literal, mutating: $m:literal, cognito: [$($op:ident),*];)*) => {
        $(
            pub static $id: Method = Method {
                name: concat!(methods!(@service $service), "/", $name),
                service: Service::$service,
                mutating: $m,
                cognito: &[$(CognitoOp::$op),*],
            };
        )*
        /// Every method the pipeline runs: both services, and the local
        /// fixtures (served with the local backend only).
        pub static TABLE: &[&Method] = &[$(&$id),*];
    };
    (@service UserPoolMfa) => { "cognito.mfa.v1.UserPoolMfaService" };
    (@service UserMfa) => { "cognito.mfa.v1.UserMfaService" };
    (@service LocalFixtures) => { "cognito.mfa.dev.v1.LocalFixturesService" };
}

/// The gRPC services the pipeline serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `cognito.mfa.v1.UserPoolMfaService`
    UserPoolMfa,
    /// `cognito.mfa.v1.UserMfaService`
    UserMfa,
    /// `cognito.mfa.dev.v1.LocalFixturesService` (local backend only)
    LocalFixtures,
}

impl Service {
    pub const ALL: [Service; 3] = [
        Service::UserPoolMfa,
        Service::UserMfa,
        Service::LocalFixtures,
    ];

    /// The service of a request path, `/package.Service/Method`.
    pub fn of_path(path: &str) -> Option<Service> {
        let (service, _) = path.strip_prefix('/')?.split_once('/')?;
        Self::ALL.into_iter().find(|s| s.name() == service)
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::UserPoolMfa => methods!(@service UserPoolMfa),
            Service::UserMfa => methods!(@service UserMfa),
            Service::LocalFixtures => methods!(@service LocalFixtures),
        }
    }
}

/// One row of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Method {
    /// The full gRPC method, `package.Service/Method`.
    pub name: &'static str,
    pub service: Service,
    /// Whether the call may change anything (audit's two stages and
    /// fail_closed apply). A dry run (`validate_only`) of a mutating method
    /// changes nothing: the operation says so.
    pub mutating: bool,
    /// The Cognito calls the method may make, each in its quota category.
    pub cognito: &'static [CognitoOp],
}

methods! {
    CREATE_USER_POOL = LocalFixtures / "CreateUserPool", mutating: true, cognito: [];
    CREATE_USER = LocalFixtures / "CreateUser", mutating: true, cognito: [];
    ISSUE_ACCESS_TOKEN = LocalFixtures / "IssueAccessToken", mutating: true, cognito: [];
    ISSUE_MFA_SETUP_SESSION = LocalFixtures / "IssueMfaSetupSession", mutating: true, cognito: [];
    GET_USER_POOL_MFA_CONFIG = UserPoolMfa / "GetUserPoolMfaConfig", mutating: false,
        cognito: [GetUserPoolMfaConfig];
    SET_USER_POOL_MFA_CONFIG = UserPoolMfa / "SetUserPoolMfaConfig", mutating: true,
        cognito: [GetUserPoolMfaConfig, DescribeUserPool, SetUserPoolMfaConfig];
    UPDATE_USER_POOL_MFA_CONFIG = UserPoolMfa / "UpdateUserPoolMfaConfig", mutating: true,
        cognito: [GetUserPoolMfaConfig, DescribeUserPool, SetUserPoolMfaConfig];
    CHECK_USER_POOL_MFA_CONFIG = UserPoolMfa / "CheckUserPoolMfaConfig", mutating: false,
        cognito: [GetUserPoolMfaConfig, DescribeUserPool];
    LIST_USER_POOL_MFA_CONFIG_HISTORY = UserPoolMfa / "ListUserPoolMfaConfigHistory",
        mutating: false, cognito: [];
    RESTORE_USER_POOL_MFA_CONFIG = UserPoolMfa / "RestoreUserPoolMfaConfig", mutating: true,
        cognito: [GetUserPoolMfaConfig, DescribeUserPool, SetUserPoolMfaConfig];
    SET_USER_MFA_PREFERENCE = UserMfa / "SetUserMfaPreference", mutating: true,
        cognito: [SetUserMfaPreference];
    ADMIN_SET_USER_MFA_PREFERENCE = UserMfa / "AdminSetUserMfaPreference", mutating: true,
        cognito: [AdminSetUserMfaPreference];
    ASSOCIATE_SOFTWARE_TOKEN = UserMfa / "AssociateSoftwareToken", mutating: true,
        cognito: [AssociateSoftwareToken];
    VERIFY_SOFTWARE_TOKEN = UserMfa / "VerifySoftwareToken", mutating: true,
        cognito: [VerifySoftwareToken];
    GET_USER_MFA_SETTINGS = UserMfa / "GetUserMfaSettings", mutating: false, cognito: [GetUser];
    ADMIN_GET_USER_MFA_SETTINGS = UserMfa / "AdminGetUserMfaSettings", mutating: false,
        cognito: [AdminGetUser];
    ADMIN_DELETE_SOFTWARE_TOKEN = UserMfa / "AdminDeleteSoftwareToken", mutating: true,
        cognito: [AdminDeleteSoftwareToken];
    GET_USER_AUTH_FACTORS = UserMfa / "GetUserAuthFactors", mutating: false,
        cognito: [GetUserAuthFactors];
    ADMIN_GET_USER_AUTH_FACTORS = UserMfa / "AdminGetUserAuthFactors", mutating: false,
        cognito: [AdminGetUserAuthFactors];
    LIST_WEB_AUTHN_CREDENTIALS = UserMfa / "ListWebAuthnCredentials", mutating: false,
        cognito: [ListWebAuthnCredentials];
    DELETE_WEB_AUTHN_CREDENTIAL = UserMfa / "DeleteWebAuthnCredential", mutating: true,
        cognito: [DeleteWebAuthnCredential];
    LIST_USER_MFA_STATUS = UserPoolMfa / "ListUserMfaStatus", mutating: false,
        cognito: [GetUserPoolMfaConfig, DescribeUserPool, ListUsers, AdminGetUserAuthFactors];
    REGISTER_WEB_AUTHN_CREDENTIAL = LocalFixtures / "RegisterWebAuthnCredential", mutating: true,
        cognito: [];
    CREATE_USERS = LocalFixtures / "CreateUsers", mutating: true, cognito: [];
    SET_USER_ENABLED = LocalFixtures / "SetUserEnabled", mutating: true, cognito: [];
    REMEMBER_DEVICE = LocalFixtures / "RememberDevice", mutating: true, cognito: [];
    ADMIN_LIST_DEVICES = UserMfa / "AdminListDevices", mutating: false,
        cognito: [AdminListDevices];
    ADMIN_GET_DEVICE = UserMfa / "AdminGetDevice", mutating: false, cognito: [AdminGetDevice];
    ADMIN_FORGET_DEVICE = UserMfa / "AdminForgetDevice", mutating: true,
        cognito: [AdminForgetDevice];
    ADMIN_UPDATE_DEVICE_STATUS = UserMfa / "AdminUpdateDeviceStatus", mutating: true,
        cognito: [AdminUpdateDeviceStatus];
    LIST_DEVICES = UserMfa / "ListDevices", mutating: false, cognito: [ListDevices];
    FORGET_DEVICE = UserMfa / "ForgetDevice", mutating: true, cognito: [ForgetDevice];
    ADMIN_USER_GLOBAL_SIGN_OUT = UserMfa / "AdminUserGlobalSignOut", mutating: true,
        cognito: [AdminUserGlobalSignOut];
    GLOBAL_SIGN_OUT = UserMfa / "GlobalSignOut", mutating: true, cognito: [GlobalSignOut];
    ADMIN_UPDATE_USER_ATTRIBUTES = UserMfa / "AdminUpdateUserAttributes", mutating: true,
        cognito: [AdminUpdateUserAttributes];
    START_WEB_AUTHN_REGISTRATION = UserMfa / "StartWebAuthnRegistration", mutating: true,
        cognito: [StartWebAuthnRegistration];
    COMPLETE_WEB_AUTHN_REGISTRATION = UserMfa / "CompleteWebAuthnRegistration", mutating: true,
        cognito: [CompleteWebAuthnRegistration];
    ADMIN_RESET_USER_MFA = UserMfa / "AdminResetUserMfa", mutating: true,
        cognito: [AdminGetUserAuthFactors, AdminSetUserMfaPreference, AdminDeleteSoftwareToken,
            AdminListDevices, AdminForgetDevice, AdminUserGlobalSignOut];
}

/// The row of a full method name.
pub fn find(name: &str) -> Option<&'static Method> {
    TABLE.iter().copied().find(|m| m.name == name)
}

/// Every method name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|m| m.name)
}

/// A quota category: account- and Region-wide, summed over all user pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    UserPoolResourceUpdate,
    UserPoolResourceRead,
    /// DescribeUserPool (the pre-flight's read of the pool's state).
    UserPoolRead,
    UserResourceUpdate,
    UserRead,
    /// ListUsers (the coverage walk's pages).
    UserList,
    /// A user's devices (AdminListDevices, AdminGetDevice, ListDevices).
    UserResourceRead,
    /// A user's attributes and tokens (AdminUpdateUserAttributes,
    /// AdminUserGlobalSignOut, GlobalSignOut).
    UserUpdate,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::UserPoolResourceUpdate,
        Category::UserPoolResourceRead,
        Category::UserPoolRead,
        Category::UserResourceUpdate,
        Category::UserRead,
        Category::UserList,
        Category::UserResourceRead,
        Category::UserUpdate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::UserPoolResourceUpdate => "UserPoolResourceUpdate",
            Category::UserPoolResourceRead => "UserPoolResourceRead",
            Category::UserPoolRead => "UserPoolRead",
            Category::UserResourceUpdate => "UserResourceUpdate",
            Category::UserRead => "UserRead",
            Category::UserList => "UserList",
            Category::UserResourceRead => "UserResourceRead",
            Category::UserUpdate => "UserUpdate",
        }
    }
}

/// A Cognito operation the facade calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CognitoOp {
    GetUserPoolMfaConfig,
    SetUserPoolMfaConfig,
    DescribeUserPool,
    SetUserMfaPreference,
    AdminSetUserMfaPreference,
    AssociateSoftwareToken,
    VerifySoftwareToken,
    GetUser,
    AdminGetUser,
    AdminDeleteSoftwareToken,
    GetUserAuthFactors,
    AdminGetUserAuthFactors,
    ListWebAuthnCredentials,
    DeleteWebAuthnCredential,
    ListUsers,
    AdminListDevices,
    AdminGetDevice,
    AdminForgetDevice,
    AdminUpdateDeviceStatus,
    ListDevices,
    ForgetDevice,
    AdminUserGlobalSignOut,
    GlobalSignOut,
    AdminUpdateUserAttributes,
    StartWebAuthnRegistration,
    CompleteWebAuthnRegistration,
}

/// Whether a call reads or writes one end user's data, for Cognito's
/// per-user limit (10 reads and 10 writes per second per user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

impl CognitoOp {
    /// Every operation the facade calls.
    pub const ALL: [CognitoOp; 26] = [
        CognitoOp::GetUserPoolMfaConfig,
        CognitoOp::SetUserPoolMfaConfig,
        CognitoOp::DescribeUserPool,
        CognitoOp::SetUserMfaPreference,
        CognitoOp::AdminSetUserMfaPreference,
        CognitoOp::AssociateSoftwareToken,
        CognitoOp::VerifySoftwareToken,
        CognitoOp::GetUser,
        CognitoOp::AdminGetUser,
        CognitoOp::AdminDeleteSoftwareToken,
        CognitoOp::GetUserAuthFactors,
        CognitoOp::AdminGetUserAuthFactors,
        CognitoOp::ListWebAuthnCredentials,
        CognitoOp::DeleteWebAuthnCredential,
        CognitoOp::ListUsers,
        CognitoOp::AdminListDevices,
        CognitoOp::AdminGetDevice,
        CognitoOp::AdminForgetDevice,
        CognitoOp::AdminUpdateDeviceStatus,
        CognitoOp::ListDevices,
        CognitoOp::ForgetDevice,
        CognitoOp::AdminUserGlobalSignOut,
        CognitoOp::GlobalSignOut,
        CognitoOp::AdminUpdateUserAttributes,
        CognitoOp::StartWebAuthnRegistration,
        CognitoOp::CompleteWebAuthnRegistration,
    ];

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
            CognitoOp::DescribeUserPool => "DescribeUserPool",
            CognitoOp::SetUserMfaPreference => "SetUserMFAPreference",
            CognitoOp::AdminSetUserMfaPreference => "AdminSetUserMFAPreference",
            CognitoOp::AssociateSoftwareToken => "AssociateSoftwareToken",
            CognitoOp::VerifySoftwareToken => "VerifySoftwareToken",
            CognitoOp::GetUser => "GetUser",
            CognitoOp::AdminGetUser => "AdminGetUser",
            CognitoOp::AdminDeleteSoftwareToken => "AdminDeleteSoftwareToken",
            CognitoOp::GetUserAuthFactors => "GetUserAuthFactors",
            CognitoOp::AdminGetUserAuthFactors => "AdminGetUserAuthFactors",
            CognitoOp::ListWebAuthnCredentials => "ListWebAuthnCredentials",
            CognitoOp::DeleteWebAuthnCredential => "DeleteWebAuthnCredential",
            CognitoOp::ListUsers => "ListUsers",
            CognitoOp::AdminListDevices => "AdminListDevices",
            CognitoOp::AdminGetDevice => "AdminGetDevice",
            CognitoOp::AdminForgetDevice => "AdminForgetDevice",
            CognitoOp::AdminUpdateDeviceStatus => "AdminUpdateDeviceStatus",
            CognitoOp::ListDevices => "ListDevices",
            CognitoOp::ForgetDevice => "ForgetDevice",
            CognitoOp::AdminUserGlobalSignOut => "AdminUserGlobalSignOut",
            CognitoOp::GlobalSignOut => "GlobalSignOut",
            CognitoOp::AdminUpdateUserAttributes => "AdminUpdateUserAttributes",
            CognitoOp::StartWebAuthnRegistration => "StartWebAuthnRegistration",
            CognitoOp::CompleteWebAuthnRegistration => "CompleteWebAuthnRegistration",
        }
    }

    /// The quota category. AdminDeleteSoftwareToken, the two
    /// Get*UserAuthFactors, ListWebAuthnCredentials and
    /// DeleteWebAuthnCredential are not in COGNITO.md's table: each reads
    /// or writes one user's MFA, so it is counted with its siblings
    /// (UserRead like GetUser, UserResourceUpdate like
    /// AdminDeleteSoftwareToken). ListUsers is UserList (30/s). The device,
    /// attribute and sign-out operations are in the categories of the
    /// quotas page as we read it, unconfirmed (docs/differences.md): device
    /// reads UserResourceRead, device changes UserResourceUpdate,
    /// attributes and sign-outs UserUpdate.
    pub fn category(self) -> Category {
        match self {
            CognitoOp::GetUserPoolMfaConfig => Category::UserPoolResourceRead,
            CognitoOp::SetUserPoolMfaConfig => Category::UserPoolResourceUpdate,
            CognitoOp::DescribeUserPool => Category::UserPoolRead,
            CognitoOp::SetUserMfaPreference
            | CognitoOp::AdminSetUserMfaPreference
            | CognitoOp::AssociateSoftwareToken
            | CognitoOp::VerifySoftwareToken
            | CognitoOp::AdminDeleteSoftwareToken
            | CognitoOp::DeleteWebAuthnCredential
            | CognitoOp::AdminForgetDevice
            | CognitoOp::AdminUpdateDeviceStatus
            | CognitoOp::ForgetDevice
            | CognitoOp::StartWebAuthnRegistration
            | CognitoOp::CompleteWebAuthnRegistration => Category::UserResourceUpdate,
            CognitoOp::GetUser
            | CognitoOp::AdminGetUser
            | CognitoOp::GetUserAuthFactors
            | CognitoOp::AdminGetUserAuthFactors
            | CognitoOp::ListWebAuthnCredentials => Category::UserRead,
            CognitoOp::ListUsers => Category::UserList,
            CognitoOp::AdminListDevices | CognitoOp::AdminGetDevice | CognitoOp::ListDevices => {
                Category::UserResourceRead
            }
            CognitoOp::AdminUpdateUserAttributes
            | CognitoOp::AdminUserGlobalSignOut
            | CognitoOp::GlobalSignOut => Category::UserUpdate,
        }
    }

    pub fn per_pool(self) -> bool {
        Self::PER_POOL.contains(&self)
    }

    /// Reads or writes one end user's data; `None` for pool operations.
    pub fn access(self) -> Option<Access> {
        match self.category() {
            Category::UserResourceUpdate | Category::UserUpdate => Some(Access::Write),
            Category::UserRead | Category::UserResourceRead => Some(Access::Read),
            Category::UserPoolResourceRead
            | Category::UserPoolResourceUpdate
            | Category::UserPoolRead
            | Category::UserList => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_method_once_under_its_service() {
        let mut seen = std::collections::HashSet::new();
        for m in TABLE {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(
                m.name.starts_with(&format!("{}/", m.service.name())),
                "{}",
                m.name
            );
            assert_eq!(find(m.name), Some(*m));
        }
        assert_eq!(TABLE.len(), 38);
        assert!(!GET_USER_POOL_MFA_CONFIG.mutating && SET_USER_POOL_MFA_CONFIG.mutating);
        assert_eq!(find("cognito.mfa.v1.UserMfaService/Nope"), None);
    }

    #[test]
    fn categories_follow_the_quota_table() {
        use CognitoOp::*;
        for (op, category) in [
            (SetUserPoolMfaConfig, Category::UserPoolResourceUpdate),
            (GetUserPoolMfaConfig, Category::UserPoolResourceRead),
            (DescribeUserPool, Category::UserPoolRead),
            (SetUserMfaPreference, Category::UserResourceUpdate),
            (AdminSetUserMfaPreference, Category::UserResourceUpdate),
            (AssociateSoftwareToken, Category::UserResourceUpdate),
            (VerifySoftwareToken, Category::UserResourceUpdate),
            (GetUser, Category::UserRead),
            (AdminGetUser, Category::UserRead),
            (ListUsers, Category::UserList),
            (AdminGetUserAuthFactors, Category::UserRead),
            (DeleteWebAuthnCredential, Category::UserResourceUpdate),
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
