//! Fake web authorization: the consent page `/connect/oauth2/authorize` and the `/sns/*` endpoints,
//! answering like WeChat: codes are single-use and live 5 minutes, access tokens 2 hours, refresh
//! tokens 30 days; errors are WeChat's errcodes (40029/40163/42003 codes, 40030/42002 refresh
//! tokens, 40001/42001 access tokens, 40003 openid, 40013/40125 app credentials, 48001 scope).
//!
//! The consent page "approves" at once as [`SnsState::signed_in_openid`] by redirecting to
//! `redirect_uri` with `code` and `state`; with [`SnsState::decline`] set it redirects with only
//! `state`, as WeChat does when the user declines. With [`SnsState::snapshot_user`] set, an
//! `snsapi_userinfo` sign-in is answered as WeChat answers one from a snapshot page (快照页模式,
//! since 2022): a new virtual openid (and unionid, and a placeholder profile that `/sns/userinfo`
//! serves), with `"is_snapshotuser": 1` in the code exchange's answer.
//!
//! The fake keeps its own time (the system clock plus [`SnsState::advance_s`]) so tests can
//! expire codes and tokens.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{FakeRequest, FakeResponse, FakeState, lock};

pub const CODE_LIFETIME_S: i64 = 300;
pub const ACCESS_TOKEN_LIFETIME_S: i64 = 7200;
pub const REFRESH_TOKEN_LIFETIME_S: i64 = 30 * 24 * 3600;

/// The first seeded user: has a unionid, a Chinese nickname with an emoji.
pub const FAKE_OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
pub const FAKE_UNIONID: &str = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
pub const FAKE_NICKNAME: &str = "小明🐼 Ming";
/// The second seeded user: no unionid.
pub const FAKE_OPENID_2: &str = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc";
pub const FAKE_NICKNAME_2: &str = "Zoë 🌸 测试";
/// The nickname of every snapshot-page virtual account.
pub const SNAPSHOT_NICKNAME: &str = "微信用户";

/// A WeChat user the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub openid: String,
    pub unionid: Option<String>,
    pub nickname: String,
    pub sex: i64,
    pub province: String,
    pub city: String,
    pub country: String,
    pub headimgurl: String,
    pub privilege: Vec<String>,
}

#[derive(Debug, Clone)]
struct IssuedCode {
    openid: String,
    scope: String,
    expires_at_s: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct IssuedToken {
    openid: String,
    scope: String,
    expires_at_s: i64,
}

/// Codes, sns tokens and users known to the fake.
#[derive(Debug)]
pub struct SnsState {
    /// Users by openid.
    pub users: HashMap<String, FakeUser>,
    /// Who the consent page signs in.
    pub signed_in_openid: String,
    /// When set, the consent page declines (redirects back with only `state`).
    pub decline: bool,
    /// When set, `snsapi_userinfo` sign-ins come from a snapshot page: each one is a new virtual
    /// account, and the code exchange answers `"is_snapshotuser": 1`.
    pub snapshot_user: bool,
    /// The virtual accounts' openids issued so far.
    virtual_openids: HashSet<String>,
    codes: HashMap<String, IssuedCode>,
    access_tokens: HashMap<String, IssuedToken>,
    refresh_tokens: HashMap<String, IssuedToken>,
    skew_s: i64,
    serial: u64,
}

impl Default for SnsState {
    fn default() -> Self {
        let users = [
            FakeUser {
                openid: FAKE_OPENID.into(),
                unionid: Some(FAKE_UNIONID.into()),
                nickname: FAKE_NICKNAME.into(),
                sex: 1,
                province: "广东".into(),
                city: "深圳".into(),
                country: "中国".into(),
                headimgurl: "https://thirdwx.qlogo.cn/mmopen/fake-0001/132".into(),
                privilege: vec!["chinaunicom".into()],
            },
            FakeUser {
                openid: FAKE_OPENID_2.into(),
                unionid: None,
                nickname: FAKE_NICKNAME_2.into(),
                sex: 0,
                province: String::new(),
                city: String::new(),
                country: String::new(),
                headimgurl: String::new(),
                privilege: vec![],
            },
        ]
        .into_iter()
        .map(|u| (u.openid.clone(), u))
        .collect();
        Self {
            users,
            signed_in_openid: FAKE_OPENID.into(),
            decline: false,
            snapshot_user: false,
            virtual_openids: HashSet::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            skew_s: 0,
            serial: 0,
        }
    }
}

impl SnsState {
    /// The fake's current time: the system clock moved by `advance_s`.
    pub fn now_s(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        system + self.skew_s
    }

