//! One VG's metadata tree turned into a [`Vg`] and its [`Lv`]s, the same figures that
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

use crate::text::{ConfigSection, ConfigTree, Value};

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

/// One volume group as LVM reports it. Sizes are bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vg {
    /// `vg_name`.
    pub name: String,
    /// `vg_size`: the usable size of the VG (all PVs, minus metadata areas).
    pub size_bytes: u64,
    /// `vg_free`: bytes in unallocated extents.
    pub free_bytes: u64,
    /// `vg_extent_size`: the allocation grain (4 MiB by default); 0 when the report lacks it.
    pub extent_size_bytes: u64,
}

/// One logical volume as `lvs -a` reports it, hidden sub-LVs included.
#[derive(Debug, Clone, PartialEq)]
pub struct Lv {
    /// `vg_name`: the VG the LV lives in.
    pub vg: String,
    /// `lv_name` without the brackets LVM puts around hidden LVs (`[pool_tdata]` -> `pool_tdata`).
    pub name: String,
    /// True when LVM printed the name in brackets: an internal sub-LV (thin pool data/metadata,
    /// the pool metadata spare, raid/mirror images) that the user does not see in plain `lvs`.
    pub hidden: bool,
    /// `lv_size`: the LV's size. For thin LVs this is the *virtual* size, which consumes nothing
    /// of the VG by itself.
    pub size_bytes: u64,
    /// `lv_attr`, e.g. `-wi-a-----`, `twi---tz--`, `Vwi---tz--`.
    pub attr: String,
    /// `segtype`: `linear`, `striped`, `thin`, `thin-pool`, `raid1`, ...
    pub segtype: String,
    /// `pool_lv`: for thin LVs, the thin pool they live in; empty otherwise.
    pub pool_lv: String,
    /// `lv_parent`: for hidden sub-LVs, the LV they are part of (`pool` for `[pool_tdata]`); empty otherwise.
    pub parent: String,
    /// `data_percent` / 100 for thin pools and thin LVs; `None` when LVM leaves it empty.
    pub data_used_ratio: Option<f64>,
    /// `metadata_percent` / 100 for active thin pools; `None` when LVM leaves it empty (an
    /// inactive pool, any other LV, or a saved report without the field).
    pub metadata_used_ratio: Option<f64>,
    /// `lv_time` in seconds since the epoch (the metadata's `creation_time`); `None` when LVM
    /// has none (metadata written without it, or a saved report without the field).
    pub creation_unix: Option<i64>,
    /// `lv_tags`, split on commas.
    pub tags: Vec<String>,
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

/// Reads the one VG that a metadata text describes (the top-level section; of the other
/// top-level keys `contents` and `version` must be LVM's, `description` and `creation_*` are
/// ignored), after [`crate::validate::validate`] has checked it as LVM's import would.
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
    crate::validate::validate(tree, name, section)?;
    Reader { vg: name }.read(section)
}

/// The kind of an LV as its segments make it, for attr and parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Role {
    #[default]
    Plain,
    ThinPoolData,
    ThinPoolMeta,
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
    section: &'t ConfigSection<'t>,
    visible: bool,
    segtype: &'t str,
    first_segment: &'t ConfigSection<'t>,
    extents: u64,
    role: Role,
    parent: &'t str,
    /// The pool metadata spare: a hidden LV with `_pmspare` in its name (import_vsn1.c).
    pmspare: bool,
}

