//! One collection, one way: observe, account, snapshot.
//!
//! 1. Observe ([`observe`]): every source is read concurrently under its own timeout; each read
//!    gives one immutable observation, its value with its provenance or a typed
//!    [`CollectorError`], and its duration.
//! 2. Account ([`pipeline::account`], pure): the observations' values and the configuration give
//!    the host accounting, each source's figures (or why they do not fit), the audit, the flavor
//!    fit, the orphan candidates and the local-source doubts. When no input changed since the
//!    previous collection (the same report, equal usages and flavor list), the previous
//!    accounting is reused as it is, shared.
//! 3. The orphan verdicts are one more observation (the compute API's lookups, cached by
//!    [`OrphanResolver`]), asked for the accounting's candidates and applied by a pure step.
//! 4. Snapshot: the collector statuses derived once from the outcomes
//!    ([`pipeline::outcomes`]), the per-collector memory (last success, last error, the logged
//!    doubts) updated in one place, and one immutable [`Snapshot`] that every output renders
//!    from alone.
//!
//! [`SnapshotCollector::collect`] never fails as a whole: a source that errors or times out is
//! reported in its [`CollectorStatus`] and the figures that need it are left out of the
//! [`Snapshot`]. [`SingleFlight`] makes concurrent scrapes share one in-flight collection, so a
//! burst of scrapes costs one LVM execution.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod error;
pub mod observe;
pub mod pipeline;
mod single_flight;

pub use error::{CollectorError, SourceError};
pub use single_flight::SingleFlight;

use crate::accounting::audit::Audit;
use crate::accounting::drift::{HostAccounting, SourceFigures};
use crate::accounting::fit::FlavorFitSummary;
use crate::accounting::orphans::{LocalSourceDoubt, OrphanReasons};
use crate::lvm::RawSource;
use crate::tracked::flavors::{FlavorCatalog, NamedFlavor};
use crate::tracked::orphans::{OrphanResolver, OrphanVerdict};
use crate::tracked::{SourceKind, TrackedSource};
use observe::{observe_flavors, observe_raw, observe_tracked, Observations};
use pipeline::{Accounting, AccountingPlan, Inputs, Outcome};

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
    /// Why it failed, when it did; the outputs render its text.
    pub error: Option<CollectorError>,
}

impl CollectorStatus {
    /// Why it failed, as text (what the outputs show), when it did.
    pub fn error_text(&self) -> Option<String> {
        self.error.as_ref().map(ToString::to_string)
    }
}

/// Everything one collection produced; rendered into metrics, the status page or a report.
///
/// The accounted parts are shared ([`Arc`]): a collection whose inputs did not change hands on
/// the previous collection's values, so `Arc::ptr_eq` on them tells an output that nothing it
/// renders from them changed. The collector statuses, `finished_unix` and `raw_methods` are
/// this collection's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// One entry per collector, `lvm` first.
    pub collectors: Vec<CollectorStatus>,
    /// The accounting of the watched VGs; `None` when LVM could not be read at all.
    pub host: Option<Arc<HostAccounting>>,
    /// Figures of each tracked source that succeeded, for VG `nova_vg`.
    pub sources: Vec<(SourceKind, SourceFigures)>,
    /// The VG the tracked figures apply to.
    pub nova_vg: String,
    /// The source that drives the derived metrics.
    pub primary: Option<SourceKind>,
    /// Placement compared with the local source and LVM, when all three succeeded.
    pub audit: Option<Arc<Audit>>,
    /// Unix time the collection finished.
    pub finished_unix: f64,
    /// How this collection's raw source read each VG (empty unless it is the metadata reader,
    /// and when the raw collection timed out).
    pub raw_methods: Vec<crate::lvm::RawMethod>,
    /// How many more instances of each flavor fit, when flavors are known and nova's VG was
    /// accounted with a tracked source.
    pub flavor_fit: Option<Arc<FlavorFitSummary>>,
    /// The orphan LVs of nova's VG and why each is one; `None` when no tracked source told
    /// instances from orphans.
    pub orphans: Option<Arc<OrphanReasons>>,
    /// The local sources (libvirt, file) that list no instance beside instance disks in nova's
    /// VG; `None` when LVM did not report nova's VG (nothing to compare with).
    pub local_source_doubts: Option<Vec<LocalSourceDoubt>>,
    /// The per-VG cap on per-LV series (`--collector.lvm.lv-series-limit`), which the outputs
    /// apply ([`crate::output::lv_series`]).
    pub lv_series_limit: usize,
}

