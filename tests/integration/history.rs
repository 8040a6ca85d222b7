//! A pool's MFA history, a restore to any point of it, and changes made
//! behind the facade's back (issue 36), through the release binary:
//! - two replicas of the cognito backend on moto sharing one Object Lock
//!   bucket: a change through one is in the other's history; a change made
//!   with boto3 straight on moto is recorded once as `external` within a
//!   check interval; a restore gives back an older revision's
//!   configuration and etag; a restore a guardrail denies is refused and
//!   recorded; a pool outside the caller's grant is PERMISSION_DENIED;
//!   `audit verify` over the bucket passes, and fails once an index object
//!   disagrees with the records;
//! - the local backend with the file sink: the same history and a restore
//!   after a restart, Check of a restore, paging, and `audit verify` of the
//!   file and its index (an edited or a missing entry is caught).

use crate::audit_fleet::{AWS_ENV, bucket_objects, moto_s3, object_lock_bucket, verify};
use crate::common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::procs::{Served, local_pool};
use common::{ApiKey, TEST_KEY};
use mfa_facade::proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

const OUTSIDER_KEY: &str = "outsider-key-7d2e4b1c9a";

fn pools(ch: &tonic::transport::Channel, key: &str) -> common::PoolsClient {
    pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(key),
    )
}

/// Callers: `admin` (the test key) may call everything on every pool;
/// `outsider` only on pools of another Region.
fn callers() -> String {
    common::procs::canary::secret(TEST_KEY);
    common::procs::canary::secret(OUTSIDER_KEY);
    format!(
        r#"
[[auth.api_keys]]
principal = "admin"
sha256 = "{admin}"

[[auth.api_keys]]
principal = "outsider"
sha256 = "{outsider}"

[[policy.rules]]
principals = ["admin"]
methods = ["*"]
user_pools = ["*"]

[[policy.rules]]
principals = ["outsider"]
methods = ["*"]
user_pools = ["eu-west-1_*"]

[[guardrails]]
name = "pools-keep-mfa"
user_pools = ["*"]
methods = ["SetUserPoolMfaConfig"]
expression = "after.mfa_configuration != 'OFF'"
message = "pools keep MFA on"
actions = ["warn", "audit"]

[[guardrails]]
name = "restores-keep-mfa"
user_pools = ["*"]
methods = ["RestoreUserPoolMfaConfig"]
expression = "after.mfa_configuration != 'OFF'"
message = "a restore must leave MFA on"
actions = ["deny"]
"#,
        admin = mfa_facade::auth::api_key::hash_key(TEST_KEY),
        outsider = mfa_facade::auth::api_key::hash_key(OUTSIDER_KEY),
    )
}

fn totp(mode: pb::MfaConfiguration) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    }
}

async fn set(p: &mut common::PoolsClient, pool: &str, mode: pb::MfaConfiguration) -> String {
    let mut req = totp(mode);
    req.user_pool_id = pool.to_owned();
    p.set_user_pool_mfa_config(req)
        .await
        .expect("set")
        .into_inner()
        .etag
}

async fn history(p: &mut common::PoolsClient, pool: &str) -> Vec<pb::MfaConfigRevision> {
    page(p, pool, 0, "").await.revisions
}

/// One page of `pool`'s history (`size` 0: the default), answered OK.
async fn page(
    p: &mut common::PoolsClient,
    pool: &str,
    size: u32,
    token: &str,
) -> pb::ListUserPoolMfaConfigHistoryResponse {
    p.list_user_pool_mfa_config_history(pb::ListUserPoolMfaConfigHistoryRequest {
        user_pool_id: pool.to_owned(),
        page_size: size,
        page_token: token.to_owned(),
        ..Default::default()
    })
    .await
    .expect("a page of the history")
    .into_inner()
}

async fn get(p: &mut common::PoolsClient, pool: &str) -> pb::GetUserPoolMfaConfigResponse {
    p.get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
        user_pool_id: pool.to_owned(),
    })
    .await
    .expect("get")
    .into_inner()
}

fn mode_of(r: &pb::MfaConfigRevision) -> i32 {
    r.config.as_ref().map_or(0, |c| c.mfa_configuration)
}

