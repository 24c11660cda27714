//! What the exporter knows about running LVM: the `lvm fullreport` command line, the command
//! prefix (`sudo -n`), LVM's I/O mode, and how an exit status, stdout and stderr become a
//! [`VgReport`] or an [`LvmError`]. Starting, bounding, timing out and reaping the process is
//! [`super::process`]'s job; the seccomp filter behind [`IoMode::Sync`] is [`super::sync_io`]'s.
//!
//! One collection is one process: `lvm fullreport -a` with an explicit field list per
//! sub-report, `--reportformat json --units b --nosuffix`, the VG names after `--`, and
//! `--config log{report_command_log=0}backup{backup=0}report{time_format=%s}`: with
//! `log/report_command_log = 1` in lvm.conf, LVM 2.03.16 appends a `log` section that ends in a
//! trailing comma, which is not JSON; with backups on, every report reads and parses
//! `/etc/lvm/backup/<VG>` to check that LVM's backup is current (8% of the CPU of a scrape of a
//! 200-LV VG in a perf profile), which is LVM's own housekeeping, not something a monitoring read
//! should do; and `lv_time` follows lvm.conf's `report/time_format` (a strftime format, by default
//! `%Y-%m-%d %T %z`, in the local time zone), so it is forced to `%s`, seconds since the epoch,
//! whatever the operator configured (an LV without a creation time stays empty); the value is
//! unquoted, which LVM's config syntax allows, so that the sudoers rule needs no quotes. `vgs` and
//! `lvs -a` would take two processes for the same rows; LVM's start-up and device scan dominate
//! either, so one process halves the LVM time of a scrape (measured in `scripts/bench`). LVM
//! runs without a shell, with `LC_ALL=C`, and is killed (its whole process group) after the
//! timeout.
//!
//! **Synchronous I/O.** LVM reads devices with Linux AIO by default, and tearing its AIO context
//! down (`io_destroy`) waits for an RCU grace period: about 35 ms of a 54 ms `vgs` on the
//! machines this was measured on, more than all the reading itself. AIO only pays off when
//! scanning hundreds of slow disks (lvm2 issue #20), not a compute node's handful. `use_aio` is
//! read before `--config` takes effect, so the exporter cannot turn it off per command; instead,
//! when it runs LVM itself (no command prefix), it starts LVM with a seccomp filter that answers
//! `io_setup` with `ENOSYS`. LVM then says "Failed to set up async io, using sync io" (dropped as
//! noise) and reads with plain `pread`. Nothing else is filtered. With a command prefix such as
//! `sudo -n` this cannot be done (a seccomp filter needs `no_new_privs`, which stops sudo), so
//! set `use_aio = 0` in lvm.conf's `global` section there for the same gain.
//!
//! What this module verified against LVM 2.03.16 on a loop device (`tests/lvm/lvm_exec.rs`):
//! - LVM prints `/dev/mapper/control: open failed` (and more) on stderr when the kernel has no
//!   device-mapper, and still exits 0: stderr is logged at debug, success is judged by the exit
//!   status and the parsed output.
//! - Given a VG that does not exist, `lvm fullreport` exits 5 with `Volume group "x" not found`
//!   on stderr but still prints the report of the VGs it found (`"report": []` when none): that
//!   report is kept, and the collector reports the missing VG.
//! - `fullreport` reports empty VGs, hidden LVs (`-a`) and one `lv` row per LV; segment types
//!   come from its `seg` sub-report (see [`report`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::process::{self, describe_status, display_command, RunError, Supervision};
use super::report::{self, Sections};
use super::sync_io::SyncIoFilter;
use super::{LvmError, RawSource, VgReport};

/// The `vg` sub-report's fields.
pub const VG_FIELDS: &str = "vg_name,vg_size,vg_free,vg_extent_size";
/// The `lv` sub-report's fields. `lv_uuid` links an LV to its segments; rows are de-duplicated on
/// (VG, LV name), which LVM keeps unique within a VG (see [`report`]).
pub const LV_FIELDS: &str =
    "lv_name,lv_size,lv_attr,pool_lv,lv_parent,data_percent,metadata_percent,lv_time,lv_tags,lv_uuid";
