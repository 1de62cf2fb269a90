#!/usr/bin/env python3
"""Hostile-input sweep: generated hostile images and inputs, every tool command on every
case, through QEMU 7.2's tools and strata's side by side.

Each case is made by this script (QEMU's tools make a valid image, then bytes are changed
with struct: header fields, refcounts, L1/L2 entries, snapshot entries), never a shipped
blob, and names only decoy files it creates. Every command runs on a fresh copy of the case,
once through QEMU and once through strata, each under a timeout and an address-space limit.

Classes counted for strata, per run:
  crash       killed by a signal (abort, segfault; bad_alloc under the memory limit)
  hang        did not finish within the timeout
  memory      std::bad_alloc or an allocation failure message
  destroyed   the image no longer starts with the qcow2 magic after the run (QEMU's run
              kept it), or a write strata reported done cannot be read back by QEMU
  divergence  success in one tool and failure in the other
The first four must be zero; divergences are listed (known ones, with a reason, in
known_divergences.txt) and the run fails on one not listed there.

Usage: hostile_sweep.py --strata-img P --strata-io P [--slice K/N] [--list]
"""
import argparse
import collections
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

TIMEOUT = 10
# Cases QEMU's own tools hang on (qemu-img waits forever to open a FIFO): strata alone.
QEMU_HANGS = {"image is a FIFO"}
MEMORY_LIMIT = 4 << 30


def sh(cmd, cwd):
    subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Image:
    """A qcow2 file opened for poking at its structures."""

    FIELDS = {"version": (4, ">I"), "backing_file_offset": (8, ">Q"),
              "backing_file_size": (16, ">I"), "cluster_bits": (20, ">I"), "size": (24, ">Q"),
              "l1_size": (36, ">I"), "l1_table_offset": (40, ">Q"),
              "refcount_table_offset": (48, ">Q"), "refcount_table_clusters": (56, ">I"),
              "nb_snapshots": (60, ">I"), "snapshots_offset": (64, ">Q"),
              "incompatible_features": (72, ">Q"), "refcount_order": (96, ">I")}

    def __init__(self, path):
        self.path = path

    def get(self, field):
        off, fmt = self.FIELDS[field]
        return self.read_at(off, fmt)

    def set(self, field, value):
        off, fmt = self.FIELDS[field]
        self.write_at(off, fmt, value)

    def read_at(self, off, fmt):
        with open(self.path, "rb") as f:
            f.seek(off)
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    def write_at(self, off, fmt, value):
        with open(self.path, "r+b") as f:
            f.seek(off)
            f.write(struct.pack(fmt, value))

    def write_bytes(self, off, data):
        with open(self.path, "r+b") as f:
            f.seek(off)
            f.write(data)

    @property
    def cluster_size(self):
        return 1 << self.get("cluster_bits")

    def l1_entry_offset(self, i):
        return self.get("l1_table_offset") + 8 * i

    def l2_offset(self, i=0):
        return self.read_at(self.l1_entry_offset(i), ">Q") & 0x00FFFFFFFFFFFE00

    def reftable_entry_offset(self, i):
        return self.get("refcount_table_offset") + 8 * i

    def refblock(self, i=0):
        return self.read_at(self.reftable_entry_offset(i), ">Q") & ~0x1FF

    def set_refcount(self, cluster, value):
        # 16-bit refcounts (the default refcount_order 4), cluster in the first block.
        self.write_at(self.refblock(0) + 2 * cluster, ">H", value)

    def snapshot_entry(self, i=0):
        return self.get("snapshots_offset")  # first entry only


def base_image(d, name="img.qcow2", opts="", size="4M"):
    sh("qemu-img create -q -f qcow2 %s %s %s && "
       "qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 64k' %s"
       % ("-o " + opts if opts else "", name, size, name), d)
    return Image(os.path.join(d, name))


def with_snapshot(d):
    img = base_image(d)
    sh("qemu-img snapshot -c snap1 img.qcow2", d)
    return img


# --- the cases: name -> function(dir) making img.qcow2 (or other files) ---
CASES = collections.OrderedDict()


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn
    return register


for v in ("0.10", "1.1"):
    @case("l1_table_offset=0 compat=" + v)
    def _(d, v=v):
        base_image(d, opts="compat=" + v).set("l1_table_offset", 0)


@case("refcount of cluster 0 is 0")
def _(d):
    base_image(d).set_refcount(0, 0)


