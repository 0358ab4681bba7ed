# A forward service: checks the signature, answers texts, ignores the rest. Python 3, no packages.
import hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["WECHAT_FORWARD_SECRET"].encode()

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ts = self.headers.get("X-Forward-Timestamp", "")
        mac = hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        if not (fresh and hmac.compare_digest("sha256=" + mac, self.headers.get("X-Forward-Signature", ""))):
            return self.reply(401)
        msg = json.loads(body)  # msg["idempotency_key"] is the same for WeChat's retries
        if msg["type"] != "text":
            return self.reply(204)  # no answer
        self.reply(200, {"type": "text", "content": "You said: " + msg["fields"]["Content"]})

    def reply(self, status, answer=None):
        data = json.dumps(answer).encode() if answer else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8090"))), Hook).serve_forever()
