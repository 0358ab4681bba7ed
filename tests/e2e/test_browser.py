"""End to end in a real browser: headless Chromium (Debian's chromium and chromium-driver) drives
the local server with the fake WeChat API (LOCAL_FAKE_WECHAT=true), as a person would:

- the demo page → "sign in with WeChat" → /oauth/authorize → the fake's consent page → /oauth/callback
  → back on /demo, which shows the profile (a Chinese nickname with an emoji) and `wx.config: ready`
  (the fake's jweixin stand-in checked the signature from /jssdk/config against its ticket);
- a forged state and a replayed callback (from another browser) end on readable error pages;
- a page on an origin that is not a JS-SDK domain shows why it was not signed.

Each page is saved as a screenshot under target/e2e/ (look at them: Chinese and emoji must render).

Run: cargo build -p wx && .venv/bin/python -m pytest -q tests/e2e
(`make e2e` installs the browser, fonts and selenium first.)
"""

import json
import os
import pathlib
import shlex
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

REPO = pathlib.Path(__file__).resolve().parents[2]
SHOTS = REPO / "target" / "e2e"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
# The fake WeChat API's first seeded user (crates/testkit/src/fake_wechat/sns.rs).
NICKNAME = "小明🐼 Ming"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
WAIT_S = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url():
    """The local server on a free port, with the fake WeChat API and a scratch store."""
    binary = pathlib.Path(os.environ.get("LOCAL_BIN", "target/debug/wx"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.exists():
        pytest.fail(f"local server binary {binary} not found: run `cargo build -p wx` first")
    command = [str(binary), *shlex.split(os.environ.get("LOCAL_ARGS", "serve"))]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "JSSDK_"))}
    # A scratch working directory, so that no developer's .env (or store) is read.
    with tempfile.TemporaryDirectory() as cwd, open(pathlib.Path(cwd) / "server.log", "w+") as log:
        env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            LOCAL_FAKE_WECHAT="true",
            LOCAL_STORE=str(pathlib.Path(cwd) / "store.json"),
            RUST_LOG="info",
        )
        env.pop("PUBLIC_BASE_URL", None)
        base = f"http://localhost:{port}"
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"local server exited with {process.returncode}:\n{log.read()}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("local server did not answer within 60 s")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            print("---- local server log ----\n" + log.read())


@pytest.fixture
def browser_factory():
    """Fresh headless Chromium sessions, each with its own profile (cookies)."""
    drivers = []
    profiles = []

    def start():
        profile = tempfile.TemporaryDirectory(prefix="e2e-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless",
            "--no-sandbox",  # root in a container: Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=480,860",
            "--lang=zh-CN",
            f"--user-data-dir={profile.name}",
        ):
            options.add_argument(flag)
        # The network log shows each hop of the sign-in's redirects.
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT_S)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        profile.cleanup()


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    driver.save_screenshot(str(path))
    return path


def wait_text(driver, element_id, text):
    WebDriverWait(driver, WAIT_S).until(
        EC.text_to_be_present_in_element((By.ID, element_id), text),
        message=f"#{element_id} never showed {text!r}; page: {driver.page_source[:3000]}",
    )


