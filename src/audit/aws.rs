//! What the audit's AWS clients share — the S3 sink, the KMS signer, and
//! the verifier's readers of both: a runtime of their own (the writer
//! thread and the CLI call them synchronously) and the SDK's configuration.

use std::{future::Future, time::Duration};

/// A current-thread runtime for one client's calls.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The SDK's configuration (the default credential chain: IRSA on EKS),
/// with `region` and `endpoint_url` when set. `bounded`: the writer's
/// calls, each attempt at most 5 s (3 s to connect), so a stuck store
/// shows as failed puts, not a silent wait; the verifier's reads of large
/// objects are left to the SDK's own defaults.
pub async fn sdk_config(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    bounded: bool,
) -> aws_types::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if bounded {
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        );
    }
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_owned()));
    }
    if let Some(u) = endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// Runs `f` to its end on `rt`, from a thread of its own: the caller may be
/// inside the server's runtime, where a runtime cannot block.
pub fn block_on_aside<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl Future<Output = T> + Send,
) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| rt.block_on(f))
            .join()
            .map_err(|_| "an AWS client's set-up panicked".to_owned())
    })
}
