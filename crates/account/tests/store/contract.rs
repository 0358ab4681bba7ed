//! The table kernel and every stored item, on both adapters (dynalite and the embedded store):
//! the kernel's conditional operations mean the same on each, every item type is stored with the
//! same attributes of the same types by both, that layout is the one existing tables hold, and
//! items written by earlier versions still read. Run under `node scripts/with-dynalite.mjs`.

use std::collections::HashMap;

use account::oauth::store::{OAuthStateStore, UserStore, UserWrite};
use account::oauth::{AuthState, Profile, Scope, SnsGrant, StateStatus, User};
use account::token::store::TokenStore;
use account::token::{QuotaRecord, TokenRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use table::dynamo::DynamoTable;
use table::embedded::EmbeddedStore;
use table::{Condition, Item, TTL, Table, Update, WriteOutcome};
use wechat_protocol::secret::Secret;

const NOW: i64 = 1_800_000_000;

/// An item shaped like the coming `msg#` de-duplication record: inserted once (or over an expired
/// one), then one conditional update decides who answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Probe {
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    expires_at_s: i64,
    tags: Vec<String>,
}

impl Item for Probe {
    const PREFIX: &'static str = "probe#";
    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at_s)
    }
}

fn probe(expires_at_s: i64) -> Probe {
    Probe {
        status: "pending".into(),
        answer: None,
        expires_at_s,
        tags: vec!["a".into(), "b".into()],
    }
}

/// Absent, or present but expired at `now_s` (TTL deletion is lazy).
fn absent_or_expired(now_s: i64) -> Condition {
    Condition::Any(vec![Condition::Absent, Condition::AtMost(TTL, now_s)])
}

fn pending() -> Condition {
    Condition::equals("status", "pending")
}

fn answer() -> Update {
    Update::new().set("status", "answered").set("answer", "hi")
}

async fn the_kernel_keeps_its_semantics<T: Table>(table: &T, id: &str) {
    use WriteOutcome::{Applied, ConditionFailed};
    let item = probe(NOW + 300);
    assert_eq!(table.get::<Probe>(id).await.unwrap(), None);

    // Put-if-absent: once.
    let put = |item: Probe, now_s| async move {
        table
            .put(id, &item, Some(absent_or_expired(now_s)))
            .await
            .unwrap()
    };
    assert_eq!(put(item.clone(), NOW).await, Applied);
    assert_eq!(put(item.clone(), NOW).await, ConditionFailed);
    assert_eq!(table.get::<Probe>(id).await.unwrap(), Some(item.clone()));

    // Conditional update: one winner.
    let update = |update: Update, condition| async move {
        table.update::<Probe>(id, update, condition).await.unwrap()
    };
    assert_eq!(update(answer(), pending()).await, Applied);
    assert_eq!(update(answer(), pending()).await, ConditionFailed);
    let answered = table.get::<Probe>(id).await.unwrap().unwrap();
    assert_eq!(answered.status, "answered");
    assert_eq!(answered.answer.as_deref(), Some("hi"));
    assert_eq!(answered.tags, item.tags);

    // Remove, under an All of comparisons.
    let live = Condition::All(vec![
        Condition::Above(TTL, NOW),
        Condition::equals("status", "answered"),
    ]);
    assert_eq!(update(Update::new().remove("answer"), live).await, Applied);
    assert_eq!(table.get::<Probe>(id).await.unwrap().unwrap().answer, None);
    assert_eq!(
        update(
            Update::new().remove("answer"),
            Condition::Above(TTL, NOW + 300)
        )
        .await,
        ConditionFailed
    );

    // An absent item fails every comparison and is not created.
    let missing = format!("{id}-missing");
    assert_eq!(
        table
            .update::<Probe>(&missing, answer(), pending())
            .await
            .unwrap(),
        ConditionFailed
    );
    assert_eq!(table.get::<Probe>(&missing).await.unwrap(), None);

    // An expired item counts as absent for a put that says so.
    let renewed = probe(NOW + 900);
    assert_eq!(put(renewed.clone(), NOW + 299).await, ConditionFailed);
    assert_eq!(put(renewed.clone(), NOW + 300).await, Applied);
    assert_eq!(table.get::<Probe>(id).await.unwrap(), Some(renewed));

    // Delete-if.
    let delete = |condition| async move { table.delete::<Probe>(id, condition).await.unwrap() };
    assert_eq!(
        delete(Condition::equals("status", "answered")).await,
        ConditionFailed
    );
    assert_eq!(delete(pending()).await, Applied);
    assert_eq!(table.get::<Probe>(id).await.unwrap(), None);
    assert_eq!(delete(pending()).await, ConditionFailed);

    // Put-if-version: the item must be absent for `None`.
    let quota = |version| QuotaRecord {
        version,
        ..QuotaRecord::default()
    };
    let cas = |record: QuotaRecord, replacing| async move {
        table
            .put(id, &record, Some(Condition::version(replacing)))
            .await
            .unwrap()
    };
    assert_eq!(cas(quota(1), None).await, Applied);
    assert_eq!(cas(quota(2), None).await, ConditionFailed);
    assert_eq!(cas(quota(2), Some(2)).await, ConditionFailed);
    assert_eq!(cas(quota(2), Some(1)).await, Applied);
    assert_eq!(
        table
            .get::<QuotaRecord>(id)
            .await
            .unwrap()
            .map(|q| q.version),
        Some(2)
    );
}

