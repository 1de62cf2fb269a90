#!/usr/bin/env python3
"""Check and repair of damaged persistent bitmaps, differential: generated qcow2 images
whose bitmap structures are damaged, checked and repaired by QEMU's qemu-img and by
strata's, compared.

Every case is drawn from a seeded generator. QEMU's tools make the image: a cluster size
(4 KiB or 64 KiB), a size (4 or 64 MiB), two or three bitmaps (enabled and disabled,
granularities down to 512 bytes, so bitmap tables have several entries) and scattered
guest writes that make them dirty. Then one to three fields of the bitmap structures are
overwritten, each with a value drawn for its kind:
  extension   bitmap count, reserved field, directory size and offset;
  directory   an entry's table offset and size, flags (in-use, auto, reserved bits),
              type, granularity, name size, extra data size;
  table       an entry of a bitmap table: zero, the all-ones flag, reserved bits, an
              unaligned or past-the-end offset, or the offset of another structure
              (header, L1 or L2 table, refcount table or block, guest data, the
              directory, another bitmap's table or data);
  header      the autoclear bit of the bitmaps extension.
Each image then goes through `check`, `check -r leaks` and `check -r all`, each on its
own copy, and the script compares: exit status and output, then the repaired file as
QEMU judges it (`qemu-img check`: status and output) and `qemu-img info` (disk size
masked).

Two kinds of difference are counted apart rather than failed, because strata does better:
a repair after which QEMU's own check finds corruptions (QEMU 7.2 frees clusters a
damaged bitmap table shares with live metadata, so `check -r leaks` can destroy the
refcounts) while strata's repaired image is clean or only leaks; and the same output
(but for the number of "qcow2_free_clusters failed" lines), after which QEMU's image
leaks clusters and strata's is clean (QEMU reads the old bitmap tables one by one while
freeing them, so with chained damage it skips frees that strata, reading every table
first, does, and reports). Strata may do better than QEMU; never worse.

`--cases N --seed S` choose the corpus; prints one line per failed comparison and the
counts; exits 1 on any failure.
"""
import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
import hostile_sweep  # noqa: E402

EXT_MAGIC = 0x23852875
COMMANDS = (["check"], ["check", "-r", "leaks"], ["check", "-r", "all"])


def run(argv, cwd, tools):
    argv = [tools.get(argv[0], argv[0])] + argv[1:]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


class Qcow2File(hostile_sweep.Image):
    """Reads and pokes the structures of one qcow2 file (the hostile sweep's image
    accessor, plus the bitmap structures)."""

    def size(self):
        return os.path.getsize(self.path)

    def ext_data(self):
        off = self.read_at(100, ">I")  # header_length
        while True:
            magic, length = self.read_at(off, ">I"), self.read_at(off + 4, ">I")
            if magic == EXT_MAGIC:
                return off + 8
            if magic == 0:
                raise ValueError("no bitmaps extension")
            off += 8 + ((length + 7) & ~7)

    def directory(self):
        """[(entry_offset, table_offset, table_size, name_size)] of the directory."""
        ext = self.ext_data()
        count = self.read_at(ext, ">I")
        pos = self.read_at(ext + 16, ">Q")
        out = []
        for _ in range(count):
            table, size = self.read_at(pos, ">Q"), self.read_at(pos + 8, ">I")
            name_size, extra = self.read_at(pos + 18, ">H"), self.read_at(pos + 20, ">I")
            out.append((pos, table, size, name_size))
            pos += (24 + name_size + extra + 7) & ~7
        return out

    def structures(self):
        """Offsets of structures a damaged table entry may name."""
        cs = self.cluster_size
        l1 = self.read_at(40, ">Q")
        l2 = self.read_at(l1, ">Q") & 0x00FFFFFFFFFFFE00
        reftable = self.read_at(48, ">Q")
        found = {"header": 0, "L1 table": l1, "refcount table": reftable,
                 "refcount block": self.read_at(reftable, ">Q") & ~0x1FF,
                 "directory": self.read_at(self.ext_data() + 16, ">Q") & ~(cs - 1)}
        if l2:
            found["L2 table"] = l2
            data = self.read_at(l2, ">Q") & 0x00FFFFFFFFFFFE00
            if data:
                found["guest data"] = data
        for i, (_, table, size, _) in enumerate(self.directory()):
            if table:
                found["table of bitmap %d" % i] = table
                for j in range(size):
                    e = self.read_at(table + 8 * j, ">Q") & 0x00FFFFFFFFFFFE00
                    if e:
                        found["data of bitmap %d" % i] = e
                        break
        return found


