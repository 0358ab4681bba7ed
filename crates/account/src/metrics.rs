//! CloudWatch metrics as log lines in the Embedded Metric Format (EMF): one JSON object on stdout,
//! which CloudWatch Logs turns into a metric with no API call and no permission beyond the logs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The namespace of the stack's own metrics; the alarms in template.yaml refer to it.
pub const NAMESPACE: &str = "WeChatOfficialAccount";
/// Seconds the stored access_token has left after a scheduled refresh run.
pub const TOKEN_SECONDS_LEFT: &str = "TokenSecondsLeft";

/// Emit [`TOKEN_SECONDS_LEFT`] for a token that expires at `expires_at_s` (epoch seconds),
/// dimensioned by the function's name (so that two stacks in an account do not mix).
pub fn token_seconds_left(expires_at_s: i64) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let left = expires_at_s.saturating_sub(now_ms / 1000);
    println!(
        "{}",
        emf_line(TOKEN_SECONDS_LEFT, left, "Seconds", &function, now_ms)
    );
}

/// One EMF line: a single metric, dimension `FunctionName`.
pub fn emf_line(metric: &str, value: i64, unit: &str, function: &str, now_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{ "Name": metric, "Unit": unit }],
            }],
        },
        "FunctionName": function,
        metric: value,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn an_emf_line_declares_its_metric_and_carries_the_value_at_the_top_level() {
        let line = emf_line(
            TOKEN_SECONDS_LEFT,
            6300,
            "Seconds",
            "stack-refresh",
            1_700_000_000_000,
        );
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(
            declared["Dimensions"],
            serde_json::json!([["FunctionName"]])
        );
        assert_eq!(declared["Metrics"][0]["Name"], TOKEN_SECONDS_LEFT);
        assert_eq!(declared["Metrics"][0]["Unit"], "Seconds");
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(doc[TOKEN_SECONDS_LEFT], 6300);
        assert_eq!(doc["FunctionName"], "stack-refresh");
    }
}
