//! Fuzz target: see `nova_lvm_exporter::fuzzing::libvirt_domain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nova_lvm_exporter::fuzzing::libvirt_domain(data));
