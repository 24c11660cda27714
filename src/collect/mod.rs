//! One collection: every source read concurrently under its own timeout, then accounted.
//!
//! [`SnapshotCollector::collect`] never fails as a whole: a source that errors or times out is reported
//! in its [`CollectorStatus`] and the figures that need it are left out of the [`Snapshot`].
//! [`SingleFlight`] makes concurrent scrapes share one in-flight collection, so a burst of
//! scrapes costs one LVM execution.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod observe;
mod single_flight;

pub use single_flight::SingleFlight;

use crate::accounting::audit::{audit_collection, Audit};
use crate::accounting::drift::{
    account_host_with, instances_here, source_figures, with_flavors_from, HostAccounting,
    SourceFigures,
};
use crate::accounting::fit::{flavor_fit, FlavorFitSummary};
use crate::accounting::orphans::{
    doubt_local_sources, is_empty_local, orphan_lvs, LocalSourceDoubt, OrphanReasons,
};
use crate::lvm::missing_vg::{missing_vg_message, see_lvm};
use crate::lvm::{RawSource, VgReport};
use crate::tracked::flavors::{FlavorCatalog, FlavorListing, NamedFlavor};
use crate::tracked::orphans::OrphanResolver;
use crate::tracked::{SourceKind, TrackedSource, TrackedUsage};
use observe::{caught, timed};

/// The collector label of the raw source.
pub const LVM_COLLECTOR: &str = "lvm";

/// The collector label of the compute API's flavor list (with the nova source only).
pub const FLAVORS_COLLECTOR: &str = "flavors";

/// How one collector fared on one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorStatus {
    /// `lvm`, or the tracked source's name.
    pub name: &'static str,
    /// It produced usable data on this collection.
    pub success: bool,
    /// How long it took (up to its timeout).
    pub duration: Duration,
    /// Unix time of its last success, on this or an earlier collection. For a cached API source
    /// this is when its data was read from the API, not when it was served.
    pub last_success_unix: Option<f64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Everything one collection produced; rendered into metrics, the status page or a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// One entry per collector, `lvm` first.
    pub collectors: Vec<CollectorStatus>,
    /// The accounting of the watched VGs; `None` when LVM could not be read at all.
    pub host: Option<HostAccounting>,
    /// Figures of each tracked source that succeeded, for VG `nova_vg`.
    pub sources: Vec<(SourceKind, SourceFigures)>,
    /// The VG the tracked figures apply to.
    pub nova_vg: String,
    /// The source that drives the derived metrics.
    pub primary: Option<SourceKind>,
    /// Placement compared with the local source and LVM, when all three succeeded.
    pub audit: Option<Audit>,
    /// Unix time the collection finished.
    pub finished_unix: f64,
    /// How this collection's raw source read each VG (empty unless it is the metadata reader,
    /// and when the raw collection timed out).
    pub raw_methods: Vec<crate::lvm::RawMethod>,
    /// How many more instances of each flavor fit, when flavors are known and nova's VG was
    /// accounted with a tracked source.
    pub flavor_fit: Option<FlavorFitSummary>,
    /// The orphan LVs of nova's VG and why each is one; `None` when no tracked source told
    /// instances from orphans.
    pub orphans: Option<OrphanReasons>,
    /// The local sources (libvirt, file) that list no instance beside instance disks in nova's
    /// VG; `None` when LVM did not report nova's VG (nothing to compare with).
    pub local_source_doubts: Option<Vec<LocalSourceDoubt>>,
}

/// Reads all sources and accounts them.
pub struct SnapshotCollector {
    raw: Box<dyn RawSource>,
    raw_timeout: Duration,
    tracked: Vec<Box<dyn TrackedSource>>,
    tracked_timeout: Duration,
    primary: Option<SourceKind>,
    watched_vgs: Vec<String>,
    nova_vg: String,
    lv_series_limit: usize,
    flavors: FlavorSettings,
    last_success: Mutex<HashMap<&'static str, f64>>,
    last_error: Mutex<HashMap<&'static str, String>>,
    orphan_resolver: Option<Arc<OrphanResolver>>,
    last_doubts: Mutex<Vec<(SourceKind, bool)>>,
    lvm_look: Option<LvmLook>,
}

