//! What applying a menu would change: the [`Change`]s, button by button and field by field, that
//! turn the live menu (or none) into the file's.

use std::fmt;

use serde::Serialize;

use super::model::{Button, Menu};

/// What applying a menu would change, button by button (WeChat's menus are ordered, so buttons
/// are compared by position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    Added {
        path: String,
        button: String,
    },
    Removed {
        path: String,
        button: String,
    },
    Changed {
        path: String,
        field: &'static str,
        from: Option<String>,
        to: Option<String>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.as_ref().map_or("(none)".into(), |v| format!("{v:?}"));
        match self {
            Self::Added { path, button } => write!(f, "+ {path} {button}"),
            Self::Removed { path, button } => write!(f, "- {path} {button}"),
            Self::Changed {
                path,
                field,
                from,
                to,
            } => write!(f, "~ {path}.{field}: {} -> {}", show(from), show(to)),
        }
    }
}

/// The changes that turn `current` (none: no menu) into `desired`.
pub fn diff(current: Option<&Menu>, desired: &Menu) -> Vec<Change> {
    let empty = Vec::new();
    let current = current.map_or(&empty, |m| &m.button);
    let mut out = Vec::new();
    diff_list(current, &desired.button, "button", &mut out);
    out
}

fn diff_list(current: &[Button], desired: &[Button], at: &str, out: &mut Vec<Change>) {
    for i in 0..current.len().max(desired.len()) {
        let path = format!("{at}[{i}]");
        match (current.get(i), desired.get(i)) {
            (Some(old), Some(new)) => diff_button(old, new, &path, out),
            (None, Some(new)) => out.push(Change::Added {
                button: new.summary(),
                path,
            }),
            (Some(old), None) => out.push(Change::Removed {
                button: old.summary(),
                path,
            }),
            (None, None) => {}
        }
    }
}

fn diff_button(old: &Button, new: &Button, path: &str, out: &mut Vec<Change>) {
    let fields: [(&'static str, &Option<String>, &Option<String>); 7] = [
        ("type", &old.kind, &new.kind),
        ("key", &old.key, &new.key),
        ("url", &old.url, &new.url),
        ("appid", &old.appid, &new.appid),
        ("pagepath", &old.pagepath, &new.pagepath),
        ("media_id", &old.media_id, &new.media_id),
        ("article_id", &old.article_id, &new.article_id),
    ];
    if old.name != new.name {
        out.push(Change::Changed {
            path: path.to_string(),
            field: "name",
            from: Some(old.name.clone()),
            to: Some(new.name.clone()),
        });
    }
    for (field, from, to) in fields {
        if from != to {
            out.push(Change::Changed {
                path: path.to_string(),
                field,
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    diff_list(old.subs(), new.subs(), &format!("{path}.sub_button"), out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::model::click;

    #[test]
    fn diff_names_added_removed_and_changed_buttons_by_path() {
        let old = Menu::from_toml(&format!("{}{}", click("a", "k1"), click("b", "k2"))).unwrap();
        let new = Menu::from_toml(&format!(
            "{}{}{}",
            click("a", "k1"),
            click("B", "k2"),
            click("c", "k3")
        ))
        .unwrap();
        let changes: Vec<String> = diff(Some(&old), &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                "~ button[1].name: \"b\" -> \"B\"",
                "+ button[2] \"c\" (click key=k3)",
            ]
        );
        let removed: Vec<String> = diff(Some(&new), &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(removed.last().unwrap(), "- button[2] \"c\" (click key=k3)");
        assert_eq!(diff(None, &old).len(), 2);
    }
}
