//! The metadata text reader against LVM itself: for each VG shape, the text `vgcfgbackup` writes
//! (and the text in the PV's metadata area, read straight from the device) is parsed with
//! [`text::parse`] and [`vg::from_tree`] and must give the same VG and LVs as `lvm fullreport`
//! ([`oracle`]). Shapes LVM cannot create here (no device-mapper: thin pools, raid, mirrors,
//! snapshots, cached LVs) are written into the metadata with vgcfgrestore, which is all the
//! reports read.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use lvm_metadata::{text, vg, Lv, Vg};
use proptest::prelude::*;

use crate::oracle::lvm_reports;
use crate::support::{deterministic_runner, lvm_available, run, ExtraPv, LoopVg};

/// The VG and its LVs by name, with the `lv_attr` characters that are kernel state blanked: 5
/// (state) and 6 (open). LVM prints `XX` for them here, where device-mapper is missing, and `--`
/// for an inactive LV on a host with device-mapper; the reader, which never asks the kernel,
/// prints `--`.
fn normalised(vg: Vg, mut lvs: Vec<Lv>) -> (Vg, Vec<Lv>) {
    for lv in &mut lvs {
        let mut chars: Vec<char> = lv.attr.chars().collect();
        if chars.len() == 10 {
            chars[4] = '-';
            chars[5] = '-';
        }
        lv.attr = chars.into_iter().collect();
    }
    lvs.sort_by(|a, b| a.name.cmp(&b.name));
    (vg, lvs)
}

/// What `lvm fullreport` says of `vg_name`.
fn lvm_says(vg_name: &str) -> (Vg, Vec<Lv>) {
    let (vg, lvs) = lvm_reports(vg_name, None);
    normalised(vg, lvs)
}

/// What the metadata reader says of `vg_name`, from the text `vgcfgbackup` writes.
fn reader_says(vg_name: &str) -> (Vg, Vec<Lv>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vg.txt");
    run(
        "vgcfgbackup",
        &["-q", "-f", file.to_str().unwrap(), vg_name],
    );
    let text = std::fs::read_to_string(&file).expect("backup");
    let tree = text::parse(&text).expect("metadata text parses");
    let parsed = vg::from_tree(&tree).expect("metadata describes the vg");
    normalised(parsed.vg, parsed.lvs)
}

/// The current metadata text in the first metadata area of the PV `device`, read straight
/// from the device (the test's own minimal reader: the label/mda reader with its checksums is
/// the crate's `device` module). The layout: the mda header at byte 4096 holds `start` (u64 at
/// 24), `size` (u64 at 32) and the current text's `offset` (from the mda start) and `size` (u64s
/// at 40 and 48); the text may wrap from the end of the area to just after its 512-byte header.
fn metadata_area_text(device: &str) -> String {
    use std::io::{Read, Seek, SeekFrom};
    // Drop the block device's page cache: LVM writes with O_DIRECT.
    run("blockdev", &["--flushbufs", device]);
    let mut file = std::fs::File::open(device).expect("open PV");
    let mut header = [0u8; 512];
    file.seek(SeekFrom::Start(4096)).unwrap();
    file.read_exact(&mut header).unwrap();
    assert_eq!(&header[4..20], b" LVM2 x[5A%r0N*>", "mda magic");
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
    let (mda_start, mda_size, offset, size) = (u64_at(24), u64_at(32), u64_at(40), u64_at(48));
    let mut text = vec![0u8; usize::try_from(size).unwrap()];
    let first = size.min(mda_size - offset);
    file.seek(SeekFrom::Start(mda_start + offset)).unwrap();
    file.read_exact(&mut text[..first as usize]).unwrap();
    if first < size {
        file.seek(SeekFrom::Start(mda_start + 512)).unwrap();
        file.read_exact(&mut text[first as usize..]).unwrap();
    }
    // The text ends with a NUL byte.
    let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
    String::from_utf8(text[..end].to_vec()).expect("UTF-8 metadata")
}

