"""Cross-face tests: a message sent through the AWS API is received and
deleted through the binary protocol (the gearbox CLI, i.e. libgearbox) and
the other way round; a topic publish reaches SQS with and without raw
delivery; Debian's aws CLI drives SQS and SNS end to end."""
import base64
import hashlib
import struct
import json
import unittest

import gbxtest


class CrossFace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = gbxtest.Server()
        cls.sqs, cls.sns = gbxtest.boto3_clients(cls.srv)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def cli_json(self, *args, input=None):
        return json.loads(self.srv.cli("--json", *args, input=input))

    def test_sqs_to_native(self):
        url = self.sqs.create_queue(QueueName="x-sqs-to-native")["QueueUrl"]
        mid = self.sqs.send_message(QueueUrl=url, MessageBody="from the SQS API",
                                    MessageAttributes={"k": {"DataType": "String", "StringValue": "v"},
                                                       "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})["MessageId"]
        got = self.cli_json("receive", "x-sqs-to-native", "--max", "10")["messages"]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["mid"], mid)
        self.assertEqual(got[0]["body"], "from the SQS API")
        self.assertEqual(got[0]["attributes"]["k"], {"type": "String", "value": "v"})
        self.assertEqual(got[0]["attributes"]["b"], {"type": "Binary", "value_base64": "AAE="})
        self.srv.cli("delete", "x-sqs-to-native", got[0]["receipt"])
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual((a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]), ("0", "0"))

    def test_native_to_sqs(self):
        self.srv.cli("queue", "create", "x-native-to-sqs")
        url = self.srv.url("x-native-to-sqs")
        mid = self.srv.cli("send", "x-native-to-sqs", "from libgearbox", "--attr", "n=Number:42").decode().strip()
        m = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                     AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
        self.assertEqual(m["MessageId"], mid)
        self.assertEqual(m["Body"], "from libgearbox")
        self.assertEqual(m["MD5OfBody"], hashlib.md5(b"from libgearbox").hexdigest())
        self.assertEqual(m["MessageAttributes"], {"n": {"DataType": "Number", "StringValue": "42"}})
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        self.assertEqual(self.cli_json("receive", "x-native-to-sqs")["messages"], [])

    def test_native_binary_body(self):
        """A native body that is not XML text reaches SQS clients as base64,
        marked by the Gearbox.BodyEncoding attribute (PROTOCOL.md)."""
        self.srv.cli("queue", "create", "x-binary")
        raw = b"bin\x00\x01\xff"
        self.srv.cli("send", "x-binary", input=raw)
        m = self.sqs.receive_message(QueueUrl=self.srv.url("x-binary"))["Messages"][0]
        self.assertEqual(base64.b64decode(m["Body"]), raw)
        self.assertEqual(m["MD5OfBody"], hashlib.md5(m["Body"].encode()).hexdigest())
        self.assertEqual(m["MessageAttributes"]["Gearbox.BodyEncoding"], {"DataType": "String", "StringValue": "base64"})

    def test_native_binary_body_ten_attributes(self):
        """Ten attributes plus Gearbox.BodyEncoding: MD5OfMessageAttributes
        covers all eleven returned (it was the body's MD5: the digest took at
        most ten, and SDKs that verify it threw)."""
        self.srv.cli("queue", "create", "x-binary-10")
        args = []
        for i in range(10):
            args += ["--attr", "a%d=String:v%d" % (i, i)]
        self.srv.cli("send", "x-binary-10", *args, input=b"\x00\xff")
        m = self.sqs.receive_message(QueueUrl=self.srv.url("x-binary-10"),
                                     MessageAttributeNames=["All"])["Messages"][0]
        attrs = m["MessageAttributes"]
        self.assertEqual(len(attrs), 11)
        d = hashlib.md5()
        for name in sorted(attrs):
            a = attrs[name]
            for part in (name.encode(), a["DataType"].encode()):
                d.update(struct.pack(">I", len(part)) + part)
            if "BinaryValue" in a:
                d.update(b"\x02" + struct.pack(">I", len(a["BinaryValue"])) + a["BinaryValue"])
            else:
                v = a["StringValue"].encode()
                d.update(b"\x01" + struct.pack(">I", len(v)) + v)
        self.assertEqual(m["MD5OfMessageAttributes"], d.hexdigest())

    def test_native_publish_to_sqs(self):
        tarn = self.sns.create_topic(Name="x-topic")["TopicArn"]
        for q, raw in (("x-env", "false"), ("x-raw", "true")):
            self.sqs.create_queue(QueueName=q)
            self.sns.subscribe(TopicArn=tarn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:%s:%s" % (gbxtest.ACCOUNT, q),
                               Attributes={"RawMessageDelivery": raw})
        pid = self.srv.cli("publish", "x-topic", "native publish", "--subject", "S").decode().strip()
        env = json.loads(self.sqs.receive_message(QueueUrl=self.srv.url("x-env"))["Messages"][0]["Body"])
        self.assertEqual((env["MessageId"], env["Message"], env["Subject"], env["TopicArn"]), (pid, "native publish", "S", tarn))
        m = self.sqs.receive_message(QueueUrl=self.srv.url("x-raw"))["Messages"][0]
        self.assertEqual(m["Body"], "native publish")
        self.sqs.delete_message(QueueUrl=self.srv.url("x-raw"), ReceiptHandle=m["ReceiptHandle"])
        # and an SNS-API publish reaches a native receiver
        self.sns.publish(TopicArn=tarn, Message="api publish")
        got = self.cli_json("receive", "x-raw", "--wait", "2")["messages"]
        self.assertEqual(got[0]["body"], "api publish")


