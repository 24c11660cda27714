//! The account of one host, for people and scripts: the model behind `nova-lvm-exporter report`
//! (text or JSON), `nova-lvm-exporter check` and the status page at `/`.
//!
//! A [`Report`] is built from one [`Snapshot`] (the same collection a scrape renders) and a
//! [`ReportContext`] (what the configuration says about where each figure came from). It
//! carries every figure in bytes plus what is needed to show the arithmetic; `report_text`
//! prints it for a terminal, `serde_json` turns it into the versioned JSON of
//! `docs/report-schema.json` ([`SCHEMA_VERSION`]).

use serde::Serialize;

use crate::accounting::audit::{Audit, AuditKind};
use crate::accounting::drift::{ReservedCause, TrackedAccounting, EXPORTED_OWNERS};
use crate::collect::Snapshot;
use crate::output::lv_series::capped_lv_series;
use crate::time::format_rfc3339;
use crate::units::MIB;

/// Version of the JSON document. Bumped on any change that can break a reader (a field
/// removed, renamed or retyped); adding a field does not bump it.
pub const SCHEMA_VERSION: u32 = 2;

/// The most rows a per-LV or per-consumer list shows in `report`'s text and on the status page;
/// an "N more" line stands for the rest (the JSON document lists them all).
pub const LISTED_ROWS: usize = 100;

/// What the configuration says about the figures: where nova's VG, the primary source and the
/// host's identity in each source came from. Built once from the configuration (by `app`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportContext {
    /// This host's name in nova: nova.conf `[DEFAULT] host`, else the system hostname.
    pub hostname: String,
    /// Where nova's VG name came from.
    pub nova_vg_origin: String,
    /// Why the primary source is the primary one.
    pub primary_origin: String,
    /// `reserved_host_disk_mb` in force for the local sources.
    pub reserved_host_disk_mb: u64,
    /// `disk_allocation_ratio` in force for the local sources.
    pub disk_allocation_ratio: f64,
    /// What each enabled tracked source reads to identify this host's instances.
    pub sources: Vec<SourceIdentity>,
    /// Where the raw figures come from (the LVM commands or a saved report).
    pub raw_source: String,
}

/// How a tracked source finds this host's instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceIdentity {
    /// Source name (`placement`, `libvirt`, `file`, ...).
    pub source: String,
    /// What it reads, e.g. `resource provider "cmp-7"`.
    pub reads: String,
    /// Why that name or path, e.g. `/etc/nova/nova.conf [DEFAULT] host`.
    pub origin: String,
}

/// The account of one host from one collection (the JSON document of `report --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The exporter that produced it.
    pub exporter: ExporterInfo,
    /// This host's name in nova: nova.conf `[DEFAULT] host`, else the system hostname.
    pub hostname: String,
    /// Unix time the collection finished.
    pub collected_at_unix: f64,
    /// The same time, RFC 3339 in UTC.
    pub collected_at: String,
    /// True when every collector succeeded.
    pub complete: bool,
    /// The VG nova keeps instance disks in.
    pub nova_vg: String,
    /// Where its name came from.
    pub nova_vg_origin: String,
    /// Where the raw figures come from.
    pub raw_source: String,
    /// How the last collection read each watched VG (empty for a saved report).
    pub raw_methods: Vec<RawMethodReport>,
    /// The tracked source that drives the derived figures, if any is enabled.
    pub primary_source: Option<String>,
    /// Why that one.
    pub primary_source_origin: String,
    /// `reserved_host_disk_mb` and `disk_allocation_ratio` in force (local sources).
    pub settings: HostSettings,
    /// How each collector fared.
    pub collectors: Vec<CollectorReport>,
    /// Each enabled tracked source: how it identifies this host and, when it succeeded, its
    /// figures.
    pub sources: Vec<SourceReport>,
    /// Each watched VG that LVM reported.
    pub vgs: Vec<VgAccount>,
    /// Watched VGs that LVM did not report.
    pub missing_vgs: Vec<String>,
    /// Placement compared per consumer with the local source and LVM, when all succeeded.
    pub audit: Option<AuditReport>,
    /// How many more instances of each flavor fit, when flavors are configured or listed.
    pub flavor_fit: Option<crate::output::fit::FlavorFitReport>,
    /// The orphan LVs of nova's VG and why each is one, when a tracked source told instances
    /// from orphans.
    pub orphans: Option<OrphansReport>,
    /// Local sources (libvirt, file) that list no instance while nova's VG holds instance
    /// disks: a wrong directory or file, or every instance gone; the first thing to look at, and
    /// no orphan is to be removed on such a source's word (see [`crate::accounting::orphans`]).
    pub local_source_warnings: Vec<LocalSourceWarning>,
}

/// A local source that lists no instance beside instance disks in nova's VG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalSourceWarning {
    /// `libvirt` or `file`.
    pub source: String,
    /// What it reads (its directory or file).
    pub reads: String,
    /// nova's VG.
    pub vg: String,
    /// Instances with nova-named LVs in nova's VG.
    pub instances: u64,
    /// VG bytes those LVs hold.
    pub bytes: u64,
    /// Placement or nova place some of those instances on this host: the source reads the
    /// wrong place, the disks are not orphans.
    pub contradicted: bool,
    /// Each other source that answered, with how many of those instances it places here.
    pub others: Vec<SourceCount>,
    /// What is wrong and what to do, in one sentence.
    pub message: String,
}

