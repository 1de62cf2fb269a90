"""Starting and stopping NBD servers for the tests (strata-nbd, qemu-nbd, nbdkit).

Every server listens on a Unix socket in the test's directory or on 127.0.0.1, is
waited for with a bounded loop, and is killed (then reaped) when the `with` block ends,
so nothing is left running whatever the test does.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_unix(path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: "
                               f"{proc.stderr.read() if proc.stderr else ''}")
        if os.path.exists(path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(path)
                    return
                except OSError:
                    pass
        time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {path} within {timeout}s")


def wait_for_tcp(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}: "
                               f"{proc.stderr.read() if proc.stderr else ''}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"server did not listen on port {port} within {timeout}s")


def stop(proc, timeout=10.0):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def server(argv, socket_path=None, port=None, env=None):
    """Runs `argv` (a server) until the block ends; waits until it listens.

    The probe connection counts as a client: start servers with -t (qemu-nbd,
    strata-nbd) so that it does not end them.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        if socket_path:
            wait_for_unix(socket_path, proc)
        elif port:
            wait_for_tcp(port, proc)
        yield proc
    finally:
        stop(proc)
        if proc.stderr:
            proc.stderr.close()


def run(argv, timeout=60, **kw):
    """Runs a client; returns (exit code, stdout, stderr). Never hangs past `timeout`."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 124, "", f"TIMEOUT after {timeout}s: {' '.join(argv)}"


def unix_url(path, export=""):
    return f"nbd+unix:///{export}?socket={path}"


# qemu-io's timing lines ("1 MiB, 1 ops; 00.01 sec (...)", "0:00:02.35 (...)" past a
# second) differ run to run.
_TIMING = re.compile(r"\d+(\.\d+)? ([KMGT]iB|bytes), \d+ ops; [0-9:.]+( sec)? \(.*\)")


def mask_timing(text):
    return _TIMING.sub("X ops; TIME", text)


def strata_bindir(work, **tools):
    """A directory of symlinks that installs strata's tools under QEMU's names, e.g.
    strata_bindir(work, **{"qemu-img": STRATA_IMG}); put it first on PATH."""
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir, exist_ok=True)
    for name, target in tools.items():
        os.symlink(target, os.path.join(bindir, name))
    return bindir


def report(failures, summary):
    """Prints each failure and the summary line; returns the exit code."""
    for f in failures:
        print("FAIL:", f)
    print(summary)
    return 1 if failures else 0
