//! The spine without the binary: [`Facade::execute`] over the local backend
//! (a temporary data file), the audit writer (a temporary file, fail_closed)
//! and the limiter, with the principal set as the auth layer sets it. Each
//! stage's refusal, what it costs (one completed record, nothing written
//! upstream) and the order of a change's records, proven in milliseconds.

use std::sync::Arc;

use serde_json::Value;

use super::ops::{GetUserPoolMfaConfig, SetUserPoolMfaConfig};
use super::{CallContext, Decoded, Facade};
use crate::audit::settings::AuditConfig;
use crate::auth::{AuthState, Principal, ProvenBy};
use crate::backend::Backend;
use crate::backend::local::LocalBackend;
use crate::backend::local::store::{FeaturePlan, PoolSettings};
use crate::domain::{MfaMode, PoolMfaConfig, SoftwareTokenMfaConfig, rules::Violations};
use crate::limits::{Limiter, settings::LimitsConfig};

struct Spine {
    _dir: tempfile::TempDir,
    facade: Facade,
    local: Arc<LocalBackend>,
    audit: std::path::PathBuf,
    pool: String,
}

impl Spine {
    /// `svc` may call everything; two calls of burst, one a second after.
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let audit = dir.path().join("audit.jsonl");
        let audit_config: AuditConfig = toml::from_str(&format!(
            "file = \"{}\"\nfail_closed = true\n",
            audit.display()
        ))
        .expect("[audit]");
        let limits: LimitsConfig =
            toml::from_str("[default]\nper_second = 1\nburst = 2\n").expect("[limits]");
        let local = Arc::new(
            LocalBackend::open(&dir.path().join("data.json"), "us-east-1").expect("local"),
        );
        let pool = local
            .create_user_pool("spine", FeaturePlan::Essentials, PoolSettings::default())
            .await
            .expect("pool");
        let auditor = crate::audit::Auditor::start(&audit_config).expect("auditor");
        let facade = Facade::new(
            local.clone(),
            crate::auth::shared(AuthState::single_key("svc", "the key")),
            Limiter::start(&limits, false).await,
            auditor,
        );
        Self {
            _dir: dir,
            facade,
            local,
            audit,
            pool,
        }
    }

    fn ctx(principal: Option<&str>) -> CallContext {
        CallContext {
            request_id: "spine".into(),
            principal: principal.map(|p| Principal::new(p.into(), ProvenBy::ApiKey)),
            trace: None,
            peer: None,
            warnings: Default::default(),
            deadline: None,
        }
    }

    fn totp_optional(pool: &str) -> SetUserPoolMfaConfig {
        SetUserPoolMfaConfig {
            user_pool_id: pool.into(),
            config: PoolMfaConfig {
                software_token: Some(SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mode: Some(MfaMode::Optional),
                ..Default::default()
            },
            validate_only: false,
            etag: None,
        }
    }

    async fn set(&self, principal: Option<&str>, op: SetUserPoolMfaConfig) -> tonic::Code {
        let ctx = Self::ctx(principal);
        match self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await
        {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        }
    }

    async fn mode(&self) -> Option<MfaMode> {
        self.local
            .get_user_pool_mfa_config(&self.pool)
            .await
            .expect("read")
            .mode
    }

    /// The call records written so far (checkpoints left out).
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON record"))
            .filter(|r| r.get("method").is_some())
            .collect()
    }
}

/// Each stage's refusal of a change: its code, one completed record with
/// that code and no received record, and nothing written to the backend.
#[tokio::test]
async fn each_refusal_costs_one_completed_record_and_writes_nothing() {
    let s = Spine::new().await;
    let before = s.mode().await;
    let cases = [
        (None, s.pool.clone(), tonic::Code::Unauthenticated),
        (
            Some("outsider"),
            s.pool.clone(),
            tonic::Code::PermissionDenied,
        ),
        (
            Some("svc"),
            "not a pool".to_owned(),
            tonic::Code::InvalidArgument,
        ),
    ];
    for (principal, pool, want) in cases {
        let seen = s.records().len();
        assert_eq!(s.set(principal, Spine::totp_optional(&pool)).await, want);
        let new: Vec<Value> = s.records().split_off(seen);
        assert_eq!(new.len(), 1, "{want:?}: {new:?}");
        assert_eq!(new[0]["stage"], "completed", "{want:?}");
        assert_eq!(new[0]["outcome"]["code"], crate::error::code_name(want));
        assert_eq!(s.mode().await, before, "{want:?} wrote nothing");
    }
}

/// The caller's budget for a method (burst 2): the third change in a row
/// is refused RESOURCE_EXHAUSTED before the backend, with its record.
#[tokio::test]
async fn a_call_over_its_budget_is_refused_before_the_backend() {
    let s = Spine::new().await;
    for _ in 0..2 {
        assert_eq!(
            s.set(Some("svc"), Spine::totp_optional(&s.pool)).await,
            tonic::Code::Ok
        );
    }
    let seen = s.records().len();
    let off = SetUserPoolMfaConfig {
        config: PoolMfaConfig {
            mode: Some(MfaMode::Off),
            ..Default::default()
        },
        ..Spine::totp_optional(&s.pool)
    };
    assert_eq!(
        s.set(Some("svc"), off).await,
        tonic::Code::ResourceExhausted
    );
    assert_eq!(s.mode().await, Some(MfaMode::Optional), "not turned OFF");
    let new = s.records().split_off(seen);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["outcome"]["code"], "RESOURCE_EXHAUSTED");
    // Another method has its own budget.
    let get = GetUserPoolMfaConfig {
        user_pool_id: s.pool.clone(),
    };
    s.facade
        .execute(
            &Spine::ctx(Some("svc")),
            Decoded::new(get, Violations::default()),
        )
        .await
        .expect("a read has its own budget");
}

