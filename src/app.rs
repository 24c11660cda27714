//! Wiring: turns the effective [`Config`] into sources, a collector, the report's context and
//! the HTTP state; runs the one-shot collection of `report` and `check`; renders the shell
//! completions and the man page from the command line's definition (so they never drift from
//! `--help`).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::collect::{CollectorSettings, LvmLook, SingleFlight, Snapshot, SnapshotCollector};
use crate::config::flags::LvmMethod;
use crate::config::resolve::{Config, LvmSettings};
use crate::lvm::exec::{IoMode, LvmCommand};
use crate::lvm::metadata::source::MetadataSource;
use crate::lvm::replay::ReplayFile;
use crate::lvm::RawSource;
use crate::openstack::config::AuthMethod;
use crate::openstack::keystone::Session;
use crate::output::report::{Report, ReportContext, SourceIdentity};
use crate::tracked::cached::{CacheSettings, CachedSource};
use crate::tracked::compute::ComputeClient;
use crate::tracked::file::FileSource;
use crate::tracked::flavors::FlavorCatalog;
use crate::tracked::libvirt::LibvirtSource;
use crate::tracked::nova::NovaSource;
use crate::tracked::orphans::{LookupPolicy, OrphanResolver};
use crate::tracked::placement::{InventoryPolicy, PlacementSource};
use crate::tracked::{SourceKind, TrackedSource};
use crate::web::{AppState, ServerLimits, WebConfigSource};

/// Why a command failed, which decides how the process exits (`main` is the one place that
/// prints it and exits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A bad flag, configuration file or web configuration: exit 2, like clap's own usage
    /// errors (3, UNKNOWN, for `check`, as a monitoring plugin must).
    #[error("{0}")]
    Usage(String),
    /// The work itself failed (the runtime, the listener, a source, stdout): exit 1.
    #[error("{0}")]
    Runtime(String),
}

