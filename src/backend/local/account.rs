//! The local backend's devices, global sign-out and the attributes MFA
//! needs, with Cognito's rules and exceptions. Where Cognito's behaviour
//! is not documented the choice is ours and listed in docs/differences.md
//! (a device's attributes, the text of a missing device's exception).

use crate::domain::{
    Device, DeviceStatus, DevicesPage, UserAttribute, UserRef, device::REMEMBERED_STATUS, rules,
};
use crate::error::Result;

use super::cognito_rules::{cognito, invalid_parameter, resolve_username};
use super::fixtures::limit_exceeded;
use super::page_token::{decode_offset, encode_offset};
use super::store::{Data, Pool, StoredDevice};
use super::{LocalBackend, random_bytes};

fn device_not_found() -> crate::error::Error {
    cognito("ResourceNotFoundException", "Device does not exist.")
}

/// A stored device as Cognito's DeviceType shows it: device_status,
/// device_name, dev:device_owner, last_ip_used and
/// dev:device_remembered_status, in the order Cognito's examples list them.
fn device_of(pool_id: &str, username: &str, d: StoredDevice) -> Device {
    let mut attributes = vec![("device_status".to_owned(), Some("valid".to_owned()))];
    if let Some(name) = d.name {
        attributes.push(("device_name".into(), Some(name)));
    }
    attributes.push((
        "dev:device_owner".into(),
        Some(format!("{username}.{pool_id}")),
    ));
    if let Some(ip) = d.last_ip {
        attributes.push(("last_ip_used".into(), Some(ip)));
    }
    attributes.push((
        REMEMBERED_STATUS.into(),
        Some(
            if d.remembered {
                DeviceStatus::Remembered
            } else {
                DeviceStatus::NotRemembered
            }
            .cognito_name()
            .to_owned(),
        ),
    ));
    let secs = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    Device {
        device_key: d.device_key,
        attributes,
        created_at: secs(d.created_at),
        last_modified_at: secs(d.modified_at),
        last_authenticated_at: d.authenticated_at.map(secs),
    }
}

/// A new device key: `<region>_<uuid>`, as Cognito's.
fn new_device_key(region: &str) -> Result<String> {
    let uuid = uuid::Builder::from_random_bytes(random_bytes::<16>()?).into_uuid();
    Ok(format!("{region}_{uuid}"))
}

/// What the fixtures' RememberDevice records: a device as a sign-in with
/// ConfirmDevice (and UpdateDeviceStatus) leaves it.
pub struct NewDevice {
    pub device_name: Option<String>,
    pub remembered: bool,
    pub last_ip: Option<String>,
}

impl LocalBackend {
    pub(super) async fn local_list_devices(
        &self,
        user: &UserRef,
        limit: Option<i32>,
        pagination_token: Option<&str>,
    ) -> Result<DevicesPage> {
        let now = self.now();
        let start = match pagination_token {
            None => 0,
            Some(t) => {
                decode_offset(t).ok_or_else(|| invalid_parameter("Invalid pagination token"))?
            }
        };
        // Limit 0 (the model allows it) as unset, 60: a guess.
        let take = match limit {
            None | Some(0) => rules::MAX_DEVICES_PAGE,
            Some(n) => n,
        };
        let max = usize::try_from(rules::MAX_DEVICES_PAGE).unwrap_or(60);
        let take = usize::try_from(take).unwrap_or(1).clamp(1, max);
        self.store
            .read(|data| {
                let target = Self::user_target(data, user, now)?;
                let total = data.device_count(&target.user_pool_id, &target.username)?;
                if start > total {
                    return Err(invalid_parameter("Invalid pagination token"));
                }
                let page = data.devices(&target.user_pool_id, &target.username, start, take)?;
                let end = start.saturating_add(page.len());
                Ok(DevicesPage {
                    devices: page
                        .into_iter()
                        .map(|d| device_of(&target.user_pool_id, &target.username, d))
                        .collect(),
                    pagination_token: (end < total).then(|| encode_offset(end)),
                })
            })
            .await
    }

