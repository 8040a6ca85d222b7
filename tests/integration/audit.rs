//! Audit through the real binary: the records of every method, refusals
//! included; redaction; the hash chain and `audit verify` against edits,
//! deletions, reordering and a removed rotated file; fail-closed writes;
//! and durability when the server is SIGKILLed under 1,000 concurrent
//! writes.

use crate::common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::procs::{BIN, Served, canary, local_config, local_pool};
use common::{ApiKey, TEST_KEY};
use mfa_facade::{domain::totp, proto::dev::v1 as dev, proto::v1 as pb};
use serde_json::Value;
use tonic::{Code, transport::Channel};
use tonic_health::pb::health_check_response::ServingStatus;

const READER_KEY: &str = "reader-key-4d2a9c";

/// The admin (the test key) may do everything; "reader" only read pools.
fn config(audit: &str, extra: &str) -> String {
    local_config(
        "admin",
        100_000.0,
        100_000,
        &format!(
            r#"
[[auth.api_keys]]
principal = "reader"
sha256 = "{reader}"

[[policy.rules]]
principals = ["reader"]
methods = ["cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig"]
user_pools = ["*"]

{extra}

[audit]
{audit}
"#,
            reader = mfa_facade::auth::api_key::hash_key(READER_KEY),
        ),
    )
}

fn with_id<T>(message: T, request_id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("x-request-id", request_id.parse().expect("ascii"));
    r
}

use common::{PoolsClient as Pools, UsersClient as Users};

fn clients(ch: &Channel, key: &str) -> (Pools, Users) {
    (
        pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
            ch.clone(),
            ApiKey::new(key),
        ),
        pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
            ch.clone(),
            ApiKey::new(key),
        ),
    )
}

struct Fixture {
    pool: String,
    token: String,
}

async fn fixture(ch: &Channel) -> Fixture {
    let pool = local_pool(ch, Some("alice")).await;
    let mut f = dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    );
    let token = f
        .issue_access_token(dev::IssueAccessTokenRequest {
            user_pool_id: pool.clone(),
            username: "alice".into(),
            ttl_seconds: None,
        })
        .await
        .expect("token")
        .into_inner()
        .access_token;
    canary::secret(&token);
    Fixture { pool, token }
}

fn read_records(paths: &[PathBuf]) -> Vec<Value> {
    let mut records = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).expect("audit file");
        records.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON record")),
        );
    }
    records
}

fn audit_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit.jsonl"))
        })
        .collect();
    // Chain order: rotated files by their first seq, the live file last.
    files.sort_by_key(|p| (p.extension().is_some_and(|e| e == "jsonl"), p.clone()));
    files
}

fn verify(files: &[PathBuf], anchor: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["audit", "verify"]);
    if let Some(a) = anchor {
        cmd.args(["--anchor", a]);
    }
    let out = cmd.args(files).output().expect("audit verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The records of one call, by its request id.
fn of<'a>(records: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["request_id"] == request_id)
        .collect()
}

fn stages_and_code(records: &[Value], request_id: &str) -> (Vec<String>, String) {
    let rs = of(records, request_id);
    let stages = rs
        .iter()
        .map(|r| r["stage"].as_str().unwrap_or("?").to_owned())
        .collect();
    let code = rs
        .iter()
        .find(|r| r["stage"] == "completed")
        .and_then(|r| r["outcome"]["code"].as_str())
        .unwrap_or("none")
        .to_owned();
    (stages, code)
}

/// Every method once, and a refusal at each stage, through one server;
/// the tests below each read one behaviour off its records.
struct EveryMethod {
    /// Holds the server's directory (and so the files) while a test reads.
    _served: Served,
    files: Vec<PathBuf>,
    records: Vec<Value>,
    pool: String,
    /// What must appear in no record.
    secrets: Vec<String>,
}

