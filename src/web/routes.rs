//! What each request gets: the router (the metrics path, `/healthz`, the status page at `/`,
//! 404 for anything else), the guard middleware that applies the web configuration in force
//! (basic auth, response headers) and the request timeout to every request, the handlers, and
//! the state they share ([`AppState`], with the exposition's cache).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use super::auth::{parse_basic_auth, BasicAuth, ClientKey, Verdict};
use super::reload::{LoadedWebConfig, WebConfigSource};
use super::server::ServerLimits;
use crate::collect::SingleFlight;
use crate::output::metrics::{Exposition, MetricsCache};
use crate::output::report::{Report, ReportContext};
use crate::output::status;

/// What the handlers share.
pub struct AppState {
    /// The collection shared by concurrent scrapes.
    pub collections: SingleFlight,
    /// The metrics path, for the landing page link.
    pub telemetry_path: String,
    /// A short description of what this exporter watches, for the landing page.
    pub summary: Vec<(String, String)>,
    /// Where the figures come from, for the status page.
    pub report_context: ReportContext,
    /// The web configuration file, when one is used.
    pub web: Option<Arc<WebConfigSource>>,
    /// Bounds the scrapes rendered at once.
    pub scrape_slots: Semaphore,
    /// Every request is answered within this.
    pub request_timeout: Duration,
    /// The exposition's text that changes only with the figures, kept between scrapes;
    /// concurrent scrapes that share a collection share its whole exposition.
    metrics: MetricsCache,
}

impl AppState {
    /// State for the given collections and settings.
    pub fn new(
        collections: SingleFlight,
        telemetry_path: String,
        summary: Vec<(String, String)>,
        report_context: ReportContext,
        web: Option<Arc<WebConfigSource>>,
        limits: &ServerLimits,
    ) -> Self {
        Self {
            collections,
            telemetry_path,
            summary,
            report_context,
            web,
            scrape_slots: Semaphore::new(limits.max_concurrent_scrapes.max(1)),
            request_timeout: limits.request_timeout,
            metrics: MetricsCache::default(),
        }
    }
}

/// A response body made of an exposition's parts, each sent as it is (reference-counted, never
/// copied into one buffer), with its exact length so the response has a `Content-Length`.
struct ExpositionBody {
    parts: VecDeque<Bytes>,
    remaining: u64,
}

impl ExpositionBody {
    fn new(exposition: Exposition) -> Self {
        Self {
            remaining: exposition.len() as u64,
            parts: exposition.parts().iter().cloned().collect(),
        }
    }
}

impl hyper::body::Body for ExpositionBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let part = self.parts.pop_front();
        if let Some(part) = &part {
            self.remaining -= part.len() as u64;
        }
        Poll::Ready(part.map(|part| Ok(hyper::body::Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

/// The router with all routes and middleware (request timeout, basic auth, headers).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(&state.telemetry_path.clone(), get(metrics_handler))
        .route("/healthz", get(|| async { "OK\n" }))
        .route("/", get(landing_page))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found\n") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// Applies the web configuration (basic auth, headers) and the request timeout to a request.
/// The password check is inside the timeout: a request whose check cannot finish in time gets a
/// 503, and its queued check is dropped.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let loaded = match &state.web {
        None => None,
        Some(web) => match web.current().await {
            Ok(loaded) => Some(loaded),
            Err(error) => {
                tracing::error!(error = %error, "web configuration unusable, refusing requests");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "web configuration unusable, see the exporter's log\n",
                )
                    .into_response();
            }
        },
    };
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_basic_auth);
    let client = request
        .extensions()
        .get::<ClientKey>()
        .copied()
        .unwrap_or_else(ClientKey::unknown);
    let answer = async {
        if let Some(loaded) = &loaded {
            if let Some(refusal) = authenticate(&loaded.auth, client, credentials).await {
                return refusal;
            }
        }
        next.run(request).await
    };
    let response = match tokio::time::timeout(state.request_timeout, answer).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "request not answered within {} s\n",
                state.request_timeout.as_secs()
            ),
        )
            .into_response(),
    };
    match &loaded {
        Some(loaded) => with_headers(response, loaded),
        None => response,
    }
}

/// The answer to a request that basic auth does not let in, or `None` to let it in.
async fn authenticate(
    auth: &BasicAuth,
    client: ClientKey,
    credentials: Option<(String, String)>,
) -> Option<Response> {
    if auth.is_open() {
        return None;
    }
    let verdict = match credentials {
        Some((user, password)) => auth.verify(client, &user, &password).await,
        None => Verdict::Refused,
    };
    match verdict {
        Verdict::Allowed => None,
        Verdict::Refused => {
            let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"nova-lvm-exporter\""),
            );
            Some(response)
        }
        Verdict::Busy => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many password checks waiting, retry later\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Some(response)
        }
    }
}

fn with_headers(mut response: Response, loaded: &LoadedWebConfig) -> Response {
    for (name, value) in &loaded.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_slot) = state.scrape_slots.acquire().await else {
        return internal_error("the server is shutting down".to_string());
    };
    let snapshot = match state.collections.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(error) => return internal_error(error),
    };
    // Rendering only what changed costs tens of microseconds: no need to leave the runtime.
    let exposition = state.metrics.render(&snapshot);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::new(ExpositionBody::new(exposition)),
    )
        .into_response()
}

fn internal_error(message: String) -> Response {
    tracing::error!(error = %message, "scrape failed");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

/// A status page view reuses a collection that finished less than this ago (typically the
/// last scrape's) instead of running LVM again.
pub const STATUS_PAGE_REUSE: Duration = Duration::from_secs(10);

/// How many untracked LVs the status page lists per VG.
const STATUS_PAGE_TOP_LVS: usize = 10;

async fn landing_page(State(state): State<Arc<AppState>>) -> Response {
    let Ok(_slot) = state.scrape_slots.acquire().await else {
        return internal_error("the server is shutting down".to_string());
    };
    let snapshot = match state.collections.recent(STATUS_PAGE_REUSE).await {
        Ok(snapshot) => snapshot,
        Err(error) => return internal_error(error),
    };
    let report = Report::new(&snapshot, &state.report_context, STATUS_PAGE_TOP_LVS);
    Html(status::render(
        &report,
        &state.telemetry_path,
        &state.summary,
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    #[test]
    fn an_exposition_body_sends_each_part_as_it_is_with_its_exact_length() {
        let snapshot = Arc::new(crate::collect::Snapshot {
            collectors: Vec::new(),
            host: None,
            sources: Vec::new(),
            nova_vg: "vms".into(),
            primary: None,
            audit: None,
            finished_unix: 0.0,
            raw_methods: Vec::new(),
            flavor_fit: None,
            orphans: None,
            local_source_doubts: None,
            lv_series_limit: 100,
        });
        let exposition = MetricsCache::default().render(&snapshot);
        let mut body = ExpositionBody::new(exposition.clone());
        assert_eq!(body.size_hint().exact(), Some(exposition.len() as u64));
        let mut context = Context::from_waker(std::task::Waker::noop());
        let mut sent = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut context) {
            let data = frame.unwrap().into_data().unwrap();
            assert_eq!(data.as_ptr(), exposition.parts()[sent.len()].as_ptr());
            sent.push(data);
        }
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert_eq!(sent.concat(), exposition.to_text().into_bytes());
    }
}
