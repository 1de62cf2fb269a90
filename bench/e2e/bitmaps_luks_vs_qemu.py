#!/usr/bin/env python3
"""Persistent dirty bitmaps and LUKS, side by side with QEMU (qemu-img bench against
strata-img bench, same images, alternating rounds, medians).

  bitmaps: 4 KiB writes into an allocated qcow2 image (tmpfs, writeback, depth 16), with
           no bitmap, one enabled bitmap, and four (every write marks them all); the
           cost of tracking is each tool's with/without ratio, strata/QEMU the speed.
  luks:    4 KiB reads and writes of a LUKS volume (AES-256-XTS; tmpfs, writeback,
           depth 16): every request is encrypted or decrypted.

  bench/e2e/bitmaps_luks_vs_qemu.py [--rounds N] [--strata PATH] [--count N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from aio_vs_qemu import measure, qemu_version  # noqa: E402

SIZE = 1 << 30
SECRET = ["--object", "secret,id=sec0,data=benchpw"]


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def bench(tool, image, write, count, depth, luks=False):
    cmd = [tool, "bench", "-c", str(count), "-d", str(depth), "-s", "4096", "-t", "writeback"]
    if write:
        cmd.append("-w")
    if luks:
        cmd += SECRET + ["--image-opts", f"driver=luks,key-secret=sec0,file.filename={image}"]
    else:
        cmd += ["-f", "qcow2", image]
    return cmd


def run(tools, cmd_for, count, rounds):
    """Median IOPS and CPU us/request per tool, rounds alternating between the tools."""
    res = {name: [] for name, _ in tools}
    for _ in range(rounds):
        for name, tool in tools:
            res[name].append(measure(cmd_for(tool), count))
    return {n: (statistics.median(r["iops"] for r in v), statistics.median(r["cpu_us"] for r in v))
            for n, v in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strata", default=os.path.join(HERE, "../../bazel-bin/tools/strata-img"))
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--depth", type=int, default=16)
    args = ap.parse_args()
    tools = [("qemu", "qemu-img"), ("strata", os.path.abspath(args.strata))]
    work = tempfile.mkdtemp(prefix="strata-bmluks-", dir="/dev/shm")
    try:
        print(f"strata-img bench vs qemu-img bench {qemu_version()}, tmpfs, writeback, "
              f"depth {args.depth}, {args.count} x 4 KiB, {args.rounds} rounds, median")
        print(f"{'workload':<34} {'QEMU IOPS':>10} {'strata IOPS':>12} {'s/Q':>6} "
              f"{'QEMU us/req':>12} {'strata us/req':>14}")

        def line(name, r):
            q, s = r["qemu"], r["strata"]
            print(f"{name:<34} {q[0]:>10.0f} {s[0]:>12.0f} {s[0] / q[0]:>6.2f} "
                  f"{q[1]:>12.2f} {s[1]:>14.2f}")
            return r

        base = os.path.join(work, "base.qcow2")
        sh("qemu-img", "create", "-q", "-f", "qcow2", base, str(SIZE))
        sh("qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {SIZE}", base)
        img = os.path.join(work, "img.qcow2")
        results = {}
        for n in (0, 1, 4):
            shutil.copy(base, img)
            for i in range(n):
                sh("qemu-img", "bitmap", "--add", img, f"b{i}")
            results[n] = line(f"4k writes, {n} enabled bitmap(s)",
                              run(tools, lambda t: bench(t, img, True, args.count, args.depth),
                                  args.count, args.rounds))
        for n in (1, 4):
            for name in ("qemu", "strata"):
                print(f"  tracking cost, {n} bitmap(s), {name}: "
                      f"{results[n][name][0] / results[0][name][0]:.2f}x the IOPS without")
        # LUKS: qemu-img bench takes no --object (no secret), so throughput through the
        # tools that do: convert (decrypts the volume to raw) and one qemu-io write.
        vol = os.path.join(work, "v.luks")
        mib = 512
        sh("qemu-img", "create", "-q", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=200",
           vol, str(mib << 20))
        opts = f"driver=luks,key-secret=sec0,file.filename={vol}"
        out = os.path.join(work, "out.raw")
        strata_io = os.path.join(os.path.dirname(os.path.abspath(args.strata)), "strata-io")
        io_tools = [("qemu", "qemu-io"), ("strata", strata_io)]
        print(f"{'luks aes-256-xts, MiB/s':<34} {'QEMU':>10} {'strata':>12} {'s/Q':>6}")
        for name, tl, cmd_for in (
            ("write 512 MiB (qemu-io)", io_tools,
             lambda t: [t, *SECRET, "--image-opts", "-c", f"write -P 1 0 {mib << 20}", opts]),
            ("read 512 MiB (convert -O raw)", tools,
             lambda t: [t, "convert", *SECRET, "--image-opts", "-O", "raw", opts, out]),
        ):
            speeds = {n: [] for n, _ in tl}
            for _ in range(args.rounds):
                for n, t in tl:
                    start = time.monotonic()
                    sh(*cmd_for(t))
                    speeds[n].append(mib / (time.monotonic() - start))
            q, st = statistics.median(speeds["qemu"]), statistics.median(speeds["strata"])
            print(f"{name:<34} {q:>10.0f} {st:>12.0f} {st / q:>6.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
