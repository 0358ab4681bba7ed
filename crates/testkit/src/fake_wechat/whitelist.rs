//! The account's IP whitelist (公众号后台 → 设置与开发 → 基本配置 → IP白名单), off unless a test or
//! `LOCAL_FAKE_WECHAT_IP_WHITELIST` sets one. With a whitelist, every call that carries an
//! access_token or the AppSecret from an address not on it is answered as WeChat answers it:
//! HTTP 200 with 40164 and an `errmsg` naming the caller,
//! `invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: …`. The call is counted
//! like any other. The browser-side pages (the consent page, the jweixin script) are not API
//! calls and are never refused.

use std::net::IpAddr;

use super::{FakeRequest, FakeResponse, FakeState, lock};

/// Which callers may use the token and the AppSecret.
#[derive(Debug, Default)]
pub struct Whitelist {
    /// `None`: no whitelist (every caller is served), as for an account that never set one.
    allowed: Option<Vec<IpAddr>>,
    /// Refusals so far, for the `rid` of the next one.
    refused: u64,
}

impl Whitelist {
    /// Allow only `allowed` (an empty list refuses everyone).
    pub fn set(&mut self, allowed: Vec<IpAddr>) {
        self.allowed = Some(allowed.into_iter().map(|ip| ip.to_canonical()).collect());
    }

    /// Serve every caller again.
    pub fn clear(&mut self) {
        self.allowed = None;
    }

    fn allows(&self, caller: IpAddr) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&caller.to_canonical()))
    }
}

/// Parse `LOCAL_FAKE_WECHAT_IP_WHITELIST`'s value: addresses separated by commas.
pub fn parse(list: &str) -> Result<Vec<IpAddr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpAddr>()
                .map_err(|_| format!("{item:?} is not an IP address"))
        })
        .collect()
}

/// WeChat's refusal of `req` from `caller`, when a whitelist is set, `caller` is not on it and
/// the call uses the token or the AppSecret.
pub fn refusal(state: &FakeState, req: &FakeRequest, caller: IpAddr) -> Option<FakeResponse> {
    if !uses_credentials(req) {
        return None;
    }
    let mut whitelist = lock(&state.whitelist);
    if whitelist.allows(caller) {
        return None;
    }
    whitelist.refused += 1;
    let caller = caller.to_canonical();
    let ipv6 = match caller {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_string(),
        IpAddr::V6(v6) => v6.to_string(),
    };
    // WeChat's `rid` is a request id for its support; the fake numbers its refusals.
    let errmsg = format!(
        "invalid ip {caller} ipv6 {ipv6}, not in whitelist rid: fa4e{:04x}-{:08x}",
        whitelist.refused % 0x10000,
        whitelist.refused
    );
    Some(FakeResponse::json(
        serde_json::json!({ "errcode": 40164, "errmsg": errmsg }),
    ))
}

/// An API call made with an access_token (query) or the AppSecret (query, or the stable token's
/// JSON body).
fn uses_credentials(req: &FakeRequest) -> bool {
    ["access_token", "secret", "appsecret"]
        .iter()
        .any(|name| req.query.contains_key(*name))
        || req.json().get("secret").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_parses_and_mapped_addresses_match_their_ipv4_form() {
        let allowed = parse(" 203.0.113.7, ::1 ,").unwrap();
        assert_eq!(allowed.len(), 2);
        assert!(parse("203.0.113.7, example.com").is_err());
        let mut whitelist = Whitelist::default();
        assert!(whitelist.allows("127.0.0.1".parse().unwrap()));
        whitelist.set(allowed);
        assert!(whitelist.allows("::ffff:203.0.113.7".parse().unwrap()));
        assert!(!whitelist.allows("127.0.0.1".parse().unwrap()));
        whitelist.clear();
        assert!(whitelist.allows("127.0.0.1".parse().unwrap()));
    }
}
