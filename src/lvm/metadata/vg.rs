//! One VG's metadata tree turned into the exporter's [`Vg`] and [`Lv`]s, the same figures that
//! `lvm fullreport -a` prints for an inactive VG.
//!
//! Which lvm2 file each rule comes from:
//! - the layout (`physical_volumes`, `logical_volumes`, `segmentN`, `stripes`, the per-type
//!   keys): `lib/format_text/import_vsn1.c` and the segment types' `text_import` functions in
//!   `lib/striped/striped.c`, `lib/thin/thin.c`, `lib/raid/raid.c`, `lib/mirror/mirrored.c`,
//!   `lib/cache_segtype/cache.c`, `lib/snapshot/snapshot.c`, `lib/error/errseg.c`,
//!   `lib/zero/zero.c`;
//! - the status flags (which are known, which go in `status` and which in `flags`):
//!   `lib/format_text/flags.c`;
//! - `vg_size` and `vg_free` (extents times extent size; free = PV extents not in any segment's
//!   area): `lib/metadata/vg.c`, `lib/metadata/pv_manip.c`;
//! - `lv_attr`: `lv_attr_dup_with_info_and_seg_status` in `lib/metadata/lv.c`, for an LV that
//!   is not active (no device-mapper state): the state and open characters are `-`, the health
//!   character `-`; `lv_parent`: `lv_parent` in the same file; the alloc policy character:
//!   `lib/display/display.c`;
//! - `segtype` `linear` for a one-stripe `striped` segment: `lib/metadata/segtype.h`
//!   (`SEG_TYPE_NAME_LINEAR`), as the report names it;
//! - the virtual `snapshotN` LV that links a snapshot's origin and COW store is not reported
//!   (`lib/report/report.c` reports the COW LV under its own name): `lib/metadata/snapshot_manip.c`.
//!
//! Anything this reader does not implement is an [`VgError::Unsupported`] naming it, so that
//! the caller can run `lvm fullreport` instead: unknown segment types and status flags,
//! `lock_type` (a shared VG), `system_id`, an exported or clustered VG, a missing PV, a pvmove
//! in progress.

use rustc_hash::{FxHashMap, FxHashSet};

use super::text::{ConfigTree, Section, Value};
use crate::lvm::{Lv, Vg};

/// Bytes per LVM sector.
const SECTOR: u64 = 512;

/// Why a metadata tree could not be turned into a VG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VgError {
    /// Something the reader does not implement: fall back to `lvm fullreport`.
    #[error("LVM metadata of vg {vg:?}: unsupported: {what}")]
    Unsupported {
        /// The VG.
        vg: String,
        /// What is not implemented, e.g. `segment type "vdo" of lv "x"`.
        what: String,
    },
    /// The tree does not describe a VG as LVM writes one.
    #[error("LVM metadata of vg {vg:?}: {message}")]
    Malformed {
        /// The VG (empty when no VG section was found).
        vg: String,
        /// What is wrong, naming the section and key.
        message: String,
    },
}

/// The VG and all its LVs (hidden ones included, sorted by name) as `lvm fullreport -a` reports
/// them for an inactive VG.
#[derive(Debug, Clone, PartialEq)]
pub struct VgMetadata {
    /// The VG's figures.
    pub vg: Vg,
    /// The VG's `seqno`: the metadata's version, raised by every change.
    pub seqno: u64,
    /// The VG's LVs, sorted by name.
    pub lvs: Vec<Lv>,
}

/// Reads the one VG that a metadata text describes (the top-level section; the other top-level
/// keys, `contents`, `version`, `description`, `creation_*`, are ignored).
pub fn from_tree(tree: &ConfigTree) -> Result<VgMetadata, VgError> {
    let mut sections = tree.root.sections();
    let (name, section) = sections.next().ok_or_else(|| VgError::Malformed {
        vg: String::new(),
        message: "no VG section in the metadata text".into(),
    })?;
    if let Some((other, _)) = sections.next() {
        return Err(VgError::Malformed {
            vg: name.to_string(),
            message: format!("a second top-level section {other:?}"),
        });
    }
    Reader { vg: name }.read(section)
}

/// The kind of an LV as its segments make it, for attr and parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Role {
    #[default]
    Plain,
    ThinPoolData,
    ThinPoolMeta,
    PoolMetaSpare,
    RaidImage,
    RaidMeta,
    MirrorImage,
    MirrorLog,
    CachePoolData,
    CachePoolMeta,
    CacheOrigin,
    Cow,
    Origin,
}

