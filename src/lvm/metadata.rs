//! LVM metadata read straight from the PVs, without running LVM, as a raw source.
//!
//! The reader itself (PV label, metadata area headers, the checksummed metadata text, its parse
//! into a VG, LVM's validation and the label scan) is the workspace's `lvm-metadata` crate
//! (`crates/lvm-metadata`): pure and synchronous, with the lvm2 sources behind each rule.
//! What only the exporter needs stays here:
//!
//! - [`source`]: which PVs to read (`lvm fullreport`'s PV list or the label scan), the cache of
//!   the parsed VG, the blocking lane, `lvm fullreport` as the per-VG fallback, and the reasons
//!   exported as `nova_lvm_raw_source_info{reason}`.

pub mod source;
