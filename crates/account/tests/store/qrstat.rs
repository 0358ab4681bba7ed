//! The kernel's atomic add and the QR counter items on both adapters: an add counts from zero,
//! adds to what is there, leaves other attributes alone and refuses a non-number; `stats` reads
//! back every day asked, within its bound.

use std::collections::BTreeMap;

use account::qrcode::{
    ChinaDate, QrStatDay, ScanKind, Scene, SceneCounts, StatsError, count, stats,
};
use serde_json::json;
use table::embedded::EmbeddedStore;
use table::{Item, Table, WriteOutcome};

async fn adds_count_from_zero_and_keep_other_attributes(table: &impl Table, id: &str) {
    let pk = table::key::<QrStatDay>(id);
    let add = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let outcome = table
        .add::<QrStatDay>(id, add(&[("s:a", 1), ("c:a", 2)]))
        .await;
    assert_eq!(outcome.unwrap(), WriteOutcome::Applied);
    table
        .add::<QrStatDay>(id, add(&[("c:a", 3), ("c:b", 1)]))
        .await
        .unwrap();
    let stored = table.read(&pk).await.unwrap().unwrap();
    assert_eq!(stored, json!({"pk": pk, "s:a": 1, "c:a": 5, "c:b": 1}));
    // Nothing to add is refused rather than sent as an empty expression.
    assert!(table.add::<QrStatDay>(id, BTreeMap::new()).await.is_err());
}

testkit::on_both_adapters!(adds_count_from_zero_and_keep_other_attributes {
    dynamodb: adds_count_from_zero_on_dynamodb("qradd"),
    embedded: adds_count_from_zero_on_the_embedded_store("qradd"),
});

async fn stats_read_every_day_asked_newest_first(table: &impl Table, id: &str) {
    let today = ChinaDate::parse("2026-12-03").unwrap();
    let scene = Scene::new("poster-a").unwrap();
    count(table, id, today, &scene, ScanKind::Subscribe)
        .await
        .unwrap();
    count(table, id, today.minus(2), &scene, ScanKind::Scan)
        .await
        .unwrap();
    let days = stats(table, id, 3, today).await.unwrap();
    let dates: Vec<String> = days.iter().map(|d| d.date.to_string()).collect();
    assert_eq!(dates, ["2026-12-03", "2026-12-02", "2026-12-01"]);
    assert_eq!(
        days[0].scenes["poster-a"],
        SceneCounts {
            subscribe: 1,
            scan: 0
        }
    );
    assert!(days[1].scenes.is_empty());
    assert_eq!(
        days[2].scenes["poster-a"],
        SceneCounts {
            subscribe: 0,
            scan: 1
        }
    );
}

testkit::on_both_adapters!(stats_read_every_day_asked_newest_first {
    dynamodb: stats_read_back_on_dynamodb("qrstats"),
    embedded: stats_read_back_on_the_embedded_store("qrstats"),
});

#[tokio::test]
async fn stats_are_bounded_to_90_days() {
    let store = EmbeddedStore::in_memory();
    let today = ChinaDate::parse("2026-12-03").unwrap();
    for days in [0, 91] {
        let err = stats(&store, "wxfa4e000000000001", days, today)
            .await
            .unwrap_err();
        assert!(matches!(err, StatsError::Days(d) if d == days), "{err}");
    }
    assert_eq!(
        stats(&store, "wxfa4e000000000001", 90, today)
            .await
            .unwrap()
            .len(),
        90
    );
    assert_eq!(QrStatDay::PREFIX, "qrstat#");
}
