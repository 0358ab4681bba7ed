//! The cross-check of the menu with the reply rules (`crate::rules`): `click` buttons whose key
//! no CLICK rule answers, and CLICK rules whose key no button sends.

use wechat_protocol::message::EventType;

use super::model::Menu;
use crate::rules::Rules;

/// The menu's `click` buttons and the reply rules' CLICK rules that do not meet: a click key no
/// rule answers (the user gets no reply), and a CLICK rule whose key is on no button.
pub fn rule_warnings(menu: &Menu, rules: &Rules) -> Vec<String> {
    let rule_keys: Vec<Option<&str>> = rules.event_keys(EventType::Click).collect();
    let any_key = rule_keys.contains(&None);
    let clicks: Vec<(String, &str)> = menu
        .buttons()
        .into_iter()
        .filter(|(_, b)| b.kind.as_deref() == Some("click"))
        .filter_map(|(path, b)| b.key.as_deref().map(|k| (path, k)))
        .collect();
    let mut out = Vec::new();
    if !any_key {
        for (path, key) in &clicks {
            if !rule_keys.contains(&Some(*key)) {
                out.push(format!(
                    "{path}.key {key:?}: no CLICK rule answers it (the user gets no reply)"
                ));
            }
        }
    }
    for key in rule_keys.into_iter().flatten() {
        if !clicks.iter().any(|(_, k)| *k == key) {
            out.push(format!(
                "the CLICK rule for key {key:?} matches no click button of the menu"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::model::click;

    #[test]
    fn click_keys_without_rules_and_rules_without_buttons_are_warned_about() {
        let menu = Menu::from_toml(&format!(
            "{}{}",
            click("a", "HAS_RULE"),
            click("b", "NO_RULE")
        ))
        .unwrap();
        let rules = Rules::from_toml(
            "[[rules]]\nevent = \"CLICK\"\nevent_key = \"HAS_RULE\"\nreply = { type = \"text\", content = \"x\" }\n\
             [[rules]]\nevent = \"CLICK\"\nevent_key = \"GONE\"\nreply = { type = \"text\", content = \"y\" }\n",
        )
        .unwrap();
        let warnings = rule_warnings(&menu, &rules);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("button[1].key \"NO_RULE\": no CLICK rule"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("\"GONE\" matches no click button"),
            "{warnings:?}"
        );

        let catch_all = Rules::from_toml(
            "[[rules]]\nevent = \"CLICK\"\nreply = { type = \"text\", content = \"x\" }\n",
        )
        .unwrap();
        assert!(rule_warnings(&menu, &catch_all).is_empty());
    }
}
