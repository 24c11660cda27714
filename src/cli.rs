//! Command line: clap definitions with Prometheus-style dotted flags, and their resolution
//! (together with `nova.conf` discovery) into one validated [`Config`].
//!
//! Precedence: a flag wins over `nova.conf`, which wins over nova's own defaults. Every error is
//! one line that names the flag (or file) at fault and what was expected; `main` exits with 2.
//!
//! The doc comments of the flags are their `--help` text, so they keep nova.conf's `[SECTION]`
//! notation literally rather than as rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::novaconf::{self, NovaConf};
use crate::openstack::config::{self as cloud_config, CloudConfig};
use crate::tracked::host::{
    host_name, locate_provider, read_compute_id, ProviderName, DEFAULT_STATE_PATH,
};
use crate::tracked::{HostDiskSettings, SourceKind};
use crate::web::ServerLimits;

/// The port we listen on by default. Prometheus' default port allocations list 9100-9999 as full;
/// this one is above that block and not allocated to another exporter.
pub const DEFAULT_PORT: u16 = 10061;

/// Where nova keeps its configuration on a compute node.
pub const DEFAULT_NOVA_CONF: &str = "/etc/nova/nova.conf";

/// `--version` text: the crate version and the git revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("NOVA_LVM_EXPORTER_REVISION"),
    ")"
);

/// Log verbosity (`--log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including each LVM command line and its stderr.
    Debug,
    /// Start-up summary and collection failures.
    Info,
    /// Collection failures and suspicious configuration.
    Warn,
    /// Only errors.
    Error,
}

