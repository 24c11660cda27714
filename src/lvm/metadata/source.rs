//! The metadata reader as a [`RawSource`]: each watched VG read straight from its PVs, with
//! `lvm fullreport` as the fallback, per VG.
//!
//! - **Finding the PVs.** The first collection (and any collection after a failure or a PV
//!   change) runs one `lvm fullreport` whose `pv` sub-report names each PV's device and UUID, so
//!   LVM's filters, devices file and multipath choice decide which device is read; the PVs are
//!   then read at once, and the report's figures are LVM's only for a VG that falls back.
//! - **Steady state.** Each later collection checks every PV's label (the UUID must still match),
//!   the header of each of its metadata areas and the text it locates (inside the area, checksum
//!   verified), and no LVM process runs. The text each area held last time is handed to its read:
//!   under the same `raw_locn` and with the same bytes (compared in full) the read hands it back
//!   without computing its checksum again, so that its `seqno` and parse are found by pointer.
//!   When the newest text's bytes are the ones already parsed, the parsed VG is reused;
//!   otherwise the text is parsed. Of several copies (PVs, two areas per PV) the highest
//!   `seqno` of the parsed VG section wins. Copies that disagree
//!   are logged once per change of which copies lag, and only when that is not a commit in
//!   flight (one copy one `seqno` behind, once).
//! - **Which devices.** Only devices LVM's PV list names (absolute paths: a missing PV, which LVM
//!   reports as `[unknown]`, is never opened, the VG falls back with `missing_pv`), the listed
//!   devices or the scan's; never a path from the metadata text.
//! - **Fallback.** A VG is read with `lvm fullreport` when a command prefix is set (the devices
//!   are not readable by the exporter), `--collector.lvm.method=exec`, a device cannot be opened
//!   or read, a PV's label changed, a checksum fails after the reader's retries, the text holds
//!   something the reader does not implement or is malformed, or the VG has an **active** thin
//!   pool: its `data_percent` is kernel state that the metadata does not hold. Whether a pool is
//!   active comes from the fullreport that found the PVs (`lv_attr`'s fifth character) and, in
//!   the steady state, from the device-mapper names the kernel lists under `/sys/block` (a pool
//!   activated later shows its `_tdata` device). Inactive thin pools report no data percent, as
//!   LVM does. Each VG's method and reason come back with the figures of the same collection
//!   ([`RawSource::collect_with_methods`]) and are exported; a change of reason is logged once.
//!   When the fallback itself fails, the VGs it was for are `method="none"`, `exec_failed`.
//!
//! - **Where LVM cannot run.** With `--collector.lvm.devices` ([`MetadataSource::with_devices`]),
//!   or once `lvm` cannot be started at all, the PVs are found by the label scan of
//!   [`lvm_metadata::scan`] (the listed devices, or the block devices `/sys/class/block` lists) instead
//!   of a fullreport, again after any failure. There is nothing to fall back to: a VG the reader
//!   cannot read fails the collection, exported as `method="none"` with its reason (also
//!   `missing_pv`, `duplicate_pv`), and no background check runs.
//! - **Exec.** `--collector.lvm.method=exec`, and a command prefix, run every VG through the plain
//!   `lvm fullreport` (the one a sudoers rule allows) and export that with its reason
//!   (`method_exec`, `command_prefix`).
//!
//! The reads run on a [`BlockingLane`] of their own, for at most half of `--collector.lvm.timeout`:
//! reads that hang (or a lane still stuck with an earlier read) send the VGs to exec, which has
//! the rest of the collector's time.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use lvm_metadata::device::{
    block_devices, read_label, read_mda_text_unparsed, scan_device, PvDevice,
};
use lvm_metadata::mda::{vg_seqno, VerifiedText};
use lvm_metadata::scan::{group, vg_identity, ScanError, ScannedPv};
use lvm_metadata::vg::{from_tree, VgError, VgMetadata};
use lvm_metadata::{text, MetadataError};

use crate::input::BlockingLane;
use crate::lvm::exec::LvmCommand;
use crate::lvm::report::PvRow;
use crate::lvm::{LvmError, RawCollection, RawMethod, RawSource, VgReport};

/// Why a VG is read the way it is: a short fixed token, the `reason` label of
/// `nova_lvm_raw_source_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Read from the metadata.
    Ok,
    /// `--collector.lvm.method=exec`.
    MethodExec,
    /// A command prefix is set: LVM runs with other privileges than the exporter.
    CommandPrefix,
    /// A PV device could not be opened or read (or LVM names none).
    UnreadableDevice,
    /// A PV's label no longer matches the PV LVM named (UUID, or no label).
    PvChanged,
    /// A checksum failed, or the text kept moving, after the reader's retries.
    Checksum,
    /// The text holds something the reader does not implement.
    Unsupported,
    /// The text or a header is not what LVM writes.
    Malformed,
    /// The VG has an active thin pool: its data percent is kernel state.
    ActiveThinPool,
    /// The last background comparison with `lvm fullreport` found a difference.
    VerifyMismatch,
    /// The VG's PVs are not known yet (LVM did not report the VG, or no scanned device holds
    /// its metadata).
    NotFound,
    /// A PV of the VG has no device: LVM reports it missing (`[unknown]`), or, with the label
    /// scan, it is on none of the scanned devices.
    MissingPv,
    /// Label scan: a PV UUID is on several devices, or two VGs share the name.
    DuplicatePv,
    /// The VG needed `lvm fullreport` (for any reason above) and it failed: no figures.
    ExecFailed,
}

impl Reason {
    /// The label value.
    pub fn token(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::MethodExec => "method_exec",
            Reason::CommandPrefix => "command_prefix",
            Reason::UnreadableDevice => "unreadable_device",
            Reason::PvChanged => "pv_changed",
            Reason::Checksum => "checksum",
            Reason::Unsupported => "unsupported",
            Reason::Malformed => "malformed",
            Reason::ActiveThinPool => "active_thin_pool",
            Reason::VerifyMismatch => "verify_mismatch",
            Reason::NotFound => "not_found",
            Reason::MissingPv => "missing_pv",
            Reason::DuplicatePv => "duplicate_pv",
            Reason::ExecFailed => "exec_failed",
        }
    }

    /// True when the PV devices must be learned again from LVM.
    fn needs_discovery(self) -> bool {
        matches!(
            self,
            Reason::UnreadableDevice
                | Reason::PvChanged
                | Reason::NotFound
                | Reason::MissingPv
                | Reason::DuplicatePv
        )
    }
}

/// Why a metadata read of one VG gave up: the reason and a message with figures only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The reason token.
    pub reason: Reason,
    /// What happened (device path and figures, never device bytes).
    pub message: String,
}

