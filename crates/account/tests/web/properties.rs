//! Property tests (proptest, a fixed number of cases each so that `make test` stays fast) of what
//! web authorization reads from the browser: `return_to` (and the origins in it), the session
//! cookie, the `state` parameter, the binding cookie and the stored state item never panic on
//! arbitrary input; an accepted `return_to` is a same-site path or on an allowed origin; a
//! session cookie round-trips (sign → parse) and no single-character edit of one ever parses.

use account::oauth::binding::{binding_hash, binding_matches, is_well_formed_state};
use account::oauth::session::{Session, SessionCodec};
use account::oauth::state::StateItem;
use account::oauth::{ReturnTo, Scope};
use proptest::prelude::*;
use wechat_protocol::origin::Origin;
use wechat_protocol::secret::Secret;

/// Cases per property; the whole file runs in about a second.
const CASES: u32 = 256;

const KEY: &str = "proptest-session-key-0123456789abcdef";
const NOW: i64 = 1_800_000_000;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

fn codec() -> SessionCodec {
    SessionCodec::new(Secret::new(KEY.as_bytes().to_vec()), 7 * 24 * 3600)
}

fn allowed() -> Vec<Origin> {
    ["https://shop.example", "http://localhost:3000"]
        .iter()
        .map(|o| Origin::parse(o).expect("valid origin"))
        .collect()
}

/// Text built from the pieces URL parsers trip on, far likelier to reach the corners of the
/// `return_to` checks than uniformly random text.
fn urlish() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        prop::sample::select(vec![
            "/",
            "//",
            "\\",
            "%",
            "%2F",
            "%252F",
            "%5C",
            "%09",
            "%00",
            "%E4%B8%AD",
            "%zz",
            ":",
            "://",
            "@",
            "#",
            "?",
            "&",
            "=",
            "[",
            "]",
            "[::1]",
            ":443",
            ":0",
            ":99999",
            ".",
            "..",
            "-",
            "https",
            "http",
            "HTTPS",
            "javascript:",
            "data:",
            "shop.example",
            "evil.example",
            "localhost",
            "\t",
            "\n",
            " ",
            "页面",
            "\u{202e}",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9]{0,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::Base), Just(Scope::UserInfo)]
}

/// Characters a cookie value can carry, and the ones it should not.
fn tokenish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,60}",
        "[A-Za-z0-9_.=+/-]{0,200}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn return_to_parsing_never_panics_and_accepts_only_paths_and_allowed_origins(
        raw in prop_oneof![urlish(), any::<String>()],
    ) {
        let allowed = allowed();
        let _ = Origin::parse(&raw);
        if let Ok(accepted) = ReturnTo::parse(&raw, &allowed) {
            let value = accepted.as_str();
            prop_assert!(
                lambda_http::http::HeaderValue::from_str(value).is_ok(),
                "not a header value: {:?}", value
            );
            if raw.starts_with('/') {
                prop_assert!(!raw.starts_with("//") && !raw.starts_with("/\\"), "{:?}", raw);
            } else {
                let (scheme, rest) = raw.split_once("://").expect("absolute URL");
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let origin = Origin::parse(&format!("{scheme}://{}", &rest[..end]));
                prop_assert!(
                    origin.as_ref().is_ok_and(|o| allowed.contains(o)),
                    "{:?} accepted with origin {:?}", raw, origin
                );
            }
        }
    }

    #[test]
    fn session_cookie_parsing_never_panics(token in tokenish(), now in any::<i64>()) {
        let _ = codec().decode(&token, now);
    }

    #[test]
    fn state_and_binding_parsing_never_panic(
        state in prop_oneof!["[0-9a-f]{64}", "[0-9a-fA-F]{0,70}", any::<String>()],
        binding in prop_oneof!["[A-Za-z0-9_-]{43}", any::<String>()],
    ) {
        if is_well_formed_state(&state) {
            prop_assert!(state.len() == 64 && state.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        let hash = binding_hash(&binding);
        let _ = binding_matches(Some(&state), &hash);
        let _ = binding_matches(Some(&binding), &state);
    }

    #[test]
    fn a_stored_state_item_of_any_shape_reads_without_panicking(
        json in prop_oneof![
            any::<String>(),
            (
                prop::sample::select(vec!["pending", "consumed", "completed", "done", ""]),
                prop::option::of("[a-zA-Z0-9_-]{0,28}"),
                any::<i64>(),
                any::<u8>(),
                prop::sample::select(vec!["snsapi_base", "snsapi_userinfo", "snsapi_login"]),
            ).prop_map(|(status, openid, expires, attempt, scope)| {
                let mut item = serde_json::json!({
                    "browser_hash": "h", "scope": scope, "return_to": "/", "attempt": attempt,
                    "created_at_s": 0, "expires_at_s": expires, "status": status,
                });
                if let Some(openid) = openid {
                    item["openid"] = openid.into();
                }
                item.to_string()
            }),
        ],
        now in any::<i64>(),
    ) {
        if let Ok(item) = serde_json::from_str::<StateItem>(&json) {
            let _ = item.into_state("ab", now);
        }
    }

    #[test]
    fn a_session_cookie_round_trips_until_it_expires(
        openid in "[A-Za-z0-9_-]{1,40}|\\PC{1,20}",
        scope in scope(),
        issued_at_s in -1_000_000_000_000i64..4_000_000_000_000,
        age in 0i64..7 * 24 * 3600,
        epoch in any::<u64>(),
    ) {
        let codec = codec();
        let session: Session = codec.issue(&openid, scope, issued_at_s).in_epoch(epoch);
        let token = codec.encode(&session);
        prop_assert_eq!(codec.decode(&token, issued_at_s + age), Ok(session.clone()));
        prop_assert!(codec.decode(&token, session.expires_at_s).is_err());
    }

    #[test]
    fn no_single_character_edit_of_a_session_cookie_parses(
        openid in "[A-Za-z0-9_-]{1,40}",
        scope in scope(),
        epoch in 0u64..5,
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>()
        ),
        edit in 0u8..3,
    ) {
        let codec = codec();
        let token = codec.encode(&codec.issue(&openid, scope, NOW).in_epoch(epoch));
        let mut chars: Vec<char> = token.chars().collect();
        let at = position.index(chars.len());
        match edit {
            0 => {
                prop_assume!(chars[at] != replacement);
                chars[at] = replacement;
            }
            1 => {
                chars.remove(at);
            }
            _ => chars.insert(at, replacement),
        }
        let tampered: String = chars.into_iter().collect();
        prop_assert!(
            codec.decode(&tampered, NOW).is_err(),
            "{:?} (from {:?}) parsed", tampered, token
        );
    }
}
