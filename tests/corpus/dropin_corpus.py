#!/usr/bin/env python3
"""Drop-in corpus: generated qemu-img / qemu-io command lines, run through QEMU's tools and
through strata's (installed under QEMU's names by a symlink), compared.

Each case runs in two identical copies of a fixture folder made by QEMU's own tools. A case
agrees when the filtered stdout+stderr, the exit status and the resulting images agree:
files the command left byte-identical in both folders, or (where the bytes may differ by
layout) equal in content by `qemu-img compare` with strata's image passing `qemu-img check`.
Commands that promise not to write (info, check without -r, map, compare, measure,
snapshot -l, qemu-io -r/-s, bench without -w) must also leave every fixture byte-identical
in strata's folder, whatever QEMU does.

The cases are generated, not picked: every option group of each subcommand alone and in
pairs, placed before, between and after the operands (GNU getopt permutes), plus bad values
for every option that takes one. `--slice K/N` runs every N-th case starting at K (CI runs
a slice); with no slice every case runs.

Known divergences (deliberate, or not fixed yet) are listed with a reason in
known_divergences.txt; the run fails on a divergence not listed there and on a listed case
that now agrees (so the list shrinks as fixes land). Prints a table: per subcommand, cases
compared and cases agreeing.
"""
import argparse
import collections
import hashlib
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

import wide_cases

TIMEOUT = 30
# QEMU's tools hang on some inputs (qemu-io's wait_break on an event that never fires);
# those cases are skipped. A QEMU run longer than this counts as such a hang.
QEMU_TIMEOUT = 8
SKIPPED = "skipped: QEMU hangs"

# Fixture files; made once with QEMU's tools, copied for every case.
FIXTURE_SCRIPT = r"""
set -e
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x33 32k 8k' top.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 3M
qemu-io -f qcow2 -c 'write -P 0x44 4k 4k' v2.qcow2 >/dev/null
qemu-img create -q -f raw raw.img 8M
qemu-io -f raw -c 'write -P 0x55 0 4k' -c 'write -P 0x66 1M 512' raw.img >/dev/null
head -c 1000001 /dev/zero > odd.raw
qemu-img create -q -f qcow2 c-base.qcow2 8M
qemu-io -f qcow2 -c 'write -P 0x71 0 1M' -c 'write -z 4M 64k' c-base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b c-base.qcow2 -F qcow2 c-mid.qcow2
qemu-io -f qcow2 -c 'write -P 0x72 1M 1M' -c 'write -P 0x73 6M 32k' c-mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=16k -b c-mid.qcow2 -F qcow2 c-top.qcow2
qemu-io -f qcow2 -c 'write -P 0x74 1M 4k' c-top.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 1M
qemu-io -f qcow2 -c 'write -P 0x75 0 64k' small.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o refcount_bits=1,cluster_size=4k r1.qcow2 8M
qemu-io -f qcow2 -c 'write -P 0x76 0 1M' -c 'write -z 4M 64k' r1.qcow2 >/dev/null
cp raw.img 'r:aw.img'
mkdir sub
qemu-img create -q -f qcow2 sub/base.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x77 0 4k' sub/base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 sub/top.qcow2
head -c 6000 /dev/zero | tr '\0' 'S' > src.bin
cp v2.qcow2 'v:2 q.qcow2'
for spec in 650:5:off 700:5:on 780:28:off 650+651+780:5:off 10:5:off; do
  sectors=${spec%%:*}; rest=${spec#*:}; errno=${rest%%:*}; once=${rest#*:}
  for sector in $(echo $sectors | tr + ' '); do
    printf '[inject-error]\nevent = "read_aio"\nerrno = "%s"\nsector = "%s"\nonce = "%s"\n' \
      $errno $sector $once
  done > "bd-$(echo $spec | tr :+ -_).conf"
done
"""
FIXTURES = ["base.qcow2", "top.qcow2", "v2.qcow2", "raw.img", "odd.raw", "c-base.qcow2",
            "c-mid.qcow2", "c-top.qcow2", "small.qcow2", "r1.qcow2",
            "sub/base.qcow2", "sub/top.qcow2"]

# qemu-img subcommands: option groups (each a list of argv tokens), operand lists, and
# whether the command promises not to write. A group whose last token is a value gets bad
# values tried too (value_index marks it).
IMG = {
    "info": dict(groups=[["-f", "qcow2"], ["--output", "json"], ["--output=human"], ["-U"],
                         ["--backing-chain"]],
                 operands=[["top.qcow2"], ["odd.raw"]], readonly=True),
    "check": dict(groups=[["-f", "qcow2"], ["--output", "json"], ["-q"], ["-U"],
                          ["-T", "writeback"]],
                  operands=[["base.qcow2"], ["v2.qcow2"]], readonly=True),
    "map": dict(groups=[["-f", "qcow2"], ["--output", "json"], ["-U"],
                        ["--output=human"]],
                operands=[["top.qcow2"], ["raw.img"]], readonly=True),
    "measure": dict(groups=[["-O", "qcow2"], ["-f", "qcow2"], ["--output", "json"],
                            ["-o", "cluster_size=4k"]],
                    operands=[["base.qcow2"]], readonly=True),
    "compare": dict(groups=[["-f", "qcow2"], ["-F", "qcow2"], ["-s"], ["-q"], ["-U"]],
                    operands=[["base.qcow2", "top.qcow2"]], readonly=True),
    "create": dict(groups=[["-f", "qcow2"], ["-o", "cluster_size=4k"], ["-b", "base.qcow2"],
                           ["-F", "qcow2"], ["-q"], ["-u"]],
                   operands=[["new.qcow2", "64M"], ["new.img", "1000000"]], readonly=False),
    "resize": dict(groups=[["-f", "qcow2"], ["-q"], ["--shrink"]],
                   operands=[["v2.qcow2", "+1M"], ["raw.img", "4M"]], readonly=False),
    "snapshot": dict(groups=[["-c", "s1"], ["-q"], ["-f", "qcow2"], ["-l"]],
                     operands=[["base.qcow2"]], readonly=False),
    "commit": dict(groups=[["-f", "qcow2"], ["-q"], ["-d"], ["-t", "writeback"]],
                   operands=[["top.qcow2"]], readonly=False),
    "convert": dict(groups=[["-f", "qcow2"], ["-O", "qcow2"], ["-c"], ["-q"],
                            ["-o", "compat=0.10"], ["-S", "4k"]],
                    operands=[["top.qcow2", "out.img"]], readonly=False),
    "rebase": dict(groups=[["-f", "qcow2"], ["-u"], ["-b", "raw.img"], ["-F", "raw"], ["-q"]],
                   operands=[["top.qcow2"]], readonly=False),
    "amend": dict(groups=[["-f", "qcow2"], ["-o", "lazy_refcounts=on"], ["-q"]],
                  operands=[["base.qcow2"]], readonly=False),
    "bench": dict(groups=[["-c", "10"], ["-f", "qcow2"], ["-w"], ["-s", "4k"], ["-d", "2"]],
                  operands=[["base.qcow2"]], readonly=False),
}

