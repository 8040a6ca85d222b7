//! Hostile callers against the real binary (issue 15): each test attacks
//! one defence from loopback — raw HTTP/2 frames where a client library
//! would be too polite — and measures what it cost the process: peak RSS
//! (VmHWM) before and after, record sizes, admitted counts, restart and
//! health after. Every loop is bounded in count and time. The figures are
//! printed, so `scripts/test.sh`'s hostile step shows them.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use mfa_facade::proto::v1 as pb;
use tonic::Code;

use crate::common::{
    ApiKey, TEST_KEY,
    procs::{BIN, Served, local_config, local_pool},
};

const GET_PATH: &str = "/cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig";

/// A budget high enough that rate limits never answer for these tests.
fn config(extra: &str) -> String {
    local_config("hostile", 100_000.0, 100_000, extra)
}

fn pools(ch: &tonic::transport::Channel) -> crate::common::PoolsClient {
    pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    )
    .max_decoding_message_size(64 * 1024 * 1024)
    .max_encoding_message_size(64 * 1024 * 1024)
}

fn users(ch: &tonic::transport::Channel, key: &str) -> crate::common::UsersClient {
    pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(key),
    )
    .max_encoding_message_size(64 * 1024 * 1024)
}

/// The bytes a status takes as trailers: message and details as sent.
fn status_bytes(s: &tonic::Status) -> usize {
    s.message().len() + s.details().len().div_ceil(3) * 4
}

async fn health_ok(served: &Served) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut h = HealthClient::new(served.channel().await);
    h.check(HealthCheckRequest {
        service: String::new(),
    })
    .await
    .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
    .unwrap_or(false)
}

// ---------------------------------------------------------------- raw HTTP/2

mod h2raw {
    use super::*;

    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const END_HEADERS: u8 = 0x4;

    pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    pub struct Frame {
        pub ty: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Frame> {
        let mut h = [0u8; 9];
        s.read_exact(&mut h)?;
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload)?;
        Ok(Frame {
            ty: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    fn int(out: &mut Vec<u8>, mut n: usize, prefix: u8) {
        let max = (1usize << prefix) - 1;
        if n < max {
            out.push(n as u8);
            return;
        }
        out.push(max as u8);
        n -= max;
        while n >= 128 {
            out.push((n % 128 + 128) as u8);
            n /= 128;
        }
        out.push(n as u8);
    }

    /// HPACK: literal header fields without indexing, no Huffman.
    pub fn headers(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in fields {
            out.push(0);
            int(&mut out, k.len(), 7);
            out.extend_from_slice(k.as_bytes());
            int(&mut out, v.len(), 7);
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    pub fn grpc_request(path: &str) -> Vec<u8> {
        headers(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-api-key", TEST_KEY),
        ])
    }

    /// A connection after the preface: the server's SETTINGS (id -> value)
    /// and its connection-window increment.
    pub fn handshake(addr: SocketAddr) -> std::io::Result<(TcpStream, HashMap<u16, u32>, u32)> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")?;
        s.write_all(&frame(SETTINGS, 0, 0, &[]))?;
        let mut settings = HashMap::new();
        let mut window = 0;
        let mut seen_settings = false;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !(seen_settings && window > 0) {
            let f = read_frame(&mut s)?;
            match f.ty {
                SETTINGS if f.flags & 1 == 0 => {
                    for p in f.payload.chunks_exact(6) {
                        settings.insert(
                            u16::from_be_bytes([p[0], p[1]]),
                            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                        );
                    }
                    seen_settings = true;
                    s.write_all(&frame(SETTINGS, 1, 0, &[]))?;
                }
                WINDOW_UPDATE if f.stream == 0 => {
                    window = u32::from_be_bytes([
                        f.payload[0],
                        f.payload[1],
                        f.payload[2],
                        f.payload[3],
                    ]) & 0x7fff_ffff;
                }
                _ => {}
            }
        }
        if !seen_settings {
            return Err(std::io::Error::other("no SETTINGS from the server"));
        }
        Ok((s, settings, window))
    }

    /// Reads frames until `stop` says so, the connection ends, or `limit`
    /// passes; returns the frame types and RST_STREAM codes seen.
    pub fn drain(s: &mut TcpStream, limit: Duration, mut stop: impl FnMut(&Frame) -> bool) -> Seen {
        let mut seen = Seen::default();
        let deadline = Instant::now() + limit;
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        while Instant::now() < deadline {
            match read_frame(s) {
                Ok(f) => {
                    *seen.types.entry(f.ty).or_default() += 1;
                    if f.ty == RST_STREAM && f.payload.len() == 4 {
                        let code = u32::from_be_bytes([
                            f.payload[0],
                            f.payload[1],
                            f.payload[2],
                            f.payload[3],
                        ]);
                        *seen.resets.entry(code).or_default() += 1;
                    }
                    if f.ty == GOAWAY && f.payload.len() >= 8 {
                        seen.goaway = Some(u32::from_be_bytes([
                            f.payload[4],
                            f.payload[5],
                            f.payload[6],
                            f.payload[7],
                        ]));
                    }
                    if stop(&f) {
                        return seen;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    seen.closed = true;
                    return seen;
                }
            }
        }
        seen
    }

    #[derive(Debug, Default)]
    pub struct Seen {
        pub types: HashMap<u8, usize>,
        pub resets: HashMap<u32, usize>,
        pub goaway: Option<u32>,
        pub closed: bool,
    }
}

use h2raw::*;

#[test]
fn the_transport_limits_are_advertised_and_streams_past_them_are_refused() {
    let served = Served::start(&config(""));
    let (mut s, settings, window) = handshake(served.addr).expect("handshake");
    println!("server SETTINGS {settings:?}, connection window increment {window}");
    assert_eq!(settings.get(&0x3), Some(&100), "MAX_CONCURRENT_STREAMS");
    assert_eq!(settings.get(&0x4), Some(&65_536), "INITIAL_WINDOW_SIZE");
    assert_eq!(settings.get(&0x6), Some(&16_384), "MAX_HEADER_LIST_SIZE");
    assert_eq!(window + 65_535, 1024 * 1024, "connection window 1 MiB");

    // 300 calls opened and never finished on one unauthenticated-looking
    // connection: the server holds 100 and refuses the rest.
    let block = grpc_request(GET_PATH);
    let mut out = Vec::new();
    for i in 0..300u32 {
        out.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &block));
    }
    s.write_all(&out).expect("send");
    let seen = drain(&mut s, Duration::from_secs(5), |_| false);
    let refused = seen.resets.get(&0x7).copied().unwrap_or(0);
    println!("300 streams opened: {refused} refused (REFUSED_STREAM), frames {seen:?}");
    assert_eq!(refused, 200, "every stream past 100 is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_and_provoked_reset_floods_end_in_goaway_and_cost_nothing_lasting() {
    let mut served = Served::start(&config(""));
    let before = served.hwm_kib();
    let addr = served.addr;
    let (rapid, provoked) = tokio::task::spawn_blocking(move || {
        // Rapid Reset: open and cancel 20,000 streams as fast as the socket takes them.
        let (mut s, _, _) = handshake(addr).expect("handshake");
        let block = grpc_request(GET_PATH);
        let mut sent = 0u32;
        'flood: for batch in 0..200u32 {
            let mut out = Vec::new();
            for i in 0..100u32 {
                let id = 2 * (batch * 100 + i) + 1;
                out.extend(frame(HEADERS, END_HEADERS, id, &block));
                out.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            }
            if s.write_all(&out).is_err() {
                break 'flood;
            }
            sent += 100;
        }
        let rapid = (
            sent,
            drain(&mut s, Duration::from_secs(5), |f| f.ty == GOAWAY),
        );
        // MadeYouReset: streams the server must reset itself (a request
        // without :path is malformed, a stream error), 2,000 of them.
        let (mut s, _, _) = handshake(addr).expect("handshake");
        let malformed = h2raw::headers(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
        ]);
        let mut out = Vec::new();
        for i in 0..2000u32 {
            out.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &malformed));
        }
        let _ = s.write_all(&out);
        let provoked = drain(&mut s, Duration::from_secs(5), |f| f.ty == GOAWAY);
        (rapid, provoked)
    })
    .await
    .expect("flood");
    let after = served.hwm_kib();
    println!(
        "rapid reset: {} streams sent before the connection ended; {:?}",
        rapid.0, rapid.1
    );
    let local_resets: usize = provoked.resets.values().sum();
    println!("provoked resets: {local_resets} RST_STREAM from the server, then {provoked:?}");
    println!("VmHWM {before} KiB -> {after} KiB");
    assert!(
        rapid.1.goaway.is_some() || rapid.1.closed,
        "a rapid-reset flood ends the connection"
    );
    assert!(
        provoked.goaway.is_some(),
        "a provoked-reset flood ends in GOAWAY"
    );
    assert!(
        local_resets <= 1024 + 1,
        "at most server.max_local_error_reset_streams resets before GOAWAY"
    );
    assert!(
        after - before < 64 * 1024,
        "peak RSS grew {} KiB",
        after - before
    );
    assert!(served.alive());
    assert!(health_ok(&served).await, "still SERVING");
    let ch = served.channel().await;
    local_pool(&ch, None).await;
}

