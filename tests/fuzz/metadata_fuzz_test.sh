#!/usr/bin/env bash
# Bad input never crashes or hangs strata: a qcow2 image with data, zero and compressed
# clusters and a snapshot gets 1-4 random byte changes (mostly in its metadata area) and
# sometimes a truncation; then strata-io reads and writes it and strata-img checks,
# repairs, inspects, converts, amends it and applies the snapshot. Each command may fail
# (with a message), but must not die from a signal or run into the timeout.
# Usage: metadata_fuzz_test.sh STRATA_IMG STRATA_IO [COUNT] [SEED]
set -u
img=$(readlink -f "$1")
io=$(readlink -f "$2")
count=${3:-${STRATA_FUZZ_COUNT:-60}}
seed=${4:-${STRATA_SEED:-1}}
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
RANDOM=$seed
qemu-img create -q -f qcow2 -o cluster_size=4k base.qcow2 4M
qemu-io -c "write -P 1 0 1M" -c "write -z 1M 64k" -c "write -c 2M 64k" base.qcow2 > /dev/null
qemu-img snapshot -c s base.qcow2
qemu-io -c "write -P 2 512k 256k" base.qcow2 > /dev/null
size=$(stat -c %s base.qcow2)
bad=0
commands=(
  "$io -r -c 'read 0 4M' f.qcow2"
  "$io -c 'write -P 9 0 4M' -c 'discard 1M 1M' -c 'write -z 3M 64k' f.qcow2"
  "$img check f.qcow2"
  "$img check -r all f.qcow2"
  "$img info f.qcow2"
  "$img map f.qcow2"
  "$img snapshot -l f.qcow2"
  "$img convert -O raw f.qcow2 out.raw"
  "$img amend -o compat=0.10 f.qcow2"
  "$img snapshot -a s f.qcow2"
)
for ((i = 0; i < count; i++)); do
  cp base.qcow2 f.qcow2
  changes=$((1 + RANDOM % 4))
  for ((k = 0; k < changes; k++)); do
    if ((RANDOM % 4)); then off=$((RANDOM % 65536)); else off=$(( (RANDOM * 32768 + RANDOM) % size )); fi
    printf "\\x$(printf %02x $((RANDOM % 256)))" |
      dd of=f.qcow2 bs=1 seek=$off conv=notrunc status=none
  done
  ((RANDOM % 8 == 0)) && truncate -s $(( (RANDOM * 32768 + RANDOM) % size )) f.qcow2
  cp f.qcow2 mutated.qcow2
  for cmd in "${commands[@]}"; do
    timeout 20 bash -c "$cmd" > out.log 2>&1
    rc=$?
    if [ $rc -ge 124 ]; then
      echo "FAIL: mutation $i (seed $seed): exit $rc from: $cmd"
      tail -3 out.log
      bad=$((bad + 1))
    fi
  done
done
echo "$count mutations x ${#commands[@]} commands, $bad crashes or hangs (seed $seed)"
[ "$bad" -eq 0 ]
