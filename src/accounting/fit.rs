//! Flavor fit: how many more instances of each flavor fit on this host, two ways.
//!
//! - **corrected**: what an instance really takes in the VG, against corrected free space
//!   ([`crate::accounting::drift::TrackedAccounting::corrected_free_bytes`]: size - max(raw used,
//!   tracked used) - reserved). nova's libvirt driver (`nova/virt/libvirt/driver.py`,
//!   `_create_image`) gives an instance of `images_type = lvm` up to three LVs through the
//!   `Lvm` image backend (`nova/virt/libvirt/imagebackend.py`): the root disk `<uuid>_disk` of
//!   the flavor's `root_gb` GiB (the image's size when that is larger; none when booted from a
//!   volume), the ephemeral disk `<uuid>_disk.local` of `ephemeral_gb` GiB, and the swap disk
//!   `<uuid>_disk.swap` of `swap` MiB. Each is made by `lvm.create_volume`
//!   (`nova/virt/libvirt/storage/lvm.py`), which refuses a size above the VG's free bytes and
//!   runs `lvcreate -L <size>b`; LVM rounds every LV up to whole extents. So an instance takes
//!   [`instance_lv_bytes`]: each LV rounded up to the VG's extent size. A config drive takes
//!   nothing of the VG: with this backend it is a file (`_get_disk_config_image_type` is `raw`
//!   unless `images_type = rbd`).
//! - **scheduler**: placement's rule on the DISK_GB inventory. An allocation of `amount` fits
//!   when `used + amount <= (total - reserved) * allocation_ratio` and `amount <= max_unit`
//!   (`placement/objects/allocation.py`, `_check_capacity_exceeded`); nova's libvirt driver
//!   sets `max_unit` to the total (`update_provider_tree`). The flavor asks for
//!   [`Flavor::placement_allocation_bytes`] (whole GiB, swap rounded up, root 0 when booted
//!   from volume). So `floor(scheduler free / amount)` instances fit, none when the amount is
//!   above the total. The scheduler free space is the primary source's
//!   ([`crate::accounting::drift::TrackedAccounting::scheduler_free_bytes`]).
//!
//! The flavors: `--flavor`, the compute API's list (nova source) and, with no configuration at
//! all, the flavors named in nova's metadata of the domains defined here (libvirt source,
//! [`crate::tracked::libvirt::domain_flavors`]); [`select_flavors`] keeps each name once,
//! within `--flavor-limit`, and [`flavor_fit`] fits them against nova's VG's accounting and the
//! primary source's DISK_GB total (the [`SchedulerView`]).
//!
//! Every flavor is image-backed unless it says otherwise: a flavor's boot-from-volume variant is
//! configured with DISK_GB 0 (`--flavor m1.large-bfv=0,2048`), which is exactly what both rules
//! then count (no root LV, no root in DISK_GB).
//!
//! A flavor that needs no disk in a view (all sizes 0) fits without bound there: nova does not
//! even ask placement for DISK_GB, and it creates no LV of a known size (a root_gb 0 flavor's
//! root LV is the size of the image, which the fit cannot know). [`Fit::Unbounded`] is
//! exported as `+Inf`. Negative free space fits nothing.

use super::drift::{HostAccounting, SourceFigures};
use crate::lvm::VgReport;
use crate::tracked::flavors::{FlavorOrigin, NamedFlavor};
use crate::tracked::Flavor;
use crate::units::{GIB, MIB};

/// The default of `--flavor-limit`: at most this many flavors get series.
pub const DEFAULT_FLAVOR_LIMIT: usize = 50;

/// How many more instances of a flavor fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// This many.
    Instances(u64),
    /// The flavor needs nothing in this view: no limit.
    Unbounded,
}

