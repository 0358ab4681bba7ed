//! The web-authorization storage ports behave the same on DynamoDB (dynalite) and on the
//! embedded store: single-use conditional transitions, expired items read as absent, users
//! round-trip whole. Run under `node scripts/with-dynalite.mjs`.

use account::oauth::store::{OAuthStateStore, StateInsert, UserStore, UserWrite};
use account::oauth::{AuthState, Profile, Scope, SnsGrant, StateStatus, User};
use table::Transition;
use table::embedded::EmbeddedStore;
use wechat_protocol::secret::Secret;

const NOW: i64 = 1_800_000_000;

fn pending(state: &str) -> AuthState {
    AuthState {
        state: state.to_string(),
        browser_hash: "ab".repeat(32),
        scope: Scope::UserInfo,
        return_to: "/页面?x=1".into(),
        attempt: 1,
        created_at_s: NOW,
        expires_at_s: NOW + 600,
        status: StateStatus::Pending,
    }
}

fn user(openid: &str) -> User {
    User {
        openid: openid.to_string(),
        unionid: Some("union-0001".into()),
        scope: Scope::UserInfo,
        profile: Some(Profile {
            nickname: "小明🐼 Ming".into(),
            sex: 1,
            province: "广东".into(),
            city: "深圳".into(),
            country: "中国".into(),
            headimgurl: "https://thirdwx.qlogo.cn/mmopen/x/132".into(),
            privilege: vec!["chinaunicom".into(), "x".into()],
            fetched_at_s: NOW,
        }),
        grant: Some(SnsGrant {
            scope: Scope::UserInfo,
            access_token: Secret::new("sns-access".into()),
            access_token_expires_at_s: NOW + 7200,
            refresh_token: Secret::new("sns-refresh".into()),
            refresh_token_expires_at_s: NOW + 30 * 86400,
        }),
        created_at_s: NOW - 100,
        updated_at_s: NOW,
        session_epoch: 0,
        version: 0,
    }
}

async fn a_state_is_inserted_once_and_read_back<S: OAuthStateStore>(store: &S, id: &str) {
    let state = pending(id);
    assert_eq!(
        store.insert_state(&state).await.unwrap(),
        StateInsert::Inserted
    );
    assert_eq!(
        store.insert_state(&state).await.unwrap(),
        StateInsert::Collision
    );
    assert_eq!(store.get_state(id, NOW).await.unwrap(), Some(state));
    assert_eq!(store.get_state(&format!("{id}x"), NOW).await.unwrap(), None);
}

async fn a_state_is_consumed_exactly_once<S: OAuthStateStore>(store: &S, id: &str) {
    store.insert_state(&pending(id)).await.unwrap();
    assert_eq!(
        store.consume_state(id, NOW).await.unwrap(),
        Transition::Applied
    );
    assert_eq!(
        store.consume_state(id, NOW).await.unwrap(),
        Transition::Lost
    );
    assert_eq!(
        store.get_state(id, NOW).await.unwrap().unwrap().status,
        StateStatus::Consumed
    );
    assert_eq!(
        store
            .consume_state(&format!("{id}-missing"), NOW)
            .await
            .unwrap(),
        Transition::Lost
    );
}

async fn concurrent_consumers_have_one_winner<S: OAuthStateStore>(store: &S, id: &str) {
    store.insert_state(&pending(id)).await.unwrap();
    let results = futures_join(store, id).await;
    let winners = results
        .iter()
        .filter(|r| **r == Transition::Applied)
        .count();
    assert_eq!(winners, 1, "{results:?}");
}

async fn futures_join<S: OAuthStateStore>(store: &S, id: &str) -> Vec<Transition> {
    let (a, b, c, d) = tokio::join!(
        store.consume_state(id, NOW),
        store.consume_state(id, NOW),
        store.consume_state(id, NOW),
        store.consume_state(id, NOW),
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()]
}

