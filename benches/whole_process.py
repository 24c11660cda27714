#!/usr/bin/env python3
"""Whole-process figures of nova-lvm-exporter against its baselines, side by side in one run on
the same real loop-device VGs (run by scripts/bench, as root, on loopback only):

- the floor as issue 7 defines it: one bare `vgs` + `lvs` (LVM's defaults, the fields the exporter
  reads; hyperfine), and the exporter's own LVM command alone: `lvm fullreport` with its exact
  arguments, with LVM's default AIO and under the exporter's synchronous-I/O seccomp filter
  (`target/release/examples/lvm_sync_io`);
- `lvm-prom-collector -g` from Debian's prometheus-node-exporter-collectors (hyperfine);
- node_exporter (Debian) serving that collector's textfile: scrape latency;
- nova-lvm-exporter with `--collector.lvm.method=exec`: scrape latency p50/p99 (as shipped, and
  with `--no-collector.lvm.sync-io`), its overhead on top of LVM (latency minus the LVM time it
  reports itself), CPU per scrape (its own and its LVM children's), RSS idle and under load,
  exposition size; concurrency 1/10/100 with wrk and the LVM executions it caused;
- the same with `--collector.lvm.method=metadata` (the VG read straight from its PVs), its LVM
  executions counted by a wrapper binary (`--collector.lvm.lvm-path`), and the reader's own steps
  in process (`cargo bench --bench metadata`: steady-state collection, full re-parse and its
  parts);
- how loaded the machine was: the share of CPU time busy (`/proc/stat`) over each VG's run, the
  load average, and a fixed CPU-bound calibration loop timed at the start and the end.

VGs of 10, 200 and 2,000 LVs are written straight into LVM metadata (vgcfgrestore), which is
what `vgs`/`lvs` read; the kernel here has no device-mapper, so nothing is activated.
Prints a Markdown report on stdout; progress on stderr.
"""

import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTER = os.path.join(ROOT, "target", "release", "nova-lvm-exporter")
SYNC_IO = os.path.join(ROOT, "target", "release", "examples", "lvm_sync_io")
COLLECTOR = "/usr/share/prometheus-node-exporter-collectors/lvm-prom-collector"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
ENV = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1", LC_ALL="C")
SIZES = [int(s) for s in os.environ.get("BENCH_LV_COUNTS", "10,200,2000").split(",")]
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "200"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
VGS_ARGS = ["--config", "log{report_command_log=0}", "--reportformat", "json", "--units", "b",
            "--nosuffix", "-o", "vg_name,vg_size,vg_free,vg_extent_size", "--"]
LVS_ARGS = ["-a", "--config", "log{report_command_log=0}", "--reportformat", "json", "--units", "b",
            "--nosuffix", "-o",
            "vg_name,lv_name,lv_size,lv_attr,segtype,pool_lv,lv_parent,data_percent,lv_tags", "--"]
# What the exporter runs (src/lvm/exec.rs, LvmCommand::fullreport_args).
FULLREPORT_ARGS = ["fullreport", "-a", "--config", "log{report_command_log=0}backup{backup=0}", "--reportformat", "json",
                   "--units", "b", "--nosuffix",
                   "--configreport", "vg", "-o", "vg_name,vg_size,vg_free,vg_extent_size",
                   "--configreport", "lv", "-o", "lv_name,lv_size,lv_attr,pool_lv,lv_parent,data_percent,lv_tags,lv_uuid",
                   "--configreport", "seg", "-o", "lv_uuid,segtype",
                   "--configreport", "pv", "-o", "pv_uuid",
                   "--configreport", "pvseg", "-o", "pvseg_start", "--"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV, **kw).stdout


def uuid(i):
    return "%08x-1111-4222-8333-%012x" % (i, i)


