//! What every stage's settings share: the limits a number's bounds are
//! written with (`#[schemars(range(..))]` on the field, checked at load by
//! `config::schema::check_bounds`, the error naming the key). A leaf: each stage owns its settings type
//! (`auth::settings`, `limits::settings`, `audit::settings`,
//! `backend::settings`); `config` reads the file and assembles them.

/// The longest any `*_seconds` setting may be: a year. Longer is a typo,
/// and durations near `u64::MAX` overflow the clock arithmetic they feed.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// The most a budget may admit per second; more is a typo, not a limit.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;
/// The least: one call per 1,000 s. Less is a typo, and a rate near 0 makes
/// an emission interval no clock can hold.
pub const MIN_RATE_PER_SECOND: f64 = 0.001;

/// serde's default for a flag that is on unless turned off.
pub fn default_true() -> bool {
    true
}

/// For each settings type's test: an empty table deserializes to the
/// type's `Default` (one set of defaults, serde's and the code's), and
/// `typo`, a misspelt key, is refused.
#[cfg(test)]
pub(crate) fn assert_one_set_of_defaults<T>(typo: &str) -> T
where
    T: serde::de::DeserializeOwned + Default + std::fmt::Debug,
{
    let parsed: T = toml::from_str("").expect("an empty table");
    assert_eq!(format!("{parsed:?}"), format!("{:?}", T::default()));
    assert!(toml::from_str::<T>(typo).is_err(), "{typo:?} is refused");
    parsed
}