async fn every_method() -> EveryMethod {
    canary::secret(TEST_KEY);
    canary::secret(READER_KEY);
    // Changes at request_response; reads at their default (metadata, one
    // record) but GetUserMfaSettings, raised by a rule to show that a
    // read's token is fingerprinted in its one record.
    let mut served = Served::start(&config(
        "file = \"{dir}/audit.jsonl\"\ndefault_level = \"request_response\"\n\n[[audit.rules]]\nmethods = [\"cognito.mfa.v1.UserMfaService/GetUserMfaSettings\"]\nlevel = \"request_response\"\n",
        "[limits.methods.\"cognito.mfa.v1.UserMfaService/AdminDeleteSoftwareToken\"]\nper_second = 0.01\nburst = 1\n",
    ));
    let ch = served.channel().await;
    let f = fixture(&ch).await;
    let (mut pools, mut users) = clients(&ch, TEST_KEY);
    let external_id = format!("ext-{}", uuid::Uuid::new_v4().simple());
    canary::secret(&external_id);

    let set = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: f.pool.clone(),
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("Your code is {####}".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                external_id: Some(external_id.clone()),
                sns_region: Some("us-east-1".into()),
                ..Default::default()
            }),
        }),
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    pools
        .set_user_pool_mfa_config(with_id(set, "rid-set"))
        .await
        .expect("set");
    pools
        .update_user_pool_mfa_config(with_id(
            pb::UpdateUserPoolMfaConfigRequest {
                user_pool_id: f.pool.clone(),
                config: Some(pb::UserPoolMfaConfig {
                    software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                        enabled: Some(true),
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["software_token_mfa_configuration".into()],
                }),
                ..Default::default()
            },
            "rid-update",
        ))
        .await
        .expect("update");
    pools
        .get_user_pool_mfa_config(with_id(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: f.pool.clone(),
            },
            "rid-get",
        ))
        .await
        .expect("get");
    let secret = users
        .associate_software_token(with_id(
            pb::AssociateSoftwareTokenRequest {
                access_token: Some(f.token.clone()),
                session: None,
            },
            "rid-associate",
        ))
        .await
        .expect("associate")
        .into_inner()
        .secret_code;
    canary::secret(&secret);
    let key = totp::decode_base32(&secret).expect("base32");
    let code = totp::code_at(&key, common::now());
    canary::secret(&format!("\"{code}\""));
    users
        .verify_software_token(with_id(
            pb::VerifySoftwareTokenRequest {
                access_token: Some(f.token.clone()),
                session: None,
                user_code: code.clone(),
                friendly_device_name: Some("phone".into()),
            },
            "rid-verify",
        ))
        .await
        .expect("verify");
    let prefer_totp = pb::SoftwareTokenMfaSettings {
        enabled: Some(true),
        preferred_mfa: Some(true),
    };
    users
        .set_user_mfa_preference(with_id(
            pb::SetUserMfaPreferenceRequest {
                access_token: f.token.clone(),
                software_token_mfa_settings: Some(prefer_totp),
                ..Default::default()
            },
            "rid-pref",
        ))
        .await
        .expect("pref");
    users
        .admin_set_user_mfa_preference(with_id(
            pb::AdminSetUserMfaPreferenceRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
                software_token_mfa_settings: Some(prefer_totp),
                ..Default::default()
            },
            "rid-admin-pref",
        ))
        .await
        .expect("admin pref");
    users
        .get_user_mfa_settings(with_id(
            pb::GetUserMfaSettingsRequest {
                access_token: f.token.clone(),
            },
            "rid-settings",
        ))
        .await
        .expect("settings");
    users
        .admin_get_user_mfa_settings(with_id(
            pb::AdminGetUserMfaSettingsRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
            },
            "rid-admin-settings",
        ))
        .await
        .expect("admin settings");
    users
        .admin_delete_software_token(with_id(
            pb::AdminDeleteSoftwareTokenRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
            },
            "rid-delete",
        ))
        .await
        .expect("delete");
    // Issue 35: the attributes MFA needs (a phone number no record may
    // show), a remembered device, and the reset that forgets it.
    let phone = "+15555550142";
    users
        .admin_update_user_attributes(with_id(
            pb::AdminUpdateUserAttributesRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
                user_attributes: vec![pb::Attribute {
                    name: "phone_number".into(),
                    value: Some(phone.into()),
                }],
                ..Default::default()
            },
            "rid-attributes",
        ))
        .await
        .expect("attributes");
    dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    )
    .remember_device(dev::RememberDeviceRequest {
        user_pool_id: f.pool.clone(),
        username: "alice".into(),
        device_name: Some("laptop".into()),
        remembered: true,
        last_ip: None,
    })
    .await
    .expect("device");
    users
        .admin_reset_user_mfa(with_id(
            pb::AdminResetUserMfaRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
                validate_only: false,
            },
            "rid-reset",
        ))
        .await
        .expect("reset");
    // Refusals: rate limit, validation, policy, authentication.
    let limited = users
        .admin_delete_software_token(with_id(
            pb::AdminDeleteSoftwareTokenRequest {
                user_pool_id: f.pool.clone(),
                username: "alice".into(),
            },
            "rid-limited",
        ))
        .await
        .expect_err("over the limit");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    let invalid = pools
        .get_user_pool_mfa_config(with_id(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: "no pool".into(),
            },
            "rid-invalid",
        ))
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let (mut reader_pools, _) = clients(&ch, READER_KEY);
    let denied = reader_pools
        .set_user_pool_mfa_config(with_id(
            pb::SetUserPoolMfaConfigRequest {
                user_pool_id: f.pool.clone(),
                ..Default::default()
            },
            "rid-denied",
        ))
        .await
        .expect_err("denied");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let (mut anonymous, _) = clients(&ch, "not-a-key-at-all");
    let unauthenticated = anonymous
        .get_user_pool_mfa_config(with_id(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: f.pool.clone(),
            },
            "rid-anonymous",
        ))
        .await
        .expect_err("unauthenticated");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    assert!(
        served.terminate().success(),
        "a clean exit flushes the audit"
    );
    let files = audit_files(served.dir.path());
    let records = read_records(&files);
    EveryMethod {
        _served: served,
        files,
        records,
        pool: f.pool.clone(),
        secrets: vec![
            TEST_KEY.to_owned(),
            READER_KEY.to_owned(),
            f.token.clone(),
            secret,
            external_id,
            phone.to_owned(),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_leaves_two_records_and_a_read_or_a_refusal_one() {
    let EveryMethod { records, .. } = every_method().await;
    // DESIGN.md §5: a change leaves "received" and "completed"; a read, and
    // a refusal at any stage, one "completed" record.
    let both = vec!["received".to_owned(), "completed".to_owned()];
    let one = vec!["completed".to_owned()];
    for (rid, stages, code) in [
        ("rid-set", &both, "OK"),
        ("rid-update", &both, "OK"),
        ("rid-get", &one, "OK"),
        ("rid-associate", &both, "OK"),
        ("rid-verify", &both, "OK"),
        ("rid-pref", &both, "OK"),
        ("rid-admin-pref", &both, "OK"),
        ("rid-settings", &one, "OK"),
        ("rid-admin-settings", &one, "OK"),
        ("rid-delete", &both, "OK"),
        ("rid-attributes", &both, "OK"),
        ("rid-reset", &both, "OK"),
        ("rid-limited", &one, "RESOURCE_EXHAUSTED"),
        ("rid-invalid", &one, "INVALID_ARGUMENT"),
        ("rid-denied", &one, "PERMISSION_DENIED"),
        ("rid-anonymous", &one, "UNAUTHENTICATED"),
    ] {
        assert_eq!(
            stages_and_code(&records, rid),
            (stages.clone(), code.to_owned()),
            "{rid}"
        );
    }
}

/// AdminResetUserMfa leaves one call's records: received before its first
/// change, completed after its last, each step's outcome in the completed
/// record; a phone number set shows only masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_one_call_with_every_step_in_its_record() {
    let EveryMethod { records, .. } = every_method().await;
    let reset = of(&records, "rid-reset");
    assert_eq!(reset.len(), 2, "received and completed, nothing else");
    assert_eq!(reset[0]["request"]["username"], "alice");
    let steps: Vec<(String, String)> = reset[1]["response"]["steps"]
        .as_array()
        .expect("steps in the record")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or("").to_owned(),
                s["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("read_factors", "DONE"),
        // rid-delete took the TOTP app, and with it the only factor.
        ("turn_off_mfa", "NOT_NEEDED"),
        ("delete_software_token", "NOT_NEEDED"),
        ("forget_devices", "DONE"),
        ("sign_out", "DONE"),
        ("passkeys", "NOT_NEEDED"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, expected);
    let attributes = of(&records, "rid-attributes")[0];
    assert_eq!(
        attributes["request"]["user_attributes"][0],
        serde_json::json!({"name": "phone_number", "value": "***42"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_recorded_at_metadata_level_without_its_request() {
    let EveryMethod { records, .. } = every_method().await;
    let get = of(&records, "rid-get")[0];
    assert_eq!(get["level"], "metadata");
    assert_eq!(get["request"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_authentication_names_its_peer_and_no_principal() {
    let EveryMethod { records, .. } = every_method().await;
    let anonymous = of(&records, "rid-anonymous")[0];
    assert_eq!(anonymous["principal"], Value::Null);
    assert!(
        anonymous["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_says_who_called_what_on_which_pool() {
    let EveryMethod { records, pool, .. } = every_method().await;
    let set = of(&records, "rid-set");
    let (received, completed) = (set[0], set[1]);
    assert_eq!(received["principal"], "admin");
    assert_eq!(received["proven_by"], "api_key");
    assert_eq!(
        received["method"],
        "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"
    );
    assert_eq!(received["user_pool"], pool.as_str());
    assert_eq!(received["call_id"], completed["call_id"]);
    assert!(completed["latency_us"].as_u64().is_some());
    assert_eq!(of(&records, "rid-admin-pref")[0]["target_user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_change_records_the_configuration_before_and_after() {
    let EveryMethod { records, .. } = every_method().await;
    let completed = of(&records, "rid-set")[1];
    assert_eq!(
        completed["before"]["sms"],
        Value::Null,
        "a new pool has no SMS MFA"
    );
    assert_eq!(completed["after"]["mode"], "Optional");
    let update = of(&records, "rid-update");
    assert_eq!(update[1]["before"]["mode"], "Optional");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_fingerprinted_and_external_ids_masked() {
    let EveryMethod { records, .. } = every_method().await;
    let set = of(&records, "rid-set");
    assert_eq!(
        set[0]["request"]["config"]["sms"]["sms_configuration"]["external_id"],
        "[masked]"
    );
    assert_eq!(
        set[1]["after"]["sms"]["sms_configuration"]["external_id"],
        "[masked]"
    );
    // The same token, the same fingerprint, in every record.
    let fingerprints: Vec<&Value> = ["rid-associate", "rid-verify", "rid-pref", "rid-settings"]
        .iter()
        .map(|rid| of(&records, rid)[0])
        .map(|r| {
            let req = &r["request"];
            if req["access_token"].is_string() {
                &req["access_token"]
            } else {
                &req["user"]["access_token"]
            }
        })
        .collect();
    assert!(
        fingerprints[0]
            .as_str()
            .is_some_and(|f| f.starts_with("fp:"))
    );
    assert!(fingerprints.iter().all(|f| *f == fingerprints[0]));
    let verify_rec = of(&records, "rid-verify")[0];
    assert!(
        verify_rec["request"]["user_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("fp:"))
    );
    let associate_done = of(&records, "rid-associate")[1];
    assert!(
        associate_done["response"]["secret_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("fp:"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_anywhere_in_the_files_and_the_chain_verifies() {
    // `_served` bound: its directory (the files) lives until the test ends.
    let EveryMethod {
        _served,
        files,
        secrets,
        ..
    } = every_method().await;
    let text: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the audit file"
        );
    }
    let (ok, out) = verify(&files, None);
    assert!(ok, "{out}");
    assert!(
        out.lines().last().is_some_and(|l| l.starts_with("OK: ")),
        "{out}"
    );
}

/// A chain of several rotated files, made by the real server.
async fn rotated_chain() -> (tempfile::TempDir, Vec<PathBuf>, String) {
    let mut served = Served::start(&config(
        "file = \"{dir}/audit.jsonl\"\nmax_file_bytes = 4096\nanchor_interval_seconds = 1\n",
        "",
    ));
    let ch = served.channel().await;
    let f = fixture(&ch).await;
    let (mut pools, _) = clients(&ch, TEST_KEY);
    for i in 0..40 {
        pools
            .get_user_pool_mfa_config(with_id(
                pb::GetUserPoolMfaConfigRequest {
                    user_pool_id: f.pool.clone(),
                },
                &format!("rid-{i}"),
            ))
            .await
            .expect("get");
    }
    assert!(served.terminate().success());
    // The head at exit, as the last checkpoint (at drain) seals it: what
    // an outside copy of the checkpoints holds.
    let anchor = audit_files(served.dir.path())
        .iter()
        .flat_map(|p| lines_of(p))
        .filter_map(|l| {
            let v: Value = serde_json::from_str(&l).ok()?;
            let c = v.get("audit_checkpoint")?;
            Some((c["seq"].as_u64()?, c["hash"].as_str()?.to_owned()))
        })
        .max()
        .map(|(seq, hash)| format!("{seq}:{hash}"))
        .expect("a checkpoint in the files");
    let keep = tempfile::tempdir().expect("dir");
    let mut files = Vec::new();
    for p in audit_files(served.dir.path()) {
        let to = keep.path().join(p.file_name().expect("name"));
        std::fs::copy(&p, &to).expect("copy");
        files.push(to);
    }
    (keep, files, anchor)
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.join("\n") + "\n").expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_across_rotated_files() {
    let (_keep, files, anchor) = rotated_chain().await;
    assert!(files.len() >= 4, "rotated into {} files", files.len());
    let (ok, out) = verify(&files, Some(&anchor));
    assert!(ok, "the untouched chain verifies: {out}");
    // Given in any order, the files are put in chain order.
    let mut reversed = files.clone();
    reversed.reverse();
    assert!(verify(&reversed, None).0);

    let middle = &files[1];
    let original = lines_of(middle);
    let restore = || write_lines(middle, &original);
    // The lines that are records (checkpoints are between them).
    let records_at: Vec<usize> = original
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.starts_with("{\"audit_checkpoint\""))
        .map(|(i, _)| i)
        .collect();
    let (third, fourth) = (records_at[2], records_at[3]);

    // One byte edited.
    let mut edited = original.clone();
    edited[third] = edited[third].replacen("\"stage\":\"", "\"stage\":\"X", 1);
    write_lines(middle, &edited);
    let (ok, out) = verify(&files, None);
    println!("edited:    {out}");
    assert!(
        !ok && out.contains(&format!("{}:{}:", middle.display(), third + 1))
            && out.contains("edited"),
        "{out}"
    );
    restore();

    // One record deleted: the gap shows at the record after it, which
    // is now a line earlier.
    let mut deleted = original.clone();
    deleted.remove(third);
    write_lines(middle, &deleted);
    let (ok, out) = verify(&files, None);
    println!("deleted:   {out}");
    assert!(
        !ok && out.contains(&format!("{}:{}:", middle.display(), fourth))
            && out.contains("deleted"),
        "{out}"
    );
    restore();

    // Two lines swapped: records are put in seq order whatever the order
    // they come in (collectors deliver out of order), and said to be out of
    // order; a reorder that re-chains them is what a checkpoint catches
    // (tests/integration/audit_fleet.rs).
    let mut swapped = original.clone();
    swapped.swap(third, fourth);
    write_lines(middle, &swapped);
    let (ok, out) = verify(&files, None);
    println!("swapped:   {out}");
    assert!(ok && out.contains("out of seq order"), "{out}");
    restore();

    // A rotated file removed from the middle.
    let without: Vec<PathBuf> = files.iter().filter(|p| *p != middle).cloned().collect();
    let (ok, out) = verify(&without, None);
    println!("removed:   {out}");
    assert!(
        !ok && out.contains(&format!("{}:1:", files[2].display())) && out.contains("deleted"),
        "{out}"
    );

    // The tail cut off (the last record and the final checkpoint after
    // it): only a head kept outside the files catches it.
    // The last file that holds a record (a rotation may leave only
    // checkpoints in the newest, which the cutter deletes too).
    let kept_len = files
        .iter()
        .rposition(|f| {
            lines_of(f)
                .iter()
                .any(|l| !l.starts_with("{\"audit_checkpoint\""))
        })
        .expect("a file with records")
        + 1;
    let files = files[..kept_len].to_vec();
    let last = files.last().expect("files");
    let mut cut = lines_of(last);
    while cut
        .last()
        .is_some_and(|l| l.starts_with("{\"audit_checkpoint\""))
    {
        cut.pop();
    }
    cut.pop();
    write_lines(last, &cut);
    assert!(verify(&files, None).0, "a shorter chain is still a chain");
    let (ok, out) = verify(&files, Some(&anchor));
    println!("cut tail:  {out}");
    assert!(!ok && out.contains("cut off the tail"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_a_change_it_cannot_record() {
    // /dev/full accepts the open and fails every write (ENOSPC).
    let served = Served::start(&config(
        "file = \"/dev/full\"\nfail_closed = true\nstall_seconds = 1\n",
        "",
    ));
    let ch = served.channel().await;
    // Fixtures are changes too: refused while they cannot be recorded.
    let mut fixtures =
        dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
            ch.clone(),
            ApiKey::new(TEST_KEY),
        );
    let refused = fixtures
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "unrecorded".into(),
            feature_plan: dev::FeaturePlan::Essentials as i32,
            ..Default::default()
        })
        .await
        .expect_err("a fixture is a change: no durable record, no pool");
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    // The demo pool, made at start-up, is the change's target.
    let demo = served.demo_pool();
    let f = Fixture {
        pool: demo,
        token: String::new(),
    };
    let (mut pools, _) = clients(&ch, TEST_KEY);
    let refused = pools
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: f.pool.clone(),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::On as i32,
            ..Default::default()
        })
        .await
        .expect_err("no durable record, no change");
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    use tonic_types::StatusExt;
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("AUDIT_UNAVAILABLE".to_owned())
    );
    // Nothing changed; reads go on (their records are counted as failed).
    let now = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: f.pool.clone(),
        })
        .await
        .expect("reads are not blocked")
        .into_inner();
    assert_eq!(now.mfa_configuration, pb::MfaConfiguration::Off as i32);
    assert!(
        served
            .metric("mfa_facade_audit_failures_total", &[])
            .is_some_and(|n| n >= 1.0)
    );
    // A writer whose every write fails for audit.stall_seconds (1 here) is
    // not ready: health NOT_SERVING, the writer gauge 0 (issue 31).
    assert_eq!(
        served
            .health_until(ServingStatus::NotServing, Duration::from_secs(10))
            .await,
        ServingStatus::NotServing
    );
    assert_eq!(served.metric("mfa_facade_audit_writer_up", &[]), Some(0.0));
}

/// Issue 31: with nothing reading stdout, a change waited past its 30 s
/// deadline while health said SERVING. Now: the change answers UNAVAILABLE
/// (AUDIT_UNAVAILABLE) within its deadline and never reaches the backend,
/// health turns NOT_SERVING after audit.stall_seconds with the writer gauge
/// at 0, and both come back by themselves once stdout is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stdout_fails_changes_within_their_deadline_and_health_follows() {
    let served = Served::start(&config(
        "stdout = true\nfail_closed = true\nstall_seconds = 1\n",
        "[server]\nrequest_timeout_ms = 3000\n",
    ));
    let ch = served.channel().await;
    let pool = served.demo_pool();
    let (mut pools, _) = clients(&ch, TEST_KEY);
    assert_eq!(
        served
            .health_until(ServingStatus::Serving, Duration::from_secs(10))
            .await,
        ServingStatus::Serving
    );
    served.hold_stdout(true);
    // Reads do not wait for their records: enough of them fill the pipe
    // (64 KiB) and block the writer inside a write.
    for _ in 0..600 {
        pools
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            })
            .await
            .expect("reads go on");
    }
    let writer = pools.clone();
    let change = |timeout: Option<Duration>| {
        let mut pools = writer.clone();
        let pool = pool.clone();
        async move {
            let mut request = tonic::Request::new(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool,
                software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mfa_configuration: pb::MfaConfiguration::Optional as i32,
                ..Default::default()
            });
            if let Some(t) = timeout {
                request.set_timeout(t);
            }
            let started = std::time::Instant::now();
            (
                pools.set_user_pool_mfa_config(request).await,
                started.elapsed(),
            )
        }
    };
    use tonic_types::StatusExt;
    // The server's deadline (3 s), then a caller's own (1 s), sooner.
    for (timeout, bound) in [(None, 3000), (Some(Duration::from_secs(1)), 1000)] {
        let (answer, took) = change(timeout).await;
        let err = answer.expect_err("no durable record, no change");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(
            err.get_details_error_info().map(|i| i.reason),
            Some("AUDIT_UNAVAILABLE".to_owned()),
            "{err:?}"
        );
        assert!(
            took < Duration::from_millis(bound + 500),
            "answered after {took:?}"
        );
        println!(
            "stalled stdout: a change answered AUDIT_UNAVAILABLE in {took:?} (deadline {bound} ms)"
        );
    }
    assert_eq!(
        served
            .health_until(ServingStatus::NotServing, Duration::from_secs(10))
            .await,
        ServingStatus::NotServing
    );
    assert_eq!(served.metric("mfa_facade_audit_writer_up", &[]), Some(0.0));
    // A caller that gives up (no grpc-timeout: it drops the call, its
    // client resets the stream) still leaves the call's completed record.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), change(None))
            .await
            .is_err(),
        "the change is still waiting for its record"
    );
    // Nothing reached the backend.
    let now = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(now.mfa_configuration, pb::MfaConfiguration::Off as i32);
    // Read again: the writer writes, health and the gauge come back, and
    // a change goes through.
    served.hold_stdout(false);
    assert_eq!(
        served
            .health_until(ServingStatus::Serving, Duration::from_secs(10))
            .await,
        ServingStatus::Serving
    );
    assert_eq!(served.metric("mfa_facade_audit_writer_up", &[]), Some(1.0));
    let (answer, _) = change(None).await;
    answer.expect("the change goes through once stdout is read");
    // Every refused change left its completed record too, and so did the
    // abandoned one.
    let completed_sets = |code: &str| {
        served
            .stdout()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(&l.text).ok())
            .filter(|r| {
                r["method"] == "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"
                    && r["stage"] == "completed"
                    && r["outcome"]["code"] == code
            })
            .count()
    };
    assert_eq!(completed_sets("UNAVAILABLE"), 2);
    assert_eq!(
        completed_sets("CANCELLED"),
        1,
        "the abandoned call's record"
    );
    assert!(
        served
            .wait_log("\"event\":\"call_abandoned\"", Duration::from_secs(5))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let mut served = Served::start(&config(
        "file = \"{dir}/audit.jsonl\"\nfsync = \"group\"\nfail_closed = true\n",
        "",
    ));
    let ch = served.channel().await;
    let f = fixture(&ch).await;
    let (pools, _) = clients(&ch, TEST_KEY);
    // A random moment: after 50 to 900 of the 1,000 writes were answered.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let kill_at = 50 + (nanos as usize % 850);
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let mut pools = pools.clone();
        let pool = f.pool.clone();
        let answered = answered.clone();
        calls.spawn(async move {
            let rid = format!("write-{i}");
            let mode = if i % 2 == 0 {
                pb::MfaConfiguration::On
            } else {
                pb::MfaConfiguration::Optional
            };
            let r = pools
                .set_user_pool_mfa_config(with_id(
                    pb::SetUserPoolMfaConfigRequest {
                        user_pool_id: pool,
                        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                            enabled: Some(true),
                        }),
                        mfa_configuration: mode as i32,
                        ..Default::default()
                    },
                    &rid,
                ))
                .await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (rid, r.map(|_| ()).map_err(|e| e.code()))
        });
    }
    let started = std::time::Instant::now();
    while answered.load(std::sync::atomic::Ordering::SeqCst) < kill_at {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writes stalled"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let kill_after = started.elapsed();
    served.kill();
    let mut ok = Vec::new();
    let mut failed = 0;
    while let Some(done) = calls.join_next().await {
        match done.expect("task") {
            (rid, Ok(())) => ok.push(rid),
            (_, Err(code)) => {
                // Only the server's death may fail a call: the transport's
                // codes, never an answer of the service.
                assert!(
                    matches!(code, Code::Unavailable | Code::Unknown | Code::Cancelled),
                    "a write failed with {code:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the kill landed before the run ended");
    let files = audit_files(served.dir.path());
    // A kill during a batch's write may leave its last line torn (the kernel
    // stops a write at a page when the process is killed): never
    // acknowledged, and cut off by the next start (`audit_torn_tail`), as
    // here. Only the live file's last line may be torn.
    let live = files.last().expect("the live file");
    let bytes = std::fs::read(live).expect("live file");
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    if whole < bytes.len() {
        println!("a torn last line of {} bytes, cut off", bytes.len() - whole);
        std::fs::write(live, &bytes[..whole]).expect("cut the torn line");
    }
    let records = read_records(&files);
    let mut missing = Vec::new();
    for rid in &ok {
        let stages: Vec<&str> = of(&records, rid)
            .iter()
            .filter_map(|r| r["stage"].as_str())
            .collect();
        if stages != ["received", "completed"] {
            missing.push(rid.clone());
        }
    }
    let (verified, out) = verify(&files, None);
    println!(
        "SIGKILL after {} answers ({} ms): {} writes answered OK, {} failed with the server gone; {} records on disk; OK writes missing records: {}; verify: {}",
        kill_at,
        kill_after.as_millis(),
        ok.len(),
        failed,
        records.len(),
        missing.len(),
        out.trim()
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not on disk: {missing:?}"
    );
    assert!(verified, "{out}");
}

/// Every string in `v` that looks like an etag (32 hex digits).
fn etags_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            out.push(s.clone())
        }
        Value::Array(a) => a.iter().for_each(|x| etags_in(x, out)),
        Value::Object(m) => m.values().for_each(|x| etags_in(x, out)),
        _ => {}
    }
}

/// Issue 31: the etag was an unkeyed SHA-256 over a configuration that
/// includes the ExternalId, so an Update's records (the etag in its
/// request, the configuration with the ExternalId masked in its completed
/// record) let anyone who reads the audit trail guess the ExternalId (8
/// tries found `acme-prod-7`). Now it counts only under a key derived from
/// `[server] secret_file`: the same guessing, over candidates that include
/// the real value, matches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_id_cannot_be_guessed_from_the_records() {
    use mfa_facade::domain::{PoolMfaConfig, Secret};
    let secret_dir = tempfile::tempdir().expect("dir");
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, "a-deployment-secret-of-more-than-32-bytes").expect("secret");
    let mut served = Served::start(&config(
        "file = \"{dir}/audit.jsonl\"\ndefault_level = \"request_response\"\nread_level = \"request_response\"\n",
        &format!("[server]\nsecret_file = \"{}\"\n", secret.display()),
    ));
    let ch = served.channel().await;
    let pool = served.demo_pool();
    let (mut pools, _) = clients(&ch, TEST_KEY);
    let external_id = "acme-prod-7";
    canary::secret(external_id);
    pools
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: Some("Your code is {####}".into()),
                sms_configuration: Some(pb::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: Some(external_id.into()),
                    sns_region: Some("us-east-1".into()),
                    ..Default::default()
                }),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        })
        .await
        .expect("set");
    let etag = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .etag;
    pools
        .update_user_pool_mfa_config(with_id(
            pb::UpdateUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
                config: Some(pb::UserPoolMfaConfig {
                    sms_mfa_configuration: Some(pb::SmsMfaConfig {
                        sms_authentication_message: Some("Code: {####}".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["sms_mfa_configuration.sms_authentication_message".into()],
                }),
                etag: Some(etag),
                ..Default::default()
            },
            "rid-guess",
        ))
        .await
        .expect("update");
    assert!(served.terminate().success());
    let records = read_records(&audit_files(served.dir.path()));
    let mut etags = Vec::new();
    for r in &records {
        etags_in(r, &mut etags);
    }
    assert!(etags.len() >= 3, "the records hold the etags: {etags:?}");
    // The attacker's side: every configuration a completed record shows,
    // its masked ExternalId replaced by each guess, hashed as the etag was.
    let configs: Vec<PoolMfaConfig> = records
        .iter()
        .flat_map(|r| [&r["before"], &r["after"]])
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .filter(|c: &PoolMfaConfig| c.sms.is_some())
        .collect();
    assert!(!configs.is_empty());
    let guesses: Vec<String> = (0..10).map(|i| format!("acme-prod-{i}")).collect();
    assert!(guesses.iter().any(|g| g == external_id));
    let mut tries = 0;
    for config in &configs {
        for guess in &guesses {
            let mut c = config.clone();
            if let Some(s) = c.sms.as_mut().and_then(|s| s.sms_configuration.as_mut()) {
                s.external_id = Some(Secret::new(guess.clone()));
            }
            let bytes =
                mfa_facade::domain::secret::exposed(|| serde_json::to_vec(&c)).expect("json");
            let unkeyed = mfa_facade::hash::hex(&mfa_facade::hash::sha256(&bytes)[..16]);
            tries += 1;
            assert!(
                !etags.contains(&unkeyed),
                "the etag gave the ExternalId away: {guess}"
            );
        }
    }
    println!(
        "ExternalId guessing: {tries} tries over {} etags in the records, none matched",
        etags.len()
    );
}

/// Issue 31: records say which AWS account and Region served a cognito call
/// (a refused one too: where it would have gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cognito_calls_record_names_its_account_and_region() {
    let pool = common::moto_sdk()
        .await
        .create_user_pool()
        .pool_name(format!("placed-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("id")
        .to_owned();
    let mut served = Served::start_with_env(
        &config("file = \"{dir}/audit.jsonl\"\n", "")
            .replace(
                "kind = \"local\"",
                &format!(
                    "kind = \"cognito\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\nmax_attempts = 1",
                    common::moto_url()
                ),
            ),
        &[
            ("AWS_ACCESS_KEY_ID", Some("testing")),
            ("AWS_SECRET_ACCESS_KEY", Some("testing")),
        ],
    );
    let ch = served.channel().await;
    let (mut pools, _) = clients(&ch, TEST_KEY);
    pools
        .get_user_pool_mfa_config(with_id(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            },
            "rid-placed",
        ))
        .await
        .expect("get");
    let refused = pools
        .get_user_pool_mfa_config(with_id(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: "eu-west-1_AbCdEfGhI".into(),
            },
            "rid-elsewhere",
        ))
        .await
        .expect_err("a Region not served");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(served.terminate().success());
    let records = read_records(&audit_files(served.dir.path()));
    let placed = of(&records, "rid-placed");
    assert_eq!(placed[0]["account"], "default", "{}", placed[0]);
    assert_eq!(placed[0]["region"], "us-east-1");
    let elsewhere = of(&records, "rid-elsewhere");
    assert_eq!(elsewhere[0]["region"], "eu-west-1", "{}", elsewhere[0]);
}

