//! Reading the files operators and the host control, safely: the one way every such file is read.
//!
//! [`read_file`] opens without blocking (`O_NONBLOCK`: opening a FIFO with no writer would wait
//! forever), checks on the opened descriptor that it is a regular file (a FIFO, a device such as
//! `/dev/zero`, a socket or a directory is refused, naming its type; `/dev/null` reads as an empty
//! file, as configurations use it), and reads at most
//! [`MAX_FILE_BYTES`] (never more than one byte beyond, whatever the file claims or grows to).
//!
//! [`BlockingLane`] runs blocking file work of one source off the async runtime, on a thread of
//! its own, and never more than one at a time per source: a read that hangs (a hung NFS mount)
//! holds one thread of that source and nothing else, the caller stops waiting when its timeout
//! ends, and the next collection of that source fails at once until the stuck read returns.
//!
//! This module is the bottom layer: it uses nothing else of the crate.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The largest file the exporter reads, whatever it is (a saved LVM report, a domain XML, the
/// instances file, nova.conf, clouds.yaml, a CA bundle, the web or exporter configuration): 64 MiB,
/// the same ceiling as the output of the LVM tools. Anything bigger is not what it claims to be.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not a regular file (after following symbolic links).
    #[error("{path}: is a {kind}, not a regular file; refusing to read it")]
    NotRegular {
        /// The file.
        path: String,
        /// What it is instead: `FIFO`, `character device`, `directory`...
        kind: &'static str,
    },
    /// The file holds more than [`MAX_FILE_BYTES`].
    #[error("{path}: larger than {} MiB; refusing to read it", MAX_FILE_BYTES >> 20)]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The file is not UTF-8 text.
    #[error("{path}: not valid UTF-8 (at byte {at})")]
    NotUtf8 {
        /// The file.
        path: String,
        /// Offset of the first byte that is not UTF-8.
        at: usize,
    },
}

impl InputError {
    /// The file does not exist (or is a dangling link).
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// The OS error, when the failure was one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            InputError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What a file type is called in errors; `None` for a regular file.
fn irregular_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_fifo() {
        Some("FIFO")
    } else if file_type.is_char_device() {
        Some("character device")
    } else if file_type.is_block_device() {
        Some("block device")
    } else if file_type.is_socket() {
        Some("socket")
    } else if file_type.is_dir() {
        Some("directory")
    } else {
        Some("special file")
    }
}

/// `/dev/null` (any name for it), the conventional empty file: it reads as empty.
fn is_dev_null(metadata: &std::fs::Metadata) -> bool {
    metadata.file_type().is_char_device() && metadata.rdev() == libc::makedev(1, 3)
}

/// Reads the regular file at `path`, at most [`MAX_FILE_BYTES`] (blocking). Errors name `path`.
pub fn read_file(path: &Path) -> Result<Vec<u8>, InputError> {
    read_file_limited(path, MAX_FILE_BYTES)
}

/// Reads the regular UTF-8 text file at `path`, at most [`MAX_FILE_BYTES`] (blocking).
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes).map_err(|e| InputError::NotUtf8 {
        path: path.display().to_string(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// [`read_file`] with another ceiling (tests use a small one).
fn read_file_limited(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let origin = || path.display().to_string();
    let io = |source| InputError::Io {
        path: origin(),
        source,
    };
    // O_NONBLOCK: opening a FIFO (or a device that waits for a carrier) returns at once instead
    // of waiting for a writer. The standard library adds O_CLOEXEC itself.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if is_dev_null(&metadata) {
        return Ok(Vec::new());
    }
    if let Some(kind) = irregular_kind(metadata.file_type()) {
        return Err(InputError::NotRegular {
            path: origin(),
            kind,
        });
    }
    if metadata.len() > limit {
        return Err(InputError::TooLarge { path: origin() });
    }
    read_at_most(file, limit)
        .map_err(io)?
        .ok_or_else(|| InputError::TooLarge { path: origin() })
}

/// Reads `file` to its end if it holds at most `limit` bytes (`None` beyond), never reading more
/// than `limit + 1`: the file may grow between the size check and the read.
fn read_at_most(file: File, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Why [`BlockingLane::run`] gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The previous work of this lane has not returned yet.
    #[error(
        "the previous read of {what}, started {seconds} s ago, has not returned (a FIFO or a hung \
         mount?); not starting another until it does"
    )]
    StillStuck {
        /// What the lane reads.
        what: String,
        /// How long the stuck work has run, whole seconds.
        seconds: u64,
    },
    /// The work panicked (a bug) or no thread could be started.
    #[error("reading {what} failed: {message}")]
    Failed {
        /// What the lane reads.
        what: String,
        /// What happened.
        message: String,
    },
}

