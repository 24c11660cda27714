//! Hostile inputs for the file readers, against the built binary: FIFOs, devices, sockets and
//! directories where a file is expected, reads that never return, and the shutdown bound.
//!
//! None of these needs root or LVM: the LVM figures come from a replay file.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{get, nova_domain_xml, Domain, Exporter, Exposition};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");

fn example(name: &str) -> String {
    format!("{EXAMPLE}/{name}")
}

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: mkfifo reads a NUL-terminated path and has no other effect on memory.
    let made = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo {}", path.display());
}

/// Flags of an exporter on the seed incident with short timeouts, the replay file `replay`.
fn seed_args(replay: &Path) -> Vec<String> {
    vec![
        format!("--nova.config-file={}", example("nova.conf")),
        format!("--collector.lvm.replay-file={}", replay.display()),
        format!("--collector.file.path={}", example("instances.json")),
        "--no-collector.libvirt".to_string(),
        "--collector.lvm.timeout=1s".to_string(),
        "--collector.timeout=1s".to_string(),
        "--web.request-timeout=5s".to_string(),
    ]
}

/// Runs the exporter with `args` and returns its output, failing if it runs beyond `bound`.
fn run_within(bound: Duration, args: &[String]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nova-lvm-exporter"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    loop {
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            return (output, started.elapsed());
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the exporter ran beyond {bound:?} with {args:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn collector_success(exposition: &Exposition, collector: &str) -> f64 {
    exposition.value(&format!(
        "nova_lvm_collector_success{{collector=\"{collector}\"}}"
    ))
}

/// Peak resident memory of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Sends SIGTERM to the exporter and returns how long it took to exit.
fn terminate(exporter: &mut Exporter) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &exporter.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    loop {
        if exporter.try_exited() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_fifo_replay_file_fails_only_lvm_on_every_scrape_and_recovers_when_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("lvm-report.json");
    mkfifo(&replay);
    let mut exporter = Exporter::start(&seed_args(&replay));
    for scrape in 0..8 {
        let started = Instant::now();
        let (status, body) = get(exporter.port, "/metrics").expect("scrape");
        assert_eq!(status, 200, "scrape {scrape}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "scrape {scrape}"
        );
        let exposition = Exposition::parse(&body);
        assert_eq!(
            collector_success(&exposition, "lvm"),
            0.0,
            "scrape {scrape}"
        );
        assert_eq!(
            collector_success(&exposition, "file"),
            1.0,
            "scrape {scrape}"
        );
    }
    let (_, page) = get(exporter.port, "/").expect("status page");
    assert!(
        page.contains("is a FIFO, not a regular file"),
        "the status page says why:\n{page}"
    );

    std::fs::remove_file(&replay).expect("remove the FIFO");
    std::fs::copy(example("lvm-report.json"), &replay).expect("a real report");
    let exposition = exporter.scrape();
    assert_eq!(collector_success(&exposition, "lvm"), 1.0);
    assert_eq!(collector_success(&exposition, "file"), 1.0);

    assert!(terminate(&mut exporter) < Duration::from_secs(10));
}

#[test]
fn sigterm_ends_a_server_whose_reads_were_stuck_within_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("lvm-report.json");
    let instances = dir.path().join("instances.json");
    mkfifo(&replay);
    mkfifo(&instances);
    let mut args = seed_args(&replay);
    args.retain(|a| !a.starts_with("--collector.file.path"));
    args.push(format!("--collector.file.path={}", instances.display()));
    let mut exporter = Exporter::start(&args);
    // Whatever the scrapes answer (the FIFO reads of the unfixed exporter never returned).
    for _ in 0..3 {
        let _ = get(exporter.port, "/metrics");
    }
    let took = terminate(&mut exporter);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn dev_zero_as_the_replay_file_is_refused_without_reading_it() {
    let mut exporter = Exporter::start(&seed_args(Path::new("/dev/zero")));
    for _ in 0..3 {
        let exposition = exporter.scrape();
        assert_eq!(collector_success(&exposition, "lvm"), 0.0);
        assert_eq!(collector_success(&exposition, "file"), 1.0);
    }
    let peak = peak_rss_kib(exporter.pid());
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    assert!(
        exporter
            .log()
            .contains("/dev/zero: is a character device, not a regular file"),
        "{}",
        exporter.log()
    );
    terminate(&mut exporter);
}

#[test]
fn a_symlink_to_dev_zero_is_refused_like_the_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("instances.json");
    std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
    let mut args = seed_args(Path::new(&example("lvm-report.json")));
    args.retain(|a| !a.starts_with("--collector.file.path"));
    args.push(format!("--collector.file.path={}", link.display()));
    args.insert(0, "report".to_string());
    let (output, _) = run_within(Duration::from_secs(10), &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: is a character device, not a regular file",
            link.display()
        )),
        "{stdout}"
    );
}

