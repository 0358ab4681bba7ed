//! Embedded adapter for local development and tests: the same items as the DynamoDB table, kept in
//! memory behind one lock (so conditional writes are atomic) and persisted to a JSON file after
//! every change (so a restart of `make run` keeps its token and does not burn quota). The file
//! holds tokens, so only its owner may read it (mode 0600). The table kernel on it: [`table`].

mod table;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::StoreError;

/// Items by partition key, each a JSON object shaped like its DynamoDB item.
pub type Items = BTreeMap<String, Value>;

#[derive(Debug, Clone, Default)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    path: Option<PathBuf>,
    items: Mutex<Items>,
}

impl EmbeddedStore {
    /// A store that lives only as long as the process.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Open (or create) a store persisted at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let items = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Items::new(),
            Err(e) => return Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path: Some(path),
                items: Mutex::new(items),
            }),
        })
    }

    /// Where the store persists, if it does (`None`: in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Run `f` atomically over all items; if it returns `changed = true`, persist.
    /// Conditional writes are written as: read, check, write — all inside one `transact`.
    pub fn transact<R>(&self, f: impl FnOnce(&mut Items) -> (R, bool)) -> Result<R, StoreError> {
        let mut items = self
            .inner
            .items
            .lock()
            .map_err(|_| StoreError::Unavailable("embedded store lock poisoned".into()))?;
        let (result, changed) = f(&mut items);
        if let (true, Some(path)) = (changed, &self.inner.path) {
            drop_long_expired(&mut items, now_s());
            persist(path, &items)?;
        }
        Ok(result)
    }

    /// A copy of the stored JSON of the item at partition key `pk` (tests, debugging).
    pub fn item_json(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        self.transact(|items| (items.get(pk).cloned(), false))
    }
}

/// How long past its `ttl` an item may linger before a persisted store drops it. DynamoDB deletes
/// expired items lazily (typically within days); the domain already treats them as absent, so
/// dropping them only keeps a long-running `make run` store (every anonymous sign-in leaves a
/// state item) from growing without bound.
pub const EXPIRED_KEPT_S: i64 = 3_600;

/// Drop the items whose `ttl` passed more than [`EXPIRED_KEPT_S`] before `now_s`.
fn drop_long_expired(items: &mut Items, now_s: i64) {
    items.retain(|_, item| {
        item.get(crate::TTL)
            .and_then(Value::as_i64)
            .is_none_or(|ttl| ttl + EXPIRED_KEPT_S > now_s)
    });
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Write to a temporary file and rename, so a crash of the process never leaves a half-written
/// store. Compact and without an fsync: this is the development store, rewritten on every change,
/// and what a power cut could lose is a token the service fetches again.
fn persist(path: &Path, items: &Items) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(items).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut file = owner_only_file(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Create (or truncate) `path` readable and writable by its owner only: the store holds tokens.
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // `mode` applies only when the file is created; a leftover temp file may be wider.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_persisted_store_drops_items_long_past_their_ttl_when_it_writes() {
        let dir = std::env::temp_dir().join(format!("embedded-ttl-{}", std::process::id()));
        let path = dir.join("store.json");
        let _ = std::fs::remove_file(&path);
        let store = EmbeddedStore::open(&path).unwrap();
        let now = now_s();
        store
            .transact(|items| {
                items.insert("old#1".into(), json!({"ttl": now - EXPIRED_KEPT_S - 1}));
                items.insert("recent#1".into(), json!({"ttl": now - 10}));
                items.insert("live#1".into(), json!({"ttl": now + 600}));
                items.insert("kept#1".into(), json!({"v": 1}));
                ((), true)
            })
            .unwrap();
        let reopened = EmbeddedStore::open(&path).unwrap();
        assert_eq!(reopened.item_json("old#1").unwrap(), None);
        for kept in ["recent#1", "live#1", "kept#1"] {
            assert!(reopened.item_json(kept).unwrap().is_some(), "{kept}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn changes_persist_across_reopen() {
        let dir = std::env::temp_dir().join(format!("embedded-{}", std::process::id()));
        let path = dir.join("store.json");
        let _ = std::fs::remove_file(&path);
        let store = EmbeddedStore::open(&path).unwrap();
        store
            .transact(|items| (items.insert("k#1".into(), json!({"v": 1})), true))
            .unwrap();
        let reopened = EmbeddedStore::open(&path).unwrap();
        assert_eq!(reopened.item_json("k#1").unwrap(), Some(json!({"v": 1})));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("embedded-mode-{}", std::process::id()));
        let path = dir.join("store.json");
        std::fs::create_dir_all(&dir).unwrap();
        // A world-readable leftover temp file must not pass its mode on to the store.
        std::fs::write(path.with_extension("tmp"), b"{}").unwrap();
        std::fs::set_permissions(
            path.with_extension("tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let store = EmbeddedStore::open(&path).unwrap();
        store
            .transact(|items| (items.insert("k#1".into(), json!({"v": 1})), true))
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_reported_not_ignored() {
        let path =
            std::env::temp_dir().join(format!("embedded-corrupt-{}.json", std::process::id()));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            EmbeddedStore::open(&path),
            Err(StoreError::Corrupt(_))
        ));
        std::fs::remove_file(path).unwrap();
    }
}
