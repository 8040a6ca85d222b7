#!/usr/bin/env node
// A whole MFA scenario from Node.js with @grpc/grpc-js, the protos loaded
// from proto/ by @grpc/proto-loader: pool config, a FieldMask update with
// its etag (and a stale etag refused), TOTP enrolment with a real code, the
// preference read back, and the error details (google.rpc.BadRequest,
// ErrorInfo) decoded from grpc-status-details-bin.
// Usage: node tests/node/scenario.js HOST:PORT API_KEY
// (scripts/test.sh installs the packages into .tools/node_modules.)
// Against the local backend; exits non-zero on the first thing not as expected.
'use strict';

const path = require('path');
const crypto = require('crypto');
const assert = require('assert');

const ROOT = path.resolve(__dirname, '..', '..');
module.paths.push(path.join(ROOT, '.tools', 'node_modules'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const [target, apiKey] = process.argv.slice(2);
if (!target || !apiKey) {
  console.error('usage: scenario.js HOST:PORT API_KEY');
  process.exit(2);
}

const definition = protoLoader.loadSync(
  [
    'cognito/mfa/v1/user_pool_mfa_service.proto',
    'cognito/mfa/v1/user_mfa_service.proto',
    'cognito/mfa/dev/v1/fixtures.proto',
  ],
  { includeDirs: [path.join(ROOT, 'proto')], keepCase: true, enums: String, longs: String, oneofs: true },
);
const loaded = grpc.loadPackageDefinition(definition);
const v1 = loaded.cognito.mfa.v1;
const dev = loaded.cognito.mfa.dev.v1;
const creds = grpc.credentials.createInsecure();
const pools = new v1.UserPoolMfaService(target, creds);
const users = new v1.UserMfaService(target, creds);
const fixtures = new dev.LocalFixturesService(target, creds);

// google.rpc.Status and the details the facade sends, for grpc-status-details-bin.
const rpc = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
`, { keepCase: true }).root;

function details(err) {
  const [bin] = err.metadata.get('grpc-status-details-bin');
  assert.ok(bin, `no grpc-status-details-bin on ${err.code}: ${err.details}`);
  const status = rpc.lookupType('google.rpc.Status').decode(bin);
  const out = {};
  for (const any of status.details) {
    const name = any.type_url.split('/').pop();
    if (name === 'google.rpc.BadRequest' || name === 'google.rpc.ErrorInfo') {
      out[name.split('.').pop()] = rpc.lookupType(name).decode(any.value);
    }
  }
  return out;
}

function call(client, method, request) {
  const md = new grpc.Metadata();
  md.set('x-api-key', apiKey);
  return new Promise((resolve, reject) => {
    client[method](request, md, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function refused(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('the call was accepted');
}

function totp(secret, at = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const offset = mac[19] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(code).padStart(6, '0');
}

async function main() {
  const pool = (await call(fixtures, 'CreateUserPool', { pool_name: 'node' })).user_pool_id;
  await call(fixtures, 'CreateUser', { user_pool_id: pool, username: 'node-user' });
  const token = (await call(fixtures, 'IssueAccessToken', { user_pool_id: pool, username: 'node-user' }))
    .access_token;

  // 1. The pool: optional MFA with TOTP; the answer carries the etag.
  const set = await call(pools, 'SetUserPoolMfaConfig', {
    user_pool_id: pool,
    software_token_mfa_configuration: { enabled: true },
    mfa_configuration: 'MFA_CONFIGURATION_OPTIONAL',
  });
  assert.strictEqual(set.mfa_configuration, 'MFA_CONFIGURATION_OPTIONAL');
  assert.strictEqual(set.etag.length, 32);

  // 2. A FieldMask update with that etag, then the same etag again: ABORTED.
  const update = {
    user_pool_id: pool,
    config: { mfa_configuration: 'MFA_CONFIGURATION_ON', software_token_mfa_configuration: { enabled: true } },
    update_mask: { paths: ['mfa_configuration'] },
    etag: set.etag,
  };
  const updated = await call(pools, 'UpdateUserPoolMfaConfig', update);
  assert.strictEqual(updated.mfa_configuration, 'MFA_CONFIGURATION_ON');
  assert.strictEqual(updated.software_token_mfa_configuration.enabled, true, 'outside the mask: kept');
  const stale = await refused(call(pools, 'UpdateUserPoolMfaConfig', update));
  assert.strictEqual(stale.code, grpc.status.ABORTED, stale.details);
  assert.strictEqual(details(stale).ErrorInfo.reason, 'ETAG_MISMATCH');

  // 3. Error details: INVALID_ARGUMENT with a BadRequest naming each field.
  const bad = await refused(call(pools, 'GetUserPoolMfaConfig', { user_pool_id: 'not a pool' }));
  assert.strictEqual(bad.code, grpc.status.INVALID_ARGUMENT);
  const fields = details(bad).BadRequest.field_violations.map((v) => v.field);
  assert.deepStrictEqual(fields, ['user_pool_id']);

  // 4. TOTP enrolment with a real code, and the preference.
  const secret = (await call(users, 'AssociateSoftwareToken', { access_token: token })).secret_code;
  const verified = await call(users, 'VerifySoftwareToken', {
    access_token: token,
    user_code: totp(secret),
    friendly_device_name: 'node',
  });
  assert.strictEqual(verified.status, 'VERIFY_SOFTWARE_TOKEN_STATUS_SUCCESS');
  await call(users, 'SetUserMfaPreference', {
    access_token: token,
    software_token_mfa_settings: { enabled: true, preferred_mfa: true },
  });

  // 5. Read back, as the user and as an admin.
  const mine = await call(users, 'GetUserMfaSettings', { access_token: token });
  const admin = await call(users, 'AdminGetUserMfaSettings', { user_pool_id: pool, username: 'node-user' });
  for (const s of [mine, admin]) {
    assert.strictEqual(s.preferred_mfa_setting, 'SOFTWARE_TOKEN_MFA');
    assert.ok(s.user_mfa_setting_list.includes('SOFTWARE_TOKEN_MFA'));
  }
  console.log(`node scenario OK: pool ${pool}, FieldMask update with etag (stale one ABORTED), `
    + 'BadRequest decoded, TOTP enrolled and preferred, read back as user and admin');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error('node scenario FAILED:', err);
    process.exit(1);
  },
);
