//! The per-scene counter as a [`MessageHandler`] decorator: [`SceneCounter`] wraps the message
//! function's handler and, when `QR_STATS` is on, counts each scene event (a follow through a
//! channel code, a scan by a follower) while the inner handler computes its reply.
//!
//! The count never changes the reply and never holds it up for long: it runs concurrently with
//! the inner handler (joined, since a Lambda container may be frozen once the reply is sent, so
//! work left running after it is not reliable) and is abandoned after [`COUNT_BOUND`]. A failed
//! or abandoned count is one warning log line naming the scene (the owner's campaign name),
//! never the follower's openid.

use std::future::Future;
use std::time::Duration;

use table::Table;
use wechat_protocol::message::{Event, Message, MessageKind};
use wechat_protocol::reply::{MessageHandler, Reply};

use super::scene::Scene;
use super::stats::{ChinaDate, ScanKind, count};
use crate::clock::SharedClock;
use crate::config::vars::{QR_STATS, TABLE_NAME};
use crate::config::{ConfigError, Env, flag_or, required, required_app_id};

/// How long a count may add to a reply: WeChat waits 5 s for the whole answer, and an
/// `UpdateItem` in the function's region takes milliseconds, so this is slack for a cold
/// connection, not the expected time.
pub const COUNT_BOUND: Duration = Duration::from_millis(500);

/// What counting needs from the environment, when `QR_STATS` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrStatsConfig {
    /// `WECHAT_APP_ID`: the counter items are per account.
    pub app_id: String,
    /// `TABLE_NAME`.
    pub table_name: String,
}

impl QrStatsConfig {
    /// `None` unless `QR_STATS` is true; then the AppID and the table are required.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        if !flag_or(env, QR_STATS, false)? {
            return Ok(None);
        }
        Ok(Some(Self {
            app_id: required_app_id(env)?,
            table_name: required(env, TABLE_NAME)?,
        }))
    }
}

/// The inner handler, and the table to count scene events in when counting is on.
pub struct SceneCounter<H, T> {
    inner: H,
    counting: Option<Counting<T>>,
}

struct Counting<T> {
    table: T,
    app_id: String,
    clock: SharedClock,
    bound: Duration,
}

impl<H, T> SceneCounter<H, T> {
    /// No counting: the inner handler alone, and no table access.
    pub fn off(inner: H) -> Self {
        Self {
            inner,
            counting: None,
        }
    }

    /// Counting in `table` for the account `config` names.
    pub fn on(inner: H, table: T, config: QrStatsConfig, clock: SharedClock) -> Self {
        Self {
            inner,
            counting: Some(Counting {
                table,
                app_id: config.app_id,
                clock,
                bound: COUNT_BOUND,
            }),
        }
    }

    /// As configured by `QR_STATS`: `table` is called (with `TABLE_NAME`) only when it is on, so
    /// a function without it builds no table client.
    pub async fn from_env<F, Fut>(
        env: &impl Env,
        inner: H,
        table: F,
        clock: SharedClock,
    ) -> Result<Self, ConfigError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = T>,
    {
        Ok(match QrStatsConfig::from_env(env)? {
            None => Self::off(inner),
            Some(config) => {
                let table = table(config.table_name.clone()).await;
                Self::on(inner, table, config, clock)
            }
        })
    }

    /// Abandon a count after `bound` instead of [`COUNT_BOUND`] (tests).
    pub fn with_bound(mut self, bound: Duration) -> Self {
        if let Some(counting) = &mut self.counting {
            counting.bound = bound;
        }
        self
    }

    pub fn is_counting(&self) -> bool {
        self.counting.is_some()
    }

    pub fn inner(&self) -> &H {
        &self.inner
    }
}

/// The scene and kind of a scene event, if `msg` is one.
fn scene_event(msg: &Message) -> Option<(&str, ScanKind)> {
    match &msg.kind {
        MessageKind::Event(Event::Subscribe {
            scene: Some(scene), ..
        }) => Some((scene, ScanKind::Subscribe)),
        MessageKind::Event(Event::Scan { scene, .. }) => Some((scene, ScanKind::Scan)),
        _ => None,
    }
}

impl<T: Table> Counting<T> {
    /// Count one event, bounded; every way it ends is logged once.
    async fn count(&self, raw_scene: &str, kind: ScanKind) {
        let scene = match Scene::new(raw_scene) {
            Ok(scene) => scene,
            Err(err) => {
                // Not a scene this account could have made: not counted, not echoed.
                tracing::warn!(kind = kind.as_str(), error = %err, "qr scene not counted: not a scene name");
                return;
            }
        };
        let date = ChinaDate::of_ms(self.clock.now_ms());
        let counted = count(&self.table, &self.app_id, date, &scene, kind);
        match tokio::time::timeout(self.bound, counted).await {
            Ok(Ok(())) => {
                tracing::info!(scene = %scene, kind = kind.as_str(), date = %date, "qr scene counted");
            }
            Ok(Err(err)) => {
                tracing::warn!(scene = %scene, kind = kind.as_str(), error = %err, "qr scene count failed");
            }
            Err(_) => {
                let bound_ms = self.bound.as_millis() as u64;
                tracing::warn!(scene = %scene, kind = kind.as_str(), bound_ms, "qr scene count abandoned: the table was too slow");
            }
        }
    }
}

impl<H: MessageHandler, T: Table> MessageHandler for SceneCounter<H, T> {
    async fn reply(&self, msg: &Message) -> Reply {
        let event = self.counting.as_ref().zip(scene_event(msg));
        match event {
            None => self.inner.reply(msg).await,
            Some((counting, (scene, kind))) => {
                let (reply, ()) = tokio::join!(self.inner.reply(msg), counting.count(scene, kind));
                reply
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_stats_needs_the_app_id_and_the_table_only_when_on() {
        assert_eq!(QrStatsConfig::from_env(&[("X", "")]).unwrap(), None);
        assert_eq!(
            QrStatsConfig::from_env(&[(QR_STATS, "false")]).unwrap(),
            None
        );
        let missing_table =
            QrStatsConfig::from_env(&[(QR_STATS, "true"), ("WECHAT_APP_ID", "wxfa4e000000000001")]);
        assert_eq!(missing_table.unwrap_err().variable, TABLE_NAME);
        let on = QrStatsConfig::from_env(&[
            (QR_STATS, "true"),
            ("WECHAT_APP_ID", "wxfa4e000000000001"),
            (TABLE_NAME, "t"),
        ]);
        assert_eq!(
            on.unwrap(),
            Some(QrStatsConfig {
                app_id: "wxfa4e000000000001".into(),
                table_name: "t".into()
            })
        );
        assert!(QrStatsConfig::from_env(&[(QR_STATS, "maybe")]).is_err());
    }
}
