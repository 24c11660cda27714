//! The orphan LVs of nova's VG, each with the reason nova gives for it
//! ([`crate::tracked::orphans`]), and their totals per reason (`nova_lvm_orphan_bytes`,
//! `nova_lvm_orphan_lvs`).
//!
//! Pure: [`orphan_lvs`] takes the orphans the accounting classified (nova-named LVs whose
//! instance the primary tracked source does not place here; no second walk of the extents), and [`OrphanReasons`]
//! sums them per [`OrphanReason`]; the sum over the reasons is the `orphan` owner class's.
//!
//! An orphan is only as sure as the source that says its instance is not here. A local source
//! (libvirt, file) pointed at a wrong but existing directory answers "no instances", and every
//! instance disk becomes an orphan. [`doubt_local_sources`] flags that case (nova-named LVs in
//! nova's VG, not one instance from the local source) and tells it apart, where placement or nova
//! answered, from the rare real one (every instance deleted, disks leaked): another source that
//! places those instances on this host means the directory is wrong, not that the disks are
//! orphans (`nova_lvm_local_source_suspect`).

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use crate::accounting::drift::{HostAccounting, VgAccounting};
use crate::tracked::orphans::{OrphanReason, OrphanVerdict};
use crate::tracked::{SourceKind, TrackedUsage};

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

    /// The same orphans, each with its verdict from `verdicts` (by instance UUID) where it has
    /// one, else as it was.
    pub fn with_verdicts(&self, verdicts: &HashMap<String, OrphanVerdict>) -> OrphanReasons {
        OrphanReasons {
            vg: self.vg.clone(),
            lvs: self
                .lvs
                .iter()
                .map(|lv| OrphanLv {
                    verdict: verdicts.get(&lv.uuid).unwrap_or(&lv.verdict).clone(),
                    ..lv.clone()
                })
                .collect(),
        }
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

/// A local source (libvirt or file) that lists no instance on this host while nova's VG holds
/// the disks of instances: a wrong directory or file looks exactly like this, so its orphans are
/// not to be believed (and never removed) on its word alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSourceDoubt {
    /// The local source that lists no instance.
    pub source: SourceKind,
    /// nova's VG.
    pub vg: String,
    /// Instances (UUIDs) with nova-named LVs in nova's VG.
    pub instances: u64,
    /// VG bytes those LVs hold.
    pub bytes: u64,
    /// Each other source (placement, nova) that answered on this collection, with how many of
    /// those instances it places on this host.
    pub others: Vec<(SourceKind, u64)>,
}

impl LocalSourceDoubt {
    /// Another source places some of these instances on this host: the local source is
    /// misconfigured, the disks are not orphans.
    pub fn contradicted(&self) -> bool {
        self.others.iter().any(|(_, placed)| *placed > 0)
    }

    /// One sentence for an operator: what is wrong, what the other sources say, what to do.
    /// `reads` is what the local source reads (its directory or file).
    pub fn describe(&self, reads: &str) -> String {
        let mut text = format!(
            "the {} source ({reads}) lists no instance, yet {} holds the disks of {} instance{} ({}): ",
            self.source,
            self.vg,
            self.instances,
            if self.instances == 1 { "" } else { "s" },
            crate::units::gib(self.bytes.min(i64::MAX as u64) as i64),
        );
        if self.contradicted() {
            let placing: Vec<String> = self
                .others
                .iter()
                .filter(|(_, placed)| *placed > 0)
                .map(|(kind, placed)| format!("{kind} places {placed} of them on this host"))
                .collect();
            text.push_str(&placing.join(" and "));
            text.push_str(&format!(
                ", so the {} source reads the wrong place: fix it; these disks are not orphans, remove none",
                self.source
            ));
        } else if self.others.is_empty() {
            text.push_str(&format!(
                "check that it reads the right place; until then every one of them counts as an orphan, and none is to be removed on the {} source's word (enable placement or nova to tell)",
                self.source
            ));
        } else {
            let answered: Vec<&str> = self.others.iter().map(|(kind, _)| kind.as_str()).collect();
            text.push_str(&format!(
                "{} place{} none of them here either, so they may really be leaked; check that the {} source reads the right place and confirm each instance with nova before removing anything",
                answered.join(" and "),
                if answered.len() == 1 { "s" } else { "" },
                self.source
            ));
        }
        text
    }
}

/// A local source (libvirt, file) that lists no instance: the one case [`doubt_local_sources`]
/// looks into.
pub fn is_empty_local(kind: SourceKind, usage: &TrackedUsage) -> bool {
    matches!(kind, SourceKind::Libvirt | SourceKind::File) && usage.instances.is_empty()
}

