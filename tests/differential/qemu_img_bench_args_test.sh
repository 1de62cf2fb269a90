#!/usr/bin/env bash
# Differential test: qemu-img bench command lines (option parsing, the header lines, the
# refusals) through the real qemu-img and through strata-img invoked as "qemu-img" via a
# symlink. Output (with the run time masked) and exit status must be identical.
# Usage: qemu_img_bench_args_test.sh STRATA_IMG
set -u
source "$(dirname "$0")/side_by_side.sh"
side_by_side qemu-img "$1"
real_img=$(command -v qemu-img)

# Each case: qemu-img bench arguments before the image name (t.qcow2, 1 MiB).
cases=(
  "-c 16 -s 4k"
  "-w -c 0x10 -s 4k -d 0x4 --pattern=0xa5"
  "-w -c 010 -s 512 -S 1k -o 4096 --pattern=0255"
  "-w -c 16 -d 4 --flush-interval=4 -s 4k"
  "-w -c 16 -d 8 --flush-interval=4 -s 4k"
  "-w -c 16 -d 4 --flush-interval=8 --no-drain -s 4k"
  "-c 1k"
  "-d 1k"
  "--flush-interval=1k"
  "--pattern=256"
  "--pattern=-1"
  "-c 99999999999"
  "-s 2M"
  "-q -c 4 -s 4k"
  "-w -c 8 -s 64k -t writethrough -n"
)
failures=0
for i in "${!cases[@]}"; do
  for impl in qemu strata; do
    rm -f "$work/$impl/t.qcow2"
    "$real_img" create -q -f qcow2 "$work/$impl/t.qcow2" 1M
    (cd "$work/$impl" && eval "timeout 20 ./qemu-img bench ${cases[$i]} t.qcow2") \
      > "$work/$impl.out" 2>&1
    echo "exit $?" >> "$work/$impl.out"
  done
  mask() { sed -E 's/in [0-9.]+ seconds/in T seconds/'; }
  if ! diff -u <(mask < "$work/qemu.out") <(mask < "$work/strata.out"); then
    echo "case $i differs: ${cases[$i]}"
    failures=$((failures + 1))
  fi
done
echo "${#cases[@]} cases, $failures differing"
[ "$failures" -eq 0 ]
