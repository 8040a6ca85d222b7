//! ListUserMfaStatus (issue 19), through the real binary on the local
//! backend: a walk over 10,000 users that holds its share of the UserRead
//! quota while another caller reads beside it, resumes from a page token
//! with the same summary, stops at once when the client cancels, and leaves
//! one audit record per walk.

use crate::common;

use std::time::{Duration, Instant};

use common::procs::{Served, local_config};
use mfa_facade::proto::dev::v1 as dev;
use mfa_facade::proto::v1 as pb;
use pb::list_user_mfa_status_response::Item;
use tonic::Code;

/// UserRead for the whole account, and the walks' share of it.
const USER_READ: f64 = 2000.0;
const SHARE: f64 = 0.5;
const USERS: usize = 10_000;

fn config(extra: &str) -> String {
    config_with(USER_READ, extra)
}

fn config_with(user_read: f64, extra: &str) -> String {
    local_config(
        "ops",
        5000.0,
        5000,
        &format!(
            r#"
[limits.quota]
enabled = true
user_read = {user_read}
# The set-up's preference writes, faster than 25/s since the local store
# writes only the rows it changes: not what these tests measure.
user_resource_update = 1000.0

[limits.walk]
share = {SHARE}
max_concurrent = 2

[audit]
file = "{{dir}}/audit.jsonl"
read_level = "request_response"
{extra}
"#
        ),
    )
}

fn fixtures(ch: &tonic::transport::Channel) -> common::FixturesClient {
    dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    )
}

fn pools(ch: &tonic::transport::Channel) -> common::PoolsClient {
    pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    )
}

fn users(ch: &tonic::transport::Channel) -> common::UsersClient {
    pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    )
}

/// A pool of `n` users (`user00000`, ...), each with a phone number; the
/// first `sms` have SMS MFA on (every other one preferred), and the last
/// `disabled` are disabled.
async fn populated_pool(
    ch: &tonic::transport::Channel,
    n: usize,
    sms: usize,
    disabled: usize,
) -> String {
    let mut f = fixtures(ch);
    let pool = f
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "coverage".into(),
            ..Default::default()
        })
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    let names: Vec<String> = (0..n).map(|i| format!("user{i:05}")).collect();
    for chunk in names.chunks(1000) {
        f.create_users(dev::CreateUsersRequest {
            user_pool_id: pool.clone(),
            users: chunk
                .iter()
                .map(|name| dev::NewUser {
                    username: name.clone(),
                    attributes: [("phone_number".to_owned(), "+15555550100".to_owned())].into(),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .expect("users");
    }
    let mut u = users(ch);
    for (i, name) in names.iter().take(sms).enumerate() {
        u.admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.clone(),
            username: name.clone(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(i % 2 == 0),
            }),
            ..Default::default()
        })
        .await
        .expect("sms");
    }
    for name in names.iter().rev().take(disabled) {
        f.set_user_enabled(dev::SetUserEnabledRequest {
            user_pool_id: pool.clone(),
            username: name.clone(),
            enabled: false,
        })
        .await
        .expect("disable");
    }
    pool
}

/// A walk's messages, each with when it arrived.
struct Walked {
    users: Vec<(Instant, pb::UserMfaStatus)>,
    summary: Option<pb::UserMfaCoverage>,
    end: Result<(), tonic::Status>,
}

async fn walk(ch: &tonic::transport::Channel, pool: &str, page_token: &str) -> Walked {
    let mut stream = pools(ch)
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.into(),
            filter: String::new(),
            page_token: page_token.into(),
        })
        .await
        .expect("walk opens")
        .into_inner();
    let mut out = Walked {
        users: Vec::new(),
        summary: None,
        end: Ok(()),
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(60), stream.message()).await {
            Err(_) => panic!("the walk stalled for 60 s"),
            Ok(Ok(None)) => return out,
            Ok(Err(status)) => {
                out.end = Err(status);
                return out;
            }
            Ok(Ok(Some(m))) => match m.item {
                Some(Item::User(u)) => out.users.push((Instant::now(), u)),
                Some(Item::Summary(s)) => out.summary = Some(s),
                None => panic!("an empty message"),
            },
        }
    }
}

fn walk_records(served: &Served) -> Vec<serde_json::Value> {
    std::fs::read_to_string(served.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| {
            r["method"] == "cognito.mfa.v1.UserPoolMfaService/ListUserMfaStatus"
        })
        .collect()
}