#[test]
fn keepalive_pings_close_a_peer_that_never_answers() {
    let served = Served::start(&config(
        "[server]\nkeepalive_interval_seconds = 1\nkeepalive_timeout_seconds = 1\n",
    ));
    let (mut s, _, _) = handshake(served.addr).expect("handshake");
    let started = Instant::now();
    let seen = drain(&mut s, Duration::from_secs(10), |_| false);
    println!("silent peer: {:?} after {:?}", seen, started.elapsed());
    assert!(seen.types.contains_key(&PING), "the server pinged");
    assert!(seen.closed, "and closed the connection when no answer came");
}

#[test]
fn connections_past_max_connections_are_closed_at_once() {
    let served = Served::start(&config("[server]\nmax_connections = 8\n"));
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match handshake(served.addr) {
            Ok((s, _, _)) => held.push(s),
            Err(_) => refused += 1,
        }
    }
    println!("20 connections: {} served, {refused} closed", held.len());
    assert_eq!(held.len(), 8);
    assert_eq!(
        served.metric("mfa_facade_connections_refused_total", &[]),
        Some(12.0)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        handshake(served.addr).is_ok(),
        "a freed slot is usable again"
    );
}

/// A loopback "Cognito" that accepts connections and never answers.
fn silent_upstream() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_concurrent_calls_are_shed_at_once_and_slow_ones_end_at_the_deadline() {
    let (_upstream, url) = silent_upstream();
    let served = Served::start_with_env(
        &config(
            "[server]\nmax_concurrent_calls = 4\nrequest_timeout_ms = 1500\n\
             [limits.quota]\nenabled = false\n",
        )
        .replace(
            "kind = \"local\"",
            &format!(
                "kind = \"cognito\"\nendpoint_url = \"{url}\"\nattempt_timeout_ms = 20000\ncall_timeout_ms = 20000\nmax_attempts = 1"
            ),
        ),
        &[
            ("AWS_ACCESS_KEY_ID", Some("testing")),
            ("AWS_SECRET_ACCESS_KEY", Some("testing")),
            ("AWS_EC2_METADATA_DISABLED", Some("true")),
        ],
    );
    let ch = served.channel().await;
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let mut c = pools(&ch);
            tokio::spawn(async move {
                let r = c
                    .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                        user_pool_id: "us-east-1_Hang".into(),
                    })
                    .await;
                (
                    r.err().map(|s| (s.code(), s.message().to_owned())),
                    Instant::now(),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let serving_meanwhile = health_ok(&served).await;
    let mut codes: HashMap<Code, usize> = HashMap::new();
    let mut slowest = Duration::ZERO;
    for c in calls {
        let (err, at) = c.await.expect("call");
        let (code, message) = err.unwrap_or((Code::Ok, String::new()));
        if code == Code::ResourceExhausted {
            assert!(message.contains("max_concurrent_calls"), "{message}");
        }
        slowest = slowest.max(at - started);
        *codes.entry(code).or_default() += 1;
    }
    println!("20 calls against a silent upstream: {codes:?}, the last after {slowest:?}");
    assert_eq!(codes.get(&Code::ResourceExhausted), Some(&16), "{codes:?}");
    assert_eq!(codes.get(&Code::DeadlineExceeded), Some(&4), "{codes:?}");
    assert!(serving_meanwhile, "health is not shed");
    assert_eq!(
        served.metric("mfa_facade_calls_shed_total", &[]),
        Some(16.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_mask_paths_is_refused_small_and_cheap() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut c = pools(&ch);
    let update = |paths: Vec<String>| pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        config: Some(pb::UserPoolMfaConfig::default()),
        update_mask: Some(prost_types::FieldMask { paths }),
        etag: None,
        validate_only: false,
    };
    let before = served.hwm_kib();
    let started = Instant::now();
    let flood: Vec<String> = (0..400_000).map(|i| format!("p{}", i % 10)).collect();
    let wire = prost::Message::encoded_len(&update(flood.clone()));
    let err = c
        .update_user_pool_mfa_config(update(flood))
        .await
        .unwrap_err();
    let took = started.elapsed();
    let after = served.hwm_kib();
    println!(
        "400,000 paths ({wire} bytes): {:?} in {took:?}, status {} bytes, VmHWM {before} -> {after} KiB: {}",
        err.code(),
        status_bytes(&err),
        err.message()
    );
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("update_mask"), "{}", err.message());
    assert!(status_bytes(&err) <= 8192);
    assert!(
        after - before < 32 * 1024,
        "peak RSS grew {} KiB",
        after - before
    );

    // Within the count: unknown and repeated paths, each kind once.
    let mut paths: Vec<String> = (0..40).map(|i| format!("nope{i}")).collect();
    paths.extend(vec!["mfa_configuration".to_owned(); 20]);
    let err = c
        .update_user_pool_mfa_config(update(paths))
        .await
        .unwrap_err();
    let details = tonic_types::StatusExt::get_details_bad_request(&err).expect("BadRequest");
    let descriptions: Vec<&str> = details
        .field_violations
        .iter()
        .map(|v| v.description.as_str())
        .collect();
    println!("40 unknown + 20 repeated: {descriptions:?}");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(details.field_violations.len(), 2, "{descriptions:?}");
    assert!(descriptions[0].starts_with("40 unknown path(s)"));
    assert!(descriptions[1].starts_with("19 repeated path(s)"));

    // Over the decode limit: refused before decoding.
    let huge = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: "x".repeat(3 * 1024 * 1024),
        ..Default::default()
    };
    let err = c.set_user_pool_mfa_config(huge).await.unwrap_err();
    println!("a 3 MiB message: {:?} {}", err.code(), err.message());
    // tonic's decoder refuses it by its length, before a byte is parsed.
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(
        err.message().contains("decoded message length too large"),
        "{err:?}"
    );
    assert!(health_ok(&served).await);
}

