"""SQS and SNS through Debian's boto3 (the query protocol, XML replies), on
the real gearboxd. Every action is driven through the SDK and its returned
fields are checked; errors must come back as the SDK's typed errors."""
import base64
import hashlib
import json
import struct
import time
import unittest

import botocore.exceptions

import gbxtest


def md5(s):
    return hashlib.md5(s.encode() if isinstance(s, str) else s).hexdigest()


def md5_attrs(attrs):
    """MD5OfMessageAttributes computed independently, as AWS documents it."""
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]

        def enc(b):
            h.update(struct.pack(">I", len(b)) + b)

        enc(name.encode())
        enc(a["DataType"].encode())
        if "StringValue" in a:
            h.update(b"\x01")
            enc(a["StringValue"].encode())
        else:
            h.update(b"\x02")
            enc(a["BinaryValue"])
    return h.hexdigest()


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = gbxtest.Server()
        cls.sqs, cls.sns = gbxtest.boto3_clients(cls.srv)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def code(self, ctx):
        return ctx.exception.response["Error"]["Code"]

    def status(self, ctx):
        return ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"]

    def queue(self, name, **attrs):
        return self.sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})["QueueUrl"]


class Queues(Base):
    def test_create_get_url_list_delete(self):
        url = self.queue("qa-one", VisibilityTimeout=7)
        self.assertEqual(url, self.srv.url("qa-one"))
        # idempotent with the same attributes, QueueAlreadyExists otherwise
        self.assertEqual(self.queue("qa-one", VisibilityTimeout=7), url)
        with self.assertRaises(self.sqs.exceptions.QueueNameExists) as e:
            self.queue("qa-one", VisibilityTimeout=8)
        self.assertEqual(self.code(e), "QueueAlreadyExists")
        self.assertEqual(self.sqs.get_queue_url(QueueName="qa-one")["QueueUrl"], url)
        self.queue("qa-two")
        self.queue("qb-three")
        got = self.sqs.list_queues(QueueNamePrefix="qa-")["QueueUrls"]
        self.assertEqual(got, [self.srv.url("qa-one"), self.srv.url("qa-two")])
        self.sqs.delete_queue(QueueUrl=url)
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist) as e:
            self.sqs.get_queue_url(QueueName="qa-one")
        self.assertEqual(self.code(e), "AWS.SimpleQueueService.NonExistentQueue")
        self.assertEqual(self.status(e), 400)

    def test_list_paging(self):
        for i in range(5):
            self.queue("page-%d" % i)
        seen, token = [], None
        while True:
            kw = {"QueueNamePrefix": "page-", "MaxResults": 2}
            if token:
                kw["NextToken"] = token
            r = self.sqs.list_queues(**kw)
            seen += r.get("QueueUrls", [])
            token = r.get("NextToken")
            if not token:
                break
        self.assertEqual(seen, [self.srv.url("page-%d" % i) for i in range(5)])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.list_queues(MaxResults=1001)
        self.assertEqual(self.code(e), "InvalidParameterValue")

    def test_attributes(self):
        url = self.queue("attrs", DelaySeconds=3, MaximumMessageSize=2048)
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(a["QueueArn"], "arn:aws:sqs:us-east-1:%s:attrs" % gbxtest.ACCOUNT)
        self.assertEqual(a["DelaySeconds"], "3")
        self.assertEqual(a["MaximumMessageSize"], "2048")
        self.assertEqual(a["VisibilityTimeout"], "30")
        self.assertEqual(a["MessageRetentionPeriod"], "345600")
        self.assertEqual(a["ApproximateNumberOfMessages"], "0")
        self.assertIn("CreatedTimestamp", a)
        self.assertNotIn("RedrivePolicy", a)
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45", "DelaySeconds": "0"})
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "DelaySeconds"])["Attributes"]
        self.assertEqual(a, {"VisibilityTimeout": "45", "DelaySeconds": "0"})
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
        self.assertEqual(self.code(e), "InvalidAttributeValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Bogus": "1"})
        self.assertEqual(self.code(e), "InvalidAttributeName")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
        self.assertEqual(self.code(e), "InvalidAttributeName")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
        self.assertEqual(self.code(e), "InvalidAttributeName")
        pol = json.dumps({"Version": "2012-10-17", "Statement": []})
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": pol})
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
        self.assertEqual(a["Policy"], pol)

    def test_redrive_policy_and_dlq_sources(self):
        dlq = self.queue("rd-dlq")
        dlq_arn = "arn:aws:sqs:us-east-1:%s:rd-dlq" % gbxtest.ACCOUNT
        src = self.queue("rd-src", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
        a = self.sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
        self.assertEqual(json.loads(a["RedrivePolicy"]), {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
        allow = json.dumps({"redrivePermission": "allowAll"})
        self.sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": allow})
        a = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        self.assertEqual(a["RedriveAllowPolicy"], allow)
        self.assertEqual(self.sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"], [src])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:%s:nope" % gbxtest.ACCOUNT, "maxReceiveCount": 2})})
        self.assertEqual(self.code(e), "InvalidParameterValue")
        self.assertIn("Dead letter target does not exist", str(e.exception))
        # a message received past maxReceiveCount lands in the DLQ with its source
        self.sqs.send_message(QueueUrl=src, MessageBody="poison")
        for _ in range(2):
            m = self.sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)["Messages"]
            self.assertEqual(len(m), 1)
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=src))
        m = self.sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"][0]
        self.assertEqual(m["Body"], "poison")
        self.assertEqual(m["Attributes"]["DeadLetterQueueSourceArn"], "arn:aws:sqs:us-east-1:%s:rd-src" % gbxtest.ACCOUNT)
        self.sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
        self.assertEqual(self.sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", []), [])

    def test_tags(self):
        url = self.sqs.create_queue(QueueName="tagged", tags={"team": "a"})["QueueUrl"]
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "a"})
        self.sqs.tag_queue(QueueUrl=url, Tags={"env": "test", "team": "b"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "b", "env": "test"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"env": "test"})

    def test_permissions(self):
        url = self.queue("perm")
        self.sqs.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
        pol = json.loads(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        st = pol["Statement"]
        self.assertEqual(len(st), 1)
        self.assertEqual(st[0]["Sid"], "l1")
        self.assertEqual(st[0]["Action"], ["SQS:SendMessage"])
        self.assertEqual(st[0]["Principal"], {"AWS": ["arn:aws:iam::111122223333:root"]})
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["1"], Actions=["*"])
        self.assertEqual(self.code(e), "InvalidParameterValue")
        self.sqs.remove_permission(QueueUrl=url, Label="l1")
        self.assertNotIn("Policy", self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.remove_permission(QueueUrl=url, Label="l1")
        self.assertEqual(self.code(e), "InvalidParameterValue")

    def test_fifo_refused(self):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})
        self.assertEqual(self.code(e), "AWS.SimpleQueueService.UnsupportedOperation")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.create_queue(QueueName="orders2", Attributes={"FifoQueue": "true"})
        self.assertEqual(self.code(e), "AWS.SimpleQueueService.UnsupportedOperation")
        url = self.queue("notfifo")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
        self.assertEqual(self.code(e), "InvalidParameterValue")

    def test_purge(self):
        url = self.queue("purge")
        self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(4)])
        self.sqs.purge_queue(QueueUrl=url)
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        self.assertEqual(a["ApproximateNumberOfMessages"], "0")


