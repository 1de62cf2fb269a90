#!/usr/bin/env python3
"""qcow2 features, differential: generated write sequences applied by qemu-io and by
strata-io to the same image, then judged by QEMU and strata both ways. `--feature` picks
the image kind: extended_l2 (subclusters), data_file (an external data file, raw or not)
or data_file_extended_l2 (both).

Every case is drawn from a seeded generator, not picked: a cluster size (16 KiB to 2 MiB),
an image size that is rarely a multiple of anything, with or without a backing file (which
QEMU fills with a pattern and leaves holes in), and a sequence of qemu-io commands: writes
of patterns at offsets and lengths aligned to nothing, to sectors, to subclusters or to
clusters, write -z with and without -u, discard, compressed writes of whole clusters, and
an internal snapshot taken between two halves of the sequence (so later writes meet shared
clusters). Each case checks:

  create   strata-img create and qemu-img create make byte-identical images (and data
           files);
  write    strata-io and qemu-io print the same thing (timings masked);
  check    qemu-img check finds strata's image clean;
  content  qemu-img compare: strata's image reads like QEMU's (data files: both converted
           to raw by qemu-img, compared, and the data files themselves byte-identical);
  map      qemu-img map --output=json agrees on both images (host offsets masked; they
           may differ when the allocation order does; not with a data file, where they are
           the guest offsets);
  read     strata reads QEMU's image: strata-img map and check print what qemu-img prints,
           and strata-img convert -O raw gives QEMU's bytes;
  convert  strata-img convert -O qcow2 -o extended_l2=on of QEMU's image passes qemu-img
           check and compares equal to it;
  snapshot after snapshot -a s1 by each tool, the images still read alike and strata's
           passes qemu-img check.

`--cases N --seed S` choose the corpus (CI runs a slice, see BUILD.bazel). Prints one line
per failed check and a table of checks per kind; exits 1 on any failure.
"""
import argparse
import collections
import difflib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 120
KiB = 1024
MiB = 1024 * KiB


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=TIMEOUT)
    return p.returncode, p.stdout.decode(errors="replace")


def mask_timing(text):
    return re.sub(r"^(wrote|read|discard) .*\n.*ops/sec\)\n", lambda m: m.group(0).split("\n")[0]
                  + "\n", text, flags=re.M)


def diff(a, b):
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=1))


def mask_offsets(map_json):
    entries = json.loads(map_json)
    for e in entries:
        e.pop("offset", None)
    # Masking can make neighbours equal: merge them as QEMU would have.
    merged = []
    for e in entries:
        if merged and all(merged[-1][k] == e[k] for k in e if k not in ("start", "length")) \
                and merged[-1]["start"] + merged[-1]["length"] == e["start"]:
            merged[-1]["length"] += e["length"]
        else:
            merged.append(dict(e))
    return merged


