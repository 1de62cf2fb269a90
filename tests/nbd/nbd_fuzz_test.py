#!/usr/bin/env python3
"""Hostile NBD clients: malformed negotiation and request streams, generated.

Each case is a stream of protocol steps built from a seeded random source: valid and
broken option haggling (bad magic, lengths that lie, truncated data, unknown options,
oversized names, STARTTLS without TLS, repeated and out-of-order options, a disconnect
anywhere), then transmission-phase requests (bad magic, unknown commands and flags,
offsets and lengths out of range, oversized reads and writes, writes whose payload never
comes, floods of requests whose replies are never read, block status without a
context). Every case runs against qemu-nbd and strata-nbd; what each server answers
(option reply types, request error codes, where it closes the connection) must agree.

After every case the server must still be running, and a well-behaved client (qemu-io
reading with pattern checks) must still be served the right data; a good client also
reads continuously while the hostile ones run. Usage: nbd_fuzz_test.py STRATA_NBD [CASES]
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_harness as h  # noqa: E402

STRATA_NBD = os.path.abspath(sys.argv[1])
CASES = int(sys.argv[2]) if len(sys.argv) > 2 else 150
SIZE = 4 << 20
SCRATCH = 2 << 20  # hostile writes stay in [SCRATCH, SIZE); the good client reads below

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668E33EF
OPT = {"EXPORT_NAME": 1, "ABORT": 2, "LIST": 3, "STARTTLS": 5, "INFO": 6, "GO": 7,
       "STRUCTURED_REPLY": 8, "LIST_META_CONTEXT": 9, "SET_META_CONTEXT": 10}


class Closed(Exception):
    pass


class Conn:
    """A raw connection that records what the server does."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(2)
        self.s.connect(path)
        self.log = []

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(n - len(buf))
            except socket.timeout:
                raise Closed("timeout")
            except OSError:
                raise Closed("reset")
            if not chunk:
                raise Closed("closed")
            buf += chunk
        return buf

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            raise Closed("send failed")

    def close(self):
        self.s.close()


def hang_up(c, data):
    """Sends `data` (if the server still listens), then leaves: the client's choice, so
    whether the server closed first is not recorded (it is a race)."""
    try:
        c.send(data)
    except Closed:
        pass
    raise Closed("client hung up")


def greet(c, flags=3):
    magic, opt, sflags = struct.unpack(">QQH", c.recv(18))
    assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
    c.log.append(f"flags{flags:#x}")
    c.send(struct.pack(">I", flags))


def send_option(c, option, data, lie=None):
    length = len(data) if lie is None else lie
    c.send(struct.pack(">QII", IHAVEOPT, option, length) + data)


def read_option_replies(c, option):
    """Replies up to the final one; records each reply type."""
    while True:
        magic, opt, rtype, length = struct.unpack(">QIII", c.recv(20))
        if magic != REPLY_MAGIC:
            c.log.append("bad-reply-magic")
            raise Closed("protocol")
        c.recv(length) if length else b""
        c.log.append(f"opt{opt}:{rtype:#x}")
        if rtype in (1,) or rtype & 0x80000000:
            return rtype
        if option in (OPT["LIST"], OPT["INFO"], OPT["GO"], OPT["LIST_META_CONTEXT"],
                      OPT["SET_META_CONTEXT"]):
            continue
        return rtype


