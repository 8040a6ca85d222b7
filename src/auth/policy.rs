//! Authorization: a deny-by-default policy. A rule grants principals
//! (globs) methods (globs over `package.Service/Method`) on user pools
//! (globs); a call is allowed only when one rule matches all three.
//!
//! Globs are `crate::glob`'s, the same for policy and audit rules.

use crate::config::PolicyRuleConfig;
use crate::glob::{any_method, glob_match};

/// The compiled policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<PolicyRuleConfig>,
}

impl Policy {
    pub fn new(rules: Vec<PolicyRuleConfig>) -> Self {
        Self { rules }
    }

    /// Everything, for everyone named in `principals`: the dev key's grant.
    pub fn allow_all(principals: &[&str]) -> Self {
        Self::new(vec![PolicyRuleConfig {
            principals: principals.iter().map(|p| p.to_string()).collect(),
            methods: vec!["*".into()],
            user_pools: vec!["*".into()],
        }])
    }

    /// May `principal` call `method` on `user_pool`? `None` for the pool
    /// means the call names no pool (fixtures, reflection): the method grant
    /// alone decides.
    pub fn allows(&self, principal: &str, method: &str, user_pool: Option<&str>) -> bool {
        self.rules.iter().any(|r| {
            r.principals.iter().any(|g| glob_match(g, principal, None))
                && any_method(&r.methods, method)
                && user_pool
                    .is_none_or(|pool| r.user_pools.iter().any(|g| glob_match(g, pool, None)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default_and_all_three_must_match() {
        let policy = Policy::new(vec![PolicyRuleConfig {
            principals: vec!["billing-*".into()],
            methods: vec!["cognito.mfa.v1.UserPoolMfaService/Get*".into()],
            user_pools: vec!["us-east-1_A*".into()],
        }]);
        let get = "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig";
        let set = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        assert!(policy.allows("billing-svc", get, Some("us-east-1_Abc")));
        assert!(
            !policy.allows("billing-svc", set, Some("us-east-1_Abc")),
            "method"
        );
        assert!(
            !policy.allows("billing-svc", get, Some("us-east-1_Bbc")),
            "pool"
        );
        assert!(
            !policy.allows("payments", get, Some("us-east-1_Abc")),
            "principal"
        );
        assert!(
            !Policy::default().allows("anyone", get, Some("us-east-1_Abc")),
            "no rules, no access"
        );
        assert!(Policy::allow_all(&["dev"]).allows("dev", set, Some("whatever")));
        assert!(!Policy::allow_all(&["dev"]).allows("dev2", set, None));
    }
}
