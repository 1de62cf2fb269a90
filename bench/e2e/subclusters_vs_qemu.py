#!/usr/bin/env python3
"""Subclusters (extended L2 entries) side by side with QEMU: 4 KiB allocating writes into
an empty overlay whose data is in its backing file, one write per cluster (Garcia's KVM
Forum 2020 workload: with standard L2 entries every such write copies the rest of its
cluster from the backing file; with subclusters it writes two 2 KiB subclusters and copies
nothing).

For each cluster size, both tools, with and without extended_l2: IOPS and CPU time per
request (user + system), medians of alternating rounds. Ratios: extended/standard for each
tool (the feature's gain) and strata/QEMU for each format (> 1: strata faster).

  bench/e2e/subclusters_vs_qemu.py [--rounds N] [--strata PATH] [--cache none|writeback]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from aio_vs_qemu import measure, qemu_version  # noqa: E402


def make_backing(path, size):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(size)], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", path],
                   check=True, stdout=subprocess.DEVNULL)


def make_overlay(path, backing, cluster, extended):
    if os.path.exists(path):
        os.unlink(path)
    opts = f"cluster_size={cluster},extended_l2={'on' if extended else 'off'}"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "-b", backing,
                    "-F", "qcow2", path], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strata", default=os.path.join(HERE, "../../bazel-bin/tools/strata-img"))
    ap.add_argument("--cache", default="none", help="-t for both tools (none: O_DIRECT)")
    ap.add_argument("--count", type=int, default=2000, help="writes (= clusters) per run")
    ap.add_argument("--depth", type=int, default=1)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-subclusters-",
                            dir=os.environ.get("TMPDIR", "/var/tmp"))
    tools = [("qemu", "qemu-img"), ("strata", strata)]
    try:
        print(f"4 KiB allocating writes over a backing file, one per cluster, -t {args.cache}, "
              f"depth {args.depth}, {args.count} writes; strata-img bench vs qemu-img bench "
              f"{qemu_version()}, {args.rounds} rounds, median")
        print(f"{'cluster':>8} {'':>6} {'standard':>22} {'extended':>22} {'ext/std':>8}")
        for cluster in (64 << 10, 256 << 10, 1 << 20):
            backing = os.path.join(work, "base.qcow2")
            if os.path.exists(backing):
                os.unlink(backing)
            make_backing(backing, cluster * args.count)
            results = {}
            for r in range(args.rounds):
                order = tools if r % 2 == 0 else list(reversed(tools))
                for who, binary in order:
                    for extended in (False, True):
                        top = os.path.join(work, "top.qcow2")
                        make_overlay(top, backing, cluster, extended)
                        cmd = [binary, "bench", "-w", "-f", "qcow2", "-t", args.cache,
                               "-d", str(args.depth), "-c", str(args.count), "-s", "4096",
                               "-S", str(cluster), top]
                        results.setdefault((who, extended), []).append(
                            measure(cmd, args.count))
            med = {k: {m: statistics.median(x[m] for x in v) for m in ("iops", "cpu_us")}
                   for k, v in results.items()}
            for who, _ in tools:
                std, ext = med[(who, False)], med[(who, True)]
                print(f"{cluster >> 10:>7}k {who:>6} "
                      f"{std['iops']:>9.0f} IOPS {std['cpu_us']:>6.1f}us "
                      f"{ext['iops']:>9.0f} IOPS {ext['cpu_us']:>6.1f}us "
                      f"{ext['iops'] / std['iops']:>7.2f}x")
            for extended in (False, True):
                q, s = med[("qemu", extended)], med[("strata", extended)]
                print(f"{'':>8} strata/qemu {'extended' if extended else 'standard'}: "
                      f"IOPS {s['iops'] / q['iops']:.2f}x, CPU/req {s['cpu_us'] / q['cpu_us']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