BAD_VALUES = ["bogus", "", "-1"]

# qemu-io: program options and commands, each command with its flag groups.
IO_OPTIONS = [["-f", "qcow2"], ["-r"], ["-s"], ["-U"], ["-t", "writeback"], ["-d", "unmap"],
              ["-n"], ["-m"], ["-m", "-n"], ["-T", "foo"]]
IO_COMMANDS = {
    "read": ([["-v"], ["-q"], ["-P", "0x11"], ["-C"]], ["0", "4k"]),
    "write": ([["-q"], ["-P", "0x77"], ["-z"], ["-f"], ["-u"]], ["8k", "4k"]),
    "readv": ([["-v"], ["-q"], ["-P", "0x11"]], ["0", "512", "512"]),
    "writev": ([["-q"], ["-P", "0x77"]], ["64k", "512", "512"]),
    "discard": ([["-q"], ["-C"]], ["0", "64k"]),
    "alloc": ([], ["0", "128k"]),
    "map": ([], []),
    "length": ([], []),
    "info": ([], []),
    "flush": ([], []),
    "truncate": ([], ["32M"]),
}


# Breakpoints on padded (read-modify-write) requests: a raw image over blkdebug with 4 KiB
# request alignment; an unaligned write parks at one of the RMW events while other
# requests run, then resumes. Neither tool may hang; QEMU's own hangs (an event that never
# fires: its wait_break waits forever) are skipped, not compared.
RMW_OPEN = ("open -o driver=raw,file.driver=blkdebug,file.align=4096,"
            "file.image.filename=raw.img")
RMW_EVENTS = ["pwritev_rmw_head", "pwritev_rmw_after_head", "pwritev_rmw_tail",
              "pwritev_rmw_after_tail", "pwritev", "pwritev_done"]
RMW_WRITES = [("512", "512"), ("3584", "1024"), ("4608", "1024"), ("1000", "9000")]
RMW_OTHERS = [["aio_read 64k 4k"], ["write -P 6 128k 4k"], ["aio_write -P 7 1000 100"],
              ["read -P 0x55 0 512"], ["flush"]]


def rmw_cases():
    for event in RMW_EVENTS:
        for off, length in RMW_WRITES:
            for others in RMW_OTHERS:
                cmds = [RMW_OPEN, "break %s A" % event, "aio_write -P 5 %s %s" % (off, length),
                        "wait_break A"] + others + ["resume A", "aio_flush",
                                                    "read -P 5 %s %s" % (off, length)]
                argv = []
                for c in cmds:
                    argv += ["-c", c]
                yield "io breakpoints", argv, False


def img_cases():
    """Yields (group, argv, readonly) for qemu-img."""
    for sub, spec in IMG.items():
        groups, readonly = spec["groups"], spec["readonly"]
        for operands in spec["operands"]:
            yield sub, [sub] + operands, readonly
            chosen = [[g] for g in groups] + [list(p) for p in itertools.combinations(groups, 2)]
            for combo in chosen:
                flat = [t for g in combo for t in g]
                yield sub, [sub] + flat + operands, readonly          # all before
                yield sub, [sub] + operands + flat, readonly          # all after
                if len(combo) == 2:
                    yield sub, [sub] + combo[0] + operands + combo[1], readonly
                if len(operands) == 2:
                    yield sub, [sub] + [operands[0]] + flat + [operands[1]], readonly
            for g in groups:
                if len(g) == 2:
                    for bad in BAD_VALUES:
                        yield sub, [sub, g[0], bad] + operands, readonly
        yield sub, [sub], readonly                                    # no operands
        yield sub, [sub, "--bogus-option"] + spec["operands"][0], readonly


# The size syntax, generated: whole numbers (decimal, a leading 0, hex), fractions (none,
# a bare '.', exact, inexact, digits past a double's precision) and units (each, any case,
# unknown, two letters), through `create` whose "Formatting" line shows the size read.
SIZE_WHOLES = ["0", "1", "010", "1000000", "0x10", "0x"]
SIZE_FRACTIONS = ["", ".", ".5", ".99999999999999999999", ".00000000000000000001"]
SIZE_UNITS = ["", "b", "k", "M", "g", "T", "E", "x", "kB"]
SIZE_EXTRA = [" 1M", "1M ", "-1", "+1", "8E", "7.99E", "16E", "18446744073709551616", ".5k",
              "1e3", ""]
# -o argument shapes: empty items, escaped commas, a bare name, help among others.
OPTION_LISTS = ["", ",", "a=1,", ",a=1", "a=1,,", "a=1,,,", "cluster_size", "lazy_refcounts",
                "cluster_size=4k,help", "help,cluster_size=4k", "size=1M", "=1"]


# Help and option errors of every subcommand and of both programs. QEMU's own banner
# (version, copyright), its format list and its bug-report lines are filtered: strata
# prints its own there.
HELP_SUBCOMMANDS = ["", "amend", "bench", "bitmap", "check", "commit", "compare", "convert",
                    "create", "dd", "info", "map", "measure", "snapshot", "rebase", "resize"]


def help_cases():
    """Yields (group, argv, readonly) for qemu-img's help and option errors."""
    for sub in HELP_SUBCOMMANDS:
        for opt in (["-h"], ["--help"], ["-?"], ["--bogus"], ["-Z"], ["--help", "x"]):
            yield "help", ([sub] if sub else []) + opt, True
    for argv in (["-V"], ["--version"], ["-T", "foo", "info", "raw.img"], ["-T"],
                 ["--trace=foo", "info", "raw.img"], [], ["-h", "info"], ["measure", "-O"],
                 ["measure", "--output"], ["measure", "-h", "-Z"]):
        yield "help", argv, True


def io_help_cases():
    """Yields (group, argv, readonly) for qemu-io's help."""
    for argv in (["-h"], ["--help"], ["-V"], ["-Z"], ["--bogus"], ["-c", "help"]):
        yield "help", argv, True


