//! `textfile FILE`: one collection's metrics written for node_exporter's textfile collector.
//! The checks of FILE and the temporary file's name are pure; [`write_atomically`] is the I/O
//! edge: the exposition goes to a temporary file in FILE's directory (a name node_exporter does
//! not read), is flushed to disk with mode 0644, then renamed over FILE, so that a scrape sees
//! either the previous file or the new one, never half of one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the written file: node_exporter often runs as its own user, and the metrics hold
/// no secret.
pub const FILE_MODE: u32 = 0o644;

/// The file name ending node_exporter's textfile collector reads.
pub const TEXTFILE_SUFFIX: &str = ".prom";

/// Checks FILE before anything is collected: it must name a file (not end in `/`, `.` or `..`)
/// ending in `.prom`, which node_exporter's textfile collector reads (it skips other names).
pub fn check_target(file: &Path) -> Result<(), String> {
    let shown = file.display();
    let Some(name) = file.file_name().and_then(|name| name.to_str()) else {
        return Err(format!(
            "textfile FILE: {shown:?} does not name a file (FILE is a *{TEXTFILE_SUFFIX} file in node_exporter's --collector.textfile.directory)"
        ));
    };
    if file.as_os_str().to_string_lossy().ends_with('/') {
        return Err(format!(
            "textfile FILE: {shown:?} ends in '/', it names a directory (FILE is a *{TEXTFILE_SUFFIX} file in node_exporter's --collector.textfile.directory)"
        ));
    }
    if !name.ends_with(TEXTFILE_SUFFIX) || name == TEXTFILE_SUFFIX {
        return Err(format!(
            "textfile FILE: {shown:?} does not end in {TEXTFILE_SUFFIX}; node_exporter's textfile collector reads only *{TEXTFILE_SUFFIX} files (e.g. /var/lib/prometheus/node-exporter/nova-lvm.prom)"
        ));
    }
    Ok(())
}

/// The temporary file for FILE written by process `pid`: in the same directory (so that the
/// rename stays on one file system), hidden, and not ending in `.prom` (so that node_exporter
/// never reads it half written).
pub fn temporary_path(file: &Path, pid: u32) -> PathBuf {
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.with_file_name(format!(".{name}.{pid}.tmp"))
}

/// Writes `text` to `file` atomically with mode 0644: a temporary file in the same directory,
/// flushed to disk, renamed over `file`, then the directory flushed. On failure the temporary
/// file is removed, `file` is left as it was, and the error names the path at fault.
pub fn write_atomically(file: &Path, text: &str) -> Result<(), String> {
    let temporary = temporary_path(file, std::process::id());
    let failed = |what: &str, error: std::io::Error| {
        format!(
            "textfile FILE: cannot {what} {}: {error}",
            temporary.display()
        )
    };
    // Whatever is at the temporary name already is not ours: fail, and leave it alone.
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&temporary)
        .map_err(|error| failed("create", error))?;
    let written = fill(out, text)
        .map_err(|(what, error)| failed(what, error))
        .and_then(|()| {
            std::fs::rename(&temporary, file).map_err(|error| {
                format!(
                    "textfile FILE: cannot rename {} to {}: {error}",
                    temporary.display(),
                    file.display()
                )
            })
        });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    sync_directory(file)
}

/// Writes `text` to the new file, sets mode 0644 whatever the umask, and flushes it to disk;
/// an error says which step failed.
fn fill(mut out: File, text: &str) -> Result<(), (&'static str, std::io::Error)> {
    out.write_all(text.as_bytes())
        .map_err(|error| ("write", error))?;
    out.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|error| ("set the mode of", error))?;
    out.sync_all().map_err(|error| ("flush", error))
}

/// Flushes the directory of `file`, so that the rename survives a crash.
fn sync_directory(file: &Path) -> Result<(), String> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| {
            format!(
                "textfile FILE: wrote {}, but cannot flush its directory {}: {error}",
                file.display(),
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prom_file_is_accepted_anywhere() {
        for ok in [
            "/var/lib/prometheus/node-exporter/nova-lvm.prom",
            "nova-lvm.prom",
            "./x.prom",
        ] {
            assert_eq!(check_target(Path::new(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_name_node_exporter_would_skip_is_refused_with_the_reason() {
        let error = check_target(Path::new("/tmp/nova-lvm.txt")).unwrap_err();
        assert!(
            error.contains("\"/tmp/nova-lvm.txt\" does not end in .prom"),
            "{error}"
        );
        assert!(error.contains("reads only *.prom files"), "{error}");
        assert!(check_target(Path::new("/tmp/.prom")).is_err());
    }

    #[test]
    fn a_directory_is_refused() {
        for bad in ["/tmp/", "/tmp/..", "/", "dir.prom/"] {
            let error = check_target(Path::new(bad)).unwrap_err();
            assert!(error.starts_with("textfile FILE: "), "{bad}: {error}");
        }
    }

    #[test]
    fn the_temporary_file_is_hidden_beside_the_file_and_never_read_by_node_exporter() {
        let temporary = temporary_path(Path::new("/var/lib/ne/nova-lvm.prom"), 4242);
        assert_eq!(temporary, Path::new("/var/lib/ne/.nova-lvm.prom.4242.tmp"));
        assert!(!temporary.to_string_lossy().ends_with(TEXTFILE_SUFFIX));
        assert_eq!(
            temporary_path(Path::new("a.prom"), 1),
            Path::new(".a.prom.1.tmp")
        );
    }

    #[test]
    fn writing_replaces_the_file_whole_with_mode_0644_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nova-lvm.prom");
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&file, "new 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new 1\n");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE, "{mode:o}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["nova-lvm.prom"]);
    }

    #[test]
    fn a_missing_directory_fails_naming_the_path_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("absent/nova-lvm.prom");
        let error = write_atomically(&file, "x 1\n").unwrap_err();
        assert!(error.contains("cannot create"), "{error}");
        assert!(error.contains("absent/.nova-lvm.prom."), "{error}");
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let file = dir.path().join("nova-lvm.prom");
        std::os::unix::fs::symlink(&victim, temporary_path(&file, std::process::id())).unwrap();
        let error = write_atomically(&file, "x 1\n").unwrap_err();
        assert!(error.contains("cannot create"), "{error}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!file.exists());
        // The planted link is left where it was; a symlink at FILE itself is replaced, not
        // written through.
        let planted = temporary_path(&file, std::process::id());
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());
        std::fs::remove_file(planted).unwrap();
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        write_atomically(&file, "x 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&file).unwrap().is_symlink());
    }

    #[test]
    fn a_failed_rename_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should be: rename cannot replace it.
        let file = dir.path().join("nova-lvm.prom");
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("keep"), "kept").unwrap();
        let error = write_atomically(&file, "x 1\n").unwrap_err();
        assert!(error.contains("cannot rename"), "{error}");
        assert_eq!(std::fs::read_to_string(file.join("keep")).unwrap(), "kept");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["nova-lvm.prom"]);
    }
}
