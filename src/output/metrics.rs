//! The metric contract, in one place: every exported family is declared once in the table below
//! (name, help, labels), and [`render`] turns a [`Snapshot`] into the Prometheus text exposition
//! ([`super::exposition`] writes it).
//!
//! A family with no value on a scrape is simply absent: derived metrics disappear when an input
//! they need failed, instead of showing zero or a stale value.
//!
//! Scrapes go through [`MetricsCache`]: the families that depend only on the accounting and the
//! sources' figures are rendered once per change; the collectors' families
//! (`nova_lvm_collector_*`, new figures on every collection) and `process_*` are rendered per
//! scrape, and the body is assembled from slices of both in the order one registry gave.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use prometheus::{Encoder, TextEncoder};

use super::exposition::{FamilySeries, MetricType};
use super::lv_series::capped_lv_series;
use crate::accounting::audit::{Audit, AuditKind};
use crate::accounting::drift::{HostAccounting, SourceFigures, VgAccounting, EXPORTED_OWNERS};
use crate::accounting::fit::FlavorFitSummary;
use crate::accounting::orphans::{LocalSourceDoubt, OrphanReasons};
use crate::collect::{CollectorStatus, Snapshot};
use crate::lvm::RawMethod;
use crate::tracked::SourceKind;
use crate::units::MIB;

/// One metric family: name, help and label names.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

macro_rules! families {
    ($($ident:ident = $name:literal, [$($label:literal),*], $help:literal;)*) => {
        $(const $ident: Family = Family { name: $name, help: $help, labels: &[$($label),*] };)*
        /// Every family we export, for documentation checks.
        const ALL_FAMILIES: &[&Family] = &[$(&$ident),*];
    };
}

families! {
    VG_SIZE = "nova_lvm_vg_size_bytes", ["vg"],
        "Size of the volume group as LVM reports it (vg_size).";
    VG_FREE = "nova_lvm_vg_free_bytes", ["vg"],
        "Unallocated space in the volume group (vg_free).";
    VG_USED = "nova_lvm_vg_used_bytes", ["vg"],
        "Allocated space in the volume group, by anyone: size - free.";
    LVS = "nova_lvm_lvs", ["vg", "owner"],
        "Logical volumes by owner class: instance (an instance on this host), orphan (nova's naming, instance not on this host), cinder, foreign (anything else).";
    LV_BYTES = "nova_lvm_lv_bytes", ["vg", "owner"],
        "Bytes of the volume group allocated to LVs of each owner class (hidden sub-LVs included, thin volumes counted in their pool).";
    LV_SIZE = "nova_lvm_lv_size_bytes", ["vg", "lv", "owner"],
        "Bytes allocated to one LV that is not a tracked instance disk; beyond the per-VG series limit the rest is summed per owner in lv=\"(other)\", a name no LV can have.";
    LV_CREATION = "nova_lvm_lv_creation_timestamp_seconds", ["vg", "lv", "owner"],
        "When LVM created the LV (lv_time, unix seconds), for exactly the series of nova_lvm_lv_size_bytes; lv=\"(other)\" holds the oldest creation time among the summed LVs. Absent for an LV without a creation time in its metadata.";
    THIN_POOL_DATA_USED = "nova_lvm_thin_pool_data_used_ratio", ["vg", "lv"],
        "Fraction of a thin pool's data space in use (data_percent / 100).";
    THIN_POOL_METADATA_USED = "nova_lvm_thin_pool_metadata_used_ratio", ["vg", "lv"],
        "Fraction of a thin pool's metadata space in use (metadata_percent / 100); only for active pools, as LVM reports none for inactive ones.";
    TRACKED_USED = "nova_lvm_tracked_used_bytes", ["vg", "source"],
        "Disk the instances on this host account for in nova's books, without the reserved part.";
    TRACKED_ALLOCATED = "nova_lvm_tracked_allocated_bytes", ["vg", "source"],
        "What placement allocates for the same instances: whole GiB each, boot-from-volume roots excluded, swap rounded up.";
    TRACKED_INSTANCES = "nova_lvm_tracked_instances", ["vg", "source"],
        "Instances the source places on this host.";
    RESERVED = "nova_lvm_reserved_bytes", ["vg", "source"],
        "Disk nova reserves for the host (reserved_host_disk_mb).";
    ALLOCATION_RATIO = "nova_lvm_allocation_ratio", ["vg", "source"],
        "DISK_GB allocation ratio; anything but 1 is suspicious on thick LVM.";
    SCHEDULER_FREE = "nova_lvm_scheduler_free_bytes", ["vg", "source"],
        "Free disk as the scheduler believes it: placement's (total - reserved) * ratio - used, or nova's free_disk_gb for source nova.";
    DISK_AVAILABLE_LEAST = "nova_lvm_disk_available_least_bytes", ["vg", "source"],
        "nova's disk_available_least (os-hypervisors, source nova only): free disk as nova-compute last measured it, for LVM the VG's free space in whole GiB.";
    DRIFT = "nova_lvm_drift_bytes", ["vg"],
        "Raw used - tracked used. Positive: consumption nova does not know about. Negative: nova counts disk that is not allocated.";
    UNTRACKED = "nova_lvm_untracked_bytes", ["vg", "cause"],
        "Untracked consumption by cause: foreign, orphan and cinder LVs, unbooked_instance (LVs of instances on this host the primary source does not book), rescue (rescue disks), unbooked_root (image-sized root LVs of disk=0 flavors), swap_remainder (swap below a whole GiB nova truncates), extent_rounding (LVs rounded up to whole extents), unexplained (allocated space no LV accounts for).";
    UNBACKED = "nova_lvm_tracked_unbacked_bytes", ["vg"],
        "Tracked disk with no LV behind it (instances building, disks elsewhere): the part of a negative drift the LV walk explains.";
    CORRECTED_FREE = "nova_lvm_corrected_free_bytes", ["vg"],
        "Free space the scheduler should see: size - max(raw used, tracked used) - reserved. Negative on an over-committed host.";
    OVERESTIMATE = "nova_lvm_scheduler_overestimate_bytes", ["vg"],
        "Scheduler free - corrected free: phantom space the scheduler is handing out when positive.";
    RECOMMENDED_RESERVED = "nova_lvm_recommended_reserved_host_disk_bytes", ["vg"],
        "The host disk reserve that would make the scheduler's free space match corrected free today, in bytes (whole GiB; divide by 1048576 for nova.conf reserved_host_disk_mb; advice only).";
    RECOMMENDED_RATIO = "nova_lvm_recommended_disk_allocation_ratio", ["vg"],
        "The DISK_GB allocation ratio at which placement's capacity, (total - reserved) * ratio, equals corrected free plus what is allocated (rounded down to 4 decimals): a remedy without restarting nova-compute, see `report`. Absent when placement's total is no more than its reserve.";
    NOVA_CONF_RESERVED = "nova_lvm_nova_conf_reserved_bytes", ["vg"],
        "nova.conf's reserved_host_disk_mb in bytes, beside placement's DISK_GB reserved (nova_lvm_reserved_bytes{source=\"placement\"}), which nova also grows by the image cache under [workarounds] reserve_disk_resource_for_image_cache; primary source placement only.";
    AUDIT_CONSUMERS = "nova_lvm_audit_consumers", ["kind"],
        "Consumers on which placement and this host disagree (placement and a local source both enabled): allocation_without_instance (a DISK_GB allocation with no domain and no LV here), instance_without_allocation (a domain or LVs placement does not allocate here), allocation_mismatch (DISK_GB differs from the flavor by placement's rule). `report` lists them.";
    AUDIT_BYTES = "nova_lvm_audit_bytes", ["kind"],
        "Bytes of the consumers in nova_lvm_audit_consumers: the leaked allocation, what the unallocated instance needs (or its LVs hold), the allocation's difference from the flavor.";
    FLAVOR_FIT = "nova_lvm_flavor_fit_instances", ["vg", "flavor", "view"],
        "How many more instances of the flavor fit in nova's VG: view=corrected by corrected free space and the LVs nova would create (each rounded up to whole extents), view=scheduler as the scheduler would place them (placement's whole-GiB DISK_GB rule). +Inf for a flavor that needs no disk. At most --flavor-limit flavors.";
    FLAVOR_FIT_OMITTED = "nova_lvm_flavor_fit_omitted_flavors", ["vg"],
        "Flavors of the compute API and of the domains defined here left out of nova_lvm_flavor_fit_instances by --flavor-limit (the smallest ones).";
    ORPHAN_BYTES = "nova_lvm_orphan_bytes", ["vg", "reason"],
        "Bytes of nova's VG held by orphan LVs (nova's naming, instance not on this host) by why, from the compute API (nova source): deleted (nova deleted the instance: safe to remove), elsewhere (on another host or none: remove once it runs there), here (nova places it on this host: a delete or build in progress, or soft-deleted), unknown (not found, lookup failed or pending, or no nova source).";
    ORPHAN_LVS = "nova_lvm_orphan_lvs", ["vg", "reason"],
        "Orphan LVs of nova's VG by reason, as in nova_lvm_orphan_bytes.";
    LOCAL_SOURCE_SUSPECT = "nova_lvm_local_source_suspect", ["vg", "source"],
        "1 when the local source (libvirt, file) lists no instance while nova's VG holds instance-named LVs: a wrong directory or file looks like this, and then every instance disk counts as an orphan (never remove them on its word; `report` says whether placement or nova place them here). 0 when it lists instances or there are no instance-named LVs.";
    COLLECTOR_SUCCESS = "nova_lvm_collector_success", ["collector"],
        "1 if the collector succeeded on this scrape, 0 if it failed.";
    COLLECTOR_DURATION = "nova_lvm_collector_duration_seconds", ["collector"],
        "How long the collector took on this scrape.";
    COLLECTOR_LAST_SUCCESS = "nova_lvm_collector_last_success_timestamp_seconds", ["collector"],
        "Unix time of the collector's last success.";
    RAW_SOURCE_INFO = "nova_lvm_raw_source_info", ["vg", "method", "reason"],
        "Always 1 (not with a replay file): how the last collection read the VG, metadata (from its PVs), exec (lvm fullreport) or none (not read, where LVM cannot run), and why (ok, or the reason).";
    VERIFY_MISMATCHES = "nova_lvm_metadata_verify_mismatches_total", ["vg"],
        "Background checks (--collector.lvm.verify-interval) that found the metadata reader's view of the VG differing from lvm fullreport; the VG is read with exec until a check agrees.";
    BUILD_INFO = "nova_lvm_build_info", ["version", "revision"],
        "Always 1; labels carry the exporter's version and git revision.";
}

