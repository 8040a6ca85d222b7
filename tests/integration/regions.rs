//! Every Region from one deployment (issue 20, part 1): the cognito backend
//! sends each call to its pool's Region — the pool id's prefix, or the
//! access token's issuer — through one SDK client per Region, against two
//! moto servers standing in for us-east-1 and eu-west-1
//! (`backend.region_endpoints`); a pool of a Region outside
//! `backend.regions` is refused before anything is sent. And every account:
//! a pool of `[[backend.accounts]]` is served with that account's role,
//! assumed through a stub STS on loopback with its ExternalId.

use crate::common;

use std::{collections::BTreeMap, process::Command, time::Duration};

use aws_sdk_cognitoidentityprovider as cip;
use common::procs::free_port;
use mfa_facade::{backend::cognito::CognitoBackend, config::BackendConfig, proto::v1 as pb};
use tonic::Code;
use tonic_types::StatusExt;

/// A moto_server of its own, on a free loopback port; killed on drop.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("moto_server is required ({e}); scripts/test.sh installs it")
            });
        let url = format!("http://127.0.0.1:{port}");
        crate::common::wait::until_true("moto_server to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, url }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sdk(region: &str, url: &str) -> cip::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(url)
        .credentials_provider(common::test_credentials())
        .load()
        .await;
    cip::Client::new(&config)
}

async fn new_pool(sdk: &cip::Client) -> String {
    sdk.create_user_pool()
        .pool_name(format!("pool-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("pool id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_goes_to_its_pools_region() {
    let (east, west) = (Moto::start(), Moto::start());
    let (east_sdk, west_sdk) = (
        sdk("us-east-1", &east.url).await,
        sdk("eu-west-1", &west.url).await,
    );
    let east_pool = new_pool(&east_sdk).await;
    let west_pool = new_pool(&west_sdk).await;
    assert!(east_pool.starts_with("us-east-1_") && west_pool.starts_with("eu-west-1_"));

    let settings = BackendConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(east.url.clone()),
        regions: vec!["eu-west-1".into()],
        region_endpoints: BTreeMap::from([("eu-west-1".to_owned(), west.url.clone())]),
        max_attempts: 1,
        ..BackendConfig::default()
    };
    let backend = CognitoBackend::connect(&settings, Some(common::test_credentials())).await;
    assert_eq!(backend.regions(), ["us-east-1", "eu-west-1"]);
    let (_server, channel) = common::start_cognito(settings).await;
    let key = || common::ApiKey::new(common::TEST_KEY);
    let mut pools = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        channel.clone(),
        key(),
    );
    let mut users =
        pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(channel, key());

    // A pool change in eu-west-1 lands on eu-west-1's server, not us-east-1's.
    pools
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: west_pool.clone(),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        })
        .await
        .expect("set in eu-west-1");
    let stored = west_sdk
        .get_user_pool_mfa_config()
        .user_pool_id(&west_pool)
        .send()
        .await
        .expect("read eu-west-1 directly");
    assert_eq!(
        stored.mfa_configuration().map(|m| m.as_str()),
        Some("OPTIONAL")
    );
    let elsewhere = east_sdk
        .get_user_pool_mfa_config()
        .user_pool_id(&west_pool)
        .send()
        .await;
    assert!(elsewhere.is_err(), "us-east-1's server has no such pool");
    // And us-east-1's pool through the same facade.
    let east_config = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: east_pool.clone(),
        })
        .await
        .expect("get in us-east-1")
        .into_inner();
    assert_eq!(
        east_config.mfa_configuration,
        pb::MfaConfiguration::Off as i32
    );

    // An access-token call goes to the Region of the token's pool.
    let token = common::moto_user_with_token(&west_sdk, &west_pool, "wren", &[]).await;
    let settings = users
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: token,
        })
        .await
        .expect("GetUser in eu-west-1")
        .into_inner();
    assert_eq!(settings.username, "wren");

    // A Region outside backend.regions: refused, nothing sent.
    let err = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "ap-south-1_AbCdEf123".into(),
        })
        .await
        .expect_err("not served");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason),
        Some("REGION_NOT_SERVED".to_owned())
    );
    assert!(
        err.message()
            .contains("backend.regions: us-east-1, eu-west-1"),
        "{}",
        err.message()
    );
}

/// A stub STS: answers AssumeRole and records each request's form body.
/// A session without a SourceIdentity gets [`ASSUMED_KEY`]; one with a
/// SourceIdentity gets `ASIASTUB` and the request's index in the log (4
/// digits), so a test can tell which session signed a request.
async fn stub_sts() -> common::stub::Stub {
    common::stub::Stub::start(|n, seen| {
        let answer = if seen.body.contains("SourceIdentity=") {
            ASSUMED.replace(ASSUMED_KEY, &format!("ASIASTUB{:04}", n - 1))
        } else {
            ASSUMED.to_owned()
        };
        common::stub::Reply::new(200, answer).header("content-type", "text/xml")
    })
    .await
}

