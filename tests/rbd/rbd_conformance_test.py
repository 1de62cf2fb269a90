#!/usr/bin/env python3
"""Runs the driver conformance suite (drivers/rbd/rbd_conformance.cc) on a throwaway
one-node cluster. Usage: rbd_conformance_test.py RBD_CONFORMANCE_BINARY"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ceph_cluster  # noqa: E402


def main():
    binary = os.path.abspath(sys.argv[1])
    with ceph_cluster.cluster(parent="/tmp") as c:
        env = dict(os.environ, STRATA_RBD_CONF=c.conf)
        return subprocess.run([binary], env=env, timeout=900).returncode


if __name__ == "__main__":
    sys.exit(main())
