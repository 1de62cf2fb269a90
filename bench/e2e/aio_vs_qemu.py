#!/usr/bin/env python3
"""Side-by-side benchmark of the asynchronous request path: qemu-img bench against
strata-img bench, both with -i io_uring and -i threads, in one run, on the same images.

For each workload and queue depth it prints, per tool and engine, the IOPS, the CPU time
per request (user + system, from the process's rusage) and the largest thread count seen
while it ran (sampled from /proc every 20 ms), and the ratios strata/QEMU of IOPS and CPU
per request against QEMU io_uring. Rounds alternate the order of the tools; medians.

  bench/e2e/aio_vs_qemu.py [--rounds N] [--strata PATH] [--quick] [--only NAME]

--only takes a part of a workload's name ("tmpfs", "O_DIRECT", "overlay", "cold",
"queues").
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def max_threads_until_exit(proc):
    """Waits for proc, sampling its thread count from /proc every 20 ms; the largest."""
    max_threads = 0
    status_path = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status_path) as f:
                m = re.search(r"^Threads:\s+(\d+)", f.read(), re.M)
                if m:
                    max_threads = max(max_threads, int(m.group(1)))
        except OSError:
            pass
        time.sleep(0.02)
    return max_threads


def run_measured(cmd):
    """Runs cmd; returns (seconds from 'Run completed', cpu seconds, max threads)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    max_threads = max_threads_until_exit(proc)
    # poll() reaped it; rusage of children covers it.
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.strip()}")
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    return float(m.group(1)), max_threads


def cpu_of(cmd, stdin_path=None):
    """Runs cmd (stdin from stdin_path, if given) with wait4 to read its rusage: user +
    system seconds."""
    pid = os.fork()
    if pid == 0:
        if stdin_path is not None:
            os.dup2(os.open(stdin_path, os.O_RDONLY), 0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return ru.ru_utime + ru.ru_stime


def measure(cmd, count):
    secs, threads = run_measured(cmd)
    cpu = cpu_of(cmd)
    return {"iops": count / secs, "cpu_us": cpu / count * 1e6, "threads": threads}


def make_image(path, size, allocated, backing=None):
    if os.path.exists(path):
        os.unlink(path)
    if backing:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2",
                        path], check=True)
        return
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, size], check=True)
    if allocated:
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", path],
                       check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strata", default=os.path.join(HERE, "../../bazel-bin/tools/strata-img"))
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    ap.add_argument("--only", help="run workloads whose name contains this")
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    shm = tempfile.mkdtemp(prefix="strata-aio-", dir="/dev/shm")
    disk = tempfile.mkdtemp(prefix="strata-aio-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    scale = 0.2 if args.quick else 1.0
    tools = [("qemu", "io_uring", "qemu-img"), ("qemu", "threads", "qemu-img"),
             ("strata", "io_uring", strata), ("strata", "threads", strata)]
    try:
        # (name, dir, cache, write, depths, count)
        workloads = [
            ("4k reads, allocated, tmpfs, writeback", shm, "writeback", False, [1, 16, 64, 256], 200000),
            ("4k reads, allocated, disk, O_DIRECT", disk, "none", False, [1, 16, 64, 256], 60000),
            ("4k allocating writes, tmpfs, writeback", shm, "writeback", True, [1, 16, 64, 256], 60000),
            ("4k allocating writes, disk, O_DIRECT", disk, "none", True, [1, 16, 64, 256], 20000),
        ]
        print(f"strata-img bench vs qemu-img bench {qemu_version()}, {args.rounds} rounds, median; "
              f"ratios against QEMU io_uring (IOPS: > 1 strata faster; CPU/req: < 1 strata cheaper)")
        for name, where, cache, write, depths, count in workloads:
            if args.only and args.only not in name:
                continue
            count = int(count * scale)
            print(f"\n{name} ({count} requests)")
            print(f"{'depth':>5} " + " ".join(f"{t[0]+'/'+t[1]:>30}" for t in tools) +
                  "   strata-uring/qemu-uring IOPS, CPU")
            for depth in depths:
                results = {t[:2]: [] for t in tools}
                for r in range(args.rounds):
                    order = tools if r % 2 == 0 else list(reversed(tools))
                    for who, engine, binary in order:
                        img = os.path.join(where, f"{who}.qcow2")
                        make_image(img, "1G", allocated=not write)
                        cmd = [binary, "bench", "-f", "qcow2", "-t", cache, "-i", engine,
                               "-d", str(depth), "-c", str(count), "-s", "4k"]
                        if write:
                            cmd += ["-w", "-S", "69632"]  # a new cluster every request
                        else:
                            cmd += ["-S", "4096"]
                        cmd.append(img)
                        results[(who, engine)].append(measure(cmd, count))
                cells, med = [], {}
                for t in tools:
                    rs = results[t[:2]]
                    m = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
                    med[t[:2]] = m
                    cells.append(f"{m['iops']/1000:7.1f}k {m['cpu_us']:5.2f}us {m['threads']:3d}thr")
                q, s = med[("qemu", "io_uring")], med[("strata", "io_uring")]
                print(f"{depth:>5} " + " ".join(f"{c:>30}" for c in cells) +
                      f"   {s['iops']/q['iops']:5.2f}x {s['cpu_us']/q['cpu_us']:5.2f}x")
        if not args.only or "overlay" in args.only:
            overlay_workload(strata, shm, args.rounds, int(200000 * scale))
        if not args.only or "cold" in args.only:
            cold_l2_workload(tools, shm, args.rounds, int(100000 * scale))
        if not args.only or "queues" in args.only:
            queues_workload(shm, args.rounds, int(400000 * scale))
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)