/// The `seg` sub-report's fields: the segment type of each LV.
pub const SEG_FIELDS: &str = "lv_uuid,segtype";
/// The `pv` and `pvseg` sub-reports cannot be left out of a fullreport; one cheap field each.
const PV_FIELDS: &str = "pv_uuid";
/// The `pv` sub-report's fields when the metadata reader asks which devices hold a VG's PVs.
pub const PV_DISCOVERY_FIELDS: &str = "pv_name,pv_uuid";
const PVSEG_FIELDS: &str = "pvseg_start";
/// Turns off LVM's command log section, which LVM 2.03.16 prints as invalid JSON, and the
/// check of LVM's metadata backup file; prints `lv_time` as seconds since the epoch.
const REPORT_CONFIG: &str = "log{report_command_log=0}backup{backup=0}report{time_format=%s}";
/// What LVM says when it falls back to synchronous I/O (see the module docs).
const SYNC_IO_NOTICE: &str = "Failed to set up async io, using sync io";
/// Most stdout read from one command; more is drained and the command fails.
const STDOUT_CAP: usize = 64 << 20;
/// Most stderr kept from one command; more is drained.
const STDERR_CAP: usize = 1 << 20;
/// How an LVM command is supervised: its output bounds, and its name in log lines.
const SUPERVISION: Supervision = Supervision {
    stdout_cap: STDOUT_CAP,
    stderr_cap: STDERR_CAP,
    what: "LVM command",
};
/// How many meaningful stderr lines a failure carries.
const STDERR_LINES: usize = 2;

/// How LVM is asked to read devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// LVM's own choice (lvm.conf `global/use_aio`, AIO by default).
    LvmDefault,
    /// Synchronous reads: `io_setup` fails with `ENOSYS` under a seccomp filter.
    Sync,
}

/// The live LVM tools as a [`RawSource`].
#[derive(Debug, Clone)]
pub struct LvmCommand {
    lvm_path: PathBuf,
    command_prefix: Vec<String>,
    timeout: Duration,
    /// The probed seccomp filter when [`IoMode::Sync`] is in effect.
    sync_io_filter: Option<SyncIoFilter>,
}

impl LvmCommand {
    /// Runs `lvm_path` behind `command_prefix` (e.g. `sudo -n`), killed after `timeout`.
    /// [`IoMode::Sync`] applies only without a prefix (see the module docs); check
    /// [`LvmCommand::io_mode`] for what is in effect.
    pub fn new(
        lvm_path: PathBuf,
        command_prefix: Vec<String>,
        timeout: Duration,
        io_mode: IoMode,
    ) -> Self {
        let sync_io_filter = match io_mode {
            IoMode::Sync if command_prefix.is_empty() => match SyncIoFilter::probed() {
                Ok(filter) => Some(filter),
                Err(error) => {
                    tracing::warn!(%error, "LVM keeps its own I/O mode: cannot start it with synchronous I/O here");
                    None
                }
            },
            _ => None,
        };
        Self {
            lvm_path,
            command_prefix,
            timeout,
            sync_io_filter,
        }
    }

    /// The I/O mode LVM is started with.
    pub fn io_mode(&self) -> IoMode {
        if self.sync_io_filter.is_some() {
            IoMode::Sync
        } else {
            IoMode::LvmDefault
        }
    }

    /// The arguments given to `lvm` for `vg_names`.
    pub fn fullreport_args(vg_names: &[String]) -> Vec<String> {
        Self::fullreport_args_with(vg_names, PV_FIELDS)
    }

