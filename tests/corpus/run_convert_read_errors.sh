#!/usr/bin/env bash
# Bazel wrapper: run_convert_read_errors.sh STRATA_IMG CASES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/convert_read_errors.py" --strata-img "$1" --cases "$2" --seed "$3"
