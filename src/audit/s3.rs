//! The fleet's shared, acknowledging audit sink (`[audit.s3]`): records as
//! S3 objects that are never overwritten, in a bucket whose Object Lock
//! (compliance mode, the operator's default retention) keeps anyone — the
//! writer included — from deleting or replacing them before retention ends.
//!
//! - `<prefix>records/<source>/<run>/<first seq, 20 digits>.jsonl`: a group
//!   of records (group commit: the records that arrive together share one
//!   object), put with `If-None-Match: *`, so an existing key is never
//!   replaced;
//! - `<prefix>checkpoints/<source>/<run>/<seq, 20 digits>.json`: each
//!   checkpoint, beside them;
//! - `<prefix>history/<pool>/<revision>.json`: a copy of each history
//!   record (a pool's MFA change, `audit::history`), put after the records
//!   object that holds it;
//! - `<prefix>drift/<pool>/<revision known>-<etag seen>.json`: the claim of
//!   the one replica that records an external change.
//!
//! The writer thread calls it synchronously (a runtime of its own), and a
//! put that fails is tried again, with backoff, until it lands: seqs are
//! never given twice and the bucket never has a gap, while the records'
//! waiters reach their deadlines (AUDIT_UNAVAILABLE) and health turns
//! NOT_SERVING after `audit.stall_seconds`. A retry answered 412 (the
//! object exists) is a put that landed the first time: only this run
//! writes under its own random run id.

use std::time::Duration;

use aws_sdk_s3::{Client, primitives::ByteStream};

use super::settings::S3Config;

/// The first wait after a failed put, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct S3Sink {
    rt: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    /// `prefix`, then the kind, source and run: where this run's objects go.
    records: String,
    checkpoints: String,
    /// `prefix` and `history/`.
    history: String,
}

impl std::fmt::Debug for S3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Sink(s3://{}/{})", self.bucket, self.records)
    }
}

/// Why a put failed, as the log may say it (no credentials in it).
fn describe<E: std::fmt::Debug>(e: &aws_sdk_s3::error::SdkError<E>) -> String {
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::ServiceError(s) => {
            let raw = s.raw();
            format!("S3 answered HTTP {}", raw.status().as_u16())
        }
        SdkError::TimeoutError(_) => "S3 did not answer in time".into(),
        SdkError::DispatchFailure(_) => "S3 could not be reached".into(),
        _ => "the S3 request could not be made".into(),
    }
}

/// An S3 client of `sdk`, path-style addressing when asked (moto, MinIO).
fn client_of(sdk: &aws_types::SdkConfig, force_path_style: bool) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(force_path_style)
            .build(),
    )
}

impl S3Sink {
    /// The client of `[audit.s3]` (the default credential chain: IRSA on
    /// EKS), for this run's objects.
    pub fn connect(config: &S3Config, source: &str, run: &str) -> std::io::Result<Self> {
        let rt = super::aws::runtime()?;
        let client = super::aws::block_on_aside(&rt, async {
            let sdk = super::aws::sdk_config(
                config.region.as_deref(),
                config.endpoint_url.as_deref(),
                true,
            )
            .await;
            client_of(&sdk, config.force_path_style)
        })
        .map_err(std::io::Error::other)?;
        let prefix = &config.prefix;
        Ok(Self {
            rt,
            client,
            bucket: config.bucket.clone(),
            records: format!("{prefix}records/{source}/{run}/"),
            checkpoints: format!("{prefix}checkpoints/{source}/{run}/"),
            history: format!("{prefix}history/"),
        })
    }

    /// Puts one object once: `Ok` when it is in S3 (now, or by an earlier
    /// attempt whose answer was lost).
    fn put_once(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        self.rt.block_on(async {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type(content_type)
                .body(ByteStream::from(body))
                .send()
                .await;
            match put {
                Ok(_) => Ok(()),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(()),
                Err(e) => Err(describe(&e)),
            }
        })
    }

    /// Puts one object, trying again until it lands or `give_up` says so
    /// (at drain). `on_failure` hears each failure (for the log and the
    /// stall watch).
    pub fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        mut on_failure: impl FnMut(&str),
        give_up: impl Fn() -> bool,
    ) -> Result<(), String> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.put_once(key, body.clone(), content_type) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    on_failure(&e);
                    if give_up() {
                        return Err(e);
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The key of a group of records whose first is `first_seq`.
    pub fn records_key(&self, first_seq: u64) -> String {
        format!("{}{first_seq:020}.jsonl", self.records)
    }

    /// The key of the history entry `revision` of `pool`.
    pub fn history_key(&self, pool: &str, revision: &str) -> String {
        format!("{}{pool}/{revision}.json", self.history)
    }

    /// The key of the checkpoint of `seq`.
    pub fn checkpoint_key(&self, seq: u64, ended: bool) -> String {
        // A run's final checkpoint may seal the same head as the one before
        // it (nothing happened between): its key says so, never the same.
        format!(
            "{}{seq:020}{}.json",
            self.checkpoints,
            if ended { "-ended" } else { "" }
        )
    }
}

