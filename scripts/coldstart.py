#!/usr/bin/env python3
"""Cold start and warm latency of a Lambda bootstrap under a local Lambda Runtime API.

    scripts/coldstart.py [--runs N] [--warm N] FUNCTION=BINARY [FUNCTION=BINARY ...]

FUNCTION is `verify`, `message` (static reply rules), `api` (the api function relaying
`GET /cgi-bin/menu/get`: its token from the refresh function's Invoke API and WeChat's answer
(46003), both served here; the table from with-dynalite) or `message-forward` (a forward rule, in safe mode, with a
zero budget: the function claims the `msg#` item, starts the worker and answers `success`; run it
under `node scripts/with-dynalite.mjs`, which provides the table; the worker's Lambda Invoke
endpoint is served here and answers 202) — the event each gets is built here, signed with a fresh
timestamp and a fresh MsgId, so the answer is a real 200 — or `raw:FILE.json` for any other
function and event. A `-secret` suffix (`verify-secret`, `message-secret`) runs the function as
deployed: no WECHAT_TOKEN variable, but SECRETS_ARN naming a secret that holds it, served by
moto's Secrets Manager (`moto_server`, requirements.txt) started here on loopback.
Each run starts the binary afresh with `AWS_LAMBDA_RUNTIME_API` pointing at a Runtime API served
by this script on loopback, then measures:

- init: process start to its first `GET /runtime/invocation/next` (the function's init phase:
  tracing, configuration, clients);
- first: process start to the first answer (what a user waits for on a cold start, less Lambda's
  own sandbox start);
- warm: per invocation, event handed out to answer received, over `--warm` more invocations
  (includes two loopback HTTP round trips of the runtime protocol, as on Lambda);
- rss: the process's peak resident memory (VmHWM).

Medians over `--runs`. Only the standard library; the binary must be built for this machine
(`cargo build --release -p verify`), not the arm64 Lambda target.
"""

import argparse
import hashlib
import shutil
import socket
import json
import os
import queue
import random
import statistics
import tempfile
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "coldstartToken0123456789abcdefgh"
APP_ID = "wx0000000000000000"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PREFIX = "/2018-06-01/runtime"


def signature(token, timestamp, nonce):
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def apigw_event(method, query, body=""):
    raw_query = "&".join(f"{k}={v}" for k, v in query.items())
    return {
        "version": "2.0",
        "routeKey": f"{method} /wechat",
        "rawPath": "/wechat",
        "rawQueryString": raw_query,
        "headers": {"host": "example.execute-api.us-east-1.amazonaws.com",
                    "content-type": "text/xml"},
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012", "apiId": "example",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": "/wechat", "protocol": "HTTP/1.1",
                     "sourceIp": "101.226.103.61", "userAgent": "Mozilla/4.0"},
            "requestId": "coldstart", "routeKey": f"{method} /wechat", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def webhook_event(function):
    timestamp, nonce = str(int(time.time())), "coldstart"
    query = {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp,
             "nonce": nonce}
    if function.startswith("verify"):
        return apigw_event("GET", dict(query, echostr="5837397520665436492"))
    body = ("<xml><ToUserName><![CDATA[gh_account]]></ToUserName>"
            "<FromUserName><![CDATA[oUser]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[hello]]></Content><MsgId>{random.getrandbits(63)}</MsgId></xml>")
    if function == "message-forward":
        # Forward rules take encrypted pushes only (safe mode), as WeChat sends them.
        return encrypted_push(query, body, timestamp, nonce)
    return apigw_event("POST", dict(query, openid="oUser"), body)


def encrypted_push(query, body, timestamp, nonce):
    """`body` as WeChat sends it in safe mode: encrypted and signed (wechatpy's WeChatCrypto)."""
    from xml.etree import ElementTree

    from wechatpy.crypto import WeChatCrypto
    envelope = ElementTree.fromstring(
        WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(body, nonce, timestamp))
    encrypt = envelope.findtext("Encrypt")
    push = f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return apigw_event("POST", dict(query, openid="oUser", encrypt_type="aes",
                                    msg_signature=envelope.findtext("MsgSignature")), push)