/// How to ask LVM what it sees when a watched VG is missing ([`crate::lvm::missing_vg`]).
#[derive(Debug, Clone)]
pub struct LvmLook {
    /// The `lvm` program.
    pub lvm_path: std::path::PathBuf,
    /// The command prefix it runs behind (e.g. `sudo -n`).
    pub command_prefix: Vec<String>,
    /// How long it may take.
    pub timeout: Duration,
    /// `--collector.lvm.devices` was given (no point suggesting it).
    pub devices_listed: bool,
}

/// The flavors of the flavor fit.
#[derive(Debug)]
struct FlavorSettings {
    configured: Vec<NamedFlavor>,
    limit: usize,
    catalog: Option<FlavorCatalog>,
}

impl Default for FlavorSettings {
    fn default() -> Self {
        Self {
            configured: Vec::new(),
            limit: crate::accounting::fit::DEFAULT_FLAVOR_LIMIT,
            catalog: None,
        }
    }
}

/// What the collector needs to know besides its sources.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Upper bound for the raw source (the LVM command has its own, shorter, kill timeout).
    pub raw_timeout: Duration,
    /// Timeout of each tracked source.
    pub tracked_timeout: Duration,
    /// The source that drives derived metrics.
    pub primary: Option<SourceKind>,
    /// VGs to read.
    pub watched_vgs: Vec<String>,
    /// nova's VG.
    pub nova_vg: String,
    /// Per-VG cap of per-LV series.
    pub lv_series_limit: usize,
}

impl SnapshotCollector {
    /// A collector over the given sources.
    pub fn new(
        raw: Box<dyn RawSource>,
        tracked: Vec<Box<dyn TrackedSource>>,
        settings: CollectorSettings,
    ) -> Self {
        Self {
            raw,
            raw_timeout: settings.raw_timeout,
            tracked,
            tracked_timeout: settings.tracked_timeout,
            primary: settings.primary,
            watched_vgs: settings.watched_vgs,
            nova_vg: settings.nova_vg,
            lv_series_limit: settings.lv_series_limit,
            flavors: FlavorSettings::default(),
            last_success: Mutex::new(HashMap::new()),
            last_error: Mutex::new(HashMap::new()),
            orphan_resolver: None,
            last_doubts: Mutex::new(Vec::new()),
            lvm_look: None,
        }
    }

    /// When a watched VG is missing, asks LVM (as `look` says) which VGs and PVs it sees, and
    /// says so in the lvm collector's error.
    pub fn with_lvm_look(mut self, look: LvmLook) -> Self {
        self.lvm_look = Some(look);
        self
    }

    /// Logs a doubted local source when the doubt starts or changes (contradicted or not), and
    /// its end, so that a persistent condition is said once.
    fn log_doubts(&self, doubts: Option<&[LocalSourceDoubt]>) {
        let Some(doubts) = doubts else { return };
        let now: Vec<(SourceKind, bool)> = doubts
            .iter()
            .map(|d| (d.source, d.contradicted()))
            .collect();
        let mut last = self.last_doubts.lock().unwrap_or_else(|e| e.into_inner());
        if *last == now {
            return;
        }
        for doubt in doubts {
            tracing::warn!(
                source = doubt.source.as_str(),
                vg = %doubt.vg,
                instances = doubt.instances,
                contradicted = doubt.contradicted(),
                "a local source lists no instance beside instance disks: check where it reads before removing any orphan"
            );
        }
        if now.is_empty() {
            tracing::info!("every local source lists instances again");
        }
        *last = now;
    }

    /// Looks up why each orphan LV is one with `resolver` (the nova source's compute API).
    pub fn with_orphan_resolver(mut self, resolver: OrphanResolver) -> Self {
        self.orphan_resolver = Some(Arc::new(resolver));
        self
    }

    /// The orphans of nova's VG as the accounting classified them (with the primary source's
    /// `tracked` instances), each with its reason: looked up when a resolver is set, waiting for
    /// it no longer than the tracked timeout, else `unknown`. Never fails the collection.
    async fn orphans(&self, host: Option<&HostAccounting>) -> Option<OrphanReasons> {
        let mut orphans = orphan_lvs(host?, &self.nova_vg)?;
        if let Some(resolver) = &self.orphan_resolver {
            let verdicts = resolver
                .verdicts(&orphans.uuids(), self.tracked_timeout)
                .await;
            for lv in &mut orphans.lvs {
                if let Some(verdict) = verdicts.get(&lv.uuid) {
                    lv.verdict = verdict.clone();
                }
            }
        }
        Some(orphans)
    }

