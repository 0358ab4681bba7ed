"""`wx push` and `wx verify-url` against the Lambda functions as deployed: the `verify` and
`message` bootstraps each run under a local Lambda Runtime API behind an API Gateway HTTP API
emulation (scripts/lambda_gateway.py, payload format 2.0), in the three modes of the WeChat
console (消息加解密方式): plaintext (明文), compatible (兼容) and safe (安全). `wx` plays WeChat:
it signs (and encrypts) the push, checks the reply's signature, decrypts it and checks its
addressing. (`wx push` against `wx serve`, what `make run` runs, is covered by wx/tests/cli.rs.)

Builds nothing: run `cargo build -p verify -p message -p wx` first (VERIFY_BIN, MESSAGE_BIN and
WX_BIN override the target/debug paths).
Run: .venv/bin/python -m pytest -q tests/interop/test_wx_push_lambda.py
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from lambda_gateway import Gateway  # noqa: E402

TOKEN = "gatewayToken0123456789abcdefghij"
APP_ID = "wx5823bf96d3bd56c7"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

RULES = """
[welcome]
type = "text"
content = "欢迎关注 via Lambda"

[[rules]]
keyword = "hi"
reply = { type = "text", content = "hello from the message function 你好" }

[[rules]]
event = "CLICK"
event_key = "K"
reply = { type = "text", content = "you clicked K" }
"""

# What the webhook is configured with, and the `wx push` flags WeChat's pushes match, per mode.
# Compatible: the key set and nothing else (WeChat's 兼容模式 pushes carry encrypt_type=aes and
# both copies, so they pass whether or not plaintext is also accepted); safe: encrypted pushes
# only, said explicitly.
MODES = {
    "plaintext": ({}, []),
    "compatible": ({"WECHAT_ENCODING_AES_KEY": ENCODING_AES_KEY}, ["--encrypt", "--compat"]),
    "safe": (
        {"WECHAT_ENCODING_AES_KEY": ENCODING_AES_KEY, "WECHAT_REQUIRE_ENCRYPTION": "true"},
        ["--encrypt"],
    ),
}


def binary(variable, name):
    path = pathlib.Path(os.environ.get(variable, f"target/debug/{name}"))
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"{path} not found: run `cargo build -p verify -p message -p wx` first "
                    f"(or set {variable})")
    return str(path)


@pytest.fixture(scope="module")
def scratch():
    # wx and the functions run here, so that no developer's .env is read.
    with tempfile.TemporaryDirectory() as directory:
        directory = pathlib.Path(directory)
        (directory / "rules.toml").write_text(RULES, encoding="utf-8")
        yield directory


def function_env(scratch, mode):
    env = {
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_REPLY_RULES": str(scratch / "rules.toml"),
        "RUST_LOG": "warn",
    }
    env.update(MODES[mode][0])
    return env


def clean_environ():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("WECHAT_", "LOCAL_", "AWS_LAMBDA_")) and k != "TOKEN_FUNCTION_NAME"}


@pytest.fixture(scope="module", params=list(MODES))
def mode(request):
    return request.param


@pytest.fixture(scope="module")
def verify_url(scratch, mode):
    with open(scratch / f"verify-{mode}.log", "w+") as log:
        env = dict(clean_environ(), **function_env(scratch, mode))
        with Gateway(binary("VERIFY_BIN", "verify"), env, stderr=log) as gateway:
            yield gateway.url + "/wechat"


@pytest.fixture(scope="module")
def message_url(scratch, mode):
    with open(scratch / f"message-{mode}.log", "w+") as log:
        env = dict(clean_environ(), **function_env(scratch, mode))
        with Gateway(binary("MESSAGE_BIN", "message"), env, stderr=log) as gateway:
            yield gateway.url + "/wechat"


def wx(scratch, *args, token=TOKEN):
    env = dict(clean_environ(), WECHAT_TOKEN=token, WECHAT_APP_ID=APP_ID,
               WECHAT_ENCODING_AES_KEY=ENCODING_AES_KEY, RUST_LOG="warn")
    return subprocess.run([binary("WX_BIN", "wx"), *args], env=env, cwd=scratch,
                          capture_output=True, text=True, timeout=30)


def push(scratch, mode, url, *content):
    result = wx(scratch, "--json", "push", "--url", url, *MODES[mode][1], *content)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["url"] == url
    assert report["mode"] == mode
    assert report["status"] == 200
    assert isinstance(report["elapsed_ms"], int)
    return report


def fields(report):
    return dict(report["reply"]["fields"])


def test_verify_url_passes_behind_the_gateway(scratch, verify_url):
    result = wx(scratch, "--json", "verify-url", verify_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"url": verify_url, "verified": True, "status": 200,
                      "elapsed_ms": report["elapsed_ms"]}
    human = wx(scratch, "verify-url", verify_url)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("verified: "), human.stdout


def test_verify_url_with_another_token_fails_naming_the_token(scratch, verify_url):
    result = wx(scratch, "verify-url", verify_url, token="anotherToken0123456789abcdefghij")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    assert "HTTP 403" in result.stderr
    assert "WECHAT_TOKEN" in result.stderr


def test_a_text_push_gets_its_keyword_reply(scratch, mode, message_url):
    report = push(scratch, mode, message_url, "--text", "hi")
    assert report["reply"]["encrypted"] is (mode != "plaintext")
    reply = fields(report)
    assert reply["MsgType"] == "text"
    assert reply["Content"] == "hello from the message function 你好"
    assert reply["ToUserName"] == "o_wx_cli_test_user_000000000"
    assert reply["FromUserName"] == APP_ID
    assert "hello from the message function" in report["reply"]["xml"]


def test_a_subscribe_gets_the_welcome(scratch, mode, message_url):
    report = push(scratch, mode, message_url, "--event", "subscribe")
    assert report["reply"]["encrypted"] is (mode != "plaintext")
    assert fields(report)["Content"] == "欢迎关注 via Lambda"


def test_a_menu_click_gets_its_event_rule(scratch, mode, message_url):
    report = push(scratch, mode, message_url, "--event", "CLICK", "--key", "K")
    assert fields(report)["Content"] == "you clicked K"
    # A click on a key no rule names is answered `success`: no reply, still HTTP 200.
    report = push(scratch, mode, message_url, "--event", "CLICK", "--key", "OTHER")
    assert report["reply"] is None


def test_the_human_output_names_the_mode_and_the_reply(scratch, mode, message_url):
    result = wx(scratch, "push", "--url", message_url, *MODES[mode][1], "--text", "hi")
    assert result.returncode == 0, result.stderr
    assert f"({mode} mode): HTTP 200" in result.stdout
    checked = "encrypted, signature and decryption ok" if mode != "plaintext" else "plaintext"
    assert f"reply: {checked}" in result.stdout
    assert "hello from the message function 你好" in result.stdout


def test_a_push_signed_with_another_token_is_refused(scratch, mode, message_url):
    result = wx(scratch, "push", "--url", message_url, *MODES[mode][1], "--text", "hi",
                token="anotherToken0123456789abcdefghij")
    assert result.returncode == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert "answered HTTP 403" in result.stderr


# Not in compatible mode: whether a plaintext push is accepted next to a key is the webhook's
# WECHAT_REQUIRE_ENCRYPTION default (account::webhook), not the gateway's concern.
@pytest.mark.parametrize("mode", ["plaintext", "safe"], indirect=True)
def test_plaintext_pushes_are_refused_in_safe_mode_and_answered_in_plaintext_mode(
        scratch, mode, message_url):
    result = wx(scratch, "--json", "push", "--url", message_url, "--text", "hi")
    if mode == "safe":
        assert result.returncode == 1, result.stdout
        assert "answered HTTP 403" in result.stderr
        assert "plaintext messages are not accepted" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["reply"]["encrypted"] is False
        assert fields(report)["Content"] == "hello from the message function 你好"


# The gateway itself: what API Gateway does at the edges of the function.

FAKE_RUNTIME = """#!{python}
# A stand-in bootstrap: takes each invocation and answers it as its argument says.
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id, event = r.headers["Lambda-Runtime-Aws-Request-Id"], json.load(r)
    if sys.argv[0].endswith("error"):
        kind, answer = "error", {{"errorType": "Boom", "errorMessage": "boom"}}
    elif sys.argv[0].endswith("silent"):
        continue
    else:
        kind, answer = "response", {{"statusCode": 201, "headers": {{"x-echo": "1"}},
                                     "cookies": ["a=1", "b=2"], "isBase64Encoded": True,
                                     "body": __import__("base64").b64encode(
                                         json.dumps(event).encode()).decode()}}
    urllib.request.urlopen(urllib.request.Request(
        api + request_id + "/" + kind, data=json.dumps(answer).encode(), method="POST"))