/// The walk records once there are `n` (what there are after 5 s: the
/// caller's assertion names what is missing).
fn wait_walk_records(served: &Served, n: usize) -> Vec<serde_json::Value> {
    crate::common::wait::poll(Duration::from_secs(5), || {
        Some(walk_records(served)).filter(|r| r.len() >= n)
    })
    .unwrap_or_else(|| walk_records(served))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_over_10000_users_holds_its_quota_share_and_resumes() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    let pool = populated_pool(&ch, USERS, 100, 10).await;

    // Another caller reads users as fast as it can beside the walk: both
    // draw on the one UserRead quota.
    let reader = {
        let (ch, pool) = (ch.clone(), pool.clone());
        tokio::spawn(async move {
            let mut u = users(&ch);
            let (mut admitted, mut refused) = (0u64, 0u64);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                let r = u
                    .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
                        user_pool_id: pool.clone(),
                        username: format!("user{:05}", admitted % 5000),
                    })
                    .await;
                match r {
                    Ok(_) => admitted += 1,
                    Err(s) if s.code() == Code::ResourceExhausted => refused += 1,
                    Err(s) => panic!("the reader failed: {s:?}"),
                }
            }
            (admitted, refused, started, started.elapsed())
        })
    };
    let full = walk(&ch, &pool, "").await;
    let (admitted, refused, read_from, read_for) = reader.await.expect("reader");
    full.end.as_ref().expect("the walk slows, it does not fail");
    assert_eq!(full.users.len(), USERS, "one message per user");
    for (i, (_, u)) in full.users.iter().enumerate() {
        assert_eq!(u.index, i as u64 + 1, "the count in each message");
    }
    assert_eq!(full.users[0].1.username, "user00000");
    assert!(!full.users[0].1.sub.is_empty());
    let summary = full.summary.clone().expect("a summary last");
    assert_eq!(summary.users, USERS as u64);
    assert_eq!(summary.enabled_factors.get("SMS_MFA"), Some(&100));
    assert_eq!(summary.preferred_factors.get("SMS_MFA"), Some(&50));
    assert_eq!(summary.without_mfa, (USERS - 100) as u64);
    assert_eq!(summary.disabled, 10);
    // The pool enables no factor: under ON no enabled user could sign in
    // (a user's SMS MFA needs the pool's too), and none could set up TOTP.
    assert_eq!(
        (
            summary.prompted_if_on,
            summary.setup_required_if_on,
            summary.cannot_sign_in_if_on
        ),
        (0, 0, (USERS - 10) as u64)
    );

    // The walk's admitted rate: at most its share, plus one second's burst.
    let elapsed = full.users[USERS - 1].0 - full.users[0].0;
    let rate = (USERS - 1) as f64 / elapsed.as_secs_f64();
    let share = USER_READ * SHARE;
    let reader_rate = admitted as f64 / read_for.as_secs_f64();
    println!(
        "walk: {USERS} users in {:.2} s = {rate:.0} users/s (share {share:.0}/s of UserRead {USER_READ:.0}/s); \
         reader beside it: {reader_rate:.0} admitted/s, {refused} refused",
        elapsed.as_secs_f64()
    );
    assert!(
        rate <= share * 1.05 + share / elapsed.as_secs_f64(),
        "the walk took {rate:.0}/s, more than its share {share:.0}/s"
    );
    assert!(admitted > 0, "the reader was starved");
    // Together, walk and reader stayed within the one UserRead quota.
    let read_until = read_from + read_for;
    let walked_then = full.users.iter().filter(|(t, _)| *t <= read_until).count() as f64;
    let allowed = USER_READ + USER_READ * read_for.as_secs_f64() * 1.05;
    println!(
        "in the reader's {:.1} s: reader {admitted} + walk {walked_then} admitted, the quota allows {allowed:.0}",
        read_for.as_secs_f64()
    );
    assert!(
        admitted as f64 + walked_then <= allowed,
        "walk and reader together took more than UserRead"
    );

    // Resume from the 5,000th message: the rest, and the same summary.
    let token = full.users[4999].1.page_token.clone();
    let rest = walk(&ch, &pool, &token).await;
    rest.end.expect("resumed walk");
    assert_eq!(rest.users.len(), USERS - 5000);
    assert_eq!(rest.users[0].1.index, 5001);
    assert_eq!(rest.users[0].1.username, "user05000");
    assert_eq!(
        rest.summary,
        Some(summary),
        "the summary covers the whole pool"
    );

    // The last message's token resumes to the summary alone.
    let last = full.users[USERS - 1].1.page_token.clone();
    let done = walk(&ch, &pool, &last).await;
    assert!(done.users.is_empty() && done.summary.is_some());

    // One record per walk, each with how far it got.
    let records = wait_walk_records(&served, 3);
    assert_eq!(records.len(), 3, "{records:#?}");
    assert_eq!(records[0]["outcome"]["code"], "OK");
    assert_eq!(records[0]["response"]["sent"], USERS as u64);
    assert_eq!(records[1]["request"]["resumed"], true);
    assert_eq!(records[1]["response"]["summary"]["users"], USERS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_walk_stops_at_once_and_frees_its_slot() {
    // UserRead 200/s: the walk's share is 100/s with a burst of 100, so a
    // walk that went on after the cancel would read 100 more each second.
    let served = Served::start(&config_with(200.0, ""));
    let ch = served.channel().await;
    let pool = populated_pool(&ch, 3000, 0, 0).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut stream = pools(&ch)
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.clone(),
            ..Default::default()
        })
        .await
        .expect("walk")
        .into_inner();
    for _ in 0..10 {
        stream.message().await.expect("message").expect("a user");
    }
    let cancelled_at = Instant::now();
    drop(stream);
    let records = wait_walk_records(&served, 1);
    let stopped_in = cancelled_at.elapsed();
    assert_eq!(records.len(), 1, "one record for the walk");
    let r = &records[0];
    assert_eq!(r["outcome"]["code"], "CANCELLED", "{r}");
    let sent = r["response"]["sent"].as_u64().expect("sent");
    // The record comes (the walk has ended) within moments of the cancel,
    // not after its 3,000 users (30 s at 100/s), and the walk read no more
    // than its burst allowed before it: the 10 messages and what HTTP/2 had
    // in flight came out of the first 100 cells.
    assert!(
        stopped_in < Duration::from_secs(1),
        "the walk's record came {stopped_in:?} after the cancel"
    );
    assert!(
        sent <= 100 + 10,
        "the walk went on after the cancel: {sent} users read"
    );
    println!(
        "cancelled after 10 messages: the walk had read {sent} users (its burst is 100), its record {stopped_in:?} after the cancel"
    );

    // Its slot is free again: two walks at once (max_concurrent = 2), a third refused.
    let open = || {
        let ch = ch.clone();
        let pool = pool.clone();
        async move {
            pools(&ch)
                .list_user_mfa_status(pb::ListUserMfaStatusRequest {
                    user_pool_id: pool,
                    ..Default::default()
                })
                .await
        }
    };
    let a = open().await.expect("first");
    let b = open().await.expect("second");
    let third = open().await.expect_err("a third walk at once");
    assert_eq!(third.code(), Code::ResourceExhausted);
    assert!(
        third.message().contains("walk:concurrent"),
        "{}",
        third.message()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprinted_usernames_leave_only_the_sub_and_bad_input_names_its_field() {
    let served = Served::start(&config("usernames = \"fingerprint\""));
    let ch = served.channel().await;
    let pool = populated_pool(&ch, 3, 0, 0).await;
    let walked = walk(&ch, &pool, "").await;
    walked.end.expect("walk");
    assert_eq!(walked.users.len(), 3);
    for (_, u) in &walked.users {
        assert!(u.username.is_empty(), "{u:?}");
        assert_eq!(u.sub.len(), 36, "{u:?}");
    }
    let token = walked.users[0].1.page_token.clone();
    for (req, field) in [
        (
            pb::ListUserMfaStatusRequest {
                user_pool_id: pool.clone(),
                filter: "email == nope".into(),
                page_token: String::new(),
            },
            "filter",
        ),
        (
            pb::ListUserMfaStatusRequest {
                user_pool_id: pool.clone(),
                filter: "username = \"user00001\"".into(),
                page_token: token.clone(),
            },
            "page_token",
        ),
        (
            pb::ListUserMfaStatusRequest {
                user_pool_id: pool.clone(),
                filter: String::new(),
                page_token: "x".repeat(9000),
            },
            "page_token",
        ),
        (
            pb::ListUserMfaStatusRequest {
                user_pool_id: "not a pool".into(),
                ..Default::default()
            },
            "user_pool_id",
        ),
    ] {
        let err = pools(&ch)
            .list_user_mfa_status(req)
            .await
            .expect_err("bad input");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    // A filter narrows the walk.
    let mut stream = pools(&ch)
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.clone(),
            filter: "username = \"user00001\"".into(),
            page_token: String::new(),
        })
        .await
        .expect("filtered")
        .into_inner();
    let (mut n, mut summary) = (0, None);
    while let Some(m) = stream.message().await.expect("message") {
        if let Some(Item::Summary(s)) = m.item {
            summary = Some(s);
        } else {
            n += 1;
        }
    }
    assert_eq!(n, 1);
    assert_eq!(summary.expect("the walk ends with its summary").users, 1);
}

