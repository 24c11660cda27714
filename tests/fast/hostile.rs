//! Hostile inputs across classes (issue 12's acceptance): while every kind of blocking work is
//! stuck or slow at once — a hung LVM command, a FIFO in the libvirt XML directory, a FIFO as
//! the file source, 64 connections sending wrong passwords and unknown users to a cost-10
//! bcrypt configuration — an authenticated scrape still answers within its timeout, and the
//! process ends within 10 s of SIGTERM.
//! The class tests live beside this one: `hostile_input.rs` (files and reads), `hostile_web.rs`
//! (auth and the web configuration), `hostile_secrets.rs` (every output grepped for planted
//! secrets).

use crate::common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");

/// How long an authenticated scrape may take: the collectors' own timeouts (2 s for LVM, 3 s
/// for the tracked sources) plus headroom for two cores shared with 64 attackers.
const SCRAPE_BOUND: Duration = Duration::from_secs(10);

/// Where Prometheus scrapes from.
const SCRAPER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Where the attackers send from: another host, as the password checker counts clients.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address `source` (127.0.0.0/8 is all
/// loopback on Linux), so that the server sees another client.
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the addresses are valid
    // sockaddr_in values that outlive the calls; the descriptor goes to a TcpStream (which
    // closes it) or is closed here on error.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let local = sockaddr(source, 0);
        let remote = sockaddr(Ipv4Addr::LOCALHOST, port);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), length) != 0
            || libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), length) != 0
        {
            let error = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(error);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// One GET with basic auth from the loopback address `source`: (status, body, how long it
/// took). Errors count as status 0.
fn get_with_auth(
    source: Ipv4Addr,
    port: u16,
    path: &str,
    user: &str,
    password: &str,
) -> (u16, String, Duration) {
    let started = Instant::now();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = connect_from(source, port)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, text))
    };
    let (status, body) = attempt().unwrap_or((0, String::new()));
    (status, body, started.elapsed())
}

/// Waits until `pid` has exited (gone, or a zombie waiting for its parent): true when it did
/// within `bound`.
fn exits_within(pid: u32, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                if state.is_some_and(|rest| rest.starts_with('Z') || rest.starts_with('X')) {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn an_authenticated_scrape_answers_while_every_kind_of_blocking_work_is_stuck() {
    // 64 attackers and bcrypt at cost 10 load both cores: not beside the tier's timing tests.
    let _cpu = common::cpu_heavy();
    if !programs_available(
        "an_authenticated_scrape_answers_while_every_kind_of_blocking_work_is_stuck",
        &["mkfifo", "sleep"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A hung LVM: the command never answers.
    let lvm = d.join("lvm");
    std::fs::write(&lvm, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&lvm, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A FIFO among the domain XML files, and a FIFO as the file source: reads that never return.
    let xml_dir = d.join("qemu");
    std::fs::create_dir(&xml_dir).unwrap();
    mkfifo(&xml_dir.join("instance-00000001.xml"));
    let instances = d.join("instances.json");
    mkfifo(&instances);
    // Basic auth with a realistic cost.
    let web_config = d.join("web.yml");
    let hash = bcrypt::hash("right horse battery", 10).unwrap();
    std::fs::write(
        &web_config,
        format!("basic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();

    let exporter = Exporter::start_listening(&[
        format!("--nova.config-file={EXAMPLE}/nova.conf"),
        format!("--collector.lvm.lvm-path={}", lvm.display()),
        "--collector.lvm.method=exec".to_string(),
        "--no-collector.lvm.sync-io".to_string(),
        "--collector.lvm.timeout=2s".to_string(),
        "--collector.timeout=3s".to_string(),
        format!("--collector.libvirt.xml-dir={}", xml_dir.display()),
        format!("--collector.file.path={}", instances.display()),
        format!("--web.config.file={}", web_config.display()),
        "--web.request-timeout=15s".to_string(),
    ]);
    let port = exporter.port;

    // 64 attackers: wrong passwords for the real user and any password for unknown users,
    // as fast as the server lets them, for a bounded time and count.
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let attack_deadline = Instant::now() + Duration::from_secs(60);
    let attackers: Vec<_> = (0..64)
        .map(|i| {
            let stop = Arc::clone(&stop);
            let attempts = Arc::clone(&attempts);
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed)
                    && Instant::now() < attack_deadline
                    && n < 10_000
                {
                    let user = if i % 2 == 0 {
                        "prometheus".to_string()
                    } else {
                        format!("guess{i}-{n}")
                    };
                    let _ = get_with_auth(ATTACKER, port, "/metrics", &user, &format!("wrong{n}"));
                    attempts.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    // Several authenticated scrapes in a row, the first with credentials the exporter has not
    // checked yet (a restart during the flood): each answers 200 within its bound, saying which
    // collectors failed. More scrapes than the runtime has blocking threads, so a leak of one
    // stuck thread per scrape would show.
    let mut latencies = Vec::new();
    for scrape in 0..8 {
        let (status, body, took) = get_with_auth(
            SCRAPER,
            port,
            "/metrics",
            "prometheus",
            "right horse battery",
        );
        assert_eq!(
            status,
            200,
            "scrape {scrape} answered {status} after {took:?}:\n{body}\nlog:\n{}",
            exporter.log()
        );
        assert!(took < SCRAPE_BOUND, "scrape {scrape} took {took:?}");
        // The hung LVM and the FIFO file source fail alone; the libvirt directory's FIFO entry
        // is skipped when the directory is listed, so it cannot stall that source either.
        for (collector, success) in [("lvm", 0), ("file", 0), ("libvirt", 1)] {
            let series =
                format!("nova_lvm_collector_success{{collector=\"{collector}\"}} {success}");
            assert!(
                body.contains(&series),
                "scrape {scrape}: expected {series}:\n{body}"
            );
        }
        latencies.push(took);
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    latencies.sort();
    eprintln!(
        "authenticated scrapes under attack: median {:?}, max {:?}; {} attacker requests",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        attempts.load(Ordering::Relaxed)
    );

    // The process ends within 10 s of SIGTERM, whatever is still stuck.
    let pid = exporter.pid();
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        exits_within(pid, Duration::from_secs(10)),
        "still running 10 s after SIGTERM:\n{}",
        exporter.log()
    );
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
}
