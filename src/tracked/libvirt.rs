//! The libvirt tracked source: nova's metadata in the persistent domain XML files of this host.
//!
//! # What nova writes
//!
//! Since Juno (2014.2) the libvirt driver puts a block like this into every domain it defines
//! (`LibvirtConfigGuestMetaNova*` in `nova/virt/libvirt/config.py`, filled by the driver's
//! `_get_guest_config_meta`); libvirt keeps it in the persistent definition,
//! `/etc/libvirt/qemu/<domain name>.xml`:
//!
//! ```xml
//! <domain type='kvm'>
//!   <uuid>d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63</uuid>      <!-- the instance UUID -->
//!   <metadata>
//!     <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
//!       <nova:flavor name="m1.db">
//!         <nova:disk>40</nova:disk>            <!-- root_gb, GiB -->
//!         <nova:swap>1024</nova:swap>          <!-- swap, MiB -->
//!         <nova:ephemeral>8</nova:ephemeral>   <!-- ephemeral_gb, GiB -->
//!         ...
//!       </nova:flavor>
//!       <nova:root type="image" uuid="..."/>
//!       ...
//! ```
//!
//! - Namespace `.../nova/1.0` from Juno to Victoria (22.x); `.../nova/1.1` from Wallaby (23.0.0),
//!   which added `<nova:ports>`. A domain keeps the metadata of the release that last defined it
//!   (nova does not redefine domains on upgrade), so both are read. Any other `.../nova/<version>`
//!   namespace is an error rather than a silently skipped instance.
//! - `<nova:flavor>` with `<nova:disk>`, `<nova:swap>` and `<nova:ephemeral>` is always written
//!   (the flavor's fields are never null), so each is required here. Its `name` attribute (the
//!   flavor's name, `LibvirtConfigGuestMetaNovaFlavor.name`) gives the flavor fit its flavors
//!   without any configuration ([`Domains::flavors`]); a domain without one still counts.
//! - `<nova:root>`: up to 2024.1 (29.x) nova writes it only for instances with an image
//!   (`type="image"`); a volume-backed instance has no `<nova:root>` at all. From 2024.2 (30.0.0)
//!   it is always written, `type="volume"` for volume-backed instances. Both mean
//!   "boot from volume" here. The resource tracker decides from the root block device mapping,
//!   the metadata from `image_ref`: the rare instance created with both an image and a root
//!   volume shows as `type="image"` and is counted with its root disk.
//!
//! # What this source cannot see
//!
//! Nova counts every instance assigned to the host that is not deleted or shelved-offloaded;
//! libvirt only knows the ones it has a definition for. Instances still building (before the
//! domain is defined) and incoming migrations/resizes (nova counts them on the destination
//! before the domain exists there) are missing, and an outgoing migration is counted here until
//! the source domain is undefined. The difference is transient and shows as drift while it
//! lasts; the placement source does not have this gap.
//!
//! # Reading the directory
//!
//! Every regular file named `*.xml` directly in the directory is read (symbolic links followed);
//! other names (`*.xml.new` while libvirt rewrites a file) and subdirectories (`autostart/`,
//! `networks/`) are ignored. A file that disappears between listing and reading (a domain
//! undefined meanwhile) is skipped. Any other problem with any file fails the whole collection:
//! a partial instance list would under-count tracked usage and invent drift.
//!
//! A collection first asks an inotify watch on the directory (`src/tracked/dir_watch.rs`)
//! whether anything in it changed since the previous one; when nothing did, the previous
//! collection's domains are returned as they are, without listing the directory or `stat`ing a
//! file (at 1,700 domain files the scan was 57% of a scrape's CPU, its `stat`s alone 19%). Any
//! event (a file edited in place, its permissions changed, a file added, removed, renamed or
//! renamed over, an overflowing queue), another directory at the path, a watch that cannot be
//! made (the inotify limits, a missing directory, a directory on a network file system) or the
//! previous collection failing means a scan. So does a directory holding a symbolic link or a
//! hard-linked domain file, which can change without an event on the directory. The watch is
//! looked at before the scan, so a change made during a scan is reported to the next
//! collection. The directory's mtime was the other candidate, and cannot be enough: an in-place
//! edit of a file moves that file's mtime and ctime, not the directory's, so proving the
//! directory unchanged would still take a `stat` of every file. Measured by
//! `cargo bench --bench libvirt` at 1,800 files: an unchanged read with the watch 0.025 ms, a
//! `stat` of every file alone 1.56 ms.
//!
//! A scan lists and `stat`s every file, but reads and parses only the files whose identity
//! changed since the last scan (device, inode, size, mtime and ctime, all to the nanosecond):
//! with 200 instances, parsing was half of the exporter's own CPU per scrape. libvirt rewrites
//! a definition through a new file and a rename, so a new inode; an in-place rewrite changes
//! ctime. A file changed less than [`RACY_WINDOW`] before it was read is not remembered (file
//! timestamps are only as fine as the kernel's clock tick, so a second write in the same tick
//! could keep them), the same rule git applies to its index.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use roxmltree::{Document, Node};

use crate::input::BlockingLane;

use super::dir_watch::DirWatch;

use super::flavors::{FlavorOrigin, NamedFlavor};
use super::{
    canonical_uuid, read_bounded_text, Flavor, HostDiskSettings, SourceKind, TrackedError,
    TrackedInstance, TrackedSource, TrackedUsage, NOVA_MAX_INT,
};

/// nova's metadata namespace since Wallaby (23.0.0).
pub const NOVA_NS_1_1: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
/// nova's metadata namespace from Juno (2014.2) to Victoria (22.x).
pub const NOVA_NS_1_0: &str = "http://openstack.org/xmlns/libvirt/nova/1.0";
/// What every version of nova's namespace starts with.
const NOVA_NS_BASE: &str = "http://openstack.org/xmlns/libvirt/nova/";

/// The deepest element nesting a domain file may have. roxmltree parses elements recursively,
/// so a file of thousands of nested elements would overflow the stack and abort the process;
/// libvirt's own definitions nest about 6 deep.
pub const MAX_XML_DEPTH: usize = 256;

/// The most nodes (elements, attributes' owners, text, comments) a domain file may have: a
/// definition with hundreds of devices has a few thousand.
pub const MAX_XML_NODES: u32 = 1_000_000;

/// A file changed less than this long before it was read is read again next time.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Reads every `*.xml` of a directory; lists them again only when the directory's watch reports
/// a change (or cannot be trusted), and parses only the files that changed.
#[derive(Debug, Clone)]
pub struct LibvirtSource {
    dir: PathBuf,
    settings: HostDiskSettings,
    cache: Arc<Mutex<DomainCache>>,
    lane: BlockingLane,
}

impl LibvirtSource {
    /// Reads the domain XML files in `dir`; reserved disk and allocation ratio come from `settings`.
    pub fn new(dir: PathBuf, settings: HostDiskSettings) -> Self {
        let lane = BlockingLane::new(dir.display().to_string());
        Self {
            dir,
            settings,
            cache: Arc::default(),
            lane,
        }
    }

    /// How many files the last collection read and parsed (the others were unchanged).
    pub fn files_parsed_last(&self) -> usize {
        self.cache.lock().map(|c| c.parsed_last).unwrap_or(0)
    }
}

/// The identity of one version of a file, as `stat` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DomainFileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl DomainFileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file last changed at least [`RACY_WINDOW`] before `read_at` (Unix seconds).
    fn settled_before(&self, read_at: Duration) -> bool {
        let changed = self.mtime.max(self.ctime);
        let changed = Duration::new(
            u64::try_from(changed.0).unwrap_or(0),
            u32::try_from(changed.1).unwrap_or(0),
        );
        read_at.saturating_sub(changed) >= RACY_WINDOW
    }
}

/// What a domain file held: its nova instance, or `None` for a domain nova did not define.
type ParsedDomain = Option<DomainInstance>;

