#!/usr/bin/env bash
# Side-by-side benchmark: the same qemu-img bench command line through the real qemu-img
# and through strata-img, A/B paired in one run (alternating order each round), on fresh
# images for allocating writes. Prints the median time of each and the paired ratio
# qemu/strata (> 1 means strata is faster). Absolute times on shared machines are noise;
# the paired ratios are the result.
#
#   bench/e2e/vs_qemu.sh [ROUNDS] [STRATA_IMG]
set -euo pipefail
rounds=${1:-5}
strata=$(readlink -f "${2:-$(dirname "$0")/../../bazel-bin/tools/strata-img}")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/strata-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

run_time() {  # run_time TOOL ARGS... -> seconds
  "$@" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# workload NAME PREPARE(alloc|fresh) BENCH_ARGS...
workload() {
  local name=$1 prep=$2
  shift 2
  local q_times=() s_times=() ratios=()
  for ((r = 0; r < rounds; r++)); do
    for tool in q s; do
      rm -f "$tool.qcow2"
      qemu-img create -q -f qcow2 "$tool.qcow2" 1G
      if [ "$prep" = alloc ]; then
        qemu-img bench -w -s 1M -c 1024 -d 4 "$tool.qcow2" >/dev/null
      fi
    done
    local tq ts
    if ((r % 2 == 0)); then
      tq=$(run_time qemu-img bench "$@" q.qcow2); ts=$(run_time "$strata" bench "$@" s.qcow2)
    else
      ts=$(run_time "$strata" bench "$@" s.qcow2); tq=$(run_time qemu-img bench "$@" q.qcow2)
    fi
    q_times+=("$tq"); s_times+=("$ts")
    ratios+=("$(awk -v q="$tq" -v s="$ts" 'BEGIN {printf "%.3f", (s > 0 ? q / s : 0)}')")
  done
  printf '%-48s qemu %7.3fs  strata %7.3fs  ratio %5.2fx\n' "$name" \
    "$(printf '%s\n' "${q_times[@]}" | median)" "$(printf '%s\n' "${s_times[@]}" | median)" \
    "$(printf '%s\n' "${ratios[@]}" | median)"
}

echo "strata vs QEMU $(qemu-img --version | head -1 | awk '{print $3}'), $rounds paired rounds, median"
echo "(ratio = qemu time / strata time, per round, median; > 1 = strata faster)"
for cache in writeback none; do
  workload "seq 64k allocating writes, d16, cache=$cache" fresh \
    -w -s 64k -c 4096 -d 16 -t $cache
  workload "strided 4k allocating writes, d16, cache=$cache" fresh \
    -w -s 4k -S 69632 -c 8192 -d 16 -t $cache
  workload "seq 64k reads, allocated, d16, cache=$cache" alloc \
    -s 64k -c 8192 -d 16 -t $cache
  workload "strided 4k reads, allocated, d16, cache=$cache" alloc \
    -s 4k -S 69632 -c 16384 -d 16 -t $cache
done
