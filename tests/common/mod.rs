//! Shared harness of the integration tests: a real volume group on a loop device, the built
//! exporter as a child process, a plain HTTP scrape and an exposition parser.
//!
//! Tests that need root and lvm2 skip with a loud reason on a laptop; under `CI=true` they fail
//! instead, so that CI can never pass by skipping.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod grafana;
pub mod schema;
pub mod stack;

/// Bytes in one MiB.
pub const MIB: u64 = 1024 * 1024;
/// Bytes in one GiB.
pub const GIB: u64 = 1024 * MIB;
/// `vgcreate` on a 20 GiB loop device gives 5119 extents of 4 MiB (one goes to metadata).
pub const VG_20G_BYTES: u64 = 5119 * 4 * MIB;

/// True when this test can use real LVM on loop devices. Otherwise prints why and returns false,
/// or panics under `CI=true`.
pub fn lvm_available(test: &str) -> bool {
    let reason = if unsafe_geteuid() != 0 {
        Some("not running as root")
    } else if !Path::new("/usr/sbin/vgs").exists() {
        Some("lvm2 is not installed (/usr/sbin/vgs missing)")
    } else if !Path::new("/dev/loop-control").exists() {
        Some("no /dev/loop-control")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: needs real LVM on a loop device but {reason}; under CI=true a skip is a failure")
        }
        Some(reason) => {
            eprintln!("\n!!! SKIPPING {test}: needs real LVM on a loop device, but {reason} !!!\n");
            false
        }
    }
}

