//! Fuzz target: see `nova_lvm_exporter::fuzzing::lvm_metadata_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nova_lvm_exporter::fuzzing::lvm_metadata_text(data));
