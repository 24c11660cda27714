//! The file tracked source: a JSON list of instances, for replay, support cases and tests.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{HostDiskSettings, SourceKind, TrackedError, TrackedSource, TrackedUsage};

/// Reads the instances file on every collection.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    settings: HostDiskSettings,
}

impl FileSource {
    /// Reads `path`; reserved disk and allocation ratio come from `settings`.
    pub fn new(path: PathBuf, settings: HostDiskSettings) -> Self {
        Self { path, settings }
    }
}

#[async_trait]
impl TrackedSource for FileSource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let _ = (&self.path, self.settings);
        todo!("file source")
    }
}
