//! Command line: the clap definitions, with Prometheus-style dotted flags, the subcommands
//! ([`Command`]) and their options ([`ReportArgs`], [`CheckArgs`]), and the parsers of flag
//! values. `config::resolve` turns the parsed [`Cli`] into the validated configuration.
//!
//! The doc comments of the flags are their `--help` text, so they keep nova.conf's `[SECTION]`
//! notation literally rather than as rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::output::check::{self, Threshold, Thresholds};
use crate::tracked::cached::{DEFAULT_REFRESH_INTERVAL, DEFAULT_REQUEST_TIMEOUT};
use crate::tracked::SourceKind;
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

/// How the raw source reads the VGs (`--collector.lvm.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LvmMethod {
    /// The metadata where it can be read, else lvm fullreport.
    Auto,
    /// The metadata read straight from the PVs (a VG it cannot read still falls back to exec).
    Metadata,
    /// lvm fullreport on every collection.
    Exec,
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
/// On every scrape it reads the volume group nova keeps instance disks in (one `lvm fullreport`),
/// reads what nova tracks for the instances on this host (libvirt domain XML, or a JSON file), and exports
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
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = ServerLimits::default().max_connections as u32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub web_max_connections: u32,

    /// A request's headers must arrive within this (protects against slow clients).
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = duration_text(ServerLimits::default().header_read_timeout), value_parser = parse_duration)]
    pub web_read_header_timeout: Duration,

    /// Every request is answered within this; a scrape that would take longer gets a 503.
    #[arg(long = "web.request-timeout", value_name = "DURATION", default_value = duration_text(ServerLimits::default().request_timeout), value_parser = parse_duration)]
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
    #[arg(long = "nova.reserved-host-disk-mb", value_name = "MIB", value_parser = parse_reserved_mib)]
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

    /// How to read the VGs: metadata (straight from the PVs, lvm fullreport for a VG it cannot
    /// read, with the reason in nova_lvm_raw_source_info), auto (the same, exec behind a command
    /// prefix) or exec (lvm fullreport on every scrape).
    #[arg(long = "collector.lvm.method", value_name = "METHOD", value_enum, default_value_t = LvmMethod::Auto)]
    pub lvm_method: LvmMethod,

    /// Find the PVs by reading the LVM label of these devices instead of asking lvm fullreport
    /// (where LVM cannot run, e.g. a container given only the PV devices). Comma-separated or
    /// repeated. No exec fallback: a VG the reader cannot read fails the lvm collector.
    #[arg(long = "collector.lvm.devices", value_name = "PATH", value_delimiter = ',', action = ArgAction::Append)]
    pub lvm_devices: Vec<PathBuf>,

    /// With the metadata method, compare its view with lvm fullreport this often, in the
    /// background (0s = never); a VG that differs is read with exec until a check agrees.
    #[arg(long = "collector.lvm.verify-interval", value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub lvm_verify_interval: Duration,

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

    /// Name of this host's resource provider in placement. Default: the names nova may have
    /// given it, in nova's order: libvirt's hostname (the resolver's canonical name of a short
    /// system hostname), the system hostname, nova.conf [DEFAULT] host.
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
    #[arg(long = "collector.placement.refresh-interval", value_name = "DURATION", default_value = duration_text(DEFAULT_REFRESH_INTERVAL), value_parser = parse_duration)]
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
    #[arg(long = "collector.placement.request-timeout", value_name = "DURATION", default_value = duration_text(DEFAULT_REQUEST_TIMEOUT), value_parser = parse_duration)]
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
    #[arg(long = "collector.nova.refresh-interval", value_name = "DURATION", default_value = duration_text(DEFAULT_REFRESH_INTERVAL), value_parser = parse_duration)]
    pub nova_refresh_interval: Duration,

    /// nova data older than this is dropped and the collector fails. Default: 3 refresh intervals.
    #[arg(long = "collector.nova.max-age", value_name = "DURATION", value_parser = parse_duration)]
    pub nova_max_age: Option<Duration>,

    /// How long one Keystone or compute API request may take (in the background).
    #[arg(long = "collector.nova.request-timeout", value_name = "DURATION", default_value = duration_text(DEFAULT_REQUEST_TIMEOUT), value_parser = parse_duration)]
    pub nova_request_timeout: Duration,

    /// Look up at most this many orphan LVs' instances in nova per refresh interval, to tell
    /// why each is an orphan (nova_lvm_orphan_bytes{reason}); 0 turns the lookups off.
    #[arg(long = "collector.nova.orphan-lookups-per-refresh", value_name = "COUNT", default_value_t = crate::tracked::orphans::DEFAULT_LOOKUPS_PER_REFRESH, value_parser = clap::value_parser!(u16).range(..=1000))]
    pub nova_orphan_lookups_per_refresh: u16,

    /// Hold each API source's first refresh (placement, nova) back by a random delay within its
    /// refresh interval, so that a fleet restarted together spreads its API load from the start;
    /// until then the collector fails, saying when the refresh starts. On by default (serving
    /// only: report and check read at once).
    #[arg(long = "collector.start-spread", overrides_with = "no_start_spread", action = ArgAction::SetTrue)]
    pub start_spread: bool,

    /// Read the API sources at the first scrape after start-up.
    #[arg(long = "no-collector.start-spread", overrides_with = "start_spread", action = ArgAction::SetTrue)]
    pub no_start_spread: bool,

    /// How long a tracked source may take on one scrape.
    #[arg(long = "collector.timeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub collector_timeout: Duration,

    /// A flavor whose fit to export (repeatable): NAME=DISK_GB[,SWAP_MB,EPH_GB], nova's root disk
    /// (GiB), swap (MiB) and ephemeral disk (GiB). DISK_GB 0 for a flavor booted from a volume.
    /// With the nova source, the compute API's flavors are added (a configured name wins).
    #[arg(long = "flavor", value_name = "NAME=DISK_GB[,SWAP_MB,EPH_GB]", value_parser = crate::tracked::flavors::parse_flavor_flag, action = ArgAction::Append)]
    pub flavors: Vec<crate::tracked::flavors::NamedFlavor>,

    /// At most this many flavors get nova_lvm_flavor_fit_instances series: every --flavor, then
    /// the compute API's largest first.
    #[arg(long = "flavor-limit", value_name = "N", default_value_t = crate::accounting::fit::DEFAULT_FLAVOR_LIMIT)]
    pub flavor_limit: usize,

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

    /// TOML file with any of these settings (docs/configuration.md, "Configuration file", lists the
    /// keys).
    /// A flag given on the command line wins over the file, which wins over nova.conf.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Check the configuration (flags, --config.file, nova.conf, credentials), print the
    /// effective settings with secrets redacted and exit: 0 when valid, 2 when not.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// What to do; without a subcommand the exporter serves the metrics (like `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands that collect once and exit: the web server's flags do not apply to them.