class AwsCli(unittest.TestCase):
    """Debian's aws CLI, as a person would point it at Gearbox."""

    @classmethod
    def setUpClass(cls):
        cls.srv = gbxtest.Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def aws(self, *args):
        p = self.srv.aws(*args)
        return json.loads(p.stdout) if p.stdout.strip() else {}

    def test_sqs(self):
        url = self.aws("sqs", "create-queue", "--queue-name", "cli-q", "--attributes", "VisibilityTimeout=20")["QueueUrl"]
        self.assertEqual(url, self.srv.url("cli-q"))
        self.assertIn(url, self.aws("sqs", "list-queues")["QueueUrls"])
        r = self.aws("sqs", "send-message", "--queue-url", url, "--message-body", "cli body",
                     "--message-attributes", '{"a":{"DataType":"String","StringValue":"x"}}')
        self.assertEqual(r["MD5OfMessageBody"], hashlib.md5(b"cli body").hexdigest())
        self.assertEqual(len(r["MD5OfMessageAttributes"]), 32)
        m = self.aws("sqs", "receive-message", "--queue-url", url, "--attribute-names", "All",
                     "--message-attribute-names", "All")["Messages"][0]
        self.assertEqual((m["Body"], m["MessageId"]), ("cli body", r["MessageId"]))
        self.assertEqual(m["MessageAttributes"]["a"]["StringValue"], "x")
        self.assertEqual(m["MD5OfMessageAttributes"], r["MD5OfMessageAttributes"])
        self.aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
        a = self.aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
        self.assertEqual(a["VisibilityTimeout"], "20")
        self.assertEqual(a["ApproximateNumberOfMessagesNotVisible"], "0")
        p = self.srv.aws("sqs", "get-queue-url", "--queue-name", "no-such", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"AWS.SimpleQueueService.NonExistentQueue", p.stderr)
        self.aws("sqs", "delete-queue", "--queue-url", url)

    def test_sns(self):
        tarn = self.aws("sns", "create-topic", "--name", "cli-t")["TopicArn"]
        self.aws("sqs", "create-queue", "--queue-name", "cli-sub")
        sub = self.aws("sns", "subscribe", "--topic-arn", tarn, "--protocol", "sqs", "--notification-endpoint",
                       "arn:aws:sqs:us-east-1:%s:cli-sub" % gbxtest.ACCOUNT,
                       "--attributes", "RawMessageDelivery=true")["SubscriptionArn"]
        self.assertTrue(sub.startswith(tarn + ":"))
        mid = self.aws("sns", "publish", "--topic-arn", tarn, "--message", "cli publish")["MessageId"]
        self.assertEqual(len(mid), 36)
        m = self.aws("sqs", "receive-message", "--queue-url", self.srv.url("cli-sub"))["Messages"][0]
        self.assertEqual(m["Body"], "cli publish")
        self.assertEqual([s["SubscriptionArn"] for s in self.aws("sns", "list-subscriptions")["Subscriptions"]], [sub])
        self.aws("sns", "delete-topic", "--topic-arn", tarn)
        self.assertEqual(self.aws("sns", "list-topics").get("Topics", []), [])


if __name__ == "__main__":
    unittest.main()
