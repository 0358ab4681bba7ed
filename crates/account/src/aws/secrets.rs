//! The stack's secret: one AWS Secrets Manager secret (`SECRETS_ARN`) holding the secret variables
//! (`WECHAT_TOKEN`, `WECHAT_APP_SECRET`, ...) as a JSON object keyed by variable name, read once
//! per container at cold start and layered over the process environment, so every configuration
//! struct reads them through [`Env`] as if they were plain variables. Without `SECRETS_ARN` the
//! plain variables are read (`make run`, tests).

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde_json::Value;
use wechat_protocol::secret::Secret;

use crate::config::vars::SECRETS_ARN;
use crate::config::{ConfigError, Env, optional};

/// An environment in which the secret's values take the place of same-named variables.
#[derive(Debug, Clone)]
pub struct SecretsEnv<E> {
    /// Only the keys the function asked for: a function holds no other function's secrets.
    secrets: HashMap<&'static str, Secret<String>>,
    base: E,
}

impl<E: Env> Env for SecretsEnv<E> {
    fn get(&self, name: &str) -> Option<String> {
        match self.secrets.get(name) {
            Some(value) => Some(value.expose().clone()),
            None => self.base.get(name),
        }
    }
}

impl<E: Env> SecretsEnv<E> {
    /// `base` alone, no secret.
    pub fn plain(base: E) -> Self {
        Self {
            secrets: HashMap::new(),
            base,
        }
    }

    /// With `SECRETS_ARN` set in `base`: the secret's `keys` over `base`, fetched with a client
    /// configured from `base` ([`super::secrets_manager_client`]). Without it: `base` alone.
    /// Every key must be in the secret (an empty value means unset).
    pub async fn load(base: E, keys: &[&'static str]) -> Result<Self, ConfigError> {
        let Some(arn) = optional(&base, SECRETS_ARN) else {
            return Ok(Self::plain(base));
        };
        let client = super::secrets_manager_client(&base)?;
        Self::fetch(&client, &arn, base, keys).await
    }

    /// The secret `arn`'s `keys`, read with `client`, over `base`.
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        arn: &str,
        base: E,
        keys: &[&'static str],
    ) -> Result<Self, ConfigError> {
        let output = client
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
        let secrets = pick(text, keys).map_err(|reason| {
            ConfigError::new(SECRETS_ARN, format!("the secret {arn} {reason}"))
        })?;
        tracing::debug!(keys = ?keys, "configuration secrets read");
        Ok(Self { secrets, base })
    }
}

/// The `keys` of a secret's JSON object. Errors never quote the text: it is the secret.
fn pick(
    text: &str,
    keys: &[&'static str],
) -> Result<HashMap<&'static str, Secret<String>>, String> {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return Err("is not a JSON object of variable names to strings".into());
    };
    keys.iter()
        .map(|&key| match object.remove(key) {
            Some(Value::String(value)) => Ok((key, Secret::new(value))),
            Some(_) => Err(format!("has a {key} that is not a string")),
            None => Err(format!(
                "has no key {key} (an empty string stands for an unset variable)"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_keys_shadow_the_base_and_other_keys_stay_out() {
        let secrets = pick(
            r#"{"WECHAT_TOKEN": "from-secret", "SESSION_SECRET": "other function's"}"#,
            &["WECHAT_TOKEN"],
        )
        .unwrap();
        let env = SecretsEnv {
            secrets,
            base: [("WECHAT_TOKEN", "plain"), ("WECHAT_APP_ID", "wx1")],
        };
        assert_eq!(env.get("WECHAT_TOKEN").as_deref(), Some("from-secret"));
        assert_eq!(env.get("WECHAT_APP_ID").as_deref(), Some("wx1"));
        assert_eq!(env.get("SESSION_SECRET"), None);
        assert!(!format!("{env:?}").contains("from-secret"));
    }

    #[test]
    fn a_missing_key_or_a_malformed_secret_is_named_without_its_text() {
        let err = pick(
            r#"{"WECHAT_TOKEN": "t0ken"}"#,
            &["WECHAT_TOKEN", "WECHAT_APP_SECRET"],
        )
        .unwrap_err();
        assert!(err.contains("no key WECHAT_APP_SECRET"), "{err}");
        let err = pick(r#"{"WECHAT_TOKEN": 42}"#, &["WECHAT_TOKEN"]).unwrap_err();
        assert!(err.contains("WECHAT_TOKEN") && !err.contains("42"), "{err}");
        for text in ["t0ken-not-json", r#"["t0ken"]"#] {
            let err = pick(text, &["WECHAT_TOKEN"]).unwrap_err();
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
            &["WECHAT_ENCODING_AES_KEY"],
        );
        let env = SecretsEnv {
            secrets: secrets.unwrap(),
            base: [("WECHAT_ENCODING_AES_KEY", "plain")],
        };
        assert_eq!(optional(&env, "WECHAT_ENCODING_AES_KEY"), None);
    }

    #[tokio::test]
    async fn without_secrets_arn_the_base_is_read_as_it_is() {
        let env = SecretsEnv::load([("WECHAT_TOKEN", "plain")], &["WECHAT_TOKEN"])
            .await
            .unwrap();
        assert_eq!(env.get("WECHAT_TOKEN").as_deref(), Some("plain"));
    }
}
