//! `POST /wechat` never refuses an authenticated push for its details: every real sample of
//! every message type and event, with each detail element (leaf or block) removed in turn, and
//! with each detail value replaced by one of an unexpected shape, gets a 200 and the reply its
//! type and event call for. Only the envelope may be missing for a 400.

use crate::common::*;
use account::webhook::Webhook;
use lambda_http::http::StatusCode;
use wechat_protocol::message::{Event, Message, MessageKind};
use wechat_protocol::xml::Fields;

/// The envelope: the only elements whose absence is a 400.
const ENVELOPE: &[&str] = &[
    "xml",
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
];

/// Elements the example rules read: without them a different rule of the same type may answer.
const MATCHED_ON: &[&str] = &["Content", "EventKey"];

/// One element of a sample: its name and the byte range from `<Name` to the end of `</Name>`.
struct Element {
    name: String,
    range: std::ops::Range<usize>,
    /// The range of its text when it is a leaf (CDATA markers included).
    text: Option<std::ops::Range<usize>>,
}

/// Every element of a well-formed sample (no attributes, no same-name nesting), in order.
fn elements(xml: &str) -> Vec<Element> {
    let mut found = Vec::new();
    for (start, _) in xml.match_indices('<') {
        let rest = &xml[start + 1..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let name_len = rest
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .expect("a closed tag");
        let name = &rest[..name_len];
        let open_end = start + 1 + rest.find('>').expect("a closed tag") + 1;
        if xml[..open_end].ends_with("/>") {
            found.push(Element {
                name: name.to_string(),
                range: start..open_end,
                text: None,
            });
            continue;
        }
        let close = format!("</{name}>");
        let close_at = open_end + xml[open_end..].find(&close).expect("a closing tag");
        let inner = &xml[open_end..close_at];
        let is_leaf = !inner.replace("<![CDATA[", "").contains('<');
        found.push(Element {
            name: name.to_string(),
            range: start..close_at + close.len(),
            text: is_leaf.then_some(open_end..close_at),
        });
    }
    found
}

/// A rules webhook with the example rules and a recording one, both at the fixtures' time.
struct Webhooks {
    rules: Webhook,
    recorder: Recorder,
    recording: Webhook<Recorder>,
}

fn webhooks() -> Webhooks {
    let path = format!("{}/rules/example.toml", env!("CARGO_MANIFEST_DIR"));
    let recorder = Recorder::default();
    Webhooks {
        rules: at(
            Webhook::from_env(&[("WECHAT_TOKEN", TOKEN), ("WECHAT_REPLY_RULES", &path)])
                .expect("example rules"),
            FIXTURE_TIME,
        ),
        recording: at(
            Webhook::new(plaintext_config(), recorder.clone()),
            FIXTURE_TIME,
        ),
        recorder,
    }
}

/// What came back and what the handler saw for one posted body.
struct Outcome {
    status: StatusCode,
    body: String,
    seen: Option<Message>,
}

impl Webhooks {
    async fn post(&self, xml: &str) -> Outcome {
        let response = self
            .rules
            .message(&signed_post(TOKEN, FIXTURE_TIME, xml))
            .await;
        let recorded = self
            .recording
            .message(&signed_post(TOKEN, FIXTURE_TIME, xml))
            .await;
        assert_eq!(recorded.status(), response.status());
        Outcome {
            status: response.status(),
            body: body(&response),
            seen: self
                .recorder
                .last()
                .filter(|_| recorded.status() == StatusCode::OK),
        }
    }
}

fn reply_type(body: &str) -> String {
    if body == "success" {
        return body.to_string();
    }
    let reply = Fields::parse(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(
        reply.get("ToUserName"),
        Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        "{body}"
    );
    reply.get("MsgType").unwrap_or_default().to_string()
}

fn is_raw(kind: &MessageKind) -> bool {
    matches!(
        kind,
        MessageKind::Unknown | MessageKind::Event(Event::Unknown { .. })
    )
}

/// Checks one changed sample against the answer to the complete one; `lost` is how many
/// fields the change took away.
fn check(name: &str, change: &str, touched: &str, lost: usize, whole: &Outcome, changed: &Outcome) {
    let case = format!("{name} {change} {touched}");
    assert_eq!(changed.status, StatusCode::OK, "{case}: {}", changed.body);
    if MATCHED_ON.contains(&touched) {
        assert_eq!(reply_type(&changed.body), reply_type(&whole.body), "{case}");
    } else {
        assert_eq!(changed.body, whole.body, "{case}");
    }
    let (Some(seen), Some(full)) = (&changed.seen, &whole.seen) else {
        panic!("{case}: no message reached the handler");
    };
    assert_eq!(seen.msg_type, full.msg_type, "{case}");
    assert_eq!(seen.known_type, full.known_type, "{case}");
    assert_eq!(seen.event_name(), full.event_name(), "{case}");
    assert_eq!(seen.known_event, full.known_event, "{case}");
    // Raw exactly when the details were unreadable, and then the reason is kept.
    if seen.known_type.is_some() && (seen.event_name().is_none() || seen.known_event.is_some()) {
        assert_eq!(is_raw(&seen.kind), seen.detail_error.is_some(), "{case}");
    }
    // Every field still present reaches the handler (a list emptied of its only item becomes
    // one empty field more).
    assert!(
        seen.fields.len() + lost >= full.fields.len(),
        "{case}: {:?}",
        seen.fields
    );
}

/// How many fields (leaf elements) `xml` holds.
fn leaves(xml: &str) -> usize {
    elements(xml)
        .iter()
        .filter(|e| e.text.is_some() || xml[e.range.clone()].ends_with("/>"))
        .count()
}

#[tokio::test]
async fn every_type_and_event_with_any_detail_removed_gets_200_and_the_reply_of_its_type() {
    let hooks = webhooks();
    let mut degraded = 0;
    let mut cases = 0;
    for (name, xml) in samples() {
        let whole = hooks.post(&xml).await;
        assert_eq!(whole.status, StatusCode::OK, "{name}");
        assert!(
            whole
                .seen
                .as_ref()
                .is_some_and(|m| m.detail_error.is_none()),
            "{name}"
        );
        for element in elements(&xml) {
            if ENVELOPE.contains(&element.name.as_str()) {
                continue;
            }
            let mut without = xml.clone();
            without.replace_range(element.range.clone(), "");
            let changed = hooks.post(&without).await;
            let lost = leaves(&xml[element.range.clone()]);
            check(&name, "without", &element.name, lost, &whole, &changed);
            cases += 1;
            degraded += usize::from(changed.seen.is_some_and(|m| m.detail_error.is_some()));
        }
    }
    // Sanity: the table covered the samples and exercised the fallback.
    assert!(cases > 100, "{cases} cases");
    assert!(degraded > 30, "{degraded} of {cases} degraded");
}

#[tokio::test]
async fn every_detail_value_of_an_unexpected_shape_gets_200_and_the_reply_of_its_type() {
    let hooks = webhooks();
    let mut degraded = 0;
    for (name, xml) in samples() {
        let whole = hooks.post(&xml).await;
        for element in elements(&xml) {
            let Some(text) = element.text.clone() else {
                continue;
            };
            if ENVELOPE.contains(&element.name.as_str()) {
                continue;
            }
            let mut odd = xml.clone();
            odd.replace_range(text, "<![CDATA[not a number: 1,5 ]]>");
            let changed = hooks.post(&odd).await;
            check(
                &name,
                "with an odd value in",
                &element.name,
                0,
                &whole,
                &changed,
            );
            degraded += usize::from(changed.seen.is_some_and(|m| m.detail_error.is_some()));
        }
    }
    // Coordinates, scales, precisions and counts do not parse any more.
    assert!(degraded >= 15, "{degraded} degraded");
}

#[tokio::test]
async fn a_degraded_message_still_meets_the_rules_of_its_type_and_event() {
    let hooks = webhooks();
    // A location message whose coordinates are missing: the `msg_type = "location"` rule.
    let location = sample("location").replace("<Location_X>23.134521</Location_X>", "");
    let outcome = hooks.post(&location).await;
    assert_eq!(outcome.status, StatusCode::OK);
    let reply = Fields::parse(&outcome.body).unwrap();
    assert_eq!(reply.get("Content"), Some("Thanks, we got your location."));
    let seen = outcome.seen.unwrap();
    assert_eq!(seen.kind, MessageKind::Unknown);
    assert!(
        seen.detail_error
            .unwrap()
            .to_string()
            .contains("Location_X")
    );

    // A menu click that lost nothing the rules read but had an odd extra block: still matched.
    let click = sample("event_click").replace(
        "</xml>",
        "<SendPicsInfo><Count>x</Count></SendPicsInfo></xml>",
    );
    let reply = Fields::parse(&hooks.post(&click).await.body).unwrap();
    assert_eq!(
        reply.get("Content"),
        Some("Today's music: https://example.com/today")
    );
}

#[tokio::test]
async fn a_push_missing_any_envelope_field_is_still_a_400() {
    let hooks = webhooks();
    for (name, xml) in [
        ("text", sample("text")),
        ("event_click", sample("event_click")),
    ] {
        for element in elements(&xml) {
            if element.name == "xml" || !ENVELOPE.contains(&element.name.as_str()) {
                continue;
            }
            let mut without = xml.clone();
            without.replace_range(element.range.clone(), "");
            let outcome = hooks.post(&without).await;
            assert_eq!(
                outcome.status,
                StatusCode::BAD_REQUEST,
                "{name} {}",
                element.name
            );
            assert!(outcome.body.contains(&element.name), "{}", outcome.body);
        }
    }
}
