//! Audit across a fleet (issue 31), through the release binary: three
//! replicas writing sealed records to their files and to stdout, one
//! SIGKILLed mid-load and restarted, one drained with SIGTERM; `audit
//! verify` over everything they wrote, in any order; then an attack matrix
//! on copies of it, each attack held against the checkpoints a collector
//! kept apart (what the S3 sink keeps under Object Lock).

use crate::common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::procs::{BIN, Served, local_config, local_pool};
use common::{ApiKey, TEST_KEY};
use mfa_facade::proto::v1 as pb;
use serde_json::Value;
use tonic_health::pb::health_check_response::ServingStatus;

/// The config of replica `name`: its data file and anything else it
/// keeps under `root/name`, one caller that may call everything, then `toml`.
fn replica_config(root: &Path, name: &str, toml: &str) -> String {
    std::fs::create_dir_all(root.join(name)).expect("replica dir");
    local_config("admin", 100_000.0, 100_000, toml).replace(
        "{dir}/data.json",
        &format!("{}/{name}/data.json", root.display()),
    )
}

fn replica(root: &Path, name: &str, key: &Path) -> String {
    replica_config(
        root,
        name,
        &format!(
            r#"
[audit]
file = "{root}/{name}/audit.jsonl"
stdout = true
fail_closed = true
source = "{name}"
max_file_bytes = 65536

[audit.signing]
key_file = "{key}"
checkpoint_seconds = 1
"#,
            root = root.display(),
            key = key.display(),
        ),
    )
}

fn pools(ch: &tonic::transport::Channel) -> common::PoolsClient {
    pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    )
}

/// `n` changes (and as many reads) on `served`, 16 at a time; returns the
/// request ids of the changes answered OK. With `kill_after`, the server
/// is SIGKILLed once that many changes were answered.
async fn load(served: &mut Served, tag: &str, n: usize, kill_after: Option<usize>) -> Vec<String> {
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..n {
        let (mut p, pool, answered, gate) =
            (pools(&ch), pool.clone(), answered.clone(), gate.clone());
        let rid = format!("{tag}-{i}");
        calls.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut req = tonic::Request::new(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
                software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mfa_configuration: if i % 2 == 0 {
                    pb::MfaConfiguration::On
                } else {
                    pb::MfaConfiguration::Optional
                } as i32,
                ..Default::default()
            });
            req.metadata_mut()
                .insert("x-request-id", rid.parse().expect("ascii"));
            let r = p.set_user_pool_mfa_config(req).await;
            let _ = p
                .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
                .await;
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r.ok().map(|_| rid)
        });
    }
    if let Some(k) = kill_after {
        let started = std::time::Instant::now();
        while answered.load(std::sync::atomic::Ordering::SeqCst) < k {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the load stalled"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        served.kill();
    }
    let mut ok = Vec::new();
    while let Some(done) = calls.join_next().await {
        ok.extend(done.expect("task"));
    }
    ok
}

