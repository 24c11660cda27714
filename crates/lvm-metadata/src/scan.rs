//! Finding a VG's PVs without LVM: the grouping of scanned PV labels into VGs, and which block
//! devices are worth scanning. Pure functions; the reads are [`crate::device::scan_device`] and
//! [`crate::device::block_devices`].
//!
//! Where `lvm` cannot run (a container given only the PV devices, or `--collector.lvm.devices`),
//! the PVs are found as LVM's own label scan finds them: each device's label gives its PV UUID,
//! the metadata text on it names the VG and lists the UUIDs of every PV of the VG
//! (`physical_volumes { pvN { id = ... } }`). A VG is read only when every PV its newest
//! metadata lists was found, each on exactly one device: a missing or duplicated PV is an error
//! naming the UUIDs, never a partial VG.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::text::{ConfigTree, Value};
use crate::MetadataError;

/// What the metadata text on a PV says of its VG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgIdentity {
    /// The VG's name.
    pub name: String,
    /// The VG's UUID (`id`), without dashes.
    pub id: String,
    /// The text's `seqno`.
    pub seqno: u64,
    /// The UUIDs of the VG's PVs, without dashes, in the text's order.
    pub pv_uuids: Vec<String>,
}

/// One PV of a VG: its device and UUID, as a fullreport's `pv` sub-report gives them (the
/// device LVM chose: its filters, devices file and multipath choice decide) or as [`group`]
/// assembles them from a label scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvRow {
    /// The VG the PV belongs to.
    pub vg: String,
    /// `pv_name`: the device path LVM read.
    pub device: String,
    /// `pv_uuid` without LVM's dashes, as the PV label stores it.
    pub uuid: String,
}

/// One device whose LVM label was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPv {
    /// The device read.
    pub device: PathBuf,
    /// The label's PV UUID, without dashes.
    pub pv_uuid: String,
    /// The VG named by the newest metadata text on the device; `None` for a PV without a
    /// metadata area (`--metadatacopies 0`), in no VG, or whose text could not be read: another
    /// PV's metadata may still list it.
    pub vg: Option<VgIdentity>,
    /// Why a metadata text on the device could not be read or parsed, when one could not.
    pub metadata_error: Option<MetadataError>,
}

/// Why the PVs of a VG could not be assembled from a scan. Messages hold names, UUIDs and
/// device paths only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// No scanned device holds metadata of the VG.
    #[error("no scanned device holds LVM metadata of vg {vg:?}")]
    NotFound {
        /// The VG.
        vg: String,
    },
    /// PVs the VG's metadata lists were not among the scanned devices.
    #[error("vg {vg:?} is incomplete: its metadata lists PV UUID(s) {} that no scanned device carries", uuids.join(", "))]
    MissingPvs {
        /// The VG.
        vg: String,
        /// The missing PVs' UUIDs, without dashes.
        uuids: Vec<String>,
    },
    /// One PV UUID on several devices (clones, or multipath paths read one by one).
    #[error("vg {vg:?}: PV UUID {uuid} is on more than one device ({})", devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))]
    DuplicatePv {
        /// The VG.
        vg: String,
        /// The duplicated PV UUID.
        uuid: String,
        /// The devices that carry it.
        devices: Vec<PathBuf>,
    },
    /// No readable metadata names the VG, and the metadata of some scanned PVs could not be
    /// read or parsed: the VG may be on them.
    #[error("no scanned device holds readable LVM metadata of vg {vg:?}; the metadata of {} device(s) could not be read: {}", devices.len(), devices.iter().map(|(d, e)| format!("{}: {e}", d.display())).collect::<Vec<_>>().join("; "))]
    UnreadableMetadata {
        /// The VG.
        vg: String,
        /// Each scanned PV whose metadata could not be read, with why.
        devices: Vec<(PathBuf, MetadataError)>,
    },
    /// Two different VGs (different VG UUIDs) carry the name.
    #[error("two different VGs are named {vg:?} (VG UUIDs {})", ids.join(", "))]
    TwoVgs {
        /// The name.
        vg: String,
        /// Their VG UUIDs.
        ids: Vec<String>,
    },
}

