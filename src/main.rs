//! The `mfa-facade` command.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use mfa_facade::{config::Config, server, telemetry};

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
    /// Check a configuration file: print every error with its key, exit 1 if any.
    CheckConfig {
        /// The file to check (or --config FILE).
        file: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
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
            Ok(_) => {
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
        Command::Serve { config } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            telemetry::init_logging();
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
            match runtime.block_on(run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(message = "Server stopped with an error.", error = %e);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(config: Config) -> Result<(), server::ServeError> {
    let listener = server::bind(config.listen).await?;
    let backend = server::build_backend(&config).await;
    tracing::info!(
        message = "Serving gRPC.",
        listen = %config.listen,
        backend = backend.name(),
    );
    server::serve(listener, backend, shutdown_signal()).await?;
    tracing::info!(message = "Server stopped.");
    Ok(())
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
    tracing::info!(message = "Shutdown signal received; draining.");
}
