//! The stack's secret: one AWS Secrets Manager secret (`SECRETS_ARN`) holding the secret variables
//! (`WECHAT_TOKEN`, `WECHAT_APP_SECRET`, ...) as a JSON object keyed by variable name, read once
//! per container at cold start and layered over the process environment, so every configuration
//! struct reads them through [`Env`] as if they were plain variables. Without `SECRETS_ARN` the
//! plain variables are read (`make run`, tests).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde_json::Value;
use wechat_protocol::secret::Secret;

use crate::config::vars::SECRETS_ARN;
use crate::config::{ConfigError, Env, optional};

/// What a [`SecretSource`] read answers: the secret's text, or why it could not be read.
pub type SecretRead<'a> =
    Pin<Box<dyn Future<Output = Result<Secret<String>, ConfigError>> + Send + 'a>>;

/// Where the stack's secret is read: Secrets Manager ([`SecretsManagerSource`]), or an
/// in-process fake in tests. Read at cold start, and again by the webhook to pick up a rotation.
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// The secret's text (a JSON object of variable names to strings).
    fn read(&self) -> SecretRead<'_>;

    /// The secret's name in errors (its ARN): never its value.
    fn name(&self) -> &str;
}

/// The secret `arn` in Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: impl Into<String>) -> Self {
        Self {
            client,
            arn: arn.into(),
        }
    }
}

impl SecretSource for SecretsManagerSource {
    fn read(&self) -> SecretRead<'_> {
        Box::pin(async move {
            let arn = &self.arn;
            let output = self
                .client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| {
                    ConfigError::new(
                        SECRETS_ARN,
                        format!("cannot read the secret {arn}: {}", DisplayErrorContext(&e)),
                    )
                })?;
            let text = output.secret_string().ok_or_else(|| {
                ConfigError::new(
                    SECRETS_ARN,
                    format!("the secret {arn} has no SecretString (a binary secret?)"),
                )
            })?;
            Ok(Secret::new(text.to_string()))
        })
    }

    fn name(&self) -> &str {
        &self.arn
    }
}

/// An environment in which the secret's values take the place of same-named variables.
#[derive(Debug, Clone)]
pub struct SecretsEnv<E> {
    /// Only the keys the function asked for: a function holds no other function's secrets.
    secrets: HashMap<&'static str, Secret<String>>,
    base: E,
    /// Where the secret came from, to read it again ([`Self::reload`]); none for plain variables.
    source: Option<Arc<dyn SecretSource>>,
    keys: Keys,
}

/// The keys a function takes from the secret: `required` must be there, `optional` may be.
#[derive(Debug, Clone, Default)]
struct Keys {
    required: Vec<&'static str>,
    optional: Vec<&'static str>,
}

impl<E: Env> Env for SecretsEnv<E> {
    fn get(&self, name: &str) -> Option<String> {
        match self.secrets.get(name) {
            Some(value) => Some(value.expose().clone()),
            None => self.base.get(name),
        }
    }
}

impl<E: Env + Clone> SecretsEnv<E> {
    /// `base` alone, no secret.
    pub fn plain(base: E) -> Self {
        Self {
            secrets: HashMap::new(),
            base,
            source: None,
            keys: Keys::default(),
        }
    }

