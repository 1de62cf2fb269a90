#!/usr/bin/env bash
# Replays the fuzz seeds (made now by make_seeds.sh with QEMU's tools) and every committed
# finding (findings/<fuzzer>/) through each fuzz target built in replay mode. A crash, a
# sanitizer report or a hang (5 minutes per target) fails the test.
#   fuzz_replay_test.sh MAKE_SEEDS FUZZER...
set -uo pipefail
make_seeds=$1
shift
seeds="${TEST_TMPDIR:-$(mktemp -d)}/seeds"
bash "$make_seeds" "$seeds" || { echo "FAIL: making seeds"; exit 1; }
here=$(dirname "$0")
failed=0
for bin in "$@"; do
  name=$(basename "$bin")
  out=$(timeout 300 "$bin" "$seeds/$name" "$here/findings/$name" 2>/tmp/fuzz_replay_$$.err)
  rc=$?
  if [ $rc -ne 0 ] || ! grep -q "^replayed [1-9]" <<<"$out"; then
    echo "FAIL: $name (exit $rc)"
    tail -30 /tmp/fuzz_replay_$$.err
    failed=1
  else
    echo "ok: $name: $out"
  fi
done
rm -f /tmp/fuzz_replay_$$.err
exit $failed
