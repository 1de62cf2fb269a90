#!/usr/bin/env python3
"""Side-by-side benchmark of zero writes through qemu-io's aio_write -z: qemu-io against
strata-io, in one run, on copies of one image.

A fully allocated qcow2 (64 KiB clusters, on tmpfs) receives one `aio_write -z [-u]` per
cluster, all submitted before one `aio_flush`, so every request is in flight at once
(qemu-io submits them as coroutines; strata-io on its queue's loop). Printed per tool and
mode: the time, the CPU time per request (user + system, from rusage) and the largest
thread count seen while it ran (sampled from /proc every 20 ms), and the ratios
strata/QEMU. Rounds alternate the order of the tools; medians.

  bench/e2e/zero_vs_qemu.py [--rounds N] [--strata-io PATH] [--mib M]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aio_vs_qemu import cpu_of, max_threads_until_exit  # noqa: E402

CLUSTER = 64 * 1024


def run_measured(cmd, stdin_path, reset=None):
    """Runs cmd with stdin from a file: (wall seconds, cpu seconds, max threads). The CPU
    time comes from a second run; `reset` (if given) restores the image before it, so
    both runs start from the same state."""
    with open(stdin_path) as stdin:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        max_threads = max_threads_until_exit(proc)
        wall = time.monotonic() - start
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode().strip()}")
    # The same run again under wait4 for its rusage (Popen does not expose it).
    if reset is not None:
        reset()
    cpu = cpu_of(cmd, stdin_path)
    return wall, cpu, max_threads


def side_by_side(label, count, rounds, image, copy, script, cmd_for, strata):
    """Runs `script` through qemu-io and strata-io `rounds` times each (the first tool
    alternating), each time on a fresh copy of `image` at `copy` (cmd_for(binary, copy)
    is the command line), and prints each tool's median time, CPU per request and
    largest thread count, then the ratios strata/QEMU."""
    results = {"qemu-io": [], "strata-io": []}
    for r in range(rounds):
        tools = [("qemu-io", "qemu-io"), ("strata-io", strata)]
        if r % 2:
            tools.reverse()
        for name, binary in tools:
            shutil.copy(image, copy)
            results[name].append(run_measured(cmd_for(binary, copy), script,
                                              reset=lambda: shutil.copy(image, copy)))
    med = {}
    for name, runs in results.items():
        wall = statistics.median(x[0] for x in runs)
        cpu = statistics.median(x[1] for x in runs)
        threads = max(x[2] for x in runs)
        med[name] = (wall, cpu)
        print(f"{label:<18} {name:<10} {wall * 1e3:8.1f} {cpu / count * 1e6:11.1f} "
              f"{threads:8d}")
    q, s = med["qemu-io"], med["strata-io"]
    print(f"{label:<18} ratio strata/QEMU: speed {q[0] / s[0]:.2f}x, "
          f"CPU per request {s[1] / q[1]:.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strata-io", default="bazel-bin/tools/strata-io")
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata_io)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="zero_bench.", dir=base)
    try:
        image = os.path.join(work, "base.qcow2")
        size = args.mib << 20
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                        f"cluster_size={CLUSTER}", image, str(size)], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", image],
                       check=True, stdout=subprocess.DEVNULL)
        count = size // CLUSTER
        print(f"{count} zero writes of 64 KiB, all in flight, then aio_flush; image on "
              f"{'tmpfs' if base else 'disk'}; {args.rounds} rounds, medians")
        print(f"{'mode':<18} {'tool':<10} {'ms':>8} {'cpu us/req':>11} {'threads':>8}")
        for mode, flag in (("zero", ""), ("zero -u", "-u ")):
            script = os.path.join(work, "script.txt")
            with open(script, "w") as f:
                for i in range(count):
                    f.write(f"aio_write -q -z {flag}{i * CLUSTER} {CLUSTER}\n")
                f.write("aio_flush\n")
            side_by_side(mode, count, args.rounds, image, os.path.join(work, "run.qcow2"),
                         script, lambda binary, copy: [binary, "-f", "qcow2", copy], strata)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
