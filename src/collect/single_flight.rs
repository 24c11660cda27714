//! [`SingleFlight`]: concurrent scrapes share one in-flight collection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::{Snapshot, SnapshotCollector};

/// The last finished collection and when it finished.
type LatestCollection = (Instant, Arc<Snapshot>);

type SharedCollection = Shared<BoxFuture<'static, Result<Arc<Snapshot>, String>>>;

/// Shares one in-flight collection among concurrent callers. A caller that arrives while a
/// collection runs waits for that one; a caller that arrives after it finished starts a new one,
/// so no result is ever served twice.
pub struct SingleFlight {
    collector: Arc<SnapshotCollector>,
    in_flight: Arc<Mutex<Option<SharedCollection>>>,
    latest: Arc<Mutex<Option<LatestCollection>>>,
}

impl SingleFlight {
    /// Wraps a collector.
    pub fn new(collector: Arc<SnapshotCollector>) -> Self {
        Self {
            collector,
            in_flight: Arc::new(Mutex::new(None)),
            latest: Arc::new(Mutex::new(None)),
        }
    }

    /// The last finished collection if it finished less than `max_age` ago, else the result of
    /// [`SingleFlight::snapshot`]. For views (the status page) that may show a collection a
    /// scrape just made instead of running LVM again.
    pub async fn recent(&self, max_age: Duration) -> Result<Arc<Snapshot>, String> {
        let recent = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, snapshot)| Arc::clone(snapshot));
        match recent {
            Some(snapshot) => Ok(snapshot),
            None => self.snapshot().await,
        }
    }

    /// The result of the in-flight collection, starting one if none runs. The collection runs on
    /// its own task: a caller that goes away does not cancel it for the others.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        let shared = {
            let mut slot = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(shared) => shared.clone(),
                None => {
                    let collector = Arc::clone(&self.collector);
                    let in_flight = Arc::clone(&self.in_flight);
                    let latest = Arc::clone(&self.latest);
                    let task = tokio::spawn(async move {
                        let snapshot = Arc::new(collector.collect().await);
                        *latest.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((Instant::now(), Arc::clone(&snapshot)));
                        *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        snapshot
                    });
                    let shared = async move {
                        task.await
                            .map_err(|e| format!("collection task failed: {e}"))
                    }
                    .boxed()
                    .shared();
                    *slot = Some(shared.clone());
                    shared
                }
            }
        };
        shared.await
    }
}
