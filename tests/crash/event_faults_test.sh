#!/usr/bin/env bash
# Crash consistency at every qcow2 metadata event. For each scenario (allocating writes with
# copy-on-write over a backing file, in-place writes, discard, write-zeroes and a new L2
# table; refcount-table growth; L1 growth on resize) and each event it exercises, with lazy
# refcounts off and on, strata-io runs the scenario through a blkdebug filter that either
#   eio:   fails the first request after the event with EIO (once; cache=writeback and
#          writethrough), or
#   crash: suspends the request at the event, and the process is killed with SIGKILL there.
# Then the image must open read-write (repairing it if dirty), the real `qemu-img check`
# must find no corruption (leaks are allowed), and every cluster must read (through the
# real qemu-img) either the data from before the scenario or the data after it.
# Usage: event_faults_test.sh STRATA_IO CLUSTER_COMPARE [EVENT...]
set -u
strata_io=$(readlink -f "$1")
compare=$(readlink -f "$2")
shift 2
only_events=("$@")
# The events each scenario exercises (every event of the qcow2 write paths is covered).
scenario_events() {
  case $1 in
    cow) echo l1_update l2_load l2_update l2_alloc_write read_backing_aio write_aio \
           cow_read cluster_alloc_space refblock_load refblock_update_part refblock_alloc \
           cluster_alloc cluster_free flush_to_os flush_to_disk pwritev pwritev_done ;;
    reftable) echo reftable_grow refblock_alloc refblock_alloc_write refblock_alloc_hookup \
           refblock_alloc_write_blocks refblock_alloc_write_table \
           refblock_alloc_switch_table write_aio ;;
    l1grow) echo l1_grow_alloc_table l1_grow_write_table l1_grow_activate_table l1_update \
           l2_alloc_write ;;
  esac
}
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
states=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# scenario_setup NAME LAZY: makes NAME.LAZY.qcow2 (the state before the scenario).
# scenario_ops NAME: the scenario's qemu-io commands, one per line.
# scenario_cluster NAME: its guest cluster size.
scenario_setup() {
  local img="$1.$2.qcow2"
  case $1 in
    cow)
      qemu-img create -q -f qcow2 base.qcow2 8M
      qemu-io -c "write -P 0x11 0 4M" base.qcow2 >/dev/null
      qemu-img create -q -f qcow2 -o "lazy_refcounts=$2,cluster_size=4k" -b base.qcow2 \
        -F qcow2 "$img" 16M
      qemu-io -c "write -P 0x22 1M 512k" "$img" >/dev/null ;;
    reftable)
      qemu-img create -q -f qcow2 -o "lazy_refcounts=$2,cluster_size=512" "$img" 16M ;;
    l1grow)
      qemu-img create -q -f qcow2 -o "lazy_refcounts=$2,cluster_size=512" "$img" 1M
      qemu-io -c "write -P 0x21 0 64k" "$img" >/dev/null ;;
  esac
}
scenario_ops() {
  case $1 in
    cow) printf '%s\n' "write -P 0x33 30k 9k" "write -P 0x44 2M 512k" \
           "write -P 0x55 1051k 6k" "write -P 0x66 12M 4k" "discard 1280k 128k" \
           "write -z 3M 128k" ;;
    reftable) printf '%s\n' "write -P 0x77 0 12M" ;;
    l1grow) printf '%s\n' "truncate 8M" "write -P 0x88 7M 4k" ;;
  esac
}
scenario_cluster() { case $1 in cow) echo 4096 ;; *) echo 512 ;; esac; }

io_args() {  # io_args FILE: -c options running the scenario's commands
  while IFS= read -r cmd; do printf '%s\0' -c "$cmd"; done < "$1"
}

for scenario in cow reftable l1grow; do
  scenario_ops $scenario > ops.txt
  mapfile -d '' ops < <(io_args ops.txt)
  cs=$(scenario_cluster $scenario)
  if [ ${#only_events[@]} -gt 0 ]; then events=("${only_events[@]}")
  else read -r -a events <<< "$(scenario_events $scenario)"; fi
  for lazy in off on; do
    before="$scenario.$lazy.qcow2"
    scenario_setup $scenario $lazy
    qemu-img convert -O raw "$before" old.raw
    cp "$before" after.qcow2
    qemu-io "${ops[@]}" after.qcow2 >/dev/null
    qemu-img convert -O raw after.qcow2 new.raw
    for cache in writeback writethrough; do
      for event in "${events[@]}"; do
        for mode in eio crash; do
          # A crash does not care how often the cache was flushed before it: writeback only.
          [ $mode = crash ] && [ $cache = writethrough ] && continue
          what="$scenario lazy=$lazy cache=$cache $mode at $event"
          cp "$before" t.qcow2
          if [ $mode = eio ]; then
            "$strata_io" -c "open -t $cache -o file.driver=blkdebug,file.inject-error.0.event=$event,file.inject-error.0.once=on t.qcow2" \
              "${ops[@]}" > run.out 2>&1
            st=$?
            if [ $st -gt 1 ]; then fail "$what: strata-io exit status $st"; cat run.out; continue; fi
          else
            "$strata_io" -c "open -t $cache -o file.driver=blkdebug t.qcow2" \
              -c "break $event A" "${ops[@]}" > run.out 2>&1 &
            pid=$!
            for _ in $(seq 1 500); do
              grep -q "Suspended request" run.out && break
              kill -0 $pid 2>/dev/null || break
              sleep 0.01
            done
            kill -9 $pid 2>/dev/null
            wait $pid 2>/dev/null
          fi
          states=$((states + 1))
          # Opening read-write repairs a dirty image.
          if ! "$strata_io" -c "read 0 512" t.qcow2 > open.out 2>&1; then
            fail "$what: image does not open"; cat open.out; continue
          fi
          qemu-img check t.qcow2 > check.out 2>&1
          st=$?
          if [ $st -ne 0 ] && [ $st -ne 3 ]; then
            fail "$what: qemu-img check exit status $st"; cat check.out; continue
          fi
          qemu-img convert -O raw t.qcow2 result.raw || { fail "$what: convert"; continue; }
          "$compare" result.raw old.raw new.raw "$cs" > compare.out ||
            { fail "$what: $(cat compare.out)"; continue; }
        done
      done
    done
  done
done
echo "$states crash states checked, $failures failed"
[ $failures -eq 0 ]
