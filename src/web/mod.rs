//! The HTTP side: `/metrics` (or the configured path), `/healthz` and the status page at `/`
//! served by hyper with the limits an exporter on every compute node needs, and TLS, basic auth
//! and response headers from an exporter-toolkit web configuration file.
//!
//! - [`server`]: binding the listen address, the accept loop, connection limits, the TLS
//!   handshake and graceful shutdown ([`ServerLimits`]).
//! - [`routes`]: the router, the guard middleware (basic auth, response headers, request
//!   timeout), the handlers and the state they share ([`AppState`]).
//! - [`auth`]: basic auth: the password checker, its per-client queue, the credential cache and
//!   the dummy hash for unknown users.
//! - [`config`]: the web configuration file format: parsing, validation, TLS settings.
//! - [`reload`]: the web configuration in force, re-read when the file changes
//!   ([`WebConfigSource`]), and `--config.check`'s look at it.

pub mod auth;
pub mod config;
pub mod reload;
pub mod routes;
pub mod server;

pub use reload::{check_web_config, WebConfigSource};
pub use routes::{router, AppState};
pub use server::{bind, serve, ServerLimits};