/// Runs the blocking file work of one source on a thread of its own, one piece of work at a time.
///
/// Work never runs on the async runtime's blocking pool, so a read that hangs cannot starve
/// rendering or other sources; a lane holds at most one thread, stuck or not.
#[derive(Debug, Clone)]
pub struct BlockingLane {
    what: String,
    busy_since: Arc<Mutex<Option<Instant>>>,
}

/// Clears a lane's busy mark when its work ends, even by a panic.
struct BusyMark(Arc<Mutex<Option<Instant>>>);

impl Drop for BusyMark {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl BlockingLane {
    /// A lane for the source reading `what` (a path, named in errors).
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            busy_since: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `work` on a new thread and waits for its result. Fails at once when the previous
    /// work has not returned. Dropping the returned future (a timeout) stops the waiting, not
    /// the work: the lane stays busy until the work returns.
    pub async fn run<T, F>(&self, work: F) -> Result<T, LaneError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        {
            let mut busy = self.busy_since.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(since) = *busy {
                return Err(LaneError::StillStuck {
                    what: self.what.clone(),
                    seconds: since.elapsed().as_secs(),
                });
            }
            *busy = Some(Instant::now());
        }
        let mark = BusyMark(Arc::clone(&self.busy_since));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("input-read".to_string())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                // Free the lane before answering, so that the caller can start the next work.
                drop(mark);
                let _ = sender.send(result);
            });
        let failed = |message: String| LaneError::Failed {
            what: self.what.clone(),
            message,
        };
        // A failed spawn drops the closure, and with it the mark: the lane is free again.
        spawned.map_err(|e| failed(format!("cannot start a thread: {e}")))?;
        match receiver.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(failed(format!(
                "internal error (a bug): {}",
                panic_message(panic.as_ref())
            ))),
            Err(_) => Err(failed("the reading thread went away".to_string())),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn fifo(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: mkfifo reads a NUL-terminated path and has no other effect on memory.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        path
    }

    fn read_with_deadline(path: &Path) -> Result<Vec<u8>, InputError> {
        let path = path.to_path_buf();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(read_file(&path)));
        receiver
            .recv_timeout(Duration::from_secs(5))
            .expect("read_file returned within 5 s")
    }

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "hello").expect("write");
        assert_eq!(read_text(&path).expect("reads"), "hello");
    }

    #[test]
    fn refuses_a_fifo_at_once_even_without_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fifo(&dir, "pipe");
        let error = read_with_deadline(&path).expect_err("refused");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: is a FIFO, not a regular file; refusing to read it",
                path.display()
            )
        );
    }

    #[test]
    fn refuses_devices_directories_and_sockets() {
        let error = read_with_deadline(Path::new("/dev/zero")).expect_err("refused");
        assert!(
            matches!(
                error,
                InputError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{error}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let error = read_file(dir.path()).expect_err("refused");
        assert!(
            matches!(
                error,
                InputError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{error}"
        );
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let error = read_file(&socket).expect_err("refused");
        // Opening a socket fails in the kernel (ENXIO) before its type can be checked.
        assert!(
            error.to_string().contains(&socket.display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn dev_null_reads_as_an_empty_file_even_through_a_link() {
        assert_eq!(read_text(Path::new("/dev/null")).expect("reads"), "");
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("nova.conf");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        assert_eq!(read_file(&link).expect("reads"), b"");
    }

    #[test]
    fn refuses_a_symlink_to_a_device() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("report.json");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        let error = read_with_deadline(&link).expect_err("refused");
        assert!(
            matches!(
                error,
                InputError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_file_over_the_limit_by_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        std::fs::write(&path, "0123456789").expect("write");
        assert_eq!(
            read_file_limited(&path, 10).expect("at the limit").len(),
            10
        );
        let error = read_file_limited(&path, 9).expect_err("over the limit");
        assert!(matches!(error, InputError::TooLarge { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: larger than 64 MiB; refusing to read it",
                path.display()
            )
        );
    }

    #[test]
    fn reads_no_more_than_one_byte_beyond_the_limit_of_a_growing_file() {
        // A file that grows after the size check: a pipe stands in for it, since the check
        // passed; what matters is that the read stops at limit + 1.
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let writing = std::thread::spawn(move || {
            let chunk = [b'x'; 4096];
            let mut written = 0usize;
            while writer.write_all(&chunk).is_ok() {
                written += chunk.len();
            }
            written
        });
        let file = File::from(std::os::fd::OwnedFd::from(reader));
        assert_eq!(read_at_most(file, 10_000).expect("reads"), None);
        let written = writing.join().expect("writer");
        // The writer stopped when the reader closed the pipe, long before writing forever; the
        // pipe buffer (64 KiB) is all it could get ahead.
        assert!(written < 10_000 + 1024 * 1024, "{written}");
    }

    #[test]
    fn reports_bad_utf8_with_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad");
        std::fs::write(&path, b"ab\xffcd").expect("write");
        let error = read_text(&path).expect_err("not UTF-8");
        assert_eq!(
            error.to_string(),
            format!("{}: not valid UTF-8 (at byte 2)", path.display())
        );
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let error = read_file(Path::new("/nonexistent/file")).expect_err("missing");
        assert!(error.is_not_found());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hung_read_holds_one_thread_fails_fast_after_and_recovers() {
        let lane = BlockingLane::new("/mnt/hung/report.json");
        let (release, released) = std::sync::mpsc::channel::<()>();
        // A read that hangs until released, as on a hung mount.
        let stuck = lane.run(move || {
            let _ = released.recv();
            "late"
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), stuck)
                .await
                .is_err(),
            "the caller stops waiting at its timeout"
        );
        // While it hangs: the next run fails at once, without starting work.
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&started);
        let error = lane
            .run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
            .await
            .expect_err("still stuck");
        assert!(matches!(error, LaneError::StillStuck { .. }), "{error}");
        assert!(
            error.to_string().contains("/mnt/hung/report.json"),
            "{error}"
        );
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
        // Once it returns, the lane works again by itself.
        release.send(()).expect("release");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match lane.run(|| 7).await {
                Ok(value) => {
                    assert_eq!(value, 7);
                    break;
                }
                Err(LaneError::StillStuck { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(error) => panic!("lane did not recover: {error}"),
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_work_is_an_error_and_frees_the_lane() {
        let lane = BlockingLane::new("x.xml");
        let error = lane
            .run(|| -> u8 { panic!("boom") })
            .await
            .expect_err("panicked");
        assert_eq!(
            error.to_string(),
            "reading x.xml failed: internal error (a bug): boom"
        );
        assert_eq!(lane.run(|| 1).await, Ok(1));
    }

    #[test]
    fn a_stuck_lane_does_not_hold_the_runtime_at_shutdown() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let lane = BlockingLane::new("/mnt/hung/domain.xml");
        let (_release, released) = std::sync::mpsc::channel::<()>();
        let waited = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_millis(50),
                lane.run(move || released.recv().is_ok()),
            )
            .await
        });
        assert!(waited.is_err(), "the work hangs");
        // The blocking pool is free for other work...
        let pool = runtime.block_on(runtime.spawn_blocking(|| 3));
        assert_eq!(pool.expect("pool work"), 3);
        // ...and dropping the runtime does not wait for the hung work.
        let started = Instant::now();
        drop(runtime);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lanes_are_independent() {
        let stuck_lane = BlockingLane::new("a");
        let (_release, released) = std::sync::mpsc::channel::<()>();
        let stuck = stuck_lane.run(move || released.recv().is_ok());
        let _ = tokio::time::timeout(Duration::from_millis(50), stuck).await;
        assert_eq!(BlockingLane::new("b").run(|| 2).await, Ok(2));
    }
}
