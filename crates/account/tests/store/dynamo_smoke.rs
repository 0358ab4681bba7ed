//! The DynamoDB adapter reaches the loopback table at all: a put and a get round-trip.

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test]
async fn put_then_get_round_trips_through_dynalite() {
    let table = testkit::harness::dynalite_table().await;
    let pk = testkit::harness::unique("smoke#");
    table
        .client
        .put_item()
        .table_name(&table.table)
        .item("pk", AttributeValue::S(pk.clone()))
        .item("v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("put into dynalite");
    let got = table
        .client
        .get_item()
        .table_name(&table.table)
        .key("pk", AttributeValue::S(pk))
        .consistent_read(true)
        .send()
        .await
        .expect("get from dynalite");
    assert_eq!(
        got.item().and_then(|i| i.get("v")),
        Some(&AttributeValue::N("7".into()))
    );
}
