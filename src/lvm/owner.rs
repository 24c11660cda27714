//! Who owns an LV: nova's and cinder's naming rules, and the attribution of VG extents to the
//! visible LVs (hidden sub-LVs folded into their parent, thin volumes into their pool).

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Lv, Vg};

/// The owner class of an LV (label `owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// `<uuid>_<disk>` where uuid is an instance the tracked source places on this host.
    Instance,
    /// `<uuid>_<disk>` whose uuid is not an instance on this host (leaked disk).
    Orphan,
    /// Cinder's LVM driver: `volume-<uuid>`, its snapshots, its thin pool.
    Cinder,
    /// Anything else.
    Foreign,
    /// Nova's naming, but no tracked source succeeded so instance vs orphan is unknown.
    /// Never exported as an owner class.
    Unclassified,
}

impl Owner {
    /// The `owner` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Instance => "instance",
            Owner::Orphan => "orphan",
            Owner::Cinder => "cinder",
            Owner::Foreign => "foreign",
            Owner::Unclassified => "unclassified",
        }
    }
}

/// One visible LV with the VG extents attributed to it.
#[derive(Debug, Clone, PartialEq)]
pub struct LvAllocation {
    /// The LV name.
    pub name: String,
    /// Its owner class.
    pub owner: Owner,
    /// For nova-named LVs, the instance UUID parsed from the name.
    pub instance_uuid: Option<String>,
    /// Bytes of VG extents this LV holds, including its hidden sub-LVs. 0 for thin volumes.
    pub allocated_bytes: u64,
    /// For thin pools, data_percent / 100.
    pub thin_pool_data_used_ratio: Option<f64>,
    /// For thin pools, metadata_percent / 100.
    pub thin_pool_metadata_used_ratio: Option<f64>,
    /// The LV's creation time (`lv_time`), seconds since the epoch, when LVM has one.
    pub creation_unix: Option<i64>,
    /// True for thin volumes (virtual size, extents counted in their pool).
    pub thin_volume: bool,
}

/// What an LV's name says about who created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LvName<'a> {
    /// Nova's libvirt LVM image backend: `<instance uuid>_<disk name>` (disk name escaped, `_`
    /// doubled), e.g. `..._disk`, `..._disk.local`, `..._disk.swap`, `..._disk.eph0`,
    /// `..._disk.rescue`. A config drive is a file with that backend (the driver creates it
    /// `raw`), so `..._disk.config` is nova's by its name only: made by hand.
    Nova {
        /// The instance UUID, lower case.
        instance_uuid: String,
        /// The (escaped) disk name after the `_`.
        disk: &'a str,
    },
    /// Cinder's LVM driver: `volume-<uuid>`, snapshots `_snapshot-<uuid>`, temporary clone
    /// snapshots `clone-snap-<uuid>`.
    Cinder,
    /// Anything else.
    Other,
}

/// Cinder's name prefixes, each followed by a volume or snapshot UUID.
const CINDER_PREFIXES: [&str; 3] = ["volume-", "_snapshot-", "clone-snap-"];

/// Classifies an LV by name. Ownership is decided on a whole 36-character UUID at the start of
/// the name followed by `_` (nova cleans up an instance's disks by that prefix), never on a
/// substring: `backup-<uuid>_disk` is not nova's.
pub fn classify_name(name: &str) -> LvName<'_> {
    if let Some((uuid, disk)) = split_nova_name(name) {
        return LvName::Nova {
            instance_uuid: uuid.to_ascii_lowercase(),
            disk,
        };
    }
    let cinder = CINDER_PREFIXES
        .iter()
        .any(|prefix| name.strip_prefix(prefix).is_some_and(is_uuid));
    if cinder {
        LvName::Cinder
    } else {
        LvName::Other
    }
}

fn split_nova_name(name: &str) -> Option<(&str, &str)> {
    let uuid = name.get(..36)?;
    let disk = name.get(36..)?.strip_prefix('_')?;
    (is_uuid(uuid) && !disk.is_empty()).then_some((uuid, disk))
}

