//! The auth matrix, mTLS client certificates: cases M1-M6.

use super::*;

pub(super) mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };

    pub struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pub pem: String,
    }

    pub fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("ca cert").pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate signed by `ca`: (cert PEM, key PEM).
    pub fn leaf(ca: &Ca, cn: &str, sans: Vec<SanType>, expired: bool) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &ca.issuer).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }

    pub fn server(ca: &Ca) -> (String, String) {
        leaf(
            ca,
            "mfa-facade",
            vec![
                SanType::DnsName("localhost".try_into().expect("dns")),
                SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            ],
            false,
        )
    }

    pub fn spiffe(id: &str) -> Vec<SanType> {
        vec![SanType::URI(id.try_into().expect("uri"))]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_attacks_are_refused_and_the_principal_is_the_spiffe_id_or_cn() {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    const BILLING: &str = "spiffe://example.org/ns/billing/sa/api";
    const OTHER: &str = "spiffe://example.org/ns/other/sa/api";

    let ca = pki::ca("clients and server CA");
    let rogue = pki::ca("another CA");
    let (server_cert, server_key) = pki::server(&ca);
    let server_tls = |required: bool| common::ServerTls {
        cert: server_cert.clone(),
        key: server_key.clone(),
        client_ca: Some(ca.pem.clone()),
        client_cert_required: required,
    };
    let client = |id: Option<(String, String)>| {
        let c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
        match id {
            Some((cert, key)) => c.identity(Identity::from_pem(cert, key)),
            None => c,
        }
    };

    let s = Stack::local_tls(Some((server_tls(false), client(None)))).await;
    let mut config = Config::default();
    config.policy.rules = vec![
        rule(&[BILLING, "cn-only-client"], &["*"], &["us-east-1_A*"]),
        rule(&[TEST_PRINCIPAL], &["*"], &["*"]),
    ];
    let mut state = matrix_auth(true);
    state.policy = AuthState::from_config(&config).policy;
    s.auth.store(std::sync::Arc::new(state));
    let before = s.upstream_calls();
    let get = || pb::GetUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_A1".into(),
    };

    async fn call_with(
        addr: std::net::SocketAddr,
        tls: ClientTlsConfig,
        req: pb::GetUserPoolMfaConfigRequest,
    ) -> Result<(), tonic::Status> {
        let channel = common::tls_channel(addr, tls)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("handshake: {e}")))?;
        UserPoolMfaServiceClient::new(channel)
            .get_user_pool_mfa_config(req)
            .await
            .map(|_| ())
    }

    let mut refused = Vec::new();
    // M1: TLS, but no client certificate and no other credentials.
    let err = call_with(s.server.addr, client(None), get())
        .await
        .expect_err("M1");
    refused.push((
        "M1 no client certificate",
        err.code() == Code::Unauthenticated,
        err,
    ));
    // M2: a certificate from another CA: the handshake refuses it.
    let foreign = pki::leaf(&rogue, "intruder", pki::spiffe(BILLING), false);
    let err = call_with(s.server.addr, client(Some(foreign)), get())
        .await
        .expect_err("M2");
    refused.push((
        "M2 a certificate from another CA",
        err.code() != Code::Ok && err.code() != Code::NotFound,
        err,
    ));
    // M3: an expired certificate from the right CA: the handshake refuses it.
    let expired = pki::leaf(&ca, "old", pki::spiffe(BILLING), true);
    let err = call_with(s.server.addr, client(Some(expired)), get())
        .await
        .expect_err("M3");
    refused.push((
        "M3 an expired certificate",
        err.code() != Code::Ok && err.code() != Code::NotFound,
        err,
    ));
    // M4: a valid certificate whose SPIFFE ID lacks the grant.
    let other = pki::leaf(&ca, "other", pki::spiffe(OTHER), false);
    let err = call_with(s.server.addr, client(Some(other)), get())
        .await
        .expect_err("M4");
    refused.push((
        "M4 a SPIFFE ID without a grant",
        err.code() == Code::PermissionDenied,
        err,
    ));
    // M5: a granted certificate cannot reach a pool outside its grant.
    let billing = pki::leaf(&ca, "billing", pki::spiffe(BILLING), false);
    let err = call_with(
        s.server.addr,
        client(Some(billing.clone())),
        pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_B1".into(),
        },
    )
    .await
    .expect_err("M5");
    refused.push((
        "M5 a granted certificate on another pool",
        err.code() == Code::PermissionDenied,
        err,
    ));
    let failures: Vec<String> = refused
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, err)| format!("{name}: {:?} {}", err.code(), err.message()))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        s.upstream_calls(),
        before,
        "no refused call reached the backend"
    );

    // Positive: the SPIFFE ID, and the CN when there is none, are principals.
    let err = call_with(s.server.addr, client(Some(billing)), get())
        .await
        .expect_err("no such pool");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "SPIFFE principal: {}",
        err.message()
    );
    let cn_only = pki::leaf(&ca, "cn-only-client", vec![], false);
    let err = call_with(s.server.addr, client(Some(cn_only)), get())
        .await
        .expect_err("no such pool");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "CN principal: {}",
        err.message()
    );

    // M6: with client_cert_required, no certificate fails the handshake.
    let strict = Stack::local_tls(Some((
        server_tls(true),
        client(Some(pki::leaf(&ca, "cn-only-client", vec![], false))),
    )))
    .await;
    strict.auth.store(std::sync::Arc::new(matrix_auth(true)));
    let before = strict.upstream_calls();
    let err = call_with(strict.server.addr, client(None), get())
        .await
        .expect_err("M6");
    assert!(
        err.code() != Code::Ok
            && err.code() != Code::NotFound
            && err.code() != Code::Unauthenticated,
        "M6: {err:?}"
    );
    assert_eq!(strict.upstream_calls(), before);
    println!("auth matrix: 6 mTLS cases refused, 0 backend calls");
}
