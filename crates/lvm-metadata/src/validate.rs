//! The checks LVM makes when it imports a VG's metadata text, made before any figure is taken
//! from it: the reader is at least as strict as LVM, so that metadata LVM refuses never becomes
//! figures reported as true.
//!
//! Where each rule comes from in lvm2 (read, not copied):
//! - the top-level `contents = "Text Format Volume Group"` and `version = 1`:
//!   `_vsn1_check_version` in `lib/format_text/import_vsn1.c`;
//! - the keys each section must hold and their types (`id`, `seqno`, `status`, `extent_size`,
//!   `max_lv`, `max_pv` of the VG; `id`, `status`, `pe_start`, `pe_count` of a PV; `id`, `status`,
//!   `segment_count` of an LV; `start_extent`, `extent_count`, `type` of a segment), the
//!   `physical_volumes` section being required, `segment_count` equal to the number of segment
//!   sections, a complete bootloader area (`ba_start` with `ba_size`), an LV's `creation_time`
//!   and `creation_host` given together, `format` naming `lvm2`:
//!   `_read_vg`, `_read_pv`, `_read_lv`, `_read_segments`, `_read_segment` in the same file;
//! - number ranges: LVM reads `seqno`, `extent_size`, `max_lv`, `max_pv`, `pe_count`,
//!   `segment_count`, `start_extent`, `extent_count`, `stripe_count` and area offsets into 32-bit
//!   fields (`dm_config_get_uint32` in `libdm/libdm-config.c`, the `(uint32_t)` casts in
//!   `text_import_areas`), silently truncating larger ones (`pe_count = 4294967296` becomes 0):
//!   here anything outside `0..=u32::MAX` is refused, as are negative 64-bit fields (`pe_start`,
//!   `dev_size`); the VG's and each LV's extent totals are 32-bit sums in LVM too
//!   (`vg->extent_count`, `lv->le_count`);
//! - ids: `id_read_format` in `lib/id/id.c` (hyphens skipped, exactly 32 characters of
//!   `0-9a-zA-Z!#`); duplicate PV and LV ids: `vg_validate` in `lib/metadata/metadata.c`;
//! - names: `_validate_name` in `lib/misc/lvm-string.c` (not empty, no leading `-`, not `.` or
//!   `..`, only `a-zA-Z0-9._+-`, shorter than `NAME_LEN` = 128 from `lib/misc/lvm-string.h`),
//!   applied to the VG name on read (`lib/format_text/format-text.c`) and to LV names by
//!   `vg_validate`, which also bounds `vg/lv` plus separators below `NAME_LEN`; the reserved
//!   prefixes (`pvmove`, `snapshot`) and component strings (`_tdata`, `_rimage`, `_pmspare`, ...)
//!   of `apply_lvname_restrictions` that LVM's tools give only to the LVs LVM makes itself;
//! - tags: `validate_tag` in `lib/misc/lvm-string.c`, applied by `vg_validate`.
//!
//! Stricter than LVM, and refused rather than guessed: control bytes (NUL included) in any key
//! or string of the VG section (LVM's C strings would end at a NUL and read a different name);
//! a `seqno` of 0 (LVM never writes one); a zero `extent_count`; a PV whose extents end past its
//! recorded `dev_size`; a visible LV with a reserved name other than a snapshot's `snapshotN`
//! (`unsupported`: LVM imports it, its tools never make it, and `lvm fullreport` is asked
//! instead). Segment areas beyond a PV's extents, overlapping areas, gaps between segments and
//! stripes on PVs not listed are checked where the segments are read ([`crate::vg`]), as LVM's
//! `check_lv_segments` (`lib/metadata/merge.c`) and `check_pv_segments`
//! (`lib/metadata/pv_manip.c`) do.

use rustc_hash::FxHashSet;

use crate::text::{ConfigSection, ConfigTree, Node, Value};
use crate::vg::VgError;

/// LVM's `NAME_LEN`: a VG or LV name is shorter than this, and so is `vg/lv` with separators.
pub const NAME_LEN: usize = 128;

/// What LVM's metadata text says it is (`CONTENTS_VALUE` in lvm2).
const CONTENTS: &str = "Text Format Volume Group";

