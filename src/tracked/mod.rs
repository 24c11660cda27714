//! Tracked sources: what nova (or placement) believes the instances on this host use.
//!
//! Each source is one implementation of [`TrackedSource`] in its own module. A source reports
//! instances with the two per-instance figures the accounting model needs (see [`Flavor`]) and the
//! host settings that go with them (reserved disk, allocation ratio).

pub mod cached;
pub mod compute;
mod dir_watch;
pub mod file;
pub mod flavors;
pub mod host;
pub mod libvirt;
pub mod nova;
pub mod orphans;
pub mod placement;

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::units::{GIB, MIB};

/// The largest flavor `root_gb`, `ephemeral_gb` and `swap` nova accepts (its `db.MAX_INT`, a
/// signed 32-bit column). Sources reject larger figures, which also keeps the byte arithmetic of
/// [`Flavor`] far from overflowing.
pub const NOVA_MAX_INT: u64 = 0x7FFF_FFFF;

pub use crate::ident::canonical_uuid;

/// Reads a UTF-8 text file through [`crate::input::read_text`]: a regular file of at most
/// [`crate::input::MAX_FILE_BYTES`] (blocking). Errors name `path`.
pub fn read_bounded_text(path: &Path) -> Result<String, TrackedError> {
    crate::input::read_text(path).map_err(TrackedError::from)
}

impl From<crate::openstack::ApiError> for TrackedError {
    /// An API failure, as its redacted message.
    fn from(error: crate::openstack::ApiError) -> Self {
        TrackedError::Api(error.to_string())
    }
}

impl TrackedError {
    /// An answer of the API behind `source` that does not make sense (`nova: ...`). The message
    /// holds names and values from the server's answer: it is redacted, loses control
    /// characters and is bounded ([`crate::redact::clean_message`]) here.
    pub fn invalid_answer(source: SourceKind, message: &str) -> Self {
        TrackedError::Invalid {
            path: source.as_str().into(),
            message: crate::redact::clean_message(message),
        }
    }
}

impl From<crate::input::InputError> for TrackedError {
    fn from(error: crate::input::InputError) -> Self {
        match error {
            crate::input::InputError::Io { path, source } => TrackedError::Io { path, source },
            other => TrackedError::Input(other),
        }
    }
}

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
    /// What nova's resource tracker adds to `local_gb_used` for this instance, in bytes: the one
    /// rule every source that books an instance by its flavor uses (libvirt, file, nova).
    ///
    /// `root_gb` (0 when booted from volume) + `ephemeral_gb` + `int(swap / 1024)`, whole GiB.
    /// nova's `ResourceTracker._get_usage_dict` (nova/compute/resource_tracker.py) sets `root_gb`
    /// to 0 for a volume-backed instance; `ResourceTracker._update_usage` adds `root_gb`, then
    /// `ephemeral_gb`, then `swap / 1024` to `ComputeNode.local_gb_used` one `+=` at a time, and
    /// that field is an `IntegerField` (nova/objects/compute_node.py) whose coercion is `int()`,
    /// so each sum is truncated as it is stored: a 512 MiB swap adds nothing, 1536 MiB adds 1 GiB.
    pub fn resource_tracker_bytes(&self) -> u64 {
        let root_gb = if self.boot_from_volume {
            0
        } else {
            self.root_gb
        };
        (root_gb + self.ephemeral_gb + self.swap_mb / 1024) * GIB
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
    /// Its flavor's disk sizes, when the source knows them (libvirt, file, nova; placement knows
    /// only the DISK_GB allocation). The accounting needs it to name a `disk = 0` root LV and
    /// the swap the resource tracker truncates ([`crate::accounting::drift`]).
    pub flavor: Option<Flavor>,
}

impl TrackedInstance {
    /// An instance known by its flavor (libvirt metadata, the file source): tracked bytes follow
    /// nova's resource tracker, allocated bytes follow placement.
    pub fn from_flavor(uuid: impl Into<String>, flavor: &Flavor) -> Self {
        Self {
            uuid: uuid.into().to_ascii_lowercase(),
            tracked_bytes: flavor.resource_tracker_bytes(),
            allocated_bytes: flavor.placement_allocation_bytes(),
            flavor: Some(*flavor),
        }
    }