/// A gauge family with no series yet.
fn gauge<'a>(family: &Family) -> FamilySeries<'a> {
    FamilySeries::new(family.name, family.help, family.labels, MetricType::Gauge)
}

/// Everything of a snapshot the families other than the per-scrape ones are rendered from
/// ([`stable_families`] sees nothing else), so that two snapshots with the same inputs have
/// the same text and a scrape renders it only when one changed. The per-scrape families
/// (`nova_lvm_collector_*`) and `process_*` change on every collection and are rendered fresh.
#[derive(Debug, Clone, Copy)]
struct StableInputs<'a> {
    host: Option<&'a HostAccounting>,
    sources: &'a [(SourceKind, SourceFigures)],
    nova_vg: &'a str,
    audit: Option<&'a Audit>,
    flavor_fit: Option<&'a FlavorFitSummary>,
    orphans: Option<&'a OrphanReasons>,
    local_source_doubts: Option<&'a [LocalSourceDoubt]>,
    raw_methods: &'a [RawMethod],
    lv_series_limit: usize,
}

impl<'a> StableInputs<'a> {
    fn of(snapshot: &'a Snapshot) -> Self {
        Self {
            host: snapshot.host.as_deref(),
            sources: &snapshot.sources,
            nova_vg: &snapshot.nova_vg,
            audit: snapshot.audit.as_deref(),
            flavor_fit: snapshot.flavor_fit.as_deref(),
            orphans: snapshot.orphans.as_deref(),
            local_source_doubts: snapshot.local_source_doubts.as_deref(),
            raw_methods: &snapshot.raw_methods,
            lv_series_limit: snapshot.lv_series_limit,
        }
    }

    /// Both hold the same figures: each input the same allocation (shared between
    /// collections) or an equal value. Comparing costs far less than rendering.
    fn same_as(&self, other: &Self) -> bool {
        same_option(self.host, other.host)
            && same(self.sources, other.sources)
            && same(self.nova_vg, other.nova_vg)
            && same_option(self.audit, other.audit)
            && same_option(self.flavor_fit, other.flavor_fit)
            && same_option(self.orphans, other.orphans)
            && same_option(self.local_source_doubts, other.local_source_doubts)
            && same(self.raw_methods, other.raw_methods)
            && self.lv_series_limit == other.lv_series_limit
    }
}

/// `a` and `b` are the same allocation or equal values. The cache keeps the snapshot its text
/// was rendered from alive, so an address it compares with cannot have been reused.
fn same<T: PartialEq + ?Sized>(a: &T, b: &T) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// [`same`] for optional inputs: both absent, or both present and the same.
fn same_option<T: PartialEq + ?Sized>(a: Option<&T>, b: Option<&T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// Every family but the per-scrape ones, with build info.
fn stable_families<'a>(inputs: &StableInputs<'a>) -> Vec<FamilySeries<'a>> {
    let mut families = Vec::with_capacity(ALL_FAMILIES.len());
    if let Some(host) = inputs.host {
        raw_families(&host.vgs, inputs.lv_series_limit, &mut families);
        derived_families(&host.vgs, &mut families);
    }
    source_families(inputs.nova_vg, inputs.sources, &mut families);
    if let Some(audit) = inputs.audit {
        audit_families(audit, &mut families);
    }
    if let Some(fit) = inputs.flavor_fit {
        flavor_fit_families(fit, &mut families);
    }
    if let Some(orphans) = inputs.orphans {
        orphan_families(orphans, &mut families);
    }
    if let Some(suspect) = local_source_suspects(inputs) {
        families.push(suspect);
    }
    if !inputs.raw_methods.is_empty() {
        let mut info = gauge(&RAW_SOURCE_INFO);
        let mut mismatches = FamilySeries::new(
            VERIFY_MISMATCHES.name,
            VERIFY_MISMATCHES.help,
            VERIFY_MISMATCHES.labels,
            MetricType::Counter,
        );
        for method in inputs.raw_methods {
            info.set(&[method.vg.as_str(), method.method, method.reason], 1.0);
            mismatches.set(&[method.vg.as_str()], method.verify_mismatches as f64);
        }
        families.extend([info, mismatches]);
    }
    let mut build_info = gauge(&BUILD_INFO);
    build_info.set(
        &[
            env!("CARGO_PKG_VERSION"),
            env!("NOVA_LVM_EXPORTER_REVISION"),
        ],
        1.0,
    );
    families.push(build_info);
    families
}

/// The families that change with every collection: how each collector fared on it.
fn per_scrape_families(collectors: &[CollectorStatus]) -> Vec<FamilySeries<'_>> {
    let mut success = gauge(&COLLECTOR_SUCCESS);
    let mut duration = gauge(&COLLECTOR_DURATION);
    let mut last_success = gauge(&COLLECTOR_LAST_SUCCESS);
    for status in collectors {
        let labels = [status.name];
        success.set(&labels, f64::from(u8::from(status.success)));
        duration.set(&labels, status.duration.as_secs_f64());
        if let Some(at) = status.last_success_unix {
            last_success.set(&labels, at);
        }
    }
    vec![success, duration, last_success]
}