    /// With `SECRETS_ARN` set in `base`: the secret's `keys` over `base`, fetched with a client
    /// configured from `base` ([`super::secrets_manager_client`]). Without it: `base` alone.
    /// Every key must be in the secret (an empty value means unset).
    pub async fn load(base: E, keys: &[&'static str]) -> Result<Self, ConfigError> {
        Self::load_with_optional(base, keys, &[]).await
    }

    /// [`Self::load`], with `optional` keys that the secret may lack (the previous values of a
    /// key rotation): a missing one reads as unset, not as the base's variable.
    pub async fn load_with_optional(
        base: E,
        keys: &[&'static str],
        optional_keys: &[&'static str],
    ) -> Result<Self, ConfigError> {
        let Some(arn) = optional(&base, SECRETS_ARN) else {
            return Ok(Self::plain(base));
        };
        let client = super::secrets_manager_client(&base)?;
        let source = Arc::new(SecretsManagerSource::new(client, arn));
        Self::from_source(source, base, keys, optional_keys).await
    }

    /// The secret `arn`'s `keys`, read with `client`, over `base`.
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        arn: &str,
        base: E,
        keys: &[&'static str],
    ) -> Result<Self, ConfigError> {
        let source = Arc::new(SecretsManagerSource::new(client.clone(), arn));
        Self::from_source(source, base, keys, &[]).await
    }

    /// The `keys` (and those of `optional_keys` it holds) of the secret `source` reads, over
    /// `base`.
    pub async fn from_source(
        source: Arc<dyn SecretSource>,
        base: E,
        keys: &[&'static str],
        optional_keys: &[&'static str],
    ) -> Result<Self, ConfigError> {
        let keys = Keys {
            required: keys.to_vec(),
            optional: optional_keys.to_vec(),
        };
        let secrets = read(source.as_ref(), &keys).await?;
        tracing::debug!(keys = ?keys.required, "configuration secrets read");
        Ok(Self {
            secrets,
            base,
            source: Some(source),
            keys,
        })
    }

    /// Whether the values come from a secret, which [`Self::reload`] can read again.
    pub fn is_from_secret(&self) -> bool {
        self.source.is_some()
    }

    /// The same keys, read again from the secret (for plain variables: the same values).
    pub async fn reload(&self) -> Result<Self, ConfigError> {
        let Some(source) = &self.source else {
            return Ok(self.clone());
        };
        let secrets = read(source.as_ref(), &self.keys).await?;
        Ok(Self {
            secrets,
            base: self.base.clone(),
            source: Some(source.clone()),
            keys: self.keys.clone(),
        })
    }
}

/// The secret's `keys`, read from `source`.
async fn read(
    source: &dyn SecretSource,
    keys: &Keys,
) -> Result<HashMap<&'static str, Secret<String>>, ConfigError> {
    let text = source.read().await?;
    pick(text.expose(), keys).map_err(|reason| {
        ConfigError::new(
            SECRETS_ARN,
            format!("the secret {} {reason}", source.name()),
        )
    })
}

/// The `keys` of a secret's JSON object. Errors never quote the text: it is the secret.
fn pick(text: &str, keys: &Keys) -> Result<HashMap<&'static str, Secret<String>>, String> {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return Err("is not a JSON object of variable names to strings".into());
    };
    let mut picked = HashMap::with_capacity(keys.required.len() + keys.optional.len());
    let all =
        (keys.required.iter().map(|&k| (k, true))).chain(keys.optional.iter().map(|&k| (k, false)));
    for (key, required) in all {
        let value = match object.remove(key) {
            Some(Value::String(value)) => value,
            Some(_) => return Err(format!("has a {key} that is not a string")),
            // An absent optional key reads as unset, so that a variable of the same name in the
            // base cannot stand in for a previous value the secret no longer holds.
            None if !required => String::new(),
            None => {
                return Err(format!(
                    "has no key {key} (an empty string stands for an unset variable)"
                ));
            }
        };
        picked.insert(key, Secret::new(value));
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required(keys: &[&'static str]) -> Keys {
        Keys {
            required: keys.to_vec(),
            optional: Vec::new(),
        }
    }

    /// `base` under `secrets`, as a loaded secret.
    fn layered<E>(secrets: HashMap<&'static str, Secret<String>>, base: E) -> SecretsEnv<E> {
        SecretsEnv {
            secrets,
            base,
            source: None,
            keys: Keys::default(),
        }
    }

    #[test]
    fn picked_keys_shadow_the_base_and_other_keys_stay_out() {
        let secrets = pick(
            r#"{"WECHAT_TOKEN": "from-secret", "SESSION_SECRET": "other function's"}"#,
            &required(&["WECHAT_TOKEN"]),
        )
        .unwrap();
        let env = layered(
            secrets,
            [("WECHAT_TOKEN", "plain"), ("WECHAT_APP_ID", "wx1")],
        );
        assert_eq!(env.get("WECHAT_TOKEN").as_deref(), Some("from-secret"));
        assert_eq!(env.get("WECHAT_APP_ID").as_deref(), Some("wx1"));
        assert_eq!(env.get("SESSION_SECRET"), None);
        assert!(!format!("{env:?}").contains("from-secret"));
    }

    #[test]
    fn a_missing_key_or_a_malformed_secret_is_named_without_its_text() {
        let err = pick(
            r#"{"WECHAT_TOKEN": "t0ken"}"#,
            &required(&["WECHAT_TOKEN", "WECHAT_APP_SECRET"]),
        )
        .unwrap_err();
        assert!(err.contains("no key WECHAT_APP_SECRET"), "{err}");
        let err = pick(r#"{"WECHAT_TOKEN": 42}"#, &required(&["WECHAT_TOKEN"])).unwrap_err();
        assert!(err.contains("WECHAT_TOKEN") && !err.contains("42"), "{err}");
        for text in ["t0ken-not-json", r#"["t0ken"]"#] {
            let err = pick(text, &required(&["WECHAT_TOKEN"])).unwrap_err();
            assert!(
                err.contains("not a JSON object") && !err.contains("t0ken"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_empty_value_reads_as_unset() {
        let secrets = pick(
            r#"{"WECHAT_ENCODING_AES_KEY": ""}"#,
            &required(&["WECHAT_ENCODING_AES_KEY"]),
        );
        let env = layered(secrets.unwrap(), [("WECHAT_ENCODING_AES_KEY", "plain")]);
        assert_eq!(optional(&env, "WECHAT_ENCODING_AES_KEY"), None);
    }

    #[tokio::test]
    async fn without_secrets_arn_the_base_is_read_as_it_is() {
        let env = SecretsEnv::load([("WECHAT_TOKEN", "plain")], &["WECHAT_TOKEN"])
            .await
            .unwrap();
        assert_eq!(env.get("WECHAT_TOKEN").as_deref(), Some("plain"));
    }

    /// A secret held in memory, counting its reads.
    #[derive(Debug, Default)]
    struct Counted {
        text: std::sync::Mutex<String>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl SecretSource for Counted {
        fn read(&self) -> SecretRead<'_> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let text = self.text.lock().map(|t| t.clone()).unwrap_or_default();
            Box::pin(std::future::ready(Ok(Secret::new(text))))
        }

        fn name(&self) -> &str {
            "arn:counted"
        }
    }

    #[tokio::test]
    async fn optional_keys_may_be_absent_and_then_hide_the_base_and_a_reload_reads_again() {
        let source = Arc::new(Counted::default());
        *source.text.lock().unwrap() = r#"{"WECHAT_TOKEN": "one"}"#.into();
        let env = SecretsEnv::from_source(
            source.clone(),
            [("WECHAT_TOKEN_PREVIOUS", "plain")],
            &["WECHAT_TOKEN"],
            &["WECHAT_TOKEN_PREVIOUS"],
        )
        .await
        .unwrap();
        assert!(env.is_from_secret());
        assert_eq!(optional(&env, "WECHAT_TOKEN_PREVIOUS"), None);
        *source.text.lock().unwrap() =
            r#"{"WECHAT_TOKEN": "two", "WECHAT_TOKEN_PREVIOUS": "one"}"#.into();
        let fresh = env.reload().await.unwrap();
        assert_eq!(fresh.get("WECHAT_TOKEN").as_deref(), Some("two"));
        assert_eq!(fresh.get("WECHAT_TOKEN_PREVIOUS").as_deref(), Some("one"));
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        *source.text.lock().unwrap() = r#"{"WECHAT_TOKEN_PREVIOUS": 1}"#.into();
        let err = fresh.reload().await.unwrap_err();
        assert_eq!(err.variable, SECRETS_ARN);
        assert!(err.to_string().contains("arn:counted"), "{err}");
    }
}
