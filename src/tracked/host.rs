//! Host identity: how this host is named in nova and placement, and how a configured name is
//! matched against the names nova reports. One module, used by both OpenStack sources
//! ([`super::nova`] finds its hypervisor, [`super::placement`] its resource provider) and by the
//! flag resolution that builds their [`ProviderName`].
//!
//! - The name: `--collector.<source>.hostname`, else nova.conf's `[DEFAULT] host`, else the
//!   system hostname, nova-compute's own default ([`host_name`], [`provider_name`]).
//! - The resource provider's name without help ([`nova_provider_names`]): nova's libvirt driver
//!   names its compute node, and so the provider, after libvirt's hostname
//!   (`Host.get_hostname` in nova/virt/libvirt/host.py calls `virConnectGetHostname`), not after
//!   `[DEFAULT] host`. libvirt's `virGetHostname` returns `gethostname()` as it is when it has a
//!   dot or starts with `localhost`, else the resolver's canonical name for it
//!   (`getaddrinfo` with `AI_CANONNAME`, [`canonical_name`]) unless that is missing or starts with
//!   `localhost`.
//! - The compute node's UUID in `$state_path/compute_id` ([`read_compute_id`]), which names the
//!   resource provider exactly when nova-compute wrote it ([`locate_provider`]).
//! - FQDN rules: libvirt reports the FQDN on some hosts and the short name on others, so a name
//!   matches exactly first, else by its short name ([`match_hostname`], [`short_name`]).
//!
//! It sits with the sources, not with the configuration: the sources take a [`ProviderName`]
//! and match names by these rules while they run, and a source may not import from the
//! configuration layer above it. The configuration layer calls down into this module to
//! resolve the flags.

use std::path::Path;

/// How to find this host's resource provider (or, for the nova source, its hypervisor), and
/// why: by `uuid` when one is known, else by `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderName {
    /// The name looked up (also used in messages when looking up by UUID).
    pub name: String,
    /// Where the name (or, with `uuid`, the UUID) came from, for the log and error messages.
    pub origin: String,
    /// The provider's UUID, when known (`--collector.placement.provider-uuid`, or nova's
    /// `$state_path/compute_id`): then it is looked up by UUID, not by name.
    pub uuid: Option<String>,
    /// No flag named the host: the name is nova-compute's default, so the provider is looked up
    /// by the names nova may have given it, in [`nova_provider_names`]'s order, `name` last.
    pub in_nova_order: bool,
}

/// One name the provider may have, and why it is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCandidate {
    /// The name.
    pub name: String,
    /// Where it came from, for the log and error messages.
    pub origin: String,
}

/// The names nova-compute's libvirt driver may have given this host's resource provider, in the
/// order to try them, without repeats:
///
/// 1. libvirt's hostname, what nova names the compute node and its provider after: `hostname`
///    (the kernel's, `gethostname()`) when it has a dot or starts with `localhost`, else
///    `canonical` (the resolver's canonical name for it) unless that is absent or starts with
///    `localhost` (libvirt's `virGetHostname`, called by nova's `Host.get_hostname`);
/// 2. `hostname` itself (libvirt falls back to it when the resolver fails, so a provider created
///    while DNS was down has the short name);
/// 3. `configured`, nova.conf's `[DEFAULT] host` or the name the exporter was otherwise given
///    (other drivers, and hosts where an operator aligned the two).
pub fn nova_provider_names(
    hostname: &str,
    canonical: Option<&str>,
    configured: &NameCandidate,
) -> Vec<NameCandidate> {
    let short_and_not_local = !hostname.contains('.') && !hostname.starts_with("localhost");
    let libvirt = match canonical {
        Some(canonical)
            if short_and_not_local && !canonical.is_empty() && !canonical.starts_with("localhost") =>
        {
            NameCandidate {
                name: canonical.to_string(),
                origin: format!(
                    "libvirt's hostname: the resolver's canonical name for the system hostname {hostname:?}"
                ),
            }
        }
        _ => NameCandidate {
            name: hostname.to_string(),
            origin: "libvirt's hostname: the system hostname".to_string(),
        },
    };
    let system = NameCandidate {
        name: hostname.to_string(),
        origin: "the system hostname".to_string(),
    };
    let mut names: Vec<NameCandidate> = Vec::new();
    for candidate in [libvirt, system, configured.clone()] {
        if !candidate.name.is_empty() && names.iter().all(|n| n.name != candidate.name) {
            names.push(candidate);
        }
    }
    names
}