def make_image(rng, d):
    """QEMU's tools make img.qcow2; returns a description."""
    cluster = rng.choice([4096, 65536])
    size = rng.choice([4 << 20, 64 << 20])
    cmds = ["qemu-img create -q -f qcow2 -o cluster_size=%d img.qcow2 %d" % (cluster, size)]
    names = []
    for i in range(rng.choice([2, 2, 3])):
        g = rng.choice([512, 4096, 65536])
        off = " --disable" if rng.random() < 0.4 else ""
        cmds.append("qemu-img bitmap --add -g %d%s img.qcow2 b%d" % (g, off, i))
        names.append("b%d g%d%s" % (i, g, off))
    writes = []
    for k in range(rng.randint(2, 12)):
        length = rng.choice([512, 4096, 65536])
        writes.append("-c 'write -P %d %d %d'" % (k + 1, rng.randrange(0, (size - length) // 512)
                                                  * 512, length))
    writes = " ".join(writes)
    cmds.append("qemu-io -f qcow2 %s img.qcow2" % writes)
    subprocess.run(" && ".join(cmds), shell=True, cwd=d, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "cluster %d size %d bitmaps [%s]" % (cluster, size, ", ".join(names))


def layout(img):
    """What poke() needs, read from the undamaged image."""
    return img.cluster_size, img.ext_data(), img.directory(), img.structures()


def poke(rng, img, where):
    """Damages one field at a place `where` (layout()) names; returns what it did."""
    cs, ext, directory, structures = where
    kind = rng.choice(["extension", "directory", "directory", "table", "table", "table",
                       "header"])
    if kind == "header":
        img.write_at(88, ">Q", 0)
        return "autoclear bit cleared"
    if kind == "extension":
        field, off, fmt, values = rng.choice([
            ("bitmap count", ext, ">I", [0, len(directory) - 1, len(directory) + 1, 65536]),
            ("reserved", ext + 4, ">I", [1, 0xFFFFFFFF]),
            ("directory size", ext + 8, ">Q", ["-8", "+8", 0, 1 << 40]),
            ("directory offset", ext + 16, ">Q", ["unaligned", 0] + sorted(structures)),
        ])
    elif kind == "directory":
        i = rng.randrange(len(directory))
        pos, table, size, name_size = directory[i]
        field, off, fmt, values = rng.choice([
            ("table offset", pos, ">Q", ["unaligned", "past the end", 0] + sorted(structures)),
            ("table size", pos + 8, ">I", [0, "-1", "+1", 1 << 31]),
            ("flags", pos + 12, ">I", [0, 1, 2, 3, 4, 0x10]),
            ("type", pos + 16, ">B", [0, 2]),
            ("granularity bits", pos + 17, ">B", [8, 9, 12, 31, 32, 64]),
            ("name size", pos + 18, ">H", [0, "+1", 1000]),
            ("extra data size", pos + 20, ">I", [8, 4]),
        ])
        field = "bitmap %d %s" % (i, field)
    else:
        tables = [(i, t, s) for i, (_, t, s, _) in enumerate(directory) if t and s]
        if not tables:
            return poke(rng, img, where)
        i, table, size = rng.choice(tables)
        j = rng.randrange(size)
        field, off, fmt = "bitmap %d table entry %d" % (i, j), table + 8 * j, ">Q"
        values = [0, 1, "reserved bits", "unaligned", "past the end"] + sorted(structures)
    value = rng.choice(values)
    current = img.read_at(off, fmt)
    if isinstance(value, str):
        if value in structures:
            number = structures[value]
        elif value == "unaligned":
            number = (current or structures["header"] + cs) + 512
        elif value == "past the end":
            number = img.size() + 16 * cs
        elif value == "reserved bits":
            number = current | (1 << 60)
        else:  # "+N" / "-N": relative to the current value
            number = max(0, current + int(value))
        label = value
    else:
        number, label = value, str(value)
    limit = (1 << (8 * struct.calcsize(fmt))) - 1
    img.write_at(off, fmt, number & limit)
    return "%s = %s" % (field, label)


def without_free_failures(text):
    """The output without QEMU's 'qcow2_free_clusters failed' lines: where chained damage
    makes QEMU skip a free (and leak) that strata does, strata reports one more."""
    return re.sub(r"qcow2_free_clusters failed: .*\n", "", text)


def mask(text):
    return re.sub(r"disk size: .*", "disk size: N", text)


def outcome(argv, made, work, impl, tools):
    d = os.path.join(work, impl)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(made, d)
    rc, out = run(["qemu-img"] + argv + ["img.qcow2"], d, tools)
    arc, aout = run(["qemu-img", "check", "img.qcow2"], d, {})
    _, info = run(["qemu-img", "info", "img.qcow2"], d, {})
    return {"status": rc, "output": out, "check after": arc, "check after output": aout,
            "info after": mask(info)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="keep the failing cases' images under this directory")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bmcheck.", dir=os.environ.get("TEST_TMPDIR"))
    # strata's tool under QEMU's name, so messages carry the same program name.
    os.symlink(os.path.abspath(args.strata_img), os.path.join(work, "qemu-img"))
    strata = {"qemu-img": os.path.join(work, "qemu-img")}
    rng = random.Random(args.seed)
    compared = agreed = better = failed = 0
    try:
        for case in range(args.cases):
            made = os.path.join(work, "made")
            shutil.rmtree(made, ignore_errors=True)
            os.mkdir(made)
            desc = make_image(rng, made)
            img = Qcow2File(os.path.join(made, "img.qcow2"))
            where = layout(img)
            pokes = [poke(rng, img, where) for _ in range(rng.choice([1, 1, 2, 3]))]
            name = "case %d (%s; %s)" % (case, desc, "; ".join(pokes))
            for argv in COMMANDS:
                q = outcome(argv, made, work, "qemu", {})
                s = outcome(argv, made, work, "strata", strata)
                compared += 1
                if q == s:
                    agreed += 1
                    continue
                if q["check after"] == 2 and s["check after"] in (0, 3):
                    better += 1
                    print("strata better: %s | %s: QEMU's repair left corruptions, strata's "
                          "status %d" % (name, " ".join(argv), s["check after"]))
                    continue
                if (q["check after"] == 3 and s["check after"] == 0 and
                        (q["status"], without_free_failures(q["output"])) ==
                        (s["status"], without_free_failures(s["output"]))):
                    better += 1
                    print("strata better: %s | %s: same output, QEMU's repaired image leaks "
                          "clusters, strata's is clean" % (name, " ".join(argv)))
                    continue
                failed += 1
                print("FAIL %s | qemu-img %s" % (name, " ".join(argv)))
                for key in q:
                    if q[key] != s[key]:
                        print("  %s:\n    qemu:   %r\n    strata: %r" % (key, q[key], s[key]))
                if args.keep:
                    dest = os.path.join(args.keep, "case-%d" % case)
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(made, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("bitmap check differential, seed %d: %d cases, %d comparisons: %d agree, "
          "%d strata better (QEMU's repair damaged or leaked, strata's did not), %d failed"
          % (args.seed, args.cases, compared, agreed, better, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
