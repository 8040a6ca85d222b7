//! What every stage's settings share: the bounds a number must meet and
//! the checks that name the key. A leaf: each stage owns its settings type
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

pub fn check_rate(err: &mut impl FnMut(&str, String), key: &str, per_second: f64) {
    if !(per_second.is_finite()
        && (MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&per_second))
    {
        err(
            key,
            format!(
                "{per_second:?} must be a number of calls per second from {MIN_RATE_PER_SECOND} to {MAX_RATE_PER_SECOND}"
            ),
        );
    }
}

/// `value` must lie in `range`; the error names the key and the range.
pub fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    err: &mut impl FnMut(&str, String),
    key: &str,
    value: T,
    min: T,
    max: T,
) {
    if value < min || value > max {
        err(key, format!("{value} must be between {min} and {max}"));
    }
}

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