impl Fallback {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// The reason a read error falls back with.
fn reason_for(error: &MetadataError) -> Reason {
    match error {
        MetadataError::Io(_) | MetadataError::Truncated { .. } => Reason::UnreadableDevice,
        MetadataError::BadChecksum { .. } | MetadataError::Moved { .. } => Reason::Checksum,
        MetadataError::NotAPv => Reason::PvChanged,
        _ => Reason::Malformed,
    }
}

/// The reason a read error of `what` on `device` falls back with.
fn fallback_for(device: &Path, what: &str, error: &MetadataError) -> Fallback {
    Fallback::new(
        reason_for(error),
        format!("{}: {what}: {error}", device.display()),
    )
}

/// The reason a label scan's [`ScanError`] gives.
pub fn fallback_for_scan(error: &ScanError) -> Fallback {
    let reason = match error {
        ScanError::NotFound { .. } => Reason::NotFound,
        ScanError::MissingPvs { .. } => Reason::MissingPv,
        ScanError::DuplicatePv { .. } | ScanError::TwoVgs { .. } => Reason::DuplicatePv,
        // Why the first of those PVs could not be read: a checksum, a malformed text.
        ScanError::UnreadableMetadata { devices, .. } => devices
            .first()
            .map_or(Reason::NotFound, |(_, error)| reason_for(error)),
    };
    Fallback::new(reason, error.to_string())
}

/// The reason a [`VgError`] falls back with.
pub fn fallback_for_vg(error: &VgError) -> Fallback {
    match error {
        VgError::Unsupported { .. } => Fallback::new(Reason::Unsupported, error.to_string()),
        VgError::Malformed { .. } => Fallback::new(Reason::Malformed, error.to_string()),
    }
}

/// What one VG's reads left for the next collection: each metadata area's text as the last
/// read verified it, each distinct text with its `seqno`, and the VG parsed from the newest
/// with that text. A text is recognised by its bytes, compared in full by the area's next read
/// (never by where it is or its CRC: other bytes under the same location and CRC are checked
/// and parsed again); the bytes of an unchanged area come back as the same allocation, so
/// `seqno` and parse are found by pointer.
#[derive(Debug, Clone, Default)]
pub struct VgCache {
    areas: Vec<(AreaKey, VerifiedText)>,
    seqnos: Vec<(Arc<str>, u64)>,
    parsed: Option<(Arc<str>, Arc<VgMetadata>)>,
}

/// One metadata area: the device LVM named for the PV and the area's offset on it.
type AreaKey = (PathBuf, u64);

/// One collection's read of one VG.
#[derive(Debug, Clone)]
pub struct VgRead {
    /// The VG, parsed now or reused.
    pub metadata: Arc<VgMetadata>,
    /// The cache for the next collection.
    pub cache: VgCache,
    /// The `seqno` of each copy read, by device, when they disagree.
    pub disagreement: Option<Vec<(PathBuf, u64)>>,
    /// True when the newest text was parsed into the VG (false: the same bytes as last time,
    /// the VG reused).
    pub parsed: bool,
}

/// The device of `pv` as LVM's PV list names it: refused (`missing_pv`) without a device or
/// UUID, or when the name is not an absolute path (LVM's `[unknown]` for a missing PV): a name
/// that is no device is never opened, relative to the working directory or otherwise.
fn pv_device(pv: &PvRow) -> Result<&Path, Fallback> {
    let path = Path::new(&pv.device);
    if pv.device.is_empty() || pv.uuid.is_empty() || !path.is_absolute() {
        return Err(Fallback::new(
            Reason::MissingPv,
            format!(
                "LVM reports PV {:?} of the VG without a device ({:?}): a missing PV",
                pv.uuid, pv.device
            ),
        ));
    }
    Ok(path)
}

/// Reads `vg` from its PVs `pvs`: every PV's label, and every metadata area's header and text
/// (bounds and checksum checked on each read). The VG parsed before (`cache`) is reused only
/// when the newest text is byte for byte the one it was parsed from. Blocking.
pub fn read_vg(vg: &str, pvs: &[PvRow], cache: &VgCache) -> Result<VgRead, Fallback> {
    if pvs.is_empty() {
        return Err(Fallback::new(Reason::NotFound, "LVM named no PV"));
    }
    // The distinct texts read, each kept once (the cache's own copy when the bytes are equal).
    let mut texts: Vec<Arc<str>> = Vec::new();
    let mut copies: Vec<(PathBuf, usize)> = Vec::new();
    let mut areas: Vec<(AreaKey, VerifiedText)> = Vec::new();
    for pv in pvs {
        let path = pv_device(pv)?;
        let mut device = PvDevice::open(path).map_err(|e| {
            Fallback::new(
                Reason::UnreadableDevice,
                format!("{}: cannot open read-only: {e}", path.display()),
            )
        })?;
        let label = read_label(&mut device).map_err(|e| fallback_for(path, "label", &e))?;
        if label.pv_uuid != pv.uuid {
            return Err(Fallback::new(
                Reason::PvChanged,
                format!(
                    "{}: the label's PV UUID is not the one LVM reported",
                    path.display()
                ),
            ));
        }
        for area in &label.metadata_areas {
            let previous = cache
                .areas
                .iter()
                .find(|((device, offset), _)| device == path && *offset == area.offset)
                .map(|(_, verified)| verified);
            let mut read = match read_mda_text_unparsed(&mut device, area, previous) {
                Ok(read) => read,
                Err(MetadataError::Ignored) => continue,
                Err(e) => return Err(fallback_for(path, "metadata area", &e)),
            };
            // An unchanged area's text is the cache's own allocation, found by pointer; a
            // text of another allocation is compared in full.
            let index = match texts.iter().position(|text| read.share(text)) {
                Some(index) => index,
                None => {
                    // A text the last collection saw (in this area or another) keeps its
                    // allocation, so that its seqno and parse are found by pointer.
                    let _seen_before = cache.seqnos.iter().any(|(text, _)| read.share(text));
                    texts.push(Arc::clone(&read.text));
                    texts.len() - 1
                }
            };
            areas.push(((path.to_path_buf(), area.offset), read.verified()));
            copies.push((path.to_path_buf(), index));
        }
    }
    let device_of = |index: usize| {
        copies
            .iter()
            .find(|(_, i)| *i == index)
            .map(|(path, _)| path.display().to_string())
            .unwrap_or_default()
    };
    // Each distinct text parsed once, unless its seqno is known from the same bytes before.
    let mut seqnos: Vec<u64> = Vec::with_capacity(texts.len());
    let mut trees: Vec<Option<text::ConfigTree<'_>>> = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let known = cache
            .seqnos
            .iter()
            .find(|(seen, _)| Arc::ptr_eq(seen, text))
            .map(|(_, seqno)| *seqno);
        if let Some(seqno) = known {
            seqnos.push(seqno);
            trees.push(None);
            continue;
        }
        let tree = text::parse_metadata(text).map_err(|e| {
            Fallback::new(
                Reason::Malformed,
                format!("{}: metadata text of vg {vg:?}: {e}", device_of(index)),
            )
        })?;
        let seqno = vg_seqno(&tree).ok_or_else(|| {
            Fallback::new(
                Reason::Malformed,
                format!(
                    "{}: the metadata text's VG section has no seqno",
                    device_of(index)
                ),
            )
        })?;
        seqnos.push(seqno);
        trees.push(Some(tree));
    }
    let Some(newest) = copies
        .iter()
        .map(|(_, index)| *index)
        .max_by_key(|index| seqnos[*index])
    else {
        return Err(Fallback::new(
            Reason::Malformed,
            "no PV of the VG has a metadata area in use",
        ));
    };
    let newest_seqno = seqnos[newest];
    if let Some((path, _)) = copies
        .iter()
        .find(|(_, index)| *index != newest && seqnos[*index] == newest_seqno)
    {
        return Err(Fallback::new(
            Reason::Malformed,
            format!(
                "{}: a metadata copy with seqno {newest_seqno} differs from another with the same seqno",
                path.display()
            ),
        ));
    }
    let disagreement = copies.iter().any(|(_, index)| *index != newest).then(|| {
        copies
            .iter()
            .map(|(path, index)| (path.clone(), seqnos[*index]))
            .collect()
    });
    let reused = cache
        .parsed
        .as_ref()
        .filter(|(text, _)| Arc::ptr_eq(text, &texts[newest]))
        .map(|(_, metadata)| Arc::clone(metadata));
    let (metadata, parsed) = match reused {
        Some(metadata) => (metadata, false),
        None => {
            let reparsed;
            let tree = match &trees[newest] {
                Some(tree) => tree,
                None => {
                    reparsed = text::parse_metadata(&texts[newest]).map_err(|e| {
                        Fallback::new(
                            Reason::Malformed,
                            format!("metadata text of vg {vg:?}: {e}"),
                        )
                    })?;
                    &reparsed
                }
            };
            let metadata = from_tree(tree).map_err(|e| fallback_for_vg(&e))?;
            check_pv_set(vg, pvs, tree)?;
            (Arc::new(metadata), true)
        }
    };
    if metadata.vg.name != vg {
        return Err(Fallback::new(
            Reason::PvChanged,
            format!(
                "the PVs LVM named for vg {vg:?} now hold vg {:?}",
                metadata.vg.name
            ),
        ));
    }
    drop(trees);
    let parsed_text = Arc::clone(&texts[newest]);
    Ok(VgRead {
        cache: VgCache {
            areas,
            seqnos: texts.into_iter().zip(seqnos).collect(),
            parsed: Some((parsed_text, Arc::clone(&metadata))),
        },
        metadata,
        disagreement,
        parsed,
    })
}

