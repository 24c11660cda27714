//! nova-lvm-exporter: measures the LVM disk space that OpenStack nova does not see.
//!
//! # Layout
//!
//! Data flows one way on every scrape: the raw source ([`lvm`]) and the tracked sources
//! ([`tracked`]) are collected concurrently ([`collect`]), [`accounting`] turns them into the
//! derived figures with pure functions, and [`output`] renders them. The modules form layers,
//! bottom to top; a module imports only from its own layer and the ones below
//! (`tests/fast/layers.rs` holds the order and checks it):
//!
//! Below every layer is the workspace's [`lvm_metadata`] crate (`crates/lvm-metadata`): LVM's
//! metadata read straight from the PVs, pure and synchronous; [`lvm`] builds its metadata source
//! on it.
//!
//! 1. Foundation, used by everything above:
//!    - [`units`]: the one GiB/MiB definition; sizes and ratios written for people.
//!    - [`text`]: control characters escaped for a terminal line; URL percent-encoding.
//!    - [`input`]: every file operators and the host control, read safely (regular files only,
//!      size-bounded), and the blocking lane that keeps a stuck read off the runtime.
//!    - [`redact`]: the redactor every outgoing string passes through; secret-carrying types.
//!    - [`ident`]: instance and consumer UUIDs in one canonical spelling for every source.
//!    - [`time`]: RFC 3339 timestamps in UTC, parsed and formatted.
//! 2. [`openstack`]: Keystone sessions, clouds.yaml/`OS_*` credentials, and the one
//!    microversioned, size-bounded API client both API sources use.
//! 3. Sources:
//!    - [`lvm`]: the raw source: `lvm fullreport` (supervised process, seccomp sync-I/O filter)
//!      or a saved report, parsed, each LV given its owner class.
//!    - [`tracked`]: what nova believes: libvirt domain XML, an instances file, placement, the
//!      compute API; this host's identity in them; the refresh cache of API sources.
//! 4. [`accounting`], pure, one module:
//!    - [`accounting::drift`]: the model: drift by cause, corrected free space, the scheduler's
//!      view, the reserve that would fix it.
//!    - [`accounting::audit`]: placement's allocations compared consumer by consumer with the
//!      local instances and nova's LVs.
//!    - [`accounting::fit`]: how many more instances of each flavor fit, by corrected free space
//!      and by the scheduler's rule.
//!    - [`accounting::orphans`]: the orphan LVs of nova's VG and why each is one, totalled per
//!      reason.
//! 5. [`collect`]: one collection, one way: every source observed concurrently under its
//!    timeout (one immutable observation each, errors typed), a pure accounting step
//!    ([`collect::pipeline`], reused while no input changed), one snapshot; concurrent scrapes
//!    share one collection.
//! 6. [`output`]: what a snapshot becomes: the metrics, the report (JSON and text), the status
//!    page, `check`'s verdict.
//! 7. [`web`]: the HTTP side: the server (limits, TLS, shutdown), routes, basic auth, the
//!    exporter-toolkit web configuration file and its reload.
//! 8. [`config`]: the command line (clap definitions, subcommands), `--config.file`,
//!    `nova.conf`, resolved into one validated configuration.
//! 9. [`app`]: wiring: configuration into sources, collector, report context and HTTP state;
//!    `report`/`check`'s one-shot collection; completions and the man page; the error type
//!    that decides the exit code.
//!
//! `main.rs` parses, sets up logging and runs one command, with one exit path. `fuzzing`
//! (feature `fuzzing`, never in a release) holds the fuzz targets' entry points.

#![warn(missing_docs)]

// In layer order (see the Layout above); blank lines keep rustfmt from sorting them.
pub mod ident;
pub mod input;
pub mod redact;
pub mod text;
pub mod time;
pub mod units;

pub mod openstack;

pub mod lvm;
pub mod tracked;

pub mod accounting;

pub mod collect;

pub mod output;

pub mod web;

pub mod config;

pub mod app;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
