//! Supervising one child process: no shell, no knowledge of what the program is.
//!
//! [`run`] starts a prepared command in a process group of its own with stdin closed, reads at
//! most a bounded amount of its stdout and stderr (draining the rest so that it never blocks on
//! a full pipe), and waits for it until a deadline. Past the deadline the whole group, children
//! and grandchildren included, gets SIGTERM, then SIGKILL [`TERM_GRACE`] later, and the leader is
//! reaped for up to [`REAP_GRACE`]; if the future is dropped early the group is killed too. What
//! the output means is the caller's business (`super::exec` for LVM).

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// How long a command gets to exit after SIGTERM before its group gets SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_millis(250);

/// How long to wait for a killed command to be reaped before leaving it to tokio's reaper.
/// Shorter than the grace the collector grants beyond the LVM timeout.
pub const REAP_GRACE: Duration = Duration::from_millis(500);

/// How long to wait for the rest of a stopped command's stderr.
const STDERR_AFTER_KILL: Duration = Duration::from_millis(200);

/// How [`run`] treats one command: how much of its output it keeps, and what its log lines
/// call it.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// Most stdout kept; more is drained and reported as [`Finished::stdout_truncated`].
    pub stdout_cap: usize,
    /// Most stderr kept; more is drained.
    pub stderr_cap: usize,
    /// What the command is in log lines, e.g. `LVM command`.
    pub what: &'static str,
}

/// A command that exited on its own before the deadline.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Up to [`Supervision::stdout_cap`] bytes of its stdout.
    pub stdout: Vec<u8>,
    /// True when it wrote more than [`Supervision::stdout_cap`] bytes to stdout.
    pub stdout_truncated: bool,
    /// Up to [`Supervision::stderr_cap`] bytes of its stderr.
    pub stderr: Vec<u8>,
}

/// Why [`run`] has no [`Finished`] command to give back.
#[derive(Debug)]
pub enum RunError {
    /// The deadline had passed before the command was started; nothing ran.
    DeadlinePassed,
    /// The command could not be started (missing program, not executable, ...).
    Spawn(std::io::Error),
    /// The command started but its stdout or stderr was not captured; its group was killed.
    NotCaptured,
    /// Reading its output or waiting for it failed; its group was killed and reaped.
    Io(std::io::Error),
    /// It ran past the deadline; its group was stopped (SIGTERM, then SIGKILL) and reaped.
    TimedOut {
        /// What it had written to stderr (up to [`Supervision::stderr_cap`] bytes); empty when it
        /// said nothing or its stderr did not close soon after it was stopped.
        stderr: Vec<u8>,
    },
}

/// How often, and how far apart, a spawn that failed with ETXTBSY is tried again.
const BUSY_TEXT_RETRIES: u32 = 5;
const BUSY_TEXT_PAUSE: Duration = Duration::from_millis(20);

/// `command.spawn()`, tried again a few times, 20 ms apart and within `deadline`, when exec
/// fails with ETXTBSY: the program is still open for writing somewhere for an instant (a child
/// another thread has just forked inherits the descriptor of a file being written, until that
/// child execs; the lvm::exec tests' fake `lvm` scripts met it, about once in ten full runs).
/// Any other error, or ETXTBSY that lasts, fails at once as before.
async fn spawn_retrying_busy_text(
    command: &mut tokio::process::Command,
    deadline: Instant,
) -> Result<tokio::process::Child, RunError> {
    let mut retries = 0;
    loop {
        match command.spawn() {
            Err(error)
                if error.raw_os_error() == Some(libc::ETXTBSY)
                    && retries < BUSY_TEXT_RETRIES
                    && Instant::now() + BUSY_TEXT_PAUSE < deadline =>
            {
                retries += 1;
                tokio::time::sleep(BUSY_TEXT_PAUSE).await;
            }
            result => return result.map_err(RunError::Spawn),
        }
    }
}

