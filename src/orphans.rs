//! The orphan LVs of nova's VG, each with the reason nova gives for it
//! ([`crate::tracked::orphans`]), and their totals per reason (`nova_lvm_orphan_bytes`,
//! `nova_lvm_orphan_lvs`).
//!
//! Pure: [`orphan_lvs`] picks the orphans exactly as the accounting classifies them (nova-named
//! LVs whose instance the primary tracked source does not place here), and [`OrphanReasons`]
//! sums them per [`OrphanReason`]; the sum over the reasons is the `orphan` owner class's.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::lvm::owner::{attribute, classify_name, LvName, Owner};
use crate::lvm::{Lv, VgReport};
use crate::tracked::orphans::{OrphanReason, OrphanVerdict};
use crate::tracked::TrackedUsage;

/// One orphan LV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanLv {
    /// LV name.
    pub name: String,
    /// The instance UUID of its name, lower case.
    pub uuid: String,
    /// VG bytes it holds (0 for a thin volume: its extents are its pool's).
    pub bytes: u64,
    /// Why it is an orphan.
    pub verdict: OrphanVerdict,
}

/// The orphans of nova's VG with their reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanReasons {
    /// nova's VG.
    pub vg: String,
    /// Every orphan LV, largest first.
    pub lvs: Vec<OrphanLv>,
}

impl OrphanReasons {
    /// LVs and bytes of the orphans with `reason`.
    pub fn totals(&self, reason: OrphanReason) -> (u64, u64) {
        self.lvs
            .iter()
            .filter(|lv| lv.verdict.reason == reason)
            .fold((0, 0), |(lvs, bytes), lv| {
                (lvs + 1, bytes.saturating_add(lv.bytes))
            })
    }

    /// The orphans' instance UUIDs, each once, with the bytes of its LVs (largest first).
    pub fn uuids(&self) -> Vec<(String, u64)> {
        let mut by_uuid: FxHashMap<&str, u64> = FxHashMap::default();
        for lv in &self.lvs {
            let bytes = by_uuid.entry(lv.uuid.as_str()).or_insert(0);
            *bytes = bytes.saturating_add(lv.bytes);
        }
        let mut uuids: Vec<(String, u64)> = by_uuid
            .into_iter()
            .map(|(uuid, bytes)| (uuid.to_string(), bytes))
            .collect();
        uuids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        uuids
    }
}

/// The orphan LVs of `vg` as the accounting classifies them with `tracked` (the primary
/// source's instances), each `unknown` until a reason is known; `None` when the VG is not in the
/// report or no tracked source tells instances from orphans.
pub fn orphan_lvs(
    report: &VgReport,
    vg_name: &str,
    tracked: Option<&TrackedUsage>,
) -> Option<OrphanReasons> {
    let tracked = tracked?;
    let vg = report.vg(vg_name)?;
    let uuids: FxHashSet<&str> = tracked.instances.iter().map(|i| i.uuid.as_str()).collect();
    let lvs: Vec<&Lv> = report.lvs_of(vg_name).collect();
    // The usual host has no orphan: a pass over the names spares it the extent walk.
    let untracked_nova_name = |lv: &&Lv| match classify_name(&lv.name) {
        LvName::Nova { instance_uuid, .. } => !uuids.contains(instance_uuid.as_str()),
        _ => false,
    };
    if !lvs.iter().any(untracked_nova_name) {
        return Some(OrphanReasons {
            vg: vg_name.to_string(),
            lvs: Vec::new(),
        });
    }
    let mut orphans: Vec<OrphanLv> = attribute(vg, &lvs, Some(&uuids))
        .into_iter()
        .filter(|lv| lv.owner == Owner::Orphan)
        .filter_map(|lv| {
            Some(OrphanLv {
                uuid: lv.instance_uuid?,
                name: lv.name,
                bytes: lv.allocated_bytes,
                verdict: OrphanVerdict::unknown(
                    "not looked up: the nova source is off, or --collector.nova.orphan-lookups-per-refresh=0",
                ),
            })
        })
        .collect();
    orphans.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    Some(OrphanReasons {
        vg: vg_name.to_string(),
        lvs: orphans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::Vg;
    use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance};
    use crate::units::GIB;

    const HERE: &str = "a0000000-0000-4000-8000-000000000001";
    const GONE: &str = "d0000000-0000-4000-8000-000000000004";
    const MOVED: &str = "e0000000-0000-4000-8000-000000000005";

    fn lv(name: &str, bytes: u64) -> Lv {
        Lv {
            vg: "vms".into(),
            name: name.into(),
            hidden: false,
            size_bytes: bytes,
            attr: "-wi-a-----".into(),
            segtype: "linear".into(),
            pool_lv: String::new(),
            parent: String::new(),
            data_used_ratio: None,
            metadata_used_ratio: None,
            creation_unix: None,
            tags: vec![],
        }
    }

    #[test]
    fn orphans_are_the_accountings_and_their_reasons_add_up() {
        let report = VgReport {
            vgs: vec![Vg {
                name: "vms".into(),
                size_bytes: 100 * GIB,
                free_bytes: 80 * GIB,
                extent_size_bytes: 4 << 20,
            }],
            lvs: vec![
                lv(&format!("{HERE}_disk"), 5 * GIB),
                lv(&format!("{GONE}_disk"), 10 * GIB),
                lv(&format!("{GONE}_disk.local"), GIB),
                lv(&format!("{MOVED}_disk"), 3 * GIB),
                lv("scratch", GIB),
            ],
        };
        let usage = TrackedUsage::from_local(
            vec![TrackedInstance::from_flavor(
                HERE,
                &Flavor {
                    root_gb: 5,
                    ..Flavor::default()
                },
            )],
            &HostDiskSettings::default(),
        );
        assert_eq!(orphan_lvs(&report, "vms", None), None);
        let mut tidy = report.clone();
        tidy.lvs
            .retain(|lv| !lv.name.starts_with('d') && !lv.name.starts_with('e'));
        assert_eq!(
            orphan_lvs(&tidy, "vms", Some(&usage)).map(|o| o.lvs.len()),
            Some(0)
        );
        let mut orphans = orphan_lvs(&report, "vms", Some(&usage)).unwrap();
        let names: Vec<&str> = orphans.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("{GONE}_disk"),
                format!("{MOVED}_disk"),
                format!("{GONE}_disk.local")
            ]
        );
        assert_eq!(
            orphans.uuids(),
            [(GONE.to_string(), 11 * GIB), (MOVED.to_string(), 3 * GIB)]
        );
        assert_eq!(orphans.totals(OrphanReason::Unknown), (3, 14 * GIB));
        for lv in orphans.lvs.iter_mut().filter(|l| l.uuid == GONE) {
            lv.verdict.reason = OrphanReason::Deleted;
        }
        assert_eq!(orphans.totals(OrphanReason::Deleted), (2, 11 * GIB));
        assert_eq!(orphans.totals(OrphanReason::Unknown), (1, 3 * GIB));
        assert_eq!(orphans.totals(OrphanReason::Here), (0, 0));
    }
}
