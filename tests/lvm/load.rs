//! Load and faults against a real VG on a loop device: many concurrent scrapers share
//! collections (one `lvm fullreport` each, counted), memory and file descriptors stay bounded,
//! and the exporter keeps answering while LVM's VG lock is held by someone else, while `lvm` is
//! killed by a signal, and while clients disconnect in the middle of a scrape. These pin
//! `--collector.lvm.method=exec`: they are about the LVM process. The default method (auto)
//! runs no LVM at all in the steady state, counted with the same wrapper, and is not held up
//! by LVM's lock.
//!
//! Bounded in count and time, loopback only. `NOVA_LVM_LOAD_SECONDS` (default 30) sets how long
//! the concurrent scrapers run.

use crate::common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const UUID: &str = "3f5e6c1a-1111-4222-8333-444455556666";

/// A host: a real VG with an instance disk and a foreign LV, its nova.conf and domain XML, and
/// a wrapper around `lvm` that counts its executions and completions around the real tool.
struct Host {
    vg: LoopVg,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str) -> Self {
        let vg = LoopVg::new(tag, 20);
        vg.create_lv(&format!("{UUID}_disk"), "1G");
        vg.create_lv("someone_elses_lv", "256M");
        let dir = tempfile::tempdir().unwrap();
        write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 0);
        write_domains(
            &dir.path().join("qemu"),
            &vg.name,
            &[Domain {
                uuid: UUID,
                name: "a",
                root_gb: 1,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume: false,
            }],
        );
        let host = Host { vg, dir };
        host.wrapper("");
        host
    }

    /// Writes the `lvm` wrapper into the host directory: counts the run, does `before`, runs
    /// the real tool, counts its completion.
    fn wrapper(&self, before: &str) -> PathBuf {
        let path = self.dir.path().join("lvm");
        let runs = self.dir.path().join("lvm.runs");
        let completions = self.dir.path().join("lvm.completions");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho run >> {}\n{before}\n/usr/sbin/lvm \"$@\"\nrc=$?\necho done >> {}\nexit $rc\n",
                runs.display(),
                completions.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn count(&self, file: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join(file))
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }

    /// LVM executions started.
    fn runs(&self) -> usize {
        self.count("lvm.runs")
    }

    /// LVM executions that ran to their end.
    fn completions(&self) -> usize {
        self.count("lvm.completions")
    }

    /// The exporter's arguments with exec pinned (one LVM run per collection), then `extra`.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.default_args();
        args.push("--collector.lvm.method=exec".to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The exporter's arguments with the default method.
    fn default_args(&self) -> Vec<String> {
        vec![
            format!(
                "--nova.config-file={}",
                self.dir.path().join("nova.conf").display()
            ),
            format!(
                "--collector.libvirt.xml-dir={}",
                self.dir.path().join("qemu").display()
            ),
            format!(
                "--collector.lvm.lvm-path={}",
                self.dir.path().join("lvm").display()
            ),
        ]
    }

    fn assert_correct(&self, m: &Exposition) {
        let vg = &self.vg.name;
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
            1.0,
            "{}",
            m.text
        );
        assert_eq!(
            m.value(&format!("nova_lvm_vg_used_bytes{{vg=\"{vg}\"}}")),
            (1280 * MIB) as f64
        );
        assert_eq!(
            m.value(&format!("nova_lvm_drift_bytes{{vg=\"{vg}\"}}")),
            (256 * MIB) as f64
        );
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn two_hundred_concurrent_scrapers_share_collections_without_errors_or_leaks() {
    if !lvm_available("two_hundred_concurrent_scrapers_share_collections_without_errors_or_leaks") {
        return;
    }
    let seconds: u64 = std::env::var("NOVA_LVM_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let host = Host::new("load");
    let exporter = Exporter::start(&host.args(&[]));
    host.assert_correct(&exporter.scrape());
    let pid = exporter.pid();
    let rss_before = proc_status_kib(pid, "VmRSS:");
    let fds_before = open_fds(pid);
    let runs_before = host.runs();

    let scrapes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let collections = Arc::new(Mutex::new(BTreeSet::<u64>::new()));
    let port = exporter.port;
    // Two equal halves: the first reaches the high-water mark of 200 connections' buffers, the
    // second must not grow it further (growth under a repeated, equal load is a leak).
    let mut rss_mid = 0;
    for half in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(seconds.div_ceil(2));
        let workers: Vec<_> = (0..200)
        .map(|_| {
            let (scrapes, errors, collections) = (Arc::clone(&scrapes), Arc::clone(&errors), Arc::clone(&collections));
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    match get(port, "/metrics") {
                        Ok((200, body)) => {
                            let m = Exposition::parse(&body);
                            match m.get("nova_lvm_collector_last_success_timestamp_seconds{collector=\"lvm\"}") {
                                Some(at) if m.get("nova_lvm_collector_success{collector=\"lvm\"}") == Some(1.0) => {
                                    collections.lock().unwrap().insert(at.to_bits());
                                }
                                _ => errors.lock().unwrap().push(format!("lvm failed: {body}")),
                            }
                        }
                        Ok((status, body)) => errors.lock().unwrap().push(format!("{status}: {body}")),
                        Err(error) => errors.lock().unwrap().push(error.to_string()),
                    }
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        if half == 0 {
            std::thread::sleep(Duration::from_millis(200));
            rss_mid = proc_status_kib(pid, "VmRSS:");
        }
    }
    let scrapes = scrapes.load(Ordering::Relaxed);
    let errors = errors.lock().unwrap();
    let collections = collections.lock().unwrap().len();
    let lvm_runs = host.runs() - runs_before;
    std::thread::sleep(Duration::from_millis(200));
    let rss_after = proc_status_kib(pid, "VmRSS:");
    let fds_after = open_fds(pid);
    eprintln!(
        "load: {scrapes} scrapes by 200 clients in {seconds} s, {collections} collections, {lvm_runs} lvm runs, \
         RSS {rss_before} -> {rss_mid} (half-way) -> {rss_after} KiB, fds {fds_before} -> {fds_after}"
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(scrapes >= 200, "only {scrapes} scrapes");
    // Exactly one LVM execution per collection, and far fewer collections than scrapes.
    assert_eq!(lvm_runs, collections);
    assert!(
        (collections as u64) < scrapes / 5,
        "{collections} collections for {scrapes} scrapes"
    );
    assert!(
        rss_after <= rss_mid + 12 * 1024,
        "RSS kept growing under the same load: {rss_before} -> {rss_mid} -> {rss_after} KiB"
    );
    assert!(
        rss_after < 96 * 1024,
        "RSS {rss_after} KiB with 200 connections (debug build)"
    );
    assert!(
        fds_after <= fds_before + 2,
        "fds grew from {fds_before} to {fds_after}"
    );
    host.assert_correct(&exporter.scrape());
}

/// Holds LVM's lock of `vg` (the file lock LVM itself takes) until dropped. `flock -o` keeps
/// the lock in flock itself, not in its `sleep`, so that killing flock releases it.
struct VgLock(Child);

impl VgLock {
    fn hold(vg: &str) -> Self {
        let path = format!("/run/lock/lvm/V_{vg}");
        let child = Command::new("flock")
            .args(["-o", &path, "sleep", "60"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flock (util-linux)");
        let lock = VgLock(child);
        // Wait until the lock is really held.
        for _ in 0..100 {
            let probe = Command::new("flock")
                .args(["-n", &path, "true"])
                .status()
                .unwrap();
            if !probe.success() {
                return lock;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("could not take the lock {path}");
    }
}

impl Drop for VgLock {
    fn drop(&mut self) {
        // The whole group: flock and its sleep.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn a_vg_lock_held_by_another_lvm_command_is_a_clear_timeout_and_then_recovers() {
    if !lvm_available("a_vg_lock_held_by_another_lvm_command_is_a_clear_timeout_and_then_recovers")
    {
        return;
    }
    let host = Host::new("lock");
    let exporter = Exporter::start(&host.args(&["--collector.lvm.timeout=1s"]));
    host.assert_correct(&exporter.scrape());
    {
        let _lock = VgLock::hold(&host.vg.name);
        let started = Instant::now();
        let m = exporter.scrape();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
            0.0
        );
        assert!(m.lacks_family("nova_lvm_drift_bytes"));
        assert_eq!(
            m.value("nova_lvm_collector_success{collector=\"libvirt\"}"),
            1.0
        );
        let log = exporter.log();
        assert!(log.contains("did not finish within 1000 ms"), "{log}");
        assert!(
            log.contains("lock"),
            "the error says it waited for a lock: {log}"
        );
    }
    host.assert_correct(&exporter.scrape());
}

#[test]
fn lvm_killed_by_a_signal_fails_that_scrape_only() {
    if !lvm_available("lvm_killed_by_a_signal_fails_that_scrape_only") {
        return;
    }
    let host = Host::new("signal");
    let marker = host.dir.path().join("kill-next");
    host.wrapper(&format!(
        "if [ -e {m} ]; then rm -f {m}; kill -9 $$; fi",
        m = marker.display()
    ));
    let exporter = Exporter::start(&host.args(&[]));
    host.assert_correct(&exporter.scrape());
    std::fs::write(&marker, "").unwrap();
    let m = exporter.scrape();
    assert_eq!(
        m.value("nova_lvm_collector_success{collector=\"lvm\"}"),
        0.0
    );
    assert!(
        exporter.log().contains("killed by signal 9"),
        "{}",
        exporter.log()
    );
    host.assert_correct(&exporter.scrape());
}

#[test]
fn clients_disconnecting_mid_scrape_do_not_disturb_the_others() {
    if !lvm_available("clients_disconnecting_mid_scrape_do_not_disturb_the_others") {
        return;
    }
    let host = Host::new("disconnect");
    // A slow lvm: the scrape is in flight for half a second.
    host.wrapper("sleep 0.5");
    let exporter = Exporter::start(&host.args(&[]));
    for _ in 0..3 {
        let impatient: Vec<TcpStream> = (0..20)
            .map(|_| {
                let mut stream = TcpStream::connect(("127.0.0.1", exporter.port)).unwrap();
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                stream
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        drop(impatient);
        // A patient scraper arriving now shares the collection the impatient ones started.
        host.assert_correct(&exporter.scrape());
    }
    assert_eq!(
        host.runs(),
        host.completions(),
        "every collection ran to its end"
    );
    assert!(host.runs() <= 6, "{} collections", host.runs());
    assert!(!exporter.log().contains("panicked"), "{}", exporter.log());
}

#[test]
fn the_default_method_runs_no_lvm_in_the_steady_state_nor_waits_for_its_lock() {
    if !lvm_available("the_default_method_runs_no_lvm_in_the_steady_state_nor_waits_for_its_lock") {
        return;
    }
    let host = Host::new("auto");
    let exporter = Exporter::start(&host.default_args());
    let first = exporter.scrape();
    host.assert_correct(&first);
    assert_eq!(
        first.get(&format!(
            "nova_lvm_raw_source_info{{method=\"metadata\",reason=\"ok\",vg=\"{}\"}}",
            host.vg.name
        )),
        Some(1.0),
        "{}",
        first.text
    );
    assert_eq!(host.runs(), 1, "one lvm fullreport finds the PVs");
    let log = exporter.log();
    assert!(
        log.contains("LVM metadata read from the PVs")
            && log.contains(&host.vg.name)
            && log.contains("method=metadata"),
        "the log says how the VG is read: {log}"
    );
    for _ in 0..50 {
        host.assert_correct(&exporter.scrape());
    }
    // A change made by LVM is read from the PVs, still without running it.
    host.vg.create_lv("later", "100M");
    let m = exporter.scrape();
    assert_eq!(
        m.value(&format!(
            "nova_lvm_vg_used_bytes{{vg=\"{}\"}}",
            host.vg.name
        )),
        (1380 * MIB) as f64
    );
    host.vg.remove_lv("later");
    host.assert_correct(&exporter.scrape());
    {
        let _lock = VgLock::hold(&host.vg.name);
        let started = Instant::now();
        host.assert_correct(&exporter.scrape());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(host.runs(), 1, "no LVM run in the steady state");
}