fn unsafe_geteuid() -> u32 {
    // /proc/self/status carries the effective uid; no libc call needed in tests.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Runs an LVM (or other) command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

static VG_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A real volume group on a sparse file behind a loop device. Removed on drop, even when the
/// test fails.
pub struct LoopVg {
    /// The VG name (unique per test and process).
    pub name: String,
    device: String,
    _dir: tempfile::TempDir,
}

impl LoopVg {
    /// A byte figure of this VG from `vgs` (`vg_size`, `vg_free`, `vg_extent_size`, ...). LVM
    /// may print a notice beside it when other tests use LVM at the same time: the first line
    /// that is a number is the figure.
    pub fn report_bytes(&self, field: &str) -> u64 {
        let output = run(
            "vgs",
            &[
                "--noheadings",
                "--nosuffix",
                "--units",
                "b",
                "-o",
                field,
                &self.name,
            ],
        );
        output
            .lines()
            .find_map(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("vgs printed no {field} for {}: {output:?}", self.name))
    }

    /// A VG named `nle-<tag>-<pid>-<n>` on a sparse file of `size_gib` GiB.
    pub fn new(tag: &str, size_gib: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("pv0.img");
        let file = std::fs::File::create(&image).expect("create image");
        file.set_len(size_gib * GIB).expect("sparse image");
        drop(file);
        let device = run("losetup", &["-f", "--show", image.to_str().unwrap()])
            .trim()
            .to_string();
        let name = format!(
            "nle-{tag}-{}-{}",
            std::process::id(),
            VG_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let vg = LoopVg {
            name,
            device,
            _dir: dir,
        };
        run("pvcreate", &["-q", &vg.device]);
        run("vgcreate", &["-q", &vg.name, &vg.device]);
        vg
    }

    /// Creates a metadata-only LV (this kernel has no device-mapper: nothing is activated).
    pub fn create_lv(&self, lv: &str, size: &str) {
        self.create_lv_with(lv, size, &[]);
    }

    /// Like [`LoopVg::create_lv`], with `extra` lvcreate arguments (e.g. `--addtag nova`).
    pub fn create_lv_with(&self, lv: &str, size: &str, extra: &[&str]) {
        let mut args = vec![
            "-q",
            "--config",
            "global{activation=0}",
            "-an",
            "-Zn",
            "-L",
            size,
            "-n",
            lv,
        ];
        args.extend_from_slice(extra);
        args.push(&self.name);
        run("lvcreate", &args);
    }

    /// Grows an LV by `size` (e.g. `+60M`); the new extents form a segment of their own when
    /// other LVs follow it.
    pub fn extend_lv(&self, lv: &str, size: &str) {
        run(
            "lvextend",
            &[
                "-q",
                "--config",
                "global{activation=0}",
                "-L",
                size,
                &format!("{}/{lv}", self.name),
            ],
        );
    }

    /// Removes an LV.
    pub fn remove_lv(&self, lv: &str) {
        run(
            "lvremove",
            &[
                "-q",
                "-f",
                "--config",
                "global{activation=0}",
                &format!("{}/{lv}", self.name),
            ],
        );
    }

    /// Sets LV `lv`'s `creation_time` in the VG metadata to `unix` (vgcfgbackup, edit,
    /// vgcfgrestore): an LV made now that looks days old to LVM.
    pub fn set_lv_creation_time(&self, lv: &str, unix: i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backup = dir.path().join("vg.txt");
        let backup = backup.to_str().unwrap();
        run("vgcfgbackup", &["-q", "-f", backup, &self.name]);
        let text = std::fs::read_to_string(backup).expect("read backup");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let section = lines
            .iter()
            .position(|l| l.trim() == format!("{lv} {{"))
            .unwrap_or_else(|| panic!("lv {lv} in the metadata"));
        let time = section
            + lines[section..]
                .iter()
                .position(|l| l.trim_start().starts_with("creation_time = "))
                .expect("creation_time");
        lines[time] = format!("\t\t\tcreation_time = {unix}");
        let seqno = lines
            .iter()
            .position(|l| l.trim_start().starts_with("seqno = "))
            .expect("seqno");
        let next: u64 = lines[seqno]
            .trim()
            .trim_start_matches("seqno = ")
            .parse()
            .unwrap();
        lines[seqno] = format!("\tseqno = {}", next + 1);
        std::fs::write(backup, lines.join("\n") + "\n").expect("write backup");
        run("vgcfgrestore", &["-q", "--force", "-f", backup, &self.name]);
    }

    /// Writes LVs straight into the VG metadata (vgcfgbackup, edit, vgcfgrestore): the only way
    /// to get thin pools here, since they cannot be created without device-mapper. `lvs_text`
    /// is inserted into the `logical_volumes` section; `{pv}` in it stands for the PV's name in
    /// the metadata.
    pub fn restore_with_extra_lvs(&self, lvs_text: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backup = dir.path().join("vg.txt");
        let backup = backup.to_str().unwrap();
        run("vgcfgbackup", &["-q", "-f", backup, &self.name]);
        let mut text = std::fs::read_to_string(backup).expect("read backup");
        let seqno_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("seqno = "))
            .expect("seqno")
            .to_string();
        let seqno: u64 = seqno_line
            .trim()
            .trim_start_matches("seqno = ")
            .parse()
            .unwrap();
        text = text.replacen(&seqno_line, &format!("\tseqno = {}", seqno + 1), 1);
        let lvs_text = lvs_text.replace("{pv}", "pv0");
        text = match text.find("logical_volumes {") {
            Some(at) => {
                let insert = at + "logical_volumes {".len();
                format!("{}\n{lvs_text}\n{}", &text[..insert], &text[insert..])
            }
            None => {
                // No LV yet: add the section before the closing brace of the VG.
                let end = text.rfind("\n}").expect("vg closing brace");
                format!(
                    "{}\n\tlogical_volumes {{\n{lvs_text}\n\t}}\n{}",
                    &text[..end],
                    &text[end..]
                )
            }
        };
        std::fs::write(backup, text).expect("write backup");
        run("vgcfgrestore", &["-q", "--force", "-f", backup, &self.name]);
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        remove_loop_vg(&self.name, &self.device);
    }
}

/// Removes a test VG, its PV label and its loop device, quietly and whatever state they are in
/// (for `Drop`s: a failing test must still clean up).
pub fn remove_loop_vg(vg: &str, device: &str) {
    let quiet = |program: &str, args: &[&str]| {
        let _ = Command::new(program)
            .args(args)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    // activation=0: a VG with a thin pool written into its metadata cannot be "deactivated"
    // without device-mapper, and vgremove refuses without it.
    quiet(
        "vgremove",
        &["-f", "-q", "--config", "global{activation=0}", vg],
    );
    quiet("pvremove", &["-q", "-ff", "-y", device]);
    quiet("losetup", &["-d", device]);
}

/// A free TCP port on loopback (bound and released; the race is harmless in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The example host of the README (`examples/seed-incident/`: a saved LVM report and a file
/// source, no LVM or OpenStack needed): its flags, then `extra`.
pub fn example_host_args(extra: &[String]) -> Vec<String> {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-incident");
    let mut args = vec![
        format!("--nova.config-file={example}/nova.conf"),
        format!("--collector.lvm.replay-file={example}/lvm-report.json"),
        format!("--collector.file.path={example}/instances.json"),
        "--no-collector.libvirt".to_string(),
    ];
    args.extend_from_slice(extra);
    args
}

/// The exporter binary the tests run: `NOVA_LVM_EXPORTER_BIN` when set (`scripts/same-output
/// --scenarios` runs the real-VG scenarios against two builds), else this build's.
pub fn exporter_binary() -> String {
    std::env::var("NOVA_LVM_EXPORTER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_nova-lvm-exporter").to_string())
}

/// With `NOVA_LVM_CAPTURE_DIR` set, keeps `text` (a scrape, a report) as
/// `<dir>/<test>.<n>.<kind>`, numbered in the order the test made them, for
/// `scripts/same-output --scenarios` to compare two builds' outputs; otherwise does nothing.
pub fn capture(kind: &str, text: &str) {
    thread_local! {
        static CAPTURED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let Some(dir) = std::env::var_os("NOVA_LVM_CAPTURE_DIR") else {
        return;
    };
    let n = CAPTURED.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", ".");
    let path = Path::new(&dir).join(format!("{test}.{n:03}.{kind}"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The exporter binary, running with the given flags; killed on drop.
pub struct Exporter {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts the exporter on a free loopback port and waits until `/healthz` answers.
    pub fn start(args: &[String]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Exporter::start`], with these environment variables set and every other `OS_*`
    /// variable of the test process removed (so a developer's sourced openrc never leaks in).
    pub fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Self {
        Self::spawn(&exporter_binary(), &[], args, env, healthz_answers)
    }

    /// Starts the exporter and waits until its port accepts TCP connections (for TLS or
    /// authenticated servers, which a plain `/healthz` probe cannot check).
    pub fn start_listening(args: &[String]) -> Self {
        Self::start_with_probe(args, |port| TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// Starts the exporter through a wrapper (e.g. `setpriv ... -- BINARY`): `program` and
    /// `wrapper_args` come first, then the listen address and `args`.
    pub fn start_command(program: &str, wrapper_args: &[&str], args: &[String]) -> Self {
        Self::spawn(program, wrapper_args, args, &[], healthz_answers)
    }

    /// Starts the exporter and waits until `ready(port)` is true.
    pub fn start_with_probe(args: &[String], ready: impl Fn(u16) -> bool) -> Self {
        Self::spawn(&exporter_binary(), &[], args, &[], ready)
    }

    fn spawn(
        program: &str,
        wrapper_args: &[&str],
        args: &[String],
        env: &[(&str, &str)],
        ready: impl Fn(u16) -> bool,
    ) -> Self {
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log = log_dir.path().join("exporter.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("OS_") {
                command.env_remove(key);
            }
        }
        let child = command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(wrapper_args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Tests read the API sources at the first scrape; a test of the start spread
            // passes --collector.start-spread (the last of the pair wins).
            .arg("--no-collector.start-spread")
            .args(args)
            .envs(env.iter().copied())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the exporter");
        let mut exporter = Exporter {
            child,
            port,
            log,
            _log_dir: log_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = exporter.child.try_wait() {
                panic!("exporter exited with {status}:\n{}", exporter.log());
            }
            if ready(port) {
                return exporter;
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not answer /healthz:\n{}",
                exporter.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Scrapes `/metrics`, asserting a 200.
    pub fn scrape(&self) -> Exposition {
        let (status, body) = get(self.port, "/metrics").expect("scrape");
        assert_eq!(status, 200, "{body}");
        capture("metrics", &body);
        Exposition::parse(&body)
    }

    /// What the exporter logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the child has exited (reaped here).
    pub fn try_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when `/healthz` answers 200 on `port`.
fn healthz_answers(port: u16) -> bool {
    get(port, "/healthz").is_ok_and(|(status, _)| status == 200)
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A parsed text exposition: every sample keyed by its series exactly as printed
/// (`name{label="value",...}`, labels in the exporter's order).
pub struct Exposition {
    /// The raw text.
    pub text: String,
    /// Series -> value.
    pub samples: BTreeMap<String, f64>,
}

impl Exposition {
    /// Parses the text format (comments skipped).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample line");
                (series.to_string(), value.parse().expect("sample value"))
            })
            .collect();
        Exposition {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of one series, or `None` when absent.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    /// The value of one series, panicking with the exposition when absent.
    pub fn value(&self, series: &str) -> f64 {
        self.get(series)
            .unwrap_or_else(|| panic!("{series} missing from:\n{}", self.text))
    }

    /// True when no series of this metric family is present.
    pub fn lacks_family(&self, name: &str) -> bool {
        !self
            .samples
            .keys()
            .any(|s| s == name || s.starts_with(&format!("{name}{{")))
    }
}

/// A nova instance for a generated libvirt domain XML.
pub struct Domain<'a> {
    /// Instance UUID.
    pub uuid: &'a str,
    /// Instance name (display name).
    pub name: &'a str,
    /// Flavor root_gb.
    pub root_gb: u64,
    /// Flavor ephemeral_gb.
    pub ephemeral_gb: u64,
    /// Flavor swap, MiB.
    pub swap_mb: u64,
    /// Booted from a cinder volume.
    pub boot_from_volume: bool,
}

/// The persistent domain XML nova-compute (libvirt driver, images_type=lvm) writes for an
/// instance, with the nova 1.1 metadata block, of flavor `m1.custom`.
pub fn nova_domain_xml(domain: &Domain, vg: &str, index: u32) -> String {
    nova_domain_xml_of_flavor(domain, "m1.custom", vg, index)
}

/// [`nova_domain_xml`] with the flavor named `flavor` (`<nova:flavor name=...>`).
pub fn nova_domain_xml_of_flavor(domain: &Domain, flavor: &str, vg: &str, index: u32) -> String {
    let Domain {
        uuid,
        name,
        root_gb,
        ephemeral_gb,
        swap_mb,
        boot_from_volume,
    } = domain;
    let (root_type, root_uuid) = if *boot_from_volume {
        // nova 2024.2 and later; older releases write no <nova:root> for boot-from-volume.
        ("volume", " uuid=\"\"".to_string())
    } else {
        (
            "image",
            " uuid=\"a1b2c3d4-0000-4000-8000-000000000001\"".to_string(),
        )
    };
    let root_disk = if *boot_from_volume {
        "    <disk type='block' device='disk'>\n      <driver name='qemu' type='raw' cache='none' io='native'/>\n      <source dev='/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2010-10.org.openstack:volume-0000-lun-1'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n".to_string()
    } else {
        format!("    <disk type='block' device='disk'>\n      <driver name='qemu' type='raw' cache='none' io='native'/>\n      <source dev='/dev/{vg}/{uuid}_disk'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n")
    };
    format!(
        r#"<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit instance-{index:08x}
or other application using the libvirt API.
-->

<domain type='kvm'>
  <name>instance-{index:08x}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="27.1.0"/>
      <nova:name>{name}</nova:name>
      <nova:creationTime>2026-11-20 09:14:02</nova:creationTime>
      <nova:flavor name="{flavor}">
        <nova:memory>2048</nova:memory>
        <nova:disk>{root_gb}</nova:disk>
        <nova:swap>{swap_mb}</nova:swap>
        <nova:ephemeral>{ephemeral_gb}</nova:ephemeral>
        <nova:vcpus>2</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="5d3c1e0f9a2b4c6d8e7f1a2b3c4d5e6f">ops</nova:user>
        <nova:project uuid="9f8e7d6c5b4a49382716f5e4d3c2b1a0">demo</nova:project>
      </nova:owner>
      <nova:root type="{root_type}"{root_uuid}/>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{root_disk}    <interface type='bridge'>
      <mac address='fa:16:3e:12:34:{index:02x}'/>
      <source bridge='qbr-{index}'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"#
    )
}

/// Writes one domain XML per instance into `dir` as `instance-XXXXXXXX.xml`.
pub fn write_domains(dir: &Path, vg: &str, domains: &[Domain]) {
    std::fs::create_dir_all(dir).expect("xml dir");
    for (i, domain) in domains.iter().enumerate() {
        let index = i as u32 + 1;
        std::fs::write(
            dir.join(format!("instance-{index:08x}.xml")),
            nova_domain_xml(domain, vg, index),
        )
        .expect("write domain xml");
    }
}

/// Writes one domain XML per `(instance, flavor name)` into `dir` as `instance-XXXXXXXX.xml`.
pub fn write_domains_of_flavors(dir: &Path, vg: &str, domains: &[(Domain, &str)]) {
    std::fs::create_dir_all(dir).expect("xml dir");
    for (i, (domain, flavor)) in domains.iter().enumerate() {
        let index = i as u32 + 1;
        std::fs::write(
            dir.join(format!("instance-{index:08x}.xml")),
            nova_domain_xml_of_flavor(domain, flavor, vg, index),
        )
        .expect("write domain xml");
    }
}

/// A nova.conf for `vg` with the given reserve.
pub fn write_nova_conf(path: &Path, vg: &str, reserved_host_disk_mb: u64) {
    std::fs::write(
        path,
        format!(
            "[DEFAULT]\nhost = compute-test\nreserved_host_disk_mb = {reserved_host_disk_mb}\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {vg}\n"
        ),
    )
    .expect("write nova.conf");
}

/// Runs `promtool check metrics` on an exposition; returns what it printed (empty when clean).
pub fn promtool_check_metrics(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
    .trim()
    .to_string()
}

/// True when every program in `programs` is on the PATH (or an absolute path that exists).
/// Otherwise prints why and returns false, or panics under `CI=true` (scripts/install-test-deps
/// installs them).
pub fn programs_available(test: &str, programs: &[&str]) -> bool {
    let found = |program: &str| {
        if program.starts_with('/') {
            return Path::new(program).exists();
        }
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !found(p)).collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{} not installed (scripts/install-test-deps)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason}; under CI=true a skip is a failure");
    }
    eprintln!("\n!!! SKIPPING {test}: {reason} !!!\n");
    false
}

/// Polls `probe` every 200 ms until it returns `Some`, or panics after `timeout` with `what`
/// and `context()` (the logs of the servers involved, say).
pub fn wait_until<T>(
    timeout: std::time::Duration,
    what: &str,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by a test that loads the CPU (a flood of connections, bcrypt at a high cost) or measures
/// time, so that no two of them run side by side in one tier's binary. When every file was its
/// own binary only the tests of one file ran at once; a tier runs several files' tests together,
/// and a flood next door made a timing test flaky.
pub fn cpu_heavy() -> std::sync::MutexGuard<'static, ()> {
    CPU_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}