/// Orphan bytes and LVs of nova's VG, all four reasons always present (4 series per family).
fn orphan_families<'a>(orphans: &'a OrphanReasons, families: &mut Vec<FamilySeries<'a>>) {
    let mut bytes = gauge(&ORPHAN_BYTES);
    let mut lvs = gauge(&ORPHAN_LVS);
    for reason in crate::tracked::orphans::OrphanReason::ALL {
        let (count, sum) = orphans.totals(reason);
        let labels = [orphans.vg.as_str(), reason.as_str()];
        bytes.set(&labels, sum as f64);
        lvs.set(&labels, count as f64);
    }
    families.extend([bytes, lvs]);
}

/// `nova_lvm_local_source_suspect` for each local source that succeeded, when LVM reported
/// nova's VG.
fn local_source_suspects<'a>(inputs: &StableInputs<'a>) -> Option<FamilySeries<'a>> {
    let doubts = inputs.local_source_doubts?;
    let mut suspect = gauge(&LOCAL_SOURCE_SUSPECT);
    for (kind, _) in inputs.sources {
        if matches!(kind, SourceKind::Libvirt | SourceKind::File) {
            let doubted = doubts.iter().any(|doubt| doubt.source == *kind);
            suspect.set(
                &[inputs.nova_vg, kind.as_str()],
                if doubted { 1.0 } else { 0.0 },
            );
        }
    }
    Some(suspect)
}

fn raw_families<'a>(
    vgs: &'a [VgAccounting],
    lv_series_limit: usize,
    families: &mut Vec<FamilySeries<'a>>,
) {
    let mut size = gauge(&VG_SIZE);
    let mut free = gauge(&VG_FREE);
    let mut used = gauge(&VG_USED);
    let mut lvs = gauge(&LVS);
    let mut lv_bytes = gauge(&LV_BYTES);
    let mut lv_size = gauge(&LV_SIZE);
    let mut lv_creation = gauge(&LV_CREATION);
    let mut thin = gauge(&THIN_POOL_DATA_USED);
    let mut thin_metadata = gauge(&THIN_POOL_METADATA_USED);
    for vg in vgs {
        let name = vg.vg.as_str();
        size.set(&[name], vg.size_bytes as f64);
        free.set(&[name], vg.free_bytes as f64);
        used.set(&[name], vg.used_bytes as f64);
        for owner in EXPORTED_OWNERS {
            if let Some(totals) = vg.owners.get(&owner) {
                lvs.set(&[name, owner.as_str()], totals.lvs as f64);
                lv_bytes.set(&[name, owner.as_str()], totals.bytes as f64);
            }
        }
        for lv in capped_lv_series(&vg.untracked_lvs, lv_series_limit) {
            let labels = [name, lv.name, lv.owner.as_str()];
            lv_size.set(&labels, lv.bytes as f64);
            if let Some(created) = lv.creation_unix {
                lv_creation.set(&labels, created as f64);
            }
        }
        for pool in &vg.thin_pools {
            let labels = [name, pool.name.as_str()];
            thin.set(&labels, pool.data_used_ratio);
            if let Some(ratio) = pool.metadata_used_ratio {
                thin_metadata.set(&labels, ratio);
            }
        }
    }
    families.extend([
        size,
        free,
        used,
        lvs,
        lv_bytes,
        lv_size,
        lv_creation,
        thin,
        thin_metadata,
    ]);
}

fn derived_families<'a>(vgs: &'a [VgAccounting], families: &mut Vec<FamilySeries<'a>>) {
    let mut drift = gauge(&DRIFT);
    let mut untracked = gauge(&UNTRACKED);
    let mut unbacked = gauge(&UNBACKED);
    let mut corrected = gauge(&CORRECTED_FREE);
    let mut overestimate = gauge(&OVERESTIMATE);
    let mut recommended = gauge(&RECOMMENDED_RESERVED);
    let mut recommended_ratio = gauge(&RECOMMENDED_RATIO);
    let mut nova_conf_reserved = gauge(&NOVA_CONF_RESERVED);
    for vg in vgs {
        let Some(t) = &vg.tracked else { continue };
        let name = vg.vg.as_str();
        drift.set(&[name], t.drift_bytes as f64);
        for (cause, bytes) in t.untracked.by_cause() {
            untracked.set(&[name, cause], bytes as f64);
        }
        unbacked.set(&[name], t.unbacked_bytes as f64);
        corrected.set(&[name], t.corrected_free_bytes as f64);
        overestimate.set(&[name], t.overestimate_bytes as f64);
        recommended.set(&[name], (t.recommended_reserved_host_disk_mb * MIB) as f64);
        if let Some(ratio) = t.recommended_disk_allocation_ratio {
            recommended_ratio.set(&[name], ratio);
        }
        if let Some(conf) = &t.nova_conf {
            nova_conf_reserved.set(
                &[name],
                conf.reserved_host_disk_mb.saturating_mul(MIB) as f64,
            );
        }
    }
    families.extend([
        drift,
        untracked,
        unbacked,
        corrected,
        overestimate,
        recommended,
        recommended_ratio,
        nova_conf_reserved,
    ]);
}

fn source_families<'a>(
    nova_vg: &'a str,
    sources: &'a [(SourceKind, SourceFigures)],
    families: &mut Vec<FamilySeries<'a>>,
) {
    let mut used = gauge(&TRACKED_USED);
    let mut allocated = gauge(&TRACKED_ALLOCATED);
    let mut instances = gauge(&TRACKED_INSTANCES);
    let mut reserved = gauge(&RESERVED);
    let mut ratio = gauge(&ALLOCATION_RATIO);
    let mut scheduler_free = gauge(&SCHEDULER_FREE);
    let mut available_least = gauge(&DISK_AVAILABLE_LEAST);
    for (kind, figures) in sources {
        let labels = [nova_vg, kind.as_str()];
        used.set(&labels, figures.tracked_used_bytes as f64);
        allocated.set(&labels, figures.allocated_bytes as f64);
        instances.set(&labels, figures.instances as f64);
        reserved.set(&labels, figures.reserved_bytes as f64);
        ratio.set(&labels, figures.allocation_ratio);
        if let Some(free) = figures.scheduler_free_bytes {
            scheduler_free.set(&labels, free as f64);
        }
        if let Some(least) = figures.disk_available_least_bytes {
            available_least.set(&labels, least as f64);
        }
    }
    families.extend([
        used,
        allocated,
        instances,
        reserved,
        ratio,
        scheduler_free,
        available_least,
    ]);
}

/// One series per kind (three), never per consumer: the UUIDs are in `report` and on the status
/// page.
fn audit_families<'a>(audit: &'a Audit, families: &mut Vec<FamilySeries<'a>>) {
    let mut consumers = gauge(&AUDIT_CONSUMERS);
    let mut bytes = gauge(&AUDIT_BYTES);
    for kind in AuditKind::ALL {
        let (count, total) = audit.totals(kind);
        consumers.set(&[kind.as_str()], count as f64);
        bytes.set(&[kind.as_str()], total as f64);
    }
    families.extend([consumers, bytes]);
}

/// Two series per flavor (corrected and scheduler), at most `--flavor-limit` flavors.
fn flavor_fit_families<'a>(fit: &'a FlavorFitSummary, families: &mut Vec<FamilySeries<'a>>) {
    let mut instances = gauge(&FLAVOR_FIT);
    for flavor in &fit.flavors {
        for (view, value) in [
            ("corrected", flavor.corrected),
            ("scheduler", flavor.scheduler),
        ] {
            instances.set(
                &[fit.vg.as_str(), flavor.name.as_str(), view],
                value.value(),
            );
        }
    }
    let mut omitted = gauge(&FLAVOR_FIT_OMITTED);
    omitted.set(&[fit.vg.as_str()], fit.omitted as f64);
    families.extend([instances, omitted]);
}

