//! The accounting model: raw LVM figures + tracked usage -> drift, untracked consumption by cause,
//! corrected free space, the scheduler's view and the reserve that would fix it.
//!
//! Everything here is pure: no I/O, no clocks. Sizes are bytes; signed figures are `i64`
//! because drift, corrected free space and over-estimation can be negative.
//!
//! The identity that ties the causes together (tested below) is
//!
//! ```text
//! drift = foreign + orphan + cinder + unbooked_instance
//!       + rescue + unbooked_root + swap_remainder + extent_rounding
//!       + unexplained - unbacked
//! ```
//!
//! where `unbooked_instance` is what the LVs of instances on this host hold when the primary
//! source does not book them (another enabled source places the instance here: see
//! [`instances_here`]; such an LV is never an orphan), `unbacked` is tracked disk with no (or a
//! smaller) LV behind it (instances still building, disks kept elsewhere), and `unexplained` is
//! allocated space that no LV in the walk accounts for (0 when LVM's report is complete).
//!
//! What the LVs of a booked instance hold beyond its booking is split four ways
//! ([`instance_excess`]), each following nova's own code:
//! - `rescue`: `<uuid>_disk.rescue` (and `disk.config.rescue`) LVs. The libvirt driver's
//!   `rescue()` creates the root disk again with the suffix `.rescue` at the image's size
//!   (`_create_and_inject_local_root`: `if size == 0 or suffix == '.rescue': size = None`) and
//!   books nothing for it; `unrescue()` removes it.
//! - `unbooked_root`: the root LV (`<uuid>_disk`) of a flavor with `disk = 0`, created at the
//!   image's size by the same `size == 0` branch and booked as 0 by the resource tracker and
//!   placement alike.
//! - `swap_remainder`: the swap below a whole GiB the booking leaves out: nova's resource
//!   tracker adds `swap / 1024` to the integer `local_gb_used` (`_update_usage`), which
//!   truncates; placement books `ceil(swap / 1024)` and leaves nothing out.
//! - `extent_rounding`: LVM rounds every LV up to whole extents (4 MiB by default); whatever
//!   else the netted LVs hold beyond the booking lands here too, never in a cause of its own.
//!
//! A source that keeps its own "used" apart from its instance list (nova's `local_gb_used`,
//! which also holds migration claims) may differ from the sum of its instances; that residual has
//! no instance to attach to. When the source counts more, the excess is tracked disk with no LV
//! behind it (`unbacked`); when it counts less, the residual first cancels unbacked disk and the
//! rest is instance disk the source's "used" does not book: `unbooked_instance`. The identity
//! still holds.
//!
//! Every sum and difference is checked: a figure that does not fit in the signed 64-bit outputs
//! (more than [`MAX_ACCOUNTED_BYTES`]) is an [`AccountingError`] naming the figures, never a
//! wrapped or negative value.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::lvm::owner::{attribute, classify_name, LvAllocation, LvName, Owner};
use crate::lvm::{Lv, Vg, VgReport};
use crate::tracked::{Flavor, NovaConfDisk, TrackedInstance, TrackedUsage};
use crate::units::{GIB, MIB};

/// The owner classes exported for every classified VG, in label order.
pub const EXPORTED_OWNERS: [Owner; 4] = [
    Owner::Instance,
    Owner::Orphan,
    Owner::Cinder,
    Owner::Foreign,
];

/// The largest byte figure the accounting handles: every output is also exported as a signed
/// 64-bit figure, so a size, a sum or a difference beyond this is an error.
pub const MAX_ACCOUNTED_BYTES: u64 = i64::MAX as u64;

/// A figure that does not fit in the accounting's 64-bit arithmetic; the message names the
/// figures involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccountingError(String);

impl AccountingError {
    fn too_large(what: &str, detail: impl std::fmt::Display) -> Self {
        Self(format!(
            "{what}: more than {MAX_ACCOUNTED_BYTES} bytes, beyond the signed 64-bit range ({detail})"
        ))
    }
}

/// `figures` summed, or an error naming `what` and how many figures there were.
fn checked_sum(what: &str, figures: impl IntoIterator<Item = u64>) -> Result<u64, AccountingError> {
    let mut sum = 0u64;
    let mut count = 0usize;
    let mut largest = 0u64;
    let mut overflow = false;
    for figure in figures {
        count += 1;
        largest = largest.max(figure);
        match sum.checked_add(figure) {
            Some(next) if next <= MAX_ACCOUNTED_BYTES => sum = next,
            _ => overflow = true,
        }
    }
    if overflow {
        return Err(AccountingError::too_large(
            what,
            format!("{count} figures, the largest {largest} bytes"),
        ));
    }
    Ok(sum)
}

/// `value` as a signed figure, or an error naming `what`.
fn signed(what: &str, value: i128) -> Result<i64, AccountingError> {
    i64::try_from(value).map_err(|_| {
        AccountingError(format!(
            "{what} is {value} bytes, outside the signed 64-bit range"
        ))
    })
}

/// `value` when it is at most [`MAX_ACCOUNTED_BYTES`], else an error naming `what`.
fn bounded(what: &str, value: u64) -> Result<u64, AccountingError> {
    if value > MAX_ACCOUNTED_BYTES {
        return Err(AccountingError::too_large(what, format!("{value} bytes")));
    }
    Ok(value)
}

/// Count and bytes of the LVs of one owner class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnerTotals {
    /// Visible LVs of this class (thin volumes included).
    pub lvs: u64,
    /// VG bytes these LVs hold.
    pub bytes: u64,
}

/// One LV that is not a tracked instance disk (owner orphan, cinder or foreign; thin volumes
/// left out, as their pool holds their bytes). The accounting lists every one; the outputs cap
/// the list ([`crate::output::lv_series`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrackedLv {
    /// LV name.
    pub name: String,
    /// Its owner class.
    pub owner: Owner,
    /// VG bytes it holds.
    pub bytes: u64,
    /// The LV's creation time (`lv_time`), seconds since the epoch; `None` when LVM has none.
    pub creation_unix: Option<i64>,
}

/// One thin pool's usage, as LVM reports it for an active pool.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinPoolUsage {
    /// The pool LV's name.
    pub name: String,
    /// `data_percent` / 100.
    pub data_used_ratio: f64,
    /// `metadata_percent` / 100; `None` in a saved report without the field.
    pub metadata_used_ratio: Option<f64>,
}

/// Positive drift explained by cause (label `cause` of `nova_lvm_untracked_bytes`).
///
/// The four causes `rescue`, `unbooked_root`, `swap_remainder` and `extent_rounding` split what
/// the LVs of booked instances hold beyond what the primary source books for them (see
/// [`InstanceExcess`]); together they replace the former `overhead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UntrackedByCause {
    /// LVs that are neither nova's nor cinder's.
    pub foreign_bytes: u64,
    /// Nova-named LVs of instances not on this host.
    pub orphan_bytes: u64,
    /// Cinder volumes, snapshots and pools in the VG.
    pub cinder_bytes: u64,
    /// LVs of instances that a tracked source places on this host but the primary source does
    /// not book (an instance without an allocation, with placement primary), and the part of
    /// the instances' disk that the source's own "used" leaves out (see the module doc).
    pub unbooked_instance_bytes: u64,
    /// Rescue disks (`<uuid>_disk.rescue`, `<uuid>_disk.config.rescue`) of booked instances:
    /// image-sized, booked by nobody, removed at unrescue.
    pub rescue_bytes: u64,
    /// Root LVs of booked instances whose flavor has `disk = 0`: image-sized, booked as 0.
    pub unbooked_root_bytes: u64,
    /// Swap below a whole GiB that nova's resource tracker truncates away (`int(swap / 1024)`).
    pub swap_remainder_bytes: u64,
    /// Instance LVs rounded up to whole extents, and whatever else the LVs of a booked instance
    /// hold beyond its booking.
    pub extent_rounding_bytes: u64,
    /// Allocated space no LV accounts for: should be 0. Negative would mean the LV walk
    /// counted more than LVM reports allocated.
    pub unexplained_bytes: i64,
}

/// The `cause` labels of `nova_lvm_untracked_bytes`, in the order [`UntrackedByCause::by_cause`]
/// gives them.
pub const UNTRACKED_CAUSES: [&str; 9] = [
    "foreign",
    "orphan",
    "cinder",
    "unbooked_instance",
    "rescue",
    "unbooked_root",
    "swap_remainder",
    "extent_rounding",
    "unexplained",
];

/// The causes that are rounding (nova's whole GiB, LVM's whole extents) rather than consumption
/// someone can remove: left out of [`UntrackedByCause::total_bytes`], the untracked-consumption
/// alert and `check`.
pub const ROUNDING_CAUSES: [&str; 2] = ["swap_remainder", "extent_rounding"];

impl UntrackedByCause {
    /// Every cause with its bytes, labelled and ordered as [`UNTRACKED_CAUSES`].
    pub fn by_cause(&self) -> [(&'static str, i64); 9] {
        let figures = [
            self.foreign_bytes as i64,
            self.orphan_bytes as i64,
            self.cinder_bytes as i64,
            self.unbooked_instance_bytes as i64,
            self.rescue_bytes as i64,
            self.unbooked_root_bytes as i64,
            self.swap_remainder_bytes as i64,
            self.extent_rounding_bytes as i64,
            self.unexplained_bytes,
        ];
        std::array::from_fn(|i| (UNTRACKED_CAUSES[i], figures[i]))
    }

    /// Untracked consumption without the rounding causes ([`ROUNDING_CAUSES`]): foreign +
    /// orphan + cinder + unbooked_instance + rescue + unbooked_root + unexplained.
    /// [`account_vg`] checks that it fits; it saturates on figures built otherwise.
    pub fn total_bytes(&self) -> i64 {
        let total = self.total_wide();
        i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
    }

    fn total_wide(&self) -> i128 {
        i128::from(self.foreign_bytes)
            + i128::from(self.orphan_bytes)
            + i128::from(self.cinder_bytes)
            + i128::from(self.unbooked_instance_bytes)
            + i128::from(self.rescue_bytes)
            + i128::from(self.unbooked_root_bytes)
            + i128::from(self.unexplained_bytes)
    }
}

/// What the LVs of one instance the primary source books hold beyond that booking, by cause,
/// and the booking with no LV behind it. For every instance,
/// `LV bytes - tracked bytes = rescue + unbooked_root + swap_remainder + extent_rounding -
/// unbacked`, exactly.
///
/// Rescue LVs, the root LV of a `disk = 0` flavor and the swap below a whole GiB that the
/// booking leaves out are booked by nobody: they are set apart before the other LVs are netted
/// against the booking, so that they never hide a disk that is missing (`unbacked`). The swap
/// remainder is at most what the swap LV holds beyond the swap the booking holds. Whatever the
/// netted LVs hold beyond the booking is `extent_rounding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceExcess {
    /// LVs whose disk name ends in `.rescue` (`disk.rescue`, `disk.config.rescue`).
    pub rescue_bytes: u64,
    /// The `disk` LV of a flavor with `disk = 0` (not booted from volume).
    pub unbooked_root_bytes: u64,
    /// Swap the booking truncates.
    pub swap_remainder_bytes: u64,
    /// Whole-extent rounding and any other excess of the netted LVs.
    pub extent_rounding_bytes: u64,
    /// Tracked bytes the netted LVs do not cover.
    pub unbacked_bytes: u64,
}

/// True for the disk name (after `<uuid>_`) of a rescue disk: the libvirt driver's `rescue()`
/// creates the root disk again as `disk.rescue` (and the config drive as `disk.config.rescue`,
/// a file with the LVM backend), and `unrescue()` removes the instance's LVs whose names end in
/// `.rescue`: the same test.
fn is_rescue_disk(disk: &str) -> bool {
    disk.ends_with(".rescue")
}

/// The disk name of an LV (after `<uuid>_`), when it follows nova's naming.
fn disk_name(lv: &LvAllocation) -> Option<&str> {
    match classify_name(&lv.name) {
        LvName::Nova { disk, .. } => Some(disk),
        _ => None,
    }
}

/// Splits what `lvs` (the LVs of `instance`) hold beyond its booking; see [`InstanceExcess`].
/// Sums saturate: [`account_vg`] has checked that the LVs' sum fits before it calls this.
pub fn instance_excess(instance: &TrackedInstance, lvs: &[&LvAllocation]) -> InstanceExcess {
    let flavor = instance.flavor.as_ref();
    let root_unbooked = flavor.is_some_and(|f| f.root_gb == 0 && !f.boot_from_volume);
    let mut excess = InstanceExcess::default();
    let mut netted = 0u64;
    let mut swap_lv = 0u64;
    for lv in lvs {
        match disk_name(lv) {
            Some(disk) if is_rescue_disk(disk) => {
                excess.rescue_bytes = excess.rescue_bytes.saturating_add(lv.allocated_bytes)
            }
            Some("disk") if root_unbooked => {
                excess.unbooked_root_bytes = excess
                    .unbooked_root_bytes
                    .saturating_add(lv.allocated_bytes)
            }
            disk => {
                netted = netted.saturating_add(lv.allocated_bytes);
                if disk == Some("disk.swap") {
                    swap_lv = swap_lv.saturating_add(lv.allocated_bytes);
                }
            }
        }
    }
    excess.swap_remainder_bytes = flavor.map_or(0, |f| {
        let root_gb = if f.boot_from_volume { 0 } else { f.root_gb };
        // What the booking holds for swap: nova's resource tracker int(swap / 1024) GiB,
        // placement ceil(swap / 1024) GiB (nothing left out), whatever the source booked.
        let booked_disks = root_gb.saturating_add(f.ephemeral_gb).saturating_mul(GIB);
        let booked_swap = instance.tracked_bytes.saturating_sub(booked_disks);
        let left_out = f.swap_mb.saturating_mul(MIB).saturating_sub(booked_swap);
        left_out.min(swap_lv.saturating_sub(booked_swap))
    });
    // The remainder is part of the swap LV, so of `netted`.
    let netted = netted - excess.swap_remainder_bytes;
    excess.extent_rounding_bytes = netted.saturating_sub(instance.tracked_bytes);
    excess.unbacked_bytes = instance.tracked_bytes.saturating_sub(netted);
    excess
}

