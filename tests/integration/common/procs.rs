//! Real processes for tests: redis-server on a loopback port, and the
//! mfa-facade binary with a config file, its JSON log lines captured with
//! their arrival times and its /metrics scraped.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_mfa-facade");

/// The binary `Served` starts: [`BIN`], or `MFA_FACADE_TEST_BIN` when set,
/// to run a test against another build (an older commit's, to show that a
/// case fails there).
pub fn bin() -> String {
    std::env::var("MFA_FACADE_TEST_BIN").unwrap_or_else(|_| BIN.to_owned())
}
pub const REDIS_ENV: &str = "MFA_FACADE_TEST_REDIS_URL";

/// The address a server's log line `event` reports in `field` (the
/// `serving` line's `listen`, the bound one when the configuration said
/// port 0).
pub fn bound_address(lines: &[LogLine], event: &str, field: &str) -> Option<SocketAddr> {
    lines.iter().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(&l.text).ok()?;
        (v["event"] == event).then(|| v[field].as_str()?.parse().ok())?
    })
}

/// Reads a started server's log (its stderr, piped) to its end on a thread
/// of its own, and returns the address its `serving` line reports: the
/// port it bound for `127.0.0.1:0`. Panics if it exits or says nothing
/// within 30 s.
pub fn served_address(child: &mut Child) -> SocketAddr {
    let stderr = child.stderr.take().expect("the server's stderr is piped");
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for text in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = LogLine {
                at: SystemTime::now(),
                text,
            };
            if !sent && let Some(addr) = bound_address(&[line], "serving", "listen") {
                let _ = found.send(addr);
                sent = true;
            }
        }
    });
    super::wait::until("the server to listen", Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited before listening: {status}");
        }
        address.recv_timeout(Duration::from_millis(50)).ok()
    })
}

/// A loopback port bound and not listening, for as long as the guard
/// lives: a connection to it is refused, and nobody else can take it.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let port = socket.local_addr().expect("local addr").port();
    (socket, port)
}

/// A loopback port nobody listened on a moment ago, for the external
/// servers (redis-server, moto) that cannot report a port they chose: if
/// another process takes it meanwhile, that start fails loudly (the server
/// never answers its readiness check). mfa-facade itself listens on port
/// 0 and logs the port it got.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The redis-server the test command started and shared by tests that do
/// not stop it.
pub fn shared_redis_url() -> String {
    std::env::var(REDIS_ENV).unwrap_or_else(|_| {
        panic!(
            "{REDIS_ENV} is not set: these tests need redis-server. Run them with scripts/test.sh, \
             which installs redis-server and starts it, or start `redis-server --port PORT` and \
             export {REDIS_ENV}=redis://127.0.0.1:PORT"
        )
    })
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A redis-server of a test's own, which it may kill, stop and restart.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is required ({e}); scripts/test.sh installs it from Debian")
            });
        let redis = Self {
            child,
            port,
            _dir: dir,
        };
        redis.wait_ready();
        redis
    }

    fn wait_ready(&self) {
        super::wait::until_true(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
                    return false;
                };
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
            },
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL; returns when the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: connections stay open, nothing answers.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// A new redis-server on the same port, after `kill`.
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One log line of the server, with the time it was read.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub at: SystemTime,
    pub text: String,
}

