"""A throwaway one-node Ceph cluster for the tests: one monitor and one OSD (memstore, so
the data lives in RAM and goes with the process), no manager, bound to 127.0.0.1, all of
it in a temporary directory. Start with `with cluster() as c:`; the daemons are killed and
the directory removed when the block ends, whatever happens inside.

    with cluster() as c:
        subprocess.run(["qemu-img", "create", "-f", "raw", f"rbd:rbd/disk:conf={c.conf}", "64M"])

Facts this relies on (checked on Debian 12, ceph 16.2): the monitor imports every key of
its mkfs keyring (so the OSD needs no `auth add`); `ceph` reading commands on stdin exits
0 even when one fails (its text is checked); `rbd pool init` returns only once the pool's
placement groups are active, so it is the readiness check; a short objecter tick spares
the first client the 5 s wait for the OSD map; without a manager, health commands are
useless and never waited on. Command line: `python3 ceph_cluster.py` starts a cluster,
prints its ceph.conf path and runs until SIGINT or SIGTERM (for trying things by hand).
"""
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

TIMEOUT = 90


class Cluster:
    def __init__(self, directory):
        self.dir = directory
        self.conf = os.path.join(directory, "ceph.conf")
        self.keyring = os.path.join(directory, "keyring")
        self.pids = []

    def ceph_args(self):
        return ["-c", self.conf]


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _pick_ports():
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    while True:
        a, b = random.randrange(10000, low), random.randrange(10000, low)
        if a != b and _port_free(a) and _port_free(b):
            return a, b


def _listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _write_conf(c, fsid, v2, v1):
    d = c.dir
    text = f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv4 = true
ms bind ipv6 = false
run dir = {d}/run
crash dir = {d}/crash
keyring = {c.keyring}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon warn on insecure global id reclaim = false

[mon]
mon data = {d}/mon/$cluster-$id
mon cluster log file = {d}/log/cluster.log
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.05
paxos min wait = 0.01
mon mgr mkfs grace = 31536000
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log

[osd]
osd data = {d}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 1073741824
# A client killed by a test holds its watch (and rbd's exclusive lock) until this expires;
# the default 30 s would make every crash round wait that long.
osd client watch timeout = 3
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log

[client]
admin socket =
log file = {d}/log/$name.$pid.log
"""
    with open(c.conf, "w") as f:
        f.write(text)


def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)


def _kill_all(c):
    for pid in c.pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in c.pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def start(parent=None):
    """Starts a cluster; returns a Cluster (stop it with stop())."""
    d = tempfile.mkdtemp(prefix="ceph.", dir=parent)
    c = Cluster(d)
    for sub in ("run", "log", "mon/ceph-a", "osd/ceph-0", "crash"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    try:
        keys = [("mon.", ["--cap", "mon", "allow *"]),
                ("client.admin", ["--cap", "mon", "allow *", "--cap", "osd", "allow *",
                                  "--cap", "mgr", "allow *", "--cap", "mds", "allow *"]),
                ("osd.0", ["--cap", "mon", "allow profile osd", "--cap", "mgr",
                           "allow profile osd", "--cap", "osd", "allow *"])]
        for i, (name, caps) in enumerate(keys):
            create = ["--create-keyring"] if i == 0 else []
            _run(["ceph-authtool"] + create + [c.keyring, "--gen-key", "-n", name] + caps,
                 check=True)
        fsid, osd_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        log = open(os.path.join(d, "log", "daemons.out"), "w")
        mon = None
        for _ in range(5):  # a port may be taken between the check and the bind
            v2, v1 = _pick_ports()
            _write_conf(c, fsid, v2, v1)
            shutil.rmtree(os.path.join(d, "mon", "ceph-a"))
            os.makedirs(os.path.join(d, "mon", "ceph-a"))
            monmap = os.path.join(d, "monmap")
            _run(["monmaptool", "--create", "--clobber", "--fsid", fsid, "--addv", "a",
                  f"[v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]", monmap], check=True)
            _run(["ceph-mon", "-c", c.conf, "--mkfs", "-i", "a", "--monmap", monmap,
                  "--keyring", c.keyring], check=True)
            mon = subprocess.Popen(["ceph-mon", "-c", c.conf, "-i", "a", "-f"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and mon.poll() is None:
                if _listening(v2) and _listening(v1):
                    break
                time.sleep(0.02)
            if mon.poll() is None and _listening(v2) and _listening(v1):
                c.pids.append(mon.pid)
                break
            mon.kill()
            mon.wait()
            mon = None
        if mon is None:
            raise RuntimeError("ceph-mon did not start")
        _run(["ceph-osd", "-c", c.conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid],
             check=True)
        out = _run(["ceph", "-c", c.conf, "--connect-timeout", str(TIMEOUT)],
                   input=f"osd new {osd_uuid} 0\nosd pool create rbd 8 8 replicated\n")
        if out.returncode != 0 or "rror" in out.stdout + out.stderr:
            raise RuntimeError(f"ceph: {out.stdout}{out.stderr}")
        osd = subprocess.Popen(["ceph-osd", "-c", c.conf, "-i", "0", "-f"],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        c.pids.append(osd.pid)
        c.osd_pid = osd.pid
        out = _run(["rbd", "-c", c.conf, "--objecter-tick-interval", "0.1", "pool", "init",
                    "rbd"])
        if out.returncode != 0:
            raise RuntimeError(f"rbd pool init: {out.stderr}")
        return c
    except BaseException:
        _kill_all(c)
        shutil.rmtree(d, ignore_errors=True)
        raise


def stop(c):
    _kill_all(c)
    shutil.rmtree(c.dir, ignore_errors=True)


@contextlib.contextmanager
def cluster(parent=None):
    c = start(parent)
    try:
        yield c
    finally:
        stop(c)


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with cluster() as c:
        print(c.conf, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
