//! The metadata reader's own costs (issue 14), in process, each step timed on its own.
//!
//! With `NOVA_LVM_BENCH_VG=<vg>` (root; `benches/whole_process.py` sets it for each real
//! loop-device VG it writes) on the VG's real PVs:
//!
//! - `steady_collect`: one collection of the metadata source (`MetadataSource::collect`) after
//!   the first, with the metadata unchanged: what every scrape pays in the steady state (label,
//!   header and text reads with `O_DIRECT` on each PV, the text's checksum verified and its bytes compared
//!   with the parsed one, the blocking-lane hop, the report copied out);
//! - `steady_read`: the same reads without the async source around them (`read_vg` with the
//!   cache warm);
//! - `full_reparse`: `read_vg` with an empty cache: label, header, the text read and its
//!   checksum verified, parsed, and the VG built; then the same split into `text_read` (header +
//!   text + checksum), `text_parse` and `vg_build`;
//! - `lvm_executions`: how many times the steady-state collections ran LVM, counted by the
//!   binary given as `NOVA_LVM_BENCH_LVM` (a counting wrapper; default `/usr/sbin/lvm`) through
//!   its count file `NOVA_LVM_BENCH_LVM_COUNT`.
//!
//! Without it (`cargo bench --bench metadata`, or once under `cargo test --benches`): the pure
//! `text_parse` and `vg_build` steps on synthetic metadata texts of 200 and 2,000 LVs.
//!
//! Prints one line per step: `step LVs median_ms p90_ms cpu_median_ms runs`, where the CPU time
//! is the whole process's (every thread, the blocking lane's included) over the same call: on a
//! machine shared with other work it is the steadier figure of what the step costs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lvm_metadata::device::{read_label, read_mda_text, PvDevice};
use lvm_metadata::{text, vg};
use nova_lvm_exporter::lvm::exec::{IoMode, LvmCommand};
use nova_lvm_exporter::lvm::metadata::source::{read_vg, MetadataSource, VgCache};
use nova_lvm_exporter::lvm::RawSource;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// The CPU time of the whole process so far.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Wall-clock and CPU time of each call of a step.
#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Samples {
    /// Times one call of `f`.
    fn measure<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (started, cpu) = (Instant::now(), process_cpu());
        let out = f();
        self.wall.push(started.elapsed());
        self.cpu.push(process_cpu().saturating_sub(cpu));
        out
    }
}

fn report(step: &str, lvs: usize, samples: &mut Samples) {
    println!(
        "{step:<16} {lvs:>6} {:>10.4} {:>10.4} {:>10.4} {:>6}",
        percentile(&mut samples.wall, 0.5).as_secs_f64() * 1e3,
        percentile(&mut samples.wall, 0.9).as_secs_f64() * 1e3,
        percentile(&mut samples.cpu, 0.5).as_secs_f64() * 1e3,
        samples.wall.len()
    );
}

/// Times `f` `iterations` times (after a few untimed warm-up calls).
fn time(iterations: usize, mut f: impl FnMut()) -> Samples {
    for _ in 0..3.min(iterations) {
        f();
    }
    let mut samples = Samples::default();
    for _ in 0..iterations {
        samples.measure(&mut f);
    }
    samples
}

/// Iterations for a step on `lvs` LVs: about a second of work, at least 20.
fn iterations(quick: bool, lvs: usize) -> usize {
    if quick {
        1
    } else {
        (400_000 / lvs.max(1)).clamp(20, 2_000)
    }
}

/// An LVM metadata text as LVM writes it for one VG on one PV with `lvs` linear LVs of one
/// extent each.
fn synthetic_text(lvs: usize) -> String {
    let mut text = String::from(
        "contents = \"Text Format Volume Group\"\nversion = 1\n\ndescription = \"\"\n\n\
         creation_host = \"bench\"\ncreation_time = 1764000000\n\nvms {\n\
         \tid = \"Dn5752-20yZ-We0l-NjhF-l0W7-Q2N0-IPxAnF\"\n\tseqno = 2\n\tformat = \"lvm2\"\n\
         \tstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n\tflags = []\n\textent_size = 8192\n\
         \tmax_lv = 0\n\tmax_pv = 0\n\tmetadata_copies = 0\n\n\tphysical_volumes {\n\n\t\tpv0 {\n\
         \t\t\tid = \"iHCyGN-vyYd-ncOb-4Ac3-jGqc-enMm-mYNuik\"\n\t\t\tdevice = \"/dev/loop1\"\n\n\
         \t\t\tstatus = [\"ALLOCATABLE\"]\n\t\t\tflags = []\n\t\t\tdev_size = 134217728\n\
         \t\t\tpe_start = 2048\n\t\t\tpe_count = 16383\n\t\t}\n\t}\n\n\tlogical_volumes {\n",
    );
    for i in 0..lvs {
        text.push_str(&format!(
            "\n\t\t{i:08x}-1111-4222-8333-{i:012x}_disk {{\n\
             \t\t\tid = \"bench0-{:04x}-bbbb-cccc-dddd-eeee-{i:06x}\"\n\
             \t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n\
             \t\t\tcreation_time = 1764000000\n\t\t\tcreation_host = \"bench\"\n\
             \t\t\tsegment_count = 1\n\n\t\t\tsegment1 {{\n\t\t\t\tstart_extent = 0\n\
             \t\t\t\textent_count = 1\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\
             \t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", {i}\n\t\t\t\t]\n\t\t\t}}\n\t\t}}\n",
            i % 0x10000
        ));
    }
    text.push_str("\t}\n}\n");
    text
}