def requested_urls(driver):
    """Every document URL the browser requested since the last call (the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            if params.get("type") == "Document":
                urls.append(params["request"]["url"])
    return urls


def sign_in(driver, base_url):
    """From the demo page through WeChat's (fake) consent back to the demo page; returns the
    callback URL the browser was sent to."""
    driver.get(f"{base_url}/demo")
    WebDriverWait(driver, WAIT_S).until(EC.visibility_of_element_located((By.ID, "sign-in")))
    requested_urls(driver)  # drop what came before the click
    driver.find_element(By.ID, "sign-in").click()
    wait_text(driver, "nickname", NICKNAME)
    hops = requested_urls(driver)
    paths = [urllib.parse.urlsplit(u).path for u in hops]
    assert paths[:4] == [
        "/oauth/authorize",
        "/connect/oauth2/authorize",
        "/oauth/callback",
        "/demo",
    ], hops
    callback = hops[2]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)
    assert query["code"] and query["state"], callback
    return callback


def test_sign_in_shows_the_profile_and_wx_config_fires_ready(base_url, browser_factory):
    driver = browser_factory()
    driver.get(f"{base_url}/demo")
    WebDriverWait(driver, WAIT_S).until(EC.visibility_of_element_located((By.ID, "sign-in")))
    assert "使用微信登录" in driver.find_element(By.ID, "sign-in").text
    wait_text(driver, "wx-status", "wx.config: ready")
    shot(driver, "01-demo-signed-out.png")

    sign_in(driver, base_url)
    assert driver.current_url.startswith(f"{base_url}/demo")
    assert driver.find_element(By.ID, "nickname").text == NICKNAME
    assert driver.find_element(By.ID, "openid").text == f"openid: {OPENID}"
    assert driver.find_element(By.ID, "initial").text == "小"
    # The avatar is WeChat's URL (it only loads when the CDN is reachable).
    avatar = driver.find_element(By.ID, "avatar").get_attribute("src")
    assert avatar == "https://thirdwx.qlogo.cn/mmopen/fake-0001/132"
    wait_text(driver, "wx-status", "wx.config: ready")
    assert "ok" in driver.find_element(By.ID, "wx-status").get_attribute("class")
    shot(driver, "02-demo-signed-in.png")

    # The stand-in fires wx.error as the real script does when the signature is wrong.
    err_msg = driver.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        wx.error(function (res) { done(res.errMsg); });
        wx.config({appId: 'x', timestamp: 1, nonceStr: 'n', signature: 'forged', jsApiList: []});
        """
    )
    assert err_msg == "config:invalid signature"
    checked = driver.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        wx.checkJsApi({jsApiList: ['updateAppMessageShareData'], success: done});
        """
    )
    assert checked == {
        "checkResult": {"updateAppMessageShareData": True},
        "errMsg": "checkJsApi:ok",
    }


def test_a_forged_state_shows_the_link_expired_page(base_url, browser_factory):
    driver = browser_factory()
    driver.get(f"{base_url}/oauth/callback?code=fakecode000001&state={'0' * 64}")
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert heading == "登录链接已失效"
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "This sign-in link has expired" in body
    link = driver.find_element(By.CSS_SELECTOR, "a.button")
    assert link.text == "重新登录 / Sign in again"
    shot(driver, "03-forged-state.png")
    # Nothing signed this browser in.
    driver.get(f"{base_url}/demo")
    WebDriverWait(driver, WAIT_S).until(EC.visibility_of_element_located((By.ID, "sign-in")))


def test_a_replayed_callback_signs_in_only_the_browser_that_started_it(base_url, browser_factory):
    first = browser_factory()
    callback = sign_in(first, base_url)

    # The same browser reloading its callback keeps its session (WeChat's browser does this).
    first.get(callback)
    wait_text(first, "nickname", NICKNAME)

    # Anyone else replaying the leaked callback URL gets a page, not a session.
    other = browser_factory()
    other.get(callback)
    assert other.find_element(By.TAG_NAME, "h1").text == "请在同一浏览器中完成登录"
    body = other.find_element(By.TAG_NAME, "body").text
    assert "Please finish signing in where you started" in body
    shot(other, "04-replayed-callback.png")
    other.get(f"{base_url}/demo")
    WebDriverWait(other, WAIT_S).until(EC.visibility_of_element_located((By.ID, "sign-in")))


def test_a_page_off_the_js_sdk_domains_is_not_signed_and_says_why(base_url, browser_factory):
    driver = browser_factory()
    # 127.0.0.1 is not localhost: not in JSSDK_ALLOWED_ORIGINS.
    other_origin = base_url.replace("localhost", "127.0.0.1")
    driver.get(f"{other_origin}/demo")
    wait_text(driver, "wx-status", "wx.config: not called: ")
    status = driver.find_element(By.ID, "wx-status").text
    assert f"{other_origin} is not one of the account's JS-SDK domains" in status
    shot(driver, "05-demo-origin-not-allowed.png")