/// One nova instance defined on this host, as its domain's metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInstance {
    /// The domain's (the instance's) UUID, lower case.
    pub uuid: String,
    /// Its flavor's disk sizes, `boot_from_volume` from `<nova:root>`.
    pub flavor: Flavor,
    /// `<nova:flavor name=...>` through [`crate::redact::upstream_text`]; `None` when the
    /// attribute is missing, empty or longer than nova's 255 bytes.
    pub flavor_name: Option<String>,
}

/// What one read of the domain directory found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Domains {
    /// The nova instances, in file name order.
    pub instances: Vec<TrackedInstance>,
    /// The flavors of those instances by name ([`domain_flavors`]), for the flavor fit.
    pub flavors: Vec<NamedFlavor>,
}

/// The flavors of `domains`, once per name, in name order, each taken as image-backed (the
/// flavor fit's rule, `crate::accounting::fit`: whether one instance boots from a volume says nothing of the
/// next). A flavor deleted and created again under the same name can show with two sizes in
/// the domains of its old and new instances: the one asking placement for more DISK_GB (then
/// the more GiB of disk, then of swap) wins, the first to stop fitting.
pub fn domain_flavors<'a>(
    domains: impl IntoIterator<Item = &'a DomainInstance>,
) -> Vec<NamedFlavor> {
    let mut by_name: std::collections::BTreeMap<&str, Flavor> = std::collections::BTreeMap::new();
    for domain in domains {
        let Some(name) = domain.flavor_name.as_deref() else {
            continue;
        };
        let flavor = Flavor {
            boot_from_volume: false,
            ..domain.flavor
        };
        let size = |f: &Flavor| {
            (
                f.placement_allocation_bytes(),
                f.root_gb + f.ephemeral_gb,
                f.swap_mb,
            )
        };
        by_name
            .entry(name)
            .and_modify(|kept| {
                if size(&flavor) > size(kept) {
                    *kept = flavor;
                }
            })
            .or_insert(flavor);
    }
    by_name
        .into_iter()
        .map(|(name, flavor)| NamedFlavor {
            name: name.to_string(),
            flavor,
            origin: FlavorOrigin::Libvirt,
        })
        .collect()
}

/// Parsed domain files by file name (in the one directory of the source), each reused while its
/// file's stamp is unchanged, and the last collection's domains, reused while the directory's
/// watch reports nothing.
#[derive(Debug, Default)]
pub struct DomainCache {
    entries: HashMap<OsString, (DomainFileStamp, ParsedDomain)>,
    parsed_last: usize,
    /// The watch on the directory; `None` until one could be made (tried again each time).
    watch: Option<DirWatch>,
    /// The domains of the last scan, when it succeeded and the watch sees every change to
    /// them; valid while the watch reports nothing.
    unchanged: Option<Domains>,
    /// Whether the last collection scanned the directory (rather than trusting the watch).
    scanned_last: bool,
}

#[async_trait]
impl TrackedSource for LibvirtSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Libvirt
    }

    async fn collect(&self) -> Result<TrackedUsage, TrackedError> {
        let dir = self.dir.clone();
        let cache = Arc::clone(&self.cache);
        let domains = self
            .lane
            .run(move || {
                let mut cache = cache
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                read_domains_with(&dir, &mut cache)
            })
            .await?
            .map_err(with_permission_hint)?;
        Ok(TrackedUsage {
            flavors: domains.flavors,
            ..TrackedUsage::from_local(domains.instances, &self.settings)
        })
    }
}

/// How to fix a domain directory or file the exporter may not read: libvirt writes them readable
/// by root only, and neither its group nor an ACL survives libvirt rewriting them.
pub const PERMISSION_HINT: &str = "libvirt keeps the domain XML files readable by root only: run the exporter as root with the systemd drop-in packaging/systemd/root.conf (as /etc/systemd/system/nova-lvm-exporter.service.d/root.conf, see docs/deployment.md), or turn this source off with --no-collector.libvirt and use placement or nova";

/// A permission error of the source, with [`PERMISSION_HINT`]; any other error as it is.
fn with_permission_hint(error: TrackedError) -> TrackedError {
    match error {
        TrackedError::Io { path, source } if source.kind() == ErrorKind::PermissionDenied => {
            TrackedError::Invalid {
                path,
                message: format!("cannot read: {source}; {PERMISSION_HINT}"),
            }
        }
        other => other,
    }
}

/// Reads the nova instances defined in `dir` (blocking): every `*.xml` regular file, in name
/// order. Domains without nova metadata are skipped.
pub fn read_domains(dir: &Path) -> Result<Domains, TrackedError> {
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    scan_domains_at(dir, &mut DomainCache::default(), read_at).map(|(domains, _)| domains)
}

/// [`read_domains`], scanning the directory only when its watch in `cache` reports a change,
/// reading and parsing only the files whose stamp differs from `cache`'s, and leaving in
/// `cache` the files of this collection only.
pub fn read_domains_with(dir: &Path, cache: &mut DomainCache) -> Result<Domains, TrackedError> {
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    read_domains_at(dir, cache, read_at)
}

/// [`read_domains_with`] as if reading at `read_at` (since the Unix epoch), which decides what
/// is settled enough to remember.
fn read_domains_at(
    dir: &Path,
    cache: &mut DomainCache,
    read_at: Duration,
) -> Result<Domains, TrackedError> {
    let quiet = match cache.watch.as_mut().map(|watch| watch.changed(dir)) {
        Some(Ok(changed)) => !changed,
        Some(Err(error)) => {
            tracing::debug!(dir = %dir.display(), %error, "the domain directory's watch is lost; scanning");
            cache.watch = None;
            false
        }
        None => match DirWatch::new(dir) {
            Ok(watch) => {
                cache.watch = Some(watch);
                false
            }
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "cannot watch the domain directory; scanning");
                false
            }
        },
    };
    if quiet {
        if let Some(domains) = &cache.unchanged {
            cache.parsed_last = 0;
            cache.scanned_last = false;
            return Ok(domains.clone());
        }
    }
    cache.unchanged = None;
    cache.scanned_last = true;
    let (domains, watchable) = scan_domains_at(dir, cache, read_at)?;
    if watchable && cache.watch.is_some() {
        cache.unchanged = Some(domains.clone());
    }
    Ok(domains)
}

