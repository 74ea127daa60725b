// Lints api/openapi.yaml with a real OpenAPI validator and checks recorded live responses
// against the response schemas it declares.
//   node openapi-check.mjs lint SPEC
//   node openapi-check.mjs responses SPEC RECORDS.jsonl
// RECORDS lines: {"name","method","path","status","body"} where path is the spec's template.
// Prints "ok - NAME" / "not ok - NAME" lines; exits 1 on any failure.
import fs from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [mode, specPath, recordsPath] = process.argv.slice(2);
let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, why) => {
  failed++;
  for (const line of String(why).split("\n")) console.log(`#   ${line}`);
  console.log(`not ok - ${name}`);
};

if (mode === "lint") {
  try {
    const api = await SwaggerParser.validate(specPath);
    ok(`openapi_valid (${api.openapi}, ${Object.keys(api.paths).length} paths)`);
  } catch (e) {
    notOk("openapi_valid", e.message);
  }
} else if (mode === "responses") {
  const api = await SwaggerParser.dereference(specPath);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const lines = fs.readFileSync(recordsPath, "utf8").split("\n").filter(Boolean);
  if (lines.length === 0) notOk("responses_recorded", "no responses were recorded");
  for (const line of lines) {
    const rec = JSON.parse(line);
    const name = `schema ${rec.method} ${rec.path} ${rec.status} (${rec.name})`;
    const op = api.paths[rec.path]?.[rec.method.toLowerCase()];
    // Errors for methods a path does not have (405, or 413/415 decided before routing) use the
    // shared error shape.
    if (!op && !(rec.status >= 400 && api.paths[rec.path])) {
      notOk(name, `no operation ${rec.method} ${rec.path} in the spec`);
      continue;
    }
    const resp = op ? op.responses[String(rec.status)] ?? op.responses.default : api.components.responses.Error;
    const schema = resp?.content?.["application/json"]?.schema;
    if (!schema) {
      notOk(name, `status ${rec.status} has no JSON schema for this operation`);
      continue;
    }
    const validate = ajv.compile(schema);
    if (validate(rec.body)) ok(name);
    else notOk(name, JSON.stringify(validate.errors, null, 1) + "\nbody: " + JSON.stringify(rec.body).slice(0, 500));
  }
} else {
  console.error("usage: openapi-check.mjs lint SPEC | responses SPEC RECORDS");
  process.exit(2);
}
process.exit(failed ? 1 : 0);
