#!/usr/bin/env bash
# Bazel wrapper: run_dropin_corpus.sh STRATA_IMG STRATA_IO [SLICE K/N]
set -u
here=$(dirname "$0")
exec python3 "$here/dropin_corpus.py" --strata-img "$1" --strata-io "$2" --slice "${3:-0/1}"