/// Development: `[audit.signing]` without a key on the local backend makes
/// one beside the data file (its public key beside it), signs with it, and
/// keeps it across restarts; `audit verify --public-key` holds the files to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_makes_a_signing_key_beside_the_data_file() {
    let cfg = config(
        "file = \"{dir}/audit.jsonl\"\n\n[audit.signing]\ncheckpoint_seconds = 1\n",
        "",
    );
    let mut served = Served::start(&cfg);
    let ch = served.channel().await;
    local_pool(&ch, None).await;
    assert!(served.terminate().success());
    let key = served.dir.path().join("data.json.audit-signing.pem");
    let public = served.dir.path().join("data.json.audit-signing.pem.pub");
    assert!(
        key.exists() && public.exists(),
        "the key pair beside the data file"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        served
            .logs()
            .iter()
            .any(|l| l.text.contains("\"event\":\"audit_signing_key_made\""))
    );
    let out = Command::new(BIN)
        .args(["audit", "verify", "--strict", "--public-key"])
        .arg(&public)
        .args(audit_files(served.dir.path()))
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("every signature good"), "{text}");
    // A key of another deployment does not hold them.
    let other = served.dir.path().join("other.pem");
    mfa_facade::audit::seal::generate(&other).expect("key");
    let out = Command::new(BIN)
        .args(["audit", "verify", "--public-key"])
        .arg(served.dir.path().join("other.pem.pub"))
        .args(audit_files(served.dir.path()))
        .output()
        .expect("verify");
    assert!(!out.status.success());
}

