//! The operations of both services, a room each: per call, only what
//! differs — its row in the method table, its target, its audit view, its
//! rules and its way to the backend. The read-compare-write logic of etag
//! and partial updates lives here, above the backend, so that it is the
//! same for every backend.

mod account;
pub mod history;
mod passkey;
pub(crate) mod pool;
mod reset;
mod user;

pub use account::{
    AdminGetDevice, AdminUpdateDeviceStatus, AdminUpdateUserAttributes, ForgetDevice,
    GlobalSignOut, ListDevices,
};
pub use history::{
    HistoryPage, ListUserPoolMfaConfigHistory, RestoreUserPoolMfaConfig, Restored, Revision,
};
pub use passkey::{CompleteWebAuthnRegistration, CreationOptions, StartWebAuthnRegistration};
pub use pool::{
    CheckFinding, CheckReport, CheckUserPoolMfaConfig, FindingKind, GetUserPoolMfaConfig,
    SetUserPoolMfaConfig, UpdateUserPoolMfaConfig, VersionedConfig,
};
pub use reset::{AdminResetUserMfa, MAX_RESET_DEVICES};
pub(super) use user::UserRequest;
pub use user::{
    AdminDeleteSoftwareToken, AssociateSoftwareToken, DeleteWebAuthnCredential, GetUserAuthFactors,
    GetUserMfaSettings, ListWebAuthnCredentials, SetUserMfaPreference, VerifySoftwareToken,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Operation, Plan};
    use crate::domain::{AccessToken, MfaPreference, PoolMfaConfig, Secret, UserRef};
    use crate::limits::CognitoOp;
    use crate::method::Method;

    /// A block turned on or off is named as the block; inside a block
    /// both sides have, only the leaves that changed.
    #[test]
    fn changed_fields_name_blocks_turned_on_or_off_and_leaves_changed_within() {
        use crate::domain::{EmailMfaConfig, MfaMode, SmsMfaConfig, SoftwareTokenMfaConfig};
        let totp = PoolMfaConfig {
            software_token: Some(SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            sms: Some(SmsMfaConfig {
                sms_authentication_message: Some("a {####}".into()),
                sms_configuration: None,
            }),
            mode: Some(MfaMode::Optional),
            ..Default::default()
        };
        assert!(pool::changed_fields(&totp, &totp).is_empty());
        let next = PoolMfaConfig {
            software_token: None,
            email: Some(EmailMfaConfig::default()),
            sms: Some(SmsMfaConfig {
                sms_authentication_message: Some("b {####}".into()),
                sms_configuration: None,
            }),
            mode: Some(MfaMode::On),
            ..Default::default()
        };
        assert_eq!(
            pool::changed_fields(&totp, &next),
            [
                "mfa_configuration",
                "sms_mfa_configuration.sms_authentication_message",
                "software_token_mfa_configuration",
                "email_mfa_configuration"
            ]
        );
    }

    fn admin() -> UserRef {
        UserRef::Admin {
            user_pool_id: "us-east-1_A".into(),
            username: "u".into(),
        }
    }

    fn token() -> AccessToken {
        AccessToken::new(Secret::new("a.b.c"))
    }

    /// The Cognito calls each operation plans, in every variant, are the
    /// ones its row in the method table lists, and together all of them:
    /// `upstream()` and the table cannot drift apart.
    #[test]
    fn every_planned_cognito_call_is_in_the_method_table() {
        fn planned<O: Operation>(ops: Vec<O>) -> (&'static Method, Vec<CognitoOp>) {
            let row = ops[0].method();
            let mut calls = Vec::new();
            for op in &ops {
                assert_eq!(op.method(), row, "one method per list");
                for capture_before in [false, true] {
                    let plan = Plan {
                        capture_before,
                        check_state: true,
                        ..Default::default()
                    };
                    calls.extend(op.upstream(&plan).into_iter().map(|c| c.op));
                }
            }
            (row, calls)
        }
        let pool = || "us-east-1_A".to_owned();
        let set = |validate_only, etag: Option<&str>| SetUserPoolMfaConfig {
            user_pool_id: pool(),
            config: PoolMfaConfig::default(),
            validate_only,
            etag: etag.map(str::to_owned),
        };
        let update = |validate_only| UpdateUserPoolMfaConfig {
            user_pool_id: pool(),
            patch: PoolMfaConfig::default(),
            update_mask: Vec::new(),
            etag: None,
            validate_only,
        };
        let pref = |user| SetUserMfaPreference {
            user,
            preference: MfaPreference::default(),
        };
        let settings = |user| GetUserMfaSettings { user };
        let verify = |access_token, session| VerifySoftwareToken {
            access_token,
            session,
            user_code: Secret::new("123456"),
            friendly_device_name: None,
        };
        let session = || Some(Secret::new("s".repeat(20)));
        let rows = [
            planned(vec![GetUserPoolMfaConfig {
                user_pool_id: pool(),
            }]),
            planned(vec![
                set(true, None),
                set(false, None),
                set(false, Some("e")),
            ]),
            planned(vec![update(true), update(false)]),
            planned(vec![pref(UserRef::AccessToken(token()))]),
            planned(vec![pref(admin())]),
            planned(vec![
                AssociateSoftwareToken {
                    access_token: Some(token()),
                    session: None,
                },
                AssociateSoftwareToken {
                    access_token: None,
                    session: session(),
                },
            ]),
            planned(vec![verify(Some(token()), None), verify(None, session())]),
            planned(vec![settings(UserRef::AccessToken(token()))]),
            planned(vec![settings(admin())]),
            planned(vec![AdminDeleteSoftwareToken {
                user_pool_id: pool(),
                username: "u".into(),
            }]),
            planned(vec![GetUserAuthFactors {
                user: UserRef::AccessToken(token()),
            }]),
            planned(vec![GetUserAuthFactors { user: admin() }]),
            planned(vec![ListWebAuthnCredentials {
                access_token: token(),
                next_token: None,
                max_results: None,
            }]),
            planned(vec![DeleteWebAuthnCredential {
                access_token: token(),
                credential_id: "c".into(),
            }]),
            planned(vec![ListDevices {
                user: admin(),
                limit: None,
                pagination_token: None,
            }]),
            planned(vec![ListDevices {
                user: UserRef::AccessToken(token()),
                limit: None,
                pagination_token: None,
            }]),
            planned(vec![AdminGetDevice {
                user_pool_id: pool(),
                username: "u".into(),
                device_key: "k".into(),
            }]),
            planned(vec![ForgetDevice {
                user: admin(),
                device_key: "k".into(),
            }]),
            planned(vec![ForgetDevice {
                user: UserRef::AccessToken(token()),
                device_key: "k".into(),
            }]),
            planned(vec![AdminUpdateDeviceStatus {
                user_pool_id: pool(),
                username: "u".into(),
                device_key: "k".into(),
                status: None,
            }]),
            planned(vec![GlobalSignOut { user: admin() }]),
            planned(vec![GlobalSignOut {
                user: UserRef::AccessToken(token()),
            }]),
            planned(vec![AdminUpdateUserAttributes {
                user_pool_id: pool(),
                username: "u".into(),
                attributes: Vec::new(),
                client_metadata: 0,
            }]),
            planned(vec![StartWebAuthnRegistration {
                access_token: token(),
            }]),
            planned(vec![CompleteWebAuthnRegistration {
                access_token: token(),
                credential: "{}".into(),
            }]),
            planned(vec![
                AdminResetUserMfa {
                    user_pool_id: pool(),
                    username: "u".into(),
                    validate_only: true,
                },
                AdminResetUserMfa {
                    user_pool_id: pool(),
                    username: "u".into(),
                    validate_only: false,
                },
            ]),
        ];
        for (row, calls) in rows {
            for c in &calls {
                assert!(
                    row.cognito.contains(c),
                    "{}: {c:?} is not in its row",
                    row.name
                );
            }
            for c in row.cognito {
                assert!(calls.contains(c), "{}: {c:?} is never planned", row.name);
            }
        }
    }
}
