#!/usr/bin/env python3
"""Persistent dirty bitmaps, differential: generated sequences of `qemu-img bitmap`
operations, guest writes, resizes, crashes and snapshots applied to one image by QEMU's
tools and to its twin by strata's, compared after every step.

Every case is drawn from a seeded generator: a cluster size (4 KiB to 2 MiB, sometimes
with extended L2 entries), an image size aligned to nothing in particular, and 6 to 14
steps, each one of:
  bitmap    a `bitmap` command line: one to three operations (--add with or without -g
            and --disable, --remove, --clear, --enable, --disable, --merge from the same
            image or, with -b, from a source image), names from a small pool (so names
            exist or not), bad granularities, an empty name now and then;
  io        qemu-io / strata-io writes, write -z (with -u), discards and compressed writes
            at generated offsets and lengths;
  crash     the same, then `abort`: the bitmaps stay flagged in use, inconsistent from
            then on (QEMU refuses to use them; so must strata);
  resize    grow, or shrink with --shrink;
  snapshot  an internal snapshot;
  repair    check -r all; once the case has a snapshot, a read-only check (QEMU 7.2's
            repair of an image with bitmaps drops its internal snapshots: a QEMU bug
            strata does not share).
After each step it compares: the command's output and exit status (timings and QEMU's
random node names masked); `info --output=json` (disk size masked); the bitmaps as the
file holds them (names, flags, granularity and every dirty bit, read by this script from
the format, not by either tool); and `qemu-img check` of strata's image. At the end strata
reads QEMU's image: `info` and `check` print what qemu-img prints.

`--cases N --seed S` choose the corpus (CI runs a slice, see BUILD.bazel). Prints one line
per failed check and a table of checks per kind; exits 1 on any failure.
"""
import argparse
import collections
import difflib
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

TIMEOUT = 120
KiB = 1024
MiB = 1024 * KiB
NAMES = ["a", "b", "c"]


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=TIMEOUT)
    return p.returncode, p.stdout.decode(errors="replace")


def normalize(text, tool_names):
    text = re.sub(r"^((?:wrote|read|discard) .*\n).*ops/sec\)\n", r"\1", text, flags=re.M)
    text = re.sub(r"#block\d+", "#block", text)
    for name in tool_names:
        text = text.replace(name + ":", "qemu-img:")
    return text


def mask_info(text):
    text = re.sub(r'"actual-size": \d+', '"actual-size": N', text)
    text = re.sub(r'"date-(n?sec)": \d+', r'"date-\1": N', text)
    return re.sub(r"disk size: .*", "disk size: N", text)


def diff(a, b):
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=1))


def read_bitmaps(path):
    """The bitmaps a qcow2 file holds, read from the format: a list of (name, flags,
    granularity, dirty granule runs), or a string saying why it could not be read."""
    with open(path, "rb") as f:
        d = f.read()
    if len(d) < 104:
        return "short file"
    cluster_bits = struct.unpack(">I", d[20:24])[0]
    cs = 1 << cluster_bits
    autoclear = struct.unpack(">Q", d[88:96])[0] if struct.unpack(">I", d[4:8])[0] >= 3 else 0
    header_len = struct.unpack(">I", d[100:104])[0] if autoclear is not None else 72
    off = header_len
    out = []
    while off + 8 <= cs:
        magic, length = struct.unpack(">II", d[off:off + 8])
        if magic == 0:
            break
        if magic == 0x23852875:
            nb, _, _, dir_off = struct.unpack(">IIQQ", d[off + 8:off + 32])
            out.append(("autoclear", autoclear & 1))
            p = dir_off
            for _ in range(nb):
                table, tsize, flags, _, gbits, nsize, esize = struct.unpack(
                    ">QIIBBHI", d[p:p + 24])
                name = d[p + 24 + esize:p + 24 + esize + nsize].decode(errors="replace")
                runs = []
                if not flags & 1:  # an in-use bitmap's data means nothing
                    for k in range(tsize):
                        e = struct.unpack(">Q", d[table + 8 * k:table + 8 * k + 8])[0]
                        o = e & 0x00fffffffffffe00
                        chunk = d[o:o + cs] if o else None
                        if chunk is None:
                            if e & 1:
                                runs.append([k * cs * 8, (k + 1) * cs * 8])
                            continue
                        chunk = chunk.ljust(cs, b"\0")
                        for bi, byte in enumerate(chunk):
                            if not byte:
                                continue
                            for j in range(8):
                                if byte >> j & 1:
                                    g = k * cs * 8 + bi * 8 + j
                                    if runs and runs[-1][1] == g:
                                        runs[-1][1] = g + 1
                                    else:
                                        runs.append([g, g + 1])
                out.append((name, flags, 1 << gbits, tsize, runs))
                p += (24 + esize + nsize + 7) & ~7
        off += 8 + ((length + 7) & ~7)
    return out


