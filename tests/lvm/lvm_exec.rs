//! `lvm::exec::LvmCommand` against the real LVM tools on a loop device: the one `lvm fullreport`
//! a collection runs, read with synchronous and with LVM's own I/O, a missing VG, hidden sub-LVs
//! of a thin pool and an LV of two segments. The fake-`lvm` tests of the same type (arguments,
//! exit statuses, timeouts, output bounds) are unit tests next to it.

use crate::common;

use std::time::Duration;

use common::*;
use nova_lvm_exporter::lvm::exec::{IoMode, LvmCommand};
use nova_lvm_exporter::lvm::{RawSource, VgReport};

/// The metadata text of a thin pool `pool` (data `data_extents`, metadata and spare 2 extents
/// each, all on `pv0` from `first_free`) with one thin volume `thin` of `thin_extents`, for
/// [`LoopVg::restore_with_extra_lvs`].
fn thin_pool_lvs(
    pool: &str,
    thin: &str,
    data_extents: u32,
    thin_extents: u32,
    first_free: u32,
) -> String {
    let lv = |name: &str, id: &str, visible: bool, segment: String| {
        let status = if visible {
            r#"["READ", "WRITE", "VISIBLE"]"#
        } else {
            r#"["READ", "WRITE"]"#
        };
        format!(
            "\t\t{name} {{\n\t\t\tid = \"{id}\"\n\t\t\tstatus = {status}\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\t\t\tsegment1 {{\n\t\t\t\tstart_extent = 0\n{segment}\t\t\t}}\n\t\t}}\n"
        )
    };
    let linear = |count: u32, start: u32| {
        format!("\t\t\t\textent_count = {count}\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\"{{pv}}\", {start}]\n")
    };
    let mut lvs = String::new();
    lvs += &lv(pool, "tstPol-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", true, format!(
        "\t\t\t\textent_count = {data_extents}\n\t\t\t\ttype = \"thin-pool\"\n\t\t\t\tmetadata = \"{pool}_tmeta\"\n\t\t\t\tpool = \"{pool}_tdata\"\n\t\t\t\ttransaction_id = 1\n\t\t\t\tchunk_size = 128\n\t\t\t\tdiscards = \"passdown\"\n\t\t\t\tzero_new_blocks = 1\n"
    ));
    lvs += &lv(
        &format!("{pool}_tdata"),
        "tstDat-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
        false,
        linear(data_extents, first_free),
    );
    lvs += &lv(
        &format!("{pool}_tmeta"),
        "tstMet-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
        false,
        linear(2, first_free + data_extents),
    );
    lvs += &lv(
        "lvol0_pmspare",
        "tstSpr-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
        false,
        linear(2, first_free + data_extents + 2),
    );
    lvs += &lv(thin, "tstThn-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", true, format!(
        "\t\t\t\textent_count = {thin_extents}\n\t\t\t\ttype = \"thin\"\n\t\t\t\tthin_pool = \"{pool}\"\n\t\t\t\ttransaction_id = 0\n\t\t\t\tdevice_id = 1\n"
    ));
    lvs
}

