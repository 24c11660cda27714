//! Running the real `vgs`/`lvs`: no shell, `LC_ALL=C`, a timeout that kills the process group.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use super::{LvmError, RawSource, VgReport};

/// The live LVM tools as a [`RawSource`].
#[derive(Debug, Clone)]
pub struct LvmCommand {
    vgs_path: PathBuf,
    lvs_path: PathBuf,
    command_prefix: Vec<String>,
    timeout: Duration,
}

impl LvmCommand {
    /// Runs `vgs_path` and `lvs_path`, each behind `command_prefix` (e.g. `sudo -n`), killed after
    /// `timeout` in total.
    pub fn new(
        vgs_path: PathBuf,
        lvs_path: PathBuf,
        command_prefix: Vec<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            vgs_path,
            lvs_path,
            command_prefix,
            timeout,
        }
    }
}

#[async_trait]
impl RawSource for LvmCommand {
    async fn collect(&self, vg_names: &[String]) -> Result<VgReport, LvmError> {
        let _ = (
            vg_names,
            &self.vgs_path,
            &self.lvs_path,
            &self.command_prefix,
            self.timeout,
        );
        todo!("LVM exec")
    }
}
