//! The metadata reader (`lvm::metadata::device`) on real PVs: loop devices formatted by the real
//! `pvcreate`/`vgcreate`, LVs written by `lvcreate`, and what the reader finds compared with what
//! `pvs`/`vgs` say. Corrupted copies of a PV image must give typed errors, never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{lvm_available, remove_loop_vg, run};
use nova_lvm_exporter::lvm::metadata::device::{read_pv, MdaText, PvMetadata};
use nova_lvm_exporter::lvm::metadata::MetadataError;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

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
        let image = dir.path().join("pv.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib << 20))
            .expect("sparse image");
        let device = run("losetup", &["-f", "--show", image.to_str().unwrap()])
            .trim()
            .to_string();
        let vg = format!(
            "nle-mda-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
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

    /// `vgs` fields for this VG, trimmed.
    fn vgs(&self, field: &str) -> String {
        run("vgs", &["--noheadings", "-o", field, &self.vg])
            .trim()
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