/// The audit records of `path` (every file of the chain), as JSON.
fn audit_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

fn audit_verify(path: &std::path::Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .expect("audit verify")
}

const NO_GRANTS_KEY: &str = "no-grants-key-7d1c";

fn audited(state: &std::path::Path, extra: &str) -> String {
    config(&format!(
        "[[auth.api_keys]]\nprincipal = \"nobody\"\nsha256 = \"{}\"\n\
         [audit]\nfile = \"{}\"\nfail_closed = true\n{extra}",
        mfa_facade::auth::api_key::hash_key(NO_GRANTS_KEY),
        state.join("audit.jsonl").display()
    ))
    .replace(
        "{dir}/data.json",
        &state.join("data.json").display().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_grants_can_neither_bloat_nor_wedge_the_audit_log() {
    crate::common::procs::canary::secret(NO_GRANTS_KEY);
    let state = tempfile::tempdir().expect("state");
    let audit = state.path().join("audit.jsonl");
    let mut served = Served::start(&audited(state.path(), ""));
    let ch = served.channel().await;
    let mut u = users(&ch, NO_GRANTS_KEY);
    let err = u
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: "p".repeat(2_000_000),
            username: "u".repeat(100_000),
        })
        .await
        .unwrap_err();
    println!(
        "2 MB pool id, no grants: {:?}, status {} bytes",
        err.code(),
        status_bytes(&err)
    );
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(status_bytes(&err) <= 8192);
    served.terminate();
    let longest = std::fs::read_to_string(&audit)
        .expect("audit")
        .lines()
        .map(str::len)
        .max()
        .unwrap_or(0);
    let records = audit_records(&audit);
    let pool = records
        .iter()
        .find_map(|r| r["user_pool"].as_str().map(str::to_owned))
        .unwrap_or_default();
    println!(
        "its record: {longest} bytes; user_pool ends {:?}",
        &pool[pool.len().saturating_sub(60)..]
    );
    assert!(longest < 64 * 1024, "a record of {longest} bytes");
    assert!(
        pool.contains("truncated: 2000000 bytes, sha256 "),
        "{}",
        &pool[pool.len() - 80..]
    );

    // An old record of 4 MB (written before records were bounded) and a
    // torn tail of 3 MB: start-up reads back across both.
    // The last record (checkpoint lines follow it).
    let last = records
        .iter()
        .rev()
        .find(|r| r.get("seq").is_some())
        .cloned()
        .unwrap_or_default();
    let mut legacy = serde_json::json!({
        "seq": last["seq"].as_u64().unwrap_or(0) + 1,
        "prev_hash": last["hash"],
        "stage": "completed",
        "method": "legacy",
        "pad": "z".repeat(4 * 1024 * 1024),
    });
    let map = legacy.as_object().cloned().unwrap_or_default();
    legacy["hash"] = mfa_facade::audit::chain::hash_of(&map).into();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&audit)
        .expect("open");
    writeln!(f, "{legacy}").expect("legacy record");
    f.write_all(&vec![b'{'; 3 * 1024 * 1024])
        .expect("torn tail");
    drop(f);

    let served = Served::start(&audited(state.path(), ""));
    let ch = served.channel().await;
    local_pool(&ch, None).await;
    assert!(health_ok(&served).await, "restarted and SERVING");
    drop(served);
    let verified = audit_verify(&audit);
    println!(
        "audit verify: {}",
        String::from_utf8_lossy(&verified.stdout).trim()
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&audit).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "owner-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stdout_sink_never_forks_the_chain_in_the_file() {
    // stdout is /dev/full: every write to it fails after the file has the
    // records. Changes are refused (fail_closed); the file's chain goes on.
    let state = tempfile::tempdir().expect("state");
    let audit = state.path().join("audit.jsonl");
    let config_path = state.path().join("config.toml");
    std::fs::write(&config_path, audited(state.path(), "stdout = true\n")).expect("config");
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("MFA_FACADE_LISTEN", "127.0.0.1:0")
        .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = crate::common::procs::served_address(&mut child).to_string();
    let ch = crate::common::procs::connect(&addr).await;
    let mut c = pools(&ch);
    let mut refused = 0;
    for _ in 0..5 {
        let set = c
            .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: "us-east-1_Missing1".into(),
                mfa_configuration: pb::MfaConfiguration::Off as i32,
                ..Default::default()
            })
            .await;
        refused += usize::from(set.is_err_and(|s| s.code() == Code::Unavailable));
        let _ = c
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: "us-east-1_Missing1".into(),
            })
            .await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let verified = audit_verify(&audit);
    let records = audit_records(&audit).len();
    println!(
        "stdout on /dev/full: {refused} of 5 changes refused UNAVAILABLE; the file: {records} records, {}",
        String::from_utf8_lossy(&verified.stdout).trim()
    );
    assert_eq!(
        refused, 5,
        "fail_closed: a record not in every sink refuses the change"
    );
    assert!(records >= 10, "{records} records");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_star_audit_rule_at_level_none_audits_nothing() {
    let state = tempfile::tempdir().expect("state");
    let audit = state.path().join("audit.jsonl");
    let served = Served::start(&audited(
        state.path(),
        "[[audit.rules]]\nmethods = [\"*\"]\nlevel = \"none\"\n",
    ));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut c = pools(&ch);
    c.get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
        .await
        .expect("get");
    let _ = users(&ch, "wrong-key-aaaaaa")
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest::default())
        .await;
    drop(served);
    // The run's own records (run_started) and checkpoints are there; no
    // call left one.
    let calls = audit_records(&audit)
        .into_iter()
        .filter(|r| r.get("method").is_some())
        .count();
    assert_eq!(calls, 0, "no record of a call at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_authentication_are_budgeted_per_peer_and_summarized() {
    let state = tempfile::tempdir().expect("state");
    let audit = state.path().join("audit.jsonl");
    let served = Served::start(&audited(
        state.path(),
        "[limits.unauthenticated]\nsummary_interval_seconds = 1\n",
    ));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let started = Instant::now();
    let mut codes: HashMap<Code, usize> = HashMap::new();
    for round in 0..60 {
        // A connection per round, as a brute-forcer would reconnect.
        let conn = served.channel().await;
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let mut c = users(&conn, &format!("wrong-key-{round}-{i}"));
                tokio::spawn(async move {
                    match c
                        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest::default())
                        .await
                    {
                        Ok(_) => Code::Ok,
                        Err(s) => {
                            if !matches!(s.code(), Code::Unauthenticated | Code::ResourceExhausted)
                            {
                                println!("unexpected: {s:?}");
                            }
                            s.code()
                        }
                    }
                })
            })
            .collect();
        for c in calls {
            *codes.entry(c.await.expect("call")).or_default() += 1;
        }
    }
    let took = started.elapsed();
    // A caller with a valid key from the same address is not refused.
    pools(&ch)
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
        .await
        .expect("a valid key still works");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let suppressed_metric = served.metric("mfa_facade_unauthenticated_suppressed_total", &[]);
    drop(served);
    let records = audit_records(&audit);
    for r in records.iter().filter(|r| r.get("suppressed").is_some()) {
        println!("summary: {r}");
    }
    let door = records
        .iter()
        .filter(|r| r["outcome"]["code"] == "UNAUTHENTICATED" && r.get("suppressed").is_none())
        .count();
    let suppressed: u64 = records
        .iter()
        .filter_map(|r| r["suppressed"].as_u64())
        .sum();
    let summaries = records
        .iter()
        .filter(|r| r.get("suppressed").is_some())
        .count();
    let unauth = codes.get(&Code::Unauthenticated).copied().unwrap_or(0);
    let exhausted = codes.get(&Code::ResourceExhausted).copied().unwrap_or(0);
    println!(
        "3,000 wrong keys in {took:?}: {codes:?}; {} records: {door} refusals, {summaries} summaries counting {suppressed}",
        records.len()
    );
    let allowed = 100 + (10.0 * took.as_secs_f64()).ceil() as usize;
    assert!(
        unauth <= allowed,
        "{unauth} audited refusals, at most {allowed}"
    );
    assert_eq!(unauth + exhausted, 3000);
    assert_eq!(door, unauth, "one record per audited refusal");
    assert_eq!(
        suppressed as usize, exhausted,
        "every suppressed refusal is counted"
    );
    assert!(summaries >= 1 && summaries <= 1 + took.as_secs() as usize + 3);
    assert_eq!(suppressed_metric, Some(exhausted as f64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_method_names_never_become_metric_labels() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    for i in 0..300 {
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.expect("ready");
        let path: http::uri::PathAndQuery = format!("/cognito.mfa.v1.UserMfaService/Fake{i}")
            .parse()
            .expect("path");
        let mut req = tonic::Request::new(Vec::new());
        req.metadata_mut()
            .insert("x-api-key", TEST_KEY.parse().expect("key"));
        let r: Result<tonic::Response<Vec<u8>>, _> = grpc.unary(req, path, raw::RawCodec).await;
        assert!(r.is_err());
    }
    let pool = local_pool(&ch, None).await;
    pools(&ch)
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
        .await
        .expect("get");
    let text = served.metrics();
    assert!(!text.contains("Fake"), "a made-up name became a label");
    assert!(text.contains(&format!("method=\"{}\"", &GET_PATH[1..])));
    let series = text
        .lines()
        .filter(|l| l.starts_with("mfa_facade_grpc_calls_total{"))
        .count();
    println!("300 made-up methods: {series} call series");
    assert!(series < 20, "{series}");
}

#[test]
fn config_values_that_could_panic_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    for (toml, key) in [
        (
            "[server]\nmax_connection_age_seconds = 9223372036854775807\n",
            "server.max_connection_age_seconds",
        ),
        (
            "[server]\nkeepalive_interval_seconds = 9223372036854775807\n",
            "server.keepalive_interval_seconds",
        ),
        (
            "[server]\nmax_concurrent_streams = 0\n",
            "server.max_concurrent_streams",
        ),
        (
            "[audit]\nstdout = true\nanchor_interval_seconds = 9223372036854775807\n",
            "audit.anchor_interval_seconds",
        ),
        (
            "[limits.default]\nper_second = 1e-300\nburst = 1\n",
            "limits.default.per_second",
        ),
        (
            "[limits.unauthenticated]\nper_second = 5e-324\n",
            "limits.unauthenticated.per_second",
        ),
        (
            "[auth]\nreload_interval_seconds = 9223372036854775807\n",
            "auth.reload_interval_seconds",
        ),
    ] {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).expect("write");
        let out = std::process::Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("check-config");
        let stderr = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{toml} was accepted");
        assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
        assert!(stderr.contains(key), "{key} not named: {stderr}");
    }
    // `audit verify` at the very end of u64.
    let path = dir.path().join("edge.jsonl");
    let mut lines = String::new();
    let mut prev = mfa_facade::audit::chain::GENESIS.to_owned();
    for seq in [u64::MAX - 1, u64::MAX, 0] {
        let mut r = serde_json::json!({"seq": seq, "prev_hash": prev, "m": "edge"});
        let map = r.as_object().cloned().unwrap_or_default();
        let hash = mfa_facade::audit::chain::hash_of(&map);
        r["hash"] = hash.clone().into();
        prev = hash;
        lines.push_str(&format!("{r}\n"));
    }
    std::fs::write(&path, lines).expect("write");
    let out = audit_verify(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("verify at u64::MAX: {:?} {stderr}", out.status.code());
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
}

