//! `wx rotate aes-key | token`: a new EncodingAESKey or Token (as `wx keygen` makes them) and the
//! ordered procedure that changes it without a refused push (docs/rotation.md): (1) the stack's
//! secret gets the new value as current and the old one as previous until the end of the grace,
//! by a command that never prints the secret; (2) a check that the webhook accepts the new value;
//! (3) the console; (4) after the grace, the previous values removed. Nothing is changed by `wx`
//! itself: the operator runs the commands, with their own AWS credentials.

use std::time::{SystemTime, UNIX_EPOCH};

use account::config::optional;
use account::config::vars::{
    SECRETS_ARN, WECHAT_ENCODING_AES_KEY, WECHAT_ENCODING_AES_KEY_PREVIOUS,
    WECHAT_PREVIOUS_KEYS_UNTIL, WECHAT_TOKEN, WECHAT_TOKEN_PREVIOUS,
};
use account::webhook::{MAX_GRACE_SECS, format_instant};
use clap::{Args, Subcommand};
use serde::Serialize;
use wechat_protocol::crypto::generate_encoding_aes_key;

use crate::config::Config;
use crate::{CliError, Output};

#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// A new EncodingAESKey (WECHAT_ENCODING_AES_KEY) and the steps that switch to it
    AesKey(RotateArgs),
    /// A new Token (WECHAT_TOKEN) and the steps that switch to it
    Token(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The stack's secret (its SecretArn output); default SECRETS_ARN, else looked up from --stack
    #[arg(long, value_name = "ARN")]
    secret_id: Option<String>,
    /// The stack whose outputs name the secret and the webhook URL (when not given otherwise)
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// The webhook URL for the check (the stack's WebhookUrl output)
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Hours the previous value stays accepted (1 to 168)
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=168))]
    grace_hours: u16,
}

/// `--grace-hours`' bound fits the functions' (`WECHAT_PREVIOUS_KEYS_UNTIL` at most 7 days ahead).
const _: () = assert!(168 * 3_600 <= MAX_GRACE_SECS);

