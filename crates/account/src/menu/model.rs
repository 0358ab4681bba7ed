//! The typed `menu.toml`: a [`Menu`] of [`Button`]s, exactly what `/cgi-bin/menu/create` takes
//! as JSON, the button types WeChat documents with the fields each requires, the keys a button
//! may have, and the repository's example menu. No checks here: a `Menu` may break any of
//! WeChat's limits until `validate` has looked at it.

use serde::{Deserialize, Serialize};

/// Every button type WeChat documents, with the fields each requires.
pub(super) const BUTTON_TYPES: &[(&str, &[Field])] = &[
    ("click", &[Field::Key]),
    ("view", &[Field::Url]),
    ("miniprogram", &[Field::Url, Field::AppId, Field::PagePath]),
    ("scancode_push", &[Field::Key]),
    ("scancode_waitmsg", &[Field::Key]),
    ("pic_sysphoto", &[Field::Key]),
    ("pic_photo_or_album", &[Field::Key]),
    ("pic_weixin", &[Field::Key]),
    ("location_select", &[Field::Key]),
    ("media_id", &[Field::MediaId]),
    ("view_limited", &[Field::MediaId]),
    ("article_id", &[Field::ArticleId]),
    ("article_view_limited", &[Field::ArticleId]),
];

/// A button field some types require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Key,
    Url,
    AppId,
    PagePath,
    MediaId,
    ArticleId,
}

impl Field {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Url => "url",
            Self::AppId => "appid",
            Self::PagePath => "pagepath",
            Self::MediaId => "media_id",
            Self::ArticleId => "article_id",
        }
    }
}

/// A menu: what `menu.toml` holds and what `/cgi-bin/menu/create` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    #[serde(default)]
    pub button: Vec<Button>,
}

/// One button: an action (`type` and its fields), or a sub-menu (`sub_button`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_button: Option<Vec<Button>>,
}

/// The keys a button may have in `menu.toml`: the fields of [`Button`] as serde names them (kept
/// in step with it by hand, so that `validate` can name an unknown key instead of dropping it).
pub(super) const BUTTON_KEYS: &[&str] = &[
    "type",
    "name",
    "key",
    "url",
    "appid",
    "pagepath",
    "media_id",
    "article_id",
    "sub_button",
];

impl Button {
    pub(super) fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::Key => self.key.as_deref(),
            Field::Url => self.url.as_deref(),
            Field::AppId => self.appid.as_deref(),
            Field::PagePath => self.pagepath.as_deref(),
            Field::MediaId => self.media_id.as_deref(),
            Field::ArticleId => self.article_id.as_deref(),
        }
    }

    pub(super) fn subs(&self) -> &[Button] {
        self.sub_button.as_deref().unwrap_or_default()
    }

    /// One line: `"name" (type key=…)`, or `"name" (sub-menu of N)`.
    pub fn summary(&self) -> String {
        if let Some(subs) = &self.sub_button {
            return format!("{:?} (sub-menu of {})", self.name, subs.len());
        }
        let mut parts = vec![self.kind.clone().unwrap_or_else(|| "no type".into())];
        for (name, value) in self.action_fields() {
            parts.push(format!("{name}={value}"));
        }
        format!("{:?} ({})", self.name, parts.join(" "))
    }

    fn action_fields(&self) -> Vec<(&'static str, &str)> {
        [
            Field::Key,
            Field::Url,
            Field::AppId,
            Field::PagePath,
            Field::MediaId,
            Field::ArticleId,
        ]
        .into_iter()
        .filter_map(|f| self.field(f).map(|v| (f.name(), v)))
        .collect()
    }
}

impl Menu {
    /// Every button with its path, sub-menus after their parent.
    pub fn buttons(&self) -> Vec<(String, &Button)> {
        let mut out = Vec::new();
        for (i, button) in self.button.iter().enumerate() {
            out.push((format!("button[{i}]"), button));
            for (j, sub) in button.subs().iter().enumerate() {
                out.push((format!("button[{i}].sub_button[{j}]"), sub));
            }
        }
        out
    }
}

/// The example menu in the repository (every documented button type).
pub const EXAMPLE: &str = include_str!("../../../../examples/menu.toml");

/// One top-level `click` button as `menu.toml` text, for the tests of every module here.
#[cfg(test)]
pub(super) fn click(name: &str, key: &str) -> String {
    format!("[[button]]\ntype = \"click\"\nname = \"{name}\"\nkey = \"{key}\"\n")
}