def go(c, name=b"", structured=False, meta=False):
    if structured:
        send_option(c, OPT["STRUCTURED_REPLY"], b"")
        read_option_replies(c, OPT["STRUCTURED_REPLY"])
    if meta:
        q = b"base:allocation"
        data = struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q
        send_option(c, OPT["SET_META_CONTEXT"], data)
        read_option_replies(c, OPT["SET_META_CONTEXT"])
    send_option(c, OPT["GO"], struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    return read_option_replies(c, OPT["GO"]) == 1


def request(c, cmd, offset, length, flags=0, payload=b"", magic=REQUEST_MAGIC, cookie=7):
    c.send(struct.pack(">IHHQQI", magic, flags, cmd, cookie, offset, length) + payload)


def read_reply(c, expect_data=0, structured=False):
    magic = struct.unpack(">I", c.recv(4))[0]
    if magic == SIMPLE_MAGIC:
        err, cookie = struct.unpack(">IQ", c.recv(12))
        if err == 0 and expect_data:
            c.recv(expect_data)
        c.log.append(f"err{err}")
        return
    if magic == STRUCTURED_MAGIC:
        while True:
            flags, rtype, cookie, length = struct.unpack(">HHQI", c.recv(16))
            payload = c.recv(length) if length else b""
            if rtype & 0x8000:
                c.log.append(f"err{struct.unpack('>I', payload[:4])[0]}")
            if flags & 1:
                if not any(x.startswith("err") for x in c.log[-1:]):
                    c.log.append("err0")
                return
        return
    c.log.append("bad-magic")
    raise Closed("protocol")


def hostile_negotiation(rng, c):
    greet(c, flags=rng.choice([0, 1, 3, 0xFFFFFFFF, 2]))
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["unknown", "lie", "huge", "truncated", "starttls", "info-long-name",
                           "meta-garbage", "list-data", "abort", "badmagic", "go-missing",
                           "structured-data", "export-name"])
        c.log.append(kind)
        if kind == "unknown":
            send_option(c, rng.choice([0, 4, 11, 99, 0x7FFFFFFF]),
                        rng.randbytes(rng.randint(0, 40)))
            read_option_replies(c, -1)
        elif kind == "lie":
            data = rng.randbytes(rng.randint(0, 20))
            send_option(c, OPT["INFO"], data, lie=len(data) + rng.randint(1, 10))
            c.send(rng.randbytes(30))
            read_option_replies(c, OPT["INFO"])
        elif kind == "huge":
            send_option(c, rng.choice([OPT["GO"], OPT["LIST"], 42]), b"",
                        lie=rng.choice([1 << 20, 0xFFFFFFFF, 70000]))
            read_option_replies(c, -1)
        elif kind == "truncated":
            hang_up(c, struct.pack(">QI", IHAVEOPT, OPT["GO"])[: rng.randint(1, 11)])
        elif kind == "starttls":
            send_option(c, OPT["STARTTLS"], b"")
            read_option_replies(c, OPT["STARTTLS"])
        elif kind == "info-long-name":
            name = b"x" * rng.choice([4097, 5000, 60000])
            send_option(c, OPT["INFO"], struct.pack(">I", len(name)) + name + b"\0\0")
            read_option_replies(c, OPT["INFO"])
        elif kind == "meta-garbage":
            data = struct.pack(">I", rng.choice([0, 5, 1000])) + rng.randbytes(rng.randint(0, 12))
            send_option(c, rng.choice([OPT["SET_META_CONTEXT"], OPT["LIST_META_CONTEXT"]]), data)
            read_option_replies(c, OPT["SET_META_CONTEXT"])
        elif kind == "list-data":
            send_option(c, OPT["LIST"], b"abc")
            read_option_replies(c, OPT["LIST"])
        elif kind == "abort":
            # Whether the server closed first is a race: only "it ended" is recorded.
            try:
                send_option(c, OPT["ABORT"], b"")
                read_option_replies(c, OPT["ABORT"])
            except Closed:
                pass
            raise Closed("aborted")
        elif kind == "badmagic":
            c.send(struct.pack(">QII", 0x1234, OPT["GO"], 0))
            c.recv(1)
        elif kind == "go-missing":
            name = b"no-such"
            send_option(c, OPT["GO"], struct.pack(">I", len(name)) + name + b"\0\0")
            read_option_replies(c, OPT["GO"])
        elif kind == "structured-data":
            send_option(c, OPT["STRUCTURED_REPLY"], b"zz")
            read_option_replies(c, OPT["STRUCTURED_REPLY"])
        elif kind == "export-name":
            send_option(c, OPT["EXPORT_NAME"], b"nope")
            c.recv(1)