/// The tracked side of one VG's accounting: present only when the primary tracked source
/// succeeded and the VG is the one nova uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedAccounting {
    /// Sum of the instances' tracked bytes (the source's "used", without reserved).
    pub tracked_used_bytes: u64,
    /// Disk reserved for the host.
    pub reserved_bytes: u64,
    /// raw used - tracked used.
    pub drift_bytes: i64,
    /// The drift explained by cause.
    pub untracked: UntrackedByCause,
    /// Tracked bytes with no LV behind them (the part of a negative drift the walk explains).
    pub unbacked_bytes: u64,
    /// size - max(raw used, tracked used) - reserved: the free space the scheduler should see.
    pub corrected_free_bytes: i64,
    /// What the scheduler believes is free (placement's rule).
    pub scheduler_free_bytes: i64,
    /// scheduler free - corrected free: phantom space handed out when positive.
    pub overestimate_bytes: i64,
    /// The `reserved_host_disk_mb` that makes the scheduler's free space match corrected free
    /// (less the image cache's part of placement's reserve when nova.conf adds it).
    pub recommended_reserved_host_disk_mb: u64,
    /// The DISK_GB allocation ratio at which placement's capacity equals the corrected capacity
    /// ([`recommended_disk_allocation_ratio`]); `None` when placement's total is no more than its
    /// reserve.
    pub recommended_disk_allocation_ratio: Option<f64>,
    /// The placement resource provider of these figures (placement source only).
    pub provider_uuid: Option<String>,
    /// What nova.conf makes nova send for DISK_GB (placement source only).
    pub nova_conf: Option<NovaConfDisk>,
    /// Why placement's DISK_GB `reserved` differs from nova.conf's `reserved_host_disk_mb`,
    /// when it does (placement source only).
    pub reserved_difference: Option<ReservedDifference>,
}

/// Placement's DISK_GB `reserved` differs from what nova.conf's `reserved_host_disk_mb` gives
/// (`ceil(MiB / 1024)` GiB, nova's `_get_reserved_host_disk_gb_from_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedDifference {
    /// Placement's DISK_GB `reserved`, GiB.
    pub placement_gib: u64,
    /// What `reserved_host_disk_mb` alone gives, GiB.
    pub nova_conf_gib: u64,
    /// The knob that explains the difference.
    pub cause: ReservedCause,
}

/// Which knob made placement's reserve differ from `reserved_host_disk_mb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedCause {
    /// `[workarounds] reserve_disk_resource_for_image_cache` is set: nova adds the image
    /// cache's size, this many GiB, which lives on `instances_path`, not in the VG.
    ImageCache {
        /// Placement's reserve beyond `reserved_host_disk_mb`, GiB.
        image_cache_gib: u64,
    },
    /// Nothing in this nova.conf explains it: placement's inventory was set by hand or by
    /// another nova.conf.
    SetElsewhere,
}

/// Compares placement's DISK_GB `reserved` with what nova.conf gives; `None` when they agree.
/// A larger reserve in placement is the image cache's when nova.conf sets the workaround; any
/// other difference was set by hand or by another nova.conf.
pub fn reserved_difference(
    placement_reserved_bytes: u64,
    nova_conf: &NovaConfDisk,
) -> Option<ReservedDifference> {
    let placement_gib = placement_reserved_bytes.div_ceil(GIB);
    let nova_conf_gib = nova_conf.reserved_host_disk_mb.div_ceil(1024);
    let cause = match placement_gib.checked_sub(nova_conf_gib) {
        Some(0) => return None,
        Some(image_cache_gib) if nova_conf.image_cache_reserve => {
            ReservedCause::ImageCache { image_cache_gib }
        }
        _ => ReservedCause::SetElsewhere,
    };
    Some(ReservedDifference {
        placement_gib,
        nova_conf_gib,
        cause,
    })
}

/// Decimal places of [`recommended_disk_allocation_ratio`].
const RATIO_SCALE: u128 = 10_000;

/// The DISK_GB allocation ratio at which placement's capacity for the provider,
/// `(total - reserved) * ratio` in whole GiB (reserved rounded up as placement holds it), equals
/// the corrected capacity, `corrected free + allocated`, rounded down to 4 decimals so that the
/// scheduler never sees more than corrected free. A corrected capacity of 0 or less gives 0 (no
/// ratio above that is safe; the runbook says what to set instead). `None` when the total
/// is no more than the reserve: no ratio changes a capacity of 0.
pub fn recommended_disk_allocation_ratio(
    total_bytes: u64,
    reserved_bytes: u64,
    corrected_free_bytes: i64,
    allocated_bytes: u64,
) -> Option<f64> {
    let base_gib = (total_bytes / GIB).checked_sub(reserved_bytes.div_ceil(GIB))?;
    if base_gib == 0 {
        return None;
    }
    let capacity = i128::from(corrected_free_bytes).checked_add(i128::from(allocated_bytes))?;
    let Ok(capacity) = u128::try_from(capacity) else {
        return Some(0.0);
    };
    let base_bytes = u128::from(base_gib).checked_mul(u128::from(GIB))?;
    let scaled = capacity.checked_mul(RATIO_SCALE)? / base_bytes;
    // At most (2^63 + 2^64) * 10^4 / 2^30 < 2^49: exact as f64.
    Some(scaled as f64 / RATIO_SCALE as f64)
}

/// The full accounting of one watched VG.
#[derive(Debug, Clone, PartialEq)]
pub struct VgAccounting {
    /// VG name.
    pub vg: String,
    /// `vg_size`.
    pub size_bytes: u64,
    /// `vg_free`.
    pub free_bytes: u64,
    /// size - free.
    pub used_bytes: u64,
    /// Totals per owner class; instance and orphan are missing when no tracked source could
    /// tell them apart.
    pub owners: BTreeMap<Owner, OwnerTotals>,
    /// LVs that are not tracked instance disks, largest first, capped (see [`account_vg`]).
    pub untracked_lvs: Vec<UntrackedLv>,
    /// Active thin pools (those LVM gives a data usage for) and their usage.
    pub thin_pools: Vec<ThinPoolUsage>,
    /// The tracked side, when available.
    pub tracked: Option<TrackedAccounting>,
    /// Every orphan LV (uncapped, in the report's order); `None` when no tracked source told
    /// instances from orphans.
    pub orphans: Option<Vec<OrphanAllocation>>,
}

/// One orphan LV: nova's naming, but its instance is not one the primary tracked source
/// places on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanAllocation {
    /// LV name.
    pub name: String,
    /// The instance UUID of its name, lower case.
    pub instance_uuid: String,
    /// VG bytes it holds (0 for a thin volume: its extents are its pool's).
    pub allocated_bytes: u64,
}

/// The view of one tracked source on its own (exported per `source` for comparison).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceFigures {
    /// Instances counted.
    pub instances: u64,
    /// Sum of tracked bytes, without reserved.
    pub tracked_used_bytes: u64,
    /// Sum of placement allocations (whole GiB per instance).
    pub allocated_bytes: u64,
    /// Reserved bytes.
    pub reserved_bytes: u64,
    /// DISK_GB allocation ratio.
    pub allocation_ratio: f64,
    /// The scheduler's free space; `None` when it needs the VG size and LVM failed.
    pub scheduler_free_bytes: Option<i64>,
    /// nova's `disk_available_least` (nova source only).
    pub disk_available_least_bytes: Option<i64>,
    /// Placement's DISK_GB total in bytes (reported by the source, or the VG size floored to
    /// whole GiB) behind `scheduler_free_bytes`; `None` when the source reports its free space
    /// itself (nova) or it needs the VG size and LVM failed.
    pub scheduler_total_bytes: Option<u64>,
    /// What placement counts as DISK_GB used, in bytes.
    pub scheduler_used_bytes: u64,
}

/// The sum of the instances' tracked bytes.
fn instance_tracked_sum(usage: &TrackedUsage) -> Result<u64, AccountingError> {
    checked_sum(
        &format!(
            "the tracked disk of the {} instances",
            usage.instances.len()
        ),
        usage.instances.iter().map(|i| i.tracked_bytes),
    )
}

/// The sum of the instances' placement allocations.
fn instance_allocated_sum(usage: &TrackedUsage) -> Result<u64, AccountingError> {
    checked_sum(
        &format!(
            "the DISK_GB allocations of the {} instances",
            usage.instances.len()
        ),
        usage.instances.iter().map(|i| i.allocated_bytes),
    )
}

/// The source's "used" without reserved: its own figure when it reports one, else the sum of
/// its instances' tracked bytes.
pub fn tracked_used_bytes(usage: &TrackedUsage) -> Result<u64, AccountingError> {
    match usage.tracked_used_bytes {
        Some(used) => bounded("the source's tracked used", used),
        None => instance_tracked_sum(usage),
    }
}

/// Checks that every figure of a source fits the accounting: the sums of its instances, its
/// reserve, its totals, and tracked used + reserved (which corrected free subtracts).
pub fn check_usage(usage: &TrackedUsage) -> Result<(), AccountingError> {
    instance_tracked_sum(usage)?;
    instance_allocated_sum(usage)?;
    let used = tracked_used_bytes(usage)?;
    let reserved = bounded("the reserved disk", usage.reserved_bytes)?;
    scheduler_used_bytes(usage)?;
    if let Some(total) = usage.scheduler_total_bytes {
        bounded("the DISK_GB total", total)?;
    }
    checked_sum("tracked used + reserved", [used, reserved])?;
    Ok(())
}

/// Figures of one tracked source. `vg_size_bytes` is needed only for sources that do not report
/// placement's total themselves. Fails when a figure does not fit (see [`check_usage`]).
pub fn source_figures(
    usage: &TrackedUsage,
    vg_size_bytes: Option<u64>,
) -> Result<SourceFigures, AccountingError> {
    check_usage(usage)?;
    let total = scheduler_total_bytes(usage, vg_size_bytes);
    let scheduler_free_bytes = match (usage.scheduler_free_bytes, total) {
        (Some(free), _) => Some(free),
        (None, Some(total)) => Some(scheduler_free_bytes(usage, total)?),
        (None, None) => None,
    };
    Ok(SourceFigures {
        instances: usage.instances.len() as u64,
        tracked_used_bytes: tracked_used_bytes(usage)?,
        allocated_bytes: instance_allocated_sum(usage)?,
        reserved_bytes: usage.reserved_bytes,
        allocation_ratio: usage.allocation_ratio,
        scheduler_free_bytes,
        disk_available_least_bytes: usage.disk_available_least_bytes,
        scheduler_total_bytes: usage
            .scheduler_free_bytes
            .is_none()
            .then_some(total)
            .flatten(),
        scheduler_used_bytes: scheduler_used_bytes(usage)?,
    })
}

/// Placement's DISK_GB total in bytes: reported by the source, or nova's rule on the VG size
/// (floor to whole GiB).
fn scheduler_total_bytes(usage: &TrackedUsage, vg_size_bytes: Option<u64>) -> Option<u64> {
    usage
        .scheduler_total_bytes
        .or_else(|| vg_size_bytes.map(|size| size / GIB * GIB))
}

/// What placement counts as DISK_GB used: its own figure when the source reports it, else the
/// sum of the instances' allocations.
fn scheduler_used_bytes(usage: &TrackedUsage) -> Result<u64, AccountingError> {
    match usage.scheduler_used_bytes {
        Some(used) => bounded("the DISK_GB used", used),
        None => instance_allocated_sum(usage),
    }
}

/// `(total - reserved) * allocation_ratio - used`, in placement's whole-GiB terms (reserved is
/// rounded up to a GiB as nova does), converted to bytes (rounded down). An allocation ratio so
/// large that the result leaves the signed 64-bit range is an error.
fn scheduler_free_bytes(usage: &TrackedUsage, total_bytes: u64) -> Result<i64, AccountingError> {
    let total_gib = (total_bytes / GIB) as f64;
    let reserved_gib = usage.reserved_bytes.div_ceil(GIB) as f64;
    let used_bytes = scheduler_used_bytes(usage)?;
    let capacity_gib = (total_gib - reserved_gib) * usage.allocation_ratio;
    let free_bytes = (capacity_gib * GIB as f64 - used_bytes as f64).floor();
    // i64::MAX as f64 rounds up to 2^63, itself out of range: compare with < 2^63.
    if !free_bytes.is_finite() || free_bytes >= i64::MAX as f64 || free_bytes < i64::MIN as f64 {
        return Err(AccountingError(format!(
            "the scheduler's free space ((total {total_gib} GiB - reserved {reserved_gib} GiB) x ratio {} - used {used_bytes} bytes) is outside the signed 64-bit range",
            usage.allocation_ratio
        )));
    }
    Ok(free_bytes as i64)
}

