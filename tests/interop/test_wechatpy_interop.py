"""Interop: wechatpy 1.8.18 plays WeChat against the local server binary.

wechatpy signs the verification request, encrypts pushes of every message type and event
(``WeChatCrypto.encrypt_message``), decrypts our replies (``WeChatCrypto.decrypt_message``),
and parses or renders the replies for comparison. The server runs with the example rules
(crates/account/rules/example.toml) so that every reply type is exercised.

Run: cargo build -p wx && LOCAL_BIN=target/debug/wx .venv/bin/python -m pytest -q tests/interop
"""

import contextlib
import json
import os
import pathlib
import random
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import (
    ArticlesReply,
    ImageReply,
    MusicReply,
    TextReply,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
)
from wechatpy.utils import WeChatSigner, check_signature

REPO = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "interopToken2024"
APP_ID = "wx5823bf96d3bd56c7"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ACCOUNT = "gh_3c884a361561"  # the samples' ToUserName
USER = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the samples' FromUserName
SAMPLES = json.loads((REPO / "crates/account/tests/fixtures/messages.json").read_text(encoding="utf-8"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    data = body.encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "text/xml; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


@contextlib.contextmanager
def running_server(**settings):
    """The local server with the interop settings, `settings` over them; yields its webhook URL."""
    binary = pathlib.Path(os.environ.get("LOCAL_BIN", "target/debug/wx"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.exists():
        pytest.fail(f"local server binary {binary} not found: run `cargo build -p wx` first")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECHAT_")}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WECHAT_TOKEN=TOKEN,
        WECHAT_APP_ID=APP_ID,
        WECHAT_ENCODING_AES_KEY=ENCODING_AES_KEY,
        # With a key set the server accepts only encrypted pushes unless told otherwise (the
        # opt-out for a migration from 明文模式), and these tests push both.
        WECHAT_REQUIRE_ENCRYPTION="false",
        WECHAT_REPLY_RULES=str(REPO / "crates/account/rules/example.toml"),
        RUST_LOG="warn",
    )
    env.update(settings)
    url = f"http://127.0.0.1:{port}/wechat"
    # A scratch working directory, so that no developer's .env is read.
    with tempfile.TemporaryDirectory() as cwd, open(pathlib.Path(cwd) / "server.log", "w+") as log:
        process = subprocess.Popen([str(binary), "serve"], env=env, cwd=cwd, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"local server exited with {process.returncode}:\n{log.read()}")
                try:
                    status, _ = http("GET", url)  # unsigned: 400 once it is up
                    if status == 400:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("local server did not answer within 30 s")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


def signed_params():
    """Timestamp, nonce and signature as WeChat sends them, checked with wechatpy."""
    timestamp = str(int(time.time()))
    nonce = str(random.randint(10**8, 10**10))
    signer = WeChatSigner()
    signer.add_data(TOKEN, timestamp, nonce)
    signature = signer.signature
    check_signature(TOKEN, signature, timestamp, nonce)  # raises if we signed differently
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def crypto():
    return WeChatCrypto(TOKEN, ENCODING_AES_KEY, APP_ID)


def push_encrypted(url, xml, tamper=None):
    """Posts `xml` as WeChat's safe mode does. Returns (status, body, decrypted reply or None)."""
    params = signed_params()
    sealed = xmltodict.parse(crypto().encrypt_message(xml, params["nonce"], params["timestamp"]))["xml"]
    params.update(openid=USER, encrypt_type="aes", msg_signature=sealed["MsgSignature"])
    if tamper:
        tamper(params)
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
    )
    status, text = http("POST", f"{url}?{urllib.parse.urlencode(params)}", body)
    if status != 200 or text == "success":
        return status, text, None
    envelope = xmltodict.parse(text)["xml"]
    decrypted = crypto().decrypt_message(
        text, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
    )
    return status, text, decrypted


def push_plaintext(url, xml):
    params = signed_params()
    params["openid"] = USER
    return http("POST", f"{url}?{urllib.parse.urlencode(params)}", xml)


def text_message(content):
    return SAMPLES["text"].replace("this is a test", content)


def without_time(xml):
    fields = dict(xmltodict.parse(xml)["xml"])
    fields.pop("CreateTime", None)
    return fields


def as_wechatpy_renders(reply):
    reply.source, reply.target = ACCOUNT, USER
    return without_time(reply.render())


# What the example rules answer, rendered by wechatpy for comparison (None: `success`).
EXAMPLE_REPLIES = {
    "help": TextReply(
        content="Send: image, voice, video, music, news, agent, or ask about prices."
    ),
    "image": ImageReply(media_id="EXAMPLE_IMAGE_MEDIA_ID"),
    "voice": VoiceReply(media_id="EXAMPLE_VOICE_MEDIA_ID"),
    "video": VideoReply(
        media_id="EXAMPLE_VIDEO_MEDIA_ID", title="Our product in 60 seconds", description="A short tour."
    ),
    "music": MusicReply(
        title="Theme song",
        description="Our theme song",
        music_url="https://example.com/theme.mp3",
        hq_music_url="https://example.com/theme-hq.mp3",
        thumb_media_id="EXAMPLE_THUMB_MEDIA_ID",
    ),
    "news": ArticlesReply(
        articles=[
            {
                "title": "What's new this week",
                "description": "Three things we shipped.",
                "image": "https://example.com/week.jpg",
                "url": "https://example.com/news/week",
            },
            {"title": "How to get started", "url": "https://example.com/start"},
        ]
    ),
    "人工": TransferCustomerServiceReply(),
    "How much is the PRICE?": TextReply(content="Our prices: https://example.com/prices"),
    "something else": TextReply(
        content='Sorry, I did not understand that. Send "help" for the menu.'
    ),
}

DEFAULT = TextReply(content='Sorry, I did not understand that. Send "help" for the menu.')
WELCOME = TextReply(content='欢迎关注！Welcome!\nSend "help" to see what I can do.')

SAMPLE_REPLIES = {
    "text": DEFAULT,
    "image": TextReply(content="Nice picture!"),
    "voice": DEFAULT,
    "video": DEFAULT,
    "shortvideo": DEFAULT,
    "location": TextReply(content="Thanks, we got your location."),
    "link": DEFAULT,
    "event_subscribe": WELCOME,
    "event_subscribe_scan": WELCOME,
    "event_unsubscribe": None,
    "event_scan": None,
    "event_location": None,
    "event_click": TextReply(content="Today's music: https://example.com/today"),
    "event_view": None,
    "event_scancode_push": None,
    "event_scancode_waitmsg": None,
    "event_pic_sysphoto": None,
    "event_pic_photo_or_album": None,
    "event_pic_weixin": None,
    "event_location_select": None,
    "event_view_miniprogram": None,
    "event_templatesendjobfinish": None,
    "event_masssendjobfinish": None,
    "unknown_type": None,
    "unknown_event": None,
}

PROMO_SUBSCRIBE = SAMPLES["event_subscribe_scan"].replace("qrscene_123123", "qrscene_promo")
PROMO_SCAN = SAMPLES["event_scan"].replace("[123123]", "[promo]")
OTHER_CLICK = SAMPLES["event_click"].replace("V1001_TODAY_MUSIC", "V1002_OTHER")


def test_every_sample_has_an_expectation():
    assert sorted(SAMPLES) == sorted(SAMPLE_REPLIES)


def test_verification_echoes_echostr(server):
    params = signed_params()
    params["echostr"] = "7311218412937291635"
    status, body = http("GET", f"{server}?{urllib.parse.urlencode(params)}")
    assert (status, body) == (200, "7311218412937291635")


def test_verification_with_a_tampered_signature_is_refused(server):
    params = signed_params()
    params["signature"] = params["signature"][::-1]
    params["echostr"] = "7311218412937291635"
    status, body = http("GET", f"{server}?{urllib.parse.urlencode(params)}")
    assert status == 403
    assert "7311218412937291635" not in body


@pytest.mark.parametrize("name", sorted(SAMPLE_REPLIES))
def test_encrypted_push_of_every_message_type(server, name):
    status, body, decrypted = push_encrypted(server, SAMPLES[name])
    assert status == 200, body
    expected = SAMPLE_REPLIES[name]
    if expected is None:
        assert body == "success"
        return
    assert decrypted is not None, body
    assert without_time(decrypted) == as_wechatpy_renders(expected)
    reply = parse_message(decrypted)
    assert (reply.source, reply.target) == (ACCOUNT, USER)
    assert abs(int(xmltodict.parse(decrypted)["xml"]["CreateTime"]) - time.time()) < 600


@pytest.mark.parametrize("content", sorted(EXAMPLE_REPLIES))
def test_encrypted_text_keywords_get_every_reply_type(server, content):
    status, body, decrypted = push_encrypted(server, text_message(content))
    assert status == 200, body
    assert decrypted is not None, body
    assert without_time(decrypted) == as_wechatpy_renders(EXAMPLE_REPLIES[content])


def test_transfer_to_a_named_agent_carries_the_account(server):
    _, _, decrypted = push_encrypted(server, text_message("agent"))
    fields = xmltodict.parse(decrypted)["xml"]
    assert fields["MsgType"] == "transfer_customer_service"
    assert fields["TransInfo"]["KfAccount"] == "kf2001@example"
    assert (fields["ToUserName"], fields["FromUserName"]) == (USER, ACCOUNT)


@pytest.mark.parametrize(
    "xml,expected",
    [
        (PROMO_SUBSCRIBE, "Welcome! Your promo code is WELCOME10."),
        (PROMO_SCAN, "You already follow us. Your promo code is WELCOME10."),
        (OTHER_CLICK, "Thanks for clicking!"),
    ],
)
def test_event_rules_match_their_keys(server, xml, expected):
    _, body, decrypted = push_encrypted(server, xml)
    assert decrypted is not None, body
    assert parse_message(decrypted).content == expected


def test_plaintext_pushes_get_plaintext_replies_that_wechatpy_parses(server):
    status, body = push_plaintext(server, text_message("help"))
    assert status == 200
    reply = parse_message(body)
    assert reply.type == "text"
    assert (reply.source, reply.target) == (ACCOUNT, USER)
    assert reply.content == EXAMPLE_REPLIES["help"].content

    status, body = push_plaintext(server, SAMPLES["event_subscribe"])
    assert status == 200
    assert parse_message(body).content == WELCOME.content

    status, body = push_plaintext(server, SAMPLES["event_view"])
    assert (status, body) == (200, "success")


def test_our_text_reply_parses_like_the_message_wechatpy_would_reply_with(server):
    # wechatpy's own parse of the push agrees with what our server answered to.
    message = parse_message(text_message("help"))
    ours = xmltodict.parse(push_plaintext(server, text_message("help"))[1])["xml"]
    theirs = xmltodict.parse(TextReply(message=message, content=EXAMPLE_REPLIES["help"].content).render())["xml"]
    for field in ("ToUserName", "FromUserName", "MsgType", "Content"):
        assert ours[field] == theirs[field], field


def test_a_tampered_msg_signature_is_refused(server):
    def tamper(params):
        params["msg_signature"] = "0" * 40

    status, body, _ = push_encrypted(server, text_message("help"), tamper)
    assert status == 403
    assert body == "invalid encrypted message"


def test_a_tampered_signature_on_a_push_is_refused(server):
    def tamper(params):
        params["signature"] = params["signature"][::-1]

    status, body, _ = push_encrypted(server, text_message("help"), tamper)
    assert status == 403
    assert body == "invalid signature"


def test_a_push_for_another_app_id_gets_the_same_crypto_answer(server):
    params = signed_params()
    other = WeChatCrypto(TOKEN, ENCODING_AES_KEY, "wx0000000000000000")
    sealed = xmltodict.parse(other.encrypt_message(text_message("help"), params["nonce"], params["timestamp"]))["xml"]
    params.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
    body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
    status, text = http("POST", f"{server}?{urllib.parse.urlencode(params)}", body)
    assert (status, text) == (403, "invalid encrypted message")


NEW_TOKEN = "interopToken2025"
NEW_ENCODING_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def test_during_a_rotation_wechatpy_with_the_old_or_the_new_values_gets_a_reply_it_can_read():
    """WeChat's guidance: decrypt with the previous key when the current one fails, and reply
    with the key that worked (and, here, the token that signed)."""
    until = str(int(time.time()) + 3600)
    with running_server(
        WECHAT_TOKEN=NEW_TOKEN,
        WECHAT_TOKEN_PREVIOUS=TOKEN,
        WECHAT_ENCODING_AES_KEY=NEW_ENCODING_AES_KEY,
        WECHAT_ENCODING_AES_KEY_PREVIOUS=ENCODING_AES_KEY,
        WECHAT_PREVIOUS_KEYS_UNTIL=until,
    ) as url:
        for token, key in [(TOKEN, ENCODING_AES_KEY), (NEW_TOKEN, NEW_ENCODING_AES_KEY)]:
            wechat = WeChatCrypto(token, key, APP_ID)
            timestamp, nonce = str(int(time.time())), str(random.randint(10**8, 10**10))
            signer = WeChatSigner()
            signer.add_data(token, timestamp, nonce)
            sealed = xmltodict.parse(wechat.encrypt_message(text_message("hello"), nonce, timestamp))["xml"]
            params = {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce,
                      "openid": USER, "encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]}
            body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>")
            status, text = http("POST", f"{url}?{urllib.parse.urlencode(params)}", body)
            assert status == 200, (token, text)
            envelope = xmltodict.parse(text)["xml"]
            reply = parse_message(wechat.decrypt_message(
                text, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]))
            assert reply.source == ACCOUNT and reply.target == USER, (token, reply)
