//! LVM2 metadata read straight from the PVs, without running LVM.
//!
//! What LVM itself reads to answer `vgs`: the PV label in one of the first four sectors, the
//! header of each metadata area it points at, and the checksummed metadata text that header
//! locates in the area's circular buffer. The parsers here are pure functions over byte slices;
//! [`device`] is the only part that does I/O, and it is synchronous (no async runtime). Structures
//! and rules come from lvm2's sources:
//!
//! - [`crc`]: LVM's checksum, `lib/misc/crc.c`.
//! - [`label`]: `label_header` (`lib/label/label.h`, `lib/label/label.c`) and `pv_header`,
//!   `pv_header_extension` (`lib/format_text/layout.h`, `lib/format_text/text_label.c`).
//! - [`mda`]: `mda_header` and `raw_locn` (`lib/format_text/layout.h`), their checks and the
//!   wrapped text (`lib/format_text/format-text.c`, `lib/config/config.c`).
//! - [`device`]: the reads, in the order `lib/format_text/format-text.c` makes them, with
//!   `O_DIRECT` and a re-read of the header to catch a concurrent write.
//! - [`text`]: LVM's text format (`lib/config/config.c`); [`vg`]: the VG that text describes,
//!   as `lvm fullreport` reports it ([`Vg`], [`Lv`]; `lib/format_text/import_vsn1.c`), once
//!   [`validate`] has made the checks LVM's import and `vg_validate` make
//!   (`lib/metadata/metadata.c`, `lib/misc/lvm-string.c`, `lib/id/id.c`): metadata LVM refuses
//!   is never read as figures. [`validate`] also holds LVM's name rules, for names read from
//!   anywhere else (a JSON report).
//! - [`scan`]: finding a VG's PVs by their labels where LVM cannot run.
//!
//! It reads linear, striped, thin, raid, mirror, cache and snapshot LVs, VGs on several PVs and
//! texts that wrap around the end of their area; anything else is an error that names it
//! ([`vg::VgError::Unsupported`]), so that a caller can ask LVM instead.
//!
//! nova-lvm-exporter's metadata source (`src/lvm/metadata/source.rs`) is built on it: which PVs
//! to read, the cache of the parsed VG, the fallback to `lvm fullreport`.
//!
//! The crate's `README.md` has an example (a PV image read from a file, its text parsed into the
//! VG's figures), run as a doc test.

#![deny(missing_docs)]

pub mod crc;
pub mod device;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod label;
pub mod mda;
pub mod scan;
pub mod text;
pub mod validate;
pub mod vg;

pub use scan::PvRow;
pub use vg::{Lv, Vg, VgMetadata};

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Bytes in a sector, LVM's unit for the label and the metadata area header.
pub const SECTOR_SIZE: usize = 512;

/// The largest metadata text read (64 MiB, the bound on every other input). LVM's own text for
/// 2,000 LVs is about 2 MiB; a larger `raw_locn` size is refused before anything is allocated.
pub const MAX_TEXT_BYTES: u64 = 64 * 1024 * 1024;

/// Why a PV's label, a metadata area header or the metadata text could not be read. Messages
/// hold figures and fixed phrases, never bytes of the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// No `LABELONE` label in the first four sectors.
    #[error("no LVM label (LABELONE) in the first four sectors: not a PV")]
    NotAPv,
    /// A stored checksum does not match the bytes it covers.
    #[error("bad checksum in the {what}: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// `label header`, `metadata area header` or `metadata text`.
        what: &'static str,
        /// The checksum on disk.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Fewer bytes than a structure needs.
    #[error("the {what} is truncated: it needs {needed} bytes, {available} are there")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A field with a value LVM would refuse (wrong magic, version, type, an offset out of its
    /// area, an unterminated list).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure.
        what: &'static str,
        /// What is wrong, in figures.
        detail: String,
    },
    /// The metadata text is larger than [`MAX_TEXT_BYTES`].
    #[error("the metadata text is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// The size `raw_locn` claims.
        size: u64,
        /// [`MAX_TEXT_BYTES`].
        limit: u64,
    },
    /// The PV has no metadata area (`pvcreate --metadatacopies 0`).
    #[error("the PV has no metadata area")]
    NoMetadataArea,
    /// The metadata area holds no text: a PV in no VG.
    #[error("the metadata area holds no metadata text (a PV in no VG)")]
    NoText,
    /// The metadata area is marked ignored (`RAW_LOCN_IGNORED`, `pvchange --metadataignore y`).
    #[error("the metadata area is marked ignored")]
    Ignored,
    /// The header kept changing while the text was read (LVM was writing).
    #[error("the metadata changed while it was read, {attempts} times in a row")]
    Moved {
        /// Reads tried.
        attempts: u32,
    },
    /// Opening or reading the device failed.
    #[error("{0}")]
    Io(String),
}

/// The little-endian `u32` at `at`, or `None` past the end.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// The little-endian `u64` at `at`, or `None` past the end.
fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}
