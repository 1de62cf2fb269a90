#!/usr/bin/env bash
# Side-by-side benchmark: the same command lines through the real qemu-img and through
# strata-img, A/B paired in one run (the order alternates each round), on fresh images
# for allocating writes. Prints the median time of each and the median paired ratio
# qemu/strata (> 1 means strata is faster); workloads with a raw-file baseline also print
# raw/strata (the share of the raw file's speed strata reaches). Absolute times on shared
# machines are noise; the paired ratios are the result.
#
#   bench/e2e/vs_qemu.sh [ROUNDS] [STRATA_IMG]
set -euo pipefail
rounds=${1:-5}
strata=$(readlink -f "${2:-$(dirname "$0")/../../bazel-bin/tools/strata-img}")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/strata-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

run_time() {  # run_time TOOL ARGS... -> seconds (qemu-img bench's own timing)
  "$@" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'
}
wall_time() {  # wall_time CMD... -> seconds of wall clock
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }

# bytes_of BENCH_ARGS...: the bytes a qemu-img bench command line moves (-s times -c).
bytes_of() {
  local size=4096 count=75000
  while [ $# -gt 0 ]; do
    case "$1" in
      -s) size=$2; shift ;;
      -c) count=$2; shift ;;
    esac
    shift
  done
  size=${size/k/*1024}; size=${size/M/*1048576}
  echo $((size * count))
}

# report NAME BYTES Q_TIMES S_TIMES RATIOS [RAW_TIMES RAW_RATIOS] (space-separated lists)
report() {
  local line s_median
  s_median=$(tr ' ' '\n' <<< "$4" | median)
  line=$(printf '%-52s qemu %7.3fs  strata %7.3fs (%5.0f MiB/s)  qemu/strata %5.2fx' "$1" \
    "$(tr ' ' '\n' <<< "$3" | median)" "$s_median" \
    "$(awk -v b="$2" -v t="$s_median" 'BEGIN {print (t > 0 ? b / t / 1048576 : 0)}')" \
    "$(tr ' ' '\n' <<< "$5" | median)")
  if [ $# -gt 5 ]; then
    line+=$(printf '  raw %7.3fs  raw/strata %5.2fx' "$(tr ' ' '\n' <<< "$6" | median)" \
      "$(tr ' ' '\n' <<< "$7" | median)")
  fi
  echo "$line"
}

# workload NAME PREPARE(alloc|fresh) CREATE_OPTS RAW BENCH_ARGS...
# RAW: 0 = no raw baseline, 1 = a sparse raw file, falloc = a preallocated raw file
# (the disk's own speed).
workload() {
  local name=$1 prep=$2 opts=$3 with_raw=$4
  shift 4
  local q=() s=() rq=() raw=() rr=()
  for ((r = 0; r < rounds; r++)); do
    for tool in q s; do
      rm -f "$tool.qcow2"
      qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "$tool.qcow2" 1G
      if [ "$prep" = alloc ]; then
        qemu-img bench -w -s 1M -c 1024 -d 4 "$tool.qcow2" > /dev/null
      fi
    done
    local tq ts tr
    if ((r % 2 == 0)); then
      tq=$(run_time qemu-img bench "$@" q.qcow2); ts=$(run_time "$strata" bench "$@" s.qcow2)
    else
      ts=$(run_time "$strata" bench "$@" s.qcow2); tq=$(run_time qemu-img bench "$@" q.qcow2)
    fi
    q+=("$tq"); s+=("$ts"); rq+=("$(ratio "$tq" "$ts")")
    if [ "$with_raw" != 0 ]; then
      rm -f r.raw
      if [ "$with_raw" = falloc ]; then
        qemu-img create -q -f raw -o preallocation=falloc r.raw 1G
      else
        qemu-img create -q -f raw r.raw 1G
      fi
      tr=$(run_time qemu-img bench -f raw "$@" r.raw)
      raw+=("$tr"); rr+=("$(ratio "$tr" "$ts")")
    fi
  done
  local bytes
  bytes=$(bytes_of "$@")
  if [ "$with_raw" != 0 ]; then
    report "$name" "$bytes" "${q[*]}" "${s[*]}" "${rq[*]}" "${raw[*]}" "${rr[*]}"
  else
    report "$name" "$bytes" "${q[*]}" "${s[*]}" "${rq[*]}"
  fi
}

# convert_workload: 512 MiB of raw data to qcow2, O_DIRECT on both sides.
convert_workload() {
  local q=() s=() rq=()
  qemu-img create -q -f raw src.raw 512M
  qemu-io -f raw -c "write -P 0x5c 0 512M" src.raw > /dev/null
  for ((r = 0; r < rounds; r++)); do
    rm -f q.qcow2 s.qcow2
    local tq ts
    if ((r % 2 == 0)); then
      tq=$(wall_time qemu-img convert -t none -T none -f raw -O qcow2 src.raw q.qcow2)
      ts=$(wall_time "$strata" convert -t none -T none -f raw -O qcow2 src.raw s.qcow2)
    else
      ts=$(wall_time "$strata" convert -t none -T none -f raw -O qcow2 src.raw s.qcow2)
      tq=$(wall_time qemu-img convert -t none -T none -f raw -O qcow2 src.raw q.qcow2)
    fi
    q+=("$tq"); s+=("$ts"); rq+=("$(ratio "$tq" "$ts")")
  done
  rm -f src.raw
  report "convert raw->qcow2 512M, -t none -T none" $((512 << 20)) "${q[*]}" "${s[*]}" \
    "${rq[*]}"
}

# commit_workload: a fully written 256 MiB overlay committed into its base.
commit_workload() {
  local q=() s=() rq=()
  for ((r = 0; r < rounds; r++)); do
    for tool in q s; do
      rm -f "$tool.base.qcow2" "$tool.top.qcow2"
      qemu-img create -q -f qcow2 "$tool.base.qcow2" 256M
      qemu-img create -q -f qcow2 -b "$tool.base.qcow2" -F qcow2 "$tool.top.qcow2"
      qemu-img bench -w -s 1M -c 256 -d 4 "$tool.top.qcow2" > /dev/null
    done
    local tq ts
    if ((r % 2 == 0)); then
      tq=$(wall_time qemu-img commit -t none q.top.qcow2)
      ts=$(wall_time "$strata" commit -t none s.top.qcow2)
    else
      ts=$(wall_time "$strata" commit -t none s.top.qcow2)
      tq=$(wall_time qemu-img commit -t none q.top.qcow2)
    fi
    q+=("$tq"); s+=("$ts"); rq+=("$(ratio "$tq" "$ts")")
  done
  report "commit of a 256M overlay, -t none" $((256 << 20)) "${q[*]}" "${s[*]}" "${rq[*]}"
}

echo "strata vs QEMU $(qemu-img --version | head -1 | awk '{print $3}'), $rounds paired rounds, median"
echo "(qemu/strata = qemu time / strata time, per round, median; > 1 = strata faster;"
echo " raw/strata = raw file time / strata time: 1.0 = as fast as the raw file)"
workload "seq 64k allocating writes, d16, cache=none" fresh "" falloc \
  -w -s 64k -c 8192 -d 16 -t none
workload "strided 4k allocating writes, d1, writethrough" fresh "" 1 \
  -w -s 4k -S 69632 -c 1000 -d 1 -t writethrough
workload "  same, lazy_refcounts=on" fresh "lazy_refcounts=on" 1 \
  -w -s 4k -S 69632 -c 1000 -d 1 -t writethrough
workload "strided 4k allocating writes, d16, writeback" fresh "" 1 \
  -w -s 4k -S 69632 -c 8192 -d 16 -t writeback
workload "strided 4k allocating writes, d16, cache=none" fresh "" 0 \
  -w -s 4k -S 69632 -c 8192 -d 16 -t none
workload "seq 64k allocating writes, d16, writeback" fresh "" 0 \
  -w -s 64k -c 4096 -d 16 -t writeback
workload "strided 4k reads, allocated, d16, cache=none" alloc "" 0 \
  -s 4k -S 69632 -c 16384 -d 16 -t none
workload "seq 64k reads, allocated, d16, cache=none" alloc "" 0 \
  -s 64k -c 8192 -d 16 -t none
workload "strided 4k reads, allocated, d16, writeback" alloc "" 0 \
  -s 4k -S 69632 -c 16384 -d 16 -t writeback
convert_workload
commit_workload