    /// Runs one collection. Never fails: failures are in the collector statuses.
    pub async fn collect(&self) -> Snapshot {
        // The figures and how each VG was read come back together, from this one collection.
        let raw = timed(
            self.raw_timeout,
            caught(async {
                let collection = self.raw.collect_with_methods(&self.watched_vgs).await;
                Ok::<_, std::convert::Infallible>(collection)
            }),
        );
        let tracked = futures::future::join_all(
            self.tracked
                .iter()
                .map(|source| timed(self.tracked_timeout, caught(source.collect()))),
        );
        let listed = async {
            match &self.flavors.catalog {
                Some(catalog) => Some(timed(self.tracked_timeout, caught(catalog.current())).await),
                None => None,
            }
        };
        let ((raw_result, raw_duration), tracked_results, listed) =
            tokio::join!(raw, tracked, listed);

        // A collection that timed out or panicked has no provenance: none is shown rather than
        // an earlier collection's.
        let (raw_result, raw_methods) = match raw_result {
            Ok(collection) => (
                collection.report.map_err(|e| e.to_string()),
                collection.methods,
            ),
            Err(error) => (Err(error), Vec::new()),
        };
        let mut statuses = Vec::with_capacity(1 + self.tracked.len());
        let report: Option<Arc<VgReport>> = match raw_result {
            Ok(report) => {
                let missing: Vec<&str> = self
                    .watched_vgs
                    .iter()
                    .filter(|name| report.vg(name).is_none())
                    .map(String::as_str)
                    .collect();
                let error = match (&self.lvm_look, missing.is_empty()) {
                    (_, true) => None,
                    (None, false) => Some(missing_vg_message(&missing, None, false)),
                    (Some(look), false) => {
                        let seen =
                            see_lvm(&look.lvm_path, &look.command_prefix, look.timeout).await;
                        Some(missing_vg_message(
                            &missing,
                            seen.as_ref(),
                            look.devices_listed,
                        ))
                    }
                };
                statuses.push(self.status(LVM_COLLECTOR, raw_duration, error, None));
                Some(report)
            }
            Err(error) => {
                statuses.push(self.status(LVM_COLLECTOR, raw_duration, Some(error), None));
                None
            }
        };

        let nova_vg_size = report
            .as_ref()
            .and_then(|r| r.vg(&self.nova_vg))
            .map(|vg| vg.size_bytes);
        // A source whose figures do not fit the accounting fails alone, naming them.
        let mut outcomes: Vec<(SourceKind, Duration, Result<_, String>)> = self
            .tracked
            .iter()
            .zip(tracked_results)
            .map(|(source, (result, duration))| {
                let outcome = result.and_then(|usage| {
                    source_figures(&usage, nova_vg_size)
                        .map(|figures| (usage, figures))
                        .map_err(|e| e.to_string())
                });
                (source.kind(), duration, outcome)
            })
            .collect();
        let primary_index = self.primary.and_then(|kind| {
            outcomes
                .iter()
                .position(|(k, _, outcome)| *k == kind && outcome.is_ok())
        });
        let mut host = None;
        if let Some(report) = &report {
            // Every source that answered vetoes the orphan verdict for the instances it places
            // here, whichever is primary (an instance with no allocation is still running).
            let here = instances_here(
                outcomes
                    .iter()
                    .filter_map(|(_, _, outcome)| Some(&outcome.as_ref().ok()?.0)),
            );
            let account = |usage: Option<&TrackedUsage>| {
                account_host_with(
                    report,
                    &self.watched_vgs,
                    Some(&self.nova_vg),
                    usage,
                    &here,
                    self.lv_series_limit,
                )
            };
            let primary_usage = primary_index
                .and_then(|i| outcomes[i].2.as_ref().ok())
                .map(|(usage, _)| usage);
            // Placement knows no flavors: the other sources' name a disk = 0 root LV.
            let with_flavors = primary_usage.and_then(|primary| {
                with_flavors_from(
                    primary,
                    outcomes
                        .iter()
                        .filter_map(|(_, _, outcome)| Some(&outcome.as_ref().ok()?.0)),
                )
            });
            let primary_usage = with_flavors.as_ref().or(primary_usage);
            let accounted = match account(primary_usage) {
                // With LVM's figures alone it fits: the primary source's figures are to blame.
                Err(error) if primary_usage.is_some() => {
                    if let Some(i) = primary_index {
                        outcomes[i].2 = Err(error.to_string());
                    }
                    account(None)
                }
                accounted => accounted,
            };
            match accounted {
                Ok(accounting) => host = Some(accounting),
                Err(error) => {
                    statuses[0] =
                        self.status(LVM_COLLECTOR, raw_duration, Some(error.to_string()), None)
                }
            }
        }

        let usages: Vec<(SourceKind, &TrackedUsage)> = outcomes
            .iter()
            .filter_map(|(kind, _, outcome)| Some((*kind, &outcome.as_ref().ok()?.0)))
            .collect();
        let audit = audit_collection(report.as_deref(), &self.watched_vgs, &usages, self.primary);
        // The flavors of the instances defined here (the libvirt source), whichever is primary.
        let domain_flavors: Vec<NamedFlavor> = usages
            .iter()
            .flat_map(|(_, usage)| usage.flavors.iter().cloned())
            .collect();
        // As the accounting classified them: none without host accounting or a primary source.
        let orphans = self.orphans(host.as_ref()).await;
        let local_source_doubts = report
            .as_ref()
            .filter(|report| report.vg(&self.nova_vg).is_some())
            .map(|report| {
                // The walk over nova's LVs runs only when a local source lists no instance.
                if !usages
                    .iter()
                    .any(|(kind, usage)| is_empty_local(*kind, usage))
                {
                    return Vec::new();
                }
                let lv_bytes = crate::accounting::audit::nova_lv_bytes(
                    report,
                    std::slice::from_ref(&self.nova_vg),
                );
                doubt_local_sources(&self.nova_vg, &lv_bytes, &usages)
            });
        self.log_doubts(local_source_doubts.as_deref());

        let mut sources = Vec::new();
        for (kind, duration, outcome) in outcomes {
            match outcome {
                Ok((usage, figures)) => {
                    statuses.push(self.status(kind.as_str(), duration, None, usage.fetched_unix));
                    sources.push((kind, figures));
                }
                Err(error) => {
                    statuses.push(self.status(kind.as_str(), duration, Some(error), None))
                }
            }
        }

        let listing = listed.map(|(result, duration)| {
            let fetched = result.as_ref().ok().map(|l| l.fetched_unix);
            let error = result.as_ref().err().cloned();
            statuses.push(self.status(FLAVORS_COLLECTOR, duration, error, fetched));
            result.ok()
        });
        let flavor_fit = self.flavor_fit(
            report.as_deref(),
            host.as_ref(),
            &sources,
            listing.flatten(),
            domain_flavors,
        );

        Snapshot {
            collectors: statuses,
            host,
            sources,
            nova_vg: self.nova_vg.clone(),
            primary: self.primary,
            audit,
            finished_unix: unix_now(),
            raw_methods,
            flavor_fit,
            orphans,
            local_source_doubts,
        }
    }

