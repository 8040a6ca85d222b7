//! Events: auth and configuration.

/// The JWKS was read.
pub struct JwksLoaded {
    pub keys: usize,
}

impl JwksLoaded {
    pub fn emit(self) {
        crate::meters::jwks_loaded(self.keys);
        line!(
            debug,
            "mfa_facade::auth",
            "jwks_loaded",
            "JWKS loaded.",
            keys = self.keys
        );
    }
}

/// The JWKS could not be read; the last good one stays.
pub struct JwksRefreshFailed<'a> {
    pub error: &'a str,
}

impl JwksRefreshFailed<'_> {
    pub fn emit(self) {
        crate::meters::jwks_refresh_failed();
        line!(
            warn,
            "mfa_facade::auth",
            "jwks_refresh_failed",
            "JWKS could not be read; keeping the last good one.",
            error = self.error
        );
    }
}

/// A configuration that loads, with a key worth a second look.
pub struct ConfigWarning<'a> {
    pub key: &'a str,
    pub warning: &'a str,
}

impl ConfigWarning<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::config",
            "config_warning",
            "Configuration warning.",
            key = self.key,
            warning = self.warning
        );
    }
}

/// Keys, JWKS and policy reloaded (SIGHUP or a watched file changed).
pub struct ConfigReloaded<'a> {
    pub why: &'a str,
    pub api_keys: usize,
    pub policy_rules: usize,
}

impl ConfigReloaded<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::config",
            "config_reloaded",
            "Keys, JWKS and policy reloaded.",
            why = self.why,
            api_keys = self.api_keys,
            policy_rules = self.policy_rules
        );
    }
}

/// A reload refused: the file has errors, the last good state stays.
pub struct ConfigReloadRefused<'a> {
    pub why: &'a str,
    pub errors: &'a str,
}

impl ConfigReloadRefused<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::config",
            "config_reload_refused",
            "Reload refused: the configuration has errors; the last good keys and policy stay.",
            why = self.why,
            errors = self.errors
        );
    }
}

/// No API key and no JWT issuer: only health can be called.
pub struct NoCallers;

impl NoCallers {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::auth",
            "no_callers",
            "No callers are configured: every call except health will be refused. Add [[auth.api_keys]] and [[policy.rules]]."
        );
    }
}
