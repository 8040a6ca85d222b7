//! Authorization: a deny-by-default policy. A rule grants principals
//! (globs) methods (globs over `package.Service/Method`) on user pools
//! (globs); a call is allowed only when one rule matches all three.
//!
//! Globs: `*` matches any run of characters and `?` one character; matching
//! is case-sensitive and anchored at both ends. In method globs `*` does not
//! cross the `/` between service and method, so `cognito.mfa.v1.User*/*`
//! cannot reach another package's service by accident; the lone pattern `*`
//! still means every method.

use crate::config::PolicyRuleConfig;

/// True when `text` matches `pattern` as a whole. `stop` is a character `*`
/// may not consume (`Some('/')` for methods).
pub fn glob_match(pattern: &str, text: &str, stop: Option<char>) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    // Every call is checked against the policy: no allocation when both
    // are ASCII (method names and pool ids always are).
    match stop {
        Some(c) if !c.is_ascii() => {}
        _ if pattern.is_ascii() && text.is_ascii() => {
            return glob(
                pattern.as_bytes(),
                text.as_bytes(),
                b'*',
                b'?',
                stop.map(|c| c as u8),
            );
        }
        _ => {}
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t, '*', '?', stop)
}

/// Iterative matcher with backtracking to the last star: O(|p|·|t|).
fn glob<T: Copy + Eq>(p: &[T], t: &[T], any: T, one: T, stop: Option<T>) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one && Some(t[ti]) != stop || p[pi] == t[ti] && p[pi] != any) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star
            && Some(t[st]) != stop
        {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == any)
}

fn any_match(patterns: &[String], text: &str, stop: Option<char>) -> bool {
    patterns
        .iter()
        .any(|p| (stop.is_some() && p == "*") || glob_match(p, text, stop))
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
        }])
    }

    /// May `principal` call `method` on `user_pool`? `None` for the pool
    /// means the call names no pool (fixtures, reflection): the method grant
    /// alone decides.
    pub fn allows(&self, principal: &str, method: &str, user_pool: Option<&str>) -> bool {
        self.rules.iter().any(|r| {
            any_match(&r.principals, principal, None)
                && any_match(&r.methods, method, Some('/'))
                && user_pool.is_none_or(|pool| any_match(&r.user_pools, pool, None))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_strings_only() {
        assert!(glob_match("us-east-1_A*", "us-east-1_Abc123", None));
        assert!(glob_match("us-east-1_A*", "us-east-1_A", None));
        for not in [
            "us-east-1_abc",
            "us-east-1_Babc",
            "xus-east-1_Abc",
            "us-east-1-Abc",
            "eu-west-1_Abc",
        ] {
            assert!(!glob_match("us-east-1_A*", not, None), "{not}");
        }
        assert!(glob_match("billing-?", "billing-1", None));
        assert!(!glob_match("billing-?", "billing-12", None));
        assert!(glob_match("*", "", None));
        assert!(glob_match("a*b*c", "aXXbYYc", None));
        assert!(!glob_match("a*b*c", "aXXbYY", None));
        assert!(glob_match("exact", "exact", None) && !glob_match("exact", "exactly", None));
        // Non-ASCII text: `?` is one character, not one byte.
        assert!(glob_match("?ber*", "übermut", None));
        assert!(!glob_match("?ber", "üüber", None));
        assert!(glob_match("*/Get*", "pkg.S/GetÜ", Some('/')));
        assert!(!glob_match("*", "a/b", Some('/')) && glob_match("*", "ab", Some('/')));
    }

    #[test]
    fn method_stars_stay_inside_their_segment() {
        let pool_service = "cognito.mfa.v1.UserPoolMfaService/*";
        assert!(glob_match(
            pool_service,
            "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
            Some('/')
        ));
        assert!(!glob_match(
            pool_service,
            "cognito.mfa.v1.UserMfaService/AdminSetUserMfaPreference",
            Some('/')
        ));
        assert!(!glob_match(
            "cognito.mfa.v1.*",
            "cognito.mfa.v1.UserMfaService/GetUserMfaSettings",
            Some('/')
        ));
        assert!(glob_match(
            "cognito.mfa.v1.*/Get*",
            "cognito.mfa.v1.UserMfaService/GetUserMfaSettings",
            Some('/')
        ));
        assert!(!glob_match(
            "*/Get*",
            "cognito.mfa.v1.UserMfaService/AdminGetUserMfaSettings",
            Some('/')
        ));
    }

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
