//! Resolution of the parsed command line (with `--config.file` already merged in), `nova.conf`
//! discovery and the cloud's credentials into one validated [`Config`].
//!
//! Precedence: a flag wins over `nova.conf`, which wins over nova's own defaults. Every error is
//! one line that names the flag (or file) at fault and what was expected; `main` exits with 2.
//!
//! nova.conf's `[SECTION]` notation is kept literally in the doc comments rather than as rustdoc
//! links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::flags::{parse_vg_name, Cli, LogFormat, LogLevel, LvmMethod, DEFAULT_NOVA_CONF};
use crate::config::nova_conf::{self, NovaConf};
use crate::openstack::config::{self as cloud_config, CloudConfig};
use crate::tracked::host::{
    host_name, locate_provider, read_compute_id, ProviderName, DEFAULT_STATE_PATH,
};
use crate::tracked::placement::INVENTORY_MAX_AGE_INTERVALS;
use crate::tracked::{HostDiskSettings, NovaConfDisk, SourceKind};
use crate::web::ServerLimits;

/// Settings of the raw source.
#[derive(Debug, Clone, PartialEq)]
pub enum LvmSettings {
    /// Run the LVM tools.
    Exec {
        /// lvm binary.
        lvm_path: PathBuf,
        /// Command put before it (may be empty).
        command_prefix: Vec<String>,
        /// Synchronous device reads requested (effective only without a prefix).
        sync_io: bool,
        /// Kill them after this long.
        timeout: Duration,
        /// How the VGs are read.
        method: LvmMethod,
        /// How often the metadata reader is checked against lvm fullreport (zero: never).
        verify_interval: Duration,
        /// Devices whose labels find the PVs instead of lvm fullreport (empty: ask LVM).
        devices: Vec<PathBuf>,
    },
    /// Read a saved report.
    Replay {
        /// The report file.
        path: PathBuf,
    },
}

/// Settings of the placement source.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementSettings {
    /// Credentials and endpoint discovery (secrets redacted in `Debug`).
    pub cloud: CloudConfig,
    /// The resource provider to read, and why that name.
    pub provider: ProviderName,
    /// Mean time between refreshes.
    pub refresh_interval: Duration,
    /// Data older than this is dropped.
    pub max_age: Duration,
    /// The inventory is re-read when it has not been proven current for about this long.
    pub inventory_max_age: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
}

/// Settings of the nova source.
#[derive(Debug, Clone, PartialEq)]
pub struct NovaSettings {
    /// Credentials and endpoint discovery (the same cloud as placement's).
    pub cloud: CloudConfig,
    /// The hypervisor to read, and why that name.
    pub host: ProviderName,
    /// Mean time between refreshes.
    pub refresh_interval: Duration,
    /// Data older than this is dropped.
    pub max_age: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Orphan lookups per refresh interval (0: none).
    pub orphan_lookups_per_refresh: usize,
}

/// The effective, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen address as given (resolved when binding).
    pub listen_address: String,
    /// Metrics path.
    pub telemetry_path: String,
    /// exporter-toolkit web configuration file.
    pub web_config_file: Option<PathBuf>,
    /// Connection, timeout and concurrency limits of the HTTP server.
    pub server_limits: ServerLimits,
    /// The VG nova keeps instance disks in (tracked figures apply to it).
    pub nova_vg: String,
    /// Where `nova_vg` came from, for the start-up log.
    pub nova_vg_origin: String,
    /// VGs to watch (nova's first).
    pub watched_vgs: Vec<String>,
    /// reserved_host_disk_mb and disk_allocation_ratio.
    pub host_settings: HostDiskSettings,
    /// What nova.conf makes nova send to placement for DISK_GB (image cache reserve, a pinned
    /// allocation ratio), for the placement source's explanations.
    pub nova_conf_disk: NovaConfDisk,
    /// The raw source.
    pub lvm: LvmSettings,
    /// Per-VG cap of per-LV series.
    pub lv_series_limit: usize,
    /// libvirt XML directory, when that source is enabled.
    pub libvirt_xml_dir: Option<PathBuf>,
    /// Instances file, when that source is enabled.
    pub file_path: Option<PathBuf>,
    /// The placement source, when enabled.
    pub placement: Option<PlacementSettings>,
    /// The nova source, when enabled.
    pub nova: Option<NovaSettings>,
    /// Timeout of each tracked source.
    pub collector_timeout: Duration,
    /// Hold the API sources' first refresh back by a random delay within their refresh interval
    /// (`--collector.start-spread`; serving only).
    pub start_spread: bool,
    /// The primary tracked source, if any is enabled.
    pub primary: Option<SourceKind>,
    /// Why that source is the primary one, for the report and the status page.
    pub primary_origin: String,
    /// Log level.
    pub log_level: LogLevel,
    /// Log format.
    pub log_format: LogFormat,
    /// This host's name in nova (nova.conf `[DEFAULT] host`, else the system hostname): how
    /// `report` and the status page title the host.
    pub host_name: String,
    /// Things worth a warning at start-up (e.g. nova.conf says images_type is not lvm).
    pub warnings: Vec<String>,
    /// Flavors of the flavor fit given with `--flavor`, each name once.
    pub flavors: Vec<crate::tracked::flavors::NamedFlavor>,
    /// At most this many flavors get a fit (`--flavor-limit`).
    pub flavor_limit: usize,
}

