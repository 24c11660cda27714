//! The subcommands besides serving: `report` and `check` (one collection, then exit),
//! `completions` and `man` (generated from the command line definition itself, so they never
//! drift from `--help`).

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::collect::Snapshot;
use crate::config::flags::Config;
use crate::output::check::CheckArgs;
use crate::output::report::{Report, ReportContext};

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

/// How long [`collect_once`] waits for leftover blocking work of its runtime once the collection
/// is done (the collection itself is bounded by the collectors' timeouts).
const RUNTIME_SHUTDOWN_BOUND: Duration = Duration::from_secs(1);

/// Runs one collection with every enabled source, as a scrape would, on a runtime of its own.
/// Returns within the collectors' timeouts whatever hangs: a stuck read is left behind on its own
/// thread, and ends with the process.
pub fn collect_once(config: &Config) -> Result<Snapshot, String> {
    let collector = crate::app::collector(config)?;
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
    Ok(Report::new(
        &snapshot,
        &ReportContext::from_config(config),
        top_lvs,
    ))
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