/// A source and a count of instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceCount {
    /// Source name.
    pub source: String,
    /// Instances.
    pub instances: u64,
}

impl LocalSourceWarning {
    fn new(doubt: &crate::accounting::orphans::LocalSourceDoubt, context: &ReportContext) -> Self {
        let reads = context
            .sources
            .iter()
            .find(|s| s.source == doubt.source.as_str())
            .map_or_else(|| "its configured place".to_string(), |s| s.reads.clone());
        Self {
            source: doubt.source.as_str().to_string(),
            message: doubt.describe(&reads),
            reads,
            vg: doubt.vg.clone(),
            instances: doubt.instances,
            bytes: doubt.bytes,
            contradicted: doubt.contradicted(),
            others: doubt
                .others
                .iter()
                .map(|(kind, placed)| SourceCount {
                    source: kind.as_str().to_string(),
                    instances: *placed,
                })
                .collect(),
        }
    }
}

/// How one watched VG was read: `nova_lvm_raw_source_info`'s labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawMethodReport {
    /// The VG.
    pub vg: String,
    /// `metadata`, `exec`, or `none` (not read, where LVM cannot run).
    pub method: String,
    /// `ok`, or why not the metadata.
    pub reason: String,
}

/// The orphan LVs of nova's VG by reason (see [`crate::accounting::orphans`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphansReport {
    /// nova's VG.
    pub vg: String,
    /// LVs and bytes per reason, every reason.
    pub totals: Vec<OrphanTotalReport>,
    /// Every orphan LV, largest first.
    pub lvs: Vec<OrphanLvReport>,
}

/// The orphans of one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanTotalReport {
    /// `deleted`, `elsewhere`, `here` or `unknown`.
    pub reason: String,
    /// How many LVs.
    pub lvs: u64,
    /// Their VG bytes.
    pub bytes: u64,
}

/// One orphan LV and why it is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanLvReport {
    /// LV name.
    pub name: String,
    /// The instance UUID of its name.
    pub uuid: String,
    /// VG bytes it holds.
    pub bytes: u64,
    /// The reason.
    pub reason: String,
    /// What nova said, or why the reason is unknown.
    pub detail: String,
}

impl OrphansReport {
    fn new(orphans: &crate::accounting::orphans::OrphanReasons) -> Self {
        Self {
            vg: orphans.vg.clone(),
            totals: crate::tracked::orphans::OrphanReason::ALL
                .iter()
                .map(|reason| {
                    let (lvs, bytes) = orphans.totals(*reason);
                    OrphanTotalReport {
                        reason: reason.as_str().to_string(),
                        lvs,
                        bytes,
                    }
                })
                .collect(),
            lvs: orphans
                .lvs
                .iter()
                .map(|lv| OrphanLvReport {
                    name: lv.name.clone(),
                    uuid: lv.uuid.clone(),
                    bytes: lv.bytes,
                    reason: lv.verdict.reason.as_str().to_string(),
                    detail: lv.verdict.detail.clone(),
                })
                .collect(),
        }
    }
}

/// The cross-source audit (see [`crate::accounting::audit`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The local source placement was compared with.
    pub local_source: String,
    /// Consumers and bytes per kind, every kind.
    pub totals: Vec<AuditTotalReport>,
    /// The consumers that disagree.
    pub consumers: Vec<AuditConsumerReport>,
}

/// The consumers of one audit kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditTotalReport {
    /// `allocation_without_instance`, `instance_without_allocation` or `allocation_mismatch`.
    pub kind: String,
    /// How many consumers.
    pub consumers: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One consumer on which placement and this host disagree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditConsumerReport {
    /// The audit kind.
    pub kind: String,
    /// Consumer / instance UUID.
    pub uuid: String,
    /// Placement's DISK_GB allocation here, if any.
    pub allocated_bytes: Option<u64>,
    /// What the flavor needs by placement's rule, when the local source knows the instance.
    pub expected_bytes: Option<u64>,
    /// VG bytes of its nova-named LVs.
    pub lv_bytes: u64,
    /// What it counts for.
    pub bytes: u64,
}

impl AuditReport {
    fn new(audit: &Audit) -> Self {
        Self {
            local_source: audit.local_source.as_str().to_string(),
            totals: AuditKind::ALL
                .iter()
                .map(|kind| {
                    let (consumers, bytes) = audit.totals(*kind);
                    AuditTotalReport {
                        kind: kind.as_str().to_string(),
                        consumers,
                        bytes,
                    }
                })
                .collect(),
            consumers: audit
                .findings
                .iter()
                .map(|finding| AuditConsumerReport {
                    kind: finding.kind.as_str().to_string(),
                    uuid: finding.uuid.clone(),
                    allocated_bytes: finding.allocated_bytes,
                    expected_bytes: finding.expected_bytes,
                    lv_bytes: finding.lv_bytes,
                    bytes: finding.bytes,
                })
                .collect(),
        }
    }
}

/// Version of the exporter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExporterInfo {
    /// Crate version.
    pub version: String,
    /// Git revision it was built from.
    pub revision: String,
}

/// Host disk settings as nova.conf (or the flags) give them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostSettings {
    /// `[DEFAULT] reserved_host_disk_mb`.
    pub reserved_host_disk_mb: u64,
    /// `[DEFAULT] disk_allocation_ratio`.
    pub disk_allocation_ratio: f64,
}