/// What `wx rotate --json` prints.
#[derive(Debug, Serialize)]
struct Rotation {
    variable: &'static str,
    previous_variable: &'static str,
    /// The new value: it goes in the secret and in the console.
    value: String,
    /// When the previous value stops being accepted (RFC 3339, UTC).
    until: String,
    steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
struct Step {
    step: u8,
    title: &'static str,
    /// The shell command to run, when the step is one.
    command: Option<String>,
    note: String,
}

pub fn run(config: &Config, out: &Output, command: RotateCommand) -> Result<(), CliError> {
    let random_failed = |e: &dyn std::fmt::Display| {
        CliError::Message(format!("the operating system's random source failed: {e}"))
    };
    let (what, args) = match command {
        RotateCommand::AesKey(args) => (
            What::AesKey(generate_encoding_aes_key().map_err(|e| random_failed(&e))?),
            args,
        ),
        RotateCommand::Token(args) => (
            What::Token(crate::keygen::token().map_err(|e| random_failed(&e))?),
            args,
        ),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let grace_s = i64::from(args.grace_hours) * 3_600;
    let secret_id = args
        .secret_id
        .clone()
        .or_else(|| optional(&config.env, SECRETS_ARN));
    let rotation = procedure(
        &what,
        &Place {
            secret: secret_id,
            stack: args.stack.clone(),
            url: args.url.clone(),
        },
        &format_instant(now + grace_s),
    );
    out.emit(&rotation, || human(&rotation));
    Ok(())
}

/// The value being rotated, new.
enum What {
    AesKey(String),
    Token(String),
}

/// Where the secret and the webhook are, as far as the operator told.
struct Place {
    secret: Option<String>,
    stack: Option<String>,
    url: Option<String>,
}

impl Place {
    /// The secret's ARN as a shell word: given, looked up from the stack, or a placeholder.
    fn secret(&self) -> String {
        match (&self.secret, &self.stack) {
            (Some(arn), _) => quote(arn),
            (None, Some(stack)) => output_of(stack, "SecretArn"),
            (None, None) => "\"$SECRET_ARN\"".into(),
        }
    }

    fn url(&self) -> String {
        match (&self.url, &self.stack) {
            (Some(url), _) => quote(url),
            (None, Some(stack)) => output_of(stack, "WebhookUrl"),
            (None, None) => "\"$WEBHOOK_URL\"".into(),
        }
    }

    /// What to set first when the commands use shell variables.
    fn unknowns(&self) -> String {
        let mut unknown = Vec::new();
        if self.secret.is_none() && self.stack.is_none() {
            unknown.push("SECRET_ARN (the stack's SecretArn output)");
        }
        if self.url.is_none() && self.stack.is_none() {
            unknown.push("WEBHOOK_URL (the stack's WebhookUrl output)");
        }
        match unknown.is_empty() {
            true => String::new(),
            false => format!(
                " Set {} first, or pass --secret-id/--url or --stack.",
                unknown.join(" and ")
            ),
        }
    }
}

/// A stack output, looked up by the AWS CLI inside the command.
fn output_of(stack: &str, output: &str) -> String {
    format!(
        "\"$(aws cloudformation describe-stacks --stack-name {} --query 'Stacks[0].Outputs[?OutputKey==`{output}`].OutputValue' --output text)\"",
        quote(stack)
    )
}

/// `value` as one shell word.
fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/=@%+,".contains(&b))
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r#"'\''"#))
}

fn procedure(what: &What, place: &Place, until: &str) -> Rotation {
    let (variable, previous_variable, value) = match what {
        What::AesKey(value) => (
            WECHAT_ENCODING_AES_KEY,
            WECHAT_ENCODING_AES_KEY_PREVIOUS,
            value,
        ),
        What::Token(value) => (WECHAT_TOKEN, WECHAT_TOKEN_PREVIOUS, value),
    };
    let secret = place.secret();
    // The current secret flows from one command to the next through pipes: never printed.
    let rewrite = |jq_args: &str, program: &str| {
        format!(
            "aws secretsmanager get-secret-value --secret-id {secret} --query SecretString --output text \
             | jq -c {jq_args}'{program}' \
             | aws secretsmanager put-secret-value --secret-id {secret} --secret-string file:///dev/stdin"
        )
    };
    let put = rewrite(
        &format!("--arg new {} --arg until {} ", quote(value), quote(until)),
        &format!(
            ".{previous_variable} = .{variable} | .{variable} = $new | .{WECHAT_PREVIOUS_KEYS_UNTIL} = $until"
        ),
    );
    let remove = rewrite(
        "",
        &format!(
            "del(.{WECHAT_TOKEN_PREVIOUS}, .{WECHAT_ENCODING_AES_KEY_PREVIOUS}, .{WECHAT_PREVIOUS_KEYS_UNTIL})"
        ),
    );
    let url = place.url();
    let (check, console_field, parameter) = match what {
        What::AesKey(_) => (
            format!(
                "{WECHAT_ENCODING_AES_KEY}={} wx push --url {url} --encrypt --text rotation-check",
                quote(value)
            ),
            "消息加解密密钥(EncodingAESKey)",
            "WeChatEncodingAesKey",
        ),
        What::Token(_) => (
            format!("{WECHAT_TOKEN}={} wx verify-url {url}", quote(value)),
            "令牌(Token)",
            "WeChatToken",
        ),
    };
    let steps = vec![
        Step {
            step: 1,
            title: "Put the new value in the stack's secret, the old one as previous",
            command: Some(put),
            note: format!(
                "{variable} becomes the new value and {previous_variable} the old one, accepted until \
                 {until}; the secret is piped from one command to the next and never printed.{}",
                place.unknowns()
            ),
        },
        Step {
            step: 2,
            title: "Check that the webhook accepts the new value",
            command: Some(check),
            note: format!(
                "A container reads the secret again on the first push its keys do not verify \
                 (at most once per 30 s) and every SECRETS_MAX_AGE_SECS (300 s by default): if the \
                 check is refused, wait 30 s and run it again. wx reads the rest ({}WECHAT_APP_ID) \
                 from the environment or .env, as for the deployed functions.",
                match what {
                    What::AesKey(_) => "WECHAT_TOKEN, ",
                    What::Token(_) => "",
                }
            ),
        },
        Step {
            step: 3,
            title: "Enter the new value in the WeChat console and submit",
            command: None,
            note: format!(
                "公众号后台 → 设置与开发 → 基本配置 → 服务器配置 → 修改配置: paste the new value as \
                 {console_field}, keep the URL and mode, 提交 (WeChat checks the URL then, with the \
                 Token of the form), then confirm. Pushes under the old value keep being answered \
                 until {until}."
            ),
        },
        Step {
            step: 4,
            title: "After the grace, remove the previous values",
            command: Some(remove),
            note: format!(
                "After {until} the previous value is refused anyway; removing it ends the start-up \
                 warning. With the stack's own secret, also pass the new value as the {parameter} \
                 parameter at the next deploy: a deploy that changes a secret parameter rewrites \
                 the secret from the parameters."
            ),
        },
    ];
    Rotation {
        variable,
        previous_variable,
        value: value.clone(),
        until: until.to_string(),
        steps,
    }
}

fn human(rotation: &Rotation) -> String {
    let mut text = format!(
        "New {}: {}\nThe old value stays accepted until {}.\n",
        rotation.variable, rotation.value, rotation.until
    );
    for step in &rotation.steps {
        text.push_str(&format!("\n{}. {}\n", step.step, step.title));
        if let Some(command) = &step.command {
            text.push_str(&format!("   {command}\n"));
        }
        text.push_str(&format!("   {}\n", step.note));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(
            quote("arn:aws:secretsmanager:us-east-1:1:secret:w-AbC"),
            "arn:aws:secretsmanager:us-east-1:1:secret:w-AbC"
        );
        assert_eq!(quote("it's here"), r#"'it'\''s here'"#);
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_stack_name_looks_up_the_outputs_inside_the_commands() {
        let place = Place {
            secret: None,
            stack: Some("wechat".into()),
            url: None,
        };
        let rotation = procedure(&What::Token("T0ken".into()), &place, "2026-12-04T18:00:00Z");
        let put = rotation.steps[0].command.as_deref().unwrap();
        assert!(put.contains("--stack-name wechat --query 'Stacks[0].Outputs[?OutputKey==`SecretArn`].OutputValue'"), "{put}");
        let check = rotation.steps[1].command.as_deref().unwrap();
        assert!(
            check.starts_with("WECHAT_TOKEN=T0ken wx verify-url \"$(aws cloudformation"),
            "{check}"
        );
        assert!(
            rotation.steps[0].note.ends_with("never printed."),
            "{}",
            rotation.steps[0].note
        );
    }
}
