#!/usr/bin/env python3
"""reconnect-delay: the nbd client when its server goes away and comes back.

qemu-io (QEMU's, then strata's under the same name) opens an export served by qemu-nbd
or strata-nbd with a reconnect-delay, reads, sleeps (qemu-io's `sleep` command) while the
test stops the server and starts it again, then reads and writes again. Cases: the server
is back within the delay (requests succeed), no delay (they fail), back only after the
delay (requests fail meanwhile, succeed once it is back). The outputs of the two clients
must be equal, and after the writes the image must hold what they wrote.
Usage: nbd_reconnect_test.py STRATA_IO STRATA_NBD
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_harness as h  # noqa: E402

STRATA_IO, STRATA_NBD = (os.path.abspath(p) for p in sys.argv[1:3])

CASES = [
    # name, reconnect-delay, seconds the server stays down, qemu-io commands
    ("back-in-time", 5, 0.3,
     ["read -P 0x5a 0 64k", "sleep 1500", "read -P 0x5a 0 64k", "write -P 0x33 64k 64k",
      "read -P 0x33 64k 64k"]),
    ("no-delay", 0, 0.3,
     ["read -P 0x5a 0 64k", "sleep 1500", "read -P 0x5a 0 64k"]),
    ("back-too-late", 1, 3.0,
     ["read -P 0x5a 0 64k", "sleep 2000", "read -P 0x5a 0 64k", "sleep 3000",
      "read -P 0x5a 0 64k"]),
]


def run_case(work, server_prog, client, delay, down, commands):
    img = os.path.join(work, "disk.raw")
    subprocess.run(["qemu-img", "create", "-f", "raw", img, "4M"], check=True,
                   capture_output=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", img], check=True,
                   capture_output=True)
    sock = os.path.join(work, "s.sock")
    server_argv = [server_prog, "-t", "-f", "raw", "-k", sock, img]
    opts = f"driver=nbd,server.type=unix,server.path={sock},reconnect-delay={delay}"
    argv = [client, "--image-opts"] + sum((["-c", c] for c in commands), []) + [opts]
    proc = None
    with h.server(server_argv, socket_path=sock) as first:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(0.7)  # the first read is done; the client sleeps
        h.stop(first)
    if os.path.exists(sock):
        os.remove(sock)
    time.sleep(down)
    with h.server(server_argv, socket_path=sock):
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\nTIMEOUT"
    with open(img, "rb") as f:
        data = f.read(128 << 10)
    return proc.returncode, h.mask_timing(out), err, data


def main():
    failures = []
    checks = 0
    work = tempfile.mkdtemp(prefix="nbd-rc.", dir="/tmp")
    bindir = h.strata_bindir(work, **{"qemu-io": STRATA_IO})
    try:
        for server_name, server_prog in (("qemu-nbd", "qemu-nbd"), ("strata-nbd", STRATA_NBD)):
            for name, delay, down, commands in CASES:
                results = {}
                for side, client in (("qemu", shutil.which("qemu-io")),
                                     ("strata", os.path.join(bindir, "qemu-io"))):
                    d = os.path.join(work, f"{server_name}-{name}-{side}")
                    os.makedirs(d)
                    results[side] = run_case(d, server_prog, client, delay, down, commands)
                checks += 1
                if results["qemu"] != results["strata"]:
                    q, s = results["qemu"], results["strata"]
                    failures.append(f"{server_name}/{name}:\n--- QEMU rc={q[0]}\n{q[1]}{q[2]}"
                                    f"\n--- strata rc={s[0]}\n{s[1]}{s[2]}"
                                    f"\n data equal: {q[3] == s[3]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