/// The local sources among `usages` (libvirt, file: each that succeeded) that list no instance
/// while `lv_bytes` (the bytes of nova-named LVs per instance UUID in nova's VG `vg`) is not
/// empty, each with what the other sources in `usages` (placement, nova) say about those UUIDs.
pub fn doubt_local_sources(
    vg: &str,
    lv_bytes: &BTreeMap<String, u64>,
    usages: &[(SourceKind, &TrackedUsage)],
) -> Vec<LocalSourceDoubt> {
    if lv_bytes.is_empty() {
        return Vec::new();
    }
    let is_local = |kind: SourceKind| matches!(kind, SourceKind::Libvirt | SourceKind::File);
    let others: Vec<(SourceKind, u64)> = usages
        .iter()
        .filter(|(kind, _)| !is_local(*kind))
        .map(|(kind, usage)| {
            let placed = usage
                .instances
                .iter()
                .filter(|instance| lv_bytes.contains_key(&instance.uuid.to_ascii_lowercase()))
                .count() as u64;
            (*kind, placed)
        })
        .collect();
    usages
        .iter()
        .filter(|(kind, usage)| is_empty_local(*kind, usage))
        .map(|(kind, _)| LocalSourceDoubt {
            source: *kind,
            vg: vg.to_string(),
            instances: lv_bytes.len() as u64,
            bytes: lv_bytes
                .values()
                .fold(0u64, |sum, bytes| sum.saturating_add(*bytes)),
            others: others.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::drift::account_host;
    use crate::lvm::{Lv, VgReport};
    use crate::tracked::{Flavor, HostDiskSettings, TrackedInstance, TrackedUsage};
    use crate::units::GIB;

    const HERE: &str = "a0000000-0000-4000-8000-000000000001";
    const GONE: &str = "d0000000-0000-4000-8000-000000000004";
    const MOVED: &str = "e0000000-0000-4000-8000-000000000005";

    fn lv(name: &str, bytes: u64) -> Lv {
        crate::lvm::build::linear_lv("vms", name, bytes)
    }

    #[test]
    fn orphans_are_the_accountings_and_their_reasons_add_up() {
        let report = VgReport {
            vgs: vec![crate::lvm::build::vg("vms", 100 * GIB, 80 * GIB)],
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
            let host = account_host(report, &["vms".to_string()], Some("vms"), usage)
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

    fn usage(uuids: &[&str]) -> TrackedUsage {
        TrackedUsage::from_local(
            uuids
                .iter()
                .map(|uuid| TrackedInstance::from_flavor(*uuid, &Flavor::default()))
                .collect(),
            &HostDiskSettings::default(),
        )
    }

    #[test]
    fn a_local_source_with_no_instance_beside_instance_disks_is_doubted() {
        let disks: BTreeMap<String, u64> =
            [(HERE.to_string(), 5 * GIB), (GONE.to_string(), 11 * GIB)].into();
        let empty = usage(&[]);
        let some = usage(&[HERE]);
        let placement = usage(&[&HERE.to_ascii_uppercase(), MOVED]);
        let elsewhere = usage(&[MOVED]);
        // A local source that lists instances, or an empty one beside no instance disk, is fine.
        assert!(doubt_local_sources("vms", &disks, &[(SourceKind::Libvirt, &some)]).is_empty());
        assert!(
            doubt_local_sources("vms", &BTreeMap::new(), &[(SourceKind::Libvirt, &empty)])
                .is_empty()
        );
        // No other source: doubted, and said so without calling the disks orphans to remove.
        let alone = doubt_local_sources("vms", &disks, &[(SourceKind::Libvirt, &empty)]);
        assert_eq!(
            alone,
            [LocalSourceDoubt {
                source: SourceKind::Libvirt,
                vg: "vms".into(),
                instances: 2,
                bytes: 16 * GIB,
                others: vec![],
            }]
        );
        assert!(!alone[0].contradicted());
        let text = alone[0].describe("/wrong/qemu");
        assert!(
            text.contains("libvirt source (/wrong/qemu) lists no instance"),
            "{text}"
        );
        assert!(text.contains("disks of 2 instances (16.00 GiB)"), "{text}");
        assert!(text.contains("none is to be removed"), "{text}");
        // Placement allocates to one of them here (case aside): the directory is wrong.
        let contradicted = doubt_local_sources(
            "vms",
            &disks,
            &[
                (SourceKind::Placement, &placement),
                (SourceKind::File, &empty),
            ],
        );
        assert_eq!(contradicted[0].source, SourceKind::File);
        assert_eq!(contradicted[0].others, [(SourceKind::Placement, 1)]);
        assert!(contradicted[0].contradicted());
        let text = contradicted[0].describe("/etc/instances.json");
        assert!(
            text.contains(
                "placement places 1 of them on this host, so the file source reads the wrong place"
            ),
            "{text}"
        );
        assert!(text.contains("not orphans, remove none"), "{text}");
        // Placement and nova place none of them here: maybe leaked, still confirmed first.
        let agreed = doubt_local_sources(
            "vms",
            &disks,
            &[
                (SourceKind::Libvirt, &empty),
                (SourceKind::Placement, &elsewhere),
                (SourceKind::Nova, &empty),
            ],
        );
        assert!(!agreed[0].contradicted());
        let text = agreed[0].describe("/var/lib/libvirt/qemu");
        assert!(
            text.contains("placement and nova place none of them here either"),
            "{text}"
        );
        assert!(
            text.contains("confirm each instance with nova before removing"),
            "{text}"
        );
    }
}
