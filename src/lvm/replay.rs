//! A saved LVM JSON report as a [`RawSource`], for support cases, tests and demos.
//!
//! The file holds what `vgs` and `lvs -a` (or `lvm fullreport -a`) print with
//! `--reportformat json --units b --nosuffix`, concatenated. Take it with `-a`: without it LVM
//! leaves out hidden LVs (thin pool data and metadata, the pool metadata spare, raid images),
//! and the extents they hold would look unaccounted for.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::input::{self, BlockingLane};

use super::{report, LvmError, RawSource, VgReport};

/// Reads a saved report on every collection.
#[derive(Debug, Clone)]
pub struct ReplayFile {
    path: PathBuf,
    lane: BlockingLane,
}

impl ReplayFile {
    /// Replays `path`.
    pub fn new(path: PathBuf) -> Self {
        let lane = BlockingLane::new(path.display().to_string());
        Self { path, lane }
    }
}

#[async_trait]
impl RawSource for ReplayFile {
    /// Reads and parses the file, then keeps only the VGs named in `vg_names` and their LVs, as
    /// the live tools would when given those names.
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        let origin = self.path.display().to_string();
        let path = self.path.clone();
        let bytes = self.lane.run(move || input::read_file(&path)).await??;
        let text = String::from_utf8_lossy(&bytes);
        let report = report::parse(&text, &origin)?;
        let wanted = |vg: &str| vg_names.iter().any(|name| name == vg);
        Ok(VgReport {
            vgs: report
                .vgs
                .into_iter()
                .filter(|vg| wanted(&vg.name))
                .collect(),
            lvs: report.lvs.into_iter().filter(|lv| wanted(&lv.vg)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    const TWO_VGS: &str = r#"{"report":[{"vg":[
            {"vg_name":"vms-group","vg_size":"1000","vg_free":"100","vg_extent_size":"10"},
            {"vg_name":"other","vg_size":"50","vg_free":"0","vg_extent_size":"10"}]}]}
        {"report":[{"lv":[
            {"vg_name":"vms-group","lv_name":"a","lv_size":"900"},
            {"vg_name":"other","lv_name":"b","lv_size":"50"}]}]}"#;

    #[tokio::test]
    async fn keeps_only_the_requested_vgs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = ReplayFile::new(write(&dir, "r.json", TWO_VGS));
        let report = source
            .collect(&["vms-group".to_string(), "missing".to_string()])
            .await
            .expect("collects");
        assert_eq!(report.vgs.len(), 1);
        assert_eq!(report.vgs[0].name, "vms-group");
        assert_eq!(report.vgs[0].free_bytes, 100);
        assert_eq!(report.lvs.len(), 1);
        assert_eq!(
            (report.lvs[0].name.as_str(), report.lvs[0].size_bytes),
            ("a", 900)
        );
        assert!(report.vg("missing").is_none());

        let none = source.collect(&[]).await.expect("collects");
        assert_eq!(none, VgReport::default());
    }

    #[tokio::test]
    async fn seed_incident_example_replays() {
        let source = ReplayFile::new(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/seed-incident/lvm-report.json"
        )));
        let report = source
            .collect(&["vms-group".to_string()])
            .await
            .expect("collects");
        assert_eq!(report.vgs[0].size_bytes, 536_866_717_696);
        assert_eq!(report.lvs_of("vms-group").count(), 7);
    }

    #[tokio::test]
    async fn missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.json");
        match ReplayFile::new(path.clone()).collect(&["v".into()]).await {
            Err(LvmError::ReadFile(error)) => {
                assert!(error.is_not_found(), "{error}");
                assert!(error.to_string().contains(&path.display().to_string()));
            }
            other => panic!("expected ReadFile, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_fifo_or_a_device_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("report.json");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: mkfifo reads a NUL-terminated path and has no other effect on memory.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        for (path, kind) in [
            (fifo, "FIFO"),
            (PathBuf::from("/dev/zero"), "character device"),
        ] {
            let source = ReplayFile::new(path.clone());
            let vg_names = ["v".to_string()];
            let error =
                tokio::time::timeout(std::time::Duration::from_secs(5), source.collect(&vg_names))
                    .await
                    .expect("answers at once")
                    .expect_err("refused");
            assert_eq!(
                error.to_string(),
                format!(
                    "LVM report file: {}: is a {kind}, not a regular file; refusing to read it",
                    path.display()
                )
            );
        }
    }

    #[tokio::test]
    async fn parse_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            &dir,
            "bad.json",
            r#"{"report":[{"vg":[{"vg_name":"v\q"}]}]}"#,
        );
        match ReplayFile::new(path.clone()).collect(&["v".into()]).await {
            Err(LvmError::Parse { origin, message }) => {
                assert_eq!(origin, path.display().to_string());
                assert!(
                    message.starts_with("invalid JSON in field \"vg_name\""),
                    "{message}"
                );
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }
}
