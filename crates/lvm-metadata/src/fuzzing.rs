//! Entry points for fuzz targets (the exporter's `fuzz/lvm_pv` and `fuzz/lvm_metadata_text`, and
//! its `tests/fast/fuzz_corpus.rs`, which replays their corpora on every test run). Each takes
//! arbitrary bytes and must return without panicking whatever they are: parsers report errors.
//!
//! Built only with the `fuzzing` feature; not part of the crate's API.

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::{device, mda, text, vg};

/// The PV label, metadata area header and metadata text reader, on the bytes as a PV image:
/// as they are, then with the label's and the first metadata area header's checksums made right,
/// so that mutations reach past the checksum checks.
pub fn lvm_pv(data: &[u8]) {
    let mut image = data;
    let _ = device::read_pv_from(&mut image);
    let _ = mda::parse_mda_header(data, 0);
    let mut sealed = data.to_vec();
    let seal = |bytes: &mut [u8], crc_at: usize, from: usize, to: usize| {
        if let Some(covered) = bytes.get(from..to) {
            let crc = calc_crc(INITIAL_CRC, covered).to_le_bytes();
            bytes[crc_at..crc_at + 4].copy_from_slice(&crc);
        }
    };
    for sector in (0..4 * 512).step_by(512) {
        seal(&mut sealed, sector + 16, sector + 20, sector + 512);
    }
    seal(&mut sealed, 4096, 4100, 4608);
    let mut image = &sealed[..];
    let _ = device::read_pv_from(&mut image);
}

/// LVM's metadata text parser, then the VG reader on what it parsed.
pub fn lvm_metadata_text(data: &[u8]) {
    if let Ok(tree) = text::parse(&String::from_utf8_lossy(data)) {
        let _ = vg::from_tree(&tree);
    }
}
