// Runs a command against a fresh dynalite (a DynamoDB-compatible server) on a free loopback port.
//   node scripts/with-dynalite.mjs <command> [args...]
// Creates the project's table (string partition key `pk`, TTL attribute `ttl`), exports
// AWS_ENDPOINT_URL_DYNAMODB, TABLE_NAME and dummy AWS credentials to the command, and stops
// dynalite when the command ends, passing on its exit code.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const dynalite = require("dynalite");

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node scripts/with-dynalite.mjs <command> [args...]");
  process.exit(2);
}

const table = process.env.TABLE_NAME || "wechat-test";
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const endpoint = `http://127.0.0.1:${server.address().port}`;

async function dynamo(target, body) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": `DynamoDB_20120810.${target}`,
      // dynalite checks that a signature is present, not that it is valid.
      Authorization:
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
      "X-Amz-Date": "20260101T000000Z",
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${target} failed: ${response.status} ${text}`);
  return JSON.parse(text || "{}");
}

await dynamo("CreateTable", {
  TableName: table,
  AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
  KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
  BillingMode: "PAY_PER_REQUEST",
});
console.error(`dynalite: ${endpoint}, table ${table}`);

const child = spawn(command, args, {
  stdio: "inherit",
  env: {
    ...process.env,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    TABLE_NAME: table,
    AWS_REGION: process.env.AWS_REGION || "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_EC2_METADATA_DISABLED: "true",
  },
});
const stop = (code) => server.close(() => process.exit(code));
child.on("exit", (code, signal) => stop(code ?? (signal ? 1 : 0)));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
