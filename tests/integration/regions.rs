//! Every Region from one deployment (issue 20, part 1): the cognito backend
//! sends each call to its pool's Region — the pool id's prefix, or the
//! access token's issuer — through one SDK client per Region, against two
//! moto servers standing in for us-east-1 and eu-west-1
//! (`backend.region_endpoints`); a pool of a Region outside
//! `backend.regions` is refused before anything is sent.

use crate::common;

use std::{collections::BTreeMap, process::Command, sync::Arc, time::Duration};

use aws_sdk_cognitoidentityprovider as cip;
use common::procs::free_port;
use mfa_facade::{
    backend::{Backend, cognito::CognitoBackend},
    config::BackendConfig,
    proto::v1 as pb,
};
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
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let (_server, channel) = common::start_server(
        mfa_facade::server::Backends::remote(backend),
        common::test_auth(),
    )
    .await;
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
