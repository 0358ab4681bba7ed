//! The webhook's keys in a container: the [`KeyRing`] in hand, swapped whole when the stack's
//! secret is read again. Locally (plain variables) the keys never change. From a secret they are
//! re-read on the request path, bounded by [`REREAD_BUDGET`] (Lambda freezes a container between
//! invocations, so a background task would not run):
//!
//! - by age: before a request, once the keys are `SECRETS_MAX_AGE_SECS` old;
//! - on failure: when a push verifies with none of the keys in hand, then checked again.
//!
//! Every read, whatever its trigger or outcome, waits [`REREAD_MIN_INTERVAL_SECS`] after the last
//! one, so forged signatures cannot turn each request into a Secrets Manager call. A read that
//! fails or times out keeps the keys in hand and logs a warning (never a value).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::keys::{KeyRing, Previous};
use wechat_protocol::secret::Secret;

use crate::aws::SecretsEnv;
use crate::config::vars::{
    SECRETS_MAX_AGE_SECS, WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY_PREVIOUS,
    WECHAT_PREVIOUS_KEYS_UNTIL, WECHAT_TOKEN_PREVIOUS,
};
use crate::config::{ConfigError, Env, optional, parsed_or};

/// How old the keys read from the secret may grow before a request re-reads them.
pub const DEFAULT_SECRETS_MAX_AGE_SECS: u64 = 300;
/// `SECRETS_MAX_AGE_SECS` bounds: not below the re-read interval, at most a day.
pub const SECRETS_MAX_AGE_RANGE: std::ops::RangeInclusive<u64> = 30..=86_400;
/// The least time between two reads of the secret by one container.
pub const REREAD_MIN_INTERVAL_SECS: i64 = 30;
/// How long a request waits for a re-read before going on with the keys in hand: well inside
/// WeChat's 5 s, and the Secrets Manager client's own bounds stop it sooner when it fails fast.
pub const REREAD_BUDGET: Duration = Duration::from_millis(1_000);
/// The longest grace `WECHAT_PREVIOUS_KEYS_UNTIL` may give previous values, from now: a rotation
/// needs minutes to hours; a forgotten previous key must not stay valid for ever.
pub const MAX_GRACE_SECS: i64 = 7 * 86_400;

/// The secret's values the message function reads besides the current ones (absent = unset).
pub const PREVIOUS_KEYS: &[&str] = &[
    WECHAT_TOKEN_PREVIOUS,
    WECHAT_ENCODING_AES_KEY_PREVIOUS,
    WECHAT_PREVIOUS_KEYS_UNTIL,
];
/// The verify function's: it checks signatures only, and takes no key from the secret.
pub const PREVIOUS_TOKEN_KEYS: &[&str] = &[WECHAT_TOKEN_PREVIOUS, WECHAT_PREVIOUS_KEYS_UNTIL];

/// `SECRETS_MAX_AGE_SECS`.
pub(super) fn max_age_secs(env: &impl Env) -> Result<u64, ConfigError> {
    let secs = parsed_or(env, SECRETS_MAX_AGE_SECS, DEFAULT_SECRETS_MAX_AGE_SECS)?;
    if !SECRETS_MAX_AGE_RANGE.contains(&secs) {
        return Err(ConfigError::new(
            SECRETS_MAX_AGE_SECS,
            format!(
                "must be between {} and {} seconds",
                SECRETS_MAX_AGE_RANGE.start(),
                SECRETS_MAX_AGE_RANGE.end()
            ),
        ));
    }
    Ok(secs)
}