pub(crate) fn verify(args: &[&str], inputs: &[PathBuf]) -> (bool, String) {
    // Credentials for s3:// inputs (moto takes any).
    let out = Command::new(BIN)
        .envs(AWS_ENV.iter().map(|(k, v)| (*k, v.unwrap_or_default())))
        .args(["audit", "verify"])
        .args(args)
        .args(inputs)
        .output()
        .expect("audit verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// What one served process printed on stdout, as a collector gathers it.
fn captured(served: &Served, path: &Path) -> PathBuf {
    let text: String = served
        .stdout()
        .iter()
        .map(|l| format!("{}\n", l.text))
        .collect();
    std::fs::write(path, text).expect("write the copy");
    path.to_owned()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn parse(line: &str) -> Option<serde_json::Map<String, Value>> {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v.as_object().cloned())
}

/// Recomputes the hash chain of (source, run) in `lines` after an edit,
/// as an attacker who can write the pipeline would: each record's hash,
/// and the next one's prev_hash.
fn rechain(lines: &mut [String], source: &str, run: &str) {
    let mut at: Vec<(u64, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let m = parse(l)?;
            (m.get("source")? == source && m.get("run")? == run)
                .then(|| (m.get("seq").and_then(Value::as_u64).unwrap_or(0), i))
        })
        .collect();
    at.sort();
    let mut prev: Option<String> = None;
    for (_, i) in at {
        let mut m = parse(&lines[i]).expect("record");
        if let Some(p) = &prev {
            m.insert("prev_hash".into(), Value::from(p.clone()));
        }
        let hash = mfa_facade::audit::chain::hash_of(&m);
        m.insert("hash".into(), Value::from(hash.clone()));
        let mut text = String::new();
        mfa_facade::audit::chain::canonical(&Value::Object(m), &mut text);
        lines[i] = text;
        prev = Some(hash);
    }
}

/// How many of the `acknowledged` request ids have their change's two
/// records in `texts`, received and completed, once each (in whichever
/// order the files or objects hold them); and a few that do not.
fn recorded_once(
    texts: &[String],
    acknowledged: &[&String],
) -> (usize, Vec<(String, Vec<String>)>) {
    let mut by_rid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in texts.iter().flat_map(|t| t.lines()) {
        if let Some(m) = parse(l)
            && let (Some(rid), Some(stage)) = (
                m.get("request_id").and_then(Value::as_str),
                m.get("stage").and_then(Value::as_str),
            )
            && m.get("method").and_then(Value::as_str)
                == Some("cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig")
        {
            by_rid
                .entry(rid.to_owned())
                .or_default()
                .push(stage.to_owned());
        }
    }
    let mut odd = Vec::new();
    let mut once = 0;
    for rid in acknowledged {
        let mut stages = by_rid.get(rid.as_str()).cloned().unwrap_or_default();
        stages.sort();
        if stages == ["completed", "received"] {
            once += 1;
        } else if odd.len() < 5 {
            odd.push(((*rid).clone(), stages));
        }
    }
    (once, odd)
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

fn is_checkpoint(l: &str) -> bool {
    l.starts_with("{\"audit_checkpoint\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_three_verifies_across_sigkill_restart_and_drain_and_every_attack_is_caught() {
    let root = tempfile::tempdir().expect("dir");
    let key = root.path().join("signing.pem");
    let made = Command::new(BIN)
        .args(["audit", "keygen"])
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(made.status.success(), "{made:?}");
    let public = root.path().join("signing.pem.pub");

    let mut web0 = Served::start(&replica(root.path(), "web-0", &key));
    let mut web1 = Served::start(&replica(root.path(), "web-1", &key));
    let mut web2 = Served::start(&replica(root.path(), "web-2", &key));
    let (a0, a1, a2) = tokio::join!(
        async { load(&mut web0, "web-0", 200, None).await },
        async { load(&mut web1, "web-1a", 300, Some(120)).await },
        async { load(&mut web2, "web-2", 150, None).await },
    );
    // web-1 comes back on its own files: its new run links to the last.
    let mut web1b = Served::start(&replica(root.path(), "web-1", &key));
    let a1b = load(&mut web1b, "web-1b", 100, None).await;
    assert!(web2.terminate().success(), "web-2 drains");
    // Idle past checkpoint_seconds: the running replicas seal their heads.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let copies = root.path().join("copies");
    std::fs::create_dir_all(&copies).expect("copies");
    let mut inputs: Vec<PathBuf> = Vec::new();
    for name in ["web-0", "web-1", "web-2"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.path().join(name))
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("audit.jsonl"))
            })
            .collect();
        files.sort();
        inputs.extend(files);
    }
    let stdouts = [
        captured(&web0, &copies.join("web-0.stdout")),
        captured(&web1, &copies.join("web-1a.stdout")),
        captured(&web1b, &copies.join("web-1b.stdout")),
        captured(&web2, &copies.join("web-2.stdout")),
    ];
    let mut all = inputs.clone();
    all.extend(stdouts.iter().cloned());
    // In any order.
    all.reverse();
    let key_arg = ["--public-key", public.to_str().expect("utf-8")];
    let (ok, out) = verify(&key_arg, &all);
    println!("fleet: {out}");
    assert!(ok, "{out}");
    assert_eq!(
        out.matches("\nchain ").count() + usize::from(out.starts_with("chain ")),
        4,
        "four runs: {out}"
    );
    assert!(out.contains("every signature good"), "{out}");
    assert!(out.contains("not ended"), "the killed run says so: {out}");

    // Every change a client saw acknowledged is in its replica's files,
    // its received and completed records, exactly once.
    let texts: Vec<String> = inputs
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    let acknowledged: Vec<&String> = a0.iter().chain(&a1).chain(&a1b).chain(&a2).collect();
    let (exactly_once, odd) = recorded_once(&texts, &acknowledged);
    println!(
        "acknowledged changes: {} (web-0 {}, web-1 before the kill {}, after {}, web-2 {}); in the files exactly once: {exactly_once}",
        acknowledged.len(),
        a0.len(),
        a1.len(),
        a1b.len(),
        a2.len()
    );
    assert_eq!(exactly_once, acknowledged.len(), "{odd:?}");
    assert!(a1.len() < 300, "the kill landed mid-load");

    // The checkpoints as a collector kept them apart (S3 under Object
    // Lock, in production): the attacks below cannot touch these.
    let trusted = copies.join("trusted-checkpoints.jsonl");
    let cps: Vec<String> = stdouts
        .iter()
        .flat_map(|p| lines(p))
        .filter(|l| is_checkpoint(l))
        .collect();
    write(&trusted, &cps);
    let trusted_arg = [
        "--public-key",
        public.to_str().expect("utf-8"),
        "--checkpoints",
        trusted.to_str().expect("utf-8"),
    ];
    let (ok, out) = verify(&trusted_arg, &all);
    assert!(
        ok,
        "the untouched copies hold against the kept checkpoints: {out}"
    );

    // The attacks, each on a fresh copy of web-0's stdout and web-1's and
    // web-2's, as someone who can write the log pipeline would make them.
    let pristine: Vec<(PathBuf, Vec<String>)> =
        stdouts.iter().map(|p| (p.clone(), lines(p))).collect();
    let chain_of = |ls: &[String], i: usize| -> (String, String) {
        let m = parse(&ls[i]).expect("record");
        (
            m["source"].as_str().unwrap_or_default().to_owned(),
            m["run"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // A sealed change record of web-0 (its stdout copy is pristine[0]).
    let target = |ls: &[String]| -> usize {
        ls.iter()
            .position(|l| {
                l.contains("\"stage\":\"completed\"") && l.contains("SetUserPoolMfaConfig")
            })
            .expect("a completed change")
    };
    type Attack = (&'static str, Box<dyn Fn(&mut Vec<Vec<String>>)>);
    let attacks: Vec<Attack> = vec![
        (
            "rewrite a record (MFA ON -> OFF, another principal) and re-chain",
            Box::new(move |c: &mut Vec<Vec<String>>| {
                let i = target(&c[0]);
                c[0][i] = c[0][i]
                    .replace("\"principal\":\"admin\"", "\"principal\":\"someone-else\"")
                    .replace("\"mode\":\"On\"", "\"mode\":\"Off\"");
                let (s, r) = chain_of(&c[0], i);
                rechain(&mut c[0], &s, &r);
            }),
        ),
        (
            "drop a run's records (web-1's first run, its checkpoints too)",
            Box::new(|c: &mut Vec<Vec<String>>| c[1].clear()),
        ),
        (
            "drop a whole replica's records (web-2, its checkpoints too)",
            Box::new(|c: &mut Vec<Vec<String>>| c[3].clear()),
        ),
        (
            "cut a sealed tail (web-0's last 20 lines)",
            Box::new(|c: &mut Vec<Vec<String>>| {
                let n = c[0].len();
                c[0].truncate(n - 20);
            }),
        ),
        (
            "reorder two records and re-chain",
            Box::new(move |c: &mut Vec<Vec<String>>| {
                let i = target(&c[0]);
                let j = i
                    + 1
                    + c[0][i + 1..]
                        .iter()
                        .position(|l| parse(l).is_some_and(|m| m.contains_key("seq")))
                        .expect("next");
                let (mi, mj) = (parse(&c[0][i]).expect("r"), parse(&c[0][j]).expect("r"));
                let mut swapped_i = mj.clone();
                let mut swapped_j = mi.clone();
                swapped_i.insert("seq".into(), mi["seq"].clone());
                swapped_j.insert("seq".into(), mj["seq"].clone());
                c[0][i] = Value::Object(swapped_i).to_string();
                c[0][j] = Value::Object(swapped_j).to_string();
                let (s, r) = chain_of(&c[0], i);
                rechain(&mut c[0], &s, &r);
            }),
        ),
        (
            "replay a record",
            Box::new(move |c: &mut Vec<Vec<String>>| {
                let i = target(&c[0]);
                let again = c[0][i].clone();
                c[0].push(again);
            }),
        ),
        (
            "forge the checkpoints with another key after a rewrite",
            Box::new(move |c: &mut Vec<Vec<String>>| {
                let i = target(&c[0]);
                c[0][i] = c[0][i].replace("\"mode\":\"On\"", "\"mode\":\"Off\"");
                let (s, r) = chain_of(&c[0], i);
                rechain(&mut c[0], &s, &r);
                // Re-seal every checkpoint of the chain with the attacker's key.
                let dir = tempfile::tempdir().expect("dir");
                let forger = mfa_facade::audit::seal::generate(&dir.path().join("k")).expect("key");
                let heads: BTreeMap<u64, String> = c[0]
                    .iter()
                    .filter_map(|l| parse(l))
                    .filter(|m| m.get("run").and_then(Value::as_str) == Some(&r))
                    .map(|m| {
                        (
                            m["seq"].as_u64().unwrap_or(0),
                            m["hash"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                let mut prev: Option<String> = None;
                for l in c[0].iter_mut().filter(|l| is_checkpoint(l)) {
                    let v: Value = serde_json::from_str(l).expect("cp");
                    let mut cp = mfa_facade::audit::seal::Checkpoint::of(&v)
                        .expect("cp")
                        .expect("reads");
                    if cp.run != r {
                        continue;
                    }
                    cp.hash = heads.get(&cp.seq).cloned().unwrap_or_default();
                    cp.prev = prev.clone();
                    forger.sign(&mut cp);
                    prev = Some(cp.digest());
                    *l = String::from_utf8(cp.line())
                        .expect("utf-8")
                        .trim_end()
                        .to_owned();
                }
            }),
        ),
        (
            "swap two replicas' records (web-0's said to be web-2's) and re-chain",
            Box::new(move |c: &mut Vec<Vec<String>>| {
                let i = target(&c[0]);
                let (s, r) = chain_of(&c[0], i);
                let other = c[3]
                    .iter()
                    .find_map(|l| {
                        parse(l)
                            .and_then(|m| m.get("run").and_then(Value::as_str).map(str::to_owned))
                    })
                    .expect("web-2's run");
                for l in c[0].iter_mut().filter(|l| !is_checkpoint(l)) {
                    if l.contains(&format!("\"run\":\"{r}\"")) {
                        *l = l
                            .replace(&format!("\"source\":\"{s}\""), "\"source\":\"web-2\"")
                            .replace(&format!("\"run\":\"{r}\""), &format!("\"run\":\"{other}\""));
                    }
                }
                rechain(&mut c[0], "web-2", &other);
            }),
        ),
    ];
    let mut caught = 0;
    for (what, attack) in &attacks {
        let mut copy: Vec<Vec<String>> = pristine.iter().map(|(_, l)| l.clone()).collect();
        attack(&mut copy);
        let dir = tempfile::tempdir().expect("dir");
        let files: Vec<PathBuf> = copy
            .iter()
            .enumerate()
            .map(|(i, ls)| {
                let p = dir.path().join(format!("copy-{i}.stdout"));
                write(&p, ls);
                p
            })
            .collect();
        let (ok, out) = verify(&trusted_arg, &files);
        let first = out
            .lines()
            .find(|l| l.starts_with("FAILED"))
            .unwrap_or("(nothing found)");
        println!("attack: {what}\n  -> {first}");
        if !ok {
            caught += 1;
        }
    }
    println!("attacks detected: {caught} of {}", attacks.len());
    assert_eq!(caught, attacks.len());
    assert!(web0.terminate().success());
    assert!(web1b.terminate().success());
}

/// A TCP forwarder to `upstream` that can be switched off: then every
/// connection, open or new, is dropped (S3 unreachable).
struct Switch {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Switch {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (up, rx) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    if !*rx.borrow() {
                        return;
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn set(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

pub(crate) fn moto_s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(common::moto_url())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A new bucket on moto with Object Lock on: compliance mode, one day's
/// default retention (what `[audit.s3]` wants).
pub(crate) async fn object_lock_bucket(s3: &aws_sdk_s3::Client, name: &str) -> String {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let bucket = format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket");
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("object lock");
    bucket
}

pub(crate) const AWS_ENV: [(&str, Option<&str>); 3] = [
    ("AWS_ACCESS_KEY_ID", Some("testing")),
    ("AWS_SECRET_ACCESS_KEY", Some("testing")),
    ("AWS_REGION", Some("us-east-1")),
];

fn s3_replica(root: &Path, name: &str, key: &Path, bucket: &str, endpoint: &str) -> String {
    replica_config(
        root,
        name,
        &format!(
            r#"
[server]
request_timeout_ms = 3000

[audit]
fail_closed = true
source = "{name}"
stall_seconds = 1

[audit.signing]
key_file = "{key}"
checkpoint_seconds = 1

[audit.s3]
bucket = "{bucket}"
prefix = "fleet/"
region = "us-east-1"
endpoint_url = "{endpoint}"
force_path_style = true
flush_ms = 50
"#,
            key = key.display(),
        ),
    )
}

/// Issue 31's fleet on S3: three replicas put their records into one
/// Object Lock bucket (moto on loopback), one SIGKILLed mid-load and
/// restarted, one drained; `audit verify s3://…` holds, every change a
/// client saw acknowledged is in S3 exactly once, the bucket refuses an
/// overwrite and a delete of a record object, and with S3 unreachable a
/// change answers AUDIT_UNAVAILABLE within its deadline, reaches no
/// backend, and health goes NOT_SERVING and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_one_object_lock_bucket_loses_no_acknowledged_change() {
    let s3 = moto_s3();
    let bucket = object_lock_bucket(&s3, "audit").await;

    let root = tempfile::tempdir().expect("dir");
    let key = root.path().join("signing.pem");
    mfa_facade::audit::seal::generate(&key).expect("key");
    let public = root.path().join("signing.pem.pub");
    let moto = common::moto_url();
    let start = |name: &str| {
        Served::start_with_env(
            &s3_replica(root.path(), name, &key, &bucket, &moto),
            &AWS_ENV,
        )
    };
    let mut web0 = start("web-0");
    let mut web1 = start("web-1");
    let mut web2 = start("web-2");
    let (a0, a1, a2) = tokio::join!(
        async { load(&mut web0, "s3-web-0", 120, None).await },
        async { load(&mut web1, "s3-web-1a", 200, Some(60)).await },
        async { load(&mut web2, "s3-web-2", 80, None).await },
    );
    let mut web1b = start("web-1");
    let a1b = load(&mut web1b, "s3-web-1b", 60, None).await;
    assert!(web2.terminate().success(), "web-2 drains");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let url = format!("s3://{bucket}/fleet/");
    let verify_s3 = || {
        verify(
            &[
                "--public-key",
                public.to_str().expect("utf-8"),
                "--s3-endpoint-url",
                &moto,
                "--s3-path-style",
            ],
            &[PathBuf::from(&url)],
        )
    };
    let (ok, out) = verify_s3();
    println!("s3 fleet: {out}");
    assert!(ok, "{out}");
    assert!(out.contains("every signature good"), "{out}");

    // Every acknowledged change: received and completed, once each, in S3
    // (its records; the history index holds copies of pool changes').
    let objects = bucket_objects(&s3, &bucket, "fleet/").await;
    let texts: Vec<String> = objects
        .iter()
        .filter(|(k, _)| !k.contains("/history/"))
        .map(|(_, t)| t.clone())
        .collect();
    let acknowledged: Vec<&String> = a0.iter().chain(&a1).chain(&a1b).chain(&a2).collect();
    let (exactly_once, odd) = recorded_once(&texts, &acknowledged);
    println!(
        "s3: acknowledged changes {} (web-1 killed after {} of 200); in S3 exactly once: {exactly_once}; {} objects",
        acknowledged.len(),
        a1.len(),
        objects.len()
    );
    assert_eq!(exactly_once, acknowledged.len(), "{odd:?}");
    assert!(a1.len() < 200, "the kill landed mid-load");

    // The bucket holds what it was given: no overwrite, no delete.
    let record_key = objects
        .iter()
        .find(|(n, _)| n.contains("/records/"))
        .map(|(n, _)| n.trim_start_matches(&format!("s3://{bucket}/")).to_owned())
        .expect("a record object");
    let overwrite = s3
        .put_object()
        .bucket(&bucket)
        .key(&record_key)
        .if_none_match("*")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}\n"))
        .send()
        .await;
    assert!(overwrite.is_err(), "If-None-Match refuses an overwrite");
    let version = s3
        .head_object()
        .bucket(&bucket)
        .key(&record_key)
        .send()
        .await
        .expect("head")
        .version_id()
        .map(str::to_owned);
    let deleted = s3
        .delete_object()
        .bucket(&bucket)
        .key(&record_key)
        .set_version_id(version)
        .send()
        .await;
    assert!(
        deleted.is_err(),
        "Object Lock refuses the delete of a locked version"
    );
    println!("s3: overwrite refused, delete of a locked version refused");

    // S3 unreachable.
    let moto_addr: std::net::SocketAddr = moto
        .trim_start_matches("http://")
        .parse()
        .expect("moto addr");
    let switch = Switch::start(moto_addr).await;
    let mut web3 = Served::start_with_env(
        &s3_replica(
            root.path(),
            "web-3",
            &key,
            &bucket,
            &format!("http://{}", switch.addr),
        )
        .replace(
            "stall_seconds = 1\n",
            &format!("stall_seconds = 1\nmax_queue_bytes = {OUTAGE_QUEUE_BYTES}\n"),
        ),
        &AWS_ENV,
    );
    let ch = web3.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch);
    assert_eq!(
        web3.health_until(ServingStatus::Serving, Duration::from_secs(10))
            .await,
        ServingStatus::Serving
    );
    switch.set(false);
    let set = |mode: pb::MfaConfiguration| pb::SetUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = p
        .set_user_pool_mfa_config(set(pb::MfaConfiguration::On))
        .await
        .expect_err("S3 unreachable: no durable record, no change");
    let took = started.elapsed();
    use tonic_types::StatusExt;
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason),
        Some("AUDIT_UNAVAILABLE".to_owned())
    );
    assert!(
        took < Duration::from_millis(3500),
        "answered after {took:?}"
    );
    assert_eq!(
        web3.health_until(ServingStatus::NotServing, Duration::from_secs(10))
            .await,
        ServingStatus::NotServing
    );
    let now = p
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("reads go on")
        .into_inner();
    assert_eq!(
        now.mfa_configuration,
        pb::MfaConfiguration::Off as i32,
        "nothing reached the backend"
    );
    println!("s3 unreachable: a change answered AUDIT_UNAVAILABLE in {took:?}; health NOT_SERVING");
    // A flood of reads while S3 is away: their records wait in memory up
    // to audit.max_queue_bytes, the rest are dropped and counted; the
    // process's peak memory grows by about that, not by the flood.
    let before = web3.hwm_kib();
    let flood_started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..OUTAGE_CLIENTS {
        let mut p = p.clone();
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u32;
            for _ in 0..OUTAGE_READS / OUTAGE_CLIENTS {
                if p.get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                    user_pool_id: pool.clone(),
                })
                .await
                .is_ok()
                {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut answered = 0;
    for t in tasks {
        answered += t.await.expect("reader");
    }
    let grew = web3.hwm_kib().saturating_sub(before);
    let dropped = web3
        .metric("mfa_facade_audit_dropped_total", &[])
        .unwrap_or(0.0);
    println!(
        "s3 unreachable: {answered} of {OUTAGE_READS} reads answered in {:?}; {dropped} records dropped past max_queue_bytes = {OUTAGE_QUEUE_BYTES}; peak RSS +{grew} KiB",
        flood_started.elapsed()
    );
    assert!(dropped > 0.0, "the flood outgrew the queue");
    assert!(
        grew < 3 * (OUTAGE_QUEUE_BYTES as u64 / 1024) + 16 * 1024,
        "peak RSS grew {grew} KiB during the outage"
    );
    switch.set(true);
    assert_eq!(
        web3.health_until(ServingStatus::Serving, Duration::from_secs(20))
            .await,
        ServingStatus::Serving
    );
    // SERVING says the writer makes progress again; the flood's backlog
    // may still fill the queue for a moment, and a change meanwhile is
    // refused UNAVAILABLE (retryable), never lost: the client retries.
    let refused = std::cell::Cell::new(0);
    let through = common::wait::poll_async(Duration::from_secs(30), || {
        let mut p = p.clone();
        let refused = &refused;
        async move {
            match p
                .set_user_pool_mfa_config(set(pb::MfaConfiguration::Optional))
                .await
            {
                Ok(_) => Some(()),
                Err(e) => {
                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                    refused.set(refused.get() + 1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    None
                }
            }
        }
    })
    .await;
    println!(
        "S3 back: the change went through after {} UNAVAILABLE answer(s) while the backlog drained",
        refused.get()
    );
    assert!(through.is_some(), "S3 back: the change goes through");
    assert!(web3.terminate().success());
    let (ok, out) = verify_s3();
    assert!(ok, "no gap in S3 after the outage: {out}");
    assert!(web0.terminate().success());
    assert!(web1b.terminate().success());
}

/// The outage's flood: reads, from this many clients at once, against a
/// queue of this many bytes (about 6,500 records of ~600 bytes).
const OUTAGE_READS: u32 = 20_000;
const OUTAGE_CLIENTS: u32 = 32;
const OUTAGE_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Every object under `prefix`, as (its s3:// name, its text).
pub(crate) async fn bucket_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.expect("list").contents() {
            let key = o.key().expect("key").to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
            out.push((
                format!("s3://{bucket}/{key}"),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
    }
    out
}
