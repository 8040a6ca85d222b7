//! What a user's account holds beside its MFA factors and MFA depends on:
//! tracked devices (a remembered one skips MFA), sessions (global
//! sign-out), and the phone number and email SMS and email MFA send to.

use serde::Serialize;

use crate::backend::Backend;
use crate::domain::{
    Device, DeviceStatus, DevicesPage, UserAttribute, UserRef,
    rules::{self, Violations},
};
use crate::error::Result;
use crate::method::{self, Method};

use super::super::{Operation, Plan, Ran, Target};
use super::UserRequest;
use super::user::{UserView, by_user, user_ref};

/// AdminListDevices (admin) and ListDevices (access token).
pub struct ListDevices {
    pub user: UserRef,
    pub limit: Option<i32>,
    pub pagination_token: Option<String>,
}

impl Operation for ListDevices {
    type Output = DevicesPage;

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::LIST_DEVICES,
            &method::ADMIN_LIST_DEVICES,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user: UserView<'a>,
            limit: Option<i32>,
            pagination_token: Option<&'a str>,
        }
        Request {
            user: UserView::of(&self.user),
            limit: self.limit,
            pagination_token: self.pagination_token.as_deref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
        rules::device_limit(v, "limit", self.limit);
        if let Some(t) = &self.pagination_token {
            rules::pagination_token(v, "pagination_token", t);
        }
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<DevicesPage>> {
        backend
            .list_devices(&self.user, self.limit, self.pagination_token.as_deref())
            .await
            .map(Ran::from)
    }
}

/// A call about one device of a user.
#[derive(Serialize)]
struct DeviceRequest<'a> {
    user: UserView<'a>,
    device_key: &'a str,
}

/// A call about one device of a user named by an admin.
#[derive(Serialize)]
struct AdminDeviceRequest<'a> {
    #[serde(flatten)]
    user: UserRequest<'a>,
    device_key: &'a str,
}

impl<'a> AdminDeviceRequest<'a> {
    fn new(user_pool_id: &'a str, username: &'a str, device_key: &'a str) -> Self {
        Self {
            user: UserRequest {
                user_pool_id,
                username,
            },
            device_key,
        }
    }

    /// Cognito's rules for the pool, the user and the device key.
    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", self.user.user_pool_id);
        rules::username(v, "username", self.user.username);
        rules::device_key(v, "device_key", self.device_key);
    }
}

pub struct AdminGetDevice {
    pub user_pool_id: String,
    pub username: String,
    pub device_key: String,
}

impl Operation for AdminGetDevice {
    type Output = Device;

    fn method(&self) -> &'static Method {
        &method::ADMIN_GET_DEVICE
    }

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn audit_request(&self) -> impl Serialize {
        AdminDeviceRequest::new(&self.user_pool_id, &self.username, &self.device_key)
    }

    fn validate(&self, v: &mut Violations) {
        AdminDeviceRequest::new(&self.user_pool_id, &self.username, &self.device_key).validate(v);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<Device>> {
        backend
            .admin_get_device(&self.user_pool_id, &self.username, &self.device_key)
            .await
            .map(Ran::from)
    }
}

/// AdminForgetDevice (admin) and ForgetDevice (access token).
pub struct ForgetDevice {
    pub user: UserRef,
    pub device_key: String,
}

impl Operation for ForgetDevice {
    type Output = ();

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::FORGET_DEVICE,
            &method::ADMIN_FORGET_DEVICE,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        DeviceRequest {
            user: UserView::of(&self.user),
            device_key: &self.device_key,
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
        rules::device_key(v, "device_key", &self.device_key);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .forget_device(&self.user, &self.device_key)
            .await
            .map(Ran::from)
    }
}

pub struct AdminUpdateDeviceStatus {
    pub user_pool_id: String,
    pub username: String,
    pub device_key: String,
    pub status: Option<DeviceStatus>,
}

impl Operation for AdminUpdateDeviceStatus {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::ADMIN_UPDATE_DEVICE_STATUS
    }

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            device: AdminDeviceRequest<'a>,
            device_remembered_status: Option<DeviceStatus>,
        }
        Request {
            device: AdminDeviceRequest::new(&self.user_pool_id, &self.username, &self.device_key),
            device_remembered_status: self.status,
        }
    }

    fn validate(&self, v: &mut Violations) {
        AdminDeviceRequest::new(&self.user_pool_id, &self.username, &self.device_key).validate(v);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .admin_update_device_status(
                &self.user_pool_id,
                &self.username,
                &self.device_key,
                self.status,
            )
            .await
            .map(Ran::from)
    }
}

/// AdminUserGlobalSignOut (admin) and GlobalSignOut (access token).
pub struct GlobalSignOut {
    pub user: UserRef,
}

impl Operation for GlobalSignOut {
    type Output = ();

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::GLOBAL_SIGN_OUT,
            &method::ADMIN_USER_GLOBAL_SIGN_OUT,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user: UserView<'a>,
        }
        Request {
            user: UserView::of(&self.user),
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend.global_sign_out(&self.user).await.map(Ran::from)
    }
}

/// AdminUpdateUserAttributes, for the attributes MFA needs only.
pub struct AdminUpdateUserAttributes {
    pub user_pool_id: String,
    pub username: String,
    pub attributes: Vec<UserAttribute>,
    /// How many ClientMetadata entries the caller sent: the facade sends
    /// none to Cognito and refuses any.
    pub client_metadata: usize,
}

impl Operation for AdminUpdateUserAttributes {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::ADMIN_UPDATE_USER_ATTRIBUTES
    }

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            user: UserRequest<'a>,
            /// Each value masked (`UserAttribute`'s serialization).
            user_attributes: &'a [UserAttribute],
        }
        Request {
            user: UserRequest {
                user_pool_id: &self.user_pool_id,
                username: &self.username,
            },
            user_attributes: &self.attributes,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::username(v, "username", &self.username);
        rules::mfa_attributes(v, "user_attributes", &self.attributes);
        if self.client_metadata > 0 {
            v.add(
                "client_metadata",
                "must be empty: the facade runs no Lambda triggers on a caller's behalf (a facade rule)",
            );
        }
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .admin_update_user_attributes(&self.user_pool_id, &self.username, &self.attributes)
            .await
            .map(Ran::from)
    }
}
