//! A table that stops answering: every DynamoDB call of the stack's clients ends in an error the
//! domain can name, within the SDK's operation timeout, instead of hanging until the function's.

use std::time::Duration;

use account::aws;
use account::forward::MessageLog;
use table::dynamo::DynamoTable;

/// A TCP endpoint that accepts connections and never answers: the slowest table there is.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

#[tokio::test]
async fn a_table_that_never_answers_is_an_error_within_the_operation_timeout() {
    let url = black_hole().await;
    // An SDK configuration that reads nothing from the environment (which points DynamoDB at
    // dynalite), turned into a client by the stack's own constructor, with its timeouts.
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"),
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .endpoint_url(&url)
        .build();
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), "wechat-test");
    // Well past the 2 s operation timeout, far below a function's: the call must have ended.
    let bounded = tokio::time::timeout(Duration::from_secs(15), table.state("msg-key")).await;
    let error = bounded
        .expect("the DynamoDB call returned instead of hanging")
        .expect_err("a table that never answers is an error");
    assert!(
        matches!(error, table::StoreError::Unavailable(_)),
        "{error:?}"
    );
}
