//! The `mfa-facade` command.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use mfa_facade::{
    app::{App, Options},
    auth,
    config::Config,
    events,
    server::ServeError,
    telemetry,
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
    /// Print the JSON Schema of the configuration file (every key, type,
    /// default and bound), for an editor's TOML validation (e.g. taplo).
    ConfigSchema,
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
        // The file sink's history index beside it, unless given too.
        let index = mfa_facade::audit::history::index_path(path);
        if path.as_os_str() != "-" && index.exists() && !args.files.contains(&index) {
            match std::fs::read_to_string(&index) {
                Ok(text) => inputs.push(verify::Input {
                    name: index.display().to_string(),
                    text,
                }),
                Err(e) => {
                    println!("FAILED: {}:0: cannot read: {e}", index.display());
                    return ExitCode::FAILURE;
                }
            }
        }
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
    if report.index_entries > 0 {
        println!(
            "history index: {} entries checked against their records{}",
            report.index_entries,
            if report.index_unchecked > 0 {
                format!(
                    ", {} whose records are not among the inputs (older files)",
                    report.index_unchecked
                )
            } else {
                String::new()
            }
        );
    }
    if report.index_missing_in_tail > 0 {
        println!(
            "note: {} pool change(s) after a killed run's last checkpoint have no history index entry (the run ended between the records and their index)",
            report.index_missing_in_tail
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
        Command::ConfigSchema => {
            println!("{:#}", mfa_facade::config::schema::schema());
            ExitCode::SUCCESS
        }
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
            // Held to the end: dropping it writes the log lines still queued.
            let log = telemetry::init_logging();
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
            let options = Options {
                development: path.is_none(),
                config_path: path,
                first_run: true,
                ..Options::default()
            };
            let served = runtime.block_on(async move {
                App::build_with(&config, options)
                    .await?
                    .serve(shutdown_signal())
                    .await
            });
            match served {
                Ok(()) => {
                    events::Stopped { error: None }.emit();
                    ExitCode::SUCCESS
                }
                Err(e @ ServeError::DevelopmentOffLoopback(_)) => {
                    drop(log);
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    events::Stopped { error: Some(&e) }.emit();
                    ExitCode::FAILURE
                }
            }
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