/// A configuration error: one line naming the flag or file at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Cli {
    /// Resolves the flags, nova.conf and (for placement) clouds.yaml or the `OS_*` variables of
    /// the process into the effective configuration.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.resolve_with(&|name: &str| std::env::var(name).ok(), &cwd)
    }

    /// [`Cli::resolve`] with the environment and working directory given.
    pub fn resolve_with(self, env: cloud_config::Env, cwd: &Path) -> Result<Config, ConfigError> {
        let nova_conf = load_nova_conf(self.nova_config_file.as_deref())?;
        let conf_path = self
            .nova_config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NOVA_CONF));
        let conf = nova_conf.clone().unwrap_or_default();
        let mut warnings = Vec::new();

        if let Some(images_type) = conf.images_type.as_deref() {
            if images_type != "lvm" {
                warnings.push(format!(
                    "{}: [libvirt] images_type is {images_type:?}, not \"lvm\": nova does not keep instance disks in a VG on this host",
                    conf_path.display()
                ));
            }
        }

        let (nova_vg, nova_vg_origin) = match (
            &self.nova_images_volume_group,
            &conf.images_volume_group,
        ) {
            (Some(vg), _) => (vg.clone(), "--nova.images-volume-group".to_string()),
            (None, Some(vg)) => {
                let vg = parse_vg_name(vg).map_err(|e| {
                    ConfigError(format!(
                        "{}: [libvirt] images_volume_group: {e}",
                        conf_path.display()
                    ))
                })?;
                (
                    vg,
                    format!("{} [libvirt] images_volume_group", conf_path.display()),
                )
            }
            (None, None) if self.lvm_vgs.len() == 1 => (
                self.lvm_vgs[0].clone(),
                "--collector.lvm.vg (the only VG watched)".to_string(),
            ),
            (None, None) => {
                let why = match nova_conf {
                    None => format!("{} does not exist", conf_path.display()),
                    Some(_) => format!(
                        "{} has no [libvirt] images_volume_group",
                        conf_path.display()
                    ),
                };
                return Err(ConfigError(format!(
                    "cannot tell which VG nova uses: {why}; set --nova.images-volume-group=VG (or a single --collector.lvm.vg)"
                )));
            }
        };

        let mut watched_vgs = vec![nova_vg.clone()];
        for vg in &self.lvm_vgs {
            if !watched_vgs.contains(vg) {
                watched_vgs.push(vg.clone());
            }
        }
        if !self.lvm_vgs.is_empty() && !self.lvm_vgs.contains(&nova_vg) {
            watched_vgs.remove(0);
            warnings.push(format!(
                "nova's VG {nova_vg} is not among --collector.lvm.vg: tracked and derived figures will be absent"
            ));
        }

        let host_settings = HostDiskSettings {
            reserved_host_disk_mb: self
                .nova_reserved_host_disk_mb
                .or(conf.reserved_host_disk_mb)
                .unwrap_or(0),
            disk_allocation_ratio: self
                .nova_disk_allocation_ratio
                .or(conf.effective_disk_allocation_ratio())
                .unwrap_or(1.0),
        };
        let nova_conf_disk = NovaConfDisk {
            reserved_host_disk_mb: host_settings.reserved_host_disk_mb,
            image_cache_reserve: conf.reserve_disk_resource_for_image_cache == Some(true),
            pinned_disk_allocation_ratio: conf.disk_allocation_ratio,
        };
        if host_settings.disk_allocation_ratio != 1.0 {
            warnings.push(format!(
                "disk_allocation_ratio is {}: on thick LVM anything but 1.0 lets the scheduler promise space that does not exist",
                host_settings.disk_allocation_ratio
            ));
        }

        if !self.lvm_devices.is_empty() {
            if self.lvm_method == LvmMethod::Exec {
                return Err(ConfigError(
                    "--collector.lvm.devices reads the PVs directly: it needs --collector.lvm.method=auto or metadata, not exec".to_string(),
                ));
            }
            if !self.lvm_command_prefix.trim().is_empty() {
                return Err(ConfigError(
                    "--collector.lvm.devices reads the PVs directly: it cannot be combined with --collector.lvm.command-prefix (which runs lvm fullreport)".to_string(),
                ));
            }
        }
        let lvm = match self.lvm_replay_file {
            Some(path) => LvmSettings::Replay { path },
            None => LvmSettings::Exec {
                lvm_path: self.lvm_path,
                sync_io: !self.no_lvm_sync_io,
                command_prefix: self
                    .lvm_command_prefix
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                timeout: self.lvm_timeout,
                method: self.lvm_method,
                verify_interval: self.lvm_verify_interval,
                devices: self.lvm_devices,
            },
        };

        let api_enabled = (self.placement && !self.no_placement) || (self.nova && !self.no_nova);
        let cloud = if api_enabled {
            let flag = if self.placement && !self.no_placement {
                "--collector.placement"
            } else {
                "--collector.nova"
            };
            Some(
                cloud_config::load(self.os_cloud.as_deref(), env, cwd)
                    .map_err(|e| ConfigError(format!("{flag}: {e}")))?,
            )
        } else {
            None
        };
        let conf_path_text = conf_path.display().to_string();

        let placement = match &cloud {
            Some(cloud) if self.placement && !self.no_placement => {
                let max_age = api_max_age(
                    "placement",
                    self.placement_refresh_interval,
                    self.placement_max_age,
                )?;
                let inventory_max_age = inventory_max_age(
                    self.placement_refresh_interval,
                    max_age,
                    self.placement_inventory_max_age,
                )?;
                let state_path = self
                    .nova_state_path
                    .clone()
                    .or_else(|| conf.state_path.as_ref().map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_PATH));
                let (provider, warning) = locate_provider(
                    self.placement_provider_uuid.as_deref(),
                    self.placement_hostname.as_deref(),
                    (&state_path, read_compute_id(&state_path)),
                    conf.host.as_deref(),
                    &conf_path_text,
                );
                warnings.extend(warning);
                Some(PlacementSettings {
                    cloud: cloud.clone(),
                    provider,
                    refresh_interval: self.placement_refresh_interval,
                    max_age,
                    inventory_max_age,
                    request_timeout: self.placement_request_timeout,
                })
            }
            _ => {
                for (set, flag) in [
                    (
                        self.placement_hostname.is_some(),
                        "--collector.placement.hostname",
                    ),
                    (
                        self.placement_provider_uuid.is_some(),
                        "--collector.placement.provider-uuid",
                    ),
                ] {
                    if set {
                        warnings.push(format!(
                            "{flag} is set but the placement source is not enabled (--collector.placement)"
                        ));
                    }
                }
                None
            }
        };

        let nova = match &cloud {
            Some(cloud) if self.nova && !self.no_nova => Some(NovaSettings {
                cloud: cloud.clone(),
                host: host_name(
                    self.nova_hostname.as_deref(),
                    "--collector.nova.hostname",
                    conf.host.as_deref(),
                    &conf_path_text,
                ),
                refresh_interval: self.nova_refresh_interval,
                max_age: api_max_age("nova", self.nova_refresh_interval, self.nova_max_age)?,
                request_timeout: self.nova_request_timeout,
                orphan_lookups_per_refresh: usize::from(self.nova_orphan_lookups_per_refresh),
            }),
            _ => {
                if self.nova_hostname.is_some() {
                    warnings.push(
                        "--collector.nova.hostname is set but the nova source is not enabled (--collector.nova)".to_string(),
                    );
                }
                None
            }
        };

        let libvirt_enabled = !self.no_libvirt;
        let libvirt_xml_dir = libvirt_enabled.then_some(self.libvirt_xml_dir);
        let enabled: Vec<SourceKind> = [
            placement.as_ref().map(|_| SourceKind::Placement),
            nova.as_ref().map(|_| SourceKind::Nova),
            libvirt_xml_dir.as_ref().map(|_| SourceKind::Libvirt),
            self.file_path.as_ref().map(|_| SourceKind::File),
        ]
        .into_iter()
        .flatten()
        .collect();
        let primary_origin = match self.primary {
            Some(_) => "--tracked.primary".to_string(),
            None => {
                "the first enabled of placement, nova, libvirt, file (--tracked.primary overrides)"
                    .to_string()
            }
        };
        let primary = match self.primary {
            Some(kind) if enabled.contains(&kind) => Some(kind),
            Some(kind) => {
                return Err(ConfigError(format!(
                    "--tracked.primary={kind}: that source is not enabled (enabled: {})",
                    if enabled.is_empty() {
                        "none".to_string()
                    } else {
                        enabled
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )))
            }
            None => enabled.first().copied(),
        };
        if primary.is_none() {
            warnings.push(
                "no tracked source is enabled: only raw LVM figures will be exported".to_string(),
            );
        }

        check_flavors(&self.flavors, self.flavor_limit)?;
        Ok(Config {
            flavors: self.flavors,
            flavor_limit: self.flavor_limit,
            listen_address: self.listen_address,
            telemetry_path: self.telemetry_path,
            web_config_file: self.web_config_file,
            server_limits: ServerLimits {
                max_connections: self.web_max_connections as usize,
                header_read_timeout: self.web_read_header_timeout,
                request_timeout: self.web_request_timeout,
                ..ServerLimits::default()
            },
            nova_vg,
            nova_vg_origin,
            watched_vgs,
            host_settings,
            nova_conf_disk,
            lvm,
            lv_series_limit: self.lv_series_limit,
            libvirt_xml_dir,
            file_path: self.file_path,
            placement,
            nova,
            collector_timeout: self.collector_timeout,
            start_spread: !self.no_start_spread,
            primary,
            primary_origin,
            log_level: self.log_level,
            log_format: self.log_format,
            host_name: host_name(None, "", conf.host.as_deref(), &conf_path_text).name,
            warnings,
        })
    }
}