/// Lists and `stat`s every domain file of `dir`, reading and parsing the ones whose stamp
/// differs from `cache`'s; with whether every file is one the directory's watch sees change
/// (no symbolic link, no hard link).
fn scan_domains_at(
    dir: &Path,
    cache: &mut DomainCache,
    read_at: Duration,
) -> Result<(Domains, bool), TrackedError> {
    let dir_error = |source| TrackedError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    let mut watchable = true;
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let name = entry.file_name();
        if !name.as_bytes().ends_with(b".xml") || name.len() == 4 {
            continue;
        }
        // A plain entry is looked at relative to the directory (`fstatat`), without walking
        // the whole path again for each of possibly thousands of files; a link is followed.
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        // What a link points to (even a link that dangles now) can change without an event
        // on this directory.
        watchable &= !is_link;
        let meta = if is_link {
            std::fs::metadata(entry.path())
        } else {
            entry.metadata()
        };
        match meta {
            Ok(meta) if meta.is_file() => {
                // A file linked from another directory can be written through that one.
                watchable &= meta.nlink() == 1;
                files.push((name, DomainFileStamp::of(&meta)));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(file = %entry.path().display(), "skipping a domain file that vanished (or a dangling link)");
            }
            Err(source) => {
                return Err(TrackedError::Io {
                    path: entry.path().display().to_string(),
                    source,
                })
            }
        }
    }
    files.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let mut previous = std::mem::take(&mut cache.entries);
    cache.parsed_last = 0;
    let mut instances = Vec::with_capacity(files.len());
    let mut found: Vec<DomainInstance> = Vec::with_capacity(files.len());
    let mut seen: HashMap<String, OsString> = HashMap::with_capacity(files.len());
    for (name, stamp) in files {
        let domain = match previous.remove(&name) {
            Some((cached, domain)) if cached == stamp => domain,
            _ => {
                let path = dir.join(&name);
                let text = match read_bounded_text(&path) {
                    Ok(text) => text,
                    Err(TrackedError::Io { source, .. })
                        if source.kind() == ErrorKind::NotFound =>
                    {
                        tracing::debug!(file = %path.display(), "skipping a domain file that vanished");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                cache.parsed_last += 1;
                parse_nova_domain(&text, &path.display().to_string())?
            }
        };
        if let Some(instance) = &domain {
            let uuid = &instance.uuid;
            if let Some(first) = seen.get(uuid) {
                return Err(TrackedError::Invalid {
                    path: dir.join(&name).display().to_string(),
                    message: format!(
                        "domain UUID {uuid} is also defined in {}",
                        dir.join(first).display()
                    ),
                });
            }
            instances.push(TrackedInstance::from_flavor(uuid.clone(), &instance.flavor));
            seen.insert(uuid.clone(), name.clone());
            found.push(instance.clone());
        } else {
            tracing::debug!(file = %dir.join(&name).display(), "skipping a domain without nova metadata");
        }
        if stamp.settled_before(read_at) {
            cache.entries.insert(name, (stamp, domain));
        }
    }
    tracing::debug!(dir = %dir.display(), instances = instances.len(), "read libvirt domains");
    Ok((
        Domains {
            instances,
            flavors: domain_flavors(&found),
        },
        watchable,
    ))
}

/// Parses one domain XML: the instance UUID (lower case) and its flavor from nova's metadata, or
/// `None` for a domain nova did not define (no `<nova:instance>` in `<metadata>`). `origin`
/// names the file in errors.
pub fn parse_domain(xml: &str, origin: &str) -> Result<Option<(String, Flavor)>, TrackedError> {
    Ok(parse_nova_domain(xml, origin)?.map(|domain| (domain.uuid, domain.flavor)))
}

/// [`parse_domain`] with the flavor's name.
pub fn parse_nova_domain(xml: &str, origin: &str) -> Result<ParsedDomain, TrackedError> {
    let invalid = |message: String| TrackedError::Invalid {
        path: origin.to_string(),
        message,
    };
    if let Some(line) = nesting_beyond(xml, MAX_XML_DEPTH) {
        return Err(invalid(format!(
            "elements nested more than {MAX_XML_DEPTH} deep (at line {line}): not a libvirt domain definition"
        )));
    }
    let options = roxmltree::ParsingOptions {
        nodes_limit: MAX_XML_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = Document::parse_with_options(xml, options).map_err(|e| {
        // These two carry no position: say where the file ends, the usual cause is truncation.
        let detail = match e {
            roxmltree::Error::UnclosedRootNode | roxmltree::Error::UnexpectedEndOfStream => {
                format!(
                    "{e} (the file ends at line {}: truncated?)",
                    xml.lines().count().max(1)
                )
            }
            _ => e.to_string(),
        };
        invalid(format!("not well-formed XML: {detail}"))
    })?;
    let domain = doc.root_element();
    if !is_element(domain, None, "domain") {
        return Err(invalid(format!(
            "the root element is <{}>, not <domain>: not a libvirt domain definition",
            domain.tag_name().name()
        )));
    }

    let mut blocks = Vec::new();
    for metadata in children(domain, None, "metadata") {
        for node in metadata.children().filter(Node::is_element) {
            let Some(ns) = node.tag_name().namespace() else {
                continue;
            };
            if node.tag_name().name() != "instance" || !ns.starts_with(NOVA_NS_BASE) {
                continue;
            }
            if ns != NOVA_NS_1_1 && ns != NOVA_NS_1_0 {
                return Err(invalid(format!(
                    "<nova:instance> in namespace {ns}, which this exporter does not know (it reads {NOVA_NS_1_0} and {NOVA_NS_1_1})"
                )));
            }
            blocks.push(node);
        }
    }
    let instance = match blocks.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        more => {
            return Err(invalid(format!(
                "{} <nova:instance> metadata blocks; expected one",
                more.len()
            )))
        }
    };
    let ns = instance.tag_name().namespace();

    let uuid = match children(domain, None, "uuid").as_slice() {
        [one] => {
            let text = one.text().unwrap_or("").trim();
            canonical_uuid(text).ok_or_else(|| {
                invalid(format!(
                    "domain <uuid> {text:?} is not a UUID (32 hex digits, in 8-4-4-4-12 groups or without hyphens)"
                ))
            })?
        }
        [] => {
            return Err(invalid(
                "domain has nova metadata but no <uuid>".to_string(),
            ))
        }
        more => {
            return Err(invalid(format!(
                "{} <uuid> elements; expected one",
                more.len()
            )))
        }
    };

    let flavor = single(instance, ns, "flavor", "<nova:instance>").map_err(&invalid)?;
    // The name becomes the `flavor` label and a line of the report: upstream text, cleaned as
    // the compute API's flavor names are.
    let flavor_name = flavor
        .attribute("name")
        .filter(|name| !name.trim().is_empty() && name.len() <= 255)
        .map(crate::redact::upstream_text);
    let figure = |name: &str, unit: &str| -> Result<u64, TrackedError> {
        let node = single(flavor, ns, name, "<nova:flavor>").map_err(&invalid)?;
        let text = node.text().unwrap_or("").trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "<nova:{name}> is {text:?}: expected a whole number of {unit}"
            )));
        }
        match text.parse::<u64>() {
            Ok(value) if value <= NOVA_MAX_INT => Ok(value),
            _ => Err(invalid(format!(
                "<nova:{name}> {text} is larger than nova allows ({NOVA_MAX_INT} {unit})"
            ))),
        }
    };
    let root_gb = figure("disk", "GiB")?;
    let swap_mb = figure("swap", "MiB")?;
    let ephemeral_gb = figure("ephemeral", "GiB")?;

    let boot_from_volume = match children(instance, ns, "root").as_slice() {
        [] => true,
        [root] => match root.attribute("type") {
            Some("image") => false,
            Some("volume") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "<nova:root type={other:?}>: expected type \"image\" or \"volume\""
                )))
            }
            None => return Err(invalid("<nova:root> has no type".to_string())),
        },
        more => {
            return Err(invalid(format!(
                "{} <nova:root> elements; expected at most one",
                more.len()
            )))
        }
    };

    Ok(Some(DomainInstance {
        uuid,
        flavor: Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume,
        },
        flavor_name,
    }))
}