/// Log line format (`--log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, like the Prometheus Go exporters.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Measures the LVM disk space that OpenStack nova does not see.
///
/// On every scrape it reads the volume group nova keeps instance disks in (vgs/lvs), reads what
/// nova tracks for the instances on this host (libvirt domain XML, or a JSON file), and exports
/// drift, untracked consumption by cause, the free space the scheduler should see, and how much
/// phantom space it is handing out.
#[derive(Debug, Parser)]
#[command(name = "nova-lvm-exporter", version = VERSION, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Address to listen on: [HOST]:PORT. ":PORT" listens on all interfaces.
    #[arg(long = "web.listen-address", value_name = "[HOST]:PORT", default_value_t = format!(":{DEFAULT_PORT}"), value_parser = parse_listen_address)]
    pub listen_address: String,

    /// TLS, basic auth and response headers, in the format of Prometheus' exporter-toolkit
    /// (the same file as node_exporter's --web.config.file). Re-read when it changes.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Open connections at most; more wait in the kernel's backlog.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub web_max_connections: u32,

    /// A request's headers must arrive within this (protects against slow clients).
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub web_read_header_timeout: Duration,

    /// Every request is answered within this; a scrape that would take longer gets a 503.
    #[arg(long = "web.request-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub web_request_timeout: Duration,

    /// Path under which the metrics are exposed.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// nova.conf to read images_volume_group, reserved_host_disk_mb and disk_allocation_ratio from.
    /// The default path may be absent (then set the values with flags); a path given here must exist.
    #[arg(long = "nova.config-file", value_name = "FILE")]
    pub nova_config_file: Option<PathBuf>,

    /// The VG nova keeps instance disks in. Overrides nova.conf [libvirt] images_volume_group.
    #[arg(long = "nova.images-volume-group", value_name = "VG", value_parser = parse_vg_name)]
    pub nova_images_volume_group: Option<String>,

    /// Disk reserved for the host, MiB. Overrides nova.conf [DEFAULT] reserved_host_disk_mb (default 0).
    #[arg(long = "nova.reserved-host-disk-mb", value_name = "MIB", value_parser = clap::value_parser!(u64).range(..=crate::novaconf::MAX_RESERVED_HOST_DISK_MB))]
    pub nova_reserved_host_disk_mb: Option<u64>,

    /// DISK_GB allocation ratio. Overrides nova.conf [DEFAULT] disk_allocation_ratio (then
    /// initial_disk_allocation_ratio; default 1.0).
    #[arg(long = "nova.disk-allocation-ratio", value_name = "RATIO", value_parser = parse_ratio)]
    pub nova_disk_allocation_ratio: Option<f64>,

    /// A volume group to watch (repeatable). Default: nova's images_volume_group.
    #[arg(long = "collector.lvm.vg", value_name = "VG", value_parser = parse_vg_name, action = ArgAction::Append)]
    pub lvm_vgs: Vec<String>,

    /// Path of the lvm binary (the exporter runs `lvm fullreport`).
    #[arg(
        long = "collector.lvm.lvm-path",
        value_name = "PATH",
        default_value = "/usr/sbin/lvm"
    )]
    pub lvm_path: PathBuf,

    /// Command (and arguments) to put before lvm, e.g. "sudo -n". Split on whitespace; no shell.
    #[arg(
        long = "collector.lvm.command-prefix",
        value_name = "COMMAND",
        default_value = ""
    )]
    pub lvm_command_prefix: String,

    /// Start LVM with synchronous device reads (a seccomp filter refuses io_setup), which saves
    /// LVM's AIO teardown, about two thirds of a small report's time. On by default; applies only
    /// without a command prefix (with sudo, set use_aio = 0 in lvm.conf instead).
    #[arg(long = "collector.lvm.sync-io", overrides_with = "no_lvm_sync_io", action = ArgAction::SetTrue)]
    pub lvm_sync_io: bool,

    /// Let LVM choose its I/O mode (lvm.conf global/use_aio).
    #[arg(long = "no-collector.lvm.sync-io", overrides_with = "lvm_sync_io", action = ArgAction::SetTrue)]
    pub no_lvm_sync_io: bool,

    /// How long one LVM report may take before it is killed (e.g. 5s, 500ms).
    #[arg(long = "collector.lvm.timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub lvm_timeout: Duration,

    /// Read this saved LVM JSON report (vgs/lvs/lvm fullreport --reportformat json) instead of
    /// running LVM. Re-read on every scrape.
    #[arg(long = "collector.lvm.replay-file", value_name = "FILE")]
    pub lvm_replay_file: Option<PathBuf>,

    /// At most this many per-LV series (nova_lvm_lv_size_bytes) per VG; the rest are summed per owner in lv="(other)", a name no LV can have.
    #[arg(
        long = "collector.lvm.lv-series-limit",
        value_name = "N",
        default_value_t = 100
    )]
    pub lv_series_limit: usize,

    /// Enable the libvirt tracked source (nova metadata in the domain XML files). On by default.
    #[arg(long = "collector.libvirt", overrides_with = "no_libvirt", action = ArgAction::SetTrue)]
    pub libvirt: bool,

    /// Disable the libvirt tracked source.
    #[arg(long = "no-collector.libvirt", overrides_with = "libvirt", action = ArgAction::SetTrue)]
    pub no_libvirt: bool,

    /// Directory of the persistent libvirt domain XML files (kolla: the nova_libvirt volume's qemu dir).
    #[arg(
        long = "collector.libvirt.xml-dir",
        value_name = "DIR",
        default_value = "/etc/libvirt/qemu"
    )]
    pub libvirt_xml_dir: PathBuf,

    /// Enable the file tracked source with this JSON file of instances.
    #[arg(long = "collector.file.path", value_name = "FILE")]
    pub file_path: Option<PathBuf>,

    /// Enable the placement tracked source (the scheduler's view). Needs Keystone credentials:
    /// --os-cloud (clouds.yaml) or the OS_* variables, for a user with the service or admin role.
    #[arg(long = "collector.placement", overrides_with = "no_placement", action = ArgAction::SetTrue)]
    pub placement: bool,

    /// Disable the placement tracked source (the default).
    #[arg(long = "no-collector.placement", overrides_with = "placement", action = ArgAction::SetTrue)]
    pub no_placement: bool,

    /// The cloud in clouds.yaml (merged with secure.yaml) to authenticate with. Without it the
    /// OS_* environment variables are used.
    #[arg(long = "os-cloud", env = "OS_CLOUD", value_name = "NAME")]
    pub os_cloud: Option<String>,

    /// Name of this host's resource provider in placement. Default: nova.conf [DEFAULT] host,
    /// else the system hostname.
    #[arg(long = "collector.placement.hostname", value_name = "NAME")]
    pub placement_hostname: Option<String>,

    /// UUID of this host's resource provider (nova's compute node UUID). Overrides the UUID in
    /// $state_path/compute_id and the name.
    #[arg(long = "collector.placement.provider-uuid", value_name = "UUID", value_parser = parse_uuid)]
    pub placement_provider_uuid: Option<String>,

    /// nova's state directory, where nova-compute keeps compute_id (its compute node UUID, also
    /// its resource provider's). Overrides nova.conf [DEFAULT] state_path (default /var/lib/nova).
    #[arg(long = "nova.state-path", value_name = "DIR")]
    pub nova_state_path: Option<PathBuf>,

    /// Refresh placement data at most this often (plus or minus up to 10% at random); scrapes in
    /// between are served from the cache.
    #[arg(long = "collector.placement.refresh-interval", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub placement_refresh_interval: Duration,

    /// Placement data older than this is dropped and the collector fails. Default: 3 refresh
    /// intervals.
    #[arg(long = "collector.placement.max-age", value_name = "DURATION", value_parser = parse_duration)]
    pub placement_max_age: Option<Duration>,

    /// Re-read the DISK_GB inventory (total, reserved, allocation ratio) when it has not been
    /// proven current for about this long. Each refresh makes one GET, normally of the
    /// allocations, whose provider generation proves the inventory unchanged for free; only
    /// after a change does a later refresh read the inventory instead. Data is as old as its
    /// oldest part. Default: 2 refresh intervals (at most --collector.placement.max-age).
    #[arg(long = "collector.placement.inventory-max-age", value_name = "DURATION", value_parser = parse_duration)]
    pub placement_inventory_max_age: Option<Duration>,

    /// How long one Keystone or Placement HTTP request may take (in the background: a scrape
    /// never waits longer than --collector.timeout).
    #[arg(long = "collector.placement.request-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub placement_request_timeout: Duration,

    /// Enable the nova tracked source (the os-hypervisors API, clouds before microversion 2.88).
    /// Needs Keystone credentials (as for placement) of a user with the admin role.
    #[arg(long = "collector.nova", overrides_with = "no_nova", action = ArgAction::SetTrue)]
    pub nova: bool,

    /// Disable the nova tracked source (the default).
    #[arg(long = "no-collector.nova", overrides_with = "nova", action = ArgAction::SetTrue)]
    pub no_nova: bool,

    /// This host's hypervisor_hostname in nova (the FQDN or the short name both match).
    /// Default: nova.conf [DEFAULT] host, else the system hostname.
    #[arg(long = "collector.nova.hostname", value_name = "NAME")]
    pub nova_hostname: Option<String>,

    /// Refresh nova data at most this often (plus or minus up to 10% at random).
    #[arg(long = "collector.nova.refresh-interval", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub nova_refresh_interval: Duration,

    /// nova data older than this is dropped and the collector fails. Default: 3 refresh intervals.
    #[arg(long = "collector.nova.max-age", value_name = "DURATION", value_parser = parse_duration)]
    pub nova_max_age: Option<Duration>,

    /// How long one Keystone or compute API request may take (in the background).
    #[arg(long = "collector.nova.request-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub nova_request_timeout: Duration,

    /// How long a tracked source may take on one scrape.
    #[arg(long = "collector.timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub collector_timeout: Duration,

    /// The tracked source that drives the derived metrics. Default: placement if enabled, else
    /// nova, else libvirt, else file.
    #[arg(long = "tracked.primary", value_name = "SOURCE")]
    pub primary: Option<SourceKind>,

    /// Only log messages with this severity or above.
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info")]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_name = "FORMAT", default_value = "logfmt")]
    pub log_format: LogFormat,

    /// TOML file with any of these settings (the README's "Configuration file" lists the keys).
    /// A flag given on the command line wins over the file, which wins over nova.conf.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Check the configuration (flags, --config.file, nova.conf, credentials), print the
    /// effective settings with secrets redacted and exit: 0 when valid, 2 when not.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// What to do; without a subcommand the exporter serves the metrics (like `serve`).
    #[command(subcommand)]
    pub command: Option<crate::commands::Command>,
}

