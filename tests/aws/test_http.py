"""The HTTP transport and the wire shapes, by hand: keep-alive, pipelining,
oversized and malformed requests, unsigned requests, both protocols' error
shapes, and the test endpoints. One bad thing per request."""
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import gbxtest


def form(**kw):
    return urllib.parse.urlencode(kw).encode()


def request(body, path="/", method="POST", headers=None):
    h = {"Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    if body is not None:
        h["Content-Length"] = str(len(body))
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return head.encode() + (body or b"")


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def response(self):
        """Reads one response; returns (status, headers dict lower-case, body)."""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed before a response")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed inside a body")
            self.buf += d
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def closed(self):
        self.s.settimeout(10)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = gbxtest.Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def conn(self):
        c = Conn(self.srv.http_port)
        self.addCleanup(c.close)
        return c

    def test_keep_alive_and_pipelining(self):
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-pipe")))
        st, h, body = c.response()
        self.assertEqual(st, 200)
        self.assertIn(b"<QueueUrl>http://127.0.0.1/123456789012/h-pipe</QueueUrl>", body)
        # three requests in one write: three responses, in order, same connection
        url = "http://127.0.0.1/123456789012/h-pipe"
        c.send(request(form(Action="SendMessage", QueueUrl=url, MessageBody="one")) +
               request(form(Action="SendMessage", QueueUrl=url, MessageBody="two")) +
               request(form(Action="GetQueueAttributes", QueueUrl=url, **{"AttributeName.1": "ApproximateNumberOfMessages"})))
        for want in (b"<SendMessageResponse", b"<SendMessageResponse", b"<Value>2</Value>"):
            st, h, body = c.response()
            self.assertEqual(st, 200)
            self.assertIn(want, body)
            self.assertRegex(h["x-amzn-requestid"], r"^[0-9a-f-]{36}$")

    def test_get_with_query_string(self):
        c = self.conn()
        c.send(request(None, path="/?Action=ListQueues&Version=2012-11-05", method="GET"))
        st, h, body = c.response()
        self.assertEqual(st, 200)
        self.assertIn(b"<ListQueuesResponse", body)

    def test_body_limit_checked_before_reading(self):
        c = self.conn()
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        c.send(head)  # the body is never sent: the answer must not wait for it
        st, h, body = c.response()
        self.assertEqual(st, 413)
        self.assertTrue(c.closed())

    def test_chunked_body_over_limit(self):
        c = self.conn()
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * (1 << 20)
        try:
            for _ in range(6):
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        st, h, body = c.response()
        self.assertEqual(st, 413)

    def test_chunked_body(self):
        c = self.conn()
        b = form(Action="CreateQueue", QueueName="h-chunked")
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n")
        st, h, body = c.response()
        self.assertEqual(st, 200)
        self.assertIn(b"h-chunked", body)

    def test_expect_continue(self):
        c = self.conn()
        b = form(Action="ListQueues")
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(b))
        st, h, _ = c.response()
        self.assertEqual(st, 100)
        c.send(b)
        st, h, body = c.response()
        self.assertEqual(st, 200)

    def test_malformed_http(self):
        c = self.conn()
        c.send(b"THIS IS NOT HTTP\r\n\r\n")
        st, h, body = c.response()
        self.assertEqual(st, 400)
        self.assertTrue(c.closed())
        c = self.conn()
        c.send(b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        st, h, body = c.response()
        self.assertEqual(st, 400)

    def test_query_errors(self):
        c = self.conn()
        for body, code in ((form(Action="Nope"), b"InvalidAction"),
                           (b"", b"InvalidAction"),
                           (b"Action=ListQueues&%zz=1", b"MalformedQueryString"),
                           (form(Action="SendMessage"), b"MissingParameter"),
                           (form(Action="GetQueueUrl", QueueName="h-none"), b"AWS.SimpleQueueService.NonExistentQueue")):
            c.send(request(body))
            st, h, rb = c.response()
            self.assertEqual(st, 400, rb)
            self.assertIn(b"<ErrorResponse", rb)
            self.assertIn(b"<Code>" + code + b"</Code>", rb)
            self.assertIn(b"<Type>Sender</Type>", rb)

    def test_json_errors(self):
        c = self.conn()
        hj = {"Content-Type": "application/x-amz-json-1.0"}
        c.send(request(b"{not json", headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.ListQueues"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400)
        self.assertIn("SerializationException", json.loads(rb)["__type"])
        c.send(request(b"{}", headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.Nope"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400)
        c.send(request(json.dumps({"QueueName": "h-none"}).encode(), headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.GetQueueUrl"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(rb)["__type"], "com.amazonaws.sqs#QueueDoesNotExist")
        self.assertEqual(h["x-amzn-query-error"], "AWS.SimpleQueueService.NonExistentQueue;Sender")
        # a body with U+0000 is refused, not truncated
        c.send(request(json.dumps({"QueueName": "h-json"}).encode(), headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.CreateQueue"})))
        st, h, rb = c.response()
        url = json.loads(rb)["QueueUrl"]
        c.send(request(json.dumps({"QueueUrl": url, "MessageBody": "a\u0000b"}).encode(),
                       headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.SendMessage"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400)
        self.assertIn("InvalidMessageContents", json.loads(rb)["__type"])

    def test_query_map_entry_incomplete(self):
        """A flattened map entry without its Name (Key) or Value is refused,
        naming the parameter, instead of being dropped."""
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-map")))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)
        url = "http://x/1/h-map"
        for action, extra, missing in (
                ("SetQueueAttributes", {"Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "1",
                                        "Attribute.2.Value": "5"}, b"Attribute.2.Name"),
                ("SetQueueAttributes", {"Attribute.1.Name": "DelaySeconds"}, b"Attribute.1.Value"),
                ("TagQueue", {"Tag.1.Value": "v"}, b"Tag.1.Key"),
                ("SendMessage", {"MessageAttribute.1.Value.DataType": "String",
                                 "MessageAttribute.1.Value.StringValue": "v"}, b"MessageAttribute.1.Name")):
            c.send(request(form(Action=action, QueueUrl=url, MessageBody="m", **extra)))
            st, h, rb = c.response()
            self.assertEqual(st, 400, rb)
            self.assertIn(b"<Code>MissingParameter</Code>", rb)
            self.assertIn(b"The request must contain the parameter " + missing + b".", rb)
        # nothing was applied or sent
        c.send(request(form(Action="GetQueueAttributes", QueueUrl=url, **{"AttributeName.1": "All"})))
        st, h, rb = c.response()
        self.assertIn(b"<Name>DelaySeconds</Name><Value>0</Value>", rb)
        self.assertIn(b"<Name>ApproximateNumberOfMessages</Name><Value>0</Value>", rb)
        # SNS's entry maps: key/value for Attributes, Name/Value for MessageAttributes
        for action, extra, missing in (
                ("CreateTopic", {"Name": "h-map-t", "Attributes.entry.1.value": "d"}, b"Attributes.entry.1.key"),
                ("CreateTopic", {"Name": "h-map-t", "Attributes.entry.1.key": "DisplayName"}, b"Attributes.entry.1.value"),
                ("Publish", {"TopicArn": "arn:aws:sns:us-east-1:%s:h-map-t" % gbxtest.ACCOUNT, "Message": "m",
                             "MessageAttributes.entry.1.Name": "a",
                             "MessageAttributes.entry.1.Value.DataType": "String",
                             "MessageAttributes.entry.1.Value.StringValue": "v",
                             "MessageAttributes.entry.2.Value.DataType": "String",
                             "MessageAttributes.entry.2.Value.StringValue": "v"}, b"MessageAttributes.entry.2.Name")):
            c.send(request(form(Action=action, **extra)))
            st, h, rb = c.response()
            self.assertEqual(st, 400, rb)
            self.assertIn(b"<Code>InvalidParameter</Code>", rb)
            self.assertIn(b"Invalid parameter: " + missing + b" is missing", rb)
        c.send(request(form(Action="ListTopics")))
        st, h, rb = c.response()
        self.assertNotIn(b"h-map-t", rb)

    def test_form_nul_refused(self):
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-nul")))
        c.response()
        c.send(request(form(Action="SendMessage", QueueUrl="http://x/1/h-nul", MessageBody="a\x00b")))
        st, h, rb = c.response()
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidMessageContents</Code>", rb)

    def test_tags_are_text_and_keys_unique(self):
        c = self.conn()
        # a tag holding NUL (or malformed UTF-8) is refused on both services
        for key, value in (("k", "a\x00b"), ("\x00", "v"), ("k", "\udcff")):
            kv = {"Tag.1.Key": key, "Tag.1.Value": value}
            body = urllib.parse.urlencode(dict(Action="CreateQueue", QueueName="h-tagbad", **kv),
                                          errors="surrogateescape").encode()
            c.send(request(body))
            st, h, rb = c.response()
            self.assertEqual(st, 400, rb)
            self.assertIn(b"<Code>InvalidParameterValue</Code>", rb)
            kv = {"Tags.member.1.Key": key, "Tags.member.1.Value": value}
            body = urllib.parse.urlencode(dict(Action="CreateTopic", Name="h-tagbad", **kv),
                                          errors="surrogateescape").encode()
            c.send(request(body))
            st, h, rb = c.response()
            self.assertEqual(st, 400, rb)
            self.assertIn(b"<Code>InvalidParameter</Code>", rb)
        c.send(request(form(Action="ListQueues", QueueNamePrefix="h-tagbad")))
        st, h, rb = c.response()
        self.assertNotIn(b"h-tagbad", rb)
        # a key given twice is kept once, with its last value (form and JSON)
        c.send(request(form(Action="CreateQueue", QueueName="h-tagdup", **{
            "Tag.1.Key": "k", "Tag.1.Value": "1", "Tag.2.Key": "k", "Tag.2.Value": "2"})))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)
        c.send(request(form(Action="ListQueueTags", QueueUrl="http://x/1/h-tagdup")))
        st, h, rb = c.response()
        self.assertEqual(rb.count(b"<Key>k</Key>"), 1, rb)
        self.assertIn(b"<Value>2</Value>", rb)
        hj = {"Content-Type": "application/x-amz-json-1.0"}
        c.send(request(b'{"QueueName": "h-tagdup2", "tags": {"k": "1", "k": "2"}}',
                       headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.CreateQueue"})))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)
        c.send(request(json.dumps({"QueueUrl": json.loads(rb)["QueueUrl"]}).encode(),
                       headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.ListQueueTags"})))
        st, h, rb = c.response()
        self.assertEqual(rb.count(b'"k"'), 1, rb)
        self.assertEqual(json.loads(rb)["Tags"], {"k": "2"})

    def test_text_attributes_refused(self):
        c = self.conn()
        hj = {"Content-Type": "application/x-amz-json-1.0"}
        c.send(request(form(Action="CreateQueue", QueueName="h-text")))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)
        url = "http://127.0.0.1/123456789012/h-text"
        # a raw NUL inside a JSON string: refused, not cut (cJSON would keep "a")
        c.send(request(b'{"QueueUrl": "%s", "MessageBody": "a\x00b"}' % url.encode(),
                       headers=dict(hj, **{"X-Amz-Target": "AmazonSQS.SendMessage"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400, rb)
        self.assertIn("InvalidMessageContents", json.loads(rb)["__type"])
        # policies must be text: no control characters, no NUL (%00 or \u0000)
        for pol in ('{"Id": "a\x01"}', '{"Id": "a\x00"}', '{"Id": "a\\u0000"}'):
            c.send(request(form(Action="SetQueueAttributes", QueueUrl=url,
                                **{"Attribute.1.Name": "Policy", "Attribute.1.Value": pol})))
            st, h, rb = c.response()
            self.assertEqual(st, 400, (pol, rb))
            self.assertIn(b"<Code>InvalidAttributeValue</Code>", rb)
            c.send(request(form(Action="CreateTopic", Name="h-text",
                                **{"Attributes.entry.1.key": "Policy", "Attributes.entry.1.value": pol})))
            st, h, rb = c.response()
            self.assertEqual(st, 400, (pol, rb))
            self.assertIn(b"<Code>InvalidParameter</Code>", rb)
        c.send(request(form(Action="CreateTopic", Name="h-text",
                            **{"Attributes.entry.1.key": "DisplayName", "Attributes.entry.1.value": "a\x00b"})))
        st, h, rb = c.response()
        self.assertEqual(st, 400, rb)
        c.send(request(form(Action="ListTopics")))
        st, h, rb = c.response()
        self.assertNotIn(b"h-text", rb)
        # a display name is text, not JSON: the six characters \u0000 are fine there
        c.send(request(form(Action="CreateTopic", Name="h-text-ok",
                            **{"Attributes.entry.1.key": "DisplayName", "Attributes.entry.1.value": "a\\u0000b"})))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)

    def test_rewritten_policy_stays_within_limit(self):
        """RemovePermission re-prints the policy: 1e9 becomes 1000000000, so
        a policy within 20 KiB can outgrow it. The queue record's decoder
        refuses longer ones, so the change is refused, not stored."""
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-grow")))
        self.assertEqual(c.response()[0], 200)
        url = "http://127.0.0.1/123456789012/h-grow"
        stmt = '{"Sid": "%s", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}'
        pol = '{"Statement": [%s, %s], "N": [%s]}' % (stmt % "a", stmt % "b", ",".join(["1e9"] * 4000))
        self.assertLess(len(pol), 20480)
        c.send(request(form(Action="SetQueueAttributes", QueueUrl=url,
                            **{"Attribute.1.Name": "Policy", "Attribute.1.Value": pol})))
        st, h, rb = c.response()
        self.assertEqual(st, 200, rb)
        c.send(request(form(Action="RemovePermission", QueueUrl=url, Label="a")))
        st, h, rb = c.response()
        self.assertEqual(st, 400, rb)
        self.assertIn(b"at most 20480 bytes", rb)
        c.send(request(form(Action="GetQueueAttributes", QueueUrl=url, **{"AttributeName.1": "Policy"})))
        st, h, rb = c.response()
        self.assertEqual(rb.count(b"1e9"), 4000)

    def test_host_header_builds_urls(self):
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-host"), headers={"Host": "sqs.example.test:4566"}))
        st, h, rb = c.response()
        self.assertIn(b"<QueueUrl>http://sqs.example.test:4566/123456789012/h-host</QueueUrl>", rb)

    def test_peek_and_reset(self):
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-peek")))
        c.response()
        url = "http://127.0.0.1/123456789012/h-peek"
        c.send(request(form(Action="SendMessage", QueueUrl=url, MessageBody="p1")))
        c.response()
        c.send(request(form(Action="SendMessage", QueueUrl=url, MessageBody="p2")))
        c.response()
        c.send(request(form(Action="ReceiveMessage", QueueUrl=url)))
        c.response()
        for _ in range(2):  # peeking twice changes nothing
            c.send(request(None, path="/gearbox/peek/h-peek?max=10", method="GET"))
            st, h, rb = c.response()
            self.assertEqual(st, 200)
            msgs = json.loads(rb)["Messages"]
            self.assertEqual([(m["Body"], m["State"], m["ReceiveCount"]) for m in msgs],
                             [("p1", "inflight", 1), ("p2", "visible", 0)])
        c.send(request(b"", path="/moto-api/reset"))
        st, h, rb = c.response()
        self.assertEqual(st, 200)
        c.send(request(form(Action="ListQueues")))
        st, h, rb = c.response()
        self.assertNotIn(b"<QueueUrl>", rb)

    def test_test_endpoints_off_by_default(self):
        d = tempfile.mkdtemp(prefix="gbx-aws-")
        p = subprocess.Popen([gbxtest.GEARBOXD, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", d + "/data"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            port = int(re.search(rb"http=(\d+)", p.stdout.readline()).group(1))
            c = Conn(port)
            c.send(request(b"", path="/moto-api/reset"))
            st, h, rb = c.response()
            self.assertEqual(st, 400)
            self.assertIn(b"InvalidAction", rb)
            c.close()
        finally:
            p.terminate()
            self.assertEqual(p.wait(30), 0)
            shutil.rmtree(d, ignore_errors=True)

    def test_long_poll_client_gone(self):
        """A long poll whose client disconnects is dropped: a message sent
        afterwards stays visible for the next receiver."""
        c = self.conn()
        c.send(request(form(Action="CreateQueue", QueueName="h-gone")))
        c.response()
        url = "http://127.0.0.1/123456789012/h-gone"
        c2 = Conn(self.srv.http_port)
        c2.send(request(form(Action="ReceiveMessage", QueueUrl=url, WaitTimeSeconds=20)))
        time.sleep(0.3)
        c2.close()
        time.sleep(0.3)
        c.send(request(form(Action="SendMessage", QueueUrl=url, MessageBody="kept")))
        c.response()
        c.send(request(form(Action="ReceiveMessage", QueueUrl=url)))
        st, h, rb = c.response()
        self.assertIn(b"<Body>kept</Body>", rb)

    def test_signed_and_unsigned(self):
        c = self.conn()
        auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sqs/aws4_request, "
                                 "SignedHeaders=host, Signature=0000"}
        c.send(request(form(Action="ListQueues"), headers=auth))
        self.assertEqual(c.response()[0], 200)
        c.send(request(form(Action="ListQueues")))
        self.assertEqual(c.response()[0], 200)


class ColdBodies(unittest.TestCase):
    """With --body-cache 0 every body lives on disk only: receives and peeks
    read them off the loop thread before answering."""

    def test_receive_and_peek_from_disk(self):
        srv = gbxtest.Server("--body-cache", "0")
        try:
            sqs, _ = gbxtest.boto3_clients(srv)
            url = sqs.create_queue(QueueName="cold")["QueueUrl"]
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "cold-%d" % i} for i in range(3)])
            c = Conn(srv.http_port)
            c.send(request(None, path="/gearbox/peek/cold", method="GET"))
            st, h, rb = c.response()
            self.assertEqual([m["Body"] for m in json.loads(rb)["Messages"]], ["cold-0", "cold-1", "cold-2"])
            c.close()
            got = []
            for _ in range(5):
                got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
                if len(got) == 3:
                    break
            self.assertEqual(sorted(m["Body"] for m in got), ["cold-0", "cold-1", "cold-2"])
            # a long poll answered by a later send, body read from disk
            import threading
            sqs2, _ = gbxtest.boto3_clients(srv)
            threading.Timer(0.3, lambda: sqs2.send_message(QueueUrl=url, MessageBody="late-cold")).start()
            m = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"][0]
            self.assertEqual(m["Body"], "late-cold")
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
