#!/usr/bin/env bash
# Bazel wrapper: run_hostile_sweep.sh STRATA_IMG STRATA_IO [SLICE K/N]
set -u
here=$(dirname "$0")
exec python3 "$here/hostile_sweep.py" --strata-img "$1" --strata-io "$2" --slice "${3:-0/1}"