/// Runs `command` until it exits or `deadline` passes; `command_line` names it in log lines.
///
/// `command` comes with its program, arguments, environment and any `pre_exec` hook; this sets
/// stdin to `/dev/null`, pipes stdout and stderr, and starts it as the leader of a new process
/// group, so that stopping it reaches everything it started.
pub async fn run(
    mut command: tokio::process::Command,
    command_line: &str,
    deadline: Instant,
    supervision: Supervision,
) -> Result<Finished, RunError> {
    if Instant::now() >= deadline {
        return Err(RunError::DeadlinePassed);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn_retrying_busy_text(&mut command, deadline).await?;
    // Declared after `child` so that it is dropped first: if this future is dropped before
    // the child is reaped, the whole group is killed and tokio reaps the leader.
    let mut group = ProcessGroup::of(&child);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        group.kill();
        return Err(RunError::NotCaptured);
    };

    // stderr is read on its own task, so that what a command said before it was stopped
    // (LVM: "Giving up waiting for lock") is still there after a timeout.
    let mut stderr_task = tokio::spawn(read_bounded(stderr, supervision.stderr_cap));
    let finished = tokio::time::timeout_at(deadline, async {
        let out = read_bounded(stdout, supervision.stdout_cap).await;
        let err = (&mut stderr_task)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out?, err?))
    })
    .await;

    match finished {
        Ok(Ok((status, (stdout, stdout_truncated), (stderr, _)))) => {
            group.disarm();
            Ok(Finished {
                status,
                stdout,
                stdout_truncated,
                stderr,
            })
        }
        Ok(Err(io_error)) => {
            group.kill();
            reap(&mut child, &mut group, command_line, supervision.what).await;
            Err(RunError::Io(io_error))
        }
        Err(_elapsed) => {
            terminate(&mut child, &mut group, command_line, supervision.what).await;
            let stderr = match tokio::time::timeout(STDERR_AFTER_KILL, stderr_task).await {
                Ok(Ok(Ok((stderr, _)))) => stderr,
                _ => Vec::new(),
            };
            Err(RunError::TimedOut { stderr })
        }
    }
}