    /// Move the fake's time forward, to expire codes and tokens.
    pub fn advance_s(&mut self, seconds: i64) {
        self.skew_s += seconds;
    }

    /// A code for `openid` with `scope`, as if the consent page had issued it.
    pub fn issue_code(&mut self, openid: &str, scope: &str) -> String {
        let code = format!("fakecode{:06}", self.next_serial());
        let expires_at_s = self.now_s() + CODE_LIFETIME_S;
        self.codes.insert(
            code.clone(),
            IssuedCode {
                openid: openid.into(),
                scope: scope.into(),
                expires_at_s,
                used: false,
            },
        );
        code
    }

    /// Every sns access and refresh token issued so far, to prove none of them leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.access_tokens
            .keys()
            .chain(self.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    /// How many codes were issued and how many of those were exchanged.
    pub fn codes_issued_and_used(&self) -> (usize, usize) {
        (
            self.codes.len(),
            self.codes.values().filter(|c| c.used).count(),
        )
    }

    /// The openids of the snapshot-page virtual accounts issued so far.
    pub fn virtual_openids(&self) -> Vec<String> {
        self.virtual_openids.iter().cloned().collect()
    }

    /// A new snapshot-page virtual account, known to `/sns/userinfo` like any user.
    fn issue_virtual_user(&mut self) -> String {
        let serial = self.next_serial();
        let openid = format!("oSNAPSHOTvirtual{serial:012}");
        self.users.insert(
            openid.clone(),
            FakeUser {
                openid: openid.clone(),
                unionid: Some(format!("oSNAPSHOTunion{serial:012}")),
                nickname: SNAPSHOT_NICKNAME.into(),
                sex: 0,
                province: String::new(),
                city: String::new(),
                country: String::new(),
                headimgurl: "https://thirdwx.qlogo.cn/mmopen/snapshot-default/132".into(),
                privilege: vec![],
            },
        );
        self.virtual_openids.insert(openid.clone());
        openid
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn issue_access_token(&mut self, openid: &str, scope: &str) -> String {
        let token = format!("fake-sns-access-{:06}", self.next_serial());
        let expires_at_s = self.now_s() + ACCESS_TOKEN_LIFETIME_S;
        self.access_tokens.insert(
            token.clone(),
            IssuedToken {
                openid: openid.into(),
                scope: scope.into(),
                expires_at_s,
            },
        );
        token
    }

    /// The answer WeChat gives for a new grant (code exchange and refresh alike).
    fn grant_answer(&mut self, openid: &str, scope: &str, refresh_token: String) -> FakeResponse {
        let access_token = self.issue_access_token(openid, scope);
        let mut answer = json!({
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "refresh_token": refresh_token,
            "openid": openid,
            "scope": scope,
            "is_snapshotuser": u8::from(self.virtual_openids.contains(openid)),
        });
        if let Some(unionid) = self.users.get(openid).and_then(|u| u.unionid.clone()) {
            answer["unionid"] = json!(unionid);
        }
        FakeResponse::json(answer)
    }

    /// The access token's openid, or the errcode WeChat answers for it.
    fn check_access_token(&self, token: &str, openid: &str) -> Result<&IssuedToken, i64> {
        let issued = self.access_tokens.get(token).ok_or(40001)?;
        if issued.expires_at_s <= self.now_s() {
            return Err(42001);
        }
        if issued.openid != openid {
            return Err(40003);
        }
        Ok(issued)
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    let answer = match req.path.as_str() {
        "/connect/oauth2/authorize" => consent(state, req),
        "/sns/oauth2/access_token" => exchange_code(state, req),
        "/sns/oauth2/refresh_token" => refresh(state, req),
        "/sns/userinfo" => userinfo(state, req),
        "/sns/auth" => auth(state, req),
        _ => return None,
    };
    Some(answer)
}

fn param<'a>(req: &'a FakeRequest, name: &str) -> &'a str {
    req.query.get(name).map(String::as_str).unwrap_or_default()
}

fn bad_request(message: &str) -> FakeResponse {
    FakeResponse {
        status: 400,
        content_type: "text/plain; charset=utf-8",
        body: message.to_string(),
        location: None,
    }
}

/// The consent page: approve (or decline) at once and send the browser back.
fn consent(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    if param(req, "appid") != state.app_id {
        return bad_request("appid invalid");
    }
    let redirect_uri = param(req, "redirect_uri");
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
        return bad_request("redirect_uri invalid");
    }
    if param(req, "response_type") != "code" {
        return bad_request("response_type invalid");
    }
    let scope = param(req, "scope");
    if !matches!(scope, "snsapi_base" | "snsapi_userinfo") {
        return bad_request("scope invalid");
    }
    // WeChat: state is at most 128 bytes of a-zA-Z0-9.
    let oauth_state = param(req, "state");
    if oauth_state.len() > 128 || !oauth_state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return bad_request("state invalid");
    }
    let mut sns = lock(&state.sns);
    let mut back = form_urlencoded::Serializer::new(String::new());
    if !sns.decline {
        let openid = if sns.snapshot_user && scope == "snsapi_userinfo" {
            sns.issue_virtual_user()
        } else {
            sns.signed_in_openid.clone()
        };
        back.append_pair("code", &sns.issue_code(&openid, scope));
    }
    back.append_pair("state", oauth_state);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    FakeResponse::redirect(format!("{redirect_uri}{separator}{}", back.finish()))
}

