//! Every environment variable the functions and the local server read, by name, in one place.
//! docs/configuration.md documents them (a test below checks every one is there); code refers to
//! them only through these constants.

// WeChat app (every function that calls WeChat; see `config::WeChatAppConfig`).
pub const WECHAT_APP_ID: &str = "WECHAT_APP_ID";
pub const WECHAT_APP_SECRET: &str = "WECHAT_APP_SECRET";
pub const WECHAT_API_BASE: &str = "WECHAT_API_BASE";
pub const WECHAT_OPEN_BASE: &str = "WECHAT_OPEN_BASE";
pub const WECHAT_HTTP_TIMEOUT_MS: &str = "WECHAT_HTTP_TIMEOUT_MS";
// Where QR code images are fetched (`/cgi-bin/showqrcode`; see `qrcode::image_url`).
pub const WECHAT_MP_BASE: &str = "WECHAT_MP_BASE";

// Webhook (`verify`, `message`).
pub const WECHAT_TOKEN: &str = "WECHAT_TOKEN";
pub const WECHAT_ENCODING_AES_KEY: &str = "WECHAT_ENCODING_AES_KEY";
pub const WECHAT_MAX_CLOCK_SKEW_SECS: &str = "WECHAT_MAX_CLOCK_SKEW_SECS";
pub const WECHAT_REQUIRE_ENCRYPTION: &str = "WECHAT_REQUIRE_ENCRYPTION";
pub const WECHAT_REPLY_RULES: &str = "WECHAT_REPLY_RULES";
// Key rotation (`verify`, `message`; see `webhook` and docs/rotation.md): the previous values,
// accepted until WECHAT_PREVIOUS_KEYS_UNTIL, and how old the secret's values may grow.
pub const WECHAT_TOKEN_PREVIOUS: &str = "WECHAT_TOKEN_PREVIOUS";
pub const WECHAT_ENCODING_AES_KEY_PREVIOUS: &str = "WECHAT_ENCODING_AES_KEY_PREVIOUS";
pub const WECHAT_PREVIOUS_KEYS_UNTIL: &str = "WECHAT_PREVIOUS_KEYS_UNTIL";
pub const SECRETS_MAX_AGE_SECS: &str = "SECRETS_MAX_AGE_SECS";

// The stack's secret: a Secrets Manager secret whose JSON object holds the secret variables
// (WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY, WECHAT_APP_SECRET, SESSION_SECRET, WECHAT_FORWARD_SECRET,
// and during a key rotation the previous values and WECHAT_PREVIOUS_KEYS_UNTIL)
// and takes their place; see `aws::SecretsEnv`.
pub const SECRETS_ARN: &str = "SECRETS_ARN";
// Standard AWS variables (Lambda sets all but the endpoints), read for the secret's client.
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
pub const AWS_ENDPOINT_URL_SECRETS_MANAGER: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";

// Storage.
pub const TABLE_NAME: &str = "TABLE_NAME";

// Channel QR codes: per-scene counts by the `message` function (see `qrcode::SceneCounter`).
pub const QR_STATS: &str = "QR_STATS";

// access_token service (`refresh`) and its clients.
pub const WECHAT_TOKEN_API: &str = "WECHAT_TOKEN_API";
pub const TOKEN_REFRESH_MARGIN_SECS: &str = "TOKEN_REFRESH_MARGIN_SECS";
pub const TOKEN_LEASE_MS: &str = "TOKEN_LEASE_MS";
pub const TOKEN_LEASE_POLL_MS: &str = "TOKEN_LEASE_POLL_MS";
pub const TOKEN_FETCH_ATTEMPTS: &str = "TOKEN_FETCH_ATTEMPTS";
pub const TOKEN_RETRY_BACKOFF_MS: &str = "TOKEN_RETRY_BACKOFF_MS";
pub const TOKEN_STALE_MIN_AGE_SECS: &str = "TOKEN_STALE_MIN_AGE_SECS";
pub const TOKEN_FUNCTION_NAME: &str = "TOKEN_FUNCTION_NAME";