fn assert_reader_equals_lvm(vg: &LoopVg, shape: &str) {
    let lvm = lvm_says(&vg.name);
    let reader = reader_says(&vg.name);
    let on_disk =
        vg::from_tree(&text::parse(&metadata_area_text(&vg.device)).expect("mda text parses"))
            .expect("mda text describes the vg");
    assert_eq!(
        normalised(on_disk.vg, on_disk.lvs),
        reader,
        "{shape}: the metadata area and vgcfgbackup differ"
    );
    assert_eq!(reader.0, lvm.0, "{shape}: vg differs");
    assert_eq!(reader.1.len(), lvm.1.len(), "{shape}: lv count differs");
    for (mine, theirs) in reader.1.iter().zip(&lvm.1) {
        assert_eq!(mine, theirs, "{shape}: lv differs");
    }
}

/// Writes LV sections for vgcfgrestore, allocating extents on `pv0` from `next_extent` on.
struct Lvs {
    text: String,
    next_extent: u64,
    next_id: u64,
}

const VISIBLE: &str = r#""READ", "WRITE", "VISIBLE""#;
const HIDDEN: &str = r#""READ", "WRITE""#;

impl Lvs {
    fn new() -> Self {
        Lvs {
            text: String::new(),
            next_extent: 0,
            next_id: 0,
        }
    }

    /// A fresh LV UUID in LVM's 6-4-4-4-4-4-6 form.
    fn id(&mut self) -> String {
        self.next_id += 1;
        let n = format!("{:032}", self.next_id);
        format!(
            "{}-{}-{}-{}-{}-{}-{}",
            &n[..6],
            &n[6..10],
            &n[10..14],
            &n[14..18],
            &n[18..22],
            &n[22..26],
            &n[26..]
        )
    }

    /// An LV with one segment whose body is `segment`; `extras` are more keys of the LV (an
    /// empty `flags` list is added unless they have one).
    fn lv(&mut self, name: &str, status: &str, extras: &str, extents: u64, segment: &str) {
        let id = self.id();
        let flags = if extras.contains("flags = ") {
            ""
        } else {
            "flags = []"
        };
        self.text.push_str(&format!(
            "{name} {{\nid = \"{id}\"\nstatus = [{status}]\n{flags}\n{extras}\nsegment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = {extents}\n{segment}\n}}\n}}\n"
        ));
    }

    /// A linear LV on the next free extents of `pv0`.
    fn linear(&mut self, name: &str, status: &str, extras: &str, extents: u64) {
        let start = self.next_extent;
        self.next_extent += extents;
        self.lv(
            name,
            status,
            extras,
            extents,
            &format!("type = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", {start}]"),
        );
    }

    fn thin_pool(&mut self, pool: &str, extents: u64, zero: u64) {
        self.lv(
            pool,
            VISIBLE,
            "",
            extents,
            &format!("type = \"thin-pool\"\nmetadata = \"{pool}_tmeta\"\npool = \"{pool}_tdata\"\ntransaction_id = 0\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = {zero}"),
        );
        self.linear(&format!("{pool}_tmeta"), HIDDEN, "", 1);
        self.linear(&format!("{pool}_tdata"), HIDDEN, "", extents);
    }

    fn thin(&mut self, name: &str, pool: &str, extents: u64, device_id: u64, extras: &str) {
        self.lv(
            name,
            VISIBLE,
            extras,
            extents,
            &format!("type = \"thin\"\nthin_pool = \"{pool}\"\ntransaction_id = 0\ndevice_id = {device_id}"),
        );
    }

    fn raid1(&mut self, name: &str, extents: u64) {
        self.lv(
            name,
            VISIBLE,
            "",
            extents,
            &format!("type = \"raid1\"\ndevice_count = 2\nregion_size = 1024\nraids = [\"{name}_rmeta_0\", \"{name}_rimage_0\", \"{name}_rmeta_1\", \"{name}_rimage_1\"]"),
        );
        for i in 0..2 {
            self.linear(&format!("{name}_rmeta_{i}"), HIDDEN, "", 1);
            self.linear(&format!("{name}_rimage_{i}"), HIDDEN, "", extents);
        }
    }

