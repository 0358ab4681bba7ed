//! A stand-in for WeChat's `jweixin-1.6.0.js` (`GET /open/js/jweixin-1.6.0.js`), so a page's
//! whole JS-SDK chain runs offline: its `wx.config` sends the page's signature to the fake's
//! `POST /fake/jssdk/verify`, which checks it against the jsapi_ticket the fake issued, and then
//! fires the `wx.ready` callbacks, or the `wx.error` callbacks with `{errMsg}`, as the real script
//! does. `wx.checkJsApi` answers that every API asked about is supported.
//!
//! The page and the fake are on different origins, as a page and `res.wx.qq.com` are in
//! production: the script finds the fake through its own `src`, and the fake allows the
//! cross-origin POST (every fake answer carries `Access-Control-Allow-Origin: *`, and
//! `OPTIONS /fake/jssdk/verify` answers the preflight; see `super::jssdk`). Serving the script
//! from the page's origin instead would test a set-up production never has, and the page's
//! Content-Security-Policy would not be exercised for the script's origin.

use super::{FakeRequest, FakeResponse};

/// Where WeChat serves version 1.6.0 of the script, below `res.wx.qq.com`.
pub const SCRIPT_PATH: &str = "/open/js/jweixin-1.6.0.js";

pub fn handle(req: &FakeRequest) -> Option<FakeResponse> {
    (req.path == SCRIPT_PATH && req.method == hyper::Method::GET).then(|| FakeResponse {
        status: 200,
        content_type: "application/javascript; charset=utf-8",
        body: SCRIPT.to_string(),
        location: None,
    })
}

const SCRIPT: &str = r#"/*! Stand-in for WeChat's jweixin-1.6.0.js, served by the fake WeChat API (tests and `make run`).
 * wx.config posts {appId, timestamp, nonceStr, signature, url} to the fake's /fake/jssdk/verify,
 * which checks the signature against the jsapi_ticket it issued; then wx.ready or wx.error
 * callbacks fire as with the real script. debug: true logs to the console instead of alerting. */
(function (global) {
  'use strict';
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : '';
  var state = 'idle';
  var failure = null;
  var readyCallbacks = [];
  var errorCallbacks = [];
  var debug = false;

  function log(what, detail) {
    if (debug && global.console) { global.console.log('[jweixin stand-in] ' + what, detail); }
  }
  function settle(ok, res) {
    state = ok ? 'ready' : 'error';
    failure = ok ? null : res;
    log(ok ? 'config:ok' : res.errMsg, res);
    var callbacks = ok ? readyCallbacks : errorCallbacks;
    readyCallbacks = [];
    errorCallbacks = [];
    callbacks.forEach(function (fn) { fn(ok ? undefined : res); });
  }

  var wx = {
    config: function (options) {
      options = options || {};
      debug = !!options.debug;
      state = 'pending';
      var body = JSON.stringify({
        appId: options.appId,
        timestamp: options.timestamp,
        nonceStr: options.nonceStr,
        signature: options.signature,
        url: global.location.href.split('#')[0]
      });
      // text/plain keeps the cross-origin POST a simple request; the fake answers with CORS.
      global.fetch(base + '/fake/jssdk/verify', {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: body
      }).then(function (r) { return r.json(); }).then(function (answer) {
        if (answer && answer.ok === true) {
          settle(true);
        } else {
          settle(false, { errMsg: (answer && answer.errMsg) || 'config:fail' });
        }
      }).catch(function (e) {
        settle(false, { errMsg: 'config:fail, ' + String(e && e.message || e) });
      });
    },
    ready: function (fn) {
      if (typeof fn !== 'function') { return; }
      if (state === 'ready') { fn(); } else { readyCallbacks.push(fn); }
    },
    error: function (fn) {
      if (typeof fn !== 'function') { return; }
      if (state === 'error') { fn(failure); } else { errorCallbacks.push(fn); }
    },
    checkJsApi: function (options) {
      options = options || {};
      var checkResult = {};
      (options.jsApiList || []).forEach(function (name) { checkResult[name] = true; });
      var res = { checkResult: checkResult, errMsg: 'checkJsApi:ok' };
      if (typeof options.success === 'function') { options.success(res); }
      if (typeof options.complete === 'function') { options.complete(res); }
    }
  };
  global.wx = global.jWeixin = wx;
})(window);
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn request(method: hyper::Method, path: &str) -> FakeRequest {
        FakeRequest {
            method,
            path: path.into(),
            query: HashMap::new(),
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn the_script_defines_wx_and_posts_to_the_verify_endpoint() {
        let answer = handle(&request(hyper::Method::GET, SCRIPT_PATH)).unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.content_type.starts_with("application/javascript"));
        for part in [
            "global.wx = global.jWeixin = wx",
            "config: function",
            "ready: function",
            "error: function",
            "checkJsApi: function",
            "'/fake/jssdk/verify'",
            "location.href.split('#')[0]",
        ] {
            assert!(answer.body.contains(part), "{part}");
        }
        assert!(handle(&request(hyper::Method::GET, "/open/js/other.js")).is_none());
    }
}