impl Fit {
    /// The exported value: the count, `+Inf` when unbounded.
    pub fn value(self) -> f64 {
        match self {
            Fit::Instances(count) => count as f64,
            Fit::Unbounded => f64::INFINITY,
        }
    }
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fit::Instances(count) => write!(f, "{count}"),
            Fit::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// The scheduler's side of the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerView {
    /// Its free space in bytes (placement's rule, or nova's `free_disk_gb`).
    pub free_bytes: i64,
    /// Placement's DISK_GB total in bytes (nova's `max_unit`), when known.
    pub total_bytes: Option<u64>,
}

/// One flavor's fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorFit {
    /// The flavor's name.
    pub name: String,
    /// Where it came from.
    pub origin: FlavorOrigin,
    /// Its disk sizes.
    pub flavor: Flavor,
    /// VG bytes one instance takes (its LVs, each rounded up to whole extents).
    pub instance_lv_bytes: u64,
    /// DISK_GB one instance asks placement for, in bytes.
    pub placement_bytes: u64,
    /// How many more fit by corrected free space.
    pub corrected: Fit,
    /// How many more the scheduler would place.
    pub scheduler: Fit,
}

impl FlavorFit {
    /// The scheduler places at least one more, but none fits: the next build fails.
    pub fn next_build_fails(&self) -> bool {
        self.corrected == Fit::Instances(0) && self.scheduler != Fit::Instances(0)
    }
}

/// The flavor fit of nova's VG on one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct FlavorFitSummary {
    /// nova's VG.
    pub vg: String,
    /// Its extent size, which every LV is rounded up to.
    pub extent_bytes: u64,
    /// The corrected free space the corrected fit divides.
    pub corrected_free_bytes: i64,
    /// The scheduler's view the scheduler fit divides.
    pub scheduler: SchedulerView,
    /// One entry per flavor, in [`select_flavors`]'s order.
    pub flavors: Vec<FlavorFit>,
    /// Flavors of the compute API and of the domains defined here left out by
    /// `--flavor-limit`.
    pub omitted: usize,
}

/// `bytes` rounded up to whole extents (unchanged when the extent size is unknown, 0).
fn extents(bytes: u64, extent_bytes: u64) -> u64 {
    if extent_bytes == 0 {
        bytes
    } else {
        bytes.div_ceil(extent_bytes).saturating_mul(extent_bytes)
    }
}

/// VG bytes one instance of `flavor` takes: root (none when booted from volume), ephemeral and
/// swap LVs, each rounded up to whole extents of `extent_bytes`. Sizes are at most nova's
/// `MAX_INT`, so the sum stays below 2^63 for any real extent size; an absurd one (a hostile
/// saved report) saturates instead of wrapping.
pub fn instance_lv_bytes(flavor: &Flavor, extent_bytes: u64) -> u64 {
    let root_gb = if flavor.boot_from_volume {
        0
    } else {
        flavor.root_gb
    };
    [
        root_gb * GIB,
        flavor.ephemeral_gb * GIB,
        flavor.swap_mb * MIB,
    ]
    .into_iter()
    .map(|bytes| extents(bytes, extent_bytes))
    .fold(0, u64::saturating_add)
}

/// How many instances taking `per_instance` bytes fit in `free` bytes.
fn count(free: i64, per_instance: u64) -> Fit {
    if per_instance == 0 {
        return Fit::Unbounded;
    }
    match u64::try_from(free) {
        Ok(free) => Fit::Instances(free / per_instance),
        Err(_) => Fit::Instances(0),
    }
}

/// How many more instances of `flavor` fit in `corrected_free_bytes` of a VG with extents of
/// `extent_bytes`.
pub fn corrected_fit(flavor: &Flavor, corrected_free_bytes: i64, extent_bytes: u64) -> Fit {
    count(
        corrected_free_bytes,
        instance_lv_bytes(flavor, extent_bytes),
    )
}

