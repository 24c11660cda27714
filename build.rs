//! Embeds the git revision in the binary for `--version` and `nova_lvm_build_info`.
use std::process::Command;

fn main() {
    let revision = std::env::var("NOVA_LVM_EXPORTER_REVISION")
        .ok()
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=NOVA_LVM_EXPORTER_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=NOVA_LVM_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