class Messages(Base):
    def test_send_receive_delete(self):
        url = self.queue("msgs")
        attrs = {"s": {"DataType": "String", "StringValue": "välue"},
                 "n": {"DataType": "Number.int", "StringValue": "-12.5e3"},
                 "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff\x10"}}
        body = "héllo <world> & 'quotes' \"dq\"\r\nline2\ttab \U0001F600"
        r = self.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
        self.assertEqual(r["MD5OfMessageBody"], md5(body))
        self.assertEqual(r["MD5OfMessageAttributes"], md5_attrs(attrs))
        mid = r["MessageId"]
        self.assertRegex(mid, r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        before = int(time.time() * 1000)
        got = self.sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertEqual(m["MessageId"], mid)
        self.assertEqual(m["Body"], body)  # CR survives the XML round trip
        self.assertEqual(m["MD5OfBody"], md5(body))
        self.assertEqual(m["MessageAttributes"], attrs)
        self.assertEqual(m["MD5OfMessageAttributes"], md5_attrs(attrs))
        sa = m["Attributes"]
        self.assertEqual(sa["ApproximateReceiveCount"], "1")
        self.assertEqual(sa["SenderId"], gbxtest.ACCOUNT)
        self.assertLessEqual(abs(int(sa["SentTimestamp"]) - before), 60000)
        self.assertGreaterEqual(int(sa["ApproximateFirstReceiveTimestamp"]), int(sa["SentTimestamp"]))
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        # deleting again with the same handle is fine (as SQS)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))

    def test_attribute_name_selection(self):
        url = self.queue("select")
        attrs = {"color.red": {"DataType": "String", "StringValue": "1"},
                 "color.blue": {"DataType": "String", "StringValue": "2"},
                 "size": {"DataType": "Number", "StringValue": "3"}}
        self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
        m = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["color.*"], VisibilityTimeout=0)["Messages"][0]
        self.assertEqual(set(m["MessageAttributes"]), {"color.red", "color.blue"})
        self.assertEqual(m["MD5OfMessageAttributes"], md5_attrs(m["MessageAttributes"]))
        m = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["size"], AttributeNames=["ApproximateReceiveCount"],
                                     VisibilityTimeout=0)["Messages"][0]
        self.assertEqual(set(m["MessageAttributes"]), {"size"})
        self.assertEqual(m["Attributes"], {"ApproximateReceiveCount": "2"})
        m = self.sqs.receive_message(QueueUrl=url)["Messages"][0]
        self.assertNotIn("MessageAttributes", m)
        self.assertNotIn("Attributes", m)

    def test_invalid_messages(self):
        url = self.queue("invalid", MaximumMessageSize=1024)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
        self.assertEqual(self.code(e), "InvalidMessageContents")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"AWS.x": {"DataType": "String", "StringValue": "v"}})
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"a": {"DataType": "Number", "StringValue": "abc"}})
        self.assertEqual(self.code(e), "InvalidParameterValue")
        # SQS's Number: 38 significant digits, magnitude from 1e-128 to below 1e126
        for n in ("1" * 39, "1e126", "-2.5e-129"):
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"a": {"DataType": "Number", "StringValue": n}})
            self.assertEqual(self.code(e), "InvalidParameterValue")
            self.assertIn("out of range", e.exception.response["Error"]["Message"])
        for n in ("1" * 38, "9.5e125", "1e-128", "1" + "0" * 60):
            self.sqs.send_message(QueueUrl=url, MessageBody="n", MessageAttributes={"a": {"DataType": "Number", "StringValue": n}})
            m = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
            self.assertEqual(m["MessageAttributes"]["a"]["StringValue"], n)
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"a": {"DataType": "Float", "StringValue": "1"}})
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
                "a%d" % i: {"DataType": "String", "StringValue": "v"} for i in range(11)})
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.send_message(QueueUrl=self.srv.url("missing"), MessageBody="x")
        self.assertEqual(self.code(e), "AWS.SimpleQueueService.NonExistentQueue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
        self.assertEqual(self.code(e), "InvalidParameterValue")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.receive_message(QueueUrl=url, AttributeNames=["Bogus"])
        self.assertEqual(self.code(e), "InvalidAttributeName")

    def test_receipts_and_visibility(self):
        url = self.queue("vis")
        self.sqs.send_message(QueueUrl=url, MessageBody="v")
        m1 = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=0)
        m2 = self.sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
        self.assertEqual(m2["MessageId"], m1["MessageId"])
        self.assertEqual(m2["Attributes"]["ApproximateReceiveCount"], "2")
        # a handle from the earlier receive deletes nothing, successfully (as SQS)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"])
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        self.assertEqual(a["Attributes"]["ApproximateNumberOfMessagesNotVisible"], "1")
        with self.assertRaises(self.sqs.exceptions.ReceiptHandleIsInvalid) as e:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
        self.assertEqual(self.status(e), 404)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43201)
        self.assertEqual(self.code(e), "InvalidParameterValue")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
        with self.assertRaises(self.sqs.exceptions.MessageNotInflight) as e:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=5)
        self.assertEqual(self.code(e), "AWS.SimpleQueueService.MessageNotInflight")

    def test_batches(self):
        url = self.queue("batch")
        entries = [{"Id": "e%d" % i, "MessageBody": "body-%d" % i} for i in range(10)]
        entries[3]["MessageAttributes"] = {"k": {"DataType": "String", "StringValue": "v"}}
        entries[5]["MessageBody"] = "bad \x02"
        r = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(len(r["Successful"]), 9)
        self.assertEqual([f["Id"] for f in r["Failed"]], ["e5"])
        self.assertEqual(r["Failed"][0]["Code"], "InvalidMessageContents")
        self.assertTrue(r["Failed"][0]["SenderFault"])
        by_id = {s["Id"]: s for s in r["Successful"]}
        self.assertEqual(by_id["e0"]["MD5OfMessageBody"], md5("body-0"))
        self.assertEqual(by_id["e3"]["MD5OfMessageAttributes"], md5_attrs(entries[3]["MessageAttributes"]))
        got = []
        for _ in range(5):
            got += self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if len(got) == 9:
                break
        self.assertEqual(sorted(m["Body"] for m in got), sorted("body-%d" % i for i in range(10) if i != 5))
        d = self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "a", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 60},
            {"Id": "b", "ReceiptHandle": "junk", "VisibilityTimeout": 60}])
        self.assertEqual([s["Id"] for s in d["Successful"]], ["a"])
        self.assertEqual(d["Failed"][0]["Code"], "ReceiptHandleIsInvalid")
        d = self.sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": "m%d" % i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        self.assertEqual(len(d["Successful"]), 9)
        self.assertEqual(d.get("Failed", []), [])  # an empty list is no element in XML
        with self.assertRaises(self.sqs.exceptions.TooManyEntriesInBatchRequest):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
        with self.assertRaises(self.sqs.exceptions.EmptyBatchRequest):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[])
        with self.assertRaises(self.sqs.exceptions.BatchEntryIdsNotDistinct):
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": "a"}, {"Id": "x", "ReceiptHandle": "b"}])
        with self.assertRaises(self.sqs.exceptions.InvalidBatchEntryId):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "bad id!", "MessageBody": "x"}])
        with self.assertRaises(self.sqs.exceptions.BatchRequestTooLong):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x" * 200000} for i in range(6)])
        # entries too long for the queue still count toward the batch's total
        small = self.queue("batch-small", MaximumMessageSize=1024)
        with self.assertRaises(self.sqs.exceptions.BatchRequestTooLong):
            self.sqs.send_message_batch(QueueUrl=small, Entries=[{"Id": str(i), "MessageBody": "x" * 200000} for i in range(6)])
        d = self.sqs.send_message_batch(QueueUrl=small, Entries=[{"Id": str(i), "MessageBody": "x" * 2000} for i in range(6)])
        self.assertEqual(len(d["Failed"]), 6)
        self.assertEqual(d["Failed"][0]["Code"], "InvalidParameterValue")

    def test_long_poll(self):
        url = self.queue("poll")
        t0 = time.time()
        r = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        self.assertNotIn("Messages", r)
        self.assertGreaterEqual(time.time() - t0, 0.9)
        # a message sent while the poll waits answers it at once
        import threading
        sqs2, _ = gbxtest.boto3_clients(self.srv)
        threading.Timer(0.3, lambda: sqs2.send_message(QueueUrl=url, MessageBody="late")).start()
        t0 = time.time()
        r = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        self.assertEqual(r["Messages"][0]["Body"], "late")
        self.assertLess(time.time() - t0, 5)

    def test_delay(self):
        url = self.queue("delay")
        self.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        self.assertEqual(a["Attributes"]["ApproximateNumberOfMessagesDelayed"], "1")
        r = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        self.assertEqual(r["Messages"][0]["Body"], "later")


