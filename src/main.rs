//! nova-lvm-exporter: parse the command line (and `--config.file`), set up logging, then serve
//! or run one of the subcommands (`report`, `check`, `textfile`, `completions`, `man`).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use nova_lvm_exporter::app::{self, Error};
use nova_lvm_exporter::config::file::{self as config_file, ParseError, Setting};
use nova_lvm_exporter::config::flags::{
    Command, LogFormat, LogLevel, ReportArgs, ReportFormat, TextfileArgs,
};
use nova_lvm_exporter::config::resolve::Config;
use nova_lvm_exporter::output::check::{self, Status, Thresholds};
use nova_lvm_exporter::output::{metrics, report_text, textfile};
use nova_lvm_exporter::redact::RedactingWriter;
use nova_lvm_exporter::web::{self, WebConfigSource};

/// Exit code for a bad flag or configuration, like clap's own usage errors.
const EXIT_USAGE: u8 = 2;

/// Most threads in the async runtime's blocking pool.
const BLOCKING_THREADS: usize = 4;

/// How long the runtime may wait for its blocking work when the process ends (after the server's
/// shutdown grace): work that does not finish by then is abandoned with the process.
const RUNTIME_SHUTDOWN_BOUND: Duration = Duration::from_secs(1);

/// The one exit path: every failure comes back here as an [`Error`], is printed once and
/// decides the exit code.
fn main() -> ExitCode {
    one_malloc_arena();
    let args: Vec<OsString> = std::env::args_os().collect();
    // A plugin's usage errors are UNKNOWN (3), not CRITICAL (2, our usual usage exit code).
    let is_check = args.iter().skip(1).any(|a| a == "check");
    match run(args) {
        Ok(exit) => exit,
        Err(Error::Usage(message)) => {
            if is_check {
                println!("NOVA-LVM UNKNOWN - {message}");
            }
            eprintln!("nova-lvm-exporter: {message}");
            if is_check {
                ExitCode::from(Status::Unknown.exit_code())
            } else {
                ExitCode::from(EXIT_USAGE)
            }
        }
        Err(Error::Runtime(message)) => {
            eprintln!("nova-lvm-exporter: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Limits glibc's allocator to one arena, unless the operator set `MALLOC_ARENA_MAX` or the
/// `glibc.malloc.arena_max` tunable. By default glibc gives each thread that allocates an arena
/// of its own (up to 8 per core), and every arena keeps what its thread freed, so the tokio
/// workers and the blocking threads of the sources each held a copy of a scrape's transient
/// memory: RSS high-water 19-20 MB at 2,000 LVs with 1,700 domain files, 15 MB with one arena,
/// the CPU per scrape the same within the noise (docs/performance.md, "Issue 21: the scrape near
/// the floor"). The exporter's threads take turns (one collection at a time, one blocking read
/// per source), so they rarely wait for the arena's lock. Other C libraries: nothing to do.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_operator = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"));
        if !set_by_operator {
            // SAFETY: mallopt sets an allocator parameter; it is called before any other thread
            // exists, and M_ARENA_MAX with a positive value is always valid.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
    }
}

/// Parses the command line (and `--config.file`), sets up logging, then serves or runs the
/// subcommand.
fn run(args: Vec<OsString>) -> Result<ExitCode, Error> {
    let parsed = match config_file::parse_args(args) {
        Ok(parsed) => parsed,
        Err(ParseError::Clap(error)) if !error.use_stderr() => {
            let _ = error.print();
            return Ok(ExitCode::SUCCESS);
        }
        Err(ParseError::Clap(error)) => {
            return Err(Error::Usage(config_file::clap_message(&error)));
        }
        Err(ParseError::File(message)) => return Err(Error::Usage(message)),
    };
    let mut cli = parsed.cli;
    let command = cli.command.take();
    match &command {
        Some(Command::Completions { shell }) => {
            write_stdout(&app::completions(*shell))?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man) => {
            let page = app::man_page()
                .map_err(|error| Error::Runtime(format!("cannot render the man page: {error}")))?;
            write_stdout(&page)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Some(Command::Textfile(args)) = &command {
        textfile::check_target(&args.file).map_err(Error::Usage)?;
    }
    let config_check = cli.config_check;
    init_logging(cli.log_level, cli.log_format);
    let config = cli.resolve().map_err(|error| {
        if config_check {
            println!("# configuration is NOT valid: {error}");
        }
        Error::Usage(error.to_string())
    })?;
    if config_check {
        return check_config(&parsed.settings, parsed.config_file.as_deref(), &config);
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match command {
        Some(Command::Report(args)) => run_report(&config, &args),
        Some(Command::Check(args)) => run_check(&config, args.into()),
        Some(Command::Textfile(args)) => run_textfile(&config, &args),
        Some(Command::Serve) | None => serve(config),
        Some(Command::Completions { .. }) | Some(Command::Man) => Ok(ExitCode::SUCCESS),
    }
}

/// Serves the metrics until SIGTERM or SIGINT.
fn serve(config: Config) -> Result<ExitCode, Error> {
    // The blocking pool runs rendering, file reads and bcrypt checks, each short. tokio's
    // default of up to 512 threads let a burst of 100 scrapers start 60+ threads (one render
    // each before the first finished), each with its stack and malloc arena: 26 MB peak RSS
    // instead of about 20. A handful bounds memory; the work queues for a millisecond instead.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(|error| Error::Runtime(format!("cannot start the async runtime: {error}")))?;
    let web = match &config.web_config_file {
        None => None,
        Some(path) => Some(Arc::new(
            WebConfigSource::load(path).map_err(|error| Error::Usage(error.to_string()))?,
        )),
    };
    let limits = config.server_limits;
    let served = runtime.block_on(async move {
        let listener = web::bind(&config.listen_address)
            .await
            .map_err(|error| Error::Runtime(error.to_string()))?;
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| config.listen_address.clone());
        for (key, value) in app::summary(&config) {
            tracing::info!(setting = %key, value = %value, "configuration");
        }
        tracing::info!(address = %address, path = %config.telemetry_path, version = nova_lvm_exporter::config::flags::VERSION, "listening");
        let tls = web.as_ref().is_some_and(|web| web.tls());
        tracing::info!(tls, basic_auth = web.is_some(), "web configuration");
        let state = app::state(&config, web.clone(), &limits).map_err(Error::Runtime)?;
        let router = web::router(state);
        web::serve(listener, router, web, limits, shutdown_signal()).await;
        tracing::info!("shut down");
        Ok(ExitCode::SUCCESS)
    });
    // Dropping the runtime would wait for every blocking task without limit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_BOUND);
    served
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let filter = match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(RedactingWriter(std::io::stderr)),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(RedactingWriter(std::io::stderr)),
            )
            .init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Error::Runtime(format!("cannot write to stdout: {error}"))),
    }
}

/// `--config.check`: the effective settings, where each came from, and what they resolve to.
/// The web configuration file is loaded and validated exactly as at start-up (same error, exit 2).
fn check_config(
    settings: &[Setting],
    config_file: Option<&Path>,
    config: &Config,
) -> Result<ExitCode, Error> {
    let web_summary = match &config.web_config_file {
        None => None,
        Some(path) => match web::check_web_config(path) {
            Ok(summary) => Some(format!("{}: {summary}", path.display())),
            Err(error) => {
                println!("# configuration is NOT valid: {error}");
                return Err(Error::Usage(error.to_string()));
            }
        },
    };
    let rendered = config_file::render_settings(settings, config_file);
    let mut out = format!(
        "# nova-lvm-exporter {}: the configuration is valid.\n\
         # Precedence: command line > environment (OS_CLOUD) > --config.file > nova.conf > defaults.\n\
         # Secrets are never printed.\n{rendered}\n# Resolved:\n",
        nova_lvm_exporter::config::flags::VERSION
    );
    for (key, value) in app::summary(config) {
        out.push_str(&format!("#   {key}: {value}\n"));
    }
    if let Some(summary) = web_summary {
        out.push_str(&format!("#   web configuration: {summary}\n"));
    }
    for warning in &config.warnings {
        out.push_str(&format!("# warning: {warning}\n"));
    }
    write_stdout(nova_lvm_exporter::redact::redact(&out).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `report`: one collection, printed; exit 1 when a collector failed.
fn run_report(config: &Config, args: &ReportArgs) -> Result<ExitCode, Error> {
    let report = app::report_once(config, args.top_lvs).map_err(Error::Runtime)?;
    let text = match args.format {
        ReportFormat::Text => report_text::render_text(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&report)
            .map(|json| json + "\n")
            .map_err(|error| Error::Runtime(format!("cannot encode the report: {error}")))?,
    };
    write_stdout(text.as_bytes())?;
    Ok(if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `check`: one collection judged against the thresholds, as a monitoring plugin. A failed
/// collection is the plugin's UNKNOWN verdict (on stdout), not an error of the program.
fn run_check(config: &Config, thresholds: Thresholds) -> Result<ExitCode, Error> {
    match app::report_once(config, 1) {
        Ok(report) => {
            let result = check::evaluate(&report, &thresholds);
            println!("{}", result.line);
            Ok(ExitCode::from(result.status.exit_code()))
        }
        Err(error) => {
            println!("NOVA-LVM UNKNOWN - {}", error.replace(['\n', '|'], " "));
            Ok(ExitCode::from(Status::Unknown.exit_code()))
        }
    }
}

/// `textfile FILE`: one collection written atomically to FILE for node_exporter; exit 1 when a
/// collector failed, after writing the file whose success metrics say which.
fn run_textfile(config: &Config, args: &TextfileArgs) -> Result<ExitCode, Error> {
    let snapshot = app::collect_once(config).map_err(Error::Runtime)?;
    textfile::write_atomically(&args.file, &metrics::render_without_process(&snapshot))
        .map_err(Error::Runtime)?;
    let failed: Vec<String> = snapshot
        .collectors
        .iter()
        .filter(|status| !status.success)
        .map(|status| match &status.error {
            Some(error) => format!("{}: {error}", status.name),
            None => status.name.to_string(),
        })
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "nova-lvm-exporter: wrote {} with nova_lvm_collector_success 0 for what failed:\n  {}",
        args.file.display(),
        failed.join("\n  ")
    );
    Ok(ExitCode::from(1))
}
