//! Small tools of the bench scripts:
//!
//!   tools bodies DIR POOL        gRPC request bodies for h2load (5-byte frame
//!                                header + message): DIR/get.bin, DIR/set.bin
//!   tools startup BIN CONFIG     starts `BIN serve --config CONFIG` and prints
//!                                the milliseconds until Health/Check says
//!                                SERVING (polled every millisecond), then
//!                                the idle RSS in KiB; kills it
//!   tools sdk URL POOL N C       N direct SDK GetUserPoolMfaConfig calls at
//!                                concurrency C against URL; prints calls/s

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use mfa_facade::proto::v1 as pb;
use prost::Message;

fn frame(msg: &impl Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn bodies(dir: &str, pool: &str) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(
        format!("{dir}/get.bin"),
        frame(&pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.into(),
        }),
    )?;
    std::fs::write(
        format!("{dir}/set.bin"),
        frame(&pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.into(),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        }),
    )?;
    // The preference of the user `local_pool` (bench/lib.sh) creates.
    std::fs::write(
        format!("{dir}/pref.bin"),
        frame(&pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.into(),
            username: "bench-user".into(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        }),
    )?;
    Ok(())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn startup(bin: &str, config: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let started = Instant::now();
    // Port 0: the server takes a free port and says which in its `serving`
    // line (the only line logged below warn), so no port is picked here and
    // released for someone else to take first.
    let mut child = Command::new(bin)
        .args(["serve", "--config", config])
        .env("MFA_FACADE_LISTEN", "127.0.0.1:0")
        .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn,mfa_facade::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (found, address) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event"] == "serving"
                && let Some(listen) = v["listen"].as_str()
            {
                let _ = found.send(listen.to_owned());
            }
        }
    });
    let addr = match address.recv_timeout(Duration::from_secs(10)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            return Err("no serving line within 10 s".into());
        }
    };
    let deadline = started + Duration::from_secs(10);
    let serving_ms = loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("not SERVING within 10 s".into());
        }
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            && let Ok(r) = HealthClient::new(ch)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            && r.into_inner().status == 1
        {
            break started.elapsed().as_secs_f64() * 1e3;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!("{{\"serving_ms\":{serving_ms:.1},\"idle_rss_kib\":{rss}}}");
    Ok(())
}

/// `n` calls of `call` from `c` tasks at once; prints the count, the
/// failures and the calls a second, and fails if any call failed.
async fn drive<F, Fut>(n: usize, c: usize, call: F) -> Result<(), Box<dyn std::error::Error>>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (call, next) = (call.clone(), next.clone());
        workers.spawn(async move {
            let mut failed = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                if !call().await {
                    failed += 1;
                }
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(f) = workers.join_next().await {
        failed += f?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"calls\":{n},\"failed\":{failed},\"calls_per_second\":{:.1}}}",
        n as f64 / secs
    );
    if failed > 0 {
        return Err("calls failed".into());
    }
    Ok(())
}

async fn sdk(url: &str, pool: &str, n: usize, c: usize) -> Result<(), Box<dyn std::error::Error>> {
    use aws_sdk_cognitoidentityprovider as cip;
    let conf = cip::Config::builder()
        .behavior_version(cip::config::BehaviorVersion::latest())
        .region(cip::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(cip::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .build();
    let client = cip::Client::from_conf(conf);
    let pool: Arc<str> = pool.into();
    drive(n, c, move || {
        let (client, pool) = (client.clone(), pool.clone());
        async move {
            client
                .get_user_pool_mfa_config()
                .user_pool_id(&*pool)
                .send()
                .await
                .is_ok()
        }
    })
    .await
}

/// The facade's cognito backend alone (its SDK client, as `serve` builds
/// it), called like `sdk` calls the bare SDK: what the backend's
/// configuration costs, without the gRPC server in front.
async fn backend(
    url: &str,
    pool: &str,
    n: usize,
    c: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    use mfa_facade::backend::{Backend, cognito::CognitoBackend, settings::BackendConfig};
    let settings = BackendConfig {
        endpoint_url: Some(url.to_owned()),
        region: Some("us-east-1".into()),
        ..BackendConfig::default()
    };
    let backend = Arc::new(CognitoBackend::connect(&settings, None).await);
    let pool: Arc<str> = pool.into();
    drive(n, c, move || {
        let (backend, pool) = (backend.clone(), pool.clone());
        async move { backend.get_user_pool_mfa_config(&pool).await.is_ok() }
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    match a(0).as_str() {
        "bodies" => bodies(&a(1), &a(2)),
        "startup" => startup(&a(1), &a(2)).await,
        "sdk" => sdk(&a(1), &a(2), a(3).parse()?, a(4).parse()?).await,
        "backend" => backend(&a(1), &a(2), a(3).parse()?, a(4).parse()?).await,
        other => Err(format!("unknown tool {other:?}").into()),
    }
}