testkit::on_both_adapters!(the_kernel_keeps_its_semantics {
    dynamodb: the_kernel_on_dynamodb_keeps_its_semantics("k"),
    embedded: the_kernel_on_the_embedded_store_keeps_its_semantics("k"),
});

/// The stored item as DynamoDB holds it.
async fn dynamo_item(table: &DynamoTable, pk: &str) -> HashMap<String, AttributeValue> {
    table
        .client
        .get_item()
        .table_name(&table.table)
        .key("pk", AttributeValue::S(pk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("{pk} is in the DynamoDB table"))
}

/// The embedded store's JSON for the item, as the attributes DynamoDB would hold for it.
fn embedded_item(store: &EmbeddedStore, pk: &str) -> HashMap<String, AttributeValue> {
    let json = store
        .item_json(pk)
        .unwrap()
        .unwrap_or_else(|| panic!("{pk} is in the embedded store"));
    serde_dynamo::to_item(json).unwrap()
}

/// Attribute names with their DynamoDB types, sorted: `("ttl", "N")`.
fn layout(item: &HashMap<String, AttributeValue>) -> Vec<(String, &'static str)> {
    let mut layout: Vec<_> = item
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                AttributeValue::S(_) => "S",
                AttributeValue::N(_) => "N",
                AttributeValue::L(_) => "L",
                other => panic!("{name} has an unexpected type: {other:?}"),
            };
            (name.clone(), kind)
        })
        .collect();
    layout.sort();
    layout
}

fn expected(attributes: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    let mut layout: Vec<_> = attributes
        .iter()
        .map(|(name, kind)| (name.to_string(), *kind))
        .collect();
    layout.sort();
    layout
}

