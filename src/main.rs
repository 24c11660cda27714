//! nova-lvm-exporter: parse the command line (and `--config.file`), set up logging, then serve
//! or run one of the subcommands (`report`, `check`, `completions`, `man`).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use nova_lvm_exporter::check::{self, CheckArgs, Status};
use nova_lvm_exporter::cli::{Config, LogFormat, LogLevel};
use nova_lvm_exporter::commands::{self, Command, ReportArgs, ReportFormat};
use nova_lvm_exporter::config_file::{self, ParseError, Setting};
use nova_lvm_exporter::redact::RedactingWriter;
use nova_lvm_exporter::report;
use nova_lvm_exporter::web::WebConfigSource;
use nova_lvm_exporter::{app, web};

/// Exit code for a bad flag or configuration, like clap's own usage errors.
const EXIT_USAGE: u8 = 2;

/// Most threads in the async runtime's blocking pool.
const BLOCKING_THREADS: usize = 4;

/// How long the runtime may wait for its blocking work when the process ends (after the server's
/// shutdown grace): work that does not finish by then is abandoned with the process.
const RUNTIME_SHUTDOWN_BOUND: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // A plugin's usage errors are UNKNOWN (3), not CRITICAL (2, our usual usage exit code).
    let is_check = args.iter().skip(1).any(|a| a == "check");
    let usage_exit = if is_check {
        ExitCode::from(Status::Unknown.exit_code())
    } else {
        ExitCode::from(EXIT_USAGE)
    };
    let usage_error = |message: &str| {
        if is_check {
            println!("NOVA-LVM UNKNOWN - {message}");
        }
        eprintln!("nova-lvm-exporter: {message}");
    };
    let parsed = match config_file::parse_args(args) {
        Ok(parsed) => parsed,
        Err(ParseError::Clap(error)) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(ParseError::Clap(error)) => {
            usage_error(&config_file::clap_message(&error));
            return usage_exit;
        }
        Err(ParseError::File(message)) => {
            usage_error(&message);
            return usage_exit;
        }
    };
    let mut cli = parsed.cli;
    let command = cli.command.take();
    match &command {
        Some(Command::Completions { shell }) => {
            return write_stdout(&commands::completions(*shell));
        }
        Some(Command::Man) => {
            return match commands::man_page() {
                Ok(page) => write_stdout(&page),
                Err(error) => {
                    eprintln!("nova-lvm-exporter: cannot render the man page: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let config_check = cli.config_check;
    let log_level = cli.log_level;
    let log_format = cli.log_format;
    init_logging(log_level, log_format);
    let config = match cli.resolve() {
        Ok(config) => config,
        Err(error) => {
            if config_check {
                println!("# configuration is NOT valid: {error}");
            }
            usage_error(&error.to_string());
            return usage_exit;
        }
    };
    if config_check {
        return check_config(&parsed.settings, parsed.config_file.as_deref(), &config);
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match command {
        Some(Command::Report(args)) => return run_report(&config, &args),
        Some(Command::Check(args)) => return run_check(&config, &args),
        Some(Command::Serve) | None => {}
        Some(Command::Completions { .. }) | Some(Command::Man) => return ExitCode::SUCCESS,
    }

    // The blocking pool runs rendering, file reads and bcrypt checks, each short. tokio's
    // default of up to 512 threads let a burst of 100 scrapers start 60+ threads (one render
    // each before the first finished), each with its stack and malloc arena: 26 MB peak RSS
    // instead of about 20. A handful bounds memory; the work queues for a millisecond instead.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nova-lvm-exporter: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let web = match &config.web_config_file {
        None => None,
        Some(path) => match WebConfigSource::load(path) {
            Ok(web) => Some(Arc::new(web)),
            Err(error) => {
                eprintln!("nova-lvm-exporter: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let limits = config.server_limits;
    let exit = runtime.block_on(async move {
        let listener = match web::bind(&config.listen_address).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("nova-lvm-exporter: {error}");
                return ExitCode::FAILURE;
            }
        };
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| config.listen_address.clone());
        for (key, value) in app::summary(&config) {
            tracing::info!(setting = %key, value = %value, "configuration");
        }
        tracing::info!(address = %address, path = %config.telemetry_path, version = nova_lvm_exporter::cli::VERSION, "listening");
        let tls = web.as_ref().is_some_and(|web| web.tls());
        tracing::info!(tls, basic_auth = web.is_some(), "web configuration");
        let state = match app::state(&config, web.clone(), &limits) {
            Ok(state) => state,
            Err(error) => {
                eprintln!("nova-lvm-exporter: {error}");
                return ExitCode::FAILURE;
            }
        };
        let router = web::router(state);
        web::serve(listener, router, web, limits, shutdown_signal()).await;
        tracing::info!("shut down");
        ExitCode::SUCCESS
    });
    // Dropping the runtime would wait for every blocking task without limit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_BOUND);
    exit
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

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nova-lvm-exporter: cannot write to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--config.check`: the effective settings, where each came from, and what they resolve to.
/// The web configuration file is loaded and validated exactly as at start-up (same error, exit 2).
fn check_config(settings: &[Setting], config_file: Option<&Path>, config: &Config) -> ExitCode {
    let web_summary = match &config.web_config_file {
        None => None,
        Some(path) => match web::check_web_config(path) {
            Ok(summary) => Some(format!("{}: {summary}", path.display())),
            Err(error) => {
                println!("# configuration is NOT valid: {error}");
                eprintln!("nova-lvm-exporter: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let rendered = config_file::render_settings(settings, config_file);
    let mut out = format!(
        "# nova-lvm-exporter {}: the configuration is valid.\n\
         # Precedence: command line > environment (OS_CLOUD) > --config.file > nova.conf > defaults.\n\
         # Secrets are never printed.\n{rendered}\n# Resolved:\n",
        nova_lvm_exporter::cli::VERSION
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
    write_stdout(nova_lvm_exporter::redact::redact(&out).as_bytes())
}

/// `report`: one collection, printed; exit 1 when a collector failed.
fn run_report(config: &Config, args: &ReportArgs) -> ExitCode {
    let report = match commands::report_once(config, args.top_lvs) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("nova-lvm-exporter: {error}");
            return ExitCode::FAILURE;
        }
    };
    let text = match args.format {
        ReportFormat::Text => report::render_text(&report),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(error) => {
                eprintln!("nova-lvm-exporter: cannot encode the report: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let written = write_stdout(text.as_bytes());
    if written != ExitCode::SUCCESS {
        return written;
    }
    if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `check`: one collection judged against the thresholds, as a monitoring plugin.
fn run_check(config: &Config, args: &CheckArgs) -> ExitCode {
    match commands::report_once(config, 1) {
        Ok(report) => {
            let result = check::evaluate(&report, args);
            println!("{}", result.line);
            ExitCode::from(result.status.exit_code())
        }
        Err(error) => {
            println!("NOVA-LVM UNKNOWN - {}", error.replace(['\n', '|'], " "));
            ExitCode::from(Status::Unknown.exit_code())
        }
    }
}
