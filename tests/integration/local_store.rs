//! The local backend's SQLite store through the release binary: SIGKILL
//! under concurrent writers loses no answered change and leaves a database
//! that opens. (The import of an earlier release's JSON data file, through
//! a first run, is in cli.rs.)

use std::time::Duration;

use mfa_facade::proto::dev::v1 as dev;
use mfa_facade::proto::v1 as pb;
use tonic::Code;

use crate::common::{
    self,
    procs::{Served, local_config},
};

fn users(ch: &tonic::transport::Channel) -> common::UsersClient {
    pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    )
}

/// 600 concurrent preference changes, each for a user of its own; the
/// server is SIGKILLed after 200 are answered. Restarted on the same file,
/// every change answered OK is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_concurrent_writers_loses_no_answered_change() {
    const USERS: usize = 600;
    const KILL_AT: usize = 200;
    let data = tempfile::tempdir().expect("data dir");
    let file = data.path().join("data.db");
    let config = local_config("tests", 1_000_000.0, 1_000_000, "")
        .replace("{dir}/data.json", &file.display().to_string());
    let mut served = Served::start(&config);
    let ch = served.channel().await;
    let pool = common::procs::local_pool(&ch, None).await;
    let names: Vec<String> = (0..USERS).map(|i| format!("user{i:04}")).collect();
    let mut f = dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    );
    f.create_users(dev::CreateUsersRequest {
        user_pool_id: pool.clone(),
        users: names
            .iter()
            .map(|n| dev::NewUser {
                username: n.clone(),
                attributes: [("phone_number".to_owned(), "+15555550100".to_owned())].into(),
                ..Default::default()
            })
            .collect(),
    })
    .await
    .expect("users");

    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    for name in names.clone() {
        let (mut u, pool, answered) = (users(&ch), pool.clone(), answered.clone());
        calls.spawn(async move {
            let r = u
                .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
                    user_pool_id: pool,
                    username: name.clone(),
                    sms_mfa_settings: Some(pb::SmsMfaSettings {
                        enabled: Some(true),
                        preferred_mfa: Some(true),
                    }),
                    ..Default::default()
                })
                .await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (name, r.map(|_| ()).map_err(|e| e.code()))
        });
    }
    common::wait::until_true("the writes to be answered", Duration::from_secs(60), || {
        answered.load(std::sync::atomic::Ordering::SeqCst) >= KILL_AT
    });
    served.kill();
    let mut ok = Vec::new();
    let mut failed = 0;
    while let Some(done) = calls.join_next().await {
        match done.expect("task") {
            (name, Ok(())) => ok.push(name),
            (_, Err(code)) => {
                assert!(
                    matches!(code, Code::Unavailable | Code::Unknown | Code::Cancelled),
                    "a write failed with {code:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(ok.len() >= KILL_AT, "{} answered OK", ok.len());

    // The same file, a new process: it opens, and every answered change is in it.
    let restarted = Served::start(&config);
    let mut u = users(&restarted.channel().await);
    let mut missing = Vec::new();
    for name in &ok {
        let settings = u
            .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
                user_pool_id: pool.clone(),
                username: name.clone(),
            })
            .await
            .expect("read after restart")
            .into_inner();
        if settings.preferred_mfa_setting.as_deref() != Some("SMS_MFA") {
            missing.push(name.clone());
        }
    }
    println!(
        "SIGKILL after {KILL_AT} answers: {} answered OK, {failed} cut off; answered but missing after restart: {}",
        ok.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "answered but lost: {missing:?}");
}

/// After SIGTERM and its drain, the data file alone holds every change:
/// the WAL is folded into it, so a copy of the file is a whole copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_stop_leaves_every_change_in_the_data_file_itself() {
    let data = tempfile::tempdir().expect("data dir");
    let file = data.path().join("data.db");
    let config = local_config("tests", 1_000.0, 1_000, "")
        .replace("{dir}/data.json", &file.display().to_string());
    let mut served = Served::start(&config);
    let ch = served.channel().await;
    let pool = common::procs::local_pool(&ch, Some("alice")).await;
    users(&ch)
        .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.clone(),
            username: "alice".into(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect("preference");
    drop(ch);
    assert!(served.terminate().success());
    let wal = data.path().join("data.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_bytes, 0, "the WAL is folded into the file");
    // The file alone, copied where no WAL is.
    let copy = tempfile::tempdir().expect("copy dir");
    std::fs::copy(&file, copy.path().join("copy.db")).expect("copy");
    let conn = rusqlite::Connection::open(copy.path().join("copy.db")).expect("open the copy");
    let preferred: String = conn
        .query_row(
            "SELECT preferred FROM factors WHERE pool_id = ?1 AND username = 'alice'",
            [&pool],
            |r| r.get(0),
        )
        .expect("alice's factors in the file itself");
    assert_eq!(preferred, "SMS_MFA");
}