/// Subcommands that collect once and exit: the web server's flags do not apply to them.
const ONE_SHOT_SUBCOMMANDS: &[&str] = &["report", "check"];

/// The command line as parsed: [`Cli`]'s command with every top-level flag made global, so
/// that the collection flags may also follow a subcommand (`report --collector.lvm.vg=...`).
/// The `--web.*` flags stay out of the help of `report` and `check`, where they do nothing.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let command = Cli::command().mut_args(|arg| arg.global(true));
    // clap propagates a global flag to a subcommand only when the subcommand lacks one with its
    // id: hidden copies keep the web flags accepted after `report`/`check` but out of their help.
    let hidden_web_flags: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some_and(|long| long.starts_with("web.")))
        .map(|arg| arg.clone().hide(true))
        .collect();
    ONE_SHOT_SUBCOMMANDS.iter().fold(command, |command, name| {
        command.mut_subcommand(name, |subcommand| {
            subcommand.args(hidden_web_flags.iter().cloned())
        })
    })
}

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
        if host_settings.disk_allocation_ratio != 1.0 {
            warnings.push(format!(
                "disk_allocation_ratio is {}: on thick LVM anything but 1.0 lets the scheduler promise space that does not exist",
                host_settings.disk_allocation_ratio
            ));
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

        Ok(Config {
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
            lvm,
            lv_series_limit: self.lv_series_limit,
            libvirt_xml_dir,
            file_path: self.file_path,
            placement,
            nova,
            collector_timeout: self.collector_timeout,
            primary,
            primary_origin,
            log_level: self.log_level,
            log_format: self.log_format,
            host_name: host_name(None, "", conf.host.as_deref(), &conf_path_text).name,
            warnings,
        })
    }
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
    let chosen = flag.unwrap_or((interval * 2).min(max_age));
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
    match novaconf::load(path) {
        Ok(None) if explicit.is_some() => Err(ConfigError(format!(
            "--nova.config-file: {} does not exist",
            path.display()
        ))),
        Ok(conf) => Ok(conf),
        Err(e) => Err(ConfigError(e.to_string())),
    }
}

