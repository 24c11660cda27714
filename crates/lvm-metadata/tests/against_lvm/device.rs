//! The device reader (`lvm_metadata::device`) on real PVs: loop devices formatted by the real
//! `pvcreate`/`vgcreate`, LVs written by `lvcreate`, and what the reader finds compared with what
//! `pvs`/`vgs` say. Corrupted copies of a PV image must give typed errors, never a panic. Then
//! the differential strictness test: mutated metadata written to real PVs, LVM's verdict against
//! the reader's.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use lvm_metadata::crc::{calc_crc, INITIAL_CRC};
use lvm_metadata::device::{
    read_label, read_mda_text_unparsed, read_pv, MdaText, PvDevice, PvMetadata,
};
use lvm_metadata::mda::vg_seqno;
use lvm_metadata::scan::vg_identity;
use lvm_metadata::{text, vg, MetadataError, VgMetadata};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::oracle::json_lines;
use crate::support::{
    deterministic_runner, loop_device, lvm_available, remove_loop_vg, run, unique_vg_name,
};

/// One PV on a loop device, with one VG on it; both removed on drop, even when a test fails.
struct TestPv {
    device: String,
    vg: String,
    dir: tempfile::TempDir,
}

impl TestPv {
    /// A `size_mib` PV made with `pvcreate` and the extra `pvcreate_args`, and a VG on it.
    fn new(tag: &str, size_mib: u64, pvcreate_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let device = loop_device(dir.path(), "pv.img", size_mib << 20);
        let vg = unique_vg_name(&format!("mda-{tag}"));
        let pv = TestPv { device, vg, dir };
        let mut args = vec!["-q"];
        args.extend_from_slice(pvcreate_args);
        args.push(&pv.device);
        run("pvcreate", &args);
        run("vgcreate", &["-q", &pv.vg, &pv.device]);
        pv
    }

    fn lvm(&self, command: &str, extra: &[&str]) {
        let mut args = vec!["-q", "--config", "global{activation=0}"];
        args.extend_from_slice(extra);
        run(command, &args);
    }

    fn create_lv(&self, name: &str) {
        self.lvm(
            "lvcreate",
            &["-an", "-Zn", "-L", "4m", "-n", name, &self.vg],
        );
    }

    fn remove_lv(&self, name: &str) {
        self.lvm("lvremove", &["-f", &format!("{}/{name}", self.vg)]);
    }

    /// `vgs` fields for this VG, trimmed. LVM sees this PV only (`--devices`): the
    /// differential test in this binary writes refused metadata to its own PVs meanwhile, and a
    /// scan of every device then makes LVM print notices beside the figure.
    fn vgs(&self, field: &str) -> String {
        let output = run(
            "vgs",
            &[
                "--devices",
                &self.device,
                "--noheadings",
                "-o",
                field,
                &self.vg,
            ],
        );
        output
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .unwrap_or_default()
            .to_string()
    }

    fn read(&self) -> PvMetadata {
        read_pv(Path::new(&self.device)).unwrap_or_else(|e| panic!("reading {}: {e}", self.device))
    }

    /// A copy of the whole PV, as a regular file.
    fn image_copy(&self) -> PathBuf {
        let copy = self.dir.path().join("copy.img");
        let mut source = std::fs::File::open(&self.device).expect("open the PV");
        let mut target = std::fs::File::create(&copy).expect("create the copy");
        std::io::copy(&mut source, &mut target).expect("copy the PV");
        copy
    }
}

impl Drop for TestPv {
    fn drop(&mut self) {
        remove_loop_vg(&self.vg, &self.device);
    }
}

