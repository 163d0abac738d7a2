// SQS through npm's @aws-sdk/client-sqs (AWS JSON 1.0) and SNS through
// @aws-sdk/client-sns (query protocol), on the real gearboxd. The SQS client
// verifies MD5OfBody / MD5OfMessageBody itself on every send and receive.
// Run by ctest as `node --test test_sdk_js.mjs` after `npm ci` (see
// CMakeLists.txt); GBX_GEARBOXD names the server binary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import * as SQS from "@aws-sdk/client-sqs";
import * as SNS from "@aws-sdk/client-sns";

const ACCOUNT = "123456789012";
let proc, dir, endpoint, sqs, sns;

function md5(s) {
  return createHash("md5").update(s).digest("hex");
}

// MD5OfMessageAttributes, computed independently as AWS documents it.
function md5Attrs(attrs) {
  const h = createHash("md5");
  const len = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); h.update(l); h.update(b); };
  for (const name of Object.keys(attrs).sort()) {
    const a = attrs[name];
    len(Buffer.from(name));
    len(Buffer.from(a.DataType));
    if (a.StringValue !== undefined) { h.update(Buffer.from([1])); len(Buffer.from(a.StringValue)); }
    else { h.update(Buffer.from([2])); len(Buffer.from(a.BinaryValue)); }
  }
  return h.digest("hex");
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbx-aws-js-"));
  proc = spawn(process.env.GBX_GEARBOXD, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
    "--data", join(dir, "data")], { stdio: ["ignore", "pipe", "inherit"] });
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
  const cfg = { endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts: 1 };
  sqs = new SQS.SQSClient(cfg);
  sns = new SNS.SNSClient(cfg);
});

after(async () => {
  sqs.destroy();
  sns.destroy();
  const code = await new Promise((resolve) => { proc.on("exit", (c) => resolve(c)); proc.kill("SIGTERM"); });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, "gearboxd exit status");
});

const send = (c, input) => sqs.send(new SQS[c + "Command"](input));
const create = async (name, Attributes) => (await send("CreateQueue", { QueueName: name, Attributes })).QueueUrl;
const arn = (n) => `arn:aws:sqs:us-east-1:${ACCOUNT}:${n}`;

