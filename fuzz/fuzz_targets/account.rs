//! Fuzz target: see `nova_lvm_exporter::fuzzing::account`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nova_lvm_exporter::fuzzing::account(data));
