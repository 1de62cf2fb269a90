#!/usr/bin/env python3
"""convert with failing source reads, differential: generated qcow2 images whose data
clusters fail to read (blkdebug error injection), converted by QEMU's qemu-img and by
strata's, exit status and messages compared.

Every case is drawn from a seeded generator. QEMU's tools make the image: a cluster size
(4 or 64 KiB) and one to eight extents of data (4 KiB to 3 MiB) at random places of 32
MiB. One to three sectors inside its data clusters (found with `qemu-img map`) fail with
EIO, each every time or once only. The command line takes one of: the defaults, `-m N`
(1-16 coroutines), `-W`, `-S 0`, `-O qcow2`, `-c -O qcow2`.

qemu-img reports a failed read per copy coroutine: which reads are in flight together
depends on its event loop, so its output can differ between runs. Each case runs
qemu-img twice and strata once; strata agrees if it matches either. Counted apart, not
failed: a case whose exit status and first line agree and only the further lines differ
(another coroutine's failure that qemu-img's timing did or did not reach). Failed: a
different exit status or first line, or more timing-only differences than --max-timing
(percent of the cases).

`--cases N --seed S` choose the corpus; exits 1 on any failure.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

OPTIONS = [[], ["-m", None], ["-W"], ["-S", "0"], ["-O", "qcow2"], ["-c", "-O", "qcow2"]]


def make_case(rng, work):
    """Builds the image and the blkdebug config in `work`; returns the convert argv."""
    image = os.path.join(work, "src.qcow2")
    cluster = rng.choice([4096, 65536])
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"cluster_size={cluster}", image, "32M"], check=True)
    writes = []
    for _ in range(rng.randint(1, 8)):
        off = rng.randrange(0, 32 << 20, 4096)
        length = min(rng.choice([4096, 65536, 1 << 20, 3 << 20]), (32 << 20) - off)
        writes += ["-c", f"write -P {rng.randint(1, 255)} {off} {length}"]
    subprocess.run(["qemu-io", "-f", "qcow2", *writes, image], check=True,
                   stdout=subprocess.DEVNULL)
    mapped = json.loads(subprocess.run(["qemu-img", "map", "--output=json", image],
                                       capture_output=True, text=True, check=True).stdout)
    data = [e for e in mapped if e.get("data")]
    rules = []
    for _ in range(rng.randint(1, 3)):
        extent = rng.choice(data)
        host = extent["offset"] + rng.randrange(0, extent["length"], 512)
        once = rng.choice(["off", "off", "on"])
        rules.append(f'[inject-error]\nevent = "read_aio"\nerrno = "5"\n'
                     f'sector = "{host // 512}"\nonce = "{once}"\n')
    conf = os.path.join(work, "errors.conf")
    with open(conf, "w") as f:
        f.write("".join(rules))
    opts = [o if o is not None else str(rng.randint(1, 16)) for o in rng.choice(OPTIONS)]
    if "-O" not in opts:
        opts += ["-O", "raw"]
    return ["convert", *opts, f"blkdebug:{conf}:{image}", os.path.join(work, "out.img")]


def run(tool, argv, work):
    r = subprocess.run([tool, *argv], capture_output=True, text=True, timeout=60, cwd=work)
    # The tools name themselves in their messages; strata may be installed under its own name.
    lines = [l.split(": ", 1)[1] if ": " in l else l for l in r.stderr.splitlines()]
    return r.returncode, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-timing", type=float, default=10.0)
    args = ap.parse_args()
    strata = os.path.abspath(args.strata_img)
    rng = random.Random(args.seed)
    agree = timing = failed = 0
    for case in range(args.cases):
        work = tempfile.mkdtemp(prefix="convert_errors.")
        try:
            argv = make_case(rng, work)
            qemu = [run("qemu-img", argv, work) for _ in range(2)]
            ours = run(strata, argv, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        shown = " ".join(argv).replace(work + "/", "")
        if ours in qemu:
            agree += 1
        elif ours[0] == qemu[0][0] and ours[1][:1] == qemu[0][1][:1]:
            timing += 1
            print(f"timing: case {case}: {shown}: qemu-img {qemu[0][1]} strata {ours[1]}")
        else:
            failed += 1
            print(f"FAILED: case {case}: {shown}: qemu-img {qemu} strata {ours}")
    limit = args.max_timing * args.cases / 100
    print(f"{args.cases} cases (seed {args.seed}): {agree} agree, {timing} differ only in "
          f"further lines (limit {limit:.1f}), {failed} failed")
    return 1 if failed or timing > limit else 0


if __name__ == "__main__":
    sys.exit(main())