/// The resolver's canonical name for `host` (`getaddrinfo` with `AI_CANONNAME`, as libvirt's
/// `virGetHostname` asks for it). Blocking: call it off the async runtime, with a bound.
pub fn canonical_name(host: &str) -> Result<Option<String>, String> {
    let c_host = std::ffi::CString::new(host)
        .map_err(|_| format!("the hostname {host:?} holds a NUL byte"))?;
    // SAFETY: zeroed is a valid `addrinfo` (integers and null pointers).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `c_host` is NUL-terminated and outlives the call; `hints` and `found` are valid
    // for the call; on success `found` is a list this function frees below, once.
    let status =
        unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if status != 0 {
        // SAFETY: gai_strerror returns a static NUL-terminated string for any status.
        let why = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(status)) };
        return Err(format!(
            "the resolver has no address for {host:?}: {}",
            why.to_string_lossy()
        ));
    }
    // SAFETY: getaddrinfo succeeded, so `found` points to at least one entry; `ai_canonname` of
    // the first is null or a NUL-terminated string owned by the list, copied before the free.
    let name = unsafe {
        let first = &*found;
        let name = (!first.ai_canonname.is_null()).then(|| {
            std::ffi::CStr::from_ptr(first.ai_canonname)
                .to_string_lossy()
                .into_owned()
        });
        libc::freeaddrinfo(found);
        name
    };
    Ok(name)
}

/// The provider name to look up: the flag, else nova.conf's `[DEFAULT] host`, else the system
/// hostname (nova-compute's own default for `host`).
pub fn provider_name(
    flag: Option<&str>,
    nova_conf_host: Option<&str>,
    nova_conf_path: &str,
) -> ProviderName {
    host_name(
        flag,
        "--collector.placement.hostname",
        nova_conf_host,
        nova_conf_path,
    )
}

/// This host's name as nova knows it: `flag` (named `flag_name` in messages), else nova.conf's
/// `[DEFAULT] host`, else the system hostname (nova-compute's own default for `host`). Without
/// the flag the result is marked [`ProviderName::in_nova_order`].
pub fn host_name(
    flag: Option<&str>,
    flag_name: &str,
    nova_conf_host: Option<&str>,
    nova_conf_path: &str,
) -> ProviderName {
    if let Some(name) = flag {
        return ProviderName {
            name: name.to_string(),
            origin: flag_name.to_string(),
            uuid: None,
            in_nova_order: false,
        };
    }
    if let Some(host) = nova_conf_host.filter(|h| !h.is_empty()) {
        return ProviderName {
            name: host.to_string(),
            origin: format!("{nova_conf_path} [DEFAULT] host"),
            uuid: None,
            in_nova_order: true,
        };
    }
    ProviderName {
        name: system_hostname(),
        origin: "the system hostname (nova.conf sets no [DEFAULT] host)".to_string(),
        uuid: None,
        in_nova_order: true,
    }
}

/// nova's state directory when nova.conf sets none (`[DEFAULT] state_path`).
pub const DEFAULT_STATE_PATH: &str = "/var/lib/nova";

/// What `$state_path/compute_id` held (nova-compute writes the compute node's UUID there since
/// 2023.2; it is also the UUID of the node's resource provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeId {
    /// The file does not exist (an older release, or another state path).
    Absent,
    /// The file holds this UUID.
    Uuid(String),
    /// The file exists but cannot be used: why.
    Unusable(String),
}

/// Reads `compute_id` in `state_path`.
pub fn read_compute_id(state_path: &Path) -> ComputeId {
    let path = state_path.join("compute_id");
    match crate::input::read_text(&path) {
        Err(e) if e.is_not_found() => ComputeId::Absent,
        Err(e) => ComputeId::Unusable(e.to_string()),
        Ok(text) => match super::canonical_uuid(text.trim()) {
            Some(uuid) => ComputeId::Uuid(uuid),
            None => ComputeId::Unusable(format!(
                "{} does not hold a UUID: {:?}",
                path.display(),
                text.trim().chars().take(60).collect::<String>()
            )),
        },
    }
}

