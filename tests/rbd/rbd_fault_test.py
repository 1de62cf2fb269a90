#!/usr/bin/env python3
"""Faults under the rbd driver, QEMU's client beside strata's on the same cluster.

- The OSD stops answering mid-write (SIGSTOP, then SIGCONT a few seconds later): requests
  wait and then complete, as QEMU's do; nothing written is lost (read back with patterns).
  (A killed memstore OSD would lose its data with it, so a paused one stands in.)
- A wrong key for the client, a missing keyring, an unknown user: clear errors, equal to
  QEMU's.
Usage: rbd_fault_test.py STRATA_IMG STRATA_IO
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "nbd"))
import ceph_cluster  # noqa: E402
import nbd_harness as h  # noqa: E402  (timing masks, strata bin dir, report)

STRATA_IMG, STRATA_IO = (os.path.abspath(p) for p in sys.argv[1:3])


def main():
    failures = []
    checks = 0
    work = tempfile.mkdtemp(prefix="rbd-fault.", dir="/tmp")
    bindir = h.strata_bindir(work, **{"qemu-img": STRATA_IMG, "qemu-io": STRATA_IO})
    try:
        with ceph_cluster.cluster(parent="/tmp") as c:
            outputs = {}
            for side in ("qemu", "strata"):
                env = dict(os.environ)
                if side == "strata":
                    env["PATH"] = bindir + ":" + env["PATH"]
                name = f"rbd:rbd/paused-{side}:conf={c.conf}"
                subprocess.run(["qemu-img", "create", "-f", "raw", name, "32M"], check=True,
                               capture_output=True)
                proc = subprocess.Popen(
                    ["qemu-io", "-f", "raw", "-c", "write -P 0x61 0 8M", "-c", "sleep 1500",
                     "-c", "write -P 0x62 8M 8M", "-c", "flush", "-c", "read -P 0x61 0 8M",
                     "-c", "read -P 0x62 8M 8M", name],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                time.sleep(1.0)  # inside the sleep: the next write meets a paused OSD
                os.kill(c.osd_pid, signal.SIGSTOP)
                time.sleep(3.0)
                os.kill(c.osd_pid, signal.SIGCONT)
                try:
                    out, err = proc.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                    err += "TIMEOUT"
                outputs[side] = (proc.returncode, h.mask_timing(out), err.replace(c.conf, "CONF"))
                # What it wrote is there, read by QEMU.
                r = subprocess.run(["qemu-io", "-f", "raw", "-r", "-c", "read -P 0x61 0 8M",
                                    "-c", "read -P 0x62 8M 8M", name], capture_output=True,
                                   text=True)
                checks += 1
                if r.returncode != 0 or "failed" in r.stdout:
                    failures.append(f"{side}: data lost after the pause: {r.stdout}{r.stderr}")
            checks += 1
            if outputs["qemu"] != outputs["strata"]:
                failures.append(f"paused OSD: QEMU {outputs['qemu']} / strata {outputs['strata']}")
            # Credentials: a wrong key, no keyring, an unknown user.
            bad_keyring = os.path.join(work, "bad.keyring")
            with open(bad_keyring, "w") as f:
                f.write("[client.admin]\n\tkey = AQBnotarealkeyatallnotarealkeyatall00==\n")
            cases = [
                ("wrong key", f"rbd:rbd/paused-qemu:conf={c.conf}:keyring={bad_keyring}"),
                ("no keyring", f"rbd:rbd/paused-qemu:conf={c.conf}:keyring={work}/none"),
                ("unknown user", f"rbd:rbd/paused-qemu:conf={c.conf}:id=nobody"),
            ]
            for label, name in cases:
                results = {}
                for side in ("qemu", "strata"):
                    env = dict(os.environ)
                    if side == "strata":
                        env["PATH"] = bindir + ":" + env["PATH"]
                    # librados waits up to client_mount_timeout for a refused client.
                    r = subprocess.run(["qemu-img", "info", name + ":client_mount_timeout=5"],
                                       capture_output=True, text=True, env=env, timeout=120)
                    results[side] = (r.returncode, r.stdout,
                                     r.stderr.replace(c.conf, "CONF").replace(work, "WORK"))
                checks += 1
                if results["qemu"] != results["strata"]:
                    failures.append(f"{label}: QEMU {results['qemu']} / strata {results['strata']}")
                if results["strata"][0] == 0:
                    failures.append(f"{label}: strata opened the image")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