    /// The arguments of a fullreport whose `pv` sub-report has `pv_fields`.
    fn fullreport_args_with(vg_names: &[String], pv_fields: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "fullreport",
            "-a",
            "--config",
            REPORT_CONFIG,
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "--configreport",
            "vg",
            "-o",
            VG_FIELDS,
            "--configreport",
            "lv",
            "-o",
            LV_FIELDS,
            "--configreport",
            "seg",
            "-o",
            SEG_FIELDS,
            "--configreport",
            "pv",
            "-o",
            pv_fields,
            "--configreport",
            "pvseg",
            "-o",
            PVSEG_FIELDS,
            "--",
        ]
        .map(str::to_string)
        .to_vec();
        args.extend(vg_names.iter().cloned());
        args
    }

    /// The program to start and its arguments: the prefix (if any), then the binary, then `args`.
    fn argv(&self, args: Vec<String>) -> (OsString, Vec<OsString>) {
        let mut argv: Vec<OsString> = self.command_prefix.iter().map(OsString::from).collect();
        argv.push(self.lvm_path.as_os_str().to_owned());
        argv.extend(args.into_iter().map(OsString::from));
        let program = argv.remove(0);
        (program, argv)
    }

    /// Runs one command until it exits or `deadline` passes.
    async fn run(&self, args: Vec<String>, deadline: Instant) -> Result<Output, LvmError> {
        let (program, args) = self.argv(args);
        let command = display_command(&program, &args);
        let timeout_error = |said: String| LvmError::Timeout {
            command: command.clone(),
            timeout_ms: self.timeout.as_millis(),
            said,
        };
        let started = Instant::now();
        let mut builder = tokio::process::Command::new(&program);
        builder
            .args(&args)
            .env("LC_ALL", "C")
            .env("LVM_SUPPRESS_FD_WARNINGS", "1");
        if let Some(filter) = &self.sync_io_filter {
            filter.install(&mut builder);
        }
        match process::run(builder, &command, deadline, SUPERVISION).await {
            Ok(finished) => {
                tracing::debug!(
                    command = %command,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    status = %describe_status(finished.status),
                    stdout_bytes = finished.stdout.len(),
                    "LVM command finished"
                );
                Ok(Output {
                    command,
                    status: finished.status,
                    stdout: finished.stdout,
                    stdout_truncated: finished.stdout_truncated,
                    stderr: finished.stderr,
                })
            }
            Err(RunError::DeadlinePassed) => Err(timeout_error(String::new())),
            Err(RunError::Spawn(source)) => Err(LvmError::Spawn { command, source }),
            Err(RunError::NotCaptured) => Err(LvmError::Failed {
                command,
                status: "not started".to_string(),
                stderr: "stdout/stderr were not captured".to_string(),
            }),
            Err(RunError::Io(io_error)) => Err(LvmError::Failed {
                command,
                status: "unknown".to_string(),
                stderr: format!("reading its output failed: {io_error}"),
            }),
            Err(RunError::TimedOut { stderr }) => {
                let said = meaningful_stderr(&String::from_utf8_lossy(&stderr));
                tracing::debug!(
                    command = %command,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "LVM command killed after the timeout"
                );
                Err(timeout_error(said))
            }
        }
    }
}

#[async_trait]
impl RawSource for LvmCommand {
    /// Runs `lvm fullreport -a` for `vg_names`; with no names, runs nothing and reports nothing
    /// (without names LVM would report every VG on the host).
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        if vg_names.is_empty() {
            return Ok(VgReport::default());
        }
        let deadline = Instant::now() + self.timeout;
        let output = self.run(Self::fullreport_args(vg_names), deadline).await?;
        Ok(interpret(output)?.report)
    }
}

impl LvmCommand {
    /// How long one LVM command may run before it is killed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True when LVM runs behind a command prefix (e.g. `sudo -n`).
    pub fn has_prefix(&self) -> bool {
        !self.command_prefix.is_empty()
    }

    /// One `lvm fullreport` for `vg_names` whose `pv` sub-report also names each PV's device and
    /// UUID: the same report as [`RawSource::collect`], plus the PVs LVM read.
    pub async fn collect_with_pvs(
        &self,
        vg_names: &[String],
    ) -> Result<(VgReport, Vec<report::PvRow>), LvmError> {
        if vg_names.is_empty() {
            return Ok((VgReport::default(), Vec::new()));
        }
        let deadline = Instant::now() + self.timeout;
        let args = Self::fullreport_args_with(vg_names, PV_DISCOVERY_FIELDS);
        let output = self.run(args, deadline).await?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let command = output.command.clone();
        let report = interpret(output)?.report;
        let pvs = report::parse_pv_rows(&text, &command)?;
        Ok((report, pvs))
    }
}

/// What one finished command left behind.
struct Output {
    command: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stdout_truncated: bool,
    stderr: Vec<u8>,
}