/// Families rendered to text in name order (as one registry gathers them), and where each
/// starts in it.
#[derive(Debug)]
struct RenderedFamilies {
    text: Bytes,
    starts: Vec<(&'static str, usize)>,
}

impl RenderedFamilies {
    fn render(mut families: Vec<FamilySeries<'_>>) -> Self {
        families.retain(|family| !family.is_empty());
        families.sort_by_key(|family| family.name);
        let mut text = String::with_capacity(4096);
        let mut starts = Vec::with_capacity(families.len());
        for family in &families {
            starts.push((family.name, text.len()));
            family.write(&mut text);
        }
        Self {
            text: Bytes::from(text),
            starts,
        }
    }

    /// The text of the families from `first` (an index into `starts`) up to `end`.
    fn slice(&self, first: usize, end: usize) -> Bytes {
        let from = self.starts[first].1;
        let to = self
            .starts
            .get(end)
            .map_or(self.text.len(), |start| start.1);
        self.text.slice(from..to)
    }
}

/// `a` and `b` interleaved in family name order, each run of one side's families as one slice
/// of its text (no copy).
fn interleave(a: &RenderedFamilies, b: &RenderedFamilies) -> Vec<Bytes> {
    let mut parts = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.starts.len() || j < b.starts.len() {
        let a_first = j == b.starts.len() || (i < a.starts.len() && a.starts[i].0 < b.starts[j].0);
        let (side, from, other_next) = if a_first {
            (a, &mut i, b.starts.get(j))
        } else {
            (b, &mut j, a.starts.get(i))
        };
        let first = *from;
        while *from < side.starts.len()
            && other_next.is_none_or(|next| side.starts[*from].0 < next.0)
        {
            *from += 1;
        }
        parts.push(side.slice(first, *from));
    }
    parts
}

/// One exposition as the parts it is served from, in order: slices of the text rendered once
/// per change and the text rendered for this scrape, never copied into one buffer.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    parts: Vec<Bytes>,
}

impl Exposition {
    /// The parts, in order.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// It has no text (never the case for a rendered snapshot, which has build info).
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Bytes::is_empty)
    }

    /// The whole text in one string (a copy), for the outputs that write it out at once.
    pub fn to_text(&self) -> String {
        let mut text = Vec::with_capacity(self.len());
        for part in &self.parts {
            text.extend_from_slice(part);
        }
        String::from_utf8(text).expect("the exposition is rendered from strings")
    }
}

/// The exposition with `stable` and the per-scrape families of `collectors`, then the process
/// metrics when `with_process` (after every other family, where the one registry of old put
/// them).
fn assemble(
    stable: &RenderedFamilies,
    collectors: &[CollectorStatus],
    with_process: bool,
) -> Exposition {
    let fresh = RenderedFamilies::render(per_scrape_families(collectors));
    let mut parts = interleave(stable, &fresh);
    if with_process {
        parts.push(Bytes::from(encode(&process_families())));
    }
    parts.retain(|part| !part.is_empty());
    Exposition { parts }
}

/// Renders a snapshot (plus build info and the process metrics) as Prometheus text.
pub fn render(snapshot: &Snapshot) -> String {
    render_uncached(snapshot, true).to_text()
}

/// Renders a snapshot and the build info as Prometheus text, without the process metrics: what
/// `textfile` writes for node_exporter, which exports its own `process_*` series (the same
/// names from a file would clash with them, and would describe a process that has exited).
pub fn render_without_process(snapshot: &Snapshot) -> String {
    render_uncached(snapshot, false).to_text()
}

fn render_uncached(snapshot: &Snapshot, with_process: bool) -> Exposition {
    let stable = RenderedFamilies::render(stable_families(&StableInputs::of(snapshot)));
    assemble(&stable, &snapshot.collectors, with_process)
}

/// The exposition of the latest snapshot, for scrapes. The families that depend only on the
/// accounting and the sources' figures are rendered to text once per change and kept; a scrape
/// renders only the collectors' families and the process metrics fresh, and its body is
/// slices of both. Scrapes that share one collection (the same `Arc<Snapshot>`) share its
/// whole exposition, as they did its rendering before.
#[derive(Debug, Default)]
pub struct MetricsCache {
    last: Mutex<Option<LastRender>>,
}

/// What the cache keeps of its last render.
#[derive(Debug)]
struct LastRender {
    snapshot: Arc<Snapshot>,
    stable: Arc<RenderedFamilies>,
    exposition: Exposition,
}

impl MetricsCache {
    /// The exposition of `snapshot`: the stable text reused when its inputs are the last
    /// snapshot's (the same allocations or equal values), rendered anew when any changed, so a
    /// changed figure is never served from the cache.
    pub fn render(&self, snapshot: &Arc<Snapshot>) -> Exposition {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let inputs = StableInputs::of(snapshot);
        let stable = match &*last {
            Some(last) if Arc::ptr_eq(&last.snapshot, snapshot) => {
                return last.exposition.clone();
            }
            Some(last) if StableInputs::of(&last.snapshot).same_as(&inputs) => {
                Arc::clone(&last.stable)
            }
            _ => Arc::new(RenderedFamilies::render(stable_families(&inputs))),
        };
        let exposition = assemble(&stable, &snapshot.collectors, true);
        *last = Some(LastRender {
            snapshot: Arc::clone(snapshot),
            stable,
            exposition: exposition.clone(),
        });
        exposition
    }
}