/// One collector on this collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorReport {
    /// `lvm` or a tracked source's name.
    pub name: String,
    /// It produced usable data.
    pub success: bool,
    /// How long it took.
    pub duration_seconds: f64,
    /// Unix time of its last success, if any.
    pub last_success_unix: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One tracked source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceReport {
    /// Source name.
    pub source: String,
    /// It drives the derived figures.
    pub primary: bool,
    /// What it reads to find this host's instances.
    pub reads: String,
    /// Why that name or path.
    pub origin: String,
    /// Its figures, when it succeeded.
    pub figures: Option<SourceFiguresReport>,
}

/// A tracked source's own view of nova's VG.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SourceFiguresReport {
    /// Instances counted.
    pub instances: u64,
    /// Resource tracker rules: root (0 when booted from volume) + ephemeral + swap, exact.
    pub tracked_used_bytes: u64,
    /// Placement rules: whole GiB per instance, swap rounded up.
    pub allocated_bytes: u64,
    /// Disk reserved for the host.
    pub reserved_bytes: u64,
    /// DISK_GB allocation ratio.
    pub allocation_ratio: f64,
    /// Placement's DISK_GB total, bytes.
    pub scheduler_total_bytes: Option<u64>,
    /// Placement's DISK_GB used, bytes.
    pub scheduler_used_bytes: u64,
    /// What the scheduler believes is free.
    pub scheduler_free_bytes: Option<i64>,
}

/// One watched VG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VgAccount {
    /// VG name.
    pub name: String,
    /// It is nova's VG (the tracked figures apply to it).
    pub nova: bool,
    /// `vg_size`.
    pub size_bytes: u64,
    /// `vg_free`.
    pub free_bytes: u64,
    /// size - free.
    pub used_bytes: u64,
    /// LVs and bytes per owner class (instance and orphan only when a tracked source told them
    /// apart).
    pub owners: Vec<OwnerReport>,
    /// The largest LVs that are not tracked instance disks, largest first.
    pub top_untracked_lvs: Vec<LvReport>,
    /// How many such LVs there are in all (those summed beyond the series limit included).
    pub untracked_lv_count: usize,
    /// Thin pools and their data usage.
    pub thin_pools: Vec<ThinPoolReport>,
    /// The derived figures, when the primary tracked source succeeded and this is nova's VG.
    pub accounting: Option<AccountingReport>,
    /// Why `accounting` is absent.
    pub accounting_absent_reason: Option<String>,
}

/// LVs of one owner class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerReport {
    /// `instance`, `orphan`, `cinder` or `foreign`.
    pub owner: String,
    /// Visible LVs.
    pub lvs: u64,
    /// VG bytes they hold.
    pub bytes: u64,
}

/// One LV that is not a tracked instance disk, or the sum of those beyond the series limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvReport {
    /// LV name (`(other)`, a name no LV can have, for the sum beyond the series limit).
    pub name: String,
    /// Owner class.
    pub owner: String,
    /// VG bytes it holds.
    pub bytes: u64,
    /// How many LVs this row stands for: 1, or the number summed beyond the series limit.
    pub lvs: u64,
    /// True for the sum beyond the series limit.
    pub overflow: bool,
    /// When LVM created it (`lv_time`), unix seconds; for the sum beyond the limit, the oldest
    /// of the summed LVs. `None` when LVM has no creation time for it.
    pub created_unix: Option<i64>,
    /// Its age when the collection finished: `collected_at_unix - created_unix`, whole seconds.
    pub age_seconds: Option<i64>,
}

/// One thin pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThinPoolReport {
    /// Pool LV name.
    pub name: String,
    /// data_percent / 100.
    pub data_used_ratio: f64,
    /// metadata_percent / 100 (`None` in a saved report without the field).
    pub metadata_used_ratio: Option<f64>,
}

/// The derived figures of nova's VG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountingReport {
    /// The source they were derived from.
    pub source: String,
    /// Instances that source counts.
    pub instances: u64,
    /// What nova counts, without the reserve.
    pub tracked_used_bytes: u64,
    /// Disk reserved for the host.
    pub reserved_bytes: u64,
    /// raw used - tracked used.
    pub drift_bytes: i64,
    /// The drift by cause.
    pub untracked: UntrackedReport,
    /// Tracked disk with no LV behind it.
    pub unbacked_bytes: u64,
    /// size - max(raw used, tracked used) - reserved.
    pub corrected_free_bytes: i64,
    /// What the scheduler believes is free.
    pub scheduler_free_bytes: i64,
    /// Placement's DISK_GB total behind `scheduler_free_bytes`.
    pub scheduler_total_bytes: Option<u64>,
    /// Placement's DISK_GB used behind `scheduler_free_bytes`.
    pub scheduler_used_bytes: Option<u64>,
    /// The allocation ratio behind `scheduler_free_bytes`.
    pub allocation_ratio: f64,
    /// scheduler free - corrected free.
    pub overestimate_bytes: i64,
    /// What the scheduler can actually hand out that the VG does not have:
    /// max(over-estimate + min(corrected free, 0), 0), as the alerting rules count it.
    pub phantom_bytes: u64,
    /// The `reserved_host_disk_mb` that would make the scheduler's free space match corrected
    /// free (never below today's).
    pub recommended_reserved_host_disk_mb: u64,
    /// Today's reserve in MiB, as that source counts it (nova.conf's `reserved_host_disk_mb`
    /// when placement's reserve also holds the image cache).
    pub current_reserved_host_disk_mb: u64,
    /// Why placement's DISK_GB `reserved` differs from nova.conf's `reserved_host_disk_mb`,
    /// when it does (primary source placement only).
    pub reserved_difference: Option<ReservedDifferenceReport>,
    /// The remedy that needs no restart of nova-compute: a DISK_GB allocation ratio set in
    /// placement; `None` when no ratio changes placement's capacity (total no more than reserved).
    pub allocation_ratio_remedy: Option<AllocationRatioRemedy>,
}

