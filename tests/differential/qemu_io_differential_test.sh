#!/usr/bin/env bash
# Differential test: the same qemu-io command scripts run through the real qemu-io and
# through strata-io (invoked as "qemu-io" via a symlink) on identical raw images. The
# filtered output, the exit status and the resulting image bytes must all be identical.
# Usage: qemu_io_differential_test.sh STRATA_IO
set -u
source "$(dirname "$0")/side_by_side.sh"
side_by_side qemu-io "$1"
real_io=$(command -v qemu-io)

filter() {
  sed -E -e 's/[0-9]* ops; [0-9/:. sec]* \([0-9/.inf]* [EPTGMKiBbytes]*\/sec and [0-9/.inf]* ops\/sec\)/X ops; TIME/' \
    -e 's/^[0-9]+,[0-9]+,[0-9:.]+,[0-9.]+,[0-9.]+$/CSV/' -e "s#$work/[a-z]*/#DIR/#g"
}

# Each script: one line of qemu-io arguments (after the image options).
scripts=(
  "-c 'write -P 0x1 0 4k' -c 'read -P 0x1 0 4k' -c 'read -P 0x2 0 4k'"
  "-c 'write -P 0x33 1 511' -c 'read -v 0 48' -c 'read -P 0x33 1 511' -c 'read -P 0 512 512'"
  "-c 'writev -P 0x44 4k 1 2 3 4096' -c 'readv -P 0x44 4k 4106' -c 'readv 4k 10 20 30'"
  "-c 'write -z 0 64k' -c 'write -z -u 64k 64k' -c 'read -P 0 0 128k' -c 'alloc 0 128k' -c map"
  "-c 'discard 0 4k' -c 'discard -q 4k 4k' -c 'discard -C 8k 4k' -c 'length'"
  "-c 'truncate 3M' -c length -c 'truncate 1536' -c length -c 'read 1024 512' -c 'read 1536 1'"
  "-c 'read 2M 1' -c 'write 1048575 2' -c 'read 0 1x' -c 'read -P 256 0 1' -c 'read 0 3G'"
  "-c 'write -P 7 -z 0 1' -c 'write -n 0 1' -c 'write -u 0 1' -c 'read -s 1 0 1' -c 'read -P 1 -s 0 -l 2 0 1'"
  "-c 'aio_write -P 0x5 0 64k' -c 'aio_flush' -c 'aio_read -P 0x5 0 64k' -c 'aio_flush'"
  "-c 'aio_write -z 0 4k 4k' -c 'aio_write -z -P 1 0 4k' -c 'aio_read -i 0 1' -c 'aio_write -i 0 1'"
  "-c 'bogus' -c 'read' -c 'write 1 2 3 4' -c 'help read' -c 'length extra' -c 'alloc 0 1 2'"
  "-c 'break l1_update A' -c 'resume A' -c 'remove_break A' -c 'reopen -r' -c 'write 0 1' -c 'reopen -w' -c 'write 0 1' -c 'reopen -o bogus=1' -c 'reopen -r -w'"
  "-c 'close' -c 'read 0 1' -c 'open -r DIR/t.raw' -c 'write 0 1' -c 'read 0 1' -c 'open DIR/t.raw'"
  "-c 'write -f 0 4k' -c 'writev -f 4k 4k' -c 'flush' -c 'read -C 0 4k' -c 'read -q 0 4k'"
  "-c 'info' -c 'help' -c 'quit' -c 'read 0 1'"
)
failures=0
for i in "${!scripts[@]}"; do
  for impl in qemu strata; do
    rm -f "$work/$impl/t.raw"
    "$real_io" -f raw -c 'write -P 0xee 0 1M' "$work/$impl/t.raw" >/dev/null 2>&1 ||
      truncate -s 1M "$work/$impl/t.raw"
    truncate -s 1M "$work/$impl/t.raw"
    script=${scripts[$i]//DIR/$work/$impl}
    (cd "$work/$impl" && eval "./qemu-io -f raw $script t.raw") > "$work/$impl.out" 2>&1
    echo "exit $?" >> "$work/$impl.out"
  done
  if ! diff -u <(filter < "$work/qemu.out") <(filter < "$work/strata.out"); then
    echo "script $i differs: ${scripts[$i]}"
    failures=$((failures + 1))
  elif ! cmp -s "$work/qemu/t.raw" "$work/strata/t.raw"; then
    echo "script $i leaves different image contents: ${scripts[$i]}"
    failures=$((failures + 1))
  fi
done
echo "${#scripts[@]} scripts, $failures differing"
[ "$failures" -eq 0 ]
