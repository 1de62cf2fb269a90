#!/usr/bin/env bash
# Bazel wrapper: run_keyslot_differential.sh STRATA_IMG STRATA_IO SEQUENCES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/keyslot_differential.py" --strata-img "$1" --strata-io "$2" \
  --sequences "$3" --seed "$4"