/// LV name prefixes LVM reserves for the LVs it makes itself.
const RESERVED_PREFIXES: &[&str] = &["pvmove", "snapshot"];

/// Strings LVM reserves, after the first `_`, for component and other internal LVs.
const RESERVED_STRINGS: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_rimage",
    "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare", "_vorigin",
];

/// Why a VG or LV name is not one LVM accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// Starts with `-` (LVM's VG-LV separator).
    #[error("starts with '-'")]
    LeadingHyphen,
    /// `.` or `..`.
    #[error("is '.' or '..'")]
    Dots,
    /// A byte outside `a-zA-Z0-9._+-`, as a number (a control byte is never echoed).
    #[error("holds byte {0:#04x}, outside LVM's a-z A-Z 0-9 . _ + -")]
    Charset(u8),
    /// `NAME_LEN` or more bytes.
    #[error("is {0} bytes long, LVM's limit is {max}", max = NAME_LEN - 1)]
    Length(usize),
}

/// Checks a VG or LV name against LVM's `_validate_name`. The error never quotes the name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    match bytes {
        [] => return Err(NameError::Empty),
        [b'-', ..] => return Err(NameError::LeadingHyphen),
        b"." | b".." => return Err(NameError::Dots),
        _ => {}
    }
    if let Some(&bad) = bytes
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+')))
    {
        return Err(NameError::Charset(bad));
    }
    if bytes.len() >= NAME_LEN {
        return Err(NameError::Length(bytes.len()));
    }
    Ok(())
}

/// Checks an LV name, and that `vg/lv` with LVM's separators stays below `NAME_LEN`
/// (`vg_validate`).
pub fn check_lv_name(vg: &str, lv: &str) -> Result<(), NameError> {
    check_name(lv)?;
    let device_name = vg.len() + lv.len() + 3;
    if device_name >= NAME_LEN {
        return Err(NameError::Length(device_name));
    }
    Ok(())
}

/// The reserved prefix or string an LV name holds (`apply_lvname_restrictions`), if any.
pub fn reserved_part(lv: &str) -> Option<&'static str> {
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| lv.starts_with(**p)) {
        return Some(prefix);
    }
    let after = &lv[lv.find('_')?..];
    RESERVED_STRINGS
        .iter()
        .find(|s| after.contains(**s))
        .copied()
}

/// Checks a tag against LVM's `validate_tag`: not empty, only `a-zA-Z0-9._-+/=!:&#`.
pub fn check_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_' | b'-' | b'+' | b'/' | b'=' | b'!' | b':' | b'&' | b'#'
                )
        })
}

/// Checks an id as `id_read_format` reads it: hyphens skipped, exactly 32 characters of
/// `0-9a-zA-Z!#`.
pub fn check_id(id: &str) -> bool {
    let mut count = 0usize;
    for b in id.bytes().filter(|b| *b != b'-') {
        if !(b.is_ascii_alphanumeric() || b == b'!' || b == b'#') {
            return false;
        }
        count += 1;
    }
    count == 32
}

/// The id without its hyphens, for duplicate checks.
fn id_key(id: &str) -> String {
    id.chars().filter(|c| *c != '-').collect()
}

/// Validates a parsed metadata text as LVM's import would, before the VG is read from it.
/// `vg` and `section` are the text's one VG section (found by the caller).
pub fn validate(tree: &ConfigTree, vg: &str, section: &ConfigSection) -> Result<(), VgError> {
    Validator { vg }.run(tree, section)
}

struct Validator<'v> {
    vg: &'v str,
}

