//! What `check-config` and the start-up log warn of: grants that reach
//! further than they read, and a laptop's defaults where other machines
//! reach the service.

use super::*;

impl Config {
    /// What `check-config` and the start-up log warn of:
    ///
    /// - grants that may reach further than they read: a rule granting an
    ///   API key's principal name also grants a bearer token or a client
    ///   certificate that proves the same name, unless a prefix or the
    ///   rule's `proven_by` keeps them apart;
    /// - a laptop's defaults on an address other machines reach
    ///   ([`Config::laptop_defaults`]).
    pub fn warnings(&self) -> Vec<ConfigError> {
        let mut out = self.laptop_defaults();
        let jwt = self.auth.jwt.as_ref().map(|j| {
            (
                j.principal_prefix.as_str(),
                format!("a bearer token whose {} claim is", j.principal_claim),
            )
        });
        let mtls = self
            .tls
            .as_ref()
            .filter(|t| t.client_ca_file.is_some())
            .map(|t| {
                (
                    t.principal_prefix.as_str(),
                    "a client certificate naming".to_owned(),
                )
            });
        for (i, r) in self.policy.rules.iter().enumerate() {
            for k in &self.auth.api_keys {
                if !r
                    .principals
                    .iter()
                    .any(|g| crate::glob::glob_match(g, &k.principal, None))
                {
                    continue;
                }
                for (proof, other) in [("jwt", &jwt), ("mtls", &mtls)] {
                    let Some((prefix, what)) = other else {
                        continue;
                    };
                    if !r.proven_by.is_empty() && !r.proven_by.iter().any(|p| p == proof) {
                        continue;
                    }
                    if let Some(rest) = k.principal.strip_prefix(prefix) {
                        out.push(ConfigError {
                            key: format!("policy.rules[{i}].principals"),
                            message: format!(
                                "grants the API key principal {:?}; {what} {rest:?} is the same principal and gets the same grant: set proven_by = [\"api_key\"] on the rule, or a principal_prefix for {proof}",
                                k.principal
                            ),
                        });
                    }
                }
            }
        }
        out
    }
}

impl Config {
    /// The defaults that suit a laptop and not a deployment, when `listen`
    /// is not a loopback address: no audit sink, budgets kept per replica
    /// for Cognito (the local backend is one replica's file anyway), and no
    /// drain delay. Warnings, not errors: a single replica may mean it.
    pub(super) fn laptop_defaults(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        if self.listen.ip().is_loopback() {
            return out;
        }
        let mut warn = |key: &str, message: String| {
            out.push(ConfigError {
                key: key.into(),
                message,
            })
        };
        if self.audit.is_none() {
            warn(
                "audit",
                format!(
                    "no audit sink, and listen = {} is reachable from other machines: no call is recorded; set [audit] file, stdout or [audit.s3]",
                    self.listen
                ),
            );
        }
        if self.limits.redis.is_none() && self.backend.kind != BackendKind::Local {
            warn(
                "limits.redis",
                "unset: each replica keeps its own budgets and Cognito quota buckets, so N replicas admit N times the configured rates; set [limits.redis] to run more than one".into(),
            );
        }
        if self.server.drain_delay_ms == 0 {
            warn(
                "server.drain_delay_ms",
                "0: on SIGTERM the listener closes at once, and the calls a load balancer still sends in that moment are refused (the manifests use 5000)".into(),
            );
        }
        out
    }
}
