//! Reply rules: the TOML file an account owner edits to decide passive replies without writing
//! Rust, parsed and validated once at start-up, and the matching that picks a reply.
//!
//! Rules name message types and events in the vocabulary of [`wechat_protocol::message`] and match on the
//! parsed type, so a message whose details could not be read still meets its rules. A rule's
//! `reply` is an [`Action`]: a [`Reply`], in the schema `reply` defines, or `type = "forward"`
//! to the account's own service ([`ForwardSpec`], checked here, run by the `forward` module).
//!
//! Matching, for one message:
//! - unknown message types and events: `success`, always;
//! - events: the first `event` rule (in file order) whose event name matches and, when it has
//!   an `event_key`, whose key matches; else `welcome` for a subscribe; else `success`.
//!   For subscribe, `event_key` matches the scene with or without the `qrscene_` prefix, so one
//!   key serves both the scan-subscribe and the SCAN of an existing follower;
//! - text: the first `keyword` rule equal to the content, then the first `contains` rule found
//!   in it (both after trimming, ignoring case), so exact beats contains;
//! - then the first `msg_type` rule for the message's type; then `default`; then `success`.
//!
//! Events never fall back to `default`: location reports and job notifications would get a
//! reply nobody reads.

use std::future::Future;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use wechat_protocol::message::{EventType, Message, MessageKind, MsgType};
use wechat_protocol::reply::{MessageHandler, Reply};

use crate::config::{ConfigError, Env, optional};

/// The environment variable naming the rules file.
mod forward_spec;

use crate::config::vars::WECHAT_REPLY_RULES;

pub use forward_spec::{DEFAULT_TIMEOUT_MS, ForwardSpec, MAX_TIMEOUT_MS};

/// The rules used when `WECHAT_REPLY_RULES` is unset.
pub const BUNDLED_DEFAULT: &str = include_str!("../rules/default.toml");

/// Why a rules file was refused: where in the file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid TOML: {0}")]
    Toml(String),
    #[error("{at}: {problem}")]
    Invalid { at: String, problem: String },
}

/// What a rule does with a message it matches, written as the rule's `reply` table (or as
/// `welcome` / `default`): a passive [`Reply`], or `type = "forward"` with `url` and
/// `timeout_ms` (default 3500): the account's own service decides, told apart by the same
/// `type` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    Forward(ForwardSpec),
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Forward {
            #[serde(rename = "type")]
            _kind: String,
            url: String,
            #[serde(default = "default_timeout_ms")]
            timeout_ms: u64,
        }
        fn default_timeout_ms() -> u64 {
            DEFAULT_TIMEOUT_MS
        }
        // Buffered once, so the `type` decides which schema applies (serde buffers a tagged
        // enum the same way, so errors keep the table's position).
        let value = serde_json::Value::deserialize(deserializer)?;
        let Tag { kind } = Tag::deserialize(&value).map_err(D::Error::custom)?;
        if kind.as_deref().map(str::trim) == Some("forward") {
            let Forward {
                url, timeout_ms, ..
            } = Forward::deserialize(value).map_err(D::Error::custom)?;
            return Ok(Self::Forward(ForwardSpec {
                url: url.trim().to_string(),
                timeout_ms,
            }));
        }
        // serde's own message would list the passive replies only, not `forward`.
        if let Some(kind) = kind.as_deref().map(str::trim)
            && !Reply::TYPES.contains(&kind)
        {
            return Err(D::Error::custom(format!(
                "unknown reply type {kind:?}, expected one of: {}, forward",
                Reply::TYPES.join(", ")
            )));
        }
        // Through the trait, which checks the reply (see `Reply`).
        <Reply as Deserialize>::deserialize(value)
            .map(Self::Reply)
            .map_err(D::Error::custom)
    }
}

