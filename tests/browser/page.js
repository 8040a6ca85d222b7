// A web page calling mfa-facade over gRPC-Web with Connect's client
// (@connectrpc/connect-web), bundled by esbuild. Query parameters: facade
// (its URL), key (an API key), pool, and only=get for the refused-origin
// page. Writes a JSON summary of every answer into #result and posts it to
// /result on its own origin.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { UserPoolMfaService } from "../../target/browser/gen/cognito/mfa/v1/user_pool_mfa_service_pb.js";
import { MfaConfiguration } from "../../target/browser/gen/cognito/mfa/v1/types_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
} from "../../target/browser/gen/google/rpc/error_details_pb.js";

const params = new URLSearchParams(location.search);
const transport = createGrpcWebTransport({
  baseUrl: params.get("facade"),
  interceptors: [
    (next) => async (req) => {
      req.header.set("x-api-key", params.get("key"));
      return next(req);
    },
  ],
});
const client = createClient(UserPoolMfaService, transport);
const pool = params.get("pool");

function failure(e) {
  const err = ConnectError.from(e);
  return {
    code: Code[err.code],
    message: err.rawMessage,
    reasons: err.findDetails(ErrorInfoSchema).map((i) => i.reason),
    fields: err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field)),
  };
}

async function run() {
  const out = {};
  try {
    const got = await client.getUserPoolMfaConfig({ userPoolId: pool });
    out.get = { etag: got.etag, mode: MfaConfiguration[got.mfaConfiguration] };
  } catch (e) {
    out.get = failure(e);
  }
  if (params.get("only") === "get") {
    return out;
  }
  try {
    await client.updateUserPoolMfaConfig({ userPoolId: pool, updateMask: { paths: [] } });
    out.invalid = "answered OK";
  } catch (e) {
    out.invalid = failure(e);
  }
  try {
    let warning = null;
    const set = await client.setUserPoolMfaConfig(
      {
        userPoolId: pool,
        softwareTokenMfaConfiguration: { enabled: true },
        mfaConfiguration: MfaConfiguration.OPTIONAL,
      },
      { onTrailer: (t) => (warning = t.get("x-mfa-facade-warning")) },
    );
    out.set = { etag: set.etag, warning };
  } catch (e) {
    out.set = failure(e);
  }
  try {
    let users = 0;
    let summary = null;
    for await (const m of client.listUserMfaStatus({ userPoolId: pool })) {
      if (m.item.case === "user") users += 1;
      if (m.item.case === "summary") summary = Number(m.item.value.users);
    }
    out.walk = { users, summary };
  } catch (e) {
    out.walk = failure(e);
  }
  return out;
}

// The answers go back to the page's own server (the test's), same origin.
run()
  .catch((e) => ({ crashed: String(e) }))
  .then((out) => {
    const text = JSON.stringify(out);
    document.getElementById("result").textContent = text;
    document.title = "done";
    return fetch("/result", { method: "POST", body: text });
  });
