//! The metric contract, in one place: every exported family is declared once in the table below
//! (name, help, labels), and [`render`] turns a [`Snapshot`] into the Prometheus text exposition.
//!
//! A family with no value on a scrape is simply absent: derived metrics disappear when an input
//! they need failed, instead of showing zero or a stale value.

use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::accounting::audit::{Audit, AuditKind};
use crate::accounting::drift::{VgAccounting, EXPORTED_OWNERS};
use crate::accounting::fit::FlavorFitSummary;
use crate::collect::Snapshot;
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

/// Orphan bytes and LVs of nova's VG, all four reasons always present (4 series per family).
fn render_orphans(registry: &Registry, orphans: &crate::accounting::orphans::OrphanReasons) {
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

/// Renders a snapshot (plus build info and the process metrics) as Prometheus text.
pub fn render(snapshot: &Snapshot) -> String {
    let mut families = snapshot_families(snapshot);
    families.extend(process_families());
    encode(&families)
}

/// The process metrics (`process_*`), read now. The collector is made once: making one reads
/// `/proc/stat` and `/proc/self/stat` for the start time, which never changes, and builds its
/// seven descriptions. It is locked while collecting because it derives the CPU counter from
/// its previous value, which two collections at once would add twice.
fn process_families() -> Vec<prometheus::proto::MetricFamily> {
    use prometheus::core::Collector as _;
    use prometheus::process_collector::ProcessCollector;
    static PROCESS: std::sync::OnceLock<std::sync::Mutex<ProcessCollector>> =
        std::sync::OnceLock::new();
    PROCESS
        .get_or_init(|| std::sync::Mutex::new(ProcessCollector::for_self()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .collect()
}

/// Renders a snapshot and the build info as Prometheus text, without the process metrics: what
/// `textfile` writes for node_exporter, which exports its own `process_*` series (the same
/// names from a file would clash with them, and would describe a process that has exited).
pub fn render_without_process(snapshot: &Snapshot) -> String {
    encode(&snapshot_families(snapshot))
}

/// The text exposition of `families`.
fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    let mut buffer = Vec::with_capacity(4096);
    TextEncoder::new()
        .encode(families, &mut buffer)
        .expect("encoding into a Vec cannot fail");
    String::from_utf8(buffer).expect("the text format is UTF-8")
}

/// Every family of a snapshot, and the build info.
fn snapshot_families(snapshot: &Snapshot) -> Vec<prometheus::proto::MetricFamily> {
    let registry = Registry::new();
    render_collectors(&registry, snapshot);
    if let Some(host) = &snapshot.host {
        render_raw(&registry, &host.vgs);
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

fn render_raw(registry: &Registry, vgs: &[VgAccounting]) {
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
        for lv in &vg.untracked_lvs {
            let labels = [name, lv.name.as_str(), lv.owner.as_str()];
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
        let accounting = account_vg(&vg, &lvs, tracked_ok.then_some(&usage), 100).unwrap();
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
}