class TraceHeader(Base):
    """AWSTraceHeader, SQS's one message system attribute: digest on send,
    returned on receive when asked for, kept through a dead-letter move and
    a restart, and refused when it is not an X-Ray header."""
    TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def sysattrs(self, value=None):
        return {"AWSTraceHeader": {"DataType": "String", "StringValue": value or self.TRACE}}

    def test_send_receive_and_restart(self):
        dlq = self.queue("trace-dlq")
        arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = self.queue("trace")
        r = self.sqs.send_message(QueueUrl=url, MessageBody="traced", MessageSystemAttributes=self.sysattrs())
        self.assertEqual(r["MD5OfMessageSystemAttributes"], md5_attrs(self.sysattrs()))
        self.assertNotIn("MD5OfMessageAttributes", r)
        plain = self.sqs.send_message(QueueUrl=url, MessageBody="plain")
        self.assertNotIn("MD5OfMessageSystemAttributes", plain)
        b = self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "t", "MessageBody": "batch-traced", "MessageSystemAttributes": self.sysattrs()},
            {"Id": "u", "MessageBody": "batch-plain"}])
        by_id = {e["Id"]: e for e in b["Successful"]}
        self.assertEqual(by_id["t"]["MD5OfMessageSystemAttributes"], md5_attrs(self.sysattrs()))
        self.assertNotIn("MD5OfMessageSystemAttributes", by_id["u"])
        # only when asked for: by name, through "All", not otherwise
        got = {}
        for names in (["AWSTraceHeader"], ["All"], ["SentTimestamp"]):
            ms = []
            for _ in range(5):
                ms += self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                               AttributeNames=names).get("Messages", [])
                if len(ms) >= 4:
                    break
            got[names[0]] = {m["Body"]: m.get("Attributes", {}) for m in ms}
        for names in ("AWSTraceHeader", "All"):
            self.assertEqual(got[names]["traced"]["AWSTraceHeader"], self.TRACE)
            self.assertEqual(got[names]["batch-traced"]["AWSTraceHeader"], self.TRACE)
            self.assertNotIn("AWSTraceHeader", got[names]["plain"])
        self.assertNotIn("AWSTraceHeader", got["SentTimestamp"]["traced"])
        # past maxReceiveCount the message moves to the DLQ with its header
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})})
        by_body = {}
        for _ in range(10):
            self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            for m in self.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                              AttributeNames=["All"]).get("Messages", []):
                by_body[m["Body"]] = m["Attributes"]
            if len(by_body) == 4:
                break
        self.assertEqual(by_body["traced"]["AWSTraceHeader"], self.TRACE)
        self.assertNotIn("AWSTraceHeader", by_body["plain"])
        # and it is stored: back after a restart
        self.srv.stop()
        self.srv.start()
        sqs, _ = gbxtest.boto3_clients(self.srv)
        ms = sqs.receive_message(QueueUrl=self.srv.url("trace-dlq"), MaxNumberOfMessages=10,
                                 AttributeNames=["AWSTraceHeader"])["Messages"]
        by_body = {m["Body"]: m.get("Attributes", {}) for m in ms}
        self.assertEqual(set(by_body), {"traced", "plain", "batch-traced", "batch-plain"})
        self.assertEqual(by_body["traced"]["AWSTraceHeader"], self.TRACE)
        self.assertEqual(by_body["batch-traced"]["AWSTraceHeader"], self.TRACE)
        self.assertNotIn("AWSTraceHeader", by_body["plain"])
        self.assertNotIn("AWSTraceHeader", by_body["batch-plain"])

    def test_refused(self):
        url = self.queue("trace-bad")
        bad = [
            ({"Other": {"DataType": "String", "StringValue": "v"}}, "Other"),
            ({"AWSTraceHeader": {"DataType": "Number", "StringValue": "1"}}, "String"),
            (self.sysattrs("not a header"), "X-Ray"),
            (self.sysattrs("Root=1-5759e988-bd862e3fe1be46a99427279;Sampled=1"), "X-Ray"),
            (self.sysattrs("Parent=53995c3f42cd8ad8;Sampled=1"), "X-Ray"),
            (self.sysattrs(self.TRACE + ";Self=" + "a" * 1024), "X-Ray"),
        ]
        for attrs, why in bad:
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageSystemAttributes=attrs)
            self.assertEqual(self.code(e), "InvalidParameterValue")
            self.assertIn(why, e.exception.response["Error"]["Message"])
        b = self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "bad", "MessageBody": "x", "MessageSystemAttributes": self.sysattrs("Root=2")},
            {"Id": "ok", "MessageBody": "y", "MessageSystemAttributes": self.sysattrs(
                "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678")},
            {"Id": "spaced", "MessageBody": "z", "MessageSystemAttributes": self.sysattrs(
                "Parent=53995c3f42cd8ad8; Root=1-67891233-abcdef012345678912345678; Sampled=0")}])
        self.assertEqual([f["Id"] for f in b["Failed"]], ["bad"])
        self.assertEqual(sorted(s["Id"] for s in b["Successful"]), ["ok", "spaced"])
        ms = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        got = {m["Body"]: m["Attributes"]["AWSTraceHeader"] for m in ms}
        self.assertEqual(sorted(got), ["y", "z"])
        self.assertTrue(got["y"].startswith("Self=1-67891234"))
        self.assertTrue(got["z"].startswith("Parent=53995c3f42cd8ad8; Root="))


