//! A bounded load client for mfa-facade: N calls of a fixed mix
//! (GetUserPoolMfaConfig, SetUserPoolMfaConfig, AdminSetUserMfaPreference,
//! AdminGetUserMfaSettings) at a given concurrency, through the generated
//! tonic client. Prints one JSON line; exits 1 if any call failed, so a run
//! that "succeeded" really did.
//!
//! `--mix writes` sends only the two writes (Set, AdminSet), `--mix reads`
//! only the two reads (Get, AdminGet), `--mix pool-writes` only Set; `--key` is the API key sent as
//! `x-api-key`. The JSON line has each call's latency's p50 and p99 (ms).
//!
//!   calls --addr http://127.0.0.1:50051 --key KEY --pool us-east-1_X --user demo-user
//!         [--calls 1000] [--concurrency 8] [--mix all|writes|reads|pool-writes]

use std::{collections::BTreeMap, process::ExitCode, sync::Arc, time::Instant};

use mfa_facade::proto::v1::{
    self as pb, user_mfa_service_client::UserMfaServiceClient,
    user_pool_mfa_service_client::UserPoolMfaServiceClient,
};
use tokio::sync::Mutex;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::interceptor::InterceptedService,
    transport::Channel,
};

type Key = Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Pools = UserPoolMfaServiceClient<InterceptedService<Channel, Key>>;
type Users = UserMfaServiceClient<InterceptedService<Channel, Key>>;

fn with_key(key: &MetadataValue<Ascii>) -> Key {
    let key = key.clone();
    Box::new(move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("x-api-key", key.clone());
        Ok(r)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    All,
    Writes,
    Reads,
    PoolWrites,
}

struct Args {
    addr: String,
    key: String,
    mix: Mix,
    pool: String,
    user: String,
    calls: usize,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let mut map = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        map.insert(k, v);
    }
    let get = |k: &str| map.get(k).cloned().ok_or(format!("missing {k}"));
    Ok(Args {
        addr: get("--addr")?,
        key: get("--key")?,
        mix: match map.get("--mix").map(String::as_str) {
            None | Some("all") => Mix::All,
            Some("writes") => Mix::Writes,
            Some("reads") => Mix::Reads,
            Some("pool-writes") => Mix::PoolWrites,
            Some(other) => {
                return Err(format!("--mix {other}: all, writes, reads or pool-writes"));
            }
        },
        pool: get("--pool")?,
        user: get("--user")?,
        calls: map.get("--calls").map_or(Ok(1000), |v| {
            v.parse().map_err(|_| "bad --calls".to_owned())
        })?,
        concurrency: map.get("--concurrency").map_or(Ok(8), |v| {
            v.parse().map_err(|_| "bad --concurrency".to_owned())
        })?,
    })
}

async fn one(
    i: usize,
    pools: &mut Pools,
    users: &mut Users,
    a: &Args,
) -> Result<(), tonic::Status> {
    let i = match a.mix {
        Mix::All => i,
        Mix::Writes => 1 + i % 2,
        Mix::Reads => 3 * (i % 2),
        Mix::PoolWrites => 1,
    };
    match i % 4 {
        0 => pools
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: a.pool.clone(),
            })
            .await
            .map(|_| ()),
        1 => pools
            .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: a.pool.clone(),
                software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mfa_configuration: pb::MfaConfiguration::Optional as i32,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        2 => users
            .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
                user_pool_id: a.pool.clone(),
                username: a.user.clone(),
                sms_mfa_settings: Some(pb::SmsMfaSettings {
                    enabled: Some(true),
                    preferred_mfa: Some(i % 8 == 2),
                }),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        _ => users
            .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
                user_pool_id: a.pool.clone(),
                username: a.user.clone(),
            })
            .await
            .map(|_| ()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("calls: {e}");
            return ExitCode::from(2);
        }
    };
    let channel = match Channel::from_shared(a.addr.clone()) {
        Ok(c) => match c.connect().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("calls: cannot connect to {}: {e}", a.addr);
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprintln!("calls: bad --addr: {e}");
            return ExitCode::from(2);
        }
    };
    let key: MetadataValue<Ascii> = match a.key.parse() {
        Ok(k) => k,
        Err(_) => {
            eprintln!("calls: --key must be ASCII");
            return ExitCode::from(2);
        }
    };
    let next = Arc::new(Mutex::new(0usize));
    let errors: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (a, next, errors, latencies) =
            (a.clone(), next.clone(), errors.clone(), latencies.clone());
        let mut pools = UserPoolMfaServiceClient::with_interceptor(channel.clone(), with_key(&key));
        let mut users = UserMfaServiceClient::with_interceptor(channel.clone(), with_key(&key));
        workers.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut n = next.lock().await;
                    if *n >= a.calls {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let began = Instant::now();
                let result = one(i, &mut pools, &mut users, &a).await;
                latencies
                    .lock()
                    .await
                    .push(began.elapsed().as_secs_f64() * 1000.0);
                if let Err(status) = result {
                    *errors
                        .lock()
                        .await
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let errors = errors.lock().await.clone();
    let failed: usize = errors.values().sum();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{{\"calls\":{},\"ok\":{},\"errors\":{},\"seconds\":{:.3},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"calls_per_second\":{:.1}}}",
        a.calls,
        a.calls - failed,
        serde_json::to_string(&errors).unwrap_or_default(),
        seconds,
        pct(0.5),
        pct(0.99),
        a.calls as f64 / seconds
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