class Host:
    """A VG of `n` LVs (90% instance disks, 5% orphans, cinder volumes and foreign LVs), the
    instances' domain XMLs and a nova.conf."""

    def __init__(self, n):
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="nle-bench-")
        self.vg = "nle-bench-%d-%d" % (n, os.getpid())
        image = os.path.join(self.dir, "pv0.img")
        with open(image, "wb") as f:
            f.truncate(64 << 30)
        self.dev = run("losetup", "-f", "--show", image).strip()
        run("pvcreate", "-q", "--metadatasize", "16m", self.dev)
        run("vgcreate", "-q", self.vg, self.dev)
        backup = os.path.join(self.dir, "vg.txt")
        run("vgcfgbackup", "-q", "-f", backup, self.vg)
        text = open(backup).read()
        lvs, self.instances = [], []
        for i in range(n):
            kind = i % 20
            name = {0: "%s_disk" % uuid(10**6 + i), 1: "volume-%s" % uuid(i), 2: "scratch_%d" % i}.get(
                kind, "%s_disk" % uuid(i))
            if kind >= 3:
                self.instances.append(uuid(i))
            lvs.append("""
\t\t%s {
\t\t\tid = "bench0-%04x-bbbb-cccc-dddd-eeee-%06x"
\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]
\t\t\tflags = []
\t\t\tcreation_time = 1764000000
\t\t\tcreation_host = "bench"
\t\t\tsegment_count = 1

\t\t\tsegment1 {
\t\t\t\tstart_extent = 0
\t\t\t\textent_count = 1
\t\t\t\ttype = "striped"
\t\t\t\tstripe_count = 1
\t\t\t\tstripes = [
\t\t\t\t\t"pv0", %d
\t\t\t\t]
\t\t\t}
\t\t}""" % (name, i % 0x10000, i, i))
        seqno = int(re.search(r"seqno = (\d+)", text).group(1))
        text = text.replace("seqno = %d" % seqno, "seqno = %d" % (seqno + 1), 1)
        end = text.rindex("\n}")
        text = text[:end] + "\n\tlogical_volumes {\n" + "".join(lvs) + "\n\t}\n" + text[end:]
        open(backup, "w").write(text)
        run("vgcfgrestore", "-q", "--force", "-f", backup, self.vg)
        qemu = os.path.join(self.dir, "qemu")
        os.makedirs(qemu)
        for j, u in enumerate(self.instances):
            with open(os.path.join(qemu, "instance-%08x.xml" % j), "w") as f:
                f.write("""<domain type='kvm'><name>instance-%08x</name><uuid>%s</uuid><metadata>
<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"><nova:package version="27.1.0"/>
<nova:name>i%d</nova:name><nova:creationTime>2026-11-20 09:14:02</nova:creationTime>
<nova:flavor name="m1.tiny"><nova:memory>512</nova:memory><nova:disk>0</nova:disk><nova:swap>0</nova:swap>
<nova:ephemeral>0</nova:ephemeral><nova:vcpus>1</nova:vcpus></nova:flavor>
<nova:root type="image" uuid="a1b2c3d4-0000-4000-8000-000000000001"/></nova:instance></metadata></domain>
""" % (j, u, j))
        self.conf = os.path.join(self.dir, "nova.conf")
        with open(self.conf, "w") as f:
            f.write("[DEFAULT]\nhost = bench\n[libvirt]\nimages_type = lvm\nimages_volume_group = %s\n" % self.vg)
        self.qemu = qemu

    def settle(self):
        """Waits until the domain files are older than the libvirt source's racy window, so that
        scrapes measure the steady state (unchanged files are not parsed again)."""
        time.sleep(3)

    def close(self):
        subprocess.run(["vgremove", "-f", "-q", "--config", "global{activation=0}", self.vg],
                       env=ENV, capture_output=True)
        subprocess.run(["pvremove", "-q", "-ff", "-y", self.dev], env=ENV, capture_output=True)
        subprocess.run(["losetup", "-d", self.dev], env=ENV, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def hyperfine(command, runs=30):
    out = tempfile.mktemp(suffix=".json")
    subprocess.run(["hyperfine", "--warmup", "3", "--runs", str(runs), "--style", "none",
                    "--export-json", out, command], check=True, capture_output=True, env=ENV)
    result = json.load(open(out))["results"][0]
    os.unlink(out)
    return result["median"], sorted(result["times"])[int(0.99 * (len(result["times"]) - 1))]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path="/"):
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing answers on %d" % port)


