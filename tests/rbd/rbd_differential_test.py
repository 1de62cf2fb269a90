#!/usr/bin/env python3
"""The rbd driver against QEMU's on a one-node Ceph cluster the test starts and stops.

The same command lines run through QEMU's qemu-img/qemu-io (with Debian's
qemu-block-extra, QEMU's rbd driver) and through strata's (installed under the same
names), each side on its own images with the same names (the other side's are removed
first), and outputs must be equal: create raw and qcow2 on rbd, generated qemu-io scripts,
info (human, JSON), map, snapshots (create, list, read at @snap, refusal to write there,
delete), check of qcow2 on rbd, convert into and out of rbd, a local qcow2 whose backing
file is on rbd, and error paths (missing image, pool, conf file). Interop both ways: what
each side wrote is compared, through the other side's tools, with a local reference.
Usage: rbd_differential_test.py STRATA_IMG STRATA_IO [SCRIPTS]
"""
import base64
import json
import os
import re
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "nbd"))
import ceph_cluster  # noqa: E402
import nbd_harness as h  # noqa: E402  (timing masks, strata bin dir, report)

STRATA_IMG, STRATA_IO = (os.path.abspath(p) for p in sys.argv[1:3])
SCRIPTS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
SIZE = 16 << 20


def run(argv, env=None, timeout=120):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 124, "", "TIMEOUT"


def mask(text, work):
    return h.mask_timing(text.replace(work, "WORK"))


