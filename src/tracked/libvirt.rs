//! The libvirt tracked source: nova's metadata in the persistent domain XML files of this host.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{HostDiskSettings, SourceKind, TrackedError, TrackedSource, TrackedUsage};

/// Reads every `*.xml` of a directory on every collection.
#[derive(Debug, Clone)]
pub struct LibvirtSource {
    dir: PathBuf,
    settings: HostDiskSettings,
}

impl LibvirtSource {
    /// Reads the domain XML files in `dir`; reserved disk and allocation ratio come from `settings`.
    pub fn new(dir: PathBuf, settings: HostDiskSettings) -> Self {
        Self { dir, settings }
    }
}

#[async_trait]
impl TrackedSource for LibvirtSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Libvirt
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let _ = (&self.dir, self.settings);
        todo!("libvirt source")
    }
}