/// Issue 31: the walk's cursor was unsigned and its counters came from the
/// caller: `enabled_factors.SMS_MFA = 2^64-1` panicked the walk's task after
/// it had streamed users, with no summary, record or log line. Now every
/// forged or edited page_token is INVALID_ARGUMENT naming the field, leaves
/// its record, and reads nothing; a token is accepted by any replica that
/// holds the same `[server] secret_file`, and by no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_walk_cursors_are_refused_and_recorded_and_a_shared_secret_resumes_anywhere() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let secret_dir = tempfile::tempdir().expect("dir");
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, "a-deployment-secret-of-more-than-32-bytes\n").expect("secret");
    let with_secret = |file: &std::path::Path| {
        config_with(
            USER_READ,
            &format!("[server]\nsecret_file = \"{}\"", file.display()),
        )
    };
    let served = Served::start(&with_secret(&secret));
    let ch = served.channel().await;
    let pool = populated_pool(&ch, 5, 2, 0).await;
    let walked = walk(&ch, &pool, "").await;
    walked.end.expect("walk");
    assert_eq!(walked.users.len(), 5);
    let honest = walked.users[1].1.page_token.clone();
    let (body, mac) = honest.rsplit_once('.').expect("a token is body.mac");

    // The issue's token: the cursor's JSON with overflowing counters, as
    // the old unsigned format carried it.
    let mut cursor: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64")).expect("json");
    cursor["c"]["enabled_factors"]["SMS_MFA"] = serde_json::json!(u64::MAX);
    cursor["n"] = serde_json::json!(u64::MAX - 2);
    cursor["c"]["users"] = serde_json::json!(u64::MAX - 2);
    let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).expect("json"));
    let other_pool = populated_pool(&ch, 1, 0, 0).await;
    let other_token = walk(&ch, &other_pool, "").await.users[0]
        .1
        .page_token
        .clone();
    let cases = [
        ("unsigned, overflowing", forged_body.clone()),
        (
            "edited under the honest MAC",
            format!("{forged_body}.{mac}"),
        ),
        (
            "MAC changed",
            format!(
                "{body}.{}{}",
                if mac.starts_with('A') { 'B' } else { 'A' },
                &mac[1..]
            ),
        ),
        ("another pool's cursor", other_token),
    ];
    // The two walks so far, once their records are written (a walk's
    // record lands just after its stream ends).
    let before = wait_walk_records(&served, 2).len();
    assert_eq!(before, 2);
    for (what, token) in &cases {
        let err = pools(&ch)
            .list_user_mfa_status(pb::ListUserMfaStatusRequest {
                user_pool_id: pool.clone(),
                filter: String::new(),
                page_token: token.clone(),
            })
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message().contains("page_token"),
            "{what}: {}",
            err.message()
        );
    }
    // Each refusal left its record, with the code; the server lives on.
    let records = wait_walk_records(&served, before + cases.len());
    let refused: Vec<_> = records[before..]
        .iter()
        .filter(|r| r["outcome"]["code"] == "INVALID_ARGUMENT")
        .collect();
    assert_eq!(refused.len(), cases.len(), "{:#?}", &records[before..]);
    let resumed = walk(&ch, &pool, &honest).await;
    resumed.end.expect("the honest token still resumes");
    assert_eq!(resumed.users.len(), 3);
    assert_eq!(resumed.summary.expect("summary").users, 5);
    println!(
        "forged cursors: {} of {} refused as INVALID_ARGUMENT, each recorded; the honest one resumed",
        refused.len(),
        cases.len()
    );

    // Another replica with the same secret takes the token (its MAC holds:
    // it gets as far as the pool, which its own data file lacks); one
    // with another secret refuses it as not its own.
    let twin = Served::start(&with_secret(&secret));
    let twin_ch = twin.channel().await;
    let err = pools(&twin_ch)
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.clone(),
            filter: String::new(),
            page_token: honest.clone(),
        })
        .await
        .expect_err("no such pool on the twin");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "the twin accepted the cursor: {err:?}"
    );
    let other_secret = secret_dir.path().join("other");
    std::fs::write(
        &other_secret,
        "another-deployment-secret-of-32-bytes-or-more",
    )
    .expect("secret");
    let stranger = Served::start(&with_secret(&other_secret));
    let err = pools(&stranger.channel().await)
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.clone(),
            filter: String::new(),
            page_token: honest,
        })
        .await
        .expect_err("not this deployment's cursor");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