fn cognito_replica(root: &Path, name: &str, bucket: &str, moto: &str) -> String {
    format!(
        r#"
[backend]
kind = "cognito"
region = "us-east-1"
endpoint_url = "{moto}"
max_attempts = 1

[server]
secret_file = "{root}/secret"
request_timeout_ms = 5000

[audit]
fail_closed = true
source = "{name}"

[audit.s3]
bucket = "{bucket}"
prefix = "fleet/"
region = "us-east-1"
endpoint_url = "{moto}"
force_path_style = true
flush_ms = 50

[history]
watch_pools = ["us-east-1_*"]
check_seconds = 2
grace_ms = 300
{callers}
"#,
        root = root.display(),
        callers = callers(),
    )
}

/// A change behind the facade's back: boto3 straight on moto.
fn boto3_set(moto: &str, pool: &str, mode: &str) {
    let script = format!(
        "import boto3\n\
         c = boto3.client('cognito-idp', endpoint_url='{moto}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         c.set_user_pool_mfa_config(UserPoolId='{pool}', \
         SoftwareTokenMfaConfiguration={{'Enabled': True}}, MfaConfiguration='{mode}')\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with boto3 (installed with moto)");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_history_and_see_a_change_made_behind_their_back_once() {
    let moto = common::moto_url();
    let s3 = moto_s3();
    let bucket = object_lock_bucket(&s3, "history").await;
    let root = tempfile::tempdir().expect("dir");
    std::fs::write(root.path().join("secret"), [7u8; 48]).expect("secret");
    let pool = common::moto_sdk()
        .await
        .create_user_pool()
        .pool_name(format!("history-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("pool id")
        .to_owned();
    let start = |name: &str| {
        Served::start_with_env(
            &cognito_replica(root.path(), name, &bucket, &moto),
            &AWS_ENV,
        )
    };
    let (web0, web1) = (start("web-0"), start("web-1"));
    let (ch0, ch1) = (web0.channel().await, web1.channel().await);
    let (mut a, mut b) = (pools(&ch0, TEST_KEY), pools(&ch1, TEST_KEY));

    // Two changes through replica A; replica B's history has both.
    let etag_on = set(&mut a, &pool, pb::MfaConfiguration::On).await;
    let etag_optional = set(&mut a, &pool, pb::MfaConfiguration::Optional).await;
    let seen = history(&mut b, &pool).await;
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(
        seen,
        history(&mut a, &pool).await,
        "every replica reads one history"
    );
    assert_eq!(
        (seen[0].etag.as_str(), seen[1].etag.as_str()),
        (etag_optional.as_str(), etag_on.as_str()),
        "newest first"
    );
    for r in &seen {
        assert_eq!(
            (r.principal.as_str(), r.proven_by.as_str()),
            ("admin", "api_key")
        );
        assert_eq!(r.method, "SetUserPoolMfaConfig");
        assert!(!r.external);
        let at = r.audit.as_ref().expect("audit position");
        assert_eq!(at.source, "web-0");
        assert!(at.seq > 0 && at.hash.len() == 64, "{at:?}");
    }
    assert_eq!(seen[0].changed_fields, ["mfa_configuration"]);
    // Paged one at a time over S3, the token of one replica taken by the
    // other (the deployment secret they share keys it).
    let first = page(&mut b, &pool, 1, "").await;
    assert_eq!(first.revisions, seen[..1]);
    let second = page(&mut a, &pool, 1, &first.next_page_token).await;
    assert_eq!(second.revisions, seen[1..]);
    assert!(second.next_page_token.is_empty());

    // Behind the facade's back: recorded once, as external, by the watch
    // of one replica (both watch the pool), within a check interval or two.
    boto3_set(&moto, &pool, "OFF");
    let external = common::wait::poll_async(Duration::from_secs(15), || async {
        let h = history(&mut b.clone(), &pool).await;
        h.first().filter(|r| r.external).cloned()
    })
    .await
    .expect("the external change in the history within 15 s");
    assert_eq!(mode_of(&external), pb::MfaConfiguration::Off as i32);
    assert_eq!(external.method, "(external change)");
    assert!(external.principal.is_empty());
    assert_eq!(external.changed_fields, ["mfa_configuration"]);
    // Two more check intervals: still once, and reads (Get) add nothing.
    get(&mut a, &pool).await;
    get(&mut b, &pool).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = history(&mut a, &pool).await;
    assert_eq!(after.iter().filter(|r| r.external).count(), 1, "{after:#?}");
    assert_eq!(after.len(), 3);
    let drift = web0
        .metric("mfa_facade_pool_drift_total", &[r#"pools="us-east-1_*""#])
        .unwrap_or(0.0)
        + web1
            .metric("mfa_facade_pool_drift_total", &[r#"pools="us-east-1_*""#])
            .unwrap_or(0.0);
    assert_eq!(drift, 1.0, "one replica counted it");

    // A restore of the oldest revision (ON): its configuration and etag.
    let restored = b
        .restore_user_pool_mfa_config(pb::RestoreUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            revision: seen[1].revision.clone(),
            ..Default::default()
        })
        .await
        .expect("restore")
        .into_inner();
    assert_eq!(restored.etag, etag_on);
    assert_eq!(restored.changed_fields, ["mfa_configuration"]);
    let now = get(&mut a, &pool).await;
    assert_eq!(now.etag, etag_on);
    assert_eq!(now.mfa_configuration, pb::MfaConfiguration::On as i32);
    let newest = history(&mut a, &pool).await.remove(0);
    assert_eq!(newest.method, "RestoreUserPoolMfaConfig");
    assert_eq!(newest.restored_from, seen[1].revision);

    // A restore a guardrail denies: refused, nothing written, recorded.
    let denied = a
        .restore_user_pool_mfa_config(pb::RestoreUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            revision: external.revision.clone(),
            ..Default::default()
        })
        .await
        .expect_err("the guardrail denies restoring MFA OFF");
    assert_eq!(denied.code(), Code::FailedPrecondition, "{denied:?}");
    assert_eq!(
        denied.get_details_error_info().map(|i| i.reason),
        Some("GUARDRAIL_DENIED".to_owned())
    );
    assert_eq!(get(&mut a, &pool).await.etag, etag_on, "nothing written");

    // A pool outside the caller's grant.
    let outsider = pools(&ch1, OUTSIDER_KEY)
        .list_user_pool_mfa_config_history(pb::ListUserPoolMfaConfigHistoryRequest {
            user_pool_id: pool.clone(),
            ..Default::default()
        })
        .await
        .expect_err("outside the grant");
    assert_eq!(outsider.code(), Code::PermissionDenied);

    // audit verify over the bucket: the history agrees with the records.
    drop((a, b));
    let (mut web0, mut web1) = (web0, web1);
    assert!(web0.terminate().success() && web1.terminate().success());
    let url = format!("s3://{bucket}/fleet/");
    let args = ["--s3-endpoint-url", moto.as_str(), "--s3-path-style"];
    let (ok, out) = verify(&args, &[PathBuf::from(&url)]);
    assert!(ok, "{out}");
    assert!(out.contains("history index: 4 entries checked"), "{out}");
    // The denied restore is in the records, with its guardrail.
    let records: Vec<serde_json::Value> = bucket_objects(&s3, &bucket, "fleet/records/")
        .await
        .into_iter()
        .flat_map(|(_, text)| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect();
    // The external change's one record, with the guardrail it does not satisfy.
    let external_records: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["method"] == "(external change)")
        .collect();
    assert_eq!(external_records.len(), 1, "{external_records:#?}");
    assert_eq!(
        external_records[0]["guardrails"][0]["guardrail"], "pools-keep-mfa",
        "{:#?}",
        external_records[0]
    );
    assert!(external_records[0]["principal"].is_null());
    assert_eq!(
        web0.logs()
            .iter()
            .chain(web1.logs().iter())
            .filter(|l| l.text.contains("\"pool_drift_guardrail\""))
            .count(),
        1,
        "the warn action, logged by the replica that recorded it"
    );
    assert!(
        records.iter().any(|r| r["method"]
            .as_str()
            .is_some_and(|m| m.ends_with("RestoreUserPoolMfaConfig"))
            && r["outcome"]["code"] == "FAILED_PRECONDITION"
            && r["outcome"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("restores-keep-mfa"))),
        "the denied restore's record"
    );

    // An index object that disagrees with its record: caught.
    let key = format!(
        "fleet/history/{pool}/{}.json",
        seen[0]
            .revision
            .replacen(&seen[0].revision[..16], "0000000000000001", 1)
    );
    let mut body: serde_json::Value = serde_json::from_slice(
        &s3.get_object()
            .bucket(&bucket)
            .key(format!("fleet/history/{pool}/{}.json", seen[0].revision))
            .send()
            .await
            .expect("entry")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes(),
    )
    .expect("json");
    body["after"]["mode"] = serde_json::json!("OFF");
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(serde_json::to_vec(&body).expect("json").into())
        .send()
        .await
        .expect("a forged index object");
    let (ok, out) = verify(&args, &[PathBuf::from(&url)]);
    assert!(!ok, "{out}");
    assert!(out.contains("history index entry"), "{out}");
}

fn local_with_file(root: &Path) -> String {
    format!(
        r#"
[backend]
kind = "local"
data_file = "{root}/data.json"

[audit]
file = "{root}/audit.jsonl"
fail_closed = true
{callers}
"#,
        root = root.display(),
        callers = callers(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_sink_keeps_the_history_across_a_restart_and_verify_checks_it() {
    let root = tempfile::tempdir().expect("dir");
    let config = local_with_file(root.path());
    let mut served = Served::start(&config);
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch, TEST_KEY);
    let etag_on = set(&mut p, &pool, pb::MfaConfiguration::On).await;
    let mut update = tonic::Request::new(pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        config: Some(pb::UserPoolMfaConfig {
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["mfa_configuration".into()],
        }),
        ..Default::default()
    });
    update
        .metadata_mut()
        .insert("x-request-id", "rid-history-update".parse().expect("ascii"));
    p.update_user_pool_mfa_config(update).await.expect("update");
    let before = history(&mut p, &pool).await;
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].method, "UpdateUserPoolMfaConfig");
    assert_eq!(before[0].request_id, "rid-history-update");
    // Paging: one a page, the token carries on.
    let first = page(&mut p, &pool, 1, "").await;
    assert_eq!(first.revisions, before[..1]);
    assert!(!first.next_page_token.is_empty());
    let second = page(&mut p, &pool, 1, &first.next_page_token).await;
    assert_eq!(second.revisions, before[1..]);
    assert!(second.next_page_token.is_empty());
    // A forged token names the field.
    let forged = p
        .list_user_pool_mfa_config_history(pb::ListUserPoolMfaConfigHistoryRequest {
            user_pool_id: pool.clone(),
            page_token: format!("x{}", first.next_page_token),
            ..Default::default()
        })
        .await
        .expect_err("forged");
    assert_eq!(forged.code(), Code::InvalidArgument);
    assert!(forged.message().contains("page_token"), "{forged:?}");
    // `since` after both: nothing.
    let none = p
        .list_user_pool_mfa_config_history(pb::ListUserPoolMfaConfigHistoryRequest {
            user_pool_id: pool.clone(),
            since: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("since")
        .into_inner();
    assert!(none.revisions.is_empty());

    // The restart: the same history, from the file.
    assert!(served.terminate().success());
    let mut served = Served::start(&config);
    let ch = served.channel().await;
    let mut p = pools(&ch, TEST_KEY);
    assert_eq!(history(&mut p, &pool).await, before);

    // Check of a restore, then the restore: the older configuration back.
    let check = p
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            restore_revision: before[1].revision.clone(),
            ..Default::default()
        })
        .await
        .expect("check a restore")
        .into_inner();
    assert!(check.allowed, "{:?}", check.findings);
    assert_eq!(check.changed_fields, ["mfa_configuration"]);
    assert_eq!(check.etag, get(&mut p, &pool).await.etag, "nothing written");
    let restored = p
        .restore_user_pool_mfa_config(pb::RestoreUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            revision: before[1].revision.clone(),
            ..Default::default()
        })
        .await
        .expect("restore")
        .into_inner();
    assert_eq!(restored.etag, etag_on);
    assert_eq!(get(&mut p, &pool).await.etag, etag_on);
    let unknown = p
        .restore_user_pool_mfa_config(pb::RestoreUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            revision: "0000000000000001-00aa11bb22cc33dd-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("no such revision");
    assert_eq!(unknown.code(), Code::NotFound);
    let bad = p
        .restore_user_pool_mfa_config(pb::RestoreUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            revision: "../../etc/passwd".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a revision");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("revision"), "{bad:?}");
    assert_eq!(history(&mut p, &pool).await.len(), 3);
    assert!(served.terminate().success());

    // audit verify: the file with its index beside it.
    let audit = root.path().join("audit.jsonl");
    let index = mfa_facade::audit::history::index_path(&audit);
    let (ok, out) = verify(&[], std::slice::from_ref(&audit));
    assert!(ok, "{out}");
    assert!(out.contains("history index: 3 entries checked"), "{out}");
    // An edited entry, then a missing one: each caught.
    let text = std::fs::read_to_string(&index).expect("index");
    std::fs::write(&index, text.replacen("\"Optional\"", "\"Off\"", 1)).expect("edit");
    let (ok, out) = verify(&[], std::slice::from_ref(&audit));
    assert!(!ok && out.contains("history index entry"), "{out}");
    let kept: Vec<&str> = text.lines().skip(1).collect();
    std::fs::write(&index, format!("{}\n", kept.join("\n"))).expect("drop one");
    let (ok, out) = verify(&[], std::slice::from_ref(&audit));
    assert!(!ok && out.contains("has no history index entry"), "{out}");
}

/// ExternalId on restore: history never holds it in the clear, so a
/// revision whose SNS role is not the pool's now needs it given (and Check
/// says so as an input finding); one whose role is the pool's keeps the
/// pool's current ExternalId; restoring with the same ExternalId gives
/// back the revision's etag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_keeps_the_external_id_of_the_same_role_and_needs_one_for_another() {
    const EXT_A: &str = "ext-id-history-a-6f1d2c";
    const EXT_B: &str = "ext-id-history-b-93ab7e";
    common::procs::canary::secret(EXT_A);
    common::procs::canary::secret(EXT_B);
    let root = tempfile::tempdir().expect("dir");
    let served = Served::start(&local_with_file(root.path()));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch, TEST_KEY);
    let sms = |role: &str, ext: &str| {
        let mut req = totp(pb::MfaConfiguration::Optional);
        req.user_pool_id = pool.clone();
        req.sms_mfa_configuration = Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("Your code is {####}".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some(format!("arn:aws:iam::123456789012:role/{role}")),
                external_id: Some(ext.into()),
                sns_region: Some("us-east-1".into()),
                eums_sms: None,
            }),
        });
        req
    };
    let etag_a = p
        .set_user_pool_mfa_config(sms("sns-a", EXT_A))
        .await
        .expect("set A")
        .into_inner()
        .etag;
    p.set_user_pool_mfa_config(sms("sns-b", EXT_B))
        .await
        .expect("set B");
    let h = history(&mut p, &pool).await;
    assert!(h.iter().all(|r| r.external_id_set), "{h:#?}");
    let shown = format!("{h:?}");
    assert!(!shown.contains(EXT_A) && !shown.contains(EXT_B), "{shown}");
    let revision_a = h[1].revision.clone();
    let restore = |external_id: Option<&str>| pb::RestoreUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        revision: revision_a.clone(),
        external_id: external_id.map(str::to_owned),
        ..Default::default()
    };

    // Role A is not the pool's now: the ExternalId is needed.
    let needed = p
        .restore_user_pool_mfa_config(restore(None))
        .await
        .expect_err("needs external_id");
    assert_eq!(needed.code(), Code::FailedPrecondition);
    assert_eq!(
        needed.get_details_error_info().map(|i| i.reason),
        Some("EXTERNAL_ID_REQUIRED".to_owned())
    );
    assert!(needed.message().contains("external_id"), "{needed:?}");
    let check = p
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            restore_revision: revision_a.clone(),
            ..Default::default()
        })
        .await
        .expect("check")
        .into_inner();
    assert!(!check.allowed);
    assert!(
        check
            .findings
            .iter()
            .any(|f| f.subject == "sms_mfa_configuration.sms_configuration.external_id"),
        "{:?}",
        check.findings
    );

    // Given: written, the note says so, and the etag is the revision's.
    let restored = p
        .restore_user_pool_mfa_config(restore(Some(EXT_A)))
        .await
        .expect("restore with the ExternalId")
        .into_inner();
    assert!(
        restored
            .notes
            .iter()
            .any(|n| n.contains("the external_id given")),
        "{:?}",
        restored.notes
    );
    assert_eq!(restored.etag, etag_a);
    // Now role A is the pool's: the same revision again keeps its ExternalId.
    let again = p
        .restore_user_pool_mfa_config(restore(None))
        .await
        .expect("restore keeping the current ExternalId")
        .into_inner();
    assert!(
        again
            .notes
            .iter()
            .any(|n| n.contains("current ExternalId is kept")),
        "{:?}",
        again.notes
    );
    assert_eq!(again.etag, etag_a);
}