// Web authorization (`oauth`).
pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
pub const SESSION_SECRET: &str = "SESSION_SECRET";
pub const SESSION_TTL_SECS: &str = "SESSION_TTL_SECS";
pub const OAUTH_ALLOWED_ORIGINS: &str = "OAUTH_ALLOWED_ORIGINS";
pub const OAUTH_PROFILE_MAX_AGE_SECS: &str = "OAUTH_PROFILE_MAX_AGE_SECS";
/// The domain verification file's name (`MP_verify_<code>.txt`), served with its code.
pub const WECHAT_MP_VERIFY_FILE: &str = "WECHAT_MP_VERIFY_FILE";

// JS-SDK signatures and the demo page (`oauth`; see `jssdk`).
pub const JSSDK_ALLOWED_ORIGINS: &str = "JSSDK_ALLOWED_ORIGINS";
pub const JSSDK_SCRIPT_URL: &str = "JSSDK_SCRIPT_URL";
pub const DEMO_PAGE_ENABLED: &str = "DEMO_PAGE_ENABLED";

// Local development server (`make run`).
pub const HOST: &str = "HOST";
pub const PORT: &str = "PORT";
pub const LOCAL_STORE: &str = "LOCAL_STORE";
pub const LOCAL_FAKE_WECHAT: &str = "LOCAL_FAKE_WECHAT";
/// With `LOCAL_FAKE_WECHAT`: the fake's IP whitelist (addresses, comma-separated); unset: none.
pub const LOCAL_FAKE_WECHAT_IP_WHITELIST: &str = "LOCAL_FAKE_WECHAT_IP_WHITELIST";
pub const LOCAL_REFRESH_INTERVAL_SECS: &str = "LOCAL_REFRESH_INTERVAL_SECS";
/// The local server's Lambda Invoke key (`X-Local-Invoke-Key`); random per run when unset. A
/// Lambda client built by `aws::lambda_client` sends it when set.
pub const LOCAL_INVOKE_KEY: &str = "LOCAL_INVOKE_KEY";

// Forwarding messages to the account's own service (`message`, `worker`; see `forward`).
pub const WECHAT_FORWARD_SECRET: &str = "WECHAT_FORWARD_SECRET";
pub const FORWARD_LATE_TIMEOUT_MS: &str = "FORWARD_LATE_TIMEOUT_MS";
pub const WORKER_FUNCTION_NAME: &str = "WORKER_FUNCTION_NAME";
/// The reply while a forward service's circuit is open (text; unset: `success`).
pub const FORWARD_CIRCUIT_REPLY: &str = "FORWARD_CIRCUIT_REPLY";

// The token-free WeChat API function (`api`; see `api`) and template-message receipts
// (`message`; see `notify`).
pub const API_ALLOWED_PATHS: &str = "API_ALLOWED_PATHS";
pub const API_RETRY_ATTEMPTS: &str = "API_RETRY_ATTEMPTS";
pub const API_RETRY_BACKOFF_MS: &str = "API_RETRY_BACKOFF_MS";
/// The api function's name or ARN, for `wx` (like `TOKEN_FUNCTION_NAME` for the refresh function).
pub const API_FUNCTION_NAME: &str = "API_FUNCTION_NAME";
pub const TEMPLATE_RECEIPTS: &str = "TEMPLATE_RECEIPTS";

#[cfg(test)]
mod tests {
    /// The configuration doc names every variable this module declares, so a variable added here
    /// cannot ship undocumented.
    #[test]
    fn every_variable_is_in_the_configuration_doc() {
        let doc = include_str!("../../../../docs/configuration.md");
        let declared: Vec<&str> = include_str!("vars.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub const "))
            .filter_map(|rest| rest.split(':').next())
            .collect();
        assert!(declared.len() > 40, "found only {declared:?}");
        let missing: Vec<&&str> = declared
            .iter()
            .filter(|name| !doc.contains(&format!("`{name}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not document {missing:?}"
        );
    }
}