async fn a_released_state_can_be_consumed_again<S: OAuthStateStore>(store: &S, id: &str) {
    store.insert_state(&pending(id)).await.unwrap();
    assert_eq!(
        store.release_state(id, NOW).await.unwrap(),
        Transition::Lost,
        "not consumed yet"
    );
    store.consume_state(id, NOW).await.unwrap();
    assert_eq!(
        store.release_state(id, NOW).await.unwrap(),
        Transition::Applied
    );
    assert_eq!(
        store.get_state(id, NOW).await.unwrap().unwrap().status,
        StateStatus::Pending
    );
    assert_eq!(
        store.consume_state(id, NOW).await.unwrap(),
        Transition::Applied
    );
}

async fn a_completed_state_records_the_openid_and_cannot_be_reused<S: OAuthStateStore>(
    store: &S,
    id: &str,
) {
    store.insert_state(&pending(id)).await.unwrap();
    assert_eq!(
        store.complete_state(id, "o1", NOW + 5).await.unwrap(),
        Transition::Lost,
        "pending"
    );
    store.consume_state(id, NOW).await.unwrap();
    assert_eq!(
        store.complete_state(id, "o1", NOW + 5).await.unwrap(),
        Transition::Applied
    );
    assert_eq!(
        store.get_state(id, NOW).await.unwrap().unwrap().status,
        StateStatus::Completed {
            openid: "o1".into()
        }
    );
    assert_eq!(
        store.consume_state(id, NOW).await.unwrap(),
        Transition::Lost
    );
    assert_eq!(
        store.release_state(id, NOW).await.unwrap(),
        Transition::Lost
    );
    assert_eq!(
        store.complete_state(id, "o2", NOW + 5).await.unwrap(),
        Transition::Lost
    );
}

async fn an_expired_state_is_absent_and_cannot_be_consumed<S: OAuthStateStore>(
    store: &S,
    id: &str,
) {
    store.insert_state(&pending(id)).await.unwrap();
    let expiry = NOW + 600;
    assert!(store.get_state(id, expiry - 1).await.unwrap().is_some());
    assert_eq!(store.get_state(id, expiry).await.unwrap(), None);
    assert_eq!(
        store.consume_state(id, expiry).await.unwrap(),
        Transition::Lost
    );
    assert_eq!(
        store.consume_state(id, expiry - 1).await.unwrap(),
        Transition::Applied
    );
    assert_eq!(
        store.release_state(id, expiry).await.unwrap(),
        Transition::Lost
    );
}

async fn users_round_trip_and_are_replaced_whole<S: UserStore>(store: &S, openid: &str) {
    assert_eq!(store.get_user(openid).await.unwrap(), None);
    let mut full = user(openid);
    store.put_user(&mut full).await.unwrap();
    assert_eq!(store.get_user(openid).await.unwrap(), Some(full.clone()));
    let mut without_grant = User {
        grant: None,
        unionid: None,
        updated_at_s: NOW + 5,
        ..full
    };
    store.put_user(&mut without_grant).await.unwrap();
    assert_eq!(store.get_user(openid).await.unwrap(), Some(without_grant));
}

async fn conformance<S: OAuthStateStore + UserStore>(store: &S, prefix: &str) {
    let id = |n: &str| format!("{prefix}{n}");
    a_state_is_inserted_once_and_read_back(store, &id("insert")).await;
    a_state_is_consumed_exactly_once(store, &id("consume")).await;
    concurrent_consumers_have_one_winner(store, &id("race")).await;
    a_released_state_can_be_consumed_again(store, &id("release")).await;
    a_completed_state_records_the_openid_and_cannot_be_reused(store, &id("complete")).await;
    an_expired_state_is_absent_and_cannot_be_consumed(store, &id("expired")).await;
    users_round_trip_and_are_replaced_whole(store, &id("user")).await;
    a_completed_state_is_replayable_only_until_its_grace_ends(store, &id("grace")).await;
    a_user_write_over_a_newer_version_is_a_conflict(store, &id("cas")).await;
    concurrent_first_writes_of_a_user_have_one_winner(store, &id("first")).await;
}

