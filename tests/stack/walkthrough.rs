//! The operator's walkthrough of issue 16, scripted so that the docs cannot drift from the tool:
//! docs/deployment.md's compute-node section followed literally on a real loop VG, as far as a
//! machine without systemd allows. The shell blocks are taken from the docs themselves and run
//! with a few rewrites, each of which must apply (a changed command fails here until the
//! walkthrough follows it): the system paths the docs install into go under a temporary root,
//! the sudoers rule goes to a test name in the real /etc/sudoers.d (sudo reads no other place)
//! and is checked with `visudo -cf` as documented, `systemctl`/`journalctl` are skipped. Then the
//! unit's command line is run by hand as "Without systemd" gives it (both the unprivileged user
//! with sudo and root without capabilities), and a real Prometheus loads the shipped rules,
//! shortened with the documented `scripts/shorten-for`, until the untracked alert fires.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::stack::{which, Prometheus};
use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const BINARY: &str = env!("CARGO_BIN_EXE_nova-lvm-exporter");
/// Where the walkthrough installs the documented sudoers rule (removed at the end).
const SUDOERS_PATH: &str = "/etc/sudoers.d/zz-nova-lvm-exporter-walkthrough";
const UUID_A: &str = "3f5e6c1a-1111-2222-3333-444455556666";

/// Taken by each test of this file that runs LVM: the runit test's VG and exporter must not
/// change LVM's state while the compute-node walkthrough reads it (one at a time, as an
/// operator would).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The text of the `## heading` section of a markdown document.
fn section<'a>(markdown: &'a str, heading: &str) -> &'a str {
    let start = markdown
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section \"## {heading}\""))
        + 1;
    let rest = &markdown[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |at| at + 4);
    &rest[..end]
}