const ASSUMED_KEY: &str = "ASIASTUBASSUMED00001";
const ASSUMED: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIASTUBASSUMED00001</AccessKeyId>
      <SecretAccessKey>stub-secret-access-key</SecretAccessKey>
      <SessionToken>stub-session-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROASTUB:mfa-facade</AssumedRoleId>
      <Arn>arn:aws:sts::222233334444:assumed-role/mfa-facade/mfa-facade</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>stub-sts-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_pools_are_served_with_its_assumed_role() {
    let assumed = stub_sts().await;
    let sts_url = assumed.url.clone();
    let proxy = common::RecordingProxy::start(common::moto_url()).await;
    let moto = common::moto_sdk().await;
    let (prod, dev) = (new_pool(&moto).await, new_pool(&moto).await);
    let dir = tempfile::tempdir().expect("dir");
    let external_id = dir.path().join("external-id");
    std::fs::write(&external_id, "ext-7f3a-prod\n").expect("external id");
    common::procs::canary::secret("ext-7f3a-prod");
    let settings = BackendConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(proxy.url()),
        max_attempts: 1,
        accounts: vec![mfa_facade::backend::settings::AccountConfig {
            name: "prod".into(),
            user_pools: vec![prod.clone()],
            role_arn: "arn:aws:iam::222233334444:role/mfa-facade".into(),
            external_id_file: Some(external_id),
            session_name: "mfa-facade".into(),
            sts_endpoint_url: Some(sts_url),
        }],
        ..BackendConfig::default()
    };
    let backend = CognitoBackend::connect(&settings, Some(common::test_credentials()))
        .await
        .with_accounts(&settings.accounts)
        .await
        .expect("accounts");
    let health = backend.account_credentials().await;
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].0, "prod");
    health[0].1.as_ref().expect("the role was assumed");
    let (_server, channel) = common::start_cognito(settings).await;
    // Health names the account: SERVING once its role is assumed.
    let health_client = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    common::wait::until_async("the account to be SERVING", Duration::from_secs(10), || {
        let mut health_client = health_client.clone();
        async move {
            let status = health_client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "mfa-facade.account.prod".into(),
                })
                .await
                .map(|r| r.into_inner().status);
            (status.ok() == Some(serving)).then_some(())
        }
    })
    .await;
    let before = assumed.count();
    let mut pools = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        channel,
        common::ApiKey::new(common::TEST_KEY),
    );
    for pool in [&prod, &dev, &prod] {
        pools
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            })
            .await
            .expect("get");
    }
    let signed: Vec<(String, String)> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.operation == "GetUserPoolMfaConfig")
        .map(|r| {
            (
                r.body["UserPoolId"].as_str().unwrap_or("").to_owned(),
                r.access_key,
            )
        })
        .collect();
    assert_eq!(
        signed,
        [
            (prod.clone(), ASSUMED_KEY.to_owned()),
            (dev.clone(), "testing".to_owned()),
            (prod.clone(), ASSUMED_KEY.to_owned()),
        ],
        "the account's pool with its role, the other with the base chain"
    );
    let requests: Vec<String> = assumed.seen().into_iter().map(|r| r.body).collect();
    assert!(!requests.is_empty());
    for r in &requests {
        assert!(r.contains("Action=AssumeRole"), "{r}");
        assert!(
            r.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A222233334444%3Arole%2Fmfa-facade"),
            "{r}"
        );
        assert!(r.contains("ExternalId=ext-7f3a-prod"), "{r}");
        assert!(r.contains("RoleSessionName=mfa-facade"), "{r}");
    }
    // The calls assumed it once, then kept the credentials.
    assert_eq!(requests.len() - before, 1, "{requests:#?}");
}