// Moved from the conformance suite when the walk left AdminGetUser for
// AdminGetUserAuthFactors, which moto 5.2.5 does not serve: the cognito
// backend's requests are in cognito_wire.rs
// (`the_walk_pages_list_users_by_60_with_the_filter`).

/// A walk's users and summary; the stream must end cleanly.
async fn walk_all(
    s: &common::Stack,
    pool: &str,
    filter: &str,
    page_token: &str,
) -> (Vec<pb::UserMfaStatus>, pb::UserMfaCoverage) {
    use pb::list_user_mfa_status_response::Item;
    let mut stream = s
        .pools
        .clone()
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.into(),
            filter: filter.into(),
            page_token: page_token.into(),
        })
        .await
        .expect("walk")
        .into_inner();
    let (mut users, mut summary) = (Vec::new(), None);
    while let Some(m) = stream.message().await.expect("walk message") {
        match m.item.expect("an item") {
            Item::User(u) => {
                assert!(summary.is_none(), "the summary comes last");
                users.push(u);
            }
            Item::Summary(c) => summary = Some(c),
        }
    }
    (users, summary.expect("a summary"))
}

/// ListUserMfaStatus walks ListUsers and AdminGetUserAuthFactors: one message per user
/// with the count so far and the user's factors, then the summary; a
/// message's page_token resumes after it with the same summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coverage_walk_reads_every_user_and_resumes() {
    let s = &common::Stack::local().await;
    let pool = s.create_pool().await;
    for name in ["ann", "bob", "cyd"] {
        s.create_user_with_token(&pool, name, &[("phone_number", "+15555550101")])
            .await;
    }
    s.users
        .clone()
        .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.clone(),
            username: "bob".into(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect("bob's SMS");
    let (users, summary) = walk_all(s, &pool, "", "").await;
    let mut names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["ann", "bob", "cyd"]);
    assert_eq!(users.iter().map(|u| u.index).collect::<Vec<_>>(), [1, 2, 3]);
    let bob = users.iter().find(|u| u.username == "bob").expect("bob");
    assert_eq!(bob.user_mfa_setting_list, ["SMS_MFA"]);
    assert_eq!(bob.preferred_mfa_setting.as_deref(), Some("SMS_MFA"));
    assert!(bob.enabled && !bob.sub.is_empty(), "{bob:?}");
    assert_eq!(bob.user_status, "CONFIRMED");
    assert_eq!(summary.users, 3);
    assert_eq!(summary.enabled_factors.get("SMS_MFA"), Some(&1));
    assert_eq!(summary.preferred_factors.get("SMS_MFA"), Some(&1));
    assert_eq!(summary.without_mfa, 2);
    // The pool enables no factor: under ON nobody could sign in (bob's SMS
    // MFA needs the pool's too).
    assert_eq!(
        (
            summary.prompted_if_on,
            summary.setup_required_if_on,
            summary.cannot_sign_in_if_on
        ),
        (0, 0, 3)
    );

    let (rest, again) = walk_all(s, &pool, "", &users[0].page_token).await;
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].index, 2);
    assert_eq!(rest[0].username, users[1].username);
    assert_eq!(again, summary);
}