/// Judges a finished command by its exit status and its parsed output.
fn interpret(out: Output) -> Result<Sections, LvmError> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        tracing::debug!(command = %out.command, stderr = %stderr.trim_end(), "LVM stderr");
    }
    if out.stdout_truncated {
        return Err(LvmError::Parse {
            origin: out.command,
            message: format!("output larger than {} MiB, not parsed", STDOUT_CAP >> 20),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `"report": []` is a valid answer (no requested VG exists); a document without a `report`
    // array, or whose elements lack a `vg` section, is not a fullreport.
    let parsed = report::parse_sections(&stdout, &out.command).and_then(|sections| {
        if sections.has_report_array && (sections.has_vg_section || sections.elements == 0) {
            Ok(sections)
        } else {
            Err(LvmError::Parse {
                origin: out.command.clone(),
                message: "no report with a vg section: not an lvm fullreport JSON report"
                    .to_string(),
            })
        }
    });
    match parsed {
        Ok(sections) => {
            if !out.status.success() {
                tracing::debug!(
                    command = %out.command,
                    status = %describe_status(out.status),
                    "LVM exited unsuccessfully but printed a report; keeping it (a requested VG is probably missing)"
                );
            }
            Ok(sections)
        }
        Err(error) if out.status.success() => Err(error),
        Err(error) => {
            let mut stderr = meaningful_stderr(&stderr);
            if stderr.is_empty() {
                stderr = match error {
                    LvmError::Parse { message, .. } if !stdout.trim().is_empty() => {
                        format!("nothing on stderr; stdout: {message}")
                    }
                    _ => "nothing on stderr or stdout".to_string(),
                };
            }
            Err(LvmError::Failed {
                command: out.command,
                status: describe_status(out.status),
                stderr,
            })
        }
    }
}

/// The last [`STDERR_LINES`] stderr lines that say something, without the noise LVM prints on
/// every run of a host without device-mapper or with leaked file descriptors.
fn meaningful_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_noise(line))
        .collect();
    let mut joined = lines[lines.len().saturating_sub(STDERR_LINES)..].join("; ");
    if joined.len() > 1000 {
        let mut end = 1000;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        joined.truncate(end);
        joined.push_str("...");
    }
    joined
}

