#!/usr/bin/env python3
"""Where a scrape's CPU goes: perf (cpu-clock, DWARF stacks) over the exporter and its LVM
children while a client scrapes a real loop-device VG, folded with inferno into a flame graph,
plus a table of the shares by process, shared object and LVM phase. Run by scripts/profile.

Usage: profile.py LV_COUNT SCRAPES OUT_DIR
"""

import collections
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whole_process as wp  # noqa: E402

# LVM functions that name a phase of one report, outermost first.
LVM_PHASES = [
    ("config_file_read", "reading lvm.conf"),
    ("lvm_register_commands", "registering commands"),
    ("create_toolcontext", "tool context set-up"),
    ("init_lvm", "tool context set-up"),
    ("refresh_toolcontext", "tool context set-up"),
    ("label_scan", "device scan (labels)"),
    ("check_current_backup", "backup file check"),
    ("vg_read", "reading VG metadata"),
    ("dm_report_output", "printing the report"),
    ("report_object", "building report rows"),
    ("process_each_lv_in_vg", "building report rows"),
    ("_dl_start", "dynamic linking"),
    ("_dl_map_object", "dynamic linking"),
    ("dl_main", "dynamic linking"),
    ("lvm_fin", "exit and teardown"),
]

# Exporter frames that start, feed and reap the LVM process (src/lvm/exec.rs, process.rs and
# sync_io.rs).
RUNNING_LVM = ("LvmCommand", "lvm::exec", "lvm::process", "lvm::sync_io")


def phase(frames):
    for name, label in LVM_PHASES:
        if name in frames:
            return label
    if any(f.endswith("_[k]") for f in frames):
        return "other kernel (exec, page faults, exit, pipes)"
    return "other user space"


def main():
    lv_count, scrapes, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "perf-%d.data" % lv_count)
    host = wp.Host(lv_count)
    try:
        host.settle()
        port = wp.free_port()
        perf = subprocess.Popen(
            ["perf", "record", "-F", "2999", "--call-graph", "dwarf,16384", "-o", data, "--",
             wp.EXPORTER, "--web.listen-address=127.0.0.1:%d" % port, "--nova.config-file=" + host.conf,
             "--collector.libvirt.xml-dir=" + host.qemu],
            env=wp.ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wp.wait_http(port, "/healthz")
        latencies, lvm, _ = wp.scrape_series(port, scrapes)
        for pid in subprocess.run(["pgrep", "-P", str(perf.pid)], capture_output=True,
                                  text=True).stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        perf.wait()
    finally:
        host.close()

    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, check=True).stdout
    folded = subprocess.run(["inferno-collapse-perf", "--all"], input=script, capture_output=True,
                            check=True).stdout
    folded_path = os.path.join(out, "scrape-%d-lvs.folded" % lv_count)
    open(folded_path, "wb").write(folded)
    svg = subprocess.run(
        ["inferno-flamegraph", "--width", "1400", "--minwidth", "3", "--title",
         "%d scrapes of a %d-LV VG: nova-lvm-exporter and its lvm children (perf, cpu-clock)" % (scrapes, lv_count)],
        input=folded, capture_output=True, check=True).stdout
    svg_path = os.path.join(out, "scrape-%d-lvs.svg" % lv_count)
    open(svg_path, "wb").write(svg)
    os.unlink(data)

    by_process, by_phase, by_exporter = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in folded.decode().splitlines():
        stack, samples = line.rsplit(" ", 1)
        samples = int(samples)
        frames = stack.split(";")
        total += samples
        process = "lvm" if frames[0].startswith("lvm") else "exporter"
        by_process[process] += samples
        if process == "lvm":
            by_phase[phase(frames)] += samples
        else:
            name = next((f for f in frames if "read_domains" in f), None) or \
                next((f for f in frames if any(m in f for m in RUNNING_LVM)), None) or \
                next((f for f in frames if "lvm::report" in f or "accounting" in f or "metrics" in f), None)
            by_exporter[
                "libvirt domain files" if name and "read_domains" in name else
                "running LVM (spawn, pipes, reaping)" if name and any(m in name for m in RUNNING_LVM) else
                "parse, account, render" if name else "runtime, HTTP, kernel"] += samples

    print("## Profile: %d scrapes of a %d-LV VG\n" % (scrapes, lv_count))
    print("Scrape p50 %s, of which LVM %s (as the exporter reports it). Flame graph: `%s`.\n" % (
        wp.ms(wp.pct(latencies, 0.5)), wp.ms(wp.pct(lvm, 0.5)), svg_path))
    print("| where | share of all CPU samples |")
    print("|---|---|")
    for process in ("lvm", "exporter"):
        print("| **%s** | **%.1f%%** |" % (process, 100.0 * by_process[process] / total))
        table = by_phase if process == "lvm" else by_exporter
        for label, samples in table.most_common():
            print("| &nbsp;&nbsp;%s | %.1f%% |" % (label, 100.0 * samples / total))


if __name__ == "__main__":
    main()
