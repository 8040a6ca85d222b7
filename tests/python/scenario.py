#!/usr/bin/env python3
"""A whole MFA scenario from Python, with stubs generated from proto/ by
grpcio-tools: set the pool's MFA configuration, enrol TOTP, set the
preference, read it back. Usage: scenario.py HOST:PORT API_KEY

Against the local backend (the fixtures service makes the pool, the user and
the access token). Exits non-zero on the first thing that is not as expected.
"""
import base64
import hashlib
import hmac
import os
import struct
import subprocess
import sys
import tempfile
import time

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(out):
    """Stubs for the API and the fixtures, from proto/ (google/protobuf from grpcio-tools)."""
    import grpc_tools
    from grpc_tools import protoc

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = [
        "cognito/mfa/v1/types.proto",
        "cognito/mfa/v1/user_pool_mfa_service.proto",
        "cognito/mfa/v1/user_mfa_service.proto",
        "cognito/mfa/dev/v1/fixtures.proto",
    ]
    args = ["protoc", f"-I{os.path.join(ROOT, 'proto')}", f"-I{include}",
            f"--python_out={out}", f"--grpc_python_out={out}"] + protos
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    # Packages for the generated modules.
    for d, _, _ in os.walk(out):
        open(os.path.join(d, "__init__.py"), "a").close()


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def main():
    target, api_key = sys.argv[1], sys.argv[2]
    out = tempfile.mkdtemp(prefix="mfa-stubs-")
    generate(out)
    sys.path.insert(0, out)
    from cognito.mfa.v1 import types_pb2 as t
    from cognito.mfa.v1 import user_pool_mfa_service_pb2 as pools_pb
    from cognito.mfa.v1 import user_pool_mfa_service_pb2_grpc as pools_grpc
    from cognito.mfa.v1 import user_mfa_service_pb2 as users_pb
    from cognito.mfa.v1 import user_mfa_service_pb2_grpc as users_grpc
    from cognito.mfa.dev.v1 import fixtures_pb2 as fx
    from cognito.mfa.dev.v1 import fixtures_pb2_grpc as fx_grpc

    md = [("x-api-key", api_key)]
    channel = grpc.insecure_channel(target)
    fixtures = fx_grpc.LocalFixturesServiceStub(channel)
    pools = pools_grpc.UserPoolMfaServiceStub(channel)
    users = users_grpc.UserMfaServiceStub(channel)

    pool = fixtures.CreateUserPool(fx.CreateUserPoolRequest(pool_name="python"), metadata=md).user_pool_id
    fixtures.CreateUser(fx.CreateUserRequest(user_pool_id=pool, username="py-user"), metadata=md)
    token = fixtures.IssueAccessToken(
        fx.IssueAccessTokenRequest(user_pool_id=pool, username="py-user"), metadata=md).access_token

    # 1. The pool: optional MFA with TOTP.
    cfg = pools.SetUserPoolMfaConfig(pools_pb.SetUserPoolMfaConfigRequest(
        user_pool_id=pool,
        software_token_mfa_configuration=t.SoftwareTokenMfaConfig(enabled=True),
        mfa_configuration=t.MFA_CONFIGURATION_OPTIONAL), metadata=md)
    assert cfg.mfa_configuration == t.MFA_CONFIGURATION_OPTIONAL, cfg
    assert len(cfg.etag) == 32, cfg

    # A bad request: INVALID_ARGUMENT naming the field.
    try:
        pools.GetUserPoolMfaConfig(pools_pb.GetUserPoolMfaConfigRequest(user_pool_id="not a pool"), metadata=md)
        sys.exit("a bad pool id was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert "user_pool_id" in e.details(), e.details()

    # 2. TOTP enrolment with a real code.
    secret = users.AssociateSoftwareToken(
        users_pb.AssociateSoftwareTokenRequest(access_token=token), metadata=md).secret_code
    verified = users.VerifySoftwareToken(users_pb.VerifySoftwareTokenRequest(
        access_token=token, user_code=totp(secret), friendly_device_name="python"), metadata=md)
    assert verified.status == users_pb.VERIFY_SOFTWARE_TOKEN_STATUS_SUCCESS, verified

    # 3. The preference: TOTP, preferred.
    users.SetUserMfaPreference(users_pb.SetUserMfaPreferenceRequest(
        access_token=token,
        software_token_mfa_settings=t.SoftwareTokenMfaSettings(enabled=True, preferred_mfa=True)),
        metadata=md)

    # 4. Read it back, as the user and as an admin.
    mine = users.GetUserMfaSettings(users_pb.GetUserMfaSettingsRequest(access_token=token), metadata=md)
    admin = users.AdminGetUserMfaSettings(users_pb.AdminGetUserMfaSettingsRequest(
        user_pool_id=pool, username="py-user"), metadata=md)
    for s in (mine, admin):
        assert s.preferred_mfa_setting == "SOFTWARE_TOKEN_MFA", s
        assert "SOFTWARE_TOKEN_MFA" in s.user_mfa_setting_list, s
    # 5. Everything the user has registered, enabled or not.
    factors = users.GetUserAuthFactors(users_pb.GetUserAuthFactorsRequest(access_token=token), metadata=md)
    assert t.AUTH_FACTOR_TYPE_SOFTWARE_TOKEN in factors.configured_user_auth_factors, factors

    # 6. Passkeys: a pool that allows them, one registered (the fixtures
    # stand in for the browser's WebAuthn ceremony), listed, deleted.
    pk_pool = fixtures.CreateUserPool(fx.CreateUserPoolRequest(
        pool_name="python-passkeys",
        allowed_first_auth_factors=[fx.AUTH_FACTOR_PASSWORD, fx.AUTH_FACTOR_WEB_AUTHN]), metadata=md).user_pool_id
    fixtures.CreateUser(fx.CreateUserRequest(user_pool_id=pk_pool, username="py-passkey"), metadata=md)
    pk_token = fixtures.IssueAccessToken(
        fx.IssueAccessTokenRequest(user_pool_id=pk_pool, username="py-passkey"), metadata=md).access_token
    cred = fixtures.RegisterWebAuthnCredential(fx.RegisterWebAuthnCredentialRequest(
        user_pool_id=pk_pool, username="py-passkey", friendly_credential_name="YubiKey",
        relying_party_id="example.com"), metadata=md).credential_id
    listed = users.ListWebAuthnCredentials(
        users_pb.ListWebAuthnCredentialsRequest(access_token=pk_token, max_results=20), metadata=md)
    assert [c.credential_id for c in listed.credentials] == [cred], listed
    users.DeleteWebAuthnCredential(
        users_pb.DeleteWebAuthnCredentialRequest(access_token=pk_token, credential_id=cred), metadata=md)

    # 7. The pool's MFA coverage, streamed: a message per user, then the summary.
    walked, summary = [], None
    for m in pools.ListUserMfaStatus(pools_pb.ListUserMfaStatusRequest(user_pool_id=pool), metadata=md):
        if m.HasField("user"):
            walked.append(m.user)
        else:
            summary = m.summary
    assert [u.username for u in walked] == ["py-user"], walked
    assert summary.users == 1 and summary.enabled_factors["SOFTWARE_TOKEN_MFA"] == 1, summary

    # 8. A lost phone: a remembered device, the reset planned then done, the old token refused.
    fixtures.RememberDevice(fx.RememberDeviceRequest(
        user_pool_id=pool, username="py-user", device_name="old phone", remembered=True), metadata=md)
    plan = users.AdminResetUserMfa(users_pb.AdminResetUserMfaRequest(
        user_pool_id=pool, username="py-user", validate_only=True), metadata=md)
    assert [s.outcome for s in plan.steps][1:5] == [users_pb.RESET_OUTCOME_PLANNED] * 4, plan
    done = users.AdminResetUserMfa(users_pb.AdminResetUserMfaRequest(
        user_pool_id=pool, username="py-user"), metadata=md)
    assert {s.step: s.outcome for s in done.steps}["forget_devices"] == users_pb.RESET_OUTCOME_DONE, done
    assert not users.AdminListDevices(users_pb.AdminListDevicesRequest(
        user_pool_id=pool, username="py-user"), metadata=md).devices
    try:
        users.GetUserMfaSettings(users_pb.GetUserMfaSettingsRequest(access_token=token), metadata=md)
        sys.exit("a revoked token was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "revoked" in e.details(), e
    print(f"python scenario OK: pool {pool}, TOTP enrolled and preferred, read back as user and admin; "
          f"auth factors, a passkey listed and deleted, the coverage walk, the lost-phone reset")


if __name__ == "__main__":
    main()