def gen_script(rng):
    cmds = []
    for _ in range(rng.randint(5, 10)):
        a = rng.choice([512, 4096, 65536, 1 << 20])
        off = rng.randrange(0, SIZE // a) * a
        n = min(rng.choice([512, 4096, 65536, 300 * 1024, 2 << 20]) // a * a or a, SIZE - off)
        p = rng.randrange(1, 256)
        cmds.append(rng.choice([f"write -P {p} {off} {n}", f"write -z {off} {n}",
                                f"write -z -u {off} {n}", f"discard {off} {n}",
                                f"read {off} {n}", "flush", "map"]))
        if rng.random() < 0.2:
            # One request in flight at a time: with several, the cluster decides the
            # order they complete (and qemu-io prints them) in.
            cmds += [f"aio_write -P {p} {off} {n}", "aio_flush"]
    return sum((["-c", c] for c in cmds), [])


def commands(conf, work, rng):
    rbd = lambda name, extra="": f"rbd:rbd/{name}{extra}:conf={conf}"  # noqa: E731
    local = os.path.join(work, "local.qcow2")
    cmds = [
        ("create raw", ["qemu-img", "create", "-f", "raw", rbd("disk"), "16M"]),
        ("create again", ["qemu-img", "create", "-f", "raw", rbd("disk"), "16M"]),
        ("write", ["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M",
                   "-c", "write -P 0x33 5M 64k", rbd("disk")]),
    ]
    for i in range(SCRIPTS):
        cmds.append((f"script {i}", ["qemu-io", "-f", "raw"] + gen_script(rng) + [rbd("disk")]))
    cmds += [
        ("info", ["qemu-img", "info", rbd("disk")]),
        ("info json", ["qemu-img", "info", "--output=json", rbd("disk")]),
        ("info -f raw", ["qemu-img", "info", "-f", "raw", rbd("disk")]),
        ("map", ["qemu-img", "map", "-f", "raw", rbd("disk")]),
        ("map json", ["qemu-img", "map", "-f", "raw", "--output=json", rbd("disk")]),
        ("snapshot -c", ["qemu-img", "snapshot", "-c", "s1", rbd("disk")]),
        ("snapshot -l", ["qemu-img", "snapshot", "-l", rbd("disk")]),
        ("write after snap", ["qemu-io", "-f", "raw", "-c", "write -P 0x77 0 64k", rbd("disk")]),
        ("read @snap", ["qemu-io", "-f", "raw", "-r", "-c", "read -P 0x5a 0 64k",
                        rbd("disk", "@s1")]),
        ("write @snap", ["qemu-io", "-f", "raw", "-c", "write 0 512", rbd("disk", "@s1")]),
        ("info @snap", ["qemu-img", "info", "-f", "raw", rbd("disk", "@s1")]),
        ("snapshot -d", ["qemu-img", "snapshot", "-d", "s1", rbd("disk")]),
        ("convert out", ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", rbd("disk"), local]),
        ("compare out", ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", rbd("disk"), local]),
        ("convert in", ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", local, rbd("copy")]),
        ("compare in", ["qemu-img", "compare", "-F", "raw", local, rbd("copy")]),
        ("qcow2 create", ["qemu-img", "create", "-f", "qcow2", rbd("q"), "16M"]),
        ("qcow2 write", ["qemu-io", "-f", "qcow2", "-c", "write -P 0x21 0 1M",
                         "-c", "write -z 2M 1M", "-c", "write -P 0x22 9M 300k", rbd("q")]),
        ("qcow2 info", ["qemu-img", "info", "-f", "qcow2", rbd("q")]),
        ("qcow2 check", ["qemu-img", "check", "-f", "qcow2", rbd("q")]),
        ("qcow2 map", ["qemu-img", "map", "-f", "qcow2", "--output=json", rbd("q")]),
        ("qcow2 read", ["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x21 0 1M",
                        "-c", "read -P 0 2M 1M", "-c", "read -P 0x22 9M 300k", rbd("q")]),
        ("overlay create", ["qemu-img", "create", "-f", "qcow2", "-b", rbd("disk"), "-F", "raw",
                            os.path.join(work, "top.qcow2")]),
        ("overlay write", ["qemu-io", "-f", "qcow2", "-c", "write -P 0x44 4M 64k",
                           os.path.join(work, "top.qcow2")]),
        ("overlay read", ["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x44 4M 64k",
                          "-c", "read 0 1M", os.path.join(work, "top.qcow2")]),
        ("overlay compare", ["qemu-img", "compare", "-f", "qcow2", "-F", "raw",
                             os.path.join(work, "top.qcow2"), rbd("disk")]),
        ("json", ["qemu-img", "info", "json:" + '{"driver":"raw","file":{"driver":"rbd",'
                  f'"pool":"rbd","image":"disk","conf":"{conf}"}}}}']),
        ("image-opts", ["qemu-img", "info", "--image-opts",
                        f"driver=raw,file.driver=rbd,file.pool=rbd,file.image=disk,"
                        f"file.conf={conf},file.user=admin"]),
        ("missing image", ["qemu-img", "info", rbd("nope")]),
        ("missing pool", ["qemu-img", "info", f"rbd:nopool/x:conf={conf}"]),
        ("missing conf", ["qemu-img", "info", "rbd:rbd/disk:conf=/nonexistent/ceph.conf"]),
        ("no pool", ["qemu-img", "info", "rbd:"]),
    ]
    # info's rbd block names the encryption format from librbd's LUKS header.
    for version in (1, 2):
        header = os.path.join(work, f"luks{version}.bin")
        with open(header, "wb") as f:
            f.write(b"LUKS\xba\xbe\x00" + bytes([version]) + bytes(504))
        opts = f"driver=rbd,pool=rbd,image=disk,conf={conf}"
        cmds += [
            (f"luks{version} header", ["qemu-io", "--image-opts", "-c",
                                       f"write -s {header} 0 512", opts]),
            (f"luks{version} info", ["qemu-img", "info", "--image-opts", opts]),
            (f"luks{version} info json", ["qemu-img", "info", "--output=json", "--image-opts", opts]),
            (f"luks{version} qemu-io info", ["qemu-io", "-r", "--image-opts", "-c", "info", opts]),
        ]
    return cmds + connection_commands(conf, work)


def connection_commands(conf, work):
    rbd = lambda name: f"rbd:rbd/{name}:conf={conf}"  # noqa: E731
    """Monitors, key and auth modes given as options (no keyring, no mon host in the conf):
    server, key-secret (a secret object, plain or encrypted with a key secret),
    auth-client-required, and their errors."""
    text = open(conf).read()
    v1 = re.search(r"v1:127\.0\.0\.1:(\d+)", text).group(1)
    keyring = re.search(r"^keyring = (.*)$", text, re.M).group(1)
    ring = open(keyring).read()
    key = re.search(r"\[client\.admin\]\s*key = (\S+)", ring).group(1)
    bare = os.path.join(work, "bare.conf")
    with open(bare, "w") as f:
        f.write("[global]\nms bind ipv6 = false\nkeyring = /nonexistent\n")
    server = [{"host": "127.0.0.1", "port": v1}]
    def image(**extra):
        return "json:" + json.dumps(dict({"driver": "rbd", "pool": "rbd", "image": "disk",
                                          "conf": bare}, **extra))
    secret = f"secret,id=sec0,data={key},format=base64"
    master = "secret,id=master,data=" + base64.b64encode(bytes(32)).decode() + ",format=base64"
    cmds = [
        ("key-secret", ["qemu-img", "info", "--object", secret,
                        image(server=server, **{"key-secret": "sec0"})]),
        ("key-secret two servers", ["qemu-img", "info", "--object", secret, image(
            server=server + [{"host": "::1", "port": "1"}], user="admin",
            **{"key-secret": "sec0", "auth-client-required": ["cephx", "none"]})]),
        ("key-secret image-opts", ["qemu-img", "info", "--object", secret, "--image-opts",
                                   f"driver=raw,file.driver=rbd,file.pool=rbd,file.image=disk,"
                                   f"file.conf={bare},file.server.0.host=127.0.0.1,"
                                   f"file.server.0.port={v1},file.key-secret=sec0"]),
        ("no secret", ["qemu-img", "info", image(server=server, **{"key-secret": "nope"})]),
        ("bad auth mode", ["qemu-img", "info", image(**{"auth-client-required": ["x"]})]),
        ("server without host", ["qemu-img", "info", image(server=[{"port": v1}])]),
        ("server without port", ["qemu-img", "info", "--image-opts",
                                 f"driver=rbd,pool=rbd,image=disk,server.0.host=h"]),
        ("secret bad base64", ["qemu-img", "info", "--object", "secret,id=s,data=@@,format=base64",
                               rbd("disk")]),
        ("secret no iv", ["qemu-img", "info", "--object", master, "--object",
                          "secret,id=s,data=AAAA,keyid=master", rbd("disk")]),
        ("secret short iv", ["qemu-img", "info", "--object", master, "--object",
                             "secret,id=s,data=AAAA,keyid=master,iv=AAAA", rbd("disk")]),
        ("secret bad length", ["qemu-img", "info", "--object", master, "--object",
                               "secret,id=s,data=AAAA,keyid=master,iv=" +
                               base64.b64encode(bytes(16)).decode(), rbd("disk")]),
    ]
    if shutil.which("openssl"):
        # The key encrypted with the all-zero master key (AES-256-CBC, zero IV).
        ct = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", "0" * 64, "-iv", "0" * 32],
                            input=base64.b64decode(key), capture_output=True).stdout
        cmds.append(("encrypted key-secret", [
            "qemu-img", "info", "--object", master, "--object",
            f"secret,id=sec0,data={base64.b64encode(ct).decode()},format=base64,keyid=master,"
            f"iv={base64.b64encode(bytes(16)).decode()}",
            image(server=server, **{"key-secret": "sec0"})]))
    return cmds


def main():
    failures = []
    checks = 0
    work = tempfile.mkdtemp(prefix="rbd-diff.", dir="/tmp")
    bindir = h.strata_bindir(work, **{"qemu-img": STRATA_IMG, "qemu-io": STRATA_IO})
    try:
        with ceph_cluster.cluster(parent="/tmp") as c:
            results, exported = {}, {}
            for side in ("qemu", "strata"):
                env = dict(os.environ)
                if side == "strata":
                    env["PATH"] = bindir + ":" + env["PATH"]
                d = os.path.join(work, side)
                os.makedirs(d)
                for image in ("disk", "copy", "q"):  # the other side's images go first
                    run(["rbd", "-c", c.conf, "snap", "purge", image])
                    run(["rbd", "-c", c.conf, "rm", image])
                rng = random.Random(7)
                out = []
                for label, argv in commands(c.conf, d, rng):
                    code, o, e = run(argv, env=env)
                    out.append((label, argv, f"rc={code}\n{mask(o, d)}{mask(e, d)}"
                                .replace(c.conf, "CONF")))
                results[side] = out
                # What this side wrote, exported by QEMU for the other side to read.
                ref = os.path.join(work, f"{side}-disk.raw")
                run(["qemu-img", "convert", "-f", "raw", "-O", "raw",
                     f"rbd:rbd/disk:conf={c.conf}", ref])
                exported[side] = ref
                # Interop: the other side's tools must read this side's image as the
                # reference does.
                other = dict(os.environ)
                if side == "qemu":
                    other["PATH"] = bindir + ":" + other["PATH"]
                code, o, e = run(["qemu-img", "compare", "-f", "raw", "-F", "raw",
                                  f"rbd:rbd/disk:conf={c.conf}", ref], env=other)
                checks += 1
                if code != 0:
                    failures.append(f"{side} wrote, the other side reads differently: {o}{e}")
            for (label, argv, q), (_, _, s) in zip(results["qemu"], results["strata"]):
                checks += 1
                if q != s:
                    failures.append(f"{label}: {' '.join(argv)}\n--- QEMU\n{q}\n--- strata\n{s}")
            checks += 1
            if open(exported["qemu"], "rb").read() != open(exported["strata"], "rb").read():
                failures.append("the images the two sides wrote differ")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
