//! WeChat's error codes, in one table: what WeChat says (`errmsg`), what it means, how the code
//! reacts to it ([`ErrClass`]) and, for credential errors, what the operator must fix.
//! Everything that sorts an `errcode` (the token fetcher, the token client, the sns client, the
//! fake WeChat API) reads this table.
//!
//! A code can mean two things by [`Context`]: 40001 answered to the token fetch
//! (`/cgi-bin/token`, `/cgi-bin/stable_token`) says the AppSecret is wrong; answered to a call
//! made with an access_token it says that token is invalid, most often because a newer fetch
//! elsewhere replaced it. [`meaning`] gives the one that fits the call.

/// How callers react to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrClass {
    /// -1 (system busy), 45011 (too frequent): worth another try after a pause.
    Busy,
    /// 45009: the daily quota is used up until midnight China time.
    QuotaExhausted,
    /// The access_token used for the call is no longer good: report it stale and retry once.
    AccessTokenInvalid,
    /// The app's configuration (id, secret, IP whitelist) is wrong; retrying cannot help.
    Configuration,
    /// The web-authorization `code` cannot be used (invalid, used, expired).
    CodeRejected,
    /// The sns refresh token cannot be used: only a new consent helps.
    RefreshTokenRejected,
    /// Anything else the code knows by name.
    Other,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrCode {
    pub code: i64,
    pub class: ErrClass,
    /// WeChat's own `errmsg` for it.
    pub errmsg: &'static str,
    /// What it means answered to a call made with an access_token (every call but the token
    /// fetch), for log lines and error texts.
    pub meaning: &'static str,
    /// What it means answered to the token fetch, when that differs from [`Self::meaning`].
    pub fetch_meaning: Option<&'static str>,
    /// Set when a credential call (fetching the access_token) answering this code means the
    /// app's configuration is wrong: what to change. 40001 is such a code on the token endpoint,
    /// and an invalid access_token everywhere else.
    pub config_fix: Option<&'static str>,
}

/// Which call an error code answered: its meaning can depend on it (40001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The token fetch itself: `GET /cgi-bin/token` or `POST /cgi-bin/stable_token`.
    TokenFetch,
    /// A call made with an access_token (`?access_token=…`).
    WithToken,
}

impl ErrCode {
    /// What the code means answered to a call in `context`.
    pub fn meaning_in(&self, context: Context) -> &'static str {
        match (context, self.fetch_meaning) {
            (Context::TokenFetch, Some(meaning)) => meaning,
            _ => self.meaning,
        }
    }
}

const fn row(
    code: i64,
    class: ErrClass,
    errmsg: &'static str,
    meaning: &'static str,
    config_fix: Option<&'static str>,
) -> ErrCode {
    ErrCode {
        code,
        class,
        errmsg,
        meaning,
        fetch_meaning: None,
        config_fix,
    }
}

use ErrClass::*;