/// How many more instances of `flavor` the scheduler would place (placement's rule, see the
/// module doc).
pub fn scheduler_fit(flavor: &Flavor, view: &SchedulerView) -> Fit {
    let amount = flavor.placement_allocation_bytes();
    if amount > 0
        && view
            .total_bytes
            .is_some_and(|total| amount > total / GIB * GIB)
    {
        return Fit::Instances(0);
    }
    count(view.free_bytes, amount)
}

/// The flavors that get a fit, at most `limit`: the configured ones first, in their order
/// (they win over a listed flavor of the same name), then the listed ones (the compute API's,
/// then the domains' of this host: the first of a name wins), largest DISK_GB first (the first
/// to stop fitting), by name on a tie, each name once. Returns them and how many listed
/// flavors were left out.
pub fn select_flavors(
    configured: &[NamedFlavor],
    listed: &[NamedFlavor],
    limit: usize,
) -> (Vec<NamedFlavor>, usize) {
    let mut selected: Vec<NamedFlavor> = configured.iter().take(limit).cloned().collect();
    let mut names: std::collections::HashSet<&str> =
        configured.iter().map(|f| f.name.as_str()).collect();
    let mut candidates: Vec<&NamedFlavor> = listed
        .iter()
        .filter(|f| names.insert(f.name.as_str()))
        .collect();
    candidates.sort_by(|a, b| {
        b.flavor
            .placement_allocation_bytes()
            .cmp(&a.flavor.placement_allocation_bytes())
            .then_with(|| instance_lv_bytes(&b.flavor, 0).cmp(&instance_lv_bytes(&a.flavor, 0)))
            .then_with(|| a.name.cmp(&b.name))
    });
    let room = limit.saturating_sub(selected.len());
    let omitted = candidates.len().saturating_sub(room);
    selected.extend(candidates.into_iter().take(room).cloned());
    (selected, omitted)
}

/// The flavor fit of nova's VG (`nova_vg`) on one collection: the flavors [`select_flavors`]
/// keeps of `configured` and `listed` within `limit`, fitted against the VG's corrected free
/// space and the scheduler's view: the accounting's scheduler free space and the DISK_GB total
/// of the primary source's figures (`primary_figures`). None without a flavor, or without nova's
/// VG in `report` and in `host` with a tracked source's accounting.
pub fn flavor_fit(
    configured: &[NamedFlavor],
    listed: &[NamedFlavor],
    limit: usize,
    nova_vg: &str,
    report: Option<&VgReport>,
    host: Option<&HostAccounting>,
    primary_figures: Option<&SourceFigures>,
) -> Option<FlavorFitSummary> {
    let (flavors, omitted) = select_flavors(configured, listed, limit);
    if flavors.is_empty() {
        return None;
    }
    let vg = host?.vgs.iter().find(|vg| vg.vg == nova_vg)?;
    let tracked = vg.tracked.as_ref()?;
    let extent_bytes = report?.vg(nova_vg)?.extent_size_bytes;
    let scheduler = SchedulerView {
        free_bytes: tracked.scheduler_free_bytes,
        total_bytes: primary_figures.and_then(|figures| figures.scheduler_total_bytes),
    };
    Some(FlavorFitSummary {
        vg: vg.vg.clone(),
        extent_bytes,
        corrected_free_bytes: tracked.corrected_free_bytes,
        flavors: fit_flavors(
            &flavors,
            tracked.corrected_free_bytes,
            extent_bytes,
            &scheduler,
        ),
        scheduler,
        omitted,
    })
}

