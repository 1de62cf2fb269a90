#!/usr/bin/env python3
"""strata-nbd against qemu-nbd, side by side, same clients, one run.

Each server serves the same raw image (on tmpfs, so the disk does not decide) over a Unix
socket and over TCP on 127.0.0.1. The clients are nobody's here: fio with its nbd engine
(libnbd) for 4 KiB random reads and writes at depth 16 and 64 and 1 MiB sequential reads,
qemu-img bench on the URL (4 KiB reads at depth 16, its own sequential pattern), and
nbdcopy (the whole export to null:, 1 MiB... its default requests). For every row it
prints each server's throughput, the server's CPU time per request (user + system from
/proc, across the run) and its thread count, and the ratios strata/QEMU (throughput: >1
is faster; CPU per request: <1 is cheaper). Rounds alternate which server goes first;
medians are reported.

  bench/e2e/nbd_vs_qemu.py [--strata-nbd PATH] [--rounds N] [--seconds S] [--quick]
       [--qemu-aio threads|io_uring] [--only SUBSTRING]
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "nbd"))
import nbd_harness as h  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))


def fio(uri, rw, bs, depth, seconds, size):
    """Runs fio's nbd engine; returns (operations, bytes)."""
    out = subprocess.run(
        ["fio", "--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", f"--bs={bs}",
         f"--iodepth={depth}", f"--size={size}", "--time_based", f"--runtime={seconds}",
         "--output-format=json", "--randrepeat=1", "--norandommap"],
        capture_output=True, text=True, check=True).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    ops = job["read"]["total_ios"] + job["write"]["total_ios"]
    nbytes = job["read"]["io_bytes"] + job["write"]["io_bytes"]
    return ops, nbytes


def qemu_img_bench(uri, depth, count):
    out = subprocess.run(["qemu-img", "bench", "-f", "raw", "-c", str(count), "-d", str(depth),
                          "-s", "4k", uri], capture_output=True, text=True, check=True).stdout
    return count, count * 4096, float(re.search(r"Run completed in ([0-9.]+) seconds",
                                                out).group(1))


def nbdcopy(uri, size):
    subprocess.run(["nbdcopy", uri, "null:"], check=True, capture_output=True)
    return size // (256 << 10), size  # nbdcopy's default request size is 256 KiB


def measure(server_pid, run):
    """Runs `run()` -> (ops, bytes[, seconds]); returns ops/s, MiB/s, CPU us/op, threads."""
    cpu0 = cpu_seconds(server_pid)
    t0 = time.monotonic()
    result = run()
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(server_pid) - cpu0
    ops, nbytes = result[0], result[1]
    if len(result) > 2:
        elapsed = result[2]
    return {"iops": ops / elapsed, "mibs": nbytes / elapsed / (1 << 20),
            "cpu_us": cpu / max(ops, 1) * 1e6, "threads": threads(server_pid)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-nbd", default=os.path.join(ROOT, "bazel-bin/tools/strata-nbd"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 seconds")
    ap.add_argument("--qemu-aio", default="threads", help="qemu-nbd --aio (its default)")
    ap.add_argument("--only", default="", help="run the workloads whose name contains this")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 2
    for tool in ("fio", "qemu-nbd", "qemu-img", "nbdcopy"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (apt-get install fio qemu-utils libnbd-bin)")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="nbd-bench.", dir=shm)
    size = 512 << 20
    try:
        img = os.path.join(work, "disk.raw")
        with open(img, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        workloads = [
            ("4k randread d16", lambda u: fio(u, "randread", "4k", 16, args.seconds, size)),
            ("4k randread d64", lambda u: fio(u, "randread", "4k", 64, args.seconds, size)),
            ("4k randwrite d16", lambda u: fio(u, "randwrite", "4k", 16, args.seconds, size)),
            ("4k randwrite d64", lambda u: fio(u, "randwrite", "4k", 64, args.seconds, size)),
            ("1M read d4", lambda u: fio(u, "read", "1M", 4, args.seconds, size)),
            ("qemu-img bench 4k d16", lambda u: qemu_img_bench(u, 16, 20000)),
            ("nbdcopy to null", lambda u: nbdcopy(u, size)),
        ]
        workloads = [w for w in workloads if args.only in w[0]]
        servers = {
            "qemu": ["qemu-nbd", "-t", "-f", "raw", f"--aio={args.qemu_aio}"],
            "strata": [args.strata_nbd, "-t", "-f", "raw"],
        }
        results = {}  # (transport, workload, server) -> [measurements]
        for rnd in range(args.rounds):
            order = ["qemu", "strata"] if rnd % 2 == 0 else ["strata", "qemu"]
            for transport in ("unix", "tcp"):
                for name in order:
                    if transport == "unix":
                        sock = os.path.join(work, f"{name}.sock")
                        argv = servers[name] + ["-k", sock, img]
                        uri, wait = h.unix_url(sock), {"socket_path": sock}
                    else:
                        port = h.free_port()
                        argv = servers[name] + ["-b", "127.0.0.1", "-p", str(port), img]
                        uri, wait = f"nbd://127.0.0.1:{port}", {"port": port}
                    with h.server(argv, **wait) as proc:
                        for label, run in workloads:
                            m = measure(proc.pid, lambda: run(uri))
                            results.setdefault((transport, label, name), []).append(m)
        print(f"strata-nbd vs qemu-nbd (--aio={args.qemu_aio}), {args.rounds} round(s) of "
              f"{args.seconds}s, {os.cpu_count()} CPUs; medians")
        print(f"{'transport':9} {'workload':22} {'qemu':>12} {'strata':>12} {'ratio':>6} "
              f"{'qemu cpu/op':>12} {'strata cpu/op':>13} {'cpu ratio':>9} {'threads q/s':>11}")
        for transport in ("unix", "tcp"):
            for label, _ in workloads:
                q = results[(transport, label, "qemu")]
                s = results[(transport, label, "strata")]
                unit = "mibs" if label.startswith(("1M", "nbdcopy")) else "iops"
                qv = statistics.median(m[unit] for m in q)
                sv = statistics.median(m[unit] for m in s)
                qc = statistics.median(m["cpu_us"] for m in q)
                sc = statistics.median(m["cpu_us"] for m in s)
                suffix = " MiB/s" if unit == "mibs" else " IOPS"
                print(f"{transport:9} {label:22} {qv:>12.0f} {sv:>12.0f} {sv / qv:>6.2f} "
                      f"{qc:>10.1f}us {sc:>11.1f}us {sc / qc if qc else 0:>9.2f} "
                      f"{max(m['threads'] for m in q):>5}/{max(m['threads'] for m in s):<5}"
                      f"{suffix}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
