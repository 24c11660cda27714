//! The stack tier: the exporter beside the real monitoring stack and packaging: the alerting
//! rules under promtool, Prometheus, Alertmanager and VictoriaMetrics end to end, node_exporter's
//! textfile collector, the deployment walkthrough as written, and the container image built with
//! buildah and run with podman. Most need root and lvm2 as well. `cargo test --test stack`.
//!
//! One module per former test binary (ripgrep's layout).

#[path = "../common/mod.rs"]
mod common;

mod alerts;
mod container;
mod e2e_alerting;
mod textfile;
mod walkthrough;
