//! The offline check of a menu against WeChat's limits, before any call: every broken limit as a
//! [`Violation`] named by its path (`button[1].sub_button[4].name`), the [`Rule`] it breaks with
//! WeChat's errcode for it (the fake WeChat API answers with those), unknown keys in the file,
//! and the loader ([`Menu::load`], [`Menu::from_toml`]) that refuses a file with any of them.
//!
//! Limits, from WeChat's 自定义菜单/创建接口: 1–3 top-level buttons, 1–5 per sub-menu, names at
//! most 16 bytes (top level) or 60 bytes (sub-menu) of UTF-8, `key` at most 128 bytes, `url` at
//! most 1024 bytes.

use std::fmt;

use serde::Serialize;

use super::model::{BUTTON_KEYS, BUTTON_TYPES, Button, Field, Menu};

const MAX_BUTTONS: usize = 3;
const MAX_SUB_BUTTONS: usize = 5;
const MAX_NAME_BYTES: usize = 16;
const MAX_SUB_NAME_BYTES: usize = 60;
const MAX_KEY_BYTES: usize = 128;
const MAX_URL_BYTES: usize = 1024;

/// Which of WeChat's rules a violation breaks; the fake WeChat API answers each with WeChat's
/// errcode ([`Rule::errcode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    ButtonCount,
    SubButtonCount,
    NameSize,
    KeySize,
    UrlSize,
    Type,
    MissingField(Field),
    Nesting,
    UnknownField,
}

impl Rule {
    /// WeChat's errcode for this rule, at the top level or in a sub-menu.
    pub fn errcode(self, in_sub_menu: bool) -> i64 {
        let (top, sub) = match self {
            Self::ButtonCount => (40016, 40016),
            Self::SubButtonCount | Self::Nesting => (40023, 40023),
            Self::NameSize => (40018, 40025),
            Self::KeySize | Self::MissingField(Field::Key) => (40019, 40026),
            Self::UrlSize | Self::MissingField(Field::Url) => (40020, 40027),
            Self::MissingField(Field::MediaId | Field::ArticleId) => (40007, 40007),
            Self::Type | Self::MissingField(_) | Self::UnknownField => (40017, 40024),
        };
        if in_sub_menu { sub } else { top }
    }
}

/// One broken rule: where (`button[1].sub_button[4].name`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub path: String,
    pub problem: String,
    #[serde(skip)]
    pub rule: Rule,
    #[serde(skip)]
    pub in_sub_menu: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Why a menu file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MenuError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid TOML: {0}")]
    Toml(String),
    #[error("{} problem(s):\n{}", .0.len(), list(.0))]
    Invalid(Vec<Violation>),
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Menu {
    /// Read and check the menu file at `path`.
    pub fn load(path: &str) -> Result<Self, MenuError> {
        let text = std::fs::read_to_string(path).map_err(|e| MenuError::Read {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text)
    }

    /// Parse and check `menu.toml` text: unknown keys and every broken limit are reported
    /// together, each with its path.
    pub fn from_toml(text: &str) -> Result<Self, MenuError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| MenuError::Toml(e.to_string()))?;
        let mut violations = unknown_keys(&table);
        let menu: Menu = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| MenuError::Toml(e.to_string()))?;
        violations.extend(menu.violations());
        if violations.is_empty() {
            Ok(menu)
        } else {
            Err(MenuError::Invalid(violations))
        }
    }

    /// Every limit of WeChat's this menu breaks, in document order.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let count = self.button.len();
        if !(1..=MAX_BUTTONS).contains(&count) {
            out.push(violation(
                "button".into(),
                format!("{count} buttons, 1 to {MAX_BUTTONS} allowed"),
                Rule::ButtonCount,
                false,
            ));
        }
        for (i, button) in self.button.iter().enumerate() {
            let path = format!("button[{i}]");
            check_button(button, &path, false, &mut out);
            let Some(subs) = &button.sub_button else {
                continue;
            };
            if !(1..=MAX_SUB_BUTTONS).contains(&subs.len()) {
                out.push(violation(
                    format!("{path}.sub_button"),
                    format!("{} buttons, 1 to {MAX_SUB_BUTTONS} allowed", subs.len()),
                    Rule::SubButtonCount,
                    true,
                ));
            }
            for (j, sub) in subs.iter().enumerate() {
                let path = format!("{path}.sub_button[{j}]");
                if sub.sub_button.is_some() {
                    out.push(violation(
                        format!("{path}.sub_button"),
                        "sub-menus do not nest: a sub-menu button takes a type".into(),
                        Rule::Nesting,
                        true,
                    ));
                }
                check_button(sub, &path, true, &mut out);
            }
        }
        out
    }
}