/// Extra time the collector grants the LVM command beyond its own kill timeout, so that the
/// command's precise error (killed after N ms) wins over the generic one.
const RAW_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Builds the collector with every enabled source. Fails only when the HTTP client of an API
/// source cannot be set up.
pub fn collector(config: &Config) -> Result<SnapshotCollector, String> {
    let (raw, raw_timeout): (Box<dyn RawSource>, Duration) = match &config.lvm {
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            timeout,
            sync_io,
            method,
            verify_interval,
            devices,
        } => {
            let command = LvmCommand::new(
                lvm_path.clone(),
                command_prefix.clone(),
                *timeout,
                if *sync_io {
                    IoMode::Sync
                } else {
                    IoMode::LvmDefault
                },
            );
            let metadata = reads_metadata(*method, command_prefix);
            let raw: Box<dyn RawSource> = match metadata {
                true => {
                    let source =
                        Arc::new(MetadataSource::new(command).with_devices(devices.clone()));
                    if !verify_interval.is_zero() && command_prefix.is_empty() && devices.is_empty()
                    {
                        match tokio::runtime::Handle::try_current() {
                            Ok(_) => {
                                Arc::clone(&source)
                                    .spawn_verifier(config.watched_vgs.clone(), *verify_interval);
                            }
                            Err(_) => {
                                tracing::debug!("one-shot collection: no background verification")
                            }
                        }
                    }
                    Box::new(source)
                }
                // Behind a command prefix every VG is read by exec (reason command_prefix).
                false if *method == LvmMethod::Auto => Box::new(MetadataSource::new(command)),
                false => Box::new(MetadataSource::exec_only(command)),
            };
            // The metadata reader may spend half the timeout on its reads before a fullreport.
            let reads = if metadata {
                *timeout / 2
            } else {
                Duration::ZERO
            };
            (raw, *timeout + reads + RAW_TIMEOUT_GRACE)
        }
        LvmSettings::Replay { path } => (
            Box::new(ReplayFile::new(path.clone())),
            config.collector_timeout,
        ),
    };
    let mut tracked: Vec<Box<dyn TrackedSource>> = Vec::new();
    // The API sources share one Keystone session (one token) when both are enabled; each bounds
    // its own requests by its own --collector.<source>.request-timeout.
    let session = match (&config.placement, &config.nova) {
        (Some(p), Some(n)) => Some((&p.cloud, p.request_timeout.max(n.request_timeout))),
        (Some(p), None) => Some((&p.cloud, p.request_timeout)),
        (None, Some(n)) => Some((&n.cloud, n.request_timeout)),
        (None, None) => None,
    }
    .map(|(cloud, timeout)| Session::new(cloud.clone(), timeout).map(Arc::new))
    .transpose()?;
    if let (Some(placement), Some(session)) = (&config.placement, &session) {
        match &placement.provider.uuid {
            Some(uuid) => tracing::info!(
                provider_uuid = %uuid,
                from = %placement.provider.origin,
                "placement: looking up this host's resource provider by UUID"
            ),
            None if placement.provider.in_nova_order => tracing::info!(
                last_name = %placement.provider.name,
                from = %placement.provider.origin,
                "placement: looking up this host's resource provider by the names nova gives it: libvirt's hostname, the system hostname, then last_name"
            ),
            None => tracing::info!(
                provider = %placement.provider.name,
                from = %placement.provider.origin,
                "placement: looking up this host's resource provider by name"
            ),
        }
        let source = PlacementSource::new(Arc::clone(session), placement.provider.clone())
            .with_request_timeout(placement.request_timeout)
            .with_inventory_policy(InventoryPolicy {
                refresh_interval: placement.refresh_interval,
                inventory_max_age: placement.inventory_max_age,
            })
            .with_nova_conf(config.nova_conf_disk);
        tracked.push(cached(
            source,
            placement.refresh_interval,
            placement.max_age,
            "--collector.placement.max-age",
            config.start_spread,
        ));
    }
    // One compute client for the nova source, the flavor catalog and the orphan lookups: one
    // microversion negotiation, one request timeout (--collector.nova.request-timeout).
    let compute = match (&config.nova, &session) {
        (Some(nova), Some(session)) => Some(Arc::new(ComputeClient::new(
            Arc::clone(session),
            Some(nova.request_timeout),
        ))),
        _ => None,
    };
    if let (Some(nova), Some(compute)) = (&config.nova, &compute) {
        tracing::info!(
            hypervisor = %nova.host.name,
            from = %nova.host.origin,
            "nova: looking up this host's hypervisor (exact name first, then the short name)"
        );
        let source = NovaSource::new(Arc::clone(compute), nova.host.clone(), config.host_settings);
        tracked.push(cached(
            source,
            nova.refresh_interval,
            nova.max_age,
            "--collector.nova.max-age",
            config.start_spread,
        ));
    }
    if let Some(dir) = &config.libvirt_xml_dir {
        tracked.push(Box::new(LibvirtSource::new(
            dir.clone(),
            config.host_settings,
        )));
    }
    if let Some(path) = &config.file_path {
        tracked.push(Box::new(FileSource::new(
            path.clone(),
            config.host_settings,
        )));
    }
    let collector = SnapshotCollector::new(
        raw,
        tracked,
        CollectorSettings {
            raw_timeout,
            tracked_timeout: config.collector_timeout,
            primary: config.primary,
            watched_vgs: config.watched_vgs.clone(),
            nova_vg: config.nova_vg.clone(),
            lv_series_limit: config.lv_series_limit,
        },
    )
    .with_flavors(
        config.flavors.clone(),
        config.flavor_limit,
        flavor_catalog(config, compute.as_ref()),
    );
    let collector = match &config.lvm {
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            timeout,
            devices,
            ..
        } => collector.with_lvm_look(LvmLook {
            lvm_path: lvm_path.clone(),
            command_prefix: command_prefix.clone(),
            timeout: *timeout,
            devices_listed: !devices.is_empty(),
        }),
        LvmSettings::Replay { .. } => collector,
    };
    Ok(match orphan_resolver(config, compute.as_ref()) {
        Some(resolver) => collector.with_orphan_resolver(resolver),
        None => collector,
    })
}

/// The lookups that say why each orphan LV is one, when the nova source is enabled and
/// `--collector.nova.orphan-lookups-per-refresh` is not 0: one round per nova refresh interval,
/// verdicts served up to the nova source's max age.
fn orphan_resolver(
    config: &Config,
    compute: Option<&Arc<ComputeClient>>,
) -> Option<OrphanResolver> {
    let (nova, compute) = (config.nova.as_ref()?, compute?);
    if nova.orphan_lookups_per_refresh == 0 {
        return None;
    }
    Some(OrphanResolver::new(
        Arc::clone(compute) as Arc<dyn crate::tracked::orphans::OrphanLookup>,
        nova.host.clone(),
        LookupPolicy {
            per_round: nova.orphan_lookups_per_refresh,
            interval: nova.refresh_interval,
            max_age: nova.max_age,
        },
    ))
}