    /// A raid LV of `segtype` over `devices` images of `image_extents` each, holding
    /// `extents`; `with_meta` adds a `_rmeta_N` per image.
    fn raid(
        &mut self,
        name: &str,
        segtype: &str,
        devices: u64,
        image_extents: u64,
        extents: u64,
        with_meta: bool,
    ) {
        let mut raids = Vec::new();
        for i in 0..devices {
            if with_meta {
                raids.push(format!("\"{name}_rmeta_{i}\""));
            }
            raids.push(format!("\"{name}_rimage_{i}\""));
        }
        self.lv(
            name,
            VISIBLE,
            "",
            extents,
            &format!(
                "type = \"{segtype}\"\ndevice_count = {devices}\nstripe_size = 128\n{}{} = [{}]",
                if segtype.starts_with("raid0") {
                    ""
                } else {
                    "region_size = 1024\n"
                },
                if segtype == "raid0" {
                    "raid0_lvs"
                } else {
                    "raids"
                },
                raids.join(", ")
            ),
        );
        for i in 0..devices {
            if with_meta {
                self.linear(&format!("{name}_rmeta_{i}"), HIDDEN, "", 1);
            }
            self.linear(&format!("{name}_rimage_{i}"), HIDDEN, "", image_extents);
        }
    }

    fn mirror(&mut self, name: &str, extents: u64) {
        self.lv(
            name,
            VISIBLE,
            "",
            extents,
            &format!("type = \"mirror\"\nmirror_count = 2\nregion_size = 1024\nmirror_log = \"{name}_mlog\"\nmirrors = [\"{name}_mimage_0\", 0, \"{name}_mimage_1\", 0]"),
        );
        self.linear(&format!("{name}_mlog"), HIDDEN, "", 1);
        for i in 0..2 {
            self.linear(&format!("{name}_mimage_{i}"), HIDDEN, "", extents);
        }
    }

    /// A classic snapshot `cow` of `origin` (which must exist): the COW store and the virtual
    /// `snapshotN` LV that links them.
    fn snapshot(&mut self, cow: &str, origin: &str, origin_extents: u64, index: u64) {
        self.linear(cow, VISIBLE, "", 2);
        self.lv(
            &format!("snapshot{index}"),
            VISIBLE,
            "",
            origin_extents,
            &format!(
                "type = \"snapshot\"\nchunk_size = 8\norigin = \"{origin}\"\ncow_store = \"{cow}\""
            ),
        );
    }

    /// A cached LV: `name` of type cache over `name_corig`, with the hidden cache pool `pool`.
    fn cached(&mut self, name: &str, pool: &str, extents: u64) {
        self.lv(
            name,
            VISIBLE,
            "",
            extents,
            &format!("type = \"cache\"\ncache_pool = \"{pool}\"\norigin = \"{name}_corig\""),
        );
        self.linear(&format!("{name}_corig"), HIDDEN, "", extents);
        self.lv(
            pool,
            HIDDEN,
            "",
            4,
            &format!("type = \"cache-pool\"\ndata = \"{pool}_cdata\"\nmetadata = \"{pool}_cmeta\"\nchunk_size = 128\ncache_mode = \"writethrough\"\npolicy = \"smq\"\nmetadata_format = 2"),
        );
        self.linear(&format!("{pool}_cdata"), HIDDEN, "", 4);
        self.linear(&format!("{pool}_cmeta"), HIDDEN, "", 1);
    }
}

#[test]
fn linear_and_multi_segment_lvs_with_tags() {
    if !lvm_available("linear_and_multi_segment_lvs_with_tags") {
        return;
    }
    let vg = LoopVg::new("mdt-lin", 20);
    vg.create_lv("first", "100M");
    vg.create_lv_with("tagged", "40M", &["--addtag", "nova", "--addtag", "a:b"]);
    vg.extend_lv("first", "+60M");
    vg.create_lv("third", "4M");
    vg.extend_lv("first", "+8M");
    assert_reader_equals_lvm(&vg, "linear and multi-segment");
}

/// `lv_time` (printed as seconds: the oracle's `report/time_format`) against the metadata's
/// `creation_time`: set by lvcreate, written by hand, 0, and absent.
#[test]
fn creation_times() {
    if !lvm_available("creation_times") {
        return;
    }
    let vg = LoopVg::new("mdt-time", 20);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    vg.create_lv("made_now", "8M");
    let mut lvs = Lvs::new();
    lvs.next_extent = 2;
    lvs.linear(
        "written",
        VISIBLE,
        "creation_time = 1234567890\ncreation_host = \"cmp-7\"",
        1,
    );
    lvs.linear(
        "zero",
        VISIBLE,
        "creation_time = 0\ncreation_host = \"cmp-7\"",
        1,
    );
    lvs.linear("absent", VISIBLE, "", 1);
    vg.restore_with_extra_lvs(&lvs.text);
    vg.set_lv_creation_time("made_now", before - 86_400);
    assert_reader_equals_lvm(&vg, "creation times");
    let (_, from_lvm) = lvm_says(&vg.name);
    let times: Vec<(&str, Option<i64>)> = from_lvm
        .iter()
        .map(|lv| (lv.name.as_str(), lv.creation_unix))
        .collect();
    assert_eq!(
        times,
        [
            ("absent", None),
            ("made_now", Some(before - 86_400)),
            ("written", Some(1_234_567_890)),
            ("zero", None),
        ]
    );
}