    /// Adds the flavors whose fit is computed: `configured` (always), the compute API's list
    /// from `catalog` (when the nova source is on), at most `limit` in all. The flavors of the
    /// domains defined here come with the libvirt source's data on every collection.
    pub fn with_flavors(
        mut self,
        configured: Vec<NamedFlavor>,
        limit: usize,
        catalog: Option<FlavorCatalog>,
    ) -> Self {
        self.flavors = FlavorSettings {
            configured,
            limit,
            catalog,
        };
        self
    }

    /// The flavor fit of nova's VG ([`flavor_fit`]): needs its accounting with a tracked source
    /// (corrected free and the scheduler's view) and at least one flavor. A flavor the compute
    /// API lists wins over a domain's flavor of the same name (the API's is the flavor as it is
    /// now).
    fn flavor_fit(
        &self,
        report: Option<&VgReport>,
        host: Option<&HostAccounting>,
        sources: &[(SourceKind, SourceFigures)],
        listing: Option<FlavorListing>,
        domain_flavors: Vec<NamedFlavor>,
    ) -> Option<FlavorFitSummary> {
        let mut listed = listing.map(|l| l.flavors).unwrap_or_default();
        listed.extend(domain_flavors);
        let primary_figures = sources
            .iter()
            .find(|(kind, _)| Some(*kind) == self.primary)
            .map(|(_, figures)| figures);
        flavor_fit(
            &self.flavors.configured,
            &listed,
            self.flavors.limit,
            &self.nova_vg,
            report,
            host,
            primary_figures,
        )
    }

