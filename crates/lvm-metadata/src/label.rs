//! The PV label: `label_header` (`lib/label/label.h`, found and checked as in
//! `lib/label/label.c`) and the `pv_header` that follows it, with its optional
//! `pv_header_extension` (`lib/format_text/layout.h`, read as in `lib/format_text/text_label.c`).
//!
//! Layout of the label sector, all little-endian:
//!
//! ```text
//! label_header   id "LABELONE" [8] | sector_xl u64 | crc_xl u32 | offset_xl u32 | type "LVM2 001" [8]
//! pv_header      (at offset_xl) pv_uuid [32] | device_size_xl u64
//!                data areas:     { offset u64, size u64 } ... {0, 0}
//!                metadata areas: { offset u64, size u64 } ... {0, 0}
//! extension      version u32 | flags u32 | bootloader areas { offset, size } ... {0, 0}
//! ```

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::{le_u32, le_u64, MetadataError, SECTOR_SIZE};

/// How many sectors from the start of the device may hold the label (`LABEL_SCAN_SECTORS`).
pub const LABEL_SCAN_SECTORS: usize = 4;
/// Bytes to read from the start of a device to find its label.
pub const LABEL_SCAN_BYTES: usize = LABEL_SCAN_SECTORS * SECTOR_SIZE;

const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// `sizeof(struct label_header)`.
const LABEL_HEADER_SIZE: usize = 32;
/// Where `crc_xl` sits and where the bytes it covers start (`offset_xl` to the sector's end).
const CRC_AT: usize = 16;
const CRC_FROM: usize = 20;
/// `ID_LEN`: a PV UUID without dashes.
pub const ID_LEN: usize = 32;
const DISK_LOCN_SIZE: usize = 16;

/// One area on the device (`struct disk_locn`): byte offset and size. A data area of size 0
/// runs to the end of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    /// Byte offset from the start of the device.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

/// `struct pv_header_extension`, present since lvm2 2.02.110.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeaderExtension {
    /// Extension version (1: bootloader areas, 2: the `PV_EXT_USED` flag).
    pub version: u32,
    /// Flags; bit 0 is `PV_EXT_USED` (the PV belongs to a VG).
    pub flags: u32,
    /// Bootloader areas (`pvcreate --bootloaderareasize`).
    pub bootloader_areas: Vec<DiskLocn>,
}

/// A PV label, checked: its checksum matched and every list ended inside the sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvLabel {
    /// The sector (0-3) the label was found in.
    pub sector: u64,
    /// The PV UUID as stored: 32 characters, no dashes (`pvs -o pv_uuid` adds dashes).
    pub pv_uuid: String,
    /// `device_size_xl`: the PV's size in bytes as LVM recorded it.
    pub device_size: u64,
    /// Data areas (normally one, starting at `pe_start`).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas: where each `mda_header` is and how big its area is.
    pub metadata_areas: Vec<DiskLocn>,
    /// The extension, when the label has one with a non-zero version.
    pub extension: Option<PvHeaderExtension>,
}

fn malformed(detail: String) -> MetadataError {
    MetadataError::Malformed {
        what: "PV label",
        detail,
    }
}

/// Finds and checks the label in `scan`, the first bytes of a device (normally
/// [`LABEL_SCAN_BYTES`]; fewer are searched as far as they go).
pub fn parse_label(scan: &[u8]) -> Result<PvLabel, MetadataError> {
    let mut stale = None;
    for (index, sector) in scan
        .chunks_exact(SECTOR_SIZE)
        .take(LABEL_SCAN_SECTORS)
        .enumerate()
    {
        if &sector[..LABEL_ID.len()] != LABEL_ID {
            continue;
        }
        let sector_number = index as u64;
        match le_u64(sector, 8) {
            Some(recorded) if recorded == sector_number => {
                return parse_label_sector(sector, sector_number)
            }
            // A label copied to another sector: LVM skips it, and so do we.
            _ => stale = Some(sector_number),
        }
    }
    match stale {
        Some(sector) => Err(malformed(format!(
            "LABELONE in sector {sector} records another sector number"
        ))),
        None => Err(MetadataError::NotAPv),
    }
}