/// Fails (`pv_changed`: the PVs are learned again) unless the PVs the metadata `tree` lists are
/// the ones `pvs` names: a PV joined or left the VG since they were learned.
fn check_pv_set(vg: &str, pvs: &[PvRow], tree: &text::ConfigTree) -> Result<(), Fallback> {
    let Some(identity) = vg_identity(tree) else {
        return Ok(());
    };
    let listed: HashSet<&str> = identity.pv_uuids.iter().map(String::as_str).collect();
    let known: HashSet<&str> = pvs.iter().map(|pv| pv.uuid.as_str()).collect();
    if listed == known {
        return Ok(());
    }
    Err(Fallback::new(
        Reason::PvChanged,
        format!(
            "vg {vg:?}: its metadata lists {} PV(s), {} were found before: a PV joined or left the VG",
            listed.len(),
            known.len()
        ),
    ))
}

/// True when an LV of `lvs` is a thin pool whose `lv_attr` says it is active.
pub fn has_active_thin_pool<'a>(lvs: impl IntoIterator<Item = &'a crate::lvm::Lv>) -> bool {
    lvs.into_iter()
        .any(|lv| lv.segtype == "thin-pool" && lv.attr.chars().nth(4) == Some('a'))
}

/// The device-mapper name LVM gives LV `lv` of VG `vg`: each name with its dashes doubled,
/// joined by a dash (lvm2 `dm_build_dm_name`).
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// True when the kernel lists the data sub-LV of one of `metadata`'s thin pools among its
/// device-mapper devices (`/sys/block/dm-*/dm/name`): the pool is active. `dm_names` is that list.
pub fn thin_pool_active_in_kernel(metadata: &VgMetadata, dm_names: &HashSet<String>) -> bool {
    metadata
        .lvs
        .iter()
        .filter(|lv| lv.segtype == "thin-pool")
        .any(|pool| dm_names.contains(&dm_name(&metadata.vg.name, &format!("{}_tdata", pool.name))))
}

/// The names of the kernel's device-mapper devices; empty without device-mapper.
fn kernel_dm_names() -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("dm-"))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("dm/name")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// The state kept between collections.
#[derive(Debug, Default)]
struct ReaderState {
    /// Each VG's PVs as LVM named them; a VG absent here is discovered by the next collection.
    pvs: HashMap<String, Vec<PvRow>>,
    /// VGs whose thin pool LVM reported active.
    active_pools: HashSet<String>,
    /// Each VG's cache.
    caches: HashMap<String, VgCache>,
    /// The reason last logged per VG.
    logged: HashMap<String, Reason>,
    /// The copies' disagreement the last collection saw, per VG.
    disagreements: HashMap<String, Vec<(PathBuf, u64)>>,
    /// The lagging copies last logged, per VG.
    lagging_logged: HashMap<String, Vec<PathBuf>>,
    /// VGs the verifier found wrong, until it agrees again.
    verify_failed: HashSet<String>,
    /// Mismatches the verifier found, per VG.
    mismatches: HashMap<String, u64>,
    /// The last report of VGs all read from their metadata, and the parsed VGs it was built
    /// from (held, so that a pointer compared with them cannot be a new VG at a freed address).
    shared_report: Option<(Vec<Arc<VgMetadata>>, Arc<VgReport>)>,
}

impl ReaderState {
    /// The report of VGs all read from their metadata (`read`, in order): the last collection's,
    /// shared, when it was built from the very same parsed VGs (the texts were unchanged, see
    /// [`read_vg`]), else a new one that the next collections share. A scrape of an unchanged
    /// VG copies none of its LVs.
    fn report_of(&mut self, read: Vec<Arc<VgMetadata>>) -> Arc<VgReport> {
        if let Some((from, report)) = &self.shared_report {
            if from.len() == read.len() && from.iter().zip(&read).all(|(a, b)| Arc::ptr_eq(a, b)) {
                return Arc::clone(report);
            }
        }
        let report = Arc::new(report_from(&read));
        self.shared_report = Some((read, Arc::clone(&report)));
        report
    }
}

/// The figures of the parsed VGs `read`, in order.
fn report_from(read: &[Arc<VgMetadata>]) -> VgReport {
    VgReport {
        vgs: read.iter().map(|metadata| metadata.vg.clone()).collect(),
        lvs: read
            .iter()
            .flat_map(|metadata| metadata.lvs.iter().cloned())
            .collect(),
    }
}

/// The metadata reader with `lvm fullreport` as fallback (see the module docs).
pub struct MetadataSource {
    exec: LvmCommand,
    forced: Option<Reason>,
    /// `--collector.lvm.devices`: the PVs are found by these devices' labels, never by LVM.
    devices: Option<Vec<PathBuf>>,
    /// Set once `lvm` could not be started: the PVs are found by the labels of the block devices
    /// `/sys/class/block` lists, and no VG can fall back to exec.
    lvm_unavailable: AtomicBool,
    lane: BlockingLane,
    state: tokio::sync::Mutex<ReaderState>,
}

impl MetadataSource {
    /// Reads with the metadata where it can, `exec` for the rest. With a command prefix every VG
    /// is read by `exec` (the devices are not the exporter's to read).
    pub fn new(exec: LvmCommand) -> Self {
        let forced = exec.has_prefix().then_some(Reason::CommandPrefix);
        Self {
            exec,
            forced,
            devices: None,
            lvm_unavailable: AtomicBool::new(false),
            lane: BlockingLane::new("the PVs' LVM metadata"),
            state: tokio::sync::Mutex::new(ReaderState::default()),
        }
    }

    /// Reads every VG with `lvm fullreport` (`--collector.lvm.method=exec`), exporting that as
    /// each VG's method and reason like the other methods do.
    pub fn exec_only(exec: LvmCommand) -> Self {
        Self {
            forced: Some(Reason::MethodExec),
            ..Self::new(exec)
        }
    }

    /// Finds the PVs by the labels of `devices` instead of `lvm fullreport`
    /// (`--collector.lvm.devices`; empty: ask LVM). No VG falls back to exec: one the reader
    /// cannot read fails the collection, with its reason exported.
    pub fn with_devices(mut self, devices: Vec<PathBuf>) -> Self {
        self.devices = (!devices.is_empty()).then_some(devices);
        self
    }