    /// Builds a status, logs a failure and remembers the time of a success: `data_unix` when
    /// the data is older than this collection (a cached source), else now.
    fn status(
        &self,
        name: &'static str,
        duration: Duration,
        error: Option<String>,
        data_unix: Option<f64>,
    ) -> CollectorStatus {
        let mut last_success = self.last_success.lock().unwrap_or_else(|e| e.into_inner());
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match &error {
            None => {
                last_success.insert(name, data_unix.unwrap_or_else(unix_now));
                if last_error.remove(name).is_some() {
                    tracing::info!(collector = name, "collector recovered");
                }
            }
            // The same failure on every scrape is said once (then at debug level), so that a
            // persistent condition does not flood the log; a different failure is said again.
            Some(message) if last_error.get(name) == Some(message) => {
                tracing::debug!(collector = name, error = %message, "collector still failing")
            }
            Some(message) => {
                tracing::warn!(collector = name, error = %message, "collector failed");
                last_error.insert(name, message.clone());
            }
        }
        CollectorStatus {
            name,
            success: error.is_none(),
            duration,
            last_success_unix: last_success.get(name).copied(),
            error,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::{LvmError, Vg};
    use crate::tracked::{Flavor, HostDiskSettings, TrackedError, TrackedInstance};
    use crate::units::GIB;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountingRaw {
        calls: Arc<AtomicUsize>,
        delay: Duration,
        vg_free_bytes: u64,
    }

    #[async_trait]
    impl RawSource for CountingRaw {
        async fn collect(&self, _vg_names: &[String]) -> Result<VgReport, LvmError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(VgReport {
                vgs: vec![Vg {
                    name: "vms-group".into(),
                    size_bytes: 20 * GIB,
                    free_bytes: self.vg_free_bytes,
                    extent_size_bytes: 4 << 20,
                }],
                lvs: vec![],
            })
        }
    }

    struct FixedTracked(Result<Vec<TrackedInstance>, String>);

    #[async_trait]
    impl TrackedSource for FixedTracked {
        fn kind(&self) -> SourceKind {
            SourceKind::File
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            match &self.0 {
                Ok(instances) => Ok(TrackedUsage::from_local(
                    instances.clone(),
                    &HostDiskSettings::default(),
                )),
                Err(message) => Err(TrackedError::Invalid {
                    path: "instances.json".into(),
                    message: message.clone(),
                }),
            }
        }
    }

    struct HangingTracked;

    #[async_trait]
    impl TrackedSource for HangingTracked {
        fn kind(&self) -> SourceKind {
            SourceKind::Libvirt
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            unreachable!("the collector's timeout fires first")
        }
    }

    fn settings(primary: SourceKind) -> CollectorSettings {
        CollectorSettings {
            raw_timeout: Duration::from_secs(5),
            tracked_timeout: Duration::from_millis(200),
            primary: Some(primary),
            watched_vgs: vec!["vms-group".into()],
            nova_vg: "vms-group".into(),
            lv_series_limit: 100,
        }
    }

    fn instance() -> TrackedInstance {
        TrackedInstance::from_flavor(
            "3f5e6c1a-1111-2222-3333-444455556666",
            &Flavor {
                root_gb: 5,
                ..Flavor::default()
            },
        )
    }

    #[tokio::test]
    async fn a_failing_tracked_source_leaves_raw_figures_and_drops_derived_ones() {
        let raw = CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 20 * GIB,
        };
        let tracked: Vec<Box<dyn TrackedSource>> = vec![Box::new(FixedTracked(Err("bad".into())))];
        let collector = SnapshotCollector::new(Box::new(raw), tracked, settings(SourceKind::File));
        let snapshot = collector.collect().await;
        assert!(snapshot.collectors[0].success);
        assert!(!snapshot.collectors[1].success);
        assert_eq!(
            snapshot.collectors[1].error.as_deref(),
            Some("instances.json: bad")
        );
        let host = snapshot.host.expect("raw figures");
        assert!(host.vgs[0].tracked.is_none());
        assert!(snapshot.sources.is_empty());
    }

