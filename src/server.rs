//! The HTTP side: `/metrics` (or the configured path), `/healthz` and a landing page at `/`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::collect::SingleFlight;
use crate::metrics;

/// What the handlers share.
pub struct AppState {
    /// The collection shared by concurrent scrapes.
    pub collections: SingleFlight,
    /// The metrics path, for the landing page link.
    pub telemetry_path: String,
    /// A short description of what this exporter watches, for the landing page.
    pub summary: Vec<(String, String)>,
}

/// The router with all routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(&state.telemetry_path.clone(), get(metrics_handler))
        .route("/healthz", get(|| async { "OK\n" }))
        .route("/", get(landing_page))
        .with_state(state)
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    match state.collections.snapshot().await {
        Ok(snapshot) => {
            let body = tokio::task::spawn_blocking(move || metrics::render(&snapshot)).await;
            match body {
                Ok(body) => (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    body,
                )
                    .into_response(),
                Err(error) => internal_error(format!("rendering failed: {error}")),
            }
        }
        Err(error) => internal_error(error),
    }
}

fn internal_error(message: String) -> Response {
    tracing::error!(error = %message, "scrape failed");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

async fn landing_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let rows: String = state
        .summary
        .iter()
        .map(|(key, value)| {
            format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            )
        })
        .collect();
    let path = escape(&state.telemetry_path);
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nova-lvm-exporter</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:50em}}th{{text-align:left;padding-right:1em}}</style></head>\
         <body><h1>nova-lvm-exporter</h1>\
         <p>Measures the LVM disk space that OpenStack nova does not see.</p>\
         <p><a href=\"{path}\">Metrics</a> &middot; <a href=\"/healthz\">Health</a></p>\
         <table>{rows}</table>\
         <p>Version {}</p></body></html>\n",
        escape(crate::cli::VERSION)
    ))
}

/// Minimal HTML escaping for text we put in the landing page.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Binds the listen address: `[HOST]:PORT`, where an empty host means all interfaces
/// (IPv6 and IPv4 when the kernel allows, IPv4 otherwise).
pub async fn bind(listen_address: &str) -> Result<TcpListener, String> {
    let fail =
        |e: std::io::Error| format!("--web.listen-address={listen_address}: cannot listen: {e}");
    if let Some(port) = listen_address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            format!(
                "--web.listen-address={listen_address}: expected [HOST]:PORT with a port number"
            )
        })?;
        let any_v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
        return match TcpListener::bind(any_v6).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)))
                .await
                .map_err(fail),
        };
    }
    TcpListener::bind(listen_address).await.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_page_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[tokio::test]
    async fn a_bad_listen_address_names_the_flag() {
        let err = bind(":notaport").await.unwrap_err();
        assert!(err.starts_with("--web.listen-address=:notaport"), "{err}");
        let err = bind("999.1.1.1:80").await.unwrap_err();
        assert!(err.contains("--web.listen-address"), "{err}");
    }
}
