//! Runs a command under the seccomp filter the exporter starts LVM with for synchronous I/O
//! (`--collector.lvm.sync-io`), so that the benchmark can time a bare `lvm fullreport` exactly
//! as the exporter runs it:
//!
//! ```sh
//! cargo build --release --example lvm_sync_io
//! target/release/examples/lvm_sync_io /usr/sbin/lvm fullreport -a -- vms-group
//! ```

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: lvm_sync_io PROGRAM [ARG...]");
        return ExitCode::from(2);
    };
    let filter = match nova_lvm_exporter::lvm::sync_io::sync_io_filter() {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("lvm_sync_io: {error}");
            return ExitCode::from(1);
        }
    };
    if let Err(error) = seccompiler::apply_filter(&filter) {
        eprintln!("lvm_sync_io: cannot install the filter: {error}");
        return ExitCode::from(1);
    }
    let error = Command::new(&program).args(args).exec();
    eprintln!("lvm_sync_io: {}: {error}", program.to_string_lossy());
    ExitCode::from(127)
}
