use super::*;

fn session(user: &str) -> Session {
    Session {
        user_pool_id: "p".into(),
        username: user.into(),
        expires_at: u64::MAX / 4,
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn survives_reopen_and_a_failed_change_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600, "owner only");
    store
        .write(|d| d.insert_session("s1", &session("u")))
        .await
        .unwrap();
    let failed: Result<()> = store
        .write(|d| {
            d.insert_session("s2", &session("u"))?;
            Err(Error::Internal("refused".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(store.read(|d| d.session_count()).await.unwrap(), 1);
    let key = store.read(|d| Ok(d.signing_key().clone())).await.unwrap();
    // The next change after a refused one is kept.
    store
        .write(|d| d.insert_session("s3", &session("u")))
        .await
        .unwrap();
    drop(store);

    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.read(|d| d.session_count()).await.unwrap(), 2);
    assert!(reopened.read(|d| d.session("s2")).await.unwrap().is_none());
    assert_eq!(
        reopened
            .read(|d| Ok(d.signing_key().clone()))
            .await
            .unwrap(),
        key
    );
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if Path::new(&p).exists() {
            assert_eq!(mode(Path::new(&p)), 0o600, "{suffix} owner only");
        }
    }
}

/// 64 writers at once: each answered only once its change is committed
/// (a new connection sees it), and together in fewer commits than changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_that_arrive_together_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let store = Arc::new(Store::open(&path).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let store = store.clone();
        let path = path.clone();
        tasks.spawn(async move {
            let key = format!("s{i}");
            store
                .write(|d| d.insert_session(&key, &session("u")))
                .await
                .unwrap();
            // Answered: so committed already, seen by any connection.
            let other = Connection::open(&path).unwrap();
            let n: i64 = other
                .query_row("SELECT COUNT(*) FROM sessions WHERE id = ?1", [&key], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 1, "{key} answered before durable");
            assert!(store.read(|d| d.session(&key)).await.unwrap().is_some());
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.changes, 64);
    assert!(stats.flushes < 64, "{stats:?}: no change shared a commit");
    assert_eq!(store.read(|d| d.session_count()).await.unwrap(), 64);
}

/// A commit that fails fails every change of its batch, and the data is as
/// it was: the next change does not carry them.
#[tokio::test]
async fn a_full_file_fails_its_changes_as_limit_exceeded_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let store = Store::open_limited(&path, Some(256 * 1024)).unwrap();
    store
        .write(|d| d.insert_session("kept", &session("u")))
        .await
        .unwrap();
    let big = "x".repeat(64 * 1024);
    let mut refused = None;
    for i in 0..16 {
        let id = format!("{big}{i}");
        if let Err(e) = store.write(|d| d.insert_session(&id, &session("u"))).await {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the bound is reached");
    assert_eq!(e.cognito_exception(), Some("LimitExceededException"), "{e}");
    assert!(store.read(|d| d.session("kept")).await.unwrap().is_some());
    // Smaller changes still fit.
    store
        .write(|d| d.drop_sessions(0, Some("kept")))
        .await
        .unwrap();
}

#[test]
fn a_corrupt_or_foreign_file_stops_start_up_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.json");
    fs::write(&path, b"{\"format\": 1, \"signing_key\": ").unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("never reset"));
    assert_eq!(
        fs::read(&path).unwrap(),
        b"{\"format\": 1, \"signing_key\": ",
        "left as it was"
    );

    fs::write(&path, br#"{"format": 99, "signing_key": "k", "pools": {}}"#).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Format { found: 99, .. })
    ));

    fs::write(&path, b"PK\x03\x04 a zip file").unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Corrupt { .. })
    ));

    // Another program's SQLite database is never written into.
    fs::remove_file(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("CREATE TABLE t (x)").unwrap();
    drop(other);
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("another program"), "{err}");

    // A later schema than this build reads.
    fs::remove_file(&path).unwrap();
    let later = Connection::open(&path).unwrap();
    later.pragma_update(None, "user_version", 99).unwrap();
    drop(later);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Format { found: 99, .. })
    ));
}

