//! The fuzz targets' harness: one in-process facade on the local backend,
//! audited to a bounded temp file, that every request target drives the way
//! the server does — the codec's wire-level counts, prost decoding, then the
//! service method (conversion, authorization, validation, limits, audit
//! record, backend). A panic anywhere is a finding.

use std::sync::OnceLock;

use mfa_facade::{
    api::{MfaApi, codec::check_repeated},
    app::{App, Options},
    auth::{AuthState, Principal, ProvenBy},
    config::Config,
    proto::v1 as pb,
};
use pb::{
    user_mfa_service_server::UserMfaService, user_pool_mfa_service_server::UserPoolMfaService,
};

struct Harness {
    rt: tokio::runtime::Runtime,
    api: MfaApi,
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
        let api = rt.block_on(async {
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
            app.api()
        });
        Harness { rt, api, _dir: dir }
    })
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.extensions_mut()
        .insert(Principal::new(PRINCIPAL.into(), ProvenBy::ApiKey));
    r
}

/// Decodes `data` as `T` the way the server does, then calls `method`.
macro_rules! drive {
    ($data:expr, $ty:ty, $trait:ident :: $method:ident) => {{
        if check_repeated::<$ty>($data).is_err() {
            return;
        }
        let Ok(message) = <$ty as prost::Message>::decode($data) else {
            return;
        };
        let h = harness();
        let _ =
            h.rt.block_on(<MfaApi as $trait>::$method(&h.api, request(message)));
    }};
}

/// The request types, in the order of the targets' indexes.
pub const METHODS: [&str; 16] = [
    "GetUserPoolMfaConfig",
    "SetUserPoolMfaConfig",
    "UpdateUserPoolMfaConfig",
    "SetUserMfaPreference",
    "AdminSetUserMfaPreference",
    "AssociateSoftwareToken",
    "VerifySoftwareToken",
    "GetUserMfaSettings",
    "AdminGetUserMfaSettings",
    "AdminDeleteSoftwareToken",
    "CheckUserPoolMfaConfig",
    "GetUserAuthFactors",
    "AdminGetUserAuthFactors",
    "ListWebAuthnCredentials",
    "DeleteWebAuthnCredential",
    "ListUserMfaStatus",
];

/// One input for request type `index` of [`METHODS`].
pub fn run(index: usize, data: &[u8]) {
    match index {
        0 => drive!(
            data,
            pb::GetUserPoolMfaConfigRequest,
            UserPoolMfaService::get_user_pool_mfa_config
        ),
        1 => drive!(
            data,
            pb::SetUserPoolMfaConfigRequest,
            UserPoolMfaService::set_user_pool_mfa_config
        ),
        2 => drive!(
            data,
            pb::UpdateUserPoolMfaConfigRequest,
            UserPoolMfaService::update_user_pool_mfa_config
        ),
        3 => drive!(
            data,
            pb::SetUserMfaPreferenceRequest,
            UserMfaService::set_user_mfa_preference
        ),
        4 => drive!(
            data,
            pb::AdminSetUserMfaPreferenceRequest,
            UserMfaService::admin_set_user_mfa_preference
        ),
        5 => drive!(
            data,
            pb::AssociateSoftwareTokenRequest,
            UserMfaService::associate_software_token
        ),
        6 => drive!(
            data,
            pb::VerifySoftwareTokenRequest,
            UserMfaService::verify_software_token
        ),
        7 => drive!(
            data,
            pb::GetUserMfaSettingsRequest,
            UserMfaService::get_user_mfa_settings
        ),
        8 => drive!(
            data,
            pb::AdminGetUserMfaSettingsRequest,
            UserMfaService::admin_get_user_mfa_settings
        ),
        9 => drive!(
            data,
            pb::AdminDeleteSoftwareTokenRequest,
            UserMfaService::admin_delete_software_token
        ),
        10 => drive!(
            data,
            pb::CheckUserPoolMfaConfigRequest,
            UserPoolMfaService::check_user_pool_mfa_config
        ),
        11 => drive!(
            data,
            pb::GetUserAuthFactorsRequest,
            UserMfaService::get_user_auth_factors
        ),
        12 => drive!(
            data,
            pb::AdminGetUserAuthFactorsRequest,
            UserMfaService::admin_get_user_auth_factors
        ),
        13 => drive!(
            data,
            pb::ListWebAuthnCredentialsRequest,
            UserMfaService::list_web_authn_credentials
        ),
        14 => drive!(
            data,
            pb::DeleteWebAuthnCredentialRequest,
            UserMfaService::delete_web_authn_credential
        ),
        15 => walk(data),
        _ => {}
    }
}

/// A coverage walk of the request in `data`, read to its end (the demo
/// pool has one user; any other pool ends at its first page).
fn walk(data: &[u8]) {
    use tokio_stream::StreamExt;
    if check_repeated::<pb::ListUserMfaStatusRequest>(data).is_err() {
        return;
    }
    let Ok(message) = <pb::ListUserMfaStatusRequest as prost::Message>::decode(data) else {
        return;
    };
    let h = harness();
    h.rt.block_on(async {
        if let Ok(stream) = h.api.list_user_mfa_status(request(message)).await {
            let mut stream = stream.into_inner();
            while stream.next().await.is_some() {}
        }
    });
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