async function rejects(p, cls, code) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`);
    if (code) assert.equal(e.Code ?? e.name, code);
    return e;
  }
  assert.fail("expected " + cls.name);
}

test("queues: create, url, list, attributes, tags, delete", async () => {
  const url = await create("js-q", { VisibilityTimeout: "9", DelaySeconds: "0" });
  assert.equal(url, `${endpoint}/${ACCOUNT}/js-q`);
  assert.equal(await create("js-q", { VisibilityTimeout: "9" }), url);
  await rejects(create("js-q", { VisibilityTimeout: "10" }), SQS.QueueNameExists, "QueueAlreadyExists");
  assert.equal((await send("GetQueueUrl", { QueueName: "js-q" })).QueueUrl, url);
  await rejects(send("GetQueueUrl", { QueueName: "js-none" }), SQS.QueueDoesNotExist);
  await create("js-q2");
  const list = await send("ListQueues", { QueueNamePrefix: "js-", MaxResults: 1 });
  assert.deepEqual(list.QueueUrls, [url]);
  assert.ok(list.NextToken);
  const next = await send("ListQueues", { QueueNamePrefix: "js-", MaxResults: 1, NextToken: list.NextToken });
  assert.deepEqual(next.QueueUrls, [`${endpoint}/${ACCOUNT}/js-q2`]);
  const a = (await send("GetQueueAttributes", { QueueUrl: url, AttributeNames: ["All"] })).Attributes;
  assert.equal(a.VisibilityTimeout, "9");
  assert.equal(a.QueueArn, arn("js-q"));
  await send("SetQueueAttributes", { QueueUrl: url, Attributes: { ReceiveMessageWaitTimeSeconds: "2" } });
  assert.equal((await send("GetQueueAttributes", { QueueUrl: url, AttributeNames: ["ReceiveMessageWaitTimeSeconds"] }))
    .Attributes.ReceiveMessageWaitTimeSeconds, "2");
  await rejects(send("SetQueueAttributes", { QueueUrl: url, Attributes: { Nope: "1" } }), SQS.InvalidAttributeName);
  await rejects(send("SetQueueAttributes", { QueueUrl: url, Attributes: { DelaySeconds: "-1" } }), SQS.InvalidAttributeValue);
  await send("TagQueue", { QueueUrl: url, Tags: { a: "1", b: "2" } });
  await send("UntagQueue", { QueueUrl: url, TagKeys: ["a"] });
  assert.deepEqual((await send("ListQueueTags", { QueueUrl: url })).Tags, { b: "2" });
  await send("AddPermission", { QueueUrl: url, Label: "p", AWSAccountIds: ["111122223333"], Actions: ["ReceiveMessage"] });
  const pol = JSON.parse((await send("GetQueueAttributes", { QueueUrl: url, AttributeNames: ["Policy"] })).Attributes.Policy);
  assert.deepEqual(pol.Statement.map((s) => s.Sid), ["p"]);
  await send("RemovePermission", { QueueUrl: url, Label: "p" });
  await send("DeleteQueue", { QueueUrl: url });
  await rejects(send("GetQueueAttributes", { QueueUrl: url }), SQS.QueueDoesNotExist);
  await rejects(send("CreateQueue", { QueueName: "js.fifo", Attributes: { FifoQueue: "true" } }), SQS.UnsupportedOperation);
});

test("messages: send, receive, attributes, MD5s, visibility, delete", async () => {
  const url = await create("js-m");
  const attrs = { s: { DataType: "String", StringValue: "ünïcode" }, bin: { DataType: "Binary", BinaryValue: Uint8Array.from([0, 255, 7]) } };
  const body = "json body \u{1F680} <x/> & \r\n";
  const r = await send("SendMessage", { QueueUrl: url, MessageBody: body, MessageAttributes: attrs });
  assert.equal(r.MD5OfMessageBody, md5(body));
  assert.equal(r.MD5OfMessageAttributes, md5Attrs(attrs));
  const got = await send("ReceiveMessage", { QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 30,
    MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"],
    MessageAttributeNames: ["All"] });
  assert.equal(got.Messages.length, 1);
  const m = got.Messages[0];
  assert.equal(m.MessageId, r.MessageId);
  assert.equal(m.Body, body);
  assert.equal(m.MD5OfMessageAttributes, md5Attrs(attrs));
  assert.equal(m.MessageAttributes.s.StringValue, "ünïcode");
  assert.deepEqual(Array.from(m.MessageAttributes.bin.BinaryValue), [0, 255, 7]);
  assert.equal(m.Attributes.ApproximateReceiveCount, "1");
  assert.equal(m.Attributes.SenderId, ACCOUNT);
  assert.ok(Number(m.Attributes.SentTimestamp) > 1e12);
  await send("ChangeMessageVisibility", { QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 });
  const again = (await send("ReceiveMessage", { QueueUrl: url, AttributeNames: ["All"] })).Messages[0];
  assert.equal(again.Attributes.ApproximateReceiveCount, "2");
  await rejects(send("DeleteMessage", { QueueUrl: url, ReceiptHandle: "forged" }), SQS.ReceiptHandleIsInvalid);
  await send("DeleteMessage", { QueueUrl: url, ReceiptHandle: again.ReceiptHandle });
  await rejects(send("ChangeMessageVisibility", { QueueUrl: url, ReceiptHandle: again.ReceiptHandle, VisibilityTimeout: 5 }),
    SQS.MessageNotInflight);
  await rejects(send("SendMessage", { QueueUrl: url, MessageBody: "bad \u0001" }), SQS.InvalidMessageContents);
  const e = await rejects(send("ReceiveMessage", { QueueUrl: url, MaxNumberOfMessages: 11 }), SQS.SQSServiceException);
  assert.equal(e.Code, "InvalidParameterValue");
  await rejects(send("ReceiveMessage", { QueueUrl: url, MessageSystemAttributeNames: ["Nope"] }), SQS.InvalidAttributeName);
  const t0 = Date.now();
  const empty = await send("ReceiveMessage", { QueueUrl: url, WaitTimeSeconds: 1 });
  assert.equal(empty.Messages, undefined);
  assert.ok(Date.now() - t0 >= 900);
});

test("AWSTraceHeader: the JSON protocol's MessageSystemAttributes", async () => {
  const url = await create("js-trace");
  const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
  const sys = { AWSTraceHeader: { DataType: "String", StringValue: trace } };
  const r = await send("SendMessage", { QueueUrl: url, MessageBody: "traced", MessageSystemAttributes: sys });
  assert.equal(r.MD5OfMessageSystemAttributes, md5Attrs(sys));
  const m = (await send("ReceiveMessage", { QueueUrl: url, MessageSystemAttributeNames: ["AWSTraceHeader"] })).Messages[0];
  assert.equal(m.Body, "traced");
  assert.deepEqual(m.Attributes, { AWSTraceHeader: trace });
  await rejects(send("SendMessage", { QueueUrl: url, MessageBody: "x",
    MessageSystemAttributes: { AWSTraceHeader: { DataType: "String", StringValue: "Sampled=1" } } }), SQS.SQSServiceException,
    "InvalidParameterValue");
});

test("batches", async () => {
  const url = await create("js-b");
  const entries = Array.from({ length: 10 }, (_, i) => ({ Id: "m" + i, MessageBody: "b" + i }));
  const r = await send("SendMessageBatch", { QueueUrl: url, Entries: entries });
  assert.equal(r.Successful.length, 10);
  for (const s of r.Successful) assert.equal(s.MD5OfMessageBody, md5("b" + s.Id.slice(1)));
  let msgs = [];
  while (msgs.length < 10) msgs = msgs.concat((await send("ReceiveMessage", { QueueUrl: url, MaxNumberOfMessages: 10 })).Messages ?? []);
  const cv = await send("ChangeMessageVisibilityBatch", { QueueUrl: url, Entries: msgs.slice(0, 2).map((m, i) => ({ Id: "c" + i, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 40 })) });
  assert.equal(cv.Successful.length, 2);
  const d = await send("DeleteMessageBatch", { QueueUrl: url, Entries: msgs.slice(0, 9).map((m, i) => ({ Id: "d" + i, ReceiptHandle: m.ReceiptHandle })).concat([{ Id: "bad", ReceiptHandle: "x" }]) });
  assert.equal(d.Successful.length, 9);
  assert.deepEqual(d.Failed.map((f) => [f.Id, f.Code, f.SenderFault]), [["bad", "ReceiptHandleIsInvalid", true]]);
  await rejects(send("SendMessageBatch", { QueueUrl: url, Entries: Array.from({ length: 11 }, (_, i) => ({ Id: "x" + i, MessageBody: "x" })) }),
    SQS.TooManyEntriesInBatchRequest);
  await rejects(send("DeleteMessageBatch", { QueueUrl: url, Entries: [{ Id: "a", ReceiptHandle: "1" }, { Id: "a", ReceiptHandle: "2" }] }),
    SQS.BatchEntryIdsNotDistinct);
  await rejects(send("SendMessageBatch", { QueueUrl: url, Entries: [] }), SQS.EmptyBatchRequest);
  await send("SendMessage", { QueueUrl: url, MessageBody: "p" });
  await send("PurgeQueue", { QueueUrl: url });
  assert.equal((await send("GetQueueAttributes", { QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages"] })).Attributes.ApproximateNumberOfMessages, "0");
});

test("dead letters and message move tasks", async () => {
  const dlq = await create("js-dlq");
  const src = await create("js-src", { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn("js-dlq"), maxReceiveCount: 1 }) });
  assert.deepEqual((await send("ListDeadLetterSourceQueues", { QueueUrl: dlq })).queueUrls, [src]);
  for (let i = 0; i < 3; i++) await send("SendMessage", { QueueUrl: src, MessageBody: "dl" + i });
  // first receive counts 1, the next one would pass maxReceiveCount: dead-lettered
  let first = [];
  while (first.length < 3) first = first.concat((await send("ReceiveMessage", { QueueUrl: src, MaxNumberOfMessages: 10, VisibilityTimeout: 0 })).Messages ?? []);
  const none = await send("ReceiveMessage", { QueueUrl: src, MaxNumberOfMessages: 10 });
  assert.equal(none.Messages, undefined);
  const inDlq = await send("GetQueueAttributes", { QueueUrl: dlq, AttributeNames: ["ApproximateNumberOfMessages"] });
  assert.equal(inDlq.Attributes.ApproximateNumberOfMessages, "3");
  await rejects(send("StartMessageMoveTask", { SourceArn: arn("js-src") }), SQS.SQSServiceException);
  const h = (await send("StartMessageMoveTask", { SourceArn: arn("js-dlq"), MaxNumberOfMessagesPerSecond: 1 })).TaskHandle;
  assert.ok(h);
  const tasks = (await send("ListMessageMoveTasks", { SourceArn: arn("js-dlq") })).Results;
  assert.equal(tasks.length, 1);
  assert.ok(["RUNNING", "COMPLETED"].includes(tasks[0].Status));
  assert.equal(tasks[0].ApproximateNumberOfMessagesToMove, 3);
  assert.equal(tasks[0].MaxNumberOfMessagesPerSecond, 1);
  assert.ok(Math.abs(tasks[0].StartedTimestamp - Date.now()) < 60000);
  if (tasks[0].Status === "RUNNING") {
    assert.equal(tasks[0].TaskHandle, h);
    const c = await send("CancelMessageMoveTask", { TaskHandle: h });
    assert.ok(c.ApproximateNumberOfMessagesMoved >= 0);
    assert.equal((await send("ListMessageMoveTasks", { SourceArn: arn("js-dlq") })).Results[0].Status, "CANCELLED");
  }
  await rejects(send("CancelMessageMoveTask", { TaskHandle: "bm9wZQ==" }), SQS.ResourceNotFoundException);
  // a full move at the highest rate brings every message back
  await send("StartMessageMoveTask", { SourceArn: arn("js-dlq"), MaxNumberOfMessagesPerSecond: 500 });
  for (let i = 0; i < 50; i++) {
    const t = (await send("ListMessageMoveTasks", { SourceArn: arn("js-dlq") })).Results[0];
    if (t.Status === "COMPLETED") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const back = await send("GetQueueAttributes", { QueueUrl: src, AttributeNames: ["ApproximateNumberOfMessages"] });
  assert.equal(Number(back.Attributes.ApproximateNumberOfMessages) > 0, true);
});

test("a move task's handle cancels that task only", async () => {
  const dlq = await create("js-hdlq");
  const src = await create("js-hsrc", { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn("js-hdlq"), maxReceiveCount: 1 }) });
  for (let i = 0; i < 20; i++) await send("SendMessage", { QueueUrl: src, MessageBody: "h" + i });
  for (let i = 0; i < 20; i++) {
    await send("ReceiveMessage", { QueueUrl: src, MaxNumberOfMessages: 10, VisibilityTimeout: 0 });
    const n = (await send("GetQueueAttributes", { QueueUrl: dlq, AttributeNames: ["ApproximateNumberOfMessages"] }))
      .Attributes.ApproximateNumberOfMessages;
    if (n === "20") break;
  }
  const h1 = (await send("StartMessageMoveTask", { SourceArn: arn("js-hdlq"), MaxNumberOfMessagesPerSecond: 1 })).TaskHandle;
  await send("CancelMessageMoveTask", { TaskHandle: h1 });
  await new Promise((r) => setTimeout(r, 5)); // a later start, a later handle
  const h2 = (await send("StartMessageMoveTask", { SourceArn: arn("js-hdlq"), MaxNumberOfMessagesPerSecond: 1 })).TaskHandle;
  assert.notEqual(h2, h1);
  await rejects(send("CancelMessageMoveTask", { TaskHandle: h1 }), SQS.ResourceNotFoundException);
  const c = await send("CancelMessageMoveTask", { TaskHandle: h2 });
  assert.ok(c.ApproximateNumberOfMessagesMoved < 20);
});

test("a source queue replaced (deleted, created again) gets its dead letters back", async () => {
  const dlq = await create("js-rdlq");
  const policy = { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn("js-rdlq"), maxReceiveCount: 1 }) };
  let src = await create("js-rsrc", policy);
  await send("SendMessage", { QueueUrl: src, MessageBody: "lost?" });
  await send("ReceiveMessage", { QueueUrl: src, VisibilityTimeout: 0 });
  assert.equal((await send("ReceiveMessage", { QueueUrl: src })).Messages, undefined); // dead-lettered
  await send("DeleteQueue", { QueueUrl: src });
  src = await create("js-rsrc", policy); // as a stack replacing the queue does
  const m = (await send("ReceiveMessage", { QueueUrl: dlq, VisibilityTimeout: 0,
    MessageSystemAttributeNames: ["DeadLetterQueueSourceArn"] })).Messages[0];
  assert.equal(m.Attributes.DeadLetterQueueSourceArn, arn("js-rsrc"));
  await send("StartMessageMoveTask", { SourceArn: arn("js-rdlq"), MaxNumberOfMessagesPerSecond: 500 });
  let t;
  for (let i = 0; i < 50; i++) {
    t = (await send("ListMessageMoveTasks", { SourceArn: arn("js-rdlq") })).Results[0];
    if (t.Status !== "RUNNING") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(t.Status, "COMPLETED");
  const back = (await send("ReceiveMessage", { QueueUrl: src, WaitTimeSeconds: 1 })).Messages;
  assert.deepEqual(back.map((x) => x.Body), ["lost?"]);
});

test("sns client: topics, subscriptions, publish", async () => {
  const t = (await sns.send(new SNS.CreateTopicCommand({ Name: "js-t" }))).TopicArn;
  assert.equal(t, `arn:aws:sns:us-east-1:${ACCOUNT}:js-t`);
  const q = await create("js-tq");
  const sub = (await sns.send(new SNS.SubscribeCommand({ TopicArn: t, Protocol: "sqs", Endpoint: arn("js-tq"),
    Attributes: { RawMessageDelivery: "true" } }))).SubscriptionArn;
  assert.ok(sub.startsWith(t + ":"));
  const p = await sns.send(new SNS.PublishCommand({ TopicArn: t, Message: "from js",
    MessageAttributes: { k: { DataType: "String", StringValue: "v" } } }));
  assert.equal(p.MessageId.length, 36);
  const m = (await send("ReceiveMessage", { QueueUrl: q, WaitTimeSeconds: 2, MessageAttributeNames: ["All"] })).Messages[0];
  assert.equal(m.Body, "from js");
  assert.equal(m.MessageAttributes.k.StringValue, "v");
  const b = await sns.send(new SNS.PublishBatchCommand({ TopicArn: t, PublishBatchRequestEntries: [{ Id: "1", Message: "a" }, { Id: "2", Message: "b" }] }));
  assert.equal(b.Successful.length, 2);
  await sns.send(new SNS.SetSubscriptionAttributesCommand({ SubscriptionArn: sub, AttributeName: "FilterPolicy", AttributeValue: '{"k":["v"]}' }));
  const a = (await sns.send(new SNS.GetSubscriptionAttributesCommand({ SubscriptionArn: sub }))).Attributes;
  assert.equal(a.FilterPolicy, '{"k":["v"]}');
  await sns.send(new SNS.TagResourceCommand({ ResourceArn: t, Tags: [{ Key: "x", Value: "y" }] }));
  assert.deepEqual((await sns.send(new SNS.ListTagsForResourceCommand({ ResourceArn: t }))).Tags, [{ Key: "x", Value: "y" }]);
  try {
    await sns.send(new SNS.GetTopicAttributesCommand({ TopicArn: t + "x" }));
    assert.fail("expected NotFound");
  } catch (e) {
    assert.ok(e instanceof SNS.NotFoundException, e.name);
  }
  await sns.send(new SNS.UnsubscribeCommand({ SubscriptionArn: sub }));
  await sns.send(new SNS.DeleteTopicCommand({ TopicArn: t }));
  assert.deepEqual((await sns.send(new SNS.ListTopicsCommand({}))).Topics ?? [], []);
});
