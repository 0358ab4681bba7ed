//! The account's custom menu (自定义菜单), from a `menu.toml` to the live menu.
//!
//! From the bottom up: the typed file (`model`: [`Menu`], [`Button`], the button types and the
//! example menu); the offline check against WeChat's limits before any call, every violation
//! named by its path (`validate`: [`Violation`], [`MenuError`], [`Menu::from_toml`]); what
//! applying a file would change (`diff`); the cross-check with the reply rules (`rules_check`);
//! and the three menu [`Endpoint`](wechat_api::Endpoint)s with the calls through the token
//! client (`api`). Each imports `model` and nothing else of the menu's.

mod api;
mod diff;
mod model;
mod rules_check;
mod validate;

pub use api::{
    CreateMenu, DeleteMenu, GetMenu, MenuAnswer, NO_MENU_ERRCODE, create, delete, fetch,
};
pub use diff::{Change, diff};
pub use model::{Button, EXAMPLE, Field, Menu};
pub use rules_check::rule_warnings;
pub use validate::{MenuError, Rule, Violation};
