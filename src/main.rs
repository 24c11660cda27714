//! nova-lvm-exporter: parse the command line, set up logging, serve.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use nova_lvm_exporter::cli::{Cli, LogFormat, LogLevel};
use nova_lvm_exporter::server::WebConfigSource;
use nova_lvm_exporter::{app, server};

/// Exit code for a bad flag or configuration, like clap's own usage errors.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.to_string();
            let first_line = rendered.lines().next().unwrap_or("invalid command line");
            eprintln!(
                "nova-lvm-exporter: {}",
                first_line.trim_start_matches("error: ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let log_level = cli.log_level;
    let log_format = cli.log_format;
    init_logging(log_level, log_format);
    let config = match cli.resolve() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("nova-lvm-exporter: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    runtime.block_on(async move {
        let listener = match server::bind(&config.listen_address).await {
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
        let router = server::router(state);
        server::serve(listener, router, web, limits, shutdown_signal()).await;
        tracing::info!("shut down");
        ExitCode::SUCCESS
    })
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
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
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