async fn a_completed_state_is_replayable_only_until_its_grace_ends<S: OAuthStateStore>(
    store: &S,
    id: &str,
) {
    store.insert_state(&pending(id)).await.unwrap();
    store.consume_state(id, NOW).await.unwrap();
    store.complete_state(id, "o1", NOW + 5).await.unwrap();
    assert!(store.get_state(id, NOW + 4).await.unwrap().is_some());
    assert_eq!(store.get_state(id, NOW + 5).await.unwrap(), None);
}

async fn a_user_write_over_a_newer_version_is_a_conflict<S: UserStore>(store: &S, openid: &str) {
    let mut first = user(openid);
    assert_eq!(
        store.put_user(&mut first).await.unwrap(),
        UserWrite::Applied
    );
    assert_eq!(first.version, 1);
    // Two writers read version 1: a profile refresh and a sign-in with a newer grant.
    let mut refresh = store.get_user(openid).await.unwrap().unwrap();
    let mut sign_in = refresh.clone();
    sign_in.grant.as_mut().unwrap().access_token = Secret::new("newer-grant".into());
    refresh.profile.as_mut().unwrap().nickname = "stale refresh".into();
    assert_eq!(
        store.put_user(&mut sign_in).await.unwrap(),
        UserWrite::Applied
    );
    assert_eq!(
        store.put_user(&mut refresh).await.unwrap(),
        UserWrite::Conflict
    );
    assert_eq!(
        refresh.version, 1,
        "a lost write does not advance the version"
    );
    let stored = store.get_user(openid).await.unwrap().unwrap();
    assert_eq!(stored, sign_in);
    assert_eq!(stored.version, 2);
    // A first write over an existing item is a conflict too.
    assert_eq!(
        store.put_user(&mut user(openid)).await.unwrap(),
        UserWrite::Conflict
    );
}

async fn concurrent_first_writes_of_a_user_have_one_winner<S: UserStore>(store: &S, openid: &str) {
    let (mut a, mut b, mut c) = (user(openid), user(openid), user(openid));
    let (a, b, c) = tokio::join!(
        store.put_user(&mut a),
        store.put_user(&mut b),
        store.put_user(&mut c)
    );
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let winners = outcomes
        .iter()
        .filter(|o| **o == UserWrite::Applied)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
}

testkit::on_both_adapters!(conformance {
    dynamodb: the_dynamodb_adapter_keeps_the_port_semantics("t"),
    embedded: the_embedded_adapter_keeps_the_port_semantics("t"),
});

#[tokio::test]
async fn both_adapters_store_the_same_item_shape() {
    let table = testkit::harness::dynalite_table().await;
    let embedded = EmbeddedStore::in_memory();
    let openid = testkit::harness::unique("o");
    table.put_user(&mut user(&openid)).await.unwrap();
    embedded.put_user(&mut user(&openid)).await.unwrap();
    let dynamo_item = table
        .client
        .get_item()
        .table_name(&table.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("user#{openid}")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let embedded_item = embedded
        .item_json(&format!("user#{openid}"))
        .unwrap()
        .unwrap();
    let mut dynamo_keys: Vec<_> = dynamo_item.keys().cloned().collect();
    let mut embedded_keys: Vec<_> = embedded_item.as_object().unwrap().keys().cloned().collect();
    dynamo_keys.sort();
    embedded_keys.sort();
    assert_eq!(dynamo_keys, embedded_keys);
    assert_eq!(
        dynamo_item["updated_at_s"],
        aws_sdk_dynamodb::types::AttributeValue::N(NOW.to_string())
    );
    assert_eq!(
        dynamo_item["nickname"],
        aws_sdk_dynamodb::types::AttributeValue::S("小明🐼 Ming".into())
    );
}