/// `exit status 5`, `killed by signal 9`.
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) if status.core_dumped() => {
            format!("killed by signal {signal} (core dumped)")
        }
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The command line for messages, quoted where a shell would need it.
pub fn display_command(program: &OsString, args: &[OsString]) -> String {
    std::iter::once(program)
        .chain(args)
        .map(|arg| {
            let arg = arg.to_string_lossy();
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./,=+:@%".contains(&b));
            if plain {
                arg.into_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads up to `cap` bytes, then drains the rest so the writer never blocks on a full pipe.
/// Returns the bytes kept and whether anything was dropped.
async fn read_bounded<R: AsyncRead + Unpin>(
    mut reader: R,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    (&mut reader)
        .take(u64::try_from(cap).unwrap_or(u64::MAX))
        .read_to_end(&mut kept)
        .await?;
    let dropped = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    Ok((kept, dropped > 0))
}

/// Stops a command that ran past its timeout: SIGTERM to its process group first, then SIGKILL.
/// SIGTERM matters with a command prefix such as `sudo -n`: the exporter may not signal the
/// root-owned command itself, but sudo relays SIGTERM to it (SIGKILL cannot be relayed).
async fn terminate(
    child: &mut tokio::process::Child,
    group: &mut ProcessGroup,
    command_line: &str,
    what: &str,
) {
    group.signal(libc::SIGTERM);
    if let Ok(Ok(_)) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
        group.disarm();
        return;
    }
    group.kill();
    reap(child, group, command_line, what).await;
}

/// Waits up to [`REAP_GRACE`] for a killed child to be reaped. A child stuck in uninterruptible
/// sleep (an LVM command blocked on a dead disk) does not die at once: it is left to tokio's
/// background reaper rather than holding up the scrape.
async fn reap(
    child: &mut tokio::process::Child,
    group: &mut ProcessGroup,
    command_line: &str,
    what: &str,
) {
    match tokio::time::timeout(REAP_GRACE, child.wait()).await {
        Ok(Ok(_)) => group.disarm(),
        Ok(Err(error)) => {
            tracing::warn!(command = %command_line, %error, "cannot reap killed {what}");
        }
        Err(_) => tracing::warn!(
            command = %command_line,
            grace_ms = REAP_GRACE.as_millis() as u64,
            "killed {what} has not exited yet (uninterruptible sleep?); leaving it to the background reaper"
        ),
    }
}

/// The process group a child leads (it was started with `process_group(0)`), signalled by
/// [`ProcessGroup::signal`], killed with SIGKILL on [`ProcessGroup::kill`] and on drop until
/// [`ProcessGroup::disarm`]ed.
///
/// It must be disarmed once the leader is reaped: from then on the group id may be reused.
struct ProcessGroup {
    pgid: Option<libc::pid_t>,
}

impl ProcessGroup {
    fn of(child: &tokio::process::Child) -> Self {
        Self {
            pgid: child
                .id()
                .and_then(|pid| libc::pid_t::try_from(pid).ok())
                .filter(|&pid| pid > 0),
        }
    }

    fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg has no memory-safety preconditions. `pgid` is the id of a child we
            // started as a group leader and have not reaped, so it cannot name another group.
            let rc = unsafe { libc::killpg(pgid, signal) };
            if rc != 0 {
                tracing::debug!(
                    pgid,
                    error = %std::io::Error::last_os_error(),
                    "killpg failed"
                );
            }
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Helpers shared by the tests of this module and of `super::exec`, which both start children.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    /// Writing an executable while another test thread forks can make exec fail with ETXTBSY
    /// (the forked child briefly holds the write descriptor). Scripts are written under the
    /// write lock; code that spawns processes holds the read lock.
    pub(crate) static SPAWN_LOCK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

    /// The process ids whose process group is `pgid` and that are not zombies.
    pub(crate) fn live_members(pgid: i32) -> Vec<i32> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2) == Some(&pgid.to_string().as_str()) && fields.first() != Some(&"Z") {
                members.push(pid);
            }
        }
        members
    }

    /// Waits up to a second for the group `pgid` to have no live members.
    pub(crate) async fn group_gone(pgid: i32) -> Vec<i32> {
        let mut members = live_members(pgid);
        for _ in 0..50 {
            if members.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            members = live_members(pgid);
        }
        members
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Instant as StdInstant;

    use super::testing::{group_gone, SPAWN_LOCK};
    use super::*;

    const SUPERVISION: Supervision = Supervision {
        stdout_cap: 16,
        stderr_cap: 8,
        what: "test command",
    };

    /// Runs `sh -c script` under [`run`] with [`SUPERVISION`] and `timeout`.
    async fn sh(script: &str, timeout: Duration) -> Result<Finished, RunError> {
        let _guard = SPAWN_LOCK.read().await;
        let mut command = tokio::process::Command::new("sh");
        command.arg("-c").arg(script);
        run(command, "sh -c ...", Instant::now() + timeout, SUPERVISION).await
    }

    /// An executable still open for writing: exec fails with ETXTBSY while the descriptor lives.
    fn script_held_open(dir: &Path) -> (PathBuf, std::fs::File) {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("busy");
        let mut file = std::fs::File::create(&path).expect("create script");
        file.write_all(b"#!/bin/sh\necho ran\n")
            .expect("write script");
        file.flush().expect("flush");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        (path, file)
    }

    #[tokio::test]
    async fn a_program_busy_for_an_instant_is_started_once_it_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, writer) = script_held_open(dir.path());
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(writer);
        });
        let _guard = SPAWN_LOCK.read().await;
        let finished = run(
            tokio::process::Command::new(&path),
            "busy",
            Instant::now() + Duration::from_secs(10),
            SUPERVISION,
        )
        .await
        .expect("started once the writer closed it");
        assert_eq!(finished.stdout, b"ran\n");
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_program_that_stays_busy_fails_as_a_spawn_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _writer) = script_held_open(dir.path());
        let _guard = SPAWN_LOCK.read().await;
        let started = Instant::now();
        match run(
            tokio::process::Command::new(&path),
            "busy",
            Instant::now() + Duration::from_secs(10),
            SUPERVISION,
        )
        .await
        {
            Err(RunError::Spawn(error)) => {
                assert_eq!(error.raw_os_error(), Some(libc::ETXTBSY));
            }
            other => panic!("expected a spawn error, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    fn read_pid(path: &Path) -> i32 {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .expect("pid")
    }

    #[tokio::test]
    async fn a_finished_command_gives_its_status_and_both_outputs() {
        let finished = sh("echo out; echo err >&2; exit 3", Duration::from_secs(10))
            .await
            .expect("finishes");
        assert_eq!(describe_status(finished.status), "exit status 3");
        assert_eq!(finished.stdout, b"out\n");
        assert!(!finished.stdout_truncated);
        assert_eq!(finished.stderr, b"err\n");
    }

    #[tokio::test]
    async fn stdin_is_closed() {
        let finished = sh(
            "if read -r line; then echo readable; else echo closed; fi",
            Duration::from_secs(10),
        )
        .await
        .expect("finishes");
        assert_eq!(finished.stdout, b"closed\n");
    }

    #[tokio::test]
    async fn output_beyond_the_caps_is_drained_and_flagged() {
        // 1 MiB on each stream: far beyond both caps and a pipe's buffer, so a reader that
        // stopped reading would leave the command blocked until the timeout.
        let finished = sh(
            "head -c 1048576 /dev/zero | tr '\\0' o\nhead -c 1048576 /dev/zero | tr '\\0' e >&2",
            Duration::from_secs(10),
        )
        .await
        .expect("finishes despite the output");
        assert!(finished.status.success());
        assert_eq!(finished.stdout, [b'o'; 16]);
        assert!(finished.stdout_truncated);
        assert_eq!(finished.stderr, [b'e'; 8]);
        // Exactly the cap is not truncation.
        let finished = sh("printf 0123456789abcdef", Duration::from_secs(10))
            .await
            .expect("finishes");
        assert_eq!(finished.stdout, b"0123456789abcdef");
        assert!(!finished.stdout_truncated);
    }

    #[tokio::test]
    async fn a_signal_is_the_exit_status() {
        let finished = sh("kill -9 $$", Duration::from_secs(10))
            .await
            .expect("finishes");
        assert_eq!(describe_status(finished.status), "killed by signal 9");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let _guard = SPAWN_LOCK.read().await;
        let command = tokio::process::Command::new("/nonexistent/program");
        match run(
            command,
            "/nonexistent/program",
            Instant::now() + Duration::from_secs(10),
            SUPERVISION,
        )
        .await
        {
            Err(RunError::Spawn(error)) => {
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected Spawn, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        let mut command = tokio::process::Command::new("touch");
        command.arg(&marker);
        let result = run(command, "touch", Instant::now(), SUPERVISION).await;
        assert!(
            matches!(result, Err(RunError::DeadlinePassed)),
            "{result:?}"
        );
        assert!(!marker.exists(), "the command ran");
    }

    #[tokio::test]
    async fn timeout_kills_the_group_with_its_grandchildren_and_reaps_the_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        // The leader starts a child shell that starts a sleeping grandchild; all three sleep.
        let script = format!(
            "echo $$ > {d}/leader.pid\nsh -c 'sleep 60 & echo $! > {d}/grandchild.pid; wait' &\necho waiting >&2\nwait"
        );
        let timeout = Duration::from_millis(500);
        let started = StdInstant::now();
        let result = sh(&script, timeout).await;
        let elapsed = started.elapsed();
        match result {
            Err(RunError::TimedOut { stderr }) => assert_eq!(stderr, b"waiting\n"),
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
            "took {elapsed:?}"
        );
        let leader = read_pid(&dir.path().join("leader.pid"));
        let grandchild = read_pid(&dir.path().join("grandchild.pid"));
        assert!(
            !Path::new(&format!("/proc/{leader}")).exists(),
            "leader {leader} was not reaped"
        );
        let members = group_gone(leader).await;
        assert!(
            members.is_empty(),
            "group {leader} still has live processes {members:?} (grandchild {grandchild})"
        );
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let timeout = Duration::from_millis(300);
        let started = StdInstant::now();
        let result = sh(
            &format!("trap '' TERM\necho $$ > {d}/leader.pid\nsleep 60 &\nwait"),
            timeout,
        )
        .await;
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Err(RunError::TimedOut { .. })),
            "{result:?}"
        );
        assert!(
            elapsed >= timeout + TERM_GRACE && elapsed < timeout + Duration::from_secs(2),
            "took {elapsed:?}"
        );
        let members = group_gone(read_pid(&dir.path().join("leader.pid"))).await;
        assert!(members.is_empty(), "still alive: {members:?}");
    }

    #[tokio::test]
    async fn sigterm_comes_first_and_what_the_command_said_then_is_kept() {
        let result = sh(
            "trap 'echo bye >&2; exit 5' TERM\nsleep 60 &\nwait",
            Duration::from_millis(300),
        )
        .await;
        match result {
            Err(RunError::TimedOut { stderr }) => assert_eq!(stderr, b"bye\n"),
            other => panic!("expected TimedOut, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn stderr_held_open_outside_the_group_is_waited_for_briefly_after_a_timeout() {
        // `setsid` puts the sleep in a session of its own: killing the group leaves it running
        // with the command's stderr open for 5 s (it ends by itself).
        let started = StdInstant::now();
        let result = sh("setsid sleep 5 &\nsleep 60", Duration::from_millis(200)).await;
        assert!(
            matches!(result, Err(RunError::TimedOut { .. })),
            "expected TimedOut, got {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn command_display_quotes_what_a_shell_would_need() {
        let args: Vec<OsString> = ["-o", "a,b", "log{x=0}", "it's", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            display_command(&OsString::from("/usr/sbin/lvm"), &args),
            r#"/usr/sbin/lvm -o a,b 'log{x=0}' 'it'\''s' ''"#
        );
    }
}