/// The previous token and key with the end of their grace, at `now_s`. Previous values need
/// `WECHAT_PREVIOUS_KEYS_UNTIL`: a rotation is over at a time the operator chose, never by a
/// default nobody wrote down.
pub(super) fn previous(
    env: &impl Env,
    app_id: Option<&str>,
    now_s: i64,
) -> Result<Option<Previous>, ConfigError> {
    let token = optional(env, WECHAT_TOKEN_PREVIOUS)
        .map(|t| super::check_token(WECHAT_TOKEN_PREVIOUS, t))
        .transpose()?;
    let crypto =
        match optional(env, WECHAT_ENCODING_AES_KEY_PREVIOUS) {
            None => None,
            Some(key) => {
                let app_id = app_id.ok_or_else(|| {
                    ConfigError::new(
                        WECHAT_APP_ID,
                        format!("is required when {WECHAT_ENCODING_AES_KEY_PREVIOUS} is set"),
                    )
                })?;
                Some(MessageCrypto::new(&key, app_id).map_err(|e| {
                    ConfigError::new(WECHAT_ENCODING_AES_KEY_PREVIOUS, e.to_string())
                })?)
            }
        };
    if token.is_none() && crypto.is_none() {
        return Ok(None);
    }
    let raw = optional(env, WECHAT_PREVIOUS_KEYS_UNTIL).ok_or_else(|| {
        ConfigError::new(
            WECHAT_PREVIOUS_KEYS_UNTIL,
            format!(
                "is required when {WECHAT_TOKEN_PREVIOUS} or {WECHAT_ENCODING_AES_KEY_PREVIOUS} \
                 is set: the time the previous values stop being accepted (RFC 3339, e.g. \
                 2026-12-04T18:00:00Z, or unix seconds)"
            ),
        )
    })?;
    let until_s = parse_instant(&raw).ok_or_else(|| {
        ConfigError::new(
            WECHAT_PREVIOUS_KEYS_UNTIL,
            format!(
                "must be an RFC 3339 time (e.g. 2026-12-04T18:00:00Z) or unix seconds, got {raw:?}"
            ),
        )
    })?;
    if until_s > now_s.saturating_add(MAX_GRACE_SECS) {
        return Err(ConfigError::new(
            WECHAT_PREVIOUS_KEYS_UNTIL,
            format!(
                "is {raw}, more than {} days from now: a rotation's grace is at most that long",
                MAX_GRACE_SECS / 86_400
            ),
        ));
    }
    Ok(Some(Previous {
        token: token.map(Secret::new),
        crypto,
        until_s,
    }))
}

/// An RFC 3339 time (`Z` or an offset) or unix seconds, as epoch seconds.
pub fn parse_instant(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok();
    }
    DateTime::from_str(raw, DateTimeFormat::DateTimeWithOffset)
        .ok()
        .map(|t| t.secs())
}

/// Epoch seconds as RFC 3339 in UTC (`2026-12-04T18:00:00Z`).
pub fn format_instant(epoch_s: i64) -> String {
    DateTime::from_secs(epoch_s)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| epoch_s.to_string())
}

/// What [`KeySource::load`] answers.
pub type KeyLoad<'a> = Pin<Box<dyn Future<Output = Result<KeyRing, ConfigError>> + Send + 'a>>;

/// Where fresh keys come from: the stack's secret ([`SecretKeys`]).
pub trait KeySource: Send + Sync {
    fn load(&self, now_s: i64) -> KeyLoad<'_>;
}

/// The webhook's keys from the stack's secret, read again on each load.
pub struct SecretKeys<E> {
    env: SecretsEnv<E>,
}

impl<E: Env + Clone + Send + Sync + 'static> SecretKeys<E> {
    /// The source of `env`'s keys, when they come from a secret; `None` for plain variables,
    /// which never change while the process runs.
    pub fn of(env: &SecretsEnv<E>) -> Option<Arc<dyn KeySource>> {
        env.is_from_secret()
            .then(|| Arc::new(Self { env: env.clone() }) as Arc<dyn KeySource>)
    }
}

impl<E: Env + Clone + Send + Sync + 'static> KeySource for SecretKeys<E> {
    fn load(&self, now_s: i64) -> KeyLoad<'_> {
        Box::pin(async move {
            let env = self.env.reload().await?;
            super::WebhookConfig::read_at(&env, now_s).map(|config| config.key_ring())
        })
    }
}

/// The key ring in hand, and how to refresh it.
pub(super) struct Keys {
    ring: RwLock<Arc<KeyRing>>,
    refresh: Option<Refresh>,
}

struct Refresh {
    source: Arc<dyn KeySource>,
    max_age_s: i64,
    loaded_at_s: AtomicI64,
    attempted_at_s: AtomicI64,
}