/// Parses one label sector already known to start with `LABELONE` and to record `sector`.
fn parse_label_sector(sector: &[u8], sector_number: u64) -> Result<PvLabel, MetadataError> {
    let stored = le_u32(sector, CRC_AT).ok_or_else(|| truncated(sector.len()))?;
    let computed = calc_crc(INITIAL_CRC, &sector[CRC_FROM..]);
    if stored != computed {
        return Err(MetadataError::BadChecksum {
            what: "label header",
            stored,
            computed,
        });
    }
    if &sector[24..32] != LABEL_TYPE {
        return Err(malformed("the label type is not \"LVM2 001\"".into()));
    }
    let offset = le_u32(sector, 20).ok_or_else(|| truncated(sector.len()))? as usize;
    let pv_header_end = offset.checked_add(ID_LEN + 8);
    if offset < LABEL_HEADER_SIZE || pv_header_end.is_none_or(|end| end > SECTOR_SIZE) {
        return Err(malformed(format!(
            "the pv_header offset {offset} leaves no room for it in the 512-byte sector"
        )));
    }
    let uuid_bytes = &sector[offset..offset + ID_LEN];
    if !uuid_bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'!' || *b == b'#')
    {
        return Err(malformed(
            "the PV UUID has characters LVM never writes".into(),
        ));
    }
    let pv_uuid = String::from_utf8_lossy(uuid_bytes).into_owned();
    let device_size = le_u64(sector, offset + ID_LEN).ok_or_else(|| truncated(sector.len()))?;
    let mut at = offset + ID_LEN + 8;
    let data_areas = read_locn_list(sector, &mut at, "data area")?;
    let metadata_areas = read_locn_list(sector, &mut at, "metadata area")?;
    let extension = read_extension(sector, at)?;
    Ok(PvLabel {
        sector: sector_number,
        pv_uuid,
        device_size,
        data_areas,
        metadata_areas,
        extension,
    })
}

fn truncated(available: usize) -> MetadataError {
    MetadataError::Truncated {
        what: "PV label",
        needed: SECTOR_SIZE as u64,
        available: available as u64,
    }
}

/// Reads `disk_locn` entries from `at` up to the one with offset 0 (LVM ends a list there),
/// leaving `at` after it. At most 29 entries fit in a sector, so the list's size is bounded.
fn read_locn_list(
    sector: &[u8],
    at: &mut usize,
    list: &str,
) -> Result<Vec<DiskLocn>, MetadataError> {
    let mut areas = Vec::new();
    loop {
        let (Some(offset), Some(size)) = (le_u64(sector, *at), le_u64(sector, *at + 8)) else {
            return Err(malformed(format!(
                "the {list} list does not end inside the label sector"
            )));
        };
        *at += DISK_LOCN_SIZE;
        if offset == 0 {
            return Ok(areas);
        }
        areas.push(DiskLocn { offset, size });
    }
}

