//! Observing the sources: each read once per collection under its own timeout, measured, a
//! panic caught as that source's error. Each read gives one immutable [`Observation`]: the
//! value (with its provenance: how the raw source read each VG, when a cached API source
//! fetched its data) or a typed [`CollectorError`], and how long it took. Nothing is read from a
//! source after its observation.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::FutureExt;

use super::error::{CollectorError, SourceError};
use super::LvmLook;
use crate::lvm::missing_vg::{missing_vg_message, see_lvm};
use crate::lvm::{RawCollection, RawMethod, RawSource, VgReport};
use crate::tracked::flavors::{FlavorCatalog, FlavorListing};
use crate::tracked::{SourceKind, TrackedSource, TrackedUsage};

/// One read of one source.
#[derive(Debug, Clone)]
pub struct Observation<T> {
    /// What the source gave, or why it gave nothing.
    pub result: Result<T, CollectorError>,
    /// How long it took (up to its timeout).
    pub duration: Duration,
}

/// One read of the raw source.
#[derive(Debug, Clone)]
pub struct RawObservation {
    /// The report (shared: the metadata reader hands unchanged VGs' report to every collection).
    pub report: Observation<Arc<VgReport>>,
    /// How this very read got each VG; empty when it timed out or panicked (no provenance is
    /// shown rather than an earlier read's).
    pub methods: Vec<RawMethod>,
    /// The watched VGs the report lacks ([`CollectorError::VgMissing`]), when any.
    pub missing: Option<CollectorError>,
}

/// Everything one collection read, before any accounting.
#[derive(Debug, Clone)]
pub struct Observations {
    /// The raw source.
    pub raw: RawObservation,
    /// Each tracked source, in the configured order.
    pub tracked: Vec<(SourceKind, Observation<Arc<TrackedUsage>>)>,
    /// The compute API's flavor list, when the catalog is on.
    pub flavors: Option<Observation<Arc<FlavorListing>>>,
}

/// Runs `future` under `timeout`, measuring it; a panic (a bug) becomes an error of that
/// source alone, so that one broken source never takes the whole scrape down.
pub(super) async fn observe<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, CollectorError>>,
) -> Observation<T> {
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await
    {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(CollectorError::Panicked(message))
        }
        Err(_) => Err(CollectorError::TimedOut { after: timeout }),
    };
    Observation {
        result,
        duration: started.elapsed(),
    }
}

/// Reads the watched VGs: the figures and how each VG was read come back together, from this
/// one read. When a watched VG is missing and `look` is set, asks LVM what it sees (outside the
/// read's duration).
pub(super) async fn observe_raw(
    source: &dyn RawSource,
    watched_vgs: &[String],
    timeout: Duration,
    look: Option<&LvmLook>,
) -> RawObservation {
    let read = observe(timeout, async {
        Ok::<RawCollection, CollectorError>(source.collect_with_methods(watched_vgs).await)
    })
    .await;
    let (result, methods) = match read.result {
        Ok(collection) => (
            collection.report.map_err(CollectorError::from),
            collection.methods,
        ),
        Err(error) => (Err(error), Vec::new()),
    };
    let missing = match &result {
        Ok(report) => missing_vgs(report, watched_vgs, look).await,
        Err(_) => None,
    };
    RawObservation {
        report: Observation {
            result,
            duration: read.duration,
        },
        methods,
        missing,
    }
}

/// The watched VGs `report` lacks, as the lvm collector's error.
async fn missing_vgs(
    report: &VgReport,
    watched_vgs: &[String],
    look: Option<&LvmLook>,
) -> Option<CollectorError> {
    let missing: Vec<&str> = watched_vgs
        .iter()
        .filter(|name| report.vg(name).is_none())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let message = match look {
        None => missing_vg_message(&missing, None, false),
        Some(look) => {
            let seen = see_lvm(&look.lvm_path, &look.command_prefix, look.timeout).await;
            missing_vg_message(&missing, seen.as_ref(), look.devices_listed)
        }
    };
    Some(CollectorError::VgMissing {
        vgs: missing.iter().map(|name| name.to_string()).collect(),
        message,
    })
}

/// Reads one tracked source.
pub(super) async fn observe_tracked(
    source: &dyn TrackedSource,
    timeout: Duration,
) -> Observation<Arc<TrackedUsage>> {
    observe(timeout, async {
        source
            .collect()
            .await
            .map(Arc::new)
            .map_err(CollectorError::from)
    })
    .await
}

/// Reads the compute API's flavor list (from its cache, refreshed in the background).
pub(super) async fn observe_flavors(
    catalog: &FlavorCatalog,
    timeout: Duration,
) -> Observation<Arc<FlavorListing>> {
    observe(timeout, async {
        catalog
            .current()
            .await
            .map(Arc::new)
            .map_err(|text| CollectorError::Source(SourceError::Text(text)))
    })
    .await
}
