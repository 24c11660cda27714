//! The raw source: what LVM itself says about the volume groups we watch.
//!
//! Three implementations of [`RawSource`] exist: [`exec::LvmCommand`] runs the real `lvm
//! fullreport`, [`metadata::source::MetadataSource`] reads the VGs' metadata straight from their
//! PVs with `lvm fullreport` as the per-VG fallback, and [`replay::ReplayFile`] reads a saved JSON
//! report (the same JSON that `vgs`, `lvs` or `lvm fullreport` print with `--reportformat json`).
//! All produce a [`VgReport`]; everything downstream of it is pure.
//!
//! - [`exec`]: what the exporter knows about running LVM: the command line, the prefix, the I/O
//!   mode, and what an exit status and stderr mean.
//! - [`process`]: supervising any child process: process group, timeout, bounded reads, reaping.
//! - [`sync_io`]: the seccomp filter that makes a child read without AIO.
//! - [`report`]: parsing LVM's JSON report; [`replay`]: a saved report as a source.
//! - [`owner`]: who an LV belongs to.
//! - [`build`]: the model's builders with every field spelled out once, for tests and examples.
//! - [`metadata`]: [`metadata::source::MetadataSource`], the raw source that reads LVM's
//!   metadata straight from the PVs with the workspace's [`lvm_metadata`] crate (label, metadata
//!   area headers, the checksummed text parsed into a VG; issue 14) and `lvm fullreport` as the
//!   fallback.
//! - [`missing_vg`]: when a watched VG is not found, the VGs LVM sees (one `lvm pvs`) for the error.
//!
//! [`Vg`] and [`Lv`], the figures every source reports, are the [`lvm_metadata`] crate's.

pub mod build;
pub mod exec;
pub mod metadata;
pub mod missing_vg;
pub mod owner;
pub mod process;
pub mod replay;
pub mod report;
pub mod sync_io;

use async_trait::async_trait;

pub use lvm_metadata::{Lv, Vg};

/// Everything one collection read from LVM: the VGs found and all their LVs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VgReport {
    /// The volume groups found (a requested VG that does not exist is simply absent).
    pub vgs: Vec<Vg>,
    /// The logical volumes of those VGs, hidden ones included.
    pub lvs: Vec<Lv>,
}

impl VgReport {
    /// The VG called `name`, if the report has it.
    pub fn vg(&self, name: &str) -> Option<&Vg> {
        self.vgs.iter().find(|vg| vg.name == name)
    }

    /// The LVs of the VG called `name`.
    pub fn lvs_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Lv> + 'a {
        self.lvs.iter().filter(move |lv| lv.vg == name)
    }
}

/// A source of raw VG figures: the live LVM tools or a saved report.
#[async_trait]
pub trait RawSource: Send + Sync {
    /// Reads the VGs named in `vg_names` (and their LVs). VGs that do not exist are left out
    /// of the report rather than failing the whole call; the caller decides what a missing VG means.
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError>;

    /// Like [`RawSource::collect`], with how this very collection read each VG: the figures (or
    /// the error) and their provenance come back in one value, so they can never describe two
    /// different collections. Sources without per-VG methods (exec alone, a saved report) give
    /// none.
    async fn collect_with_methods(&self, vg_names: &[String]) -> RawCollection {
        RawCollection {
            report: self.collect(vg_names).await.map(std::sync::Arc::new),
            methods: Vec::new(),
        }
    }
}

/// One collection of a raw source: its figures or why there are none, and how it read each VG.
#[derive(Debug)]
pub struct RawCollection {
    /// The figures, or why the collection failed. Shared: the metadata reader hands every
    /// collection of unchanged VGs the same report instead of a copy of its parsed VGs.
    pub report: Result<std::sync::Arc<VgReport>, LvmError>,
    /// How each watched VG was read by this collection (the metadata reader; empty for the
    /// others).
    pub methods: Vec<RawMethod>,
}

/// A shared source (the metadata reader is also held by its background verifier).
#[async_trait]
impl<T: RawSource + ?Sized> RawSource for std::sync::Arc<T> {
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        (**self).collect(vg_names).await
    }

    async fn collect_with_methods(&self, vg_names: &[String]) -> RawCollection {
        (**self).collect_with_methods(vg_names).await
    }
}

/// How one VG was read: `nova_lvm_raw_source_info{vg,method,reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMethod {
    /// The VG.
    pub vg: String,
    /// `metadata`, `exec`, or `none` when this collection has no figures of the VG.
    pub method: &'static str,
    /// Why: `ok`, or the fallback's reason token ([`metadata::source::Reason`]).
    pub reason: &'static str,
    /// How many background checks found the VG's metadata view differing from `lvm fullreport`
    /// (`nova_lvm_metadata_verify_mismatches_total`).
    pub verify_mismatches: u64,
}

fn said_suffix(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(" (it said: {said})")
    }
}

/// Why reading LVM failed. Every variant carries enough context for a one-line log message
/// that an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    /// The binary could not be started at all (missing, not executable, ...).
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command line that was attempted.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command ran past its timeout and was killed. LVM waiting for a VG lock that another
    /// LVM command holds looks like this; what the command said when stopped tells.
    #[error(
        "{command} did not finish within {timeout_ms} ms and was killed{}",
        said_suffix(said)
    )]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout that expired, in milliseconds.
        timeout_ms: u128,
        /// The meaningful stderr lines it printed, e.g. LVM's "Giving up waiting for lock";
        /// empty when it said nothing.
        said: String,
    },
    /// The command exited unsuccessfully and printed nothing usable.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status or signal, as text.
        status: String,
        /// The last meaningful stderr line(s).
        stderr: String,
    },
    /// The output was not a report we understand.
    #[error("cannot parse LVM report from {origin}: {message}")]
    Parse {
        /// Where the text came from (a command line or a file path).
        origin: String,
        /// What was wrong, naming the offending field where possible.
        message: String,
    },
    /// A saved report could not be read.
    #[error("LVM report file: {0}")]
    ReadFile(#[from] crate::input::InputError),
    /// The read of a saved report did not give a result (the previous one is stuck).
    #[error("LVM report file: {0}")]
    Blocked(#[from] crate::input::LaneError),
    /// VGs the metadata reader could not read where LVM cannot run to fall back (the PVs found
    /// by their labels): each VG with its reason and what happened.
    #[error("reading the PVs directly (no lvm fullreport to fall back to): {0}")]
    NoFallback(String),
}