/// Issue 31, part 7: `[backend] source_identity` (through the binary, a
/// stub STS and moto behind a recording proxy on loopback). Each caller's
/// admin calls are signed in a role session of its own whose STS
/// SourceIdentity names it (a principal STS would not take as it is,
/// mapped to a valid one), one AssumeRole per caller while its session is
/// kept, at most `max_source_identity_sessions` kept; the record names the
/// SourceIdentity; a pool no account serves is refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_is_named_in_its_own_role_session() {
    let assumed = stub_sts().await;
    let sts_url = assumed.url.clone();
    let proxy = common::RecordingProxy::start(common::moto_url()).await;
    let moto = common::moto_sdk().await;
    let (prod, unserved) = (new_pool(&moto).await, new_pool(&moto).await);
    let callers = [
        ("billing-svc", "si-key-billing-0123456789abcdef"),
        (
            "spiffe://acme/ns/payments",
            "si-key-payments-0123456789abcde",
        ),
        ("ops", "si-key-ops-0123456789abcdef012345"),
    ];
    let mut config = String::from(&format!(
        r#"
[backend]
kind = "cognito"
region = "us-east-1"
endpoint_url = "{proxy}"
max_attempts = 1
source_identity = true
max_source_identity_sessions = 2

[[backend.accounts]]
name = "prod"
user_pools = ["{prod}"]
role_arn = "arn:aws:iam::222233334444:role/mfa-facade"
sts_endpoint_url = "{sts_url}"

[audit]
file = "{{dir}}/audit.jsonl"

[[policy.rules]]
principals = ["*"]
methods = ["*"]
user_pools = ["*"]
"#,
        proxy = proxy.url()
    ));
    for (principal, key) in callers {
        common::procs::canary::secret(key);
        config.push_str(&format!(
            "\n[[auth.api_keys]]\nprincipal = \"{principal}\"\nsha256 = \"{}\"\n",
            mfa_facade::auth::api_key::hash_key(key)
        ));
    }
    let mut served = common::procs::Served::start_with_env(
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", Some("testing")),
            ("AWS_SECRET_ACCESS_KEY", Some("testing")),
        ],
    );
    let ch = served.channel().await;
    let get = |key: &'static str, pool: String| {
        let ch = ch.clone();
        async move {
            pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
                ch,
                common::ApiKey::new(key),
            )
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
            .await
        }
    };
    let [
        (billing, billing_key),
        (payments, payments_key),
        (ops, ops_key),
    ] = callers;
    // billing, payments, billing (its session kept), ops (the third: the
    // least recently used, payments', goes), payments (assumed again).
    for key in [
        billing_key,
        payments_key,
        billing_key,
        ops_key,
        payments_key,
    ] {
        get(key, prod.clone()).await.expect("get");
    }
    // The coverage walk's Cognito calls too: ops' session is still kept.
    let mut walk = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(ops_key),
    )
    .list_user_mfa_status(pb::ListUserMfaStatusRequest {
        user_pool_id: prod.clone(),
        filter: String::new(),
        page_token: String::new(),
    })
    .await
    .expect("walk")
    .into_inner();
    while walk.message().await.expect("walk message").is_some() {}
    let refused = get(billing_key, unserved.clone())
        .await
        .expect_err("a pool of no account");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("NO_SOURCE_IDENTITY_ROLE".to_owned())
    );
    assert!(served.terminate().success());

    let payments_id = mfa_facade::backend::cognito::source_identity::source_identity_of(payments);
    assert!(
        payments_id.starts_with("spiffe---acme-ns-payments.") && payments_id.len() <= 64,
        "{payments_id}"
    );
    // What STS was asked for the callers (the facade's own health sessions,
    // SourceIdentity = the session name, aside).
    let form = |id: &str| format!("SourceIdentity={}", urlencode(id));
    let sts: Vec<(usize, String)> = assumed
        .seen()
        .into_iter()
        .map(|r| r.body)
        .enumerate()
        .filter(|(_, body)| !body.contains(&form("mfa-facade")))
        .collect();
    let asked: Vec<&str> = sts
        .iter()
        .map(|(_, body)| {
            [billing, payments_id.as_str(), ops]
                .into_iter()
                .find(|id| body.contains(&form(id)))
                .unwrap_or_else(|| panic!("an AssumeRole for no caller: {body}"))
        })
        .collect();
    assert_eq!(
        asked,
        [billing, payments_id.as_str(), ops, payments_id.as_str()],
        "one AssumeRole per caller, again only after its session was dropped"
    );
    for (_, body) in &sts {
        assert!(body.contains("Action=AssumeRole"), "{body}");
        assert!(body.contains("RoleSessionName=mfa-facade"), "{body}");
    }
    let key_of = |n: usize| format!("ASIASTUB{:04}", sts[n].0);
    let signed: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.operation == "GetUserPoolMfaConfig")
        .map(|r| r.access_key)
        .collect();
    assert_eq!(
        signed,
        [
            key_of(0),
            key_of(1),
            key_of(0),
            key_of(2),
            key_of(3),
            // The walk's read of the pool's configuration, in ops' session.
            key_of(2)
        ],
        "each call signed in its caller's session"
    );
    let walked: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ListUsers")
        .map(|r| r.access_key)
        .collect();
    assert_eq!(walked, [key_of(2)], "the walk in ops' session");
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|r| r.body["UserPoolId"] == unserved.as_str()),
        "nothing was sent for the pool no account serves"
    );
    // The records name the SourceIdentity CloudTrail shows.
    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(served.dir.path().join("audit.jsonl"))
            .expect("audit")
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|r: &serde_json::Value| {
                r["method"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("GetUserPoolMfaConfig"))
            })
            .collect();
    let named: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["user_pool"] == prod.as_str())
        .map(|r| {
            (
                r["principal"].as_str().unwrap_or(""),
                r["source_identity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (billing, billing),
            (payments, payments_id.as_str()),
            (billing, billing),
            (ops, ops),
            (payments, payments_id.as_str()),
        ]
    );
    println!(
        "source_identity: {} AssumeRole for 5 calls of 3 callers (sessions kept: 2), every call signed in its caller's session",
        sts.len()
    );
}

/// application/x-www-form-urlencoded, as the SDK writes a form value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