/// `[audit.signing] kms_key_id`: checkpoints signed by an AWS KMS
/// ECC_NIST_P256 key (moto's KMS on loopback), verified with
/// `--kms-key-id` (its public half from GetPublicKey) and refused under
/// another KMS key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_signed_by_a_kms_key_verify_under_it_only() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::new()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(common::moto_url())
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build(),
    );
    let make = || async {
        kms.create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .expect("a KMS key")
            .key_metadata()
            .map(|m| m.arn().unwrap_or(m.key_id()).to_owned())
            .expect("its arn")
    };
    let (key, other) = (make().await, make().await);
    let env = [
        ("AWS_ACCESS_KEY_ID", Some("testing")),
        ("AWS_SECRET_ACCESS_KEY", Some("testing")),
        ("AWS_REGION", Some("us-east-1")),
    ];
    let mut served = Served::start_with_env(
        &config(
            &format!(
                "file = \"{{dir}}/audit.jsonl\"\n\n[audit.signing]\nkms_key_id = \"{key}\"\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n",
                common::moto_url()
            ),
            "",
        ),
        &env,
    );
    let ch = served.channel().await;
    local_pool(&ch, None).await;
    assert!(served.terminate().success());
    let verify_with = |id: &str| {
        let out = Command::new(BIN)
            .envs(env.iter().map(|(k, v)| (*k, v.unwrap_or_default())))
            .args([
                "audit",
                "verify",
                "--strict",
                "--kms-key-id",
                id,
                "--kms-endpoint-url",
            ])
            .arg(common::moto_url())
            .args(audit_files(served.dir.path()))
            .output()
            .expect("verify");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = verify_with(&key);
    assert!(ok && out.contains("every signature good"), "{out}");
    let checkpoints = read_records(&audit_files(served.dir.path()))
        .into_iter()
        .filter_map(|r| r.get("audit_checkpoint").cloned())
        .collect::<Vec<_>>();
    assert!(checkpoints.len() >= 2, "start and drain");
    assert!(checkpoints.iter().all(|c| c["alg"] == "ecdsa-p256-sha256"));
    let (ok, out) = verify_with(&other);
    assert!(!ok, "another KMS key's verify fails: {out}");
    println!(
        "kms: {} checkpoints signed by {key}; verify under it OK, under another key FAILED",
        checkpoints.len()
    );
}