/// `uuid` without LVM's dashes, as labels store it.
fn undashed(uuid: &str) -> String {
    uuid.chars().filter(|c| *c != '-').collect()
}

/// The VG a parsed metadata text describes: its name (the text's one top-level section), UUID,
/// `seqno` and the UUIDs of its PVs. `None` when the text lacks any of them.
pub fn vg_identity(tree: &ConfigTree) -> Option<VgIdentity> {
    let (name, vg) = tree.root.sections().next()?;
    fn text(section: &crate::text::ConfigSection<'_>, key: &str) -> Option<String> {
        match section.value(key) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        }
    }
    let seqno = match vg.value("seqno") {
        Some(Value::Int(n)) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    let pv_uuids = vg
        .section("physical_volumes")?
        .sections()
        .map(|(_, pv)| text(pv, "id").map(|id| undashed(&id)))
        .collect::<Option<Vec<_>>>()?;
    Some(VgIdentity {
        name: name.to_string(),
        id: undashed(&text(vg, "id")?),
        seqno,
        pv_uuids,
    })
}

/// The PVs of `vg` among the `scanned` devices, in the order its newest metadata lists them,
/// as the rows `lvm fullreport` would give. Fails unless every listed PV is on exactly one
/// scanned device and the name belongs to one VG.
pub fn group(vg: &str, scanned: &[ScannedPv]) -> Result<Vec<PvRow>, ScanError> {
    let copies: Vec<&VgIdentity> = scanned
        .iter()
        .filter_map(|pv| pv.vg.as_ref())
        .filter(|identity| identity.name == vg)
        .collect();
    let ids: BTreeSet<&str> = copies.iter().map(|c| c.id.as_str()).collect();
    if ids.len() > 1 {
        return Err(ScanError::TwoVgs {
            vg: vg.to_string(),
            ids: ids.into_iter().map(str::to_string).collect(),
        });
    }
    let Some(newest) = copies.iter().max_by_key(|c| c.seqno) else {
        let devices: Vec<(PathBuf, MetadataError)> = scanned
            .iter()
            .filter(|pv| pv.vg.is_none())
            .filter_map(|pv| Some((pv.device.clone(), pv.metadata_error.clone()?)))
            .collect();
        if devices.is_empty() {
            return Err(ScanError::NotFound { vg: vg.to_string() });
        }
        return Err(ScanError::UnreadableMetadata {
            vg: vg.to_string(),
            devices,
        });
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for uuid in &newest.pv_uuids {
        let devices: BTreeSet<&PathBuf> = scanned
            .iter()
            .filter(|pv| &pv.pv_uuid == uuid)
            .map(|pv| &pv.device)
            .collect();
        match devices.len() {
            0 => missing.push(uuid.clone()),
            1 => rows.push(PvRow {
                vg: vg.to_string(),
                device: devices
                    .into_iter()
                    .next()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                uuid: uuid.clone(),
            }),
            _ => {
                return Err(ScanError::DuplicatePv {
                    vg: vg.to_string(),
                    uuid: uuid.clone(),
                    devices: devices.into_iter().cloned().collect(),
                })
            }
        }
    }
    if !missing.is_empty() {
        return Err(ScanError::MissingPvs {
            vg: vg.to_string(),
            uuids: missing,
        });
    }
    Ok(rows)
}

/// What `/sys/class/block/NAME` says of one block device, as far as the scan cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockDeviceInfo {
    /// The kernel's name (`sda1`, `loop3`, `dm-2`); the device is `/dev/NAME`.
    pub name: String,
    /// Its size in 512-byte sectors (`size`).
    pub size_sectors: u64,
    /// The device-mapper UUID (`dm/uuid`) of a device-mapper device.
    pub dm_uuid: Option<String>,
    /// The device-mapper UUIDs of the devices holding it (`holders/*/dm/uuid`).
    pub holder_dm_uuids: Vec<String>,
}

