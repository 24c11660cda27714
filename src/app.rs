//! Wiring: turns the effective [`Config`] into sources, a collector and the HTTP state.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{Config, LvmSettings};
use crate::collect::{Collector, CollectorSettings, SingleFlight};
use crate::lvm::exec::{IoMode, LvmCommand};
use crate::lvm::replay::ReplayFile;
use crate::lvm::RawSource;
use crate::openstack::config::AuthMethod;
use crate::openstack::keystone::Session;
use crate::tracked::cached::{CacheSettings, CachedSource};
use crate::tracked::file::FileSource;
use crate::tracked::libvirt::LibvirtSource;
use crate::tracked::nova::NovaSource;
use crate::tracked::placement::{InventoryPolicy, PlacementSource};
use crate::tracked::TrackedSource;
use crate::web::{AppState, ServerLimits, WebConfigSource};

/// Extra time the collector grants the LVM command beyond its own kill timeout, so that the
/// command's precise error (killed after N ms) wins over the generic one.
const RAW_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Builds the collector with every enabled source. Fails only when the HTTP client of an API
/// source cannot be set up.
pub fn collector(config: &Config) -> Result<Collector, String> {
    let (raw, raw_timeout): (Box<dyn RawSource>, Duration) = match &config.lvm {
        LvmSettings::Exec {
            lvm_path,
            command_prefix,
            timeout,
            sync_io,
        } => (
            Box::new(LvmCommand::new(
                lvm_path.clone(),
                command_prefix.clone(),
                *timeout,
                if *sync_io {
                    IoMode::Sync
                } else {
                    IoMode::LvmDefault
                },
            )),
            *timeout + RAW_TIMEOUT_GRACE,
        ),
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
            });
        tracked.push(cached(
            source,
            placement.refresh_interval,
            placement.max_age,
            "--collector.placement.max-age",
        ));
    }
    if let (Some(nova), Some(session)) = (&config.nova, &session) {
        tracing::info!(
            hypervisor = %nova.host.name,
            from = %nova.host.origin,
            "nova: looking up this host's hypervisor (exact name first, then the short name)"
        );
        let source = NovaSource::new(
            Arc::clone(session),
            nova.host.clone(),
            config.host_settings,
            Some(nova.request_timeout),
        );
        tracked.push(cached(
            source,
            nova.refresh_interval,
            nova.max_age,
            "--collector.nova.max-age",
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
    Ok(Collector::new(
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
    ))
}

/// An API source behind the cache that refreshes it at most once per `interval` (with jitter)
/// and drops data older than `max_age` (named by `max_age_flag` in errors).
fn cached(
    source: impl TrackedSource + 'static,
    interval: Duration,
    max_age: Duration,
    max_age_flag: &'static str,
) -> Box<dyn TrackedSource> {
    Box::new(CachedSource::new(
        Arc::new(source),
        CacheSettings {
            interval,
            max_age,
            max_age_flag,
        },
    ))
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
        } => format!(
            "{}{} fullreport (killed after {} ms; {})",
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
                "hypervisor {:?} (from {}; the FQDN or the short name), refreshed every {} s (plus or minus 10%), dropped after {} s",
                nova.host.name,
                nova.host.origin,
                nova.refresh_interval.as_secs_f64(),
                nova.max_age.as_secs_f64()
            ),
        ));
    }
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
        crate::report::ReportContext::from_config(config),
        web,
        limits,
    )))
}