/// How to find the provider, in order: `--collector.placement.provider-uuid`, then
/// `--collector.placement.hostname` (an operator's choice wins over files), then the UUID in
/// `compute_id` (what nova-compute itself uses on recent releases), then nova.conf's `host`, then
/// the system hostname. The second value is a warning for the start-up log, when `compute_id`
/// exists but cannot be used.
pub fn locate_provider(
    uuid_flag: Option<&str>,
    name_flag: Option<&str>,
    compute_id: (&Path, ComputeId),
    nova_conf_host: Option<&str>,
    nova_conf_path: &str,
) -> (ProviderName, Option<String>) {
    let by_name = provider_name(name_flag, nova_conf_host, nova_conf_path);
    if let Some(uuid) = uuid_flag {
        return (
            ProviderName {
                uuid: Some(uuid.to_ascii_lowercase()),
                origin: "--collector.placement.provider-uuid".to_string(),
                in_nova_order: false,
                ..by_name
            },
            None,
        );
    }
    if name_flag.is_some() {
        return (by_name, None);
    }
    let (state_path, id) = compute_id;
    match id {
        ComputeId::Uuid(uuid) => (
            ProviderName {
                uuid: Some(uuid),
                origin: format!(
                    "{} (nova-compute's compute node UUID)",
                    state_path.join("compute_id").display()
                ),
                ..by_name
            },
            None,
        ),
        ComputeId::Absent => (by_name, None),
        ComputeId::Unusable(why) => {
            let warning = format!(
                "{why}; looking the resource provider up by name {:?} (from {}) instead",
                by_name.name, by_name.origin
            );
            (by_name, Some(warning))
        }
    }
}