fn exchange_code(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    if param(req, "appid") != state.app_id {
        return FakeResponse::errcode(40013);
    }
    if param(req, "secret") != state.app_secret {
        return FakeResponse::errcode(40125);
    }
    if param(req, "grant_type") != "authorization_code" {
        return FakeResponse::errcode(40002);
    }
    let mut sns = lock(&state.sns);
    let now_s = sns.now_s();
    let Some(code) = sns.codes.get_mut(param(req, "code")) else {
        return FakeResponse::errcode(40029);
    };
    if code.used {
        return FakeResponse::errcode(40163);
    }
    if code.expires_at_s <= now_s {
        return FakeResponse::errcode(42003);
    }
    code.used = true;
    let (openid, scope) = (code.openid.clone(), code.scope.clone());
    let refresh_token = format!("fake-sns-refresh-{:06}", sns.next_serial());
    sns.refresh_tokens.insert(
        refresh_token.clone(),
        IssuedToken {
            openid: openid.clone(),
            scope: scope.clone(),
            expires_at_s: now_s + REFRESH_TOKEN_LIFETIME_S,
        },
    );
    sns.grant_answer(&openid, &scope, refresh_token)
}

fn refresh(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    if param(req, "appid") != state.app_id {
        return FakeResponse::errcode(40013);
    }
    if param(req, "grant_type") != "refresh_token" {
        return FakeResponse::errcode(40002);
    }
    let mut sns = lock(&state.sns);
    let refresh_token = param(req, "refresh_token").to_string();
    let Some(issued) = sns.refresh_tokens.get(&refresh_token).cloned() else {
        return FakeResponse::errcode(40030);
    };
    if issued.expires_at_s <= sns.now_s() {
        return FakeResponse::errcode(42002);
    }
    sns.grant_answer(&issued.openid, &issued.scope, refresh_token)
}

fn userinfo(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    let sns = lock(&state.sns);
    let issued = match sns.check_access_token(param(req, "access_token"), param(req, "openid")) {
        Ok(issued) => issued,
        Err(code) => return FakeResponse::errcode(code),
    };
    if issued.scope != "snsapi_userinfo" {
        return FakeResponse::errcode(48001);
    }
    let Some(user) = sns.users.get(&issued.openid) else {
        return FakeResponse::errcode(40003);
    };
    let mut answer = json!({
        "openid": user.openid,
        "nickname": user.nickname,
        "sex": user.sex,
        "province": user.province,
        "city": user.city,
        "country": user.country,
        "headimgurl": user.headimgurl,
        "privilege": user.privilege,
    });
    if let Some(unionid) = &user.unionid {
        answer["unionid"] = json!(unionid);
    }
    FakeResponse::json(answer)
}

fn auth(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    let sns = lock(&state.sns);
    match sns.check_access_token(param(req, "access_token"), param(req, "openid")) {
        Ok(_) => FakeResponse::json(json!({"errcode": 0, "errmsg": "ok"})),
        Err(code) => FakeResponse::errcode(code),
    }
}
