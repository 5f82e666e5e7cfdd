// The admin API as the tests call it: every answer of the real server is checked against the
// schema that docs/admin-openapi.json gives for its path, method and status (ajv, JSON Schema
// 2020-12, the dialect of OpenAPI 3.1), so the document cannot drift from the server.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { ROOT } from "./common.mjs";

export const OPENAPI_PATH = join(ROOT, "docs/admin-openapi.json");
export const OPENAPI = JSON.parse(readFileSync(OPENAPI_PATH, "utf8"));

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(OPENAPI, "openapi.json");

/** `/admin/rooms/x/kick` → `/admin/rooms/{room}/kick`, or undefined for no documented path. */
function template(path) {
  return Object.keys(OPENAPI.paths).find((t) => new RegExp(`^${t.replace("{room}", "[^/]*")}$`).test(path));
}

/** The documented schema of the answer, resolving the `$ref`s of responses. */
function responseSchema(path, method, status) {
  const operation = OPENAPI.paths[template(path)]?.[method.toLowerCase()];
  if (!operation) return undefined;
  let response = operation.responses[String(status)];
  assert.ok(response, `${method} ${path}: status ${status} is not documented`);
  if (response.$ref) response = OPENAPI.components.responses[response.$ref.split("/").pop()];
  return response.content["application/json"].schema;
}

/**
 * Calls the admin API: `{status, body, headers}`. `secret` goes in `Authorization: Bearer`
 * (`null`: no header, `{raw}`: that header value as it is); `body` is sent as JSON, `raw` as it
 * is. Every documented answer is checked against its schema; an undocumented path's error body
 * against the error schema.
 */
export async function admin(server, method, path, { secret, body, raw, ip } = {}) {
  const headers = {};
  if (secret !== null && secret !== undefined) headers.Authorization = secret.raw ?? `Bearer ${secret}`;
  if (ip) headers["CF-Connecting-IP"] = ip;
  const init = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (raw !== undefined) init.body = raw;
  const response = await fetch(server.http(path), init);
  const text = await response.text();
  const answer = { status: response.status, body: JSON.parse(text), headers: response.headers };
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assertDocumented(method, path, response.status, answer.body);
  return answer;
}

/** Asserts that `body` is what docs/admin-openapi.json says `method path` answers with `status`. */
export function assertDocumented(method, path, status, body) {
  const schema = responseSchema(path, method, status) ?? { $ref: "#/components/schemas/Error" };
  const validate = ajv.compile({ $ref: `openapi.json${schema.$ref}` });
  assert.ok(validate(body), `${method} ${path} ${status} ${JSON.stringify(body)}: ${ajv.errorsText(validate.errors)}`);
}

/** Asserts an error answer: its status and code, and a message for people. */
export function assertRefused(answer, status, code) {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.error.code, code);
  assert.ok(answer.body.error.message.length > 0);
}