def overlay_workload(strata, shm, rounds, count):
    base = os.path.join(shm, "base.qcow2")
    top = os.path.join(shm, "top.qcow2")
    make_image(base, "1G", allocated=True)
    make_image(top, None, allocated=False, backing=base)
    print(f"\n4k reads d16 of an empty overlay whose data is in its base, tmpfs ({count} requests)")
    for who, binary in (("qemu", "qemu-img"), ("strata", strata)):
        b, t = [], []
        for _ in range(rounds):
            for img, acc in ((base, b), (top, t)):
                acc.append(measure([binary, "bench", "-i", "io_uring", "-d", "16", "-c",
                                    str(count), "-S", "4096", img], count))
        bi = statistics.median(x["iops"] for x in b)
        ti = statistics.median(x["iops"] for x in t)
        print(f"  {who:>6}: base {bi/1000:7.1f}k IOPS, overlay {ti/1000:7.1f}k IOPS, "
              f"overlay/base {ti/bi:4.2f}x")


def cold_l2_workload(tools, shm, rounds, count):
    """Every read needs an L2 table that is not cached: 64 tables written (one cluster in
    each 512 MiB of a 32 GiB image), one table of cache, reads 512 MiB apart. Strata reads
    a missing table on the loop with the metadata lock released; before, each miss took a
    pool thread and held the lock across the read."""
    img = os.path.join(shm, "cold.qcow2")
    make_image(img, "32G", allocated=False)
    script = "".join(f"write -P {i + 1} {i * 512}M 64k\n" for i in range(64))
    subprocess.run(["qemu-io", "-f", "qcow2", img], input=script, text=True, check=True,
                   stdout=subprocess.DEVNULL)
    opts = f"driver=qcow2,file.filename={img},l2-cache-size=64k"
    print(f"\n4k reads, every one missing the L2 cache (one table cached, 64 in use), tmpfs "
          f"({count} requests)")
    print(f"{'depth':>5} " + " ".join(f"{t[0]+'/'+t[1]:>30}" for t in tools) +
          "   strata-uring/qemu-uring IOPS, CPU")
    for depth in (1, 16):
        med = {}
        for who, engine, binary in tools:
            rs = [measure([binary, "bench", "--image-opts", opts, "-i", engine, "-d", str(depth),
                           "-c", str(count), "-S", "512M", "-s", "4k"], count)
                  for _ in range(rounds)]
            med[(who, engine)] = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        cells = [f"{m['iops']/1000:7.1f}k {m['cpu_us']:5.2f}us {m['threads']:3d}thr"
                 for m in (med[t[:2]] for t in tools)]
        q, s = med[("qemu", "io_uring")], med[("strata", "io_uring")]
        print(f"{depth:>5} " + " ".join(f"{c:>30}" for c in cells) +
              f"   {s['iops']/q['iops']:5.2f}x {s['cpu_us']/q['cpu_us']:5.2f}x")


def queues_workload(shm, rounds, count):
    tool = os.path.join(HERE, "../../bazel-bin/bench/multiqueue_bench")
    if not os.path.exists(tool):
        print("\n(multiqueue_bench not built: bazel build //bench:multiqueue_bench)")
        return
    img = os.path.join(shm, "mq.qcow2")
    make_image(img, "1G", allocated=True)
    print(f"\nrandom 4k reads, tmpfs, depth 64 per queue, strata queues ({count} requests)")
    base = None
    for queues in (1, 2):
        rs = []
        for _ in range(rounds):
            out = subprocess.run([tool, "--queues", str(queues), "--depth", "64", "--count",
                                  str(count), img], check=True, capture_output=True,
                                 text=True).stdout
            rs.append(float(re.search(r"iops=([0-9.]+)", out).group(1)))
        iops = statistics.median(rs)
        base = base or iops
        print(f"  {queues} queue(s): {iops/1000:7.1f}k IOPS  ({iops/base:4.2f}x one queue)")


def qemu_version():
    out = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True).stdout
    return out.split()[2] if out else "?"


if __name__ == "__main__":
    sys.exit(main())