/// Reads all sources and accounts them.
pub struct SnapshotCollector {
    raw: Box<dyn RawSource>,
    raw_timeout: Duration,
    tracked: Vec<Box<dyn TrackedSource>>,
    tracked_timeout: Duration,
    plan: AccountingPlan,
    /// Per-VG cap of per-LV series, for the outputs.
    lv_series_limit: usize,
    flavor_catalog: Option<FlavorCatalog>,
    orphan_resolver: Option<Arc<OrphanResolver>>,
    lvm_look: Option<LvmLook>,
    memory: Mutex<CollectorMemory>,
    previous: Mutex<Option<Previous>>,
}

/// What the collector remembers of its collectors between collections, updated once per
/// collection from its outcomes ([`CollectorMemory::remember`]).
#[derive(Debug, Default)]
struct CollectorMemory {
    /// Unix time of each collector's last success.
    last_success: HashMap<&'static str, f64>,
    /// The text of each failing collector's last error (to log a persistent failure once).
    last_error: HashMap<&'static str, String>,
    /// The doubted local sources last logged, and whether another source contradicted each.
    last_doubts: Vec<(SourceKind, bool)>,
}

/// The previous collection's inputs and what the pure steps made of them, for reuse.
#[derive(Debug)]
struct Previous {
    inputs: Inputs,
    accounting: Arc<Accounting>,
    verdicts: Option<HashMap<String, OrphanVerdict>>,
    orphans: Option<Arc<OrphanReasons>>,
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
            plan: AccountingPlan {
                watched_vgs: settings.watched_vgs,
                nova_vg: settings.nova_vg,
                primary: settings.primary,
                configured_flavors: Vec::new(),
                flavor_limit: crate::accounting::fit::DEFAULT_FLAVOR_LIMIT,
            },
            lv_series_limit: settings.lv_series_limit,
            flavor_catalog: None,
            orphan_resolver: None,
            lvm_look: None,
            memory: Mutex::new(CollectorMemory::default()),
            previous: Mutex::new(None),
        }
    }

    /// When a watched VG is missing, asks LVM (as `look` says) which VGs and PVs it sees, and
    /// says so in the lvm collector's error.
    pub fn with_lvm_look(mut self, look: LvmLook) -> Self {
        self.lvm_look = Some(look);
        self
    }

    /// Looks up why each orphan LV is one with `resolver` (the nova source's compute API).
    pub fn with_orphan_resolver(mut self, resolver: OrphanResolver) -> Self {
        self.orphan_resolver = Some(Arc::new(resolver));
        self
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
        self.plan.configured_flavors = configured;
        self.plan.flavor_limit = limit;
        self.flavor_catalog = catalog;
        self
    }

    /// Runs one collection. Never fails: failures are in the collector statuses.
    pub async fn collect(&self) -> Snapshot {
        let observed = self.observe().await;
        let inputs = Inputs::of(&observed);
        let previous = self
            .previous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|previous| previous.inputs.same_as(&inputs));
        let accounting = match &previous {
            Some(previous) => Arc::clone(&previous.accounting),
            None => Arc::new(pipeline::account(&self.plan, &inputs)),
        };
        // The verdicts are asked on every collection (lookups are due by time), for the
        // orphans as the accounting classified them; never longer than the tracked timeout.
        let verdicts = match (&self.orphan_resolver, &accounting.orphan_candidates) {
            (Some(resolver), Some(candidates)) => Some(
                resolver
                    .verdicts(&candidates.uuids(), self.tracked_timeout)
                    .await,
            ),
            _ => None,
        };
        let orphans = match previous {
            Some(previous) if previous.verdicts == verdicts => previous.orphans,
            _ => pipeline::orphans(accounting.orphan_candidates.as_ref(), verdicts.as_ref()),
        };
        let outcomes = pipeline::outcomes(&observed, &accounting);
        let collectors = self
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(outcomes, accounting.local_source_doubts.as_deref());
        let snapshot = Snapshot {
            collectors,
            host: accounting
                .host
                .as_ref()
                .and_then(|host| host.as_ref().ok())
                .cloned(),
            sources: accounting.sources.clone(),
            nova_vg: self.plan.nova_vg.clone(),
            primary: self.plan.primary,
            audit: accounting.audit.clone(),
            finished_unix: unix_now(),
            raw_methods: observed.raw.methods,
            flavor_fit: accounting.flavor_fit.clone(),
            orphans: orphans.clone(),
            local_source_doubts: accounting.local_source_doubts.clone(),
            lv_series_limit: self.lv_series_limit,
        };
        *self.previous.lock().unwrap_or_else(|e| e.into_inner()) = Some(Previous {
            inputs,
            accounting,
            verdicts,
            orphans,
        });
        snapshot
    }

    /// Reads every source concurrently, each under its own timeout.
    async fn observe(&self) -> Observations {
        let raw = observe_raw(
            self.raw.as_ref(),
            &self.plan.watched_vgs,
            self.raw_timeout,
            self.lvm_look.as_ref(),
        );
        let tracked = futures::future::join_all(self.tracked.iter().map(|source| async {
            (
                source.kind(),
                observe_tracked(source.as_ref(), self.tracked_timeout).await,
            )
        }));
        let flavors = async {
            match &self.flavor_catalog {
                Some(catalog) => Some(observe_flavors(catalog, self.tracked_timeout).await),
                None => None,
            }
        };
        let (raw, tracked, flavors) = tokio::join!(raw, tracked, flavors);
        Observations {
            raw,
            tracked,
            flavors,
        }
    }
}