/// The VG's `id` from its metadata text (the first `id = "..."` line is the VG's).
fn text_id(text: &str) -> &str {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix("id = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("an id line")
}

fn only_text(read: &PvMetadata) -> &MdaText {
    assert_eq!(read.contents.mdas.len(), 1);
    read.contents.mdas[0]
        .result
        .as_ref()
        .expect("metadata text")
}

#[test]
fn a_fresh_pv_reads_as_lvm_reports_it() {
    if !lvm_available("a_fresh_pv_reads_as_lvm_reports_it") {
        return;
    }
    let pv = TestPv::new("fresh", 64, &[]);
    pv.create_lv("lv0");
    let read = pv.read();
    assert!(read.direct_io, "a loop block device is read with O_DIRECT");
    let lvm_uuid = run("pvs", &["--noheadings", "-o", "pv_uuid", &pv.device]);
    assert_eq!(
        read.contents.label.pv_uuid,
        lvm_uuid.trim().replace('-', "")
    );
    assert_eq!(read.contents.label.device_size, 64 << 20);
    let text = only_text(&read);
    assert_eq!(text.seqno, Some(pv.vgs("vg_seqno").parse().unwrap()));
    assert_eq!(text_id(&text.text), pv.vgs("vg_uuid"));
    assert!(text.text.starts_with(&format!("{} {{", pv.vg)));
    assert!(text.text.contains("lv0 {"));
    assert_eq!(text.attempts, 1);
    assert!(!text.wrapped);
    assert_eq!(read.contents.newest(), Some(text));
}

#[test]
fn two_metadata_areas_both_read_and_agree() {
    if !lvm_available("two_metadata_areas_both_read_and_agree") {
        return;
    }
    let pv = TestPv::new("two", 64, &["--pvmetadatacopies", "2"]);
    pv.create_lv("lv0");
    pv.create_lv("lv1");
    let read = pv.read();
    let mdas = &read.contents.mdas;
    assert_eq!(mdas.len(), 2);
    assert_eq!(mdas[0].area.offset, 4096);
    assert!(
        mdas[1].area.offset > mdas[0].area.offset,
        "the second area is at the end"
    );
    let first = mdas[0].result.as_ref().expect("first area");
    let second = mdas[1].result.as_ref().expect("second area");
    assert_eq!(first.text, second.text);
    assert_eq!(first.locn.checksum, second.locn.checksum);
    assert_eq!(first.seqno, Some(pv.vgs("vg_seqno").parse().unwrap()));
    assert_eq!(second.seqno, first.seqno);
}

#[test]
fn a_small_metadata_area_wraps_and_its_text_still_verifies() {
    if !lvm_available("a_small_metadata_area_wraps_and_its_text_still_verifies") {
        return;
    }
    // The smallest area LVM accepts is 32 KiB; data aligned at 64 KiB leaves it 60 KiB.
    let pv = TestPv::new(
        "wrap",
        64,
        &["--metadatasize", "32k", "--dataalignment", "64k"],
    );
    let area_size = pv.read().contents.label.metadata_areas[0].size;
    assert!(area_size <= 64 << 10, "area of {area_size} bytes");
    for i in 0..6 {
        pv.create_lv(&format!("lv{i}"));
    }
    let mut wrapped_reads = 0;
    let mut reads = 0;
    for cycle in 0..40 {
        let churn = format!("churn{cycle}");
        pv.create_lv(&churn);
        for step in ["created", "removed"] {
            if step == "removed" {
                pv.remove_lv(&churn);
            }
            let read = pv.read();
            let text = only_text(&read);
            reads += 1;
            assert_eq!(text.seqno, Some(pv.vgs("vg_seqno").parse().unwrap()));
            assert_eq!(
                text.text.contains(&format!("{churn} {{")),
                step == "created"
            );
            if text.wrapped {
                wrapped_reads += 1;
                let span = text.header.text_span(&text.locn).unwrap();
                assert!(span.wrapped.is_some());
                assert!(text.locn.offset + text.locn.size > text.header.size);
            }
        }
        if wrapped_reads >= 2 {
            break;
        }
    }
    assert!(
        wrapped_reads >= 2,
        "no read of {reads} hit text wrapped around the end of the area"
    );
}

/// Flips one byte of a copy of the PV and reads it.
fn read_flipped(image: &Path, at: u64) -> Result<PvMetadata, MetadataError> {
    let mut bytes = std::fs::read(image).unwrap();
    bytes[at as usize] ^= 0x20;
    let flipped = image.with_extension(format!("flip{at}"));
    std::fs::write(&flipped, bytes).unwrap();
    let result = read_pv(&flipped).map_err(|e| {
        assert_eq!(e.device, flipped, "the error names the file");
        assert!(e.to_string().starts_with(&flipped.display().to_string()));
        e.error
    });
    std::fs::remove_file(&flipped).unwrap();
    result
}

#[test]
fn corrupted_copies_are_typed_errors() {
    if !lvm_available("corrupted_copies_are_typed_errors") {
        return;
    }
    let pv = TestPv::new("corrupt", 16, &[]);
    pv.create_lv("lv0");
    let image = pv.image_copy();
    let good = read_pv(&image).expect("the copy reads like the device");
    let text = only_text(&good).clone();
    assert_eq!(text, only_text(&pv.read()).clone());
    let label_sector = good.contents.label.sector * 512;

    // The label: its checksum covers everything after crc_xl.
    let error = read_flipped(&image, label_sector + 100).unwrap_err();
    assert!(
        matches!(
            error,
            MetadataError::BadChecksum {
                what: "label header",
                ..
            }
        ),
        "{error}"
    );
    // The LABELONE id itself: no label any more.
    assert_eq!(
        read_flipped(&image, label_sector).unwrap_err(),
        MetadataError::NotAPv
    );

    let mda_error = |at: u64| {
        let read = read_flipped(&image, at).expect("the label still reads");
        read.contents.mdas[0].result.clone().unwrap_err()
    };
    let header_at = good.contents.label.metadata_areas[0].offset;
    assert!(matches!(
        mda_error(header_at + 30),
        MetadataError::BadChecksum {
            what: "metadata area header",
            ..
        }
    ));
    let text_at = header_at + text.locn.offset;
    for at in [
        text_at,
        text_at + text.locn.size / 2,
        text_at + text.locn.size - 2,
    ] {
        assert!(matches!(
            mda_error(at),
            MetadataError::BadChecksum {
                what: "metadata text",
                ..
            }
        ));
    }

    let zeros = image.with_extension("zeros");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    assert_eq!(read_pv(&zeros).unwrap_err().error, MetadataError::NotAPv);
    let missing = read_pv(Path::new("/nonexistent/pv")).unwrap_err();
    assert!(matches!(missing.error, MetadataError::Io(_)));
    assert!(missing.to_string().contains("/nonexistent/pv"));
}

#[test]
fn reads_during_lvm_writes_are_whole_and_in_order() {
    if !lvm_available("reads_during_lvm_writes_are_whole_and_in_order") {
        return;
    }
    // A small area, so that LVM's writes soon overwrite the text a slow read may still want.
    let pv = TestPv::new(
        "race",
        64,
        &["--metadatasize", "32k", "--dataalignment", "64k"],
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let (reads, retried, last_seqno) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let (mut reads, mut retried, mut last_seqno) = (0u32, 0u32, 0u64);
            while !done.load(Ordering::SeqCst) {
                let read = pv.read();
                let text = only_text(&read);
                let seqno = text.seqno.expect("a seqno");
                assert!(
                    seqno >= last_seqno,
                    "seqno went back from {last_seqno} to {seqno}"
                );
                assert!(text.text.starts_with(&format!("{} {{", pv.vg)));
                last_seqno = seqno;
                reads += 1;
                retried += u32::from(text.attempts > 1);
            }
            (reads, retried, last_seqno)
        });
        for cycle in 0..15 {
            let lv = format!("race{cycle}");
            pv.create_lv(&lv);
            pv.remove_lv(&lv);
        }
        done.store(true, Ordering::SeqCst);
        reader.join().expect("the reader never fails")
    });
    assert!(reads > 30, "only {reads} reads ran alongside the writes");
    let final_seqno = only_text(&pv.read()).seqno.unwrap();
    assert!(last_seqno <= final_seqno);
    assert_eq!(final_seqno, pv.vgs("vg_seqno").parse::<u64>().unwrap());
    eprintln!("{reads} reads during 30 LVM commits, {retried} of them retried after a move");
}

