//! The integration tests' shared harness: log capture ([`Logs`]), the dynalite table, unique keys,
//! the token tests' service and store wrappers ([`tokens`]), and table wrappers that count or
//! slow every operation ([`tables`]). Integration tests that need DynamoDB run under
//! `node scripts/with-dynalite.mjs` (as `make test` does), which exports the endpoint and table.

use table::dynamo::DynamoTable;

mod logs;
pub mod tables;
pub mod tokens;

pub use logs::Logs;

/// The dynalite table prepared by `scripts/with-dynalite.mjs`. Fails loudly (never skips) when
/// the test is run without it, because a skipped DynamoDB test proves nothing.
pub async fn dynalite_table() -> DynamoTable {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "DynamoDB tests need dynalite on loopback: run them with `make test` \
         (or `node scripts/with-dynalite.mjs cargo test`); AWS_ENDPOINT_URL_DYNAMODB={endpoint:?}"
    );
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME is exported by with-dynalite");
    let sdk = account::aws::sdk_config().await;
    DynamoTable::new(account::aws::dynamodb_client(&sdk), table)
}

/// A key suffix unique to this test run, so tests sharing the table never see each other's items.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{nanos}-{n}", std::process::id())
}

/// An AppID unique to this test run, shaped as `WECHAT_APP_ID` must be (`wx` and 16 hexadecimal
/// digits: this process, the time, a counter), for tests that keep a token item per app in the
/// shared table.
pub fn unique_app_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "wx{:04x}{nanos:08x}{:04x}",
        std::process::id() & 0xffff,
        n & 0xffff
    )
}

/// One storage contract as two tests, on both adapters: `$on_dynamodb` runs `$contract` on the
/// dynalite table under a key unique to the run (`$prefix`…), `$on_embedded` on a fresh in-memory
/// embedded store under `$id`. `$contract` is an `async fn(&impl Table, &str)`.
///
/// ```ignore
/// testkit::on_both_adapters!(the_kernel_keeps_its_semantics {
///     dynamodb: the_kernel_on_dynamodb_keeps_its_semantics("k"),
///     embedded: the_kernel_on_the_embedded_store_keeps_its_semantics("k"),
/// });
/// ```
#[macro_export]
macro_rules! on_both_adapters {
    ($contract:path {
        dynamodb: $on_dynamodb:ident($prefix:literal),
        embedded: $on_embedded:ident($id:literal) $(,)?
    }) => {
        #[tokio::test]
        async fn $on_dynamodb() {
            let table = $crate::harness::dynalite_table().await;
            $contract(&table, &$crate::harness::unique($prefix)).await;
        }

        #[tokio::test]
        async fn $on_embedded() {
            $contract(&::table::embedded::EmbeddedStore::in_memory(), $id).await;
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_app_ids_are_shaped_like_app_ids_and_differ() {
        let (a, b) = (super::unique_app_id(), super::unique_app_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(account::config::is_app_id(&id), "{id}");
        }
    }
}