# convert --salvage: read errors injected by blkdebug into a qcow2 source's data clusters
# (one sector, several, once only, ENOSPC, metadata at sector 10), with and without
# --salvage, to raw and qcow2, in order and out of order.
SALVAGE_CONFIGS = ["650-5-off", "700-5-on", "780-28-off", "650_651_780-5-off", "10-5-off"]


def salvage_cases():
    """Yields (group, argv, readonly) for convert --salvage."""
    for conf in SALVAGE_CONFIGS:
        src = "blkdebug:bd-%s.conf:base.qcow2" % conf
        for extra in ([], ["--salvage"], ["--salvage", "-W"], ["--salvage", "-m", "1"],
                      ["--salvage", "-O", "qcow2"], ["--salvage", "-q"]):
            out_fmt = [] if "-O" in extra else ["-O", "raw"]
            yield "convert salvage", ["convert"] + extra + out_fmt + [src, "out.img"], False
        yield "convert salvage", ["convert", "--salvage", "-f", "qcow2", "base.qcow2", "out.img"], False
    # Options that change how, not what, convert copies: accepted; bad values refused.
    for extra in (["-U"], ["-C"], ["-r", "1M"], ["-r", "x"], ["-r", "-1"], ["--target-is-zero"],
                  ["-n", "--target-is-zero"], ["-U", "-C", "-r", "64k", "-W"]):
        for src in ("base.qcow2", "raw.img"):
            yield "convert target", ["convert"] + extra + ["-O", "raw", src, "out.img"], False
            yield "convert target", ["convert", "-O", "qcow2", src, "out.img"] + extra, False
    # --target-image-opts: the target named by options (needs -n; no -O).
    for target in ("driver=qcow2,file.filename=v2.qcow2", "driver=raw,file.filename=raw.img",
                   "v2.qcow2", "driver=qcow2,file.filename=v2.qcow2,bogus=1"):
        for extra in ([], ["-n"], ["-n", "-O", "raw"], ["-n", "-W"], ["-n", "-f", "raw"]):
            yield "convert target", ["convert", "--target-image-opts"] + extra + \
                ["odd.raw", target], False


# -p progress lines: convert over each fixture with the options that change what counts
# (-S 0, -c, -O qcow2, -B, -W, two sources), and the other subcommands that take -p.
def progress_cases():
    """Yields (group, argv, readonly) for -p."""
    for src in ("base.qcow2", "top.qcow2", "v2.qcow2", "raw.img", "odd.raw", "c-top.qcow2"):
        for extra in ([], ["-S", "0"], ["-c", "-O", "qcow2"], ["-O", "qcow2"], ["-W"],
                      ["-m", "1"], ["-q"]):
            out_fmt = [] if "-O" in extra else ["-O", "raw"]
            yield "progress", ["convert", "-p"] + extra + out_fmt + [src, "out.img"], False
    yield "progress", ["convert", "-p", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2",
                       "top.qcow2", "out.img"], False
    yield "progress", ["convert", "-p", "-O", "raw", "raw.img", "odd.raw", "out.img"], False
    for pair in (["base.qcow2", "top.qcow2"], ["raw.img", "raw.img"], ["base.qcow2", "raw.img"],
                 ["base.qcow2", "base.qcow2"], ["raw.img", "odd.raw"], ["c-top.qcow2", "c-mid.qcow2"],
                 ["c-top.qcow2", "c-top.qcow2"], ["-s", "raw.img", "odd.raw"], ["-q", "raw.img", "raw.img"]):
        yield "progress", ["compare", "-p"] + pair, True
    yield "progress", ["commit", "-p", "top.qcow2"], False
    yield "progress", ["commit", "-p", "c-top.qcow2"], False
    yield "progress", ["rebase", "-p", "-b", "", "top.qcow2"], False
    yield "progress", ["rebase", "-p", "-F", "qcow2", "-b", "c-base.qcow2", "c-top.qcow2"], False
    yield "progress", ["amend", "-p", "-o", "compat=0.10", "base.qcow2"], False
    # A refcount width change: qemu-img's per-1% lines over its three reftable walks,
    # with each cluster size the fixtures have (64k, 512, 16k), alone, beside other
    # options, after a compat upgrade and before a downgrade (one bar over the operations).
    for bits in ("1", "2", "8", "32", "64"):
        for image in ("base.qcow2", "small.qcow2", "c-top.qcow2"):
            yield "progress", ["amend", "-p", "-o", "refcount_bits=" + bits, image], False
    for opts, image in (("refcount_bits=1,lazy_refcounts=on", "base.qcow2"),
                        ("lazy_refcounts=on", "base.qcow2"),
                        ("compat=0.10,refcount_bits=16", "top.qcow2"),
                        ("compat=1.1,refcount_bits=1", "v2.qcow2"),
                        ("compat=1.1,refcount_bits=64,lazy_refcounts=on", "v2.qcow2"),
                        ("compat=0.10,refcount_bits=16", "r1.qcow2"),
                        ("compat=0.10", "r1.qcow2"),
                        ("refcount_bits=16", "r1.qcow2"),
                        ("compat=1.1", "v2.qcow2")):
        yield "progress", ["amend", "-p", "-o", opts, image], False


# File names with colons (and spaces): refused as protocols, reached with file: or ./,
# shown as qemu-img shows them.
COLON_NAMES = ["r:aw.img", "file:r:aw.img", "./r:aw.img", "file:./r:aw.img", "v:2 q.qcow2",
               "file:v:2 q.qcow2", "file:v2.qcow2",
               'json:{"driver": "raw", "file": {"driver": "file", "filename": "r:aw.img"}}']


def colon_name_cases():
    """Yields (group, argv, readonly) for file names with colons."""
    for name in COLON_NAMES:
        yield "colon names", ["info", name], True
        yield "colon names", ["info", "--output=json", name], True
        yield "colon names", ["map", name], True
        yield "colon names", ["check", name], True
        yield "colon names", ["compare", name, "raw.img"], True
        yield "colon names", ["convert", "-O", "qcow2", name, "out.img"], False
        yield "colon names", ["create", "-f", "qcow2", "-b", name, "-F", "raw", "out.img"], False