class SecretsManager:
    """moto's server on a free loopback port, holding the stack's secret for the `-secret` runs."""

    def __init__(self, secret):
        program = shutil.which("moto_server") or os.path.join(
            os.path.dirname(sys.executable), "moto_server")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{program} did not start")
                time.sleep(0.05)
        self.arn = self.call("CreateSecret", {"Name": "coldstart",
                                              "SecretString": json.dumps(secret)})["ARN"]

    def call(self, action, body):
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{action}",
            # moto picks the service from the credential scope; it checks no signature.
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/"
                             "secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        })
        with urllib.request.urlopen(request) as response:
            return json.load(response)

    def env(self):
        return {"SECRETS_ARN": self.arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url,
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class RuntimeApi:
    """The Runtime API's invocation loop: hands out queued events, collects answers."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.first_next = None
        self.handed_out = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.startswith("/cgi-bin/menu/get?"):
                    # WeChat, for the api function: an account without a menu.
                    answer = json.dumps({"errcode": 46003, "errmsg": "menu no exist"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                if self.path != f"{PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                if api.first_next is None:
                    api.first_next = time.perf_counter()
                request_id, payload = api.events.get()
                body = json.dumps(payload).encode()
                api.handed_out[request_id] = time.perf_counter()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:coldstart")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                now = time.perf_counter()
                if self.path.startswith("/2015-03-31/functions/refresh/"):
                    # The refresh function, for the api function's token client: a token.
                    answer = json.dumps({"access_token": "coldstart-access-token",
                                         "expires_at": int(time.time()) + 7200}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                if self.path.startswith("/2015-03-31/functions/"):
                    # The Lambda Invoke API, for the worker the message function starts
                    # asynchronously: accepted, as Lambda answers an Event invocation.
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                parts = self.path[len(PREFIX):].strip("/").split("/")
                # invocation/{id}/response | invocation/{id}/error | init/error
                kind = parts[-1]
                request_id = parts[1] if parts[0] == "invocation" else None
                api.answers.put((request_id, kind, now, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        host, port = self.server.server_address
        return f"{host}:{port}"


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_once(binary, event, warm, extra_env):
    api = RuntimeApi()
    env = dict(os.environ, **extra_env)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/coldstart",
        "AWS_REGION": "us-east-1",
    })
    env = {k: v.replace("{api}", api.address) for k, v in env.items()}
    for i in range(warm + 1):
        api.events.put((f"req-{i}", event() if callable(event) else event))
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        results = []
        for _ in range(warm + 1):
            request_id, kind, at, body = api.answers.get(timeout=30)
            if kind != "response":
                raise RuntimeError(f"{binary}: {kind}: {body.decode(errors='replace')}")
            results.append((request_id, at, body))
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        _, stderr = proc.communicate()
        api.server.shutdown()
    first_id, first_at, first_body = results[0]
    first = json.loads(first_body)
    # API Gateway's statusCode, or the api function's own status (46003 is WeChat's 200).
    status = first.get("statusCode", first.get("status"))
    if status != 200:
        raise RuntimeError(f"{binary}: first answer was HTTP {status}: {first_body[:300]!r}\n"
                           f"{stderr.decode(errors='replace')[-2000:]}")
    warm_us = [(at - api.handed_out[rid]) * 1e6 for rid, at, _ in results[1:]]
    return {
        "init_ms": (api.first_next - start) * 1e3,
        "first_ms": (first_at - start) * 1e3,
        "warm_us": statistics.median(warm_us) if warm_us else None,
        "rss_kib": rss,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("targets", nargs="+", metavar="FUNCTION=BINARY")
    args = parser.parse_args()

    webhook_env = {"WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID}
    rules = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    rules.write('[default]\ntype = "forward"\nurl = "https://service.invalid/wechat"\ntimeout_ms = 0\n')
    rules.close()
    forward_env = dict(webhook_env, WECHAT_REPLY_RULES=rules.name, WORKER_FUNCTION_NAME="worker",
                       WECHAT_ENCODING_AES_KEY=AES_KEY,
                       AWS_ENDPOINT_URL_LAMBDA="http://{api}")
    api_env = {"WECHAT_APP_ID": APP_ID, "TABLE_NAME": os.environ.get("TABLE_NAME", ""),
               "TOKEN_FUNCTION_NAME": "refresh", "AWS_ENDPOINT_URL_LAMBDA": "http://{api}",
               "WECHAT_API_BASE": "http://{api}"}
    api_event = {"method": "GET", "path": "/cgi-bin/menu/get"}
    secrets = None
    if any(t.partition("=")[0].endswith("-secret") for t in args.targets):
        secrets = SecretsManager({"WECHAT_TOKEN": TOKEN, "WECHAT_ENCODING_AES_KEY": ""})
    report = {}
    for target in args.targets:
        function, _, binary = target.partition("=")
        if function.startswith("raw:"):
            with open(function[4:]) as f:
                event, env, function = json.load(f), {}, os.path.basename(function[4:])
        elif function == "api":
            event, env = api_event, api_env
        elif function.endswith("-secret"):
            event = lambda f=function: webhook_event(f)
            env = dict(secrets.env(), WECHAT_APP_ID=APP_ID)
        else:
            event = lambda f=function: webhook_event(f)
            env = forward_env if function == "message-forward" else webhook_env
        try:
            runs = [run_once(binary, event, args.warm, env) for _ in range(args.runs)]
        except BaseException:
            if secrets:
                secrets.stop()
            raise
        report[function] = {
            key: statistics.median([r[key] for r in runs if r[key] is not None])
            for key in runs[0]
            if any(r[key] is not None for r in runs)
        }
        report[function]["bytes"] = os.path.getsize(binary)
    if secrets:
        secrets.stop()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"median of {args.runs} runs, {args.warm} warm invocations each")
    print(f"{'function':<15} {'init ms':>8} {'first ms':>9} {'warm µs':>8} {'peak RSS':>9} {'binary':>9}")
    for function, r in report.items():
        print(f"{function:<15} {r['init_ms']:>8.2f} {r['first_ms']:>9.2f} "
              f"{r.get('warm_us', float('nan')):>8.0f} {r.get('rss_kib', 0) / 1024:>7.1f}MB "
              f"{r['bytes'] / 1048576:>7.2f}MB")


if __name__ == "__main__":
    sys.exit(main())
