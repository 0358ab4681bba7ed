//! `wx keygen aes-key | token`: new random settings for the account, from the operating system's
//! random source, in the alphabets the WeChat console accepts: an EncodingAESKey (消息加解密密钥,
//! 43 characters of A-Z, a-z, 0-9) and a Token (令牌, 32 letters and digits, the longest the
//! console allows). The value goes to stdout alone, so `$(wx keygen aes-key)` captures it; where
//! to put it goes to stderr.

use clap::Subcommand;
use serde::Serialize;
use wechat_protocol::crypto::generate_encoding_aes_key;

use crate::{CliError, Output};

#[derive(Debug, Subcommand)]
pub enum KeygenCommand {
    /// A new EncodingAESKey (43 characters): WECHAT_ENCODING_AES_KEY, the console's 消息加解密密钥
    AesKey,
    /// A new Token (32 letters and digits): WECHAT_TOKEN, the console's 令牌(Token)
    Token,
}

/// What `wx keygen --json` prints: the variable and its new value.
#[derive(Debug, Serialize)]
struct Generated {
    variable: &'static str,
    value: String,
}

pub fn run(out: &Output, command: KeygenCommand) -> Result<(), CliError> {
    let random_failed = |e: &dyn std::fmt::Display| {
        CliError::Message(format!("the operating system's random source failed: {e}"))
    };
    let generated = match command {
        KeygenCommand::AesKey => Generated {
            variable: "WECHAT_ENCODING_AES_KEY",
            value: generate_encoding_aes_key().map_err(|e| random_failed(&e))?,
        },
        KeygenCommand::Token => Generated {
            variable: "WECHAT_TOKEN",
            value: token().map_err(|e| random_failed(&e))?,
        },
    };
    if !out.json {
        eprintln!(
            "note: put it in .env as {}=… (the local server and wx read it there), and the same \
             value in the WeChat console (设置与开发 → 基本配置 → 服务器配置)",
            generated.variable
        );
    }
    out.emit(&generated, || generated.value.clone());
    Ok(())
}

/// 32 letters and digits, each equally likely (rejection sampling).
pub(crate) fn token() -> Result<String, getrandom::Error> {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const LEN: usize = 32;
    let limit = 256 - 256 % ALPHANUMERIC.len();
    let mut token = String::with_capacity(LEN);
    while token.len() < LEN {
        let mut batch = [0u8; 64];
        getrandom::fill(&mut batch)?;
        for byte in batch {
            if usize::from(byte) < limit && token.len() < LEN {
                token.push(char::from(
                    ALPHANUMERIC[usize::from(byte) % ALPHANUMERIC.len()],
                ));
            }
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_letters_and_digits_that_the_webhook_accepts_without_a_warning() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_ne!(a, b);
        for token in [a, b] {
            assert_eq!(token.len(), 32);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
            let config =
                account::webhook::WebhookConfig::read(&[("WECHAT_TOKEN", token.as_str())]).unwrap();
            assert!(!config.token_is_short());
        }
    }
}