// --- Differential acceptance against real LVM (issue 20) -------------------------------------

/// Two PVs of one VG whose metadata the test rewrites at will: the same text, with a correct
/// header and checksum, into every metadata area of both PVs, so that LVM and the reader both
/// see it as the VG's only copy.
struct TwoPvVg {
    devices: [String; 2],
    uuids: [String; 2],
    vg: String,
    _dir: tempfile::TempDir,
}

impl TwoPvVg {
    fn new(size_mib: u64, pvcreate_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices =
            [0, 1].map(|i| loop_device(dir.path(), &format!("pv{i}.img"), size_mib << 20));
        let vg = unique_vg_name("diff");
        let mut this = TwoPvVg {
            devices,
            uuids: [String::new(), String::new()],
            vg,
            _dir: dir,
        };
        let mut args = vec!["-q"];
        args.extend_from_slice(pvcreate_args);
        args.extend([this.devices[0].as_str(), this.devices[1].as_str()]);
        run("pvcreate", &args);
        run(
            "vgcreate",
            &["-q", &this.vg, &this.devices[0], &this.devices[1]],
        );
        this.uuids = [0, 1].map(|i| {
            read_pv(Path::new(&this.devices[i]))
                .expect("a PV")
                .contents
                .label
                .pv_uuid
        });
        this
    }

    fn lvm(&self, command: &str, extra: &[&str]) {
        let mut args = vec!["-q", "--config", "global{activation=0}"];
        args.extend_from_slice(extra);
        run(command, &args);
    }

    /// The text LVM wrote last (both PVs hold the same).
    fn text(&self) -> String {
        read_pv(Path::new(&self.devices[0]))
            .expect("a PV")
            .contents
            .newest()
            .expect("a metadata text")
            .text
            .to_string()
    }

    /// Writes `text` (plus LVM's terminating NUL) as the committed metadata of every metadata
    /// area of both PVs: the text right after the area header, `raw_locn[0]` pointing at it
    /// with its checksum, the other locations cleared, the header's checksum redone.
    fn write_text(&self, text: &[u8]) {
        use std::os::unix::fs::FileExt;
        let mut body = text.to_vec();
        body.push(0);
        for device in &self.devices {
            let label = read_pv(Path::new(device)).expect("a PV").contents.label;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(device)
                .expect("open the PV for writing");
            for area in &label.metadata_areas {
                assert!(
                    (body.len() as u64) + 512 <= area.size,
                    "a {}-byte text fits the metadata area",
                    body.len()
                );
                let mut header = vec![0u8; 512];
                file.read_exact_at(&mut header, area.offset)
                    .expect("header");
                header[40..].fill(0);
                header[40..48].copy_from_slice(&512u64.to_le_bytes());
                header[48..56].copy_from_slice(&(body.len() as u64).to_le_bytes());
                header[56..60].copy_from_slice(&calc_crc(INITIAL_CRC, &body).to_le_bytes());
                let crc = calc_crc(INITIAL_CRC, &header[4..]);
                header[0..4].copy_from_slice(&crc.to_le_bytes());
                file.write_all_at(&body, area.offset + 512).expect("text");
                file.write_all_at(&header, area.offset).expect("header");
            }
            file.sync_all().expect("sync the PV");
        }
    }