    /// A source that returns the given usage as it is.
    struct UsageTracked(SourceKind, TrackedUsage);

    #[async_trait]
    impl TrackedSource for UsageTracked {
        fn kind(&self) -> SourceKind {
            self.0
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            Ok(self.1.clone())
        }
    }

    #[tokio::test]
    async fn figures_that_do_not_fit_fail_their_source_alone() {
        let raw = CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 15 * GIB,
        };
        let largest = Flavor {
            root_gb: crate::tracked::NOVA_MAX_INT,
            ephemeral_gb: crate::tracked::NOVA_MAX_INT,
            swap_mb: crate::tracked::NOVA_MAX_INT,
            boot_from_volume: false,
        };
        let wrapping = TrackedUsage::from_local(
            (1..=5)
                .map(|i| {
                    TrackedInstance::from_flavor(
                        format!("{i:08}-0000-4000-8000-000000000000"),
                        &largest,
                    )
                })
                .collect(),
            &HostDiskSettings::default(),
        );
        // The file source fits on its own but not with LVM's figures: its own free space of
        // 2^63 - 1 against a corrected free space near -2^63 over-estimates beyond 64 bits.
        let mut extreme = TrackedUsage::from_local(vec![instance()], &HostDiskSettings::default());
        extreme.tracked_used_bytes = Some(crate::accounting::drift::MAX_ACCOUNTED_BYTES);
        extreme.scheduler_free_bytes = Some(i64::MAX);
        let tracked: Vec<Box<dyn TrackedSource>> = vec![
            Box::new(UsageTracked(SourceKind::Libvirt, wrapping)),
            Box::new(UsageTracked(SourceKind::File, extreme)),
        ];
        let collector = SnapshotCollector::new(Box::new(raw), tracked, settings(SourceKind::File));
        let snapshot = collector.collect().await;
        let [lvm, libvirt, file] = snapshot.collectors.as_slice() else {
            panic!("{:?}", snapshot.collectors)
        };
        assert!(lvm.success, "{lvm:?}");
        assert!(libvirt
            .error
            .as_deref()
            .unwrap()
            .starts_with("the tracked disk of the 5 instances: more than"));
        assert!(file
            .error
            .as_deref()
            .unwrap()
            .starts_with("the over-estimate (scheduler free 9223372036854775807 - corrected free"));
        assert!(snapshot.sources.is_empty());
        let host = snapshot.host.expect("LVM's figures remain");
        assert_eq!(host.vgs[0].used_bytes, 5 * GIB);
        assert!(host.vgs[0].tracked.is_none());
    }

    #[tokio::test]
    async fn a_hanging_source_times_out_without_holding_the_others() {
        let raw = CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 15 * GIB,
        };
        let tracked: Vec<Box<dyn TrackedSource>> = vec![
            Box::new(HangingTracked),
            Box::new(FixedTracked(Ok(vec![instance()]))),
        ];
        let collector = SnapshotCollector::new(Box::new(raw), tracked, settings(SourceKind::File));
        let snapshot = collector.collect().await;
        let libvirt = &snapshot.collectors[1];
        assert_eq!(libvirt.name, "libvirt");
        assert!(!libvirt.success);
        assert!(libvirt.error.as_deref().unwrap().contains("timed out"));
        assert!(libvirt.last_success_unix.is_none());
        let derived = snapshot.host.unwrap().vgs[0]
            .tracked
            .clone()
            .expect("file source drives");
        assert_eq!(derived.drift_bytes, 0);
    }

    #[tokio::test]
    async fn a_missing_vg_fails_the_lvm_collector() {
        let raw = CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 20 * GIB,
        };
        let mut settings = settings(SourceKind::File);
        settings.watched_vgs.push("gone-vg".into());
        let collector = SnapshotCollector::new(Box::new(raw), vec![], settings);
        let snapshot = collector.collect().await;
        assert!(!snapshot.collectors[0].success);
        assert_eq!(
            snapshot.collectors[0].error.as_deref(),
            Some("volume group not found: gone-vg")
        );
        assert_eq!(snapshot.host.unwrap().vgs.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_collection_and_later_ones_get_a_fresh_one() {
        let calls = Arc::new(AtomicUsize::new(0));
        let raw = CountingRaw {
            calls: Arc::clone(&calls),
            delay: Duration::from_millis(100),
            vg_free_bytes: 20 * GIB,
        };
        let collector = Arc::new(SnapshotCollector::new(
            Box::new(raw),
            vec![],
            settings(SourceKind::File),
        ));
        let flight = Arc::new(SingleFlight::new(collector));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let flight = Arc::clone(&flight);
                tokio::spawn(async move { flight.snapshot().await.unwrap() })
            })
            .collect();
        let snapshots = futures::future::join_all(callers).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let first = snapshots[0].as_ref().unwrap();
        assert!(snapshots
            .iter()
            .all(|s| Arc::ptr_eq(s.as_ref().unwrap(), first)));

        let later = flight.snapshot().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(!Arc::ptr_eq(&later, first));
    }

    #[tokio::test]
    async fn a_recent_collection_is_reused_by_views_and_an_old_one_is_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let raw = CountingRaw {
            calls: Arc::clone(&calls),
            delay: Duration::ZERO,
            vg_free_bytes: 20 * GIB,
        };
        let collector = Arc::new(SnapshotCollector::new(
            Box::new(raw),
            vec![],
            settings(SourceKind::File),
        ));
        let flight = SingleFlight::new(collector);
        let first = flight.recent(Duration::from_secs(60)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let again = flight.recent(Duration::from_secs(60)).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh = flight.recent(Duration::from_millis(10)).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_cancel_the_collection() {
        let calls = Arc::new(AtomicUsize::new(0));
        let raw = CountingRaw {
            calls: Arc::clone(&calls),
            delay: Duration::from_millis(100),
            vg_free_bytes: 20 * GIB,
        };
        let collector = Arc::new(SnapshotCollector::new(
            Box::new(raw),
            vec![],
            settings(SourceKind::File),
        ));
        let flight = Arc::new(SingleFlight::new(collector));
        let impatient = {
            let flight = Arc::clone(&flight);
            tokio::spawn(async move { flight.snapshot().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        impatient.abort();
        let patient = flight.snapshot().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(patient.collectors[0].success);
    }

    #[tokio::test]
    async fn configured_flavors_get_their_fit_only_with_the_tracked_figures() {
        let raw = || CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 12 * GIB,
        };
        let flavors = vec![crate::tracked::flavors::parse_flavor_flag("m1=5").unwrap()];
        // 20 GiB VG, 8 GiB allocated, one 5 GiB instance tracked: corrected free 12 GiB holds
        // two; placement: 20 - 5 = 15 GiB free, three.
        let ok: Vec<Box<dyn TrackedSource>> = vec![Box::new(FixedTracked(Ok(vec![instance()])))];
        let snapshot = SnapshotCollector::new(Box::new(raw()), ok, settings(SourceKind::File))
            .with_flavors(flavors.clone(), 50, None)
            .collect()
            .await;
        let fit = snapshot.flavor_fit.expect("a fit");
        assert_eq!(fit.extent_bytes, 4 << 20);
        assert_eq!(fit.scheduler.total_bytes, Some(20 * GIB));
        assert_eq!(
            fit.flavors[0].corrected,
            crate::accounting::fit::Fit::Instances(2)
        );
        assert_eq!(
            fit.flavors[0].scheduler,
            crate::accounting::fit::Fit::Instances(3)
        );
        // No catalog: no flavors collector.
        assert_eq!(snapshot.collectors.len(), 2);
        // The tracked source failed: no derived figures, no fit.
        let failed: Vec<Box<dyn TrackedSource>> = vec![Box::new(FixedTracked(Err("bad".into())))];
        let snapshot = SnapshotCollector::new(Box::new(raw()), failed, settings(SourceKind::File))
            .with_flavors(flavors, 50, None)
            .collect()
            .await;
        assert_eq!(snapshot.flavor_fit, None);
    }
}