/// The pure steps on `metadata_text`.
fn parse_steps(quick: bool, lvs: usize, metadata_text: &str) {
    let n = iterations(quick, lvs);
    let tree = text::parse(metadata_text).expect("the bench text parses");
    vg::from_tree(&tree).expect("the bench VG builds");
    report(
        "text_parse",
        lvs,
        &mut time(n, || {
            text::parse(metadata_text).expect("the bench text parses");
        }),
    );
    report(
        "vg_build",
        lvs,
        &mut time(n, || {
            vg::from_tree(&tree).expect("the bench VG builds");
        }),
    );
}

fn count(path: &Option<PathBuf>) -> usize {
    path.as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map_or(0, |text| text.lines().count())
}

fn real_vg(quick: bool, vg_name: &str) {
    let lvm = std::env::var_os("NOVA_LVM_BENCH_LVM").map_or("/usr/sbin/lvm".into(), PathBuf::from);
    let count_file = std::env::var_os("NOVA_LVM_BENCH_LVM_COUNT").map(PathBuf::from);
    let exec = LvmCommand::new(lvm, Vec::new(), Duration::from_secs(60), IoMode::Sync);
    let names = vec![vg_name.to_string()];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (pvs, lvs) = runtime.block_on(async {
        let (report, pvs) = exec
            .collect_with_pvs(&names)
            .await
            .expect("lvm fullreport of the bench VG");
        (pvs, report.lvs_of(vg_name).count())
    });
    let source = MetadataSource::new(exec);
    runtime.block_on(async {
        let first = source.collect_with_methods(&names).await;
        first.report.expect("the first collection");
        let method = first.methods;
        assert!(
            method.iter().all(|m| m.method == "metadata"),
            "the bench VG is not read from its metadata: {method:?}"
        );
    });

    let n = iterations(quick, lvs.max(200)) * 4;
    let before = count(&count_file);
    let mut steady = runtime.block_on(async {
        for _ in 0..3 {
            source.collect(&names).await.expect("a collection");
        }
        let mut samples = Samples::default();
        for _ in 0..n {
            let (started, cpu) = (Instant::now(), process_cpu());
            source.collect(&names).await.expect("a collection");
            samples.wall.push(started.elapsed());
            samples.cpu.push(process_cpu().saturating_sub(cpu));
        }
        samples
    });
    let executions = count(&count_file) - before;
    report("steady_collect", lvs, &mut steady);

    let warm = read_vg(vg_name, &pvs, &VgCache::default())
        .expect("the bench VG reads")
        .cache;
    report(
        "steady_read",
        lvs,
        &mut time(n, || {
            let read = read_vg(vg_name, &pvs, &warm).expect("the bench VG reads");
            assert!(!read.parsed, "the header moved during the bench");
        }),
    );
    let n = iterations(quick, lvs);
    report(
        "full_reparse",
        lvs,
        &mut time(n, || {
            let read = read_vg(vg_name, &pvs, &VgCache::default()).expect("the bench VG reads");
            assert!(read.parsed);
        }),
    );
    let device = Path::new(&pvs[0].device);
    let mut pv = PvDevice::open(device).expect("the PV opens");
    let area = read_label(&mut pv).expect("the PV label").metadata_areas[0];
    let metadata_text = read_mda_text(&mut pv, &area).expect("the text reads").text;
    report(
        "text_read",
        lvs,
        &mut time(n, || {
            let mut pv = PvDevice::open(device).expect("the PV opens");
            read_mda_text(&mut pv, &area).expect("the text reads");
        }),
    );
    parse_steps(quick, lvs, &metadata_text);
    println!(
        "lvm_executions {lvs:>6} {executions} in {} steady-state collections",
        steady.wall.len()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs each step once.
    let quick = !std::env::args().any(|a| a == "--bench");
    println!(
        "{:<16} {:>6} {:>10} {:>10} {:>10} {:>6}",
        "step", "LVs", "median_ms", "p90_ms", "cpu_ms", "runs"
    );
    match std::env::var("NOVA_LVM_BENCH_VG") {
        Ok(vg_name) => real_vg(quick, &vg_name),
        Err(_) => {
            for lvs in [200usize, 2_000] {
                parse_steps(quick, lvs, &synthetic_text(lvs));
            }
        }
    }
}
