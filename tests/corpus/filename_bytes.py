#!/usr/bin/env python3
"""File names as bytes, differential: generated names that are not UTF-8 (stray bytes,
overlong forms, encoded surrogates, noncharacters, sequences cut short, control
characters, quotes), each used by QEMU's tools and by strata's the same way, output and
exit status compared byte for byte.

For each name (drawn from a seeded generator over the pieces below) QEMU makes a qcow2
image under it with one pattern written; then both tools run:
  info, info --output=json (QEMU escapes every string it prints: \\uXXXX, \\uFFFD),
  check, map --output=json, and qemu-io `read -P` on it;
and strata-img creates a second image under the name, which qemu-img check must pass.
The names reach the tools as plain arguments and inside json:{...} (as raw bytes).

`--names N --seed S` choose the corpus; exits 1 on any disagreement.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

PIECES = [b"a", b"\x01", b"\x1f", b"\x7f", b"\x80", b"\xbf", b"\xc0\x80", b"\xc0\xaf",
          b"\xc3", b"\xc3\xa9", b"\xe2\x82", b"\xe2\x82\xac", b"\xed\xa0\x80",
          b"\xed\x9f\xbf", b"\xef\xbf\xbf", b"\xef\xbf\xbe", b"\xef\xb7\x90",
          b"\xf0\x9f\x98\x80", b"\xf0\x9f\xbf\xbf", b"\xf4\x90\x80\x80",
          b"\xf4\x8f\xb8\x80", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
          b"\xfe", b"\xff", b"\\", b"\t", b"\n", b" ", b"\xf0\x80\x80\x80",
          b"\xe0\x80\x80", b"\xf7\xbf\xbf\xbf"]


def run(argv):
    r = subprocess.run(argv, capture_output=True)
    return r.returncode, r.stdout, r.stderr


def tool_name(out, name):
    """Masks the program name in messages."""
    return out.replace(name.encode(), b"TOOL")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--names", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.strata_img = os.path.abspath(args.strata_img)
    args.strata_io = os.path.abspath(args.strata_io)
    rng = random.Random(args.seed)
    names = [rng.choice(PIECES) + b"".join(rng.choice(PIECES)
                                          for _ in range(rng.randint(0, 4)))
             for _ in range(args.names)]
    work = tempfile.mkdtemp(prefix="strata-names-")
    compared = agreed = 0
    failures = []
    try:
        os.chdir(work)
        for i, piece in enumerate(names):
            name = b"n%d_" % i + piece
            run(["qemu-img", "create", "-q", "-f", "qcow2", name, "1M"])
            run(["qemu-io", "-c", "write -P 0x5c 0 4k", name])
            json_name = b'json:{"driver":"qcow2","file":{"driver":"file","filename":"' + \
                name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\t", b"\\t") + b'"}}'
            cases = [
                ("info", ["info", name]),
                ("info json", ["info", "--output=json", name]),
                ("info json:", ["info", "--output=json", json_name]),
                ("check", ["check", name]),
                ("map", ["map", "--output=json", name]),
            ]
            for label, argv in cases:
                q = run(["qemu-img"] + argv)
                s = run([args.strata_img] + argv)
                compared += 1
                if (q[0], q[1], tool_name(q[2], "qemu-img")) == \
                        (s[0], s[1], tool_name(s[2], "strata-img")):
                    agreed += 1
                else:
                    failures.append((label, name, q, s))
            q = run(["qemu-io", "-c", "read -P 0x5c 0 4k", name])
            s = run([args.strata_io, "-c", "read -P 0x5c 0 4k", name])
            compared += 1
            # Timings differ; the first line and the status must not.
            if (q[0], q[1].split(b"\n")[0]) == (s[0], s[1].split(b"\n")[0]):
                agreed += 1
            else:
                failures.append(("qemu-io read", name, q, s))
            os.unlink(name)
            # strata creates under the name; QEMU must find a sound image there.
            compared += 1
            c = run([args.strata_img, "create", "-q", "-f", "qcow2", name, "1M"])
            chk = run(["qemu-img", "check", "-q", name])
            if c[0] == 0 and chk[0] == 0:
                agreed += 1
            else:
                failures.append(("strata create", name, c, chk))
            if os.path.exists(name):
                os.unlink(name)
    finally:
        os.chdir("/")
        shutil.rmtree(work, ignore_errors=True)
    for label, name, q, s in failures[:20]:
        print(f"DIFFERS {label} {name!r}\n  qemu:   {q!r}\n  strata: {s!r}")
    print(f"file names as bytes: {agreed}/{compared} agree ({len(names)} names, seed "
          f"{args.seed})")
    return 0 if agreed == compared else 1


if __name__ == "__main__":
    sys.exit(main())