def syntax_cases():
    """Yields (group, argv, readonly) for the generated size and option-list cases."""
    sizes = [w + f + u for w in SIZE_WHOLES for f in SIZE_FRACTIONS for u in SIZE_UNITS]
    for size in sizes + SIZE_EXTRA:
        yield "create sizes", ["create", "-f", "qcow2", "new.qcow2", size], False
        yield "create sizes", ["create", "-f", "raw", "-o", "size=" + size, "new.img"], False
    for text in OPTION_LISTS:
        yield "option lists", ["create", "-f", "qcow2", "-o", text, "new.qcow2", "1M"], False
        yield "option lists", ["convert", "-O", "qcow2", "-o", text, "base.qcow2", "out.img"], False
        yield "option lists", ["measure", "-O", "qcow2", "-o", text, "--size", "1M"], True
        yield "option lists", ["amend", "-f", "qcow2", "-o", text, "base.qcow2"], False


# qemu-img dd: every operand value class crossed (block sizes, counts, skips; within, at
# and past the end; bad values), then program options and operand faults.
DD_BLOCK_SIZES = ["512", "4k", "1000", "1.5k", "0", "2G", "xx"]
DD_COUNTS = [None, "0", "2", "99999", "xx"]
DD_SKIPS = [None, "0", "1", "2048", "99999", "-1"]


def dd_cases():
    """Yields (group, argv, readonly) for qemu-img dd."""
    for bs in DD_BLOCK_SIZES:
        for count in DD_COUNTS:
            for skip in DD_SKIPS:
                argv = ["dd", "if=raw.img", "of=out.img", "bs=" + bs]
                if count is not None:
                    argv.append("count=" + count)
                if skip is not None:
                    argv.append("skip=" + skip)
                yield "dd", argv, False
    for opts in ([], ["-f", "qcow2"], ["-O", "qcow2"], ["-U"], ["-f", "raw", "-O", "qcow2"],
                 ["-O", "bogus"], ["-f", ""], ["-q"], ["-o", "x"], ["--image-opts"]):
        for operands in (["if=top.qcow2", "of=out.img"], ["if=odd.raw", "of=out.img", "bs=1000"],
                         ["of=out.img", "if=v2.qcow2", "count=3", "bs=4k", "skip=1"]):
            yield "dd", ["dd"] + opts + operands, False
            yield "dd", ["dd"] + operands + opts, False
    for operands in ([], ["if=raw.img"], ["of=out.img"], ["if=raw.img", "of=out.img", "extra"],
                     ["if=raw.img", "of=out.img", "=x"], ["if=raw.img", "of=out.img", "conv=x"],
                     ["if=nonexist", "of=out.img"], ["if=", "of=out.img"],
                     ["if=raw.img", "of="], ["if=raw.img", "of=out.img", "if=top.qcow2"],
                     ["if=raw.img", "of=out.img", "bs=1k", "bs=2k", "count=1"],
                     ["if=raw.img", "of=out.img", "bs=0x10k", "count=1"]):
        yield "dd", ["dd"] + operands, False


def io_cases():
    """Yields (group, argv, readonly) for qemu-io."""
    image = "base.qcow2"
    for name, (groups, operands) in IO_COMMANDS.items():
        writes = name in ("write", "writev", "discard", "truncate")
        variants = [[]] + [[g] for g in groups] + [list(p) for p in itertools.combinations(groups, 2)]
        for combo in variants:
            flat = [t for g in combo for t in g]
            for cmd in {" ".join([name] + flat + operands), " ".join([name] + operands + flat)}:
                yield "io " + name, ["-f", "qcow2", "-c", cmd, image], False
                yield "io " + name, ["-c", cmd, image, "-f", "qcow2"], False
                yield "io " + name, ["-r", "-c", cmd, image], True
                if writes:
                    yield "io " + name, ["-s", "-c", cmd, image], True
    for opt in IO_OPTIONS:
        for cmd in ("write -P 0x99 0 4k", "read -P 0x11 0 4k", "map"):
            ro = "-r" in opt or "-s" in opt or not cmd.startswith("write")
            yield "io options", opt + ["-c", cmd, image], ro
            yield "io options", ["-c", cmd, image] + opt, ro
            yield "io options", ["-c", cmd] + opt + [image], ro


# Copy-on-read (qemu-io -C, open -C): reads over an overlay copy what they find below into
# it, whole clusters; `map` afterwards shows what was copied. Reads cover data in the top,
# data and zeroes in the base, nothing anywhere, cluster-straddling and unaligned ranges,
# the image end; plus -C with -r (refused), with -s, on a raw image and with aio_read.
# (An aio request's report next to a later `map` is left out: QEMU prints it before or
# after the map depending on its event loop's turns, whatever copy-on-read does.)
COR_READS = ["read 0 4k", "read 4k 8k", "read 1M 64k", "read 32k 8k", "read 65000 1000",
             "read 3M 4k", "read -P 0x22 1M 4k", "readv 60k 4k 4k", "read 63M 1M",
             "read 64M 512", "read 2M 512", "read 0 40M", "read 1M 17M"]


def cor_cases():
    """Yields (group, argv, readonly) for qemu-io copy-on-read."""
    for read in COR_READS:
        yield "io cor", ["-C", "-c", read, "-c", "map", "top.qcow2"], False
        yield "io cor", ["-c", "open -C top.qcow2", "-c", read, "-c", "map"], False
    for first, second in itertools.combinations(COR_READS[:6], 2):
        yield "io cor", ["-C", "-c", first, "-c", second, "-c", "map", "top.qcow2"], False
    for extra in (["-r"], ["-s"], ["-U"], ["-f", "qcow2"], ["-t", "none"], ["-n"]):
        yield "io cor", ["-C"] + extra + ["-c", "read 0 128k", "-c", "map", "top.qcow2"], \
            "-r" in extra or "-s" in extra
    yield "io cor", ["-C", "-f", "raw", "-c", "read 0 4k", "-c", "map", "raw.img"], False
    yield "io cor", ["-C", "-c", "read 0 64k", "-c", "map", "base.qcow2"], False
    yield "io cor", ["-C", "-c", "write -P 0x77 0 4k", "-c", "read 0 128k", "-c", "map",
                     "top.qcow2"], False
    yield "io cor", ["-c", "open -C -r top.qcow2", "-c", "read 0 4k"], True
    # aio_flush first: when QEMU prints an aio report relative to a later map depends on
    # its event loop's turns, not on copy-on-read.
    yield "io cor", ["-C", "-c", "aio_read 0 4k", "-c", "aio_read 1M 8k", "-c", "aio_flush",
                     "-c", "map", "top.qcow2"], False


