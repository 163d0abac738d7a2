"""SigV4 authentication on the AWS face (--credentials FILE), through
Debian's boto3/botocore and plain HTTP (urllib): the right key is accepted
for SQS and SNS, a wrong secret, an unknown key and an unsigned request get
AWS's errors, and botocore's presigned URLs work until they expire."""
import datetime
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from unittest import mock

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

import gbxtest

AKID = "AKIDGEARBOXTEST0001"
SECRET = "gearbox-test-secret-0001/abcdefgh+XYZ"
ALLOW_ALL = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cdir = tempfile.mkdtemp(prefix="gbx-auth-")
        cls.cred_path = os.path.join(cls.cdir, "credentials.json")
        doc = {"principals": [{"name": "alice", "access_key_id": AKID,
                               "secret_access_key": SECRET, "policy": ALLOW_ALL}]}
        fd = os.open(cls.cred_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        cls.srv = gbxtest.Server("--credentials", cls.cred_path)
        cls.cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        os.unlink(cls.cred_path)
        os.rmdir(cls.cdir)

    def client(self, svc, akid=AKID, secret=SECRET):
        return boto3.client(svc, endpoint_url=self.srv.endpoint, config=self.cfg,
                            region_name="us-east-1", aws_access_key_id=akid,
                            aws_secret_access_key=secret)

    def fails(self, fn, code, status, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            fn(**kw)
        self.assertEqual(ctx.exception.response["Error"]["Code"], code)
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)
        return ctx.exception.response["Error"]["Message"]

    def http(self, url, data=None, headers=None, method=None):
        """(status, body text, headers) of a plain HTTP request."""
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers

    def xml_code(self, body):
        m = re.search(r"<Code>([^<]*)</Code>", body)
        return m.group(1) if m else None

    def test_right_key_sqs_and_sns(self):
        sqs, sns = self.client("sqs"), self.client("sns")
        url = sqs.create_queue(QueueName="auth-ok")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="signed hello")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        self.assertEqual([m["Body"] for m in got["Messages"]], ["signed hello"])
        self.assertIn(url, sqs.list_queues()["QueueUrls"])
        arn = sns.create_topic(Name="auth-topic")["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs",
                      Endpoint=sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                      ["Attributes"]["QueueArn"])
        self.assertTrue(sns.publish(TopicArn=arn, Message="fan out")["MessageId"])
        self.assertIn(arn, [t["TopicArn"] for t in sns.list_topics()["Topics"]])

    def test_wrong_secret(self):
        sqs = self.client("sqs", secret=SECRET + "x")
        msg = self.fails(sqs.list_queues, "SignatureDoesNotMatch", 403)
        self.assertIn("does not match the signature you provided", msg)
        sns = self.client("sns", secret="another-secret-of-16+")
        self.fails(sns.list_topics, "SignatureDoesNotMatch", 403)
        self.assertIn("audit: authentication refused face=aws key=%s" % AKID, self.srv.log_tail())

    def test_failed_signatures_throttled(self):
        """After 3 free failures of one (address, key), each further request
        with that key waits out a doubling delay, refused unverified with
        Throttling; other keys from the same address are not affected."""
        bad = self.client("sqs", akid="AKIDGEARBOXGUESSER01", secret="guess-guess-guess-0001")
        codes = []
        for _ in range(12):  # the delays double, so a loaded machine gets there too
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                bad.list_queues()
            codes.append(ctx.exception.response["Error"]["Code"])
            if codes[-1] == "Throttling":
                self.assertIn("Rate exceeded", ctx.exception.response["Error"]["Message"])
                break
        self.assertEqual(codes[:4], ["InvalidClientTokenId"] * 4)
        self.assertEqual(codes[-1], "Throttling", codes)
        self.client("sqs").list_queues()  # the right key is another bucket
        fails = len(codes) - 1
        time.sleep(min(0.1 * (1 << (fails - 4)), 10) + 0.3)  # past the delay: evaluated again
        self.fails(bad.list_queues, "InvalidClientTokenId", 403)

    def test_unknown_key(self):
        sqs = self.client("sqs", akid="AKIDGEARBOXNOBODY99")
        msg = self.fails(sqs.create_queue, "InvalidClientTokenId", 403, QueueName="auth-x")
        self.assertIn("security token included in the request is invalid", msg)
        self.fails(self.client("sns", akid="AKIDGEARBOXNOBODY99").list_topics,
                   "InvalidClientTokenId", 403)
        # nothing was created by the refused request
        self.assertNotIn("auth-x", " ".join(self.client("sqs").list_queues().get("QueueUrls", [])))

    def test_unsigned(self):
        st, body, _ = self.http(self.srv.endpoint + "/", data=b"Action=ListQueues&Version=2012-11-05",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 403)
        self.assertEqual(self.xml_code(body), "MissingAuthenticationToken")
        self.assertIn("<ErrorResponse", body)
        # the JSON protocol gets the JSON shape, the query code in its header
        st, body, hdrs = self.http(self.srv.endpoint + "/", data=b"{}",
                                   headers={"Content-Type": "application/x-amz-json-1.0",
                                            "X-Amz-Target": "AmazonSQS.ListQueues"})
        self.assertEqual(st, 403)
        self.assertIn("MissingAuthenticationToken", json.loads(body)["__type"])
        self.assertTrue(hdrs["x-amzn-query-error"].startswith("MissingAuthenticationToken;"))
        # test endpoints are behind the check too
        st, body, _ = self.http(self.srv.endpoint + "/moto-api/reset", data=b"", method="POST")
        self.assertEqual(st, 403)
        # a signature that is not SigV4 at all
        st, body, _ = self.http(self.srv.endpoint + "/?Action=ListQueues",
                                headers={"Authorization": "AWS AKIDGEARBOXTEST0001:c2ln"})
        self.assertEqual(st, 400)
        self.assertEqual(self.xml_code(body), "IncompleteSignature")

    def test_skewed_clock(self):
        """A request signed 20 minutes ago: AWS's "Signature expired"."""
        creds = botocore.credentials.Credentials(AKID, SECRET)
        then = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)

        class Then(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return then

            @classmethod
            def now(cls, tz=None):
                return then.replace(tzinfo=tz) if tz else then

        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.srv.endpoint + "/", data=b"Action=ListQueues&Version=2012-11-05",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        with mock.patch("botocore.auth.datetime.datetime", Then):
            botocore.auth.SigV4Auth(creds, "sqs", "us-east-1").add_auth(req)
        st, body, _ = self.http(req.url, data=req.body, headers=dict(req.headers.items()))
        self.assertEqual(st, 403)
        self.assertEqual(self.xml_code(body), "SignatureDoesNotMatch")
        self.assertIn("Signature expired", body)

    def test_presigned_urls(self):
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName="auth-pre")["QueueUrl"]
        get_url = sqs.generate_presigned_url("get_queue_url", Params={"QueueName": "auth-pre"},
                                             ExpiresIn=300, HttpMethod="GET")
        self.assertIn("X-Amz-Signature=", get_url)
        st, body, _ = self.http(get_url)
        self.assertEqual(st, 200, body)
        self.assertIn("<QueueUrl>%s</QueueUrl>" % url, body)
        send_url = sqs.generate_presigned_url(
            "send_message", Params={"QueueUrl": url, "MessageBody": "presigned + body/~"},
            ExpiresIn=300, HttpMethod="GET")
        st, body, _ = self.http(send_url)
        self.assertEqual(st, 200, body)
        self.assertIn("<MessageId>", body)
        # curl too, as a user would
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", get_url],
                           capture_output=True, timeout=30)
        if p.returncode != 127:
            self.assertEqual(p.stdout, b"200")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        self.assertEqual([m["Body"] for m in got["Messages"]], ["presigned + body/~"])
        # the same URL with another message body: refused
        st, body, _ = self.http(send_url.replace("MessageBody=presigned", "MessageBody=forged"))
        self.assertEqual(st, 403)
        self.assertEqual(self.xml_code(body), "SignatureDoesNotMatch")
        # a body added beside the URL's signed parameters: refused
        st, body, _ = self.http(get_url, data=b"QueueName=other", method="POST",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 403)

    def test_presigned_url_expires(self):
        sqs = self.client("sqs")
        sqs.create_queue(QueueName="auth-exp")
        u = sqs.generate_presigned_url("get_queue_url", Params={"QueueName": "auth-exp"},
                                       ExpiresIn=1, HttpMethod="GET")
        # X-Amz-Date is whole seconds: 1 s of validity ends at most 2 s from now
        time.sleep(2.5)
        st, body, _ = self.http(u)
        self.assertEqual(st, 400, body)
        self.assertEqual(self.xml_code(body), "RequestExpired")
        self.assertIn("Request has expired", body)


if __name__ == "__main__":
    unittest.main()