    pub(super) async fn local_admin_get_device(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<Device> {
        self.store
            .read(|data| {
                let username = resolve_username(data, &data.pool(user_pool_id)?, username)?;
                let d = data
                    .device(user_pool_id, &username, device_key)?
                    .ok_or_else(device_not_found)?;
                Ok(device_of(user_pool_id, &username, d))
            })
            .await
    }

    pub(super) async fn local_forget_device(&self, user: &UserRef, device_key: &str) -> Result<()> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::user_target(data, user, now)?;
                if !data.delete_device(&target.user_pool_id, &target.username, device_key)? {
                    return Err(device_not_found());
                }
                Ok(())
            })
            .await
    }

    pub(super) async fn local_admin_update_device_status(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
        status: Option<DeviceStatus>,
    ) -> Result<()> {
        let now = self.now();
        // Unset: Cognito's model makes the member optional and documents no
        // default; the local backend reads it as not_remembered (a guess).
        let remembered = status == Some(DeviceStatus::Remembered);
        self.store
            .write(|data| {
                let username = resolve_username(data, &data.pool(user_pool_id)?, username)?;
                if !data.put_device_remembered(
                    user_pool_id,
                    &username,
                    device_key,
                    remembered,
                    now,
                )? {
                    return Err(device_not_found());
                }
                Ok(())
            })
            .await
    }

    /// Revokes every access token issued to the user up to now: a token's
    /// `iat` at or before the sign-out's second is refused.
    pub(super) async fn local_global_sign_out(&self, user: &UserRef) -> Result<()> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::user_target(data, user, now)?;
                data.put_signed_out(&target.user_pool_id, &target.username, now)
            })
            .await
    }

    pub(super) async fn local_admin_update_user_attributes(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: &[UserAttribute],
    ) -> Result<()> {
        let max_bytes = self.caps.max_user_attribute_bytes;
        self.store
            .write(|data| {
                let pool = data.pool(user_pool_id)?;
                let username = resolve_username(data, &pool, username)?;
                let mut user = super::cognito_rules::user(data, user_pool_id, &username)?;
                for a in attributes {
                    let old = user.attributes.insert(a.name.clone(), a.value.clone());
                    // Cognito: a changed email or phone number is
                    // unverified until verified, unless this call marks it.
                    let flag = format!("{}_verified", a.name);
                    if !a.name.ends_with("_verified")
                        && old.as_deref() != Some(a.value.as_str())
                        && !attributes.iter().any(|b| b.name == flag)
                    {
                        user.attributes.insert(flag, "false".into());
                    }
                }
                check_unique(data, &pool, &username, &user.attributes)?;
                let bytes: usize = user
                    .attributes
                    .iter()
                    .map(|(k, v)| k.len().saturating_add(v.len()))
                    .sum();
                if bytes > max_bytes {
                    return Err(limit_exceeded(format!(
                        "the user's attributes would take {bytes} bytes, more than the local backend holds for one user ([backend] max_user_attribute_bytes = {max_bytes})"
                    )));
                }
                data.put_attributes(&pool, &username, &user.attributes)
            })
            .await
    }

    /// The fixtures' RememberDevice: a device for the user, as a sign-in
    /// that confirmed it left it. Returns its key.
    pub async fn remember_device(
        &self,
        user_pool_id: &str,
        username: &str,
        device: NewDevice,
    ) -> Result<String> {
        let mut v = rules::Violations::default();
        rules::user_pool_id(&mut v, "user_pool_id", user_pool_id);
        rules::username(&mut v, "username", username);
        if let Some(name) = &device.device_name
            && (name.is_empty() || name.chars().count() > 1024)
        {
            v.add("device_name", "1 to 1024 characters");
        }
        if let Some(ip) = &device.last_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            v.add("last_ip", "an IPv4 or IPv6 address");
        }
        v.into_result()?;
        let key = new_device_key(crate::domain::region_of(user_pool_id))?;
        let now = self.now();
        let max = self.caps.max_devices_per_user;
        self.store
            .write(|data| {
                let pool = data.pool(user_pool_id)?;
                let username = resolve_username(data, &pool, username)?;
                if data.device_count(user_pool_id, &username)? >= max {
                    return Err(limit_exceeded(format!(
                        "the user has {max} devices, the most the local backend keeps for one user ([backend] max_devices_per_user)"
                    )));
                }
                data.insert_device(
                    user_pool_id,
                    &username,
                    &StoredDevice {
                        device_key: key.clone(),
                        name: device.device_name,
                        remembered: device.remembered,
                        last_ip: device.last_ip,
                        created_at: now,
                        modified_at: now,
                        authenticated_at: Some(now),
                    },
                )?;
                Ok(key.clone())
            })
            .await
    }
}

/// Cognito's AliasExistsException: an email or phone number that names
/// users (a username attribute, or an alias once verified) belongs to one
/// user only.
fn check_unique(
    data: &Data,
    pool: &Pool,
    username: &str,
    attributes: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    for name in ["email", "phone_number"] {
        let Some(value) = attributes.get(name) else {
            continue;
        };
        let names_user = pool.state.username_attributes.iter().any(|a| a == name);
        let alias = pool.state.alias_attributes.iter().any(|a| a == name);
        let verified = attributes
            .get(&format!("{name}_verified"))
            .is_some_and(|v| v == "true");
        let taken = if names_user {
            data.value_held_by_other(pool, name, value, false, username)?
        } else if alias && verified {
            data.value_held_by_other(pool, name, value, true, username)?
        } else {
            false
        };
        if taken {
            return Err(cognito(
                "AliasExistsException",
                format!("An account with the given {name} already exists."),
            ));
        }
    }
    Ok(())
}