impl Action {
    /// What the reply rules need checked beyond the schema: a forward's URL and budget.
    fn check(&self, at: &str) -> Result<(), RulesError> {
        match self {
            Self::Reply(_) => Ok(()),
            Self::Forward(spec) => spec.check().map_err(|problem| RulesError::Invalid {
                at: at.to_string(),
                problem,
            }),
        }
    }
}

/// Validated reply rules, ready to match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    welcome: Option<Action>,
    default: Option<Action>,
    /// Lowercased keyword and its action, in file order.
    exact: Vec<(String, Action)>,
    contains: Vec<(String, Action)>,
    events: Vec<EventRule>,
    msg_types: Vec<(MsgType, Action)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EventRule {
    event: EventType,
    event_key: Option<String>,
    action: Action,
}

impl Rules {
    /// The bundled default rules (a welcome text and a reply to any text message).
    pub fn bundled() -> Result<Self, RulesError> {
        Self::from_toml(BUNDLED_DEFAULT)
    }

    /// The rules file at `path`.
    pub fn load(path: &str) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text)
    }

    /// The file named by `WECHAT_REPLY_RULES`, or the bundled default when it is unset.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        match optional(env, WECHAT_REPLY_RULES) {
            Some(path) => Self::load(&path)
                .map_err(|e| ConfigError::new(WECHAT_REPLY_RULES, format!("{path}: {e}"))),
            None => Self::bundled().map_err(|e| {
                ConfigError::new(WECHAT_REPLY_RULES, format!("bundled default rules: {e}"))
            }),
        }
    }

    /// Parses and checks a rules file. Replies are checked as they are read (so their errors
    /// carry the TOML position); what ties a rule together is checked per rule (`rule N`).
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
        for (action, at) in [(&file.welcome, "welcome"), (&file.default, "default")] {
            action.as_ref().map_or(Ok(()), |a| a.check(at))?;
        }
        let mut rules = Rules {
            welcome: file.welcome,
            default: file.default,
            ..Rules::default()
        };
        for (index, spec) in file.rules.into_iter().enumerate() {
            rules.add(spec, &format!("rule {}", index + 1))?;
        }
        Ok(rules)
    }

    fn add(&mut self, spec: RuleSpec, at: &str) -> Result<(), RulesError> {
        let invalid = |problem: &str| RulesError::Invalid {
            at: at.to_string(),
            problem: problem.to_string(),
        };
        let matchers = [
            spec.keyword.is_some(),
            spec.contains.is_some(),
            spec.event.is_some(),
            spec.msg_type.is_some(),
        ];
        if matchers.iter().filter(|&&set| set).count() != 1 {
            return Err(invalid(
                "needs exactly one of keyword, contains, event or msg_type",
            ));
        }
        if spec.event_key.is_some() && spec.event.is_none() {
            return Err(invalid("event_key is only allowed together with event"));
        }
        let action = spec.reply;
        action.check(at)?;
        if let Some(keywords) = spec.keyword {
            for keyword in keywords.normalized(at)? {
                self.exact.push((keyword, action.clone()));
            }
        } else if let Some(keywords) = spec.contains {
            for keyword in keywords.normalized(at)? {
                self.contains.push((keyword, action.clone()));
            }
        } else if let Some(event) = spec.event {
            let Some(event) = EventType::from_wire(&event) else {
                return Err(invalid(&format!(
                    "unknown event {:?} (known: {})",
                    event.trim(),
                    names(EventType::ALL.iter())
                )));
            };
            self.events.push(EventRule {
                event,
                event_key: spec.event_key.map(|k| k.trim().to_string()),
                action,
            });
        } else if let Some(msg_type) = spec.msg_type {
            let user_types = MsgType::ALL.iter().filter(|t| **t != MsgType::Event);
            match MsgType::from_wire(&msg_type) {
                Some(known) if known != MsgType::Event => self.msg_types.push((known, action)),
                _ => {
                    return Err(invalid(&format!(
                        "unknown msg_type {:?} (known: {}; match events with `event`)",
                        msg_type.trim().to_ascii_lowercase(),
                        names(user_types)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The `event_key` of every rule for `event`, in file order (`None`: the rule matches any
    /// key); the custom menu's cross-check reads the CLICK rules.
    pub fn event_keys(&self, event: EventType) -> impl Iterator<Item = Option<&str>> {
        self.events
            .iter()
            .filter(move |rule| rule.event == event)
            .map(|rule| rule.event_key.as_deref())
    }

    /// The action the rules take for `msg` (see the module docs for the order); `None` means
    /// the answer is `success`.
    pub fn action_for(&self, msg: &Message) -> Option<&Action> {
        match (msg.known_type?, msg.known_event) {
            (MsgType::Event, Some(event)) => self.action_for_event(event, msg),
            // An event this code does not know.
            (MsgType::Event, None) => None,
            (msg_type, _) => {
                let by_content = match &msg.kind {
                    MessageKind::Text { content } => self.action_for_text(content),
                    _ => None,
                };
                by_content
                    .or_else(|| {
                        self.msg_types
                            .iter()
                            .find(|(rule_type, _)| *rule_type == msg_type)
                            .map(|(_, action)| action)
                    })
                    .or(self.default.as_ref())
            }
        }
    }

    /// The reply the rules give `msg` (see the module docs for the order). A forward rule needs
    /// the forwarding context (`forward::ForwardingRules`); here it answers `success`.
    pub fn reply_for(&self, msg: &Message) -> Reply {
        match self.action_for(msg) {
            Some(Action::Reply(reply)) => reply.clone(),
            Some(Action::Forward(spec)) => {
                tracing::error!(
                    url = %spec.url,
                    "a forward rule matched but forwarding is not set up; answered success"
                );
                Reply::Success
            }
            None => Reply::Success,
        }
    }

    /// Whether any rule (or `welcome`, `default`) forwards: only then does the message function
    /// need the table, the worker and their AWS clients.
    pub fn has_forward(&self) -> bool {
        self.actions()
            .any(|action| matches!(action, Action::Forward(_)))
    }

    /// Every forward action of the rules: the only services the worker forwards to.
    pub fn forward_specs(&self) -> Vec<ForwardSpec> {
        self.actions()
            .filter_map(|action| match action {
                Action::Forward(spec) => Some(spec.clone()),
                _ => None,
            })
            .collect()
    }

    /// The URLs the forward rules call, each once, in file order (welcome and default first).
    pub fn forward_urls(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = Vec::new();
        for action in self.actions() {
            if let Action::Forward(spec) = action
                && !urls.contains(&spec.url.as_str())
            {
                urls.push(&spec.url);
            }
        }
        urls
    }

    /// Every rule's action: welcome, default, keywords, events, message types.
    fn actions(&self) -> impl Iterator<Item = &Action> {
        self.welcome
            .iter()
            .chain(self.default.iter())
            .chain(self.exact.iter().chain(&self.contains).map(|(_, a)| a))
            .chain(self.events.iter().map(|rule| &rule.action))
            .chain(self.msg_types.iter().map(|(_, a)| a))
    }

    fn action_for_text(&self, content: &str) -> Option<&Action> {
        let content = content.trim().to_lowercase();
        self.exact
            .iter()
            .find(|(keyword, _)| *keyword == content)
            .or_else(|| {
                self.contains
                    .iter()
                    .find(|(keyword, _)| content.contains(keyword.as_str()))
            })
            .map(|(_, action)| action)
    }

    fn action_for_event(&self, event: EventType, msg: &Message) -> Option<&Action> {
        let raw_key = msg.event_key().unwrap_or_default().trim();
        // Read from the raw key, so that a subscribe with unreadable details still matches.
        let scene = match event {
            EventType::Subscribe => raw_key.strip_prefix("qrscene_"),
            _ => None,
        };
        let key_matches = |wanted: &str| wanted == raw_key || Some(wanted) == scene;
        let matched = self
            .events
            .iter()
            .find(|rule| rule.event == event && rule.event_key.as_deref().is_none_or(key_matches));
        match (matched, event) {
            (Some(rule), _) => Some(&rule.action),
            (None, EventType::Subscribe) => self.welcome.as_ref(),
            (None, _) => None,
        }
    }
}

/// `a, b, c`: the names a rule may use, for error messages.
fn names<T: std::fmt::Display>(all: impl Iterator<Item = T>) -> String {
    all.map(|name| name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl MessageHandler for Rules {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send {
        std::future::ready(self.reply_for(msg))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    welcome: Option<Action>,
    default: Option<Action>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    keyword: Option<OneOrMany>,
    contains: Option<OneOrMany>,
    event: Option<String>,
    event_key: Option<String>,
    msg_type: Option<String>,
    reply: Action,
}

/// `keyword = "help"` or `keyword = ["help", "帮助"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn normalized(self, at: &str) -> Result<Vec<String>, RulesError> {
        let keywords = match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        };
        if keywords.is_empty() || keywords.iter().any(|k| k.trim().is_empty()) {
            return Err(RulesError::Invalid {
                at: at.to_string(),
                problem: "keywords must not be empty".to_string(),
            });
        }
        Ok(keywords.iter().map(|k| k.trim().to_lowercase()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml_fields: &str) -> Message {
        let xml = format!(
            "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>{xml_fields}</xml>"
        );
        Message::parse(xml.as_bytes()).unwrap()
    }

    fn text(content: &str) -> Message {
        message(&format!(
            "<MsgType>text</MsgType><Content><![CDATA[{content}]]></Content>"
        ))
    }

    fn event(name: &str, key: &str) -> Message {
        message(&format!(
            "<MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey>"
        ))
    }

    fn content(reply: Reply) -> String {
        match reply {
            Reply::Text { content } => content,
            other => format!("<{}>", other.msg_type()),
        }
    }

    const RULES: &str = r#"
        [welcome]
        type = "text"
        content = "welcome"

        [default]
        type = "text"
        content = "default"

        [[rules]]
        contains = "price"
        reply = { type = "text", content = "contains price" }

        [[rules]]
        keyword = ["Price list", "价目表"]
        reply = { type = "text", content = "exact price list" }

        [[rules]]
        keyword = "price list"
        reply = { type = "text", content = "second exact" }

        [[rules]]
        contains = "pri"
        reply = { type = "text", content = "second contains" }

        [[rules]]
        event = "CLICK"
        event_key = "V1001"
        reply = { type = "text", content = "click V1001" }

        [[rules]]
        event = "click"
        reply = { type = "text", content = "any click" }

        [[rules]]
        event = "subscribe"
        event_key = "promo"
        reply = { type = "text", content = "promo subscribe" }

        [[rules]]
        event = "SCAN"
        event_key = "promo"
        reply = { type = "text", content = "promo scan" }

        [[rules]]
        msg_type = "image"
        reply = { type = "text", content = "nice picture" }
    "#;

    fn rules() -> Rules {
        Rules::from_toml(RULES).unwrap()
    }

    #[test]
    fn exact_keywords_beat_contains_even_when_listed_later() {
        assert_eq!(
            content(rules().reply_for(&text("  PRICE LIST "))),
            "exact price list"
        );
        assert_eq!(
            content(rules().reply_for(&text("价目表"))),
            "exact price list"
        );
    }

    #[test]
    fn within_a_class_the_first_rule_in_file_order_wins() {
        assert_eq!(
            content(rules().reply_for(&text("what price?"))),
            "contains price"
        );
        assert_eq!(
            content(rules().reply_for(&text("pricing"))),
            "second contains"
        );
    }

    #[test]
    fn unmatched_user_messages_get_the_msg_type_rule_or_the_default() {
        assert_eq!(content(rules().reply_for(&text("hello"))), "default");
        let image = message("<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId>");
        assert_eq!(content(rules().reply_for(&image)), "nice picture");
        let link = message("<MsgType>link</MsgType><Title>t</Title>");
        assert_eq!(content(rules().reply_for(&link)), "default");
    }

    #[test]
    fn event_rules_match_name_and_key_in_file_order() {
        assert_eq!(
            content(rules().reply_for(&event("CLICK", "V1001"))),
            "click V1001"
        );
        assert_eq!(
            content(rules().reply_for(&event("CLICK", "OTHER"))),
            "any click"
        );
    }

    #[test]
    fn subscribe_gets_the_scene_rule_or_else_the_welcome() {
        assert_eq!(
            content(rules().reply_for(&event("subscribe", "qrscene_promo"))),
            "promo subscribe"
        );
        assert_eq!(
            content(rules().reply_for(&event("subscribe", ""))),
            "welcome"
        );
        assert_eq!(
            content(rules().reply_for(&event("subscribe", "qrscene_other"))),
            "welcome"
        );
        assert_eq!(
            content(rules().reply_for(&event("SCAN", "promo"))),
            "promo scan"
        );
    }

    #[test]
    fn events_without_a_rule_and_unknown_kinds_get_success_not_the_default() {
        assert_eq!(
            rules().reply_for(&event("VIEW", "https://x")),
            Reply::Success
        );
        assert_eq!(rules().reply_for(&event("unsubscribe", "")), Reply::Success);
        assert_eq!(
            rules().reply_for(&event("brand_new_event", "")),
            Reply::Success
        );
        let unknown = message("<MsgType>miniprogrampage</MsgType>");
        assert_eq!(rules().reply_for(&unknown), Reply::Success);
    }

    #[test]
    fn messages_with_unreadable_details_still_meet_the_rules_of_their_type_and_event() {
        let image = message("<MsgType>IMAGE</MsgType><PicUrl>u</PicUrl>");
        assert!(image.detail_error.is_some());
        assert_eq!(content(rules().reply_for(&image)), "nice picture");
        let click = event("click", "V1001").fields.clone();
        let mut click = Message::from_fields(click).unwrap();
        click.kind = MessageKind::Event(wechat_protocol::message::Event::Unknown {
            name: "click".into(),
        });
        assert_eq!(content(rules().reply_for(&click)), "click V1001");
        let subscribe = message(
            "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_promo</EventKey>",
        );
        assert_eq!(content(rules().reply_for(&subscribe)), "promo subscribe");
    }

    #[test]
    fn a_matched_rule_yields_its_action_and_no_match_yields_none() {
        assert_eq!(
            rules().action_for(&text("价目表")),
            Some(&Action::Reply(Reply::text("exact price list")))
        );
        assert_eq!(rules().action_for(&event("VIEW", "https://x")), None);
    }

    #[test]
    fn a_bad_reply_anywhere_is_refused_with_its_line_and_problem() {
        let toml = "[[rules]]\nkeyword = \"a\"\nreply = { type = \"text\", content = \"\" }\n";
        let err = Rules::from_toml(toml).unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("content must not be empty"),
            "{err}"
        );
        let toml = "[[rules]]\nmsg_type = \"text\"\n[rules.reply]\ntype = \"news\"\n[[rules.reply.articles]]\ntitle = \"t\"\nurl = \" \"\n";
        let err = Rules::from_toml(toml).unwrap_err().to_string();
        assert!(err.contains("article url must not be empty"), "{err}");
    }

    #[test]
    fn unknown_names_are_listed_from_the_one_vocabulary() {
        let err = Rules::from_toml("[[rules]]\nevent = \"CLIK\"\nreply = { type = \"success\" }")
            .unwrap_err()
            .to_string();
        for event in EventType::ALL {
            assert!(err.contains(event.as_str()), "{err}");
        }
        let err =
            Rules::from_toml("[[rules]]\nmsg_type = \"event\"\nreply = { type = \"success\" }")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("shortvideo") && err.contains("match events with `event`"),
            "{err}"
        );
    }

    #[test]
    fn without_default_or_welcome_the_answer_is_success() {
        let empty = Rules::from_toml("").unwrap();
        assert_eq!(empty.reply_for(&text("hi")), Reply::Success);
        assert_eq!(empty.reply_for(&event("subscribe", "")), Reply::Success);
    }

    #[test]
    fn the_bundled_default_welcomes_followers_and_answers_text() {
        let rules = Rules::bundled().unwrap();
        assert!(matches!(
            rules.reply_for(&event("subscribe", "")),
            Reply::Text { .. }
        ));
        assert!(matches!(
            rules.reply_for(&text("anything")),
            Reply::Text { .. }
        ));
    }

    #[test]
    fn invalid_files_are_refused_with_the_place_and_problem() {
        let cases = [
            (
                "[[rules]]\nreply = { type = \"text\", content = \"x\" }",
                "rule 1",
                "exactly one",
            ),
            (
                "[[rules]]\nkeyword = \"a\"\nevent = \"CLICK\"\nreply = { type = \"text\", content = \"x\" }",
                "rule 1",
                "exactly one",
            ),
            (
                "[[rules]]\nkeyword = \"a\"\nevent_key = \"k\"\nreply = { type = \"text\", content = \"x\" }",
                "rule 1",
                "event_key",
            ),
            (
                "[[rules]]\nevent = \"CLIK\"\nreply = { type = \"success\" }",
                "rule 1",
                "CLIK",
            ),
            (
                "[[rules]]\nmsg_type = \"event\"\nreply = { type = \"success\" }",
                "rule 1",
                "event",
            ),
            (
                "[[rules]]\nkeyword = []\nreply = { type = \"success\" }",
                "rule 1",
                "empty",
            ),
            (
                "[welcome]\ntype = \"text\"\ncontent = \" \"",
                "welcome",
                "content",
            ),
            (
                "[default]\ntype = \"image\"\nmedia_id = \"\"",
                "default",
                "media_id",
            ),
        ];
        for (toml, at, problem) in cases {
            let err = Rules::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(at) && err.contains(problem), "{toml}: {err}");
        }
    }

    #[test]
    fn syntax_errors_typos_and_unknown_reply_types_are_refused() {
        for toml in [
            "[welcome\n",
            "[welcome]\ntype = \"txt\"\ncontent = \"x\"",
            "[welcome]\ntype = \"text\"\ncontnet = \"x\"",
            "[defaults]\ntype = \"text\"\ncontent = \"x\"",
        ] {
            assert!(
                matches!(Rules::from_toml(toml), Err(RulesError::Toml(_))),
                "{toml}"
            );
        }
    }

    #[test]
    fn an_unknown_reply_type_is_refused_with_every_type_including_forward() {
        let err = Rules::from_toml("[welcome]\ntype = \"txt\"\ncontent = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown reply type \"txt\""), "{err}");
        for kind in Reply::TYPES.iter().chain(&["forward"]) {
            assert!(err.contains(kind), "{kind} missing: {err}");
        }
    }

    #[test]
    fn a_news_reply_with_nine_articles_is_refused() {
        let articles = "[[default.articles]]\ntitle = \"t\"\nurl = \"https://x\"\n".repeat(9);
        let err = Rules::from_toml(&format!("[default]\ntype = \"news\"\n{articles}")).unwrap_err();
        assert!(err.to_string().contains("at most 8"), "{err}");
    }

    #[test]
    fn the_example_file_loads_and_every_reply_type_renders() {
        let rules = Rules::from_toml(include_str!("../rules/example.toml")).unwrap();
        let cases = [
            (text("help"), "text"),
            (text("image"), "image"),
            (text("voice"), "voice"),
            (text("video"), "video"),
            (text("music"), "music"),
            (text("news"), "news"),
            (text("agent"), "transfer_customer_service"),
            (
                message(
                    "<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>23.1</Latitude><Longitude>113.3</Longitude><Precision>119.4</Precision>",
                ),
                "success",
            ),
        ];
        for (msg, expected) in cases {
            let reply = rules.reply_for(&msg);
            assert_eq!(reply.msg_type(), expected);
            if expected != "success" {
                let xml = reply.answer(&msg, 1).unwrap();
                let fields = wechat_protocol::xml::Fields::parse(&xml).unwrap();
                assert_eq!(fields.get("MsgType"), Some(expected));
                assert_eq!(fields.get("ToUserName"), Some("o"));
            }
        }
    }

    #[test]
    fn a_forward_action_reads_anywhere_with_a_default_budget() {
        let rules = Rules::from_toml(
            "[default]\ntype = \"forward\"\nurl = \"https://bot.example.com/wechat\"\ntimeout_ms = 3000\n\
             [[rules]]\nkeyword = \"bot\"\nreply = { type = \"forward\", url = \"http://127.0.0.1:9000/hook\" }\n",
        )
        .unwrap();
        assert!(rules.has_forward());
        assert_eq!(
            rules.action_for(&text("hello")),
            Some(&Action::Forward(ForwardSpec {
                url: "https://bot.example.com/wechat".into(),
                timeout_ms: 3000
            }))
        );
        assert_eq!(
            rules.action_for(&text("bot")),
            Some(&Action::Forward(ForwardSpec {
                url: "http://127.0.0.1:9000/hook".into(),
                timeout_ms: DEFAULT_TIMEOUT_MS
            }))
        );
        assert_eq!(rules.reply_for(&text("bot")), Reply::Success);
        assert_eq!(
            rules.forward_urls(),
            [
                "https://bot.example.com/wechat",
                "http://127.0.0.1:9000/hook"
            ]
        );
        assert!(Rules::bundled().unwrap().forward_urls().is_empty());
        assert!(!Rules::bundled().unwrap().has_forward());
        assert!(!super::tests::rules().has_forward());
    }

    #[test]
    fn a_bad_forward_is_refused_naming_the_rule_and_the_problem() {
        let cases = [
            (
                "[[rules]]\nkeyword = \"a\"\nreply = { type = \"text\", content = \"x\" }\n\
                 [[rules]]\nkeyword = \"b\"\nreply = { type = \"forward\", url = \"http://bot.example.com\" }",
                "rule 2",
                "https",
            ),
            (
                "[default]\ntype = \"forward\"\nurl = \"https://bot.example.com\"\ntimeout_ms = 5000",
                "default",
                "at most 4000",
            ),
            (
                "[welcome]\ntype = \"forward\"\nurl = \"bot.example.com\"",
                "welcome",
                "http",
            ),
        ];
        for (toml, at, problem) in cases {
            let err = Rules::from_toml(toml).unwrap_err();
            assert!(matches!(err, RulesError::Invalid { .. }), "{toml}: {err}");
            let err = err.to_string();
            assert!(err.contains(at) && err.contains(problem), "{toml}: {err}");
        }
        for toml in [
            "[default]\ntype = \"forward\"",
            "[default]\ntype = \"forward\"\nurl = \"https://x.example\"\ntimeout = 3",
            "[default]\ntype = \"forward\"\nurl = \"https://x.example\"\ntimeout_ms = -1",
        ] {
            assert!(
                matches!(Rules::from_toml(toml), Err(RulesError::Toml(_))),
                "{toml}"
            );
        }
    }

    #[test]
    fn the_variable_is_named_when_the_file_is_missing_or_bad() {
        let err = Rules::from_env(&[(WECHAT_REPLY_RULES, "/nonexistent/rules.toml")]).unwrap_err();
        assert_eq!(err.variable, WECHAT_REPLY_RULES);
        assert!(err.to_string().contains("/nonexistent/rules.toml"));
        assert!(Rules::from_env(&[("OTHER", "x")]).is_ok());
    }
}
