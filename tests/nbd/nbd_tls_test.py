#!/usr/bin/env python3
"""TLS on strata-nbd, next to qemu-nbd with the same credentials and clients.

Credentials: x509 (a CA, server and client certificates from certtool) and PSK (psktool).
For each, both servers require TLS; clients: qemu-img info and qemu-io reads through
QEMU's nbd driver with --object tls-creds-*, nbdinfo and nbdcopy on nbds:// URLs (libnbd),
and the -L listers of both tools. A plain client must be refused; --tls-authz with an
authz-simple object must let the right certificate in and keep another out. Every
output must match qemu-nbd's, and the expected successes and refusals must happen.

The nbd client driver runs the same client commands on every server, compared with
QEMU's client. Usage: nbd_tls_test.py STRATA_NBD STRATA_IMG STRATA_IO
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_harness as h  # noqa: E402
import tls_fixtures  # noqa: E402

STRATA_NBD, STRATA_IMG, STRATA_IO = (os.path.abspath(p) for p in sys.argv[1:4])
failures = []
checks = 0


def expect(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)


def mask(result):
    """An exit code and output with qemu-io's timings masked."""
    code, out, err = result
    return code, h.mask_timing(out), err


def main():
    work = tempfile.mkdtemp(prefix="nbd-tls.", dir=os.environ.get("TEST_TMPDIR"))
    bindir = h.strata_bindir(work, **{"qemu-img": STRATA_IMG, "qemu-io": STRATA_IO})
    try:
        image = os.path.join(work, "disk.qcow2")
        h.run(["qemu-img", "create", "-f", "qcow2", image, "32M"])
        h.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 1M", image])
        server_dir, client_dir = tls_fixtures.make_x509(os.path.join(work, "x509"))
        psk_dir = tls_fixtures.make_psk(os.path.join(work, "psk"))
        cases = [
            # name, server objects, client object, nbdinfo query, authz identity, allowed
            ("x509", f"tls-creds-x509,id=tls0,dir={server_dir},endpoint=server",
             f"tls-creds-x509,id=tls0,dir={client_dir},endpoint=client",
             f"tls-certificates={client_dir}", None, True),
            ("psk", f"tls-creds-psk,id=tls0,dir={psk_dir},endpoint=server",
             f"tls-creds-psk,id=tls0,dir={psk_dir},endpoint=client,username=qemu",
             f"tls-psk-file={psk_dir}/keys.psk", None, True),
            ("authz-allow", f"tls-creds-x509,id=tls0,dir={server_dir},endpoint=server",
             f"tls-creds-x509,id=tls0,dir={client_dir},endpoint=client",
             f"tls-certificates={client_dir}", tls_fixtures.CLIENT_DN, True),
            ("authz-deny", f"tls-creds-x509,id=tls0,dir={server_dir},endpoint=server",
             f"tls-creds-x509,id=tls0,dir={client_dir},endpoint=client",
             f"tls-certificates={client_dir}", "CN=someone-else", False),
        ]
        for name, server_obj, client_obj, query, identity, allowed in cases:
            outputs = {}
            for kind, prog in (("qemu", "qemu-nbd"), ("strata", STRATA_NBD)):
                port = h.free_port()
                argv = [prog, "-t", "-b", "127.0.0.1", "-p", str(port), "--object", server_obj,
                        "--tls-creds=tls0", "-f", "qcow2", "-r"]
                if identity:
                    argv += ["--object", "authz-simple,id=auth0,identity=" + identity.replace(",", ",,"),
                             "--tls-authz=auth0"]
                argv.append(image)
                results = []
                with h.server(argv, port=port):
                    opts = f"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0"
                    results.append(h.run(["qemu-img", "info", "--object", client_obj,
                                          "--image-opts", opts]))
                    results.append(h.run(["qemu-io", "--object", client_obj, "--image-opts",
                                          "-c", "read -P 0x5a 1M 1M", "-c", "read -P 0 0 1M",
                                          opts]))
                    # strata's client (installed as qemu-img / qemu-io) on the same
                    # server must print what QEMU's prints.
                    for tool in ("qemu-img", "qemu-io"):
                        args = (["info", "--object", client_obj, "--image-opts", opts]
                                if tool == "qemu-img" else
                                ["--object", client_obj, "--image-opts", "-c",
                                 "read -P 0x5a 1M 1M", "-c", "read -P 0 0 1M", opts])
                        q = h.run([tool] + args)
                        st = h.run([os.path.join(bindir, tool)] + args)
                        expect(mask(q) == mask(st),
                               f"{name}/{kind} server/{tool} client: QEMU {q} != strata {st}")
                    user = "qemu@" if "psk" in query else ""
                    results.append(h.run(["nbdinfo", f"nbds://{user}127.0.0.1:{port}/?{query}"]))
                    results.append(h.run(["nbdinfo", f"nbd://127.0.0.1:{port}/"]))
                    copy = os.path.join(work, "copy.raw")
                    results.append(h.run(["nbdcopy", f"nbds://{user}127.0.0.1:{port}/?{query}", copy]))
                    ok_copy = os.path.exists(copy) and os.path.getsize(copy) == 32 << 20
                    if os.path.exists(copy):
                        os.remove(copy)
                    results.append((0 if ok_copy else 1, "", ""))
                    for lister in ("qemu-nbd", STRATA_NBD):
                        results.append(h.run([lister, "-L", "-b", "127.0.0.1", "-p", str(port),
                                              "--object", client_obj, "--tls-creds=tls0"]))
                outputs[kind] = [(c, o.replace(str(port), "PORT"),
                                  e.replace(str(port), "PORT").replace(STRATA_NBD, "qemu-nbd"))
                                 for c, o, e in results]
            labels = ["qemu-img info", "qemu-io reads", "nbdinfo nbds", "nbdinfo plain",
                      "nbdcopy", "nbdcopy size", "qemu-nbd -L", "strata-nbd -L"]
            for label, q, s in zip(labels, outputs["qemu"], outputs["strata"]):
                # Exit codes and standard output must agree; qemu-io timings differ.
                q_out = q[1] if label != "qemu-io reads" else q[0]
                s_out = s[1] if label != "qemu-io reads" else s[0]
                expect(q[0] == s[0] and q_out == s_out,
                       f"{name}/{label}: qemu-nbd {q} != strata-nbd {s}")
            strata = dict(zip(labels, outputs["strata"]))
            expect((strata["qemu-img info"][0] == 0) == allowed,
                   f"{name}: qemu-img info rc {strata['qemu-img info']}")
            expect((strata["nbdcopy size"][0] == 0) == allowed, f"{name}: nbdcopy")
            expect(strata["nbdinfo plain"][0] != 0, f"{name}: a plain client got in")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{checks} checks, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
