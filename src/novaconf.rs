//! Discovery of the settings nova uses from `nova.conf` (oslo.config INI syntax).

use std::path::Path;

/// The settings the exporter reads from `nova.conf`. `None` means the option is not set (nova's
/// default then applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NovaConf {
    /// `[DEFAULT] host`: the name nova-compute registers under.
    pub host: Option<String>,
    /// `[DEFAULT] state_path` (where `compute_id` lives on recent releases).
    pub state_path: Option<String>,
    /// `[DEFAULT] reserved_host_disk_mb`.
    pub reserved_host_disk_mb: Option<u64>,
    /// `[DEFAULT] disk_allocation_ratio`.
    pub disk_allocation_ratio: Option<f64>,
    /// `[libvirt] images_type`.
    pub images_type: Option<String>,
    /// `[libvirt] images_volume_group`.
    pub images_volume_group: Option<String>,
}

/// A `nova.conf` that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NovaConfError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid oslo.config INI, or an option has a bad value.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads `path`. A file that does not exist is `Ok(None)`.
pub fn load(path: &Path) -> Result<Option<NovaConf>, NovaConfError> {
    let _ = path;
    todo!("nova.conf loading")
}