# The copy-on-read filter (driver=copy-on-read) over a three-image chain (16k clusters
# in the top, 64k below), in --image-opts and json: forms, with `bottom` naming a node
# of the chain by node-name (inclusive limit), a missing node, no bottom; reads over data
# in each layer, zero clusters, nothing anywhere, unaligned and straddling ranges; writes,
# zero writes and discards through the filter; read-only opens (refused).
COR_FILTER_READS = ["read 0 64k", "read 1M 8k", "read 1020k 8k", "read 4M 64k",
                    "read 6M 4k", "read 7M 4k", "read 100 1000", "read 0 8M",
                    "read -P 0x72 1040k 4k"]


# Clusters freed and allocated again in one run of qemu-io: QEMU reuses a cluster that a
# discard (or a zero write with unmap) gave back for the next allocation, of data or of
# compressed bytes, so the file keeps its size. These cases compare the images byte for
# byte (layout included), not just their content: see STRICT_LAYOUT_GROUPS.
REUSE_IMAGES = [("base.qcow2", 65536, "0"), ("v2.qcow2", 4096, "4k"),
                ("small.qcow2", 512, "0")]
REUSE_FREES = ["discard {at} {c}", "write -z -u {at} {c}", "discard {at} {c2}",
               "write -z {at} {c}", "discard {at} {half}"]
REUSE_ALLOCS = [["write -P 0x5a 2M {c}"], ["write -c -P 0x5b 2M {c}"],
                ["writev -P 0x5c 2M {half} {half}"], ["aio_write -P 0x5d 2M {c}", "aio_flush"],
                ["write -P 0x5e 2M 512"], ["write -P 0x5f 2M {c3}"],
                ["write -c -P 0x60 2M {c}", "write -c -P 0x61 {next} {c}"]]
# (One compressed write of several clusters is left out: QEMU compresses them in parallel
# and places them in the order the threads finish, which varies from run to run.)


def reuse_cases():
    for image, cluster, at in REUSE_IMAGES:
        sizes = dict(at=at, c=cluster, c2=2 * cluster, c3=3 * cluster, half=cluster // 2,
                     next=(2 << 20) + cluster)
        for free in REUSE_FREES:
            for alloc in REUSE_ALLOCS:
                cmds = [free.format(**sizes)] + [a.format(**sizes) for a in alloc]
                args = [t for c in cmds for t in ("-c", c)]
                yield "io reuse", ["-f", "qcow2"] + args + [image], False
                yield "io reuse", ["-f", "qcow2", "-t", "writeback"] + args + [image], False


# Safe rebases onto every kind of new backing: what qemu-img copies into the image (only
# the sectors that differ; zeroes past the old backing's end; nothing the new backing's
# own chain already holds) shows in the image's layout, compared byte for byte, and its
# -p figures in the output.
REBASE_CASES = [("top.qcow2", ["-b", ""]), ("top.qcow2", ["-b", "raw.img", "-F", "raw"]),
                ("top.qcow2", ["-b", "v2.qcow2", "-F", "qcow2"]),
                ("c-top.qcow2", ["-b", "c-base.qcow2", "-F", "qcow2"]),
                ("c-top.qcow2", ["-b", "", "-f", "qcow2"]),
                ("c-top.qcow2", ["-b", "base.qcow2", "-F", "qcow2"]),
                ("c-mid.qcow2", ["-b", "", "-f", "qcow2"]),
                ("c-mid.qcow2", ["-b", "top.qcow2", "-F", "qcow2"])]


def rebase_layout_cases():
    for image, opts in REBASE_CASES:
        for extra in ([], ["-p"], ["-p", "-q"]):
            yield "rebase layout", ["rebase"] + extra + opts + [image], False
            yield "rebase layout", ["rebase", image] + opts + extra, False


STRICT_LAYOUT_GROUPS = {"io reuse", "rebase layout"}


def cor_filter_options(bottom, form):
    top = {"driver": "qcow2", "node-name": "top", "file": {"filename": "c-top.qcow2"},
           "backing": {"driver": "qcow2", "node-name": "mid", "file": {"filename": "c-mid.qcow2"},
                       "backing": {"driver": "qcow2", "node-name": "base",
                                   "file": {"filename": "c-base.qcow2"}}}}
    opts = {"driver": "copy-on-read", "file": top}
    if bottom is not None:
        opts["bottom"] = bottom
    if form == "json":
        return ["json:" + json.dumps(opts)]

    def flat(prefix, tree):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flat(prefix + key + ".", value)
            else:
                yield prefix + key + "=" + value
    return ["--image-opts", ",".join(flat("", opts))]


def cor_filter_cases():
    """Yields (group, argv, readonly) for the copy-on-read filter driver."""
    # (bottom=top, the filtered node itself, is left out: QEMU 7.2 walks the whole chain
    # then and crashes on a read of a range allocated nowhere; strata copies nothing.)
    for bottom in (None, "mid", "base", "nope"):
        for form in ("opts", "json"):
            image = cor_filter_options(bottom, form)
            for read in COR_FILTER_READS:
                yield "io cor filter", ["-c", read, "-c", "map"] + image, False
            yield "io cor filter", ["-c", "read 0 2M", "-c", "read 4M 4M", "-c", "map"] + image, False
            yield "io cor filter", ["-c", "write -P 0x9 1M 4k", "-c", "write -z 4M 8k",
                                    "-c", "discard 6M 64k", "-c", "read 0 8M", "-c", "map",
                                    "-c", "info", "-c", "length"] + image, False
    for extra in (["-r"], ["-U"], ["-n"], ["-t", "none"]):
        yield "io cor filter", extra + ["-c", "read 0 1M", "-c", "map"] + \
            cor_filter_options("mid", "opts"), "-r" in extra
    yield "io cor filter", ["--image-opts", "-c", "read 0 4k", "driver=copy-on-read"], True


