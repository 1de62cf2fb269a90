#!/usr/bin/env bash
# Bazel wrapper: run_filename_bytes.sh STRATA_IMG STRATA_IO NAMES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/filename_bytes.py" --strata-img "$1" --strata-io "$2" --names "$3" --seed "$4"
