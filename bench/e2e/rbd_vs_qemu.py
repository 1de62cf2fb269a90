#!/usr/bin/env python3
"""strata's rbd driver against QEMU's on the same throwaway one-node cluster.

qemu-img bench (QEMU's rbd driver, Debian's qemu-block-extra) and strata-img bench run the
same requests on the same images: raw and qcow2 on rbd, 4 KiB reads and writes at depth
16 and 64 (strided over the image with -S, qemu-img bench has no random pattern) and
1 MiB sequential reads and writes at depth 4. Rounds alternate the order; medians. Prints
IOPS (or MiB/s) per tool and the ratio strata/QEMU (>1: strata is faster), plus the
client's CPU per request. The cluster is memstore on this machine: absolute figures are
this machine's, the ratios are the point.

  bench/e2e/rbd_vs_qemu.py [--strata-img PATH] [--rounds N] [--count N]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "rbd"))
import ceph_cluster  # noqa: E402


def bench(tool, args):
    """Runs one bench; returns (seconds, CPU seconds of the client)."""
    pid = os.fork()
    if pid == 0:
        out = os.open(os.path.join("/tmp", f"rbd-bench-{os.getpid()}.out"),
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.execvp(tool, [tool, "bench"] + args)
    _, status, ru = os.wait4(pid, 0)
    path = os.path.join("/tmp", f"rbd-bench-{pid}.out")
    text = open(path).read()
    os.remove(path)
    if status != 0:
        raise RuntimeError(f"{tool} bench {' '.join(args)}: {text}")
    seconds = float(re.search(r"Run completed in ([0-9.]+) seconds", text).group(1))
    return seconds, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", default=os.path.join(ROOT, "bazel-bin/tools/strata-img"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=20000, help="4 KiB requests per run")
    args = ap.parse_args()
    with ceph_cluster.cluster(parent="/tmp") as c:
        images = {}
        for fmt in ("raw", "qcow2"):
            name = f"rbd:rbd/bench-{fmt}:conf={c.conf}"
            subprocess.run(["qemu-img", "create", "-f", fmt, name, "256M"], check=True,
                           capture_output=True)
            # Written once so reads hit data (and qcow2 has its clusters).
            subprocess.run(["qemu-img", "bench", "-f", fmt, "-w", "-c", "256", "-d", "8",
                            "-s", "1M", name], check=True, capture_output=True)
            images[fmt] = name
        workloads = [
            ("4k read d16", ["-c", str(args.count), "-d", "16", "-s", "4k", "-S", "1052672"]),
            ("4k read d64", ["-c", str(args.count), "-d", "64", "-s", "4k", "-S", "1052672"]),
            ("4k write d16", ["-w", "-c", str(args.count), "-d", "16", "-s", "4k",
                              "-S", "1052672"]),
            ("4k write d64", ["-w", "-c", str(args.count), "-d", "64", "-s", "4k",
                              "-S", "1052672"]),
            ("1M read d4", ["-c", "512", "-d", "4", "-s", "1M"]),
            ("1M write d4", ["-w", "-c", "512", "-d", "4", "-s", "1M"]),
        ]
        tools = {"qemu": "qemu-img", "strata": args.strata_img}
        results = {}
        for rnd in range(args.rounds):
            order = ["qemu", "strata"] if rnd % 2 == 0 else ["strata", "qemu"]
            for fmt, name in images.items():
                for label, wargs in workloads:
                    for side in order:
                        secs, cpu = bench(tools[side], ["-f", fmt] + wargs + [name])
                        count = int(wargs[wargs.index("-c") + 1])
                        results.setdefault((fmt, label, side), []).append((secs, cpu, count))
        print(f"strata vs QEMU on rbd (one-node memstore cluster), {args.rounds} rounds, "
              f"medians; CPU is the client's per request")
        print(f"{'format':6} {'workload':14} {'qemu':>10} {'strata':>10} {'ratio':>6} "
              f"{'qemu cpu':>9} {'strata cpu':>10}")
        for fmt in images:
            for label, _ in workloads:
                row = {}
                for side in ("qemu", "strata"):
                    runs = results[(fmt, label, side)]
                    secs = statistics.median(r[0] for r in runs)
                    cpu = statistics.median(r[1] for r in runs)
                    count = runs[0][2]
                    rate = count / secs if label.startswith("4k") else count / secs
                    row[side] = (rate, cpu / count * 1e6)
                unit = "IOPS" if label.startswith("4k") else "MiB/s"
                print(f"{fmt:6} {label:14} {row['qemu'][0]:>10.0f} {row['strata'][0]:>10.0f} "
                      f"{row['strata'][0] / row['qemu'][0]:>6.2f} {row['qemu'][1]:>7.1f}us "
                      f"{row['strata'][1]:>8.1f}us  {unit}")


if __name__ == "__main__":
    main()
