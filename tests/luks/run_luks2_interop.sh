#!/usr/bin/env bash
# Bazel wrapper: run_luks2_interop.sh STRATA_IMG STRATA_IO SETUPS SEED
set -u
here=$(dirname "$0")
exec python3 "$here/luks2_interop.py" --strata-img "$1" --strata-io "$2" --setups "$3" --seed "$4"