/// The fit of every flavor in `flavors`.
pub fn fit_flavors(
    flavors: &[NamedFlavor],
    corrected_free_bytes: i64,
    extent_bytes: u64,
    scheduler: &SchedulerView,
) -> Vec<FlavorFit> {
    flavors
        .iter()
        .map(|named| FlavorFit {
            name: named.name.clone(),
            origin: named.origin,
            flavor: named.flavor,
            instance_lv_bytes: instance_lv_bytes(&named.flavor, extent_bytes),
            placement_bytes: named.flavor.placement_allocation_bytes(),
            corrected: corrected_fit(&named.flavor, corrected_free_bytes, extent_bytes),
            scheduler: scheduler_fit(&named.flavor, scheduler),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracked::NOVA_MAX_INT;

    const EXTENT: u64 = 4 * MIB;

    fn flavor(root_gb: u64, swap_mb: u64, ephemeral_gb: u64) -> Flavor {
        Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume: false,
        }
    }

    fn named(name: &str, f: Flavor, origin: FlavorOrigin) -> NamedFlavor {
        NamedFlavor {
            name: name.into(),
            flavor: f,
            origin,
        }
    }

    /// The seed incident (examples/seed-incident/README.md): a 536,866,717,696-byte VG,
    /// 200 GiB of a foreign LV, 229 GiB tracked. Corrected free 76,231,475,200 B (71.0 GiB);
    /// placement: total 499 GiB, reserved 0, ratio 1, used 229 GiB, so 270 GiB free.
    const SEED_CORRECTED_FREE: i64 = 76_231_475_200;
    const SEED_SCHEDULER: SchedulerView = SchedulerView {
        free_bytes: 270 * GIB as i64,
        total_bytes: Some(499 * GIB),
    };

    #[test]
    fn the_seed_incident_the_scheduler_places_flavors_that_no_longer_fit() {
        // (flavor, corrected fit, scheduler fit), worked by hand:
        let table = [
            // 80 GiB: 71.0 GiB holds none; 270 / 80 = 3.4 -> 3. The next build fails.
            (flavor(80, 0, 0), 0, 3),
            // 40 GiB: 71.0 / 40 -> 1; 270 / 40 -> 6.
            (flavor(40, 0, 0), 1, 6),
            // db-01's flavor: LVs 40 + 8 GiB + 1024 MiB = 49 GiB -> 1; DISK_GB 49 -> 5.
            (flavor(40, 1024, 8), 1, 5),
            // 20 GiB: 71.0 / 20 -> 3; 270 / 20 -> 13.
            (flavor(20, 0, 0), 3, 13),
            // 71 GiB: 71.0 GiB is 76,231,475,200 B, less than 71 GiB (76,235,669,504 B).
            (flavor(71, 0, 0), 0, 3),
            // 512 MiB swap: one LV of 512 MiB (128 extents), 141.99 of them; DISK_GB 1 (ceil).
            (flavor(0, 512, 0), 141, 270),
        ];
        for (f, corrected, scheduler) in table {
            let fit = fit_flavors(
                &[named("f", f, FlavorOrigin::Configured)],
                SEED_CORRECTED_FREE,
                EXTENT,
                &SEED_SCHEDULER,
            );
            assert_eq!(fit[0].corrected, Fit::Instances(corrected), "{f:?}");
            assert_eq!(fit[0].scheduler, Fit::Instances(scheduler), "{f:?}");
            assert_eq!(fit[0].next_build_fails(), corrected == 0, "{f:?}");
        }
    }

    #[test]
    fn each_lv_is_rounded_up_to_whole_extents() {
        // 1000 MiB of swap in 4 MiB extents: 250 extents, exact; 1001 MiB: 251 extents.
        assert_eq!(instance_lv_bytes(&flavor(0, 1000, 0), EXTENT), 1000 * MIB);
        assert_eq!(instance_lv_bytes(&flavor(0, 1001, 0), EXTENT), 1004 * MIB);
        // 32 MiB extents: each LV on its own, not the sum (3 + 3 MiB -> two extents).
        assert_eq!(
            instance_lv_bytes(&flavor(1, 3, 1), 32 * MIB),
            2 * GIB + 32 * MIB
        );
        // 3 GiB extents (an odd but valid VG): 1 GiB root and 1 GiB ephemeral take 3 GiB each.
        assert_eq!(instance_lv_bytes(&flavor(1, 0, 1), 3 * GIB), 6 * GIB);
        // Unknown extent size: the sizes as they are.
        assert_eq!(instance_lv_bytes(&flavor(1, 3, 1), 0), 2 * GIB + 3 * MIB);
        // Booted from volume: no root LV.
        let bfv = Flavor {
            boot_from_volume: true,
            ..flavor(80, 1024, 10)
        };
        assert_eq!(instance_lv_bytes(&bfv, EXTENT), 11 * GIB);
        // An absurd extent size saturates: nothing fits, nothing wraps.
        assert_eq!(instance_lv_bytes(&flavor(1, 1, 1), 1 << 63), u64::MAX);
        assert_eq!(
            corrected_fit(&flavor(1, 1, 1), i64::MAX, 1 << 63),
            Fit::Instances(0)
        );
        // nova's largest flavor does not overflow.
        let huge = flavor(NOVA_MAX_INT, NOVA_MAX_INT, NOVA_MAX_INT);
        assert_eq!(
            instance_lv_bytes(&huge, EXTENT),
            2 * NOVA_MAX_INT * GIB + NOVA_MAX_INT.div_ceil(4) * EXTENT
        );
    }

    #[test]
    fn zero_disk_flavors_fit_without_bound_in_both_views() {
        let zero = flavor(0, 0, 0);
        assert_eq!(
            corrected_fit(&zero, 10 * GIB as i64, EXTENT),
            Fit::Unbounded
        );
        assert_eq!(
            corrected_fit(&zero, -(10 * GIB as i64), EXTENT),
            Fit::Unbounded
        );
        assert_eq!(scheduler_fit(&zero, &SEED_SCHEDULER), Fit::Unbounded);
        let negative = SchedulerView {
            free_bytes: -1,
            total_bytes: Some(0),
        };
        assert_eq!(scheduler_fit(&zero, &negative), Fit::Unbounded);
        assert_eq!(Fit::Unbounded.value(), f64::INFINITY);
        assert_eq!(Fit::Unbounded.to_string(), "unbounded");
        let fit = &fit_flavors(
            &[named("zero", zero, FlavorOrigin::Configured)],
            0,
            EXTENT,
            &SEED_SCHEDULER,
        )[0];
        assert!(!fit.next_build_fails());
    }

    #[test]
    fn negative_or_short_free_space_fits_nothing() {
        let f = flavor(10, 0, 0);
        for free in [i64::MIN, -(10 * GIB as i64), -1, 0, (10 * GIB - 1) as i64] {
            assert_eq!(corrected_fit(&f, free, EXTENT), Fit::Instances(0), "{free}");
            let view = SchedulerView {
                free_bytes: free,
                total_bytes: None,
            };
            assert_eq!(scheduler_fit(&f, &view), Fit::Instances(0), "{free}");
        }
        assert_eq!(
            corrected_fit(&f, 10 * GIB as i64, EXTENT),
            Fit::Instances(1)
        );
        assert_eq!(
            corrected_fit(&f, i64::MAX, EXTENT),
            Fit::Instances(i64::MAX as u64 / (10 * GIB))
        );
    }

    #[test]
    fn the_scheduler_counts_whole_gib_and_never_above_max_unit() {
        // Swap rounds up to a GiB in DISK_GB: 10 GiB + 1 MiB of swap asks for 11.
        let view = SchedulerView {
            free_bytes: 22 * GIB as i64,
            total_bytes: Some(100 * GIB),
        };
        assert_eq!(scheduler_fit(&flavor(10, 1, 0), &view), Fit::Instances(2));
        assert_eq!(
            scheduler_fit(&flavor(10, 1025, 0), &view),
            Fit::Instances(1)
        );
        // Booted from volume: the root is not asked for.
        let bfv = Flavor {
            boot_from_volume: true,
            ..flavor(80, 0, 11)
        };
        assert_eq!(scheduler_fit(&bfv, &view), Fit::Instances(2));
        // An allocation ratio of 1.5 leaves fractional GiB: (100 - 0) * 1.5 - 149.5 -> 0.5 GiB.
        let fractional = SchedulerView {
            free_bytes: (GIB / 2) as i64,
            total_bytes: Some(100 * GIB),
        };
        assert_eq!(
            scheduler_fit(&flavor(1, 0, 0), &fractional),
            Fit::Instances(0)
        );
        // Over-committed (ratio 2): more free than the total, but one allocation is at most
        // max_unit = total.
        let overcommitted = SchedulerView {
            free_bytes: 150 * GIB as i64,
            total_bytes: Some(100 * GIB),
        };
        assert_eq!(
            scheduler_fit(&flavor(100, 0, 0), &overcommitted),
            Fit::Instances(1)
        );
        assert_eq!(
            scheduler_fit(&flavor(101, 0, 0), &overcommitted),
            Fit::Instances(0)
        );
        // Without a known total (the nova source), only the free space limits.
        let nova = SchedulerView {
            free_bytes: 150 * GIB as i64,
            total_bytes: None,
        };
        assert_eq!(scheduler_fit(&flavor(101, 0, 0), &nova), Fit::Instances(1));
    }

    #[test]
    fn the_fit_of_novas_vg_needs_a_flavor_and_its_tracked_accounting_and_takes_the_primarys_total()
    {
        use crate::accounting::drift::{account_host, source_figures};
        use crate::lvm::Vg;
        use crate::tracked::{HostDiskSettings, TrackedUsage};

        let report = VgReport {
            vgs: vec![Vg {
                name: "vms".into(),
                size_bytes: 100 * GIB,
                free_bytes: 100 * GIB,
                extent_size_bytes: EXTENT,
            }],
            lvs: vec![],
        };
        let usage = TrackedUsage::from_local(Vec::new(), &HostDiskSettings::default());
        let watched = ["vms".to_string()];
        let host = account_host(&report, &watched, Some("vms"), Some(&usage)).unwrap();
        let untracked = account_host(&report, &watched, Some("vms"), None).unwrap();
        let mut primary = source_figures(&usage, Some(100 * GIB)).unwrap();
        primary.scheduler_total_bytes = Some(60 * GIB);
        let flavors = [named("m1", flavor(20, 0, 0), FlavorOrigin::Configured)];
        let fit_of = |flavors: &[NamedFlavor], vg: &str, report, host, primary| {
            flavor_fit(
                flavors,
                &[],
                DEFAULT_FLAVOR_LIMIT,
                vg,
                report,
                host,
                primary,
            )
        };

        let fit = fit_of(&flavors, "vms", Some(&report), Some(&host), Some(&primary))
            .expect("a flavor and nova's VG accounted with a tracked source");
        let tracked = host.vgs[0].tracked.as_ref().unwrap();
        assert_eq!(fit.vg, "vms");
        assert_eq!(fit.extent_bytes, EXTENT);
        assert_eq!(fit.corrected_free_bytes, tracked.corrected_free_bytes);
        assert_eq!(
            fit.scheduler,
            SchedulerView {
                free_bytes: tracked.scheduler_free_bytes,
                total_bytes: Some(60 * GIB),
            }
        );
        assert_eq!(
            fit.flavors,
            fit_flavors(
                &flavors,
                tracked.corrected_free_bytes,
                EXTENT,
                &fit.scheduler
            )
        );
        assert_eq!(fit.omitted, 0);

        let without_primary = fit_of(&flavors, "vms", Some(&report), Some(&host), None).unwrap();
        assert_eq!(without_primary.scheduler.total_bytes, None);
        assert_eq!(
            fit_of(&[], "vms", Some(&report), Some(&host), Some(&primary)),
            None
        );
        assert_eq!(
            fit_of(&flavors, "vms", Some(&report), Some(&untracked), None),
            None
        );
        assert_eq!(
            fit_of(&flavors, "other", Some(&report), Some(&host), None),
            None
        );
        assert_eq!(fit_of(&flavors, "vms", None, Some(&host), None), None);
        assert_eq!(fit_of(&flavors, "vms", Some(&report), None, None), None);
    }

    #[test]
    fn configured_flavors_come_first_and_the_largest_listed_fill_the_limit() {
        let configured = [
            named("mine", flavor(30, 0, 0), FlavorOrigin::Configured),
            named("m1.small", flavor(25, 0, 0), FlavorOrigin::Configured),
        ];
        let listed = [
            named("m1.small", flavor(20, 0, 0), FlavorOrigin::Nova),
            named("m1.tiny", flavor(1, 0, 0), FlavorOrigin::Nova),
            named("m1.xlarge", flavor(160, 0, 0), FlavorOrigin::Nova),
            named("m1.large", flavor(80, 0, 0), FlavorOrigin::Nova),
            named("a.large", flavor(80, 0, 0), FlavorOrigin::Nova),
            named("m1.large", flavor(1, 0, 0), FlavorOrigin::Nova),
        ];
        let names = |flavors: &[NamedFlavor]| {
            flavors
                .iter()
                .map(|f| (f.name.clone(), f.origin))
                .collect::<Vec<_>>()
        };
        let (selected, omitted) = select_flavors(&configured, &listed, 4);
        assert_eq!(
            names(&selected),
            vec![
                ("mine".into(), FlavorOrigin::Configured),
                ("m1.small".into(), FlavorOrigin::Configured),
                ("m1.xlarge".into(), FlavorOrigin::Nova),
                ("a.large".into(), FlavorOrigin::Nova),
            ]
        );
        // m1.large (once) and m1.tiny did not fit in the limit.
        assert_eq!(omitted, 2);
        assert_eq!(selected[1].flavor, flavor(25, 0, 0));
        let (all, omitted) = select_flavors(&configured, &listed, 50);
        assert_eq!(all.len(), 6);
        assert_eq!(omitted, 0);
        assert_eq!(all[4].name, "m1.large");
        assert_eq!(all[4].flavor, flavor(80, 0, 0));
        let (none, omitted) = select_flavors(&configured, &listed, 0);
        assert!(none.is_empty());
        assert_eq!(omitted, 4);
    }

    #[test]
    fn the_api_flavor_wins_over_a_domains_flavor_of_the_same_name_and_both_share_the_limit() {
        // What collect passes as listed: the compute API's flavors, then the domains'.
        let listed = [
            named("m1.large", flavor(80, 0, 0), FlavorOrigin::Nova),
            named("m1.large", flavor(40, 0, 0), FlavorOrigin::Libvirt),
            named("m1.db", flavor(40, 1024, 8), FlavorOrigin::Libvirt),
            named("m1.tiny", flavor(1, 0, 0), FlavorOrigin::Libvirt),
        ];
        let configured = [named("mine", flavor(30, 0, 0), FlavorOrigin::Configured)];
        let (selected, omitted) = select_flavors(&configured, &listed, 3);
        let shown: Vec<(&str, FlavorOrigin, u64)> = selected
            .iter()
            .map(|f| (f.name.as_str(), f.origin, f.flavor.root_gb))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("mine", FlavorOrigin::Configured, 30),
                ("m1.large", FlavorOrigin::Nova, 80),
                ("m1.db", FlavorOrigin::Libvirt, 40),
            ]
        );
        assert_eq!(omitted, 1, "m1.tiny");
        // With no configuration at all, the domains' flavors alone.
        let (alone, omitted) = select_flavors(&[], &listed[1..], 50);
        assert_eq!(alone.len(), 3);
        assert_eq!(omitted, 0);
        assert!(alone.iter().all(|f| f.origin == FlavorOrigin::Libvirt));
    }
}