    /// True when the PVs are found by their labels (`--collector.lvm.devices`, or `lvm` could
    /// not be started), with no LVM to fall back to.
    pub fn scans_labels(&self) -> bool {
        self.devices.is_some() || self.lvm_unavailable.load(Ordering::Relaxed)
    }

    /// Starts the background check against `lvm fullreport` of `vgs`, every `interval` (the first
    /// one `interval` after start-up). Needs a tokio runtime.
    pub fn spawn_verifier(self: Arc<Self>, vgs: Vec<String>, interval: Duration) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                self.verify(&vgs).await;
            }
        });
    }

    /// Compares the metadata of each of `vgs` whose PVs are known with one `lvm fullreport`: the
    /// PVs are read just before and just after LVM runs, and a VG whose metadata changed in
    /// between is left for the next check (a concurrent change is not a mismatch). A VG that
    /// differs is logged with the differences, counted, and read with exec until a check agrees.
    pub async fn verify(&self, vgs: &[String]) {
        if self.scans_labels() {
            return;
        }
        let reads = |state: &ReaderState| -> Vec<(String, Vec<PvRow>, VgCache)> {
            vgs.iter()
                .filter_map(|vg| Some((vg.clone(), state.pvs.get(vg)?.clone(), VgCache::default())))
                .collect()
        };
        let planned = reads(&*self.state.lock().await);
        if planned.is_empty() {
            return;
        }
        let names: Vec<String> = planned.iter().map(|(vg, _, _)| vg.clone()).collect();
        let before = self.read_all(planned.clone()).await;
        let lvm = match self.exec.collect(&names).await {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(%error, "verifying the LVM metadata reader: lvm fullreport failed");
                return;
            }
        };
        let after = self.read_all(planned).await;
        let mut state = self.state.lock().await;
        for ((vg, before), (_, after)) in before.into_iter().zip(after) {
            let (Ok(before), Ok(after)) = (before, after) else {
                // A VG the reader cannot read is on exec already, with its own reason.
                continue;
            };
            if before.metadata.seqno != after.metadata.seqno {
                tracing::debug!(vg, "the VG changed during the check; comparing next time");
                continue;
            }
            let diff = differences(&after.metadata, &lvm);
            if diff.is_empty() {
                if state.verify_failed.remove(&vg) {
                    tracing::info!(vg, "lvm fullreport agrees with the metadata reader again");
                }
                continue;
            }
            *state.mismatches.entry(vg.clone()).or_default() += 1;
            state.verify_failed.insert(vg.clone());
            tracing::warn!(
                vg,
                differences = %diff.join("; "),
                "the metadata reader differs from lvm fullreport: reading this VG with lvm fullreport until a check agrees"
            );
        }
    }
}

