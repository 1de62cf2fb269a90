#!/usr/bin/env python3
"""Corner cases through libnbd (nbd_nbdsh_corners.py): qemu-nbd and strata-nbd must answer
alike. The image has data, a hole and a zeroed run; each server serves its own copy.
Usage: nbd_nbdsh_test.py STRATA_NBD
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_harness as h  # noqa: E402

STRATA_NBD = os.path.abspath(sys.argv[1])
CORNERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nbd_nbdsh_corners.py")
# libnbd's Python bindings are Debian's (python3-libnbd), for Debian's interpreter.
PYTHON = "/usr/bin/python3"


def main():
    work = tempfile.mkdtemp(prefix="nbdsh.", dir="/tmp")
    outputs = {}
    try:
        for kind, prog in (("qemu", "qemu-nbd"), ("strata", STRATA_NBD)):
            img = os.path.join(work, f"{kind}.raw")
            subprocess.run(["qemu-img", "create", "-f", "raw", img, "8M"], check=True,
                           capture_output=True)
            subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x11 0 2M",
                            "-c", "write -P 0x22 5M 1M", "-c", "write -z 5M 64k", img],
                           check=True, capture_output=True)
            sock = os.path.join(work, f"{kind}.sock")
            with h.server([prog, "-t", "-f", "raw", "-k", sock, img], socket_path=sock):
                code, out, err = h.run([PYTHON, CORNERS, h.unix_url(sock)], timeout=60)
            outputs[kind] = (code, out, err)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    q, s = outputs["qemu"], outputs["strata"]
    failures = []
    if q[0] != 0 or s[0] != 0:
        failures.append(f"the script failed: qemu {q[0]} {q[2]} / strata {s[0]} {s[2]}")
    q_lines, s_lines = q[1].splitlines(), s[1].splitlines()
    for a, b in zip(q_lines, s_lines):
        if a != b:
            failures.append(f"qemu-nbd: {a}\n      strata-nbd: {b}")
    if len(q_lines) != len(s_lines):
        failures.append(f"{len(q_lines)} lines from qemu-nbd, {len(s_lines)} from strata-nbd")
    if not q_lines:
        failures.append("no output")
    return h.report(failures, f"{len(q_lines)} corner cases, {len(failures)} differ")


if __name__ == "__main__":
    sys.exit(main())
