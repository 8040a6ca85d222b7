//! Fleet mode: the budgets live in Redis, so every replica spends the same
//! buckets. Each decision is one Lua script (`gcra.lua`) on one of a few
//! multiplexed connections, under a short timeout. When Redis errs or is
//! late, the limiter decides in this process from then on, says so in a
//! log line and a metric, and a background task brings Redis back once it
//! answers again.

use std::{
    sync::{
        Arc, RwLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};
use tokio::sync::Notify;

use super::settings::RedisConfig;
use super::{Bucket, Budgets, Refusal};

/// The longest a (re)connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const GCRA: &str = include_str!("gcra.lua");

pub struct Fleet {
    client: Option<redis::Client>,
    pool: RwLock<Vec<MultiplexedConnection>>,
    next: AtomicUsize,
    healthy: AtomicBool,
    wake: Notify,
    timeout: Duration,
    probe_interval: Duration,
    pool_size: usize,
    prefix: String,
    script: redis::Script,
    budgets: Arc<Budgets>,
    /// The Redis address without credentials, for logs.
    target: String,
}

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("not connected")]
    NotConnected,
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// `redis://user:pass@host:6379/0` -> `host:6379/0` (and `rediss://` the same).
pub fn redacted(url: &str) -> String {
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .unwrap_or(url);
    rest.rsplit_once('@')
        .map_or(rest, |(_, host)| host)
        .to_owned()
}

/// The first line of a secret file, without its line end.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// The client of `[limits.redis]`: the URL, AUTH from `username_file` and
/// `password_file` (so no password sits in the config or the
/// environment), and for `rediss://` TLS verified against `ca_file` (else
/// the system's roots).
fn client(config: &RedisConfig) -> Result<redis::Client, String> {
    use redis::IntoConnectionInfo;
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| e.to_string())?;
    if let Some(path) = &config.password_file {
        let mut settings = info
            .redis_settings()
            .clone()
            .set_password(read_secret(path)?);
        if let Some(user) = &config.username_file {
            settings = settings.set_username(read_secret(user)?);
        }
        info = info.set_redis_settings(settings);
    }
    match &config.ca_file {
        Some(ca) => {
            let root_cert = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
            .map_err(|e| e.to_string())
        }
        None => redis::Client::open(info).map_err(|e| e.to_string()),
    }
}

impl Fleet {
    /// Connects to the Redis of `config`, and starts the task that brings
    /// it back whenever it is lost. A failure here only means starting on
    /// local limits.
    pub async fn start(config: &RedisConfig, budgets: Arc<Budgets>) -> Arc<Self> {
        let target = redacted(&config.url);
        let client = match client(config) {
            Ok(c) => Some(c),
            Err(e) => {
                crate::events::RedisInvalid {
                    redis: &target,
                    error: &e,
                }
                .emit();
                None
            }
        };
        let fleet = Arc::new(Self {
            client,
            pool: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            healthy: AtomicBool::new(false),
            wake: Notify::new(),
            timeout: Duration::from_millis(config.timeout_ms),
            probe_interval: Duration::from_millis(config.probe_interval_ms),
            pool_size: config.pool_size,
            prefix: config.key_prefix.clone(),
            script: redis::Script::new(GCRA),
            budgets,
            target,
        });
        match tokio::time::timeout(CONNECT_TIMEOUT, fleet.connect()).await {
            Ok(Ok(conns)) => fleet.restore(conns, false),
            Ok(Err(e)) => fleet.note_down(&e.to_string(), false),
            Err(_) => fleet.note_down("no connection within 1 s", false),
        }
        tokio::spawn(bring_back(Arc::downgrade(&fleet)));
        fleet
    }