/// A change that passes every stage: its received record, then the
/// backend, then its completed record — both durable before the answer
/// (fail_closed), the same call_id, in that order of the chain.
#[tokio::test]
async fn a_change_is_recorded_received_then_completed_before_its_answer() {
    let s = Spine::new().await;
    assert_eq!(
        s.set(Some("svc"), Spine::totp_optional(&s.pool)).await,
        tonic::Code::Ok
    );
    assert_eq!(s.mode().await, Some(MfaMode::Optional));
    let records = s.records();
    let stages: Vec<&str> = records
        .iter()
        .map(|r| r["stage"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(stages, ["received", "completed"]);
    assert_eq!(records[0]["call_id"], records[1]["call_id"]);
    assert!(records[0]["seq"].as_u64() < records[1]["seq"].as_u64());
    assert_eq!(records[1]["outcome"]["code"], "OK");
    assert_eq!(records[1]["principal"], "svc");
}

/// The facade decides, not the API: an audited change reads before it
/// writes, the pre-flight follows `backend.preflight`, and no guardrail
/// covers a pool none names. The change's record then holds before and after.
#[tokio::test]
async fn the_facade_plans_a_change_from_its_own_settings() {
    let s = Spine::new().await;
    let ctx = Spine::ctx(Some("svc"));
    let op = Spine::totp_optional(&s.pool);
    let audit = s
        .facade
        .open_record(&ctx, "SetUserPoolMfaConfig", true, Some(&s.pool), None);
    let plan = s.facade.plan(&op, &audit, &ctx);
    assert!(plan.capture_before && plan.check_state && plan.guard.is_none());
    drop(audit);
    let without = s.facade.clone().with_preflight(false);
    let audit = without.open_record(&ctx, "SetUserPoolMfaConfig", true, Some(&s.pool), None);
    assert!(!without.plan(&op, &audit, &ctx).check_state);
    drop(audit);
    let seen = s.records().len();
    assert_eq!(s.set(Some("svc"), op).await, tonic::Code::Ok);
    let completed = s.records().split_off(seen).pop().expect("completed");
    assert_eq!(completed["before"]["mode"], "Off", "{completed}");
    assert_eq!(completed["after"]["mode"], "Optional", "{completed}");
}

/// The coverage walk's start is admitted as every call is (`Facade::admit`):
/// no principal, no grant, a forged page token — each refused with its
/// code and one completed record, before any Cognito call is paced.
#[tokio::test]
async fn the_walk_is_admitted_as_every_call_is() {
    use super::walk::ListUserMfaStatus;
    let s = Spine::new().await;
    let walk = |page_token: &str| ListUserMfaStatus {
        user_pool_id: s.pool.clone(),
        filter: String::new(),
        page_token: page_token.to_owned(),
    };
    let cases = [
        (None, "", tonic::Code::Unauthenticated),
        (Some("outsider"), "", tonic::Code::PermissionDenied),
        (Some("svc"), "forged", tonic::Code::InvalidArgument),
    ];
    for (principal, token, want) in cases {
        let seen = s.records().len();
        let got = s.facade.walk(&Spine::ctx(principal), walk(token)).await;
        assert_eq!(got.err().map(|e| e.code()), Some(want));
        // A read's record is not waited for: make it durable to read it.
        s.facade.auditor.flush().await.expect("flush");
        let new = s.records().split_off(seen);
        assert_eq!(new.len(), 1, "{want:?}: {new:?}");
        assert_eq!(new[0]["method"], crate::method::LIST_USER_MFA_STATUS.name);
        assert_eq!(new[0]["outcome"]["code"], crate::error::code_name(want));
    }
    let mut stream = s
        .facade
        .walk(&Spine::ctx(Some("svc")), walk(""))
        .await
        .expect("admitted");
    while stream.recv().await.is_some() {}
}

/// The deadline: a change whose deadline has passed before it starts is
/// refused DEADLINE_EXCEEDED, the backend is not called, and the call still
/// leaves its completed record saying so.
#[tokio::test]
async fn a_change_past_its_deadline_changes_nothing_and_is_recorded() {
    let s = Spine::new().await;
    let before = s.mode().await;
    let mut ctx = Spine::ctx(Some("svc"));
    ctx.deadline = Some(tokio::time::Instant::now());
    let got = s
        .facade
        .execute(
            &ctx,
            Decoded::new(Spine::totp_optional(&s.pool), Violations::default()),
        )
        .await;
    assert_eq!(
        got.err().map(|e| e.code()),
        Some(tonic::Code::DeadlineExceeded)
    );
    assert_eq!(s.mode().await, before, "the backend was not called");
    s.facade.auditor.flush().await.expect("flush");
    let records = s.records();
    let completed = records
        .iter()
        .find(|r| r["stage"] == "completed")
        .expect("a completed record");
    assert_eq!(completed["outcome"]["code"], "DEADLINE_EXCEEDED");
}