"""


def fake_function(scratch, name):
    path = scratch / f"fake-{name}"
    path.write_text(FAKE_RUNTIME.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def request(url, data=None, headers=None, method=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_event_is_payload_2_0_and_the_answer_becomes_the_response(scratch):
    with Gateway(fake_function(scratch, "echo"), clean_environ()) as gateway:
        status, headers, body = request(
            gateway.url + "/wechat/x?a=1&a=2&b=%E4%BD%A0", data=b"\x00\xffbinary",
            headers={"Content-Type": "application/octet-stream", "X-Custom": "V",
                     "Cookie": "s=1; t=2"}, method="PUT")
        assert status == 201
        assert headers["x-echo"] == "1"
        assert headers.get_all("set-cookie") == ["a=1", "b=2"]
        event = json.loads(body)
        assert event["version"] == "2.0"
        assert event["rawPath"] == "/wechat/x"
        assert event["rawQueryString"] == "a=1&a=2&b=%E4%BD%A0"
        assert event["queryStringParameters"] == {"a": "1,2", "b": "你"}
        assert event["headers"]["x-custom"] == "V"
        assert "cookie" not in event["headers"]
        assert event["cookies"] == ["s=1", "t=2"]
        assert event["requestContext"]["http"]["method"] == "PUT"
        assert event["requestContext"]["http"]["path"] == "/wechat/x"
        assert event["isBase64Encoded"] is True
        assert event["body"] == "AP9iaW5hcnk="

        _, _, body = request(gateway.url + "/wechat", data="<xml>你</xml>".encode(),
                             headers={"Content-Type": "text/xml; charset=utf-8"})
        event = json.loads(body)
        assert (event["body"], event["isBase64Encoded"]) == ("<xml>你</xml>", False)
        _, _, body = request(gateway.url + "/")
        event = json.loads(body)
        assert "body" not in event and "queryStringParameters" not in event
        assert event["requestContext"]["http"]["method"] == "GET"


def test_a_function_error_is_a_502_and_no_answer_a_503(scratch):
    with Gateway(fake_function(scratch, "error"), clean_environ()) as gateway:
        status, _, body = request(gateway.url + "/wechat")
        assert (status, json.loads(body)) == (502, {"message": "Internal Server Error"})
    with Gateway(fake_function(scratch, "silent"), clean_environ(), timeout=0.5) as gateway:
        status, _, body = request(gateway.url + "/wechat")
        assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


def test_a_function_that_fails_its_cold_start_answers_502_and_wx_says_so(scratch):
    env = dict(clean_environ(), RUST_LOG="warn")  # no WECHAT_TOKEN: the init fails
    with open(scratch / "broken.log", "w+") as log:
        with Gateway(binary("MESSAGE_BIN", "message"), env, stderr=log) as gateway:
            result = wx(scratch, "push", "--url", gateway.url + "/wechat", "--text", "hi")
            log.seek(0)
            assert "WECHAT_TOKEN" in log.read()
    assert result.returncode == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert "answered HTTP 502" in result.stderr