const ONE_SHOT_SUBCOMMANDS: &[&str] = &["report", "check", "textfile"];

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

/// A duration as [`parse_duration`] reads it (`60s`, `500ms`): the defaults `--help` and
/// `--config.check` show, taken from the constants that define them.
pub fn duration_text(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
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

/// `--nova.reserved-host-disk-mb`: a whole number of MiB, as nova.conf's `reserved_host_disk_mb`.
/// A size with a unit (`2G`) is refused with its value in MiB, so the operator need not convert.
fn parse_reserved_mib(text: &str) -> Result<u64, String> {
    use crate::config::nova_conf::MAX_RESERVED_HOST_DISK_MB;
    let expected = "expected a whole number of MiB like 2048, as nova.conf's reserved_host_disk_mb";
    match text.trim().parse::<u64>() {
        Ok(mib) if mib <= MAX_RESERVED_HOST_DISK_MB => Ok(mib),
        Ok(_) => Err(format!(
            "{expected}, at most {MAX_RESERVED_HOST_DISK_MB}, got {text:?}"
        )),
        Err(_) => match check::parse_size(text.trim()) {
            Ok(bytes) if bytes >= 0 && text.trim().ends_with(|c: char| c.is_ascii_alphabetic()) => {
                Err(format!(
                    "{expected}, without a unit: for {text:?} give --nova.reserved-host-disk-mb={}",
                    (bytes as u64).div_ceil(crate::units::MIB)
                ))
            }
            _ => Err(format!("{expected}, got {text:?}")),
        },
    }
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
pub fn parse_telemetry_path(text: &str) -> Result<String, String> {
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

/// What to do. Without a subcommand the exporter serves the metrics.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the metrics over HTTP (what runs without a subcommand).
    Serve,
    /// Collect once and print this host's account: VG size, raw used, tracked used, reserved,
    /// drift by cause with the largest untracked LVs, corrected free against what the scheduler
    /// believes, the recommended reserved_host_disk_mb, showing the arithmetic. Exit 0 when
    /// every collector succeeded, 1 when one failed (the report says which and why).
    Report(ReportArgs),
    /// Collect once and judge the figures like a Nagios/Icinga plugin: one status line with
    /// performance data, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a collector the figures
    /// need failed, or a bad flag).
    Check(CheckArgs),
    /// Collect once and write the metrics to FILE for node_exporter's textfile collector:
    /// atomically (a temporary file in the same directory, then rename), mode 0644, without the
    /// process metrics (node_exporter has its own). Exit 0 when every collector succeeded, 1
    /// when one failed (the file is written all the same, its success metrics say which).
    Textfile(TextfileArgs),
    /// Print the completion script for SHELL to stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `nova-lvm-exporter man > nova-lvm-exporter.1`.
    Man,
}

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For people: the figures and their arithmetic.
    Text,
    /// For scripts: the versioned document of docs/report-schema.json.
    Json,
}

/// Options of `report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// text for people, json for scripts (schema: docs/report-schema.json).
    #[arg(long = "format", value_name = "FORMAT", default_value = "text")]
    pub format: ReportFormat,

    /// How many untracked LVs to list per VG, largest first.
    #[arg(long = "top-lvs", value_name = "N", default_value_t = 10)]
    pub top_lvs: usize,
}

