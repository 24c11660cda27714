//! What the exporter shows of one collection: the Prometheus exposition ([`metrics`], written by
//! [`exposition`]), the host's account for people and scripts ([`report`], [`report_text`]), the
//! status page ([`status`]), the flavor fit in both ([`fit`]) the monitoring-plugin verdict
//! ([`check`]), the node_exporter textfile ([`textfile`]), the status page's opening verdict
//! ([`verdict`]) and the per-LV series cap they share ([`lv_series`]).

pub mod check;
pub mod exposition;
pub mod fit;
pub mod lv_series;
pub mod metrics;
pub mod report;
pub mod report_text;
pub mod status;
pub mod textfile;
pub mod verdict;