# Open options of a qcow2 node and its file node, each with good and bad values, given
# at open (--image-opts) and changed by `reopen -o` (QEMU's mutable options change; the
# others are refused unless they keep their value; a failed reopen leaves the image open
# as it was). Each case writes and reads back afterwards.
OPEN_OPTIONS = {
    "l2-cache-size": ["1M", "0", "bad", "-1"],
    "refcount-cache-size": ["64k", "bad", "-1"],
    "cache-size": ["2M", "1x"],
    "cache-clean-interval": ["0", "5", "-1", "4294967296", "bad"],
    "lazy-refcounts": ["on", "off", "maybe"],
    "pass-discard-request": ["on", "bogus"],
    "pass-discard-snapshot": ["off"],
    "pass-discard-other": ["on", "off"],
    "overlap-check": ["none", "constant", "cached", "all", "bogus"],
    "overlap-check.template": ["all", "none", "bogus"],
    "overlap-check.main-header": ["off", "x"],
    "overlap-check.bogus": ["on"],
    "l2-cache-entry-size": ["512", "4096", "65536", "256", "131072", "1000", "x"],
    "discard-no-unref": ["on", "off"],
    "cache.direct": ["on", "off", "bad"],
    "cache.no-flush": ["on", "x"],
    "cache.foo": ["1"],
    "detect-zeroes": ["on", "off", "unmap", "bogus"],
    "discard": ["unmap", "ignore", "bogus"],
    "auto-read-only": ["on", "off"],
    "force-share": ["off", "x"],
    "file.locking": ["on", "off", "auto", "bad"],
    "file.aio": ["threads", "bogus"],
    "file.bogus": ["1"],
    "file.cache.direct": ["on"],
    "file.cache.no-flush": ["on"],
    "file.filename": ["top.qcow2", "other.qcow2"],
    "driver": ["qcow2", "raw"],
    "node-name": ["x"],
    "data-file": ["x"],
}
OPEN_OPTION_PAIRS = ["l2-cache-size=1M,cache-size=4M", "l2-cache-size=1M,refcount-cache-size=1M",
                     "l2-cache-size=1M,refcount-cache-size=1M,cache-size=1M",
                     "discard=unmap,detect-zeroes=unmap", "cache.direct=on,cache.no-flush=on"]
# QEMU's deprecated short-form booleans ("key" = key=on, "nokey" = key=off, with a warning).
SHORT_FORMS = ["cache.direct", "nocache.no-flush", "lazy-refcounts", "nolazy-refcounts", "foo",
               "read-only", "noread-only", "force-share,read-only", "x,y"]


def open_option_cases():
    """Yields (group, argv, readonly) for open options and reopen -o."""
    check = ["-c", "write -P 0x5a 64k 4k", "-c", "read -P 0x5a 64k 4k", "-c", "map"]
    settings = ["%s=%s" % (k, v) for k, values in OPEN_OPTIONS.items() for v in values]
    for setting in settings + OPEN_OPTION_PAIRS:
        yield "io open options", ["--image-opts"] + check + \
            ["driver=qcow2,file.filename=top.qcow2," + setting], False
        yield "io reopen", ["-c", "reopen -o " + setting] + check + ["top.qcow2"], False
    for setting in SHORT_FORMS:
        image = "driver=qcow2,file.filename=top.qcow2," + setting
        yield "io open options", ["--image-opts"] + check + [image], False
        yield "io open options", ["-c", "open -o " + image] + check, False
        # (reopen -o read-only=on under a writer: QEMU's refusal names its node
        # "#block1NN", two random digits; the filters make that '#blockN'.)
        yield "io reopen", ["-c", "reopen -o " + setting] + check + ["top.qcow2"], False
        yield "io open options", ["-c", "open -o %s top.qcow2" % setting] + check, False
    for setting in ("l2-cache-size=1M", "cache.direct=on", "lazy-refcounts=on",
                    "read-only=on", "read-only=off"):
        yield "io reopen", ["-c", "reopen -r -o " + setting] + check + ["top.qcow2"], False
        yield "io reopen", ["-r", "-c", "reopen -w -o " + setting] + check + ["top.qcow2"], False
        yield "io reopen", ["-c", "reopen -o " + setting, "-c", "reopen -o " + setting] + \
            check + ["top.qcow2"], False


def short_form_img_cases():
    """Yields (group, argv, readonly): qemu-img --image-opts with short-form booleans."""
    for setting in SHORT_FORMS:
        image = "driver=qcow2,file.filename=top.qcow2," + setting
        yield "info", ["info", "--image-opts", image], True
        yield "map", ["map", "--image-opts", image], True
        yield "check", ["check", "--image-opts", image], True


# --image-opts beside -f (or compare's -F), in every subcommand and both positions: QEMU
# refuses the pair when it opens the image; qemu-io also takes at most one file. And
# blkdebug named by options (its image child is never probed; its name and the "disk size"
# line as QEMU gives them).
IMAGE_OPTS_OPERANDS = {
    "info": [], "check": [], "map": [], "measure": [], "snapshot": ["-l"],
    "commit": [], "resize": ["+1M"], "amend": ["-o", "lazy_refcounts=on"],
    "rebase": ["-u", "-b", ""], "bench": ["-c", "1"], "convert": ["out.img"],
    "compare": ["driver=raw,file.filename=raw.img"], "bitmap": ["--add", "b0"],
}