    /// An instance known only by what the scheduler allocated for it (a placement consumer's
    /// DISK_GB, in bytes): that is both its tracked and its allocated bytes; its flavor is
    /// unknown.
    pub fn from_allocation(uuid: impl Into<String>, allocated_bytes: u64) -> Self {
        Self {
            uuid: uuid.into(),
            tracked_bytes: allocated_bytes,
            allocated_bytes,
            flavor: None,
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

impl HostDiskSettings {
    /// The reserve nova's resource tracker starts `local_gb_used` at, in whole GiB:
    /// `int(reserved_host_disk_mb / 1024)`. `ResourceTracker._update_usage_from_instances`
    /// (nova/compute/resource_tracker.py) assigns `reserved_host_disk_mb / 1024` to the integer
    /// `ComputeNode.local_gb_used`, which truncates (1500 MiB books 1 GiB). Placement's reserve
    /// rounds the other way (`convert_mb_to_ceil_gb`, 2 GiB for 1500 MiB).
    pub fn resource_tracker_reserved_gib(&self) -> u64 {
        self.reserved_host_disk_mb / 1024
    }
}

/// What the exporter's nova.conf says nova-compute sends to placement for DISK_GB, to explain a
/// `reserved` in placement that differs from `reserved_host_disk_mb` and to tell whether nova
/// overwrites an allocation ratio set through placement's API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NovaConfDisk {
    /// `[DEFAULT] reserved_host_disk_mb` in force (flag, nova.conf, else 0).
    pub reserved_host_disk_mb: u64,
    /// `[workarounds] reserve_disk_resource_for_image_cache` is true: nova adds the image
    /// cache's size (on `instances_path`, not in the VG) to DISK_GB `reserved`.
    pub image_cache_reserve: bool,
    /// `[DEFAULT] disk_allocation_ratio` when set (and not 0.0): nova then sends it on every
    /// inventory update, overwriting a ratio set through placement's API.
    pub pinned_disk_allocation_ratio: Option<f64>,
}

/// `local_gb_used` as nova's resource tracker computes it for these instances, in whole GiB (what
/// `openstack hypervisor show` prints for them): the truncated reserve plus every instance's
/// [`Flavor::resource_tracker_bytes`]. Migrations in flight, which nova also counts, are not
/// instances of this list.
pub fn resource_tracker_local_gb_used<'a>(
    settings: &HostDiskSettings,
    flavors: impl IntoIterator<Item = &'a Flavor>,
) -> u64 {
    settings.resource_tracker_reserved_gib()
        + flavors
            .into_iter()
            .map(|flavor| flavor.resource_tracker_bytes() / GIB)
            .sum::<u64>()
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
    /// Placement's DISK_GB usage in bytes when the source reports it (the placement source: the
    /// sum of the provider's DISK_GB allocations, placement's own definition of usage); `None`
    /// means "the sum of the instances' allocated bytes".
    pub scheduler_used_bytes: Option<u64>,
    /// Unix time the data was read from its origin, when that is not "now" (a cached API
    /// source): the collector exports it as the time of its last success.
    pub fetched_unix: Option<f64>,
    /// How old the oldest part of this data already was when the source returned it, for a
    /// source that reuses parts of earlier reads (placement reuses its inventory or its
    /// allocations between refreshes); `None` means everything was read just now. A cache dates
    /// the whole value back by it, so that a value is never younger than its oldest part.
    pub data_age: Option<std::time::Duration>,
    /// The source's own "used", without reserved, when it keeps one apart from its instance
    /// list (nova's `local_gb_used` less the reserve, which also holds migration claims);
    /// `None` means "the sum of the instances' tracked bytes".
    pub tracked_used_bytes: Option<u64>,
    /// The free space the source itself reports (nova's `free_disk_gb`); `None` means
    /// "placement's rule on total, reserved, ratio and used".
    pub scheduler_free_bytes: Option<i64>,
    /// nova's `disk_available_least`: free disk as the hypervisor driver last measured it (for
    /// LVM, `vg_free` in whole GiB). Only the nova source reports it.
    pub disk_available_least_bytes: Option<i64>,
    /// The placement resource provider these figures belong to (placement source only).
    pub provider_uuid: Option<String>,
    /// What nova.conf says nova sends for DISK_GB (placement source only), beside the
    /// `reserved_bytes` placement holds.
    pub nova_conf: Option<NovaConfDisk>,
    /// The flavors of the listed instances by name, when the source knows their names (the
    /// libvirt source, from `<nova:flavor name=...>`): the flavor fit's flavors without
    /// configuration.
    pub flavors: Vec<flavors::NamedFlavor>,
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
            data_age: None,
            tracked_used_bytes: None,
            scheduler_free_bytes: None,
            disk_available_least_bytes: None,
            provider_uuid: None,
            nova_conf: None,
            flavors: Vec::new(),
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
    /// A file that is not a readable regular file within the size limit.
    #[error(transparent)]
    Input(crate::input::InputError),
    /// The blocking read did not give a result: the previous one is still stuck, or it failed.
    #[error(transparent)]
    Blocked(#[from] crate::input::LaneError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let error = read_bounded_text(&path).unwrap_err();
        assert!(
            matches!(&error, TrackedError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert!(error
            .to_string()
            .starts_with(&format!("cannot read {}: ", path.display())));
        std::fs::write(&path, "text").unwrap();
        assert_eq!(read_bounded_text(&path).unwrap(), "text");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(crate::input::MAX_FILE_BYTES)
            .unwrap();
        assert_eq!(
            read_bounded_text(&path).unwrap().len() as u64,
            crate::input::MAX_FILE_BYTES
        );
    }

    /// Table from nova's own arithmetic (nova/compute/resource_tracker.py `_update_usage`,
    /// `_get_usage_dict`, `_update_usage_from_instances`; nova/objects/compute_node.py
    /// `local_gb_used = IntegerField()`), worked by hand: each `+=` is stored through `int()`.
    #[test]
    fn instances_are_booked_as_nova_s_resource_tracker_books_them() {
        let flavor = |root_gb, ephemeral_gb, swap_mb, boot_from_volume| Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume,
        };
        // (flavor, local_gb_used nova adds, DISK_GB placement allocates)
        let table = [
            (flavor(10, 0, 512, false), 10, 11),
            (flavor(10, 0, 1024, false), 11, 11),
            (flavor(10, 0, 1536, false), 11, 12),
            (flavor(10, 2, 1023, false), 12, 13),
            (flavor(10, 2, 2048, false), 14, 14),
            (flavor(10, 2, 1536, true), 3, 4),
            (flavor(0, 0, 512, true), 0, 1),
        ];
        for (f, nova_gib, placement_gib) in table {
            assert_eq!(f.resource_tracker_bytes(), nova_gib * GIB, "{f:?}");
            assert_eq!(f.placement_allocation_bytes(), placement_gib * GIB, "{f:?}");
            let instance = TrackedInstance::from_flavor("X", &f);
            assert_eq!(instance.tracked_bytes, nova_gib * GIB, "{f:?}");
        }
    }

    #[test]
    fn local_gb_used_starts_at_the_truncated_reserve() {
        let settings = |reserved_host_disk_mb| HostDiskSettings {
            reserved_host_disk_mb,
            disk_allocation_ratio: 1.0,
        };
        let flavors = [
            Flavor {
                root_gb: 20,
                ephemeral_gb: 0,
                swap_mb: 512,
                boot_from_volume: false,
            },
            Flavor {
                root_gb: 40,
                ephemeral_gb: 5,
                swap_mb: 1536,
                boot_from_volume: true,
            },
        ];
        // (reserved_host_disk_mb, reserve in local_gb_used): 1500 / 1024 = 1.46 -> 1.
        for (reserved_mb, reserved_gib) in [(0, 0), (1000, 0), (1500, 1), (2048, 2), (3071, 2)] {
            let used = resource_tracker_local_gb_used(&settings(reserved_mb), &flavors);
            assert_eq!(used, reserved_gib + 20 + 6, "{reserved_mb} MiB");
            // tracked_used of a local source is local_gb_used less that reserve, to the byte.
            let usage = TrackedUsage::from_local(
                flavors
                    .iter()
                    .map(|f| TrackedInstance::from_flavor("X", f))
                    .collect(),
                &settings(reserved_mb),
            );
            let tracked: u64 = usage.instances.iter().map(|i| i.tracked_bytes).sum();
            assert_eq!(tracked, (used - reserved_gib) * GIB);
            assert_eq!(usage.reserved_bytes, reserved_mb * MIB);
        }
    }
}