/// True for a canonical 8-4-4-4-12 hexadecimal UUID (either case).
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Segment types whose LV holds no extents itself: containers whose extents live in hidden
/// sub-LVs (thin and cache pools, raid, mirror, vdo, writecache, integrity), thin volumes
/// (virtual size only) and the extent-less `error`/`zero` targets.
fn holds_no_extents(segtype: &str) -> bool {
    matches!(
        segtype,
        "thin-pool"
            | "thin"
            | "cache"
            | "cache-pool"
            | "mirror"
            | "vdo"
            | "vdo-pool"
            | "writecache"
            | "integrity"
            | "error"
            | "zero"
    ) || segtype.starts_with("raid")
}

fn is_thin_volume(lv: &Lv) -> bool {
    lv.segtype == "thin" || lv.attr.starts_with('V')
}

fn is_pool(lv: &Lv) -> bool {
    matches!(lv.segtype.as_str(), "thin-pool" | "cache-pool")
}

/// Bytes of VG extents the LV holds itself (not counting sub-LVs).
pub(crate) fn own_extent_bytes(lv: &Lv) -> u64 {
    if holds_no_extents(&lv.segtype) || is_thin_volume(lv) {
        0
    } else {
        lv.size_bytes
    }
}

/// The visible LV that `lv`'s extents belong to: itself when visible, else the first visible
/// ancestor through `lv_parent`; a parentless hidden pool metadata spare belongs to the VG's
/// first pool. `None` when no visible owner is found (the LV then stands on its own).
fn visible_owner<'a>(
    lv: &'a Lv,
    by_name: &FxHashMap<&str, &'a Lv>,
    first_pool: Option<&'a Lv>,
) -> Option<&'a Lv> {
    let mut current = lv;
    // Nesting is shallow (e.g. raid images under a thin pool's data LV); the bound guards
    // against a malformed report with a parent cycle.
    for _ in 0..8 {
        if !current.hidden {
            return Some(current);
        }
        let parent = if current.parent.is_empty() {
            if current.name.ends_with("_pmspare") {
                first_pool
            } else {
                None
            }
        } else {
            by_name.get(current.parent.as_str()).copied()
        };
        current = parent?;
    }
    None
}

/// Attributes the extents of `vg` to its visible LVs. `tracked`, when known, is the set of
/// instance UUIDs (lower case) that the primary tracked source places on this host.
///
/// Hidden sub-LVs (`[pool_tdata]`, `[pool_tmeta]`, raid images, ...) are folded into the visible
/// LV they belong to, the pool metadata spare into the VG's first pool; thin volumes hold nothing
/// (their data is in the pool). With a complete report, the allocations plus `vg_free` add up
/// to `vg_size` exactly. [`crate::lvm::report::parse`] refuses a report whose LVs hold more
/// extents than their VG, so the sums here stay below `vg_size`; they saturate rather than wrap
/// on reports built otherwise.
pub fn attribute(vg: &Vg, lvs: &[&Lv], tracked: Option<&FxHashSet<&str>>) -> Vec<LvAllocation> {
    let by_name: FxHashMap<&str, &Lv> = lvs.iter().map(|lv| (lv.name.as_str(), *lv)).collect();
    let first_pool = lvs
        .iter()
        .copied()
        .filter(|lv| is_pool(lv) && !lv.hidden)
        .min_by(|a, b| a.name.cmp(&b.name));

    let mut order: Vec<&str> = Vec::new();
    let mut bytes: FxHashMap<&str, u64> = FxHashMap::default();
    for lv in lvs {
        let owner = visible_owner(lv, &by_name, first_pool).unwrap_or(lv);
        let entry = bytes.entry(owner.name.as_str()).or_insert_with(|| {
            order.push(owner.name.as_str());
            0
        });
        *entry = entry.saturating_add(own_extent_bytes(lv));
    }

    order
        .into_iter()
        .filter_map(|name| {
            let lv = by_name.get(name)?;
            let (owner, instance_uuid) = owner_of(vg, lv, lvs, tracked);
            Some(LvAllocation {
                name: name.to_string(),
                owner,
                instance_uuid,
                allocated_bytes: bytes.get(name).copied().unwrap_or(0),
                thin_pool_data_used_ratio: (lv.segtype == "thin-pool")
                    .then_some(lv.data_used_ratio)
                    .flatten(),
                thin_pool_metadata_used_ratio: (lv.segtype == "thin-pool")
                    .then_some(lv.metadata_used_ratio)
                    .flatten(),
                creation_unix: lv.creation_unix,
                thin_volume: is_thin_volume(lv),
            })
        })
        .collect()
}