/// Both adapters hold the same attributes, with the same types and values, in `layout`.
async fn assert_same_item(
    table: &DynamoTable,
    store: &EmbeddedStore,
    pk: &str,
    attributes: &[(&str, &'static str)],
) {
    let dynamo = dynamo_item(table, pk).await;
    assert_eq!(dynamo, embedded_item(store, pk), "{pk}");
    assert_eq!(layout(&dynamo), expected(attributes), "{pk}");
}

const TOKEN: &[(&str, &str)] = &[
    ("pk", "S"),
    ("access_token", "S"),
    ("expires_at_ms", "N"),
    ("fetched_at_ms", "N"),
    ("version", "N"),
    ("ttl", "N"),
];
const LEASE: &[(&str, &str)] = &[
    ("pk", "S"),
    ("owner", "S"),
    ("lease_until_ms", "N"),
    ("ttl", "N"),
];
const QUOTA: &[(&str, &str)] = &[
    ("pk", "S"),
    ("version", "N"),
    ("force_day", "N"),
    ("force_count", "N"),
    ("last_force_at_ms", "N"),
    ("blocked_until_ms", "N"),
    ("ttl", "N"),
];
const PENDING_STATE: &[(&str, &str)] = &[
    ("pk", "S"),
    ("browser_hash", "S"),
    ("scope", "S"),
    ("return_to", "S"),
    ("attempt", "N"),
    ("created_at_s", "N"),
    ("expires_at_s", "N"),
    ("ttl", "N"),
    ("status", "S"),
];
const BASE_USER: &[(&str, &str)] = &[
    ("pk", "S"),
    ("openid", "S"),
    ("scope", "S"),
    ("created_at_s", "N"),
    ("updated_at_s", "N"),
    ("version", "N"),
];
const PROFILE_AND_GRANT: &[(&str, &str)] = &[
    ("unionid", "S"),
    ("nickname", "S"),
    ("sex", "N"),
    ("province", "S"),
    ("city", "S"),
    ("country", "S"),
    ("headimgurl", "S"),
    ("privilege", "L"),
    ("profile_fetched_at_s", "N"),
    ("sns_scope", "S"),
    ("sns_access_token", "S"),
    ("sns_access_token_expires_at_s", "N"),
    ("sns_refresh_token", "S"),
    ("sns_refresh_token_expires_at_s", "N"),
];

fn with(
    base: &[(&'static str, &'static str)],
    more: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    base.iter().chain(more).copied().collect()
}

fn full_user(openid: &str) -> User {
    User {
        openid: openid.to_string(),
        unionid: Some("union-1".into()),
        scope: Scope::UserInfo,
        profile: Some(Profile {
            nickname: "小明🐼".into(),
            sex: 1,
            province: "广东".into(),
            city: "深圳".into(),
            country: "中国".into(),
            headimgurl: "https://thirdwx.qlogo.cn/x/132".into(),
            privilege: vec!["chinaunicom".into()],
            fetched_at_s: NOW,
        }),
        grant: Some(SnsGrant {
            scope: Scope::UserInfo,
            access_token: Secret::new("sns-at".into()),
            access_token_expires_at_s: NOW + 7200,
            refresh_token: Secret::new("sns-rt".into()),
            refresh_token_expires_at_s: NOW + 30 * 86400,
        }),
        created_at_s: NOW,
        updated_at_s: NOW,
        session_epoch: 0,
        version: 0,
    }
}

#[tokio::test]
async fn every_item_type_is_stored_in_the_same_shape_by_both_adapters() {
    let table = testkit::harness::dynalite_table().await;
    let store = EmbeddedStore::in_memory();
    let id = testkit::harness::unique("shape");

    let token = TokenRecord {
        access_token: Secret::new("ACCESS_TOKEN".into()),
        expires_at_ms: NOW * 1000 + 7_200_000,
        fetched_at_ms: NOW * 1000,
        version: 1,
    };
    let quota = QuotaRecord {
        version: 3,
        force_day: 20_000,
        force_count: 2,
        last_force_at_ms: NOW * 1000,
        blocked_until_ms: 0,
        ..QuotaRecord::default()
    };
    table.write_token(&id, &token, None).await.unwrap();
    store.write_token(&id, &token, None).await.unwrap();
    assert_same_item(&table, &store, &format!("token#{id}"), TOKEN).await;
    table
        .try_acquire_lease(&id, "me", 0, NOW * 1000)
        .await
        .unwrap();
    store
        .try_acquire_lease(&id, "me", 0, NOW * 1000)
        .await
        .unwrap();
    assert_same_item(&table, &store, &format!("lease#{id}"), LEASE).await;
    table.write_quota(&id, &quota, None).await.unwrap();
    store.write_quota(&id, &quota, None).await.unwrap();
    assert_same_item(&table, &store, &format!("quota#{id}"), QUOTA).await;

    let state = AuthState {
        state: id.clone(),
        browser_hash: "ab".repeat(32),
        scope: Scope::UserInfo,
        return_to: "/页面?x=1".into(),
        attempt: 1,
        created_at_s: NOW,
        expires_at_s: NOW + 600,
        status: StateStatus::Pending,
    };
    let pk = format!("oauth_state#{id}");
    table.insert_state(&state).await.unwrap();
    store.insert_state(&state).await.unwrap();
    assert_same_item(&table, &store, &pk, PENDING_STATE).await;
    table.consume_state(&id, NOW).await.unwrap();
    store.consume_state(&id, NOW).await.unwrap();
    let consumed = with(PENDING_STATE, &[("consumed_at_s", "N")]);
    assert_same_item(&table, &store, &pk, &consumed).await;
    table.complete_state(&id, "o1", NOW + 5).await.unwrap();
    store.complete_state(&id, "o1", NOW + 5).await.unwrap();
    let completed = with(&consumed, &[("openid", "S")]);
    assert_same_item(&table, &store, &pk, &completed).await;
    assert_eq!(
        dynamo_item(&table, &pk).await["status"],
        AttributeValue::S("completed".into())
    );

    let mut user = full_user(&id);
    table.put_user(&mut user.clone()).await.unwrap();
    store.put_user(&mut user).await.unwrap();
    let pk = format!("user#{id}");
    assert_same_item(&table, &store, &pk, &with(BASE_USER, PROFILE_AND_GRANT)).await;
    let base_only = User {
        unionid: None,
        scope: Scope::Base,
        profile: None,
        grant: None,
        ..user
    };
    table.put_user(&mut base_only.clone()).await.unwrap();
    store.put_user(&mut base_only.clone()).await.unwrap();
    assert_same_item(&table, &store, &pk, BASE_USER).await;
}

/// Items exactly as the earlier, hand-mapped adapters wrote them.
fn legacy_items(id: &str) -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"pk": format!("token#{id}"), "access_token": "OLD", "expires_at_ms": 7_200_000,
            "fetched_at_ms": 0, "version": 4, "ttl": 93_600}),
        serde_json::json!({"pk": format!("oauth_state#{id}"), "browser_hash": "h", "scope": "snsapi_base",
            "return_to": "/", "attempt": 2, "created_at_s": NOW, "expires_at_s": NOW + 600,
            "ttl": NOW + 600, "status": "completed", "consumed_at_s": NOW, "openid": "o9"}),
        serde_json::json!({"pk": format!("user#{id}"), "openid": id, "scope": "snsapi_userinfo",
            "nickname": "n", "sex": 2, "province": "", "city": "", "country": "", "headimgurl": "",
            "privilege": [], "profile_fetched_at_s": NOW, "created_at_s": 1, "updated_at_s": 2}),
    ]
}