/// The differences between the reader's view of a VG and LVM's report of it, field by field,
/// with names and figures only. `lv_attr`'s kernel-state characters (5: state, 6: open) are not
/// compared (the reader never asks the kernel); neither is an LV's data or metadata percent when
/// LVM has none.
pub fn differences(reader: &VgMetadata, lvm: &VgReport) -> Vec<String> {
    let name = reader.vg.name.as_str();
    let mut out = Vec::new();
    let Some(vg) = lvm.vg(name) else {
        return vec![format!("lvm fullreport does not report vg {name}")];
    };
    let figures = [
        ("vg_size", reader.vg.size_bytes, vg.size_bytes),
        ("vg_free", reader.vg.free_bytes, vg.free_bytes),
        (
            "vg_extent_size",
            reader.vg.extent_size_bytes,
            vg.extent_size_bytes,
        ),
    ];
    for (field, ours, theirs) in figures {
        if ours != theirs {
            out.push(format!("{field}: metadata {ours}, lvm {theirs}"));
        }
    }
    let theirs: HashMap<&str, &crate::lvm::Lv> =
        lvm.lvs_of(name).map(|lv| (lv.name.as_str(), lv)).collect();
    let ours: HashMap<&str, &crate::lvm::Lv> =
        reader.lvs.iter().map(|lv| (lv.name.as_str(), lv)).collect();
    let mut names: Vec<&str> = theirs.keys().chain(ours.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let static_attr = |attr: &str| -> String {
        attr.chars()
            .enumerate()
            .map(|(i, c)| if i == 4 || i == 5 { '-' } else { c })
            .collect()
    };
    for lv in names {
        match (ours.get(lv), theirs.get(lv)) {
            (Some(a), Some(b)) => {
                let mut field = |what: &str, x: String, y: String| {
                    if x != y {
                        out.push(format!("lv {lv} {what}: metadata {x}, lvm {y}"));
                    }
                };
                field(
                    "lv_size",
                    a.size_bytes.to_string(),
                    b.size_bytes.to_string(),
                );
                field("segtype", a.segtype.clone(), b.segtype.clone());
                field("lv_attr", static_attr(&a.attr), static_attr(&b.attr));
                field("pool_lv", a.pool_lv.clone(), b.pool_lv.clone());
                field("lv_parent", a.parent.clone(), b.parent.clone());
                field("hidden", a.hidden.to_string(), b.hidden.to_string());
                field("lv_tags", a.tags.join(","), b.tags.join(","));
                field(
                    "lv_time",
                    format!("{:?}", a.creation_unix),
                    format!("{:?}", b.creation_unix),
                );
                for (what, ours, theirs) in [
                    ("data_percent", a.data_used_ratio, b.data_used_ratio),
                    (
                        "metadata_percent",
                        a.metadata_used_ratio,
                        b.metadata_used_ratio,
                    ),
                ] {
                    if theirs.is_some() {
                        field(what, format!("{ours:?}"), format!("{theirs:?}"));
                    }
                }
            }
            (Some(_), None) => out.push(format!("lv {lv}: only in the metadata")),
            (None, _) => out.push(format!("lv {lv}: only in lvm fullreport")),
        }
    }
    out
}

/// How `vg` was read: `metadata`, or `fallback_method` (`exec`, or `none` where LVM cannot run)
/// with the fallback's reason, and its verify mismatches so far. Logs the reason when it
/// changed since the last log.
fn method_of(
    state: &mut ReaderState,
    vg: &str,
    fallback: Option<&Fallback>,
    fallback_method: &'static str,
) -> RawMethod {
    log_reason(state, vg, fallback, fallback_method);
    RawMethod {
        vg: vg.to_string(),
        method: if fallback.is_some() {
            fallback_method
        } else {
            "metadata"
        },
        reason: fallback.map_or(Reason::Ok, |f| f.reason).token(),
        verify_mismatches: state.mismatches.get(vg).copied().unwrap_or(0),
    }
}

/// Logs `vg`'s reason when it changed since the last log; `fallback_method` is what a VG the
/// reader cannot read gets (`exec`, or `none` where LVM cannot run).
fn log_reason(
    state: &mut ReaderState,
    vg: &str,
    fallback: Option<&Fallback>,
    fallback_method: &'static str,
) {
    let reason = fallback.map_or(Reason::Ok, |f| f.reason);
    if state.logged.get(vg) == Some(&reason) {
        return;
    }
    state.logged.insert(vg.to_string(), reason);
    match fallback {
        None => tracing::info!(vg, method = "metadata", "LVM metadata read from the PVs"),
        Some(f) if f.reason == Reason::ExecFailed => tracing::warn!(
            vg,
            method = fallback_method,
            reason = f.reason.token(),
            why = %f.message,
            "no figures for this VG: it needed lvm fullreport, which failed"
        ),
        Some(f) if matches!(f.reason, Reason::MethodExec | Reason::CommandPrefix) => {
            tracing::info!(
                vg,
                method = "exec",
                reason = f.reason.token(),
                "reading this VG with lvm fullreport, as configured"
            )
        }
        Some(f) if fallback_method == "exec" => tracing::warn!(
            vg,
            method = "exec",
            reason = f.reason.token(),
            why = %f.message,
            "reading this VG with lvm fullreport"
        ),
        Some(f) => tracing::warn!(
            vg,
            method = fallback_method,
            reason = f.reason.token(),
            why = %f.message,
            "cannot read this VG from its PVs, and there is no lvm fullreport to fall back to"
        ),
    }
}

#[async_trait]
impl RawSource for MetadataSource {
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        self.collect_with_methods(vg_names)
            .await
            .report
            .map(Arc::unwrap_or_clone)
    }

    async fn collect_with_methods(&self, vg_names: &[String]) -> RawCollection {
        if self.scans_labels() {
            return self.collect_scanned(vg_names).await;
        }
        let mut state = self.state.lock().await;
        let mut outcome: Vec<(String, Result<(), Fallback>)> = Vec::new();
        // VGs whose figures this collection takes from LVM.
        let mut exec_vgs: Vec<String> = Vec::new();
        let mut reads: Vec<(String, Vec<PvRow>, VgCache)> = Vec::new();
        for vg in vg_names {
            let forced =
                self.forced
                    .map(|reason| Fallback::new(reason, "set in the configuration"))
                    .or_else(|| {
                        state.verify_failed.contains(vg).then(|| {
                            Fallback::new(Reason::VerifyMismatch, "lvm fullreport disagreed")
                        })
                    })
                    .or_else(|| {
                        state.active_pools.contains(vg).then(|| {
                            Fallback::new(Reason::ActiveThinPool, "LVM reports an active thin pool")
                        })
                    });
            match (forced, state.pvs.get(vg)) {
                (Some(fallback), _) => {
                    exec_vgs.push(vg.clone());
                    outcome.push((vg.clone(), Err(fallback)));
                }
                (None, None) => exec_vgs.push(vg.clone()),
                (None, Some(pvs)) => reads.push((
                    vg.clone(),
                    pvs.clone(),
                    state.caches.get(vg).cloned().unwrap_or_default(),
                )),
            }
        }
        let mut results = self.read_all(reads).await;
        mark_active_pools(&mut results);
        let mut read_metadata: Vec<Arc<VgMetadata>> = Vec::new();
        for (vg, result) in results {
            match result {
                Ok(read) => {
                    note_disagreement(&mut state, &vg, read.disagreement.clone());
                    state.caches.insert(vg.clone(), read.cache);
                    read_metadata.push(read.metadata);
                    outcome.push((vg, Ok(())));
                }
                Err(fallback) => {
                    if fallback.reason.needs_discovery() {
                        state.pvs.remove(&vg);
                    }
                    state.caches.remove(&vg);
                    exec_vgs.push(vg.clone());
                    outcome.push((vg, Err(fallback)));
                }
            }
        }
        let report = if exec_vgs.is_empty() {
            state.report_of(read_metadata)
        } else {
            let mut report = report_from(&read_metadata);
            // Every VG on exec: the plain fullreport (the one a sudoers rule allows), no PVs.
            let found = match self.forced {
                Some(_) => self.exec.collect(&exec_vgs).await.map(|r| (r, Vec::new())),
                None => self.exec.collect_with_pvs(&exec_vgs).await,
            };
            let (lvm_report, pv_rows) = match found {
                Ok(found) => found,
                Err(LvmError::Spawn { command, source }) if self.forced.is_none() => {
                    tracing::warn!(
                        %command,
                        error = %source,
                        "lvm cannot be started: finding the PVs by the labels of the block devices instead, with no lvm fullreport to fall back to"
                    );
                    self.lvm_unavailable.store(true, Ordering::Relaxed);
                    drop(state);
                    return self.collect_scanned(vg_names).await;
                }
                Err(error) => {
                    // No figures for the VGs that needed LVM: each says so, in this collection.
                    let methods = vg_names
                        .iter()
                        .map(|vg| {
                            let read = outcome
                                .iter()
                                .find(|(name, _)| name == vg)
                                .map(|(_, result)| result.as_ref().err());
                            match read {
                                Some(None) if !exec_vgs.contains(vg) => {
                                    method_of(&mut state, vg, None, "exec")
                                }
                                earlier => {
                                    let why = earlier.flatten().map_or_else(
                                        || "the VG's PVs were not known yet".to_string(),
                                        |f| format!("{} ({})", f.message, f.reason.token()),
                                    );
                                    let failed = Fallback::new(
                                        Reason::ExecFailed,
                                        format!("{why}; lvm fullreport: {error}"),
                                    );
                                    method_of(&mut state, vg, Some(&failed), "none")
                                }
                            }
                        })
                        .collect();
                    return RawCollection {
                        report: Err(error),
                        methods,
                    };
                }
            };
            let mut undiscovered: Vec<(String, Vec<PvRow>, VgCache)> = Vec::new();
            for vg in &exec_vgs {
                let rows: Vec<PvRow> = pv_rows
                    .iter()
                    .filter(|row| &row.vg == vg)
                    .cloned()
                    .collect();
                if has_active_thin_pool(lvm_report.lvs_of(vg)) {
                    state.active_pools.insert(vg.clone());
                } else {
                    state.active_pools.remove(vg);
                }
                if lvm_report.vg(vg).is_some() && !state.pvs.contains_key(vg) {
                    state.pvs.insert(vg.clone(), rows.clone());
                    if !outcome.iter().any(|(name, _)| name == vg) {
                        undiscovered.push((vg.clone(), rows, VgCache::default()));
                    }
                }
            }
            // Newly found VGs: their metadata read now gives this collection's figures (LVM's
            // are the fallback) and warms the cache for the next collections.
            for (vg, result) in self.read_all(undiscovered).await {
                let result = match result {
                    Ok(_) if state.active_pools.contains(&vg) => Err(Fallback::new(
                        Reason::ActiveThinPool,
                        "LVM reports an active thin pool",
                    )),
                    other => other,
                };
                match result {
                    Ok(read) => {
                        note_disagreement(&mut state, &vg, read.disagreement.clone());
                        state.caches.insert(vg.clone(), read.cache);
                        report.vgs.push(read.metadata.vg.clone());
                        report.lvs.extend(read.metadata.lvs.iter().cloned());
                        exec_vgs.retain(|name| name != &vg);
                        outcome.push((vg, Ok(())));
                    }
                    Err(fallback) => {
                        if fallback.reason.needs_discovery() {
                            state.pvs.remove(&vg);
                        }
                        outcome.push((vg, Err(fallback)));
                    }
                }
            }
            report.vgs.extend(
                lvm_report
                    .vgs
                    .iter()
                    .filter(|v| exec_vgs.contains(&v.name))
                    .cloned(),
            );
            report.lvs.extend(
                lvm_report
                    .lvs
                    .into_iter()
                    .filter(|lv| exec_vgs.contains(&lv.vg)),
            );
            Arc::new(report)
        };
        let not_found = Fallback::new(Reason::NotFound, "lvm fullreport does not report the VG");
        let methods = vg_names
            .iter()
            .map(|vg| {
                let fallback = match outcome.iter().find(|(name, _)| name == vg) {
                    Some((_, result)) => result.as_ref().err(),
                    None => Some(&not_found),
                };
                method_of(&mut state, vg, fallback, "exec")
            })
            .collect();
        RawCollection {
            report: Ok(report),
            methods,
        }
    }
}