/// The process metrics (`process_*`), read now. The collector is made once: making one reads
/// `/proc/stat` and `/proc/self/stat` for the start time, which never changes, and builds its
/// seven descriptions. It is locked while collecting because it derives the CPU counter from
/// its previous value, which two collections at once would add twice.
fn process_families() -> Vec<prometheus::proto::MetricFamily> {
    use prometheus::core::Collector as _;
    use prometheus::process_collector::ProcessCollector;
    static PROCESS: std::sync::OnceLock<Mutex<ProcessCollector>> = std::sync::OnceLock::new();
    PROCESS
        .get_or_init(|| Mutex::new(ProcessCollector::for_self()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .collect()
}

/// The text exposition of `families`, by the prometheus crate's encoder (the process metrics).
fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    let mut buffer = Vec::with_capacity(2048);
    TextEncoder::new()
        .encode(families, &mut buffer)
        .expect("encoding into a Vec cannot fail");
    String::from_utf8(buffer).expect("the text format is UTF-8")
}

/// Names and help texts of every family, for the README check and the landing page.
pub fn documented_families() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALL_FAMILIES.iter().map(|f| (f.name, f.help))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::drift::{account_vg, HostAccounting, SourceFigures};
    use crate::collect::CollectorStatus;
    use crate::lvm::owner::{LvAllocation, Owner};
    use crate::lvm::Vg;
    use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance, TrackedUsage};
    use crate::units::GIB;
    use std::time::Duration;

    const UUID: &str = "3f5e6c1a-1111-2222-3333-444455556666";

    /// The exposition as it was rendered before issue 21 (a prometheus `Registry` of
    /// `GaugeVec`s per render, gathered and written by the crate's `TextEncoder`), kept here
    /// only to prove the direct writer gives the same bytes.
    mod registry_reference {
        use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

        use super::super::*;

        /// Orphan bytes and LVs of nova's VG, all four reasons always present (4 series per family).
        fn render_orphans(
            registry: &Registry,
            orphans: &crate::accounting::orphans::OrphanReasons,
        ) {
            let bytes = gauge(registry, &ORPHAN_BYTES);
            let lvs = gauge(registry, &ORPHAN_LVS);
            for reason in crate::tracked::orphans::OrphanReason::ALL {
                let (count, sum) = orphans.totals(reason);
                let labels = [orphans.vg.as_str(), reason.as_str()];
                bytes.with_label_values(&labels).set(sum as f64);
                lvs.with_label_values(&labels).set(count as f64);
            }
        }

        /// `nova_lvm_local_source_suspect` for each local source that succeeded, when LVM reported
        /// nova's VG.
        fn render_local_source_suspects(registry: &Registry, snapshot: &Snapshot) {
            let Some(doubts) = &snapshot.local_source_doubts else {
                return;
            };
            let local: Vec<SourceKind> = snapshot
                .sources
                .iter()
                .map(|(kind, _)| *kind)
                .filter(|kind| matches!(kind, SourceKind::Libvirt | SourceKind::File))
                .collect();
            if local.is_empty() {
                return;
            }
            let suspect = gauge(registry, &LOCAL_SOURCE_SUSPECT);
            for kind in local {
                let doubted = doubts.iter().any(|doubt| doubt.source == kind);
                suspect
                    .with_label_values(&[snapshot.nova_vg.as_str(), kind.as_str()])
                    .set(if doubted { 1.0 } else { 0.0 });
            }
        }

        /// Registers one family and hands back its gauge vector.
        fn gauge(registry: &Registry, family: &Family) -> GaugeVec {
            let vec = GaugeVec::new(Opts::new(family.name, family.help), family.labels)
                .expect("metric names and labels in the table are valid");
            registry
                .register(Box::new(vec.clone()))
                .expect("each family is registered once");
            vec
        }

        /// The text exposition of `snapshot` without the process metrics, as the registry gave it.
        pub fn render_without_process(snapshot: &Snapshot) -> String {
            let mut buffer = Vec::new();
            TextEncoder::new()
                .encode(&snapshot_families(snapshot), &mut buffer)
                .unwrap();
            String::from_utf8(buffer).unwrap()
        }

        /// Every family of a snapshot, and the build info.
        fn snapshot_families(snapshot: &Snapshot) -> Vec<prometheus::proto::MetricFamily> {
            let registry = Registry::new();
            render_collectors(&registry, snapshot);
            if let Some(host) = &snapshot.host {
                render_raw(&registry, &host.vgs, snapshot.lv_series_limit);
                render_derived(&registry, &host.vgs);
            }
            render_sources(&registry, snapshot);
            if let Some(audit) = &snapshot.audit {
                render_audit(&registry, audit);
            }
            if let Some(fit) = &snapshot.flavor_fit {
                render_flavor_fit(&registry, fit);
            }
            if let Some(orphans) = &snapshot.orphans {
                render_orphans(&registry, orphans);
            }
            render_local_source_suspects(&registry, snapshot);
            if !snapshot.raw_methods.is_empty() {
                let info = gauge(&registry, &RAW_SOURCE_INFO);
                for method in &snapshot.raw_methods {
                    info.with_label_values(&[method.vg.as_str(), method.method, method.reason])
                        .set(1.0);
                }
                let mismatches = prometheus::IntCounterVec::new(
                    prometheus::Opts::new(VERIFY_MISMATCHES.name, VERIFY_MISMATCHES.help),
                    VERIFY_MISMATCHES.labels,
                )
                .expect("the family's name and labels are valid");
                registry
                    .register(Box::new(mismatches.clone()))
                    .expect("each family is registered once");
                for method in &snapshot.raw_methods {
                    mismatches
                        .with_label_values(&[method.vg.as_str()])
                        .inc_by(method.verify_mismatches);
                }
            }
            gauge(&registry, &BUILD_INFO)
                .with_label_values(&[
                    env!("CARGO_PKG_VERSION"),
                    env!("NOVA_LVM_EXPORTER_REVISION"),
                ])
                .set(1.0);
            registry.gather()
        }

        fn render_collectors(registry: &Registry, snapshot: &Snapshot) {
            let success = gauge(registry, &COLLECTOR_SUCCESS);
            let duration = gauge(registry, &COLLECTOR_DURATION);
            let last_success = gauge(registry, &COLLECTOR_LAST_SUCCESS);
            for status in &snapshot.collectors {
                let labels = [status.name];
                success
                    .with_label_values(&labels)
                    .set(f64::from(u8::from(status.success)));
                duration
                    .with_label_values(&labels)
                    .set(status.duration.as_secs_f64());
                if let Some(at) = status.last_success_unix {
                    last_success.with_label_values(&labels).set(at);
                }
            }
        }

        fn render_raw(registry: &Registry, vgs: &[VgAccounting], lv_series_limit: usize) {
            let size = gauge(registry, &VG_SIZE);
            let free = gauge(registry, &VG_FREE);
            let used = gauge(registry, &VG_USED);
            let lvs = gauge(registry, &LVS);
            let lv_bytes = gauge(registry, &LV_BYTES);
            let lv_size = gauge(registry, &LV_SIZE);
            let lv_creation = gauge(registry, &LV_CREATION);
            let thin = gauge(registry, &THIN_POOL_DATA_USED);
            let thin_metadata = gauge(registry, &THIN_POOL_METADATA_USED);
            for vg in vgs {
                let name = vg.vg.as_str();
                size.with_label_values(&[name]).set(vg.size_bytes as f64);
                free.with_label_values(&[name]).set(vg.free_bytes as f64);
                used.with_label_values(&[name]).set(vg.used_bytes as f64);
                for owner in EXPORTED_OWNERS {
                    if let Some(totals) = vg.owners.get(&owner) {
                        lvs.with_label_values(&[name, owner.as_str()])
                            .set(totals.lvs as f64);
                        lv_bytes
                            .with_label_values(&[name, owner.as_str()])
                            .set(totals.bytes as f64);
                    }
                }
                for lv in capped_lv_series(&vg.untracked_lvs, lv_series_limit) {
                    let labels = [name, lv.name, lv.owner.as_str()];
                    lv_size.with_label_values(&labels).set(lv.bytes as f64);
                    if let Some(created) = lv.creation_unix {
                        lv_creation.with_label_values(&labels).set(created as f64);
                    }
                }
                for pool in &vg.thin_pools {
                    let labels = [name, pool.name.as_str()];
                    thin.with_label_values(&labels).set(pool.data_used_ratio);
                    if let Some(ratio) = pool.metadata_used_ratio {
                        thin_metadata.with_label_values(&labels).set(ratio);
                    }
                }
            }
        }

        fn render_derived(registry: &Registry, vgs: &[VgAccounting]) {
            let drift = gauge(registry, &DRIFT);
            let untracked = gauge(registry, &UNTRACKED);
            let unbacked = gauge(registry, &UNBACKED);
            let corrected = gauge(registry, &CORRECTED_FREE);
            let overestimate = gauge(registry, &OVERESTIMATE);
            let recommended = gauge(registry, &RECOMMENDED_RESERVED);
            let recommended_ratio = gauge(registry, &RECOMMENDED_RATIO);
            let nova_conf_reserved = gauge(registry, &NOVA_CONF_RESERVED);
            for vg in vgs {
                let Some(t) = &vg.tracked else { continue };
                let name = vg.vg.as_str();
                drift.with_label_values(&[name]).set(t.drift_bytes as f64);
                for (cause, bytes) in t.untracked.by_cause() {
                    untracked
                        .with_label_values(&[name, cause])
                        .set(bytes as f64);
                }
                unbacked
                    .with_label_values(&[name])
                    .set(t.unbacked_bytes as f64);
                corrected
                    .with_label_values(&[name])
                    .set(t.corrected_free_bytes as f64);
                overestimate
                    .with_label_values(&[name])
                    .set(t.overestimate_bytes as f64);
                recommended
                    .with_label_values(&[name])
                    .set((t.recommended_reserved_host_disk_mb * MIB) as f64);
                if let Some(ratio) = t.recommended_disk_allocation_ratio {
                    recommended_ratio.with_label_values(&[name]).set(ratio);
                }
                if let Some(conf) = &t.nova_conf {
                    nova_conf_reserved
                        .with_label_values(&[name])
                        .set(conf.reserved_host_disk_mb.saturating_mul(MIB) as f64);
                }
            }
        }

        fn render_sources(registry: &Registry, snapshot: &Snapshot) {
            let used = gauge(registry, &TRACKED_USED);
            let allocated = gauge(registry, &TRACKED_ALLOCATED);
            let instances = gauge(registry, &TRACKED_INSTANCES);
            let reserved = gauge(registry, &RESERVED);
            let ratio = gauge(registry, &ALLOCATION_RATIO);
            let scheduler_free = gauge(registry, &SCHEDULER_FREE);
            let available_least = gauge(registry, &DISK_AVAILABLE_LEAST);
            let vg = snapshot.nova_vg.as_str();
            for (kind, figures) in &snapshot.sources {
                let labels = [vg, SourceKind::as_str(*kind)];
                used.with_label_values(&labels)
                    .set(figures.tracked_used_bytes as f64);
                allocated
                    .with_label_values(&labels)
                    .set(figures.allocated_bytes as f64);
                instances
                    .with_label_values(&labels)
                    .set(figures.instances as f64);
                reserved
                    .with_label_values(&labels)
                    .set(figures.reserved_bytes as f64);
                ratio
                    .with_label_values(&labels)
                    .set(figures.allocation_ratio);
                if let Some(free) = figures.scheduler_free_bytes {
                    scheduler_free.with_label_values(&labels).set(free as f64);
                }
                if let Some(least) = figures.disk_available_least_bytes {
                    available_least.with_label_values(&labels).set(least as f64);
                }
            }
        }

        /// One series per kind (three), never per consumer: the UUIDs are in `report` and on the status
        /// page.
        fn render_audit(registry: &Registry, audit: &Audit) {
            let consumers = gauge(registry, &AUDIT_CONSUMERS);
            let bytes = gauge(registry, &AUDIT_BYTES);
            for kind in AuditKind::ALL {
                let (count, total) = audit.totals(kind);
                consumers
                    .with_label_values(&[kind.as_str()])
                    .set(count as f64);
                bytes.with_label_values(&[kind.as_str()]).set(total as f64);
            }
        }

        /// Two series per flavor (corrected and scheduler), at most `--flavor-limit` flavors.
        fn render_flavor_fit(registry: &Registry, fit: &FlavorFitSummary) {
            let instances = gauge(registry, &FLAVOR_FIT);
            for flavor in &fit.flavors {
                for (view, value) in [
                    ("corrected", flavor.corrected),
                    ("scheduler", flavor.scheduler),
                ] {
                    instances
                        .with_label_values(&[fit.vg.as_str(), flavor.name.as_str(), view])
                        .set(value.value());
                }
            }
            gauge(registry, &FLAVOR_FIT_OMITTED)
                .with_label_values(&[fit.vg.as_str()])
                .set(fit.omitted as f64);
        }
    }

    fn status(name: &'static str, success: bool) -> CollectorStatus {
        CollectorStatus {
            name,
            success,
            duration: Duration::from_millis(42),
            last_success_unix: success.then_some(1_700_000_000.0),
            error: (!success).then(|| {
                crate::collect::CollectorError::Source(crate::collect::SourceError::Text(
                    "boom".into(),
                ))
            }),
        }
    }

    fn snapshot(tracked_ok: bool) -> Snapshot {
        let vg = Vg {
            name: "vms-group".into(),
            size_bytes: 20 * GIB,
            free_bytes: 8 * GIB,
            extent_size_bytes: 4 << 20,
        };
        let lvs = vec![
            LvAllocation {
                name: format!("{UUID}_disk"),
                owner: if tracked_ok {
                    Owner::Instance
                } else {
                    Owner::Unclassified
                },
                instance_uuid: Some(UUID.into()),
                allocated_bytes: 10 * GIB,
                thin_pool_data_used_ratio: None,
                thin_pool_metadata_used_ratio: None,
                creation_unix: None,
                thin_volume: false,
            },
            LvAllocation {
                name: "someone_elses_lv".into(),
                owner: Owner::Foreign,
                instance_uuid: None,
                allocated_bytes: 2 * GIB,
                thin_pool_data_used_ratio: None,
                thin_pool_metadata_used_ratio: None,
                creation_unix: Some(1_690_000_000),
                thin_volume: false,
            },
        ];
        let usage = TrackedUsage::from_local(
            vec![TrackedInstance::from_flavor(
                UUID,
                &Flavor {
                    root_gb: 10,
                    ..Flavor::default()
                },
            )],
            &HostDiskSettings::default(),
        );
        let accounting = account_vg(&vg, &lvs, tracked_ok.then_some(&usage)).unwrap();
        Snapshot {
            collectors: vec![status("lvm", true), status("libvirt", tracked_ok)],
            host: Some(std::sync::Arc::new(HostAccounting {
                vgs: vec![accounting],
                missing_vgs: vec![],
            })),
            sources: if tracked_ok {
                vec![(
                    SourceKind::Libvirt,
                    crate::accounting::drift::source_figures(&usage, Some(20 * GIB)).unwrap(),
                )]
            } else {
                Vec::<(SourceKind, SourceFigures)>::new()
            },
            nova_vg: "vms-group".into(),
            primary: Some(SourceKind::Libvirt),
            audit: None,
            finished_unix: 1_700_000_000.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        }
    }

    #[test]
    fn a_local_source_listing_no_instance_beside_instance_disks_is_suspect() {
        let series = "nova_lvm_local_source_suspect{source=\"libvirt\",vg=\"vms-group\"}";
        // Not computed (LVM did not report nova's VG): absent, never a reassuring 0.
        assert_eq!(value(&render(&snapshot(true)), series), None);
        let mut fine = snapshot(true);
        fine.local_source_doubts = Some(Vec::new());
        assert_eq!(value(&render(&fine), series), Some(0.0));
        let mut doubted = snapshot(true);
        doubted.local_source_doubts = Some(vec![crate::accounting::orphans::LocalSourceDoubt {
            source: SourceKind::Libvirt,
            vg: "vms-group".into(),
            instances: 1,
            bytes: 10 * GIB,
            others: vec![],
        }]);
        assert_eq!(value(&render(&doubted), series), Some(1.0));
        // A failed local source has no figures to doubt: absent.
        let mut failed = snapshot(false);
        failed.local_source_doubts = Some(Vec::new());
        assert_eq!(value(&render(&failed), series), None);
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
    }

    #[test]
    fn every_family_has_help_and_the_prefix() {
        for (name, help) in documented_families() {
            assert!(name.starts_with("nova_lvm_"), "{name}");
            assert!(help.len() > 20, "{name} needs a helpful HELP");
        }
    }

    #[test]
    fn a_healthy_snapshot_renders_raw_tracked_and_derived_figures() {
        let text = render(&snapshot(true));
        assert_eq!(
            value(&text, "nova_lvm_vg_size_bytes{vg=\"vms-group\"}"),
            Some((20 * GIB) as f64)
        );
        assert_eq!(
            value(&text, "nova_lvm_vg_used_bytes{vg=\"vms-group\"}"),
            Some((12 * GIB) as f64)
        );
        assert_eq!(
            value(&text, "nova_lvm_drift_bytes{vg=\"vms-group\"}"),
            Some((2 * GIB) as f64)
        );
        assert_eq!(
            value(
                &text,
                "nova_lvm_untracked_bytes{cause=\"foreign\",vg=\"vms-group\"}"
            ),
            Some((2 * GIB) as f64)
        );
        assert_eq!(
            value(&text, "nova_lvm_lv_size_bytes{lv=\"someone_elses_lv\",owner=\"foreign\",vg=\"vms-group\"}"),
            Some((2 * GIB) as f64)
        );
        assert_eq!(
            value(&text, "nova_lvm_lv_creation_timestamp_seconds{lv=\"someone_elses_lv\",owner=\"foreign\",vg=\"vms-group\"}"),
            Some(1_690_000_000.0)
        );
        // The tracked instance disk has neither series.
        assert!(!text.contains(&format!("lv=\"{UUID}_disk\"")));
        assert_eq!(
            value(
                &text,
                "nova_lvm_tracked_used_bytes{source=\"libvirt\",vg=\"vms-group\"}"
            ),
            Some((10 * GIB) as f64)
        );
        assert_eq!(
            value(&text, "nova_lvm_collector_success{collector=\"libvirt\"}"),
            Some(1.0)
        );
        assert!(text.contains("# HELP nova_lvm_drift_bytes "));
        assert!(text.contains("# TYPE nova_lvm_drift_bytes gauge"));
        assert!(text.contains("nova_lvm_build_info{"));
        assert!(text.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn derived_and_tracked_metrics_are_absent_when_the_tracked_source_failed() {
        let text = render(&snapshot(false));
        assert_eq!(
            value(&text, "nova_lvm_collector_success{collector=\"libvirt\"}"),
            Some(0.0)
        );
        assert!(!text
            .contains("nova_lvm_collector_last_success_timestamp_seconds{collector=\"libvirt\"}"));
        for absent in [
            "nova_lvm_drift_bytes",
            "nova_lvm_corrected_free_bytes",
            "nova_lvm_scheduler_overestimate_bytes",
            "nova_lvm_untracked_bytes",
            "nova_lvm_tracked_used_bytes",
            "owner=\"instance\"",
            "owner=\"orphan\"",
        ] {
            assert!(!text.contains(absent), "{absent} should be absent:\n{text}");
        }
        assert_eq!(
            value(&text, "nova_lvm_vg_free_bytes{vg=\"vms-group\"}"),
            Some((8 * GIB) as f64)
        );
    }

    #[test]
    fn without_lvm_only_health_and_source_figures_remain() {
        let mut snap = snapshot(true);
        snap.host = None;
        snap.collectors[0] = status("lvm", false);
        let text = render(&snap);
        assert!(!text.contains("nova_lvm_vg_size_bytes"));
        assert!(!text.contains("nova_lvm_drift_bytes"));
        assert_eq!(
            value(&text, "nova_lvm_collector_success{collector=\"lvm\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn the_audit_is_three_series_per_family_without_uuids() {
        let mut snap = snapshot(true);
        assert!(!render(&snap).contains("nova_lvm_audit_"));
        let leaked = TrackedInstance {
            uuid: "aaaaaaaa-0000-4000-8000-000000000001".into(),
            tracked_bytes: 40 * GIB,
            allocated_bytes: 40 * GIB,
            flavor: None,
        };
        snap.audit = Some(std::sync::Arc::new(crate::accounting::audit::audit(
            SourceKind::Libvirt,
            &[leaked],
            &[],
            &Default::default(),
        )));
        let text = render(&snap);
        let audit_series = |family: &str| {
            text.lines()
                .filter(|line| line.starts_with(family) && !line.starts_with('#'))
                .count()
        };
        assert_eq!(audit_series("nova_lvm_audit_consumers{"), 3);
        assert_eq!(audit_series("nova_lvm_audit_bytes{"), 3);
        assert!(!text.contains("aaaaaaaa-"));
        assert_eq!(
            value(
                &text,
                "nova_lvm_audit_bytes{kind=\"allocation_without_instance\"}"
            ),
            Some((40 * GIB) as f64)
        );
        assert_eq!(
            value(
                &text,
                "nova_lvm_audit_consumers{kind=\"allocation_mismatch\"}"
            ),
            Some(0.0)
        );
    }

    #[test]
    fn the_flavor_fit_is_two_series_per_flavor_with_escaped_names_and_inf_when_unbounded() {
        use crate::accounting::fit::{fit_flavors, SchedulerView};
        use crate::tracked::flavors::{FlavorOrigin, NamedFlavor};
        let mut snap = snapshot(true);
        assert!(!render(&snap).contains("nova_lvm_flavor_fit"));
        let named = |name: &str, root_gb| NamedFlavor {
            name: name.into(),
            flavor: Flavor {
                root_gb,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume: false,
            },
            origin: FlavorOrigin::Configured,
        };
        let scheduler = SchedulerView {
            free_bytes: 270 * GIB as i64,
            total_bytes: Some(499 * GIB),
        };
        let flavors = [
            named("m1.large", 80),
            named("odd \"name\"\\x", 20),
            named("zero", 0),
        ];
        snap.flavor_fit = Some(std::sync::Arc::new(FlavorFitSummary {
            vg: "vms-group".into(),
            extent_bytes: 4 * MIB,
            corrected_free_bytes: 76_231_475_200,
            scheduler,
            flavors: fit_flavors(&flavors, 76_231_475_200, 4 * MIB, &scheduler),
            omitted: 3,
        }));
        let text = render(&snap);
        let fit = |flavor: &str, view: &str| {
            value(
                &text,
                &format!("nova_lvm_flavor_fit_instances{{flavor=\"{flavor}\",vg=\"vms-group\",view=\"{view}\"}}"),
            )
        };
        assert_eq!(fit("m1.large", "corrected"), Some(0.0), "{text}");
        assert_eq!(fit("m1.large", "scheduler"), Some(3.0));
        assert_eq!(
            fit("odd \\\"name\\\"\\\\x", "corrected"),
            Some(3.0),
            "{text}"
        );
        assert_eq!(fit("zero", "corrected"), Some(f64::INFINITY), "{text}");
        assert_eq!(fit("zero", "scheduler"), Some(f64::INFINITY));
        assert_eq!(
            value(
                &text,
                "nova_lvm_flavor_fit_omitted_flavors{vg=\"vms-group\"}"
            ),
            Some(3.0)
        );
        assert_eq!(text.matches("nova_lvm_flavor_fit_instances{").count(), 6);
    }

    /// A snapshot with every family: two VGs (one with more untracked LVs than the series
    /// limit, hostile LV names, thin pools), two sources (one with a NaN ratio), the audit, the
    /// flavor fit (hostile names, +Inf), orphans, a doubted local source, raw methods with
    /// mismatches, and a failed collector.
    fn rich_snapshot() -> Snapshot {
        use crate::accounting::fit::{fit_flavors, SchedulerView};
        use crate::tracked::flavors::{FlavorOrigin, NamedFlavor};
        let mut snap = snapshot(true);
        let other = Vg {
            name: "other-vg".into(),
            size_bytes: 100 * GIB,
            free_bytes: 10 * GIB,
            extent_size_bytes: 4 << 20,
        };
        let lv = |name: &str, owner: Owner, bytes: u64, created: Option<i64>| LvAllocation {
            name: name.into(),
            owner,
            instance_uuid: None,
            allocated_bytes: bytes,
            thin_pool_data_used_ratio: None,
            thin_pool_metadata_used_ratio: None,
            creation_unix: created,
            thin_volume: false,
        };
        let mut pool = lv("pool", Owner::Foreign, 3 * GIB, Some(5));
        pool.thin_pool_data_used_ratio = Some(0.125);
        pool.thin_pool_metadata_used_ratio = Some(1.0 / 3.0);
        let mut inactive_pool = lv("cold-pool", Owner::Cinder, GIB, None);
        inactive_pool.thin_pool_data_used_ratio = Some(0.0);
        let lvs = vec![
            pool,
            inactive_pool,
            lv("q\"uote", Owner::Foreign, 7 * GIB, Some(1_600_000_000)),
            lv("back\\slash", Owner::Foreign, 6 * GIB, None),
            lv("new\nline", Owner::Foreign, 5 * GIB, Some(1_500_000_000)),
            lv("volume-1", Owner::Cinder, 2 * GIB, Some(1_400_000_000)),
            lv("volume-2", Owner::Cinder, GIB, Some(1_300_000_000)),
            lv("small", Owner::Foreign, 1, Some(1_200_000_000)),
            lv(
                &format!("{}_disk", "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"),
                Owner::Orphan,
                4 * GIB,
                None,
            ),
        ];
        let accounted = account_vg(&other, &lvs, None).unwrap();
        let mut orphan = lvs[8].clone();
        orphan.instance_uuid = Some("0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6".into());
        let host = Arc::make_mut(snap.host.as_mut().unwrap());
        host.vgs.push(accounted);
        host.vgs[0].orphans = Some(vec![crate::accounting::drift::OrphanAllocation {
            name: orphan.name.clone(),
            instance_uuid: orphan.instance_uuid.clone().unwrap(),
            allocated_bytes: orphan.allocated_bytes,
        }]);
        snap.orphans = crate::accounting::orphans::orphan_lvs(host, "vms-group").map(Arc::new);
        assert!(snap.orphans.is_some());
        snap.lv_series_limit = 3;
        let tracked = host.vgs[0].tracked.as_mut().unwrap();
        tracked.recommended_disk_allocation_ratio = Some(1.2345);
        tracked.nova_conf = Some(crate::tracked::NovaConfDisk {
            reserved_host_disk_mb: 512,
            image_cache_reserve: false,
            pinned_disk_allocation_ratio: None,
        });
        let mut placement = snap.sources[0].1;
        placement.allocation_ratio = f64::NAN;
        placement.scheduler_free_bytes = Some(-5);
        placement.disk_available_least_bytes = Some(7);
        snap.sources.push((SourceKind::Placement, placement));
        snap.audit = Some(Arc::new(crate::accounting::audit::audit(
            SourceKind::Libvirt,
            &[TrackedInstance {
                uuid: "aaaaaaaa-0000-4000-8000-000000000001".into(),
                tracked_bytes: 40 * GIB,
                allocated_bytes: 40 * GIB,
                flavor: None,
            }],
            &[],
            &Default::default(),
        )));
        let named = |name: &str, root_gb| NamedFlavor {
            name: name.into(),
            flavor: Flavor {
                root_gb,
                ..Flavor::default()
            },
            origin: FlavorOrigin::Configured,
        };
        let scheduler = SchedulerView {
            free_bytes: 270 * GIB as i64,
            total_bytes: Some(499 * GIB),
        };
        let flavors = [
            named("m1.large", 80),
            named("odd \"name\"\\x\nline", 20),
            named("zero", 0),
        ];
        snap.flavor_fit = Some(Arc::new(FlavorFitSummary {
            vg: "vms-group".into(),
            extent_bytes: 4 * MIB,
            corrected_free_bytes: 76_231_475_200,
            scheduler,
            flavors: fit_flavors(&flavors, 76_231_475_200, 4 * MIB, &scheduler),
            omitted: 3,
        }));
        snap.local_source_doubts = Some(vec![crate::accounting::orphans::LocalSourceDoubt {
            source: SourceKind::Libvirt,
            vg: "vms-group".into(),
            instances: 1,
            bytes: 10 * GIB,
            others: vec![],
        }]);
        let method = |vg: &str, method, reason, verify_mismatches| crate::lvm::RawMethod {
            vg: vg.into(),
            method,
            reason,
            verify_mismatches,
        };
        snap.raw_methods = vec![
            method("vms-group", "metadata", "ok", 0),
            method("other-vg", "exec", "verify_mismatch", 2),
            method("other-vg", "metadata", "ok", 3),
        ];
        snap.collectors.push(CollectorStatus {
            duration: Duration::from_micros(1_234_567),
            ..status("placement", true)
        });
        snap
    }

    #[test]
    fn the_direct_writer_gives_the_registrys_bytes_for_every_family() {
        let snap = rich_snapshot();
        let written = render_without_process(&snap);
        assert_eq!(written, registry_reference::render_without_process(&snap));
        // Every family of the table is in it (the process metrics are the crate's own).
        for (name, _) in documented_families() {
            assert!(written.contains(&format!("# TYPE {name} ")), "{name}");
        }
        for hostile in [
            "lv=\"q\\\"uote\"",
            "lv=\"back\\\\slash\"",
            "lv=\"new\\nline\"",
            "{lv=\"(other)\"",
            "flavor=\"odd \\\"name\\\"\\\\x\\nline\"",
            "} inf\n",
            "} NaN\n",
        ] {
            assert!(written.contains(hostile), "{hostile} in\n{written}");
        }
        // Each failing or partial snapshot of the other tests too.
        let mut without_lvm = snapshot(true);
        without_lvm.host = None;
        for snap in [snapshot(true), snapshot(false), without_lvm] {
            assert_eq!(
                render_without_process(&snap),
                registry_reference::render_without_process(&snap)
            );
        }
    }

    #[test]
    fn the_process_metrics_follow_every_other_family() {
        let snap = rich_snapshot();
        let with_process = render(&snap);
        let without = render_without_process(&snap);
        assert!(with_process.starts_with(&without));
        assert!(with_process[without.len()..].starts_with("# HELP process_"));
    }

    /// [`rich_snapshot`] without its NaN: a NaN is not equal to itself, so a snapshot holding
    /// one is rendered anew on every scrape (slower, never stale).
    fn comparable_snapshot() -> Snapshot {
        let mut snap = rich_snapshot();
        snap.sources[1].1.allocation_ratio = 1.5;
        snap
    }

    /// The stable text's first byte in `exposition` (its first part begins the stable text).
    fn stable_text_of(exposition: &Exposition) -> *const u8 {
        exposition.parts()[0].as_ptr()
    }

    #[test]
    fn an_unchanged_snapshot_reuses_the_stable_text_and_renders_the_collectors_fresh() {
        let cache = MetricsCache::default();
        let first = Arc::new(comparable_snapshot());
        let mut next = comparable_snapshot();
        next.collectors[0].duration = Duration::from_millis(7);
        next.finished_unix += 15.0;
        let next = Arc::new(next);
        let a = cache.render(&first);
        let b = cache.render(&next);
        assert_eq!(stable_text_of(&a), stable_text_of(&b));
        let text = b.to_text();
        assert_eq!(
            value(
                &text,
                "nova_lvm_collector_duration_seconds{collector=\"lvm\"}"
            ),
            Some(0.007)
        );
        // Apart from the process metrics, what an uncached render gives.
        let without = render_without_process(&next);
        assert!(text.starts_with(&without), "{text}");
        // The same snapshot again (a scrape sharing the collection): the same exposition.
        let again = cache.render(&next);
        assert_eq!(again.parts().len(), b.parts().len());
        for (x, y) in again.parts().iter().zip(b.parts()) {
            assert_eq!(x.as_ptr(), y.as_ptr());
        }
    }

    #[test]
    fn a_changed_figure_is_rendered_anew_never_served_from_the_cache() {
        let cache = MetricsCache::default();
        let first = Arc::new(comparable_snapshot());
        let before = cache.render(&first);
        let mut changed = comparable_snapshot();
        Arc::make_mut(changed.host.as_mut().unwrap()).vgs[0].free_bytes = 9 * GIB;
        let changed = Arc::new(changed);
        let after = cache.render(&changed);
        assert_ne!(stable_text_of(&before), stable_text_of(&after));
        assert_eq!(
            value(&after.to_text(), "nova_lvm_vg_free_bytes{vg=\"vms-group\"}"),
            Some((9 * GIB) as f64)
        );
        // The limit is an input too.
        let mut limited = comparable_snapshot();
        Arc::make_mut(limited.host.as_mut().unwrap()).vgs[0].free_bytes = 9 * GIB;
        limited.lv_series_limit = 100;
        let limited = cache.render(&Arc::new(limited));
        assert_ne!(stable_text_of(&after), stable_text_of(&limited));
        assert!(!limited.to_text().contains("{lv=\"(other)\""));
    }

    #[test]
    fn the_collectors_families_sit_between_the_stable_ones_in_name_order() {
        let snap = comparable_snapshot();
        let text = render_without_process(&snap);
        let names: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|line| line.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(names.contains(&"nova_lvm_collector_success"));
    }
}
