# A forward service: checks the signature, answers texts, ignores the rest. Python 3, no packages.
#
# What a receiving service must do (docs/forwarding.md, "Receiving a forward"):
# - check X-Forward-Url-Signature, HMAC-SHA256 over "<timestamp>.<this service's URL, as the rule
#   writes it>.<body>", comparing bytes in constant time, before reading anything else;
# - refuse a timestamp more than 5 minutes off, and a signature already seen in that window (a
#   replay of a captured request);
# - treat idempotency_key as the push's identity: the stack sends each push once, but remember
#   the keys you acted on for as long as your own retries could repeat them.
import hashlib, hmac, json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["WECHAT_FORWARD_SECRET"].encode()
PORT = int(os.environ.get("PORT", "8090"))
# Exactly the url of the forward rule that sends here (the signature covers it).
URL = os.environ.get("FORWARD_URL", f"http://127.0.0.1:{PORT}/wechat").encode()
WINDOW_S = 300
MAX_BODY = 256 * 1024

seen, seen_lock = {}, threading.Lock()  # signature -> when it was first accepted


def header(handler, name):
    """A header as bytes, whatever its characters: never an exception before authentication."""
    return handler.headers.get(name, "").encode("utf-8", "surrogateescape")


def first_use(signature, now):
    with seen_lock:
        for old in [s for s, at in seen.items() if now - at > 2 * WINDOW_S]:
            del seen[old]
        if signature in seen:
            return False
        seen[signature] = now
        return True


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        length = header(self, "Content-Length")
        if not (length.isdigit() and int(length) <= MAX_BODY):
            return self.reply(400)
        body = self.rfile.read(int(length))
        ts, given = header(self, "X-Forward-Timestamp"), header(self, "X-Forward-Url-Signature")
        now = time.time()
        if not (ts.isdigit() and len(ts) <= 12 and abs(now - int(ts)) < WINDOW_S):
            return self.reply(401)
        mac = hmac.new(SECRET, ts + b"." + URL + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(b"sha256=" + mac.encode(), given):
            return self.reply(401)
        if not first_use(given, now):
            return self.reply(409)  # a replay of a request already answered
        try:
            msg = json.loads(body)  # msg["idempotency_key"] is the push's identity
        except ValueError:
            return self.reply(400)
        if msg.get("type") != "text":
            return self.reply(204)  # no answer
        content = msg.get("fields", {}).get("Content", "")
        self.reply(200, {"type": "text", "content": "You said: " + str(content)})

    def reply(self, status, answer=None):
        data = json.dumps(answer).encode() if answer else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # no request lines (they carry nothing useful, and no data)
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Hook).serve_forever()