#[test]
fn empty_vg() {
    if !lvm_available("empty_vg") {
        return;
    }
    let vg = LoopVg::new("mdt-empty", 20);
    assert_reader_equals_lvm(&vg, "empty");
}

#[test]
fn multi_pv_vg_with_striped_and_spanning_lvs() {
    if !lvm_available("multi_pv_vg_with_striped_and_spanning_lvs") {
        return;
    }
    let extra = ExtraPv::new(2);
    let vg = LoopVg::new("mdt-pvs", 1);
    run("pvcreate", &["-q", &extra.device]);
    run("vgextend", &["-q", &vg.name, &extra.device]);
    vg.create_lv_with("striped", "200M", &["-i", "2"]);
    vg.create_lv("spanning", "1500M");
    vg.create_lv("small", "12M");
    assert_reader_equals_lvm(&vg, "multi-PV");
    // A PV taken out of allocation still counts in vg_size and vg_free.
    run("pvchange", &["-q", "-x", "n", &extra.device]);
    assert_reader_equals_lvm(&vg, "multi-PV, one PV not allocatable");
}

#[test]
fn thin_pool_with_thin_lvs_and_pmspare() {
    if !lvm_available("thin_pool_with_thin_lvs_and_pmspare") {
        return;
    }
    let vg = LoopVg::new("mdt-thin", 20);
    let mut lvs = Lvs::new();
    lvs.thin_pool("pool", 50, 1);
    // LVM takes any hidden LV with `_pmspare` in its name for the spare (import_vsn1.c).
    lvs.linear("spare_pmspare_x", HIDDEN, "", 1);
    lvs.thin("thin1", "pool", 100, 1, "tags = [\"nova\"]");
    lvs.thin("thin2", "pool", 7, 2, "");
    lvs.thin_pool("plain", 10, 0);
    lvs.thin("thin3", "plain", 3, 1, "");
    vg.restore_with_extra_lvs(&lvs.text);
    assert_reader_equals_lvm(&vg, "thin pool");
}

#[test]
fn raid1_mirror_snapshot_and_cache_sub_lvs() {
    if !lvm_available("raid1_mirror_snapshot_and_cache_sub_lvs") {
        return;
    }
    let vg = LoopVg::new("mdt-sub", 20);
    let mut lvs = Lvs::new();
    lvs.raid1("r1", 5);
    lvs.mirror("mir", 3);
    lvs.linear("origin", VISIBLE, "", 10);
    lvs.snapshot("snap", "origin", 10, 0);
    lvs.cached("cached", "cpool", 6);
    lvs.raid("r5", "raid5_ls", 3, 2, 4, true);
    lvs.raid("r0", "raid0", 2, 3, 6, false);
    lvs.raid("r0m", "raid0_meta", 2, 3, 6, true);
    lvs.raid("r10", "raid10", 4, 2, 4, true);
    vg.restore_with_extra_lvs(&lvs.text);
    assert_reader_equals_lvm(&vg, "raid1, mirror, snapshot, cache");
}