/// Every error code the code reacts to by name.
pub const TABLE: &[ErrCode] = &[
    row(-1, Busy, "system error", "WeChat is busy", None),
    ErrCode {
        code: 40001,
        class: AccessTokenInvalid,
        errmsg: "invalid credential, access_token is invalid or not latest",
        meaning: "the access_token is invalid or was replaced by a newer fetch elsewhere (another server or tool using the AppSecret)",
        fetch_meaning: Some(
            "invalid credential: the AppSecret is wrong or belongs to another account",
        ),
        config_fix: Some(
            "set WECHAT_APP_SECRET to this account's AppSecret (mp.weixin.qq.com > Settings and Development > Basic Configuration)",
        ),
    },
    row(
        40003,
        Other,
        "invalid openid",
        "the openid is not a follower of this account",
        None,
    ),
    row(
        40007,
        Other,
        "invalid media_id",
        "the media_id is unknown or has expired (temporary media live 3 days)",
        None,
    ),
    row(
        40008,
        Other,
        "invalid message type",
        "the message's msgtype is missing or not one WeChat knows",
        None,
    ),
    row(
        40013,
        Configuration,
        "invalid appid",
        "invalid AppID",
        Some("set WECHAT_APP_ID to the account's AppID (starts with wx)"),
    ),
    row(
        40014,
        AccessTokenInvalid,
        "invalid access_token",
        "the access_token is not valid",
        None,
    ),
    row(
        40016,
        Other,
        "invalid button size",
        "the menu has no or more than 3 top-level buttons",
        None,
    ),
    row(
        40017,
        Other,
        "invalid button type",
        "a top-level button's type is unknown or its fields do not fit it",
        None,
    ),
    row(
        40018,
        Other,
        "invalid button name size",
        "a top-level button's name is empty or longer than 16 bytes",
        None,
    ),
    row(
        40019,
        Other,
        "invalid button key size",
        "a top-level button's key is empty or longer than 128 bytes",
        None,
    ),
    row(
        40020,
        Other,
        "invalid button url size",
        "a top-level button's url is empty or longer than 1024 bytes",
        None,
    ),
    row(
        40023,
        Other,
        "invalid sub button size",
        "a sub-menu has no or more than 5 buttons",
        None,
    ),
    row(
        40024,
        Other,
        "invalid sub button type",
        "a sub-menu button's type is unknown or its fields do not fit it",
        None,
    ),
    row(
        40025,
        Other,
        "invalid sub button name size",
        "a sub-menu button's name is empty or longer than 60 bytes",
        None,
    ),
    row(
        40026,
        Other,
        "invalid sub button key size",
        "a sub-menu button's key is empty or longer than 128 bytes",
        None,
    ),
    row(
        40027,
        Other,
        "invalid sub button url size",
        "a sub-menu button's url is empty or longer than 1024 bytes",
        None,
    ),
    row(
        40029,
        CodeRejected,
        "invalid code",
        "the authorization code is invalid",
        None,
    ),
    row(
        40030,
        RefreshTokenRejected,
        "invalid refresh_token",
        "the sns refresh_token is invalid",
        None,
    ),
    row(
        40036,
        Other,
        "invalid template_id size",
        "the template_id is empty or not as long as a template id is",
        None,
    ),
    row(
        40037,
        Other,
        "invalid template_id",
        "the template_id is not one of this account's templates (deleted, or another account's)",
        None,
    ),
    row(
        40053,
        Other,
        "invalid action info",
        "the QR code request's action_name or scene is not one WeChat takes (scene_str 1 to 64 bytes)",
        None,
    ),
    row(
        40125,
        Configuration,
        "invalid appsecret",
        "invalid AppSecret",
        Some("set WECHAT_APP_SECRET to the account's current AppSecret; it changes when reset"),
    ),
    row(
        40163,
        CodeRejected,
        "code been used",
        "the authorization code was already used",
        None,
    ),
    row(
        40164,
        Configuration,
        "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
        "the calling IP address is not on the account's IP whitelist",
        Some(
            "add the stack's EgressIp output to the IP whitelist (微信开发者平台 → 我的业务 → 公众号/服务号 → 基础信息 → 开发密钥 → API IP白名单)",
        ),
    ),
    row(
        41004,
        Configuration,
        "appsecret missing",
        "the AppSecret is missing from the request",
        Some("set WECHAT_APP_SECRET"),
    ),
    row(
        41001,
        Other,
        "access_token missing",
        "the call carried no access_token",
        None,
    ),
    row(
        42001,
        AccessTokenInvalid,
        "access_token expired",
        "the access_token has expired",
        None,
    ),
    row(
        42002,
        RefreshTokenRejected,
        "refresh_token expired",
        "the sns refresh_token has expired (30 days after consent)",
        None,
    ),
    row(
        42003,
        CodeRejected,
        "code expired",
        "the authorization code has expired",
        None,
    ),
    row(
        43004,
        Other,
        "require subscribe",
        "the user does not follow the account (template messages go to followers only)",
        None,
    ),
    row(
        43101,
        Other,
        "user refuse to accept the msg",
        "the user turned off (refused) this account's notifications",
        None,
    ),
    row(
        44002,
        Other,
        "empty post data",
        "the request had no body",
        None,
    ),
    row(
        44003,
        Other,
        "empty news data",
        "a news message had no article",
        None,
    ),
    row(
        44004,
        Other,
        "empty content",
        "a text message had no content",
        None,
    ),
    row(
        45002,
        Other,
        "content size out of limit",
        "a customer-service text is longer than 2048 bytes",
        None,
    ),
    row(
        45008,
        Other,
        "article size out of limit",
        "a customer-service news message may carry one article only",
        None,
    ),
    row(
        45009,
        QuotaExhausted,
        "reach max api daily quota limit",
        "the daily quota of this API is used up until midnight China time",
        None,
    ),
    row(
        45011,
        Busy,
        "api minute-quota reach limit  mustslower  retry next minute",
        "calls are too frequent",
        None,
    ),
    row(
        45015,
        Other,
        "response out of time limit or subscription is canceled",
        "the user has not interacted with the account in the last 48 hours (or unfollowed it)",
        None,
    ),
    row(
        45029,
        Other,
        "qrcode count out of limit",
        "the account already has as many permanent QR codes as WeChat allows (100,000)",
        None,
    ),
    row(
        45047,
        Other,
        "out of response count limit",
        "too many customer-service messages to this user since their last interaction",
        None,
    ),
    row(
        45067,
        Other,
        "clientmsgid size out of limit",
        "the client_msg_id is longer than 64 bytes",
        None,
    ),
    row(
        45072,
        Other,
        "command field error",
        "a typing status command is neither Typing nor CancelTyping",
        None,
    ),
    row(
        45080,
        Other,
        "typing needs an interaction within 30 seconds",
        "the typing status needs a message from the user in the last 30 seconds",
        None,
    ),
    row(
        45081,
        Other,
        "already typing",
        "the typing status is already shown (it lasts 15 seconds)",
        None,
    ),
    row(
        46003,
        Other,
        "menu no exist",
        "the account has no custom menu",
        None,
    ),
    row(
        47001,
        Other,
        "data format error",
        "the request body is not the JSON WeChat expects",
        None,
    ),
    row(
        47003,
        Other,
        "argument invalid",
        "a field of the request is invalid (for a template message: a data keyword's value breaks its type's rules)",
        None,
    ),
    row(
        48001,
        Other,
        "api unauthorized",
        "the account (or the sns token's scope) is not allowed this API",
        None,
    ),
    row(
        89503,
        Configuration,
        "this ip calls need admin confirmation",
        "calls from this IP address need the account administrator's confirmation",
        Some(
            "have the administrator confirm in WeChat, or add the function's outbound IP to the IP whitelist",
        ),
    ),
];

