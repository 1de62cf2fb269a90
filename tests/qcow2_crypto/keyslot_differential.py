#!/usr/bin/env python3
"""LUKS key-slot management (qemu-img amend with state, new-secret, old-secret, keyslot,
iter-time), differential: generated sequences of amend operations, valid and invalid,
applied by qemu-img and by strata-img to copies of one volume made by QEMU (qcow2 with
encrypt.format=luks, and the luks format), each tool on its own copy.

Checks, after every operation:
  amend    both tools print the same thing and exit alike;
  slots    both images have the same slots active (info --output=json);
and at the end of each sequence:
  unlock   for every passphrase in play, QEMU opens strata's image exactly when it opens
           its own (and strata opens QEMU's the same way), and the data reads back equal.

`--sequences N --seed S` choose the corpus. Exits 1 on any failure.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

SECRETS = {"s0": "first pass", "s1": "second", "s2": "third one", "s3": "fourth"}
OBJECTS = [arg for sid, data in SECRETS.items()
           for arg in ("--object", "secret,id=%s,data=%s" % (sid, data))]


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    return p.returncode, p.stdout.decode(errors="replace")


def image_opts(fmt, path, secret):
    if fmt == "qcow2":
        return "driver=qcow2,file.filename=%s,encrypt.key-secret=%s" % (path, secret)
    return "driver=luks,file.filename=%s,key-secret=%s" % (path, secret)


def gen_op(rng, prefix):
    """One amend option string, valid or not."""
    r = rng.random()
    opts = []
    if r < 0.45:
        opts.append("state=active")
        if rng.random() < 0.9:
            opts.append("new-secret=" + rng.choice(list(SECRETS) + ["s1", "s2", "nosuch"]))
        if rng.random() < 0.3:
            opts.append("keyslot=%d" % rng.choice([0, 1, 2, 3, 7, 8, -1]))
        if rng.random() < 0.05:
            opts.append("old-secret=s0")
    elif r < 0.9:
        opts.append("state=inactive")
        if rng.random() < 0.6:
            opts.append("keyslot=%d" % rng.choice([0, 1, 2, 3, 5, 9]))
        if rng.random() < 0.5:
            opts.append("old-secret=" + rng.choice(list(SECRETS)))
        if rng.random() < 0.05:
            opts.append("new-secret=s1")
    else:
        opts.append(rng.choice(["state=bogus", "new-secret=s1", "keyslot=1"]))
    if opts[0] == "state=active" or rng.random() < 0.1:
        opts.append("iter-time=10")
    return ",".join(prefix + o for o in opts)


def active_slots(path, cwd):
    rc, out = run(["qemu-img", "info", "--output=json", path], cwd)
    if rc != 0:
        return out
    data = json.loads(out)["format-specific"]["data"]
    slots = data["encrypt"]["slots"] if "encrypt" in data else data["slots"]
    return [s["active"] for s in slots]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--sequences", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    simg_tool = os.path.abspath(args.strata_img)
    sio_tool = os.path.abspath(args.strata_io)
    rng = random.Random(args.seed)
    failures, checks = [], 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    for n in range(args.sequences):
        fmt = "qcow2" if n % 2 == 0 else "luks"
        prefix = "encrypt." if fmt == "qcow2" else ""
        ops = [gen_op(rng, prefix) for _ in range(rng.randint(3, 9))]
        with tempfile.TemporaryDirectory(prefix="keyslots.") as work:
            create = ["qemu-img", "create", "-q", "-f", fmt] + OBJECTS + [
                "-o", "%skey-secret=s0,%siter-time=10" % (prefix, prefix)
                + (",encrypt.format=luks" if fmt == "qcow2" else ""), "q.img", "1M"]
            for _ in range(30):  # QEMU's "Unable to get accurate CPU usage", retried
                rc, out = run(create, work)
                if rc == 0:
                    break
            if rc != 0:
                check(False, "sequence %d: qemu-img create failed: %s" % (n, out))
                continue
            run(["qemu-io", *OBJECTS, "--image-opts", "-c", "write -P 0x5a 0 64k",
                 image_opts(fmt, "q.img", "s0")], work)
            shutil.copy(os.path.join(work, "q.img"), os.path.join(work, "s.img"))
            # Each tool opens its copy with a passphrase that still unlocks it.
            key = {"q": "s0", "s": "s0"}
            for op in ops:
                outs = {}
                for side, tool in (("q", "qemu-img"), ("s", simg_tool)):
                    rc, out = run([tool, "amend", *OBJECTS, "--image-opts", "-o", op,
                                   image_opts(fmt, side + ".img", key[side])], work)
                    outs[side] = (rc, out.replace("strata-img:", "qemu-img:")
                                  .replace("s.img", "X.img").replace("q.img", "X.img"))
                check(outs["q"] == outs["s"], "sequence %d (%s) op %s: qemu-img %r, strata-img %r"
                      % (n, fmt, op, outs["q"], outs["s"]))
                qa, sa = active_slots("q.img", work), active_slots("s.img", work)
                check(qa == sa, "sequence %d op %s: active slots %s vs %s" % (n, op, qa, sa))
                # Keep a passphrase that opens each copy.
                for side in ("q", "s"):
                    for sid in SECRETS:
                        rc, _ = run(["qemu-io", *OBJECTS, "--image-opts", "-c", "read 0 512",
                                     image_opts(fmt, side + ".img", sid)], work)
                        if rc == 0:
                            key[side] = sid
                            break
            for sid in SECRETS:
                opened = {}
                for reader, tool in (("qemu", "qemu-io"), ("strata", sio_tool)):
                    for side in ("q", "s"):
                        rc, out = run([tool, *OBJECTS, "--image-opts", "-c",
                                       "read -P 0x5a 0 64k", image_opts(fmt, side + ".img", sid)],
                                      work)
                        opened[(reader, side)] = rc == 0 and "verification failed" not in out
                check(len(set(opened.values())) == 1,
                      "sequence %d (%s) %s: opened %s after %s" % (n, fmt, sid, opened, ops))
    for f in failures:
        print("FAIL", f)
    print("key slots: %d sequences (seed %d), %d checks, %d failed" %
          (args.sequences, args.seed, checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