class Case:
    def __init__(self, rng, index):
        self.rng = rng
        self.index = index
        self.cluster = rng.choice([4 * KiB, 16 * KiB, 64 * KiB, 64 * KiB, 512 * KiB, 2 * MiB])
        self.extended = self.cluster >= 16 * KiB and rng.random() < 0.25
        self.size = rng.choice([1, 3, 8, 64, 130]) * MiB + rng.choice([0, 0, 512, 4096, 12345])
        self.snapshotted = False
        self.steps = [self.step() for _ in range(rng.randint(6, 14))]

    def offset_len(self):
        rng = self.rng
        size = self.size
        unit = rng.choice([1, 512, 4096, self.cluster])
        off = rng.randrange(0, max(1, size // unit)) * unit
        length = max(unit, rng.randrange(1, 8) * unit * rng.choice([1, 1, 3]))
        return off, max(1, min(length, size - off)) if off < size else 1

    def io_commands(self):
        rng = self.rng
        cmds = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["write", "write", "zero", "discard", "compress"])
            off, length = self.offset_len()
            if kind == "write":
                cmds.append(f"write -P {rng.randrange(1, 255)} {off} {length}")
            elif kind == "zero":
                cmds.append(f"write -z {'-u ' if rng.random() < 0.5 else ''}{off} {length}")
            elif kind == "discard":
                cmds.append(f"discard {off} {length}")
            else:
                c = rng.randrange(0, max(1, self.size // self.cluster)) * self.cluster
                if c + self.cluster <= self.size:
                    cmds.append(f"write -c -P {rng.randrange(1, 255)} {c} {self.cluster}")
        return cmds

    def bitmap_args(self):
        rng = self.rng
        args = []
        name = rng.choice(NAMES) if rng.random() > 0.03 else ""
        source = None
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            op = rng.choice(["add", "add", "add", "remove", "clear", "enable", "disable",
                             "merge", "merge"])
            if op == "merge":
                args += ["--merge", rng.choice(NAMES + ["src"])]
                if rng.random() < 0.4:
                    source = "source.qcow2"
            else:
                args.append("--" + op)
        if "--add" in args and rng.random() < 0.5:
            args += ["-g", rng.choice(["512", "4k", "64k", "1M", "1000", "0", "128K", "2M"])]
        if source:
            args += ["-b", source]
            if rng.random() < 0.5:
                args += ["-F", "qcow2"]
        return args + ["IMG", name]

    def step(self):
        rng = self.rng
        kind = rng.choices(["bitmap", "io", "crash", "resize", "snapshot", "repair"],
                           [8, 6, 1, 1, 1, 1])[0]
        if kind == "bitmap":
            return ("bitmap", self.bitmap_args())
        if kind in ("io", "crash"):
            return (kind, self.io_commands())
        if kind == "resize":
            if rng.random() < 0.3:
                new = max(MiB, self.size - rng.choice([MiB, 512, 65536]))
                self.size_after = new
                return ("resize", ["--shrink", "IMG", str(new)])
            return ("resize", ["IMG", "+" + str(rng.choice([MiB, 3 * MiB, 512, 70000 // 512 * 512]))])
        if kind == "snapshot":
            self.snapshotted = True
            return ("snapshot", ["-c", "s%d" % rng.randrange(100), "IMG"])
        # QEMU 7.2's check -r all drops every internal snapshot of an image that has
        # persistent bitmaps (its header rewrite forgets them; the snapshot's clusters then
        # leak and are freed): after a snapshot, only a read-only check is compared.
        if self.snapshotted:
            return ("repair", ["IMG"])
        return ("repair", ["-r", "all", "IMG"])


def command(tools, step, image):
    kind, args = step
    img, io = tools
    args = [image if a == "IMG" else a for a in args]
    if kind == "bitmap":
        return [img, "bitmap"] + args
    if kind == "io":
        return [io] + sum((["-c", c] for c in args), []) + [image]
    if kind == "crash":
        return [io] + sum((["-c", c] for c in args + ["abort"]), []) + [image]
    if kind == "resize":
        return [img, "resize"] + args
    if kind == "snapshot":
        return [img, "snapshot"] + args
    return [img, "check"] + args


def run_case(case, qemu, strata, workdir, results):
    d = os.path.join(workdir, "case%d" % case.index)
    os.makedirs(d)
    opts = "cluster_size=%d" % case.cluster + (",extended_l2=on" if case.extended else "")
    # The merge source: made by QEMU, copied to both sides.
    run(["qemu-img", "create", "-q", "-f", "qcow2", "source.qcow2", str(case.size)], d)
    run(["qemu-img", "bitmap", "--add", "-g", "64k", "source.qcow2", "src"], d)
    run(["qemu-io", "-c", "write 0 %d" % min(case.size, 200000), "source.qcow2"], d)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "q.qcow2", str(case.size)], d)
    shutil.copy(os.path.join(d, "q.qcow2"), os.path.join(d, "s.qcow2"))
    failures = []

    def check(kind, ok, detail):
        results[kind][0 if ok else 1] += 1
        if not ok:
            failures.append("case %d %s: %s" % (case.index, kind, detail))

    names = [os.path.basename(strata[0]), os.path.basename(strata[1])]
    crashed = False
    for n, step in enumerate(case.steps):
        rq, oq = run(command(qemu, step, "q.qcow2"), d)
        rs, os_ = run(command(strata, step, "s.qcow2"), d)
        oq = normalize(oq.replace("q.qcow2", "IMG"), ["qemu-io"])
        os_ = normalize(os_.replace("s.qcow2", "IMG"), names + ["qemu-io"])
        # qemu-io's abort kills it: only the status class matters there. After a crash,
        # strata's image may leak clusters QEMU's does not (counted ahead of use), so the
        # check/repair listing is compared by its status only.
        if step[0] == "crash" or (crashed and step[0] == "repair"):
            rq, rs = rq not in (0, 3), rs not in (0, 3)  # 3: leaks, harmless
            oq = os_ = ""
        check("output", (rq, oq) == (rs, os_),
              "step %d %s: rc %s/%s\n%s" % (n, step, rq, rs, diff(oq, os_)))
        iq = mask_info(run(["qemu-img", "info", "--output=json", "q.qcow2"], d)[1])
        is_ = mask_info(run(["qemu-img", "info", "--output=json", "s.qcow2"], d)[1])
        iq, is_ = iq.replace("q.qcow2", "IMG"), is_.replace("s.qcow2", "IMG")
        check("info", iq == is_, "step %d %s:\n%s" % (n, step, diff(iq, is_)))
        bq, bs = read_bitmaps(os.path.join(d, "q.qcow2")), read_bitmaps(os.path.join(d, "s.qcow2"))
        check("bitmaps", bq == bs, "step %d %s:\n qemu   %s\n strata %s" % (n, step, bq, bs))
        # Clean; after a crash leaks are allowed (strata counts clusters ahead of use, a
        # crash leaks them; QEMU's check calls that harmless); never a corruption.
        crashed = crashed or step[0] == "crash"
        rc, out = run(["qemu-img", "check", "s.qcow2"], d)
        check("check", rc == 0 or (rc == 3 and crashed),
              "step %d %s: qemu-img check of strata's image:\n%s" % (n, step, out))
    # strata reads QEMU's image as QEMU does.
    for sub in (["info"], ["info", "--output=json"], ["check"]):
        a = run(["qemu-img"] + sub + ["q.qcow2"], d)
        b = run([strata[0]] + sub + ["q.qcow2"], d)
        b = (b[0], normalize(b[1], names))
        check("read", a == b, "%s of QEMU's image:\n%s" % (sub, diff(a[1], b[1])))
    if not failures:
        shutil.rmtree(d)
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", type=int, help="run only this case (printing its steps)")
    args = ap.parse_args()
    strata = (os.path.abspath(args.strata_img), os.path.abspath(args.strata_io))
    qemu = ("qemu-img", "qemu-io")
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="bitmap-corpus-")
    results = collections.defaultdict(lambda: [0, 0])
    failures = []
    try:
        for i in range(args.cases):
            case = Case(rng, i)
            if args.only is not None and i != args.only:
                continue
            if args.only is not None:
                print("cluster %d extended %s size %d" % (case.cluster, case.extended, case.size))
                for n, step in enumerate(case.steps):
                    print("step", n, step)
            failures += run_case(case, qemu, strata, workdir, results)
    finally:
        if not args.keep and not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("%-10s %8s %8s" % ("check", "passed", "failed"))
    for kind, (ok, bad) in sorted(results.items()):
        print("%-10s %8d %8d" % (kind, ok, bad))
    print("cases: %d, seed %d, work dir %s" % (args.cases, args.seed,
                                                workdir if failures else "(removed)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