    async fn connect(&self) -> Result<Vec<MultiplexedConnection>, FleetError> {
        let client = self.client.as_ref().ok_or(FleetError::NotConnected)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let mut conns = Vec::with_capacity(self.pool_size);
        for _ in 0..self.pool_size {
            conns.push(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        if let Some(first) = conns.first_mut() {
            // Proves Redis answers, and caches the script for EVALSHA.
            self.script.load_async(first).await?;
        }
        Ok(conns)
    }

    fn restore(&self, conns: Vec<MultiplexedConnection>, restored: bool) {
        if let Ok(mut pool) = self.pool.write() {
            *pool = conns;
        }
        self.healthy.store(true, Ordering::SeqCst);
        crate::events::RedisConnected {
            redis: &self.target,
            restored,
        }
        .emit();
    }

    /// `started`: Redis answered until now.
    fn note_down(&self, reason: &str, started: bool) {
        crate::events::RedisFallback {
            redis: &self.target,
            reason,
            started,
        }
        .emit();
    }

    /// Marks Redis lost (once) and wakes the task that brings it back.
    fn trip(&self, reason: &str) {
        if self.healthy.swap(false, Ordering::SeqCst) {
            self.note_down(reason, true);
            self.wake.notify_one();
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        let pool = self.pool.read().ok()?;
        if pool.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % pool.len();
        pool.get(i).cloned()
    }

    /// The decision, or `None` when Redis cannot give it in time: then the
    /// caller decides locally, and so do later calls until Redis is back.
    pub async fn decide(&self, buckets: &[Bucket]) -> Option<Result<(), Refusal>> {
        if !self.healthy() {
            return None;
        }
        match tokio::time::timeout(self.timeout, self.decide_at(buckets, None)).await {
            Ok(Ok(decision)) => Some(decision),
            Ok(Err(e)) => {
                self.trip(&e.to_string());
                None
            }
            Err(_) => {
                self.trip(&format!("no answer within {} ms", self.timeout.as_millis()));
                None
            }
        }
    }

    /// One run of the script. `now_us` replaces Redis's clock (tests).
    pub async fn decide_at(
        &self,
        buckets: &[Bucket],
        now_us: Option<u64>,
    ) -> Result<Result<(), Refusal>, FleetError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(now_us.map(|n| n.to_string()).unwrap_or_default());
        let mut rates = Vec::with_capacity(buckets.len());
        for b in buckets {
            let Some(rate) = self.budgets.rate(b.id) else {
                continue;
            };
            invocation
                .key(self.redis_key(b))
                .arg(rate.emission_interval().as_secs_f64() * 1e6)
                .arg(rate.burst);
            rates.push((b.id, rate));
        }
        if rates.is_empty() {
            return Ok(Ok(()));
        }
        let mut conn = self.connection().ok_or(FleetError::NotConnected)?;
        let (worst, wait_us): (usize, u64) = invocation.invoke_async(&mut conn).await?;
        Ok(match worst.checked_sub(1).and_then(|i| rates.get(i)) {
            None => Ok(()),
            Some((id, rate)) => Err(Refusal {
                id: *id,
                rate: *rate,
                retry_after: Duration::from_micros(wait_us),
            }),
        })
    }

    /// `{prefix}:caller:GetUserPoolMfaConfig:<hex key>`: the hash tag keeps
    /// one decision's keys in one Redis Cluster slot.
    fn redis_key(&self, b: &Bucket) -> String {
        format!(
            "{{{}}}:{}:{}",
            self.prefix,
            b.id.name(),
            crate::hash::hex(&b.key)
        )
    }
}

/// While Redis is lost, tries it every `probe_interval`; ends with the
/// limiter.
async fn bring_back(fleet: Weak<Fleet>) {
    loop {
        let Some(f) = fleet.upgrade() else {
            return;
        };
        if f.healthy() {
            let _ = tokio::time::timeout(Duration::from_secs(1), f.wake.notified()).await;
            continue;
        }
        tokio::time::sleep(f.probe_interval).await;
        if let Ok(Ok(conns)) = tokio::time::timeout(CONNECT_TIMEOUT, f.connect()).await {
            f.restore(conns, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(
            redacted("redis://u:secret@10.0.0.1:6379/2"),
            "10.0.0.1:6379/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "127.0.0.1:6379");
    }
}
