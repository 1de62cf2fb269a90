#!/usr/bin/env bash
# Bazel wrapper: run_feature_corpus.sh STRATA_IMG STRATA_IO FEATURE CASES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/feature_corpus.py" --strata-img "$1" --strata-io "$2" --feature "$3" \
  --cases "$4" --seed "$5"