    /// What LVM makes of the VG's metadata now: its figures, or why it refused.
    fn lvm_verdict(&self) -> Verdict {
        let devices = format!("{},{}", self.devices[0], self.devices[1]);
        let report = |command: &str, fields: &str| {
            Command::new(command)
                .args([
                    "--devices",
                    &devices,
                    "--reportformat",
                    "json",
                    "--units",
                    "b",
                    "--nosuffix",
                    "-a",
                    "-o",
                    fields,
                ])
                .env("LVM_SUPPRESS_FD_WARNINGS", "1")
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .output()
                .expect("run lvm")
        };
        let parse =
            |output: &std::process::Output, key: &str| -> Result<Vec<serde_json::Value>, String> {
                if !output.status.success() {
                    return Err(format!("exit {}", output.status));
                }
                // LVM prints messages such as "Retrying metadata scan." among the JSON lines.
                let stdout = String::from_utf8_lossy(&output.stdout);
                let json: serde_json::Value =
                    serde_json::from_str(&json_lines(&stdout)).map_err(|e| {
                        format!(
                            "unreadable report ({e}): {}",
                            String::from_utf8_lossy(&output.stdout)
                                .chars()
                                .take(3000)
                                .collect::<String>()
                        )
                    })?;
                let rows = json["report"][0][key]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if rows.is_empty() && std::env::var_os("LVM_METADATA_DIFF_DEBUG").is_some() {
                    eprintln!("lvm stderr: {}", String::from_utf8_lossy(&output.stderr));
                }
                Ok(rows)
            };
        let field =
            |row: &serde_json::Value, name: &str| row[name].as_str().unwrap_or("").to_string();
        let number = |row: &serde_json::Value, name: &str| field(row, name).parse::<u64>().ok();
        let lvs = report("lvs", "vg_name,vg_size,vg_free,vg_attr,lv_name,lv_size");
        let rows = match parse(&lvs, "lv") {
            Ok(rows) => rows,
            Err(why) => return Verdict::Refused(why),
        };
        let vg_rows = if rows.is_empty() {
            let vgs = report("vgs", "vg_name,vg_size,vg_free,vg_attr");
            match parse(&vgs, "vg") {
                Ok(rows) => rows,
                Err(why) => return Verdict::Refused(why),
            }
        } else {
            rows.clone()
        };
        let Some(first) = vg_rows.first() else {
            return Verdict::Refused("no VG on the PVs".into());
        };
        if field(first, "vg_attr").chars().nth(3) == Some('p') {
            return Verdict::Refused("partial VG".into());
        }
        let (Some(size), Some(free)) = (number(first, "vg_size"), number(first, "vg_free")) else {
            return Verdict::Refused("VG figures missing".into());
        };
        let mut lvs: Vec<(String, u64)> = Vec::new();
        for row in &rows {
            let name = field(row, "lv_name");
            let name = name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .unwrap_or(&name)
                .to_string();
            lvs.push((name, number(row, "lv_size").unwrap_or(u64::MAX)));
        }
        lvs.sort();
        Verdict::Figures(Figures {
            vg: field(first, "vg_name"),
            size,
            free,
            lvs,
        })
    }

    /// What the reader makes of it: [`read_vg`] over both PVs.
    fn reader_verdict(&self, vg: &str) -> Verdict {
        match read_vg(vg, &self.devices, &self.uuids) {
            Ok(metadata) => {
                let mut lvs: Vec<(String, u64)> = metadata
                    .lvs
                    .iter()
                    .map(|lv| (lv.name.clone(), lv.size_bytes))
                    .collect();
                lvs.sort();
                Verdict::Figures(Figures {
                    vg: metadata.vg.name,
                    size: metadata.vg.size_bytes,
                    free: metadata.vg.free_bytes,
                    lvs,
                })
            }
            Err(why) => Verdict::Refused(why),
        }
    }
}

/// Reads the VG `vg` from its PVs `devices` (whose labels must carry `uuids`) as a caller of
/// the crate does (nova-lvm-exporter's metadata source, for one): every PV's label and every
/// metadata area's checksummed text; each distinct text parsed; the newest by `seqno` (two
/// different texts of the same `seqno` are refused) turned into the VG, which must list exactly
/// these PVs and bear the name asked for. Any failure is a refusal, with the reason.
fn read_vg(vg: &str, devices: &[String], uuids: &[String]) -> Result<VgMetadata, String> {
    let mut texts: Vec<Arc<str>> = Vec::new();
    let mut copies: Vec<usize> = Vec::new();
    for (device, uuid) in devices.iter().zip(uuids) {
        let path = Path::new(device);
        let mut pv = PvDevice::open(path).map_err(|e| format!("{device}: open: {e}"))?;
        let label = read_label(&mut pv).map_err(|e| format!("{device}: label: {e}"))?;
        if label.pv_uuid != *uuid {
            return Err(format!("{device}: another PV UUID"));
        }
        for area in &label.metadata_areas {
            let read = match read_mda_text_unparsed(&mut pv, area, None) {
                Ok(read) => read,
                Err(MetadataError::Ignored) => continue,
                Err(e) => return Err(format!("{device}: metadata area: {e}")),
            };
            let index = match texts.iter().position(|text| *text == read.text) {
                Some(index) => index,
                None => {
                    texts.push(read.text);
                    texts.len() - 1
                }
            };
            copies.push(index);
        }
    }
    let mut trees = Vec::with_capacity(texts.len());
    let mut seqnos = Vec::with_capacity(texts.len());
    for text in &texts {
        let tree = text::parse_metadata(text).map_err(|e| format!("metadata text: {e}"))?;
        seqnos.push(vg_seqno(&tree).ok_or("the VG section has no seqno")?);
        trees.push(tree);
    }
    let newest = copies
        .iter()
        .copied()
        .max_by_key(|index| seqnos[*index])
        .ok_or("no metadata area in use")?;
    if copies
        .iter()
        .any(|index| *index != newest && seqnos[*index] == seqnos[newest])
    {
        return Err("two different metadata texts of the same seqno".into());
    }
    let metadata = vg::from_tree(&trees[newest]).map_err(|e| e.to_string())?;
    if let Some(identity) = vg_identity(&trees[newest]) {
        let listed: HashSet<&str> = identity.pv_uuids.iter().map(String::as_str).collect();
        let labelled: HashSet<&str> = uuids.iter().map(String::as_str).collect();
        if listed != labelled {
            return Err("the metadata lists other PVs than the labels carry".into());
        }
    }
    if metadata.vg.name != vg {
        return Err(format!("the PVs hold vg {:?}", metadata.vg.name));
    }
    Ok(metadata)
}

impl Drop for TwoPvVg {
    fn drop(&mut self) {
        remove_loop_vg(&self.vg, &self.devices[0]);
        remove_loop_vg(&self.vg, &self.devices[1]);
    }
}

/// The figures compared: the VG's size and free space, every LV's size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Figures {
    vg: String,
    size: u64,
    free: u64,
    /// (LV name, size), hidden LVs included, sorted.
    lvs: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Figures(Figures),
    Refused(String),
}