async fn items_written_before_read_back<S: TokenStore + OAuthStateStore + UserStore>(
    store: &S,
    id: &str,
) {
    let token = store.read_token(id).await.unwrap().unwrap();
    assert_eq!(token.access_token.expose(), "OLD");
    assert_eq!((token.expires_at_ms, token.version), (7_200_000, 4));
    let state = store.get_state(id, NOW).await.unwrap().unwrap();
    assert_eq!(
        state.status,
        StateStatus::Completed {
            openid: "o9".into()
        }
    );
    assert_eq!((state.scope, state.attempt), (Scope::Base, 2));
    let user = store.get_user(id).await.unwrap().unwrap();
    assert_eq!(user.profile.clone().unwrap().sex, 2);
    assert_eq!((user.grant.clone(), user.updated_at_s), (None, 2));
    // Written before versioning: version 0, and the first versioned write over it succeeds once.
    assert_eq!((user.version, user.session_epoch), (0, 0));
    let mut stale = user.clone();
    let mut user = user;
    assert_eq!(store.put_user(&mut user).await.unwrap(), UserWrite::Applied);
    assert_eq!(user.version, 1);
    assert_eq!(
        store.put_user(&mut stale).await.unwrap(),
        UserWrite::Conflict
    );
}

#[tokio::test]
async fn items_written_by_earlier_versions_read_back_on_both_adapters() {
    let table = testkit::harness::dynalite_table().await;
    let id = testkit::harness::unique("legacy");
    for item in legacy_items(&id) {
        let attributes: HashMap<String, AttributeValue> = serde_dynamo::to_item(item).unwrap();
        table
            .client
            .put_item()
            .table_name(&table.table)
            .set_item(Some(attributes))
            .send()
            .await
            .unwrap();
    }
    items_written_before_read_back(&table, &id).await;

    let store = EmbeddedStore::in_memory();
    store
        .transact(|items| {
            for item in legacy_items(&id) {
                let pk = item["pk"].as_str().unwrap().to_string();
                items.insert(pk, item);
            }
            ((), true)
        })
        .unwrap();
    items_written_before_read_back(&store, &id).await;
}
