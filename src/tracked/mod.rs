//! Tracked sources: what nova (or placement) believes the instances on this host use.
//!
//! Each source is one implementation of [`TrackedSource`] in its own module. A source reports
//! instances with the two per-instance figures the accounting model needs (see [`Flavor`]) and the
//! host settings that go with them (reserved disk, allocation ratio).

pub mod cached;
pub mod file;
pub mod libvirt;
pub mod placement;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Bytes in one GiB, nova's unit for `root_gb` / `ephemeral_gb` / DISK_GB.
pub const GIB: u64 = 1024 * 1024 * 1024;
/// Bytes in one MiB, nova's unit for `swap` and `reserved_host_disk_mb`.
pub const MIB: u64 = 1024 * 1024;

/// The disk part of a flavor, as nova stores it on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flavor {
    /// `root_gb`: root disk, GiB.
    pub root_gb: u64,
    /// `ephemeral_gb`: total ephemeral disk, GiB.
    pub ephemeral_gb: u64,
    /// `swap`: swap disk, **MiB**.
    pub swap_mb: u64,
    /// The instance boots from a cinder volume: its root disk is not on this host.
    pub boot_from_volume: bool,
}

impl Flavor {
    /// What nova's resource tracker adds to `local_gb_used` for this instance, in bytes:
    /// `root_gb` (0 when booted from volume) + `ephemeral_gb` + `swap / 1024` (exact, in MiB).
    pub fn resource_tracker_bytes(&self) -> u64 {
        let root_gb = if self.boot_from_volume {
            0
        } else {
            self.root_gb
        };
        (root_gb + self.ephemeral_gb) * GIB + self.swap_mb * MIB
    }

    /// What the scheduler allocates in placement as DISK_GB for this instance, in bytes:
    /// `root_gb` (0 when booted from volume) + `ephemeral_gb` + `ceil(swap / 1024)`, whole GiB.
    pub fn placement_allocation_bytes(&self) -> u64 {
        let root_gb = if self.boot_from_volume {
            0
        } else {
            self.root_gb
        };
        (root_gb + self.ephemeral_gb + self.swap_mb.div_ceil(1024)) * GIB
    }
}

/// One instance (placement: one consumer) that a tracked source places on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedInstance {
    /// Instance UUID, lower case, 36 characters.
    pub uuid: String,
    /// Bytes this instance counts for in the source's "used" figure.
    pub tracked_bytes: u64,
    /// Bytes the scheduler allocated for it in placement (whole GiB).
    pub allocated_bytes: u64,
}

impl TrackedInstance {
    /// An instance known by its flavor (libvirt metadata, the file source): tracked bytes follow
    /// nova's resource tracker, allocated bytes follow placement.
    pub fn from_flavor(uuid: impl Into<String>, flavor: &Flavor) -> Self {
        Self {
            uuid: uuid.into().to_ascii_lowercase(),
            tracked_bytes: flavor.resource_tracker_bytes(),
            allocated_bytes: flavor.placement_allocation_bytes(),
        }
    }
}

/// Host-level settings that nova applies to DISK_GB, in the units nova keeps them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostDiskSettings {
    /// `[DEFAULT] reserved_host_disk_mb`.
    pub reserved_host_disk_mb: u64,
    /// `[DEFAULT] disk_allocation_ratio` (1.0 when unset).
    pub disk_allocation_ratio: f64,
}

impl Default for HostDiskSettings {
    fn default() -> Self {
        Self {
            reserved_host_disk_mb: 0,
            disk_allocation_ratio: 1.0,
        }
    }
}

/// What one tracked source reported on one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedUsage {
    /// The instances the source places on this host.
    pub instances: Vec<TrackedInstance>,
    /// Disk nova reserves for the host, bytes.
    pub reserved_bytes: u64,
    /// The DISK_GB allocation ratio.
    pub allocation_ratio: f64,
    /// Placement's DISK_GB `total` in bytes when the source reports it; `None` means "derive it
    /// from the VG size the way nova does" (floor to whole GiB).
    pub scheduler_total_bytes: Option<u64>,
    /// Placement's own DISK_GB usage in bytes when the source reports it; `None` means "the sum
    /// of the instances' allocated bytes".
    pub scheduler_used_bytes: Option<u64>,
    /// Unix time the data was read from its origin, when that is not "now" (a cached API
    /// source): the collector exports it as the time of its last success.
    pub fetched_unix: Option<f64>,
}

impl TrackedUsage {
    /// Usage of a local source (libvirt, file): instances from flavors, settings from nova.conf.
    pub fn from_local(instances: Vec<TrackedInstance>, settings: &HostDiskSettings) -> Self {
        Self {
            instances,
            reserved_bytes: settings.reserved_host_disk_mb * MIB,
            allocation_ratio: settings.disk_allocation_ratio,
            scheduler_total_bytes: None,
            scheduler_used_bytes: None,
            fetched_unix: None,
        }
    }
}

/// Names of the tracked sources, as used in the `source` and `collector` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum SourceKind {
    /// Placement API (the scheduler's view).
    Placement,
    /// Nova os-hypervisors API.
    Nova,
    /// Nova metadata in the local libvirt domain XML files.
    Libvirt,
    /// A JSON file of instances.
    File,
}

impl SourceKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Placement => "placement",
            SourceKind::Nova => "nova",
            SourceKind::Libvirt => "libvirt",
            SourceKind::File => "file",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source of tracked usage.
#[async_trait]
pub trait TrackedSource: Send + Sync {
    /// Which source this is.
    fn kind(&self) -> SourceKind;
    /// Reads the source once.
    async fn collect(&self) -> Result<TrackedUsage, TrackedError>;
}

/// Why a tracked source failed; the message is what the operator sees in the log.
#[derive(Debug, thiserror::Error)]
pub enum TrackedError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An API (Keystone, Placement) failed; the message says which, where and why, never a secret.
    #[error("{0}")]
    Api(String),
    /// Input that does not have the expected shape.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or other origin) at fault.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}