def hostile_transmission(rng, c):
    greet(c)
    structured = rng.random() < 0.5
    meta = structured and rng.random() < 0.5
    if not go(c, structured=structured, meta=meta):
        raise Closed("go refused")
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(["badmagic", "unknown-cmd", "bad-flags", "past-end", "huge-read",
                           "huge-write", "short-write", "flood", "status", "zero-len", "trim",
                           "zeroes", "read", "cache", "disc"])
        c.log.append(kind)
        off = rng.choice([SCRATCH, SIZE - 512, SIZE, SIZE + 4096, 1 << 62, (1 << 64) - 512])
        if kind == "badmagic":
            request(c, 0, 0, 512, magic=rng.randrange(1 << 32))
            read_reply(c, structured=structured)  # the error, then the end
            c.recv(1)
        elif kind == "unknown-cmd":
            request(c, rng.choice([8, 9, 100, 0xFFFF]), 0, 512)
            read_reply(c)
        elif kind == "bad-flags":
            request(c, 0, 0, 512, flags=rng.choice([1 << 7, 1 << 15, 0xFF00]))
            read_reply(c)
        elif kind == "past-end":
            request(c, rng.choice([0, 4, 6]), off, rng.choice([512, 4096]))
            read_reply(c, expect_data=0)
        elif kind == "huge-read":
            request(c, 0, 0, rng.choice([33 << 20, 0xFFFFFFFF]))
            read_reply(c)
        elif kind == "huge-write":
            request(c, 1, 0, rng.choice([33 << 20, 0xFFFFFFFF]))
            read_reply(c)
            c.recv(1)
        elif kind == "short-write":
            hang_up(c, struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 1, 7, SCRATCH, 4096) +
                    rng.randbytes(rng.randint(0, 4095)))
        elif kind == "flood":
            hang_up(c, b"".join(
                struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 0, i,
                            rng.randrange(0, SIZE // 512) * 512, 512)
                for i in range(rng.randint(10, 400))))
        elif kind == "status":
            request(c, 7, 0, rng.choice([0, 512, SIZE]), flags=rng.choice([0, 8]))
            read_reply(c, structured=structured)
        elif kind == "zero-len":
            request(c, rng.choice([0, 1, 4, 6]), 0, 0)
            read_reply(c)
        elif kind == "trim":
            request(c, 4, SCRATCH + rng.randrange(0, SCRATCH // 512) * 512, 512)
            read_reply(c)
        elif kind == "zeroes":
            request(c, 6, SCRATCH + rng.randrange(0, SCRATCH // 512 - 1) * 512, 512,
                    flags=rng.choice([0, 2, 16]))
            read_reply(c)
        elif kind == "read":
            request(c, 0, 0, 512, flags=rng.choice([0, 4]))
            read_reply(c, expect_data=512 if not structured else 0)
        elif kind == "cache":
            request(c, 5, 0, 4096)
            read_reply(c)
        elif kind == "disc":
            request(c, 2, 0, 0)
            c.recv(1)


def run_case(sock, seed):
    rng = random.Random(seed)
    c = Conn(sock)
    try:
        (hostile_negotiation if rng.random() < 0.5 else hostile_transmission)(rng, c)
        c.log.append("open")
    except Closed as e:
        c.log.append(f"end:{'closed' if str(e) in ('closed', 'reset', 'send failed') else e}")
    except (AssertionError, struct.error) as e:
        c.log.append(f"broken:{e}")
    finally:
        c.close()
    return c.log


def good_client_ok(sock, img_pattern):
    code, out, err = h.run(["qemu-io", "-f", "raw", "-r", "-c", f"read -P {img_pattern} 4k 64k",
                            h.unix_url(sock)], timeout=30)
    return code == 0 and "Pattern verification failed" not in out, out + err


def main():
    work = tempfile.mkdtemp(prefix="nbd-fuzz.", dir="/tmp")
    failures = []
    logs = {}
    try:
        for kind in ("qemu", "strata"):
            img = os.path.join(work, f"{kind}.raw")
            subprocess.run(["qemu-img", "create", "-f", "raw", img, str(SIZE)], check=True,
                           capture_output=True)
            subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", img], check=True,
                           capture_output=True)
            sock = os.path.join(work, f"{kind}.sock")
            prog = "qemu-nbd" if kind == "qemu" else STRATA_NBD
            with h.server([prog, "-t", "-e", "16", "-f", "raw", "-k", sock, img],
                          socket_path=sock) as proc:
                stop = threading.Event()
                bad_reads = []

                def reader():
                    while not stop.is_set():
                        ok, out = good_client_ok(sock, "0x5a")
                        if not ok:
                            bad_reads.append(out)
                            return
                reader_thread = threading.Thread(target=reader)
                reader_thread.start()
                logs[kind] = []
                for seed in range(CASES):
                    logs[kind].append(run_case(sock, seed))
                    if proc.poll() is not None:
                        failures.append(f"{kind}: server died at case {seed}: "
                                        f"{proc.stderr.read()}")
                        break
                stop.set()
                reader_thread.join(timeout=60)
                if bad_reads:
                    failures.append(f"{kind}: the good client failed meanwhile: {bad_reads[0]}")
                ok, out = good_client_ok(sock, "0x5a")
                if not ok:
                    failures.append(f"{kind}: good client failed after the cases: {out}")
        for seed, (q, s) in enumerate(zip(logs.get("qemu", []), logs.get("strata", []))):
            if q != s:
                failures.append(f"case {seed}: qemu-nbd {q} / strata-nbd {s}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.report(failures, f"{CASES} hostile cases x 2 servers, {len(failures)} failed")


if __name__ == "__main__":
    sys.exit(main())