/// A filter narrows the walk to the users ListUsers finds with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coverage_walk_follows_the_filter() {
    let s = &common::Stack::local().await;
    let pool = s.create_pool().await;
    for name in ["dee", "dan", "eve"] {
        s.create_user_with_token(&pool, name, &[]).await;
    }
    let (users, summary) = walk_all(s, &pool, "username = \"eve\"", "").await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "eve");
    assert_eq!(summary.users, 1);
}

/// Issue 32: what each user's next sign-in would meet under MFA ON, by the
/// developer guide's rule, and the factors users have registered, through
/// the binary on the local backend. The pool enables SMS and TOTP MFA: a
/// user with a phone_number is prompted; one with only an email (no email
/// MFA in the pool), one with nothing and one with a passkey (registered,
/// not passkey MFA) are sent to set-up; a disabled user is counted apart.
/// The pool recovers passwords by phone only: the prompted user, whose
/// phone is verified, would lose password recovery under ON (SMS MFA
/// disqualifies SMS recovery, AccountRecoverySettingType).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_says_who_would_be_prompted_set_up_or_locked_out_under_on() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    let mut f = fixtures(&ch);
    let pool = f
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "if-on".into(),
            account_recovery: vec![dev::RecoveryOption::VerifiedPhoneNumber as i32],
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::WebAuthn as i32,
            ],
            ..Default::default()
        })
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    pools(&ch)
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: None,
                sms_configuration: Some(pb::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: None,
                    sns_region: None,
                    eums_sms: None,
                }),
            }),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            web_authn_configuration: Some(pb::WebAuthnConfiguration {
                relying_party_id: Some("auth.example.com".into()),
                user_verification: pb::UserVerification::Preferred as i32,
                factor_configuration: pb::WebAuthnFactorConfiguration::SingleFactor as i32,
            }),
            ..Default::default()
        })
        .await
        .expect("SMS and TOTP");
    let user = |name: &str, attributes: &[(&str, &str)], enabled: bool| dev::NewUser {
        username: name.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        enabled: Some(enabled),
        ..Default::default()
    };
    f.create_users(dev::CreateUsersRequest {
        user_pool_id: pool.clone(),
        users: vec![
            user(
                "phone",
                &[
                    ("phone_number", "+15555550100"),
                    ("phone_number_verified", "true"),
                ],
                true,
            ),
            user(
                "email",
                &[("email", "e@example.com"), ("email_verified", "true")],
                true,
            ),
            user("bare", &[], true),
            user("passkey", &[], true),
            user("gone", &[("phone_number", "+15555550101")], false),
        ],
    })
    .await
    .expect("users");
    f.register_web_authn_credential(dev::RegisterWebAuthnCredentialRequest {
        user_pool_id: pool.clone(),
        username: "passkey".into(),
        friendly_credential_name: "YubiKey".into(),
        relying_party_id: "auth.example.com".into(),
        authenticator_attachment: None,
        authenticator_transports: Vec::new(),
    })
    .await
    .expect("passkey");
    let walked = walk(&ch, &pool, "").await;
    walked.end.expect("the walk ends cleanly");
    let by_name: std::collections::BTreeMap<String, pb::UserMfaStatus> = walked
        .users
        .into_iter()
        .map(|(_, u)| (u.username.clone(), u))
        .collect();
    let if_on = |name: &str| pb::IfMfaOn::try_from(by_name[name].if_mfa_on).ok();
    assert_eq!(if_on("phone"), Some(pb::IfMfaOn::Prompted));
    assert_eq!(if_on("email"), Some(pb::IfMfaOn::Setup));
    assert_eq!(if_on("bare"), Some(pb::IfMfaOn::Setup));
    assert_eq!(if_on("passkey"), Some(pb::IfMfaOn::Setup));
    assert_eq!(if_on("gone"), Some(pb::IfMfaOn::Unspecified));
    assert!(by_name["phone"].has_phone_number && !by_name["phone"].has_email);
    assert!(by_name["email"].has_email && !by_name["email"].has_phone_number);
    assert!(
        by_name["passkey"]
            .configured_user_auth_factors
            .contains(&"WEB_AUTHN".to_owned()),
        "{:?}",
        by_name["passkey"]
    );
    let summary = walked.summary.expect("summary");
    println!("if MFA were ON: {summary:?}");
    assert_eq!(summary.users, 5);
    assert_eq!(
        (
            summary.prompted_if_on,
            summary.setup_required_if_on,
            summary.cannot_sign_in_if_on,
            summary.disabled
        ),
        (1, 3, 0, 1)
    );
    assert_eq!(summary.configured_factors.get("WEB_AUTHN"), Some(&1));
    let losing: Vec<&str> = by_name
        .iter()
        .filter(|(_, u)| u.loses_recovery_if_on)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(losing, ["phone"], "email recovery is not the pool's");
    assert_eq!(summary.recovery_lost_if_on, 1);
}