class Topics(Base):
    def test_topic_lifecycle(self):
        arn = self.sns.create_topic(Name="t-life", Attributes={"DisplayName": "Life"}, Tags=[{"Key": "k", "Value": "v"}])["TopicArn"]
        self.assertEqual(arn, "arn:aws:sns:us-east-1:%s:t-life" % gbxtest.ACCOUNT)
        self.assertEqual(self.sns.create_topic(Name="t-life")["TopicArn"], arn)
        self.assertIn({"TopicArn": arn}, self.sns.list_topics()["Topics"])
        a = self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        self.assertEqual(a["DisplayName"], "Life")
        self.assertEqual(a["TopicArn"], arn)
        self.assertEqual(a["SubscriptionsConfirmed"], "0")
        self.assertEqual(json.loads(a["Policy"])["Statement"][0]["Resource"], arn)
        self.sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="New")
        self.assertEqual(self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"], "New")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.set_topic_attributes(TopicArn=arn, AttributeName="Bogus", AttributeValue="x")
        self.assertEqual(self.sns.list_tags_for_resource(ResourceArn=arn)["Tags"], [{"Key": "k", "Value": "v"}])
        self.sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k2", "Value": "v2"}])
        self.sns.untag_resource(ResourceArn=arn, TagKeys=["k"])
        self.assertEqual(self.sns.list_tags_for_resource(ResourceArn=arn)["Tags"], [{"Key": "k2", "Value": "v2"}])
        self.sns.delete_topic(TopicArn=arn)
        with self.assertRaises(self.sns.exceptions.NotFoundException):
            self.sns.get_topic_attributes(TopicArn=arn)
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.create_topic(Name="t.fifo", Attributes={"FifoTopic": "true"})

    def test_subscribe_publish_envelope_and_raw(self):
        arn = self.sns.create_topic(Name="t-pub")["TopicArn"]
        env_q = self.queue("t-env")
        raw_q = self.queue("t-raw")
        flt_q = self.queue("t-flt")
        arnq = lambda n: "arn:aws:sqs:us-east-1:%s:%s" % (gbxtest.ACCOUNT, n)
        s_env = self.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=arnq("t-env"))["SubscriptionArn"]
        s_raw = self.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=arnq("t-raw"),
                                   Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
        s_flt = self.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=arnq("t-flt"),
                                   Attributes={"FilterPolicy": json.dumps({"color": ["red"]})})["SubscriptionArn"]
        self.assertTrue(s_env.startswith(arn + ":"))
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://example.invalid/")
        subs = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        self.assertEqual(sorted(s["SubscriptionArn"] for s in subs), sorted([s_env, s_raw, s_flt]))
        self.assertEqual({s["Protocol"] for s in subs}, {"sqs"})
        self.assertTrue(any(s["SubscriptionArn"] == s_raw for s in self.sns.list_subscriptions()["Subscriptions"]))
        a = self.sns.get_subscription_attributes(SubscriptionArn=s_raw)["Attributes"]
        self.assertEqual(a["RawMessageDelivery"], "true")
        self.assertEqual(a["Endpoint"], arnq("t-raw"))
        a = self.sns.get_subscription_attributes(SubscriptionArn=s_flt)["Attributes"]
        self.assertEqual(json.loads(a["FilterPolicy"]), {"color": ["red"]})
        self.assertEqual(a["FilterPolicyScope"], "MessageAttributes")
        attrs = {"color": {"DataType": "String", "StringValue": "red"},
                 "bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}}
        mid = self.sns.publish(TopicArn=arn, Message="hi there", Subject="subj", MessageAttributes=attrs)["MessageId"]
        m = self.sqs.receive_message(QueueUrl=env_q, WaitTimeSeconds=2)["Messages"][0]
        env = json.loads(m["Body"])
        self.assertEqual(m["MD5OfBody"], md5(m["Body"]))
        self.assertEqual(env["Type"], "Notification")
        self.assertEqual(env["MessageId"], mid)
        self.assertEqual(env["TopicArn"], arn)
        self.assertEqual(env["Subject"], "subj")
        self.assertEqual(env["Message"], "hi there")
        self.assertEqual(env["SignatureVersion"], "2")
        self.assertIn("Action=Unsubscribe", env["UnsubscribeURL"])
        self.assertEqual(env["MessageAttributes"]["color"], {"Type": "String", "Value": "red"})
        self.assertEqual(env["MessageAttributes"]["bin"], {"Type": "Binary", "Value": base64.b64encode(b"\x01\x02").decode()})
        m = self.sqs.receive_message(QueueUrl=raw_q, WaitTimeSeconds=2, MessageAttributeNames=["All"])["Messages"][0]
        self.assertEqual(m["Body"], "hi there")
        self.assertEqual(m["MessageAttributes"], attrs)
        self.assertEqual(m["MD5OfMessageAttributes"], md5_attrs(attrs))
        m = self.sqs.receive_message(QueueUrl=flt_q, WaitTimeSeconds=2)["Messages"][0]
        self.assertEqual(json.loads(m["Body"])["Message"], "hi there")
        # the filter drops a blue one
        self.sns.publish(TopicArn=arn, Message="blue", MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}})
        self.assertEqual(json.loads(self.sqs.receive_message(QueueUrl=env_q, WaitTimeSeconds=2)["Messages"][0]["Body"])["Message"], "blue")
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=flt_q))
        # raw delivery off again: envelopes
        self.sns.set_subscription_attributes(SubscriptionArn=s_raw, AttributeName="RawMessageDelivery", AttributeValue="false")
        self.sqs.purge_queue(QueueUrl=raw_q)
        self.sns.publish(TopicArn=arn, Message=json.dumps({"default": "d", "sqs": "for sqs"}), MessageStructure="json")
        m = self.sqs.receive_message(QueueUrl=raw_q, WaitTimeSeconds=2)["Messages"][0]
        self.assertEqual(json.loads(m["Body"])["Message"], "for sqs")
        self.sns.unsubscribe(SubscriptionArn=s_flt)
        with self.assertRaises(self.sns.exceptions.NotFoundException):
            self.sns.get_subscription_attributes(SubscriptionArn=s_flt)

    def test_publish_batch_and_errors(self):
        arn = self.sns.create_topic(Name="t-batch")["TopicArn"]
        q = self.queue("t-batch-q")
        self.sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:%s:t-batch-q" % gbxtest.ACCOUNT,
                           Attributes={"RawMessageDelivery": "true"})
        r = self.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
            {"Id": "a", "Message": "one"}, {"Id": "b", "Message": "two"}, {"Id": "c", "Message": ""}])
        self.assertEqual(sorted(s["Id"] for s in r["Successful"]), ["a", "b"])
        self.assertEqual(r["Failed"][0]["Id"], "c")
        self.assertEqual(r["Failed"][0]["Code"], "InvalidParameter")
        bodies = []
        for _ in range(5):
            bodies += [m["Body"] for m in self.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages", [])]
            if len(bodies) == 2:
                break
        self.assertEqual(sorted(bodies), ["one", "two"])
        with self.assertRaises(self.sns.exceptions.TooManyEntriesInBatchRequestException):
            self.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": str(i), "Message": "x"} for i in range(11)])
        with self.assertRaises(self.sns.exceptions.BatchEntryIdsNotDistinctException):
            self.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": "x", "Message": "x"}] * 2)
        with self.assertRaises(self.sns.exceptions.NotFoundException):
            self.sns.publish(TopicArn=arn + "nope", Message="x")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1))


if __name__ == "__main__":
    unittest.main()