/// `--flavor` names each flavor once, and no more of them than `--flavor-limit`.
fn check_flavors(
    flavors: &[crate::tracked::flavors::NamedFlavor],
    limit: usize,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = flavors.iter().find(|f| !seen.insert(f.name.as_str())) {
        return Err(ConfigError(format!(
            "--flavor: flavor {:?} is given more than once",
            twice.name
        )));
    }
    if flavors.len() > limit {
        return Err(ConfigError(format!(
            "--flavor: {} flavors, more than --flavor-limit={limit}",
            flavors.len()
        )));
    }
    Ok(())
}

/// The max age of an API source's data: the flag, else 3 refresh intervals; never below one
/// interval. `source` names the flags in the error.
fn api_max_age(
    source: &str,
    interval: Duration,
    max_age: Option<Duration>,
) -> Result<Duration, ConfigError> {
    let max_age = max_age.unwrap_or(interval * 3);
    if max_age < interval {
        return Err(ConfigError(format!(
            "--collector.{source}.max-age={}ms: must be at least --collector.{source}.refresh-interval ({}ms)",
            max_age.as_millis(),
            interval.as_millis()
        )));
    }
    Ok(max_age)
}

/// How long placement's inventory may go unproven before it is read again: the flag, else 2
/// refresh intervals (but not beyond `max_age`); at least one interval (a shorter one would
/// re-read it on every refresh that found a change) and at most `max_age` (data whose inventory
/// is older than that is dropped anyway).
fn inventory_max_age(
    interval: Duration,
    max_age: Duration,
    flag: Option<Duration>,
) -> Result<Duration, ConfigError> {
    let chosen = flag.unwrap_or((interval * INVENTORY_MAX_AGE_INTERVALS).min(max_age));
    if chosen < interval || chosen > max_age {
        return Err(ConfigError(format!(
            "--collector.placement.inventory-max-age={}ms: must be between --collector.placement.refresh-interval ({}ms) and --collector.placement.max-age ({}ms)",
            chosen.as_millis(),
            interval.as_millis(),
            max_age.as_millis()
        )));
    }
    Ok(chosen)
}

