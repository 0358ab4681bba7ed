//! The demo page (`GET /demo`, with `DEMO_PAGE_ENABLED`): one small, self-contained page that
//! shows the whole web side working together — sign-in through WeChat web authorization
//! (`/oauth/authorize?return_to=/demo`), the user's nickname and avatar (`/oauth/me`), and
//! `wx.config` with a signature from `/jssdk/config`, ending in "wx.config: ready" or the error.
//!
//! Nothing from the user reaches the HTML: the page's script writes the profile with
//! `textContent`, and the Content-Security-Policy allows only this response's own inline script
//! and style (by nonce) and the `jweixin` script's origin.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use wechat_protocol::random::RandomUnavailable;

use super::config::JssdkConfig;
use crate::http::escape_html;

/// A fresh Content-Security-Policy nonce (128 bits, base64).
pub fn csp_nonce() -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(STANDARD.encode(bytes))
}

/// The page for a deployment whose routes live below `path_prefix` (`""` or e.g. `/prod`).
pub fn render(config: &JssdkConfig, path_prefix: &str, nonce: &str) -> Response<Body> {
    let return_to = format!("{path_prefix}/demo");
    let sign_in = format!(
        "{path_prefix}/oauth/authorize?scope=snsapi_userinfo&return_to={}",
        utf8_percent_encode(&return_to, NON_ALPHANUMERIC)
    );
    let body = fill(
        PAGE,
        &[
            ("{nonce}", nonce),
            ("{prefix}", &escape_html(path_prefix)),
            ("{sign_in}", &escape_html(&sign_in)),
            ("{script_url}", &escape_html(&config.script_url)),
            ("{script}", SCRIPT),
            ("{font}", crate::http::FONT_FAMILY),
        ],
    );
    let script_origin = config.script_origin.as_str();
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}' {script_origin}; \
         style-src 'nonce-{nonce}'; img-src https: data:; connect-src 'self' {script_origin}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let mut response = crate::http::html(StatusCode::OK, body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // WeChat's avatar CDN refuses images requested with a foreign Referer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `template` with each placeholder replaced, in one pass: a value is never scanned again.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + SCRIPT.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match values.iter().find(|(key, _)| tail.starts_with(key)) {
            Some((key, value)) => {
                out.push_str(value);
                rest = &tail[key.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信 JS-SDK 演示 / JS-SDK demo</title>
<style nonce="{nonce}">
body{font-family:{font};max-width:32em;margin:2em auto;padding:0 1em;line-height:1.6;color:#222}
h1{font-size:1.4em}
.en{color:#666;font-size:.9em}
.card{display:flex;align-items:center;gap:1em;padding:1em;border:1px solid #e5e5e5;border-radius:8px}
.avatar{width:64px;height:64px;border-radius:50%;flex:none;object-fit:cover}
.initial{display:flex;align-items:center;justify-content:center;background:#07c160;color:#fff;font-size:28px}
.nickname{font-size:1.3em;font-weight:600;overflow-wrap:anywhere}
button.link{margin-top:.3em;padding:0;border:0;background:none;color:#576b95;font:inherit;font-size:.9em;cursor:pointer}
a.button{display:inline-block;margin-top:.5em;padding:.6em 1.4em;border-radius:4px;background:#07c160;color:#fff;text-decoration:none}
.status{margin-top:1.5em;padding:.8em 1em;border-radius:4px;background:#f3f3f3;font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.status.ok{background:#e8f8ee;color:#06743a}
.status.fail{background:#fdecea;color:#a8271b}
[hidden]{display:none!important}
</style>
</head>
<body data-prefix="{prefix}">
<h1>微信 JS-SDK 演示 <span class="en" lang="en">JS-SDK demo</span></h1>
<p id="loading" class="en">正在加载… / Loading…</p>
<section id="signed-out" hidden>
<p>请使用微信登录，以显示您的昵称和头像。<br><span class="en" lang="en">Sign in with WeChat to see your nickname and avatar.</span></p>
<a id="sign-in" class="button" href="{sign_in}">使用微信登录 / Sign in with WeChat</a>
</section>
<section id="profile" class="card" hidden>
<img id="avatar" class="avatar" alt="" hidden>
<div id="initial" class="avatar initial" aria-hidden="true"></div>
<div><div id="nickname" class="nickname"></div><div id="openid" class="en"></div>
<button id="sign-out" type="button" class="link">退出登录 / Sign out</button></div>
</section>
<p id="me-error" class="status fail" hidden></p>
<div id="wx-status" class="status">wx.config: …</div>
<script nonce="{nonce}" src="{script_url}"></script>
<script nonce="{nonce}">{script}</script>
</body>
</html>
"#;

/// The page's behaviour. Profile fields are only ever written with `textContent`.
const SCRIPT: &str = r#"
(function () {
  'use strict';
  var prefix = document.body.getAttribute('data-prefix') || '';
  function $(id) { return document.getElementById(id); }
  function wxStatus(text, kind) {
    var el = $('wx-status');
    el.textContent = text;
    el.className = 'status' + (kind ? ' ' + kind : '');
  }
  function showProfile(me) {
    var name = me.nickname || me.openid;
    $('nickname').textContent = name;
    $('openid').textContent = 'openid: ' + me.openid;
    $('initial').textContent = Array.from(name)[0] || '?';
    if (typeof me.avatar === 'string' && /^https?:\/\//.test(me.avatar)) {
      var img = $('avatar');
      img.referrerPolicy = 'no-referrer';
      img.onload = function () { img.hidden = false; $('initial').hidden = true; };
      img.src = me.avatar;
    }
    $('profile').hidden = false;
  }
  // Sign out in this browser (POST /oauth/logout clears the session cookie), then show the
  // signed-out state again.
  $('sign-out').addEventListener('click', function () {
    fetch(prefix + '/oauth/logout', { method: 'POST', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { throw new Error('/oauth/logout: HTTP ' + r.status); }
      $('profile').hidden = true;
      $('signed-out').hidden = false;
    }).catch(function (e) {
      $('me-error').textContent = String(e.message || e);
      $('me-error').hidden = false;
    });
  });
  fetch(prefix + '/oauth/me', { credentials: 'same-origin' }).then(function (r) {
    if (r.status === 401) { $('signed-out').hidden = false; return; }
    if (!r.ok) { throw new Error('/oauth/me: HTTP ' + r.status); }
    return r.json().then(showProfile);
  }).catch(function (e) {
    $('me-error').textContent = String(e.message || e);
    $('me-error').hidden = false;
  }).then(function () { $('loading').hidden = true; });

  if (typeof wx === 'undefined') {
    wxStatus('wx.config: error: jweixin did not load', 'fail');
    return;
  }
  var url = location.href.split('#')[0];
  fetch(prefix + '/jssdk/config?url=' + encodeURIComponent(url)).then(function (r) {
    return r.json().then(function (body) {
      if (!r.ok) { throw new Error(body.error || ('HTTP ' + r.status)); }
      return body;
    });
  }).then(function (c) {
    wx.config({
      debug: false,
      appId: c.appId,
      timestamp: c.timestamp,
      nonceStr: c.nonceStr,
      signature: c.signature,
      jsApiList: ['checkJsApi', 'updateAppMessageShareData']
    });
    wx.ready(function () { wxStatus('wx.config: ready', 'ok'); });
    wx.error(function (res) { wxStatus('wx.config: error: ' + (res && res.errMsg), 'fail'); });
  }).catch(function (e) {
    wxStatus('wx.config: not called: ' + String(e.message || e), 'fail');
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> JssdkConfig {
        JssdkConfig::from_env(&[
            (
                "JSSDK_SCRIPT_URL",
                "http://127.0.0.1:4567/open/js/jweixin-1.6.0.js",
            ),
            ("DEMO_PAGE_ENABLED", "true"),
        ])
        .unwrap()
    }

    fn body(response: &Response<Body>) -> String {
        String::from_utf8_lossy(response.body().as_ref()).into_owned()
    }

    #[test]
    fn the_page_loads_jweixin_and_links_the_sign_in_back_to_itself() {
        let page = render(&config(), "/prod", "n0nce");
        let html = body(&page);
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains(
            "<script nonce=\"n0nce\" src=\"http://127.0.0.1:4567/open/js/jweixin-1.6.0.js\">"
        ));
        assert!(html.contains(
            "href=\"/prod/oauth/authorize?scope=snsapi_userinfo&amp;return_to=%2Fprod%2Fdemo\""
        ));
        assert!(html.contains("data-prefix=\"/prod\""));
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    }

    #[test]
    fn the_policy_allows_only_the_nonce_and_the_script_origin() {
        let page = render(&config(), "", "n0nce");
        let policy = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'; "), "{policy}");
        assert!(
            policy.contains("script-src 'nonce-n0nce' http://127.0.0.1:4567;"),
            "{policy}"
        );
        assert!(
            policy.contains("connect-src 'self' http://127.0.0.1:4567;"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        // Every script and style element carries the nonce.
        let html = body(&page);
        assert_eq!(html.matches("<script").count(), 2);
        assert_eq!(html.matches("<script nonce=\"n0nce\"").count(), 2);
        assert_eq!(html.matches("<style nonce=\"n0nce\">").count(), 1);
    }

    #[test]
    fn a_signed_in_user_can_sign_out_with_a_post_to_the_logout_route() {
        let html = body(&render(&config(), "/prod", "n"));
        assert!(
            html.contains("<button id=\"sign-out\" type=\"button\""),
            "{html}"
        );
        assert!(html.contains("Sign out"));
        // A POST from the page's own origin (`connect-src 'self'`), below the deployment's prefix.
        assert!(html.contains(
            "fetch(prefix + '/oauth/logout', { method: 'POST', credentials: 'same-origin' })"
        ));
        // The button sits in the profile, shown only to a signed-in user.
        let profile = &html[html.find("<section id=\"profile\"").unwrap()..];
        assert!(profile[..profile.find("</section>").unwrap()].contains("id=\"sign-out\""));
    }

    #[test]
    fn the_page_uses_the_shared_font_stack() {
        let html = body(&render(&config(), "", "n"));
        assert!(html.contains(&format!("body{{font-family:{};", crate::http::FONT_FAMILY)));
    }

    #[test]
    fn profile_data_is_written_as_text_never_as_html() {
        let html = body(&render(&config(), "", "n"));
        assert!(!html.contains("innerHTML") && !html.contains("document.write"));
        assert!(html.contains("$('nickname').textContent = name"));
    }

    #[test]
    fn a_prefix_with_markup_is_escaped() {
        let html = body(&render(&config(), "/a\"><script>", "n"));
        assert!(!html.contains("/a\"><script>"));
        assert!(html.contains("data-prefix=\"/a&quot;&gt;&lt;script&gt;\""));
    }

    #[test]
    fn placeholders_in_values_are_not_filled_again() {
        assert_eq!(
            fill("a{x}b{y}c{z", &[("{x}", "{y}"), ("{y}", "Y")]),
            "a{y}bYc{z"
        );
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(csp_nonce().unwrap(), csp_nonce().unwrap());
    }
}
