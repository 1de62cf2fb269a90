#!/usr/bin/env bash
# Bazel wrapper: run_crypto_corpus.sh STRATA_IMG STRATA_IO CASES SEED
set -u
here=$(dirname "$0")
exec python3 "$here/crypto_corpus.py" --strata-img "$1" --strata-io "$2" --cases "$3" \
  --seed "$4"
