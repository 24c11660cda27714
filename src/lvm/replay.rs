//! A saved LVM JSON report as a [`RawSource`], for support cases, tests and demos.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{LvmError, RawSource, VgReport};

/// Reads a saved report on every collection.
#[derive(Debug, Clone)]
pub struct ReplayFile {
    path: PathBuf,
}

impl ReplayFile {
    /// Replays `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl RawSource for ReplayFile {
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        let _ = (vg_names, &self.path);
        todo!("replay")
    }
}
