//! The canary: the last step of the test command. Every secret the suite's
//! tests used (API keys, access tokens, TOTP secrets and codes, ExternalIds,
//! JWTs) was registered, and every log and audit file its servers wrote was
//! kept; none of them may hold any of the secrets.
//!
//! It needs the suite to have run first with MFA_FACADE_TEST_LOG_DIR set
//! (scripts/test.sh does both) and fails loudly otherwise.

use crate::common;

use common::procs::canary;

#[test]
fn no_secret_is_in_any_log_or_audit_file_of_the_suite() {
    let dir = canary::dir().unwrap_or_else(|| {
        panic!(
            "{} is not set: run the whole suite with scripts/test.sh, which keeps the servers' logs there and runs this scan last",
            canary::ENV
        )
    });
    let secrets: Vec<String> = std::fs::read_to_string(dir.join("secrets.txt"))
        .unwrap_or_else(|e| panic!("no secrets were registered ({e}): did the suite run?"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut secrets = secrets;
    secrets.sort();
    secrets.dedup();
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("log dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "secrets.txt"))
        .collect();
    let audit_files = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("audit"))
        .count();
    assert!(
        files.len() >= 10,
        "only {} kept files: did the suite run?",
        files.len()
    );
    assert!(audit_files >= 1, "no audit file was kept");
    let mut bytes = 0usize;
    let mut found = Vec::new();
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
        bytes += text.len();
        for s in &secrets {
            if text.contains(s.as_str()) {
                found.push(format!(
                    "{}: a secret of {} characters",
                    f.display(),
                    s.len()
                ));
            }
        }
    }
    println!(
        "canary: {} secrets searched for in {} files ({} audit files, {} bytes): {} found",
        secrets.len(),
        files.len(),
        audit_files,
        bytes,
        found.len()
    );
    assert!(found.is_empty(), "{found:#?}");
}