fn is_noise(line: &str) -> bool {
    const NOISE: [&str; 5] = [
        SYNC_IO_NOTICE,
        "/dev/mapper/control: open failed",
        "Failure to communicate with kernel device-mapper driver",
        "Check that device-mapper is available in the kernel",
        "Incompatible libdevmapper",
    ];
    NOISE.iter().any(|noise| line.starts_with(noise))
        || (line.starts_with("File descriptor ") && line.contains(" leaked on "))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant as StdInstant;

    use super::super::process::testing::{group_gone, SPAWN_LOCK};
    use super::super::process::TERM_GRACE;
    use super::*;
    use std::path::Path;

    /// A fullreport of one VG with one LV and its segment.
    const REPORT_JSON: &str = r#"{"report":[{"vg":[{"vg_name":"vms-group","vg_size":"1000","vg_free":"400","vg_extent_size":"100"}],"pv":[],"lv":[{"lv_name":"a","lv_size":"600","lv_uuid":"u-a"}],"pvseg":[],"seg":[{"lv_uuid":"u-a","segtype":"linear"}]}]}"#;

    async fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let _guard = SPAWN_LOCK.write().await;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    async fn collect(command: &LvmCommand, vgs: &[&str]) -> Result<VgReport, LvmError> {
        let _guard = SPAWN_LOCK.read().await;
        let names: Vec<String> = vgs.iter().map(|s| s.to_string()).collect();
        command.collect(&names).await
    }

    fn command(lvm: &Path, timeout: Duration) -> LvmCommand {
        LvmCommand::new(lvm.to_path_buf(), vec![], timeout, IoMode::LvmDefault)
    }

    /// A fake lvm printing a fixed report and recording its arguments, environment and stdin.
    async fn fake_lvm(dir: &Path) -> PathBuf {
        let body = format!(
            "printf '%s\\n' \"$@\" >> {dir}/lvm.args\nenv > {dir}/lvm.env\nif read -r line; then echo stdin-not-null > {dir}/lvm.stdin; fi\necho '{REPORT_JSON}'",
            dir = dir.display()
        );
        script(dir, "lvm", &body).await
    }

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[tokio::test]
    async fn runs_one_fullreport_with_fixed_arguments_and_c_locale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = fake_lvm(dir.path()).await;
        let report = collect(&command(&lvm, Duration::from_secs(10)), &["vms-group", "b"])
            .await
            .expect("collects");
        assert_eq!(report.vgs.len(), 1);
        assert_eq!(report.vgs[0].free_bytes, 400);
        assert_eq!(report.lvs.len(), 1);
        assert_eq!(report.lvs[0].size_bytes, 600);
        assert_eq!(report.lvs[0].vg, "vms-group");
        assert_eq!(report.lvs[0].segtype, "linear");

        let args = read(dir.path().join("lvm.args"));
        assert_eq!(
            args.lines().collect::<Vec<_>>(),
            [
                "fullreport",
                "-a",
                "--config",
                "log{report_command_log=0}backup{backup=0}report{time_format=%s}",
                "--reportformat",
                "json",
                "--units",
                "b",
                "--nosuffix",
                "--configreport",
                "vg",
                "-o",
                "vg_name,vg_size,vg_free,vg_extent_size",
                "--configreport",
                "lv",
                "-o",
                "lv_name,lv_size,lv_attr,pool_lv,lv_parent,data_percent,metadata_percent,lv_time,lv_tags,lv_uuid",
                "--configreport",
                "seg",
                "-o",
                "lv_uuid,segtype",
                "--configreport",
                "pv",
                "-o",
                "pv_uuid",
                "--configreport",
                "pvseg",
                "-o",
                "pvseg_start",
                "--",
                "vms-group",
                "b"
            ],
            "one process per collection"
        );
        let env = read(dir.path().join("lvm.env"));
        assert!(env.lines().any(|l| l == "LC_ALL=C"), "{env}");
        assert!(
            env.lines().any(|l| l == "LVM_SUPPRESS_FD_WARNINGS=1"),
            "{env}"
        );
        assert!(
            !dir.path().join("lvm.stdin").exists(),
            "lvm got a readable stdin"
        );
    }

    #[tokio::test]
    async fn no_vg_names_runs_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = fake_lvm(dir.path()).await;
        let report = collect(&command(&lvm, Duration::from_secs(10)), &[])
            .await
            .expect("collects");
        assert_eq!(report, VgReport::default());
        assert!(!dir.path().join("lvm.args").exists());
    }

    #[tokio::test]
    async fn command_prefix_is_honoured_and_rules_out_sync_io() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = script(
            dir.path(),
            "lvm",
            &format!(
                "echo \"$PREFIXED $0\" >> {}/prefix.log\necho '{REPORT_JSON}'",
                dir.path().display()
            ),
        )
        .await;
        let cmd = LvmCommand::new(
            lvm.clone(),
            vec!["/usr/bin/env".into(), "PREFIXED=yes".into()],
            Duration::from_secs(10),
            IoMode::Sync,
        );
        // A seccomp filter needs no_new_privs, which would stop a setuid prefix such as sudo.
        assert_eq!(cmd.io_mode(), IoMode::LvmDefault);
        collect(&cmd, &["vms-group"]).await.expect("collects");
        assert_eq!(
            read(dir.path().join("prefix.log")),
            format!("yes {}\n", lvm.display())
        );
    }

    /// Whether `libaio.so.1` (a dependency of lvm2) and python3 are there to probe `io_setup`
    /// from a child; in CI they must be.
    fn aio_probe_available() -> bool {
        let python = Path::new("/usr/bin/python3").exists();
        let libaio = [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib",
        ]
        .iter()
        .chain(["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"].iter())
        .any(|dir| {
            Path::new(dir).join("libaio.so.1").exists()
                || Path::new(dir).join("libaio.so.1t64").exists()
        });
        if python && libaio {
            return true;
        }
        let why = format!("python3 present: {python}, libaio.so.1 present: {libaio}");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the synchronous I/O test must run in CI but cannot: {why}");
        }
        eprintln!("SKIPPING the synchronous I/O test: {why}");
        false
    }

    #[tokio::test]
    async fn sync_io_refuses_io_setup_in_the_child_only() {
        if !aio_probe_available() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // What LVM's bcache does first: io_setup through libaio, which returns -errno.
        let probe = "import ctypes, ctypes.util\nname = ctypes.util.find_library('aio') or 'libaio.so.1'\naio = ctypes.CDLL(name)\nctx = ctypes.c_void_p(0)\nrc = aio.io_setup(8, ctypes.byref(ctx))\nif rc == 0:\n    aio.io_destroy(ctx)\nprint(rc)";
        std::fs::write(dir.path().join("probe.py"), probe).expect("probe");
        let lvm = script(
            dir.path(),
            "lvm",
            &format!(
                "python3 {d}/probe.py > {d}/io_setup.rc\necho '{REPORT_JSON}'",
                d = dir.path().display()
            ),
        )
        .await;
        let rc = |mode: IoMode| {
            let lvm = lvm.clone();
            let path = dir.path().join("io_setup.rc");
            async move {
                let cmd = LvmCommand::new(lvm, vec![], Duration::from_secs(20), mode);
                assert_eq!(cmd.io_mode(), mode);
                collect(&cmd, &["vms-group"]).await.expect("collects");
                read(path).trim().to_string()
            }
        };
        assert_eq!(rc(IoMode::Sync).await, (-libc::ENOSYS).to_string());
        assert_eq!(rc(IoMode::LvmDefault).await, "0");
        // The exporter itself is not filtered.
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes one aio_context_t to `ctx`, which outlives the call; the
        // context is destroyed right after.
        let rc = unsafe { libc::syscall(libc::SYS_io_setup, 1, &mut ctx as *mut libc::c_ulong) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        // SAFETY: `ctx` is the context io_setup just created.
        unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
    }

    /// Builds an `LvmCommand` with [`IoMode::Sync`] on a thread that runs under a seccomp filter
    /// answering `seccomp` itself with `action` (as a sandbox would), and says which mode won.
    fn io_mode_under_a_sandbox(action: seccompiler::SeccompAction) -> IoMode {
        std::thread::spawn(move || {
            let arch = seccompiler::TargetArch::try_from(std::env::consts::ARCH).expect("arch");
            let sandbox: seccompiler::BpfProgram = seccompiler::SeccompFilter::new(
                std::collections::BTreeMap::from([(libc::SYS_seccomp, Vec::new())]),
                seccompiler::SeccompAction::Allow,
                action,
                arch,
            )
            .expect("filter")
            .try_into()
            .expect("compiles");
            // Without TSYNC the filter binds this thread (and what it forks) only.
            seccompiler::apply_filter(&sandbox).expect("sandbox");
            LvmCommand::new("lvm".into(), vec![], Duration::from_secs(1), IoMode::Sync).io_mode()
        })
        .join()
        .expect("thread")
    }

    #[test]
    fn a_sandbox_that_forbids_seccomp_turns_sync_io_off_instead_of_failing_collections() {
        assert_eq!(
            io_mode_under_a_sandbox(seccompiler::SeccompAction::Errno(libc::EPERM as u32)),
            IoMode::LvmDefault
        );
        // systemd's SystemCallFilter= kills the process instead.
        assert_eq!(
            io_mode_under_a_sandbox(seccompiler::SeccompAction::KillProcess),
            IoMode::LvmDefault
        );
        // Unsandboxed, the same call gets synchronous I/O.
        assert_eq!(
            LvmCommand::new("lvm".into(), vec![], Duration::from_secs(1), IoMode::Sync).io_mode(),
            IoMode::Sync
        );
    }

    fn read_pid(path: PathBuf) -> i32 {
        read(path).trim().parse().expect("pid")
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group_and_reaps_the_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        // The leader and a background child both sleep: only killing the group stops both.
        let lvm = script(
            dir.path(),
            "lvm",
            &format!("echo $$ > {d}/leader.pid\nsleep 60 &\necho $! > {d}/sleeper.pid\nwait"),
        )
        .await;
        let timeout = Duration::from_millis(500);
        let started = StdInstant::now();
        let result = collect(&command(&lvm, timeout), &["vms-group"]).await;
        let elapsed = started.elapsed();
        match result {
            Err(LvmError::Timeout {
                command,
                timeout_ms,
                said,
            }) => {
                assert_eq!(timeout_ms, 500);
                assert_eq!(said, "");
                assert!(
                    command.starts_with(&format!("{} fullreport", lvm.display())),
                    "{command}"
                );
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
            "took {elapsed:?}"
        );
        let leader = read_pid(dir.path().join("leader.pid"));
        let sleeper = read_pid(dir.path().join("sleeper.pid"));
        assert!(
            !Path::new(&format!("/proc/{leader}")).exists(),
            "leader {leader} was not reaped"
        );
        // The orphaned sleeper is reaped by init; give it a moment to disappear or turn zombie.
        let members = group_gone(leader).await;
        assert!(
            members.is_empty(),
            "group {leader} still has live processes {members:?} (sleeper {sleeper})"
        );
    }

    #[tokio::test]
    async fn what_a_stopped_command_said_is_in_the_timeout_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // LVM waiting for a VG lock says this when interrupted.
        let lvm = script(
            dir.path(),
            "lvm",
            "trap 'echo \"  Giving up waiting for lock.\" >&2; echo \"  Can not get lock for vms-group.\" >&2; exit 5' TERM\nsleep 60 &\nwait",
        )
        .await;
        let result = collect(&command(&lvm, Duration::from_millis(300)), &["vms-group"]).await;
        match result {
            Err(error @ LvmError::Timeout { .. }) => {
                let message = error.to_string();
                assert!(
                    message.ends_with("was killed (it said: Giving up waiting for lock.; Can not get lock for vms-group.)"),
                    "{message}"
                );
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_gets_sigkill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        // Ignored signals are inherited: neither the shell nor its sleeping child obey SIGTERM.
        let lvm = script(
            dir.path(),
            "lvm",
            &format!("trap '' TERM\necho $$ > {d}/leader.pid\nsleep 60 &\nwait"),
        )
        .await;
        let timeout = Duration::from_millis(300);
        let started = StdInstant::now();
        let result = collect(&command(&lvm, timeout), &["vms-group"]).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Err(LvmError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            elapsed >= timeout + TERM_GRACE && elapsed < timeout + Duration::from_secs(2),
            "took {elapsed:?}"
        );
        let members = group_gone(read_pid(dir.path().join("leader.pid"))).await;
        assert!(members.is_empty(), "still alive: {members:?}");
    }

    #[tokio::test]
    async fn killed_by_a_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = script(dir.path(), "lvm", "echo '  Internal error' >&2\nkill -9 $$").await;
        match collect(&command(&lvm, Duration::from_secs(10)), &["v"]).await {
            Err(LvmError::Failed { status, stderr, .. }) => {
                assert_eq!(status, "killed by signal 9");
                assert_eq!(stderr, "Internal error");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn exit_status_and_last_meaningful_stderr_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = script(
            dir.path(),
            "lvm",
            "cat >&2 <<'EOF'\n  WARNING: something early\nFile descriptor 7 (/dev/null) leaked on lvm invocation. Parent PID 1: x\n  Failed to set up async io, using sync io.\n  /dev/mapper/control: open failed: No such device\n  Failure to communicate with kernel device-mapper driver.\n  Volume group \"nope\" not found\n  Cannot process volume group nope\n  Check that device-mapper is available in the kernel.\nEOF\nexit 5",
        )
        .await;
        match collect(&command(&lvm, Duration::from_secs(10)), &["nope"]).await {
            Err(LvmError::Failed {
                command,
                status,
                stderr,
            }) => {
                assert_eq!(status, "exit status 5");
                assert_eq!(
                    stderr,
                    "Volume group \"nope\" not found; Cannot process volume group nope"
                );
                assert!(
                    command.contains(
                        "--config 'log{report_command_log=0}backup{backup=0}report{time_format=%s}'"
                    ),
                    "{command}"
                );
                assert!(command.ends_with("-- nope"), "{command}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn nonzero_exit_with_a_report_keeps_the_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = "echo '  Volume group \"missing\" not found' >&2\nexit 5";
        let lvm = script(
            dir.path(),
            "lvm",
            &format!("echo '{REPORT_JSON}'\n{missing}"),
        )
        .await;
        let report = collect(
            &command(&lvm, Duration::from_secs(10)),
            &["vms-group", "missing"],
        )
        .await
        .expect("the found VG is kept");
        assert_eq!(report.vgs.len(), 1);
        assert_eq!(report.lvs.len(), 1);
        // Only missing VGs: LVM prints an empty report and exits 5.
        let lvm = script(
            dir.path(),
            "lvm-none",
            &format!("echo '{{\"report\": []}}'\n{missing}"),
        )
        .await;
        let report = collect(&command(&lvm, Duration::from_secs(10)), &["missing"])
            .await
            .expect("an empty report, not an error");
        assert_eq!(report, VgReport::default());
    }

    #[tokio::test]
    async fn a_retrying_notice_lvm_prints_on_stdout_does_not_fail_the_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lvm/fullreport.json"
        );
        let expected = crate::lvm::report::parse(
            &std::fs::read_to_string(fixture).expect("fixture"),
            "fixture",
        )
        .expect("the fixture parses");
        // What LVM prints when a VG's metadata changed under it (a concurrent lvcreate).
        let lvm = script(
            dir.path(),
            "lvm",
            &format!("echo '  Retrying metadata scan.'\ncat {fixture}"),
        )
        .await;
        let vgs: Vec<String> = expected.vgs.iter().map(|vg| vg.name.clone()).collect();
        let vg_refs: Vec<&str> = vgs.iter().map(String::as_str).collect();
        let report = collect(&command(&lvm, Duration::from_secs(10)), &vg_refs)
            .await
            .expect("the notice is set aside");
        assert_eq!(report, expected);
    }

    #[tokio::test]
    async fn garbage_stdout_is_a_parse_error_naming_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = script(dir.path(), "lvm", "echo '  VG   #PV #LV'").await;
        match collect(&command(&lvm, Duration::from_secs(10)), &["v"]).await {
            Err(LvmError::Parse { origin, message }) => {
                assert!(origin.starts_with(&lvm.display().to_string()), "{origin}");
                assert!(
                    message.starts_with("invalid JSON (line 1, column"),
                    "{message}"
                );
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        // Valid JSON of the wrong kind: an `lvs` report (no vg section), or no report at all.
        let wrong = [
            r#"{"report":[{"lv":[{"vg_name":"v","lv_name":"a","lv_size":"1"}]}]}"#,
            r#"{"version": 1}"#,
        ];
        for (i, json) in wrong.iter().enumerate() {
            let lvm = script(
                dir.path(),
                &format!("lvm-wrong-{i}"),
                &format!("echo '{json}'"),
            )
            .await;
            match collect(&command(&lvm, Duration::from_secs(10)), &["v"]).await {
                Err(LvmError::Parse { message, .. }) => {
                    assert_eq!(
                        message,
                        "no report with a vg section: not an lvm fullreport JSON report"
                    );
                }
                other => panic!("{json}: expected Parse, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unbounded_output_is_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 65 MiB of spaces (valid JSON whitespace) followed by nothing.
        let lvm = script(
            dir.path(),
            "lvm",
            "head -c 68157440 /dev/zero | tr '\\0' ' '",
        )
        .await;
        match collect(&command(&lvm, Duration::from_secs(20)), &["v"]).await {
            Err(LvmError::Parse { message, .. }) => {
                assert_eq!(message, "output larger than 64 MiB, not parsed");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let absent = dir.path().join("no-such-lvm");
        for mode in [IoMode::LvmDefault, IoMode::Sync] {
            let cmd = LvmCommand::new(absent.clone(), vec![], Duration::from_secs(10), mode);
            match collect(&cmd, &["v"]).await {
                Err(LvmError::Spawn { command, source }) => {
                    assert!(command.starts_with(&absent.display().to_string()));
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                }
                other => panic!("expected Spawn, got {other:?}"),
            }
        }
        // A missing prefix program is the same error.
        let cmd = LvmCommand::new(
            absent.clone(),
            vec![dir.path().join("no-such-sudo").display().to_string()],
            Duration::from_secs(10),
            IoMode::Sync,
        );
        assert!(matches!(
            collect(&cmd, &["v"]).await,
            Err(LvmError::Spawn { .. })
        ));
    }
}