#[test]
fn a_link_in_place_of_the_data_file_or_its_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    fs::write(&target, b"").unwrap();
    let path = dir.path().join("data.db");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert!(Store::open(&path).is_err());
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("data.db-wal")).unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"", "never written through");
}

/// A data file of the JSON store is imported at the first open: its
/// pools, users (attributes, factors, TOTP secrets, passkeys), sessions
/// and signing key, and it stays beside the database.
#[tokio::test]
async fn a_json_data_file_is_imported_once_and_kept_beside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa-facade-data.json");
    let json = r#"{
      "format": 1,
      "signing_key": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
      "pools": {
        "eu-west-1_abc": {
          "id": "eu-west-1_abc", "name": "p", "region": "eu-west-1",
          "feature_plan": "PLUS",
          "state": {"alias_attributes": ["email"]},
          "mfa": {"mode": "Optional"},
          "users": {
            "alice": {
              "username": "alice", "sub": "sub-a", "status": "CONFIRMED", "enabled": true,
              "attributes": {"email": "Alice@Example.com", "email_verified": "true"},
              "mfa": {
                "sms_enabled": false, "software_token_enabled": true, "email_enabled": false,
                "web_authn_enabled": false, "preferred": "SOFTWARE_TOKEN_MFA",
                "software_token": {"secret": "JBSWY3DPEHPK3PXP", "friendly_device_name": "phone", "last_step": 7},
                "pending_secret": null, "totp_failures": 2
              },
              "web_authn_credentials": [{
                "credential_id": "c1", "friendly_credential_name": "key", "relying_party_id": "example.com",
                "authenticator_attachment": null, "authenticator_transports": ["usb"],
                "created_at_seconds": 5, "created_at_nanos": 0
              }]
            }
          }
        }
      },
      "sessions": {"sess": {"user_pool_id": "eu-west-1_abc", "username": "alice", "expires_at": 99999999999}}
    }"#;
    fs::write(&path, json).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let kept = dir.path().join("mfa-facade-data.json.json-v1");
    assert_eq!(fs::read_to_string(&kept).unwrap(), json, "kept as it was");
    let (pool, alice, by_alias, session, key) = store
        .read(|d| {
            let pool = d.pool("eu-west-1_abc")?;
            let alias = d.resolve_username(&pool, "alice@example.com")?;
            Ok((
                pool,
                d.user("eu-west-1_abc", "alice")?.unwrap(),
                alias,
                d.session("sess")?,
                d.signing_key().clone(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(pool.feature_plan, FeaturePlan::Plus);
    assert_eq!(pool.state.alias_attributes, ["email"]);
    assert_eq!(
        by_alias.as_deref(),
        Some("alice"),
        "a verified alias, any case"
    );
    let token = alice.mfa.software_token.unwrap();
    assert_eq!(token.secret.expose(), "JBSWY3DPEHPK3PXP");
    assert_eq!(token.last_step, 7);
    assert_eq!(alice.mfa.totp_failures, 2);
    assert_eq!(alice.mfa.preferred, Some(Factor::SoftwareToken));
    assert_eq!(alice.web_authn_credentials[0].credential_id, "c1");
    assert!(session.is_some());
    assert_eq!(
        key.expose(),
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    );
    drop(store);
    // The next open reads the database; nothing is imported twice.
    let again = Store::open(&path).unwrap();
    assert_eq!(
        again.read(|d| d.user_count("eu-west-1_abc")).await.unwrap(),
        1
    );
    let leftovers: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("importing"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Users come back in username order a page at a time, with their
/// attributes; a user's key is unique as the pool compares names.
#[tokio::test]
async fn users_page_in_order_with_their_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data.db")).unwrap();
    let pool = Pool {
        id: "p".into(),
        name: "p".into(),
        region: "eu-west-1".into(),
        feature_plan: FeaturePlan::Essentials,
        state: PoolSettings::default(),
        mfa: PoolMfaConfig::default(),
    };
    store
        .write(|d| {
            d.insert_pool(&pool)?;
            for i in (0..600).rev() {
                d.insert_user(
                    &pool,
                    &User {
                        username: format!("u{i:04}"),
                        sub: format!("s{i}"),
                        status: "CONFIRMED".into(),
                        enabled: true,
                        attributes: BTreeMap::from([("email".into(), format!("u{i}@x.test"))]),
                        mfa: UserMfa::default(),
                        web_authn_credentials: Vec::new(),
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let (first, rest, count, taken) = store
        .read(|d| {
            let first = d.users_after("p", None, 256)?;
            let rest = d.users_after("p", Some("u0255"), 1000)?;
            Ok((
                first,
                rest,
                d.user_count("p")?,
                d.name_taken(&pool, "U0001")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(count, 600);
    assert!(taken, "case-insensitive pool: U0001 is u0001");
    assert_eq!(first.len(), 256);
    assert_eq!(first[0].username, "u0000");
    assert_eq!(first[0].attributes["email"], "u0@x.test");
    assert_eq!(first[255].attributes["email"], "u255@x.test");
    assert_eq!(rest.len(), 344);
    assert_eq!(rest[0].username, "u0256");
    assert_eq!(rest[343].attributes["email"], "u599@x.test");
}

/// A change that panics inside its savepoint is rolled back by the next
/// write, never committed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_panicked_is_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("data.db")).unwrap());
    let panicking = store.clone();
    let joined = tokio::spawn(async move {
        panicking
            .write(|d| -> Result<()> {
                d.insert_session("half-done", &session("u"))?;
                panic!("a bug in a change");
            })
            .await
    })
    .await;
    assert!(joined.is_err(), "the task panicked");
    store
        .write(|d| d.insert_session("next", &session("u")))
        .await
        .unwrap();
    let (half, next) = store
        .read(|d| Ok((d.session("half-done")?, d.session("next")?)))
        .await
        .unwrap();
    assert!(half.is_none(), "the panicked change was committed");
    assert!(next.is_some());
}

/// A database of schema 1 (the release before devices and sign-outs) is
/// migrated at open: its data and signing key kept, the new tables there.
#[tokio::test]
async fn a_schema_1_database_is_migrated_with_its_data_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let v1 = Connection::open(&path).unwrap();
    v1.execute_batch(SCHEMA_1).unwrap();
    v1.execute(
        "INSERT INTO meta (key, value) VALUES ('signing_key', 'the-v1-key')",
        [],
    )
    .unwrap();
    v1.execute(
        "INSERT INTO sessions (id, pool_id, username, expires_at) VALUES ('s1', 'p', 'u', 99999999999)",
        [],
    )
    .unwrap();
    v1.pragma_update(None, "user_version", 1).unwrap();
    drop(v1);

    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.read(|d| Ok(d.signing_key().clone())).await.unwrap(),
        Secret::new("the-v1-key"),
        "tokens signed before the upgrade still verify"
    );
    assert_eq!(store.read(|d| d.session_count()).await.unwrap(), 1);
    store
        .write(|d| {
            d.insert_device(
                "p",
                "u",
                &StoredDevice {
                    device_key: "us-east-1_0a".into(),
                    name: None,
                    remembered: true,
                    last_ip: None,
                    created_at: 1,
                    modified_at: 1,
                    authenticated_at: None,
                },
            )?;
            d.put_signed_out("p", "u", 5)
        })
        .await
        .unwrap();
    drop(store);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::from(SCHEMA_VERSION));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read(|d| d.device_count("p", "u")).await.unwrap(), 1);
    assert_eq!(store.read(|d| d.signed_out_at("p", "u")).await.unwrap(), 5);
    // A later sign-out moves the time forward, an earlier one never back.
    store
        .write(|d| d.put_signed_out("p", "u", 3))
        .await
        .unwrap();
    assert_eq!(store.read(|d| d.signed_out_at("p", "u")).await.unwrap(), 5);
}
