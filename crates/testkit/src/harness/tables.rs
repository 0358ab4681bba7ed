//! Table wrappers for tests: [`CountingTable`] counts every operation that reaches the table (to
//! prove a path makes none), [`SlowTable`] holds every operation back (to prove a path does not
//! wait on the table beyond its bound). Both delegate to a real adapter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use table::{StoreError, Table, Write, WriteOutcome};

/// Counts reads and writes; clones share the counts.
#[derive(Debug, Clone)]
pub struct CountingTable<T> {
    pub inner: T,
    reads: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
}

impl<T> CountingTable<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            reads: Arc::default(),
            writes: Arc::default(),
        }
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Reads and writes together.
    pub fn operations(&self) -> u64 {
        self.reads() + self.writes()
    }
}

impl<T: Table> Table for CountingTable<T> {
    async fn read(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(pk).await
    }

    async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(write).await
    }
}

/// Waits `delay` (on tokio's clock, so a paused-time test runs it instantly) before every
/// operation.
#[derive(Debug, Clone)]
pub struct SlowTable<T> {
    pub inner: T,
    pub delay: Duration,
}

impl<T: Table> Table for SlowTable<T> {
    async fn read(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.read(pk).await
    }

    async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.write(write).await
    }
}