/// Why the secret is read again, for the log.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Age,
    UnknownKey,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::UnknownKey => "unknown key",
        }
    }
}

impl Keys {
    /// Keys that never change.
    pub(super) fn fixed(ring: KeyRing) -> Self {
        Self {
            ring: RwLock::new(Arc::new(ring)),
            refresh: None,
        }
    }

    /// Refreshed from `source`, counting the keys in hand as read at `now_s`.
    pub(super) fn refreshed(self, source: Arc<dyn KeySource>, max_age_s: u64, now_s: i64) -> Self {
        Self {
            ring: self.ring,
            refresh: Some(Refresh {
                source,
                max_age_s: i64::try_from(max_age_s).unwrap_or(i64::MAX),
                loaded_at_s: AtomicI64::new(now_s),
                attempted_at_s: AtomicI64::new(now_s),
            }),
        }
    }

    /// Counts the keys in hand as read at `now_s` (a new clock).
    pub(super) fn read_at(&self, now_s: i64) {
        if let Some(refresh) = &self.refresh {
            refresh.loaded_at_s.store(now_s, Ordering::SeqCst);
            refresh.attempted_at_s.store(now_s, Ordering::SeqCst);
        }
    }

    /// The keys in hand.
    pub(super) fn in_hand(&self) -> Arc<KeyRing> {
        // A panic while the lock was held cannot leave a half-written ring (it is one store).
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys for a request at `now_s`: read again first when they are too old.
    pub(super) async fn for_request(&self, now_s: i64) -> Arc<KeyRing> {
        if let Some(refresh) = &self.refresh
            && now_s.saturating_sub(refresh.loaded_at_s.load(Ordering::SeqCst)) >= refresh.max_age_s
        {
            self.reread(refresh, now_s, Trigger::Age).await;
        }
        self.in_hand()
    }

    /// After a push verified with none of the keys in hand: fresh keys, when a read was due and
    /// succeeded.
    pub(super) async fn after_unknown_key(&self, now_s: i64) -> Option<Arc<KeyRing>> {
        let refresh = self.refresh.as_ref()?;
        self.reread(refresh, now_s, Trigger::UnknownKey)
            .await
            .then(|| self.in_hand())
    }

    /// Reads the secret again unless a read ran less than [`REREAD_MIN_INTERVAL_SECS`] ago;
    /// whether fresh keys are in hand.
    async fn reread(&self, refresh: &Refresh, now_s: i64, trigger: Trigger) -> bool {
        let last = refresh.attempted_at_s.load(Ordering::SeqCst);
        // One claim per interval, even among concurrent requests (the local server).
        if now_s.saturating_sub(last) < REREAD_MIN_INTERVAL_SECS
            || refresh
                .attempted_at_s
                .compare_exchange(last, now_s, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return false;
        }
        let trigger = trigger.as_str();
        match tokio::time::timeout(REREAD_BUDGET, refresh.source.load(now_s)).await {
            Ok(Ok(ring)) => {
                let rotating = ring.previous_until_s().is_some();
                *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
                refresh.loaded_at_s.store(now_s, Ordering::SeqCst);
                tracing::info!(trigger, rotating, "webhook keys read again from the secret");
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    trigger,
                    variable = error.variable,
                    %error,
                    "webhook keys could not be read again; keeping the keys in hand"
                );
                false
            }
            Err(_) => {
                tracing::warn!(
                    trigger,
                    budget_ms = REREAD_BUDGET.as_millis() as u64,
                    "webhook keys were not read again in time; keeping the keys in hand"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc_3339_with_an_offset_or_unix_seconds() {
        assert_eq!(parse_instant("1764871200"), Some(1_764_871_200));
        assert_eq!(parse_instant("2025-12-04T18:00:00Z"), Some(1_764_871_200));
        assert_eq!(
            parse_instant("2025-12-05T02:00:00+08:00"),
            Some(1_764_871_200)
        );
        assert_eq!(format_instant(1_764_871_200), "2025-12-04T18:00:00Z");
        for bad in ["", "tomorrow", "2025-12-04", "-5", "2025-13-04T18:00:00Z"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
