//! The OpenStack tier: the placement and nova sources against a real Keystone and Placement
//! (`scripts/openstack-test-env`, venvs cached under `$NOVA_LVM_TEST_CACHE`), the nova source
//! against nova's API samples, and nova's own resource tracker as the oracle of the flavor
//! arithmetic. Needs python3 with venv (the first run installs the servers); a few tests also
//! need root and lvm2. `cargo test --test openstack`.
//!
//! One module per former test binary (ripgrep's layout). Each module keeps its own environment
//! (`placement` a shared one, `placement_faults` one with short tokens whose servers it stops,
//! `nova` one with the compute API in its catalog), started on first use and stopped at exit.
//! This directory also holds the servers' pinned constraints and the python helpers.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/openstack.rs"]
mod openstack;

mod nova;
mod nova_oracle;
mod placement;
mod placement_faults;
