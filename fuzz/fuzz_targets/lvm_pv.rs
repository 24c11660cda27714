//! Fuzz target: see `nova_lvm_exporter::fuzzing::lvm_pv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nova_lvm_exporter::fuzzing::lvm_pv(data));