/// Placement's DISK_GB `reserved` against nova.conf's `reserved_host_disk_mb`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReservedDifferenceReport {
    /// Placement's DISK_GB `reserved`, GiB (what the scheduler's view uses).
    pub placement_reserved_gib: u64,
    /// nova.conf's `reserved_host_disk_mb`.
    pub nova_conf_reserved_host_disk_mb: u64,
    /// The knob that made them differ: `image_cache` (`[workarounds]
    /// reserve_disk_resource_for_image_cache`) or `set_elsewhere` (by hand or another nova.conf).
    pub knob: &'static str,
    /// The image cache's part of placement's reserve, GiB (knob `image_cache` only).
    pub image_cache_gib: Option<u64>,
    /// One sentence saying so.
    pub explanation: String,
}

/// Placeholder for the provider UUID in the remedy's commands when the primary source is not
/// placement (the UUID is then unknown to the exporter).
pub const PROVIDER_UUID_PLACEHOLDER: &str = "<provider-uuid>";

/// The DISK_GB allocation ratio to set in placement so that the scheduler sees corrected free.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocationRatioRemedy {
    /// The recommended ratio (`nova_lvm_recommended_disk_allocation_ratio`).
    pub ratio: f64,
    /// The ratio in the command: the recommended one, or 0.0001 when that is 0 (placement
    /// would make the exporter's placement source refuse the inventory).
    pub applied_ratio: f64,
    /// The ratio placement holds today (what undoing sets back).
    pub current_ratio: f64,
    /// The resource provider, when the primary source is placement.
    pub provider_uuid: Option<String>,
    /// The command that applies it.
    pub command: String,
    /// The command that undoes it.
    pub undo_command: String,
    /// nova.conf's `[DEFAULT] disk_allocation_ratio` when set: nova-compute then writes it back
    /// on its next inventory update, and the remedy does not hold.
    pub overwritten_by_nova_conf_ratio: Option<f64>,
}

/// The smallest ratio the remedy sets: the placement source refuses an inventory whose ratio is
/// not positive, and 0.0001 leaves a capacity of 0 on any provider under 10,000 GiB.
pub const SMALLEST_APPLIED_RATIO: f64 = 0.0001;

/// `openstack resource provider inventory set <uuid> --amend --resource DISK_GB:allocation_ratio=R`.
pub fn allocation_ratio_command(provider_uuid: &str, ratio: f64) -> String {
    format!(
        "openstack resource provider inventory set {provider_uuid} --amend --resource DISK_GB:allocation_ratio={}",
        crate::units::format_ratio(ratio)
    )
}

fn allocation_ratio_remedy(
    t: &TrackedAccounting,
    current_ratio: f64,
) -> Option<AllocationRatioRemedy> {
    let ratio = t.recommended_disk_allocation_ratio?;
    let applied_ratio = ratio.max(SMALLEST_APPLIED_RATIO);
    let uuid = t
        .provider_uuid
        .as_deref()
        .unwrap_or(PROVIDER_UUID_PLACEHOLDER);
    Some(AllocationRatioRemedy {
        ratio,
        applied_ratio,
        current_ratio,
        provider_uuid: t.provider_uuid.clone(),
        command: allocation_ratio_command(uuid, applied_ratio),
        undo_command: allocation_ratio_command(uuid, current_ratio),
        overwritten_by_nova_conf_ratio: t.nova_conf.and_then(|c| c.pinned_disk_allocation_ratio),
    })
}

fn reserved_difference_report(t: &TrackedAccounting) -> Option<ReservedDifferenceReport> {
    let d = t.reserved_difference?;
    let conf_mb = t.nova_conf.map_or(0, |c| c.reserved_host_disk_mb);
    let (knob, image_cache_gib, explanation) = match d.cause {
        ReservedCause::ImageCache { image_cache_gib } => (
            "image_cache",
            Some(image_cache_gib),
            format!(
                "placement reserves {} GiB, nova.conf's reserved_host_disk_mb = {conf_mb} gives {}: [workarounds] reserve_disk_resource_for_image_cache adds the image cache's {image_cache_gib} GiB, which lives on instances_path, not in the VG",
                d.placement_gib, d.nova_conf_gib
            ),
        ),
        ReservedCause::SetElsewhere => (
            "set_elsewhere",
            None,
            format!(
                "placement reserves {} GiB, nova.conf's reserved_host_disk_mb = {conf_mb} gives {}: placement's inventory was set by hand or by another nova.conf",
                d.placement_gib, d.nova_conf_gib
            ),
        ),
    };
    Some(ReservedDifferenceReport {
        placement_reserved_gib: d.placement_gib,
        nova_conf_reserved_host_disk_mb: conf_mb,
        knob,
        image_cache_gib,
        explanation,
    })
}