#[test]
fn dev_zero_as_nova_conf_is_a_clear_start_up_error() {
    let (output, _) = run_within(
        Duration::from_secs(10),
        &[
            "report".to_string(),
            "--nova.config-file=/dev/zero".to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/dev/zero: is a character device, not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_directory_or_a_socket_where_a_file_is_expected_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("instances.json");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let mut args = seed_args(dir.path());
    args.retain(|a| !a.starts_with("--collector.file.path"));
    args.push(format!("--collector.file.path={}", socket.display()));
    args.insert(0, "report".to_string());
    let (output, _) = run_within(Duration::from_secs(10), &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: is a directory, not a regular file",
            dir.path().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&socket.display().to_string()),
        "the socket is named: {stdout}"
    );
}

#[test]
fn report_and_check_with_a_fifo_input_exit_in_time_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("lvm-report.json");
    mkfifo(&replay);
    let mut report = seed_args(&replay);
    report.insert(0, "report".to_string());
    let (output, took) = run_within(Duration::from_secs(10), &report);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("is a FIFO, not a regular file"), "{stdout}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    let mut check = seed_args(&replay);
    check.insert(0, "check".to_string());
    let (output, _) = run_within(Duration::from_secs(10), &check);
    let line = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{line}");
    assert!(line.starts_with("NOVA-LVM UNKNOWN - "), "{line}");
}

#[test]
fn a_fifo_as_the_web_or_exporter_configuration_is_a_start_up_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("config");
    mkfifo(&fifo);
    for flag in ["--web.config.file", "--config.file"] {
        let mut args = seed_args(Path::new(&example("lvm-report.json")));
        args.push(format!("{flag}={}", fifo.display()));
        args.push("--web.listen-address=127.0.0.1:0".to_string());
        let (output, _) = run_within(Duration::from_secs(10), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: is a FIFO, not a regular file",
                fifo.display()
            )),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn a_fifo_swapped_in_and_out_of_the_xml_directory_never_wedges_the_server() {
    // A swapping thread spins a core and every scrape is timed: not beside the tier's others.
    let _cpu = common::cpu_heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let xml_dir = dir.path().join("qemu");
    std::fs::create_dir(&xml_dir).expect("xml dir");
    let domain = Domain {
        uuid: "0f6b2d84-93a1-4e57-8c2f-6a1d9e3b7c40",
        name: "vm",
        root_gb: 20,
        ephemeral_gb: 0,
        swap_mb: 0,
        boot_from_volume: false,
    };
    let xml = nova_domain_xml(&domain, "vms-group", 1);
    let target = xml_dir.join("zz-instance.xml");
    std::fs::write(&target, &xml).expect("domain");
    // A large domain without nova metadata, read before the target on every collection (its
    // time stamp in the future keeps it from being cached): it widens the window between the
    // listing that sees a regular file and the open, as a busy host's directory would.
    let padding = xml_dir.join("aa-padding.xml");
    std::fs::write(
        &padding,
        format!(
            "<domain type='kvm'><name>pad</name><uuid>00000000-0000-4000-8000-000000000001</uuid><!-- {} --></domain>",
            "x".repeat(1 << 20)
        ),
    )
    .expect("padding");
    std::fs::File::options()
        .write(true)
        .open(&padding)
        .and_then(|file| {
            file.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600))
        })
        .expect("future mtime");
    let mut args = seed_args(Path::new(&example("lvm-report.json")));
    args.retain(|a| a != "--no-collector.libvirt" && !a.starts_with("--collector.file.path"));
    args.push(format!("--collector.libvirt.xml-dir={}", xml_dir.display()));
    let mut exporter = Exporter::start(&args);

    // Swap a FIFO and a fresh copy of the domain into place, as fast as possible, while
    // scraping: some collection opens the name while it is a FIFO.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapping = {
        let stop = std::sync::Arc::clone(&stop);
        let (xml_dir, target) = (xml_dir.clone(), target.clone());
        std::thread::spawn(move || {
            let (fifo, file) = (xml_dir.join("swap.fifo"), xml_dir.join("swap.file"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&fifo);
                mkfifo(&fifo);
                let _ = std::fs::rename(&fifo, &target);
                std::fs::write(&file, &xml).expect("copy");
                let _ = std::fs::rename(&file, &target);
            }
        })
    };
    let mut fifo_refused = 0;
    for scrape in 0..40 {
        let started = Instant::now();
        let (status, body) = get(exporter.port, "/metrics").expect("scrape");
        assert_eq!(status, 200, "scrape {scrape}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "scrape {scrape}"
        );
        if collector_success(&Exposition::parse(&body), "libvirt") == 0.0 {
            fifo_refused += 1;
        }
    }
    // How often a collection met the FIFO (it varies with timing; it is not asserted).
    eprintln!("{fifo_refused} of 40 collections met the FIFO");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapping.join().expect("swapper");

    // A FIFO left behind in the directory is no domain: it is skipped.
    mkfifo(&xml_dir.join("left-behind.xml"));
    let exposition = exporter.scrape();
    assert_eq!(
        collector_success(&exposition, "libvirt"),
        1.0,
        "{}",
        exporter.log()
    );
    assert!(terminate(&mut exporter) < Duration::from_secs(10));
}

/// The blocking work of one source stays one thread, however many scrapes hit it.
#[test]
fn scrapes_of_a_refused_input_start_no_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("lvm-report.json");
    mkfifo(&replay);
    let mut exporter = Exporter::start(&seed_args(&replay));
    for _ in 0..10 {
        exporter.scrape();
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", exporter.pid()))
        .expect("tasks")
        .count();
    // 2 workers, the main thread and at most the 4 blocking threads of the pool.
    assert!(threads <= 8, "{threads} threads");
    terminate(&mut exporter);
}