/// The kernel's hostname, as nova's `socket.gethostname()` sees it.
pub fn system_hostname() -> String {
    crate::input::read_text(Path::new("/proc/sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Picks the hypervisor named `wanted` among `candidates`: the exact name first, else the one
/// whose short name (up to the first dot) equals `wanted`'s, case-insensitively. Returns its index
/// and a sentence for the log saying which name matched and why.
pub fn match_hostname(
    wanted: &str,
    origin: &str,
    candidates: &[&str],
) -> Result<(usize, String), String> {
    if let Some(index) = candidates.iter().position(|c| *c == wanted) {
        return Ok((
            index,
            format!("{wanted:?} (from {origin}) is exactly nova's hypervisor_hostname"),
        ));
    }
    let short = short_name(wanted);
    let same_short: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| short_name(c).eq_ignore_ascii_case(short))
        .map(|(i, _)| i)
        .collect();
    let listed = || {
        if candidates.is_empty() {
            "none".to_string()
        } else {
            candidates.join(", ")
        }
    };
    match same_short.as_slice() {
        [index] => Ok((
            *index,
            format!(
                "no hypervisor is named exactly {wanted:?} (from {origin}); {:?} has the same short name {short:?} (libvirt reports the FQDN on some hosts and the short name on others)",
                candidates[*index]
            ),
        )),
        [] => Err(format!(
            "no hypervisor named {wanted:?} (from {origin}) or with its short name {short:?} in nova (candidates: {}); set --collector.nova.hostname",
            listed()
        )),
        several => Err(format!(
            "several hypervisors share the short name {short:?} of {wanted:?} (from {origin}): {}; set --collector.nova.hostname to the full name",
            several
                .iter()
                .map(|i| candidates[*i])
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `compute-07` of `compute-07.example.org`.
pub fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_match_exactly_first_then_by_short_name() {
        let (i, why) = match_hostname(
            "cmp-7",
            "nova.conf [DEFAULT] host",
            &["cmp-70", "cmp-7.example.org", "cmp-7"],
        )
        .unwrap();
        assert_eq!(i, 2);
        assert!(why.contains("exactly"), "{why}");
        let (i, why) =
            match_hostname("cmp-7", "x", &["cmp-70.example.org", "cmp-7.example.org"]).unwrap();
        assert_eq!(i, 1);
        assert!(why.contains("same short name \"cmp-7\""), "{why}");
        assert!(why.contains("\"cmp-7.example.org\""), "{why}");
        // The configured name is the FQDN, libvirt reports the short name.
        let (i, _) = match_hostname("CMP-7.example.org", "x", &["cmp-7"]).unwrap();
        assert_eq!(i, 0);
        let err = match_hostname("cmp-7", "x", &["cmp-70", "cmp-17"]).unwrap_err();
        assert!(err.contains("candidates: cmp-70, cmp-17"), "{err}");
        assert!(err.contains("--collector.nova.hostname"), "{err}");
        let err =
            match_hostname("cmp-7", "x", &["cmp-7.a.example", "cmp-7.b.example"]).unwrap_err();
        assert!(err.contains("several hypervisors"), "{err}");
    }

    #[test]
    fn provider_names_say_where_they_came_from() {
        let flag = provider_name(Some("cmp-7.example"), Some("cmp-7"), "/etc/nova/nova.conf");
        assert_eq!(flag.name, "cmp-7.example");
        assert_eq!(flag.origin, "--collector.placement.hostname");
        let conf = provider_name(None, Some("cmp-7"), "/etc/nova/nova.conf");
        assert_eq!(conf.origin, "/etc/nova/nova.conf [DEFAULT] host");
        let system = provider_name(None, None, "/etc/nova/nova.conf");
        assert!(!system.name.is_empty());
        assert!(system.origin.contains("system hostname"));
    }

    #[test]
    fn the_provider_is_found_by_flag_then_compute_id_then_name() {
        let dir = tempfile::tempdir().unwrap();
        let conf = "/etc/nova/nova.conf";
        assert_eq!(read_compute_id(dir.path()), ComputeId::Absent);
        let (p, warning) = locate_provider(
            None,
            None,
            (dir.path(), read_compute_id(dir.path())),
            Some("cmp-7"),
            conf,
        );
        assert_eq!((p.name.as_str(), p.uuid), ("cmp-7", None));
        assert_eq!(warning, None);

        std::fs::write(
            dir.path().join("compute_id"),
            "C0FFEE00-0000-4000-8000-000000000007\n",
        )
        .unwrap();
        let id = read_compute_id(dir.path());
        assert_eq!(
            id,
            ComputeId::Uuid("c0ffee00-0000-4000-8000-000000000007".into())
        );
        let (p, _) = locate_provider(None, None, (dir.path(), id.clone()), Some("cmp-7"), conf);
        assert_eq!(
            p.uuid.as_deref(),
            Some("c0ffee00-0000-4000-8000-000000000007")
        );
        assert!(
            p.origin
                .ends_with("compute_id (nova-compute's compute node UUID)"),
            "{}",
            p.origin
        );
        // An operator's flag wins over the file: the name flag ...
        let (p, _) = locate_provider(
            None,
            Some("cmp-7.example"),
            (dir.path(), id.clone()),
            None,
            conf,
        );
        assert_eq!((p.name.as_str(), p.uuid), ("cmp-7.example", None));
        assert_eq!(p.origin, "--collector.placement.hostname");
        // ... and the UUID flag.
        let (p, _) = locate_provider(
            Some("ABCDEF00-0000-4000-8000-000000000001"),
            None,
            (dir.path(), id),
            Some("cmp-7"),
            conf,
        );
        assert_eq!(
            p.uuid.as_deref(),
            Some("abcdef00-0000-4000-8000-000000000001")
        );
        assert_eq!(p.origin, "--collector.placement.provider-uuid");

        std::fs::write(dir.path().join("compute_id"), "not a uuid").unwrap();
        let (p, warning) = locate_provider(
            None,
            None,
            (dir.path(), read_compute_id(dir.path())),
            Some("cmp-7"),
            conf,
        );
        assert_eq!((p.name.as_str(), p.uuid), ("cmp-7", None));
        let warning = warning.unwrap();
        assert!(warning.contains("does not hold a UUID"), "{warning}");
        assert!(warning.contains("by name \"cmp-7\""), "{warning}");
    }

    #[test]
    fn nova_s_names_come_in_libvirt_s_order() {
        let conf = NameCandidate {
            name: "cmp-7".into(),
            origin: "/etc/nova/nova.conf [DEFAULT] host".into(),
        };
        let names = |hostname, canonical| -> Vec<String> {
            nova_provider_names(hostname, canonical, &conf)
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        // A short hostname: the resolver's canonical name first, as libvirt names the node.
        assert_eq!(
            names("cmp-7", Some("cmp-7.example.org")),
            ["cmp-7.example.org", "cmp-7"]
        );
        let first = &nova_provider_names("cmp-7", Some("cmp-7.example.org"), &conf)[0];
        assert!(first.origin.contains("canonical name"), "{}", first.origin);
        // An FQDN is used as it is; the resolver is not asked.
        assert_eq!(
            names("node-3.dc1.example", Some("elsewhere.example")),
            ["node-3.dc1.example", "cmp-7"]
        );
        // libvirt ignores a canonical name starting with localhost, and a hostname starting with
        // localhost is never canonicalised.
        assert_eq!(
            names("node-3", Some("localhost.localdomain")),
            ["node-3", "cmp-7"]
        );
        assert_eq!(
            names("localhost", Some("x.example")),
            ["localhost", "cmp-7"]
        );
        // No answer from the resolver: the short name, then nova.conf's host.
        assert_eq!(names("node-3", None), ["node-3", "cmp-7"]);
        assert_eq!(names("cmp-7", None), ["cmp-7"]);
    }

    #[test]
    fn the_resolver_names_what_it_cannot_resolve() {
        let err = canonical_name("no-such-host.invalid").unwrap_err();
        assert!(err.contains("\"no-such-host.invalid\""), "{err}");
        assert!(canonical_name("a\0b").unwrap_err().contains("NUL"));
        // The loopback name resolves on any host (/etc/hosts), with a canonical name.
        assert!(canonical_name("localhost").unwrap().is_some());
    }
}
