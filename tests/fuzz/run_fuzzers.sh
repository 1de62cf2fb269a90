#!/usr/bin/env bash
# Builds the libFuzzer targets (--config=fuzz: clang, ASan, UBSan), seeds them with
# make_seeds.sh (QEMU's tools), and runs each for a bounded number of executions. Prints
# one line per fuzzer in Bazel's summary format ("//tests/fuzz:NAME  PASSED ...", which
# scripts/test counts) with its executions, and keeps any crashing input in OUT/.
#   run_fuzzers.sh [--runs N] [--max-time SECONDS] [--seed N] [--out DIR] [--output-base DIR]
# The CI slice is the default (20,000 executions or 30 s per fuzzer); a longer campaign:
#   tests/fuzz/run_fuzzers.sh --runs 2000000 --max-time 3600
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=20000
max_time=30
seed=1  # fixed: the same build explores the same inputs, so CI results repeat
out=${TMPDIR:-/tmp}/strata-fuzz-out
base=$(scripts/output-base clang)
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --max-time) max_time=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --output-base) base=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
fuzzers=(qcow2_image_fuzzer options_fuzzer blkdebug_config_fuzzer qemu_io_fuzzer nbd_server_fuzzer)
targets=()
for f in "${fuzzers[@]}"; do targets+=("//tests/fuzz:$f"); done
if ! bazel --output_base="$base" build --config=fuzz "${targets[@]}"; then
  for f in "${fuzzers[@]}"; do echo "//tests/fuzz:$f:libfuzzer  FAILED TO BUILD"; done
  exit 1
fi
bin=$(bazel --output_base="$base" info --config=fuzz bazel-bin 2>/dev/null)
rm -rf "$out"
mkdir -p "$out"
bash tests/fuzz/make_seeds.sh "$out/seeds" >/dev/null || { echo "making seeds failed"; exit 1; }
status=0
for f in "${fuzzers[@]}"; do
  corpus=$out/corpus/$f
  mkdir -p "$corpus" "$out/artifacts"
  cp "$out/seeds/$f"/* "$corpus/" 2>/dev/null
  log=$out/$f.log
  findings=()
  [ -d "tests/fuzz/findings/$f" ] && findings=("tests/fuzz/findings/$f")  # read, never written
  # -close_fd_mask=3: the targets print what the tools print; keep the log readable.
  timeout $((max_time + 120)) "$bin/tests/fuzz/$f" -seed="$seed" -runs="$runs" -max_total_time="$max_time" \
    -timeout=20 -rss_limit_mb=2560 -close_fd_mask=3 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$f-" "$corpus" "${findings[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1)
  cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "//tests/fuzz:$f:libfuzzer  PASSED: ${execs:-?} executions, $cov"
  else
    echo "//tests/fuzz:$f:libfuzzer  FAILED (exit $rc) after ${execs:-?} executions; input in $out/artifacts/"
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x" "$log" | head -30
    status=1
  fi
done
exit $status