/// Positive drift by cause.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UntrackedReport {
    /// LVs neither nova's nor cinder's.
    pub foreign_bytes: u64,
    /// Nova-named LVs of instances not on this host.
    pub orphan_bytes: u64,
    /// Cinder volumes, snapshots and pools.
    pub cinder_bytes: u64,
    /// LVs of instances on this host that the primary source does not book.
    pub unbooked_instance_bytes: u64,
    /// Rescue disks of booked instances (booked by nobody; a leak once the instance is
    /// unrescued).
    pub rescue_bytes: u64,
    /// Image-sized root LVs of `disk = 0` flavors, booked as 0.
    pub unbooked_root_bytes: u64,
    /// Swap below a whole GiB that nova's resource tracker truncates.
    pub swap_remainder_bytes: u64,
    /// Instance LVs rounded up to whole extents.
    pub extent_rounding_bytes: u64,
    /// Allocated space no LV accounts for.
    pub unexplained_bytes: i64,
    /// foreign + orphan + cinder + unbooked_instance + rescue + unbooked_root + unexplained:
    /// what the untracked-consumption alert and `check` count (the rounding causes,
    /// swap_remainder and extent_rounding, are expected and left out).
    pub total_bytes: i64,
}

impl VgAccount {
    /// How many single LVs `top_untracked_lvs` shows (the sums beyond the limit not counted).
    pub fn untracked_lvs_shown(&self) -> usize {
        self.top_untracked_lvs
            .iter()
            .filter(|lv| !lv.overflow)
            .count()
    }
}

impl Report {
    /// The report of one collection; at most `top_lvs` untracked LVs are listed per VG.
    pub fn new(snapshot: &Snapshot, context: &ReportContext, top_lvs: usize) -> Self {
        let collectors: Vec<CollectorReport> = snapshot
            .collectors
            .iter()
            .map(|status| CollectorReport {
                name: status.name.to_string(),
                success: status.success,
                duration_seconds: status.duration.as_secs_f64(),
                last_success_unix: status.last_success_unix,
                error: status.error_text(),
            })
            .collect();
        let figures_of = |source: &str| {
            snapshot
                .sources
                .iter()
                .find(|(kind, _)| kind.as_str() == source)
                .map(|(_, f)| SourceFiguresReport {
                    instances: f.instances,
                    tracked_used_bytes: f.tracked_used_bytes,
                    allocated_bytes: f.allocated_bytes,
                    reserved_bytes: f.reserved_bytes,
                    allocation_ratio: f.allocation_ratio,
                    scheduler_total_bytes: f.scheduler_total_bytes,
                    scheduler_used_bytes: f.scheduler_used_bytes,
                    scheduler_free_bytes: f.scheduler_free_bytes,
                })
        };
        let primary = snapshot.primary.map(|kind| kind.to_string());
        let sources: Vec<SourceReport> = context
            .sources
            .iter()
            .map(|identity| SourceReport {
                source: identity.source.clone(),
                primary: primary.as_deref() == Some(identity.source.as_str()),
                reads: identity.reads.clone(),
                origin: identity.origin.clone(),
                figures: figures_of(&identity.source),
            })
            .collect();
        let primary_figures = primary.as_deref().and_then(figures_of);
        let absent_reason = |vg_name: &str| -> String {
            if vg_name != snapshot.nova_vg {
                return format!(
                    "not nova's VG ({}): nova's tracked figures do not apply to it",
                    snapshot.nova_vg
                );
            }
            match &primary {
                None => "no tracked source is enabled".to_string(),
                Some(name) => match collectors.iter().find(|c| &c.name == name) {
                    Some(CollectorReport {
                        error: Some(error), ..
                    }) => format!("the primary tracked source {name} failed: {error}"),
                    _ => format!("the primary tracked source {name} has no figures"),
                },
            }
        };
        let vgs = snapshot
            .host
            .iter()
            .flat_map(|host| host.vgs.iter())
            .map(|vg| {
                let owners = EXPORTED_OWNERS
                    .iter()
                    .filter_map(|owner| {
                        vg.owners.get(owner).map(|totals| OwnerReport {
                            owner: owner.as_str().to_string(),
                            lvs: totals.lvs,
                            bytes: totals.bytes,
                        })
                    })
                    .collect();
                let untracked_lv_count = vg.untracked_lvs.len();
                let accounting = vg.tracked.as_ref().map(|t| {
                    accounting_report(t, primary.as_deref().unwrap_or(""), primary_figures)
                });
                VgAccount {
                    name: vg.vg.clone(),
                    nova: vg.vg == snapshot.nova_vg,
                    size_bytes: vg.size_bytes,
                    free_bytes: vg.free_bytes,
                    used_bytes: vg.used_bytes,
                    owners,
                    top_untracked_lvs: capped_lv_series(
                        &vg.untracked_lvs,
                        snapshot.lv_series_limit,
                    )
                    .iter()
                    .take(top_lvs)
                    .map(|lv| LvReport {
                        name: lv.name.to_string(),
                        owner: lv.owner.as_str().to_string(),
                        bytes: lv.bytes,
                        lvs: lv.lvs,
                        overflow: lv.overflow,
                        created_unix: lv.creation_unix,
                        age_seconds: lv
                            .creation_unix
                            .map(|created| (snapshot.finished_unix as i64).saturating_sub(created)),
                    })
                    .collect(),
                    untracked_lv_count,
                    thin_pools: vg
                        .thin_pools
                        .iter()
                        .map(|pool| ThinPoolReport {
                            name: pool.name.clone(),
                            data_used_ratio: pool.data_used_ratio,
                            metadata_used_ratio: pool.metadata_used_ratio,
                        })
                        .collect(),
                    accounting_absent_reason: accounting.is_none().then(|| absent_reason(&vg.vg)),
                    accounting,
                }
            })
            .collect();
        Report {
            schema_version: SCHEMA_VERSION,
            exporter: ExporterInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                revision: env!("NOVA_LVM_EXPORTER_REVISION").to_string(),
            },
            hostname: context.hostname.clone(),
            collected_at_unix: snapshot.finished_unix,
            collected_at: format_rfc3339(snapshot.finished_unix),
            complete: collectors.iter().all(|c| c.success),
            nova_vg: snapshot.nova_vg.clone(),
            nova_vg_origin: context.nova_vg_origin.clone(),
            raw_source: context.raw_source.clone(),
            raw_methods: snapshot
                .raw_methods
                .iter()
                .map(|m| RawMethodReport {
                    vg: m.vg.clone(),
                    method: m.method.to_string(),
                    reason: m.reason.to_string(),
                })
                .collect(),
            primary_source: primary,
            primary_source_origin: context.primary_origin.clone(),
            settings: HostSettings {
                reserved_host_disk_mb: context.reserved_host_disk_mb,
                disk_allocation_ratio: context.disk_allocation_ratio,
            },
            collectors,
            sources,
            vgs,
            missing_vgs: snapshot
                .host
                .as_ref()
                .map(|h| h.missing_vgs.clone())
                .unwrap_or_default(),
            audit: snapshot.audit.as_deref().map(AuditReport::new),
            flavor_fit: snapshot
                .flavor_fit
                .as_deref()
                .map(crate::output::fit::FlavorFitReport::new),
            orphans: snapshot.orphans.as_deref().map(OrphansReport::new),
            local_source_warnings: snapshot
                .local_source_doubts
                .iter()
                .flatten()
                .map(|doubt| LocalSourceWarning::new(doubt, context))
                .collect(),
        }
    }

    /// nova's VG, when LVM reported it.
    pub fn nova_vg(&self) -> Option<&VgAccount> {
        self.vgs.iter().find(|vg| vg.nova)
    }

    /// The collectors that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = &CollectorReport> {
        self.collectors.iter().filter(|c| !c.success)
    }
}

