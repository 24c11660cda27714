//! The seccomp filter that makes a child read synchronously: `io_setup` fails with `ENOSYS`,
//! every other system call is allowed.
//!
//! A program that reads through Linux AIO (LVM, via libaio) and falls back to plain `pread` when
//! it cannot set up an AIO context then never creates one; why LVM is started this way is in
//! `super::exec`. This module owns the filter ([`sync_io_filter`]), the check that it may be
//! installed here at all ([`SyncIoFilter::probed`]), and installing it in a child between fork
//! and exec ([`SyncIoFilter::install`]). The filter binds the child only, never the exporter.

use std::process::Stdio;
use std::sync::Arc;

use super::process::describe_status;

/// A seccomp program that fails `io_setup` with `ENOSYS` and allows everything else, for this
/// machine's architecture: what `IoMode::Sync` starts LVM under.
pub fn sync_io_filter() -> Result<seccompiler::BpfProgram, String> {
    let arch = seccompiler::TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|error| format!("architecture {}: {error}", std::env::consts::ARCH))?;
    let rules = std::collections::BTreeMap::from([(libc::SYS_io_setup, Vec::new())]);
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|error| error.to_string())?;
    seccompiler::BpfProgram::try_from(filter).map_err(|error| error.to_string())
}

/// [`sync_io_filter`], compiled once and known to be installable in this process's children.
#[derive(Debug, Clone)]
pub struct SyncIoFilter {
    program: Arc<seccompiler::BpfProgram>,
}

impl SyncIoFilter {
    /// Compiles the filter and starts `true` under it once, so that a filter the exporter may
    /// not install (a systemd `SystemCallFilter=` without `seccomp` kills the child with SIGSYS;
    /// other sandboxes answer EPERM) is refused here, at start-up, instead of failing every
    /// command later. The error says why.
    pub fn probed() -> Result<Self, String> {
        let filter = Self {
            program: Arc::new(sync_io_filter()?),
        };
        filter.probe().map(|()| filter)
    }

    /// Makes `command` install the filter in its child after fork, before exec.
    pub fn install(&self, command: &mut tokio::process::Command) {
        let program = Arc::clone(&self.program);
        // SAFETY: see `apply_in_child`.
        unsafe {
            command.pre_exec(move || apply_in_child(&program));
        }
    }

    /// Starts `true` under the filter and says whether it ran and exited 0.
    fn probe(&self) -> Result<(), String> {
        let program = Arc::clone(&self.program);
        let mut command = std::process::Command::new("true");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: see `apply_in_child`.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                apply_in_child(&program)
            });
        }
        match command.status() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!(
                "a probe child under the seccomp filter ended with {}",
                describe_status(status)
            )),
            Err(error) => Err(format!(
                "a probe child under the seccomp filter did not start: {error}"
            )),
        }
    }
}

/// Installs `filter` in a forked child before exec.
///
/// # Safety
/// Only for `pre_exec`: it makes two system calls (prctl, seccomp) on a program compiled before
/// the fork, neither allocating nor taking locks; its error is built from errno without
/// allocating.
fn apply_in_child(filter: &seccompiler::BpfProgram) -> std::io::Result<()> {
    seccompiler::apply_filter(filter).map_err(|error| match error {
        seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => io,
        _ => std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

#[cfg(test)]
mod tests {
    use super::super::process::testing::SPAWN_LOCK;
    use super::*;

    /// The `Seccomp_filters:` count of `/proc/<pid>/status` text.
    fn filter_count(status: &str) -> u32 {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Seccomp_filters:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("no Seccomp_filters line in {status}"))
    }

    #[test]
    fn the_filter_answers_io_setup_with_enosys_and_allows_the_rest() {
        let (io_setup, io_setup_errno, pid) = std::thread::spawn(|| {
            // Without TSYNC the filter binds this thread only.
            seccompiler::apply_filter(&sync_io_filter().expect("compiles")).expect("installs");
            let mut ctx: libc::c_ulong = 0;
            // SAFETY: io_setup writes one aio_context_t to `ctx`, which outlives the call; it
            // is refused here, so there is no context to destroy.
            let rc =
                unsafe { libc::syscall(libc::SYS_io_setup, 1, &mut ctx as *mut libc::c_ulong) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            (rc, errno, std::process::id())
        })
        .join()
        .expect("thread");
        assert_eq!((io_setup, io_setup_errno), (-1, Some(libc::ENOSYS)));
        assert!(pid > 0, "getpid works under the filter");
    }

    #[tokio::test]
    async fn install_filters_the_child_and_not_the_parent() {
        let own = std::fs::read_to_string("/proc/self/status").expect("own status");
        let filter = SyncIoFilter::probed().expect("installable outside a sandbox");
        let child_filters = |with_filter: bool| {
            let filter = filter.clone();
            async move {
                let _guard = SPAWN_LOCK.read().await;
                let mut command = tokio::process::Command::new("cat");
                command.arg("/proc/self/status");
                if with_filter {
                    filter.install(&mut command);
                }
                let output = command.output().await.expect("cat runs");
                assert!(output.status.success(), "{output:?}");
                filter_count(&String::from_utf8_lossy(&output.stdout))
            }
        };
        let parent = filter_count(&own);
        assert_eq!(child_filters(false).await, parent);
        assert_eq!(child_filters(true).await, parent + 1);
        assert_eq!(
            filter_count(&std::fs::read_to_string("/proc/self/status").expect("own status")),
            parent,
            "the exporter itself is not filtered"
        );
    }
}
