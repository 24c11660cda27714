//! Builders of the LVM model with every field spelled out once, for the unit and integration
//! tests, benches and examples: a caller says only what differs from a plain linear LV, with
//! struct update syntax (`Lv { segtype: "thin".into(), ..linear_lv("vg", "t", GIB) }`).
//!
//! [`Lv`] and [`Vg`] are the [`lvm_metadata`] crate's types, so these are free functions rather
//! than constructors. Their defaults are what LVM reports on a host without device-mapper, as
//! the saved reports in `tests/fixtures/lvm/` show: a linear LV is `-wi-XX----` (the kernel
//! state unknown), extents are 4 MiB.

use crate::units::MIB;

use super::{Lv, Vg};

/// LVM's default extent size, which [`vg`] gives its VG.
pub const DEFAULT_EXTENT_BYTES: u64 = 4 * MIB;

/// A visible linear LV `name` of `size_bytes` in VG `vg`: attributes `-wi-XX----`, segment type
/// `linear`, no pool, no parent, no data or metadata ratio, no creation time, no tags.
pub fn linear_lv(vg: &str, name: &str, size_bytes: u64) -> Lv {
    Lv {
        vg: vg.to_string(),
        name: name.to_string(),
        hidden: false,
        size_bytes,
        attr: "-wi-XX----".to_string(),
        segtype: "linear".to_string(),
        pool_lv: String::new(),
        parent: String::new(),
        data_used_ratio: None,
        metadata_used_ratio: None,
        creation_unix: None,
        tags: Vec::new(),
    }
}

/// A VG `name` of `size_bytes`, `free_bytes` of them unallocated, with 4 MiB extents
/// ([`DEFAULT_EXTENT_BYTES`]).
pub fn vg(name: &str, size_bytes: u64, free_bytes: u64) -> Vg {
    Vg {
        name: name.to_string(),
        size_bytes,
        free_bytes,
        extent_size_bytes: DEFAULT_EXTENT_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::GIB;

    #[test]
    fn a_linear_lv_reads_as_lvm_reports_one_without_device_mapper() {
        let lv = linear_lv("vms", "a_disk", GIB);
        assert_eq!((lv.vg.as_str(), lv.name.as_str()), ("vms", "a_disk"));
        assert_eq!((lv.size_bytes, lv.hidden), (GIB, false));
        assert_eq!(
            (lv.attr.as_str(), lv.segtype.as_str()),
            ("-wi-XX----", "linear")
        );
        assert!(lv.pool_lv.is_empty() && lv.parent.is_empty() && lv.tags.is_empty());
        assert_eq!((lv.data_used_ratio, lv.metadata_used_ratio), (None, None));
        assert_eq!(lv.creation_unix, None);
    }

    #[test]
    fn a_vg_has_lvm_s_default_extent_size() {
        let vg = vg("vms", 10 * GIB, GIB);
        assert_eq!(vg.extent_size_bytes, 4 * MIB);
        assert_eq!(
            (vg.name.as_str(), vg.size_bytes, vg.free_bytes),
            ("vms", 10 * GIB, GIB)
        );
    }
}