/// The summary row of the flavor fit, when it has flavors.
fn flavor_fit_summary(config: &Config) -> Option<(String, String)> {
    let names: Vec<&str> = config.flavors.iter().map(|f| f.name.as_str()).collect();
    let mut sources = Vec::new();
    if !names.is_empty() {
        sources.push(format!("--flavor {}", names.join(", ")));
    }
    if config.nova.is_some() {
        sources.push("the compute API's flavors (refreshed with the nova source)".to_string());
    }
    if config.libvirt_xml_dir.is_some() {
        sources.push("the flavors of the domains defined here (libvirt source)".to_string());
    }
    (!sources.is_empty()).then(|| {
        (
            "flavor fit".to_string(),
            format!(
                "{}, at most {} flavors",
                sources.join(" and "),
                config.flavor_limit
            ),
        )
    })
}

/// The compute API's flavor list, with the nova source only: through its session, refreshed and
/// dropped as the nova source's data is.
fn flavor_catalog(config: &Config, compute: Option<&Arc<ComputeClient>>) -> Option<FlavorCatalog> {
    let (nova, compute) = (config.nova.as_ref()?, compute?);
    Some(FlavorCatalog::new(
        Arc::clone(compute),
        nova.refresh_interval,
        nova.max_age,
    ))
}

/// The flag value of `method`.
fn method_name(method: LvmMethod) -> &'static str {
    match method {
        LvmMethod::Auto => "auto",
        LvmMethod::Metadata => "metadata",
        LvmMethod::Exec => "exec",
    }
}

/// True when `method` reads the PVs' metadata: `metadata` always (behind a command prefix every VG
/// falls back, with the reason exported), `auto` only without a command prefix.
fn reads_metadata(method: LvmMethod, command_prefix: &[String]) -> bool {
    match method {
        LvmMethod::Metadata => true,
        LvmMethod::Auto => command_prefix.is_empty(),
        LvmMethod::Exec => false,
    }
}

/// An API source behind the cache that refreshes it at most once per `interval` (with jitter)
/// and drops data older than `max_age` (named by `max_age_flag` in errors); with `start_spread`,
/// its first refresh is held back by a random delay within `interval`.
fn cached(
    source: impl TrackedSource + 'static,
    interval: Duration,
    max_age: Duration,
    max_age_flag: &'static str,
    start_spread: bool,
) -> Box<dyn TrackedSource> {
    let cache = CachedSource::new(
        Arc::new(source),
        CacheSettings {
            interval,
            max_age,
            max_age_flag,
        },
    );
    Box::new(if start_spread {
        cache.with_start_spread(interval)
    } else {
        cache
    })
}

/// A human-readable summary of the configuration (start-up log, `--config.check` and landing
/// page). Every value passes the redactor: a URL's user info or a secret never shows.
pub fn summary(config: &Config) -> Vec<(String, String)> {
    unredacted_summary(config)
        .into_iter()
        .map(|(key, value)| (key, crate::redact::clean_line(&value)))
        .collect()
}

