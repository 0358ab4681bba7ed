//! The menu's side of WeChat's API: the three [`Endpoint`]s (`/cgi-bin/menu/create`, `get`,
//! `delete`) with their wire format, and the calls ([`fetch`], [`create`], [`delete`]) made
//! through the token client's `call_with_token`.

use serde::{Deserialize, Serialize};
use wechat_api::{Ack, Endpoint, Method, WeChatHttp};

use super::model::{Button, Menu};
use crate::token::{CallError, TokenClient, TokenSource};

/// `POST /cgi-bin/menu/create` with the menu as the body.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct CreateMenu(pub Menu);

impl Endpoint for CreateMenu {
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/cgi-bin/menu/create";
    type Answer = Ack;
}

/// `GET /cgi-bin/menu/get`: the menu as created through the API (or 46003 when there is none).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GetMenu {}

/// `/cgi-bin/menu/get`'s answer: the default menu (and the conditional menus, not read here).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MenuAnswer {
    pub menu: Menu,
}

impl Endpoint for GetMenu {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/cgi-bin/menu/get";
    type Answer = MenuAnswer;
}

/// `GET /cgi-bin/menu/delete`: removes the menu (and every conditional menu).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DeleteMenu {}

impl Endpoint for DeleteMenu {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/cgi-bin/menu/delete";
    type Answer = Ack;
}

/// WeChat's answer to `menu/get` when the account has no menu.
pub const NO_MENU_ERRCODE: i64 = 46003;

impl Menu {
    /// The menu as `/cgi-bin/menu/get` describes it, with empty `sub_button` lists (WeChat
    /// sends one on every action button) taken as none.
    pub fn normalized(mut self) -> Self {
        fn clean(button: &mut Button) {
            if button.sub_button.as_ref().is_some_and(|s| s.is_empty()) && button.kind.is_some() {
                button.sub_button = None;
            }
            if let Some(subs) = &mut button.sub_button {
                subs.iter_mut().for_each(clean);
            }
        }
        self.button.iter_mut().for_each(clean);
        self
    }
}

/// The account's live menu (`None`: it has none), through the token client: a rejected token is
/// reported stale once and the call retried once.
pub async fn fetch<S: TokenSource>(
    http: &WeChatHttp,
    tokens: &TokenClient<S>,
) -> Result<Option<Menu>, CallError> {
    let answer = tokens
        .call_with_token(|token| async move { http.call_with_token(&GetMenu {}, &token).await })
        .await;
    match answer {
        Ok(answer) => Ok(Some(answer.menu.normalized())),
        Err(CallError::Api(e)) if e.errcode() == Some(NO_MENU_ERRCODE) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace the account's menu with `menu` (check it with [`Menu::violations`] first).
pub async fn create<S: TokenSource>(
    http: &WeChatHttp,
    tokens: &TokenClient<S>,
    menu: &Menu,
) -> Result<(), CallError> {
    let request = &CreateMenu(menu.clone());
    tokens
        .call_with_token(|token| async move { http.call_with_token(request, &token).await })
        .await?;
    Ok(())
}

/// Remove the account's menu (conditional menus included).
pub async fn delete<S: TokenSource>(
    http: &WeChatHttp,
    tokens: &TokenClient<S>,
) -> Result<(), CallError> {
    tokens
        .call_with_token(|token| async move { http.call_with_token(&DeleteMenu {}, &token).await })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::diff::diff;
    use crate::menu::model::{EXAMPLE, click};

    #[test]
    fn the_wire_format_is_wechats_json() {
        let menu = Menu::from_toml(&click("今日歌曲", "V1001_TODAY_MUSIC")).unwrap();
        let json = serde_json::to_value(CreateMenu(menu)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"button": [{"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"}]})
        );
    }

    #[test]
    fn a_menu_read_back_from_wechat_diffs_empty_against_its_file() {
        let menu = Menu::from_toml(EXAMPLE).unwrap();
        // WeChat answers every action button with an empty `sub_button` list.
        let mut wire = serde_json::to_value(&menu).unwrap();
        fn add_empty(v: &mut serde_json::Value) {
            for b in v["button"].as_array_mut().unwrap() {
                if b.get("type").is_some() {
                    b["sub_button"] = serde_json::json!([]);
                } else {
                    for s in b["sub_button"].as_array_mut().unwrap() {
                        s["sub_button"] = serde_json::json!([]);
                    }
                }
            }
        }
        add_empty(&mut wire);
        let read: MenuAnswer = serde_json::from_value(serde_json::json!({"menu": wire})).unwrap();
        assert_eq!(diff(Some(&read.menu.normalized()), &menu), []);
    }
}
