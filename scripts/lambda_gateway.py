#!/usr/bin/env python3
"""An API Gateway HTTP API (payload format 2.0) in front of one Lambda bootstrap, on loopback.

    scripts/lambda_gateway.py [--port P] [--env K=V ...] [--timeout S] BINARY

Starts BINARY once, as Lambda does, with `AWS_LAMBDA_RUNTIME_API` pointing at a Runtime API
served here (`scripts/coldstart.py`'s) and the given environment on top of this one; then serves
HTTP on 127.0.0.1:P (0: any free port, printed). Each HTTP request becomes the event API Gateway
would send (rawPath, rawQueryString, lowercased headers with duplicates joined by commas,
cookies, queryStringParameters, requestContext.http, body base64-encoded unless it is text),
handed out on the function's next `/runtime/invocation/next`; the function's answer (statusCode,
headers, cookies, body, isBase64Encoded) is the HTTP response. As on API Gateway, a function
error, a crash or a malformed answer is 502 `{"message":"Internal Server Error"}` and no answer
within --timeout seconds is 503. Invocations run one at a time (one warm instance).

From Python (pytest): `with Gateway(binary, env) as gw: gw.url + "/wechat"`.
Only the standard library; the binary must be built for this machine (`cargo build -p verify`).
"""

import argparse
import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coldstart import RuntimeApi  # noqa: E402  (the same invocation loop as `make coldstart`)

# Content types API Gateway passes as text; every other body arrives base64-encoded (HTTP APIs
# encode form posts too).
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
TEXT_SUFFIXES = ("+json", "+xml")
# Headers API Gateway sets or drops itself; hop-by-hop headers never reach the function.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer",
              "proxy-connection"}


class FunctionError(Exception):
    """The function failed the invocation (error, crash, malformed answer): a 502."""


class FunctionTimeout(Exception):
    """No answer in time: a 503, as API Gateway's integration timeout."""


def is_text(content_type):
    media = (content_type or "").split(";")[0].strip().lower()
    return media.startswith(TEXT_TYPES) or media.endswith(TEXT_SUFFIXES)


def http_event(method, target, header_pairs, body, source_ip="127.0.0.1"):
    """The payload-2.0 event for one HTTP request; `header_pairs` as received, in order."""
    raw_path, _, raw_query = target.partition("?")
    headers, cookies = {}, []
    for name, value in header_pairs:
        name = name.lower()
        if name in HOP_BY_HOP:
            continue
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    host = headers.get("host", "127.0.0.1")
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
    request_id = str(uuid.uuid4())
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path or "/",
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        params = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if body:
        try:
            if not is_text(headers.get("content-type")):
                raise UnicodeDecodeError("utf-8", b"", 0, 1, "not a text type")
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def http_response(answer):
    """(status, [(name, value)], body bytes) from the function's answer, as API Gateway reads it."""
    try:
        result = json.loads(answer)
    except ValueError as e:
        raise FunctionError(f"the answer is not JSON: {e}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 without a statusCode: the answer itself is a JSON body.
        return 200, [("content-type", "application/json")], answer
    try:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(v)) for v in values)
        headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
        body = result.get("body") or ""
        body = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    except (TypeError, ValueError, AttributeError) as e:
        raise FunctionError(f"malformed answer: {e}") from None
    if not 100 <= status <= 599:
        raise FunctionError(f"statusCode {status} is not an HTTP status")
    return status, headers, body


class Gateway:
    """One function binary behind an HTTP API on loopback; a context manager."""

    def __init__(self, binary, env=None, port=0, timeout=30.0, stderr=None):
        self.binary = binary
        self.env = dict(env or {})
        self.port = port
        self.timeout = timeout
        self.stderr = stderr
        self.lock = threading.Lock()
        self.sequence = 0
        self.proc = None
        self.runtime = None
        self.server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def start(self):
        self.runtime = RuntimeApi()
        env = dict(os.environ)
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(self.binary),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{os.path.basename(self.binary)}",
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
        })
        env.update(self.env)
        env["AWS_LAMBDA_RUNTIME_API"] = self.runtime.address
        self.proc = subprocess.Popen([self.binary], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = http_event(self.command, self.path, self.headers.items(), body,
                                   self.client_address[0])
                try:
                    status, headers, payload = gateway.invoke(event)
                except FunctionError as e:
                    print(f"lambda_gateway: 502: {e}", file=sys.stderr)
                    status, headers = 502, [("content-type", "application/json")]
                    payload = b'{"message":"Internal Server Error"}'
                except FunctionTimeout as e:
                    print(f"lambda_gateway: 503: {e}", file=sys.stderr)
                    status, headers = 503, [("content-type", "application/json")]
                    payload = b'{"message":"Service Unavailable"}'
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("apigw-requestid", event["requestContext"]["requestId"])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event):
        """Hands `event` to the function and waits for its answer: (status, headers, body)."""
        with self.lock:
            self.sequence += 1
            request_id = f"{event['requestContext']['requestId']}-{self.sequence}"
            self.runtime.events.put((request_id, event))
            deadline = time.monotonic() + self.timeout
            while True:
                if self.proc.poll() is not None:
                    self.drop_event(request_id)
                    raise FunctionError(f"the function exited with status {self.proc.returncode}")
                try:
                    answered, kind, _, body = self.runtime.answers.get(timeout=0.05)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        self.drop_event(request_id)
                        raise FunctionTimeout(f"no answer in {self.timeout} s") from None
                    continue
                if kind == "error" and answered is None:
                    raise FunctionError(f"init error: {body.decode(errors='replace')}")
                if answered != request_id:
                    continue  # a late answer to an invocation that already timed out
                if kind != "response":
                    raise FunctionError(f"{kind}: {body.decode(errors='replace')}")
                return http_response(body)

    def drop_event(self, request_id):
        # The event was never taken: leave no stale invocation for the next request.
        kept = []
        while True:
            try:
                item = self.runtime.events.get_nowait()
            except queue.Empty:
                break
            if item[0] != request_id:
                kept.append(item)
        for item in kept:
            self.runtime.events.put(item)

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.runtime is not None:
            self.runtime.server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000, help="0 for any free port")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="a variable for the function (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for an answer (API Gateway's is 30)")
    parser.add_argument("binary", metavar="BINARY")
    args = parser.parse_args()
    env = {}
    for pair in args.env:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            parser.error(f"--env {pair!r}: expected K=V")
        env[name] = value
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable file")
    # A plain kill stops the function too (the `with` block's exit kills it).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Gateway(args.binary, env, port=args.port, timeout=args.timeout) as gateway:
        print(f"{args.binary} behind an HTTP API on {gateway.url} (Ctrl-C to stop)", flush=True)
        try:
            gateway.proc.wait()
            print(f"lambda_gateway: the function exited with status {gateway.proc.returncode}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