@case("refcount of the L2 table is 0")
def _(d):
    img = base_image(d)
    img.set_refcount(img.l2_offset(0) // img.cluster_size, 0)


@case("refcount block zeroed")
def _(d):
    img = base_image(d)
    img.write_bytes(img.refblock(0), bytes(img.cluster_size))


@case("reftable[0] points at the reftable")
def _(d):
    img = base_image(d)
    img.write_at(img.reftable_entry_offset(0), ">Q", img.get("refcount_table_offset"))


@case("reftable[0] points past the end")
def _(d):
    img = base_image(d)
    img.write_at(img.reftable_entry_offset(0), ">Q", 1 << 40)


@case("refcount_order changed under refcounts")
def _(d):
    base_image(d).set("refcount_order", 6)


@case("version=1")
def _(d):
    base_image(d).set("version", 1)


@case("L1 entry past the end of the file")
def _(d):
    img = base_image(d)
    img.write_at(img.l1_entry_offset(1), ">Q", (1 << 63) | (1 << 30))


@case("L1 entry at the refcount table")
def _(d):
    img = base_image(d)
    img.write_at(img.l1_entry_offset(1), ">Q", (1 << 63) | img.get("refcount_table_offset"))


@case("L1 entry unaligned")
def _(d):
    img = base_image(d)
    img.write_at(img.l1_entry_offset(1), ">Q", (1 << 63) | (img.l2_offset(0) + 512))


@case("L2 entry with reserved bits")
def _(d):
    img = base_image(d)
    e = img.read_at(img.l2_offset(0), ">Q")
    img.write_at(img.l2_offset(0), ">Q", e | 0x3)


@case("snapshot L1 offset unaligned")
def _(d):
    img = with_snapshot(d)
    off = img.snapshot_entry()
    img.write_at(off, ">Q", img.read_at(off, ">Q") + 8)


@case("snapshot L1 at a refcount block")
def _(d):
    img = with_snapshot(d)
    img.write_at(img.snapshot_entry(), ">Q", img.refblock(0))


for n in (0x10000000, 0xFFFFFFFF):
    @case("snapshot l1_size=%#x" % n)
    def _(d, n=n):
        img = with_snapshot(d)
        img.write_at(img.snapshot_entry() + 8, ">I", n)


@case("65536 snapshots with maximal id and name")
def _(d):
    img = with_snapshot(d)
    img.set("nb_snapshots", 65536)
    off = img.snapshot_entry()
    img.write_at(off + 12, ">H", 0xFFFF)
    img.write_at(off + 14, ">H", 0xFFFF)


@case("snapshot table offset unaligned")
def _(d):
    img = with_snapshot(d)
    img.set("snapshots_offset", img.get("snapshots_offset") + 4)


@case("v2 image with the zero flag")
def _(d):
    img = base_image(d, opts="compat=0.10")
    e = img.read_at(img.l2_offset(0), ">Q")
    img.write_at(img.l2_offset(0), ">Q", e | 1)


for fmt in ("foo", "vmdk"):
    @case("backing format " + fmt)
    def _(d, fmt=fmt):
        sh("qemu-img create -q -f raw decoy.raw 4M && "
           "qemu-img create -q -f qcow2 -b decoy.raw -F raw img.qcow2 4M", d)
        img = Image(os.path.join(d, "img.qcow2"))
        # The backing format header extension (magic 0xe2792aca) follows the header.
        with open(img.path, "rb") as f:
            data = f.read(img.cluster_size)
        pos = data.find(struct.pack(">I", 0xE2792ACA))
        img.write_at(pos + 4, ">I", len(fmt))
        img.write_bytes(pos + 8, fmt.encode().ljust(8, b"\0"))


@case("backing file json naming the image itself")
def _(d):
    base_image(d)
    target = 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"}}' % \
        os.path.join(d, "img.qcow2")
    sh("qemu-img rebase -u -b '%s' -F qcow2 img.qcow2" % target, d)


@case("backing chain of 300 images")
def _(d):
    sh("qemu-img create -q -f qcow2 c0.qcow2 1M && "
       "for i in $(seq 1 299); do qemu-img create -q -f qcow2 -b c$((i-1)).qcow2 -F qcow2 "
       "c$i.qcow2 1M; done && cp c299.qcow2 img.qcow2", d)


@case("image is a FIFO")
def _(d):
    os.mkfifo(os.path.join(d, "img.qcow2"))


@case("empty 4 TiB image")
def _(d):
    sh("qemu-img create -q -f qcow2 img.qcow2 4T", d)


@case("4 TiB image, L1 table past the end")
def _(d):
    sh("qemu-img create -q -f qcow2 img.qcow2 4T", d)
    Image(os.path.join(d, "img.qcow2")).set("l1_table_offset", 1 << 40)


@case("empty 1 EiB image, 2 MiB clusters")
def _(d):
    sh("qemu-img create -q -f qcow2 -o cluster_size=2M img.qcow2 1E", d)


@case("raw image (probed)")
def _(d):
    sh("qemu-img create -q -f raw img.qcow2 4M && qemu-img create -q -f raw decoy 4M && "
       "qemu-img create -q -f qcow2 -b decoy -F raw header.qcow2 4M && "
       "head -c 512 header.qcow2 > evil.sector", d)


# Extended L2 entries: each L2 entry is followed by its subcluster bitmap.
def extended_image(d):
    return base_image(d, opts="extended_l2=on")


@case("extended L2: subcluster both allocated and zero")
def _(d):
    img = extended_image(d)
    img.write_at(img.l2_offset() + 8, ">Q", 0x0000000100000001 | 0xFFFFFFFF)


@case("extended L2: unallocated cluster with allocation bits")
def _(d):
    img = extended_image(d)
    img.write_at(img.l2_offset() + 16 * 2 + 8, ">Q", 0x0000000F)


@case("extended L2: compressed cluster with a bitmap")
def _(d):
    img = extended_image(d)
    sh("qemu-io -f qcow2 -c 'write -c -P 0x33 128k 64k' img.qcow2", d)
    img.write_at(img.l2_offset() + 16 * 2 + 8, ">Q", 0x00000003)


@case("extended L2: bit set with 4 KiB clusters")
def _(d):
    img = base_image(d, opts="cluster_size=4k")
    img.set("incompatible_features", img.get("incompatible_features") | 0x10)


@case("extended L2: bit cleared on an extended image")
def _(d):
    img = extended_image(d)
    img.set("incompatible_features", img.get("incompatible_features") & ~0x10)


@case("extended L2: reserved bit 0 set in an allocated entry")
def _(d):
    img = extended_image(d)
    entry = img.read_at(img.l2_offset(), ">Q")
    img.write_at(img.l2_offset(), ">Q", entry | 1)


# External data files: data clusters sit at their guest offset in img.qcow2.data.
def data_file_image(d, raw=False):
    sh("qemu-img create -q -f qcow2 -o data_file=img.data%s img.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 64k' img.qcow2"
       % (",data_file_raw=on" if raw else ""), d)
    return Image(os.path.join(d, "img.qcow2"))


@case("data file: host offset differs from the guest offset")
def _(d):
    img = data_file_image(d)
    img.write_at(img.l2_offset(), ">Q", 0x8000000000000000 | 0x30000)


@case("data file: compressed cluster entry")
def _(d):
    img = data_file_image(d)
    img.write_at(img.l2_offset() + 8 * 2, ">Q", 0x4000000000050000)


@case("data file: bit set without a name")
def _(d):
    img = base_image(d)
    img.set("incompatible_features", img.get("incompatible_features") | 0x4)


@case("data file: raw bit without a data file")
def _(d):
    img = base_image(d)
    img.write_at(88, ">Q", 0x2)


@case("data file: named file missing")
def _(d):
    data_file_image(d, raw=True)
    os.unlink(os.path.join(d, "img.data"))


# Persistent dirty bitmaps: two bitmaps made by QEMU ("b0" enabled, with dirty data;
# "b1" disabled, 4 KiB granularity), then one structure of the extension poked at.
class BitmapImage(Image):
    def ext_offset(self):
        off = self.read_at(100, ">I")  # header_length
        while True:
            magic, length = struct.unpack(">II", self.read_bytes(off, 8))
            if magic == 0x23852875:
                return off + 8
            if magic == 0:
                raise ValueError("no bitmaps extension")
            off += 8 + ((length + 7) & ~7)

    def read_bytes(self, off, n):
        with open(self.path, "rb") as f:
            f.seek(off)
            return f.read(n)

    def dir_offset(self):
        return self.read_at(self.ext_offset() + 16, ">Q")

    def table_offset(self, entry=0):  # entry 0 only (entry sizes vary with names)
        return self.read_at(self.dir_offset(), ">Q")


def bitmap_image(d):
    sh("qemu-img create -q -f qcow2 img.qcow2 4M && qemu-img bitmap --add img.qcow2 b0 && "
       "qemu-img bitmap --add --disable -g 4k img.qcow2 b1 && "
       "qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 64k' img.qcow2", d)
    return BitmapImage(os.path.join(d, "img.qcow2"))


BITMAP_POKES = [
    ("extension length 16", lambda i: i.write_at(i.ext_offset() - 4, ">I", 16)),
    ("reserved field set", lambda i: i.write_at(i.ext_offset() + 4, ">I", 1)),
    ("zero bitmaps", lambda i: i.write_at(i.ext_offset(), ">I", 0)),
    ("70000 bitmaps", lambda i: i.write_at(i.ext_offset(), ">I", 70000)),
    ("three bitmaps in a directory of two", lambda i: i.write_at(i.ext_offset(), ">I", 3)),
    ("directory offset unaligned", lambda i: i.write_at(i.ext_offset() + 16, ">Q",
                                                        i.dir_offset() + 512)),
    ("directory size 2^40", lambda i: i.write_at(i.ext_offset() + 8, ">Q", 1 << 40)),
    ("directory past the end of the file", lambda i: i.write_at(i.ext_offset() + 16, ">Q",
                                                                1 << 40)),
    ("granularity bits 8", lambda i: i.write_at(i.dir_offset() + 17, ">B", 8)),
    ("granularity bits 40", lambda i: i.write_at(i.dir_offset() + 17, ">B", 40)),
    ("reserved directory flag", lambda i: i.write_at(i.dir_offset() + 12, ">I", 0x12)),
    ("type 2", lambda i: i.write_at(i.dir_offset() + 16, ">B", 2)),
    ("extra data size 8", lambda i: i.write_at(i.dir_offset() + 20, ">I", 8)),
    ("table offset unaligned", lambda i: i.write_at(i.dir_offset(), ">Q",
                                                    i.table_offset() + 512)),
    ("table offset 0", lambda i: i.write_at(i.dir_offset(), ">Q", 0)),
    ("table size 5", lambda i: i.write_at(i.dir_offset() + 8, ">I", 5)),
    ("table entry with reserved bits", lambda i: i.write_at(i.table_offset(), ">Q",
                                                            0x0100000000000000)),
    ("table entry unaligned", lambda i: i.write_at(i.table_offset(), ">Q", 0x10200)),
    ("table entry all ones", lambda i: i.write_at(i.table_offset(), ">Q", 1)),
    ("table entry names the L1 table", lambda i: i.write_at(i.table_offset(), ">Q",
                                                            i.get("l1_table_offset"))),
    ("table entry names the header", lambda i: i.write_at(i.table_offset(), ">Q", 0)),
    ("table names the refcount table", lambda i: i.write_at(
        i.dir_offset(), ">Q", i.get("refcount_table_offset"))),
    ("in use", lambda i: i.write_at(i.dir_offset() + 12, ">I", 3)),
    ("in use, autoclear bit cleared", lambda i: (i.write_at(i.dir_offset() + 12, ">I", 3),
                                                 i.write_at(88, ">Q", 0))),
    ("autoclear bit cleared", lambda i: i.write_at(88, ">Q", 0)),
    ("both named b0", lambda i: i.write_bytes(i.dir_offset() + 24 + 8 + 24, b"b0")),
]
for _name, _poke in BITMAP_POKES:
    @case("bitmaps: " + _name)
    def _(d, poke=_poke):
        poke(bitmap_image(d))


# --- commands (argv after the tool name; "IMG" is the case image). Write commands name a
# pattern they check afterwards: (tool, argv, write_check or None).
COMMANDS = [
    ("qemu-img", ["info", "img.qcow2"], None),
    ("qemu-img", ["check", "img.qcow2"], None),
    ("qemu-img", ["map", "img.qcow2"], None),
    ("qemu-img", ["snapshot", "-l", "img.qcow2"], None),
    ("qemu-img", ["convert", "-O", "raw", "img.qcow2", "out.raw"], None),
    ("qemu-img", ["compare", "img.qcow2", "img.qcow2"], None),
    ("qemu-img", ["snapshot", "-c", "new", "img.qcow2"], None),
    ("qemu-img", ["snapshot", "-a", "snap1", "img.qcow2"], None),
    ("qemu-img", ["snapshot", "-d", "snap1", "img.qcow2"], None),
    ("qemu-img", ["amend", "-o", "refcount_bits=64", "img.qcow2"], None),
    ("qemu-img", ["resize", "img.qcow2", "+8M"], None),
    ("qemu-img", ["bitmap", "--clear", "img.qcow2", "b0"], None),
    ("qemu-img", ["bitmap", "--remove", "img.qcow2", "b0"], None),
    ("qemu-img", ["bitmap", "--add", "img.qcow2", "new"], None),
    ("qemu-io", ["-c", "write -P 0x5a 1536k 64k", "img.qcow2"], (0x5A, "1536k", "64k")),
    ("qemu-io", ["-c", "write -P 0x5b 4M 4k", "img.qcow2"], None),
    ("qemu-io", ["-c", "write -z 1M 64k", "img.qcow2"], None),
    ("qemu-io", ["-c", "write -c -P 0x5c 2M 64k", "img.qcow2"], None),
    ("qemu-io", ["-c", "read 0 128k", "img.qcow2"], None),
    ("qemu-io", ["-c", "write -s evil.sector 0 512", "img.qcow2"], None),
]
STDIN = "<stdin>"
# Inputs that are not images: qemu-io commands with hostile arguments on a sane image.
INPUT_CASES = [
    ("write -s with a 3 GiB sparse pattern file", "truncate -s 3G big.pattern",
     ["-c", "write -s big.pattern 0 4k", "img.qcow2"]),
    ("write -s with a FIFO pattern file", "mkfifo fifo.pattern",
     ["-c", "write -s fifo.pattern 0 4k", "img.qcow2"]),
    ("readv lengths past 2^63", "",
     ["-c", "readv 0 4611686018427387904 4611686018427387904 4611686018427387904",
      "img.qcow2"]),
    ("blkdebug config is a 3 GiB sparse file", "truncate -s 3G big.conf",
     ["-c", "read 0 512", "blkdebug:big.conf:img.qcow2"]),
    # Too many for a command line: the commands come on standard input.
    ("20000 aio_write before aio_flush", "",
     ["img.qcow2", STDIN, "".join("aio_write -q -P 1 %d 512\n" % (i * 512)
                                  for i in range(20000)) + "aio_flush\n"]),
    # One argument may hold at most 128 KiB; longer inputs come through `open` on stdin.
    ("keyval key with 50000 dotted parts", "",
     ["--image-opts", "driver=qcow2,file.filename=img.qcow2," + "a." * 50000 + "b=1",
      "-c", "read 0 512"]),
    ("keyval key with 1000000 dotted parts", "",
     [STDIN, "open -o driver=qcow2,file.filename=img.qcow2," + "a." * 1000000 + "b=1\n"]),
    ("json with 30000 nested arrays", "",
     ["-c", "read 0 512", "json:" + "[" * 30000 + "]" * 30000]),
    ("json with 1000000 nested objects", "",
     [STDIN, "open json:" + '{"a":' * 1000000 + "1" + "}" * 1000000 + "\n"]),
]


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(binary, argv, cwd):
    stdin_text = None
    if STDIN in argv:  # [..., STDIN, text]: the text is the standard input
        stdin_text = argv[argv.index(STDIN) + 1].encode()
        argv = argv[:argv.index(STDIN)]
    try:
        p = subprocess.run([binary] + argv, cwd=cwd, capture_output=True, timeout=TIMEOUT,
                           input=stdin_text,
                           stdin=None if stdin_text is not None else subprocess.DEVNULL,
                           preexec_fn=limit_memory)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, "TIMEOUT"


def magic_ok(path):
    if not os.path.isfile(path):  # never open a FIFO: it would block
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"QFI\xfb"
    except OSError:
        return False


def data_readable(cwd, pattern, offset, length):
    p = subprocess.run(["qemu-io", "-U", "-r", "-c",
                        "read -P %#x %s %s" % (pattern, offset, length), "img.qcow2"],
                       cwd=cwd, capture_output=True, timeout=TIMEOUT)
    return p.returncode == 0 and b"Pattern verification failed" not in p.stdout


def classify(case_name, tool, argv, check, tools, work, made):
    """Runs one command through both tools; returns (classes, detail)."""
    results = {}
    for impl in ("qemu", "strata"):
        d = os.path.join(work, impl)
        shutil.rmtree(d, ignore_errors=True)
        # cp keeps FIFOs as FIFOs and sparse files sparse.
        subprocess.run(["cp", "-a", "--sparse=always", made, d], check=True)
        before_magic = magic_ok(os.path.join(d, "img.qcow2"))
        if impl == "qemu" and case_name in QEMU_HANGS:
            rc, out = None, "not run (QEMU hangs)"
        else:
            rc, out = run(tools[impl][tool], argv, d)
        results[impl] = (rc, out, before_magic, magic_ok(os.path.join(d, "img.qcow2")), d)
    rc, out, before, after, d = results["strata"]
    qrc, qout, _, qafter, _ = results["qemu"]
    classes = []
    if rc is None:
        classes.append("hang")
    elif rc < 0:
        classes.append("crash")
    if rc is not None and ("bad_alloc" in out or "Cannot allocate memory" in out and rc < 0):
        classes.append("memory")
    if before and not after and qafter:
        classes.append("destroyed")
    if check and rc == 0 and not data_readable(d, *check):
        classes.append("destroyed")
    if rc is not None and qrc is not None and (rc == 0) != (qrc == 0):
        classes.append("divergence")
    detail = "strata rc=%s: %s | qemu rc=%s: %s" % (
        rc, out.strip().splitlines()[-1:] if out.strip() else "", qrc,
        qout.strip().splitlines()[-1:] if qout.strip() else "")
    return classes, detail


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--slice", default="0/1")
    ap.add_argument("--list", action="store_true", help="print every run's classes")
    ap.add_argument("--match", default="", help="only cases whose name contains this")
    ap.add_argument("--known", default=os.path.join(os.path.dirname(__file__),
                                                    "known_divergences.txt"))
    args = ap.parse_args()
    k, n = (int(x) for x in args.slice.split("/"))
    known = {}
    with open(args.known) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                key, _, reason = line.rstrip("\n").partition("\t")
                known[key] = reason
    tools = {"qemu": {"qemu-img": shutil.which("qemu-img"), "qemu-io": shutil.which("qemu-io")},
             "strata": {"qemu-img": os.path.abspath(args.strata_img),
                        "qemu-io": os.path.abspath(args.strata_io)}}
    work = tempfile.mkdtemp(prefix="hostile.", dir=os.environ.get("TEST_TMPDIR"))
    counts = collections.Counter()
    bad, new_div = [], []
    runs = cases = 0
    try:
        jobs = []
        for name, make in CASES.items():
            if args.match not in name:
                continue
            for tool, argv, check in COMMANDS:
                jobs.append((name, make, None, tool, argv, check))
        for name, setup, argv in INPUT_CASES:
            if args.match not in name:
                continue
            jobs.append((name, None, setup, "qemu-io", argv, None))
        made_for = {}
        for index, (name, make, setup, tool, argv, check) in enumerate(jobs):
            if index % n != k:
                continue
            made = os.path.join(work, "case-%d" % (list(CASES).index(name) if make else 9999))
            if make is not None and name not in made_for:
                shutil.rmtree(made, ignore_errors=True)
                os.mkdir(made)
                make(made)
                made_for[name] = made
                cases += 1
            if make is None:
                shutil.rmtree(made, ignore_errors=True)
                os.mkdir(made)
                base_image(made)
                if setup:
                    sh(setup, made)
                cases += 1
            classes, detail = classify(name, tool, argv, check, tools, work,
                                       made_for.get(name, made))
            runs += 1
            shown = argv[:argv.index(STDIN)] + ["< commands"] if STDIN in argv else argv
            short = " ".join(a if len(a) < 60 else a[:57] + "..." for a in shown)
            key = "%s | %s %s" % (name, tool, short)
            for c in classes:
                counts[c] += 1
            if args.list and classes:
                print("%s\t%s\t%s" % (key, ",".join(classes), detail))
            serious = [c for c in classes if c != "divergence"]
            if serious:
                bad.append((key, serious, detail))
            elif "divergence" in classes and key not in known:
                new_div.append((key, detail))
            if make is not None and name in made_for and not any(
                    j[0] == name for j in jobs[index + 1:]):
                shutil.rmtree(made, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("hostile sweep: %d cases, %d runs (each through QEMU and strata)" % (cases, runs))
    for c in ("crash", "hang", "memory", "destroyed", "divergence"):
        print("  %-11s %d" % (c, counts[c]))
    for key, classes, detail in bad:
        print("FAIL %s: %s (%s)" % (",".join(classes), key, detail))
    if not args.list:
        for key, detail in new_div:
            print("NEW DIVERGENCE: %s (%s)" % (key, detail))
    return 1 if bad or (new_div and not args.list) else 0


if __name__ == "__main__":
    sys.exit(main())