/// True when the scan reads `device`, the choices LVM's defaults make: not an empty device
/// (an unattached loop device), not an LVM LV (`scan_lvs = 0`: a guest's own PVs inside an
/// instance disk are not this host's), not a path of a multipath device (the multipath device
/// itself is read).
pub fn worth_scanning(device: &BlockDeviceInfo) -> bool {
    device.size_sectors > 0
        && !device
            .dm_uuid
            .as_deref()
            .is_some_and(|uuid| uuid.starts_with("LVM-"))
        && !device
            .holder_dm_uuids
            .iter()
            .any(|uuid| uuid.starts_with("mpath-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &str, id: &str, seqno: u64, pvs: &[&str]) -> Option<VgIdentity> {
        Some(VgIdentity {
            name: name.into(),
            id: id.into(),
            seqno,
            pv_uuids: pvs.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn pv(device: &str, uuid: &str, vg: Option<VgIdentity>) -> ScannedPv {
        ScannedPv {
            device: device.into(),
            pv_uuid: uuid.into(),
            vg,
            metadata_error: None,
        }
    }

    #[test]
    fn the_identity_comes_from_the_text_with_dashes_removed() {
        let text = "nova {\nid = \"abcdef-0123\"\nseqno = 7\nphysical_volumes {\npv0 {\nid = \"AAAA-bb\"\n}\npv1 {\nid = \"CCCC-dd\"\n}\n}\n}\ncontents = \"Text Format Volume Group\"\n";
        let tree = crate::text::parse(text).unwrap();
        assert_eq!(
            vg_identity(&tree),
            identity("nova", "abcdef0123", 7, &["AAAAbb", "CCCCdd"])
        );
        let no_seqno = "nova {\nid = \"x\"\nphysical_volumes {\n}\n}\n";
        assert_eq!(vg_identity(&crate::text::parse(no_seqno).unwrap()), None);
    }

    #[test]
    fn a_complete_vg_is_grouped_in_the_metadata_order_including_a_pv_without_metadata() {
        let vg = identity("nova", "v", 5, &["p2", "p1", "p3"]);
        let scanned = [
            pv("/dev/loop1", "p1", vg.clone()),
            pv("/dev/loop2", "p2", vg.clone()),
            // --metadatacopies 0: the label alone.
            pv("/dev/loop3", "p3", None),
            pv("/dev/sdz", "other", identity("other", "o", 1, &["other"])),
        ];
        let rows = group("nova", &scanned).unwrap();
        let devices: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
        assert_eq!(devices, ["/dev/loop2", "/dev/loop1", "/dev/loop3"]);
        assert!(rows.iter().all(|r| r.vg == "nova"));
        assert_eq!(rows[0].uuid, "p2");
        assert_eq!(group("other", &scanned).unwrap().len(), 1);
    }

    #[test]
    fn the_newest_copy_decides_which_pvs_belong() {
        // The PV dropped by vgreduce still carries the old metadata (seqno 4).
        let scanned = [
            pv("/dev/a", "p1", identity("nova", "v", 5, &["p1"])),
            pv("/dev/b", "p2", identity("nova", "v", 4, &["p1", "p2"])),
        ];
        let rows = group("nova", &scanned).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].device, "/dev/a");
    }

    #[test]
    fn a_missing_pv_is_named_and_refuses_the_vg() {
        let vg = identity("nova", "v", 2, &["p1", "p2", "p3"]);
        let scanned = [pv("/dev/a", "p1", vg.clone())];
        let error = group("nova", &scanned).unwrap_err();
        assert_eq!(
            error,
            ScanError::MissingPvs {
                vg: "nova".into(),
                uuids: vec!["p2".into(), "p3".into()]
            }
        );
        assert!(error.to_string().contains("p2, p3"), "{error}");
    }

    #[test]
    fn a_vg_nobody_holds_is_not_found() {
        let scanned = [pv("/dev/a", "p1", None)];
        assert_eq!(
            group("nova", &scanned).unwrap_err(),
            ScanError::NotFound { vg: "nova".into() }
        );
        assert_eq!(
            group("nova", &[]).unwrap_err(),
            ScanError::NotFound { vg: "nova".into() }
        );
    }

    #[test]
    fn a_vg_on_pvs_whose_metadata_cannot_be_read_says_why() {
        let checksum = MetadataError::BadChecksum {
            what: "metadata text",
            stored: 1,
            computed: 2,
        };
        let scanned = [
            ScannedPv {
                metadata_error: Some(checksum.clone()),
                ..pv("/dev/a", "p1", None)
            },
            pv("/dev/b", "p2", None),
        ];
        let error = group("nova", &scanned).unwrap_err();
        assert_eq!(
            error,
            ScanError::UnreadableMetadata {
                vg: "nova".into(),
                devices: vec![("/dev/a".into(), checksum)]
            }
        );
        assert!(
            error.to_string().contains("/dev/a: bad checksum"),
            "{error}"
        );
        // A readable copy elsewhere decides: the unreadable PV is the read's business.
        let found = [
            scanned[0].clone(),
            pv("/dev/b", "p2", identity("nova", "v", 2, &["p2"])),
        ];
        assert_eq!(group("nova", &found).unwrap().len(), 1);
    }

    #[test]
    fn a_pv_on_two_devices_or_two_vgs_of_one_name_are_refused() {
        let vg = identity("nova", "v", 2, &["p1"]);
        let twice = [
            pv("/dev/sda", "p1", vg.clone()),
            pv("/dev/sdb", "p1", vg.clone()),
        ];
        assert!(matches!(
            group("nova", &twice).unwrap_err(),
            ScanError::DuplicatePv { uuid, devices, .. } if uuid == "p1" && devices.len() == 2
        ));
        // The same device listed twice is one device.
        let same = [pv("/dev/sda", "p1", vg.clone()), pv("/dev/sda", "p1", vg)];
        assert_eq!(group("nova", &same).unwrap().len(), 1);
        let clones = [
            pv("/dev/a", "p1", identity("nova", "v1", 2, &["p1"])),
            pv("/dev/b", "p2", identity("nova", "v2", 9, &["p2"])),
        ];
        assert!(matches!(
            group("nova", &clones).unwrap_err(),
            ScanError::TwoVgs { ids, .. } if ids == ["v1", "v2"]
        ));
    }

    #[test]
    fn lvs_multipath_paths_and_empty_devices_are_not_scanned() {
        let disk = BlockDeviceInfo {
            name: "sda".into(),
            size_sectors: 1 << 21,
            ..Default::default()
        };
        assert!(worth_scanning(&disk));
        let unattached = BlockDeviceInfo {
            size_sectors: 0,
            ..disk.clone()
        };
        assert!(!worth_scanning(&unattached));
        let lv = BlockDeviceInfo {
            dm_uuid: Some("LVM-abc".into()),
            ..disk.clone()
        };
        assert!(!worth_scanning(&lv));
        let crypt = BlockDeviceInfo {
            dm_uuid: Some("CRYPT-LUKS2-abc".into()),
            ..disk.clone()
        };
        assert!(worth_scanning(&crypt));
        let path = BlockDeviceInfo {
            holder_dm_uuids: vec!["mpath-3600".into()],
            ..disk.clone()
        };
        assert!(!worth_scanning(&path));
        // A PV in use is held by its LVs: still scanned.
        let held = BlockDeviceInfo {
            holder_dm_uuids: vec!["LVM-vgid-lvid".into()],
            ..disk
        };
        assert!(worth_scanning(&held));
    }
}
