//! The LVM tier: the built exporter against real VGs on loop devices (metadata-only LVs; the
//! test machines have no device-mapper). Needs root and lvm2; the status page needs Chromium,
//! the privilege tests sudo and systemd-analyze, some checks promtool. Without root every test
//! skips loudly; under `CI=true` a skip is a failure. `cargo test --test lvm`.
//!
//! One module per former test binary (ripgrep's layout). Each test makes its own VG, named
//! `nle-<tag>-<pid>-<n>`, so the modules run side by side as the tests of one module did.

#[path = "../common/mod.rs"]
mod common;

mod failures;
mod load;
mod lvm_exec;
mod metadata_device;
mod metadata_source;
mod metadata_text;
mod privilege;
mod real_vg;
mod report;
mod status_page;