impl MetadataSource {
    /// Reads `reads` on the lane, for at most half the LVM timeout: when the reads do not finish
    /// in time (a hung device) or the lane is still stuck with an earlier read, every VG of
    /// `reads` falls back (`unreadable_device`), and the rest of the timeout is LVM's.
    async fn read_all(
        &self,
        reads: Vec<(String, Vec<PvRow>, VgCache)>,
    ) -> Vec<(String, Result<VgRead, Fallback>)> {
        if reads.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = reads.iter().map(|(vg, _, _)| vg.clone()).collect();
        let budget = self.exec.timeout() / 2;
        let work = self.lane.run(move || {
            reads
                .into_iter()
                .map(|(vg, pvs, cache)| {
                    let result = read_vg(&vg, &pvs, &cache);
                    (vg, result)
                })
                .collect::<Vec<_>>()
        });
        let failed = match tokio::time::timeout(budget, work).await {
            Ok(Ok(results)) => return results,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!(
                "the PV reads did not finish within {} ms",
                budget.as_millis()
            ),
        };
        names
            .into_iter()
            .map(|vg| {
                let fallback = Fallback::new(Reason::UnreadableDevice, failed.clone());
                (vg, Err(fallback))
            })
            .collect()
    }
}

/// Kernel state: sends to fallback each VG of `results` with a thin pool the kernel has active
/// (one activated since LVM last said otherwise, or, with the label scan, any).
fn mark_active_pools(results: &mut [(String, Result<VgRead, Fallback>)]) {
    let has_pool = |read: &VgRead| read.metadata.lvs.iter().any(|lv| lv.segtype == "thin-pool");
    if !results
        .iter()
        .any(|(_, r)| matches!(r, Ok(read) if has_pool(read)))
    {
        return;
    }
    let dm_names = kernel_dm_names();
    for (_, result) in results {
        if matches!(result, Ok(read) if thin_pool_active_in_kernel(&read.metadata, &dm_names)) {
            *result = Err(Fallback::new(
                Reason::ActiveThinPool,
                "the kernel has an active thin pool of the VG",
            ));
        }
    }
}

/// At most this many unreadable devices are named in a scan's error.
const UNREADABLE_NAMED: usize = 5;

/// The label scan of `paths` (blocking): every PV found, and what could not be read. A path
/// that does not exist is skipped silently when `quiet_missing` (the block devices the kernel
/// lists but a container was not given).
fn scan_labels(paths: &[PathBuf], quiet_missing: bool) -> (Vec<ScannedPv>, Vec<String>) {
    let mut seen = HashSet::new();
    let mut scanned = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        if !seen.insert(path) || (quiet_missing && !path.exists()) {
            continue;
        }
        match scan_device(path) {
            Ok(Some(pv)) => scanned.push(pv),
            Ok(None) => tracing::debug!(device = %path.display(), "no LVM label"),
            Err(error) => unreadable.push(error.to_string()),
        }
    }
    (scanned, unreadable)
}

/// The grouping of one VG's PVs from a scan, its error naming the devices that could not be
/// read (they may hold the missing PVs).
fn group_scanned(
    vg: &str,
    scanned: &[ScannedPv],
    unreadable: &[String],
) -> Result<Vec<PvRow>, Fallback> {
    group(vg, scanned).map_err(|error| {
        let mut fallback = fallback_for_scan(&error);
        if !unreadable.is_empty() {
            let named: Vec<&str> = unreadable
                .iter()
                .take(UNREADABLE_NAMED)
                .map(String::as_str)
                .collect();
            fallback.message.push_str(&format!(
                "; {} device(s) could not be read: {}",
                unreadable.len(),
                named.join("; ")
            ));
        }
        fallback
    })
}