/// Every object under `s3://bucket/prefix` (records and checkpoints), as
/// (its `s3://` name, its text), for `audit verify`: the default credential
/// chain, `AWS_REGION`, and `endpoint_url` for an S3-compatible store.
pub fn read_prefix(
    url: &str,
    endpoint_url: Option<&str>,
    force_path_style: bool,
) -> Result<Vec<(String, String)>, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url} is not s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let rt = super::aws::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sdk = super::aws::sdk_config(None, endpoint_url, false).await;
        let client = client_of(&sdk, force_path_style);
        let mut keys = Vec::new();
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("listing {url}: {}", describe(&e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let got = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| format!("reading s3://{bucket}/{key}: {}", describe(&e)))?;
            let bytes = got
                .body
                .collect()
                .await
                .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?
                .into_bytes();
            out.push((
                format!("s3://{bucket}/{key}"),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        Ok(out)
    })
}

/// The most pools the drift watch lists from the bucket's history.
pub const MAX_HISTORY_POOLS: usize = 10_000;

/// The readers of a pool's history in the bucket (`audit::history`), on
/// the server's runtime: a client of their own, made at first use.
pub struct S3History {
    config: S3Config,
    client: tokio::sync::OnceCell<Client>,
}

impl std::fmt::Debug for S3History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3History(s3://{}/{}history/)",
            self.config.bucket, self.config.prefix
        )
    }
}

impl S3History {
    pub fn new(config: &S3Config) -> Self {
        Self {
            config: config.clone(),
            client: tokio::sync::OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let sdk = super::aws::sdk_config(
                    self.config.region.as_deref(),
                    self.config.endpoint_url.as_deref(),
                    true,
                )
                .await;
                client_of(&sdk, self.config.force_path_style)
            })
            .await
    }

    fn pool_prefix(&self, pool: &str) -> String {
        format!("{}history/{pool}/", self.config.prefix)
    }

    /// Up to `limit` revisions of `pool`, newest first, after `after`.
    pub async fn list(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        let prefix = self.pool_prefix(pool);
        let mut req = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(&prefix)
            .max_keys(i32::try_from(limit).unwrap_or(1000).min(1000));
        if let Some(a) = after {
            req = req.start_after(format!("{prefix}{a}.json"));
        }
        let page = req
            .send()
            .await
            .map_err(|e| format!("listing the history: {}", describe(&e)))?;
        Ok(page
            .contents()
            .iter()
            .filter_map(|o| o.key()?.strip_prefix(&prefix)?.strip_suffix(".json"))
            .map(str::to_owned)
            .take(limit)
            .collect())
    }

    /// The entry object `revision` of `pool`: `None` when there is none.
    pub async fn get(&self, pool: &str, revision: &str) -> Result<Option<Vec<u8>>, String> {
        let key = format!("{}{revision}.json", self.pool_prefix(pool));
        let got = self
            .client()
            .await
            .get_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .send()
            .await;
        let got = match got {
            Ok(g) => g,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Ok(None);
            }
            Err(e) => return Err(format!("reading the history: {}", describe(&e))),
        };
        // An entry is one record: bounded as records are.
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|_| "reading the history: the object's body broke off".to_owned())?
            .into_bytes();
        if bytes.len() > super::bound::MAX_RECORD_BYTES + 1 {
            return Ok(None);
        }
        Ok(Some(bytes.to_vec()))
    }

    /// The pools with a history, at most [`MAX_HISTORY_POOLS`].
    pub async fn pools(&self) -> Result<Vec<String>, String> {
        let prefix = format!("{}history/", self.config.prefix);
        let mut pools = Vec::new();
        let mut pages = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("listing the history: {}", describe(&e)))?;
            pools.extend(page.common_prefixes().iter().filter_map(|p| {
                Some(
                    p.prefix()?
                        .strip_prefix(&prefix)?
                        .strip_suffix('/')?
                        .to_owned(),
                )
            }));
            if pools.len() >= MAX_HISTORY_POOLS {
                pools.truncate(MAX_HISTORY_POOLS);
                break;
            }
        }
        Ok(pools)
    }

    /// Puts the marker of one external change (`key`) if no replica has:
    /// true for the replica whose put made it.
    pub async fn claim(&self, pool: &str, key: &str) -> Result<bool, String> {
        let put = self
            .client()
            .await
            .put_object()
            .bucket(&self.config.bucket)
            .key(format!("{}drift/{pool}/{key}.json", self.config.prefix))
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(b"{}".to_vec()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(format!("claiming the drift record: {}", describe(&e))),
        }
    }
}
