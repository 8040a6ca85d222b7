//! Deployment artefacts, checked the ways that need no Docker engine and no
//! cluster: every kustomize overlay renders (`kubectl kustomize`) and
//! validates against the Kubernetes schemas of a pinned version
//! (kubernetes-validate, strict); the config inside each rendered ConfigMap
//! (with the API-key Secret beside it) passes `mfa-facade check-config`;
//! the Dockerfile builds with scripts/build-dist.sh (the release code CI
//! tests, linked as shipped) and copies what it builds and files that
//! exist; the Deployment keeps its security settings and gRPC probes.

use crate::common;

use std::{path::Path, process::Command};

use common::procs::BIN;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The Kubernetes versions the manifests are validated against.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.32.0"];
const OVERLAYS: &[&str] = &["local", "aws"];

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} is required ({e}); scripts/test.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl kustomize` of an overlay; it must render without a warning
/// (kustomize v5 warns on the deprecated `bases`, `commonLabels`,
/// `patchesStrategicMerge`).
fn render(overlay: &str) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(format!("{ROOT}/deploy/k8s/overlays/{overlay}"))
        .output()
        .unwrap_or_else(|e| panic!("kubectl is required ({e}); scripts/test.sh installs it"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl kustomize {overlay} failed (kustomize v5 fields: resources, labels, patches; kubectl 1.27 or later reads them):\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "kubectl kustomize {overlay} warned:\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_overlay_renders_and_validates() {
    let dir = tempfile::tempdir().expect("dir");
    for (overlay, version) in OVERLAYS
        .iter()
        .flat_map(|o| KUBERNETES_VERSIONS.iter().map(move |v| (o, v)))
    {
        let rendered = render(overlay);
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).expect("write");
        let out = run(
            Command::new("kubernetes-validate")
                .args(["--strict", "--kubernetes-version", version])
                .arg(&file),
            "kubernetes-validate",
        );
        for kind in [
            "deployment/",
            "service/mfa-facade ",
            "service/mfa-facade-headless",
            "serviceaccount/",
            "configmap/",
            "secret/",
            "horizontalpodautoscaler/",
            "poddisruptionbudget/",
            "networkpolicy/",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.contains("passed") && l.contains(kind.trim())),
                "{overlay} on {version}: no {kind} passed:\n{out}"
            );
        }
        assert!(
            !out.contains("ERROR") && !out.contains("failed"),
            "{overlay} on {version}:\n{out}"
        );
    }
}

/// Pulls `key` of every `kind` object out of rendered YAML (Python's yaml,
/// which kubernetes-validate brings).
fn objects(rendered: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(rendered.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 with PyYAML");
    serde_json::from_slice(&out.stdout).expect("JSON of the objects")
}

fn of_kind<'a>(objs: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    objs.as_array()
        .expect("array")
        .iter()
        .filter(|o| o["kind"] == kind)
        .collect()
}

#[test]
fn each_configmaps_config_passes_check_config() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay));
        let dir = tempfile::tempdir().expect("dir");
        let mount = dir.path().display().to_string();
        let secret: String = of_kind(&objs, "Secret")[0]["data"]["api-keys.toml"]
            .as_str()
            .expect("the api-keys Secret")
            .split_whitespace()
            .collect();
        std::fs::create_dir_all(dir.path().join("keys")).expect("keys dir");
        std::fs::write(
            dir.path().join("keys/api-keys.toml"),
            STANDARD.decode(secret).expect("base64"),
        )
        .expect("write keys");
        let config = of_kind(&objs, "ConfigMap")[0]["data"]["config.toml"]
            .as_str()
            .expect("config.toml in the ConfigMap")
            .replace("/etc/mfa-facade", &mount);
        let out = check_config_with_secrets(&config, dir.path());
        assert!(out.contains("config OK"), "{overlay}: {out}");
        // Neither overlay keeps a laptop's default (no audit sink, budgets
        // per replica, no drain delay) on its public address.
        assert!(!out.contains("warning:"), "{overlay}: {out}");
    }
    // The aws overlay really is the fleet setup.
    let aws = objects(&render("aws"));
    let config = of_kind(&aws, "ConfigMap")[0]["data"]["config.toml"]
        .as_str()
        .unwrap_or("");
    for needle in [
        "kind = \"cognito\"",
        "[limits.redis]",
        "url = \"rediss://",
        "password_file = ",
        "stdout = true",
        "[audit.signing]",
        "secret_file = ",
    ] {
        assert!(config.contains(needle), "aws config lacks {needle}");
    }
    assert_eq!(of_kind(&aws, "Deployment")[0]["spec"]["replicas"], 3);
    assert_eq!(
        of_kind(&objects(&render("local")), "Deployment")[0]["spec"]["replicas"],
        1
    );
}

/// `mfa-facade check-config` of `config`, whose `/etc/mfa-facade` paths
/// were replaced by `dir`, with the files the operator's Secrets provide
/// present as in the pod: the Redis CA and AUTH as placeholders, a real
/// audit signing key (check-config reads it), a 32-byte deployment secret.
fn check_config_with_secrets(config: &str, dir: &std::path::Path) -> String {
    let mount = dir.display().to_string();
    for line in config.lines() {
        if let Some((key, value)) = line.split_once(" = ")
            && key.ends_with("_file")
            && let Some(file) = value
                .trim_matches('"')
                .strip_prefix(&format!("{mount}/redis/"))
        {
            std::fs::create_dir_all(dir.join("redis")).expect("redis dir");
            std::fs::write(dir.join("redis").join(file), "placeholder\n").expect("redis file");
        }
    }
    if config.contains(&format!("{mount}/audit/ed25519.pem")) {
        std::fs::create_dir_all(dir.join("audit")).expect("audit dir");
        run(
            Command::new(BIN)
                .args(["audit", "keygen"])
                .arg(dir.join("audit/ed25519.pem")),
            "mfa-facade audit keygen",
        );
    }
    if config.contains(&format!("{mount}/secret/deployment")) {
        std::fs::create_dir_all(dir.join("secret")).expect("secret dir");
        std::fs::write(
            dir.join("secret/deployment"),
            uuid::Uuid::new_v4().simple().to_string(),
        )
        .expect("secret");
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    run(
        Command::new(BIN).arg("check-config").arg(&path).env_clear(),
        "mfa-facade check-config",
    )
}

/// deploy/config/production.toml, the commented production configuration,
/// is accepted by check-config without a warning: it keeps none of a
/// laptop's defaults on its public address.
#[test]
fn the_production_configuration_passes_check_config_without_a_warning() {
    let dir = tempfile::tempdir().expect("dir");
    let mount = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys dir");
    std::fs::copy(
        "deploy/k8s/base/api-keys.toml",
        dir.path().join("keys/api-keys.toml"),
    )
    .expect("the example keys file");
    let config = std::fs::read_to_string("deploy/config/production.toml")
        .expect("deploy/config/production.toml")
        .replace("/etc/mfa-facade", &mount);
    let out = check_config_with_secrets(&config, dir.path());
    assert!(out.contains("config OK"), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    for must in [
        "kind = \"cognito\"",
        "[limits.redis]",
        "[audit.signing]",
        "[audit.s3]",
        "secret_file",
        "drain_delay_ms",
    ] {
        assert!(config.contains(must), "production.toml sets {must}");
    }
}

#[test]
fn the_deployment_is_locked_down_and_probed_over_grpc() {
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay));
        let pod = &of_kind(&objs, "Deployment")[0]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["readinessProbe"]["grpc"]["port"], 50051, "numeric port");
        assert_eq!(c["livenessProbe"]["grpc"]["port"], 50051);
        assert_eq!(
            c["livenessProbe"]["grpc"]["service"],
            mfa_facade::server::LIVENESS_SERVICE
        );
        assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object());
        let sa = of_kind(&objs, "ServiceAccount")[0];
        assert!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string());
    }
}

#[test]
fn the_dockerfile_builds_as_ci_does_and_copies_what_exists() {
    let dockerfile =
        std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).expect("deploy/Dockerfile");
    assert!(
        dockerfile.lines().any(|l| l == "RUN scripts/build-dist.sh"),
        "the image's binary is built by scripts/build-dist.sh"
    );
    // The script builds the binary CI builds (scripts/test.sh's release
    // build), with the dist profile and the startup order that exists.
    let script =
        std::fs::read_to_string(format!("{ROOT}/scripts/build-dist.sh")).expect("build-dist.sh");
    assert!(script.contains("cargo rustc --locked --profile dist --bin mfa-facade"));
    assert!(script.contains("$root/deploy/link/startup-order.txt"));
    assert!(
        Path::new(ROOT)
            .join("deploy/link/startup-order.txt")
            .is_file()
    );
    let cargo = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).expect("Cargo.toml");
    assert!(cargo.contains("[profile.dist]\ninherits = \"release\""));
    let test_sh = std::fs::read_to_string(format!("{ROOT}/scripts/test.sh")).expect("test.sh");
    let build = "cargo build --locked --release --bin mfa-facade";
    assert!(
        test_sh.lines().any(|l| l.trim() == build),
        "scripts/test.sh runs `{build}`"
    );
    let mut copies = 0;
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let from = parts[parts.len() - 2];
        if line.contains("--from=build") {
            // The build stage works in /src, the repository root; the one
            // thing it copies out is what build-dist.sh builds.
            let path = from.strip_prefix("/src/").expect("a path under /src");
            assert_eq!(path, "target/dist/mfa-facade");
            copies += 1;
        } else if from != "." {
            assert!(
                Path::new(ROOT).join(from).is_file(),
                "{from} does not exist"
            );
            if from.ends_with(".toml") {
                let out = Command::new(BIN)
                    .arg("check-config")
                    .arg(Path::new(ROOT).join(from))
                    .env_clear()
                    .output()
                    .expect("check-config");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                // Its keys file is mounted at run time; everything else is valid.
                assert!(
                    text.contains("config OK")
                        || text.lines().all(|l| l.starts_with("auth.api_keys_file")),
                    "{text}"
                );
            }
            copies += 1;
        }
    }
    assert!(copies >= 2, "the binary and the config are copied");
    assert!(dockerfile.contains("USER 65532"), "runs as non-root");
}
