//! Observing a source: its future run under a timeout, measured, a panic caught as its error.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::future::FutureExt;

/// Runs a source's future, turning its error into text and a panic (a bug) into an error of
/// that source alone, so that one broken source never takes the whole scrape down.
pub(super) async fn caught<T, E: std::fmt::Display>(
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(format!("internal error (a bug): {message}"))
        }
    }
}

/// Runs `future` under `timeout`, measuring it; errors become their display text.
pub(super) async fn timed<T, E: std::fmt::Display>(
    timeout: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> (Result<T, String>, Duration) {
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    };
    (result, started.elapsed())
}