#[tokio::test]
async fn real_fullreport_on_a_loop_device() {
    if !lvm_available("real_fullreport_on_a_loop_device") {
        return;
    }
    let uuid = "3f5e6c1a-1111-4222-8333-444455556666";
    let disk = format!("{uuid}_disk");
    let local = format!("{uuid}_disk.local");
    let vg = LoopVg::new("exec", 20);
    let vg_name = vg.name.clone();
    vg.create_lv_with(&disk, "1G", &["--addtag", "nova"]);
    vg.create_lv("scratch_data", "100M");
    vg.create_lv(&local, "512M");
    // A second segment for scratch_data, after the other LVs.
    vg.extend_lv("scratch_data", "+60M");
    // 256 + 40 + 128 extents so far.
    vg.restore_with_extra_lvs(&thin_pool_lvs(
        "pool",
        "volume-0b7c4f6e-2d1a-4c3b-9e8f-1a2b3c4d5e6f",
        64,
        1024,
        424,
    ));

    let cmd = LvmCommand::new(
        "/usr/sbin/lvm".into(),
        vec![],
        Duration::from_secs(30),
        IoMode::Sync,
    );
    assert_eq!(cmd.io_mode(), IoMode::Sync);
    let names = [vg_name.clone(), format!("{vg_name}-missing")];
    let report = cmd
        .collect(&names)
        .await
        .expect("collects despite the missing VG");
    // LVM with its own (asynchronous) I/O reads exactly the same.
    let with_aio = LvmCommand::new(
        "/usr/sbin/lvm".into(),
        vec![],
        Duration::from_secs(30),
        IoMode::LvmDefault,
    );
    assert_eq!(
        with_aio.collect(&names).await.expect("collects with AIO"),
        report
    );

    assert_eq!(report.vgs.len(), 1, "the missing VG is absent: {report:?}");
    let found = report.vg(&vg_name).expect("vg");
    assert_eq!(found.extent_size_bytes, 4 * MIB);
    assert_eq!(found.size_bytes, 5119 * 4 * MIB);
    let allocated_extents = 256 + 40 + 128 + 64 + 2 + 2;
    assert_eq!(found.free_bytes, (5119 - allocated_extents) * 4 * MIB);

    let size = |name: &str| {
        report
            .lvs_of(&vg_name)
            .find(|lv| lv.name == name)
            .map(|lv| lv.size_bytes)
            .unwrap_or_else(|| panic!("no lv {name} in {report:?}"))
    };
    assert_eq!(size(&disk), 1024 * MIB);
    assert_eq!(size(&local), 512 * MIB);
    assert_eq!(size("scratch_data"), 160 * MIB, "two segments, one LV");
    assert_eq!(size("pool_tdata"), 256 * MIB);
    assert_eq!(
        size("volume-0b7c4f6e-2d1a-4c3b-9e8f-1a2b3c4d5e6f"),
        4096 * MIB
    );
    assert_eq!(report.lvs.len(), 8, "{:?}", report.lvs);
    // The pool is written into the metadata and cannot be activated here (no device-mapper):
    // LVM prints no data_percent nor metadata_percent for it. The lvcreate'd LVs have a
    // creation time (lv_time as seconds), the pool's LVs written without one have none.
    let pool = report
        .lvs
        .iter()
        .find(|lv| lv.name == "pool")
        .expect("pool");
    assert_eq!(
        (pool.data_used_ratio, pool.metadata_used_ratio),
        (None, None)
    );
    for lv in &report.lvs {
        let made_by_lvcreate =
            [disk.as_str(), local.as_str(), "scratch_data"].contains(&lv.name.as_str());
        assert_eq!(lv.creation_unix.is_some(), made_by_lvcreate, "{lv:?}");
    }
    let hidden: Vec<&str> = report
        .lvs
        .iter()
        .filter(|lv| lv.hidden)
        .map(|lv| lv.name.as_str())
        .collect();
    assert_eq!(hidden.len(), 3, "{hidden:?}");
    assert!(["pool_tdata", "pool_tmeta", "lvol0_pmspare"]
        .iter()
        .all(|name| hidden.contains(name)));
    let nova = report.lvs.iter().find(|lv| lv.name == disk).expect("disk");
    assert_eq!(nova.tags, vec!["nova"]);
    assert_eq!(nova.attr.get(..3), Some("-wi"));
    let pool = report
        .lvs
        .iter()
        .find(|lv| lv.name == "pool")
        .expect("pool");
    assert_eq!(
        (pool.segtype.as_str(), pool.attr.get(..4)),
        ("thin-pool", Some("twi-"))
    );

    // Extents are held by linear LVs only: thin volumes are virtual, the pool's size is its
    // _tdata's.
    let linear: u64 = report
        .lvs
        .iter()
        .filter(|lv| lv.segtype == "linear")
        .map(|lv| lv.size_bytes)
        .sum();
    assert_eq!(linear + found.free_bytes, found.size_bytes);

    // A request for only missing VGs: exit 5, "report": [], an empty report, not an error.
    let none = cmd
        .collect(&[format!("{vg_name}-missing")])
        .await
        .expect("an empty report");
    assert_eq!(none, VgReport::default());
}