/// `mfa-facade serve --config FILE`, its logs and its metrics.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    logs: Arc<Mutex<Vec<LogLine>>>,
    stdout: Arc<Mutex<Vec<LogLine>>>,
    /// While set, nobody reads the server's stdout (a stalled log pipe).
    stdout_held: Arc<std::sync::atomic::AtomicBool>,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Starts the binary on `config` (TOML; `{dir}` becomes a temp dir of
    /// its own) and waits until it listens.
    pub fn start(config: &str) -> Self {
        Self::start_with_env(config, &[])
    }

    /// As `start`, with environment changes: `None` removes a variable.
    pub fn start_with_env(config: &str, env: &[(&str, Option<&str>)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config.replace("{dir}", &dir.path().display().to_string());
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        let mut command = Command::new(bin());
        for (k, v) in env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("MFA_FACADE_LISTEN", "127.0.0.1:0")
            .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mfa-facade");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stdout_held = Arc::new(std::sync::atomic::AtomicBool::new(false));
        fn pump(
            from: impl Read + Send + 'static,
            into: Arc<Mutex<Vec<LogLine>>>,
            held: Arc<std::sync::atomic::AtomicBool>,
        ) {
            std::thread::spawn(move || {
                // Small reads, so that holding stops reading within a line.
                for line in BufReader::with_capacity(512, from).lines() {
                    while held.load(std::sync::atomic::Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let Ok(text) = line else { return };
                    into.lock().expect("lines").push(LogLine {
                        at: SystemTime::now(),
                        text,
                    });
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            pump(err, logs.clone(), Arc::default());
        }
        if let Some(out) = child.stdout.take() {
            pump(out, stdout.clone(), stdout_held.clone());
        }
        let (addr, metrics_addr) =
            super::wait::until("the server to listen", Duration::from_secs(30), || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the server exited before listening: {status}\n{}",
                        logs.lock()
                            .expect("logs")
                            .iter()
                            .map(|l| l.text.as_str())
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                let logs = logs.lock().expect("logs");
                let listen = bound_address(&logs, "serving", "listen")?;
                let metrics = bound_address(&logs, "metrics_serving", "metrics_listen")?;
                Some((listen, metrics))
            });
        Self {
            child,
            addr,
            metrics_addr,
            logs,
            stdout,
            stdout_held,
            dir,
        }
    }

    /// Stops (true) or resumes (false) reading the server's stdout: held,
    /// the pipe fills and the server's writes to it block.
    pub fn hold_stdout(&self, held: bool) {
        self.stdout_held
            .store(held, std::sync::atomic::Ordering::SeqCst);
    }

    /// What the server printed on stdout (audit lines, anchors).
    pub fn stdout(&self) -> Vec<LogLine> {
        self.stdout.lock().expect("stdout").clone()
    }

    /// The demo pool the local backend makes at start-up, read from the
    /// first-run text on stdout (waiting up to 10 s for it).
    pub fn demo_pool(&self) -> String {
        super::wait::until(
            "the first-run text to name the demo pool",
            Duration::from_secs(10),
            || {
                self.stdout().iter().find_map(|l| {
                    l.text
                        .strip_prefix("Demo user pool: ")
                        .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
                })
            },
        )
    }

    /// SIGTERM, and the exit status within 20 s.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "-TERM");
        let status = super::wait::until("an exit after SIGTERM", Duration::from_secs(20), || {
            self.child.try_wait().expect("wait")
        });
        // Let the pumps read the last lines.
        std::thread::sleep(Duration::from_millis(100));
        status
    }

    /// SIGKILL, now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().expect("logs").clone()
    }

    /// The first log line containing `needle`, waiting up to `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<LogLine> {
        super::wait::poll(timeout, || {
            self.logs().into_iter().find(|l| l.text.contains(needle))
        })
    }

    /// The Prometheus text at /metrics.
    pub fn metrics(&self) -> String {
        let mut s = TcpStream::connect(self.metrics_addr).expect("connect /metrics");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("request /metrics");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read /metrics");
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    /// The sum of every sample of `name` whose labels contain each of
    /// `labels` (`key="value"`); `None` when there is none.
    pub fn metric(&self, name: &str, labels: &[&str]) -> Option<f64> {
        sum_samples(&self.metrics(), name, labels)
    }

    /// Peak resident memory since the process started (VmHWM), in KiB.
    pub fn hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// One `kB` field of /proc/PID/status.
    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // The server writes its log lines out in batches: give the last
        // batch time to reach us before the SIGKILL (the canary scans them).
        std::thread::sleep(mfa_facade::telemetry::log::LOG_FLUSH_INTERVAL * 2);
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        // Keep what the server wrote for the canary scan of the suite.
        if let Some(keep) = canary::dir() {
            let name = format!("served-{}", uuid::Uuid::new_v4().simple());
            let text: Vec<String> = self
                .logs()
                .into_iter()
                .chain(self.stdout())
                .map(|l| l.text)
                .collect();
            let _ = std::fs::write(keep.join(format!("{name}.log")), text.join("\n"));
            for entry in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = entry.path();
                let file = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if file.contains("audit") {
                    let _ = std::fs::copy(&p, keep.join(format!("{name}-{file}")));
                }
            }
        }
    }
}