/// Extents `start..start + len` of one PV, used by a segment.
struct PvArea<'t> {
    pv: &'t str,
    start: u64,
    len: u64,
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
        section: &ConfigSection,
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
        section: &'t ConfigSection,
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
        section: &'t ConfigSection,
        key: &str,
        whose: &dyn Fn() -> String,
    ) -> Result<Vec<&'t str>, VgError> {
        match section.value(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Str(s) => Ok(s.as_ref()),
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

    /// The flags of a VG, PV or LV as LVM's `read_flags` (lib/format_text/flags.c) reads them:
    /// `status` holds status flags (an unknown one is an error in LVM too), `flags` holds
    /// compatibility flags (a status flag there is ignored, as LVM ignores it). A flag the
    /// reader does not implement, or one LVM would skip because it does not know it, is
    /// [`VgError::Unsupported`].
    fn flags(
        &self,
        section: &'t ConfigSection,
        table: &FlagTable,
        whose: &dyn Fn() -> String,
    ) -> Result<Vec<&'t str>, VgError> {
        let mut flags = Vec::new();
        for flag in self.strings(section, "status", whose)? {
            if !table.status.contains(&flag) {
                return Err(self.unsupported(format!("{} status flag {flag:?}", whose())));
            }
            flags.push(flag);
        }
        for flag in self.strings(section, "flags", whose)? {
            if table.compatible.contains(&flag) {
                flags.push(flag);
            } else if !table.status.contains(&flag) {
                return Err(self.unsupported(format!("{} flag {flag:?}", whose())));
            }
        }
        Ok(flags)
    }

    fn read(&self, vg: &'t ConfigSection) -> Result<VgMetadata, VgError> {
        let whose_vg = || "vg".to_string();
        for key in ["lock_type", "system_id"] {
            match vg.value(key) {
                None => {}
                Some(Value::Str(s)) if s.is_empty() => {}
                Some(_) => return Err(self.unsupported(format!("vg key {key}"))),
            }
        }
        self.flags(vg, &VG_FLAGS, &whose_vg)?;
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
                self.flags(pv, &PV_FLAGS, &whose)?;
                pv_extents.insert(pv_name, self.int(pv, "pe_count", &whose)?);
            }
        }
        let total_extents = pv_extents
            .values()
            .try_fold(0u64, |sum, n| sum.checked_add(*n))
            .ok_or_else(|| self.malformed("pe_count total out of range".into()))?;

        let mut lvs: Vec<LvInfo<'t>> = Vec::new();
        let mut areas: Vec<PvArea<'t>> = Vec::new();
        if let Some(lv_sections) = vg.section("logical_volumes") {
            for (lv_name, lv) in lv_sections.sections() {
                let info = self.read_lv(lv_name, lv, &pv_extents, &mut areas)?;
                lvs.push(info);
            }
        }
        let used_extents = self.used_extents(&mut areas)?;
        if lvs.iter().filter(|lv| lv.pmspare).count() > 1 {
            return Err(self.malformed("more than one pool metadata spare".into()));
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
        // Thin pools' first segments, for their thin LVs' zeroing attr character.
        let pools: FxHashMap<&str, &ConfigSection> = lvs
            .iter()
            .filter(|lv| lv.segtype == "thin-pool")
            .map(|lv| (lv.name, lv.first_segment))
            .collect();
        let mut out = Vec::with_capacity(lvs.len());
        for lv in &lvs {
            if lv.segtype == "snapshot" {
                continue;
            }
            out.push(self.to_lv(lv, &pools, extent_bytes)?);
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
        lv: &'t ConfigSection,
        pv_extents: &FxHashMap<&str, u64>,
        areas: &mut Vec<PvArea<'t>>,
    ) -> Result<LvInfo<'t>, VgError> {
        let whose = || format!("lv {lv_name:?}");
        let flags = self.flags(lv, &LV_FLAGS, &whose)?;
        let segment_count = self.int(lv, "segment_count", &whose)?;
        if segment_count == 0 || segment_count > 1 << 20 {
            return Err(self.malformed(format!("{}: segment_count {segment_count}", whose())));
        }
        let mut extents = 0u64;
        let mut first: Option<(&'t str, &'t ConfigSection)> = None;
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
            let start = self.int(seg, "start_extent", &whose_seg)?;
            if start != extents {
                return Err(self.malformed(format!(
                    "{}: start_extent {start}, the segments before it end at {extents}",
                    whose_seg()
                )));
            }
            let count = self.int(seg, "extent_count", &whose_seg)?;
            extents = extents
                .checked_add(count)
                .ok_or_else(|| self.malformed(format!("{}: extents out of range", whose())))?;
            if let Some(stripes) = seg.value("stripes") {
                self.stripe_areas(seg, stripes, count, pv_extents, &whose_seg, areas)?;
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
            pmspare: !flags.contains(&"VISIBLE") && lv_name.contains("_pmspare"),
        })
    }

    /// Adds the PV areas of a striped segment: `extent_count / stripe_count` extents from each
    /// stripe's start.
    fn stripe_areas(
        &self,
        seg: &ConfigSection,
        stripes: &'t Value,
        count: u64,
        pv_extents: &FxHashMap<&str, u64>,
        whose: &dyn Fn() -> String,
        areas: &mut Vec<PvArea<'t>>,
    ) -> Result<(), VgError> {
        let stripe_count = self.int(seg, "stripe_count", whose)?;
        let Value::Array(items) = stripes else {
            return Err(self.malformed(format!("{}: stripes is not an array", whose())));
        };
        if stripe_count == 0
            || items.len() as u64 / 2 != stripe_count
            || items.len() % 2 != 0
            || !count.is_multiple_of(stripe_count)
        {
            return Err(self.malformed(format!(
                "{}: {} stripes entries for stripe_count {stripe_count} and extent_count {count}",
                whose(),
                items.len()
            )));
        }
        let len = count / stripe_count;
        for pair in items.chunks(2) {
            let [Value::Str(pv), Value::Int(start)] = pair else {
                return Err(self.malformed(format!(
                    "{}: stripes must be (PV name, start extent) pairs",
                    whose()
                )));
            };
            let pe_count = *pv_extents.get(pv.as_ref()).ok_or_else(|| {
                self.malformed(format!("{}: stripe on {pv:?}, not a PV of the VG", whose()))
            })?;
            let start = u64::try_from(*start)
                .ok()
                .filter(|start| start.checked_add(len).is_some_and(|end| end <= pe_count));
            let Some(start) = start else {
                return Err(
                    self.malformed(format!("{}: stripe outside the extents of {pv:?}", whose()))
                );
            };
            areas.push(PvArea { pv, start, len });
        }
        Ok(())
    }

    /// The extents all segments use, refusing areas that overlap (LVM's `check_pv_segments`
    /// in lib/metadata/pv_manip.c refuses such metadata too).
    fn used_extents(&self, areas: &mut [PvArea<'t>]) -> Result<u64, VgError> {
        areas.sort_unstable_by(|a, b| (a.pv, a.start).cmp(&(b.pv, b.start)));
        for pair in areas.windows(2) {
            if pair[0].pv == pair[1].pv && pair[0].start + pair[0].len > pair[1].start {
                return Err(self.malformed(format!(
                    "two segments use extent {} of {:?}",
                    pair[1].start, pair[1].pv
                )));
            }
        }
        // Areas lie within their PV and do not overlap, so the sum fits in the PV total.
        Ok(areas.iter().map(|area| area.len).sum())
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
                    // raid0 lists its images in `raid0_lvs`; the others list (meta, image)
                    // pairs in `raids` (lib/raid/raid.c).
                    let (key, with_meta) = if raid == "raid0" {
                        ("raid0_lvs", false)
                    } else {
                        ("raids", true)
                    };
                    let Some(Value::Array(raids)) = seg.value(key) else {
                        return Err(self.malformed(format!("{}: missing {key}", whose())));
                    };
                    if with_meta && raids.len() % 2 != 0 {
                        return Err(self
                            .malformed(format!("{}: raids must be (meta, image) pairs", whose())));
                    }
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
        Ok(())
    }

    fn to_lv(
        &self,
        lv: &LvInfo<'t>,
        pools: &FxHashMap<&str, &ConfigSection>,
        extent_bytes: u64,
    ) -> Result<Lv, VgError> {
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
            attr: self.attr(lv, pools, &whose)?,
            segtype: segtype.to_string(),
            pool_lv: pool_lv.to_string(),
            parent: lv.parent.to_string(),
            data_used_ratio: None,
            metadata_used_ratio: None,
            creation_unix: self.creation_time(lv.section, &whose)?,
            tags,
        })
    }

    /// `creation_time`, as `lv_time` reports it: none when absent or 0 (LVM prints nothing). A
    /// negative one (old 32-bit LVM wrote some) is what LVM "repairs" on reading: left to LVM.
    fn creation_time(
        &self,
        section: &ConfigSection,
        whose: &dyn Fn() -> String,
    ) -> Result<Option<i64>, VgError> {
        match section.value("creation_time") {
            None | Some(Value::Int(0)) => Ok(None),
            Some(Value::Int(seconds)) if *seconds > 0 => Ok(Some(*seconds)),
            Some(other) => Err(self.unsupported(format!(
                "{}: creation_time {}",
                whose(),
                match other {
                    Value::Int(seconds) => seconds.to_string(),
                    other => other.kind().to_string(),
                }
            ))),
        }
    }

    /// `lv_attr` for an inactive LV (see the module docs).
    fn attr(
        &self,
        lv: &LvInfo<'t>,
        pools: &FxHashMap<&str, &ConfigSection>,
        whose: &dyn Fn() -> String,
    ) -> Result<String, VgError> {
        let flags = self.flags(lv.section, &LV_FLAGS, whose)?;
        let has = |flag: &str| flags.contains(&flag);
        let raid = lv.segtype.starts_with("raid");
        let volume_type = match (lv.role, lv.segtype) {
            (Role::Origin, _) => 'o',
            _ if lv.pmspare => 'e',
            (Role::ThinPoolMeta | Role::CachePoolMeta | Role::RaidMeta, _) => 'e',
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
            Some(Value::Str(policy)) => match policy.as_ref() {
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
                pools.get(pool).copied()
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

/// The flags of one kind of object that this reader implements, by where LVM writes them.
struct FlagTable {
    /// Flags of the `status` list.
    status: &'static [&'static str],
    /// Flags of the `flags` list.
    compatible: &'static [&'static str],
}

/// VG flags implemented (`_vg_flags` in lib/format_text/flags.c; `EXPORTED`, `PVMOVE`,
/// `CLUSTERED`, `SHARED` and `WRITE_LOCKED` are not).
const VG_FLAGS: FlagTable = FlagTable {
    status: &["RESIZEABLE", "READ", "WRITE"],
    compatible: &["NOAUTOACTIVATE"],
};

/// PV flags implemented (`_pv_flags`; `EXPORTED` and `MISSING` are not).
const PV_FLAGS: FlagTable = FlagTable {
    status: &["ALLOCATABLE"],
    compatible: &[],
};

/// LV flags implemented (`_lv_flags`; `PVMOVE`, `WRITE_LOCKED`, `CACHE_VOL` and the reshape
/// flags are not).
const LV_FLAGS: FlagTable = FlagTable {
    status: &[
        "READ",
        "WRITE",
        "FIXED_MINOR",
        "VISIBLE",
        "LOCKED",
        "NOTSYNCED",
        "REBUILD",
        "WRITEMOSTLY",
    ],
    compatible: &["ACTIVATION_SKIP", "NOAUTOACTIVATE", "ERROR_WHEN_FULL"],
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    const MIB: u64 = 1024 * 1024;

    /// A VG `vg1` of two PVs of 100 and 50 extents of 4 MiB with `lvs` in `logical_volumes`
    /// and `vg_extra` in the VG section.
    fn vg_text(vg_extra: &str, lvs: &str) -> String {
        format!(
            "contents = \"Text Format Volume Group\"\nversion = 1\n\
             vg1 {{\nid = \"{VG_ID}\"\nseqno = 7\nformat = \"lvm2\"\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = []\n\
             extent_size = 8192\nmax_lv = 0\nmax_pv = 0\n{vg_extra}\n\
             physical_volumes {{\npv0 {{\nid = \"{PV0_ID}\"\ndevice = \"/dev/sda\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\npe_start = 2048\npe_count = 100\n}}\n\
             pv1 {{\nid = \"{PV1_ID}\"\nstatus = [\"ALLOCATABLE\"]\npe_start = 2048\npe_count = 50\n}}\n}}\n\
             logical_volumes {{\n{lvs}\n}}\n}}\n"
        )
    }

    fn read(vg_extra: &str, lvs: &str) -> Result<VgMetadata, VgError> {
        from_tree(&text::parse(&vg_text(vg_extra, lvs)).expect("text parses"))
    }

    fn unsupported(vg_extra: &str, lvs: &str) -> String {
        match read(vg_extra, lvs) {
            Err(VgError::Unsupported { what, .. }) => what,
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn malformed(vg_extra: &str, lvs: &str) -> String {
        match read(vg_extra, lvs) {
            Err(VgError::Malformed { message, .. }) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn lv<'a>(vg: &'a VgMetadata, name: &str) -> &'a Lv {
        vg.lvs.iter().find(|lv| lv.name == name).expect(name)
    }

    /// An LV section with the given status and segments (each a segment body without
    /// `start_extent`, which is filled in from the extent counts).
    fn lv_text(name: &str, status: &str, extra: &str, segments: &[(u64, &str)]) -> String {
        let mut start = 0;
        let mut body = String::new();
        for (i, (count, seg)) in segments.iter().enumerate() {
            body.push_str(&format!(
                "segment{} {{\nstart_extent = {start}\nextent_count = {count}\n{seg}\n}}\n",
                i + 1
            ));
            start += count;
        }
        format!(
            "{name} {{\nid = \"{}\"\nstatus = [{status}]\nflags = []\n{extra}\nsegment_count = {}\n{body}}}\n",
            test_id(name),
            segments.len()
        )
    }

    /// Ids in LVM's format for the test VG and its PVs.
    const VG_ID: &str = "Dn5752-20yZ-We0l-NjhF-l0W7-Q2N0-IPxAnF";
    const PV0_ID: &str = "pv0000-0000-0000-0000-0000-0000-000000";
    const PV1_ID: &str = "pv1111-1111-1111-1111-1111-1111-111111";

    /// A distinct id in LVM's format for each LV name (its letters and digits, padded).
    fn test_id(name: &str) -> String {
        let letters: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        format!("{letters:0<32}")
    }

    const V: &str = "\"READ\", \"WRITE\", \"VISIBLE\"";
    const H: &str = "\"READ\", \"WRITE\"";

    fn linear(pv: &str, start: i64) -> String {
        format!("type = \"striped\"\nstripe_count = 1\nstripes = [\"{pv}\", {start}]")
    }

    #[test]
    fn empty_vg_sizes() {
        let vg = from_tree(&text::parse(&vg_text("", "")).unwrap()).unwrap();
        assert_eq!(
            vg.vg,
            Vg {
                name: "vg1".into(),
                size_bytes: 150 * 4 * MIB,
                free_bytes: 150 * 4 * MIB,
                extent_size_bytes: 4 * MIB,
            }
        );
        assert_eq!(vg.seqno, 7);
        assert!(vg.lvs.is_empty());
        // No logical_volumes section at all (LVM leaves it out of an empty VG).
        let text = vg_text("", "").replace("logical_volumes {\n\n}\n", "");
        assert_eq!(from_tree(&text::parse(&text).unwrap()).unwrap(), vg);
    }

    #[test]
    fn creation_time_is_lv_time() {
        let with = |extra: &str| lv_text("a", V, extra, &[(1, &linear("pv0", 0))]);
        let created = |extra: &str| lv(&read("", &with(extra)).unwrap(), "a").creation_unix;
        assert_eq!(
            created("creation_time = 1796102750\ncreation_host = \"cmp-7\""),
            Some(1_796_102_750)
        );
        // Absent or 0: LVM prints an empty lv_time.
        assert_eq!(created(""), None);
        assert_eq!(created("creation_time = 0\ncreation_host = \"h\""), None);
        // A negative one is what LVM repairs when it reads it: left to LVM.
        let what = unsupported("", &with("creation_time = -5\ncreation_host = \"h\""));
        assert_eq!(what, "lv \"a\": creation_time -5");
        // Not an integer, or without its host: LVM refuses it (`_read_lv`).
        for extra in ["creation_time = \"yesterday\"", "creation_time = 5"] {
            let message = malformed("", &with(extra));
            assert!(message.starts_with("lv \"a\": creation_time "), "{message}");
        }
    }

    #[test]
    fn linear_striped_and_multi_segment() {
        let lvs = lv_text(
            "multi",
            V,
            "tags = [\"z\", \"nova\", \"\"]",
            &[(10, &linear("pv0", 0)), (5, &linear("pv1", 0))],
        ) + &lv_text(
            "wide",
            "\"READ\", \"VISIBLE\"",
            "allocation_policy = \"contiguous\"",
            &[(
                6,
                "type = \"striped\"\nstripe_count = 2\nstripe_size = 128\nstripes = [\"pv0\", 10, \"pv1\", 5]",
            )],
        );
        let vg = read("", &lvs).unwrap();
        assert_eq!(vg.vg.free_bytes, (150 - 15 - 6) * 4 * MIB);
        let multi = lv(&vg, "multi");
        assert_eq!(
            (
                multi.size_bytes,
                multi.segtype.as_str(),
                multi.attr.as_str(),
                multi.hidden
            ),
            (15 * 4 * MIB, "linear", "-wi-------", false)
        );
        assert_eq!(multi.tags, ["nova", "z"], "sorted, empty ones dropped");
        let wide = lv(&vg, "wide");
        assert_eq!(
            (wide.size_bytes, wide.segtype.as_str(), wide.attr.as_str()),
            (6 * 4 * MIB, "striped", "-rc-------")
        );
        assert_eq!(
            vg.lvs.iter().map(|lv| lv.vg.as_str()).collect::<Vec<_>>(),
            ["vg1", "vg1"]
        );
    }

    #[test]
    fn thin_pool_sub_lvs_and_thin_volumes() {
        let lvs = lv_text(
            "pool",
            V,
            "",
            &[(20, "type = \"thin-pool+CROP_METADATA\"\nmetadata = \"pool_tmeta\"\npool = \"pool_tdata\"\ntransaction_id = 1\nchunk_size = 128\nzero_new_blocks = 1")],
        ) + &lv_text("pool_tdata", H, "", &[(20, &linear("pv0", 0))])
            + &lv_text("pool_tmeta", H, "", &[(1, &linear("pv0", 20))])
            + &lv_text("lvol0_pmspare", H, "", &[(1, &linear("pv0", 21))])
            + &lv_text(
                "thin",
                V,
                "flags = [\"ACTIVATION_SKIP\"]",
                &[(500, "type = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = 0\ndevice_id = 1")],
            );
        // `flags` is given twice in the thin LV: a repeated key, refused by the text parser.
        assert!(text::parse(&vg_text("", &lvs)).is_err());
        let lvs = lvs.replace(
            "flags = []\nflags = [\"ACTIVATION_SKIP\"]",
            "flags = [\"ACTIVATION_SKIP\"]",
        );
        let vg = read("", &lvs).unwrap();
        assert_eq!(vg.vg.free_bytes, (150 - 22) * 4 * MIB);
        let row = |name: &str| {
            let lv = lv(&vg, name);
            (
                lv.hidden,
                lv.size_bytes / (4 * MIB),
                lv.attr.clone(),
                lv.segtype.clone(),
                lv.pool_lv.clone(),
                lv.parent.clone(),
            )
        };
        let s = |x: &str| x.to_string();
        assert_eq!(
            row("pool"),
            (false, 20, s("twi---tz--"), s("thin-pool"), s(""), s(""))
        );
        assert_eq!(
            row("pool_tdata"),
            (true, 20, s("Twi-------"), s("linear"), s(""), s("pool"))
        );
        assert_eq!(
            row("pool_tmeta"),
            (true, 1, s("ewi-------"), s("linear"), s(""), s("pool"))
        );
        assert_eq!(
            row("lvol0_pmspare"),
            (true, 1, s("ewi-------"), s("linear"), s(""), s(""))
        );
        assert_eq!(
            row("thin"),
            (false, 500, s("Vwi---tz-k"), s("thin"), s("pool"), s(""))
        );
        assert!(vg.lvs.iter().all(|lv| lv.data_used_ratio.is_none()));
    }

    #[test]
    fn snapshot_cow_is_reported_and_the_link_lv_is_not() {
        let lvs = lv_text("origin", V, "", &[(10, &linear("pv0", 0))])
            + &lv_text("snap", H, "", &[(2, &linear("pv0", 10))])
            + &lv_text(
                "snapshot0",
                V,
                "",
                &[(10, "type = \"snapshot\"\nchunk_size = 8\norigin = \"origin\"\ncow_store = \"snap\"")],
            );
        let vg = read("", &lvs).unwrap();
        assert_eq!(
            vg.lvs
                .iter()
                .map(|lv| (lv.name.as_str(), lv.attr.as_str(), lv.hidden))
                .collect::<Vec<_>>(),
            [
                ("origin", "owi---s---", false),
                ("snap", "swi---s---", false)
            ]
        );
        assert_eq!(vg.vg.free_bytes, (150 - 12) * 4 * MIB);
        let merging = lvs.replace(
            "cow_store = \"snap\"",
            "cow_store = \"snap\"\nmerging_store = \"snap\"",
        );
        assert_eq!(unsupported("", &merging), "merging snapshot \"snapshot0\"");
    }

    #[test]
    fn what_is_not_implemented_is_unsupported() {
        let plain = lv_text("a", V, "", &[(1, &linear("pv0", 0))]);
        assert_eq!(
            unsupported("lock_type = \"sanlock\"", &plain),
            "vg key lock_type"
        );
        assert_eq!(
            unsupported("system_id = \"host\"", &plain),
            "vg key system_id"
        );
        assert!(read("system_id = \"\"", &plain).is_ok());
        let exported = vg_text("", &plain).replace("\"RESIZEABLE\",", "\"EXPORTED\",");
        assert!(matches!(
            from_tree(&text::parse(&exported).unwrap()),
            Err(VgError::Unsupported { what, .. }) if what == "vg status flag \"EXPORTED\""
        ));
        let missing = vg_text("", &plain).replace(
            "[\"ALLOCATABLE\"]\nflags = []",
            "[\"ALLOCATABLE\"]\nflags = [\"MISSING\"]",
        );
        assert!(matches!(
            from_tree(&text::parse(&missing).unwrap()),
            Err(VgError::Unsupported { what, .. }) if what == "pv \"pv0\" flag \"MISSING\""
        ));
        assert_eq!(
            unsupported("", &lv_text("v", V, "", &[(1, "type = \"vdo\"")])),
            "segment type \"vdo\" of lv \"v\""
        );
        assert_eq!(
            unsupported("", &lv_text("r", V, "", &[(1, "type = \"raid5+RESHAPE\"")])),
            "segment flag \"RESHAPE\" of lv \"r\""
        );
        assert_eq!(
            unsupported(
                "",
                &lv_text(
                    "p",
                    "\"READ\", \"WRITE\", \"PVMOVE\"",
                    "",
                    &[(1, &linear("pv0", 0))]
                )
            ),
            "lv \"p\" status flag \"PVMOVE\""
        );
        assert_eq!(
            unsupported(
                "",
                &lv_text(
                    "c",
                    V,
                    "",
                    &[(
                        1,
                        "type = \"thin\"\nthin_pool = \"p\"\nexternal_origin = \"o\""
                    )]
                )
            ),
            "external origin of thin lv \"c\""
        );
        // A status flag in the `flags` list is ignored, as LVM ignores it; a compatibility flag
        // in the `status` list is an error in LVM, so not implemented here.
        let misplaced = lv_text("a", H, "", &[(1, &linear("pv0", 0))])
            .replace("flags = []", "flags = [\"VISIBLE\"]");
        assert!(lv(&read("", &misplaced).unwrap(), "a").hidden);
        let misplaced = lv_text(
            "a",
            "\"READ\", \"ACTIVATION_SKIP\"",
            "",
            &[(1, &linear("pv0", 0))],
        );
        assert_eq!(
            unsupported("", &misplaced),
            "lv \"a\" status flag \"ACTIVATION_SKIP\""
        );
        let error = VgError::Unsupported {
            vg: "vg1".into(),
            what: "vg key lock_type".into(),
        };
        assert_eq!(
            error.to_string(),
            "LVM metadata of vg \"vg1\": unsupported: vg key lock_type"
        );
    }

    #[test]
    fn inconsistent_metadata_is_malformed() {
        let one = |seg: &str| lv_text("a", V, "", &[(4, seg)]);
        assert_eq!(
            malformed(
                "",
                &(one(&linear("pv0", 0)) + &lv_text("b", V, "", &[(2, &linear("pv0", 3))]))
            ),
            "two segments use extent 3 of \"pv0\""
        );
        assert_eq!(
            malformed("", &one(&linear("pv1", 47))),
            "lv \"a\" segment1: stripe outside the extents of \"pv1\""
        );
        assert_eq!(
            malformed("", &one(&linear("pv1", -1))),
            "lv \"a\" segment1: stripes offset -1 out of range"
        );
        assert_eq!(
            malformed("", &one(&linear("pv9", 0))),
            "lv \"a\" segment1: stripe on \"pv9\", not a PV of the VG"
        );
        assert_eq!(
            malformed(
                "",
                &one("type = \"striped\"\nstripe_count = 3\nstripes = [\"pv0\", 0]")
            ),
            "lv \"a\" segment1: 2 stripes entries for stripe_count 3 and extent_count 4"
        );
        assert_eq!(
            malformed("", &one("type = \"striped\"\nstripe_count = 9223372036854775807\nstripes = [\"pv0\", 0]")),
            "lv \"a\" segment1: stripe_count 9223372036854775807 is outside LVM's 32-bit range"
        );
        assert_eq!(
            malformed(
                "",
                &one("type = \"striped\"\nstripe_count = 1\nstripes = [0, \"pv0\"]")
            ),
            "lv \"a\" segment1: stripes must be (PV name, start extent) pairs"
        );
        assert_eq!(
            malformed("", &one("type = \"thin\"\nthin_pool = \"nope\"")),
            "lv \"a\" segment1: thin_pool \"nope\" is not a thin pool"
        );
        assert_eq!(
            malformed("", &one("type = \"mirror\"\nmirrors = [\"gone\", 0]")),
            "lv \"a\" names a missing lv \"gone\""
        );
        assert_eq!(
            malformed("", &one("type = 5")),
            "lv \"a\" segment1: type is an integer, not a string"
        );
        let gap = lv_text("a", V, "", &[(1, &linear("pv0", 0))])
            .replace("segment_count = 1", "segment_count = 2");
        assert_eq!(
            malformed("", &gap),
            "lv \"a\": segment_count 2, 1 segment sections"
        );
        let shifted = lv_text("a", V, "", &[(1, &linear("pv0", 0))])
            .replace("start_extent = 0", "start_extent = 3");
        assert_eq!(
            malformed("", &shifted),
            "lv \"a\" segment1: start_extent 3, the segments before it end at 0"
        );
        let spares = lv_text("a_pmspare", H, "", &[(1, &linear("pv0", 0))])
            + &lv_text("b_pmspare", H, "", &[(1, &linear("pv0", 1))]);
        assert_eq!(malformed("", &spares), "more than one pool metadata spare");
        let zero = vg_text("", "").replace("extent_size = 8192", "extent_size = 0");
        assert!(matches!(
            from_tree(&text::parse(&zero).unwrap()),
            Err(VgError::Malformed { message, .. }) if message == "vg: extent_size is 0"
        ));
        let negative = vg_text("", "").replace("pe_count = 50", "pe_count = -50");
        assert!(matches!(
            from_tree(&text::parse(&negative).unwrap()),
            Err(VgError::Malformed { message, .. }) if message == "pv \"pv1\": pe_count -50 is outside LVM's 32-bit range"
        ));
        for tree in ["", "a = 1", "v { }\nw { }"] {
            assert!(matches!(
                from_tree(&text::parse(tree).unwrap()),
                Err(VgError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let huge =
            vg_text("", "").replace("extent_size = 8192", "extent_size = 9223372036854775807");
        assert!(from_tree(&text::parse(&huge).unwrap()).is_err());
        let many = vg_text("", "")
            .replace("pe_count = 100", "pe_count = 9223372036854775807")
            .replace("pe_count = 50", "pe_count = 9223372036854775807");
        assert!(from_tree(&text::parse(&many).unwrap()).is_err());
        let lv = lv_text(
            "a",
            V,
            "",
            &[
                (9223372036854775807, "type = \"error\""),
                (9, "type = \"zero\""),
            ],
        );
        assert!(read("", &lv).is_err());
    }

    #[test]
    fn never_panics_on_mangled_metadata() {
        let lvs = lv_text(
            "pool",
            V,
            "",
            &[(
                2,
                "type = \"thin-pool\"\nmetadata = \"m\"\npool = \"d\"\nzero_new_blocks = 1",
            )],
        ) + &lv_text("d", H, "", &[(2, &linear("pv0", 0))])
            + &lv_text("m", H, "", &[(1, &linear("pv0", 2))])
            + &lv_text(
                "t",
                V,
                "tags = [\"a\"]",
                &[(9, "type = \"thin\"\nthin_pool = \"pool\"")],
            )
            + &lv_text(
                "r",
                V,
                "",
                &[(1, "type = \"raid1\"\nraids = [\"rm\", \"ri\"]")],
            )
            + &lv_text("rm", H, "", &[(1, &linear("pv1", 0))])
            + &lv_text("ri", H, "", &[(1, &linear("pv1", 1))]);
        let text = vg_text("", &lvs);
        assert!(read("", &lvs).is_ok());
        let mut errors = 0;
        for (i, c) in text.char_indices() {
            for replacement in ["0", "9", "-", "\"", "pv1", "x", ""] {
                let mangled = format!("{}{replacement}{}", &text[..i], &text[i + c.len_utf8()..]);
                if let Ok(tree) = text::parse(&mangled) {
                    errors += usize::from(from_tree(&tree).is_err());
                }
            }
        }
        assert!(errors > 100, "many manglings are refused, got {errors}");
    }
}