fn accounting_report(
    t: &TrackedAccounting,
    source: &str,
    figures: Option<SourceFiguresReport>,
) -> AccountingReport {
    let u = t.untracked;
    // Saturating is exact here: any negative sum is clamped to 0.
    let phantom = t
        .overestimate_bytes
        .saturating_add(t.corrected_free_bytes.min(0))
        .max(0) as u64;
    AccountingReport {
        source: source.to_string(),
        instances: figures.map_or(0, |f| f.instances),
        tracked_used_bytes: t.tracked_used_bytes,
        reserved_bytes: t.reserved_bytes,
        drift_bytes: t.drift_bytes,
        untracked: UntrackedReport {
            foreign_bytes: u.foreign_bytes,
            orphan_bytes: u.orphan_bytes,
            cinder_bytes: u.cinder_bytes,
            unbooked_instance_bytes: u.unbooked_instance_bytes,
            rescue_bytes: u.rescue_bytes,
            unbooked_root_bytes: u.unbooked_root_bytes,
            swap_remainder_bytes: u.swap_remainder_bytes,
            extent_rounding_bytes: u.extent_rounding_bytes,
            unexplained_bytes: u.unexplained_bytes,
            total_bytes: u.total_bytes(),
        },
        unbacked_bytes: t.unbacked_bytes,
        corrected_free_bytes: t.corrected_free_bytes,
        scheduler_free_bytes: t.scheduler_free_bytes,
        scheduler_total_bytes: figures.and_then(|f| f.scheduler_total_bytes),
        scheduler_used_bytes: figures.map(|f| f.scheduler_used_bytes),
        allocation_ratio: figures.map_or(1.0, |f| f.allocation_ratio),
        overestimate_bytes: t.overestimate_bytes,
        phantom_bytes: phantom,
        recommended_reserved_host_disk_mb: t.recommended_reserved_host_disk_mb,
        current_reserved_host_disk_mb: match (t.reserved_difference, t.nova_conf) {
            (Some(d), Some(conf)) if matches!(d.cause, ReservedCause::ImageCache { .. }) => {
                conf.reserved_host_disk_mb
            }
            _ => t.reserved_bytes.div_ceil(MIB),
        },
        reserved_difference: reserved_difference_report(t),
        allocation_ratio_remedy: allocation_ratio_remedy(
            t,
            figures.map_or(1.0, |f| f.allocation_ratio),
        ),
    }
}

