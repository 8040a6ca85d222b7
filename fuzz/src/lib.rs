//! The fuzz targets' harness: the service as `App::build` makes it, on the
//! local backend, audited to a bounded temp file. Every request target
//! sends its bytes as a gRPC request through the API's routes, by method
//! name from the method table — the codec's wire-level counts and decode
//! limits, prost decoding, then the service (conversion, authorization,
//! validation, limits, audit record, backend). A panic anywhere is a finding.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mfa_facade::{
    app::{App, Options},
    auth::{AuthState, Principal, ProvenBy},
    config::Config,
    method::{self, Method},
};
use tonic::service::Routes;
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    routes: Routes,
    _dir: tempfile::TempDir,
}

const PRINCIPAL: &str = "fuzz";

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The service as `main` builds it, on the local backend, auditing
        // everything at the fullest level into one small rotating file.
        let config = Config::from_toml_and_env(
            &format!(
                "listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
                 [backend]\nkind = \"local\"\ndata_file = \"{}\"\n\
                 [audit]\nfile = \"{}\"\nfail_closed = false\nmax_file_bytes = 4194304\nmax_files = 1\n\
                 default_level = \"request_response\"\n\
                 [limits.default]\nper_second = 1000000\nburst = 1000000\n",
                dir.path().join("data.json").display(),
                dir.path().join("audit.jsonl").display()
            ),
            std::iter::empty(),
        )
        .expect("config");
        let routes = rt.block_on(async {
            let app = App::build_with(
                &config,
                Options {
                    first_run: true,
                    callers: Some(AuthState::single_key(PRINCIPAL, "fuzz-key")),
                    ..Options::default()
                },
            )
            .await
            .expect("the service");
            app.api_routes()
        });
        Harness {
            rt,
            routes,
            _dir: dir,
        }
    })
}

/// The methods the targets drive: every method of the table, API and
/// local fixtures alike, so a method added to the table is fuzzed
/// without a new target.
pub fn methods() -> &'static [&'static Method] {
    method::TABLE
}

/// One input to `method` (its full name, `package.Service/Method`): `data`
/// is the request message, framed as gRPC and sent through the API's
/// routes as the server's layers hand it on (the principal set, as the
/// auth layer sets it); the answer, a stream's too, is read to its end.
/// Gives its `grpc-status` (from the headers, or the trailers).
pub fn call(method: &str, data: &[u8]) -> Option<String> {
    let len = u32::try_from(data.len()).ok()?;
    let mut body = Vec::with_capacity(data.len().saturating_add(5));
    body.push(0);
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(data);
    let Ok(mut request) = http::Request::builder()
        .method("POST")
        .uri(format!("/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
    else {
        return None;
    };
    request
        .extensions_mut()
        .insert(Principal::new(PRINCIPAL.into(), ProvenBy::ApiKey));
    let h = harness();
    h.rt.block_on(async {
        let response = match h.routes.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = |map: &http::HeaderMap| {
            map.get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let in_headers = status(response.headers());
        let body = response.into_body().collect().await.ok()?;
        in_headers.or_else(|| body.trailers().and_then(status))
    })
}

/// One input for the method at `index` of [`methods`] (by its first byte
/// in the `api` target).
pub fn run(index: usize, data: &[u8]) {
    if let Some(m) = methods().get(index) {
        let _ = call(m.name, data);
    }
}

/// One input for the method named `name` (`Service/Method` or just
/// `Method`), for the per-method targets.
pub fn run_named(name: &str, data: &[u8]) {
    let m = methods()
        .iter()
        .find(|m| m.name.rsplit('/').next() == Some(name))
        .unwrap_or_else(|| panic!("no method {name} in the method table"));
    let _ = call(m.name, data);
}

/// `audit verify` on `data` as one input.
pub fn verify(data: &[u8]) {
    use mfa_facade::audit::verify::{Input, Options, verify};
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = verify(
        &[Input {
            name: "fuzz".into(),
            text,
        }],
        &Options::default(),
    );
}

/// The config loader on `data` as TOML, with no environment.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml_and_env(text, std::iter::empty());
    }
}

#[cfg(test)]
mod tests {
    /// Every method of the table is served through the harness and
    /// answers each input with a gRPC status (its empty message, a
    /// truncated one, bytes that are no message at all) — never a panic,
    /// never "unimplemented" (12: a method the routes do not serve).
    #[test]
    fn every_method_is_driven() {
        for m in super::methods() {
            for data in [&b""[..], &[0x0a, 0x05, b'a'][..], &[0xff; 16][..]] {
                let status = super::call(m.name, data);
                assert!(
                    status.as_deref().is_some_and(|s| s != "12"),
                    "{}: {status:?}",
                    m.name
                );
            }
            super::run_named(m.name.rsplit('/').next().unwrap_or(""), b"");
        }
        // A Get of no pool is refused by validation: the request reached the service.
        assert_eq!(
            super::call(
                "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
                b""
            )
            .as_deref(),
            Some("3")
        );
    }
}