/// The VG name a text's first top-level section gives, if the text parses.
fn vg_name_of(text: &str) -> Option<String> {
    let tree = lvm_metadata::text::parse(text).ok()?;
    let name = tree
        .root
        .sections()
        .next()
        .map(|(name, _)| name.to_string());
    name
}

/// Lines of `text` holding `key = <integer>`, as (line index, value).
fn int_lines(lines: &[&str], key: &str) -> Vec<(usize, i64)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line
                .trim_start()
                .strip_prefix(key)?
                .trim_start()
                .strip_prefix('=')?;
            let value = rest.split('#').next()?.trim().parse().ok()?;
            Some((i, value))
        })
        .collect()
}

/// The choices one mutation makes, drawn by proptest: each call takes the next word (0 once
/// they run out) into the range asked for. Shrinking moves the words towards 0, which is each
/// list's first entry: the mutation a failure shrinks to is the simplest that still fails.
#[derive(Debug, Clone)]
struct Draws {
    words: Vec<u64>,
    next: usize,
}

/// Enough words for the choices of any one mutation (seven at most).
const DRAWS_PER_MUTATION: usize = 8;

impl Draws {
    fn word(&mut self) -> u64 {
        let word = self.words.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        word
    }

    /// A value in `range` (non-empty).
    fn u32(&mut self, range: impl std::ops::RangeBounds<u32>) -> u32 {
        use std::ops::Bound;
        let low = match range.start_bound() {
            Bound::Included(&n) => u64::from(n),
            Bound::Excluded(&n) => u64::from(n) + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => u64::from(n) + 1,
            Bound::Excluded(&n) => u64::from(n),
            Bound::Unbounded => 1 << 32,
        };
        u32::try_from(low + self.word() % (end - low)).expect("within u32")
    }

    /// An index below `range.end` (non-zero).
    fn usize(&mut self, range: std::ops::RangeTo<usize>) -> usize {
        (self.word() % range.end as u64) as usize
    }

    fn bool(&mut self) -> bool {
        self.word() % 2 == 1
    }
}

/// The words of one mutation's [`Draws`].
fn draws() -> impl Strategy<Value = Draws> {
    prop::collection::vec(any::<u64>(), DRAWS_PER_MUTATION)
        .prop_map(|words| Draws { words, next: 0 })
}

