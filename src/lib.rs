//! nova-lvm-exporter: measures the LVM disk space that OpenStack nova does not see.
//!
//! Data flows one way on every scrape: the raw source ([`lvm`]) and the tracked sources
//! ([`tracked`]) are collected concurrently, [`accounting`] turns them into the derived figures
//! with pure functions, and [`metrics`] renders the Prometheus exposition.

#![warn(missing_docs)]

pub mod accounting;
pub mod app;
pub mod check;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config_file;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod lvm;
pub mod metrics;
pub mod novaconf;
pub mod openstack;
pub mod redact;
pub mod report;
pub mod status;
pub mod tracked;
pub mod web;
