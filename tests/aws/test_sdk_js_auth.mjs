// SigV4 authentication (--credentials FILE) through npm's AWS SDK v3: SQS
// over AWS JSON 1.0 and SNS over the query protocol, with the right key and
// with a wrong secret and an unknown key. Run by ctest as
// `node --test test_sdk_js_auth.mjs` after `npm ci`; GBX_GEARBOXD names the
// server binary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as SQS from "@aws-sdk/client-sqs";
import * as SNS from "@aws-sdk/client-sns";

const AKID = "AKIDGEARBOXTEST0001";
const SECRET = "gearbox-test-secret-0001/abcdefgh+XYZ";
let proc, dir, endpoint;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbx-aws-js-auth-"));
  const creds = join(dir, "credentials.json");
  writeFileSync(creds, JSON.stringify({ principals: [{ name: "alice", access_key_id: AKID,
    secret_access_key: SECRET,
    policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] } }] }),
  { mode: 0o600 });
  proc = spawn(process.env.GBX_GEARBOXD, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
    "--data", join(dir, "data"), "--credentials", creds], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(buf.split("\n")[0]);
    });
    proc.on("exit", (c) => reject(new Error("gearboxd exited with " + c)));
  });
  const m = /http=(\d+)/.exec(line);
  assert.ok(m, "ready line: " + line);
  endpoint = "http://127.0.0.1:" + m[1];
});

after(async () => {
  const code = await new Promise((resolve) => { proc.on("exit", (c) => resolve(c)); proc.kill("SIGTERM"); });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, "gearboxd exit status");
});

const clients = (accessKeyId, secretAccessKey) => {
  const cfg = { endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 };
  return { sqs: new SQS.SQSClient(cfg), sns: new SNS.SNSClient(cfg) };
};

async function refused(p, code) {
  try {
    await p;
  } catch (e) {
    assert.equal(e.$metadata?.httpStatusCode, 403, `${e.name}: ${e.message}`);
    assert.equal(e.Code ?? e.name, code, `${e.name}: ${e.message}`);
    return e;
  }
  assert.fail("expected " + code);
}

test("the right key: SQS (JSON) and SNS (query) calls succeed", async () => {
  const { sqs, sns } = clients(AKID, SECRET);
  const url = (await sqs.send(new SQS.CreateQueueCommand({ QueueName: "js-auth" }))).QueueUrl;
  await sqs.send(new SQS.SendMessageCommand({ QueueUrl: url, MessageBody: "signed from js" }));
  const got = await sqs.send(new SQS.ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
  assert.deepEqual(got.Messages.map((m) => m.Body), ["signed from js"]);
  const t = (await sns.send(new SNS.CreateTopicCommand({ Name: "js-auth-t" }))).TopicArn;
  assert.ok((await sns.send(new SNS.PublishCommand({ TopicArn: t, Message: "hi" }))).MessageId);
  sqs.destroy();
  sns.destroy();
});

test("a wrong secret: SignatureDoesNotMatch", async () => {
  const { sqs, sns } = clients(AKID, SECRET + "x");
  await refused(sqs.send(new SQS.ListQueuesCommand({})), "SignatureDoesNotMatch");
  await refused(sns.send(new SNS.ListTopicsCommand({})), "SignatureDoesNotMatch");
  sqs.destroy();
  sns.destroy();
});

test("an unknown key: InvalidClientTokenId", async () => {
  const { sqs, sns } = clients("AKIDGEARBOXNOBODY99", SECRET);
  await refused(sqs.send(new SQS.CreateQueueCommand({ QueueName: "js-auth-x" })), "InvalidClientTokenId");
  await refused(sns.send(new SNS.ListTopicsCommand({})), "InvalidClientTokenId");
  sqs.destroy();
  sns.destroy();
});
