//! Authorization: a deny-by-default policy. A rule grants principals
//! (globs) methods (globs over `package.Service/Method`) on user pools
//! (globs), optionally only to principals proven a given way
//! (`proven_by`); a call is allowed only when one rule matches all of them.
//!
//! A call that creates a user pool (the local fixtures' CreateUserPool)
//! cannot be matched against a pool id that does not exist yet: it needs a
//! rule whose `user_pools` holds `*` itself, a grant over every pool.
//!
//! Globs are `crate::glob`'s, the same for policy and audit rules.

use super::Principal;
use super::settings::PolicyRuleConfig;
use crate::glob::{any_method, glob_match};

/// What a call acts on, for the pool part of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One user pool (an empty id matches no pool glob but `*`).
    Pool(&'a str),
    /// No pool at all (reflection): the method grant alone decides.
    NoPool,
    /// A pool not created yet: only a rule over every pool (`*`) grants it.
    NewPool,
}

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
            proven_by: Vec::new(),
        }])
    }

    /// May `principal` call `method` on `scope`?
    pub fn allows(&self, principal: &Principal, method: &str, scope: Scope<'_>) -> bool {
        let proven_by = principal.proven_by.name();
        self.rules.iter().any(|r| {
            r.principals
                .iter()
                .any(|g| glob_match(g, &principal.name, None))
                && (r.proven_by.is_empty() || r.proven_by.iter().any(|p| p == proven_by))
                && any_method(&r.methods, method)
                && match scope {
                    Scope::Pool(pool) => r.user_pools.iter().any(|g| glob_match(g, pool, None)),
                    Scope::NoPool => true,
                    Scope::NewPool => r.user_pools.iter().any(|g| g == "*"),
                }
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
            proven_by: vec!["api_key".into()],
        }]);
        let key = |name: &str| Principal::new(name.into(), super::super::ProvenBy::ApiKey);
        let billing = key("billing-svc");
        let get = "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig";
        let set = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        assert!(policy.allows(&billing, get, Scope::Pool("us-east-1_Abc")));
        assert!(
            !policy.allows(&billing, set, Scope::Pool("us-east-1_Abc")),
            "method"
        );
        assert!(
            !policy.allows(&billing, get, Scope::Pool("us-east-1_Bbc")),
            "pool"
        );
        assert!(
            !policy.allows(&key("payments"), get, Scope::Pool("us-east-1_Abc")),
            "principal"
        );
        assert!(
            !Policy::default().allows(&key("anyone"), get, Scope::Pool("us-east-1_Abc")),
            "no rules, no access"
        );
        assert!(Policy::allow_all(&["dev"]).allows(&key("dev"), set, Scope::Pool("whatever")));
        assert!(!Policy::allow_all(&["dev"]).allows(&key("dev2"), set, Scope::NoPool));
        let token = Principal::new("billing-svc".into(), super::super::ProvenBy::Jwt);
        assert!(
            !policy.allows(&token, get, Scope::Pool("us-east-1_Abc")),
            "proven_by: the same name from a bearer token is another principal"
        );
        assert!(
            !policy.allows(&billing, get, Scope::NewPool),
            "a pool glob short of * never creates pools"
        );
        assert!(Policy::allow_all(&["dev"]).allows(&key("dev"), set, Scope::NewPool));
    }
}