/// The owner class of a visible LV (and the instance UUID for nova's names).
fn owner_of(
    vg: &Vg,
    lv: &Lv,
    lvs: &[&Lv],
    tracked: Option<&FxHashSet<&str>>,
) -> (Owner, Option<String>) {
    if is_pool(lv) {
        // Cinder's LVM driver keeps thin volumes in `<vg>-pool`; any other pool is cinder's
        // only when every thin volume in it is.
        let cinder_default = lv.name == format!("{}-pool", vg.name);
        let mut members = lvs
            .iter()
            .filter(|member| member.pool_lv == lv.name && is_thin_volume(member))
            .peekable();
        let all_cinder = members.peek().is_some()
            && members.all(|member| classify_name(&member.name) == LvName::Cinder);
        let owner = if cinder_default || all_cinder {
            Owner::Cinder
        } else {
            Owner::Foreign
        };
        return (owner, None);
    }
    match classify_name(&lv.name) {
        LvName::Nova { instance_uuid, .. } => {
            let owner = match tracked {
                None => Owner::Unclassified,
                Some(uuids) if uuids.contains(instance_uuid.as_str()) => Owner::Instance,
                Some(_) => Owner::Orphan,
            };
            (owner, Some(instance_uuid))
        }
        LvName::Cinder => (Owner::Cinder, None),
        LvName::Other => (Owner::Foreign, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_A: &str = "3f5e6c1a-1111-2222-3333-444455556666";
    const UUID_GONE: &str = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6";
    use crate::units::{GIB, MIB};

    fn lv(name: &str, segtype: &str, size_bytes: u64) -> Lv {
        Lv {
            segtype: segtype.into(),
            ..crate::lvm::build::linear_lv("vms-group", name, size_bytes)
        }
    }

    fn hidden(name: &str, parent: &str, size_bytes: u64) -> Lv {
        Lv {
            hidden: true,
            parent: parent.into(),
            ..lv(name, "linear", size_bytes)
        }
    }

    fn thin(name: &str, pool: &str, virtual_bytes: u64) -> Lv {
        Lv {
            attr: "Vwi---tz--".into(),
            pool_lv: pool.into(),
            data_used_ratio: Some(0.1),
            ..lv(name, "thin", virtual_bytes)
        }
    }

    fn vg(size_bytes: u64, free_bytes: u64) -> Vg {
        crate::lvm::build::vg("vms-group", size_bytes, free_bytes)
    }

    fn tracked(uuids: &[&'static str]) -> FxHashSet<&'static str> {
        uuids.iter().copied().collect()
    }

    fn find<'a>(allocations: &'a [LvAllocation], name: &str) -> &'a LvAllocation {
        allocations
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name} not in {allocations:?}"))
    }

    #[test]
    fn every_disk_name_of_novas_lvm_backend_is_novas() {
        for disk in [
            "disk",
            "disk.local",
            "disk.swap",
            "disk.eph0",
            "disk.eph1",
            "disk.config",
            "disk.rescue",
            "disk.config.rescue",
            "disk__with__escaped__underscores",
        ] {
            let name = format!("{UUID_A}_{disk}");
            assert_eq!(
                classify_name(&name),
                LvName::Nova {
                    instance_uuid: UUID_A.into(),
                    disk
                },
                "{name}"
            );
        }
    }

    #[test]
    fn the_uuid_is_matched_whole_at_the_start_never_as_a_substring() {
        for name in [
            format!("backup-{UUID_A}_disk"),
            format!("{UUID_A}_"),
            UUID_A.to_string(),
            format!("{}_disk", &UUID_A[..35]),
            format!("{}x_disk", &UUID_A[..35]),
            "3f5e6c1a_1111-2222-3333-444455556666_disk".to_string(),
            "someone_elses_lv".to_string(),
            String::new(),
            "é".repeat(30),
        ] {
            assert_eq!(classify_name(&name), LvName::Other, "{name}");
        }
    }

    #[test]
    fn an_upper_case_uuid_is_lower_cased_for_matching() {
        let name = format!("{}_disk", UUID_A.to_ascii_uppercase());
        assert_eq!(
            classify_name(&name),
            LvName::Nova {
                instance_uuid: UUID_A.into(),
                disk: "disk"
            }
        );
    }

    #[test]
    fn cinders_volumes_and_snapshots_are_cinders() {
        for name in [
            format!("volume-{UUID_A}"),
            format!("_snapshot-{UUID_A}"),
            format!("clone-snap-{UUID_A}"),
        ] {
            assert_eq!(classify_name(&name), LvName::Cinder, "{name}");
        }
        for name in ["volume-1", "volume-", "snapshot-x", "volumes"] {
            assert_eq!(classify_name(name), LvName::Other, "{name}");
        }
    }

    #[test]
    fn instance_orphan_cinder_and_foreign_lvs_and_the_size_invariant() {
        let lvs = [
            lv(&format!("{UUID_A}_disk"), "linear", 10 * GIB),
            lv(&format!("{UUID_A}_disk.swap"), "linear", 512 * MIB),
            lv(&format!("{UUID_GONE}_disk"), "linear", 2 * GIB),
            lv(&format!("volume-{UUID_GONE}"), "linear", GIB),
            lv("someone_elses_lv", "linear", 100 * MIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let used = lvs.iter().map(|l| l.size_bytes).sum::<u64>();
        let vg = vg(20 * GIB, 20 * GIB - used);
        let allocations = attribute(&vg, &refs, Some(&tracked(&[UUID_A])));
        let owners: Vec<(Owner, Option<&str>)> = allocations
            .iter()
            .map(|a| (a.owner, a.instance_uuid.as_deref()))
            .collect();
        assert_eq!(
            owners,
            vec![
                (Owner::Instance, Some(UUID_A)),
                (Owner::Instance, Some(UUID_A)),
                (Owner::Orphan, Some(UUID_GONE)),
                (Owner::Cinder, None),
                (Owner::Foreign, None),
            ]
        );
        let allocated: u64 = allocations.iter().map(|a| a.allocated_bytes).sum();
        assert_eq!(allocated + vg.free_bytes, vg.size_bytes);
    }

    #[test]
    fn without_a_tracked_source_novas_lvs_are_unclassified() {
        let lvs = [lv(&format!("{UUID_A}_disk"), "linear", GIB)];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(&vg(20 * GIB, 19 * GIB), &refs, None);
        assert_eq!(allocations[0].owner, Owner::Unclassified);
        assert_eq!(allocations[0].instance_uuid.as_deref(), Some(UUID_A));
    }

    /// Cinder's thin pool as `lvs -a` shows it: the pool's visible LV holds nothing, its hidden
    /// data and metadata LVs and the pool metadata spare hold the extents, and thin volumes have
    /// a virtual size only.
    fn cinder_thin_pool() -> Vec<Lv> {
        let mut pool = lv("vms-group-pool", "thin-pool", 8 * GIB);
        pool.attr = "twi---tz--".into();
        pool.data_used_ratio = Some(0.25);
        vec![
            pool,
            hidden("vms-group-pool_tdata", "vms-group-pool", 8 * GIB),
            hidden("vms-group-pool_tmeta", "vms-group-pool", 8 * MIB),
            hidden("lvol0_pmspare", "", 8 * MIB),
            thin(&format!("volume-{UUID_A}"), "vms-group-pool", 50 * GIB),
            thin(&format!("volume-{UUID_GONE}"), "vms-group-pool", 50 * GIB),
        ]
    }

    #[test]
    fn a_thin_pool_holds_its_data_metadata_and_spare_and_thin_volumes_hold_nothing() {
        let lvs = cinder_thin_pool();
        let refs: Vec<&Lv> = lvs.iter().collect();
        let used = 8 * GIB + 16 * MIB;
        let vg = vg(20 * GIB, 20 * GIB - used);
        let allocations = attribute(&vg, &refs, Some(&tracked(&[])));
        assert_eq!(allocations.len(), 3, "{allocations:?}");
        let pool = find(&allocations, "vms-group-pool");
        assert_eq!(pool.owner, Owner::Cinder);
        assert_eq!(pool.allocated_bytes, used);
        assert_eq!(pool.thin_pool_data_used_ratio, Some(0.25));
        assert!(!pool.thin_volume);
        let volume = find(&allocations, &format!("volume-{UUID_A}"));
        assert_eq!(volume.owner, Owner::Cinder);
        assert_eq!(volume.allocated_bytes, 0);
        assert!(volume.thin_volume);
        assert_eq!(volume.thin_pool_data_used_ratio, None);
        let allocated: u64 = allocations.iter().map(|a| a.allocated_bytes).sum();
        assert_eq!(allocated + vg.free_bytes, vg.size_bytes);
    }

    #[test]
    fn a_pool_of_someone_else_is_foreign_unless_all_its_volumes_are_cinders() {
        let mut pool = lv("mypool", "thin-pool", GIB);
        pool.attr = "twi---tz--".into();
        let lvs = [
            pool.clone(),
            hidden("mypool_tdata", "mypool", GIB),
            thin("scratch", "mypool", 10 * GIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(&vg(20 * GIB, 19 * GIB), &refs, Some(&tracked(&[])));
        assert_eq!(find(&allocations, "mypool").owner, Owner::Foreign);
        assert_eq!(find(&allocations, "scratch").owner, Owner::Foreign);

        let lvs = [
            pool,
            hidden("mypool_tdata", "mypool", GIB),
            thin(&format!("volume-{UUID_A}"), "mypool", 10 * GIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(&vg(20 * GIB, 19 * GIB), &refs, Some(&tracked(&[])));
        assert_eq!(find(&allocations, "mypool").owner, Owner::Cinder);
    }

    #[test]
    fn raid_images_and_metadata_are_folded_into_the_raid_lv() {
        let lvs = [
            lv("mirrored", "raid1", GIB),
            hidden("mirrored_rimage_0", "mirrored", GIB),
            hidden("mirrored_rimage_1", "mirrored", GIB),
            hidden("mirrored_rmeta_0", "mirrored", 4 * MIB),
            hidden("mirrored_rmeta_1", "mirrored", 4 * MIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(
            &vg(20 * GIB, 18 * GIB - 8 * MIB),
            &refs,
            Some(&tracked(&[])),
        );
        assert_eq!(allocations.len(), 1);
        assert_eq!(allocations[0].allocated_bytes, 2 * GIB + 8 * MIB);
        assert_eq!(allocations[0].owner, Owner::Foreign);
    }

    #[test]
    fn nested_sub_lvs_reach_the_visible_lv() {
        let mut pool = lv("vms-group-pool", "thin-pool", GIB);
        pool.attr = "twi---tz--".into();
        let lvs = [
            pool,
            Lv {
                segtype: "raid1".into(),
                ..hidden("vms-group-pool_tdata", "vms-group-pool", GIB)
            },
            hidden("vms-group-pool_tdata_rimage_0", "vms-group-pool_tdata", GIB),
            hidden("vms-group-pool_tdata_rimage_1", "vms-group-pool_tdata", GIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(&vg(20 * GIB, 18 * GIB), &refs, Some(&tracked(&[])));
        assert_eq!(allocations.len(), 1);
        assert_eq!(allocations[0].allocated_bytes, 2 * GIB);
    }

    #[test]
    fn orphaned_hidden_lvs_and_parent_cycles_stand_on_their_own() {
        let lvs = [
            hidden("lvol0_pmspare", "", 8 * MIB),
            hidden("loop_a", "loop_b", MIB),
            hidden("loop_b", "loop_a", MIB),
        ];
        let refs: Vec<&Lv> = lvs.iter().collect();
        let allocations = attribute(
            &vg(20 * GIB, 20 * GIB - 10 * MIB),
            &refs,
            Some(&tracked(&[])),
        );
        let total: u64 = allocations.iter().map(|a| a.allocated_bytes).sum();
        assert_eq!(total, 10 * MIB);
        assert!(allocations.iter().all(|a| a.owner == Owner::Foreign));
    }
}