/// Every `lv_attr` character the metadata decides: permissions, allocation policy, fixed minor,
/// activation skip, zeroing, not-synced raid and mirror, and a thin snapshot.
#[test]
fn attr_characters_from_the_metadata() {
    if !lvm_available("attr_characters_from_the_metadata") {
        return;
    }
    let vg = LoopVg::new("mdt-attr", 20);
    let mut lvs = Lvs::new();
    lvs.linear("readonly", r#""READ", "VISIBLE""#, "", 1);
    lvs.linear(
        "minor",
        r#""READ", "WRITE", "VISIBLE", "FIXED_MINOR""#,
        "minor = 77",
        1,
    );
    lvs.linear("skip", VISIBLE, "flags = [\"ACTIVATION_SKIP\"]", 1);
    assert!(lvs.text.contains("ACTIVATION_SKIP"));
    for policy in [
        "contiguous",
        "cling",
        "cling_by_tags",
        "normal",
        "anywhere",
        "inherit",
    ] {
        lvs.linear(
            &format!("policy_{policy}"),
            VISIBLE,
            &format!("allocation_policy = \"{policy}\""),
            1,
        );
    }
    lvs.thin_pool("pool", 4, 1);
    lvs.thin("origin", "pool", 10, 1, "");
    lvs.thin("thinsnap", "pool", 10, 2, "");
    lvs.text = lvs.text.replacen(
        "thin_pool = \"pool\"\ntransaction_id = 0\ndevice_id = 2",
        "thin_pool = \"pool\"\ntransaction_id = 0\norigin = \"origin\"\ndevice_id = 2",
        1,
    );
    lvs.raid1("unsynced", 2);
    lvs.mirror("unsyncedm", 2);
    let text = mark_not_synced(&lvs.text, &["unsynced", "unsyncedm"]);
    vg.restore_with_extra_lvs(&text);
    assert_reader_equals_lvm(&vg, "attr characters");
    // The shape exercised what it claims to.
    let (_, lvs) = lvm_says(&vg.name);
    let attr = |name: &str| {
        lvs.iter()
            .find(|lv| lv.name == name)
            .map(|lv| lv.attr.clone())
            .expect(name)
    };
    assert_eq!(attr("readonly"), "-ri-------");
    assert_eq!(attr("minor"), "-wim------");
    assert_eq!(attr("skip"), "-wi------k");
    assert_eq!(attr("policy_cling"), "-wl-------");
    assert_eq!(attr("unsynced"), "Rwi---r---");
    assert_eq!(attr("unsyncedm"), "Mwi---m---");
    assert_eq!(attr("thinsnap"), "Vwi---tz--");
}

/// Adds `NOTSYNCED` to the status of the LVs named.
fn mark_not_synced(text: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut current = "";
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(" {") {
            current = if names.contains(&name) { name } else { "" };
        }
        if !current.is_empty() && line.starts_with("status = [") {
            out.push_str(&line.replace("]", ", \"NOTSYNCED\"]"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn unused_cache_pool_made_by_lvcreate() {
    if !lvm_available("unused_cache_pool_made_by_lvcreate") {
        return;
    }
    let vg = LoopVg::new("mdt-cpool", 20);
    run(
        "lvcreate",
        &[
            "-q",
            "--config",
            "global{activation=0}",
            "-an",
            "--type",
            "cache-pool",
            "-L",
            "40M",
            "-n",
            "cpool",
            &vg.name,
        ],
    );
    vg.create_lv("after", "8M");
    assert_reader_equals_lvm(&vg, "cache pool");
}

#[test]
fn two_thousand_lvs() {
    if !lvm_available("two_thousand_lvs") {
        return;
    }
    let vg = LoopVg::new("mdt-2k", 20);
    let mut lvs = Lvs::new();
    for i in 0..2000 {
        let tags = if i % 3 == 0 { "tags = [\"nova\"]" } else { "" };
        lvs.linear(&format!("lv{i:04}"), VISIBLE, tags, 1 + i % 2);
    }
    vg.restore_with_extra_lvs(&lvs.text);
    assert_reader_equals_lvm(&vg, "2,000 LVs");
}

/// One LV (with its sub-LVs) of a random VG shape.
#[derive(Debug, Clone)]
enum Piece {
    /// A linear LV, hidden or visible, with tags `nova, x_y`, an empty tag list, or none.
    Linear {
        hidden: bool,
        tags: u8,
        extents: u64,
    },
    /// A thin pool and thin LVs of these virtual sizes in it.
    ThinPool {
        extents: u64,
        zero: u64,
        thins: Vec<u64>,
    },
    /// raid1, raid5, raid0 or raid10 with images of `image` extents.
    Raid { level: u8, image: u64 },
    /// A two-way mirror.
    Mirror { extents: u64 },
    /// A linear origin and a classic snapshot of it.
    Snapshot { extents: u64 },
    /// A cached LV with its cache pool.
    Cached { extents: u64 },
    /// A linear LV with the allocation policy `contiguous`, `anywhere` or none.
    Policy { policy: u8, extents: u64 },
}

/// A piece, each kind as likely as the others (as the hand-written generator drew them).
fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        (prop::bool::weighted(0.2), 0u8..3, 1u64..=20).prop_map(|(hidden, tags, extents)| {
            Piece::Linear {
                hidden,
                tags,
                extents,
            }
        }),
        (1u64..=30, 0u64..2, prop::collection::vec(1u64..=500, 0..4)).prop_map(
            |(extents, zero, thins)| Piece::ThinPool {
                extents,
                zero,
                thins
            }
        ),
        (0u8..4, 1u64..=5).prop_map(|(level, image)| Piece::Raid { level, image }),
        (1u64..=10).prop_map(|extents| Piece::Mirror { extents }),
        (1u64..=10).prop_map(|extents| Piece::Snapshot { extents }),
        (1u64..=10).prop_map(|extents| Piece::Cached { extents }),
        (0u8..3, 1u64..=5).prop_map(|(policy, extents)| Piece::Policy { policy, extents }),
    ]
}

/// A random VG shape: up to 11 pieces.
fn shape() -> impl Strategy<Value = Vec<Piece>> {
    prop::collection::vec(piece(), 0..12)
}

/// The LV sections of `pieces`, LV names numbered by position.
fn shape_text(pieces: &[Piece]) -> String {
    let mut lvs = Lvs::new();
    let mut snapshots = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Linear {
                hidden,
                tags,
                extents,
            } => {
                let status = if *hidden { HIDDEN } else { VISIBLE };
                let tags = match tags {
                    0 => "tags = [\"nova\", \"x_y\"]",
                    1 => "tags = []",
                    _ => "",
                };
                lvs.linear(&format!("l{i}"), status, tags, *extents);
            }
            Piece::ThinPool {
                extents,
                zero,
                thins,
            } => {
                let pool = format!("p{i}");
                lvs.thin_pool(&pool, *extents, *zero);
                for (t, size) in (0u64..).zip(thins) {
                    lvs.thin(&format!("t{i}_{t}"), &pool, *size, t + 1, "");
                }
            }
            Piece::Raid { level, image } => {
                let (name, image) = (format!("r{i}"), *image);
                match level {
                    0 => lvs.raid1(&name, image),
                    1 => lvs.raid(&name, "raid5", 3, image, 2 * image, true),
                    2 => lvs.raid(&name, "raid0", 2, image, 2 * image, false),
                    _ => lvs.raid(&name, "raid10", 4, image, 2 * image, true),
                }
            }
            Piece::Mirror { extents } => lvs.mirror(&format!("m{i}"), *extents),
            Piece::Snapshot { extents } => {
                let origin = format!("o{i}");
                lvs.linear(&origin, VISIBLE, "", *extents);
                lvs.snapshot(&format!("s{i}"), &origin, *extents, snapshots);
                snapshots += 1;
            }
            Piece::Cached { extents } => lvs.cached(&format!("c{i}"), &format!("cp{i}"), *extents),
            Piece::Policy { policy, extents } => {
                let extras = match policy {
                    0 => "allocation_policy = \"contiguous\"",
                    1 => "allocation_policy = \"anywhere\"",
                    _ => "",
                };
                lvs.linear(&format!("a{i}"), VISIBLE, extras, *extents);
            }
        }
    }
    lvs.text
}

/// Fifty random shapes (proptest, fixed seed: the same shapes on every run; a failure shrinks
/// to the smallest shape that still fails and is kept in `proptest-regressions/`).
#[test]
fn fifty_random_shapes() {
    if !lvm_available("fifty_random_shapes") {
        return;
    }
    let mut runner = deterministic_runner(50, 0x9e37_79b9_7f4a_7c15, file!());
    let shapes = Cell::new(0);
    runner
        .run(&shape(), |pieces| {
            shapes.set(shapes.get() + 1);
            let vg = LoopVg::new("mdt-rand", 20);
            let text = shape_text(&pieces);
            if !text.is_empty() {
                vg.restore_with_extra_lvs(&text);
            }
            assert_reader_equals_lvm(&vg, &format!("random shape {pieces:?}"));
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(shapes.get(), 50, "fifty shapes ran");
}
