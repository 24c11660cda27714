#!/usr/bin/env python3
"""Scrape latency and CPU per scrape of one or more exporter binaries, interleaved on the same
real loop-device VGs (benches/whole_process.py's hosts and measurements, the metadata method):
for each VG size, ROUNDS rounds; in each round every binary is started, warmed up with 5
scrapes, then scraped SCRAPES times in sequence on one keep-alive connection (p50, p99 and the
process's own CPU time per scrape). Prints the medians over the rounds, per binary, and the
machine's load. Needs root. Issue 21's before/after figures in docs/performance.md.

Usage: scrape_ab.py LABEL=BINARY [LABEL=BINARY ...]
       (BENCH_LV_COUNTS=200,2000 BENCH_SCRAPES=200 BENCH_ROUNDS=5)
"""

import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whole_process as wp  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def one_round(binary, host):
    port = wp.free_port()
    proc = subprocess.Popen([binary, "--web.listen-address=127.0.0.1:%d" % port,
                             "--nova.config-file=" + host.conf, "--collector.libvirt.xml-dir=" + host.qemu,
                             "--collector.lvm.method=metadata"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=wp.ENV)
    try:
        wp.wait_http(port, "/healthz")
        wp.scrape_series(port, 5)
        cpu0 = wp.proc_cpu(proc.pid)[0]
        latencies, _, body = wp.scrape_series(port, wp.SCRAPES)
        cpu1 = wp.proc_cpu(proc.pid)[0]
        hwm = wp.rss_kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait()
    if b'method="metadata"' not in body:
        raise RuntimeError("%s does not read %s from its metadata" % (binary, host.vg))
    return wp.pct(latencies, 0.5), wp.pct(latencies, 0.99), (cpu1 - cpu0) / wp.SCRAPES, hwm


def main():
    binaries = [arg.split("=", 1) for arg in sys.argv[1:]]
    calibration_start, load_start = wp.calibration(), os.getloadavg()
    print("| LVs | domain files | binary | p50 | p99 | p99 / p50 | CPU per scrape | RSS high-water | "
          "machine busy | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in wp.SIZES:
        wp.log("== VG with %d LVs" % n)
        host = wp.Host(n)
        try:
            host.settle()
            busy0 = wp.cpu_busy()
            rounds = {label: [] for label, _ in binaries}
            for r in range(ROUNDS):
                for label, binary in binaries:
                    rounds[label].append(one_round(binary, host))
                    wp.log("   round %d %s: p50 %.3f ms, CPU %.3f ms" % (
                        r, label, rounds[label][-1][0] * 1e3, rounds[label][-1][2] * 1e3))
            busy = wp.busy_share(busy0, wp.cpu_busy())
            for label, _ in binaries:
                p50 = statistics.median(x[0] for x in rounds[label])
                p99 = statistics.median(x[1] for x in rounds[label])
                cpu = statistics.median(x[2] for x in rounds[label])
                hwm = statistics.median(x[3] for x in rounds[label])
                print("| %d | %d | %s | %.3f ms | %.3f ms | %.1fx | %.3f ms | %.1f MB | %d%% | %.2f |" % (
                    n, len(host.instances), label, p50 * 1e3, p99 * 1e3, p99 / p50, cpu * 1e3,
                    hwm / 1024, 100 * busy, os.getloadavg()[0]), flush=True)
        finally:
            host.close()
    print("\nMachine: %d cores, kernel %s; calibration loop %.1f ms at the start, %.1f ms at the end; "
          "load average %.2f at the start, %.2f at the end; %d rounds of %d scrapes per binary, "
          "interleaved; medians over the rounds." % (
              os.cpu_count(), os.uname().release, calibration_start * 1e3, wp.calibration() * 1e3,
              load_start[0], os.getloadavg()[0], ROUNDS, wp.SCRAPES))


if __name__ == "__main__":
    main()
