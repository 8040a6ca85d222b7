//! Globs, one meaning everywhere (policy rules, audit rules): `*` matches
//! any run of characters and `?` one character; matching is case-sensitive
//! and anchored at both ends. In method globs `*` does not cross the `/`
//! between service and method, so `cognito.mfa.v1.User*/*` cannot reach
//! another package's service by accident; the lone pattern `*` still means
//! every method.

/// True when `text` matches `pattern` as a whole. `stop` is a character `*`
/// may not consume (`Some('/')` for methods).
pub fn glob_match(pattern: &str, text: &str, stop: Option<char>) -> bool {
    if pattern == "*" && stop.is_none() {
        // The grant over everything, the commonest rule: no walk.
        return true;
    }
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

/// The method glob `pattern` matches `method` (`package.Service/Method`):
/// the lone `*` is every method, any other `*` stays inside its segment.
pub fn method_match(pattern: &str, method: &str) -> bool {
    pattern == "*" || glob_match(pattern, method, Some('/'))
}

/// Any of `patterns` matches `method` as a method glob.
pub fn any_method(patterns: &[String], method: &str) -> bool {
    patterns.iter().any(|p| method_match(p, method))
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
    fn the_lone_star_is_every_method_and_only_the_lone_one() {
        let m = "cognito.mfa.v1.UserMfaService/GetUserMfaSettings";
        assert!(method_match("*", m));
        assert!(
            !glob_match("*", m, Some('/')),
            "a star alone in glob_match stays in its segment"
        );
        assert!(!method_match("*Settings", m));
        assert!(method_match("*/*", m));
        assert!(any_method(&["x".into(), "*".into()], m));
    }
}