def option_conflict_cases():
    """Yields (tool, group, argv, readonly) for --image-opts with a format, -U with writes,
    and blkdebug named by options."""
    image = "driver=qcow2,file.filename=top.qcow2"
    for sub, extra in IMAGE_OPTS_OPERANDS.items():
        for fmt in (["-f", "qcow2"], ["-f", ""], ["--format=raw"]):
            if sub == "bitmap":
                argv = [sub, "--image-opts"] + fmt + extra[:1] + [image] + extra[1:]
            elif sub in ("resize", "compare", "convert"):
                argv = [sub, "--image-opts"] + fmt + [image] + extra
            else:
                argv = [sub, "--image-opts"] + fmt + extra + [image]
            yield "qemu-img", "image-opts conflicts", argv, False
            yield "qemu-img", "image-opts conflicts", argv[:1] + argv[2:] + ["--image-opts"], False
    yield "qemu-img", "image-opts conflicts", ["compare", "--image-opts", "-F", "raw", image,
                                                "driver=raw,file.filename=raw.img"], True
    yield "qemu-img", "image-opts conflicts", ["dd", "--image-opts", "-f", "raw",
                                                "if=driver=raw,file.filename=raw.img",
                                                "of=out.img"], False
    for argv in (["a", "b"], ["--image-opts", "-f", "raw", "a", "b"], ["--image-opts", "-f", "raw"],
                 ["--image-opts", "-f", "raw", "-c", "read 0 4k", image],
                 ["-c", "read 0 4k", "--image-opts", image, "-f", "qcow2"]):
        yield "qemu-io", "image-opts conflicts", argv, True
    # -U (force-share) with a write: refused by qemu-img bench; allowed by qemu-io with -s
    # (the image is read-only under the temporary overlay). Neither writes the image.
    for argv in (["bench", "-U", "-w", "-c", "1", "base.qcow2"],
                 ["bench", "-w", "-c", "1", "-U", "base.qcow2"],
                 ["bench", "-U", "-c", "1", "base.qcow2"]):
        yield "qemu-img", "force-share", argv, True
    for argv in (["-U", "-s", "-c", "write 0 4k", "base.qcow2"],
                 ["-U", "-s", "-c", "write -P 0xcd 0 4k", "-c", "read -P 0xcd 0 4k", "base.qcow2"],
                 ["-c", "open -U -s base.qcow2", "-c", "write 0 4k"],
                 ["-s", "-c", "write 0 4k", "base.qcow2", "-U"]):
        yield "qemu-io", "force-share", argv, True
    # resize's size operand: one sign taken off, the rest checked as the 'size' option.
    for size in ("xyz", "+xyz", "-", "+", "1Q", "-1Q", "1.5", "--", "++1M", "0x10", " ",
                 "99999999999999999999", "-99999999999999999999", "16E", "1e3", "0x1M",
                 "1.5M", "-1.5k", "+0", "", "8M", "+4M", "-1M", "9223372036854775807",
                 "9223372036854775808", "9223372035781033985", "+9223372035781034496", "8E",
                 "7E"):
        for image in ("v2.qcow2", "raw.img"):
            yield "qemu-img", "resize sizes", ["resize", image, size], False
            yield "qemu-img", "resize sizes", ["resize", "--shrink", "-f", "raw", "raw.img",
                                               size], False
    # Sizes where the option parser and the block layer's limits speak: amend's size,
    # convert's -S (whole sectors, at most 16 MiB) and -r.
    for value in ("xyz", "-1", "1.5", "0x10", "16E", "99999999999999999999",
                  "9223372036854775807", "9223372036854775808", "9223372035781033985", "7E",
                  "512", "513", "16M", "17M", "4k"):
        yield "qemu-img", "size values", ["amend", "-o", "size=" + value, "v2.qcow2"], False
        yield "qemu-img", "size values", ["convert", "-S", value, "-O", "raw", "raw.img",
                                          "out.img"], False
        yield "qemu-img", "size values", ["convert", "-r", value, "-O", "raw", "raw.img",
                                          "out.img"], False
    conf = "bd-10-5-off.conf"
    for opts in ("driver=blkdebug,image.filename=top.qcow2,config=" + conf,
                 "driver=blkdebug,image.filename=top.qcow2",
                 "driver=qcow2,file.driver=blkdebug,file.image.filename=top.qcow2",
                 "driver=raw,file.driver=blkdebug,file.image.filename=base.qcow2,file.config=" + conf,
                 "driver=qcow2,file.driver=blkdebug,file.config=%s,file.image.filename=base.qcow2"
                 % conf):
        yield "qemu-img", "blkdebug options", ["info", "--image-opts", opts], True
        yield "qemu-img", "blkdebug options", ["info", "--output=json", "--image-opts", opts], True
        yield "qemu-io", "blkdebug options", ["--image-opts", "-c", "read -v 0 16", opts], True
    for legacy in ("blkdebug:%s:top.qcow2" % conf, "blkdebug::raw.img"):
        yield "qemu-img", "blkdebug options", ["info", legacy], True
        yield "qemu-img", "blkdebug options", ["info", "-f", "raw", legacy], True


FILTERS = [
    (re.compile(r"[0-9]* ops; [0-9/:. sec]* \([0-9/.inf]* [EPTGMKiBbytes]*/sec and "
                r"[0-9/.inf]* ops/sec\)"), "X ops; TIME"),
    (re.compile(r"^[0-9]+,[0-9]+,[0-9:.]+,[0-9.]+,[0-9.]+$", re.M), "CSV"),
    (re.compile(r"^disk size: (?!unavailable).*$", re.M), "disk size: X"),
    (re.compile(r'"actual-size": [0-9]+'), '"actual-size": X'),
    (re.compile(r"Run completed in [0-9.]+ seconds\."), "Run completed in X seconds."),
    (re.compile(r"/var/tmp/vl\.[A-Za-z0-9]+"), "TMP"),
    (re.compile(r"^(qemu-img|qemu-io) version .*\nCopyright .*$", re.M), "BANNER"),
    (re.compile(r"^Supported formats: .*$", re.M), "Supported formats: X"),
    # QEMU's automatic node names end in two random digits.
    (re.compile(r"#block[0-9]+"), "#blockN"),
    # getopt names the program by argv[0], here the path of each implementation's symlink.
    (re.compile(r"^/\S*/bin-(qemu|strata)/(qemu-img|qemu-io):", re.M), r"\2:"),
    (re.compile(r"^See <https://qemu.org/contribute/report-a-bug> for how to report bugs\.\n"
                r"More information on the QEMU project at <https://qemu.org>\.$", re.M), "FOOTER"),
    (re.compile(r"^Report bugs to the strata project; this is not QEMU's (qemu-img|qemu-io)\.$",
                re.M), "FOOTER"),
]


def normalise(text, folder):
    text = text.replace(folder + "/", "").replace(folder, ".")
    for pattern, repl in FILTERS:
        text = pattern.sub(repl, text)
    return text