/// The line at which the element nesting of `xml` first exceeds `limit`, or `None`. An upper
/// bound of the recursion of roxmltree's parser, which recurses once per open element: start
/// tags count (attribute values skipped), end tags and `/>` close, comments, CDATA sections,
/// processing instructions and declarations are skipped. Malformed text may be counted deeper
/// than it is, never shallower than roxmltree recurses before it reports the error (DTDs,
/// whose entities could nest further, are refused by roxmltree's default options).
fn nesting_beyond(xml: &str, limit: usize) -> Option<usize> {
    let bytes = xml.as_bytes();
    let find = |from: usize, needle: &[u8]| {
        bytes[from.min(bytes.len())..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map_or(bytes.len(), |at| from + at + needle.len())
    };
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        let start = at + offset;
        let rest = &bytes[start..];
        at = if rest.starts_with(b"<!--") {
            find(start + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            find(start + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            find(start + 2, b"?>")
        } else if rest.starts_with(b"<!") {
            find(start + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find(start + 2, b">")
        } else {
            // A start tag: up to its `>`, outside quoted attribute values.
            let mut i = start + 1;
            let mut quote = None;
            let mut self_closing = false;
            while i < bytes.len() {
                match (quote, bytes[i]) {
                    (Some(q), b) if b == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => quote = Some(bytes[i]),
                    (None, b'>') => {
                        self_closing = bytes[i - 1] == b'/';
                        break;
                    }
                    (None, b'<') => break,
                    (None, _) => {}
                }
                i += 1;
            }
            if !self_closing {
                depth += 1;
                if depth > limit {
                    return Some(bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1);
                }
            }
            if bytes.get(i) == Some(&b'<') {
                i
            } else {
                i + 1
            }
        };
        if at >= bytes.len() {
            break;
        }
    }
    None
}

fn is_element(node: Node<'_, '_>, ns: Option<&str>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == ns
}

/// The child elements of `parent` named `name` in namespace `ns`.
fn children<'a, 'input>(
    parent: Node<'a, 'input>,
    ns: Option<&str>,
    name: &str,
) -> Vec<Node<'a, 'input>> {
    parent
        .children()
        .filter(|child| is_element(*child, ns, name))
        .collect()
}

/// The one child element `<nova:name>` of `parent` (called `parent_label` in the message).
fn single<'a, 'input>(
    parent: Node<'a, 'input>,
    ns: Option<&str>,
    name: &str,
    parent_label: &str,
) -> Result<Node<'a, 'input>, String> {
    match children(parent, ns, name).as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("{parent_label} has no <nova:{name}>")),
        more => Err(format!(
            "{parent_label} has {} <nova:{name}> elements; expected one",
            more.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{GIB, MIB};

    const IMAGE: &str = include_str!("../../tests/fixtures/libvirt/instance-00000001.xml");
    const BFV: &str = include_str!("../../tests/fixtures/libvirt/instance-00000002.xml");
    const NS_1_0: &str = include_str!("../../tests/fixtures/libvirt/instance-00000003.xml");
    const NOT_NOVA: &str = include_str!("../../tests/fixtures/libvirt/ops-debug.xml");
    const TRUNCATED: &str = include_str!("../../tests/fixtures/libvirt-bad/instance-00000002.xml");

    const IMAGE_UUID: &str = "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63";
    const BFV_UUID: &str = "5e0c7a94-2b1d-4c8f-9a36-e4d1f7b2c805";
    const NS_1_0_UUID: &str = "9b3d5f17-8c2e-4a6b-b0d9-1f4e7a2c6d38";

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    fn parsed(xml: &str) -> (String, Flavor) {
        parse_domain(xml, "test.xml")
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("nova metadata")
    }

    /// The message of an `Invalid` error for `xml`, checking that it names the file.
    fn rejected(xml: &str) -> String {
        match parse_domain(xml, "/etc/libvirt/qemu/x.xml") {
            Err(TrackedError::Invalid { path, message }) => {
                assert_eq!(path, "/etc/libvirt/qemu/x.xml");
                message
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// A small nova domain with the given metadata block inside `<metadata>`.
    fn domain_with(uuid: &str, metadata: &str) -> String {
        format!("<domain type='kvm'><name>instance-0000000f</name><uuid>{uuid}</uuid><metadata>{metadata}</metadata></domain>")
    }

    /// A 1.1 metadata block with the given flavor children and root element.
    fn nova_block(flavor: &str, root: &str) -> String {
        format!("<nova:instance xmlns:nova=\"{NOVA_NS_1_1}\"><nova:package version=\"27.1.0\"/><nova:flavor name=\"f\">{flavor}</nova:flavor>{root}</nova:instance>")
    }

    const FLAVOR_40_8_1024: &str = "<nova:memory>8192</nova:memory><nova:disk>40</nova:disk><nova:swap>1024</nova:swap><nova:ephemeral>8</nova:ephemeral><nova:vcpus>4</nova:vcpus>";
    const ROOT_IMAGE: &str =
        "<nova:root type=\"image\" uuid=\"0c3f5a1e-8d2b-4e6f-9a7c-1b5d3e9f2a40\"/>";

    #[test]
    fn an_image_backed_instance_with_ephemeral_and_swap() {
        let (uuid, flavor) = parsed(IMAGE);
        assert_eq!(uuid, IMAGE_UUID);
        assert_eq!(
            flavor,
            Flavor {
                root_gb: 40,
                ephemeral_gb: 8,
                swap_mb: 1024,
                boot_from_volume: false
            }
        );
        let instance = TrackedInstance::from_flavor(uuid, &flavor);
        assert_eq!(instance.tracked_bytes, 49 * GIB);
        assert_eq!(instance.allocated_bytes, 49 * GIB);
    }

    #[test]
    fn a_volume_backed_instance_written_by_2023_has_no_root_element() {
        let (uuid, flavor) = parsed(BFV);
        assert_eq!(uuid, BFV_UUID);
        assert_eq!(
            flavor,
            Flavor {
                root_gb: 20,
                ephemeral_gb: 0,
                swap_mb: 512,
                boot_from_volume: true
            }
        );
        // The root disk is in cinder; swap of 512 MiB counts int(0.5) = 0 GiB for the resource
        // tracker and a whole GiB in placement.
        let instance = TrackedInstance::from_flavor(uuid, &flavor);
        assert_eq!(instance.tracked_bytes, 0);
        assert_eq!(instance.allocated_bytes, GIB);
    }

    #[test]
    fn a_volume_backed_instance_written_by_2024_2_says_volume() {
        // 2024.2 and later always write <nova:root>, with an empty uuid for volume-backed ones.
        let xml = BFV.replace(
            "      <nova:ports>",
            "      <nova:root type=\"volume\" uuid=\"\"/>\n      <nova:ports>",
        );
        assert!(xml.contains("type=\"volume\""));
        let (_, flavor) = parsed(&xml);
        assert!(flavor.boot_from_volume);
    }

    #[test]
    fn the_1_0_namespace_of_older_releases_is_read() {
        assert!(NS_1_0.contains(NOVA_NS_1_0));
        let (uuid, flavor) = parsed(NS_1_0);
        assert_eq!(uuid, NS_1_0_UUID);
        assert_eq!(
            flavor,
            Flavor {
                root_gb: 20,
                ephemeral_gb: 0,
                swap_mb: 1001,
                boot_from_volume: false
            }
        );
        // 1001 MiB of swap: truncated to 0 GiB by the resource tracker, rounded up to 1 GiB in
        // placement.
        let instance = TrackedInstance::from_flavor(uuid, &flavor);
        assert_eq!(instance.tracked_bytes, 20 * GIB);
        assert_eq!(instance.allocated_bytes, 21 * GIB);
    }

    #[test]
    fn the_same_metadata_reads_the_same_in_both_namespaces() {
        let v11 = domain_with(IMAGE_UUID, &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE));
        let v10 = v11.replace(NOVA_NS_1_1, NOVA_NS_1_0);
        assert_ne!(v10, v11);
        assert_eq!(parsed(&v10), parsed(&v11));
    }

    #[test]
    fn the_namespace_prefix_does_not_matter() {
        let xml = domain_with(IMAGE_UUID, &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE))
            .replace("nova:", "n:")
            .replace("xmlns:nova=", "xmlns:n=");
        assert_eq!(parsed(&xml).1.root_gb, 40);
        // Without the namespace, elements named like nova's are not nova's.
        let xml = domain_with(
            IMAGE_UUID,
            "<instance><flavor><disk>40</disk></flavor></instance>",
        );
        assert_eq!(parse_domain(&xml, "x").unwrap(), None);
    }

    #[test]
    fn swap_is_mib_and_need_not_be_a_whole_gib() {
        // The resource tracker truncates swap to whole GiB, placement rounds it up.
        for swap in [0u64, 1, 512, 1001, 1024, 1025, 4096] {
            let flavor = format!("<nova:disk>10</nova:disk><nova:swap>{swap}</nova:swap><nova:ephemeral>0</nova:ephemeral>");
            let (_, parsed_flavor) =
                parsed(&domain_with(IMAGE_UUID, &nova_block(&flavor, ROOT_IMAGE)));
            assert_eq!(parsed_flavor.swap_mb, swap);
            let instance = TrackedInstance::from_flavor(IMAGE_UUID, &parsed_flavor);
            assert_eq!(instance.tracked_bytes, (10 + swap / 1024) * GIB);
            assert_eq!(instance.allocated_bytes, (10 + swap.div_ceil(1024)) * GIB);
        }
    }

    #[test]
    fn a_domain_without_nova_metadata_is_not_novas() {
        assert_eq!(parse_domain(NOT_NOVA, "ops-debug.xml").unwrap(), None);
        let no_metadata = "<domain type='kvm'><name>x</name><uuid>0f6b2d84-93a1-4e57-8c2f-6a1d9e3b7c40</uuid></domain>";
        assert_eq!(parse_domain(no_metadata, "x.xml").unwrap(), None);
        let empty_metadata = "<domain type='kvm'><uuid>x</uuid><metadata/></domain>";
        assert_eq!(parse_domain(empty_metadata, "x.xml").unwrap(), None);
    }

    #[test]
    fn the_uuid_is_validated_and_lower_cased() {
        let upper = IMAGE_UUID.to_ascii_uppercase();
        let xml = domain_with(
            &format!(" {upper}\n"),
            &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE),
        );
        assert_eq!(parsed(&xml).0, IMAGE_UUID);
        // Without hyphens (libvirt parses it): canonicalised like the other sources' UUIDs.
        let bare = domain_with(
            &IMAGE_UUID.replace('-', ""),
            &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE),
        );
        assert_eq!(parsed(&bare).0, IMAGE_UUID);
        for bad in [
            "",
            "d47b9e21",
            "d47b9e21-3c6a4f188e2d5a9b1c7f3e63",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e6g",
            "{d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63}",
        ] {
            let message = rejected(&domain_with(bad, &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE)));
            assert!(message.contains("is not a UUID"), "{bad}: {message}");
        }
        let no_uuid = format!(
            "<domain type='kvm'><metadata>{}</metadata></domain>",
            nova_block(FLAVOR_40_8_1024, ROOT_IMAGE)
        );
        assert!(rejected(&no_uuid).contains("no <uuid>"));
    }

    #[test]
    fn the_flavor_figures_nova_always_writes_are_required() {
        for (missing, flavor) in [
            (
                "disk",
                "<nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>",
            ),
            (
                "swap",
                "<nova:disk>1</nova:disk><nova:ephemeral>0</nova:ephemeral>",
            ),
            (
                "ephemeral",
                "<nova:disk>1</nova:disk><nova:swap>0</nova:swap>",
            ),
        ] {
            let message = rejected(&domain_with(IMAGE_UUID, &nova_block(flavor, ROOT_IMAGE)));
            assert_eq!(message, format!("<nova:flavor> has no <nova:{missing}>"));
        }
        let no_flavor = format!(
            "<nova:instance xmlns:nova=\"{NOVA_NS_1_1}\"><nova:name>x</nova:name></nova:instance>"
        );
        assert_eq!(
            rejected(&domain_with(IMAGE_UUID, &no_flavor)),
            "<nova:instance> has no <nova:flavor>"
        );
        let twice = format!("{FLAVOR_40_8_1024}<nova:disk>41</nova:disk>");
        assert!(
            rejected(&domain_with(IMAGE_UUID, &nova_block(&twice, ROOT_IMAGE)))
                .contains("2 <nova:disk> elements")
        );
    }

    #[test]
    fn flavor_figures_must_be_whole_numbers_within_novas_limits() {
        for bad in ["", "-1", "1.5", "ten", "+5", "0x10"] {
            let flavor = format!("<nova:disk>10</nova:disk><nova:swap>{bad}</nova:swap><nova:ephemeral>0</nova:ephemeral>");
            let message = rejected(&domain_with(IMAGE_UUID, &nova_block(&flavor, ROOT_IMAGE)));
            assert_eq!(
                message,
                format!("<nova:swap> is {bad:?}: expected a whole number of MiB")
            );
        }
        let flavor = "<nova:disk>2147483648</nova:disk><nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>";
        let message = rejected(&domain_with(IMAGE_UUID, &nova_block(flavor, ROOT_IMAGE)));
        assert!(message.contains("larger than nova allows"), "{message}");
        let flavor = "<nova:disk>99999999999999999999999</nova:disk><nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>";
        let message = rejected(&domain_with(IMAGE_UUID, &nova_block(flavor, ROOT_IMAGE)));
        assert!(message.contains("larger than nova allows"), "{message}");
        // Whitespace around a figure is fine (pretty-printed by hand).
        let flavor = "<nova:disk>\n 10 \n</nova:disk><nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>";
        assert_eq!(
            parsed(&domain_with(IMAGE_UUID, &nova_block(flavor, ROOT_IMAGE)))
                .1
                .root_gb,
            10
        );
    }

    #[test]
    fn an_unknown_root_type_is_an_error() {
        let message = rejected(&domain_with(
            IMAGE_UUID,
            &nova_block(
                FLAVOR_40_8_1024,
                "<nova:root type=\"snapshot\" uuid=\"x\"/>",
            ),
        ));
        assert_eq!(
            message,
            "<nova:root type=\"snapshot\">: expected type \"image\" or \"volume\""
        );
        let message = rejected(&domain_with(
            IMAGE_UUID,
            &nova_block(FLAVOR_40_8_1024, "<nova:root uuid=\"x\"/>"),
        ));
        assert_eq!(message, "<nova:root> has no type");
    }

    #[test]
    fn an_unknown_nova_namespace_is_an_error_not_a_skipped_instance() {
        let xml = domain_with(IMAGE_UUID, &nova_block(FLAVOR_40_8_1024, ROOT_IMAGE))
            .replace(NOVA_NS_1_1, "http://openstack.org/xmlns/libvirt/nova/1.2");
        let message = rejected(&xml);
        assert!(message.contains("nova/1.2"), "{message}");
    }

    #[test]
    fn two_nova_blocks_are_ambiguous() {
        let block = nova_block(FLAVOR_40_8_1024, ROOT_IMAGE);
        let both = format!("{block}{}", block.replace(NOVA_NS_1_1, NOVA_NS_1_0));
        let message = rejected(&domain_with(IMAGE_UUID, &both));
        assert!(
            message.contains("2 <nova:instance> metadata blocks"),
            "{message}"
        );
    }

    #[test]
    fn malformed_xml_is_reported_with_its_position() {
        let message = rejected(TRUNCATED);
        assert_eq!(
            message,
            "not well-formed XML: the root node was opened but never closed (the file ends at line 19: truncated?)"
        );
        let message = rejected("<domain type='kvm'><uuid>x</uuid></domian>");
        assert!(
            message.starts_with("not well-formed XML: ") && message.ends_with("at 1:34"),
            "{message}"
        );
        assert!(message.contains(':'), "{message}");
        let message = rejected("");
        assert!(message.starts_with("not well-formed XML"), "{message}");
    }

    /// The issue's reproduction: a domain with `levels` nested `<a>` elements, each opened
    /// with `open` and closed with `close`.
    fn nested_domain(levels: usize, open: &str, close: &str) -> String {
        format!(
            "<domain type=\"kvm\"><uuid>{IMAGE_UUID}</uuid>{}{}</domain>",
            open.repeat(levels),
            close.repeat(levels)
        )
    }

    /// Runs `parse_domain` on a thread with the stack of tokio's blocking threads (2 MiB), as
    /// the collector does: an overflow aborts the test binary.
    fn parse_on_a_2mib_stack(xml: String) -> Result<Option<(String, Flavor)>, TrackedError> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || parse_domain(&xml, "/etc/libvirt/qemu/deep.xml"))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deeply_nested_elements_are_an_error_not_a_stack_overflow() {
        for levels in [MAX_XML_DEPTH, 5_000, 100_000] {
            let error = parse_on_a_2mib_stack(nested_domain(levels, "<a>", "</a>")).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("/etc/libvirt/qemu/deep.xml: elements nested more than {MAX_XML_DEPTH} deep (at line 1): not a libvirt domain definition"),
                "{levels} levels"
            );
        }
        // The bound itself is safe for roxmltree's recursion on this stack (even unoptimised):
        // the domain element and MAX_XML_DEPTH - 1 levels below it parse.
        let deepest = nested_domain(MAX_XML_DEPTH - 1, "<a>", "</a>");
        assert_eq!(parse_on_a_2mib_stack(deepest).unwrap(), None);
    }

    #[test]
    fn a_file_of_more_nodes_than_any_definition_has_is_refused() {
        // 4 MiB of empty elements: far inside the file bound, a million nodes in memory.
        let wide = format!(
            "<domain type=\"kvm\"><uuid>{IMAGE_UUID}</uuid>{}</domain>",
            "<a/>".repeat(MAX_XML_NODES as usize)
        );
        let error = parse_domain(&wide, "/etc/libvirt/qemu/wide.xml")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/etc/libvirt/qemu/wide.xml: not well-formed XML: nodes limit"),
            "{error}"
        );
    }

    #[test]
    fn nesting_cannot_hide_from_the_bound() {
        // `/>` inside an attribute value does not close the element.
        let error = parse_on_a_2mib_stack(nested_domain(5_000, "<a x='/>' y=\"/>\">", "</a>"));
        assert!(error.unwrap_err().to_string().contains("nested more than"));
        // `</a>` inside comments, CDATA and processing instructions does not close anything.
        for hidden in ["<!--</a>-->", "<![CDATA[</a>]]>", "<?pi </a>?>"] {
            let open = format!("<a>{hidden}");
            let error = parse_on_a_2mib_stack(nested_domain(5_000, &open, "</a>"));
            assert!(
                error.unwrap_err().to_string().contains("nested more than"),
                "{hidden}"
            );
        }
        // Unclosed elements count as open; the line is the one of the offending tag.
        let xml = format!("<domain>\n{}", "<a>\n".repeat(100_000));
        let error = parse_on_a_2mib_stack(xml).unwrap_err().to_string();
        assert!(
            error.contains(&format!("(at line {})", MAX_XML_DEPTH + 1)),
            "{error}"
        );
        // Self-closed and sibling elements do not add up.
        let wide = format!(
            "<domain type='kvm'><uuid>{IMAGE_UUID}</uuid>{}</domain>",
            "<a><b/><c x='>'/></a>".repeat(10_000)
        );
        assert_eq!(parse_on_a_2mib_stack(wide).unwrap(), None);
    }

    #[test]
    fn a_document_type_definition_is_refused() {
        // Entities could nest elements beyond what the text shows: roxmltree refuses DTDs.
        let xml = format!(
            "<!DOCTYPE domain [<!ENTITY e \"<a>&#60;/a>\">]>{}",
            nested_domain(1, "<a>", "</a>")
        );
        let message = rejected(&xml);
        assert!(message.starts_with("not well-formed XML: "), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_domain_is_an_error() {
        let network =
            std::fs::read_to_string(fixtures().join("libvirt/networks/default.xml")).unwrap();
        let message = rejected(&network);
        assert!(message.contains("root element is <network>"), "{message}");
    }

    /// Copies the `.xml` files of a fixture directory into a fresh temporary directory.
    fn copy_fixture_dir(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        dir
    }

    fn settings() -> HostDiskSettings {
        HostDiskSettings {
            reserved_host_disk_mb: 2048,
            disk_allocation_ratio: 1.0,
        }
    }

    fn expected_instances() -> Vec<TrackedInstance> {
        vec![
            TrackedInstance::from_flavor(
                IMAGE_UUID,
                &Flavor {
                    root_gb: 40,
                    ephemeral_gb: 8,
                    swap_mb: 1024,
                    boot_from_volume: false,
                },
            ),
            TrackedInstance::from_flavor(
                BFV_UUID,
                &Flavor {
                    root_gb: 20,
                    ephemeral_gb: 0,
                    swap_mb: 512,
                    boot_from_volume: true,
                },
            ),
            TrackedInstance::from_flavor(
                NS_1_0_UUID,
                &Flavor {
                    root_gb: 20,
                    ephemeral_gb: 0,
                    swap_mb: 1001,
                    boot_from_volume: false,
                },
            ),
        ]
    }

    #[tokio::test]
    async fn the_fixture_directory_is_collected_in_name_order() {
        // The fixture directory itself: README.md, autostart/ (with a link) and networks/ are ignored.
        let source = LibvirtSource::new(fixtures().join("libvirt"), settings());
        assert_eq!(source.kind(), SourceKind::Libvirt);
        let usage = source.collect().await.unwrap();
        assert_eq!(usage.instances, expected_instances());
        // Each domain's flavor by name, taken as image-backed (m1.small's instance boots from
        // a volume; the next one of that flavor may not).
        let flavors: Vec<(&str, Flavor, FlavorOrigin)> = usage
            .flavors
            .iter()
            .map(|f| (f.name.as_str(), f.flavor, f.origin))
            .collect();
        let image = |root_gb, swap_mb, ephemeral_gb| Flavor {
            root_gb,
            ephemeral_gb,
            swap_mb,
            boot_from_volume: false,
        };
        assert_eq!(
            flavors,
            vec![
                ("m1.db", image(40, 1024, 8), FlavorOrigin::Libvirt),
                ("m1.legacy", image(20, 1001, 0), FlavorOrigin::Libvirt),
                ("m1.small", image(20, 512, 0), FlavorOrigin::Libvirt),
            ]
        );
        assert_eq!(usage.reserved_bytes, 2048 * MIB);
        assert_eq!(usage.allocation_ratio, 1.0);
        assert_eq!(usage.scheduler_total_bytes, None);
        let tracked: u64 = usage.instances.iter().map(|i| i.tracked_bytes).sum();
        // Roots 40 + 20 (the volume-backed one's 20 GiB root is in cinder), ephemeral 8, swaps
        // int(1024 / 1024) + int(512 / 1024) + int(1001 / 1024) = 1 GiB, as nova books them.
        assert_eq!(tracked, (40 + 20 + 8 + 1) * GIB);
        let allocated: u64 = usage.instances.iter().map(|i| i.allocated_bytes).sum();
        assert_eq!(allocated, 71 * GIB);
    }

    #[tokio::test]
    async fn other_files_and_subdirectories_are_ignored() {
        let dir = copy_fixture_dir("libvirt");
        let root = dir.path();
        std::fs::write(root.join("instance-00000009.xml.new"), "<not xml").unwrap();
        std::fs::write(root.join("notes.txt"), "<not xml").unwrap();
        std::fs::write(root.join("XML"), "<not xml").unwrap();
        std::fs::create_dir(root.join("autostart")).unwrap();
        std::fs::write(root.join("autostart/instance-00000009.xml"), "<not xml").unwrap();
        std::fs::create_dir(root.join("looks-like-a-file.xml")).unwrap();
        std::os::unix::fs::symlink(root.join("gone.xml"), root.join("dangling.xml")).unwrap();
        let usage = LibvirtSource::new(root.to_path_buf(), settings())
            .collect()
            .await
            .unwrap();
        assert_eq!(usage.instances, expected_instances());
    }

    /// Reads `dir` with `cache` as if 10 s from now (every file settled); returns the
    /// instances and how many files were parsed.
    fn read_later(dir: &Path, cache: &mut DomainCache) -> (Vec<TrackedInstance>, usize) {
        let later = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(10);
        let instances = read_domains_at(dir, cache, later).unwrap().instances;
        (instances, cache.parsed_last)
    }

    /// How many `*.xml` files `dir` holds.
    fn xml_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("xml".as_ref()))
            .count()
    }

    /// `text` with the image instance's root disk changed from 40 to `root_gb` GiB.
    fn with_root_gb(text: &str, root_gb: u32) -> String {
        let changed = text.replace(
            "<nova:disk>40</nova:disk>",
            &format!("<nova:disk>{root_gb}</nova:disk>"),
        );
        assert_ne!(changed, text, "the fixture has a 40 GiB root disk");
        changed
    }

    #[test]
    fn unchanged_files_are_not_parsed_again_and_every_change_is_seen() {
        let dir = copy_fixture_dir("libvirt");
        let files = xml_files(dir.path());
        let mut cache = DomainCache::default();
        let (first, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!((first.clone(), parsed), (expected_instances(), files));
        let (second, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!(
            (second, parsed),
            (expected_instances(), 0),
            "nothing changed"
        );

        // Rewritten in place (same inode): size and ctime change.
        let image = dir.path().join("instance-00000001.xml");
        let original = std::fs::read_to_string(&image).unwrap();
        std::fs::write(&image, with_root_gb(&original, 80)).unwrap();
        let (instances, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!(parsed, 1);
        assert_eq!(
            instances[0].tracked_bytes,
            first[0].tracked_bytes + 40 * GIB
        );

        // Rewritten the way libvirt does it: a new file renamed over the old one, same size.
        let staged = dir.path().join("instance-00000001.xml.new");
        std::fs::write(&staged, with_root_gb(&original, 50)).unwrap();
        std::fs::rename(&staged, &image).unwrap();
        let (instances, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!(parsed, 1);
        assert_eq!(
            instances[0].tracked_bytes,
            first[0].tracked_bytes + 10 * GIB
        );

        // Undefined: gone at once, nothing parsed.
        std::fs::remove_file(&image).unwrap();
        let (instances, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!((instances.as_slice(), parsed), (&first[1..], 0));
    }

    #[test]
    fn a_file_changed_within_the_racy_window_is_read_again_by_the_next_scan() {
        let dir = copy_fixture_dir("libvirt");
        let files = xml_files(dir.path());
        let mut cache = DomainCache::default();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let scan = |cache: &mut DomainCache, at| {
            scan_domains_at(dir.path(), cache, at).unwrap();
            cache.parsed_last
        };
        // Just written: a second write within the same clock tick could keep every timestamp.
        for _ in 0..2 {
            assert_eq!(scan(&mut cache, now), files);
        }
        let later = now + Duration::from_secs(10);
        assert_eq!(scan(&mut cache, later), files);
        assert_eq!(scan(&mut cache, later), 0);
    }

    /// Reads `dir` with `cache` as [`read_later`] does; the instances' UUIDs and whether the
    /// directory was scanned (rather than its watch trusted).
    fn uuids_later(dir: &Path, cache: &mut DomainCache) -> (Vec<String>, bool) {
        let (instances, _) = read_later(dir, cache);
        let uuids = instances.into_iter().map(|i| i.uuid).collect();
        (uuids, cache.scanned_last)
    }

    #[test]
    fn an_unchanged_directory_is_not_scanned_and_every_kind_of_change_is() {
        let dir = copy_fixture_dir("libvirt");
        let at = |name: &str| dir.path().join(name);
        let mut cache = DomainCache::default();
        let all = vec![IMAGE_UUID, BFV_UUID, NS_1_0_UUID];
        assert_eq!(
            uuids_later(dir.path(), &mut cache),
            (all.iter().map(|u| u.to_string()).collect(), true)
        );
        let unchanged = uuids_later(dir.path(), &mut cache);
        assert_eq!(unchanged.0, all);
        assert!(!unchanged.1, "nothing changed: the watch is trusted");

        // Edited in place to the same size and mtime (only ctime and the content differ).
        let image = at("instance-00000001.xml");
        let original = std::fs::read_to_string(&image).unwrap();
        let mtime = std::fs::metadata(&image).unwrap().modified().unwrap();
        std::fs::write(&image, with_root_gb(&original, 41)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&image)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let (instances, parsed) = read_later(dir.path(), &mut cache);
        assert_eq!((parsed, cache.scanned_last), (1, true));
        assert_eq!(instances[0].tracked_bytes, (41 + 8 + 1) * GIB);
        assert!(!uuids_later(dir.path(), &mut cache).1);

        // Renamed: the same domain under another name, nothing else.
        std::fs::rename(at("instance-00000002.xml"), at("instance-00000009.xml")).unwrap();
        assert_eq!(
            uuids_later(dir.path(), &mut cache),
            (
                vec![
                    IMAGE_UUID.to_string(),
                    NS_1_0_UUID.to_string(),
                    BFV_UUID.to_string()
                ],
                true
            )
        );
        // Removed.
        std::fs::remove_file(at("instance-00000009.xml")).unwrap();
        assert_eq!(
            uuids_later(dir.path(), &mut cache),
            (vec![IMAGE_UUID.to_string(), NS_1_0_UUID.to_string()], true)
        );
        // Added.
        std::fs::write(at("instance-00000002.xml"), domain_with(BFV_UUID, &format!("<nova:instance xmlns:nova=\"{NOVA_NS_1_1}\"><nova:flavor><nova:disk>1</nova:disk><nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral></nova:flavor></nova:instance>"))).unwrap();
        assert_eq!(
            uuids_later(dir.path(), &mut cache),
            (all.iter().map(|u| u.to_string()).collect(), true)
        );
        assert!(!uuids_later(dir.path(), &mut cache).1);
        // Replaced atomically, libvirt's way: the other instance's definition renamed over it.
        let staged = at("instance-00000001.xml.new");
        std::fs::copy(at("instance-00000003.xml"), &staged).unwrap();
        std::fs::remove_file(at("instance-00000003.xml")).unwrap();
        assert!(uuids_later(dir.path(), &mut cache).1, "removed");
        std::fs::rename(&staged, &image).unwrap();
        assert_eq!(
            uuids_later(dir.path(), &mut cache),
            (vec![NS_1_0_UUID.to_string(), BFV_UUID.to_string()], true)
        );
        assert!(!uuids_later(dir.path(), &mut cache).1);
    }

    #[test]
    fn a_directory_replaced_at_the_same_path_is_read() {
        let parent = tempfile::tempdir().unwrap();
        let qemu = parent.path().join("qemu");
        std::fs::create_dir(&qemu).unwrap();
        std::fs::copy(
            fixtures().join("libvirt/instance-00000001.xml"),
            qemu.join("instance-00000001.xml"),
        )
        .unwrap();
        let mut cache = DomainCache::default();
        assert_eq!(
            uuids_later(&qemu, &mut cache),
            (vec![IMAGE_UUID.to_string()], true)
        );
        assert!(!uuids_later(&qemu, &mut cache).1);
        let staged = parent.path().join("qemu.new");
        std::fs::create_dir(&staged).unwrap();
        std::fs::copy(
            fixtures().join("libvirt/instance-00000003.xml"),
            staged.join("instance-00000001.xml"),
        )
        .unwrap();
        std::fs::rename(&qemu, parent.path().join("qemu.old")).unwrap();
        std::fs::rename(&staged, &qemu).unwrap();
        assert_eq!(
            uuids_later(&qemu, &mut cache),
            (vec![NS_1_0_UUID.to_string()], true)
        );
        assert!(!uuids_later(&qemu, &mut cache).1);
        // The new directory is the one watched from then on.
        std::fs::copy(
            fixtures().join("libvirt/instance-00000002.xml"),
            qemu.join("instance-00000002.xml"),
        )
        .unwrap();
        assert_eq!(
            uuids_later(&qemu, &mut cache),
            (vec![NS_1_0_UUID.to_string(), BFV_UUID.to_string()], true)
        );
        std::fs::remove_file(qemu.join("instance-00000002.xml")).unwrap();
        // Gone: the error a missing directory always was, and no watch trusted after it.
        std::fs::rename(&qemu, parent.path().join("qemu.gone")).unwrap();
        for _ in 0..2 {
            match read_domains_with(&qemu, &mut cache) {
                Err(TrackedError::Io { source, .. }) => {
                    assert_eq!(source.kind(), ErrorKind::NotFound)
                }
                other => panic!("expected NotFound, got {other:?}"),
            }
        }
        std::fs::rename(parent.path().join("qemu.gone"), &qemu).unwrap();
        assert_eq!(
            uuids_later(&qemu, &mut cache),
            (vec![NS_1_0_UUID.to_string()], true)
        );
    }

    #[test]
    fn a_directory_with_a_link_or_a_hard_linked_file_is_scanned_every_time() {
        let elsewhere = tempfile::tempdir().unwrap();
        for link in [true, false] {
            let dir = copy_fixture_dir("libvirt");
            let target = elsewhere.path().join(format!("{link}.xml"));
            std::fs::copy(dir.path().join("instance-00000001.xml"), &target).unwrap();
            std::fs::remove_file(dir.path().join("instance-00000001.xml")).unwrap();
            let linked = dir.path().join("instance-00000001.xml");
            if link {
                std::os::unix::fs::symlink(&target, &linked).unwrap();
            } else {
                std::fs::hard_link(&target, &linked).unwrap();
            }
            let mut cache = DomainCache::default();
            let first = read_later(dir.path(), &mut cache).0;
            assert_eq!(first, expected_instances());
            assert!(
                uuids_later(dir.path(), &mut cache).1,
                "link {link}: scanned again"
            );
            // Written through the other directory: no event on this one, and still seen.
            let original = std::fs::read_to_string(&target).unwrap();
            std::fs::write(&target, with_root_gb(&original, 80)).unwrap();
            let (instances, parsed) = read_later(dir.path(), &mut cache);
            assert_eq!(parsed, 1, "link {link}");
            assert_eq!(
                instances[0].tracked_bytes,
                first[0].tracked_bytes + 40 * GIB
            );
        }
    }

    #[test]
    fn a_broken_file_fails_every_collection_until_it_is_fixed() {
        let dir = copy_fixture_dir("libvirt");
        let file = dir.path().join("instance-00000002.xml");
        let good = std::fs::read_to_string(&file).unwrap();
        let mut cache = DomainCache::default();
        read_later(dir.path(), &mut cache);
        std::fs::write(&file, "<domain").unwrap();
        let later = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(10);
        for _ in 0..2 {
            let error = read_domains_at(dir.path(), &mut cache, later).unwrap_err();
            assert!(error.to_string().contains("not well-formed XML"), "{error}");
        }
        std::fs::write(&file, good).unwrap();
        assert_eq!(read_later(dir.path(), &mut cache).0, expected_instances());
        assert!(!uuids_later(dir.path(), &mut cache).1);
    }

    #[tokio::test]
    async fn the_source_keeps_its_cache_between_collections() {
        let dir = copy_fixture_dir("libvirt");
        let source = LibvirtSource::new(dir.path().to_path_buf(), settings());
        assert_eq!(
            source.collect().await.unwrap().instances,
            expected_instances()
        );
        // Nothing changed since: the watch says so, and nothing is read (not even the fresh
        // copies inside the racy window, which the next scan would read again).
        assert_eq!(
            source.collect().await.unwrap().instances,
            expected_instances()
        );
        assert_eq!(source.files_parsed_last(), 0);
        // A clone shares the cache (the collector holds the source behind an Arc anyway).
        let clone = source.clone();
        assert!(Arc::ptr_eq(&clone.cache, &source.cache));
    }

    #[tokio::test]
    async fn an_empty_directory_has_no_instances() {
        let dir = tempfile::tempdir().unwrap();
        let usage = LibvirtSource::new(dir.path().to_path_buf(), HostDiskSettings::default())
            .collect()
            .await
            .unwrap();
        assert!(usage.instances.is_empty());
        assert_eq!(usage.reserved_bytes, 0);
    }

    #[tokio::test]
    async fn one_malformed_file_fails_the_whole_source_and_is_named() {
        let dir = copy_fixture_dir("libvirt-bad");
        let error = LibvirtSource::new(dir.path().to_path_buf(), settings())
            .collect()
            .await
            .unwrap_err();
        let bad = dir
            .path()
            .join("instance-00000002.xml")
            .display()
            .to_string();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{bad}: not well-formed XML: ")),
            "{message}"
        );
        // The checked-in directory behaves the same.
        let error = LibvirtSource::new(fixtures().join("libvirt-bad"), settings())
            .collect()
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("libvirt-bad/instance-00000002.xml: not well-formed XML"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_unreadable_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("qemu");
        match LibvirtSource::new(missing.clone(), settings())
            .collect()
            .await
        {
            Err(TrackedError::Io { path, source }) => {
                assert_eq!(path, missing.display().to_string());
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected Io, got {other:?}"),
        }
        // A file where the directory should be (unreadable as a directory, even for root).
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = LibvirtSource::new(file.clone(), settings())
            .collect()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, TrackedError::Io { path, .. } if *path == file.display().to_string()),
            "{error}"
        );
        assert!(error
            .to_string()
            .starts_with(&format!("cannot read {}: ", file.display())));
    }

    #[tokio::test]
    async fn a_duplicate_uuid_across_files_is_an_error() {
        let dir = copy_fixture_dir("libvirt");
        std::fs::copy(
            dir.path().join("instance-00000001.xml"),
            dir.path().join("instance-00000004.xml"),
        )
        .unwrap();
        let message = LibvirtSource::new(dir.path().to_path_buf(), settings())
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!(
                "{}: domain UUID {IMAGE_UUID} is also defined in {}",
                dir.path().join("instance-00000004.xml").display(),
                dir.path().join("instance-00000001.xml").display()
            )),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_huge_file_is_refused() {
        let dir = copy_fixture_dir("libvirt");
        let huge = dir.path().join("instance-00000005.xml");
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(crate::input::MAX_FILE_BYTES + 1).unwrap();
        let message = LibvirtSource::new(dir.path().to_path_buf(), settings())
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "{}: larger than 64 MiB; refusing to read it",
                huge.display()
            )
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_utf8_is_named() {
        let dir = copy_fixture_dir("libvirt");
        let bad = dir.path().join("instance-00000006.xml");
        std::fs::write(&bad, b"<domain>\xff</domain>").unwrap();
        let message = LibvirtSource::new(dir.path().to_path_buf(), settings())
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!("{}: not valid UTF-8 (at byte 8)", bad.display())
        );
    }

    #[test]
    fn each_flavor_name_once_the_larger_sizes_winning_and_nameless_flavors_left_out() {
        let domain = |uuid: &str, name: Option<&str>, root_gb, boot_from_volume| DomainInstance {
            uuid: uuid.into(),
            flavor: Flavor {
                root_gb,
                ephemeral_gb: 0,
                swap_mb: 0,
                boot_from_volume,
            },
            flavor_name: name.map(str::to_string),
        };
        let domains = [
            domain("a", Some("m1.large"), 80, false),
            // The same name with a smaller disk (deleted and created again): the larger wins.
            domain("b", Some("m1.large"), 40, false),
            domain("c", Some("m1.large"), 160, true),
            domain("d", None, 500, false),
            domain("e", Some("a.tiny"), 1, false),
        ];
        let flavors = domain_flavors(&domains);
        let named: Vec<(&str, u64, bool)> = flavors
            .iter()
            .map(|f| (f.name.as_str(), f.flavor.root_gb, f.flavor.boot_from_volume))
            .collect();
        assert_eq!(named, vec![("a.tiny", 1, false), ("m1.large", 160, false)]);
        assert!(flavors.iter().all(|f| f.origin == FlavorOrigin::Libvirt));
    }

    #[test]
    fn the_flavor_name_is_read_cleaned_and_optional() {
        let sizes =
            "<nova:disk>10</nova:disk><nova:swap>0</nova:swap><nova:ephemeral>0</nova:ephemeral>";
        let name_of = |flavor_open: &str| {
            let xml = domain_with(
                IMAGE_UUID,
                &format!("<nova:instance xmlns:nova=\"{NOVA_NS_1_1}\">{flavor_open}{sizes}</nova:flavor>{ROOT_IMAGE}</nova:instance>"),
            );
            parse_nova_domain(&xml, "x.xml")
                .unwrap()
                .expect("nova metadata")
                .flavor_name
        };
        assert_eq!(
            name_of("<nova:flavor name=\"m1.large\">"),
            Some("m1.large".to_string())
        );
        assert_eq!(name_of("<nova:flavor>"), None);
        assert_eq!(name_of("<nova:flavor name=\" \">"), None);
        let long = format!("<nova:flavor name=\"{}\">", "x".repeat(256));
        assert_eq!(name_of(&long), None);
        // A line break (XML allows no other control character) never reaches a report line.
        let hostile = name_of("<nova:flavor name=\"m1&#10;large\">").unwrap();
        assert!(!hostile.contains('\n'), "{hostile:?}");
    }
}
