//! The account's IP whitelist: the fake WeChat API refuses every call with the AppSecret or the
//! token from an address not on it (40164, naming the caller, as WeChat does); the token service
//! logs the address to whitelist and keeps it in its outcome, and calls made with a token say it.

use std::net::{IpAddr, Ipv4Addr};

use account::token::{CallError, RefreshOutcome, TOKEN_CHECK_PATH, TokenError};
use testkit::harness::Logs;
use testkit::harness::tokens::*;
use wechat_api::ApiError;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn elsewhere() -> Vec<IpAddr> {
    vec!["203.0.113.7".parse().unwrap()]
}

#[tokio::test]
async fn a_fetch_from_an_address_off_the_whitelist_names_it_in_the_outcome_and_the_log() {
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
    let (service, _clock, fake) = setup(&[]).await;
    fake.set_ip_whitelist(elsewhere());

    let report = service.on_schedule().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::ConfigError {
            errcode: 40164,
            whitelist_ip: Some(LOOPBACK)
        }
    );
    assert_eq!(fake.calls(STABLE), 1, "the refused call is counted");
    let err = service.get().await.unwrap_err();
    assert!(matches!(err, TokenError::NoUsableToken(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "WeChat refused the call from IP 127.0.0.1: add 127.0.0.1 to the IP whitelist"
        ),
        "{text}"
    );
    assert!(text.contains("IP白名单"), "{text}");

    let logged = logs.text();
    let line = logged
        .lines()
        .find(|line| line.contains("WeChat refuses to issue an access_token"))
        .unwrap_or_else(|| panic!("no config_error line: {logged}"));
    assert!(line.contains("whitelist_ip=127.0.0.1"), "{line}");
    assert!(line.contains("add 127.0.0.1 to the IP whitelist"), "{line}");

    // On the whitelist, the same service gets its token.
    fake.set_ip_whitelist(vec![LOOPBACK]);
    assert!(accepted(&fake, &service.get().await.unwrap()));
}

#[tokio::test]
async fn a_call_with_a_token_from_an_address_off_the_whitelist_says_which_ip_to_add() {
    let (service, _clock, fake) = setup(&[]).await;
    let token = service.get().await.unwrap();
    fake.set_ip_whitelist(elsewhere());
    let http = config(&fake, &[]).wechat.client().unwrap();
    let err = http
        .get::<serde_json::Value>(
            TOKEN_CHECK_PATH,
            &[("access_token", token.value.expose().as_str())],
        )
        .await
        .unwrap_err();
    assert_eq!(err.whitelist_ip(), Some(LOOPBACK));
    assert!(matches!(err, ApiError::WeChat { errcode: 40164, .. }));
    assert_eq!(fake.calls(TOKEN_CHECK_PATH), 1);
    let text = CallError::Api(err).to_string();
    assert!(
        text.starts_with("WeChat refused the call from IP 127.0.0.1: add 127.0.0.1"),
        "{text}"
    );
    // The browser's side (here the jweixin script) is no API call: the whitelist does not apply.
    let script = format!(
        "{}{}",
        fake.base_url(),
        testkit::fake_wechat::jweixin::SCRIPT_PATH
    );
    assert_eq!(reqwest::get(&script).await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn a_ticket_fetch_refused_by_the_whitelist_says_which_ip_to_add() {
    let (service, _clock, fake) = setup(&[]).await;
    service.get().await.unwrap();
    fake.set_ip_whitelist(elsewhere());
    let err = service.get_ticket().await.unwrap_err();
    assert!(matches!(err, TokenError::NoUsableTicket(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "WeChat refused the call from IP 127.0.0.1: add 127.0.0.1 to the IP whitelist"
        ),
        "{text}"
    );
    assert_eq!(fake.calls(GETTICKET), 1);
}