/// One seeded mutation of `base` (whose VG `seqno` line is already raised): numbers, names,
/// NUL and control bytes, segments, PV references, ids, keys, flags, tags. Returns the text
/// and a short label of what was done.
fn mutate(base: &str, rng: &mut Draws, lv_names: &[&str]) -> (String, String) {
    let lines: Vec<&str> = base.lines().collect();
    let rejoin = |lines: &[String]| lines.join("\n") + "\n";
    let owned = || lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let pick = |rng: &mut Draws, items: &[&'static str]| items[rng.usize(..items.len())];
    match rng.u32(..10) {
        // A number out of or at the edge of its range.
        0 | 1 => {
            let key = pick(
                rng,
                &[
                    "pe_count",
                    "extent_size",
                    "start_extent",
                    "extent_count",
                    "stripe_count",
                    "seqno",
                    "pe_start",
                    "dev_size",
                    "segment_count",
                    "max_lv",
                    "stripe_size",
                    "creation_time",
                ],
            );
            let found = int_lines(&lines, key);
            let Some(&(at, old)) = found.get(rng.usize(..found.len().max(1))) else {
                return (base.to_string(), format!("number {key} (absent)"));
            };
            let candidates: [i64; 17] = [
                0,
                1,
                -1,
                old + 1,
                old - 1,
                old.saturating_mul(2),
                old / 2,
                i64::from(i32::MAX),
                1 << 31,
                i64::from(u32::MAX),
                1 << 32,
                (1 << 32) + old,
                i64::MAX,
                i64::MIN,
                i64::from(rng.u32(..)),
                old + i64::from(rng.u32(..64)),
                old - i64::from(rng.u32(..64)),
            ];
            let value = candidates[rng.usize(..candidates.len())];
            let mut out = owned();
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            out[at] = format!("{indent}{key} = {value}");
            (rejoin(&out), format!("number {key} {old} -> {value}"))
        }
        // An area offset or PV reference in a stripes list.
        2 => {
            let stripes: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim_start().starts_with("stripes = ["))
                .collect();
            let at = stripes[rng.usize(..stripes.len())];
            let replacement = pick(
                rng,
                &[
                    "\"pv0\", 0",
                    "\"pv1\", 0",
                    "\"pv9\", 0",
                    "\"pv0\", 4294967296",
                    "\"pv0\", -1",
                    "\"pv0\", 31",
                    "\"pv1\", 30",
                    "\"pv0\", 3",
                    "\"pv0\", 0, \"pv1\", 0",
                    "\"\", 0",
                    "\"pv0\"",
                    "0, \"pv0\"",
                    "\"pv0\", 2, \"pv0\", 2",
                    "\"pv1\", 1",
                ],
            );
            let mut out = owned();
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            out[at] = format!("{indent}stripes = [{replacement}]");
            (rejoin(&out), format!("stripes -> [{replacement}]"))
        }
        // A name: an LV's, the VG's or a PV's.
        3 | 4 => {
            let long = |n: usize| "n".repeat(n);
            let names = [
                "".to_string(),
                "-a".into(),
                ".".into(),
                "..".into(),
                ".ok".into(),
                "\"a b\"".into(),
                "a/b".into(),
                "a:b".into(),
                "a\0b".into(),
                "a\u{1}b".into(),
                "\"a\\\u{1b}b\"".into(),
                "a\u{7f}b".into(),
                "d\u{e9}j\u{e0}".into(),
                "snapshot7".into(),
                "pvmove0".into(),
                "x_tdata".into(),
                "y_rimage_1".into(),
                "lvol0_pmspare".into(),
                "ok+name.1_-".into(),
                "_x".into(),
                long(100),
                long(127),
                long(128),
                long(300),
                long(20_000),
                lv_names[rng.usize(..lv_names.len())].to_string(),
            ];
            let name = names[rng.usize(..names.len())].clone();
            let target = match rng.u32(..4) {
                0 => base
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(" {")
                    .to_string(),
                1 => ["pv0", "pv1"][rng.usize(..2)].to_string(),
                _ => lv_names[rng.usize(..lv_names.len())].to_string(),
            };
            let mut out = owned();
            let Some(at) = lines
                .iter()
                .position(|l| l.trim() == format!("{target} {{"))
            else {
                return (base.to_string(), format!("rename {target} (absent)"));
            };
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            out[at] = format!("{indent}{name} {{");
            let shown: String = name.escape_debug().take(40).collect();
            (
                rejoin(&out),
                format!("rename {target} -> {shown} ({} bytes)", name.len()),
            )
        }
        // A NUL or control byte (or a stray character) somewhere in the VG section.
        5 => {
            let byte = pick(
                rng,
                &[
                    "\0", "\u{1}", "\t", "\n", "\u{1b}", "\u{7f}", "\"", "é", "{", "}",
                ],
            );
            let quoted: Vec<usize> = base.match_indices('"').map(|(i, _)| i + 1).collect();
            let at = if rng.bool() && !quoted.is_empty() {
                quoted[rng.usize(..quoted.len())]
            } else {
                let mut at = rng.usize(..base.len());
                while !base.is_char_boundary(at) {
                    at -= 1;
                }
                at
            };
            let text = format!("{}{byte}{}", &base[..at], &base[at..]);
            (text, format!("insert {:?} at {at}", byte))
        }
        // An id: shortened, a bad character, one LV's id given to another, a new PV id.
        6 => {
            let ids: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim_start().starts_with("id = \""))
                .collect();
            let at = ids[rng.usize(..ids.len())];
            let line = lines[at];
            let value = line
                .trim()
                .trim_start_matches("id = \"")
                .trim_end_matches('"');
            let other = lines[ids[rng.usize(..ids.len())]]
                .trim()
                .trim_start_matches("id = \"")
                .trim_end_matches('"')
                .to_string();
            let new = match rng.u32(..6) {
                0 => value[..value.len() - 1].to_string(),
                1 => format!("{value}x"),
                2 => value.replacen(|c: char| c.is_ascii_alphanumeric(), "$", 1),
                3 => other,
                4 => value.replace('-', ""),
                _ => value.replacen(|c: char| c.is_ascii_alphanumeric(), "Q", 1),
            };
            let mut out = owned();
            let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
            out[at] = format!("{indent}id = \"{new}\"");
            (rejoin(&out), format!("id line {at} -> {new}"))
        }
        // A line removed or repeated (a required key missing, a key twice).
        7 => {
            let at = 1 + rng.usize(..lines.len() - 1);
            let mut out = owned();
            if rng.bool() {
                out.remove(at);
                (rejoin(&out), format!("remove line {}", lines[at].trim()))
            } else {
                out.insert(at, lines[at].to_string());
                (rejoin(&out), format!("repeat line {}", lines[at].trim()))
            }
        }
        // Status flags and tags.
        8 => {
            let statuses: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim_start().starts_with("status = ["))
                .collect();
            let at = statuses[rng.usize(..statuses.len())];
            let flags = pick(
                rng,
                &[
                    "",
                    "\"READ\"",
                    "\"FOO\"",
                    "\"READ\", \"WRITE\"",
                    "\"EXPORTED\"",
                    "\"READ\", \"WRITE\", \"VISIBLE\", \"PVMOVE\"",
                    "\"ALLOCATABLE\", \"MISSING\"",
                    "\"READ\", \"WRITE\", \"VISIBLE\"",
                    "\"RESIZEABLE\", \"READ\", \"WRITE\", \"CLUSTERED\"",
                ],
            );
            let mut out = owned();
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            if rng.bool() {
                out[at] = format!("{indent}status = [{flags}]");
                (rejoin(&out), format!("status line {at} -> [{flags}]"))
            } else {
                let tag = pick(
                    rng,
                    &["ok", "", "a b", "a\0b", "x=1&y", "é", "t\u{1}", "#!:/"],
                );
                out.insert(at + 1, format!("{indent}tags = [\"{tag}\"]"));
                (rejoin(&out), format!("tags {:?} after line {at}", tag))
            }
        }
        // Segments: moved, grown, shrunk, swapped, duplicated.
        _ => {
            let key = pick(rng, &["start_extent", "extent_count"]);
            let found = int_lines(&lines, key);
            let (at, old) = found[rng.usize(..found.len())];
            let value = match rng.u32(..4) {
                0 => old + 1,
                1 => (old - 1).max(0),
                2 => old + i64::from(rng.u32(1..40)),
                _ => 0,
            };
            let mut out = owned();
            let indent: String = lines[at]
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            out[at] = format!("{indent}{key} = {value}");
            (rejoin(&out), format!("segment {key} {old} -> {value}"))
        }
    }
}

