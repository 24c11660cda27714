//! The crate against LVM itself, on real PVs (loop devices) that the real `pvcreate`,
//! `vgcreate`, `lvcreate` and `vgcfgrestore` write:
//!
//! - [`text`]: for every VG shape (linear, multi-segment, multi-PV, striped, thin, raid, mirror,
//!   snapshot, cache, 2,000 LVs, fifty random shapes) the text parser and VG model give what
//!   `lvm fullreport` reports.
//! - [`device`]: the device reader finds what `pvs`/`vgs` say (two metadata areas, wrapped
//!   text, reads racing LVM's writes); corrupted copies are typed errors; and the differential
//!   strictness test: mutated metadata written to real PVs is refused by the reader wherever LVM
//!   refuses it, and read with LVM's figures wherever LVM reads it.
//!
//! The oracle ([`oracle`]) is LVM's JSON report, parsed here. Needs root, lvm2 and loop
//! devices ([`support`]); skips loudly otherwise, and fails under `CI=true`.

mod device;
mod oracle;
mod support;
mod text;