fn load_nova_conf(explicit: Option<&Path>) -> Result<Option<NovaConf>, ConfigError> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_NOVA_CONF));
    match nova_conf::load(path) {
        Ok(None) if explicit.is_some() => Err(ConfigError(format!(
            "--nova.config-file: {} does not exist",
            path.display()
        ))),
        Ok(conf) => Ok(conf),
        Err(nova_conf::NovaConfError::Read(error))
            if error
                .io_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) =>
        {
            Err(ConfigError(format!(
                "{error}; {}",
                nova_conf_permission_hint(path)
            )))
        }
        Err(e) => Err(ConfigError(e.to_string())),
    }
}

/// How to let the exporter read a nova.conf it may not: join the group that owns the file (or
/// the directory that hides it), as docs/deployment.md sets up, or run as root with the drop-in.
fn nova_conf_permission_hint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let owner_group = std::fs::metadata(path)
        .or_else(|_| std::fs::metadata(path.parent().unwrap_or(Path::new("/"))))
        .ok()
        .map(|meta| meta.gid())
        .and_then(group_name);
    let join = match owner_group {
        Some(group) => format!(
            "add the exporter's user to group {group}, which owns it (usermod -a -G {group} nova-lvm-exporter, see docs/deployment.md)"
        ),
        None => "add the exporter's user to the group that owns it (see docs/deployment.md)"
            .to_string(),
    };
    format!(
        "the exporter's user must be able to read it: {join}, or run the exporter as root with the systemd drop-in packaging/systemd/root.conf"
    )
}

