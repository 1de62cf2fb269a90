#!/usr/bin/env bash
# Bazel entry point for one iotest: run_one.sh NNN FMT STRATA_IO STRATA_IMG [STRATA_QCOW2]
set -eu
t=$1 fmt=$2
export STRATA_IO=$(readlink -f "$3") STRATA_IMG=$(readlink -f "$4")
[ $# -ge 5 ] && export STRATA_QCOW2=$(readlink -f "$5")
exec bash "$(dirname "$0")/check" "-$fmt" "$t"
