//! What to say when a watched VG is not found: the VGs LVM does see (a typo shows at once) and,
//! when LVM sees no PV at all (a container given no block devices), the flag that hands the
//! exporter its PV devices.
//!
//! Only looked at when a VG is missing: one `lvm pvs` ([`see_lvm`]) with the exporter's LVM
//! command and prefix, under the LVM timeout. When it fails (the shipped sudo rule allows
//! only the fullreport) the message stays the plain "not found". [`parse_pvs`] and
//! [`missing_vg_message`] are pure.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::process::{display_command, run, Supervision};

/// What LVM sees on this host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenLvm {
    /// The VGs of the PVs LVM sees, each once, in name order.
    pub vgs: Vec<String>,
    /// How many PVs LVM sees (with a VG or not).
    pub pvs: usize,
}

/// The bounds of the one `lvm pvs`.
const SUPERVISION: Supervision = Supervision {
    stdout_cap: 1 << 20,
    stderr_cap: 64 << 10,
    what: "LVM command",
};

/// Runs `[prefix...] lvm pvs` and reads what it sees; `None` when it cannot run, fails or
/// answers something else than its JSON report.
pub async fn see_lvm(lvm_path: &Path, prefix: &[String], timeout: Duration) -> Option<SeenLvm> {
    let mut argv: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    argv.push(lvm_path.as_os_str().to_owned());
    argv.extend(
        [
            "pvs",
            "--reportformat",
            "json",
            "--readonly",
            "-o",
            "pv_name,vg_name",
        ]
        .map(OsString::from),
    );
    let program = argv.remove(0);
    let line = display_command(&program, &argv);
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&argv)
        .env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1");
    let deadline = tokio::time::Instant::now() + timeout;
    match run(command, &line, deadline, SUPERVISION).await {
        Ok(finished) if finished.status.success() && !finished.stdout_truncated => {
            parse_pvs(&finished.stdout)
        }
        Ok(_) | Err(_) => {
            tracing::debug!(command = %line, "cannot list the VGs LVM sees");
            None
        }
    }
}

/// Reads `lvm pvs --reportformat json -o pv_name,vg_name`.
pub fn parse_pvs(stdout: &[u8]) -> Option<SeenLvm> {
    let text = std::str::from_utf8(stdout).ok()?;
    let document: serde_json::Value =
        serde_json::from_str(&super::report::without_lvm_notices(text)).ok()?;
    let mut vgs = BTreeSet::new();
    let mut pvs = 0;
    for report in document.get("report")?.as_array()? {
        for pv in report.get("pv")?.as_array()? {
            pvs += 1;
            if let Some(vg) = pv.get("vg_name").and_then(|v| v.as_str()) {
                if !vg.is_empty() {
                    vgs.insert(vg.to_string());
                }
            }
        }
    }
    Some(SeenLvm {
        vgs: vgs.into_iter().collect(),
        pvs,
    })
}

/// The collector's error for watched VGs LVM did not report: their names, then what LVM sees
/// (when known) and, when it sees no PV and no devices were listed, `--collector.lvm.devices`.
pub fn missing_vg_message(
    missing: &[&str],
    seen: Option<&SeenLvm>,
    devices_listed: bool,
) -> String {
    let mut message = format!("volume group not found: {}", missing.join(", "));
    let Some(seen) = seen else {
        return message;
    };
    let vgs: Vec<String> = seen
        .vgs
        .iter()
        .map(|vg| crate::text::escape_control(vg).into_owned())
        .collect();
    if vgs.is_empty() {
        message.push_str("; LVM sees no VG here");
    } else {
        message.push_str(&format!("; LVM sees: {}", vgs.join(", ")));
    }
    if seen.pvs == 0 && !devices_listed {
        message.push_str(
            " and no PV at all: in a container without the host's block devices, give the PV devices with --collector.lvm.devices=/dev/... (docs/deployment.md)",
        );
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pvs_report_gives_each_vg_once_and_the_pv_count() {
        let text = br#"  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/loop1", "vg_name":"vms-group"},
                  {"pv_name":"/dev/loop2", "vg_name":"vms-group"},
                  {"pv_name":"/dev/loop3", "vg_name":"cinder-volumes"},
                  {"pv_name":"/dev/loop4", "vg_name":""}
              ]
          }
      ]
  }"#;
        assert_eq!(
            parse_pvs(text),
            Some(SeenLvm {
                vgs: vec!["cinder-volumes".into(), "vms-group".into()],
                pvs: 4,
            })
        );
        assert_eq!(
            parse_pvs(br#"{"report":[{"pv":[]}]}"#),
            Some(SeenLvm::default())
        );
        assert_eq!(parse_pvs(b"  No PVs"), None);
    }

    #[test]
    fn the_message_lists_what_lvm_sees_and_the_devices_flag_only_without_pvs() {
        assert_eq!(
            missing_vg_message(&["vms"], None, false),
            "volume group not found: vms"
        );
        let seen = SeenLvm {
            vgs: vec!["vms-group".into(), "cinder-volumes".into()],
            pvs: 2,
        };
        assert_eq!(
            missing_vg_message(&["vms"], Some(&seen), false),
            "volume group not found: vms; LVM sees: vms-group, cinder-volumes"
        );
        let nothing = SeenLvm::default();
        let message = missing_vg_message(&["vms"], Some(&nothing), false);
        assert!(
            message
                .starts_with("volume group not found: vms; LVM sees no VG here and no PV at all")
                && message.contains("--collector.lvm.devices"),
            "{message}"
        );
        assert!(
            !missing_vg_message(&["vms"], Some(&nothing), true).contains("--collector.lvm.devices")
        );
        // A VG name from LVM is shown, never obeyed.
        let odd = SeenLvm {
            vgs: vec!["a\nb".into()],
            pvs: 1,
        };
        assert!(!missing_vg_message(&["vms"], Some(&odd), false).contains('\n'));
    }
}
