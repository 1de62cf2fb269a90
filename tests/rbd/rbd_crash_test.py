#!/usr/bin/env python3
"""Crash consistency on rbd: kill the client, never the cluster.

Each round makes a qcow2 image on the throwaway cluster (cluster size, lazy refcounts and a
local backing file vary with the seed), starts crash_client (random non-overlapping writes
through strata's C API queue, a flush every 24 writes, each announced on stdout) and
SIGKILLs it after a random number of writes. Then, with QEMU as the judge:
- before any repair, `qemu-img check` finds no corruption (leaks only) when refcounts are
  not lazy;
- `strata-img check -r all` repairs what the crash left, after which `qemu-img check` is
  clean;
- every 512-byte sector read back by `qemu-img convert` holds a value it had at the last
  completed flush or one written after it (so nothing flushed is lost and nothing is made
  up); strata's own read-back is identical to QEMU's.
Usage: rbd_crash_test.py STRATA_IMG CRASH_CLIENT ROUNDS
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "nbd"))
import ceph_cluster  # noqa: E402
import nbd_harness as h  # noqa: E402

STRATA_IMG, CLIENT = (os.path.abspath(p) for p in sys.argv[1:3])
ROUNDS = int(sys.argv[3])
SIZE = 8 << 20
SECTORS = SIZE // 512
BACKING_BYTE = 0xEE


def run(argv, **kw):
    start = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    print(f"  {time.monotonic() - start:5.1f}s {' '.join(argv[:3])}", flush=True)
    return r


def kill_after(client_argv, writes, rng):
    """Runs the client until it announced `writes` writes, kills it, returns its lines.

    Everything is read through the one buffered text stream: Popen.communicate() would read
    the pipe's descriptor directly and lose the lines the stream had already buffered (an
    announced write then looks like data made up). A watchdog kills a client that stops
    talking, so the loop is bounded.
    """
    proc = subprocess.Popen(client_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.split())
            if line.startswith("S") and int(line.split()[1]) + 1 >= writes:
                # Let a random little more happen: completions, maybe a flush.
                if rng.random() < 0.5:
                    for extra in proc.stdout:
                        lines.append(extra.split())
                        break
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=60)
        watchdog.cancel()
    lines += [l.split() for l in rest.splitlines()]
    return lines, proc.returncode, err


def allowed_values(lines, base):
    """Per sector: the set of byte values its content may hold after the crash."""
    flushed = max([int(l[1]) for l in lines if l[0] == "F"], default=-1)
    durable = bytearray([base]) * SECTORS
    later = {}
    for l in lines:
        if l[0] != "S":
            continue
        i, off, length, byte = (int(x) for x in l[1:5])
        for s in range(off // 512, (off + length) // 512):
            if i <= flushed:
                durable[s] = byte
            else:
                later.setdefault(s, set()).add(byte)
    return durable, later, flushed


def check_contents(path, durable, later):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != SIZE:
        return [f"read back {len(data)} bytes, want {SIZE}"]
    bad = []
    for s in range(SECTORS):
        sector = data[s * 512:(s + 1) * 512]
        ok = {durable[s]} | later.get(s, set())
        if not any(sector == bytes([v]) * 512 for v in ok):
            bad.append(f"sector {s}: {sector[:8].hex()}... not one of {sorted(ok)}")
            if len(bad) >= 5:
                break
    return bad


def main():
    failures, checks, writes_total = [], 0, 0
    work = tempfile.mkdtemp(prefix="rbd-crash.", dir="/tmp")
    try:
        backing = os.path.join(work, "backing.raw")
        with open(backing, "wb") as f:
            f.write(bytes([BACKING_BYTE]) * SIZE)
        with ceph_cluster.cluster(parent="/tmp") as c:
            for seed in range(1, ROUNDS + 1):
                rng = random.Random(seed)
                cluster = (512, 4096, 65536)[seed % 3]
                lazy = seed % 4 in (1, 2)
                with_backing = seed % 2 == 0
                depth = (1, 4, 16)[(seed // 3) % 3]
                name = f"crash{seed}"
                spec = f"rbd:rbd/{name}:conf={c.conf}"
                opts = [f"cluster_size={cluster}", f"lazy_refcounts={'on' if lazy else 'off'}"]
                if with_backing:
                    opts += [f"backing_file={backing}", "backing_fmt=raw"]
                label = f"seed {seed} (cluster {cluster}, lazy {lazy}, backing {with_backing}, depth {depth})"
                r = run([STRATA_IMG, "create", "-q", "-f", "qcow2", "-o", ",".join(opts), spec,
                         str(SIZE)])
                if r.returncode != 0:
                    failures.append(f"{label}: create: {r.stderr}")
                    continue
                options = json.dumps({"driver": "qcow2", "file": {
                    "driver": "rbd", "pool": "rbd", "image": name, "conf": c.conf}})
                writes = rng.randrange(20, 300)
                lines, rc, err = kill_after([CLIENT, options, str(seed), str(depth)], writes, rng)
                writes_total += sum(1 for l in lines if l[0] == "S")
                checks += 1
                if rc != -signal.SIGKILL:
                    failures.append(f"{label}: the client ended by itself ({rc}): {err}")
                    continue
                if not lazy:
                    r = run(["qemu-img", "check", "-f", "qcow2", spec])
                    checks += 1
                    if r.returncode not in (0, 3) or "ERROR" in r.stdout:
                        failures.append(f"{label}: qemu-img check before repair: {r.returncode}\n{r.stdout}{r.stderr}")
                r = run([STRATA_IMG, "check", "-q", "-r", "all", "-f", "qcow2", spec])
                checks += 1
                if r.returncode != 0:
                    failures.append(f"{label}: strata-img check -r all: {r.returncode} {r.stdout}{r.stderr}")
                r = run(["qemu-img", "check", "-f", "qcow2", spec])
                checks += 1
                if r.returncode != 0:
                    failures.append(f"{label}: qemu-img check after repair: {r.returncode}\n{r.stdout}{r.stderr}")
                durable, later, flushed = allowed_values(lines, BACKING_BYTE if with_backing else 0)
                qemu_raw, strata_raw = os.path.join(work, "qemu.raw"), os.path.join(work, "strata.raw")
                r = run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", spec, qemu_raw])
                checks += 1
                if r.returncode != 0:
                    failures.append(f"{label}: qemu-img convert: {r.stderr}")
                    continue
                bad = check_contents(qemu_raw, durable, later)
                if bad:
                    failures.append(f"{label}: after flush of write {flushed}:\n  " + "\n  ".join(bad))
                r = run([STRATA_IMG, "convert", "-f", "qcow2", "-O", "raw", spec, strata_raw])
                checks += 1
                if r.returncode != 0 or open(qemu_raw, "rb").read() != open(strata_raw, "rb").read():
                    failures.append(f"{label}: strata reads back differently from QEMU {r.stderr}")
                run(["rbd", "-c", c.conf, "rm", f"rbd/{name}"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{ROUNDS} rounds, {writes_total} writes announced, "
                              f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
