#!/usr/bin/env python3
"""Side-by-side benchmark of encrypted I/O with many requests in flight: qemu-io against
strata-io, in one run, on copies of one image.

An allocated encrypted qcow2 (encrypt.format=luks, AES-256-XTS, 64 KiB clusters) and a
LUKS volume, on tmpfs, each receive N 4 KiB `aio_read`s or `aio_write`s at scattered
places, all submitted before one `aio_flush` (qemu-io runs them as coroutines; strata-io
on its queue's loop, the cipher on the loop). Printed per tool and workload: the time,
the CPU time per request and the largest thread count seen, and the ratios strata/QEMU.
Rounds alternate the order of the tools; medians.

  bench/e2e/crypto_aio_vs_qemu.py [--rounds N] [--strata-io PATH] [--requests N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_vs_qemu import side_by_side  # noqa: E402

SECRET = ["--object", "secret,id=sec0,data=benchpw"]
SIZE = 256 << 20
BLOCK = 4096


def make_images(work):
    """{kind: (path, --image-opts string template)} for the encrypted qcow2 and the volume."""
    qcow2 = os.path.join(work, "enc.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *SECRET, "-o",
                    "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100,"
                    "cluster_size=65536", qcow2, str(SIZE)], check=True)
    luks = os.path.join(work, "vol.luks")
    subprocess.run(["qemu-img", "create", "-q", "-f", "luks", *SECRET, "-o",
                    "key-secret=sec0,iter-time=100", luks, str(SIZE)], check=True)
    images = {"qcow2+luks": (qcow2, "driver=qcow2,encrypt.key-secret=sec0,file.filename={}"),
              "luks": (luks, "driver=luks,key-secret=sec0,file.filename={}")}
    for path, opts in images.values():
        subprocess.run(["qemu-io", *SECRET, "--image-opts", "-c", f"write -P 0x5a 0 {SIZE}",
                        opts.format(path)], check=True, stdout=subprocess.DEVNULL)
    return images


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strata-io", default="bazel-bin/tools/strata-io")
    ap.add_argument("--requests", type=int, default=8192)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata_io)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="crypto_bench.", dir=base)
    try:
        images = make_images(work)
        n = args.requests
        print(f"{n} x 4 KiB requests at scattered places, all in flight, then aio_flush; "
              f"images on {'tmpfs' if base else 'disk'}; {args.rounds} rounds, medians")
        print(f"{'workload':<18} {'tool':<10} {'ms':>8} {'cpu us/req':>11} {'threads':>8}")
        for kind, (image, opts) in images.items():
            for verb in ("aio_read", "aio_write"):
                script = os.path.join(work, "script.txt")
                with open(script, "w") as f:
                    for i in range(n):
                        offset = (i * 7919 % (SIZE // BLOCK)) * BLOCK
                        pattern = "-P 0x11 " if verb == "aio_write" else ""
                        f.write(f"{verb} -q {pattern}{offset} {BLOCK}\n")
                    f.write("aio_flush\n")
                side_by_side(f"{kind} {verb[4:]}", n, args.rounds, image,
                             os.path.join(work, "run.img"), script,
                             lambda binary, copy: [binary, *SECRET, "--image-opts",
                                                   opts.format(copy)], strata)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
