//! Reading LVM metadata straight from the PVs: the text format and the VG it describes.

pub mod text;
pub mod vg;