def digest(path):
    """md5 of a file's size and of its data extents (holes skipped, so that a sparse
    exabyte raw image hashes at once); files equal in bytes and in layout hash equal."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        h.update(str(size).encode())
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break  # no data after pos
            end = os.lseek(fd, start, os.SEEK_HOLE)
            h.update(str(start).encode())
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                remaining -= len(chunk)
            pos = end
    return h.hexdigest()


def _no_core_files():
    # qemu-io's abort and sigraise commands kill the tool on purpose: no core file may
    # land among the compared files.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(tool_dir, tool, argv, cwd, timeout):
    try:
        p = subprocess.run([os.path.join(tool_dir, tool)] + argv, cwd=cwd, capture_output=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=_no_core_files)
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        return out, p.returncode
    except subprocess.TimeoutExpired:
        return "TIMEOUT", -999


def same_content(a, b):
    """Two images equal in content (qemu-img compare -U), b passing qemu-img check."""
    cmp = subprocess.run(["qemu-img", "compare", "-U", a, b], capture_output=True,
                         timeout=TIMEOUT)
    if cmp.returncode != 0:
        return False
    with open(b, "rb") as f:
        if f.read(4) != b"QFI\xfb":
            return True
    chk = subprocess.run(["qemu-img", "check", "-U", b], capture_output=True, timeout=TIMEOUT)
    return chk.returncode == 0


def compare_case(work, tools, tool, argv, readonly, strict_layout=False):
    """Returns None when the case agrees, else a short reason. With strict_layout, images
    must be equal byte for byte (and in holes), not just in content."""
    outs = {}
    before = {}
    for impl in ("qemu", "strata"):
        folder = os.path.join(work, impl)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(os.path.join(work, "fixtures"), folder)
        before[impl] = {f: digest(os.path.join(folder, f)) for f in FIXTURES}
        out, rc = run(tools[impl], tool, argv, folder,
                      QEMU_TIMEOUT if impl == "qemu" else TIMEOUT)
        outs[impl] = (normalise(out, folder), rc)
    q, s = outs["qemu"], outs["strata"]
    if s[1] == -999:
        return "strata hangs"
    if q[1] == -999:
        return SKIPPED
    # qemu-io's abort and sigraise end the process by a signal on purpose, in both tools.
    on_purpose = q[1] == s[1] and any(a.startswith(("abort", "sigraise")) for a in argv)
    if (s[1] < 0 or s[1] >= 128) and not on_purpose:
        return "strata crashed (status %d)" % s[1]
    sdir, qdir = os.path.join(work, "strata"), os.path.join(work, "qemu")
    if readonly:
        for f in FIXTURES:
            if digest(os.path.join(sdir, f)) != before["strata"][f]:
                return "strata wrote %s although the command promises not to write" % f
    if q != s:
        return "output or status differs"
    for f in sorted(set(os.listdir(qdir)) | set(os.listdir(sdir))):
        qf, sf = os.path.join(qdir, f), os.path.join(sdir, f)
        if os.path.exists(qf) != os.path.exists(sf):
            return "file %s exists in one folder only" % f
        if not os.path.isfile(qf) or digest(qf) == digest(sf):
            continue
        if strict_layout:
            return "image %s differs in layout" % f
        if not same_content(qf, sf):
            return "image %s differs in content (or fails qemu-img check)" % f
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--slice", default="0/1", help="K/N: every N-th case from the K-th")
    ap.add_argument("--known", default=os.path.join(os.path.dirname(__file__),
                                                    "known_divergences.txt"))
    ap.add_argument("--only", default="", help="run only groups containing this text")
    ap.add_argument("--match", default="", help="run only command lines containing this text")
    ap.add_argument("--list-divergences", action="store_true",
                    help="print every divergence as a known_divergences.txt line")
    args = ap.parse_args()
    # Some cases carry bytes that are not UTF-8 (as surrogate escapes): print them escaped.
    sys.stdout.reconfigure(errors="backslashreplace")
    k, n = (int(x) for x in args.slice.split("/"))

    known = {}
    with open(args.known) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                case, _, reason = line.partition("\t")
                known[case] = reason

    work = tempfile.mkdtemp(prefix="dropin.", dir=os.environ.get("TEST_TMPDIR"))
    try:
        tools = {"qemu": os.path.join(work, "bin-qemu"), "strata": os.path.join(work, "bin-strata")}
        for impl in tools:
            os.mkdir(tools[impl])
        for tool, strata in (("qemu-img", args.strata_img), ("qemu-io", args.strata_io)):
            os.symlink(shutil.which(tool), os.path.join(tools["qemu"], tool))
            os.symlink(os.path.abspath(strata), os.path.join(tools["strata"], tool))
        fixtures = os.path.join(work, "fixtures")
        os.mkdir(fixtures)
        subprocess.run(["bash", "-c", FIXTURE_SCRIPT], cwd=fixtures, check=True)

        cases = ([("qemu-img",) + c for c in img_cases()] +
                 [("qemu-img",) + c for c in syntax_cases()] +
                 [("qemu-img",) + c for c in help_cases()] +
                 [("qemu-img",) + c for c in salvage_cases()] +
                 [("qemu-img",) + c for c in progress_cases()] +
                 [("qemu-img",) + c for c in colon_name_cases()] +
                 [("qemu-io",) + c for c in io_help_cases()] +
                 [("qemu-img",) + c for c in dd_cases()] +
                 [("qemu-io",) + c for c in io_cases()] +
                 [("qemu-io",) + c for c in cor_cases()] +
                 [("qemu-io",) + c for c in cor_filter_cases()] +
                 [("qemu-io",) + c for c in open_option_cases()] +
                 [("qemu-img",) + c for c in short_form_img_cases()] +
                 [("qemu-io",) + c for c in rmw_cases()] +
                 [("qemu-io",) + c for c in reuse_cases()] +
                 [("qemu-img",) + c for c in rebase_layout_cases()] +
                 list(option_conflict_cases()) +
                 list(wide_cases.wide_cases()))
        seen = set()
        table = collections.OrderedDict()
        new_divergences, fixed = [], []
        skipped = 0
        for index, (tool, group, argv, readonly) in enumerate(cases):
            key = tool + " " + " ".join(repr(a) if (" " in a or a == "") else a for a in argv)
            if key in seen:
                continue
            seen.add(key)
            if index % n != k or args.only not in group or args.match not in key:
                continue
            reason = compare_case(work, tools, tool, argv, readonly,
                                  strict_layout=group in STRICT_LAYOUT_GROUPS)
            if reason == SKIPPED:
                skipped += 1
                continue
            row = table.setdefault(group, [0, 0])
            row[0] += 1
            if reason is None:
                row[1] += 1
                # "varies": QEMU's own output differs from run to run and strata gives one
                # of its answers; such a case may agree or not.
                if key in known and not known[key].startswith("varies"):
                    fixed.append(key)
            elif args.list_divergences:
                print("%s\t%s" % (key, reason))
            elif key not in known:
                new_divergences.append((key, reason))
        print("%-16s %8s %8s" % ("subcommand", "compared", "agree"))
        for group, (compared, agree) in table.items():
            print("%-16s %8d %8d" % (group, compared, agree))
        total = sum(r[0] for r in table.values())
        agree = sum(r[1] for r in table.values())
        print("%-16s %8d %8d" % ("total", total, agree))
        print("skipped (QEMU hangs): %d" % skipped)
        for key, reason in new_divergences:
            print("NEW DIVERGENCE: %s: %s" % (key, reason))
        for key in fixed:
            print("NOW AGREES (remove from known_divergences.txt): %s" % key)
        return 1 if (new_divergences or fixed) and not args.list_divergences else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