impl CollectorMemory {
    /// The statuses of one collection's outcomes, remembering each collector's last success
    /// (`data_unix` when its data is older than this collection, a cached source; else now)
    /// and logging a failure when it starts or changes and a recovery; then the doubted local
    /// sources when the doubt starts, changes or ends.
    fn remember(
        &mut self,
        outcomes: Vec<Outcome>,
        doubts: Option<&[LocalSourceDoubt]>,
    ) -> Vec<CollectorStatus> {
        let now = unix_now();
        let statuses = outcomes
            .into_iter()
            .map(|outcome| self.status(outcome, now))
            .collect();
        self.log_doubts(doubts);
        statuses
    }

    fn status(&mut self, outcome: Outcome, now: f64) -> CollectorStatus {
        let Outcome {
            name,
            duration,
            result,
        } = outcome;
        let error = match result {
            Ok(data_unix) => {
                self.last_success.insert(name, data_unix.unwrap_or(now));
                if self.last_error.remove(name).is_some() {
                    tracing::info!(collector = name, "collector recovered");
                }
                None
            }
            Err(error) => {
                let message = error.to_string();
                // The same failure on every scrape is said once (then at debug level), so that
                // a persistent condition does not flood the log; a different one is said again.
                if self.last_error.get(name) == Some(&message) {
                    tracing::debug!(collector = name, error = %message, "collector still failing")
                } else {
                    tracing::warn!(collector = name, error = %message, "collector failed");
                    self.last_error.insert(name, message);
                }
                Some(error)
            }
        };
        CollectorStatus {
            name,
            success: error.is_none(),
            duration,
            last_success_unix: self.last_success.get(name).copied(),
            error,
        }
    }

    /// Logs a doubted local source when the doubt starts or changes (contradicted or not), and
    /// its end, so that a persistent condition is said once.
    fn log_doubts(&mut self, doubts: Option<&[LocalSourceDoubt]>) {
        let Some(doubts) = doubts else { return };
        let now: Vec<(SourceKind, bool)> = doubts
            .iter()
            .map(|d| (d.source, d.contradicted()))
            .collect();
        if self.last_doubts == now {
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
        self.last_doubts = now;
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
    use crate::lvm::{LvmError, Vg, VgReport};
    use crate::tracked::{Flavor, HostDiskSettings, TrackedError, TrackedInstance, TrackedUsage};
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
            snapshot.collectors[1].error_text().as_deref(),
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
            .error_text()
            .unwrap()
            .starts_with("the tracked disk of the 5 instances: more than"));
        assert!(file
            .error_text()
            .unwrap()
            .starts_with("the over-estimate (scheduler free 9223372036854775807 - corrected free"));
        assert!(snapshot.sources.is_empty());
        let host = snapshot.host.expect("LVM's figures remain");
        assert_eq!(host.vgs[0].used_bytes, 5 * GIB);
        assert!(host.vgs[0].tracked.is_none());
    }

    /// A raw source that hands every collection the report it holds as one shared value (the
    /// metadata reader's way with unchanged VGs); [`SharedRaw::set`] changes it.
    struct SharedRaw(Mutex<Arc<VgReport>>);

    impl SharedRaw {
        fn new(vg_free_bytes: u64) -> Arc<Self> {
            Arc::new(Self(Mutex::new(Arc::new(Self::report(vg_free_bytes)))))
        }