/// 40164: the caller's IP address is not on the account's IP whitelist.
pub const IP_NOT_WHITELISTED: i64 = 40164;

/// Where the account's IP whitelist is edited: WeChat moved the AppSecret and the API IP
/// whitelist from the Official Account platform (设置与开发 → 基本配置) to the 微信开发者平台
/// (developers.weixin.qq.com, its migration guide); docs/deploy.md has both paths.
pub const IP_WHITELIST_CONSOLE: &str =
    "微信开发者平台 → 我的业务 → 公众号/服务号 → 基础信息 → 开发密钥 → API IP白名单";

/// The one sentence every surface (token log, `wx` errors, `wx doctor`) uses for a call WeChat
/// refused because `ip` is not whitelisted.
pub fn whitelist_fix(ip: std::net::IpAddr) -> String {
    format!(
        "WeChat refused the call from IP {ip}: add {ip} to the IP whitelist ({IP_WHITELIST_CONSOLE})"
    )
}

/// The caller's address in a 40164 `errmsg`. WeChat writes it as
/// `invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: …` (older answers end
/// in `hint: [...]`); the IPv4 form comes first, and an IPv4-mapped IPv6 address is given back
/// as IPv4. `None` when the text does not have that shape.
pub fn whitelist_ip_in(errmsg: &str) -> Option<std::net::IpAddr> {
    let rest = &errmsg[errmsg.find("invalid ip ")? + "invalid ip ".len()..];
    let word = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    let ip: std::net::IpAddr = word.parse().ok()?;
    Some(ip.to_canonical())
}

/// The row for `code`, if the code knows it.
pub fn lookup(code: i64) -> Option<&'static ErrCode> {
    TABLE.iter().find(|row| row.code == code)
}

/// What `code` means answered to a call in `context` (`None` for codes not in the table).
pub fn meaning(code: i64, context: Context) -> Option<&'static str> {
    lookup(code).map(|row| row.meaning_in(context))
}

/// How to react to `code` (`Other` for codes not in the table).
pub fn class(code: i64) -> ErrClass {
    lookup(code).map_or(Other, |row| row.class)
}

/// What a credential error means answered to the token fetch and what to fix, for the error
/// log line; `None` when `code` does not mean the app's configuration is wrong.
pub fn config_advice(code: i64) -> Option<(&'static str, &'static str)> {
    lookup(code).and_then(|row| Some((row.meaning_in(Context::TokenFetch), row.config_fix?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        for (i, row) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|other| other.code != row.code),
                "{} is listed twice",
                row.code
            );
        }
    }

    #[test]
    fn the_whitelist_error_says_so_and_40001_is_both_a_credential_and_a_token_error() {
        let (meaning, fix) = config_advice(40164).unwrap();
        assert!(meaning.contains("whitelist") && fix.contains("whitelist"));
        assert!(config_advice(40001).is_some());
        assert_eq!(class(40001), AccessTokenInvalid);
        assert_eq!(config_advice(45009), None);
        assert_eq!(class(123_456), Other);
    }

    #[test]
    fn only_the_token_fetch_blames_the_appsecret_for_40001() {
        let fetch = meaning(40001, Context::TokenFetch).unwrap();
        assert!(fetch.contains("AppSecret is wrong"), "{fetch}");
        assert_eq!(config_advice(40001).unwrap().0, fetch);
        let with_token = meaning(40001, Context::WithToken).unwrap();
        assert_eq!(
            with_token,
            "the access_token is invalid or was replaced by a newer fetch elsewhere (another server or tool using the AppSecret)"
        );
        assert!(!with_token.contains("is wrong"), "{with_token}");
        assert_eq!(lookup(40001).unwrap().meaning, with_token);
        // Codes with one meaning read the same in both contexts.
        assert_eq!(
            meaning(40164, Context::TokenFetch),
            meaning(40164, Context::WithToken)
        );
        assert_eq!(meaning(123_456, Context::WithToken), None);
    }
}