/// The smallest `reserved_host_disk_mb` (whole GiB, as placement rounds it up anyway, and never
/// below today's) for which the scheduler's free space is no more than `corrected_free_bytes`.
///
/// When placement's reserve holds the image cache on top of `reserved_host_disk_mb`
/// ([`ReservedCause::ImageCache`]), nova adds it again to whatever is recommended, so it is taken
/// off, and the floor is nova.conf's `reserved_host_disk_mb`.
fn recommended_reserved_host_disk_mb(
    usage: &TrackedUsage,
    total_bytes: u64,
    used_bytes: u64,
    corrected_free_bytes: i64,
    difference: Option<&ReservedDifference>,
) -> u64 {
    let today_mb = usage.reserved_bytes.div_ceil(MIB);
    let total_gib = (total_bytes / GIB) as f64;
    let used_gib = used_bytes as f64 / GIB as f64;
    let corrected_free_gib = corrected_free_bytes as f64 / GIB as f64;
    // (total - R) * ratio - used <= corrected_free  <=>  R >= total - (corrected_free + used) / ratio
    let needed_gib = (total_gib - (corrected_free_gib + used_gib) / usage.allocation_ratio).ceil();
    let needed_mb = if needed_gib > 0.0 {
        (needed_gib as u64).saturating_mul(1024)
    } else {
        0
    };
    match (difference.map(|d| d.cause), &usage.nova_conf) {
        (Some(ReservedCause::ImageCache { image_cache_gib }), Some(conf)) => needed_mb
            .saturating_sub(image_cache_gib.saturating_mul(1024))
            .max(conf.reserved_host_disk_mb),
        _ => needed_mb.max(today_mb),
    }
}

/// Accounts one VG. `allocations` are its visible LVs with their extents (from
/// [`crate::lvm::owner::attribute`]); `tracked` is the primary tracked source's usage when this is
/// nova's VG and the source succeeded. Every untracked LV is listed, largest first (the metric
/// series cap is the metrics output's). Fails when a figure does not fit (a VG smaller than its
/// free space, sums beyond [`MAX_ACCOUNTED_BYTES`]).
pub fn account_vg(
    vg: &Vg,
    allocations: &[LvAllocation],
    tracked: Option<&TrackedUsage>,
) -> Result<VgAccounting, AccountingError> {
    account_vg_classified(vg, allocations, tracked, tracked.is_some())
}

/// [`account_vg`] for a VG whose nova-named LVs were classified into instance and orphan
/// (`classified`) even though the tracked usage does not apply to it (a VG other than nova's).
fn account_vg_classified(
    vg: &Vg,
    allocations: &[LvAllocation],
    tracked: Option<&TrackedUsage>,
    classified: bool,
) -> Result<VgAccounting, AccountingError> {
    let size_bytes = bounded(&format!("the size of VG {}", vg.name), vg.size_bytes)?;
    let used_bytes = size_bytes.checked_sub(vg.free_bytes).ok_or_else(|| {
        AccountingError(format!(
            "VG {}: vg_free {} is larger than vg_size {}",
            vg.name, vg.free_bytes, vg.size_bytes
        ))
    })?;
    let owners = owner_totals(allocations, classified)?;
    let untracked_lvs = untracked_lvs(allocations);
    let thin_pools = allocations
        .iter()
        .filter_map(|lv| {
            Some(ThinPoolUsage {
                name: lv.name.clone(),
                data_used_ratio: lv.thin_pool_data_used_ratio?,
                metadata_used_ratio: lv.thin_pool_metadata_used_ratio,
            })
        })
        .collect();
    let tracked = tracked
        .map(|usage| account_tracked(vg, used_bytes, allocations, &owners, usage))
        .transpose()?;
    let orphans = classified.then(|| {
        allocations
            .iter()
            .filter(|lv| lv.owner == Owner::Orphan)
            .filter_map(|lv| {
                Some(OrphanAllocation {
                    name: lv.name.clone(),
                    instance_uuid: lv.instance_uuid.clone()?,
                    allocated_bytes: lv.allocated_bytes,
                })
            })
            .collect()
    });
    Ok(VgAccounting {
        vg: vg.name.clone(),
        size_bytes,
        free_bytes: vg.free_bytes,
        used_bytes,
        owners,
        untracked_lvs,
        thin_pools,
        tracked,
        orphans,
    })
}

fn owner_totals(
    allocations: &[LvAllocation],
    classified: bool,
) -> Result<BTreeMap<Owner, OwnerTotals>, AccountingError> {
    let mut owners: BTreeMap<Owner, OwnerTotals> = EXPORTED_OWNERS
        .iter()
        .filter(|owner| classified || !matches!(owner, Owner::Instance | Owner::Orphan))
        .map(|&owner| (owner, OwnerTotals::default()))
        .collect();
    for (&owner, totals) in owners.iter_mut() {
        let of_owner = allocations.iter().filter(|lv| lv.owner == owner);
        totals.lvs = of_owner.clone().count() as u64;
        totals.bytes = checked_sum(
            &format!("the {} LVs", owner.as_str()),
            of_owner.map(|lv| lv.allocated_bytes),
        )?;
    }
    Ok(owners)
}

/// The LVs that are not tracked instance disks (thin volumes left out), largest first, then by
/// name.
fn untracked_lvs(allocations: &[LvAllocation]) -> Vec<UntrackedLv> {
    let mut candidates: Vec<&LvAllocation> = allocations
        .iter()
        .filter(|lv| matches!(lv.owner, Owner::Orphan | Owner::Cinder | Owner::Foreign))
        .filter(|lv| !lv.thin_volume)
        .collect();
    candidates.sort_by(|a, b| {
        b.allocated_bytes
            .cmp(&a.allocated_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    candidates
        .iter()
        .map(|lv| UntrackedLv {
            name: lv.name.clone(),
            owner: lv.owner,
            bytes: lv.allocated_bytes,
            creation_unix: lv.creation_unix,
        })
        .collect()
}

fn account_tracked(
    vg: &Vg,
    used_bytes: u64,
    allocations: &[LvAllocation],
    owners: &BTreeMap<Owner, OwnerTotals>,
    usage: &TrackedUsage,
) -> Result<TrackedAccounting, AccountingError> {
    check_usage(usage)?;
    let instance_sum = instance_tracked_sum(usage)?;
    let tracked_used_bytes = tracked_used_bytes(usage)?;
    let owner_bytes = |owner: Owner| owners.get(&owner).map_or(0, |t| t.bytes);

    let mut lvs_by_instance: FxHashMap<&str, Vec<&LvAllocation>> = FxHashMap::default();
    for lv in allocations.iter().filter(|lv| lv.owner == Owner::Instance) {
        if let Some(uuid) = lv.instance_uuid.as_deref() {
            lvs_by_instance.entry(uuid).or_default().push(lv);
        }
    }
    let booked: FxHashSet<&str> = usage.instances.iter().map(|i| i.uuid.as_str()).collect();
    let mut unbooked_instance_bytes = checked_sum(
        "the LVs of instances the primary source does not book",
        lvs_by_instance
            .iter()
            .filter(|(uuid, _)| !booked.contains(*uuid))
            .flat_map(|(_, lvs)| lvs.iter().map(|lv| lv.allocated_bytes)),
    )?;
    let parts: Vec<InstanceExcess> = usage
        .instances
        .iter()
        .map(|instance| {
            let lvs = lvs_by_instance
                .get(instance.uuid.as_str())
                .map_or(&[][..], Vec::as_slice);
            instance_excess(instance, lvs)
        })
        .collect();
    let part_sum =
        |what: &str, part: fn(&InstanceExcess) -> u64| checked_sum(what, parts.iter().map(part));
    let excess = InstanceExcess {
        rescue_bytes: part_sum("the rescue LVs", |p| p.rescue_bytes)?,
        unbooked_root_bytes: part_sum("the unbooked root LVs", |p| p.unbooked_root_bytes)?,
        swap_remainder_bytes: part_sum("the swap remainders", |p| p.swap_remainder_bytes)?,
        extent_rounding_bytes: part_sum("the extent rounding", |p| p.extent_rounding_bytes)?,
        unbacked_bytes: part_sum("the tracked disk without an LV", |p| p.unbacked_bytes)?,
    };
    let mut unbacked_bytes = excess.unbacked_bytes;
    // The source's own "used" beyond (or short of) its instances: see the module doc. Both are
    // at most MAX_ACCOUNTED_BYTES, so the differences cannot wrap.
    if tracked_used_bytes >= instance_sum {
        unbacked_bytes = checked_sum(
            "the tracked disk without an LV",
            [unbacked_bytes, tracked_used_bytes - instance_sum],
        )?;
    } else {
        let short = instance_sum - tracked_used_bytes;
        let cancelled = short.min(unbacked_bytes);
        unbacked_bytes -= cancelled;
        unbooked_instance_bytes = checked_sum(
            "the LVs of instances the primary source does not book",
            [unbooked_instance_bytes, short - cancelled],
        )?;
    }
    let walked_bytes = checked_sum(
        &format!("the LVs of VG {}", vg.name),
        allocations.iter().map(|lv| lv.allocated_bytes),
    )?;
    let untracked = UntrackedByCause {
        foreign_bytes: owner_bytes(Owner::Foreign),
        orphan_bytes: owner_bytes(Owner::Orphan),
        cinder_bytes: owner_bytes(Owner::Cinder),
        unbooked_instance_bytes,
        rescue_bytes: excess.rescue_bytes,
        unbooked_root_bytes: excess.unbooked_root_bytes,
        swap_remainder_bytes: excess.swap_remainder_bytes,
        extent_rounding_bytes: excess.extent_rounding_bytes,
        unexplained_bytes: signed(
            "unexplained (raw used - the LVs' extents)",
            i128::from(used_bytes) - i128::from(walked_bytes),
        )?,
    };

    signed(
        "untracked consumption (foreign + orphan + cinder + unbooked_instance + rescue + unbooked_root + unexplained)",
        untracked.total_wide(),
    )?;
    let drift_bytes = signed(
        "drift (raw used - tracked used)",
        i128::from(used_bytes) - i128::from(tracked_used_bytes),
    )?;
    let corrected_free_bytes = signed(
        &format!(
            "corrected free (size {} - max(raw used {used_bytes}, tracked used {tracked_used_bytes}) - reserved {})",
            vg.size_bytes, usage.reserved_bytes
        ),
        i128::from(vg.size_bytes)
            - i128::from(used_bytes.max(tracked_used_bytes))
            - i128::from(usage.reserved_bytes),
    )?;
    let total_bytes = scheduler_total_bytes(usage, Some(vg.size_bytes)).unwrap_or(0);
    let scheduler_free_bytes = match usage.scheduler_free_bytes {
        Some(free) => free,
        None => scheduler_free_bytes(usage, total_bytes)?,
    };
    let overestimate_bytes = signed(
        &format!(
            "the over-estimate (scheduler free {scheduler_free_bytes} - corrected free {corrected_free_bytes})"
        ),
        i128::from(scheduler_free_bytes) - i128::from(corrected_free_bytes),
    )?;
    let allocated_bytes = scheduler_used_bytes(usage)?;
    let difference = usage
        .nova_conf
        .as_ref()
        .and_then(|conf| reserved_difference(usage.reserved_bytes, conf));
    Ok(TrackedAccounting {
        tracked_used_bytes,
        reserved_bytes: usage.reserved_bytes,
        drift_bytes,
        untracked,
        unbacked_bytes,
        corrected_free_bytes,
        scheduler_free_bytes,
        overestimate_bytes,
        recommended_reserved_host_disk_mb: recommended_reserved_host_disk_mb(
            usage,
            total_bytes,
            allocated_bytes,
            corrected_free_bytes,
            difference.as_ref(),
        ),
        recommended_disk_allocation_ratio: recommended_disk_allocation_ratio(
            total_bytes,
            usage.reserved_bytes,
            corrected_free_bytes,
            allocated_bytes,
        ),
        provider_uuid: usage.provider_uuid.clone(),
        nova_conf: usage.nova_conf,
        reserved_difference: difference,
    })
}

/// The accounting of every watched VG of the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostAccounting {
    /// One entry per watched VG that LVM reported, in the order they were configured.
    pub vgs: Vec<VgAccounting>,
    /// Watched VGs that LVM did not report (the `lvm` collector fails when this is not empty).
    pub missing_vgs: Vec<String>,
}

/// Accounts every watched VG. The tracked usage (primary source) applies to `nova_vg` only;
/// its instance list also decides which nova-named LVs are instances and which are orphans in
/// every VG. Fails when a figure does not fit (see [`account_vg`]).
pub fn account_host(
    report: &VgReport,
    watched_vgs: &[String],
    nova_vg: Option<&str>,
    tracked: Option<&TrackedUsage>,
) -> Result<HostAccounting, AccountingError> {
    account_host_with(report, watched_vgs, nova_vg, tracked, &FxHashSet::default())
}

/// The instance UUIDs that any of `usages` (every tracked source that answered, the primary
/// among them) places on this host. Each source is authoritative for "on this host": libvirt's
/// domains and the file source are local truth, placement's allocations against this host's
/// provider and nova's servers by host are the control plane's. An LV of one of these instances
/// is never an orphan, whichever source is primary.
pub fn instances_here<'a>(usages: impl IntoIterator<Item = &'a TrackedUsage>) -> FxHashSet<String> {
    usages
        .into_iter()
        .flat_map(|usage| usage.instances.iter().map(|i| i.uuid.clone()))
        .collect()
}

/// `primary` with the flavors that `others` (the other tracked sources that answered) know
/// filled in for its instances that have none: placement knows only DISK_GB allocations, while
/// libvirt's domains, the file and nova's servers carry flavors. The accounting needs a flavor
/// to name a `disk = 0` root LV ([`InstanceExcess`]); without one, its bytes stay in
/// `extent_rounding`. `None` when nothing was filled in.
pub fn with_flavors_from<'a>(
    primary: &TrackedUsage,
    others: impl IntoIterator<Item = &'a TrackedUsage>,
) -> Option<TrackedUsage> {
    if primary.instances.iter().all(|i| i.flavor.is_some()) {
        return None;
    }
    let mut known: FxHashMap<&str, Flavor> = FxHashMap::default();
    for usage in others {
        for instance in &usage.instances {
            if let Some(flavor) = instance.flavor {
                known.entry(instance.uuid.as_str()).or_insert(flavor);
            }
        }
    }
    let mut filled = false;
    let mut enriched = primary.clone();
    for instance in enriched.instances.iter_mut().filter(|i| i.flavor.is_none()) {
        instance.flavor = known.get(instance.uuid.as_str()).copied();
        filled |= instance.flavor.is_some();
    }
    filled.then_some(enriched)
}