/// The extension after the two lists, when there is room for its header and its version is
/// not 0 (as `lib/format_text/text_label.c` decides).
fn read_extension(sector: &[u8], at: usize) -> Result<Option<PvHeaderExtension>, MetadataError> {
    let (Some(version), Some(flags)) = (le_u32(sector, at), le_u32(sector, at + 4)) else {
        return Ok(None);
    };
    if version == 0 {
        return Ok(None);
    }
    let mut list_at = at + 8;
    let bootloader_areas = read_locn_list(sector, &mut list_at, "bootloader area")?;
    Ok(Some(PvHeaderExtension {
        version,
        flags,
        bootloader_areas,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const REAL: &[u8] = include_bytes!("../../../fuzz/corpus/lvm_pv/seed-1.bin");

    /// Recomputes the label checksum of the sector at `sector` in `scan`.
    pub(crate) fn reseal(scan: &mut [u8], sector: usize) {
        let start = sector * SECTOR_SIZE;
        let crc = calc_crc(INITIAL_CRC, &scan[start + CRC_FROM..start + SECTOR_SIZE]);
        scan[start + CRC_AT..start + CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn a_real_label_parses() {
        let label = parse_label(&REAL[..LABEL_SCAN_BYTES]).unwrap();
        assert_eq!(label.sector, 1);
        assert_eq!(label.pv_uuid, "2ofoesBB8lQdVAT1XGiF2lE1u1pV8Q6d");
        assert_eq!(label.device_size, 64 * 1024 * 1024);
        assert_eq!(
            label.data_areas,
            [DiskLocn {
                offset: 2 << 20,
                size: 0
            }]
        );
        assert_eq!(
            label.metadata_areas,
            [DiskLocn {
                offset: 4096,
                size: 0x1f_f000
            }]
        );
        let extension = label.extension.unwrap();
        assert_eq!((extension.version, extension.flags), (2, 1));
        assert!(extension.bootloader_areas.is_empty());
    }

    #[test]
    fn a_device_without_a_label_is_not_a_pv() {
        assert_eq!(
            parse_label(&[0u8; LABEL_SCAN_BYTES]),
            Err(MetadataError::NotAPv)
        );
        assert_eq!(parse_label(&[]), Err(MetadataError::NotAPv));
        // The label is in sector 1: half a sector more is not enough to find it.
        assert_eq!(
            parse_label(&REAL[..SECTOR_SIZE + 100]),
            Err(MetadataError::NotAPv)
        );
    }

    #[test]
    fn every_flipped_byte_of_the_checked_part_is_a_checksum_error() {
        for at in SECTOR_SIZE + CRC_AT..2 * SECTOR_SIZE {
            let mut scan = REAL[..LABEL_SCAN_BYTES].to_vec();
            scan[at] ^= 0x40;
            assert!(
                matches!(
                    parse_label(&scan),
                    Err(MetadataError::BadChecksum {
                        what: "label header",
                        ..
                    })
                ),
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_label_recording_another_sector_is_refused() {
        let mut scan = REAL[..LABEL_SCAN_BYTES].to_vec();
        scan[SECTOR_SIZE + 8] = 3;
        reseal(&mut scan, 1);
        assert!(matches!(
            parse_label(&scan),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn hostile_offsets_and_lists_are_errors() {
        let base = &REAL[..LABEL_SCAN_BYTES];
        let label_at = SECTOR_SIZE;
        // pv_header offsets: inside the label header, past the sector, at u32::MAX.
        for offset in [0u32, 31, 480, 512, u32::MAX] {
            let mut scan = base.to_vec();
            scan[label_at + 20..label_at + 24].copy_from_slice(&offset.to_le_bytes());
            reseal(&mut scan, 1);
            assert!(
                matches!(parse_label(&scan), Err(MetadataError::Malformed { .. })),
                "{offset}"
            );
        }
        // A data area list that never ends: every entry non-zero to the end of the sector.
        let mut scan = base.to_vec();
        for byte in &mut scan[label_at + 72..label_at + SECTOR_SIZE] {
            *byte = 0xff;
        }
        reseal(&mut scan, 1);
        assert!(matches!(
            parse_label(&scan),
            Err(MetadataError::Malformed { .. })
        ));
        // A UUID with a byte LVM never writes.
        let mut scan = base.to_vec();
        scan[label_at + 32] = b'-';
        reseal(&mut scan, 1);
        assert!(matches!(
            parse_label(&scan),
            Err(MetadataError::Malformed { .. })
        ));
        // The wrong type.
        let mut scan = base.to_vec();
        scan[label_at + 31] = b'2';
        reseal(&mut scan, 1);
        assert!(matches!(
            parse_label(&scan),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn a_label_without_extension_and_with_huge_sizes_parses() {
        let mut scan = REAL[..LABEL_SCAN_BYTES].to_vec();
        let label_at = SECTOR_SIZE;
        // Extension version 0: no extension.
        scan[label_at + 136..label_at + 140].copy_from_slice(&0u32.to_le_bytes());
        // A device size and area sizes of u64::MAX are figures, not allocations.
        scan[label_at + 64..label_at + 72].copy_from_slice(&u64::MAX.to_le_bytes());
        scan[label_at + 112..label_at + 120].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut scan, 1);
        let label = parse_label(&scan).unwrap();
        assert_eq!(label.extension, None);
        assert_eq!(label.device_size, u64::MAX);
        assert_eq!(label.metadata_areas[0].size, u64::MAX);
    }
}