/// The canary: every secret a test uses is registered here, and every log
/// and audit file the suite's servers wrote is kept, so that a last step
/// of the test command can prove none of them holds any secret.
pub mod canary {
    use std::{io::Write, path::PathBuf};

    pub const ENV: &str = "MFA_FACADE_TEST_LOG_DIR";

    /// Where logs are kept; `None` outside the test command.
    pub fn dir() -> Option<PathBuf> {
        let d = PathBuf::from(std::env::var_os(ENV)?);
        std::fs::create_dir_all(&d).ok()?;
        Some(d)
    }

    /// Registers a secret the scan must never find.
    pub fn secret(value: &str) {
        if value.len() < 6 {
            return;
        }
        if let Some(d) = dir()
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("secrets.txt"))
        {
            let _ = writeln!(f, "{value}");
        }
    }
}

/// Sums the samples of one metric in Prometheus text.
pub fn sum_samples(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name || !labels.iter().all(|l| label_text.contains(l)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A config for `Served::start`: the local backend in the server's own
/// directory, `principal` proven by the test key and granted everything,
/// the given per-caller budget, then `extra` TOML.
pub fn local_config(principal: &str, per_second: f64, burst: u32, extra: &str) -> String {
    canary::secret(super::TEST_KEY);
    format!(
        r#"
[backend]
kind = "local"
data_file = "{{dir}}/data.json"

[[auth.api_keys]]
principal = "{principal}"
sha256 = "{hash}"

[[policy.rules]]
principals = ["{principal}"]
methods = ["*"]
user_pools = ["*"]

[limits.default]
per_second = {per_second}
burst = {burst}
{extra}
"#,
        hash = mfa_facade::auth::api_key::hash_key(super::TEST_KEY)
    )
}

/// A channel to `addr` (host:port).
pub async fn connect(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

impl Served {
    /// A channel to this server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        connect(&self.addr.to_string()).await
    }

    /// The server's readiness (`grpc.health.v1`, service ""), asked until
    /// it is `want` or `within` passes; returns the last answer.
    pub async fn health_until(
        &self,
        want: tonic_health::pb::health_check_response::ServingStatus,
        within: Duration,
    ) -> tonic_health::pb::health_check_response::ServingStatus {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let check = || async {
            HealthClient::new(self.channel().await)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| {
                    ServingStatus::try_from(r.into_inner().status).unwrap_or(ServingStatus::Unknown)
                })
                .unwrap_or(ServingStatus::Unknown)
        };
        let reached = super::wait::poll_async(within, || async {
            let now = check().await;
            (now == want).then_some(now)
        })
        .await;
        match reached {
            Some(now) => now,
            None => check().await,
        }
    }
}

/// A new user pool on a local-backend server (through its fixtures
/// service, with the test key), and, when `username` is given, a user with
/// a phone number in it.
pub async fn local_pool(ch: &tonic::transport::Channel, username: Option<&str>) -> String {
    use mfa_facade::proto::dev::v1 as dev;
    let mut f = dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
        ch.clone(),
        super::ApiKey::new(super::TEST_KEY),
    );
    let pool = f
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: format!("pool-{}", uuid::Uuid::new_v4().simple()),
            feature_plan: dev::FeaturePlan::Essentials as i32,
            ..Default::default()
        })
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    if let Some(username) = username {
        f.create_user(dev::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: username.into(),
            attributes: [("phone_number".to_owned(), "+15555550100".to_owned())].into(),
            ..Default::default()
        })
        .await
        .expect("user");
    }
    pool
}