/// Options of `textfile`.
#[derive(Debug, Clone, Args)]
pub struct TextfileArgs {
    /// Where to write the metrics: a `*.prom` file in node_exporter's
    /// --collector.textfile.directory (the directory must exist).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

/// Thresholds of `check`, as flags; their defaults are [`Thresholds::default`] (the alerting
/// rules').
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// WARNING when untracked consumption (every cause but swap_remainder and extent_rounding)
    /// reaches this: a size (20GiB, 500MiB) or a percentage of the VG (5%); "off" disables it.
    /// Like the alert, it warns when either this or --warning.untracked-ratio is reached.
    #[arg(long = "warning.untracked", value_name = "SIZE|PCT", default_value_t = Thresholds::default().warning_untracked, value_parser = check::parse_threshold)]
    pub warning_untracked: Threshold,

    /// WARNING when untracked consumption reaches this fraction of the VG (0.05 or 5%; off
    /// disables it), whatever --warning.untracked says.
    #[arg(long = "warning.untracked-ratio", value_name = "RATIO|PCT", default_value_t = Thresholds::default().warning_untracked_ratio, value_parser = check::parse_ratio)]
    pub warning_untracked_ratio: Threshold,

    /// CRITICAL when untracked consumption reaches this (size, percentage of the VG, or off).
    #[arg(long = "critical.untracked", value_name = "SIZE|PCT", default_value_t = Thresholds::default().critical_untracked, value_parser = check::parse_threshold)]
    pub critical_untracked: Threshold,

    /// CRITICAL when untracked consumption reaches this fraction of the VG (0.05 or 5%, or
    /// off), whatever --critical.untracked says.
    #[arg(long = "critical.untracked-ratio", value_name = "RATIO|PCT", default_value_t = Thresholds::default().critical_untracked_ratio, value_parser = check::parse_ratio)]
    pub critical_untracked_ratio: Threshold,

    /// WARNING when the phantom space the scheduler can hand out (its over-estimate of the free
    /// space) reaches this (size, percentage of the VG, or off).
    #[arg(long = "warning.overestimate", value_name = "SIZE|PCT", default_value_t = Thresholds::default().warning_overestimate, value_parser = check::parse_threshold)]
    pub warning_overestimate: Threshold,

    /// CRITICAL when the scheduler's phantom space reaches this (default: a typical flavor's disk).
    #[arg(long = "critical.overestimate", value_name = "SIZE|PCT", default_value_t = Thresholds::default().critical_overestimate, value_parser = check::parse_threshold)]
    pub critical_overestimate: Threshold,

    /// WARNING when corrected free space falls below this (may be negative; the default margin
    /// absorbs nova's whole-GiB rounding of a host filled to the brim).
    #[arg(long = "warning.corrected-free", value_name = "SIZE|PCT", default_value_t = Thresholds::default().warning_corrected_free, value_parser = check::parse_threshold, allow_hyphen_values = true)]
    pub warning_corrected_free: Threshold,

    /// CRITICAL when corrected free space falls below this (off by default).
    #[arg(long = "critical.corrected-free", value_name = "SIZE|PCT", default_value_t = Thresholds::default().critical_corrected_free, value_parser = check::parse_threshold, allow_hyphen_values = true)]
    pub critical_corrected_free: Threshold,
}

impl From<CheckArgs> for Thresholds {
    fn from(args: CheckArgs) -> Self {
        Self {
            warning_untracked: args.warning_untracked,
            warning_untracked_ratio: args.warning_untracked_ratio,
            critical_untracked: args.critical_untracked,
            critical_untracked_ratio: args.critical_untracked_ratio,
            warning_overestimate: args.warning_overestimate,
            critical_overestimate: args.critical_overestimate,
            warning_corrected_free: args.warning_corrected_free,
            critical_corrected_free: args.critical_corrected_free,
        }
    }
}
