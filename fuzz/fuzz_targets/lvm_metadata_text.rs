//! Fuzz target: see `lvm_metadata::fuzzing::lvm_metadata_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lvm_metadata::fuzzing::lvm_metadata_text(data));
