#!/usr/bin/env bash
# Bazel wrapper: run_bitmap_check_differential.sh STRATA_IMG CASES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/bitmap_check_differential.py" --strata-img "$1" --cases "$2" --seed "$3"