        fn report(vg_free_bytes: u64) -> VgReport {
            VgReport {
                vgs: vec![Vg {
                    name: "vms-group".into(),
                    size_bytes: 20 * GIB,
                    free_bytes: vg_free_bytes,
                    extent_size_bytes: 4 << 20,
                }],
                lvs: vec![],
            }
        }

        fn set(&self, vg_free_bytes: u64) {
            *self.0.lock().unwrap() = Arc::new(Self::report(vg_free_bytes));
        }
    }

    #[async_trait]
    impl RawSource for SharedRaw {
        async fn collect(&self, _vg_names: &[String]) -> Result<VgReport, LvmError> {
            Ok((**self.0.lock().unwrap()).clone())
        }

        async fn collect_with_methods(&self, _vg_names: &[String]) -> crate::lvm::RawCollection {
            crate::lvm::RawCollection {
                report: Ok(Arc::clone(&self.0.lock().unwrap())),
                methods: Vec::new(),
            }
        }
    }

    /// A file source whose instances [`SwitchTracked`]'s holder can change.
    struct SwitchTracked(Arc<Mutex<Vec<TrackedInstance>>>);

    #[async_trait]
    impl TrackedSource for SwitchTracked {
        fn kind(&self) -> SourceKind {
            SourceKind::File
        }
        async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
            Ok(TrackedUsage::from_local(
                self.0.lock().unwrap().clone(),
                &HostDiskSettings::default(),
            ))
        }
    }

    #[tokio::test]
    async fn an_unchanged_input_reuses_the_accounting_and_a_changed_one_does_not() {
        let raw = SharedRaw::new(15 * GIB);
        let instances = Arc::new(Mutex::new(vec![instance()]));
        let tracked: Vec<Box<dyn TrackedSource>> =
            vec![Box::new(SwitchTracked(Arc::clone(&instances)))];
        let collector = SnapshotCollector::new(
            Box::new(Arc::clone(&raw)),
            tracked,
            settings(SourceKind::File),
        );
        let first = collector.collect().await;
        let again = collector.collect().await;
        let host = |snapshot: &Snapshot| Arc::clone(snapshot.host.as_ref().expect("accounted"));
        assert!(Arc::ptr_eq(&host(&first), &host(&again)));
        assert_eq!(first.sources, again.sources);
        // The collection's own parts are fresh.
        assert!(again.finished_unix >= first.finished_unix);
        assert!(again.collectors.iter().all(|status| status.success));

        // The tracked source changed: accounted again.
        instances.lock().unwrap().clear();
        let untracked = collector.collect().await;
        assert!(!Arc::ptr_eq(&host(&again), &host(&untracked)));
        let tracked = |snapshot: &Snapshot| host(snapshot).vgs[0].tracked.clone().unwrap();
        assert_eq!(tracked(&again).tracked_used_bytes, 5 * GIB);
        assert_eq!(tracked(&untracked).tracked_used_bytes, 0);

        // LVM's report changed (a new value): accounted again.
        raw.set(14 * GIB);
        let grown = collector.collect().await;
        assert!(!Arc::ptr_eq(&host(&untracked), &host(&grown)));
        assert_eq!(host(&grown).vgs[0].free_bytes, 14 * GIB);
        let settled = collector.collect().await;
        assert!(Arc::ptr_eq(&host(&grown), &host(&settled)));
    }

    #[tokio::test]
    async fn lvm_figures_that_do_not_fit_fail_the_lvm_collector_without_a_success() {
        let raw = CountingRaw {
            calls: Arc::default(),
            delay: Duration::ZERO,
            vg_free_bytes: 21 * GIB,
        };
        let collector = SnapshotCollector::new(Box::new(raw), vec![], settings(SourceKind::File));
        let snapshot = collector.collect().await;
        let lvm = &snapshot.collectors[0];
        assert!(!lvm.success);
        assert!(matches!(lvm.error, Some(CollectorError::DoesNotFit(_))));
        assert_eq!(
            lvm.error_text().as_deref(),
            Some("VG vms-group: vg_free 22548578304 is larger than vg_size 21474836480")
        );
        // A collection whose figures could not be accounted is no success of LVM's.
        assert_eq!(lvm.last_success_unix, None);
        assert!(snapshot.host.is_none());
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
        assert!(libvirt
            .error_text()
            .as_deref()
            .unwrap()
            .contains("timed out"));
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
            snapshot.collectors[0].error_text().as_deref(),
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