/// Raises the VG's `seqno` line (the first one) to `seqno`.
fn with_seqno(text: &str, seqno: u64) -> String {
    let mut done = false;
    text.lines()
        .map(|line| {
            if !done && line.trim_start().starts_with("seqno = ") {
                done = true;
                format!("\tseqno = {seqno}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Seeded mutations of real metadata (and the fuzz corpus) written to real PVs: wherever LVM
/// refuses the VG the reader refuses it too, wherever LVM accepts it the figures are equal.
/// The mutations are proptest's (ChaCha with a fixed seed: the same 600 on every run; a
/// disagreement shrinks to the simplest mutation that still shows it, kept in
/// `proptest-regressions/`). `LVM_METADATA_DIFF_CASES` and `LVM_METADATA_DIFF_SEED` change the
/// count (default 600) and the seed (default 20).
#[test]
fn the_reader_is_at_least_as_strict_as_lvm() {
    if !lvm_available("the_reader_is_at_least_as_strict_as_lvm") {
        return;
    }
    let cases: u32 = std::env::var("LVM_METADATA_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let seed: u64 = std::env::var("LVM_METADATA_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let started = std::time::Instant::now();
    let vg = TwoPvVg::new(128, &[]);
    vg.lvm(
        "lvcreate",
        &["-an", "-Zn", "-L", "8m", "-n", "disk", &vg.vg],
    );
    vg.lvm(
        "lvcreate",
        &[
            "-an", "-Zn", "-L", "8m", "-n", "tagged", "--addtag", "nova", "--addtag", "x=1", &vg.vg,
        ],
    );
    vg.lvm("lvextend", &["-L", "+8m", &format!("{}/disk", vg.vg)]);
    vg.lvm(
        "lvcreate",
        &[
            "-an",
            "-Zn",
            "-i",
            "2",
            "-I",
            "64k",
            "-L",
            "16m",
            "-n",
            "wide",
            &vg.vg,
            &vg.devices[0],
            &vg.devices[1],
        ],
    );
    let base = vg.text();
    assert!(
        base.contains("stripe_count = 2"),
        "a striped LV across both PVs"
    );
    let lv_names = ["disk", "tagged", "wide"];
    let base_seqno = int_lines(&base.lines().collect::<Vec<_>>(), "seqno")[0].1 as u64;

    // The unmutated text, rewritten: both accept it with the same figures.
    vg.write_text(with_seqno(&base, base_seqno + 1).as_bytes());
    let lvm = vg.lvm_verdict();
    assert!(
        matches!(lvm, Verdict::Figures(_)),
        "LVM reads the rewritten text: {lvm:?}"
    );
    assert_eq!(vg.reader_verdict(&vg.vg), lvm);

    let tally = RefCell::new(Tally::default());
    let seqno = Cell::new(base_seqno + 2);
    let next_seqno = || {
        let next = seqno.get();
        seqno.set(next + 1);
        next
    };
    let mut runner = deterministic_runner(cases, seed, file!());
    let mutations = runner.run(&draws(), |mut draws| {
        let (text, what) = mutate(&with_seqno(&base, next_seqno()), &mut draws, &lv_names);
        tally
            .borrow_mut()
            .judge(&vg, &text, &what)
            .map_err(TestCaseError::fail)
    });
    // The fuzz corpus, where it applies: texts of one VG with a pv0 (and pv1), given this VG's
    // name and PV ids.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/lvm_metadata_text");
    let mut corpus_files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("the fuzz corpus")
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    corpus_files.sort();
    let pv_ids: Vec<String> = {
        let lines: Vec<&str> = base.lines().collect();
        ["pv0 {", "pv1 {"]
            .iter()
            .map(|pv| {
                let at = lines
                    .iter()
                    .position(|l| l.trim() == *pv)
                    .expect("pv section");
                lines[at + 1].trim().to_string()
            })
            .collect()
    };
    let mut corpus_used = 0;
    for path in &corpus_files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let Some(name) = vg_name_of(&text) else {
            continue;
        };
        if !text.contains("pv0 {") {
            continue;
        }
        let mut adapted = text.replace(&format!("{name} {{"), &format!("{} {{", vg.vg));
        let lines: Vec<String> = adapted.lines().map(str::to_string).collect();
        let mut out = Vec::with_capacity(lines.len());
        let mut in_pv: Option<usize> = None;
        for line in lines {
            if line.trim() == "pv0 {" {
                in_pv = Some(0);
            } else if line.trim() == "pv1 {" {
                in_pv = Some(1);
            }
            match in_pv {
                Some(pv) if line.trim_start().starts_with("id = ") => {
                    out.push(format!("\t\t\t{}", pv_ids[pv]));
                    in_pv = None;
                }
                _ => out.push(line),
            }
        }
        adapted = with_seqno(&(out.join("\n") + "\n"), next_seqno());
        let what = format!("corpus {}", path.file_name().unwrap().to_string_lossy());
        // A disagreement is kept in the tally's list, reported below.
        let _ = tally.borrow_mut().judge(&vg, &adapted, &what);
        corpus_used += 1;
    }

    // Leave LVM's own metadata behind, so that the VG is removed cleanly.
    vg.write_text(with_seqno(&base, next_seqno()).as_bytes());
    let Tally {
        texts,
        accepted,
        refused,
        agree,
        stricter,
        disagreements,
        stricter_cases,
    } = tally.into_inner();
    eprintln!(
        "differential: {texts} texts ({cases} mutations drawn by proptest, seed {seed}, {corpus_used} corpus files) in {:.1?}: \
         LVM accepted {accepted}, refused {refused}; the reader agreed on {agree}, was stricter on {stricter} \
         (falls back to lvm), disagreed on {}",
        started.elapsed(),
        disagreements.len()
    );
    for case in stricter_cases.iter().take(40) {
        eprintln!("  stricter: {case}");
    }
    if let Err(failure) = mutations {
        panic!("a mutation LVM and the reader disagree on (shrunk): {failure}");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements with LVM:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(texts >= 500, "at least 500 texts");
    assert!(
        accepted >= 50 && refused >= 100,
        "both sides exercised: {accepted} accepted, {refused} refused"
    );
}

/// The differential test's counts, and the cases behind them.
#[derive(Debug, Default)]
struct Tally {
    texts: usize,
    accepted: usize,
    refused: usize,
    agree: usize,
    stricter: usize,
    disagreements: Vec<String>,
    stricter_cases: Vec<String>,
}

impl Tally {
    /// Writes `text` (described by `what`) as the VG's metadata and counts LVM's verdict and
    /// the reader's. Errs with the disagreement when the reader reads what LVM refuses, or reads
    /// other figures than LVM.
    fn judge(&mut self, vg: &TwoPvVg, text: &str, what: &str) -> Result<(), String> {
        self.texts += 1;
        vg.write_text(text.as_bytes());
        let lvm = vg.lvm_verdict();
        let name = match &lvm {
            Verdict::Figures(figures) => figures.vg.clone(),
            Verdict::Refused(_) => vg_name_of(text).unwrap_or_else(|| vg.vg.clone()),
        };
        let reader = vg.reader_verdict(&name);
        let disagreement = match (&lvm, &reader) {
            (Verdict::Refused(_), Verdict::Refused(_)) => {
                self.refused += 1;
                self.agree += 1;
                None
            }
            (Verdict::Refused(why), Verdict::Figures(figures)) => {
                self.refused += 1;
                Some(format!(
                    "{what}: LVM refused ({why}), the reader read {figures:?}"
                ))
            }
            (Verdict::Figures(_), Verdict::Refused(why)) => {
                self.accepted += 1;
                self.stricter += 1;
                self.stricter_cases.push(format!(
                    "{what}: {}",
                    why.chars().take(160).collect::<String>()
                ));
                None
            }
            (Verdict::Figures(lvm), Verdict::Figures(ours)) => {
                self.accepted += 1;
                if lvm == ours {
                    self.agree += 1;
                    None
                } else {
                    Some(format!("{what}: LVM {lvm:?}, the reader {ours:?}"))
                }
            }
        };
        match disagreement {
            Some(disagreement) => {
                self.disagreements.push(disagreement.clone());
                Err(disagreement)
            }
            None => Ok(()),
        }
    }
}

/// Issue 20's findings, which an earlier reader took for figures: metadata LVM refuses
/// (`pe_count = 4294967296` on a small PV: a 16 PiB VG), NUL bytes in names and values, names
/// LVM forbids, and a 1 MB LV name (LVM reads that one; LVM's own name rules, which the reader
/// applies, refuse it). The reader refuses each.
#[test]
fn issue_20_findings_are_refused() {
    if !lvm_available("issue_20_findings_are_refused") {
        return;
    }
    let vg = TwoPvVg::new(64, &["--metadatasize", "4m"]);
    vg.lvm(
        "lvcreate",
        &["-an", "-Zn", "-L", "8m", "-n", "disk", &vg.vg],
    );
    let base = vg.text();
    let lines: Vec<&str> = base.lines().collect();
    let mut seqno = int_lines(&lines, "seqno")[0].1 as u64;
    let pe_count = int_lines(&lines, "pe_count")[0].1;
    // The LV's (the VG section comes first in a metadata area; the top-level one follows it).
    let host_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("creation_host = "))
        .expect("the LV's creation_host")
        .to_string();
    let huge = "n".repeat(1024 * 1024);
    let cases = [
        (
            "pe_count 2^32",
            base.replacen(
                &format!("pe_count = {pe_count}"),
                "pe_count = 4294967296",
                1,
            ),
        ),
        (
            "NUL in an LV name",
            base.replacen("\ndisk {", "\ndi\0sk {", 1),
        ),
        (
            "NUL in a value",
            base.replacen(&host_line, "creation_host = \"h\0st\"", 1),
        ),
        (
            "an LV name LVM forbids",
            base.replacen("\ndisk {", "\nd/isk {", 1),
        ),
        (
            "a 1 MB LV name",
            base.replacen("\ndisk {", &format!("\n{huge} {{"), 1),
        ),
    ];
    for (what, text) in cases {
        assert_ne!(text, base, "{what}: the edit applies");
        seqno += 1;
        vg.write_text(with_seqno(&text, seqno).as_bytes());
        let reader = vg.reader_verdict(&vg.vg);
        assert!(
            matches!(reader, Verdict::Refused(_)),
            "{what}: read as figures: {reader:?}"
        );
        let lvm = vg.lvm_verdict();
        eprintln!(
            "{what}: LVM {}",
            match &lvm {
                Verdict::Figures(f) => format!("reads it ({} LVs, {} bytes)", f.lvs.len(), f.size),
                Verdict::Refused(why) => format!("refuses it ({why})"),
            }
        );
        match what {
            "pe_count 2^32" => assert!(
                matches!(lvm, Verdict::Refused(_)),
                "LVM refuses it: {lvm:?}"
            ),
            "a 1 MB LV name" => assert!(
                matches!(&lvm, Verdict::Figures(f) if f.lvs.iter().any(|(name, _)| *name == huge)),
                "LVM reads the 1 MB name: {lvm:?}"
            ),
            _ => {}
        }
    }
    vg.write_text(with_seqno(&base, seqno + 1).as_bytes());
}