/// Parses a Prometheus-style duration: one or more `<integer><unit>` with units
/// `ms`, `s`, `m`, `h`, `d`, `w`, `y` in decreasing order (`1m30s`, `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let expected = || format!("expected a duration like 5s, 500ms or 1m30s, got {text:?}");
    if text.is_empty() {
        return Err(expected());
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit_index: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(expected());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| expected())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(expected());
        };
        if last_unit_index.is_some_and(|last| index <= last) {
            return Err(expected());
        }
        last_unit_index = Some(index);
        total_ms = value
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(expected)?;
    }
    if total_ms == 0 {
        return Err(format!("expected a duration greater than 0, got {text:?}"));
    }
    Ok(Duration::from_millis(total_ms))
}

/// Validates a VG name against LVM's rules: 1-127 characters from `a-z A-Z 0-9 + _ . -`, not
/// starting with `-`, not `.` or `..`.
pub fn parse_vg_name(text: &str) -> Result<String, String> {
    let valid_chars = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'_' | b'.' | b'-'));
    if text.is_empty()
        || text.len() > 127
        || !valid_chars
        || text.starts_with('-')
        || text == "."
        || text == ".."
    {
        return Err(format!(
            "expected an LVM volume group name (1-127 characters of a-z A-Z 0-9 + _ . -, not starting with -), got {text:?}"
        ));
    }
    Ok(text.to_string())
}

/// Checks the shape of a listen address, `[HOST]:PORT` (an IPv6 host in brackets), so that a
/// typo is a usage error; whether the address can be bound is found out when binding.
pub fn parse_listen_address(text: &str) -> Result<String, String> {
    let expected = || {
        format!("expected [HOST]:PORT such as :10061, 127.0.0.1:10061 or [::1]:10061, got {text:?}")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
    port.parse::<u16>().map_err(|_| expected())?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(char::is_whitespace) || (host.contains(':') && !bracketed) {
        return Err(expected());
    }
    Ok(text.to_string())
}

fn parse_uuid(text: &str) -> Result<String, String> {
    crate::tracked::canonical_uuid(text).ok_or_else(|| {
        format!("expected a UUID like 4e8e5957-649f-477b-9e5b-f1f75b21c03c, got {text:?}")
    })
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if ratio.is_finite() && ratio > 0.0 => Ok(ratio),
        _ => Err(format!("expected a positive number like 1.0, got {text:?}")),
    }
}

/// The paths the server serves besides the metrics path.
const OTHER_ROUTES: [&str; 2] = ["/", "/healthz"];

/// `--web.telemetry-path`: a literal path, never a route pattern. The router treats `{...}` and
/// `*` as captures (`/{x}` would serve the metrics on every path, `/{` panics), so only
/// unreserved URL characters (letters, digits, `-`, `.`, `_`, `~`) in non-empty segments are
/// accepted, no `.` or `..` segment, and none of the other routes.
fn parse_telemetry_path(text: &str) -> Result<String, String> {
    let expected = "expected a literal URL path like /metrics: '/' then segments of letters, digits, '-', '.', '_' and '~'";
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("{expected}; it must start with '/'"));
    };
    if OTHER_ROUTES.contains(&text) {
        return Err(format!(
            "{text} is served already ({})",
            OTHER_ROUTES.join(" and ")
        ));
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(format!(
                "{expected}; it has an empty segment ('//' or a trailing '/')"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!("{expected}; '.' and '..' segments are not allowed"));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        {
            return Err(format!("{expected}; {bad:?} is not allowed"));
        }
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
