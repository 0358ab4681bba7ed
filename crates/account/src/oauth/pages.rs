//! The small bilingual (Chinese, English) HTML pages a person sees when a sign-in does not end in
//! a redirect: consent declined, WeChat unavailable, an expired or foreign sign-in link, a
//! snapshot page (快照页) that cannot sign in. Each page
//! explains what happened in one sentence and offers one link that starts the flow again.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::http::escape_html;

/// Which page to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The user pressed "decline" on WeChat's consent page.
    Declined,
    /// WeChat (or our storage) failed; trying again usually works.
    TryAgainLater,
    /// The sign-in link is unknown, expired or damaged.
    LinkExpired,
    /// The sign-in was started in another browser (or its cookie is gone).
    OtherBrowser,
    /// WeChat rejected the sign-in code again after one automatic restart.
    SignInFailed,
    /// The page was opened in WeChat's snapshot mode (快照页模式), which signs in a virtual
    /// account only: the user must open the full page (使用完整服务) first.
    SnapshotUser,
}

struct Text {
    title_zh: &'static str,
    title_en: &'static str,
    body_zh: &'static str,
    body_en: &'static str,
    link_zh: &'static str,
    link_en: &'static str,
}

impl Page {
    fn text(self) -> Text {
        match self {
            Page::Declined => Text {
                title_zh: "您已取消授权",
                title_en: "You declined to sign in",
                body_zh: "没有您的授权，我们无法识别您的身份。如需继续，请重新授权。",
                body_en: "Without your permission we cannot tell who you are. You can try again whenever you like.",
                link_zh: "重新授权",
                link_en: "Try again",
            },
            Page::TryAgainLater => Text {
                title_zh: "微信暂时无法完成登录",
                title_en: "WeChat could not complete the sign-in",
                body_zh: "微信服务暂时不可用，请稍后重试。",
                body_en: "WeChat is not answering right now. Please try again in a moment.",
                link_zh: "重试",
                link_en: "Try again",
            },
            Page::LinkExpired => Text {
                title_zh: "登录链接已失效",
                title_en: "This sign-in link has expired",
                body_zh: "该登录链接已过期或无效，请重新登录。",
                body_en: "The sign-in link is no longer valid. Please sign in again.",
                link_zh: "重新登录",
                link_en: "Sign in again",
            },
            Page::OtherBrowser => Text {
                title_zh: "请在同一浏览器中完成登录",
                title_en: "Please finish signing in where you started",
                body_zh: "该登录是在另一个浏览器或窗口中发起的，请在此重新登录。",
                body_en: "This sign-in was started in another browser or window. Please sign in again here.",
                link_zh: "重新登录",
                link_en: "Sign in again",
            },
            Page::SignInFailed => Text {
                title_zh: "登录未能完成",
                title_en: "The sign-in could not be completed",
                body_zh: "微信未能确认本次登录，请重新登录。",
                body_en: "WeChat could not confirm this sign-in. Please sign in again.",
                link_zh: "重新登录",
                link_en: "Sign in again",
            },
            Page::SnapshotUser => Text {
                title_zh: "请打开完整页面后再登录",
                title_en: "Please open the full page to sign in",
                body_zh: "您正在浏览该网页的快照页，在快照页中无法登录。请轻触屏幕右下角的“使用完整服务”，在完整页面中同意授权后再登录。",
                body_en: "You are viewing a snapshot (preview) of this page, where signing in is not possible. Tap “使用完整服务” (use the full service) at the bottom right of the screen, allow the sign-in on the full page, and sign in again there.",
                link_zh: "重新登录",
                link_en: "Sign in again",
            },
        }
    }

    /// The page with its link to `restart` (a path this server issued; escaped here anyway).
    pub fn render(self, status: StatusCode, restart: &str) -> Response<Body> {
        let t = self.text();
        let href = escape_html(restart);
        let body = format!(
            "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title_zh} / {title_en}</title>\n\
             <style>body{{font-family:{font};\
             max-width:32em;margin:3em auto;padding:0 1em;line-height:1.6;color:#222}}\
             a.button{{display:inline-block;margin-top:1em;padding:.6em 1.4em;border-radius:4px;\
             background:#07c160;color:#fff;text-decoration:none}}p.en{{color:#666}}</style>\n\
             </head>\n<body>\n<h1>{title_zh}</h1>\n<p>{body_zh}</p>\n\
             <p class=\"en\" lang=\"en\">{title_en}. {body_en}</p>\n\
             <a class=\"button\" href=\"{href}\">{link_zh} / {link_en}</a>\n</body>\n</html>\n",
            title_zh = t.title_zh,
            title_en = t.title_en,
            body_zh = t.body_zh,
            body_en = t.body_en,
            link_zh = t.link_zh,
            link_en = t.link_en,
            font = crate::http::FONT_FAMILY,
        );
        let mut response = crate::http::html(status, body);
        if let Ok(value) = "no-store".parse() {
            response
                .headers_mut()
                .insert(lambda_http::http::header::CACHE_CONTROL, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Response<Body>) -> String {
        match response.body() {
            Body::Text(text) => text.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn pages_speak_both_languages_and_link_to_a_restart() {
        let page = Page::Declined.render(
            StatusCode::OK,
            "/oauth/authorize?scope=snsapi_base&return_to=%2F",
        );
        let html = body(&page);
        assert!(html.contains("您已取消授权") && html.contains("You declined"));
        assert!(html.contains("href=\"/oauth/authorize?scope=snsapi_base&amp;return_to=%2F\""));
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    }

    #[test]
    fn english_and_chinese_lines_share_one_font_stack_with_a_cjk_font_that_has_latin_letters() {
        let html = body(&Page::Declined.render(StatusCode::OK, "/"));
        assert!(
            html.contains(&format!("body{{font-family:{};", crate::http::FONT_FAMILY)),
            "{html}"
        );
        assert!(crate::http::FONT_FAMILY.contains("\"Noto Sans CJK SC\""));
        // Nothing gives the English paragraph a font of its own.
        assert_eq!(html.matches("font-family").count(), 1, "{html}");
    }

    #[test]
    fn links_are_escaped() {
        let html = body(&Page::LinkExpired.render(StatusCode::BAD_REQUEST, "/x\"><script>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("/x&quot;&gt;&lt;script&gt;"));
    }
}