/// The name of group `gid` in /etc/group, if it has one there.
fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == gid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::flags::*;
    use crate::tracked::cached::{DEFAULT_REFRESH_INTERVAL, DEFAULT_REQUEST_TIMEOUT};
    use clap::Parser;

    /// Parses `args`, pointing `--nova.config-file` at an empty file unless the test sets it,
    /// so that the machine's own /etc/nova/nova.conf never leaks into a test.
    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let empty_conf = std::env::temp_dir().join("nova-lvm-exporter-test-empty-nova.conf");
        std::fs::write(&empty_conf, "").unwrap();
        let default_conf = format!("--nova.config-file={}", empty_conf.display());
        let mut argv = vec!["nova-lvm-exporter"];
        if !args.iter().any(|a| a.starts_with("--nova.config-file")) {
            argv.push(&default_conf);
        }
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
    }

    fn conf_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn computed_duration_defaults_read_back_as_the_constants() {
        for duration in [
            DEFAULT_REFRESH_INTERVAL,
            DEFAULT_REQUEST_TIMEOUT,
            ServerLimits::default().header_read_timeout,
            ServerLimits::default().request_timeout,
            Duration::from_millis(1500),
        ] {
            assert_eq!(parse_duration(&duration_text(duration)), Ok(duration));
        }
        assert_eq!(duration_text(DEFAULT_REFRESH_INTERVAL), "60s");
        let config = cli(&["--nova.images-volume-group=vg0"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.server_limits, ServerLimits::default());
        let inventory = crate::tracked::placement::InventoryPolicy::default();
        assert_eq!(inventory.refresh_interval, DEFAULT_REFRESH_INTERVAL);
    }

    #[test]
    fn the_method_is_auto_by_default_and_the_devices_need_a_reading_method() {
        let lvm = |args: &[&str]| {
            let mut all = vec!["--nova.images-volume-group=vg0"];
            all.extend_from_slice(args);
            cli(&all).unwrap().resolve().map(|config| config.lvm)
        };
        let Ok(LvmSettings::Exec {
            method, devices, ..
        }) = lvm(&[])
        else {
            panic!("the default reads LVM");
        };
        assert_eq!((method, devices), (LvmMethod::Auto, Vec::new()));
        let Ok(LvmSettings::Exec { devices, .. }) = lvm(&[
            "--collector.lvm.devices=/dev/sdb,/dev/sdc",
            "--collector.lvm.devices=/dev/sdd",
        ]) else {
            panic!("devices with auto");
        };
        assert_eq!(
            devices,
            ["/dev/sdb", "/dev/sdc", "/dev/sdd"].map(std::path::PathBuf::from)
        );
        for (args, names) in [
            (
                &[
                    "--collector.lvm.devices=/dev/sdb",
                    "--collector.lvm.method=exec",
                ][..],
                "--collector.lvm.method=auto or metadata",
            ),
            (
                &[
                    "--collector.lvm.devices=/dev/sdb",
                    "--collector.lvm.command-prefix=sudo -n",
                ][..],
                "--collector.lvm.command-prefix",
            ),
        ] {
            let error = lvm(args).unwrap_err().to_string();
            assert!(
                error.contains("--collector.lvm.devices") && error.contains(names),
                "{error}"
            );
        }
    }

    #[test]
    fn durations_follow_prometheus_syntax() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "-5s",
            "1s1m",
            "5s5s",
            "0s",
            "1.5s",
            "99999999999999999999y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn listen_addresses_are_host_and_port() {
        for good in [
            ":10061",
            "127.0.0.1:10061",
            "localhost:0",
            "[::1]:10061",
            "[::]:9",
        ] {
            assert_eq!(parse_listen_address(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "10061",
            ":notaport",
            ":99999",
            "::1:10061",
            "a b:1",
            "host:",
        ] {
            assert!(
                parse_listen_address(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn vg_names_follow_lvm_rules() {
        for good in ["vms-group", "vg0", "a.b+c_d", "cinder-volumes"] {
            assert_eq!(parse_vg_name(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "-vg",
            ".",
            "..",
            "vg/x",
            "vg name",
            "vg;rm",
            &"x".repeat(128),
        ] {
            assert!(parse_vg_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn a_bad_flag_value_names_the_flag_and_what_was_expected() {
        let err = cli(&["--collector.lvm.timeout=soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--collector.lvm.timeout"), "{err}");
        assert!(err.contains("expected a duration"), "{err}");
        let err = cli(&["--nova.disk-allocation-ratio=-1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--nova.disk-allocation-ratio"), "{err}");
        let err = cli(&["--log.format=xml"]).unwrap_err().to_string();
        assert!(err.contains("--log.format"), "{err}");
        let err = cli(&["--web.telemetry-path=metrics"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--web.telemetry-path"), "{err}");
    }

    #[test]
    fn the_telemetry_path_is_a_literal_path_apart_from_the_other_routes() {
        for accepted in ["/metrics", "/nova/lvm-metrics_v1.txt", "/~x", "/a.b/c"] {
            assert_eq!(parse_telemetry_path(accepted).as_deref(), Ok(accepted));
        }
        for (refused, reason) in [
            ("/{", "'{' is not allowed"),
            ("/{}", "'{' is not allowed"),
            ("/:x", "':' is not allowed"),
            ("/{*a}/b", "'{' is not allowed"),
            ("/{x}", "'{' is not allowed"),
            ("/{*rest}", "'{' is not allowed"),
            ("/*", "'*' is not allowed"),
            ("/a}", "'}' is not allowed"),
            ("/%7B", "'%' is not allowed"),
            ("/a b", "' ' is not allowed"),
            ("/m?x=1", "'?' is not allowed"),
            ("/m#x", "'#' is not allowed"),
            ("/métrics", "'é' is not allowed"),
            ("/metrics/", "empty segment"),
            ("//metrics", "empty segment"),
            ("/../metrics", "'..'"),
            ("/./metrics", "'.'"),
            ("metrics", "start with '/'"),
            ("", "start with '/'"),
            ("/", "served already"),
            ("/healthz", "served already"),
        ] {
            let err = parse_telemetry_path(refused).unwrap_err();
            assert!(err.contains(reason), "{refused:?}: {err}");
        }
    }

    #[test]
    fn flags_override_nova_conf_and_nova_conf_overrides_defaults() {
        let conf = conf_file(
            "[DEFAULT]\nreserved_host_disk_mb = 1500\ndisk_allocation_ratio = 1.0\n[libvirt]\nimages_type = lvm\nimages_volume_group = vms-group\n",
        );
        let path = format!("--nova.config-file={}", conf.path().display());
        let config = cli(&[&path]).unwrap().resolve().unwrap();
        assert_eq!(config.nova_vg, "vms-group");
        assert_eq!(config.watched_vgs, vec!["vms-group"]);
        assert_eq!(config.host_settings.reserved_host_disk_mb, 1500);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.primary, Some(SourceKind::Libvirt));

        let config = cli(&[
            &path,
            "--nova.reserved-host-disk-mb=0",
            "--nova.images-volume-group=other",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(config.nova_vg, "other");
        assert_eq!(config.host_settings.reserved_host_disk_mb, 0);
    }

    #[test]
    fn an_explicit_missing_nova_conf_is_an_error_but_the_default_may_be_absent() {
        let err = cli(&[
            "--nova.config-file=/nonexistent/nova.conf",
            "--nova.images-volume-group=vg",
        ])
        .unwrap()
        .resolve()
        .unwrap_err();
        assert!(err.0.contains("--nova.config-file"), "{err}");
        assert!(err.0.contains("does not exist"), "{err}");
    }

    #[test]
    fn without_nova_conf_a_vg_flag_is_required() {
        let empty = conf_file("[DEFAULT]\n");
        let path = format!("--nova.config-file={}", empty.path().display());
        let err = cli(&[&path]).unwrap().resolve().unwrap_err();
        assert!(err.0.contains("--nova.images-volume-group"), "{err}");
        let config = cli(&[&path, "--collector.lvm.vg=vms-group"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.nova_vg, "vms-group");
    }

    #[test]
    fn extra_vgs_are_watched_after_novas() {
        let empty = conf_file("[libvirt]\nimages_volume_group = vms-group\n");
        let path = format!("--nova.config-file={}", empty.path().display());
        let config = cli(&[
            &path,
            "--collector.lvm.vg=cinder-volumes",
            "--collector.lvm.vg=vms-group",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(config.watched_vgs, vec!["vms-group", "cinder-volumes"]);
    }

    #[test]
    fn a_malformed_nova_conf_is_a_clear_error() {
        let conf = conf_file("[DEFAULT]\nreserved_host_disk_mb = lots\n");
        let path = format!("--nova.config-file={}", conf.path().display());
        let err = cli(&[&path, "--nova.images-volume-group=vg"])
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.0.contains("reserved_host_disk_mb"), "{err}");
    }

    #[test]
    fn the_start_spread_is_on_unless_turned_off() {
        let resolve = |extra: &[&str]| {
            let mut args = vec!["--nova.images-volume-group=vg"];
            args.extend_from_slice(extra);
            cli(&args).unwrap().resolve().unwrap().start_spread
        };
        assert!(resolve(&[]));
        assert!(!resolve(&["--no-collector.start-spread"]));
        assert!(resolve(&[
            "--no-collector.start-spread",
            "--collector.start-spread"
        ]));
    }

    #[test]
    fn the_primary_source_must_be_enabled() {
        let err = cli(&[
            "--nova.images-volume-group=vg",
            "--no-collector.libvirt",
            "--tracked.primary=libvirt",
        ])
        .unwrap()
        .resolve()
        .unwrap_err();
        assert!(err.0.contains("--tracked.primary=libvirt"), "{err}");
        let config = cli(&[
            "--nova.images-volume-group=vg",
            "--no-collector.libvirt",
            "--collector.file.path=/x.json",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(config.primary, Some(SourceKind::File));
        assert_eq!(config.libvirt_xml_dir, None);
    }

    #[test]
    fn a_non_lvm_images_type_and_an_odd_ratio_are_warned_about() {
        let conf = conf_file("[DEFAULT]\ndisk_allocation_ratio = 2.0\n[libvirt]\nimages_type = qcow2\nimages_volume_group = vg\n");
        let path = format!("--nova.config-file={}", conf.path().display());
        let config = cli(&[&path]).unwrap().resolve().unwrap();
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    }

    #[test]
    fn the_command_prefix_is_split_without_a_shell() {
        let config = cli(&[
            "--nova.images-volume-group=vg",
            "--collector.lvm.command-prefix=sudo -n",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        match config.lvm {
            LvmSettings::Exec { command_prefix, .. } => {
                assert_eq!(command_prefix, vec!["sudo", "-n"])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn placement_env(key: &str) -> Option<String> {
        match key {
            "OS_AUTH_URL" => Some("http://keystone.example:5000/v3".into()),
            "OS_APPLICATION_CREDENTIAL_ID" => Some("ac1".into()),
            "OS_APPLICATION_CREDENTIAL_SECRET" => Some("never-shown-secret".into()),
            _ => None,
        }
    }

    #[test]
    fn placement_is_the_default_primary_when_enabled_and_names_its_provider() {
        let conf = conf_file("[DEFAULT]\nhost = cmp-7\n[libvirt]\nimages_volume_group = vg\n");
        let path = format!("--nova.config-file={}", conf.path().display());
        let config = cli(&[&path, "--collector.placement"])
            .unwrap()
            .resolve_with(&placement_env, Path::new("/nonexistent"))
            .unwrap();
        assert_eq!(config.primary, Some(SourceKind::Placement));
        let placement = config.placement.as_ref().unwrap();
        assert_eq!(placement.provider.name, "cmp-7");
        assert!(placement.provider.origin.ends_with("[DEFAULT] host"));
        assert_eq!(placement.refresh_interval, Duration::from_secs(60));
        assert_eq!(placement.max_age, Duration::from_secs(180));
        assert!(!format!("{config:?}").contains("never-shown-secret"));

        let config = cli(&[
            &path,
            "--collector.placement",
            "--collector.placement.hostname=cmp-7.example",
            "--collector.placement.refresh-interval=2m",
            "--tracked.primary=libvirt",
        ])
        .unwrap()
        .resolve_with(&placement_env, Path::new("/nonexistent"))
        .unwrap();
        assert_eq!(config.primary, Some(SourceKind::Libvirt));
        let placement = config.placement.unwrap();
        assert_eq!(placement.provider.name, "cmp-7.example");
        assert_eq!(placement.max_age, Duration::from_secs(360));
        // The inventory is re-read after 2 intervals unless the max age is shorter.
        assert_eq!(placement.inventory_max_age, Duration::from_secs(240));
        assert_eq!(
            super::inventory_max_age(Duration::from_secs(60), Duration::from_secs(90), None)
                .unwrap(),
            Duration::from_secs(90)
        );
    }

    #[test]
    fn placement_flag_errors_name_the_flag() {
        let no_env = |_: &str| None;
        let err = cli(&["--nova.images-volume-group=vg", "--collector.placement"])
            .unwrap()
            .resolve_with(&no_env, Path::new("/nonexistent"))
            .unwrap_err();
        assert!(
            err.0
                .starts_with("--collector.placement: no OpenStack credentials"),
            "{err}"
        );
        let err = cli(&[
            "--nova.images-volume-group=vg",
            "--collector.placement",
            "--collector.placement.refresh-interval=1m",
            "--collector.placement.max-age=30s",
        ])
        .unwrap()
        .resolve_with(&placement_env, Path::new("/nonexistent"))
        .unwrap_err();
        assert!(err.0.starts_with("--collector.placement.max-age="), "{err}");
        for inventory_max_age in ["30s", "4m"] {
            let err = cli(&[
                "--nova.images-volume-group=vg",
                "--collector.placement",
                "--collector.placement.refresh-interval=1m",
                &format!("--collector.placement.inventory-max-age={inventory_max_age}"),
            ])
            .unwrap()
            .resolve_with(&placement_env, Path::new("/nonexistent"))
            .unwrap_err();
            assert!(
                err.0
                    .starts_with("--collector.placement.inventory-max-age=")
                    && err.0.contains("--collector.placement.max-age (180000ms)"),
                "{err}"
            );
        }
        let err = cli(&["--collector.placement.refresh-interval=often"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--collector.placement.refresh-interval"),
            "{err}"
        );
        let config = cli(&[
            "--nova.images-volume-group=vg",
            "--collector.placement.hostname=x",
        ])
        .unwrap()
        .resolve_with(&no_env, Path::new("/nonexistent"))
        .unwrap();
        assert!(config.placement.is_none());
        assert!(config
            .warnings
            .iter()
            .any(|w| w.contains("--collector.placement.hostname")));
    }

    #[test]
    fn nova_flags_resolve_share_the_cloud_and_name_their_errors() {
        let conf = conf_file("[DEFAULT]\nhost = cmp-7\n[libvirt]\nimages_volume_group = vg\n");
        let path = format!("--nova.config-file={}", conf.path().display());
        let config = cli(&[&path, "--collector.nova"])
            .unwrap()
            .resolve_with(&placement_env, Path::new("/nonexistent"))
            .unwrap();
        // nova before libvirt, after placement.
        assert_eq!(config.primary, Some(SourceKind::Nova));
        let nova = config.nova.as_ref().unwrap();
        assert_eq!(nova.host.name, "cmp-7");
        assert!(nova.host.origin.ends_with("[DEFAULT] host"));
        assert_eq!(nova.max_age, Duration::from_secs(180));
        assert_eq!(nova.request_timeout, Duration::from_secs(30));
        assert!(!format!("{config:?}").contains("never-shown-secret"));

        let config = cli(&[
            &path,
            "--collector.nova",
            "--collector.placement",
            "--collector.nova.hostname=cmp-7.example.org",
            "--collector.nova.refresh-interval=2m",
        ])
        .unwrap()
        .resolve_with(&placement_env, Path::new("/nonexistent"))
        .unwrap();
        assert_eq!(config.primary, Some(SourceKind::Placement));
        let nova = config.nova.unwrap();
        assert_eq!(nova.host.origin, "--collector.nova.hostname");
        assert_eq!(nova.max_age, Duration::from_secs(360));
        assert_eq!(nova.cloud, config.placement.unwrap().cloud);

        let err = cli(&[
            &path,
            "--collector.nova",
            "--collector.nova.refresh-interval=1m",
            "--collector.nova.max-age=30s",
        ])
        .unwrap()
        .resolve_with(&placement_env, Path::new("/nonexistent"))
        .unwrap_err();
        assert!(err.0.starts_with("--collector.nova.max-age="), "{err}");
        let no_env = |_: &str| None;
        let err = cli(&[&path, "--collector.nova"])
            .unwrap()
            .resolve_with(&no_env, Path::new("/nonexistent"))
            .unwrap_err();
        assert!(
            err.0
                .starts_with("--collector.nova: no OpenStack credentials"),
            "{err}"
        );
        let config = cli(&[
            &path,
            "--collector.nova.hostname=x",
            "--collector.placement.provider-uuid=4e8e5957-649f-477b-9e5b-f1f75b21c03c",
        ])
        .unwrap()
        .resolve_with(&no_env, Path::new("/nonexistent"))
        .unwrap();
        assert!(config.nova.is_none());
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        let err = cli(&["--collector.placement.provider-uuid=cmp-7"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a UUID"), "{err}");
    }

    #[test]
    fn the_placement_provider_comes_from_compute_id_in_the_state_path() {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(
            state.path().join("compute_id"),
            "4e8e5957-649f-477b-9e5b-f1f75b21c03c\n",
        )
        .unwrap();
        let conf = conf_file(&format!(
            "[DEFAULT]\nhost = cmp-7\nstate_path = {}\n[libvirt]\nimages_volume_group = vg\n",
            state.path().display()
        ));
        let path = format!("--nova.config-file={}", conf.path().display());
        let config = cli(&[&path, "--collector.placement"])
            .unwrap()
            .resolve_with(&placement_env, Path::new("/nonexistent"))
            .unwrap();
        let provider = config.placement.unwrap().provider;
        assert_eq!(
            provider.uuid.as_deref(),
            Some("4e8e5957-649f-477b-9e5b-f1f75b21c03c")
        );
        assert!(
            provider.origin.contains("compute_id"),
            "{}",
            provider.origin
        );
        // --nova.state-path wins over nova.conf: an empty directory, so the name is used.
        let empty = tempfile::tempdir().unwrap();
        let config = cli(&[
            &path,
            "--collector.placement",
            &format!("--nova.state-path={}", empty.path().display()),
        ])
        .unwrap()
        .resolve_with(&placement_env, Path::new("/nonexistent"))
        .unwrap();
        let provider = config.placement.unwrap().provider;
        assert_eq!((provider.name.as_str(), provider.uuid), ("cmp-7", None));
    }

    #[test]
    fn flavors_are_given_once_each_within_the_limit_and_bad_ones_name_the_flag() {
        let config = cli(&[
            "--nova.images-volume-group=vg0",
            "--flavor=m1.large=80",
            "--flavor=m1.db=40,2048,8",
        ])
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(
            config
                .flavors
                .iter()
                .map(|f| (
                    f.name.as_str(),
                    f.flavor.root_gb,
                    f.flavor.swap_mb,
                    f.flavor.ephemeral_gb
                ))
                .collect::<Vec<_>>(),
            vec![("m1.large", 80, 0, 0), ("m1.db", 40, 2048, 8)]
        );
        assert_eq!(
            config.flavor_limit,
            crate::accounting::fit::DEFAULT_FLAVOR_LIMIT
        );
        let twice = cli(&[
            "--nova.images-volume-group=vg0",
            "--flavor=m1=80",
            "--flavor=m1=40",
        ])
        .unwrap()
        .resolve()
        .unwrap_err();
        assert_eq!(twice.0, "--flavor: flavor \"m1\" is given more than once");
        let over = cli(&[
            "--nova.images-volume-group=vg0",
            "--flavor=a=1",
            "--flavor=b=1",
            "--flavor-limit=1",
        ])
        .unwrap()
        .resolve()
        .unwrap_err();
        assert!(over.0.contains("more than --flavor-limit=1"), "{over}");
        let bad = cli(&["--flavor=m1=80,lots"]).unwrap_err().to_string();
        assert!(bad.contains("--flavor"), "{bad}");
        assert!(bad.contains("SWAP_MB \"lots\""), "{bad}");
    }
}
