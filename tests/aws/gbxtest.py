"""gbxtest.py - runs the real gearboxd for the AWS-face tests.

Each Server gets a fresh temp dir (data dir and stderr log), listens on
127.0.0.1 port 0 for both the binary protocol and the HTTP face, and is
found through its ready line ("gearboxd ready port=N ... http=M"). stop()
sends SIGTERM, requires exit status 0 and fails on a sanitizer report in
the log. Paths come from the environment set by tests/aws/CMakeLists.txt:
GBX_GEARBOXD (the server) and GBX_CLI (the gearbox CLI).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

GEARBOXD = os.environ.get("GBX_GEARBOXD", "")
CLI = os.environ.get("GBX_CLI", "")
# Far above a normal start (a few ms) so a loaded 2-core CI machine never
# trips it, and well under ctest's timeout.
READY_TIMEOUT_S = 30
# A clean stop syncs the last commit and the WAL, flushes every memtable and
# writes its marker, each step waiting on the disk: on a CI machine whose disk
# is shared with a parallel test a sync has taken seconds.
STOP_TIMEOUT_S = 120
# The CLI's own limit for one request (milliseconds), above any sync stall.
CLI_TIMEOUT_MS = 120000
# Dummy credentials: the server accepts any SigV4 signature.
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
ACCOUNT = "123456789012"


class Server:
    def __init__(self, *extra):
        if not GEARBOXD or not os.path.exists(GEARBOXD):
            raise RuntimeError("GBX_GEARBOXD does not name the gearboxd binary: %r" % GEARBOXD)
        self.dir = tempfile.mkdtemp(prefix="gbx-aws-")
        self.extra = list(extra)
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "gearboxd.log"), "ab")
        args = [GEARBOXD, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                "--data", os.path.join(self.dir, "data"), "--test-endpoints"] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + READY_TIMEOUT_S
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"gearboxd ready") or not line:
                break
        m = re.match(rb"gearboxd ready port=(\d+) .* http=(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("gearboxd did not get ready: %r\n%s" % (line, self.log_tail()))
        self.port, self.http_port = int(m.group(1)), int(m.group(2))
        self.endpoint = "http://127.0.0.1:%d" % self.http_port

    def log_tail(self):
        with open(os.path.join(self.dir, "gearboxd.log"), "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise RuntimeError("gearboxd did not stop on SIGTERM")
        rc = self.proc.returncode
        self.log.close()
        tail = self.log_tail()
        if "Sanitizer" in tail or "runtime error:" in tail:
            raise RuntimeError("sanitizer report in gearboxd's log:\n" + tail)
        if rc != 0:
            raise RuntimeError("gearboxd exited with %d:\n%s" % (rc, tail))

    def close(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("GBX_TEST_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, name):
        return "%s/%s/%s" % (self.endpoint, ACCOUNT, name)

    def cli(self, *args, input=None):
        """Runs the gearbox CLI against the binary port; returns stdout."""
        if not CLI or not os.path.exists(CLI):
            raise RuntimeError("GBX_CLI does not name the gearbox CLI: %r" % CLI)
        p = subprocess.run([CLI, "--port", str(self.port), "--timeout", str(CLI_TIMEOUT_MS)] + list(args),
                           input=input, capture_output=True, timeout=CLI_TIMEOUT_MS / 1000 + 30)
        if p.returncode != 0:
            raise RuntimeError("gearbox %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p.stdout

    def aws(self, *args, check=True):
        """Runs Debian's aws CLI against the HTTP face; returns the process."""
        # one attempt: a retry after a slow reply would send a message twice
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_MAX_ATTEMPTS="1",
                   AWS_RETRY_MODE="standard")
        env.pop("AWS_PROFILE", None)
        p = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.endpoint, "--output", "json"]
                           + list(args), capture_output=True, env=env, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("aws %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p


def boto3_clients(server):
    """boto3 SQS and SNS clients on the server's HTTP face (Debian's boto3
    speaks the query protocol)."""
    import boto3
    from botocore.config import Config
    # one attempt in all: a retry after a slow reply would send a message twice
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
    sqs = boto3.client("sqs", endpoint_url=server.endpoint, config=cfg, **CREDS)
    sns = boto3.client("sns", endpoint_url=server.endpoint, config=cfg, **CREDS)
    return sqs, sns
