#!/usr/bin/env python3
"""strata-nbd against qemu-nbd, judged by clients nobody here wrote.

For each configuration (image kind x qemu-nbd options), the same image is served once
by qemu-nbd and once by strata-nbd (each on its own copy), and the same client commands
run against both: nbdinfo --json / --map (base:allocation and qemu:allocation-depth),
qemu-img info / map / compare, `qemu-nbd -L` and `strata-nbd -L` (every lister against
every server), nbdcopy, qemu-io reads with patterns, writes, write-zeroes, discards and
the error paths (a missing export, writes to a read-only export, out-of-range requests).
Outputs must be equal after replacing paths; after the writes both copies must compare
equal and strata's must pass `qemu-img check`.

Usage: nbd_server_differential_test.py STRATA_NBD
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_harness as h  # noqa: E402

STRATA_NBD = os.path.abspath(sys.argv[1])
failures = []
checks = 0


def qemu(*argv):
    code, out, err = h.run(list(argv))
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err}")
    return out


def make_images(work):
    """The images to serve: name -> (file, format)."""
    imgs = {}
    raw = os.path.join(work, "plain.raw")
    qemu("qemu-img", "create", "-f", "raw", raw, "16M")
    qemu("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 5M 300k",
         raw)
    imgs["raw"] = (raw, "raw")
    q = os.path.join(work, "mixed.qcow2")
    qemu("qemu-img", "create", "-f", "qcow2", q, "64M")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -z 2M 1M",
         "-c", "write -P 3 8M 64k", "-c", "write -P 4 9M 4k", "-c", "discard 8M 64k",
         "-c", "write -P 5 63M 1M", q)
    imgs["qcow2"] = (q, "qcow2")
    base = os.path.join(work, "base.qcow2")
    qemu("qemu-img", "create", "-f", "qcow2", base, "32M")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 7 0 4M", "-c", "write -P 8 10M 1M", base)
    top = os.path.join(work, "top.qcow2")
    qemu("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 9 1M 1M", "-c", "write -z 10M 512k", top)
    imgs["chain"] = (top, "qcow2")
    comp = os.path.join(work, "comp.qcow2")
    qemu("qemu-img", "convert", "-c", "-O", "qcow2", raw, comp)
    imgs["compressed"] = (comp, "qcow2")
    bm = os.path.join(work, "bitmaps.qcow2")
    qemu("qemu-img", "create", "-f", "qcow2", bm, "64M")
    qemu("qemu-img", "bitmap", "--add", bm, "b0")
    qemu("qemu-img", "bitmap", "--add", "-g", "4k", "--disable", bm, "b1")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -z 9M 5k",
         "-c", "discard 20M 64k", bm)
    qemu("qemu-img", "bitmap", "--enable", bm, "b1")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 2 30M 3k", bm)
    imgs["bitmaps"] = (bm, "qcow2")
    odd = os.path.join(work, "odd.raw")
    with open(odd, "wb") as f:
        f.write(bytes(range(256)) * 4000 + b"tail")  # not a multiple of 512
    imgs["odd"] = (odd, "raw")
    return imgs


CONFIGS = [
    # (name, image, extra server options, does writes)
    ("raw", "raw", [], True),
    ("qcow2-depth", "qcow2", ["-A"], True),
    ("chain-depth", "chain", ["-A"], True),
    ("compressed", "compressed", [], False),
    ("readonly-named", "qcow2", ["-r", "-x", "disk0", "-D", "a test disk"], False),
    ("shared", "qcow2", ["-e", "3"], True),
    ("offset", "raw", ["-o", "1048576"], True),
    ("snapshot", "qcow2", ["-s"], True),
    ("detect-zeroes", "raw", ["--detect-zeroes=on"], True),
    ("nocache", "raw", ["-n"], True),
    ("odd-size", "odd", [], True),
    ("writethrough", "qcow2", ["--cache=writethrough", "--discard=unmap"], True),
    ("bitmaps", "bitmaps", ["-B", "b0", "-B", "b1"], True),
    ("bitmaps-readonly", "bitmaps", ["-r", "-B", "b1"], False),
]


def normalise(text, work, sock):
    text = text.replace(sock, "SOCK").replace(work, "WORK")
    return h.mask_timing(text)


def client_runs(sock, export, original, fmt, opts, writes):
    """The client commands for one server; returns [(label, output)]."""
    url = h.unix_url(sock, export)
    out = []

    def add(label, argv, timeout=60):
        code, o, e = h.run(argv, timeout=timeout)
        out.append((label, f"rc={code}\n{o}{e}"))

    add("nbdinfo-json", ["nbdinfo", "--json", url])
    add("nbdinfo-map", ["nbdinfo", "--map", url])
    add("nbdinfo-map-totals", ["nbdinfo", "--map", "--totals", url])
    if "-A" in opts:
        add("nbdinfo-depth", ["nbdinfo", "--map=qemu:allocation-depth", url])
    bitmaps = [opts[i + 1] for i, o in enumerate(opts) if o == "-B"]
    for b in bitmaps:
        add("nbdinfo-bitmap-" + b, ["nbdinfo", "--map=qemu:dirty-bitmap:" + b, url])
    add("nbdinfo-list", ["nbdinfo", "--list", h.unix_url(sock)])
    add("qemu-img-info", ["qemu-img", "info", url])
    add("qemu-img-map-json", ["qemu-img", "map", "--output=json", url])
    add("qemu-img-map", ["qemu-img", "map", url])
    add("qemu-nbd-L", ["qemu-nbd", "-L", "-k", sock])
    add("strata-nbd-L", [STRATA_NBD, "-L", "-k", sock])
    add("missing-export", ["qemu-img", "info", h.unix_url(sock, "no-such-export")])
    if "-o" not in opts:
        add("compare", ["qemu-img", "compare", "-f", "raw", "-F", fmt, url, original])
    add("reads", ["qemu-io", "-f", "raw", "-r", "-c", "read -v 0 64", "-c", "read -P 0 2M 512",
                  "-c", "read 1M 4k", "-c", "read 0 1", "-c", "map", url])
    add("read-past-end", ["qemu-io", "-f", "raw", "-r", "-c", "read 1000G 512", url])
    copy = os.path.join(os.path.dirname(sock), "nbdcopy.out")
    add("nbdcopy", ["nbdcopy", url, copy])
    add("nbdcopy-sha", ["sha256sum", copy])
    if os.path.exists(copy):
        os.remove(copy)
    if writes or "-r" in opts:
        add("writes", ["qemu-io", "-f", "raw",
                       "-c", "write -P 0xab 1M 64k", "-c", "write -z 3M 1M",
                       "-c", "discard 5M 1M", "-c", "write -P 0xcd 100 1000",
                       "-c", "write -z -u 4M 128k", "-c", "aio_write -P 0x31 6M 4k", "-c", "aio_flush",
                       "-c", "aio_write -P 0x32 6148k 4k", "-c", "aio_flush",
                       "-c", "read -P 0xab 1M 64k", "-c", "read -P 0 3M 1M",
                       "-c", "flush", url])
        add("nbdinfo-map-after", ["nbdinfo", "--map", url])
        for b in bitmaps:  # the writes above, seen live by enabled bitmaps
            add("nbdinfo-bitmap-after-" + b, ["nbdinfo", "--map=qemu:dirty-bitmap:" + b, url])
    return out


def main():
    global checks
    # /tmp, not TEST_TMPDIR: Unix socket paths must stay under 108 bytes.
    work = tempfile.mkdtemp(prefix="nbd-diff.", dir="/tmp")
    try:
        images = make_images(work)
        for name, image, opts, writes in CONFIGS:
            src, fmt = images[image]
            results = {}
            copies = {}
            for kind in ("qemu", "strata"):
                d = os.path.join(work, f"{name}-{kind}")
                os.makedirs(d)
                # Copy the whole chain (the overlay names its backing file relatively).
                for f in os.listdir(work):
                    p = os.path.join(work, f)
                    if os.path.isfile(p):
                        shutil.copy(p, d)
                img = os.path.join(d, os.path.basename(src))
                copies[kind] = img
                sock = os.path.join(d, "s.sock")
                prog = "qemu-nbd" if kind == "qemu" else STRATA_NBD
                argv = [prog, "-t", "-k", sock, "-f", fmt] + opts + [img]
                export = opts[opts.index("-x") + 1] if "-x" in opts else ""
                with h.server(argv, socket_path=sock):
                    runs = client_runs(sock, export, img, fmt, opts, writes)
                results[kind] = [(label, normalise(o, d, sock)) for label, o in runs]
            for (label, q), (_, s) in zip(results["qemu"], results["strata"]):
                checks += 1
                if q != s:
                    failures.append(f"{name}/{label}:\n--- qemu-nbd\n{q}\n--- strata-nbd\n{s}")
            if writes and "-s" not in opts:
                checks += 2
                code, o, e = h.run(["qemu-img", "compare", "-f", fmt, "-F", fmt,
                                    copies["qemu"], copies["strata"]])
                if code != 0:
                    failures.append(f"{name}: images differ after writes: {o}{e}")
                if fmt == "qcow2":
                    code, o, e = h.run(["qemu-img", "check", copies["strata"]])
                    if code != 0:
                        failures.append(f"{name}: qemu-img check: {o}{e}")
        # TCP on loopback, one configuration.
        port_q, port_s = h.free_port(), h.free_port()
        src, fmt = images["qcow2"]
        outs = {}
        for kind, port in (("qemu", port_q), ("strata", port_s)):
            prog = "qemu-nbd" if kind == "qemu" else STRATA_NBD
            with h.server([prog, "-t", "-b", "127.0.0.1", "-p", str(port), "-f", fmt, "-r",
                           src], port=port):
                url = f"nbd://127.0.0.1:{port}/"
                code, o, e = h.run(["nbdinfo", "--json", url])
                code2, o2, e2 = h.run(["qemu-img", "map", "--output=json", url])
                code3, o3, e3 = h.run(["qemu-nbd", "-L", "-b", "127.0.0.1", "-p", str(port)])
                outs[kind] = (o.replace(str(port), "PORT") + o2 + o3, code + code2 + code3)
        checks += 1
        if outs["qemu"] != outs["strata"]:
            failures.append(f"tcp: {outs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