/// Sends and receives raw bytes, for inputs no generated client would send.
mod raw {
    use bytes::{Buf, BufMut};
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default, Clone, Copy)]
    pub struct RawCodec;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> Self::Encoder {
            RawCodec
        }
        fn decoder(&mut self) -> Self::Decoder {
            RawCodec
        }
    }

    impl Encoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
            let mut out = vec![0; src.remaining()];
            src.copy_to_slice(&mut out);
            Ok(Some(out))
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid requests of every method, to mutate.
fn seeds(pool: &str) -> Vec<(&'static str, Vec<u8>)> {
    use prost::Message;
    let sms = pb::SmsMfaConfig {
        sms_authentication_message: Some("Code {####}".into()),
        sms_configuration: Some(pb::SmsConfiguration {
            sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
            external_id: Some("ext".into()),
            sns_region: Some("us-east-1".into()),
            eums_sms: None,
        }),
    };
    let config = pb::UserPoolMfaConfig {
        sms_mfa_configuration: Some(sms.clone()),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    let m = |name: &'static str| name;
    vec![
        (
            m("UserPoolMfaService/GetUserPoolMfaConfig"),
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.into(),
            }
            .encode_to_vec(),
        ),
        (
            m("UserPoolMfaService/SetUserPoolMfaConfig"),
            pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool.into(),
                sms_mfa_configuration: Some(sms),
                mfa_configuration: pb::MfaConfiguration::Optional as i32,
                validate_only: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            m("UserPoolMfaService/UpdateUserPoolMfaConfig"),
            pb::UpdateUserPoolMfaConfigRequest {
                user_pool_id: pool.into(),
                config: Some(config),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["mfa_configuration".into()],
                }),
                etag: None,
                validate_only: true,
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/SetUserMfaPreference"),
            pb::SetUserMfaPreferenceRequest {
                access_token: "a.b.c".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/AdminSetUserMfaPreference"),
            pb::AdminSetUserMfaPreferenceRequest {
                user_pool_id: pool.into(),
                username: "fuzz".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/AssociateSoftwareToken"),
            pb::AssociateSoftwareTokenRequest::default().encode_to_vec(),
        ),
        (
            m("UserMfaService/VerifySoftwareToken"),
            pb::VerifySoftwareTokenRequest {
                user_code: "123456".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/GetUserMfaSettings"),
            pb::GetUserMfaSettingsRequest {
                access_token: "a.b.c".into(),
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/AdminGetUserMfaSettings"),
            pb::AdminGetUserMfaSettingsRequest {
                user_pool_id: pool.into(),
                username: "fuzz".into(),
            }
            .encode_to_vec(),
        ),
        (
            m("UserMfaService/AdminDeleteSoftwareToken"),
            pb::AdminDeleteSoftwareTokenRequest {
                user_pool_id: pool.into(),
                username: "fuzz".into(),
            }
            .encode_to_vec(),
        ),
    ]
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    match rng.below(5) {
        0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        1 => {
            for _ in 0..=rng.below(4) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            b
        }
        2 => {
            b.truncate(rng.below(b.len() + 1));
            b
        }
        3 => {
            let at = rng.below(b.len() + 1);
            let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
            b.splice(at..at, junk);
            b
        }
        _ => {
            // A field repeated with a large varint length or a huge number.
            b.extend([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
            b
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_and_mutated_requests_never_panic_or_answer_internal() {
    let mut served = Served::start(&config(""));
    let ch = served.channel().await;
    let pool = local_pool(&ch, Some("fuzz")).await;
    let seeds = seeds(&pool);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut codes: HashMap<Code, usize> = HashMap::new();
    let cases = 3000;
    for case in 0..cases {
        let (method, seed) = &seeds[case % seeds.len()];
        let body = mutate(&mut rng, seed);
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.expect("ready");
        let path: http::uri::PathAndQuery =
            format!("/cognito.mfa.v1.{method}").parse().expect("path");
        let mut req = tonic::Request::new(body.clone());
        req.metadata_mut()
            .insert("x-api-key", TEST_KEY.parse().expect("key"));
        let code = match grpc.unary(req, path, raw::RawCodec).await {
            Ok(_) => Code::Ok,
            Err(s) => {
                let decode_failure = s.message().starts_with("failed to decode Protobuf message");
                assert!(
                    !(s.code() == Code::Unknown || s.code() == Code::Internal && !decode_failure),
                    "case {case} {method} {body:?}: {:?} {}",
                    s.code(),
                    s.message()
                );
                s.code()
            }
        };
        *codes.entry(code).or_default() += 1;
    }
    println!("{cases} arbitrary and mutated requests: {codes:?}");
    assert!(served.alive(), "no panic took the process down");
    assert!(health_ok(&served).await);
    let panics = served
        .logs()
        .iter()
        .filter(|l| l.text.contains("panicked"))
        .count();
    assert_eq!(panics, 0, "a handler panicked");
}
