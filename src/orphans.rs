//! The orphan LVs of nova's VG, each with the reason nova gives for it
//! ([`crate::tracked::orphans`]), and their totals per reason (`nova_lvm_orphan_bytes`,
//! `nova_lvm_orphan_lvs`).
//!
//! Pure: [`orphan_lvs`] takes the orphans the accounting classified (nova-named LVs whose
//! instance the primary tracked source does not place here; no second walk of the extents), and [`OrphanReasons`]
//! sums them per [`OrphanReason`]; the sum over the reasons is the `orphan` owner class's.

use rustc_hash::FxHashMap;

use crate::accounting::{HostAccounting, VgAccounting};
use crate::tracked::orphans::{OrphanReason, OrphanVerdict};

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

/// The orphan LVs of `vg_name` as the accounting classified them
/// ([`VgAccounting::orphans`]), each `unknown` until a reason is known, largest first; `None`
/// when the VG was not accounted or no tracked source told instances from orphans.
pub fn orphan_lvs(host: &HostAccounting, vg_name: &str) -> Option<OrphanReasons> {
    let vg: &VgAccounting = host.vgs.iter().find(|vg| vg.vg == vg_name)?;
    let mut orphans: Vec<OrphanLv> = vg
        .orphans
        .as_ref()?
        .iter()
        .map(|lv| OrphanLv {
            uuid: lv.instance_uuid.clone(),
            name: lv.name.clone(),
            bytes: lv.allocated_bytes,
            verdict: OrphanVerdict::unknown(
                "not looked up: the nova source is off, or --collector.nova.orphan-lookups-per-refresh=0",
            ),
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
    use crate::accounting::account_host;
    use crate::lvm::{Lv, Vg, VgReport};
    use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance, TrackedUsage};
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
        let orphans_of = |report: &VgReport, usage: Option<&TrackedUsage>| {
            let host = account_host(report, &["vms".to_string()], Some("vms"), usage, 100)
                .expect("the figures fit");
            orphan_lvs(&host, "vms")
        };
        assert_eq!(orphans_of(&report, None), None);
        let mut tidy = report.clone();
        tidy.lvs
            .retain(|lv| !lv.name.starts_with('d') && !lv.name.starts_with('e'));
        assert_eq!(
            orphans_of(&tidy, Some(&usage)).map(|o| o.lvs.len()),
            Some(0)
        );
        let mut orphans = orphans_of(&report, Some(&usage)).unwrap();
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