/// What the reader learns of one LV.
struct LvInfo<'t> {
    name: &'t str,
    section: &'t Section,
    visible: bool,
    segtype: &'t str,
    first_segment: &'t Section,
    extents: u64,
    role: Role,
    parent: &'t str,
}

struct Reader<'t> {
    vg: &'t str,
}

impl<'t> Reader<'t> {
    fn unsupported(&self, what: String) -> VgError {
        VgError::Unsupported {
            vg: self.vg.to_string(),
            what,
        }
    }

    fn malformed(&self, message: String) -> VgError {
        VgError::Malformed {
            vg: self.vg.to_string(),
            message,
        }
    }

    fn int(
        &self,
        section: &Section,
        key: &str,
        whose: &dyn Fn() -> String,
    ) -> Result<u64, VgError> {
        match section.value(key) {
            Some(Value::Int(i)) => u64::try_from(*i)
                .map_err(|_| self.malformed(format!("{}: {key} is negative", whose()))),
            Some(other) => Err(self.malformed(format!(
                "{}: {key} is {}, not an integer",
                whose(),
                other.kind()
            ))),
            None => Err(self.malformed(format!("{}: missing {key}", whose()))),
        }
    }

    fn string(
        &self,
        section: &'t Section,
        key: &str,
        whose: &dyn Fn() -> String,
    ) -> Result<&'t str, VgError> {
        match section.value(key) {
            Some(Value::Str(s)) => Ok(s),
            Some(other) => Err(self.malformed(format!(
                "{}: {key} is {}, not a string",
                whose(),
                other.kind()
            ))),
            None => Err(self.malformed(format!("{}: missing {key}", whose()))),
        }
    }

    /// A list of strings (`status`, `flags`, `tags`); absent is empty.
    fn strings(
        &self,
        section: &'t Section,
        key: &str,
        whose: &dyn Fn() -> String,
    ) -> Result<Vec<&'t str>, VgError> {
        match section.value(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Str(s) => Ok(s.as_str()),
                    other => Err(self.malformed(format!(
                        "{}: {key} holds {}, not a string",
                        whose(),
                        other.kind()
                    ))),
                })
                .collect(),
            Some(other) => Err(self.malformed(format!(
                "{}: {key} is {}, not an array",
                whose(),
                other.kind()
            ))),
        }
    }

    /// Refuses a flag outside `known`.
    fn check_flags(
        &self,
        flags: &[&str],
        known: &[&str],
        whose: &dyn Fn() -> String,
    ) -> Result<(), VgError> {
        match flags.iter().find(|flag| !known.contains(flag)) {
            Some(flag) => Err(self.unsupported(format!("{} flag {flag:?}", whose()))),
            None => Ok(()),
        }
    }

    fn read(&self, vg: &'t Section) -> Result<VgMetadata, VgError> {
        let whose_vg = || "vg".to_string();
        for key in ["lock_type", "system_id"] {
            match vg.value(key) {
                None => {}
                Some(Value::Str(s)) if s.is_empty() => {}
                Some(_) => return Err(self.unsupported(format!("vg key {key}"))),
            }
        }
        let mut vg_flags = self.strings(vg, "status", &whose_vg)?;
        vg_flags.extend(self.strings(vg, "flags", &whose_vg)?);
        self.check_flags(
            &vg_flags,
            &["RESIZEABLE", "READ", "WRITE", "NOAUTOACTIVATE"],
            &whose_vg,
        )?;
        let seqno = self.int(vg, "seqno", &whose_vg)?;
        let extent_sectors = self.int(vg, "extent_size", &whose_vg)?;
        if extent_sectors == 0 {
            return Err(self.malformed("vg: extent_size is 0".into()));
        }
        let extent_bytes = extent_sectors
            .checked_mul(SECTOR)
            .ok_or_else(|| self.malformed("vg: extent_size out of range".into()))?;

        // PVs: their extents, by the name the segments use (`pv0`).
        let mut pv_extents: FxHashMap<&str, u64> = FxHashMap::default();
        if let Some(pvs) = vg.section("physical_volumes") {
            for (pv_name, pv) in pvs.sections() {
                let whose = || format!("pv {pv_name:?}");
                let mut flags = self.strings(pv, "status", &whose)?;
                flags.extend(self.strings(pv, "flags", &whose)?);
                self.check_flags(&flags, &["ALLOCATABLE"], &whose)?;
                pv_extents.insert(pv_name, self.int(pv, "pe_count", &whose)?);
            }
        }
        let total_extents = pv_extents
            .values()
            .try_fold(0u64, |sum, n| sum.checked_add(*n))
            .ok_or_else(|| self.malformed("pe_count total out of range".into()))?;

        let mut lvs: Vec<LvInfo<'t>> = Vec::new();
        let mut used_extents = 0u64;
        if let Some(lv_sections) = vg.section("logical_volumes") {
            for (lv_name, lv) in lv_sections.sections() {
                let info = self.read_lv(lv_name, lv, &pv_extents, &mut used_extents)?;
                lvs.push(info);
            }
        }
        let free_extents = total_extents.checked_sub(used_extents).ok_or_else(|| {
            self.malformed(format!(
                "segments use {used_extents} extents, the PVs hold {total_extents}"
            ))
        })?;
        self.assign_roles(&mut lvs)?;
        let size_bytes = total_extents
            .checked_mul(extent_bytes)
            .filter(|b| *b < 1 << 63)
            .ok_or_else(|| self.malformed("vg size out of range".into()))?;
        let mut out = Vec::with_capacity(lvs.len());
        for lv in &lvs {
            if lv.segtype == "snapshot" {
                continue;
            }
            out.push(self.to_lv(lv, &lvs, extent_bytes)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(VgMetadata {
            vg: Vg {
                name: self.vg.to_string(),
                size_bytes,
                free_bytes: free_extents * extent_bytes,
                extent_size_bytes: extent_bytes,
            },
            seqno,
            lvs: out,
        })
    }

    /// Reads one LV's flags and segments; adds the PV extents its segments use to `used`.
    fn read_lv(
        &self,
        lv_name: &'t str,
        lv: &'t Section,
        pv_extents: &FxHashMap<&str, u64>,
        used: &mut u64,
    ) -> Result<LvInfo<'t>, VgError> {
        let whose = || format!("lv {lv_name:?}");
        let mut flags = self.strings(lv, "status", &whose)?;
        flags.extend(self.strings(lv, "flags", &whose)?);
        self.check_flags(&flags, LV_FLAGS, &whose)?;
        let segment_count = self.int(lv, "segment_count", &whose)?;
        if segment_count == 0 || segment_count > 1 << 20 {
            return Err(self.malformed(format!("{}: segment_count {segment_count}", whose())));
        }
        let mut extents = 0u64;
        let mut first: Option<(&'t str, &'t Section)> = None;
        for index in 1..=segment_count {
            let key = format!("segment{index}");
            let seg = lv
                .section(&key)
                .ok_or_else(|| self.malformed(format!("{}: missing {key}", whose())))?;
            let whose_seg = || format!("lv {lv_name:?} {key}");
            // `type` may carry segment flags: `cache-pool+METADATA_FORMAT` (import_vsn1.c).
            let mut type_parts = self.string(seg, "type", &whose_seg)?.split('+');
            let segtype = type_parts.next().unwrap_or_default();
            if let Some(flag) = type_parts.find(|flag| !SEGMENT_FLAGS.contains(flag)) {
                return Err(self.unsupported(format!("segment flag {flag:?} of lv {lv_name:?}")));
            }
            if !SEGMENT_TYPES.contains(&segtype) {
                return Err(self.unsupported(format!("segment type {segtype:?} of lv {lv_name:?}")));
            }
            if let (Some((first_type, _)), true) = (first, segtype == "snapshot") {
                return Err(self.unsupported(format!(
                    "a snapshot segment after a {first_type:?} one in lv {lv_name:?}"
                )));
            }
            let count = self.int(seg, "extent_count", &whose_seg)?;
            extents = extents
                .checked_add(count)
                .ok_or_else(|| self.malformed(format!("{}: extents out of range", whose())))?;
            if let Some(stripes) = seg.value("stripes") {
                *used = used
                    .checked_add(self.stripe_extents(seg, stripes, count, pv_extents, &whose_seg)?)
                    .ok_or_else(|| self.malformed("used extents out of range".into()))?;
            }
            first.get_or_insert((segtype, seg));
        }
        let (segtype, first_segment) = first.expect("segment_count is at least 1");
        Ok(LvInfo {
            name: lv_name,
            section: lv,
            visible: flags.contains(&"VISIBLE"),
            segtype,
            first_segment,
            extents,
            role: Role::Plain,
            parent: "",
        })
    }

    /// The PV extents a striped segment uses: `extent_count / stripe_count` on each stripe.
    fn stripe_extents(
        &self,
        seg: &Section,
        stripes: &Value,
        count: u64,
        pv_extents: &FxHashMap<&str, u64>,
        whose: &dyn Fn() -> String,
    ) -> Result<u64, VgError> {
        let stripe_count = self.int(seg, "stripe_count", whose)?;
        let Value::Array(items) = stripes else {
            return Err(self.malformed(format!("{}: stripes is not an array", whose())));
        };
        if stripe_count == 0 || items.len() as u64 != stripe_count * 2 || count % stripe_count != 0
        {
            return Err(self.malformed(format!(
                "{}: {} stripes entries for stripe_count {stripe_count} and extent_count {count}",
                whose(),
                items.len()
            )));
        }
        let area = count / stripe_count;
        for pair in items.chunks(2) {
            match pair {
                [Value::Str(pv), Value::Int(start)] if *start >= 0 => {
                    let pe_count = *pv_extents.get(pv.as_str()).ok_or_else(|| {
                        self.unsupported(format!(
                            "{}: stripe on a PV not in the VG: {pv:?}",
                            whose()
                        ))
                    })?;
                    if (*start as u64)
                        .checked_add(area)
                        .map_or(true, |end| end > pe_count)
                    {
                        return Err(
                            self.malformed(format!("{}: stripe beyond the end of {pv:?}", whose()))
                        );
                    }
                }
                _ => {
                    return Err(self.malformed(format!(
                        "{}: stripes must be (PV name, start extent) pairs",
                        whose()
                    )))
                }
            }
        }
        Ok(count)
    }

    /// Marks the sub-LVs each LV's first segment names, and their parents.
    fn assign_roles(&self, lvs: &mut [LvInfo<'t>]) -> Result<(), VgError> {
        let index: FxHashMap<&str, usize> =
            lvs.iter().enumerate().map(|(i, lv)| (lv.name, i)).collect();
        let mut links: Vec<(&'t str, Role, &'t str)> = Vec::new();
        let mut cows: Vec<(&'t str, &'t str)> = Vec::new();
        for lv in lvs.iter() {
            let seg = lv.first_segment;
            let whose = || format!("lv {:?} segment1", lv.name);
            let name = lv.name;
            match lv.segtype {
                "thin-pool" => {
                    links.push((self.string(seg, "pool", &whose)?, Role::ThinPoolData, name));
                    links.push((
                        self.string(seg, "metadata", &whose)?,
                        Role::ThinPoolMeta,
                        name,
                    ));
                }
                "cache-pool" => {
                    links.push((self.string(seg, "data", &whose)?, Role::CachePoolData, name));
                    links.push((
                        self.string(seg, "metadata", &whose)?,
                        Role::CachePoolMeta,
                        name,
                    ));
                }
                "cache" => {
                    links.push((self.string(seg, "origin", &whose)?, Role::CacheOrigin, ""));
                }
                "mirror" => {
                    if let Some(Value::Str(log)) = seg.value("mirror_log") {
                        links.push((log, Role::MirrorLog, name));
                    }
                    let Some(Value::Array(mirrors)) = seg.value("mirrors") else {
                        return Err(self.malformed(format!("{}: missing mirrors", whose())));
                    };
                    for pair in mirrors.chunks(2) {
                        match pair {
                            [Value::Str(image), Value::Int(_)] => {
                                links.push((image, Role::MirrorImage, name))
                            }
                            _ => {
                                return Err(self.malformed(format!(
                                    "{}: mirrors must be (LV, extent) pairs",
                                    whose()
                                )))
                            }
                        }
                    }
                }
                raid if raid.starts_with("raid") => {
                    let Some(Value::Array(raids)) = seg.value("raids") else {
                        return Err(self.malformed(format!("{}: missing raids", whose())));
                    };
                    // raid0 without metadata lists images only; the others list meta, image pairs.
                    let with_meta = raid != "raid0";
                    for (i, item) in raids.iter().enumerate() {
                        let Value::Str(sub) = item else {
                            return Err(self.malformed(format!(
                                "{}: raids holds {}",
                                whose(),
                                item.kind()
                            )));
                        };
                        let role = if with_meta && i % 2 == 0 {
                            Role::RaidMeta
                        } else {
                            Role::RaidImage
                        };
                        links.push((sub, role, name));
                    }
                }
                "snapshot" => {
                    if seg.value("merging_store").is_some() {
                        return Err(self.unsupported(format!("merging snapshot {:?}", lv.name)));
                    }
                    let cow = self.string(seg, "cow_store", &whose)?;
                    let origin = self.string(seg, "origin", &whose)?;
                    links.push((cow, Role::Cow, ""));
                    links.push((origin, Role::Origin, ""));
                    cows.push((cow, origin));
                }
                "thin" => {
                    if seg.value("external_origin").is_some() {
                        return Err(
                            self.unsupported(format!("external origin of thin lv {:?}", lv.name))
                        );
                    }
                    let pool = self.string(seg, "thin_pool", &whose)?;
                    if index.get(pool).map(|&i| lvs[i].segtype) != Some("thin-pool") {
                        return Err(self.malformed(format!(
                            "{}: thin_pool {pool:?} is not a thin pool",
                            whose()
                        )));
                    }
                }
                _ => {}
            }
        }
        let mut linked: FxHashSet<&str> = FxHashSet::default();
        for (sub, role, parent) in links {
            let &i = index.get(sub).ok_or_else(|| {
                self.malformed(format!("lv {parent:?} names a missing lv {sub:?}"))
            })?;
            if role != Role::Origin && !linked.insert(sub) {
                return Err(self.unsupported(format!("lv {sub:?} used by more than one segment")));
            }
            let lv = &mut lvs[i];
            lv.role = role;
            if !lv.visible {
                lv.parent = parent;
            }
        }
        // A COW store is as visible as its origin, whatever its own flags say (`lv_is_visible`
        // in lib/metadata/snapshot_manip.c).
        for (cow, origin) in cows {
            let origin = &lvs[index[origin]];
            if matches!(origin.segtype, "error" | "zero") || origin.role != Role::Origin {
                return Err(
                    self.unsupported(format!("snapshot of virtual origin {:?}", origin.name))
                );
            }
            let visible = origin.visible;
            lvs[index[cow]].visible = visible;
        }
        // The metadata spare: hidden, linear, not part of any pool (lib/metadata/pool_manip.c).
        for lv in lvs.iter_mut() {
            if !lv.visible
                && lv.role == Role::Plain
                && lv.name.starts_with("lvol")
                && lv.name.ends_with("_pmspare")
            {
                lv.role = Role::PoolMetaSpare;
            }
        }
        Ok(())
    }

    fn to_lv(&self, lv: &LvInfo<'t>, all: &[LvInfo<'t>], extent_bytes: u64) -> Result<Lv, VgError> {
        let whose = || format!("lv {:?}", lv.name);
        let size_bytes = lv
            .extents
            .checked_mul(extent_bytes)
            .filter(|b| *b < 1 << 63)
            .ok_or_else(|| self.malformed(format!("{}: size out of range", whose())))?;
        let pool_lv = match lv.segtype {
            "thin" => self.string(lv.first_segment, "thin_pool", &whose)?,
            "cache" => self.string(lv.first_segment, "cache_pool", &whose)?,
            _ => "",
        };
        // The report sorts tags (`_tags_disp` in lib/report/report.c).
        let mut tags: Vec<String> = self
            .strings(lv.section, "tags", &whose)?
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        tags.sort_unstable();
        let segtype = match lv.segtype {
            "striped" if self.int(lv.first_segment, "stripe_count", &whose)? == 1 => "linear",
            other => other,
        };
        Ok(Lv {
            vg: self.vg.to_string(),
            name: lv.name.to_string(),
            hidden: !lv.visible,
            size_bytes,
            attr: self.attr(lv, all, &whose)?,
            segtype: segtype.to_string(),
            pool_lv: pool_lv.to_string(),
            parent: lv.parent.to_string(),
            data_used_ratio: None,
            tags,
        })
    }

    /// `lv_attr` for an inactive LV (see the module docs).
    fn attr(
        &self,
        lv: &LvInfo<'t>,
        all: &[LvInfo<'t>],
        whose: &dyn Fn() -> String,
    ) -> Result<String, VgError> {
        let mut flags = self.strings(lv.section, "status", whose)?;
        flags.extend(self.strings(lv.section, "flags", whose)?);
        let has = |flag: &str| flags.contains(&flag);
        let raid = lv.segtype.starts_with("raid");
        let volume_type = match (lv.role, lv.segtype) {
            (Role::Origin, _) => 'o',
            (
                Role::ThinPoolMeta | Role::CachePoolMeta | Role::PoolMetaSpare | Role::RaidMeta,
                _,
            ) => 'e',
            (Role::CachePoolData, _) | (_, "cache" | "cache-pool") => 'C',
            _ if raid => {
                if has("NOTSYNCED") {
                    'R'
                } else {
                    'r'
                }
            }
            (_, "mirror") => {
                if has("NOTSYNCED") {
                    'M'
                } else {
                    'm'
                }
            }
            (_, "thin") => 'V',
            (_, "error" | "zero") => 'v',
            (_, "thin-pool") => 't',
            (Role::ThinPoolData, _) => 'T',
            // Not in sync: LVM cannot tell without the kernel (lv_mirror_image_in_sync,
            // lv_raid_image_in_sync read the active device).
            (Role::MirrorImage | Role::RaidImage, _) => 'I',
            (Role::MirrorLog, _) => 'l',
            (Role::Cow, _) => 's',
            (Role::CacheOrigin, _) => 'o',
            _ => '-',
        };
        let permission = if has("WRITE") {
            'w'
        } else if has("READ") {
            'r'
        } else {
            '-'
        };
        let policy = match lv.section.value("allocation_policy") {
            None => 'i',
            Some(Value::Str(policy)) => match policy.as_str() {
                "contiguous" => 'c',
                "cling" => 'l',
                "cling_by_tags" => 't',
                "normal" => 'n',
                "anywhere" => 'a',
                "inherit" => 'i',
                other => {
                    return Err(
                        self.unsupported(format!("{}: allocation_policy {other:?}", whose()))
                    )
                }
            },
            Some(other) => {
                return Err(self.malformed(format!(
                    "{}: allocation_policy is {}",
                    whose(),
                    other.kind()
                )))
            }
        };
        let policy = if has("LOCKED") {
            policy.to_ascii_uppercase()
        } else {
            policy
        };
        let minor = if has("FIXED_MINOR") { 'm' } else { '-' };
        let target = match (lv.role, lv.segtype) {
            (_, "thin-pool" | "thin") => 't',
            (Role::CacheOrigin, _) | (_, "cache-pool" | "cache") => 'C',
            (Role::RaidImage | Role::RaidMeta, _) => 'r',
            _ if raid => 'r',
            (Role::MirrorImage | Role::MirrorLog, _) | (_, "mirror") => 'm',
            (Role::Cow | Role::Origin, _) => 's',
            (_, "error" | "zero") => 'v',
            _ => '-',
        };
        let zero_pool = match lv.segtype {
            "thin-pool" => Some(lv.first_segment),
            "thin" => {
                let pool = self.string(lv.first_segment, "thin_pool", whose)?;
                all.iter().find(|p| p.name == pool).map(|p| p.first_segment)
            }
            _ => None,
        };
        let zero = match zero_pool.and_then(|seg| seg.value("zero_new_blocks")) {
            Some(Value::Int(1)) => 'z',
            _ => '-',
        };
        let skip = if has("ACTIVATION_SKIP") { 'k' } else { '-' };
        Ok([
            volume_type,
            permission,
            policy,
            minor,
            '-',
            '-',
            target,
            zero,
            '-',
            skip,
        ]
        .iter()
        .collect())
    }
}

/// LV status and compatibility flags this reader understands (`lib/format_text/flags.c`).
const LV_FLAGS: &[&str] = &[
    "READ",
    "WRITE",
    "VISIBLE",
    "FIXED_MINOR",
    "LOCKED",
    "NOTSYNCED",
    "REBUILD",
    "WRITEMOSTLY",
    "ACTIVATION_SKIP",
    "NOAUTOACTIVATE",
    "ERROR_WHEN_FULL",
    "METADATA_FORMAT",
];

/// Flags a segment type may carry after a `+` that change nothing this reader reports.
const SEGMENT_FLAGS: &[&str] = &["METADATA_FORMAT", "CROP_METADATA"];

/// Segment types this reader understands.
const SEGMENT_TYPES: &[&str] = &[
    "striped",
    "thin-pool",
    "thin",
    "mirror",
    "raid1",
    "raid4",
    "raid5",
    "raid5_la",
    "raid5_ra",
    "raid5_ls",
    "raid5_rs",
    "raid5_n",
    "raid6",
    "raid6_zr",
    "raid6_nr",
    "raid6_nc",
    "raid10",
    "raid0",
    "raid0_meta",
    "cache-pool",
    "cache",
    "snapshot",
    "error",
    "zero",
];