fn violation(path: String, problem: String, rule: Rule, in_sub_menu: bool) -> Violation {
    Violation {
        path,
        problem,
        rule,
        in_sub_menu,
    }
}

fn check_button(button: &Button, path: &str, in_sub: bool, out: &mut Vec<Violation>) {
    let max_name = if in_sub {
        MAX_SUB_NAME_BYTES
    } else {
        MAX_NAME_BYTES
    };
    let name_bytes = button.name.len();
    if button.name.trim().is_empty() {
        out.push(violation(
            format!("{path}.name"),
            "missing or blank".into(),
            Rule::NameSize,
            in_sub,
        ));
    } else if name_bytes > max_name {
        out.push(violation(
            format!("{path}.name"),
            format!("{name_bytes} bytes, at most {max_name}"),
            Rule::NameSize,
            in_sub,
        ));
    }
    let opens_sub_menu = button.sub_button.is_some() && !in_sub;
    match (&button.kind, opens_sub_menu) {
        (Some(_), true) => out.push(violation(
            format!("{path}.type"),
            "a button with sub_button opens its sub-menu and takes no type".into(),
            Rule::Type,
            in_sub,
        )),
        (None, false) => out.push(violation(
            format!("{path}.type"),
            "missing (or give the button a sub_button list)".into(),
            Rule::Type,
            in_sub,
        )),
        (None, true) => {}
        (Some(kind), false) => match BUTTON_TYPES.iter().find(|(name, _)| *name == kind.as_str()) {
            None => out.push(violation(
                format!("{path}.type"),
                format!(
                    "unknown type {kind:?} (known: {})",
                    BUTTON_TYPES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Rule::Type,
                in_sub,
            )),
            Some((_, required)) => {
                for field in *required {
                    if button.field(*field).is_none_or(|v| v.trim().is_empty()) {
                        out.push(violation(
                            format!("{path}.{}", field.name()),
                            format!("required for type {kind:?}"),
                            Rule::MissingField(*field),
                            in_sub,
                        ));
                    }
                }
            }
        },
    }
    for (field, max, rule) in [
        (&button.key, MAX_KEY_BYTES, Rule::KeySize),
        (&button.url, MAX_URL_BYTES, Rule::UrlSize),
    ] {
        if let Some(value) = field.as_ref().filter(|v| v.len() > max) {
            let name = if rule == Rule::KeySize { "key" } else { "url" };
            out.push(violation(
                format!("{path}.{name}"),
                format!("{} bytes, at most {max}", value.len()),
                rule,
                in_sub,
            ));
        }
    }
}

/// Keys `menu.toml` does not know (a typo would otherwise be dropped silently).
fn unknown_keys(table: &toml::Table) -> Vec<Violation> {
    let mut out: Vec<Violation> = table
        .keys()
        .filter(|k| *k != "button")
        .map(|k| {
            violation(
                k.clone(),
                "unknown key (a menu file has only [[button]] tables)".into(),
                Rule::UnknownField,
                false,
            )
        })
        .collect();
    let Some(toml::Value::Array(buttons)) = table.get("button") else {
        return out;
    };
    for (i, button) in buttons.iter().enumerate() {
        let path = format!("button[{i}]");
        unknown_button_keys(button, &path, false, &mut out);
        if let Some(toml::Value::Array(subs)) = button.get("sub_button") {
            for (j, sub) in subs.iter().enumerate() {
                unknown_button_keys(sub, &format!("{path}.sub_button[{j}]"), true, &mut out);
            }
        }
    }
    out
}

fn unknown_button_keys(button: &toml::Value, path: &str, in_sub: bool, out: &mut Vec<Violation>) {
    let Some(table) = button.as_table() else {
        return;
    };
    for key in table.keys().filter(|k| !BUTTON_KEYS.contains(&k.as_str())) {
        out.push(violation(
            format!("{path}.{key}"),
            format!("unknown field (known: {})", BUTTON_KEYS.join(", ")),
            Rule::UnknownField,
            in_sub,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::model::{EXAMPLE, click};

    fn problems(text: &str) -> Vec<String> {
        match Menu::from_toml(text) {
            Err(MenuError::Invalid(v)) => v.iter().map(ToString::to_string).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn the_example_menu_is_valid_and_has_every_documented_button_type() {
        let menu = Menu::from_toml(EXAMPLE).unwrap();
        let types: Vec<&str> = menu
            .buttons()
            .into_iter()
            .filter_map(|(_, b)| b.kind.as_deref())
            .collect();
        for (kind, _) in BUTTON_TYPES.iter().filter(|(k, _)| *k != "view_limited") {
            assert!(types.contains(kind), "{kind} missing from the example");
        }
    }

    #[test]
    fn more_than_three_buttons_or_none_is_a_violation_of_the_button_list() {
        let four: String = (0..4).map(|i| click(&format!("b{i}"), "k")).collect();
        assert_eq!(problems(&four), ["button: 4 buttons, 1 to 3 allowed"]);
        assert_eq!(problems(""), ["button: 0 buttons, 1 to 3 allowed"]);
    }

    #[test]
    fn a_sub_menu_needs_one_to_five_buttons() {
        let mut six = "[[button]]\nname = \"more\"\n".to_string();
        for i in 0..6 {
            six.push_str(&format!(
                "[[button.sub_button]]\ntype = \"click\"\nname = \"s{i}\"\nkey = \"k{i}\"\n"
            ));
        }
        assert_eq!(
            problems(&six),
            ["button[0].sub_button: 6 buttons, 1 to 5 allowed"]
        );
        assert_eq!(
            problems("[[button]]\nname = \"more\"\nsub_button = []\n"),
            ["button[0].sub_button: 0 buttons, 1 to 5 allowed"]
        );
    }

    #[test]
    fn names_are_limited_in_bytes_sixteen_on_top_sixty_below() {
        // Six Chinese characters are 18 bytes: too long on top, fine in a sub-menu.
        let top = click("六个汉字六个", "k");
        assert_eq!(problems(&top), ["button[0].name: 18 bytes, at most 16"]);
        let long = "长".repeat(22);
        let text = format!(
            "[[button]]\nname = \"m\"\n[[button.sub_button]]\ntype = \"click\"\nname = \"六个汉字六个\"\nkey = \"a\"\n[[button.sub_button]]\ntype = \"click\"\nname = \"{long}\"\nkey = \"b\"\n"
        );
        assert_eq!(
            problems(&text),
            ["button[0].sub_button[1].name: 66 bytes, at most 60"]
        );
    }

    #[test]
    fn key_and_url_lengths_are_limited_in_bytes() {
        let key = "k".repeat(129);
        assert_eq!(
            problems(&click("a", &key)),
            ["button[0].key: 129 bytes, at most 128"]
        );
        let url = format!("https://example.com/{}", "p".repeat(1010));
        let text = format!("[[button]]\ntype = \"view\"\nname = \"a\"\nurl = \"{url}\"\n");
        assert_eq!(problems(&text), ["button[0].url: 1030 bytes, at most 1024"]);
    }

    #[test]
    fn each_type_requires_its_fields() {
        let text = "[[button]]\ntype = \"click\"\nname = \"a\"\n\
                    [[button]]\ntype = \"miniprogram\"\nname = \"b\"\nurl = \"https://x\"\n\
                    [[button]]\ntype = \"article_id\"\nname = \"c\"\n";
        assert_eq!(
            problems(text),
            [
                "button[0].key: required for type \"click\"",
                "button[1].appid: required for type \"miniprogram\"",
                "button[1].pagepath: required for type \"miniprogram\"",
                "button[2].article_id: required for type \"article_id\"",
            ]
        );
    }

    #[test]
    fn unknown_types_and_fields_and_missing_types_are_named() {
        let text =
            "[[button]]\ntype = \"clik\"\nname = \"a\"\nkye = \"x\"\n[[button]]\nname = \"b\"\n";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("button[0].kye: unknown field"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("button[0].type: unknown type \"clik\""),
            "{found:?}"
        );
        assert!(found[2].starts_with("button[1].type: missing"), "{found:?}");
    }

    #[test]
    fn every_violation_is_listed_not_only_the_first() {
        let long = "x".repeat(17);
        let text = format!(
            "{}{}{}{}",
            click(&long, ""),
            click("b", ""),
            click("c", "k"),
            click("d", "k")
        );
        let found = problems(&text);
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0], "button: 4 buttons, 1 to 3 allowed");
        assert_eq!(found[1], "button[0].name: 17 bytes, at most 16");
        assert_eq!(found[2], "button[0].key: required for type \"click\"");
        assert_eq!(found[3], "button[1].key: required for type \"click\"");
    }

    #[test]
    fn sub_menus_do_not_nest_and_a_parent_takes_no_type() {
        let text = "[[button]]\ntype = \"click\"\nkey = \"k\"\nname = \"m\"\n\
                    [[button.sub_button]]\nname = \"s\"\ntype = \"click\"\nkey = \"k\"\n\
                    [[button.sub_button.sub_button]]\nname = \"t\"\ntype = \"click\"\nkey = \"k\"\n";
        let found = problems(text);
        assert!(
            found.contains(
                &"button[0].type: a button with sub_button opens its sub-menu and takes no type"
                    .to_string()
            ),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.starts_with("button[0].sub_button[0].sub_button: sub-menus do not nest")), "{found:?}");
    }

    #[test]
    fn violations_map_to_wechats_errcodes_by_level() {
        assert_eq!(Rule::ButtonCount.errcode(false), 40016);
        assert_eq!(Rule::Type.errcode(false), 40017);
        assert_eq!(Rule::NameSize.errcode(false), 40018);
        assert_eq!(Rule::NameSize.errcode(true), 40025);
        assert_eq!(Rule::KeySize.errcode(false), 40019);
        assert_eq!(Rule::UrlSize.errcode(true), 40027);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Text made of TOML punctuation and the menu's own keys, which reaches the loader's
    /// corners far more often than uniformly random text does.
    fn tomlish() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("[[button]]\n".to_string()),
            Just("[[button.sub_button]]\n".to_string()),
            Just("[[button.sub_button.sub_button]]\n".to_string()),
            Just("type = \"click\"\n".to_string()),
            Just("type = \"miniprogram\"\n".to_string()),
            Just("name = \"菜单\"\n".to_string()),
            Just("key = \"K\"\n".to_string()),
            Just("url = \"https://x\"\n".to_string()),
            Just("sub_button = []\n".to_string()),
            Just("button = 5\n".to_string()),
            Just("name = 7\n".to_string()),
            Just("[button]\n".to_string()),
            Just("\"".to_string()),
            Just("=".to_string()),
            "[ -~\n]{0,12}",
        ];
        prop::collection::vec(pieces, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_loader_never_panics_and_accepts_only_menus_without_violations(text in tomlish()) {
            if let Ok(menu) = Menu::from_toml(&text) {
                prop_assert!(menu.violations().is_empty());
            }
        }

        #[test]
        fn the_loader_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = Menu::from_toml(&text);
        }
    }
}