/// The fenced blocks of `language` in a text, in order.
fn fenced_blocks(text: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == format!("```{language}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The one block containing `needle`.
fn block_with<'a>(blocks: &'a [String], needle: &str) -> &'a str {
    let found: Vec<&String> = blocks.iter().filter(|b| b.contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one documented block with {needle:?}, found {found:#?}"
    );
    found[0]
}

/// Textual rewrites of the documented commands; each must be used at least once.
struct Rewrites {
    rules: Vec<(&'static str, String, bool)>,
}

impl Rewrites {
    fn new(rules: &[(&'static str, &str)]) -> Self {
        Rewrites {
            rules: rules
                .iter()
                .map(|(from, to)| (*from, to.to_string(), false))
                .collect(),
        }
    }

    fn apply(&mut self, block: &str) -> String {
        let mut text = block.to_string();
        for (from, to, used) in &mut self.rules {
            if text.contains(*from) {
                text = text.replace(*from, to);
                *used = true;
            }
        }
        // Nothing documented may touch the machine's own service, doc or Prometheus files.
        for system in [
            "/usr/local/",
            "/usr/share/doc/",
            "/etc/systemd/",
            "/etc/default/",
            "/etc/prometheus/",
            "/etc/nova/",
        ] {
            for (at, _) in text.match_indices(system) {
                assert!(
                    text[..at].ends_with("$ROOT"),
                    "a documented command would write to the real {system}:\n{text}"
                );
            }
        }
        text
    }

    fn assert_all_used(&self) {
        let unused: Vec<&str> = self
            .rules
            .iter()
            .filter(|(_, _, used)| !used)
            .map(|(from, _, _)| *from)
            .collect();
        assert!(
            unused.is_empty(),
            "the docs no longer contain {unused:?}: update the walkthrough with them"
        );
    }
}

/// The environment every documented command runs in.
struct Walk {
    root: PathBuf,
    port: u16,
    host_opts: String,
}

impl Walk {
    fn command(&self, script: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(REPO)
            .env("ROOT", &self.root)
            .env("PORT", self.port.to_string())
            .env("HOST_OPTS", &self.host_opts)
            .env(
                "PATH",
                format!(
                    "{}/usr/local/bin:{}",
                    self.root.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs a documented block to completion; panics with its output when it fails.
    fn run(&self, what: &str, script: &str) -> String {
        let output = self.command(script).output().expect("run bash");
        let text = describe(&output);
        assert!(output.status.success(), "{what} failed:\n{script}\n{text}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts a documented foreground command line in its own process group, and waits until
    /// the exporter answers.
    fn start(&self, what: &str, script: &str) -> Foreground {
        let log = self.root.join(format!("{what}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command(script)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("start bash");
        let mut foreground = Foreground { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = foreground.child.try_wait() {
                panic!(
                    "{what} exited with {status}:\n{script}\n{}",
                    foreground.log()
                );
            }
            if get(self.port, "/healthz").is_ok_and(|(status, _)| status == 200) {
                return foreground;
            }
            assert!(
                Instant::now() < deadline,
                "{what} does not answer:\n{}",
                foreground.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A command line run by hand in the foreground; its whole process group is ended on drop.
struct Foreground {
    child: Child,
    log: PathBuf,
}

impl Foreground {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The sudoers rule the walkthrough installed, removed on drop.
struct SudoersRule;

impl Drop for SudoersRule {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(SUDOERS_PATH);
    }
}

/// What a plain scrape and the status page of the running exporter must show.
fn assert_serves_the_host(walk: &Walk, vg: &LoopVg, how: &str, collectors_checked: &str) {
    for collector in ["lvm", "libvirt"] {
        assert!(
            collectors_checked.contains(&format!(
                "nova_lvm_collector_success{{collector=\"{collector}\"}} 1"
            )),
            "{how}: the documented curl | grep does not show {collector} succeeding:\n{collectors_checked}"
        );
    }
    assert!(
        collectors_checked.contains(&format!("nova_lvm_drift_bytes{{vg=\"{}\"}}", vg.name)),
        "{how}:\n{collectors_checked}"
    );
    let (status, page) = get(walk.port, "/").unwrap();
    assert_eq!(status, 200, "{how}: {page}");
    assert!(
        page.contains("<h1>nova-lvm-exporter on compute-nw1</h1>"),
        "{how}: the status page must title the host with nova.conf's host:\n{page}"
    );
    assert_eq!(
        page.matches("<th>libvirt source").count(),
        1,
        "{how}: the libvirt source is listed once under Configuration:\n{page}"
    );
}

#[test]
fn the_compute_node_section_of_the_deployment_docs_works_as_written() {
    const TEST: &str = "walkthrough";
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !lvm_available(TEST)
        || !programs_available(
            TEST,
            &[
                "prometheus",
                "promtool",
                "sudo",
                "visudo",
                "runuser",
                "setpriv",
                "useradd",
                "curl",
            ],
        )
    {
        return;
    }
    let deployment = read("docs/deployment.md");
    let compute_node = fenced_blocks(section(&deployment, "Running it on a compute node"), "sh");
    let without_systemd = fenced_blocks(section(&deployment, "Without systemd"), "sh");
    let alerts_readme = read("alerts/README.md");
    let alerts_shell = fenced_blocks(&alerts_readme, "sh");
    let prometheus_yaml = fenced_blocks(section(&alerts_readme, "Setting them up"), "yaml");

    // The compute node: a VG with one instance and a 7 GiB LV nova does not know (5% of this
    // 20 GiB VG is 1 GiB: the untracked alert and check both warn), nova.conf naming the host.
    let vg = LoopVg::new("walk", 20);
    vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    vg.create_lv("someone_elses_lv", "7G");
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path().to_path_buf();
    for dir in [
        "etc/nova",
        "etc/default",
        "etc/systemd/system",
        "etc/nova-lvm-exporter",
        "etc/prometheus/rules",
        "usr/local/bin",
        "usr/share/doc",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(
        root.join("etc/nova/nova.conf"),
        format!(
            "[DEFAULT]\nhost = compute-nw1\n\n[libvirt]\nimages_type = lvm\nimages_volume_group = {}\n",
            vg.name
        ),
    )
    .unwrap();
    write_domains(
        &root.join("etc/libvirt/qemu"),
        &vg.name,
        &[Domain {
            uuid: UUID_A,
            name: "web-01",
            root_gb: 5,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    let port = free_port();
    let walk = Walk {
        host_opts: format!(
            "--nova.config-file={0}/etc/nova/nova.conf --collector.libvirt.xml-dir={0}/etc/libvirt/qemu",
            root.display()
        ),
        root: root.clone(),
        port,
    };
    let mut rewrites = Rewrites::new(&[
        (
            "cargo build --release --locked",
            ": the binary under test is the build",
        ),
        ("target/release/nova-lvm-exporter", BINARY),
        ("/usr/local/", "$ROOT/usr/local/"),
        ("/usr/share/doc/", "$ROOT/usr/share/doc/"),
        ("/etc/systemd/system/", "$ROOT/etc/systemd/system/"),
        (
            "systemctl daemon-reload && systemctl enable --now nova-lvm-exporter",
            ": systemd does not run here",
        ),
        ("/etc/sudoers.d/nova-lvm-exporter", SUDOERS_PATH),
        ("/etc/nova/nova.conf", "$ROOT/etc/nova/nova.conf"),
        (
            "/etc/default/nova-lvm-exporter",
            "$ROOT/etc/default/nova-lvm-exporter",
        ),
        ("localhost:10061", "127.0.0.1:$PORT"),
        (
            "journalctl -u nova-lvm-exporter -n 20",
            ": no journal without systemd",
        ),
        ("/etc/prometheus/rules/", "$ROOT/etc/prometheus/rules/"),
        ("scripts/shorten-for 2m", "scripts/shorten-for 2s 1s"),
        // Step 2: "Options for other paths ... go on this command line first".
        (
            "nova-lvm-exporter report\n",
            "nova-lvm-exporter report $HOST_OPTS\n",
        ),
    ]);

    // 1. Build and install the binary (the man page and the documents too).
    let install = rewrites.apply(block_with(&compute_node, "cargo build --release"));
    walk.run("step 1, install", &install);
    let installed = root.join("usr/local/bin/nova-lvm-exporter");
    assert!(installed.is_file());
    assert!(root
        .join("usr/local/share/man/man1/nova-lvm-exporter.1")
        .metadata()
        .is_ok_and(|m| m.len() > 1000));

    // 2. Check what it sees, as root.
    let report = rewrites.apply(block_with(&compute_node, "nova-lvm-exporter report"));
    let text = walk.run("step 2, report", &report);
    assert!(
        text.starts_with("nova-lvm-exporter report for compute-nw1,"),
        "report titles the host with nova.conf's host:\n{text}"
    );
    assert!(
        text.contains(&format!("VG {} (nova's VG", vg.name)),
        "{text}"
    );
    assert!(text.contains("someone_elses_lv"), "{text}");

    // 3. Install the service: the root drop-in, then the unprivileged user with the sudo rule.
    let service_root = rewrites.apply(block_with(&compute_node, "root.conf"));
    walk.run("step 3, the service with the root drop-in", &service_root);
    let unit_path = root.join("etc/systemd/system/nova-lvm-exporter.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let dropin = std::fs::read_to_string(
        root.join("etc/systemd/system/nova-lvm-exporter.service.d/root.conf"),
    )
    .unwrap();
    let documentation = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation=file://"))
        .expect("the unit's Documentation=");
    assert!(
        root.join(documentation.trim_start_matches('/')).is_file(),
        "step 1 installs no {documentation}, which the unit's Documentation= names"
    );

    // The tree the unprivileged user reads (libvirt's own files are root's; see sources.md).
    run("chmod", &["-R", "a+rX", root.to_str().unwrap()]);
    let _sudoers = SudoersRule;
    let service_user = rewrites.apply(block_with(&compute_node, "useradd"));
    let out = walk.run("step 3, the user and the sudo rule", &service_user);
    assert!(out.contains("nova.conf is readable"), "{out}");

    // Without systemd: the unit's EnvironmentFile and ExecStart by hand, as the docs give them.
    let by_hand = block_with(&without_systemd, "setpriv");
    let exec_start = |unit: &str| -> String {
        unit.lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .rfind(|l| !l.is_empty())
            .expect("ExecStart")
            .to_string()
    };
    let runuser_line = by_hand
        .lines()
        .find(|l| l.starts_with("runuser "))
        .expect("the runuser line");
    let setpriv_line = by_hand
        .lines()
        .find(|l| l.starts_with("setpriv "))
        .expect("the setpriv line");
    assert!(
        runuser_line.starts_with("runuser -u nova-lvm-exporter -- ")
            && runuser_line.ends_with(&exec_start(&unit))
            && unit.contains("\nUser=nova-lvm-exporter\n"),
        "the documented runuser line is not the unit's User= and ExecStart=:\n{runuser_line}"
    );
    assert!(
        setpriv_line.ends_with(&exec_start(&dropin))
            && setpriv_line.contains("--no-new-privs")
            && setpriv_line.contains("--bounding-set=-all")
            && dropin.contains("\nNoNewPrivileges=yes\n")
            && dropin.contains("\nCapabilityBoundingSet=\n"),
        "the documented setpriv line is not root.conf's ExecStart= and limits:\n{setpriv_line}"
    );
    let environment_file = unit
        .lines()
        .find_map(|l| l.strip_prefix("EnvironmentFile=-"))
        .expect("EnvironmentFile=");
    assert!(
        by_hand.contains(&format!(". {environment_file};")),
        "{by_hand}"
    );
    let preamble: String = by_hand
        .lines()
        .filter(|l| !l.starts_with("runuser ") && !l.starts_with("setpriv "))
        .map(|l| format!("{l}\n"))
        .collect();

    // The options file, as the docs name it: a configuration file in /etc/nova-lvm-exporter.
    let opts = deployment
        .split('`')
        .find(|s| s.starts_with("NOVA_LVM_EXPORTER_OPTS=\"--config.file="))
        .expect("the documented NOVA_LVM_EXPORTER_OPTS with --config.file")
        .replace(
            "/etc/nova-lvm-exporter/",
            &format!("{}/etc/nova-lvm-exporter/", root.display()),
        );
    std::fs::write(
        root.join("etc/default/nova-lvm-exporter"),
        format!("{opts}\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/nova-lvm-exporter/config.toml"),
        format!(
            "[web]\nlisten-address = \"127.0.0.1:{port}\"\n\n[nova]\nconfig-file = \"{0}/etc/nova/nova.conf\"\n\n[collector.libvirt]\nxml-dir = \"{0}/etc/libvirt/qemu\"\n",
            root.display()
        ),
    )
    .unwrap();
    run("chmod", &["-R", "a+rX", root.to_str().unwrap()]);
    let check_service = rewrites.apply(block_with(&compute_node, "curl -s localhost:10061"));

    // As shipped: the unprivileged user, LVM through the sudo rule.
    {
        let script = rewrites.apply(&format!("{preamble}exec {runuser_line}\n"));
        let exporter = walk.start("the unit by hand (runuser)", &script);
        let out = walk.run("step 4 (runuser)", &check_service);
        assert_serves_the_host(&walk, &vg, "runuser", &out);
        drop(exporter);
    }

    // As with root.conf: root without capabilities; Prometheus scrapes this one.
    let script = rewrites.apply(&format!("{preamble}exec {setpriv_line}\n"));
    let exporter = walk.start("the unit by hand (setpriv)", &script);
    let out = walk.run("step 4 (setpriv)", &check_service);
    assert_serves_the_host(&walk, &vg, "setpriv", &out);

    // check, as report-and-check.md runs it, warns as the alert will.
    let output = walk
        .command("nova-lvm-exporter check $HOST_OPTS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let line = String::from_utf8_lossy(&output.stdout);
    assert!(
        line.starts_with("NOVA-LVM WARNING - ") && line.contains("untracked 7.00 GiB >= "),
        "{line}"
    );

    // Prometheus with the shipped rules, shortened the documented way.
    let shorten = rewrites.apply(block_with(&alerts_shell, "scripts/shorten-for"));
    walk.run("shorten-for and promtool", &shorten);
    rewrites.assert_all_used();
    let rules =
        std::fs::read_to_string(root.join("etc/prometheus/rules/nova-lvm.rules.yml")).unwrap();
    assert!(rules.contains("for: 2s") && !rules.contains("for: 15m"));
    let prometheus_config = prometheus_yaml
        .first()
        .expect("alerts/README.md's prometheus.yml")
        .replace(
            "/etc/prometheus/rules/nova-lvm.rules.yml",
            "nova-lvm.rules.yml",
        )
        .replace("compute-07:10061", &format!("127.0.0.1:{port}"));
    let config =
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{prometheus_config}");
    let prometheus = Prometheus::start(
        &which("prometheus").unwrap(),
        &config,
        &[("nova-lvm.rules.yml", &rules)],
    );
    let query = format!(
        "ALERTS{{alertname=\"NovaLvmUntrackedConsumption\",alertstate=\"firing\",vg=\"{}\",instance=\"127.0.0.1:{port}\",availability_zone=\"az1\"}}",
        vg.name
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if prometheus.query(&query).is_ok_and(|r| !r.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "NovaLvmUntrackedConsumption did not fire within 90 s ({query}):\nprometheus:\n{}\nexporter:\n{}",
            prometheus.service.log(),
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The pid runsv supervises in `service` (its `supervise/pid`), once the exporter answers.
fn runit_pid(service: &Path, port: u16, not: Option<u32>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid = std::fs::read_to_string(service.join("supervise/pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|&p| Some(p) != not);
        if let Some(pid) = pid {
            if get(port, "/healthz").is_ok_and(|(status, _)| status == 200) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "runsv did not bring the exporter up in 30 s (pid {pid:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_runit_run_script_of_the_docs_serves_the_host_and_is_restarted() {
    const TEST: &str = "runit";
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !lvm_available(TEST) || !programs_available(TEST, &["runsv", "sv", "setpriv"]) {
        return;
    }
    let deployment = read("docs/deployment.md");
    let documented = fenced_blocks(section(&deployment, "Under runit"), "sh");
    let run_script = block_with(&documented, "exec setpriv");
    let vg = LoopVg::new("runit", 20);
    vg.create_lv(&format!("{UUID_A}_disk"), "5G");
    vg.create_lv("someone_elses_lv", "3G");
    let dir = tempfile::tempdir().unwrap();
    write_nova_conf(&dir.path().join("nova.conf"), &vg.name, 1024);
    write_domains(
        &dir.path().join("qemu"),
        &vg.name,
        &[Domain {
            uuid: UUID_A,
            name: "web-01",
            root_gb: 5,
            ephemeral_gb: 0,
            swap_mb: 0,
            boot_from_volume: false,
        }],
    );
    let port = free_port();
    let defaults = dir.path().join("default");
    std::fs::write(
        &defaults,
        format!(
            "NOVA_LVM_EXPORTER_OPTS=\"--web.listen-address=127.0.0.1:{port} --nova.config-file={0}/nova.conf --collector.libvirt.xml-dir={0}/qemu\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut rewrites = Rewrites::new(&[
        ("/usr/bin/nova-lvm-exporter", BINARY),
        (
            "/etc/default/nova-lvm-exporter",
            &defaults.display().to_string(),
        ),
    ]);
    let script = rewrites.apply(run_script);
    rewrites.assert_all_used();
    let service = dir.path().join("sv/nova-lvm-exporter");
    std::fs::create_dir_all(&service).unwrap();
    std::fs::write(service.join("run"), &script).unwrap();
    std::fs::set_permissions(
        service.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("runsv.log")).unwrap();
    let runsv = Command::new(which("runsv").unwrap())
        .arg(&service)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start runsv");
    let _runsv = Foreground {
        child: runsv,
        log: dir.path().join("runsv.log"),
    };

    let first = runit_pid(&service, port, None);
    let (status, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200, "{metrics}");
    let m = Exposition::parse(&metrics);
    for collector in ["lvm", "libvirt"] {
        assert_eq!(
            m.value(&format!(
                "nova_lvm_collector_success{{collector=\"{collector}\"}}"
            )),
            1.0,
            "{metrics}"
        );
    }
    assert_eq!(
        m.value(&format!(
            "nova_lvm_untracked_bytes{{cause=\"foreign\",vg=\"{}\"}}",
            vg.name
        )),
        (3 * GIB) as f64
    );
    // The exporter dies: runit starts it again.
    let killed = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let second = runit_pid(&service, port, Some(first));
    assert_ne!(first, second);
    // Down for good (runit stops it and does not restart it) before the VG goes.
    let down = Command::new(which("sv").expect("runit's sv"))
        .args(["-w", "10", "down"])
        .arg(&service)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", describe(&down));
    assert!(
        get(port, "/healthz").is_err(),
        "still serving after sv down"
    );
}

#[test]
fn the_kolla_config_json_of_the_docs_is_what_kolla_start_reads_and_its_command_is_valid() {
    let deployment = read("docs/deployment.md");
    let start = deployment
        .find("\n### kolla-ansible\n")
        .expect("a kolla-ansible section");
    let blocks = fenced_blocks(&deployment[start..], "json");
    let config: serde_json::Value =
        serde_json::from_str(blocks.first().expect("its config.json")).expect("valid JSON");
    let command = config["command"].as_str().expect("a command string");
    let files = config["config_files"].as_array().expect("config_files");
    assert!(!files.is_empty());
    for file in files {
        for key in ["source", "dest", "owner", "perm"] {
            assert!(file[key].is_string(), "{key} missing in {file}");
        }
        let perm = file["perm"].as_str().unwrap();
        assert!(
            perm.len() == 4 && u32::from_str_radix(perm, 8).is_ok(),
            "{perm}"
        );
        assert!(file["source"]
            .as_str()
            .unwrap()
            .starts_with("/var/lib/kolla/config_files/"));
    }
    // The command line, with the container's paths made real, passes --config.check.
    let dir = tempfile::tempdir().unwrap();
    write_nova_conf(&dir.path().join("nova.conf"), "vms", 1024);
    std::fs::create_dir(dir.path().join("qemu")).unwrap();
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("nova-lvm-exporter"));
    let args: Vec<String> = words
        .map(|w| {
            w.replace(
                "/etc/nova/nova.conf",
                &dir.path().join("nova.conf").display().to_string(),
            )
            .replace(
                "/etc/libvirt/qemu",
                &dir.path().join("qemu").display().to_string(),
            )
        })
        .collect();
    let out = Command::new(BINARY)
        .args(&args)
        .arg("--config.check")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    // Each file it copies lands where the command reads it.
    let dests: Vec<&str> = files.iter().filter_map(|f| f["dest"].as_str()).collect();
    assert!(dests.contains(&"/etc/nova/nova.conf"), "{dests:?}");
    assert!(command.contains("--nova.config-file=/etc/nova/nova.conf"));
}