fn unredacted_summary(config: &Config) -> Vec<(String, String)> {
    let raw = match &config.lvm {
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            timeout,
            sync_io,
            method,
            verify_interval,
            devices,
        } if !devices.is_empty() => format!(
            "LVM metadata read from the PVs (method {}; PVs found by the labels of {}; no exec fallback: a VG that cannot be read fails the lvm collector)",
            method_name(*method),
            devices
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            timeout,
            sync_io,
            method,
            verify_interval,
            ..
        } => format!(
            "{}{}{} fullreport (killed after {} ms; {})",
            match (reads_metadata(*method, command_prefix), command_prefix.is_empty()) {
                (true, true) => format!(
                    "LVM metadata read from the PVs (method {}; PVs found by, and fallback per VG to, lvm fullreport, or by their labels if lvm cannot be started; {}), else ",
                    method_name(*method),
                    if verify_interval.is_zero() {
                        "never verified".to_string()
                    } else {
                        format!("verified against lvm fullreport every {} s", verify_interval.as_secs_f64())
                    }
                ),
                (_, false) => format!("method {}, but every VG is read by exec (command_prefix: the devices are not the exporter's to read): ", method_name(*method)),
                (false, true) => "method exec: ".to_string(),
            },
            if command_prefix.is_empty() {
                String::new()
            } else {
                format!("{} ", command_prefix.join(" "))
            },
            lvm_path.display(),
            timeout.as_millis(),
            match (sync_io, command_prefix.is_empty()) {
                (true, true) => "synchronous I/O",
                (true, false) => "LVM's own I/O mode: no synchronous I/O behind a command prefix",
                (false, _) => "LVM's own I/O mode",
            }
        ),
        LvmSettings::Replay { path } => format!("saved report {}", path.display()),
    };
    let mut rows = vec![
        (
            "nova's VG".to_string(),
            format!("{} (from {})", config.nova_vg, config.nova_vg_origin),
        ),
        ("watched VGs".to_string(), config.watched_vgs.join(", ")),
        ("raw source".to_string(), raw),
        (
            "reserved_host_disk_mb".to_string(),
            config.host_settings.reserved_host_disk_mb.to_string(),
        ),
        (
            "disk_allocation_ratio".to_string(),
            config.host_settings.disk_allocation_ratio.to_string(),
        ),
    ];
    if let Some(placement) = &config.placement {
        rows.push((
            "placement source".to_string(),
            format!(
                "resource provider {} (from {}), refreshed every {} s (plus or minus 10%), one GET per refresh, inventory re-read when unproven for {} s, dropped after {} s",
                match &placement.provider.uuid {
                    Some(uuid) => format!("with UUID {uuid}"),
                    None => format!("{:?}", placement.provider.name),
                },
                placement.provider.origin,
                placement.refresh_interval.as_secs_f64(),
                placement.inventory_max_age.as_secs_f64(),
                placement.max_age.as_secs_f64()
            ),
        ));
    }
    if let Some(nova) = &config.nova {
        rows.push((
            "nova source".to_string(),
            format!(
                "hypervisor {:?} (from {}; the FQDN or the short name), refreshed every {} s (plus or minus 10%), dropped after {} s; at most {} orphan lookups per refresh",
                nova.host.name,
                nova.host.origin,
                nova.refresh_interval.as_secs_f64(),
                nova.max_age.as_secs_f64(),
                nova.orphan_lookups_per_refresh
            ),
        ));
    }
    rows.extend(flavor_fit_summary(config));
    let cloud = config
        .placement
        .as_ref()
        .map(|p| &p.cloud)
        .or(config.nova.as_ref().map(|n| &n.cloud));
    if let Some(cloud) = cloud {
        rows.push((
            "keystone".to_string(),
            format!(
                "{} as {} ({}), from {}; endpoints: interface {}{}{}{}",
                cloud.auth_url,
                cloud.who(),
                match cloud.method {
                    AuthMethod::Password { .. } => "password",
                    AuthMethod::ApplicationCredential { .. } => "v3applicationcredential",
                },
                cloud.origin,
                cloud.interface.as_str(),
                cloud
                    .region_name
                    .as_ref()
                    .map_or(String::new(), |r| format!(", region {r}")),
                cloud
                    .cacert_path
                    .as_ref()
                    .map_or(String::new(), |p| format!(", CA bundle {}", p.display())),
                if cloud.insecure {
                    ", TLS verification OFF"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(dir) = &config.libvirt_xml_dir {
        rows.push(("libvirt source".to_string(), dir.display().to_string()));
    }
    if let Some(path) = &config.file_path {
        rows.push(("file source".to_string(), path.display().to_string()));
    }
    rows.push((
        "primary tracked source".to_string(),
        config.primary.map_or("none".to_string(), |k| k.to_string()),
    ));
    rows
}

/// The HTTP state for this configuration, with the web configuration loaded at start-up.
/// Fails when a source cannot be set up (e.g. the cloud's credentials are unusable).
pub fn state(
    config: &Config,
    web: Option<Arc<WebConfigSource>>,
    limits: &ServerLimits,
) -> Result<Arc<AppState>, String> {
    Ok(Arc::new(AppState::new(
        SingleFlight::new(Arc::new(collector(config)?)),
        config.telemetry_path.clone(),
        summary(config),
        report_context(config),
        web,
        limits,
    )))
}

/// What the report and the status page say about this configuration: where nova's VG, the
/// primary source and the host's identity in each source came from.
pub fn report_context(config: &Config) -> ReportContext {
    let mut sources = Vec::new();
    if let Some(placement) = &config.placement {
        let provider = &placement.provider;
        sources.push(SourceIdentity {
            source: SourceKind::Placement.to_string(),
            reads: match &provider.uuid {
                Some(uuid) => format!("resource provider {uuid} (by UUID)"),
                None => format!("resource provider {:?}", provider.name),
            },
            origin: provider.origin.clone(),
        });
    }
    if let Some(nova) = &config.nova {
        sources.push(SourceIdentity {
            source: SourceKind::Nova.to_string(),
            reads: format!(
                "hypervisor {:?} in os-hypervisors (exact name first, then the short name)",
                nova.host.name
            ),
            origin: nova.host.origin.clone(),
        });
    }
    if let Some(dir) = &config.libvirt_xml_dir {
        sources.push(SourceIdentity {
            source: SourceKind::Libvirt.to_string(),
            reads: format!(
                "nova's metadata in the domain XML files in {}",
                dir.display()
            ),
            origin: "no host name needed: the files on this host are its instances".into(),
        });
    }
    if let Some(path) = &config.file_path {
        sources.push(SourceIdentity {
            source: SourceKind::File.to_string(),
            reads: format!("the instances listed in {}", path.display()),
            origin: "--collector.file.path".into(),
        });
    }
    let raw_source = match &config.lvm {
        LvmSettings::Exec { devices, .. } if !devices.is_empty() => format!(
            "the LVM labels and metadata of {} (no LVM run)",
            devices
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            ..
        } => {
            let prefix = if command_prefix.is_empty() {
                String::new()
            } else {
                format!("{} ", command_prefix.join(" "))
            };
            format!("{prefix}{} fullreport", lvm_path.display())
        }
        LvmSettings::Replay { path } => format!("the saved LVM report {}", path.display()),
    };
    ReportContext {
        hostname: config.host_name.clone(),
        nova_vg_origin: config.nova_vg_origin.clone(),
        primary_origin: config.primary_origin.clone(),
        reserved_host_disk_mb: config.host_settings.reserved_host_disk_mb,
        disk_allocation_ratio: config.host_settings.disk_allocation_ratio,
        sources,
        raw_source,
    }
}

/// How long [`collect_once`] waits for leftover blocking work of its runtime once the collection
/// is done (the collection itself is bounded by the collectors' timeouts).
const RUNTIME_SHUTDOWN_BOUND: Duration = Duration::from_secs(1);

/// Runs one collection with every enabled source, as a scrape would, on a runtime of its own.
/// Returns within the collectors' timeouts whatever hangs: a stuck read is left behind on its own
/// thread, and ends with the process.
pub fn collect_once(config: &Config) -> Result<Snapshot, String> {
    // One collection reads the API sources at once: nothing to spread.
    let config = Config {
        start_spread: false,
        ..config.clone()
    };
    let collector = crate::app::collector(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let snapshot = runtime.block_on(collector.collect());
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_BOUND);
    Ok(snapshot)
}

/// Collects once and builds the report.
pub fn report_once(config: &Config, top_lvs: usize) -> Result<Report, String> {
    let snapshot = collect_once(config)?;
    let mut context = report_context(config);
    for method in &snapshot.raw_methods {
        context.raw_source.push_str(&format!(
            "; vg {} read by {} ({})",
            method.vg, method.method, method.reason
        ));
    }
    Ok(Report::new(&snapshot, &context, top_lvs))
}

/// The completion script of `shell` for the exporter's command line.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = crate::config::flags::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "nova-lvm-exporter", &mut out);
    out
}

/// The man page (roff): the exporter's page, followed by one section per subcommand.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let command = crate::config::flags::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands() {
        let mut text = Vec::new();
        let name = format!("nova-lvm-exporter-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone())
            .title(name.to_uppercase())
            .render(&mut text)?;
        // One document: keep the sub-page's body (from NAME on), not a second title header.
        let text = String::from_utf8_lossy(&text);
        if let Some(at) = text.find(".SH NAME") {
            writeln!(out, ".SH \"COMMAND: {}\"", sub.get_name().to_uppercase())?;
            out.extend_from_slice(text[at..].replacen(".SH ", ".SS ", usize::MAX).as_bytes());
        }
    }
    Ok(out)
}