def gen_case(rng, feature):
    cluster = rng.choice([16 * KiB, 32 * KiB, 64 * KiB, 64 * KiB, 128 * KiB, 512 * KiB, 2 * MiB])
    sub = cluster // 32
    clusters = rng.randint(3, 40 if cluster <= 128 * KiB else 6)
    size = clusters * cluster - rng.choice([0, 0, 512, sub, sub + 512, cluster // 3 // 512 * 512])
    backing = rng.random() < 0.6
    raw = feature.startswith("data_file") and rng.random() < 0.4
    if raw:
        backing = False  # QEMU refuses a backing file with data_file_raw

    def point():
        kind = rng.random()
        if kind < 0.3:
            return rng.randrange(0, size // sub) * sub
        if kind < 0.5:
            return rng.randrange(0, size // cluster) * cluster
        if kind < 0.7:
            return rng.randrange(0, size // 512) * 512
        return rng.randrange(0, size)

    def length(at):
        room = size - at
        kind = rng.random()
        if kind < 0.3:
            n = rng.randint(1, 3) * sub
        elif kind < 0.5:
            n = rng.randint(1, 2 * cluster)
        elif kind < 0.7:
            n = rng.randint(1, 8) * 512
        else:
            n = rng.randint(1, 4 * sub)
        return max(1, min(n, room))

    def ops(count):
        out = []
        for _ in range(count):
            r = rng.random()
            at = point()
            if at >= size:
                continue
            n = length(at)
            if r < 0.5:
                out.append("write -P 0x%02x %d %d" % (rng.randint(1, 255), at, n))
            elif r < 0.62:
                out.append("write -z %d %d" % (at, n))
            elif r < 0.72:
                out.append("write -z -u %d %d" % (at // 512 * 512, max(512, n // 512 * 512)))
            elif r < 0.82:
                out.append("discard %d %d" % (at, n))
            elif r < 0.9:
                c = rng.randrange(0, size // cluster)
                out.append("write -c -P 0x%02x %d %d" % (rng.randint(1, 255), c * cluster,
                                                          cluster))
            else:
                out.append("aio_write -P 0x%02x %d %d" % (rng.randint(1, 255), at, n))
                out.append("aio_flush")
        return out

    first = ops(rng.randint(3, 12))
    snapshot = rng.random() < 0.35 and not feature.startswith("data_file")
    second = ops(rng.randint(2, 10))
    return dict(feature=feature, cluster=cluster, size=size, backing=backing, raw=raw,
                first=first, snapshot=snapshot, second=second)


def image_options(case, data_file="img.raw"):
    if case["feature"] == "extended_l2":
        return "extended_l2=on,cluster_size=%d" % case["cluster"]
    opts = "data_file=%s,cluster_size=%d" % (data_file, case["cluster"])
    if case["feature"] == "data_file_extended_l2":
        opts += ",extended_l2=on"
    return opts + (",data_file_raw=on" if case["raw"] else "")


class Judge:
    def __init__(self):
        self.counts = collections.Counter()
        self.failures = []

    def check(self, case_id, kind, ok, detail=""):
        self.counts[(kind, ok)] += 1
        if not ok:
            self.failures.append("case %d %s: %s" % (case_id, kind, detail[:6000]))


def run_case(case_id, case, tools, judge, work):
    qdir = os.path.join(work, "q")
    sdir = os.path.join(work, "s")
    for d in (qdir, sdir):
        os.makedirs(d)
    opts = image_options(case)
    data = case["feature"].startswith("data_file")
    # A data file's name is relative to the working directory (as QEMU opens it): every
    # command runs in its own tool's folder.
    files = ["img.qcow2"] + (["img.raw"] if data else [])
    if case["backing"]:
        for d in (qdir, sdir):
            base = os.path.join(d, "base.qcow2")
            run(["qemu-img", "create", "-q", "-f", "qcow2", base, str(case["size"])], d)
            run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 %d" % (case["size"] // 2),
                 "-c", "write -z %d %d" % (case["size"] // 4, case["size"] // 8), base], d)
    create = ["create", "-q", "-f", "qcow2", "-o", opts]
    if case["backing"]:
        create += ["-b", "base.qcow2", "-F", "qcow2"]
    create += ["img.qcow2", str(case["size"])]
    rq, oq = run(["qemu-img"] + create, qdir)
    rs, os_ = run([tools["img"]] + create, sdir)
    same = rq == rs and oq == os_ and rq == 0 and all(
        open(os.path.join(qdir, f), "rb").read() == open(os.path.join(sdir, f), "rb").read()
        for f in files)
    judge.check(case_id, "create", same, "create differs: %s / %s" % (oq, os_))
    if rq != 0:
        return
    # Both tools start from QEMU's image, so layouts can only differ by what the writes do.
    for f in files:
        shutil.copy(os.path.join(qdir, f), os.path.join(sdir, f))

    def apply(cmds):
        args = []
        for c in cmds:
            args += ["-c", c]
        rq, oq = run(["qemu-io", "-f", "qcow2"] + args + ["img.qcow2"], qdir)
        rs, os_ = run([tools["io"], "-f", "qcow2"] + args + ["img.qcow2"], sdir)
        judge.check(case_id, "write", rq == rs and mask_timing(oq) == mask_timing(os_),
                    "%s\n--- qemu-io (%d):\n%s--- strata-io (%d):\n%s" %
                    (cmds, rq, mask_timing(oq), rs, mask_timing(os_)))

    apply(case["first"])
    if case["snapshot"]:
        run(["qemu-img", "snapshot", "-c", "s1", "img.qcow2"], qdir)
        run([tools["img"], "snapshot", "-c", "s1", "img.qcow2"], sdir)
    apply(case["second"])
    simg = os.path.join(sdir, "img.qcow2")
    qimg = os.path.join(qdir, "img.qcow2")
    rc, out = run(["qemu-img", "check", simg], sdir)
    judge.check(case_id, "check", rc == 0, out)
    if data:
        rq_conv, _ = run(["qemu-img", "convert", "-O", "raw", "img.qcow2", "content.raw"], qdir)
        rs_conv, out = run(["qemu-img", "convert", "-O", "raw", "img.qcow2", "content.raw"], sdir)
        same = rq_conv == 0 and rs_conv == 0 and all(
            open(os.path.join(qdir, f), "rb").read() == open(os.path.join(sdir, f), "rb").read()
            for f in ("content.raw", "img.raw"))
        judge.check(case_id, "content", same, "%s %s" % (case, out))
    else:
        rc, out = run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", qimg, simg], sdir)
        judge.check(case_id, "content", rc == 0, "%s %s" % (case, out))
    _, mq = run(["qemu-img", "map", "--output=json", qimg], qdir)
    _, ms = run(["qemu-img", "map", "--output=json", simg], sdir)
    same_map = mq == ms if data else mask_offsets(mq) == mask_offsets(ms)
    judge.check(case_id, "map", same_map, "%s\n%s" % (
        case, diff(json.dumps(mask_offsets(mq), indent=0), json.dumps(mask_offsets(ms), indent=0))))
    # strata reading QEMU's image.
    _, smq = run([tools["img"], "map", "--output=json", qimg], qdir)
    rc_q, cq = run(["qemu-img", "check", qimg], qdir)
    rc_s, cs = run([tools["img"], "check", qimg], qdir)
    raw_q = os.path.join(work, "q.raw")
    raw_s = os.path.join(work, "s.raw")
    run(["qemu-img", "convert", "-O", "raw", qimg, raw_q], qdir)
    rc_conv, conv = run([tools["img"], "convert", "-O", "raw", qimg, raw_s], qdir)
    same_raw = rc_conv == 0 and open(raw_q, "rb").read() == open(raw_s, "rb").read()
    judge.check(case_id, "read", smq == mq and cq == cs and rc_q == rc_s and same_raw,
                "%s\nraw same: %s %s\nmap (qemu-img, strata-img):\n%s\n"
                "check (qemu-img %d, strata-img %d):\n%s" %
                (case, same_raw, conv, diff(mq, smq), rc_q, rc_s, diff(cq, cs)))
    # strata writing a new image of the kind from QEMU's (convert), QEMU judging it.
    out = os.path.join(qdir, "converted.qcow2")
    rc, conv = run([tools["img"], "convert", "-O", "qcow2", "-o",
                    image_options(case, "converted.raw"), qimg, out], qdir)
    rc_check, check = run(["qemu-img", "check", out], qdir) if rc == 0 else (rc, conv)
    rc_cmp, cmp_out = run(["qemu-img", "compare", qimg, out], qdir) if rc == 0 else (rc, conv)
    judge.check(case_id, "convert", rc == 0 and rc_check == 0 and rc_cmp == 0,
                "%s\n%s\n%s\n%s" % (case, conv, check, cmp_out))
    # Going back to the snapshot: both tools, then both images read alike.
    if case["snapshot"]:
        run(["qemu-img", "snapshot", "-a", "s1", "img.qcow2"], qdir)
        rc_a, out_a = run([tools["img"], "snapshot", "-a", "s1", "img.qcow2"], sdir)
        rc_c, out_c = run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", qimg, simg], sdir)
        rc_k, out_k = run(["qemu-img", "check", simg], sdir)
        judge.check(case_id, "snapshot", rc_a == 0 and rc_c == 0 and rc_k == 0,
                    "%s\n%s%s%s" % (case, out_a, out_c, out_k))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", type=int, default=-1, help="run just this case (debugging)")
    ap.add_argument("--feature", choices=["extended_l2", "data_file", "data_file_extended_l2"],
                    default="extended_l2")
    args = ap.parse_args()
    tools = {"img": os.path.abspath(args.strata_img), "io": os.path.abspath(args.strata_io)}
    rng = random.Random(args.seed)
    judge = Judge()
    for i in range(args.cases):
        case = gen_case(rng, args.feature)
        if args.only >= 0 and i != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="subclusters.") as work:
            run_case(i, case, tools, judge, work)
    for f in judge.failures:
        print("FAIL", f)
    kinds = sorted({k for k, _ in judge.counts})
    print("%-8s %8s %8s" % ("check", "agreed", "failed"))
    for k in kinds:
        print("%-8s %8d %8d" % (k, judge.counts[(k, True)], judge.counts[(k, False)]))
    total_failed = sum(v for (k, ok), v in judge.counts.items() if not ok)
    print("%s: %d cases (seed %d), %d checks, %d failed" %
          (args.feature, args.cases, args.seed, sum(judge.counts.values()), total_failed))
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