impl Validator<'_> {
    fn malformed(&self, message: String) -> VgError {
        VgError::Malformed {
            vg: printable(self.vg),
            message,
        }
    }

    fn unsupported(&self, what: String) -> VgError {
        VgError::Unsupported {
            vg: printable(self.vg),
            what,
        }
    }

    fn run(&self, tree: &ConfigTree, section: &ConfigSection) -> Result<(), VgError> {
        self.control_bytes(section, "vg")?;
        check_name(self.vg).map_err(|e| self.malformed(format!("the vg name {e}")))?;
        match tree.root.value("contents") {
            Some(Value::Str(s)) if s == CONTENTS => {}
            Some(_) => return Err(self.malformed("unrecognised contents field".into())),
            None => return Err(self.malformed("missing contents field".into())),
        }
        match tree.root.value("version") {
            Some(Value::Int(1)) => {}
            Some(_) => return Err(self.malformed("unrecognised version number".into())),
            None => return Err(self.malformed("missing version number".into())),
        }
        let whose = "vg";
        self.id(section, whose)?;
        let seqno = self.u32(section, "seqno", whose, true)?.unwrap_or(0);
        if seqno == 0 {
            return Err(self.malformed("vg: seqno is 0".into()));
        }
        let extent_sectors = self.u32(section, "extent_size", whose, true)?.unwrap_or(0);
        if extent_sectors == 0 {
            return Err(self.malformed("vg: extent_size is 0".into()));
        }
        for key in ["max_lv", "max_pv"] {
            self.u32(section, key, whose, true)?;
        }
        self.u32(section, "metadata_copies", whose, false)?;
        self.status(section, whose)?;
        self.tags(section, whose)?;
        if let Some(format) = section.value("format") {
            if !matches!(format, Value::Str(s) if s == "lvm2") {
                return Err(self.malformed("vg: format is not \"lvm2\"".into()));
            }
        }
        let pvs = match section.get("physical_volumes") {
            Some(Node::Section(pvs)) => pvs,
            Some(Node::Value(_)) => {
                return Err(self.malformed("physical_volumes is not a section".into()))
            }
            None => return Err(self.malformed("missing physical_volumes".into())),
        };
        let mut ids: FxHashSet<String> = FxHashSet::default();
        let mut total_extents = 0u64;
        for (name, node) in &pvs.items {
            let Node::Section(pv) = node else {
                return Err(self.malformed(format!(
                    "physical_volumes holds the value {:?}",
                    printable(name)
                )));
            };
            let whose = format!("pv {:?}", printable(name));
            let id = self.id(pv, &whose)?;
            if !ids.insert(id_key(id)) {
                return Err(self.malformed(format!("{whose}: duplicate PV id")));
            }
            self.status(pv, &whose)?;
            self.tags(pv, &whose)?;
            let pe_start = self.u64(pv, "pe_start", &whose, true)?.unwrap_or(0);
            let pe_count = self.u32(pv, "pe_count", &whose, true)?.unwrap_or(0);
            let dev_size = self.u64(pv, "dev_size", &whose, false)?;
            let ba_start = self.u64(pv, "ba_start", &whose, false)?.unwrap_or(0);
            let ba_size = self.u64(pv, "ba_size", &whose, false)?.unwrap_or(0);
            if (ba_start == 0) != (ba_size == 0) {
                return Err(self.malformed(format!("{whose}: incomplete bootloader area")));
            }
            let end = pe_count
                .checked_mul(extent_sectors)
                .and_then(|sectors| sectors.checked_add(pe_start));
            match (end, dev_size) {
                (None, _) => {
                    return Err(self.malformed(format!("{whose}: pe_count out of range")));
                }
                (Some(end), Some(dev_size)) if dev_size > 0 && end > dev_size => {
                    return Err(self.malformed(format!(
                        "{whose}: extents end at sector {end}, past dev_size {dev_size}"
                    )));
                }
                _ => {}
            }
            total_extents += pe_count;
        }
        if total_extents > u64::from(u32::MAX) {
            return Err(self.malformed(format!(
                "the PVs hold {total_extents} extents, more than LVM counts"
            )));
        }
        match section.get("logical_volumes") {
            None => Ok(()),
            Some(Node::Value(_)) => Err(self.malformed("logical_volumes is not a section".into())),
            Some(Node::Section(lvs)) => self.lvs(lvs),
        }
    }

    fn lvs(&self, lvs: &ConfigSection) -> Result<(), VgError> {
        let mut ids: FxHashSet<String> = FxHashSet::default();
        for (name, node) in &lvs.items {
            let Node::Section(lv) = node else {
                return Err(self.malformed(format!(
                    "logical_volumes holds the value {:?}",
                    printable(name)
                )));
            };
            check_lv_name(self.vg, name).map_err(|e| self.malformed(format!("an lv name {e}")))?;
            let whose = format!("lv {name:?}");
            let id = self.id(lv, &whose)?;
            if !ids.insert(id_key(id)) {
                return Err(self.malformed(format!("{whose}: duplicate LV id")));
            }
            let visible = self.status(lv, &whose)?.contains(&"VISIBLE");
            self.creation(lv, &whose)?;
            self.tags(lv, &whose)?;
            let segment_count = self.u32(lv, "segment_count", &whose, true)?.unwrap_or(0);
            let sections = lv.sections().count() as u64;
            if segment_count != sections {
                return Err(self.malformed(format!(
                    "{whose}: segment_count {segment_count}, {sections} segment sections"
                )));
            }
            let mut extents = 0u64;
            let mut snapshot = false;
            for (key, segment) in lv.sections() {
                let whose = format!("{whose} {key}");
                self.u32(segment, "start_extent", &whose, true)?;
                let count = self
                    .u32(segment, "extent_count", &whose, true)?
                    .unwrap_or(0);
                if count == 0 {
                    return Err(self.malformed(format!("{whose}: extent_count is 0")));
                }
                extents += count;
                match segment.value("type") {
                    Some(Value::Str(segtype)) => snapshot |= segtype == "snapshot",
                    Some(other) => {
                        return Err(self
                            .malformed(format!("{whose}: type is {}, not a string", other.kind())))
                    }
                    None => return Err(self.malformed(format!("{whose}: missing type"))),
                }
                self.u32(segment, "stripe_count", &whose, false)?;
                self.u32(segment, "area_count", &whose, false)?;
                self.tags(segment, &whose)?;
                for key in ["stripes", "mirrors", "raids", "raid0_lvs"] {
                    self.area_offsets(segment, key, &whose)?;
                }
            }
            if extents > u64::from(u32::MAX) {
                return Err(
                    self.malformed(format!("{whose}: {extents} extents, more than LVM counts"))
                );
            }
            if let Some(part) = reserved_part(name) {
                let lvm_made = snapshot && part == "snapshot";
                if visible && !lvm_made {
                    return Err(self.unsupported(format!(
                        "visible {whose} has the reserved name part {part:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// `creation_time` and `creation_host` come together (`_read_lv`): a time without a host
    /// or a host without a time is refused, as is a time that is not an integer.
    fn creation(&self, lv: &ConfigSection, whose: &str) -> Result<(), VgError> {
        match (lv.value("creation_time"), lv.value("creation_host")) {
            (None, None) => Ok(()),
            (Some(Value::Int(_)), Some(Value::Str(_))) => Ok(()),
            (Some(Value::Int(_)), _) => Err(self.malformed(format!(
                "{whose}: creation_time without a creation_host string"
            ))),
            (Some(other), _) => Err(self.malformed(format!(
                "{whose}: creation_time is {}, not an integer",
                other.kind()
            ))),
            (None, Some(_)) => {
                Err(self.malformed(format!("{whose}: creation_host without a creation_time")))
            }
        }
    }

    /// The integer elements of an areas list (`"pv0", 0, ...`) are 32-bit extent offsets.
    fn area_offsets(&self, section: &ConfigSection, key: &str, whose: &str) -> Result<(), VgError> {
        if let Some(Value::Array(items)) = section.value(key) {
            for item in items {
                if let Value::Int(offset) = item {
                    if u32::try_from(*offset).is_err() {
                        return Err(
                            self.malformed(format!("{whose}: {key} offset {offset} out of range"))
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// `id`, required, in LVM's id format.
    fn id<'s>(&self, section: &'s ConfigSection, whose: &str) -> Result<&'s str, VgError> {
        match section.value("id") {
            Some(Value::Str(id)) if check_id(id) => Ok(id),
            Some(Value::Str(_)) => Err(self.malformed(format!(
                "{whose}: id is not 32 characters of LVM's id alphabet"
            ))),
            Some(other) => {
                Err(self.malformed(format!("{whose}: id is {}, not a string", other.kind())))
            }
            None => Err(self.malformed(format!("{whose}: missing id"))),
        }
    }

    /// `status`, required: a list of strings (the flags themselves are checked by the reader).
    fn status<'s>(&self, section: &'s ConfigSection, whose: &str) -> Result<Vec<&'s str>, VgError> {
        match section.value("status") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Str(s) => Ok(s.as_ref()),
                    other => Err(self.malformed(format!(
                        "{whose}: status holds {}, not a string",
                        other.kind()
                    ))),
                })
                .collect(),
            Some(other) => {
                Err(self.malformed(format!("{whose}: status is {}, not an array", other.kind())))
            }
            None => Err(self.malformed(format!("{whose}: missing status"))),
        }
    }

    /// `tags`, optional: each one in LVM's tag form.
    fn tags(&self, section: &ConfigSection, whose: &str) -> Result<(), VgError> {
        match section.value("tags") {
            None => Ok(()),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        // LVM's import keeps an empty tag (the report leaves it out).
                        Value::Str(tag) if tag.is_empty() || check_tag(tag) => {}
                        Value::Str(_) => {
                            return Err(
                                self.malformed(format!("{whose}: a tag LVM would not accept"))
                            )
                        }
                        other => {
                            return Err(self.malformed(format!(
                                "{whose}: tags holds {}, not a string",
                                other.kind()
                            )))
                        }
                    }
                }
                Ok(())
            }
            Some(other) => {
                Err(self.malformed(format!("{whose}: tags is {}, not an array", other.kind())))
            }
        }
    }

    /// An integer LVM reads into 32 bits: `None` when absent and not required.
    fn u32(
        &self,
        section: &ConfigSection,
        key: &str,
        whose: &str,
        required: bool,
    ) -> Result<Option<u64>, VgError> {
        let value = self.int(section, key, whose, required)?;
        match value {
            Some(i) if u32::try_from(i).is_err() => {
                Err(self.malformed(format!("{whose}: {key} {i} is outside LVM's 32-bit range")))
            }
            Some(i) => Ok(Some(i as u64)),
            None => Ok(None),
        }
    }

    /// A non-negative integer LVM reads into 64 bits: `None` when absent and not required.
    fn u64(
        &self,
        section: &ConfigSection,
        key: &str,
        whose: &str,
        required: bool,
    ) -> Result<Option<u64>, VgError> {
        match self.int(section, key, whose, required)? {
            Some(i) => u64::try_from(i)
                .map(Some)
                .map_err(|_| self.malformed(format!("{whose}: {key} is negative"))),
            None => Ok(None),
        }
    }

    fn int(
        &self,
        section: &ConfigSection,
        key: &str,
        whose: &str,
        required: bool,
    ) -> Result<Option<i64>, VgError> {
        match section.value(key) {
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(other) => Err(self.malformed(format!(
                "{whose}: {key} is {}, not an integer",
                other.kind()
            ))),
            None if required => Err(self.malformed(format!("{whose}: missing {key}"))),
            None => Ok(None),
        }
    }

    /// Refuses control bytes (NUL included) in any key or string under `section`.
    fn control_bytes(&self, section: &ConfigSection, whose: &str) -> Result<(), VgError> {
        let mut stack = vec![(whose.to_string(), section)];
        while let Some((whose, section)) = stack.pop() {
            for (key, node) in &section.items {
                if has_control(key) {
                    return Err(self.malformed(format!("{whose}: a key holds a control byte")));
                }
                match node {
                    Node::Section(child) => stack.push((format!("{whose} {key}"), child)),
                    Node::Value(value) => {
                        let strings: &[Value] = match value {
                            Value::Array(items) => items,
                            other => std::slice::from_ref(other),
                        };
                        if strings
                            .iter()
                            .any(|v| matches!(v, Value::Str(s) if has_control(s)))
                        {
                            return Err(
                                self.malformed(format!("{whose}: {key} holds a control byte"))
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// True when `s` holds a byte below 0x20 or 0x7f.
fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// A name as it may appear in an error: control bytes replaced by `?` and cut to `NAME_LEN`
/// bytes, so that a hostile name can neither break a log line nor make it large.
pub fn printable(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(NAME_LEN)
        .collect();
    if name.chars().count() > NAME_LEN {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;
    use crate::vg::{from_tree, VgMetadata};

    /// A VG as LVM 2.03.16 wrote it on a 1 GiB loop PV (`vgcfgbackup`), with a linear LV
    /// `disk` (two segments), a tagged LV `tagged`, and 255 extents in all.
    const REAL: &str = r#"contents = "Text Format Volume Group"
version = 1
description = ""
creation_host = "cmp-1"
creation_time = 1796097232

vms {
	id = "Dn5752-20yZ-We0l-NjhF-l0W7-Q2N0-IPxAnF"
	seqno = 5
	format = "lvm2"
	status = ["RESIZEABLE", "READ", "WRITE"]
	flags = []
	extent_size = 8192
	max_lv = 0
	max_pv = 0
	metadata_copies = 0

	physical_volumes {

		pv0 {
			id = "5yqmo3-0Kq1-Yv3D-p7wI-Jd3Y-DU2q-rXlHds"
			device = "/dev/loop1"
			status = ["ALLOCATABLE"]
			flags = []
			dev_size = 2097152
			pe_start = 2048
			pe_count = 255
		}
	}

	logical_volumes {

		disk {
			id = "cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ruU"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796097240
			creation_host = "cmp-1"
			segment_count = 2

			segment1 {
				start_extent = 0
				extent_count = 10
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 0]
			}
			segment2 {
				start_extent = 10
				extent_count = 5
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 20]
			}
		}

		tagged {
			id = "7yWvKv-Zc2Y-m3Qe-M0nV-0vHn-8Xs7-kN0R3d"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			tags = ["nova", "a.b_c-d+e/f=g!h:i&j#k"]
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 10
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 10]
			}
		}
	}
}
"#;

    fn read(text: &str) -> Result<VgMetadata, VgError> {
        from_tree(&text::parse(text).expect("the text parses"))
    }

    fn malformed(text: &str) -> String {
        match read(text) {
            Err(VgError::Malformed { message, .. }) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn edited(from: &str, to: &str) -> String {
        assert!(REAL.contains(from), "{from:?} in the sample");
        REAL.replacen(from, to, 1)
    }

    #[test]
    fn real_metadata_reads() {
        let vg = read(REAL).expect("reads");
        assert_eq!(vg.vg.size_bytes, 255 * 4 * 1024 * 1024);
        assert_eq!(vg.vg.free_bytes, (255 - 25) * 4 * 1024 * 1024);
        assert_eq!(vg.lvs.len(), 2);
    }

    /// Issue 20: `pe_count = 4294967296` (LVM truncates it to 0 and `vgs` exits 5) was read as
    /// a 16 PiB VG.
    #[test]
    fn pe_count_beyond_32_bits_is_refused() {
        assert_eq!(
            malformed(&edited("pe_count = 255", "pe_count = 4294967296")),
            "pv \"pv0\": pe_count 4294967296 is outside LVM's 32-bit range"
        );
        // Within 32 bits but past the PV's recorded size.
        assert_eq!(
            malformed(&edited("pe_count = 255", "pe_count = 4294967295")),
            "pv \"pv0\": extents end at sector 35184372082688, past dev_size 2097152"
        );
        for (from, to, message) in [
            (
                "extent_size = 8192",
                "extent_size = 4294967296",
                "vg: extent_size 4294967296 is outside LVM's 32-bit range",
            ),
            (
                "start_extent = 10",
                "start_extent = 4294967306",
                "lv \"disk\" segment2: start_extent 4294967306 is outside LVM's 32-bit range",
            ),
            (
                "extent_count = 5",
                "extent_count = -5",
                "lv \"disk\" segment2: extent_count -5 is outside LVM's 32-bit range",
            ),
            (
                "extent_count = 5",
                "extent_count = 0",
                "lv \"disk\" segment2: extent_count is 0",
            ),
            (
                "stripes = [\"pv0\", 20]",
                "stripes = [\"pv0\", 4294967316]",
                "lv \"disk\" segment2: stripes offset 4294967316 out of range",
            ),
            ("seqno = 5", "seqno = 0", "vg: seqno is 0"),
            (
                "seqno = 5",
                "seqno = 4294967301",
                "vg: seqno 4294967301 is outside LVM's 32-bit range",
            ),
            (
                "pe_start = 2048",
                "pe_start = -1",
                "pv \"pv0\": pe_start is negative",
            ),
            (
                "segment_count = 2",
                "segment_count = 3",
                "lv \"disk\": segment_count 3, 2 segment sections",
            ),
        ] {
            assert_eq!(malformed(&edited(from, to)), message, "{to}");
        }
    }

    /// Issue 20: NUL bytes inside names and values were read as they stand. (A NUL in a bare
    /// word, outside a string, is the text parser's error: see `text`.)
    #[test]
    fn nul_and_control_bytes_are_refused() {
        for (from, to) in [
            ("\t\tdisk {", "\t\t\"di\0sk\" {"),
            ("\t\tdisk {", "\t\t\"di\\\x01sk\" {"),
            (
                "\"cmp-1\"\n\t\t\tsegment_count",
                "\"cmp\0-1\"\n\t\t\tsegment_count",
            ),
            ("\"nova\"", "\"no\x1bva\""),
            ("\"/dev/loop1\"", "\"/dev/loop1\x7f\""),
            ("\"striped\"", "\"strip\0ed\""),
        ] {
            let message = malformed(&edited(from, to));
            assert!(
                message.contains("control byte") || message.contains("byte 0x"),
                "{to:?}: {message}"
            );
        }
        let vg = REAL.replace("vms {", "\"v\0ms\" {");
        assert!(matches!(read(&vg), Err(VgError::Malformed { vg, .. }) if vg == "v?ms"));
        let bare = REAL.replace("vms {", "v\0ms {");
        assert!(text::parse(&bare).is_err(), "a NUL outside a string");
    }

    /// Issue 20: names LVM forbids were read as they stand.
    #[test]
    fn names_lvm_forbids_are_refused() {
        for (name, message) in [
            ("-disk", "an lv name starts with '-'"),
            ("..", "an lv name is '.' or '..'"),
            (
                "d\u{e9}sk",
                "an lv name holds byte 0xc3, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
            (
                "d/sk",
                "an lv name holds byte 0x2f, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
            (
                "\"d sk\"",
                "an lv name holds byte 0x20, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
        ] {
            assert_eq!(
                malformed(&edited("\t\tdisk {", &format!("\t\t{name} {{"))),
                message
            );
        }
        for (name, message) in [
            ("-vms", "the vg name starts with '-'"),
            (
                "v:ms",
                "the vg name holds byte 0x3a, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
        ] {
            assert_eq!(malformed(&edited("vms {", &format!("{name} {{"))), message);
        }
        // Reserved names on a visible LV: LVM imports them, its tools never make them.
        for name in [
            "pvmove0",
            "snapshot1",
            "disk_tdata",
            "a_rimage_0",
            "lvol0_pmspare",
        ] {
            let what = match read(&edited("\t\tdisk {", &format!("\t\t{name} {{"))) {
                Err(VgError::Unsupported { what, .. }) => what,
                other => panic!("{name}: {other:?}"),
            };
            assert!(what.contains("reserved name part"), "{what}");
        }
        // Hidden, as LVM makes them, they are read.
        let hidden = edited("\t\tdisk {", "\t\tdisk_tdata {").replacen(
            "[\"READ\", \"WRITE\", \"VISIBLE\"]",
            "[\"READ\", \"WRITE\"]",
            1,
        );
        assert!(read(&hidden).is_ok());
        // Tags LVM's validate_tag refuses.
        assert_eq!(
            malformed(&edited("\"nova\"", "\"no va\"")),
            "lv \"tagged\": a tag LVM would not accept"
        );
    }

    /// Issue 20: a 1 MB LV name was read and exported (a 2 MB /metrics).
    #[test]
    fn names_beyond_lvms_limits_are_refused() {
        let long = "d".repeat(1024 * 1024);
        assert_eq!(
            malformed(&edited("\t\tdisk {", &format!("\t\t{long} {{"))),
            "an lv name is 1048576 bytes long, LVM's limit is 127"
        );
        // vg/lv with LVM's separators must stay below NAME_LEN: "vms" + 122 + 3 = 128.
        let at_limit = "d".repeat(121);
        assert!(read(&edited("\t\tdisk {", &format!("\t\t{at_limit} {{"))).is_ok());
        let over = "d".repeat(122);
        assert_eq!(
            malformed(&edited("\t\tdisk {", &format!("\t\t{over} {{"))),
            "an lv name is 128 bytes long, LVM's limit is 127"
        );
        let vg = "v".repeat(128);
        let error = read(&edited("vms {", &format!("{vg} {{"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "LVM metadata of vg \"{}\": the vg name is 128 bytes long, LVM's limit is 127",
                vg
            )
        );
        let huge_vg = "v".repeat(1024 * 1024);
        let error = read(&edited("vms {", &format!("{huge_vg} {{"))).unwrap_err();
        assert!(error.to_string().len() < 400, "the error stays small");
    }

    #[test]
    fn ids_duplicates_and_required_keys() {
        for (from, to, message) in [
            (
                "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ruU\"",
                "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ru\"",
                "lv \"disk\": id is not 32 characters of LVM's id alphabet",
            ),
            (
                "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ruU\"",
                "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ru$\"",
                "lv \"disk\": id is not 32 characters of LVM's id alphabet",
            ),
            (
                "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ruU\"",
                "id = \"7yWvKvZc2Ym3QeM0nV0vHn8Xs7kN0R3d\"",
                "lv \"tagged\": duplicate LV id",
            ),
            ("\tmax_lv = 0\n", "", "vg: missing max_lv"),
            ("\tmax_pv = 0\n", "", "vg: missing max_pv"),
            (
                "\t\t\tpe_start = 2048\n",
                "",
                "pv \"pv0\": missing pe_start",
            ),
            (
                "\t\t\tstatus = [\"ALLOCATABLE\"]\n",
                "",
                "pv \"pv0\": missing status",
            ),
            (
                "\t\t\tsegment_count = 2\n",
                "",
                "lv \"disk\": missing segment_count",
            ),
            (
                "\t\t\t\tstart_extent = 10\n",
                "",
                "lv \"disk\" segment2: missing start_extent",
            ),
            (
                "\t\t\t\textent_count = 5\n\t\t\t\ttype = \"striped\"\n",
                "\t\t\t\textent_count = 5\n",
                "lv \"disk\" segment2: missing type",
            ),
            (
                "\t\t\tcreation_host = \"cmp-1\"\n\t\t\tsegment_count",
                "\t\t\tsegment_count",
                "lv \"disk\": creation_time without a creation_host string",
            ),
            (
                "\t\t\tcreation_time = 1796097240\n",
                "",
                "lv \"disk\": creation_host without a creation_time",
            ),
            (
                "creation_time = 1796097240",
                "creation_time = \"yesterday\"",
                "lv \"disk\": creation_time is a string, not an integer",
            ),
            (
                "version = 1\n",
                "version = 2\n",
                "unrecognised version number",
            ),
            (
                "contents = \"Text Format Volume Group\"\n",
                "",
                "missing contents field",
            ),
            (
                "format = \"lvm2\"",
                "format = \"lvm1\"",
                "vg: format is not \"lvm2\"",
            ),
            (
                "pe_start = 2048\n",
                "pe_start = 2048\n\t\t\tba_start = 8\n",
                "pv \"pv0\": incomplete bootloader area",
            ),
        ] {
            assert_eq!(malformed(&edited(from, to)), message, "{to}");
        }
        // Hyphens are skipped wherever they are, as id_read_format skips them.
        assert!(read(&edited(
            "id = \"cMa4Rl-bWqv-8Rke-W1PZ-d1B3-h2AA-vC6ruU\"",
            "id = \"cMa4RlbWqv8RkeW1PZd1B3h2AAvC6ruU\""
        ))
        .is_ok());
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_name("a+b.c_d-e"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(".a"), Ok(()));
        assert_eq!(check_name(&"x".repeat(127)), Ok(()));
        assert_eq!(check_name(&"x".repeat(128)), Err(NameError::Length(128)));
        assert_eq!(check_lv_name("vg", &"x".repeat(122)), Ok(()));
        assert_eq!(
            check_lv_name("vg", &"x".repeat(123)),
            Err(NameError::Length(128))
        );
        assert_eq!(reserved_part("snapshot0"), Some("snapshot"));
        assert_eq!(reserved_part("pool_tmeta"), Some("_tmeta"));
        assert_eq!(reserved_part("rimage"), None);
        assert_eq!(reserved_part("disk"), None);
        assert!(check_tag("nova") && !check_tag("") && !check_tag("a b"));
        assert!(check_id("0123456789abcdefghijklmnopqrstu#"));
        assert!(!check_id("0123456789abcdefghijklmnopqrstu"));
        assert_eq!(printable("a\0b"), "a?b");
        assert_eq!(printable(&"x".repeat(200)).len(), NAME_LEN + 3);
    }
}