/// The terms of the drift with what each means, for the text report and the status page:
/// `drift = foreign + orphan + cinder + unbooked_instance + rescue + unbooked_root +
/// swap_remainder + extent_rounding + unexplained - unbacked`.
pub fn drift_causes(a: &AccountingReport) -> [(&'static str, i64, &'static str); 10] {
    let u = &a.untracked;
    [
        (
            "foreign",
            u.foreign_bytes as i64,
            "LVs that are neither nova's nor cinder's",
        ),
        (
            "orphan",
            u.orphan_bytes as i64,
            "nova's naming, instance not on this host",
        ),
        (
            "cinder",
            u.cinder_bytes as i64,
            "cinder volumes, snapshots, thin pool",
        ),
        (
            "unbooked_instance",
            u.unbooked_instance_bytes as i64,
            "instance on this host, not booked: heal its allocation",
        ),
        (
            "rescue",
            u.rescue_bytes as i64,
            "rescue disks: unrescue, or remove if not rescued",
        ),
        (
            "unbooked_root",
            u.unbooked_root_bytes as i64,
            "image-sized roots of disk=0 flavors, booked as 0",
        ),
        (
            "swap_remainder",
            u.swap_remainder_bytes as i64,
            "swap below a whole GiB nova truncates",
        ),
        (
            "extent_rounding",
            u.extent_rounding_bytes as i64,
            "instance LVs rounded up to whole extents",
        ),
        (
            "unexplained",
            u.unexplained_bytes,
            "allocated space no LV accounts for",
        ),
        (
            "- unbacked",
            -(a.unbacked_bytes as i64),
            "tracked disk with no LV (building, elsewhere)",
        ),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::report_text::render_text;
    use crate::tracked::SourceKind;
    use crate::units::GIB;

    use crate::collect::{CollectorStatus, Snapshot};

    /// A report of one VG with foreign LVs of the given names (the first the largest, n GiB
    /// down to 1 GiB), `limit` per-LV series, and a libvirt collector that failed with
    /// `error`, or succeeded with no instances when `error` is `None`.
    /// The LVM figures are built directly, not parsed: the report parser refuses the names
    /// LVM forbids (issue 20), and these tests check that the outputs escape whatever names
    /// reach them all the same.
    pub(crate) fn report_with(names: &[&str], limit: usize, error: Option<&str>) -> Report {
        let lvs: Vec<crate::lvm::Lv> = names
            .iter()
            .enumerate()
            .map(|(i, name)| crate::lvm::Lv {
                vg: "vg1".into(),
                name: name.to_string(),
                hidden: false,
                size_bytes: (names.len() - i) as u64 * GIB,
                attr: String::new(),
                segtype: "linear".into(),
                pool_lv: String::new(),
                parent: String::new(),
                data_used_ratio: None,
                metadata_used_ratio: None,
                creation_unix: None,
                tags: Vec::new(),
            })
            .collect();
        let lvm = crate::lvm::VgReport {
            vgs: vec![crate::lvm::Vg {
                name: "vg1".into(),
                size_bytes: (names.len() * (names.len() + 1) / 2) as u64 * GIB,
                free_bytes: 0,
                extent_size_bytes: 0,
            }],
            lvs,
        };
        let usage = crate::tracked::TrackedUsage::from_local(vec![], &Default::default());
        let tracked = error.is_none().then_some(&usage);
        let host = crate::accounting::drift::account_host(
            &lvm,
            &["vg1".to_string()],
            Some("vg1"),
            tracked,
        )
        .unwrap();
        let sources = tracked
            .map(|usage| {
                let figures =
                    crate::accounting::drift::source_figures(usage, Some(lvm.vgs[0].size_bytes));
                (SourceKind::Libvirt, figures.unwrap())
            })
            .into_iter()
            .collect();
        let status = |name, error: Option<&str>| CollectorStatus {
            name,
            success: error.is_none(),
            duration: std::time::Duration::ZERO,
            last_success_unix: None,
            error: error.map(|text| {
                crate::collect::CollectorError::Source(crate::collect::SourceError::Text(
                    text.to_string(),
                ))
            }),
        };
        let snapshot = Snapshot {
            collectors: vec![status("lvm", None), status("libvirt", error)],
            host: Some(std::sync::Arc::new(host)),
            sources,
            nova_vg: "vg1".into(),
            primary: Some(SourceKind::Libvirt),
            audit: None,
            finished_unix: 0.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: limit,
        };
        Report::new(&snapshot, &ReportContext::default(), 10)
    }

    #[test]
    fn an_lv_named_like_the_old_overflow_label_is_shown_and_counted() {
        let report = report_with(&["big", "_other", "c", "d", "e"], 2, Some("x"));
        let vg = &report.vgs[0];
        assert_eq!(vg.untracked_lv_count, 5);
        assert_eq!(vg.untracked_lvs_shown(), 2);
        let text = render_text(&report);
        assert!(
            text.contains("Untracked LVs, largest first (2 shown of 5)"),
            "{text}"
        );
        assert!(text.contains(" _other\n"), "{text}");
        assert!(
            text.contains("foreign  (other) (3 LVs beyond the series limit)"),
            "{text}"
        );
        let names: Vec<(&str, u64, bool)> = vg
            .top_untracked_lvs
            .iter()
            .map(|lv| (lv.name.as_str(), lv.lvs, lv.overflow))
            .collect();
        assert_eq!(
            names,
            vec![
                ("big", 1, false),
                ("_other", 1, false),
                ("(other)", 3, true)
            ]
        );
        // Beyond what is shown (top 10) the count is still all of them.
        let many: Vec<String> = (0..30).map(|i| format!("lv{i:02}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let report = report_with(&many, 100, None);
        let text = render_text(&report);
        assert!(text.contains("(10 shown of 30)"), "{text}");
    }

    #[test]
    fn each_listed_lv_says_how_old_it_is_and_pools_their_metadata_usage() {
        const DAY: i64 = 86_400;
        let now: i64 = 1_800_000_000;
        let text = format!(
            r#"{{"report":[{{"vg":[{{"vg_name":"vg1","vg_size":"{size}","vg_free":"0"}}],"lv":[
              {{"vg_name":"vg1","lv_name":"old","lv_size":"{four}","segtype":"linear","lv_time":"{old}"}},
              {{"vg_name":"vg1","lv_name":"young","lv_size":"{three}","segtype":"linear","lv_time":"{young}"}},
              {{"vg_name":"vg1","lv_name":"p","lv_size":"{two}","segtype":"thin-pool","lv_attr":"twi-aotz--","data_percent":"50.00","metadata_percent":"81.25","lv_time":""}},
              {{"vg_name":"vg1","lv_name":"notime","lv_size":"{gib}","segtype":"linear","lv_time":""}},
              {{"vg_name":"vg1","lv_name":"a","lv_size":"{one}","segtype":"linear","lv_time":"{a}"}},
              {{"vg_name":"vg1","lv_name":"b","lv_size":"{one}","segtype":"linear","lv_time":"{b}"}}]}}]}}"#,
            size = 11 * GIB,
            four = 4 * GIB,
            three = 3 * GIB,
            two = 2 * GIB,
            gib = GIB,
            one = GIB / 2,
            old = now - 3 * DAY - 5,
            young = now - 20 * 60,
            a = now - 2 * 3_600,
            b = now - 10 * DAY,
        );
        let lvm = crate::lvm::report::parse(&text, "t").unwrap();
        let host =
            crate::accounting::drift::account_host(&lvm, &["vg1".to_string()], Some("vg1"), None)
                .unwrap();
        let snapshot = Snapshot {
            collectors: vec![],
            host: Some(std::sync::Arc::new(host)),
            sources: vec![],
            nova_vg: "vg1".into(),
            primary: None,
            audit: None,
            finished_unix: now as f64,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 3,
        };
        let report = Report::new(&snapshot, &ReportContext::default(), 10);
        let ages: Vec<(&str, Option<i64>, Option<i64>)> = report.vgs[0]
            .top_untracked_lvs
            .iter()
            .map(|lv| (lv.name.as_str(), lv.created_unix, lv.age_seconds))
            .collect();
        assert_eq!(
            ages,
            vec![
                ("old", Some(now - 3 * DAY - 5), Some(3 * DAY + 5)),
                ("young", Some(now - 20 * 60), Some(20 * 60)),
                ("notime", None, None),
                // The sum beyond the limit (a, b and the pool, which holds no extents itself)
                // carries its oldest LV's time.
                ("(other)", Some(now - 10 * DAY), Some(10 * DAY)),
            ]
        );
        let text = render_text(&report);
        for line in [
            "foreign  old (created 3 days ago)",
            "foreign  young (created 20 minutes ago)",
            "foreign  notime\n",
            "foreign  (other) (3 LVs beyond the series limit, the oldest created 10 days ago)",
            "Thin pool p: data 50.0 % used, metadata 81.2 % used",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        let json = serde_json::to_value(&report).unwrap();
        let vg = &json["vgs"][0];
        assert_eq!(vg["top_untracked_lvs"][0]["age_seconds"], 3 * DAY + 5);
        assert_eq!(
            vg["top_untracked_lvs"][2]["created_unix"],
            serde_json::Value::Null
        );
        assert_eq!(vg["thin_pools"][0]["metadata_used_ratio"], 0.8125);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        use crate::output::report_text::age_text;
        let cases = [
            (-5, "in the future (clocks disagree)"),
            (0, "less than a minute ago"),
            (59, "less than a minute ago"),
            (60, "1 minute ago"),
            (7_199, "119 minutes ago"),
            (7_200, "2 hours ago"),
            (172_799, "47 hours ago"),
            (172_800, "2 days ago"),
            (86_400 * 400, "400 days ago"),
        ];
        for (seconds, text) in cases {
            assert_eq!(age_text(seconds), text, "{seconds}");
        }
    }

    /// An LV name with a terminal escape, a bell, CR/LF and a fake plugin line.
    pub(crate) const HOSTILE: &str =
        "evil\u{1b}[2J\u{1b}]0;title\u{7}\r\nNOVA-LVM OK - fine | x=1\u{202e}";

    #[test]
    fn control_characters_from_outside_are_escaped_in_the_text_report() {
        let report = report_with(
            &[HOSTILE, "plain"],
            100,
            Some("bad file /q/\u{1b}[31mred\nline"),
        );
        let text = render_text(&report);
        for raw in ['\u{1b}', '\r', '\u{7}', '\u{202e}'] {
            assert!(!text.contains(raw), "{raw:?} in {text}");
        }
        assert!(
            text.contains(r"evil\u{1b}[2J\u{1b}]0;title\u{7}\r\nNOVA-LVM OK - fine | x=1\u{202e}"),
            "{text}"
        );
        assert!(text.contains(r"bad file /q/\u{1b}[31mred\nline"), "{text}");
        // Every line of the report is one of its own: the LV's name did not add one.
        assert!(
            text.lines().all(|line| !line.starts_with("NOVA-LVM")),
            "{text}"
        );
        // JSON keeps the names as they are, escaped by serde.
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains('\u{1b}') && !json.contains('\r'), "{json}");
        assert!(
            json.contains(r#"evil\u001b[2J\u001b]0;title\u0007\r\nNOVA-LVM"#),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["vgs"][0]["top_untracked_lvs"][0]["name"], HOSTILE);
    }
}
