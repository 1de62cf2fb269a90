#!/usr/bin/env python3
"""Encrypted qcow2 (encrypt.format=luks and the legacy aes), differential: generated
images and write sequences, applied by QEMU's tools and by strata's, judged both ways.

Every case is drawn from a seeded generator: the format (luks, or aes now and then), a
LUKS cipher setup (AES, Serpent, Twofish or CAST5; XTS, CBC, CTR or ECB; plain, plain64
or essiv IVs; each hash QEMU offers),
a cluster size from 512 bytes to 2 MiB, compat 0.10 or 1.1, extended L2 entries, lazy
refcounts, metadata preallocation, a backing file (plain qcow2, filled by QEMU), an
image size that is rarely round, and a sequence of qemu-io commands (pattern writes at
offsets and lengths aligned to nothing, to sectors or to clusters; write -z with and
without -u; discard; compressed writes; aio writes) split by an internal snapshot. Each
case checks:

  create    both tools print the same thing, and make the same image: every byte outside
            the LUKS volume (whose keys and salts are random) is identical;
  write     strata-io and qemu-io print the same thing, starting from copies of QEMU's
            image (so the same key), each on its own copy (timings masked);
  identical after the writes the two files are byte-identical (same allocation, same
            key, same ciphertext: IVs from host offsets, as QEMU's);
  check     qemu-img check (with the passphrase) finds strata's image clean, and
            strata-img check of QEMU's image prints what qemu-img prints;
  content   decrypted by qemu-img convert, both images give the same disk; strata-img
            convert of QEMU's image gives it too;
  map       map --output=json of QEMU's image: strata-img prints what qemu-img prints
            (no host offsets for encrypted data), and the human map's refusal;
  info      info --output=json of QEMU's image: strata-img prints what qemu-img prints;
  convert   strata-img convert of QEMU's image into a new encrypted qcow2 (other setup)
            passes qemu-img check and compares equal to it;
  snapshot  after snapshot -a by each tool, the images still read alike;
  errors    a wrong passphrase, a missing key-secret, a format mismatch: both tools print
            the same error and the file is unchanged.

`--cases N --seed S` choose the corpus (CI runs a slice, see BUILD.bazel). Prints one line
per failed check and a table of checks per kind; exits 1 on any failure.
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "qcow2_features"))
from feature_corpus import Judge, diff, mask_timing, run  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
SECRET = "--object", "secret,id=sec0,data=pass word"
WRONG = "--object", "secret,id=sec0,data=wrong"

LUKS_SETUPS = [
    dict(alg="aes-256", mode="xts", ivgen="plain64", hash="sha256"),
    dict(alg="aes-128", mode="xts", ivgen="plain64", hash="sha1"),
    dict(alg="aes-256", mode="cbc", ivgen="essiv", hash="sha256", ivhash="sha256"),
    dict(alg="aes-192", mode="xts", ivgen="plain64", hash="sha512"),
    dict(alg="aes-128", mode="cbc", ivgen="plain", hash="sha256"),
    dict(alg="aes-128", mode="cbc", ivgen="plain64", hash="sha256"),
    dict(alg="aes-128", mode="ctr", ivgen="plain64", hash="md5"),
    dict(alg="aes-256", mode="ecb", ivgen="plain64", hash="sha384"),
    dict(alg="serpent-256", mode="xts", ivgen="plain64", hash="sha224"),
    dict(alg="twofish-128", mode="cbc", ivgen="essiv", hash="ripemd160", ivhash="md5"),
    dict(alg="twofish-192", mode="xts", ivgen="essiv", hash="sha256", ivhash="sha256"),
    dict(alg="cast5-128", mode="cbc", ivgen="essiv", hash="sha1", ivhash="md5"),
]


def create_options(case, setup=None):
    opts = ["cluster_size=%d" % case["cluster"], "compat=%s" % case["compat"]]
    if case["extended_l2"]:
        opts.append("extended_l2=on")
    if case["lazy"]:
        opts.append("lazy_refcounts=on")
    if case["prealloc"]:
        opts.append("preallocation=metadata")
    if case["format"] == "aes":
        opts += ["encrypt.format=aes", "encrypt.key-secret=sec0"]
    else:
        s = setup or case["setup"]
        opts += ["encrypt.format=luks", "encrypt.key-secret=sec0", "encrypt.iter-time=10",
                 "encrypt.cipher-alg=" + s["alg"], "encrypt.cipher-mode=" + s["mode"],
                 "encrypt.ivgen-alg=" + s["ivgen"], "encrypt.hash-alg=" + s["hash"]]
        if "ivhash" in s:
            opts.append("encrypt.ivgen-hash-alg=" + s["ivhash"])
    return ",".join(opts)


def gen_case(rng):
    cluster = rng.choice([512, 4 * KiB, 16 * KiB, 64 * KiB, 64 * KiB, 64 * KiB, 256 * KiB,
                          2 * MiB])
    compat = "0.10" if rng.random() < 0.2 else "1.1"
    extended = compat == "1.1" and cluster >= 16 * KiB and rng.random() < 0.25
    clusters = rng.randint(3, 40 if cluster <= 256 * KiB else 5)
    size = clusters * cluster - rng.choice([0, 0, 512, cluster // 3 // 512 * 512])
    size = max(size, 512)
    backing = rng.random() < 0.35
    prealloc = not backing and rng.random() < 0.1
    case = dict(format="aes" if rng.random() < 0.15 else "luks",
                setup=rng.choice(LUKS_SETUPS), cluster=cluster, compat=compat,
                extended_l2=extended, lazy=compat == "1.1" and rng.random() < 0.2,
                prealloc=prealloc, size=size, backing=backing)

    def point():
        kind = rng.random()
        if kind < 0.35:
            return rng.randrange(0, max(1, size // cluster)) * cluster
        if kind < 0.7:
            return rng.randrange(0, size // 512) * 512
        return rng.randrange(0, size)

    def length(at):
        kind = rng.random()
        if kind < 0.35:
            n = rng.randint(1, 3) * cluster
        elif kind < 0.7:
            n = rng.randint(1, 16) * 512
        else:
            n = rng.randint(1, 2 * cluster)
        return max(1, min(n, size - at))

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
            elif r < 0.7 and compat == "1.1":
                out.append("write -z -u %d %d" % (at // 512 * 512, max(512, n // 512 * 512)))
            elif r < 0.8:
                out.append("discard %d %d" % (at, n))
            elif r < 0.88 and size >= cluster:
                c = rng.randrange(0, size // cluster)
                out.append("write -c -P 0x%02x %d %d" % (rng.randint(1, 255), c * cluster,
                                                          cluster))
            else:
                out.append("aio_write -P 0x%02x %d %d" % (rng.randint(1, 255), at, n))
                out.append("aio_flush")
            out.append("read -P 0x%02x %d %d" % (rng.randint(0, 255), at, n)
                       if rng.random() < 0.15 else "read -v %d %d" % (at, min(n, 64)))
        return out

    case["first"] = ops(rng.randint(2, 10))
    case["snapshot"] = rng.random() < 0.3
    case["second"] = ops(rng.randint(1, 8))
    return case


def run_split(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def opts_for(path, secret_id="sec0", extra=""):
    return "driver=qcow2,file.filename=%s,encrypt.key-secret=%s%s" % (path, secret_id, extra)


def volume_extent(path):
    """(offset, length) of the LUKS volume named by the crypto header extension."""
    with open(path, "rb") as f:
        head = f.read(4096)
    version = struct.unpack(">I", head[4:8])[0]
    pos = struct.unpack(">I", head[100:104])[0] if version >= 3 else 72
    while pos + 8 <= len(head):
        magic, n = struct.unpack(">II", head[pos:pos + 8])
        if magic == 0:
            break
        if magic == 0x0537be77:
            return struct.unpack(">QQ", head[pos + 8:pos + 24])
        pos += 8 + (n + 7) // 8 * 8
    return None


def masked_bytes(path):
    data = bytearray(open(path, "rb").read())
    ext = volume_extent(path)
    if ext:
        off, n = ext
        data[off:off + n] = b"\0" * min(n, max(0, len(data) - off))
    return bytes(data)


def mask_snapshot_dates(data):
    """The file with each internal snapshot's creation time zeroed (the tools took their
    snapshots at different moments)."""
    data = bytearray(data)
    count, pos = struct.unpack(">IQ", data[60:72])
    for _ in range(count):
        if pos + 40 > len(data):
            break
        data[pos + 16:pos + 24] = b"\0" * 8
        id_len, name_len = struct.unpack(">HH", data[pos + 12:pos + 16])
        extra = struct.unpack(">I", data[pos + 36:pos + 40])[0]
        pos += (40 + extra + id_len + name_len + 7) // 8 * 8
    return bytes(data)


def same_stored_bytes(a, b):
    """Byte-identical, except that one file may end earlier where the other holds only
    zeroes (strata sizes the file to whole clusters where QEMU stops at the last written
    subcluster or sector; both read as zeroes there)."""
    da, db = mask_snapshot_dates(open(a, "rb").read()), mask_snapshot_dates(open(b, "rb").read())
    n = min(len(da), len(db))
    return da[:n] == db[:n] and not da[n:].strip(b"\0") and not db[n:].strip(b"\0")


def run_case(case_id, case, tools, judge, work):
    qdir, sdir = os.path.join(work, "q"), os.path.join(work, "s")
    for d in (qdir, sdir):
        os.makedirs(d)
    if case["backing"]:
        for d in (qdir, sdir):
            run(["qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", str(case["size"])], d)
            run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 %d" % (case["size"] // 2),
                 "base.qcow2"], d)
    create = ["create", "-f", "qcow2", *SECRET, "-o", create_options(case)]
    if case["backing"]:
        create += ["-b", "base.qcow2", "-F", "qcow2"]
    create += ["img.qcow2", str(case["size"])]
    # qemu-img times PBKDF2 by CPU time and, with a tiny iter-time, sometimes fails with
    # "Unable to get accurate CPU usage": retried.
    for _ in range(30):
        rq, oq = run(["qemu-img"] + create, qdir)
        if "accurate CPU usage" not in oq:
            break
        os.remove(os.path.join(qdir, "img.qcow2")) if os.path.exists(
            os.path.join(qdir, "img.qcow2")) else None
    rs, os_ = run([tools["img"]] + create, sdir)
    os_ = os_.replace("strata-img:", "qemu-img:")
    qimg, simg = os.path.join(qdir, "img.qcow2"), os.path.join(sdir, "img.qcow2")
    same = rq == rs and oq == os_
    if same and rq == 0:
        same = masked_bytes(qimg) == masked_bytes(simg)
    judge.check(case_id, "create", same, "%s\nqemu-img (%d): %s\nstrata-img (%d): %s" %
                (case, rq, oq, rs, os_))
    if rq != 0:
        return
    # strata's image, made by strata, must be a valid encrypted image for QEMU.
    rc, out = run(["qemu-img", "check", *SECRET, "--image-opts", opts_for(simg)], sdir)
    judge.check(case_id, "check", rc == 0, "strata's new image: %s %s" % (case, out))
    shutil.copy(qimg, simg)

    def apply(cmds):
        args = []
        for c in cmds:
            args += ["-c", c]
        rq, oq = run(["qemu-io", *SECRET, "--image-opts"] + args + [opts_for("img.qcow2")], qdir)
        rs, os_ = run([tools["io"], *SECRET, "--image-opts"] + args + [opts_for("img.qcow2")],
                      sdir)
        os_ = os_.replace("strata-io:", "qemu-io:")
        judge.check(case_id, "write", rq == rs and mask_timing(oq) == mask_timing(os_),
                    "%s\n%s" % (cmds, diff(mask_timing(oq), mask_timing(os_))))

    apply(case["first"])
    if case["snapshot"]:
        snap = ["snapshot", *SECRET, "--image-opts", "-c", "s1", opts_for("img.qcow2")]
        rq, oq = run(["qemu-img"] + snap, qdir)
        rs, os_ = run([tools["img"]] + snap, sdir)
        judge.check(case_id, "snapshot", rq == rs == 0, oq + os_)
    apply(case["second"])
    judge.check(case_id, "identical", same_stored_bytes(qimg, simg),
                "%s: the files differ after the same writes" % case)
    rc, out = run(["qemu-img", "check", *SECRET, "--image-opts", opts_for(simg)], sdir)
    judge.check(case_id, "check", rc == 0, "%s %s" % (case, out))
    rc_q, cq = run(["qemu-img", "check", *SECRET, "--image-opts", opts_for(qimg)], qdir)
    rc_s, cs = run([tools["img"], "check", *SECRET, "--image-opts", opts_for(qimg)], qdir)
    judge.check(case_id, "check", rc_q == rc_s and cq == cs.replace("strata-img:", "qemu-img:"),
                "strata-img check of QEMU's image: %s" % diff(cq, cs))
    # Content: both images decrypted by QEMU, and QEMU's decrypted by strata.
    raws = {}
    for name, tool, img, d in (("qq", "qemu-img", qimg, qdir), ("qs", "qemu-img", simg, sdir),
                               ("sq", tools["img"], qimg, qdir)):
        out_raw = os.path.join(work, name + ".raw")
        rc, out = run([tool, "convert", *SECRET, "--image-opts", opts_for(img), "-O", "raw",
                       out_raw], d)
        raws[name] = hashlib.sha256(open(out_raw, "rb").read()).hexdigest() if rc == 0 else out
    judge.check(case_id, "content", raws["qq"] == raws["qs"] == raws["sq"], "%s %s" % (case, raws))
    for fmt in ("json", "human"):
        # stdout and stderr apart: their interleaving in one pipe depends on buffering.
        rq, mq = run_split(["qemu-img", "map", "--output=" + fmt, *SECRET, "--image-opts",
                            opts_for(qimg)], qdir)
        rs, ms = run_split([tools["img"], "map", "--output=" + fmt, *SECRET, "--image-opts",
                            opts_for(qimg)], qdir)
        ms = ms.replace("strata-img:", "qemu-img:")
        judge.check(case_id, "map", rq == rs and mq == ms, "%s %s\n%s" % (fmt, case, diff(mq, ms)))
    rq, iq = run(["qemu-img", "info", "--output=json", qimg], qdir)
    rs, is_ = run([tools["img"], "info", "--output=json", qimg], qdir)
    judge.check(case_id, "info", rq == rs and iq == is_, diff(iq, is_))
    # strata writing a new encrypted image from QEMU's (another setup), QEMU judging it.
    other = dict(case, format="luks", setup=LUKS_SETUPS[case_id % len(LUKS_SETUPS)],
                 prealloc=False)
    conv = os.path.join(qdir, "converted.qcow2")
    rc, out = run([tools["img"], "convert", *SECRET, "--image-opts", opts_for(qimg), "-O",
                   "qcow2", "-o", create_options(other), conv], qdir)
    if rc == 0:
        rc_k, out_k = run(["qemu-img", "check", *SECRET, "--image-opts", opts_for(conv)], qdir)
        rc_c, out_c = run(["qemu-img", "compare", *SECRET, "--image-opts", opts_for(qimg),
                           opts_for(conv)], qdir)
        rc, out = (rc_k or rc_c), out_k + out_c
    judge.check(case_id, "convert", rc == 0, "%s %s" % (case, out))
    if case["snapshot"]:
        snap = ["snapshot", *SECRET, "--image-opts", "-a", "s1", opts_for("img.qcow2")]
        run(["qemu-img"] + snap, qdir)
        rc_a, out_a = run([tools["img"]] + snap, sdir)
        rc_c, out_c = run(["qemu-img", "compare", *SECRET, "--image-opts", opts_for(qimg),
                           opts_for(simg)], sdir)
        judge.check(case_id, "snapshot", rc_a == 0 and rc_c == 0,
                    "%s\n%s%s" % (case, out_a, out_c))
    # Errors: nothing may change the file.
    before = open(simg, "rb").read()
    for label, secret, image_opts in (
            ("wrong passphrase", WRONG, opts_for("img.qcow2")),
            ("missing key-secret", SECRET, "driver=qcow2,file.filename=img.qcow2"),
            ("unknown secret", SECRET, opts_for("img.qcow2", "nosuch")),
            ("format mismatch", SECRET,
             opts_for("img.qcow2", extra=",encrypt.format=" +
                      ("luks" if case["format"] == "aes" else "aes")))):
        if case["format"] == "aes" and label == "wrong passphrase":
            # The legacy format has no key check: any key "opens" it; not tried.
            continue
        rq, eq = run(["qemu-io", *secret, "--image-opts", "-c", "write 0 512", image_opts], qdir)
        rs, es = run([tools["io"], *secret, "--image-opts", "-c", "write 0 512", image_opts], sdir)
        es = es.replace("strata-io:", "qemu-io:")
        judge.check(case_id, "errors", rq == rs and eq == es and open(simg, "rb").read() == before,
                    "%s: %s" % (label, diff(eq, es)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", type=int, default=-1, help="run just this case (debugging)")
    ap.add_argument("--keep", help="with --only: leave the case's files in this new folder")
    args = ap.parse_args()
    tools = {"img": os.path.abspath(args.strata_img), "io": os.path.abspath(args.strata_io)}
    rng = random.Random(args.seed)
    judge = Judge()
    for i in range(args.cases):
        case = gen_case(rng)
        if args.only >= 0 and i != args.only:
            continue
        if args.keep and args.only == i:
            os.makedirs(args.keep)
            run_case(i, case, tools, judge, args.keep)
            continue
        with tempfile.TemporaryDirectory(prefix="crypto.") as work:
            run_case(i, case, tools, judge, work)
    for f in judge.failures:
        print("FAIL", f)
    kinds = sorted({k for k, _ in judge.counts})
    print("%-10s %8s %8s" % ("check", "agreed", "failed"))
    for k in kinds:
        print("%-10s %8d %8d" % (k, judge.counts[(k, True)], judge.counts[(k, False)]))
    failed = sum(v for (k, ok), v in judge.counts.items() if not ok)
    print("encrypted qcow2: %d cases (seed %d), %d checks, %d failed" %
          (args.cases, args.seed, sum(judge.counts.values()), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
