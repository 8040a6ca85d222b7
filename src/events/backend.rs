//! Events: backend.

/// The cognito backend's SDK client, as built.
pub struct CognitoClientBuilt<'a> {
    pub region: &'a str,
    pub endpoint_url: &'a str,
    pub max_attempts: u32,
}

impl CognitoClientBuilt<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::backend",
            "cognito_client_built",
            "Cognito client built.",
            region = self.region,
            endpoint_url = self.endpoint_url,
            max_attempts = self.max_attempts
        );
    }
}

/// At the end of a drain, the local data file's WAL could not be folded
/// into it; the next start reads the WAL.
pub struct LocalCheckpointFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl LocalCheckpointFailed<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::backend",
            "local_checkpoint_failed",
            "The local data file's WAL was not folded into it; the next start reads it.",
            error = %self.error
        );
    }
}

/// Cognito answered with an MFA mode this build does not know.
pub struct CognitoUnknownMfaMode<'a> {
    pub value: &'a str,
}

impl CognitoUnknownMfaMode<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::backend",
            "cognito_unknown_mfa_mode",
            "Cognito returned an unknown MFA mode.",
            value = self.value
        );
    }
}
