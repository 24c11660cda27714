//! The libvirt source's steady state: every scrape asks the directory's inotify watch whether
//! anything changed and, when nothing did, returns the previous read; otherwise it lists the
//! XML directory and looks at each domain file's stamp (`stat`), parsing only the files that
//! changed. Run with `cargo bench --bench libvirt`; prints, per number of domain files, the
//! median and p90 of one read of an unchanged directory (the watch trusted), of a `stat` of
//! every domain file by its known name (the least the other way to prove a directory unchanged
//! costs: its mtime does not move when a file in it is edited in place, so every file's stamp
//! must be looked at) and of a first read (every file parsed).

use std::time::{Duration, Instant};

use nova_lvm_exporter::tracked::libvirt::{read_domains_with, DomainCache, RACY_WINDOW};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/libvirt/instance-00000001.xml"
);
const FIXTURE_UUID: &str = "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63";

/// A directory of `domains` nova domain files, each with its own UUID, settled (older than the
/// source's racy window, so every one is cached once read).
fn xml_dir(domains: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let template = std::fs::read_to_string(FIXTURE).expect("the libvirt fixture");
    for i in 0..domains {
        let uuid = format!("{:08x}-3c6a-4f18-8e2d-{:012x}", i, i);
        std::fs::write(
            dir.path().join(format!("instance-{i:08x}.xml")),
            template.replace(FIXTURE_UUID, &uuid),
        )
        .expect("a domain file");
    }
    // The source caches a file once its last change (mtime or ctime) is older than its racy
    // window: wait that long so the steady state is the cached one.
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    dir
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
    )
}

fn main() {
    for domains in [180, 1_800] {
        let dir = xml_dir(domains);
        let first: Vec<Duration> = (0..5)
            .map(|_| {
                let mut cache = DomainCache::default();
                let started = Instant::now();
                let instances = read_domains_with(dir.path(), &mut cache).expect("domains");
                assert_eq!(instances.instances.len(), domains);
                started.elapsed()
            })
            .collect();
        let mut cache = DomainCache::default();
        read_domains_with(dir.path(), &mut cache).expect("domains");
        let steady: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                let instances = read_domains_with(dir.path(), &mut cache).expect("domains");
                assert_eq!(instances.instances.len(), domains);
                started.elapsed()
            })
            .collect();
        let names: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .expect("the directory")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        let stats: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                for name in &names {
                    std::fs::metadata(name).expect("a domain file");
                }
                started.elapsed()
            })
            .collect();
        let (steady_p50, steady_p90) = percentiles(steady);
        let (stat_p50, stat_p90) = percentiles(stats);
        let (first_p50, first_p90) = percentiles(first);
        println!(
            "{domains:>5} domain files: unchanged read p50 {steady_p50:.3} ms p90 {steady_p90:.3} ms; a stat of every file p50 {stat_p50:.3} ms p90 {stat_p90:.3} ms; first read p50 {first_p50:.2} ms p90 {first_p90:.2} ms"
        );
    }
}