def proc_cpu(pid):
    """(own CPU seconds, CPU seconds of reaped children) of a process."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def rss_kib(pid, field="VmRSS"):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def scrape_series(port, n, path="/metrics"):
    """n sequential scrapes on one keep-alive connection: latencies (s), LVM time each scrape
    reported (s, None for other servers), last body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, lvm, body = [], [], b""
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", path)
        body = conn.getresponse().read()
        latencies.append(time.perf_counter() - t)
        m = re.search(rb'^nova_lvm_collector_duration_seconds\{collector="lvm"\} (\S+)$', body, re.M)
        lvm.append(float(m.group(1)) if m else None)
    return latencies, lvm, body


def pct(values, p):
    values = sorted(values)
    return values[int(round(p * (len(values) - 1)))]


def wrk(port, connections, seconds):
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", "%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d/metrics" % port], check=True, capture_output=True,
                         text=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    return requests, int(errors.group(1)) if errors else 0, socket_errors.group(1) if socket_errors else "", p50, p99


def counting_wrapper(directory):
    path = os.path.join(directory, "lvm")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho x >> %s.count\nexec /usr/sbin/lvm \"$@\"\n" % path)
    os.chmod(path, 0o755)
    return path


def calibration():
    """Median time of a fixed CPU-bound loop (seconds): the same figure on a busier machine is
    larger, so runs on different days can be compared with it."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cpu_busy():
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def metadata_steps(host, wrapper):
    """The reader's own steps on the host's real PVs (benches/metadata.rs): step -> (median s,
    p90 s, CPU median s), plus the LVM executions of its steady-state collections."""
    env = dict(ENV, NOVA_LVM_BENCH_VG=host.vg, NOVA_LVM_BENCH_LVM=wrapper,
               NOVA_LVM_BENCH_LVM_COUNT=wrapper + ".count")
    out = subprocess.run(["cargo", "bench", "--locked", "--quiet", "--bench", "metadata"], cwd=ROOT,
                         check=True, capture_output=True, text=True, env=env).stdout
    steps = {}
    for line in out.splitlines():
        fields = line.split()
        if fields[0] == "lvm_executions":
            steps["lvm_executions"] = (int(fields[2]), int(fields[4]))
        elif fields[0] != "step":
            steps[fields[0]] = (float(fields[2]) / 1e3, float(fields[3]) / 1e3, float(fields[4]) / 1e3)
    return steps


def busy_share(before, after):
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def quoted(args):
    return " ".join("'%s'" % a for a in args)


def start_exporter(port, host, *extra):
    return subprocess.Popen([EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                             "--nova.config-file=" + host.conf,
                             "--collector.libvirt.xml-dir=" + host.qemu] + list(extra or ["--collector.lvm.method=exec"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)


def count(path):
    try:
        return sum(1 for _ in open(path + ".count"))
    except FileNotFoundError:
        return 0


def ms(seconds):
    return "%.1f ms" % (seconds * 1e3)


def main():
    # SIGTERM (timeout, Ctrl-C in a wrapper) unwinds through the `finally` blocks that remove
    # the VGs and loop devices.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    calibration_start, load_start = calibration(), os.getloadavg()
    for n in SIZES:
        log("== VG with %d LVs" % n)
        host = Host(n)
        try:
            host.settle()
            busy0 = cpu_busy()
            floor = hyperfine("/usr/sbin/vgs %s %s; /usr/sbin/lvs %s %s" % (
                quoted(VGS_ARGS), host.vg, quoted(LVS_ARGS), host.vg))
            fullreport_aio = hyperfine("/usr/sbin/lvm %s %s" % (quoted(FULLREPORT_ARGS), host.vg))
            fullreport_sync = hyperfine("%s /usr/sbin/lvm %s %s" % (SYNC_IO, quoted(FULLREPORT_ARGS), host.vg))
            bash = hyperfine("%s -g > /dev/null" % COLLECTOR, runs=20)

            # The exporter with LVM's own AIO, for the effect of --collector.lvm.sync-io.
            port = free_port()
            proc = start_exporter(port, host, "--collector.lvm.method=exec", "--no-collector.lvm.sync-io")
            try:
                wait_http(port, "/healthz")
                scrape_series(port, 5)
                aio_latencies, _, _ = scrape_series(port, max(SCRAPES // 4, 20))
            finally:
                proc.terminate()
                proc.wait()

            port = free_port()
            proc = start_exporter(port, host)
            try:
                wait_http(port, "/healthz")
                rss_idle = rss_kib(proc.pid)
                scrape_series(port, 5)
                cpu0 = proc_cpu(proc.pid)
                latencies, lvm, body = scrape_series(port, SCRAPES)
                cpu1 = proc_cpu(proc.pid)
                rss_after_scrapes = rss_kib(proc.pid)
                overhead = [l - v for l, v in zip(latencies, lvm)]
                load = {}
                for c in (1, 10, 100):
                    wrk_result = wrk(port, c, WRK_SECONDS)
                    load[c] = wrk_result
                rss_peak = rss_kib(proc.pid, "VmHWM")
                rss_after_load = rss_kib(proc.pid)
            finally:
                proc.terminate()
                proc.wait()

            # The same load through counting wrappers: LVM executions per scrape.
            wrapper = counting_wrapper(host.dir)
            port2 = free_port()
            proc = start_exporter(port2, host, "--collector.lvm.method=exec", "--collector.lvm.lvm-path=" + wrapper)
            executions = {}
            try:
                wait_http(port2, "/healthz")
                for c in (1, 10, 100):
                    before = count(wrapper)
                    requests = wrk(port2, c, WRK_SECONDS)[0]
                    executions[c] = (requests, count(wrapper) - before)
            finally:
                proc.terminate()
                proc.wait()

            # The metadata reader: the exporter reading the VG from its PVs, LVM through the
            # counting wrapper (it runs once, to learn the PVs), then the reader's own steps.
            port4 = free_port()
            proc = start_exporter(port4, host, "--collector.lvm.method=metadata",
                                  "--collector.lvm.lvm-path=" + wrapper)
            md_executions = {}
            try:
                wait_http(port4, "/healthz")
                md_rss_idle = rss_kib(proc.pid)
                scrape_series(port4, 5)
                before = count(wrapper)
                md_cpu0 = proc_cpu(proc.pid)
                md_latencies, _, md_body = scrape_series(port4, SCRAPES)
                md_cpu1 = proc_cpu(proc.pid)
                md_sequential_executions = count(wrapper) - before
                md_rss_scrapes = rss_kib(proc.pid)
                if not re.search(rb'^nova_lvm_raw_source_info\{[^}]*method="metadata"', md_body, re.M):
                    raise RuntimeError("the exporter does not read %s from its metadata" % host.vg)
                md_load = {}
                for c in (1, 10, 100):
                    before = count(wrapper)
                    md_load[c] = wrk(port4, c, WRK_SECONDS)
                    md_executions[c] = (md_load[c][0], count(wrapper) - before)
                md_rss_peak = rss_kib(proc.pid, "VmHWM")
                md_rss_load = rss_kib(proc.pid)
            finally:
                proc.terminate()
                proc.wait()
            steps = metadata_steps(host, wrapper)

            textfile = os.path.join(host.dir, "textfile")
            os.makedirs(textfile)
            with open(os.path.join(textfile, "lvm.prom"), "w") as f:
                f.write(run(COLLECTOR, "-g"))
            port3 = free_port()
            node = subprocess.Popen([NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port3,
                                     "--collector.disable-defaults", "--collector.textfile",
                                     "--collector.textfile.directory=" + textfile],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_http(port3, "/metrics")
                node_latencies, _, _ = scrape_series(port3, SCRAPES)
                node_rss = rss_kib(node.pid)
            finally:
                node.terminate()
                node.wait()

            rows.append(dict(
                n=n, floor=floor, fullreport_aio=fullreport_aio, fullreport_sync=fullreport_sync,
                aio50=pct(aio_latencies, 0.5), bash=bash,
                lat50=pct(latencies, 0.5), lat99=pct(latencies, 0.99),
                lvm50=pct(lvm, 0.5), over50=pct(overhead, 0.5), over99=pct(overhead, 0.99),
                cpu_own=(cpu1[0] - cpu0[0]) / SCRAPES, cpu_children=(cpu1[1] - cpu0[1]) / SCRAPES,
                rss_idle=rss_idle, rss_scrapes=rss_after_scrapes, rss_peak=rss_peak, rss_load=rss_after_load,
                size=len(body), load=load, executions=executions,
                node50=pct(node_latencies, 0.5), node_rss=node_rss,
                md50=pct(md_latencies, 0.5), md99=pct(md_latencies, 0.99),
                md_cpu=(md_cpu1[0] - md_cpu0[0]) / SCRAPES, md_cpu_children=(md_cpu1[1] - md_cpu0[1]) / SCRAPES,
                md_sequential_executions=md_sequential_executions, md_load=md_load,
                md_executions=md_executions, md_rss_idle=md_rss_idle, md_rss_scrapes=md_rss_scrapes,
                md_rss_peak=md_rss_peak, md_rss_load=md_rss_load, md_size=len(md_body), steps=steps,
                busy=busy_share(busy0, cpu_busy()), loadavg=os.getloadavg()))
        finally:
            host.close()

    print("## Whole-process figures\n")
    print("Machine: %s, %d cores, %s; LVM %s. Medians unless noted; every row measured in the same run." % (
        platform.machine(), os.cpu_count(), platform.release(),
        run("lvm", "version").split("\n")[0].split(":")[1].strip()))
    print()
    print("LVM alone (hyperfine medians): the floor as issue 7 defines it, and the one command the exporter runs.\n")
    print("| LVs | floor: `vgs` + `lvs` | `lvm fullreport` (LVM's AIO) | `lvm fullreport` (sync I/O, as the exporter runs it) | bash collector `-g` |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %d | %s | %s | %s | %s |" % (
            r["n"], ms(r["floor"][0]), ms(r["fullreport_aio"][0]), ms(r["fullreport_sync"][0]), ms(r["bash"][0])))
    print()
    print("The exporter (scrape latency over HTTP keep-alive, %d sequential scrapes):\n" % SCRAPES)
    print("| LVs | scrape p50 / p99 | ratio to floor | overhead on its own LVM time p50 / p99 | speed-up vs bash | p50 with `--no-collector.lvm.sync-io` | node_exporter textfile scrape | CPU per scrape (own + LVM) | exposition |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %s / %s | %.2fx | %s / %s | %.1fx | %s | %s | %s + %s | %.1f KiB |" % (
            r["n"], ms(r["lat50"]), ms(r["lat99"]), r["lat50"] / r["floor"][0],
            ms(r["over50"]), ms(r["over99"]), r["bash"][0] / r["lat50"], ms(r["aio50"]), ms(r["node50"]),
            ms(r["cpu_own"]), ms(r["cpu_children"]), r["size"] / 1024))
    print()
    print("| LVs | RSS idle | RSS after %d scrapes | RSS peak (100 concurrent) | RSS after load | node_exporter RSS |" % SCRAPES)
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.1f MB |" % (
            r["n"], r["rss_idle"] / 1024, r["rss_scrapes"] / 1024, r["rss_peak"] / 1024,
            r["rss_load"] / 1024, r["node_rss"] / 1024))
    print()
    print("| LVs | concurrent scrapers | scrapes/s | p50 / p99 latency | non-2xx | LVM executions per scrape |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for c in (1, 10, 100):
            requests, errors, socket_errors, p50, p99 = r["load"][c]
            scrapes, executions = r["executions"][c]
            print("| %d | %d | %.0f | %s / %s | %d%s | %.3f (%d for %d) |" % (
                r["n"], c, requests / WRK_SECONDS, p50, p99, errors,
                (" (" + socket_errors + ")") if socket_errors else "", executions / max(scrapes, 1),
                executions, scrapes))

    print()
    print_metadata(rows, calibration_start, calibration(), load_start)


def print_metadata(rows, calibration_start, calibration_end, load_start):
    print("## The metadata reader against exec (issue 14)\n")
    print("Same run, same VGs. Machine load: calibration loop %.1f ms at the start, %.1f ms at the end; "
          "load average %.2f at the start, %.2f at the end; CPU busy (all processes, of %d cores) over each "
          "VG's measurements: %s." % (
              calibration_start * 1e3, calibration_end * 1e3, load_start[0], rows[-1]["loadavg"][0],
              os.cpu_count(), ", ".join("%d%% (%d LVs)" % (100 * r["busy"], r["n"]) for r in rows)))
    print()
    print("The reader in process (`benches/metadata.rs` on the real PVs; wall-clock median / p90, "
          "then the CPU time it took, median):\n")
    print("| LVs | steady-state collection (header unchanged) | the same reads without the async source | "
          "full re-parse | of which: header + text read + checksum | text parse | VG build |")
    print("|---|---|---|---|---|---|---|")

    def cell(step):
        return "%.3f / %.3f ms (CPU %.3f)" % (step[0] * 1e3, step[1] * 1e3, step[2] * 1e3)
    for r in rows:
        st = r["steps"]
        print("| %d | %s | %s | %s | %s | %s | %s |" % (
            r["n"], cell(st["steady_collect"]), cell(st["steady_read"]), cell(st["full_reparse"]),
            cell(st["text_read"]), cell(st["text_parse"]), cell(st["vg_build"])))
    print()
    print("Whole scrapes over HTTP keep-alive (%d sequential scrapes), metadata vs exec:\n" % SCRAPES)
    print("| LVs | metadata p50 / p99 | the same with wrk (1 connection) p50 / p99 | exec p50 / p99 | exec / metadata (p50) | `lvm-prom-collector -g` | "
          "its time / metadata scrape p50 | its time / steady-state collection | CPU per scrape metadata vs exec (own + LVM) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %s / %s | %s / %s | %s / %s | %.1fx | %s | %.0fx | %.0fx | %s + %s vs %s + %s |" % (
            r["n"], ms2(r["md50"]), ms2(r["md99"]), r["md_load"][1][3], r["md_load"][1][4],
            ms(r["lat50"]), ms(r["lat99"]), r["lat50"] / r["md50"],
            ms(r["bash"][0]), r["bash"][0] / r["md50"], r["bash"][0] / r["steps"]["steady_collect"][0],
            ms2(r["md_cpu"]), ms2(r["md_cpu_children"]), ms(r["cpu_own"]), ms(r["cpu_children"])))
    print()
    print("LVM executions with the metadata method (a wrapper binary counts them; the one at start-up "
          "that learns the PVs is not in these windows):\n")
    print("| LVs | %d sequential scrapes | wrk 1 / 10 / 100 concurrent (scrapes: executions) | "
          "in-process steady-state collections |" % SCRAPES)
    print("|---|---|---|---|")
    for r in rows:
        runs = r["steps"]["lvm_executions"]
        print("| %d | %d | %s | %d in %d |" % (
            r["n"], r["md_sequential_executions"],
            " / ".join("%d: %d" % r["md_executions"][c] for c in (1, 10, 100)), runs[0], runs[1]))
    print()
    print("| LVs | method | scrapes/s at 1 / 10 / 100 concurrent | RSS idle | after %d scrapes | peak (100 concurrent) | after load | exposition |" % SCRAPES)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for method, load, rss, size in (
                ("metadata", r["md_load"], (r["md_rss_idle"], r["md_rss_scrapes"], r["md_rss_peak"], r["md_rss_load"]), r["md_size"]),
                ("exec", r["load"], (r["rss_idle"], r["rss_scrapes"], r["rss_peak"], r["rss_load"]), r["size"])):
            print("| %d | %s | %s | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.1f KiB |" % (
                r["n"], method, " / ".join("%.0f" % (load[c][0] / WRK_SECONDS) for c in (1, 10, 100)),
                rss[0] / 1024, rss[1] / 1024, rss[2] / 1024, rss[3] / 1024, size / 1024))


def ms2(seconds):
    return "%.2f ms" % (seconds * 1e3)


if __name__ == "__main__":
    main()