impl MetadataSource {
    /// Finds the PVs of `vgs` by their labels on the lane, within half the LVM timeout: the
    /// listed devices, or the block devices `/sys/class/block` lists.
    async fn scan(
        &self,
        vgs: Vec<String>,
    ) -> Result<Vec<(String, Result<Vec<PvRow>, Fallback>)>, Fallback> {
        let listed = self.devices.clone();
        let budget = self.exec.timeout() / 2;
        let work = self.lane.run(move || {
            let (scanned, unreadable) = match listed {
                Some(paths) => scan_labels(&paths, false),
                None => scan_labels(&block_devices(), true),
            };
            vgs.into_iter()
                .map(|vg| {
                    let rows = group_scanned(&vg, &scanned, &unreadable);
                    (vg, rows)
                })
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout(budget, work).await {
            Ok(Ok(groups)) => Ok(groups),
            Ok(Err(error)) => Err(Fallback::new(Reason::UnreadableDevice, error.to_string())),
            Err(_) => Err(Fallback::new(
                Reason::UnreadableDevice,
                format!(
                    "the label scan did not finish within {} ms",
                    budget.as_millis()
                ),
            )),
        }
    }

    /// A collection where LVM cannot run: the PVs found by their labels (again after any
    /// failure), each VG read from them; a VG the reader cannot read fails the collection with
    /// its reason exported (`method="none"`), never an older view.
    async fn collect_scanned(&self, vg_names: &[String]) -> RawCollection {
        let mut state = self.state.lock().await;
        let mut failed: Vec<(String, Fallback)> = Vec::new();
        let mut read_metadata: Vec<Arc<VgMetadata>> = Vec::new();
        let mut pending: Vec<String> = vg_names.to_vec();
        // A VG whose PVs changed (a PV joined or left it) is scanned and read again at once.
        for attempt in 0..2 {
            let undiscovered: Vec<String> = pending
                .iter()
                .filter(|vg| !state.pvs.contains_key(*vg))
                .cloned()
                .collect();
            if !undiscovered.is_empty() {
                match self.scan(undiscovered.clone()).await {
                    Ok(groups) => {
                        for (vg, rows) in groups {
                            match rows {
                                Ok(rows) => {
                                    state.pvs.insert(vg, rows);
                                }
                                Err(fallback) => failed.push((vg, fallback)),
                            }
                        }
                    }
                    Err(fallback) => {
                        failed.extend(undiscovered.into_iter().map(|vg| (vg, fallback.clone())))
                    }
                }
            }
            let reads: Vec<(String, Vec<PvRow>, VgCache)> = pending
                .iter()
                .filter_map(|vg| {
                    let pvs = state.pvs.get(vg)?.clone();
                    Some((
                        vg.clone(),
                        pvs,
                        state.caches.get(vg).cloned().unwrap_or_default(),
                    ))
                })
                .collect();
            let mut results = self.read_all(reads).await;
            mark_active_pools(&mut results);
            pending.clear();
            for (vg, result) in results {
                match result {
                    Ok(read) => {
                        note_disagreement(&mut state, &vg, read.disagreement.clone());
                        state.caches.insert(vg.clone(), read.cache);
                        read_metadata.push(read.metadata);
                    }
                    Err(fallback) => {
                        // Scanned again: a PV may have left or joined the VG.
                        state.pvs.remove(&vg);
                        state.caches.remove(&vg);
                        if attempt == 0 && fallback.reason == Reason::PvChanged {
                            pending.push(vg);
                        } else {
                            failed.push((vg, fallback));
                        }
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        let mut methods = Vec::new();
        for vg in vg_names {
            let fallback = failed.iter().find(|(name, _)| name == vg).map(|(_, f)| f);
            methods.push(method_of(&mut state, vg, fallback, "none"));
        }
        if failed.is_empty() {
            return RawCollection {
                report: Ok(state.report_of(read_metadata)),
                methods,
            };
        }
        let why: Vec<String> = failed
            .iter()
            .map(|(vg, f)| format!("vg {vg}: {} ({})", f.message, f.reason.token()))
            .collect();
        RawCollection {
            report: Err(LvmError::NoFallback(why.join("; "))),
            methods,
        }
    }
}

/// The copies of `copies` behind the newest one, when that is a problem rather than a commit
/// in flight: LVM writes a commit to each copy in turn within milliseconds, under the VG lock,
/// so a copy one `seqno` behind the newest is a commit in flight the first time it is seen.
/// It is a problem when a copy is more than one behind, or when the same disagreement
/// (`previous`, the last collection's) is seen again. Empty: no problem.
pub fn lagging_copies(
    previous: Option<&[(PathBuf, u64)]>,
    copies: &[(PathBuf, u64)],
) -> Vec<PathBuf> {
    let Some(newest) = copies.iter().map(|(_, seqno)| *seqno).max() else {
        return Vec::new();
    };
    let far_behind = copies
        .iter()
        .any(|(_, seqno)| seqno.saturating_add(1) < newest);
    if !far_behind && previous != Some(copies) {
        return Vec::new();
    }
    let mut lagging: Vec<PathBuf> = copies
        .iter()
        .filter(|(_, seqno)| *seqno < newest)
        .map(|(path, _)| path.clone())
        .collect();
    lagging.sort();
    lagging.dedup();
    lagging
}

/// Logs when `vg`'s copies disagree as a problem ([`lagging_copies`]), once per change of which
/// copies lag, and once when they agree again; a commit in flight only at debug level.
fn note_disagreement(state: &mut ReaderState, vg: &str, disagreement: Option<Vec<(PathBuf, u64)>>) {
    let previous = state.disagreements.remove(vg);
    let Some(copies) = disagreement else {
        if state.lagging_logged.remove(vg).is_some() {
            tracing::info!(vg, "the VG's metadata copies agree again");
        }
        return;
    };
    let listed = || {
        copies
            .iter()
            .map(|(path, seqno)| format!("{} seqno {seqno}", path.display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lagging = lagging_copies(previous.as_deref(), &copies);
    if lagging.is_empty() {
        tracing::debug!(vg, copies = %listed(), "a metadata commit in flight: one copy is newer");
    } else if state.lagging_logged.get(vg) != Some(&lagging) {
        tracing::warn!(
            vg,
            copies = %listed(),
            "the VG's metadata copies disagree; using the highest seqno"
        );
        state.lagging_logged.insert(vg.to_string(), lagging);
    }
    state.disagreements.insert(vg.to_string(), copies);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::Lv;

    fn lv(name: &str, segtype: &str, attr: &str) -> Lv {
        Lv {
            attr: attr.into(),
            segtype: segtype.into(),
            ..crate::lvm::build::linear_lv("vg", name, 1 << 30)
        }
    }

    #[test]
    fn an_active_thin_pool_is_told_by_the_fifth_attr_character() {
        let inactive = [
            lv("pool", "thin-pool", "twi---tz--"),
            lv("a", "linear", "-wi-a-----"),
        ];
        assert!(!has_active_thin_pool(&inactive));
        let active = [lv("pool", "thin-pool", "twi-aotz--")];
        assert!(has_active_thin_pool(&active));
        // An active thin LV alone says nothing of its pool's row.
        let thin = [lv("t", "thin", "Vwi-a-tz--")];
        assert!(!has_active_thin_pool(&thin));
    }

    fn view() -> VgMetadata {
        VgMetadata {
            vg: crate::lvm::build::vg("vg", 100 << 30, 90 << 30),
            seqno: 7,
            lvs: vec![
                lv("a", "linear", "-wi-------"),
                lv("pool", "thin-pool", "twi---tz--"),
            ],
        }
    }

    #[test]
    fn the_verifier_compares_field_by_field_and_ignores_kernel_state() {
        let reader = view();
        let mut lvm = VgReport {
            vgs: vec![reader.vg.clone()],
            lvs: reader.lvs.clone(),
        };
        // LVM on a host with device-mapper: the LV is active and open.
        lvm.lvs[0].attr = "-wi-ao----".into();
        assert_eq!(differences(&reader, &lvm), Vec::<String>::new());

        lvm.vgs[0].free_bytes -= 4 << 20;
        lvm.lvs[0].size_bytes += 4 << 20;
        lvm.lvs[1].tags = vec!["nova".into()];
        lvm.lvs.push(lv("new", "linear", "-wi-------"));
        assert_eq!(
            differences(&reader, &lvm),
            vec![
                format!(
                    "vg_free: metadata {}, lvm {}",
                    90u64 << 30,
                    (90u64 << 30) - (4 << 20)
                ),
                format!(
                    "lv a lv_size: metadata {}, lvm {}",
                    1u64 << 30,
                    (1u64 << 30) + (4 << 20)
                ),
                "lv new: only in lvm fullreport".to_string(),
                "lv pool lv_tags: metadata , lvm nova".to_string(),
            ]
        );
        lvm.vgs.clear();
        assert_eq!(
            differences(&reader, &lvm),
            vec!["lvm fullreport does not report vg vg".to_string()]
        );
    }

    #[test]
    fn the_verifier_compares_creation_times_and_pool_percentages_lvm_has() {
        let mut reader = view();
        reader.lvs[0].creation_unix = Some(1_796_102_750);
        let mut lvm = VgReport {
            vgs: vec![reader.vg.clone()],
            lvs: reader.lvs.clone(),
        };
        // An active pool's percentages are kernel state the reader does not have.
        lvm.lvs[1].data_used_ratio = Some(0.5);
        lvm.lvs[1].metadata_used_ratio = Some(0.25);
        assert_eq!(
            differences(&reader, &lvm),
            [
                "lv pool data_percent: metadata None, lvm Some(0.5)",
                "lv pool metadata_percent: metadata None, lvm Some(0.25)",
            ]
        );
        lvm.lvs[1].data_used_ratio = None;
        lvm.lvs[1].metadata_used_ratio = None;
        lvm.lvs[0].creation_unix = Some(1_796_102_751);
        lvm.lvs[1].creation_unix = Some(5);
        assert_eq!(
            differences(&reader, &lvm),
            [
                "lv a lv_time: metadata Some(1796102750), lvm Some(1796102751)",
                "lv pool lv_time: metadata None, lvm Some(5)",
            ]
        );
    }

    #[test]
    fn dm_names_double_the_dashes() {
        assert_eq!(
            dm_name("nova-vg", "my-pool_tdata"),
            "nova--vg-my--pool_tdata"
        );
        assert_eq!(dm_name("vg", "lv"), "vg-lv");
    }

    #[test]
    fn a_pool_is_active_when_the_kernel_lists_its_data_device() {
        let metadata = VgMetadata {
            vg: crate::lvm::build::vg("nova-vg", 1 << 34, 1 << 33),
            seqno: 3,
            lvs: vec![lv("pool", "thin-pool", "twi---tz--")],
        };
        let mut names: HashSet<String> = ["nova--vg-other_tdata".to_string()].into();
        assert!(!thin_pool_active_in_kernel(&metadata, &names));
        names.insert("nova--vg-pool_tdata".into());
        assert!(thin_pool_active_in_kernel(&metadata, &names));
    }

    #[test]
    fn read_errors_map_to_their_reason_tokens() {
        let path = Path::new("/dev/x");
        let cases = [
            (MetadataError::Io("denied".into()), "unreadable_device"),
            (
                MetadataError::BadChecksum {
                    what: "metadata text",
                    stored: 1,
                    computed: 2,
                },
                "checksum",
            ),
            (MetadataError::Moved { attempts: 3 }, "checksum"),
            (MetadataError::NotAPv, "pv_changed"),
            (MetadataError::NoText, "malformed"),
        ];
        for (error, token) in cases {
            assert_eq!(fallback_for(path, "label", &error).reason.token(), token);
        }
        let unsupported = VgError::Unsupported {
            vg: "vg".into(),
            what: "lock_type".into(),
        };
        assert_eq!(fallback_for_vg(&unsupported).reason, Reason::Unsupported);
    }

    #[test]
    fn a_pv_that_joined_or_left_the_vg_sends_it_to_discovery() {
        let tree = text::parse(
            "vg {\nid = \"v-1\"\nseqno = 3\nphysical_volumes {\npv0 {\nid = \"a-1\"\n}\npv1 {\nid = \"b-2\"\n}\n}\n}\n",
        )
        .unwrap();
        let row = |uuid: &str| PvRow {
            vg: "vg".into(),
            device: format!("/dev/{uuid}"),
            uuid: uuid.into(),
        };
        assert_eq!(check_pv_set("vg", &[row("b2"), row("a1")], &tree), Ok(()));
        let joined = check_pv_set("vg", &[row("a1")], &tree).unwrap_err();
        assert_eq!(joined.reason, Reason::PvChanged);
        assert!(joined.reason.needs_discovery());
        assert!(joined.message.contains("lists 2 PV(s), 1 were found"));
        let left = check_pv_set("vg", &[row("a1"), row("b2"), row("c3")], &tree);
        assert_eq!(left.unwrap_err().reason, Reason::PvChanged);
    }

    #[test]
    fn a_scan_that_misses_the_vg_names_the_devices_it_could_not_read() {
        let unreadable: Vec<String> = (0..7)
            .map(|i| format!("/dev/sd{i}: cannot open read-only: permission denied"))
            .collect();
        let fallback = group_scanned("vg", &[], &unreadable).unwrap_err();
        assert_eq!(fallback.reason, Reason::NotFound);
        assert!(
            fallback.message.contains("7 device(s) could not be read")
                && fallback.message.contains("/dev/sd4:")
                && !fallback.message.contains("/dev/sd5:"),
            "{}",
            fallback.message
        );
        let missing = ScannedPv {
            metadata_error: None,
            device: "/dev/sda".into(),
            pv_uuid: "a".into(),
            vg: Some(lvm_metadata::scan::VgIdentity {
                name: "vg".into(),
                id: "v".into(),
                seqno: 1,
                pv_uuids: vec!["a".into(), "b".into()],
            }),
        };
        let fallback = group_scanned("vg", &[missing], &[]).unwrap_err();
        assert_eq!(fallback.reason.token(), "missing_pv");
        assert!(fallback.message.ends_with("that no scanned device carries"));
    }

    #[test]
    fn a_copy_one_behind_once_is_a_commit_in_flight() {
        let copies =
            |a: u64, b: u64| vec![(PathBuf::from("/dev/a"), a), (PathBuf::from("/dev/b"), b)];
        // Seen once, one behind: a commit in flight.
        assert!(lagging_copies(None, &copies(8, 7)).is_empty());
        assert!(lagging_copies(Some(&copies(7, 6)), &copies(8, 7)).is_empty());
        // The same disagreement twice in a row: the copy is stale.
        assert_eq!(
            lagging_copies(Some(&copies(8, 7)), &copies(8, 7)),
            [PathBuf::from("/dev/b")]
        );
        // More than one behind: never a commit in flight.
        assert_eq!(
            lagging_copies(None, &copies(5, 9)),
            [PathBuf::from("/dev/a")]
        );
        assert!(lagging_copies(None, &[]).is_empty());
    }

    #[test]
    fn a_vg_without_pvs_or_with_a_missing_device_falls_back() {
        let cache = VgCache::default();
        assert_eq!(
            read_vg("vg", &[], &cache).unwrap_err().reason,
            Reason::NotFound
        );
        let missing = PvRow {
            vg: "vg".into(),
            device: String::new(),
            uuid: String::new(),
        };
        assert_eq!(
            read_vg("vg", &[missing], &cache).unwrap_err().reason,
            Reason::MissingPv
        );
        // LVM's name for a missing PV is no path: never opened, relative or otherwise.
        let unknown = PvRow {
            vg: "vg".into(),
            device: "[unknown]".into(),
            uuid: "x".into(),
        };
        let refused = read_vg("vg", &[unknown], &cache).unwrap_err();
        assert_eq!(refused.reason, Reason::MissingPv);
        assert!(
            refused.message.contains("\"[unknown]\""),
            "{}",
            refused.message
        );
        let gone = PvRow {
            vg: "vg".into(),
            device: "/nonexistent/pv".into(),
            uuid: "x".into(),
        };
        assert_eq!(
            read_vg("vg", &[gone], &cache).unwrap_err().reason,
            Reason::UnreadableDevice
        );
    }

    /// The head of a real PV of VG `probevg` (label, metadata area header, text at 4608).
    const SEED_PV: &[u8] = include_bytes!("../../../fuzz/corpus/lvm_pv/seed-1.bin");

    #[test]
    fn an_unchanged_area_is_read_as_the_text_verified_before_and_copies_share_it() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<PvRow> = ["a.img", "b.img"]
            .iter()
            .map(|name| {
                let path = dir.path().join(name);
                std::fs::write(&path, SEED_PV).unwrap();
                PvRow {
                    vg: "probevg".into(),
                    device: path.display().to_string(),
                    uuid: "2ofoesBB8lQdVAT1XGiF2lE1u1pV8Q6d".into(),
                }
            })
            .collect();
        let first = read_vg("probevg", &rows, &VgCache::default()).expect("the seed PV reads");
        assert!(first.parsed);
        // Both copies of the text are held once, by the areas and the seqno list alike.
        let [(held, _)] = &first.cache.seqnos[..] else {
            panic!("one distinct text: {:?}", first.cache.seqnos)
        };
        assert_eq!(first.cache.areas.len(), 2);
        for (_, verified) in &first.cache.areas {
            assert!(Arc::ptr_eq(verified.text(), held));
        }
        let again = read_vg("probevg", &rows, &first.cache).expect("read again");
        assert!(!again.parsed);
        assert!(Arc::ptr_eq(&again.metadata, &first.metadata));
        assert!(Arc::ptr_eq(&again.cache.seqnos[0].0, held));
        for (_, verified) in &again.cache.areas {
            assert!(Arc::ptr_eq(verified.text(), held));
        }
        // A changed byte under the same raw_locn is checked in full: refused.
        let mut changed = SEED_PV.to_vec();
        changed[4608 + 20] ^= 1;
        std::fs::write(&rows[1].device, changed).unwrap();
        let refused = read_vg("probevg", &rows, &again.cache).unwrap_err();
        assert_eq!(refused.reason.token(), "checksum", "{}", refused.message);
    }
}
