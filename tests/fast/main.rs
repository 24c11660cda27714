//! The fast tier: the edit loop. Everything here runs without root, without a loop device and
//! without a server beyond the ones the tests start in process: the command line, the config
//! file, the docs and dashboards, the layers, the hostile-input classes against the built binary
//! on the example host's replay files, the web server, and the API sources against in-test
//! servers. One test needs `promtool` (the README's exposition). `cargo test --test fast`.
//!
//! With `--features fuzzing` the fuzz corpus replay (`fuzz_corpus`) joins it.
//!
//! One module per former test binary (ripgrep's layout): one link of the crate instead of one
//! per file. The tests that load the CPU (`hostile`'s flood, `hostile_input`'s FIFO swapper,
//! the fuzz mutation run, `hostile_web`'s flood and timing comparison) take
//! [`common::cpu_heavy`], so that no two of them run side by side: as separate binaries they
//! never did.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/openstack.rs"]
mod openstack;

mod allocator;
mod cli;
mod config_file;
mod dashboards;
#[cfg(feature = "fuzzing")]
mod fuzz_corpus;
mod hostile;
mod hostile_input;
mod hostile_parsers;
mod hostile_secrets;
mod hostile_upstream;
mod hostile_web;
mod layers;
mod nova_flavors;
mod placement_http;
mod readme;
mod web;
