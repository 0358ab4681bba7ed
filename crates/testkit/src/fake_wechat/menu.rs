//! Fake custom-menu API: `POST /cgi-bin/menu/create`, `GET /cgi-bin/menu/get`,
//! `GET /cgi-bin/menu/delete`, answering like WeChat:
//!
//! - the access_token first (41001 missing, 40001 unknown or replaced, 42001 expired);
//! - create: an empty body → 44002, a body that is not a menu → 47001, then WeChat's limits with
//!   WeChat's errcodes (40016 button count, 40017/40024 type, 40018/40025 name size, 40019/40026
//!   key size, 40020/40027 url size, 40023 sub-menu size, 40007 media_id), the first broken
//!   limit answered, as WeChat does; otherwise the menu replaces the current one;
//! - get: the current menu, every action button with an empty `sub_button` list as WeChat sends
//!   it, or 46003 when there is none; delete: removes it.
//!
//! The limits are [`account::menu::Menu::violations`], the same check `wx menu` runs offline.

use account::menu::{CreateMenu, DeleteMenu, GetMenu, Menu, NO_MENU_ERRCODE};
use serde_json::{Value, json};
use wechat_api::Endpoint;

use super::{FakeRequest, FakeResponse, FakeState, lock};

/// The menu the account has, as the fake stores it.
#[derive(Debug, Default)]
pub struct MenuState {
    pub current: Option<Menu>,
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    let path = req.path.as_str();
    let method = req.method.as_str();
    let known = [
        ("POST", CreateMenu::PATH),
        ("GET", GetMenu::PATH),
        ("GET", DeleteMenu::PATH),
    ];
    if !known.contains(&(method, path)) {
        return None;
    }
    let token = req.query.get("access_token").map(String::as_str);
    if let Some(code) = state.token_rejection(token) {
        return Some(FakeResponse::errcode(code));
    }
    let mut menus = lock(&state.menu);
    Some(match path {
        CreateMenu::PATH => match create(req) {
            Ok(menu) => {
                menus.current = Some(menu);
                ok()
            }
            Err(code) => FakeResponse::errcode(code),
        },
        GetMenu::PATH => match &menus.current {
            Some(menu) => FakeResponse::json(json!({ "menu": as_wechat_sends_it(menu) })),
            None => FakeResponse::errcode(NO_MENU_ERRCODE),
        },
        _ => {
            menus.current = None;
            ok()
        }
    })
}

fn ok() -> FakeResponse {
    FakeResponse::json(json!({"errcode": 0, "errmsg": "ok"}))
}

fn create(req: &FakeRequest) -> Result<Menu, i64> {
    if req.body.trim_ascii().is_empty() {
        return Err(44002);
    }
    let menu: Menu = serde_json::from_slice(&req.body).map_err(|_| 47001)?;
    match menu.violations().first() {
        Some(v) => Err(v.rule.errcode(v.in_sub_menu)),
        None => Ok(menu),
    }
}

fn as_wechat_sends_it(menu: &Menu) -> Value {
    let mut value = serde_json::to_value(menu).unwrap_or(Value::Null);
    let Some(buttons) = value.get_mut("button").and_then(Value::as_array_mut) else {
        return value;
    };
    for button in buttons {
        match button.get_mut("sub_button").and_then(Value::as_array_mut) {
            Some(subs) => subs.iter_mut().for_each(|s| s["sub_button"] = json!([])),
            None => button["sub_button"] = json!([]),
        }
    }
    value
}