/// [`account_host`] where `here` (see [`instances_here`]) also holds the instances other tracked
/// sources place on this host: their nova-named LVs are instances, not orphans, and in nova's VG
/// the bytes of those the primary source does not book are cause `unbooked_instance`. Without a
/// primary source nothing is classified, `here` or not.
pub fn account_host_with(
    report: &VgReport,
    watched_vgs: &[String],
    nova_vg: Option<&str>,
    tracked: Option<&TrackedUsage>,
    here: &FxHashSet<String>,
) -> Result<HostAccounting, AccountingError> {
    let tracked_uuids: Option<FxHashSet<&str>> = tracked.map(|usage| {
        usage
            .instances
            .iter()
            .map(|i| i.uuid.as_str())
            .chain(here.iter().map(String::as_str))
            .collect()
    });
    let mut host = HostAccounting::default();
    for name in watched_vgs {
        let Some(vg) = report.vg(name) else {
            host.missing_vgs.push(name.clone());
            continue;
        };
        let lvs: Vec<&Lv> = report.lvs_of(name).collect();
        let allocations = attribute(vg, &lvs, tracked_uuids.as_ref());
        let vg_tracked = tracked.filter(|_| nova_vg == Some(name.as_str()));
        host.vgs.push(account_vg_classified(
            vg,
            &allocations,
            vg_tracked,
            tracked.is_some(),
        )?);
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracked::HostDiskSettings;

    const UUID_A: &str = "3f5e6c1a-1111-2222-3333-444455556666";
    const UUID_B: &str = "9b2d7e40-aaaa-bbbb-cccc-ddddeeeeffff";
    const UUID_C: &str = "c0c0c0c0-1111-4222-8333-444455556666";
    const UUID_D: &str = "d0d0d0d0-1111-4222-8333-444455556666";
    const UUID_GONE: &str = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";
    const EXTENT: u64 = 4 * MIB;
    /// The size `vgcreate` gives a 20 GiB loop device (5119 extents of 4 MiB).
    const VG_20G: u64 = 5119 * EXTENT;

    fn vg(size_bytes: u64, free_bytes: u64) -> Vg {
        Vg {
            name: "vms-group".into(),
            size_bytes,
            free_bytes,
            extent_size_bytes: EXTENT,
        }
    }

    fn lv(name: &str, owner: Owner, bytes: u64) -> LvAllocation {
        let instance_uuid =
            matches!(owner, Owner::Instance | Owner::Orphan).then(|| name[..36].to_string());
        LvAllocation {
            name: name.into(),
            owner,
            instance_uuid,
            allocated_bytes: bytes,
            thin_pool_data_used_ratio: None,
            thin_pool_metadata_used_ratio: None,
            creation_unix: None,
            thin_volume: false,
        }
    }

    fn flavor(root_gb: u64, ephemeral_gb: u64, swap_mb: u64) -> Flavor {
        Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume: false,
        }
    }

    fn usage(instances: &[(&str, Flavor)], reserved_host_disk_mb: u64, ratio: f64) -> TrackedUsage {
        TrackedUsage::from_local(
            instances
                .iter()
                .map(|(uuid, f)| TrackedInstance::from_flavor(*uuid, f))
                .collect(),
            &HostDiskSettings {
                reserved_host_disk_mb,
                disk_allocation_ratio: ratio,
            },
        )
    }

    /// [`super::account_vg`] on figures that fit.
    fn account_vg(
        vg: &Vg,
        allocations: &[LvAllocation],
        tracked: Option<&TrackedUsage>,
    ) -> VgAccounting {
        super::account_vg(vg, allocations, tracked).unwrap()
    }

    /// [`super::account_host`] on figures that fit.
    fn account_host(
        report: &VgReport,
        watched_vgs: &[String],
        nova_vg: Option<&str>,
        tracked: Option<&TrackedUsage>,
    ) -> HostAccounting {
        super::account_host(report, watched_vgs, nova_vg, tracked).unwrap()
    }

    /// [`super::source_figures`] on figures that fit.
    fn source_figures(usage: &TrackedUsage, vg_size_bytes: Option<u64>) -> SourceFigures {
        super::source_figures(usage, vg_size_bytes).unwrap()
    }

    /// A VG whose free space is exactly what the given LVs leave.
    fn vg_with(lvs: &[LvAllocation]) -> Vg {
        let allocated: u64 = lvs.iter().map(|l| l.allocated_bytes).sum();
        vg(VG_20G, VG_20G - allocated)
    }

    fn tracked(acc: &VgAccounting) -> &TrackedAccounting {
        acc.tracked.as_ref().expect("tracked accounting")
    }

    /// drift = foreign + orphan + cinder + unbooked_instance + rescue + unbooked_root +
    /// swap_remainder + extent_rounding + unexplained - unbacked, each field named (so that a
    /// field missing from [`UntrackedByCause::by_cause`] breaks it too).
    fn assert_identity(acc: &VgAccounting) {
        let t = tracked(acc);
        let u = t.untracked;
        let explained = (u.foreign_bytes
            + u.orphan_bytes
            + u.cinder_bytes
            + u.unbooked_instance_bytes
            + u.rescue_bytes
            + u.unbooked_root_bytes
            + u.swap_remainder_bytes
            + u.extent_rounding_bytes) as i64
            + u.unexplained_bytes
            - t.unbacked_bytes as i64;
        assert_eq!(t.drift_bytes, explained, "cause identity broken: {t:#?}");
        let labelled: i64 = u.by_cause().iter().map(|(_, bytes)| bytes).sum();
        assert_eq!(
            t.drift_bytes,
            labelled - t.unbacked_bytes as i64,
            "the labelled causes do not sum to the drift: {t:#?}"
        );
    }

    #[test]
    fn no_drift_when_the_vg_holds_exactly_the_instances() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_B}_disk"), Owner::Instance, 5 * GIB),
        ];
        let u = usage(
            &[(UUID_A, flavor(10, 0, 0)), (UUID_B, flavor(5, 0, 0))],
            0,
            1.0,
        );
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(acc.used_bytes, 15 * GIB);
        assert_eq!(t.tracked_used_bytes, 15 * GIB);
        assert_eq!(t.drift_bytes, 0);
        assert_eq!(t.untracked, UntrackedByCause::default());
        assert_eq!(t.corrected_free_bytes, (VG_20G - 15 * GIB) as i64);
        // Placement floors the 19.99 GiB VG to 19 GiB: the scheduler sees less than there is.
        assert_eq!(t.scheduler_free_bytes, (4 * GIB) as i64);
        assert_eq!(
            t.overestimate_bytes,
            4 * GIB as i64 - (VG_20G - 15 * GIB) as i64
        );
        assert!(t.overestimate_bytes < 0);
        assert_eq!(t.recommended_reserved_host_disk_mb, 0);
        assert!(acc.untracked_lvs.is_empty());
        assert_identity(&acc);
    }

    #[test]
    fn a_foreign_lv_is_drift_and_phantom_space_as_in_the_seed_incident() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv("someone_elses_lv", Owner::Foreign, 8 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.drift_bytes, (8 * GIB) as i64);
        assert_eq!(t.untracked.foreign_bytes, 8 * GIB);
        assert_eq!(t.untracked.unexplained_bytes, 0);
        let corrected = (VG_20G - 18 * GIB) as i64;
        assert_eq!(t.corrected_free_bytes, corrected);
        assert_eq!(t.scheduler_free_bytes, (9 * GIB) as i64);
        assert_eq!(t.overestimate_bytes, 9 * GIB as i64 - corrected);
        assert!(t.overestimate_bytes > 7 * GIB as i64);
        // (19 - R) - 10 <= 1.99 GiB  =>  R >= 7.01  =>  8 GiB
        assert_eq!(t.recommended_reserved_host_disk_mb, 8 * 1024);
        assert_eq!(
            acc.untracked_lvs,
            vec![UntrackedLv {
                name: "someone_elses_lv".into(),
                owner: Owner::Foreign,
                bytes: 8 * GIB,
                creation_unix: None,
            }]
        );
        assert_eq!(
            acc.owners[&Owner::Foreign],
            OwnerTotals {
                lvs: 1,
                bytes: 8 * GIB
            }
        );
        assert_identity(&acc);
    }

    #[test]
    fn an_orphaned_instance_disk_is_counted_as_orphan() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_GONE}_disk"), Owner::Orphan, 4 * GIB),
            lv(&format!("{UUID_GONE}_disk.swap"), Owner::Orphan, GIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.drift_bytes, (5 * GIB) as i64);
        assert_eq!(t.untracked.orphan_bytes, 5 * GIB);
        assert_eq!(t.untracked.foreign_bytes, 0);
        assert_eq!(
            acc.owners[&Owner::Orphan],
            OwnerTotals {
                lvs: 2,
                bytes: 5 * GIB
            }
        );
        assert_eq!(
            acc.owners[&Owner::Instance],
            OwnerTotals {
                lvs: 1,
                bytes: 10 * GIB
            }
        );
        assert_identity(&acc);
    }

    #[test]
    fn a_cinder_volume_in_the_vg_is_counted_as_cinder() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("volume-{UUID_B}"), Owner::Cinder, 3 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.cinder_bytes, 3 * GIB);
        assert_eq!(t.drift_bytes, (3 * GIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn boot_from_volume_roots_are_not_tracked_and_have_no_root_lv() {
        let bfv = Flavor {
            boot_from_volume: true,
            ..flavor(40, 0, 64)
        };
        // A BFV instance has no root LV, but its swap is local: 64 MiB the resource tracker
        // truncates to 0 GiB. (Its config drive, if any, is a file: nova's LVM backend never
        // makes one an LV.)
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_B}_disk.swap"), Owner::Instance, 64 * MIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0)), (UUID_B, bfv)], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.tracked_used_bytes, 10 * GIB);
        assert_eq!(t.untracked.swap_remainder_bytes, 64 * MIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        assert_eq!(t.drift_bytes, (64 * MIB) as i64);
        // Placement allocates nothing for the BFV root either, 1 GiB for the swap (rounded
        // up): 19 - 10 - 1 = 8 GiB free.
        assert_eq!(t.scheduler_free_bytes, (8 * GIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn swap_is_truncated_for_the_tracker_and_rounded_up_for_placement() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 512 * MIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 512))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        // nova's resource tracker books int(512 / 1024) = 0 GiB of swap: the swap LV it does
        // not see is drift, explained as the swap remainder.
        assert_eq!(t.tracked_used_bytes, 10 * GIB);
        assert_eq!(t.drift_bytes, (512 * MIB) as i64);
        assert_eq!(t.untracked.swap_remainder_bytes, 512 * MIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        // Placement: 10 + ceil(512 / 1024) = 11 GiB allocated of 19.
        assert_eq!(t.scheduler_free_bytes, (8 * GIB) as i64);
        let figures = source_figures(&u, Some(VG_20G));
        assert_eq!(figures.allocated_bytes, 11 * GIB);
        assert_eq!(figures.tracked_used_bytes, 10 * GIB);
        assert_identity(&acc);
    }

    #[test]
    fn swap_of_one_and_a_half_gib_is_booked_as_one() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 1536 * MIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 1536))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        // int(1536 / 1024) = 1 GiB booked; placement allocates ceil = 2 GiB.
        assert_eq!(t.tracked_used_bytes, 11 * GIB);
        assert_eq!(t.untracked.swap_remainder_bytes, 512 * MIB);
        assert_eq!(t.drift_bytes, (512 * MIB) as i64);
        assert_eq!(source_figures(&u, Some(VG_20G)).allocated_bytes, 12 * GIB);
        assert_identity(&acc);
    }

    #[test]
    fn a_swap_lv_below_one_gib_is_swap_remainder_and_extent_rounding() {
        // 1001 MiB of swap becomes 1004 MiB of LV (251 extents of 4 MiB), and nova's resource
        // tracker books int(1001 / 1024) = 0 GiB of it: 1001 MiB are the swap remainder, the
        // 3 MiB LVM added are extent rounding.
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 1004 * MIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 1001))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.swap_remainder_bytes, 1001 * MIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 3 * MIB);
        assert_eq!(t.drift_bytes, (1004 * MIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn ephemeral_disks_count_for_tracker_and_placement() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 5 * GIB),
            lv(&format!("{UUID_A}_disk.local"), Owner::Instance, 3 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(5, 3, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.tracked_used_bytes, 8 * GIB);
        assert_eq!(t.drift_bytes, 0);
        assert_eq!(t.scheduler_free_bytes, (11 * GIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn reserved_not_a_multiple_of_1024_is_exact_in_bytes_and_ceiled_by_placement() {
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB)];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 1500, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.reserved_bytes, 1500 * MIB);
        assert_eq!(
            t.corrected_free_bytes,
            (VG_20G - 10 * GIB - 1500 * MIB) as i64
        );
        // Placement reserves ceil(1500 / 1024) = 2 GiB: 19 - 2 - 10 = 7 GiB.
        assert_eq!(t.scheduler_free_bytes, (7 * GIB) as i64);
        // Today's reserve already keeps the scheduler below corrected free: never recommend less.
        assert_eq!(t.recommended_reserved_host_disk_mb, 1500);
    }

    #[test]
    fn an_allocation_ratio_above_one_multiplies_the_schedulers_capacity() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv("backup", Owner::Foreign, 2 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.5);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        // (19 - 0) * 1.5 - 10 = 18.5 GiB
        assert_eq!(t.scheduler_free_bytes, 18 * GIB as i64 + (GIB / 2) as i64);
        let corrected = (VG_20G - 12 * GIB) as i64;
        assert_eq!(t.corrected_free_bytes, corrected);
        assert_eq!(t.overestimate_bytes, t.scheduler_free_bytes - corrected);
        // (19 - R) * 1.5 - 10 <= 7.996  =>  R >= 7.003  =>  8 GiB
        assert_eq!(t.recommended_reserved_host_disk_mb, 8 * 1024);
        let figures = source_figures(&u, Some(VG_20G));
        assert_eq!(figures.allocation_ratio, 1.5);
    }

    #[test]
    fn a_source_used_figure_apart_from_its_instances_keeps_the_identity() {
        // nova's local_gb_used less the reserve counts 4 GiB more than the servers listed (an
        // incoming migration's claim): the excess is unbacked, drift follows nova's figure.
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv("backup", Owner::Foreign, 2 * GIB),
        ];
        let mut u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        u.tracked_used_bytes = Some(14 * GIB);
        u.scheduler_free_bytes = Some(5 * GIB as i64);
        u.disk_available_least_bytes = Some(-1);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.tracked_used_bytes, 14 * GIB);
        assert_eq!(t.drift_bytes, -(2 * GIB as i64));
        assert_eq!(t.unbacked_bytes, 4 * GIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        assert_eq!(t.scheduler_free_bytes, (5 * GIB) as i64);
        assert_eq!(t.corrected_free_bytes, VG_20G as i64 - (14 * GIB) as i64);
        assert_identity(&acc);
        let figures = source_figures(&u, Some(VG_20G));
        assert_eq!(figures.tracked_used_bytes, 14 * GIB);
        assert_eq!(figures.scheduler_free_bytes, Some((5 * GIB) as i64));
        assert_eq!(figures.disk_available_least_bytes, Some(-1));

        // It counts 3 GiB less than the servers: first cancels unbacked disk (B has no LV
        // yet, 2 GiB), the rest is instance disk nova's own "used" does not book.
        let mut u = usage(
            &[(UUID_A, flavor(10, 0, 0)), (UUID_B, flavor(2, 0, 0))],
            0,
            1.0,
        );
        u.tracked_used_bytes = Some(9 * GIB);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.unbacked_bytes, 0);
        assert_eq!(t.untracked.unbooked_instance_bytes, GIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        assert_eq!(t.drift_bytes, (3 * GIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn tracked_above_raw_gives_negative_drift_explained_as_unbacked() {
        // UUID_B is building: nova counts its 6 GiB, its LV does not exist yet.
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB)];
        let u = usage(
            &[(UUID_A, flavor(10, 0, 0)), (UUID_B, flavor(6, 0, 0))],
            0,
            1.0,
        );
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.drift_bytes, -((6 * GIB) as i64));
        assert_eq!(t.unbacked_bytes, 6 * GIB);
        assert_eq!(t.untracked, UntrackedByCause::default());
        // max(raw, tracked) = tracked
        assert_eq!(t.corrected_free_bytes, (VG_20G - 16 * GIB) as i64);
        assert_identity(&acc);
    }

    #[test]
    fn an_empty_vg_has_no_drift_and_all_free() {
        let u = usage(&[], 0, 1.0);
        let acc = account_vg(&vg(VG_20G, VG_20G), &[], Some(&u));
        let t = tracked(&acc);
        assert_eq!(acc.used_bytes, 0);
        assert_eq!(t.drift_bytes, 0);
        assert_eq!(t.corrected_free_bytes, VG_20G as i64);
        assert_eq!(t.scheduler_free_bytes, (19 * GIB) as i64);
        assert_eq!(acc.owners.values().map(|o| o.lvs).sum::<u64>(), 0);
        assert_eq!(acc.owners.len(), 4);
        assert_identity(&acc);
    }

    #[test]
    fn an_over_committed_host_has_negative_corrected_free() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv("someone_elses_lv", Owner::Foreign, VG_20G - 10 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 2048, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(acc.free_bytes, 0);
        assert_eq!(t.corrected_free_bytes, -((2 * GIB) as i64));
        assert_eq!(t.scheduler_free_bytes, (7 * GIB) as i64);
        assert_eq!(t.overestimate_bytes, (9 * GIB) as i64);
        // (19 - R) - 10 <= -2  =>  R >= 11
        assert_eq!(t.recommended_reserved_host_disk_mb, 11 * 1024);
    }

    #[test]
    fn allocated_space_no_lv_accounts_for_is_unexplained() {
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB)];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let vg = vg(VG_20G, VG_20G - 11 * GIB);
        let acc = account_vg(&vg, &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.unexplained_bytes, GIB as i64);
        assert_identity(&acc);
    }

    #[test]
    fn without_tracked_data_instance_and_orphan_are_not_exported_and_nothing_is_derived() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Unclassified, 10 * GIB),
            lv("someone_elses_lv", Owner::Foreign, GIB),
        ];
        let acc = account_vg(&vg_with(&lvs), &lvs, None);
        assert!(acc.tracked.is_none());
        assert_eq!(
            acc.owners.keys().copied().collect::<Vec<_>>(),
            vec![Owner::Cinder, Owner::Foreign]
        );
        assert_eq!(acc.untracked_lvs.len(), 1);
        assert_eq!(acc.used_bytes, 11 * GIB);
    }

    #[test]
    fn every_untracked_lv_is_listed_largest_first_with_its_creation_time() {
        let at = |name: &str, bytes: u64, created: Option<i64>| LvAllocation {
            creation_unix: created,
            ..lv(name, Owner::Foreign, bytes)
        };
        let mut pool = at("pool", GIB, Some(50));
        pool.thin_pool_data_used_ratio = Some(0.5);
        pool.thin_pool_metadata_used_ratio = Some(0.125);
        let lvs = vec![
            at("big", 5 * GIB, Some(1_000)),
            pool,
            at("old_small", MIB, Some(100)),
            at("no_time", 2 * MIB, None),
            at("new_small", 3 * MIB, Some(2_000)),
            at("same_size_a", 3 * MIB, None),
        ];
        let acc = account_vg(&vg_with(&lvs), &lvs, None);
        let rows: Vec<(&str, u64, Option<i64>)> = acc
            .untracked_lvs
            .iter()
            .map(|l| (l.name.as_str(), l.bytes, l.creation_unix))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("big", 5 * GIB, Some(1_000)),
                ("pool", GIB, Some(50)),
                ("new_small", 3 * MIB, Some(2_000)),
                ("same_size_a", 3 * MIB, None),
                ("no_time", 2 * MIB, None),
                ("old_small", MIB, Some(100)),
            ]
        );
        assert_eq!(
            acc.thin_pools,
            vec![ThinPoolUsage {
                name: "pool".into(),
                data_used_ratio: 0.5,
                metadata_used_ratio: Some(0.125),
            }]
        );
    }

    /// nova's largest flavor: `root_gb`, `ephemeral_gb` and `swap` at its `db.MAX_INT`.
    fn largest_flavor() -> Flavor {
        use crate::tracked::NOVA_MAX_INT;
        flavor(NOVA_MAX_INT, NOVA_MAX_INT, NOVA_MAX_INT)
    }

    const UUIDS_5: [&str; 5] = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
    ];

    #[test]
    fn five_instances_at_novas_largest_flavor_are_an_error_not_a_wrapped_sum() {
        let one = largest_flavor().resource_tracker_bytes();
        // Each fits; five overflow u64 (the old sum wrapped to a small figure).
        assert!(one < MAX_ACCOUNTED_BYTES);
        assert!(one.checked_mul(5).is_none());
        let instances: Vec<(&str, Flavor)> =
            UUIDS_5.iter().map(|u| (*u, largest_flavor())).collect();
        let u = usage(&instances, 0, 1.0);
        let error = super::source_figures(&u, Some(VG_20G))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!("the tracked disk of the 5 instances: more than 9223372036854775807 bytes, beyond the signed 64-bit range (5 figures, the largest {one} bytes)")
        );
        assert_eq!(
            super::tracked_used_bytes(&u).unwrap_err().to_string(),
            error
        );
        assert_eq!(check_usage(&u).unwrap_err().to_string(), error);
        let lvs = vec![lv("foreign", Owner::Foreign, GIB)];
        let error = super::account_vg(&vg_with(&lvs), &lvs, Some(&u)).unwrap_err();
        assert!(error.to_string().contains("5 instances"), "{error}");
        // Two already exceed what the signed outputs can hold.
        let u = usage(&instances[..2], 0, 1.0);
        assert!(check_usage(&u).is_err());
        // One is accounted, with a (very) negative corrected free space.
        let u = usage(&instances[..1], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_eq!(tracked(&acc).tracked_used_bytes, one);
        assert_eq!(
            tracked(&acc).corrected_free_bytes,
            VG_20G as i64 - one as i64
        );
    }

    #[test]
    fn reserved_beyond_what_corrected_free_can_subtract_is_an_error() {
        let mut u = usage(&[(UUID_A, largest_flavor())], 0, 1.0);
        u.reserved_bytes = MAX_ACCOUNTED_BYTES;
        let error = check_usage(&u).unwrap_err().to_string();
        assert!(
            error.starts_with("tracked used + reserved: more than"),
            "{error}"
        );
        u.reserved_bytes = u64::MAX;
        let error = check_usage(&u).unwrap_err().to_string();
        assert!(error.starts_with("the reserved disk: more than"), "{error}");
        assert!(error.ends_with(&format!("({} bytes)", u64::MAX)), "{error}");
    }

    #[test]
    fn a_vg_with_more_free_than_size_or_beyond_63_bits_is_an_error() {
        let error = super::account_vg(&vg(GIB, 2 * GIB), &[], None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "VG vms-group: vg_free {} is larger than vg_size {}",
                2 * GIB,
                GIB
            )
        );
        let error = super::account_vg(&vg(1 << 63, 0), &[], None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the size of VG vms-group: more than"),
            "{error}"
        );
    }

    #[test]
    fn lv_sums_beyond_63_bits_are_an_error() {
        let lvs = vec![
            lv("a", Owner::Foreign, 1 << 62),
            lv("b", Owner::Foreign, 1 << 62),
            lv("c", Owner::Foreign, 1 << 62),
        ];
        let error = super::account_vg(&vg(MAX_ACCOUNTED_BYTES, 0), &lvs, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the foreign LVs: more than {MAX_ACCOUNTED_BYTES} bytes, beyond the signed 64-bit range (3 figures, the largest {} bytes)", 1u64 << 62)
        );
    }

    #[test]
    fn an_allocation_ratio_that_overflows_the_schedulers_free_space_is_an_error() {
        let u = usage(&[(UUID_A, flavor(1, 0, 0))], 0, 1e300);
        let error = super::source_figures(&u, Some(VG_20G))
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside the signed 64-bit range"), "{error}");
    }

    #[test]
    fn thin_volumes_get_no_series_of_their_own_and_pools_report_usage() {
        let mut pool = lv("vms-group-pool", Owner::Cinder, 2 * GIB);
        pool.thin_pool_data_used_ratio = Some(0.25);
        let mut thin = lv(&format!("volume-{UUID_B}"), Owner::Cinder, 0);
        thin.thin_volume = true;
        let lvs = [pool, thin];
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&usage(&[], 0, 1.0)));
        assert_eq!(acc.untracked_lvs.len(), 1);
        assert_eq!(
            acc.thin_pools,
            vec![ThinPoolUsage {
                name: "vms-group-pool".to_string(),
                data_used_ratio: 0.25,
                metadata_used_ratio: None,
            }]
        );
        assert_eq!(
            acc.owners[&Owner::Cinder],
            OwnerTotals {
                lvs: 2,
                bytes: 2 * GIB
            }
        );
    }

    #[test]
    fn a_placement_reported_total_overrides_the_vg_size() {
        let mut u = usage(&[], 0, 1.0);
        u.scheduler_total_bytes = Some(30 * GIB);
        let acc = account_vg(&vg(VG_20G, VG_20G), &[], Some(&u));
        assert_eq!(tracked(&acc).scheduler_free_bytes, (30 * GIB) as i64);
        assert_eq!(
            tracked(&acc).overestimate_bytes,
            30 * GIB as i64 - VG_20G as i64
        );
    }

    #[test]
    fn source_figures_without_a_vg_size_have_no_scheduler_view() {
        let u = usage(&[(UUID_A, flavor(10, 2, 0))], 100, 1.0);
        let figures = source_figures(&u, None);
        assert_eq!(figures.scheduler_free_bytes, None);
        assert_eq!(figures.instances, 1);
        assert_eq!(figures.tracked_used_bytes, 12 * GIB);
        assert_eq!(figures.reserved_bytes, 100 * MIB);
    }

    #[test]
    fn the_cause_identity_holds_across_a_grid_of_hosts() {
        let sizes = [0, MIB, 64 * MIB, GIB, 5 * GIB];
        for foreign in sizes {
            for orphan in sizes {
                for (instance_lv, unbooked) in sizes
                    .iter()
                    .flat_map(|&i| [0, MIB, 64 * MIB, 3 * GIB].map(|u| (i, u)))
                {
                    for flavor_gb in [0u64, 1, 3] {
                        let mut lvs = vec![];
                        if unbooked > 0 {
                            // An instance another source places here, which the primary does not book.
                            lvs.push(lv(&format!("{UUID_B}_disk"), Owner::Instance, unbooked));
                        }
                        if foreign > 0 {
                            lvs.push(lv("manual", Owner::Foreign, foreign));
                        }
                        if orphan > 0 {
                            lvs.push(lv(&format!("{UUID_GONE}_disk"), Owner::Orphan, orphan));
                        }
                        if instance_lv > 0 {
                            lvs.push(lv(&format!("{UUID_A}_disk"), Owner::Instance, instance_lv));
                        }
                        let u = usage(&[(UUID_A, flavor(flavor_gb, 0, 0))], 512, 1.0);
                        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
                        assert_identity(&acc);
                        let t = tracked(&acc);
                        assert_eq!(t.untracked.unbooked_instance_bytes, unbooked);
                        assert_eq!(
                            t.corrected_free_bytes,
                            VG_20G as i64
                                - acc.used_bytes.max(t.tracked_used_bytes) as i64
                                - (512 * MIB) as i64
                        );
                    }
                }
            }
        }
    }

    /// `bytes` rounded up to whole extents, as `lvcreate -L` does.
    fn extents(bytes: u64) -> u64 {
        bytes.div_ceil(EXTENT) * EXTENT
    }

    /// An instance booked the way placement books it (`ceil(swap / 1024)`), with its flavor
    /// known (from another source).
    fn placement_booked(uuid: &str, f: Flavor) -> TrackedInstance {
        TrackedInstance {
            uuid: uuid.into(),
            tracked_bytes: f.placement_allocation_bytes(),
            allocated_bytes: f.placement_allocation_bytes(),
            flavor: Some(f),
        }
    }

    fn booked(instances: Vec<TrackedInstance>) -> TrackedUsage {
        TrackedUsage::from_local(
            instances,
            &HostDiskSettings {
                reserved_host_disk_mb: 0,
                disk_allocation_ratio: 1.0,
            },
        )
    }

    #[test]
    fn a_rescue_lv_is_rescue_whole_and_never_hides_a_missing_disk() {
        // Rescued from a 2 GiB + 1 MiB image: the LV is rounded to whole extents, all of it
        // rescue (nova books nothing for it). A's ephemeral LV is missing: it stays unbacked.
        let rescue = extents(2 * GIB + MIB);
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv(&format!("{UUID_A}_disk.rescue"), Owner::Instance, rescue),
        ];
        let u = usage(&[(UUID_A, flavor(10, 2, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(
            t.untracked,
            UntrackedByCause {
                rescue_bytes: rescue,
                ..UntrackedByCause::default()
            }
        );
        assert_eq!(t.unbacked_bytes, 2 * GIB);
        assert_eq!(t.drift_bytes, rescue as i64 - (2 * GIB) as i64);
        // Rescue is consumption someone can end (unrescue, or remove a leftover): counted.
        assert_eq!(t.untracked.total_bytes(), rescue as i64);
        assert_identity(&acc);
    }

    #[test]
    fn a_config_drive_rescue_lv_is_rescue_too() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB),
            lv(&format!("{UUID_A}_disk.rescue"), Owner::Instance, GIB),
            lv(
                &format!("{UUID_A}_disk.config.rescue"),
                Owner::Instance,
                EXTENT,
            ),
        ];
        let u = usage(&[(UUID_A, flavor(1, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_eq!(tracked(&acc).untracked.rescue_bytes, GIB + EXTENT);
        assert_eq!(tracked(&acc).untracked.extent_rounding_bytes, 0);
        assert_identity(&acc);
    }

    #[test]
    fn only_a_disk_name_ending_in_dot_rescue_is_a_rescue_disk() {
        for (disk, rescue) in [
            ("disk.rescue", true),
            ("disk.config.rescue", true),
            ("disk.eph0.rescue", true),
            ("disk.rescue.old", false),
            ("disk__rescue", false),
            ("disk", false),
            ("rescue", false),
        ] {
            assert_eq!(is_rescue_disk(disk), rescue, "{disk}");
        }
    }

    #[test]
    fn a_rescue_lv_of_an_orphan_is_orphan_and_of_an_unbooked_instance_is_unbooked() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB),
            lv(&format!("{UUID_B}_disk.rescue"), Owner::Instance, 2 * GIB),
            lv(&format!("{UUID_GONE}_disk.rescue"), Owner::Orphan, 3 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(1, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.rescue_bytes, 0);
        assert_eq!(t.untracked.unbooked_instance_bytes, 2 * GIB);
        assert_eq!(t.untracked.orphan_bytes, 3 * GIB);
        assert_identity(&acc);
    }

    #[test]
    fn the_root_lv_of_a_disk_0_flavor_is_unbooked_root_whole() {
        // disk = 0: nova creates the root LV at the image's size (2.2 GiB, rounded to extents)
        // and books 0 for it; its ephemeral disk is booked and exact.
        let root = extents(2 * GIB + 200 * MIB + 1);
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, root),
            lv(&format!("{UUID_A}_disk.local"), Owner::Instance, GIB),
        ];
        let u = usage(&[(UUID_A, flavor(0, 1, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.tracked_used_bytes, GIB);
        assert_eq!(
            t.untracked,
            UntrackedByCause {
                unbooked_root_bytes: root,
                ..UntrackedByCause::default()
            }
        );
        assert_eq!(t.untracked.total_bytes(), root as i64);
        assert_identity(&acc);
    }

    #[test]
    fn a_disk_0_root_missing_its_ephemeral_still_counts_whole_and_the_ephemeral_is_unbacked() {
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 3 * GIB)];
        let u = usage(&[(UUID_A, flavor(0, 2, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.unbooked_root_bytes, 3 * GIB);
        assert_eq!(t.unbacked_bytes, 2 * GIB);
        assert_identity(&acc);
    }

    #[test]
    fn a_root_lv_is_unbooked_root_only_for_disk_0_without_a_volume() {
        // root_gb = 1: a root LV of 1 GiB + one extent is extent rounding.
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB + EXTENT)];
        let u = usage(&[(UUID_A, flavor(1, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_eq!(tracked(&acc).untracked.unbooked_root_bytes, 0);
        assert_eq!(tracked(&acc).untracked.extent_rounding_bytes, EXTENT);
        assert_identity(&acc);
        // Booted from volume with disk = 0: nova creates no root LV; one found anyway is not a
        // disk = 0 root, and lands in extent_rounding with the rest of the excess.
        let bfv = Flavor {
            boot_from_volume: true,
            ..flavor(0, 0, 0)
        };
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB)];
        let u = usage(&[(UUID_A, bfv)], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_eq!(tracked(&acc).untracked.unbooked_root_bytes, 0);
        assert_eq!(tracked(&acc).untracked.extent_rounding_bytes, GIB);
        assert_identity(&acc);
    }

    #[test]
    fn without_a_flavor_a_disk_0_root_cannot_be_told_and_is_extent_rounding() {
        // Placement alone knows only the allocation (0 GiB for a disk = 0 flavor).
        let instance = TrackedInstance {
            uuid: UUID_A.into(),
            tracked_bytes: 0,
            allocated_bytes: 0,
            flavor: None,
        };
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 2 * GIB)];
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&booked(vec![instance])));
        assert_eq!(tracked(&acc).untracked.unbooked_root_bytes, 0);
        assert_eq!(tracked(&acc).untracked.extent_rounding_bytes, 2 * GIB);
        assert_identity(&acc);
    }

    #[test]
    fn placement_leaves_no_swap_remainder_and_its_rounded_up_swap_is_unbacked() {
        // Placement books ceil(512 / 1024) = 1 GiB for a 512 MiB swap LV.
        let f = flavor(1, 0, 512);
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 512 * MIB),
        ];
        let u = booked(vec![placement_booked(UUID_A, f)]);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked, UntrackedByCause::default());
        assert_eq!(t.unbacked_bytes, 512 * MIB);
        assert_identity(&acc);
    }

    #[test]
    fn the_swap_remainder_is_at_most_what_the_swap_lv_holds_beyond_the_booked_swap() {
        // No swap LV (not created yet): nothing is swap remainder, the root's extra extent is
        // rounding, and the booked GiB of swap is unbacked.
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB + EXTENT)];
        let u = usage(&[(UUID_A, flavor(1, 0, 1536))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.swap_remainder_bytes, 0);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        assert_eq!(t.unbacked_bytes, GIB - EXTENT);
        assert_identity(&acc);
        // A swap LV smaller than the flavor's (a block device mapping's 1280 MiB for a
        // 1536 MiB flavor swap): 256 MiB beyond the booked GiB are the remainder.
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 1280 * MIB),
        ];
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.swap_remainder_bytes, 256 * MIB);
        assert_eq!(t.untracked.extent_rounding_bytes, 0);
        assert_identity(&acc);
    }

    #[test]
    fn a_whole_gib_of_swap_leaves_no_remainder() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, GIB),
            lv(&format!("{UUID_A}_disk.swap"), Owner::Instance, 2 * GIB),
        ];
        let u = usage(&[(UUID_A, flavor(1, 0, 2048))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_eq!(tracked(&acc).untracked, UntrackedByCause::default());
        assert_eq!(tracked(&acc).drift_bytes, 0);
        assert_identity(&acc);
    }

    #[test]
    fn every_part_of_the_excess_on_one_host_sums_to_the_drift() {
        // A: rescued, 1001 MiB swap (1004 MiB LV). B: disk = 0, 2.5 GiB image. C: a root LV one
        // extent over its flavor and a 1536 MiB swap. D: building (no LV yet). Plus a foreign
        // LV and an orphan.
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 2 * GIB),
            lv(
                &format!("{UUID_A}_disk.rescue"),
                Owner::Instance,
                extents(GIB + 1),
            ),
            lv(
                &format!("{UUID_A}_disk.swap"),
                Owner::Instance,
                extents(1001 * MIB),
            ),
            lv(
                &format!("{UUID_B}_disk"),
                Owner::Instance,
                extents(2 * GIB + GIB / 2),
            ),
            lv(&format!("{UUID_C}_disk"), Owner::Instance, 3 * GIB + EXTENT),
            lv(&format!("{UUID_C}_disk.swap"), Owner::Instance, 1536 * MIB),
            lv("backup", Owner::Foreign, 700 * MIB),
            lv(&format!("{UUID_GONE}_disk"), Owner::Orphan, GIB),
        ];
        let u = usage(
            &[
                (UUID_A, flavor(2, 0, 1001)),
                (UUID_B, flavor(0, 0, 0)),
                (UUID_C, flavor(3, 0, 1536)),
                (UUID_D, flavor(4, 0, 0)),
            ],
            0,
            1.0,
        );
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(
            t.untracked,
            UntrackedByCause {
                foreign_bytes: 700 * MIB,
                orphan_bytes: GIB,
                cinder_bytes: 0,
                unbooked_instance_bytes: 0,
                rescue_bytes: GIB + EXTENT,
                unbooked_root_bytes: 2 * GIB + GIB / 2,
                swap_remainder_bytes: 1001 * MIB + 512 * MIB,
                extent_rounding_bytes: 3 * MIB + EXTENT,
                unexplained_bytes: 0,
            }
        );
        assert_eq!(t.unbacked_bytes, 4 * GIB);
        assert_eq!(
            t.untracked.total_bytes(),
            (700 * MIB + GIB + GIB + EXTENT + 2 * GIB + GIB / 2) as i64
        );
        assert_identity(&acc);
    }

    #[test]
    fn the_parts_of_the_excess_follow_their_rules_across_a_grid_of_instances() {
        let swaps = [0u64, 256, 512, 1001, 1024, 1536, 4097];
        for root_gb in [0u64, 1, 3] {
            for ephemeral_gb in [0u64, 2] {
                for swap_mb in swaps {
                    for boot_from_volume in [false, true] {
                        for placement_rule in [false, true] {
                            for root_lv in [None, Some(0), Some(EXTENT), Some(2 * GIB + MIB)] {
                                for swap_lv in [None, Some(0i64), Some(-(256 * MIB as i64))] {
                                    for rescue in [0, extents(GIB + 1)] {
                                        let f = Flavor {
                                            root_gb,
                                            ephemeral_gb,
                                            swap_mb,
                                            boot_from_volume,
                                        };
                                        let instance = if placement_rule {
                                            placement_booked(UUID_A, f)
                                        } else {
                                            TrackedInstance::from_flavor(UUID_A, &f)
                                        };
                                        let mut lvs = vec![];
                                        let booked_root = root_gb * GIB;
                                        if let Some(extra) = root_lv {
                                            lvs.push(lv(
                                                &format!("{UUID_A}_disk"),
                                                Owner::Instance,
                                                extents(booked_root + extra),
                                            ));
                                        }
                                        if ephemeral_gb > 0 {
                                            lvs.push(lv(
                                                &format!("{UUID_A}_disk.local"),
                                                Owner::Instance,
                                                ephemeral_gb * GIB,
                                            ));
                                        }
                                        let swap_bytes = match swap_lv {
                                            Some(delta) if swap_mb > 0 => extents(
                                                (swap_mb * MIB)
                                                    .saturating_add_signed(delta)
                                                    .max(MIB),
                                            ),
                                            _ => 0,
                                        };
                                        if swap_bytes > 0 {
                                            lvs.push(lv(
                                                &format!("{UUID_A}_disk.swap"),
                                                Owner::Instance,
                                                swap_bytes,
                                            ));
                                        }
                                        if rescue > 0 {
                                            lvs.push(lv(
                                                &format!("{UUID_A}_disk.rescue"),
                                                Owner::Instance,
                                                rescue,
                                            ));
                                        }
                                        let what = format!("{f:?} placement {placement_rule} root {root_lv:?} swap {swap_bytes} rescue {rescue}");
                                        let u = booked(vec![instance]);
                                        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
                                        assert_identity(&acc);
                                        let t = tracked(&acc).untracked;
                                        assert_eq!(t.rescue_bytes, rescue, "{what}");
                                        let root_bytes = lvs
                                            .iter()
                                            .find(|l| l.name.ends_with("_disk"))
                                            .map_or(0, |l| l.allocated_bytes);
                                        let disk_0 = root_gb == 0 && !boot_from_volume;
                                        assert_eq!(
                                            t.unbooked_root_bytes,
                                            if disk_0 { root_bytes } else { 0 },
                                            "{what}"
                                        );
                                        let remainder = if placement_rule {
                                            0
                                        } else {
                                            (swap_mb % 1024) * MIB
                                        };
                                        assert!(t.swap_remainder_bytes <= remainder, "{what}");
                                        assert!(t.swap_remainder_bytes <= swap_bytes, "{what}");
                                        if swap_bytes >= swap_mb * MIB {
                                            assert_eq!(t.swap_remainder_bytes, remainder, "{what}");
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn huge_instance_lvs_are_split_without_overflow() {
        let half = MAX_ACCOUNTED_BYTES / 2;
        let lvs = [
            lv(&format!("{UUID_A}_disk.rescue"), Owner::Instance, half),
            lv(&format!("{UUID_B}_disk"), Owner::Instance, half),
        ];
        let u = usage(
            &[(UUID_A, flavor(0, 0, 0)), (UUID_B, flavor(0, 0, 0))],
            0,
            1.0,
        );
        let size = MAX_ACCOUNTED_BYTES;
        let acc = account_vg(&vg(size, size - 2 * half), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.untracked.rescue_bytes, half);
        assert_eq!(t.untracked.unbooked_root_bytes, half);
        assert_identity(&acc);
        // instance_excess alone saturates rather than wraps.
        let lvs = [
            lv(&format!("{UUID_A}_disk.rescue"), Owner::Instance, u64::MAX),
            lv(
                &format!("{UUID_A}_disk.config.rescue"),
                Owner::Instance,
                u64::MAX,
            ),
        ];
        let parts = instance_excess(
            &TrackedInstance::from_flavor(UUID_A, &flavor(0, 0, 0)),
            &lvs.iter().collect::<Vec<_>>(),
        );
        assert_eq!(parts.rescue_bytes, u64::MAX);
    }

    #[test]
    fn placement_instances_borrow_the_flavors_other_sources_know() {
        let f = flavor(0, 1, 512);
        let without = TrackedInstance {
            flavor: None,
            ..placement_booked(UUID_A, f)
        };
        let primary = booked(vec![
            without.clone(),
            TrackedInstance {
                uuid: UUID_B.into(),
                ..without.clone()
            },
        ]);
        let local = usage(&[(UUID_A, f)], 0, 1.0);
        let enriched = with_flavors_from(&primary, [&primary, &local]).expect("filled in");
        assert_eq!(enriched.instances[0].flavor, Some(f));
        assert_eq!(enriched.instances[0].tracked_bytes, 2 * GIB);
        assert_eq!(enriched.instances[1].flavor, None);
        // Nothing to fill in, or nothing known: the primary as it is.
        assert_eq!(with_flavors_from(&local, [&primary]), None);
        assert_eq!(with_flavors_from(&primary, [&primary]), None);
        // A flavor the primary knows is its own, whatever the others say.
        let other = usage(&[(UUID_A, flavor(9, 9, 9))], 0, 1.0);
        assert_eq!(with_flavors_from(&local, [&other]), None);
    }

    fn report_lv(vg: &str, name: &str, bytes: u64) -> Lv {
        Lv {
            vg: vg.into(),
            name: name.into(),
            hidden: false,
            size_bytes: bytes,
            attr: "-wi-XX----".into(),
            segtype: "linear".into(),
            pool_lv: String::new(),
            parent: String::new(),
            data_used_ratio: None,
            metadata_used_ratio: None,
            creation_unix: None,
            tags: vec![],
        }
    }

    fn named_vg(name: &str, size_bytes: u64, free_bytes: u64) -> Vg {
        Vg {
            name: name.into(),
            ..vg(size_bytes, free_bytes)
        }
    }

    #[test]
    fn a_missing_vg_is_listed_and_the_others_are_still_accounted() {
        let report = VgReport {
            vgs: vec![named_vg("vms-group", VG_20G, VG_20G)],
            lvs: vec![],
        };
        let watched = ["vms-group".to_string(), "gone-vg".to_string()];
        let host = account_host(
            &report,
            &watched,
            Some("vms-group"),
            Some(&usage(&[], 0, 1.0)),
        );
        assert_eq!(host.missing_vgs, vec!["gone-vg".to_string()]);
        assert_eq!(host.vgs.len(), 1);
        assert!(host.vgs[0].tracked.is_some());
    }

    #[test]
    fn when_novas_vg_is_missing_nothing_is_derived() {
        let report = VgReport::default();
        let watched = ["vms-group".to_string()];
        let host = account_host(
            &report,
            &watched,
            Some("vms-group"),
            Some(&usage(&[], 0, 1.0)),
        );
        assert_eq!(host.missing_vgs, vec!["vms-group".to_string()]);
        assert!(host.vgs.is_empty());
    }

    #[test]
    fn tracked_usage_applies_to_novas_vg_but_classifies_lvs_everywhere() {
        let report = VgReport {
            vgs: vec![
                named_vg("vms-group", VG_20G, VG_20G - 10 * GIB),
                named_vg("other-vg", VG_20G, VG_20G - 2 * GIB),
            ],
            lvs: vec![
                report_lv("vms-group", &format!("{UUID_A}_disk"), 10 * GIB),
                report_lv("other-vg", &format!("{UUID_GONE}_disk"), GIB),
                report_lv("other-vg", "scratch", GIB),
            ],
        };
        let watched = ["vms-group".to_string(), "other-vg".to_string()];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let host = account_host(&report, &watched, Some("vms-group"), Some(&u));
        assert!(host.missing_vgs.is_empty());
        let nova = &host.vgs[0];
        assert_eq!(tracked(nova).drift_bytes, 0);
        assert_eq!(
            nova.owners[&Owner::Instance],
            OwnerTotals {
                lvs: 1,
                bytes: 10 * GIB
            }
        );
        let other = &host.vgs[1];
        assert!(other.tracked.is_none());
        assert_eq!(
            other.owners[&Owner::Orphan],
            OwnerTotals { lvs: 1, bytes: GIB }
        );
        assert_eq!(
            other.owners[&Owner::Foreign],
            OwnerTotals { lvs: 1, bytes: GIB }
        );
    }

    #[test]
    fn the_owner_bytes_plus_free_equal_the_vg_size() {
        let report = VgReport {
            vgs: vec![named_vg("vms-group", VG_20G, VG_20G - 13 * GIB)],
            lvs: vec![
                report_lv("vms-group", &format!("{UUID_A}_disk"), 10 * GIB),
                report_lv("vms-group", &format!("{UUID_GONE}_disk"), GIB),
                report_lv("vms-group", &format!("volume-{UUID_B}"), GIB),
                report_lv("vms-group", "someone_elses_lv", GIB),
            ],
        };
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let host = account_host(
            &report,
            &["vms-group".to_string()],
            Some("vms-group"),
            Some(&u),
        );
        let acc = &host.vgs[0];
        let owned: u64 = acc.owners.values().map(|o| o.bytes).sum();
        assert_eq!(owned + acc.free_bytes, acc.size_bytes);
        assert_eq!(tracked(acc).drift_bytes, (3 * GIB) as i64);
        assert_identity(acc);
    }

    fn nova_conf(reserved_host_disk_mb: u64, image_cache_reserve: bool) -> NovaConfDisk {
        NovaConfDisk {
            reserved_host_disk_mb,
            image_cache_reserve,
            pinned_disk_allocation_ratio: None,
        }
    }

    /// `k / 10^4` is the largest 4-decimal ratio whose capacity is no more than `capacity`:
    /// `k * base <= capacity * 10^4 < (k + 1) * base`, in exact integers.
    fn assert_largest_ratio_below(ratio: f64, base_gib: u64, capacity: u128) {
        let k = (ratio * 10_000.0).round() as u128;
        assert_eq!(k as f64 / 10_000.0, ratio, "{ratio} has 4 decimals");
        let base = u128::from(base_gib) * u128::from(GIB);
        assert!(
            k * base <= capacity * 10_000,
            "{ratio} x {base_gib} GiB > {capacity}"
        );
        assert!(
            capacity * 10_000 < (k + 1) * base,
            "{ratio} is not the largest"
        );
    }

    #[test]
    fn the_recommended_ratio_is_the_largest_4_decimal_ratio_within_the_corrected_capacity() {
        // Every total up to 40 GiB, every reserve below it, capacities in and between GiB.
        for total_gib in 1..=40u64 {
            for reserved_gib in 0..total_gib {
                let base = total_gib - reserved_gib;
                for capacity in [
                    1,
                    MIB,
                    GIB - 1,
                    GIB,
                    3 * GIB + 7,
                    base * GIB,
                    5 * base * GIB,
                ] {
                    for allocated in [0, capacity / 2, capacity] {
                        let free = (capacity - allocated) as i64;
                        let ratio = recommended_disk_allocation_ratio(
                            total_gib * GIB,
                            reserved_gib * GIB,
                            free,
                            allocated,
                        )
                        .unwrap();
                        assert_largest_ratio_below(ratio, base, u128::from(capacity));
                    }
                }
            }
        }
        // Placement 16's example: total 100, reserved 2, a capacity of 49 GiB is ratio 0.5.
        assert_eq!(
            recommended_disk_allocation_ratio(100 * GIB, 2 * GIB, (29 * GIB) as i64, 20 * GIB),
            Some(0.5)
        );
        // Rounded down: 97 / 98 = 0.98979...
        assert_eq!(
            recommended_disk_allocation_ratio(100 * GIB, 2 * GIB, (37 * GIB) as i64, 60 * GIB),
            Some(0.9897)
        );
    }

    #[test]
    fn the_recommended_ratio_at_its_edges() {
        let ratio = recommended_disk_allocation_ratio;
        // total == reserved, or less: no ratio changes a capacity of 0.
        assert_eq!(ratio(10 * GIB, 10 * GIB, GIB as i64, 0), None);
        assert_eq!(ratio(10 * GIB, 11 * GIB, GIB as i64, 0), None);
        assert_eq!(ratio(0, 0, GIB as i64, 0), None);
        // Placement holds the reserve in whole GiB rounded up and the total rounded down.
        assert_eq!(ratio(10 * GIB, 9 * GIB + 1, GIB as i64, 0), None);
        assert_eq!(ratio(11 * GIB - 1, 9 * GIB, GIB as i64, 0), Some(1.0));
        // Nothing allocated: corrected free alone.
        assert_eq!(ratio(10 * GIB, 0, (5 * GIB) as i64, 0), Some(0.5));
        assert_eq!(ratio(10 * GIB, 0, 0, 0), Some(0.0));
        // A corrected capacity of 0 or less: 0, never negative.
        assert_eq!(ratio(10 * GIB, 0, -((4 * GIB) as i64), 4 * GIB), Some(0.0));
        assert_eq!(ratio(10 * GIB, 0, -((5 * GIB) as i64), 4 * GIB), Some(0.0));
        assert_eq!(ratio(10 * GIB, 0, i64::MIN, 0), Some(0.0));
        // Corrected free below 0 but above -allocated: a ratio that refuses new allocations.
        assert_eq!(ratio(10 * GIB, 0, -(GIB as i64), 4 * GIB), Some(0.3));
        // More capacity than placement's: above 1.
        assert_eq!(ratio(10 * GIB, 0, (15 * GIB) as i64, 0), Some(1.5));
        // Huge figures neither overflow nor lose the 4 decimals.
        let huge = ratio(u64::MAX, 0, i64::MAX, u64::MAX).unwrap();
        assert_largest_ratio_below(
            huge,
            u64::MAX / GIB,
            i64::MAX as u128 + u128::from(u64::MAX),
        );
        assert_eq!(ratio(u64::MAX, u64::MAX, i64::MAX, u64::MAX), None);
        assert_eq!(ratio(GIB, 0, 1, 0), Some(0.0));
        assert_eq!(ratio(u64::MAX, 0, 0, GIB), Some(0.0));
    }

    #[test]
    fn placement_s_reserve_is_explained_by_the_image_cache_or_set_elsewhere() {
        // ceil(1500 / 1024) = 2 GiB: what nova sends without the workaround.
        assert_eq!(reserved_difference(2 * GIB, &nova_conf(1500, false)), None);
        assert_eq!(reserved_difference(2 * GIB, &nova_conf(1500, true)), None);
        assert_eq!(reserved_difference(0, &nova_conf(0, true)), None);
        assert_eq!(
            reserved_difference(5 * GIB, &nova_conf(1500, true)),
            Some(ReservedDifference {
                placement_gib: 5,
                nova_conf_gib: 2,
                cause: ReservedCause::ImageCache { image_cache_gib: 3 },
            })
        );
        // A larger reserve without the workaround, or a smaller one with it: set elsewhere.
        for (placement_gib, conf) in [(5, nova_conf(1500, false)), (1, nova_conf(1500, true))] {
            let difference = reserved_difference(placement_gib * GIB, &conf).unwrap();
            assert_eq!(difference.cause, ReservedCause::SetElsewhere);
            assert_eq!(
                (difference.placement_gib, difference.nova_conf_gib),
                (placement_gib, 2)
            );
        }
        // Extremes: placement's u64::MAX bytes are 2^34 GiB, less than u64::MAX MiB.
        assert_eq!(
            reserved_difference(u64::MAX, &nova_conf(u64::MAX, true)).map(|d| d.cause),
            Some(ReservedCause::SetElsewhere)
        );
        assert_eq!(
            reserved_difference(u64::MAX, &nova_conf(0, true)).map(|d| d.cause),
            Some(ReservedCause::ImageCache {
                image_cache_gib: 1 << 34
            })
        );
    }

    /// Instance A (10 GiB) and a 4 GiB foreign LV on a 20 GiB VG (placement total 19 GiB), as a
    /// placement source reports them with `reserved_gib` reserved and `conf` behind it.
    fn placement_account(reserved_gib: u64, conf: NovaConfDisk) -> TrackedAccounting {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB),
            lv("scratch", Owner::Foreign, 4 * GIB),
        ];
        let mut u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        u.reserved_bytes = reserved_gib * GIB;
        u.nova_conf = Some(conf);
        u.provider_uuid = Some(UUID_B.to_string());
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        assert_identity(&acc);
        tracked(&acc).clone()
    }

    #[test]
    fn the_recommended_reserve_takes_off_the_image_cache_nova_adds_to_it() {
        // Placement reserves 5 GiB: 2 from 1500 MiB and 3 of image cache.
        let t = placement_account(5, nova_conf(1500, true));
        // corrected free = 5119 x 4 MiB - 14 GiB - 5 GiB = 1020 MiB; placement needs
        // ceil(19 - (10 + 1020 / 1024)) = 9 GiB reserved, of which nova adds 3 itself.
        assert_eq!(t.corrected_free_bytes, (1020 * MIB) as i64);
        assert_eq!(t.scheduler_free_bytes, (4 * GIB) as i64);
        assert_eq!(
            t.reserved_difference.map(|d| d.cause),
            Some(ReservedCause::ImageCache { image_cache_gib: 3 })
        );
        assert_eq!(t.recommended_reserved_host_disk_mb, 6 * 1024);
        // The same reserve set elsewhere: placement's reserve must come from the setting itself.
        let t = placement_account(5, nova_conf(1500, false));
        assert_eq!(
            t.reserved_difference.map(|d| d.cause),
            Some(ReservedCause::SetElsewhere)
        );
        assert_eq!(t.recommended_reserved_host_disk_mb, 9 * 1024);
        // A larger image cache: nova adds all of it, the recommendation stays 4 GiB above
        // what nova.conf alone gives.
        let t = placement_account(12, nova_conf(1500, true));
        assert_eq!(t.recommended_reserved_host_disk_mb, 6 * 1024);
        // No difference, no explanation; the provider and nova.conf are passed on.
        let t = placement_account(2, nova_conf(1500, true));
        assert_eq!(t.reserved_difference, None);
        assert_eq!(t.provider_uuid.as_deref(), Some(UUID_B));
        assert_eq!(t.nova_conf, Some(nova_conf(1500, true)));
    }

    #[test]
    fn the_recommended_ratio_is_computed_with_placement_s_reserve() {
        // base (19 - 5) GiB; capacity 1020 MiB + 10 GiB = 11260 MiB; 11260 / 14336 = 0.78543...
        let t = placement_account(5, nova_conf(1500, true));
        // 0.7854, spelled as 7854 ten-thousandths (the literal reads as pi / 4 to clippy).
        assert_eq!(t.recommended_disk_allocation_ratio, Some(7854.0 / 10_000.0));
        // A reserve of the whole total: no ratio helps.
        let t = placement_account(19, nova_conf(1500, false));
        assert_eq!(t.recommended_disk_allocation_ratio, None);
        // A local source (no provider) still gets the ratio, on the VG's floored total.
        let lvs = [lv(&format!("{UUID_A}_disk"), Owner::Instance, 10 * GIB)];
        let u = usage(&[(UUID_A, flavor(10, 0, 0))], 0, 1.0);
        let acc = account_vg(&vg_with(&lvs), &lvs, Some(&u));
        let t = tracked(&acc);
        assert_eq!(t.provider_uuid, None);
        // capacity = VG_20G - 10 GiB + 10 GiB = 20476 MiB over 19456 MiB: 1.05243...
        assert_eq!(t.recommended_disk_allocation_ratio, Some(1.0524));
    }

    /// One tracked source's usage listing `uuids` (1 GiB root each).
    fn listing(uuids: &[&str]) -> TrackedUsage {
        let instances: Vec<(&str, Flavor)> = uuids.iter().map(|u| (*u, flavor(1, 0, 0))).collect();
        usage(&instances, 0, 1.0)
    }

    /// Every primary source with every subset of the other three: an instance that any enabled
    /// source places on this host is never an orphan; when the primary does not book it, its
    /// LVs are `unbooked_instance`, and the causes still sum to the drift.
    #[test]
    fn an_instance_any_source_places_here_is_never_an_orphan_whichever_source_is_primary() {
        use crate::tracked::SourceKind;
        let kinds = [
            SourceKind::Placement,
            SourceKind::Nova,
            SourceKind::Libvirt,
            SourceKind::File,
        ];
        let report = VgReport {
            vgs: vec![
                named_vg("vms-group", VG_20G, VG_20G - 7 * GIB - 512 * MIB),
                named_vg("other-vg", VG_20G, VG_20G - 2 * GIB),
            ],
            lvs: vec![
                report_lv("vms-group", &format!("{UUID_A}_disk"), GIB),
                report_lv("vms-group", &format!("{UUID_B}_disk"), 4 * GIB),
                report_lv("vms-group", &format!("{UUID_B}_disk.swap"), 512 * MIB),
                report_lv("vms-group", &format!("{UUID_GONE}_disk"), 2 * GIB),
                report_lv("other-vg", &format!("{UUID_B}_disk.local"), 2 * GIB),
            ],
        };
        let watched = ["vms-group".to_string(), "other-vg".to_string()];
        for primary in kinds {
            let others: Vec<SourceKind> = kinds.into_iter().filter(|k| *k != primary).collect();
            for mask in 0..(1u8 << others.len()) {
                let listing_b: Vec<SourceKind> = others
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| *k)
                    .collect();
                let primary_usage = listing(&[UUID_A]);
                let other_usages: Vec<TrackedUsage> = others
                    .iter()
                    .map(|k| {
                        if listing_b.contains(k) {
                            listing(&[UUID_A, UUID_B])
                        } else {
                            listing(&[UUID_A])
                        }
                    })
                    .collect();
                let here =
                    instances_here(std::iter::once(&primary_usage).chain(other_usages.iter()));
                let host = super::account_host_with(
                    &report,
                    &watched,
                    Some("vms-group"),
                    Some(&primary_usage),
                    &here,
                )
                .unwrap();
                let what = format!("primary {primary}, B listed by {listing_b:?}");
                let nova = &host.vgs[0];
                let t = tracked(nova);
                assert_identity(nova);
                assert_eq!(t.drift_bytes, (6 * GIB + 512 * MIB) as i64, "{what}");
                let orphan_uuids: Vec<&str> = nova
                    .orphans
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(|o| o.instance_uuid.as_str())
                    .collect();
                let other_orphans = host.vgs[1].orphans.as_ref().unwrap().len();
                if listing_b.is_empty() {
                    assert_eq!(orphan_uuids, [UUID_B, UUID_B, UUID_GONE], "{what}");
                    assert_eq!(t.untracked.orphan_bytes, 6 * GIB + 512 * MIB, "{what}");
                    assert_eq!(t.untracked.unbooked_instance_bytes, 0, "{what}");
                    assert_eq!(nova.owners[&Owner::Instance].lvs, 1, "{what}");
                    assert_eq!(other_orphans, 1, "{what}");
                } else {
                    assert_eq!(orphan_uuids, [UUID_GONE], "{what}");
                    assert_eq!(t.untracked.orphan_bytes, 2 * GIB, "{what}");
                    assert_eq!(
                        t.untracked.unbooked_instance_bytes,
                        4 * GIB + 512 * MIB,
                        "{what}"
                    );
                    assert_eq!(
                        nova.owners[&Owner::Instance],
                        OwnerTotals {
                            lvs: 3,
                            bytes: 5 * GIB + 512 * MIB
                        },
                        "{what}"
                    );
                    assert_eq!(nova.owners[&Owner::Orphan].bytes, 2 * GIB, "{what}");
                    // Not an untracked LV either: it is an instance's disk.
                    assert!(
                        nova.untracked_lvs
                            .iter()
                            .all(|lv| !lv.name.starts_with(UUID_B)),
                        "{what}"
                    );
                    assert_eq!(other_orphans, 0, "{what}");
                    assert_eq!(host.vgs[1].owners[&Owner::Instance].lvs, 1, "{what}");
                }
                assert_eq!(t.untracked.rescue_bytes, 0, "{what}");
                assert_eq!(t.untracked.unbooked_root_bytes, 0, "{what}");
                assert_eq!(t.untracked.swap_remainder_bytes, 0, "{what}");
                assert_eq!(t.untracked.extent_rounding_bytes, 0, "{what}");
                assert_eq!(t.unbacked_bytes, 0, "{what}");
            }
        }
    }

    #[test]
    fn an_instance_the_primary_books_is_not_unbooked_whatever_the_others_say() {
        let report = VgReport {
            vgs: vec![named_vg("vms-group", VG_20G, VG_20G - 3 * GIB)],
            lvs: vec![
                report_lv("vms-group", &format!("{UUID_A}_disk"), GIB),
                report_lv("vms-group", &format!("{UUID_B}_disk"), 2 * GIB),
            ],
        };
        let primary = listing(&[UUID_A, UUID_B]);
        let other = listing(&[UUID_B]);
        let here = instances_here([&primary, &other]);
        let host = super::account_host_with(
            &report,
            &["vms-group".to_string()],
            Some("vms-group"),
            Some(&primary),
            &here,
        )
        .unwrap();
        let t = tracked(&host.vgs[0]);
        assert_eq!(
            t.untracked,
            UntrackedByCause {
                extent_rounding_bytes: GIB,
                ..UntrackedByCause::default()
            }
        );
        assert_identity(&host.vgs[0]);
    }

    #[test]
    fn without_a_primary_source_the_other_sources_classify_nothing() {
        let report = VgReport {
            vgs: vec![named_vg("vms-group", VG_20G, VG_20G - 2 * GIB)],
            lvs: vec![report_lv("vms-group", &format!("{UUID_B}_disk"), 2 * GIB)],
        };
        let other = listing(&[UUID_B]);
        let host = super::account_host_with(
            &report,
            &["vms-group".to_string()],
            Some("vms-group"),
            None,
            &instances_here([&other]),
        )
        .unwrap();
        let nova = &host.vgs[0];
        assert!(nova.tracked.is_none());
        assert!(nova.orphans.is_none());
        assert!(!nova.owners.contains_key(&Owner::Instance));
        assert!(!nova.owners.contains_key(&Owner::Orphan));
    }
}
