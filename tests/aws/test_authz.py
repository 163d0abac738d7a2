"""Authorization through a real AWS SDK (Debian's boto3): several principals
with different IAM policies, every SQS and SNS action of the matrix against
allowed and denied resources; zero unexpected allows and zero unexpected
denies. Also: lists show only what the caller may list, a queue policy set
by AddPermission grants another principal access, an explicit Deny in a
queue policy wins, and the audit lines name principal, action and resource."""
import json
import os
import tempfile
import unittest

import boto3
import botocore.exceptions
from botocore.config import Config

import gbxtest

ACCOUNT = "123456789012"


def allow(actions, resources):
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def deny(actions, resources):
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


PRINCIPALS = {
    "admin": ("GBXAWSADMIN00001", "admin-secret-abcdefgh",
              [allow("*", "*")]),
    "producer": ("GBXAWSPRODUCER01", "producer-secret-abcdef",
                 [allow(["sqs:SendMessage*", "sqs:GetQueueUrl"], "orders-*"),
                  allow("sns:Publish", "arn:aws:sns:*:*:events")]),
    "consumer": ("GBXAWSCONSUMER01", "consumer-secret-abcdef",
                 [allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl",
                         "sqs:ListQueues", "sqs:GetQueueAttributes"], "orders-*"),
                  deny("sqs:*", "orders-secret")]),
    "wiring": ("GBXAWSWIRING0001", "wiring-secret-abcdefgh",
               [allow(["sns:Subscribe", "sns:CreateTopic", "sns:ListTopics",
                       "sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:GetQueueUrl"], "*")]),
    "outsider": ("GBXAWSOUTSIDER01", "outsider-secret-abcdef", None),
}

QUEUES = ["orders-a", "orders-secret", "billing"]
TOPICS = ["events", "audit"]


class AuthzMatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cdir = tempfile.mkdtemp(prefix="gbx-authz-")
        cls.cred_path = os.path.join(cls.cdir, "credentials.json")
        doc = {"principals": []}
        for name, (akid, secret, stmts) in PRINCIPALS.items():
            p = {"name": name, "access_key_id": akid, "secret_access_key": secret}
            if stmts is not None:
                p["policy"] = {"Version": "2012-10-17", "Statement": stmts}
            doc["principals"].append(p)
        fd = os.open(cls.cred_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        cls.srv = gbxtest.Server("--credentials", cls.cred_path)
        cls.cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
        cls.admin_sqs = cls.client("admin", "sqs")
        cls.admin_sns = cls.client("admin", "sns")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        os.unlink(cls.cred_path)
        os.rmdir(cls.cdir)

    @classmethod
    def client(cls, who, svc):
        akid, secret, _ = PRINCIPALS[who]
        return boto3.client(svc, endpoint_url=cls.srv.endpoint, config=cls.cfg,
                            region_name="us-east-1", aws_access_key_id=akid,
                            aws_secret_access_key=secret)

    def url(self, q):
        return "%s/%s/%s" % (self.srv.endpoint, ACCOUNT, q)

    def world(self):
        for q in QUEUES:
            try:
                self.admin_sqs.create_queue(QueueName=q)
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] not in ("QueueAlreadyExists",):
                    raise
        for t in TOPICS:
            self.admin_sns.create_topic(Name=t)

    def outcome(self, fn):
        """'allow', 'deny', or raises on any other error."""
        try:
            fn()
            return "allow"
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            if code in ("AccessDenied", "AuthorizationError"):
                self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 403)
                return "deny"
            if code == "ReceiptHandleIsInvalid":  # a forged handle got past authorization
                return "allow"
            raise

    def actions(self, who):
        sqs, sns = self.client(who, "sqs"), self.client(who, "sns")
        tarn = lambda t: "arn:aws:sns:us-east-1:%s:%s" % (ACCOUNT, t)
        qarn = lambda q: "arn:aws:sqs:us-east-1:%s:%s" % (ACCOUNT, q)
        return {
            "send": lambda q: sqs.send_message(QueueUrl=self.url(q), MessageBody="m"),
            "send_batch": lambda q: sqs.send_message_batch(
                QueueUrl=self.url(q), Entries=[{"Id": "1", "MessageBody": "b"}]),
            "receive": lambda q: sqs.receive_message(QueueUrl=self.url(q), WaitTimeSeconds=0),
            "delete": lambda q: sqs.delete_message(QueueUrl=self.url(q),
                                                   ReceiptHandle="AAAAAAAAAAAAAAAAAAAAAAAA"),
            "get_url": lambda q: sqs.get_queue_url(QueueName=q),
            "get_attrs": lambda q: sqs.get_queue_attributes(QueueUrl=self.url(q),
                                                            AttributeNames=["All"]),
            "set_attrs": lambda q: sqs.set_queue_attributes(
                QueueUrl=self.url(q), Attributes={"VisibilityTimeout": "31"}),
            "set_dlq": lambda q: sqs.set_queue_attributes(
                QueueUrl=self.url("orders-a"), Attributes={"RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": qarn(q), "maxReceiveCount": 5})}),
            "purge": lambda q: sqs.purge_queue(QueueUrl=self.url(q)),
            "create_queue": lambda q: sqs.create_queue(QueueName=q),
            "delete_queue": lambda q: sqs.delete_queue(QueueUrl=self.url(q)),
            "tag": lambda q: sqs.tag_queue(QueueUrl=self.url(q), Tags={"k": "v"}),
            "publish": lambda t: sns.publish(TopicArn=tarn(t), Message="p"),
            "subscribe": lambda tq: sns.subscribe(TopicArn=tarn(tq[0]), Protocol="sqs",
                                                  Endpoint=qarn(tq[1])),
            "create_topic": lambda t: sns.create_topic(Name=t),
            "delete_topic": lambda t: sns.delete_topic(TopicArn=tarn(t)),
            "topic_attrs": lambda t: sns.get_topic_attributes(TopicArn=tarn(t)),
        }

    # (principal, action, resource, expected): written from PRINCIPALS by hand
    MATRIX = [
        ("admin", "send", "billing", "allow"), ("admin", "purge", "orders-secret", "allow"),
        ("admin", "publish", "audit", "allow"), ("admin", "subscribe", ("events", "billing"), "allow"),
        ("producer", "send", "orders-a", "allow"), ("producer", "send_batch", "orders-a", "allow"),
        ("producer", "send", "orders-secret", "allow"), ("producer", "send", "billing", "deny"),
        ("producer", "get_url", "orders-a", "allow"), ("producer", "get_url", "billing", "deny"),
        ("producer", "receive", "orders-a", "deny"), ("producer", "delete", "orders-a", "deny"),
        ("producer", "get_attrs", "orders-a", "deny"), ("producer", "set_attrs", "orders-a", "deny"),
        ("producer", "purge", "orders-a", "deny"), ("producer", "create_queue", "orders-b", "deny"),
        ("producer", "delete_queue", "orders-a", "deny"), ("producer", "tag", "orders-a", "deny"),
        ("producer", "publish", "events", "allow"), ("producer", "publish", "audit", "deny"),
        ("producer", "subscribe", ("events", "orders-a"), "deny"),
        ("producer", "create_topic", "events2", "deny"), ("producer", "topic_attrs", "events", "deny"),
        ("consumer", "receive", "orders-a", "allow"), ("consumer", "delete", "orders-a", "allow"),
        ("consumer", "get_attrs", "orders-a", "allow"), ("consumer", "get_url", "orders-a", "allow"),
        ("consumer", "receive", "orders-secret", "deny"), ("consumer", "delete", "orders-secret", "deny"),
        ("consumer", "get_url", "orders-secret", "deny"), ("consumer", "receive", "billing", "deny"),
        ("consumer", "send", "orders-a", "deny"), ("consumer", "publish", "events", "deny"),
        ("consumer", "delete_queue", "orders-a", "deny"),
        ("wiring", "subscribe", ("events", "orders-a"), "deny"),  # needs sqs:SendMessage there
        ("wiring", "set_dlq", "billing", "deny"),                  # needs sqs:SendMessage there
        ("wiring", "set_attrs", "orders-a", "allow"), ("wiring", "create_queue", "wired", "allow"),
        ("wiring", "create_topic", "wired-topic", "allow"), ("wiring", "send", "orders-a", "deny"),
        ("wiring", "publish", "events", "deny"),
        ("outsider", "send", "orders-a", "deny"), ("outsider", "receive", "orders-a", "deny"),
        ("outsider", "get_url", "orders-a", "deny"), ("outsider", "create_queue", "x", "deny"),
        ("outsider", "publish", "events", "deny"), ("outsider", "create_topic", "t", "deny"),
        ("outsider", "delete_topic", "events", "deny"), ("outsider", "purge", "billing", "deny"),
    ]

    def test_matrix(self):
        wrong = []
        for who, act, res, want in self.MATRIX:
            self.world()
            got = self.outcome(lambda: self.actions(who)[act](res))
            if got != want:
                wrong.append("%s %s %s: %s, expected %s" % (who, act, res, got, want))
        self.assertEqual(wrong, [], "\n".join(wrong))
        with open(os.path.join(self.srv.dir, "gearboxd.log")) as f:
            log = f.read()
        self.assertIn("audit: denied principal=producer action=sqs:SendMessage "
                      "resource=arn:aws:sqs:us-east-1:%s:billing" % ACCOUNT, log)

    def test_lists_filtered(self):
        self.world()
        urls = self.client("consumer", "sqs").list_queues().get("QueueUrls", [])
        self.assertEqual([u.rsplit("/", 1)[1] for u in urls], ["orders-a"])
        self.assertEqual(self.client("outsider", "sqs").list_queues().get("QueueUrls", []), [])
        all_urls = self.admin_sqs.list_queues()["QueueUrls"]
        self.assertTrue(set(QUEUES) <= {u.rsplit("/", 1)[1] for u in all_urls})
        topics = self.client("wiring", "sns").list_topics()["Topics"]
        self.assertTrue({"events", "audit"} <= {t["TopicArn"].rsplit(":", 1)[1] for t in topics})
        # a list is filtered, not refused: the outsider may list nothing
        self.assertEqual(self.client("outsider", "sns").list_topics()["Topics"], [])

    def test_paging_never_names_hidden_queues(self):
        import base64
        self.world()
        for q in ("aaa-hidden", "orders-b", "zzz-hidden"):
            self.admin_sqs.create_queue(QueueName=q)
        sqs = self.client("consumer", "sqs")
        seen, kw = [], {"MaxResults": 1}
        for _ in range(10):
            page = sqs.list_queues(**kw)
            seen += [u.rsplit("/", 1)[1] for u in page.get("QueueUrls", [])]
            tok = page.get("NextToken")
            if not tok:
                break
            name = base64.b64decode(tok + "=" * (-len(tok) % 4)).decode()
            self.assertTrue(name.startswith("orders-") and name != "orders-secret", name)
            kw["NextToken"] = tok
        self.assertEqual(seen, ["orders-a", "orders-b"])

    def test_invalid_policy_refused(self):
        self.world()
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.admin_sqs.set_queue_attributes(
                QueueUrl=self.url("billing"),
                Attributes={"Policy": json.dumps({"Statement": [{"Effect": "Deny", "Action": "*"}]})})
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidAttributeValue")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.admin_sqs.add_permission(QueueUrl=self.url("billing"), Label="bad",
                                          AWSAccountIds=["not an account"], Actions=["SendMessage"])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidParameterValue")
        # the queue still works and its policy is unchanged
        self.admin_sqs.send_message(QueueUrl=self.url("billing"), MessageBody="x")

    def test_add_permission_grants_and_deny_wins(self):
        self.world()
        self.admin_sqs.create_queue(QueueName="shared")
        out_sqs = self.client("outsider", "sqs")
        send = lambda: out_sqs.send_message(QueueUrl=self.url("shared"), MessageBody="x")
        self.assertEqual(self.outcome(send), "deny")
        # AddPermission names the principal's account: every principal of it may send
        self.admin_sqs.add_permission(QueueUrl=self.url("shared"), Label="let-them-send",
                                      AWSAccountIds=[ACCOUNT], Actions=["SendMessage"])
        self.assertEqual(self.outcome(send), "allow")
        self.assertEqual(self.outcome(lambda: out_sqs.purge_queue(QueueUrl=self.url("shared"))),
                         "deny")
        self.admin_sqs.remove_permission(QueueUrl=self.url("shared"), Label="let-them-send")
        self.assertEqual(self.outcome(send), "deny")
        # a queue policy's explicit Deny beats the admin's Allow-all identity policy
        pol = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::%s:user/admin" % ACCOUNT},
            "Action": "sqs:SendMessage", "Resource": "*"}]}
        self.admin_sqs.set_queue_attributes(QueueUrl=self.url("shared"),
                                            Attributes={"Policy": json.dumps(pol)})
        self.assertEqual(self.outcome(lambda: self.admin_sqs.send_message(
            QueueUrl=self.url("shared"), MessageBody="x")), "deny")
        self.admin_sqs.set_queue_attributes(QueueUrl=self.url("shared"), Attributes={"Policy": ""})
        self.admin_sqs.send_message(QueueUrl=self.url("shared"), MessageBody="x")


if __name__ == "__main__":
    unittest.main()
