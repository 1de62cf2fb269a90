#!/usr/bin/env bash
# qcow2 interop, both ways, against the real qemu-img/qemu-io:
#  1. Images qemu-img/qemu-io make (v2 and v3, cluster sizes 512..2M, refcount widths,
#     backing files, zero and discarded clusters, zlib and zstd compressed clusters) read
#     back through strata exactly as `qemu-img convert -O raw` reads them.
#  2. The same seeded random operations applied with strata-io to a strata-created image
#     and with qemu-io to a qemu-img-created image: `qemu-img check` finds no errors and no
#     leaks in strata's image, and `qemu-img compare` finds both equal.
#  3. Commit (default, -d, -b) of v2 and v3 chains made by either tool: strata-img commit
#     and qemu-img commit give images that compare equal, and strata's check clean.
#  4. Internal snapshots created, applied, copied out (convert -l) and deleted across the
#     two tools.
#  5. A backing chain with a loop is refused with a clear error (no hang, no crash).
#  6. measure prints what qemu-img measure prints, for images and for sizes.
#  7. Preallocation (metadata, falloc, full) at create and resize, compared with qemu-img.
#  8. amend (compat both ways, refcount_bits, lazy_refcounts, size, refusals) by both tools.
#  9. convert -B/-F onto a backing file (top image's data only), and its refusals.
# 10. Compressed writes: convert -c (zlib, zstd; v2, v3; 4k..2M clusters; compressible,
#     incompressible and zero data) gives the very file qemu-img gives; qemu-io write -c
#     through strata-io prints what qemu-io prints, and the images read back equal.
# 11. Persistent bitmaps made by either tool record strata's writes as QEMU's record
#     QEMU's (read by QEMU's NBD export), and a crash leaves them in use.
# Usage: qcow2_interop_test.sh STRATA_IMG STRATA_IO STRATA_QCOW2 [SEED]
set -u
strata_img=$(readlink -f "$1")
strata_io=$(readlink -f "$2")
strata_qcow2=$(readlink -f "$3")
seed=${4:-${STRATA_SEED:-1}}
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ---- 1. QEMU writes, strata reads ----
read_back() {  # read_back IMAGE DESCRIPTION
  checks=$((checks + 1))
  qemu-img convert -O raw "$1" expected.raw || { fail "qemu-img convert $2"; return; }
  "$strata_img" convert -O raw "$1" actual.raw || { fail "strata-img convert $2"; return; }
  cmp -s expected.raw actual.raw || fail "contents differ: $2"
  rm -f expected.raw actual.raw
}

qemu_writes() {  # a pattern set that touches many cluster states
  qemu-io -f qcow2 -c "write -P 0x11 0 3k" -c "write -P 0x22 5000 70000" \
    -c "write -P 0x33 1M 300k" -c "write -z 1100k 64k" -c "discard 1200k 100k" \
    -c "write -z -u 2M 128k" -c "write -P 0x44 3M 1" "$1" >/dev/null
}

for compat in 0.10 1.1; do
  for cs in 512 4k 64k 2M; do
    for rb in 1 16 64; do
      [ "$compat" = 0.10 ] && [ "$rb" != 16 ] && continue
      img="v${compat}_${cs}_${rb}.qcow2"
      qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=$cs,refcount_bits=$rb \
        "$img" 4M || { fail "create $img"; continue; }
      qemu_writes "$img"
      read_back "$img" "$img"
    done
  done
done

# Backing chain: raw base, qcow2 middle, qcow2 top, each partly overwritten.
qemu-img create -q -f raw base.raw 4M
qemu-io -f raw -c "write -P 0xa1 0 4M" base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2
qemu-io -f qcow2 -c "write -P 0xb2 64k 64k" -c "write -z 256k 64k" mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 6M
qemu-io -f qcow2 -c "write -P 0xc3 100k 10k" -c "discard 64k 64k" -c "write -P 0xd4 5M 4k" \
  top.qcow2 >/dev/null
read_back top.qcow2 "backing chain"
read_back mid.qcow2 "backing chain middle"

# Compressed clusters, zlib and zstd.
for ct in zlib zstd; do
  qemu-img create -q -f raw src.raw 2M
  qemu-io -f raw -c "write -P 0x5a 0 512k" -c "write -P 0x6b 700k 3k" src.raw >/dev/null
  qemu-img convert -c -O qcow2 -o compression_type=$ct src.raw comp_$ct.qcow2
  read_back comp_$ct.qcow2 "compressed ($ct)"
  qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=4k src.raw comp4k_$ct.qcow2
  read_back comp4k_$ct.qcow2 "compressed ($ct, 4k clusters)"
done

# ---- 2. strata writes, QEMU checks and compares ----
RANDOM=$seed
random_ops() {  # random_ops COUNT SIZE -> qemu-io -c arguments, one per line
  local n=$1 size=$2 i op off len
  for ((i = 0; i < n; i++)); do
    op=$((RANDOM % 10))
    off=$(( (RANDOM * 32768 + RANDOM) % size ))
    len=$(( 1 + (RANDOM * 32768 + RANDOM) % 300000 ))
    [ $((off + len)) -gt "$size" ] && len=$((size - off))
    [ "$len" -le 0 ] && len=1
    case $op in
      0|1|2|3|4) echo "write -P $((RANDOM % 256)) $off $len" ;;
      5) echo "write -z $off $len" ;;
      6) echo "write -z -u $off $len" ;;
      7) echo "discard $off $len" ;;
      8) if [ "$len" -ge 2 ]; then
           echo "writev -P $((RANDOM % 256)) $off $(( (len + 1) / 2 )) $(( len / 2 ))"
         else
           echo "write -P $((RANDOM % 256)) $off $len"
         fi ;;
      9) echo "flush" ;;
    esac
  done
}

run_both() {  # run_both NAME CREATE_ARGS SIZE OPCOUNT [backing]
  local name=$1 opts=$2 size=$3 count=$4
  checks=$((checks + 1))
  mapfile -t ops < <(random_ops "$count" "$size")
  local args=()
  for op in "${ops[@]}"; do args+=(-c "$op"); done
  qemu-img create -q -f qcow2 $opts "q_$name.qcow2" "$size"
  "$strata_img" create -q -f qcow2 $opts "s_$name.qcow2" "$size" || { fail "strata create $name"; return; }
  qemu-io -f qcow2 "${args[@]}" "q_$name.qcow2" 2>&1 | grep -v ' ops; ' > "q_$name.log"
  echo "exit ${PIPESTATUS[0]}" >> "q_$name.log"
  "$strata_io" -f qcow2 "${args[@]}" "s_$name.qcow2" 2>&1 | grep -v ' ops; ' |
    sed 's/^strata-io:/qemu-io:/' > "s_$name.log"
  echo "exit ${PIPESTATUS[0]}" >> "s_$name.log"
  diff -u "q_$name.log" "s_$name.log" > "diff_$name.log" ||
    { fail "strata-io output differs from qemu-io's ($name, seed $seed)"; head -20 "diff_$name.log"; }
  qemu-img check "s_$name.qcow2" > "check_$name.log" 2>&1 ||
    { fail "qemu-img check ($name, seed $seed)"; cat "check_$name.log"; }
  qemu-img compare "q_$name.qcow2" "s_$name.qcow2" >/dev/null ||
    fail "contents differ from qemu-io's ($name, seed $seed)"
  # strata's own check must say what qemu-img's says, on both images.
  for img in "q_$name.qcow2" "s_$name.qcow2"; do
    qemu-img check "$img" > check_q.log 2>&1; echo "exit $?" >> check_q.log
    "$strata_img" check "$img" 2>&1 | sed 's/^strata-img:/qemu-img:/' > check_s.log
    echo "exit ${PIPESTATUS[0]}" >> check_s.log
    diff -u check_q.log check_s.log || fail "strata-img check differs on $img (seed $seed)"
  done
}

run_both v3_64k "-o compat=1.1" 8388608 60
run_both v2_64k "-o compat=0.10" 8388608 60
run_both v3_4k "-o cluster_size=4k" 4194304 60
run_both v3_512_rb64 "-o cluster_size=512,refcount_bits=64" 2097152 40
run_both v3_512_rb1 "-o cluster_size=512,refcount_bits=1" 1048576 30
run_both v3_2M "-o cluster_size=2M" 16777216 30
run_both v3_zstd "-o compression_type=zstd" 4194304 30
qemu-img create -q -f qcow2 chainbase.qcow2 8M
qemu-io -f qcow2 -c "write -P 0x7e 0 8M" chainbase.qcow2 >/dev/null
run_both v3_backing "-b chainbase.qcow2 -F qcow2" 8388608 60
run_both v2_backing "-o compat=0.10 -b chainbase.qcow2 -F qcow2" 8388608 60
# Many small clusters: L1 growth and refcount table growth.
run_both grow_512 "-o cluster_size=512" 67108864 200

# ---- 3. commit, both ways ----
# A chain base <- mid <- top with random contents, built by WRITER (qemu or strata), is
# committed by qemu-img on one copy and by strata-img on another (default, -d, -b base):
# every image must read back the same through qemu-img and pass qemu-img check.
build_chain() {  # build_chain PREFIX WRITER COMPAT
  local p=$1 io img
  if [ "$2" = qemu ]; then io=qemu-io; img=qemu-img; else io=$strata_io; img=$strata_img; fi
  rm -f "$p"-*.qcow2
  $img create -q -f qcow2 -o compat=$3 "$p-base.qcow2" 4M
  $io -f qcow2 -c "write -P 0x11 0 4M" "$p-base.qcow2" >/dev/null
  $img create -q -f qcow2 -o compat=$3 -b "$p-base.qcow2" -F qcow2 "$p-mid.qcow2"
  mapfile -t ops < <(random_ops 20 4194304 | grep -v flush)
  local args=()
  for op in "${ops[@]}"; do args+=(-c "$op"); done
  $io -f qcow2 "${args[@]}" "$p-mid.qcow2" >/dev/null 2>&1
  $img create -q -f qcow2 -o compat=$3 -b "$p-mid.qcow2" -F qcow2 "$p-top.qcow2" 6M
  mapfile -t ops < <(random_ops 20 6291456 | grep -v flush)
  args=()
  for op in "${ops[@]}"; do args+=(-c "$op"); done
  $io -f qcow2 "${args[@]}" "$p-top.qcow2" >/dev/null 2>&1
}
for writer in qemu strata; do
  for compat in 0.10 1.1; do
    for variant in default -d -b; do
      checks=$((checks + 1))
      what="commit $variant of a $writer-made v$compat chain"
      build_chain q $writer $compat
      for f in base mid top; do cp "q-$f.qcow2" "s-$f.qcow2"; done
      # The copies must name their own backing files.
      qemu-img rebase -u -f qcow2 -b s-base.qcow2 -F qcow2 s-mid.qcow2
      qemu-img rebase -u -f qcow2 -b s-mid.qcow2 -F qcow2 s-top.qcow2
      case $variant in
        default) opt=() ;;
        -d) opt=(-d) ;;
        -b) opt=(-b q-base.qcow2) ;;
      esac
      qemu-img commit -q "${opt[@]}" q-top.qcow2 || { fail "$what: qemu-img failed"; continue; }
      [ "$variant" = -b ] && opt=(-b s-base.qcow2)
      "$strata_img" commit -q "${opt[@]}" s-top.qcow2 || { fail "$what: strata-img failed"; continue; }
      for f in base mid top; do
        qemu-img compare -q "q-$f.qcow2" "s-$f.qcow2" || fail "$what: $f differs"
        qemu-img check -q "s-$f.qcow2" || fail "$what: $f does not check clean"
      done
    done
  done
done

# ---- 4. internal snapshots, both ways ----
# The same writes and snapshot operations with QEMU's tools only (the reference) and with
# strata doing the writes or the snapshot operations: each snapshot, applied by the other
# tool, must read back as the reference's; deleting one and checking stays clean.
snapshot_run() {  # snapshot_run PREFIX WRITER MANAGER COMPAT
  local p=$1 io img mgr
  if [ "$2" = qemu ]; then io=qemu-io; img=qemu-img; else io=$strata_io; img=$strata_img; fi
  if [ "$3" = qemu ]; then mgr=qemu-img; else mgr=$strata_img; fi
  rm -f "$p".qcow2
  $img create -q -f qcow2 -o compat=$4,cluster_size=4k "$p.qcow2" 2M
  $io -f qcow2 "${snap_ops1[@]}" "$p.qcow2" >/dev/null 2>&1
  $mgr snapshot -c first "$p.qcow2"
  $io -f qcow2 "${snap_ops2[@]}" "$p.qcow2" >/dev/null 2>&1
  $mgr snapshot -c second "$p.qcow2"
  $io -f qcow2 "${snap_ops3[@]}" "$p.qcow2" >/dev/null 2>&1
}
to_args() { local op; for op in "$@"; do printf '%s\0' -c "$op"; done; }
mapfile -d '' snap_ops1 < <(to_args $(true) "write -P 0x31 0 2M")
mapfile -t tmp < <(random_ops 15 2097152 | grep -v flush); mapfile -d '' snap_ops2 < <(to_args "${tmp[@]}")
mapfile -t tmp < <(random_ops 15 2097152 | grep -v flush); mapfile -d '' snap_ops3 < <(to_args "${tmp[@]}")
for compat in 0.10 1.1; do
  snapshot_run ref qemu qemu $compat
  for pair in "strata qemu" "qemu strata" "strata strata"; do
    set -- $pair
    checks=$((checks + 1))
    what="snapshots (v$compat, writes by $1, snapshots by $2)"
    snapshot_run t $1 $2 $compat
    qemu-img check -q t.qcow2 || fail "$what: check after create"
    [ "$(qemu-img snapshot -l t.qcow2 | wc -l)" = 4 ] || fail "$what: qemu-img lists"
    [ "$("$strata_img" snapshot -l t.qcow2 | wc -l)" = 4 ] || fail "$what: strata-img lists"
    qemu-img compare -q ref.qcow2 t.qcow2 || fail "$what: active image differs"
    for sn in first second; do
      qemu-img convert -l $sn -O raw ref.qcow2 ref.raw
      "$strata_img" convert -l $sn -O raw t.qcow2 t.raw
      cmp -s ref.raw t.raw || fail "$what: convert -l $sn differs"
      cp ref.qcow2 ref_a.qcow2; cp t.qcow2 t_a.qcow2
      qemu-img snapshot -a $sn ref_a.qcow2
      if [ "$2" = qemu ]; then "$strata_img" snapshot -a $sn t_a.qcow2; else qemu-img snapshot -a $sn t_a.qcow2; fi
      qemu-img compare -q ref_a.qcow2 t_a.qcow2 || fail "$what: snapshot $sn differs"
      qemu-img check -q t_a.qcow2 || fail "$what: check after applying $sn"
    done
    if [ "$2" = qemu ]; then "$strata_img" snapshot -d first t.qcow2; else qemu-img snapshot -d first t.qcow2; fi
    qemu-img check -q t.qcow2 || fail "$what: check after delete"
    qemu-img compare -q ref.qcow2 t.qcow2 || fail "$what: active image differs after delete"
  done
done

# ---- 5. a backing chain that loops (QEMU's own tools hang on it) ----
checks=$((checks + 1))
qemu-img create -q -f qcow2 loop1.qcow2 1M
qemu-img create -q -f qcow2 -b loop1.qcow2 -F qcow2 loop2.qcow2
qemu-img rebase -u -f qcow2 -b loop2.qcow2 -F qcow2 loop1.qcow2
timeout 20 "$strata_io" -r -c "read 0 512" loop2.qcow2 > loop.out 2>&1
[ $? = 1 ] && grep -q "creates an infinite loop" loop.out || fail "loop: strata-io: $(cat loop.out)"
timeout 20 "$strata_img" info loop2.qcow2 > /dev/null 2>&1 || fail "loop: info must still work"
timeout 20 "$strata_img" commit -b nowhere loop2.qcow2 > loop.out 2>&1
[ $? = 1 ] || fail "loop: commit must fail cleanly: $(cat loop.out)"

# ---- 6. measure: the same estimates as qemu-img ----
for img in v1.1_512_16.qcow2 v1.1_64k_16.qcow2 v0.10_4k_16.qcow2 comp_zlib.qcow2 t.qcow2; do
  [ -f "$img" ] || continue
  for opts in "-O qcow2" "-O qcow2 -o cluster_size=4k,refcount_bits=1" "-O raw" \
              "-O qcow2 -o compat=0.10,cluster_size=512" "--output=json -O qcow2"; do
    checks=$((checks + 1))
    expected=$(qemu-img measure $opts "$img" 2>&1)
    actual=$("$strata_img" measure $opts "$img" 2>&1)
    [ "$expected" = "$actual" ] || fail "measure $opts $img: '$actual' vs '$expected'"
  done
done
for size in 1M 1G 100G; do
  checks=$((checks + 1))
  [ "$(qemu-img measure -O qcow2 --size $size)" = "$("$strata_img" measure -O qcow2 --size $size)" ] ||
    fail "measure --size $size"
done

# ---- 7. preallocation: create and resize, both tools ----
# Each mode and layout: strata's image checks clean, reads the same as qemu-img's, takes
# the same file size and (where QEMU's allocator and ours agree: metadata mode, and
# falloc/full within one L2 table) maps the same; data written afterwards reads back.
for mode in metadata falloc full; do
  for spec in ":5M" "compat=0.10:3M" "cluster_size=512:300K" "cluster_size=2M,lazy_refcounts=on:9M"; do
    o=${spec%%:*}; size=${spec#*:}; opts=preallocation=$mode${o:+,$o}
    checks=$((checks + 1))
    rm -f pa_s.qcow2 pa_q.qcow2
    "$strata_img" create -q -f qcow2 -o "$opts" pa_s.qcow2 "$size" || { fail "create $opts"; continue; }
    qemu-img create -q -f qcow2 -o "$opts" pa_q.qcow2 "$size"
    qemu-img check -q pa_s.qcow2 || fail "prealloc $opts: check"
    qemu-img compare -q pa_s.qcow2 pa_q.qcow2 || fail "prealloc $opts: contents"
    [ "$(stat -c %s pa_s.qcow2)" = "$(stat -c %s pa_q.qcow2)" ] || fail "prealloc $opts: file size"
    if [ "$mode" = metadata ] && [ "$o" != "cluster_size=512" ]; then
      cmp -s <(qemu-img map --output=json pa_s.qcow2) <(qemu-img map --output=json pa_q.qcow2) ||
        fail "prealloc $opts: map"
    fi
    # Grow both with the same mode after writing into them.
    "$strata_io" -c "write -q -P 0x5a 4k 8k" pa_s.qcow2
    qemu-io -c "write -q -P 0x5a 4k 8k" pa_q.qcow2
    "$strata_img" resize -q --preallocation=$mode pa_s.qcow2 +1M || fail "resize $opts"
    qemu-img resize -q --preallocation=$mode pa_q.qcow2 +1M
    qemu-img check -q pa_s.qcow2 || fail "prealloc resize $opts: check"
    qemu-img compare -q pa_s.qcow2 pa_q.qcow2 || fail "prealloc resize $opts: contents"
  done
done
checks=$((checks + 1))
"$strata_img" create -q -f qcow2 -b pa_q.qcow2 -F qcow2 -o preallocation=metadata pa_b.qcow2 \
  > pa.out 2>&1 && fail "prealloc with a backing file must be refused"
grep -q "Backing file and preallocation can only be used at the same time" pa.out ||
  fail "prealloc with backing: $(cat pa.out)"

# ---- 8. amend: the same option changes through both tools ----
# Start images with data, zero clusters (plain and allocated), a snapshot, lazy refcounts
# or a backing file; each amend runs on two copies, one per tool: same exit status and
# message, strata's result checks clean, reads as qemu-img's and has the same header
# fields; the snapshot still reads the same.
qemu-img create -q -f qcow2 am_base.qcow2 4M
qemu-io -c "write -P 7 0 4M" am_base.qcow2 > /dev/null
make_amend_image() {  # make_amend_image NAME KIND
  case $2 in
    plain) qemu-img create -q -f qcow2 -o cluster_size=4k "$1" 8M ;;
    lazy) qemu-img create -q -f qcow2 -o lazy_refcounts=on "$1" 8M ;;
    backing) qemu-img create -q -f qcow2 -b am_base.qcow2 -F qcow2 "$1" 4M ;;
    v2) qemu-img create -q -f qcow2 -o compat=0.10 "$1" 8M ;;
  esac
  qemu-io -c "write -P 3 0 256k" -c "write -z 512k 64k" -c "write -P 4 1M 64k" \
          -c "write -z 1M 64k" -c "write -z -u 2M 4k" "$1" > /dev/null
  [ "$2" = plain ] && qemu-img snapshot -c s1 "$1" && qemu-io -c "write -P 5 64k 64k" "$1" > /dev/null
  return 0
}
for kind in plain lazy backing v2; do
  for opts in compat=0.10 compat=1.1 refcount_bits=8 refcount_bits=1 refcount_bits=64,lazy_refcounts=on \
              lazy_refcounts=off lazy_refcounts=on size=2M size=16M compat=0.10,refcount_bits=16 \
              compat=0.10,lazy_refcounts=on cluster_size=4k backing_file=x compat=0.9; do
    checks=$((checks + 1))
    make_amend_image am_s.qcow2 $kind
    cp am_s.qcow2 am_q.qcow2
    "$strata_img" amend -o "$opts" am_s.qcow2 > am_s.out 2>&1; s_rc=$?
    qemu-img amend -o "$opts" am_q.qcow2 > am_q.out 2>&1; q_rc=$?
    sed -i 's/^qemu-img: /strata-img: /' am_q.out
    [ $s_rc = $q_rc ] && cmp -s am_s.out am_q.out ||
      { fail "amend $kind $opts: exit $s_rc vs $q_rc: $(cat am_s.out) vs $(cat am_q.out)"; continue; }
    qemu-img check -q am_s.qcow2 || fail "amend $kind $opts: check"
    qemu-img compare -q am_s.qcow2 am_q.qcow2 || fail "amend $kind $opts: contents"
    cmp -s <("$strata_qcow2" am_s.qcow2 dump-header | grep -v "_offset\|_clusters") \
           <("$strata_qcow2" am_q.qcow2 dump-header | grep -v "_offset\|_clusters") ||
      fail "amend $kind $opts: header"
    if [ "$kind" = plain ]; then
      qemu-img convert -l snapshot.name=s1 -O raw am_s.qcow2 am_s.raw
      qemu-img convert -l snapshot.name=s1 -O raw am_q.qcow2 am_q.raw
      cmp -s am_s.raw am_q.raw || fail "amend $kind $opts: snapshot contents"
    fi
  done
done

# ---- 9. convert -B: only the top image's data, over a new backing file ----
# A random top over a full base, converted by both tools onto the same base (v2 and v3
# targets, raw and qcow2 bases): same map, same contents, clean check; and the refusals.
qemu-img create -q -f raw cv_base.raw 4M
qemu-io -f raw -c "write -P 0x11 0 4M" cv_base.raw > /dev/null
for base_fmt in qcow2 raw; do
  base=chainbase.qcow2; [ $base_fmt = raw ] && base=cv_base.raw
  qemu-img create -q -f qcow2 -b $base -F $base_fmt cv_top.qcow2 4M
  mapfile -t ops < <(random_ops 30 4194304)
  args=(); for op in "${ops[@]}"; do args+=(-c "$op"); done
  qemu-io -f qcow2 "${args[@]}" cv_top.qcow2 > /dev/null 2>&1
  for compat in 1.1 0.10; do
    checks=$((checks + 1))
    rm -f cv_s.qcow2 cv_q.qcow2
    qemu-img convert -O qcow2 -o compat=$compat -B $base -F $base_fmt cv_top.qcow2 cv_q.qcow2
    "$strata_img" convert -O qcow2 -o compat=$compat -B $base -F $base_fmt cv_top.qcow2 cv_s.qcow2 ||
      { fail "convert -B $base_fmt $compat"; continue; }
    qemu-img check -q cv_s.qcow2 || fail "convert -B $base_fmt $compat: check"
    qemu-img compare -q cv_s.qcow2 cv_top.qcow2 || fail "convert -B $base_fmt $compat: contents"
    cmp -s <(qemu-img map --output=json cv_s.qcow2) <(qemu-img map --output=json cv_q.qcow2) ||
      fail "convert -B $base_fmt $compat: map differs from qemu-img's"
  done
done
for args in "-O qcow2 -B cv_base.raw cv_top.qcow2 cv_x.qcow2" \
            "-O qcow2 -F raw cv_top.qcow2 cv_x.qcow2" \
            "-O qcow2 -B cv_base.raw -F raw cv_top.qcow2 cv_top.qcow2 cv_x.qcow2" \
            "-O raw -B cv_base.raw -F raw cv_top.qcow2 cv_x.raw"; do
  checks=$((checks + 1))
  qemu-img convert $args > cv_q.out 2>&1; q_rc=$?
  "$strata_img" convert $args 2>&1 | sed 's/^strata-img: /qemu-img: /' > cv_s.out
  [ $q_rc = "${PIPESTATUS[0]}" ] && cmp -s cv_q.out cv_s.out ||
    fail "convert $args: $(cat cv_s.out) vs $(cat cv_q.out)"
done

# ---- 10. compressed writes ----
qemu-img create -q -f raw cz_src.raw 5M
head -c 400000 /dev/urandom > cz_noise.bin
qemu-io -f raw -c "write -P 0x11 0 700k" -c "write -s cz_noise.bin 1M 400000" \
  -c "write -P 0x22 3M 5k" -c "write -P 0x33 4980k 100k" cz_src.raw > /dev/null
for ct in zlib zstd; do
  for cs in 4096 65536 2097152; do
    for compat in 0.10 1.1; do
      [ $ct = zstd ] && [ $compat = 0.10 ] && continue
      checks=$((checks + 1))
      opts=compat=$compat,compression_type=$ct,cluster_size=$cs
      rm -f cz_q.qcow2 cz_s.qcow2
      qemu-img convert -c -O qcow2 -o $opts cz_src.raw cz_q.qcow2
      "$strata_img" convert -c -O qcow2 -o $opts cz_src.raw cz_s.qcow2 ||
        { fail "convert -c $opts"; continue; }
      cmp -s cz_q.qcow2 cz_s.qcow2 || fail "convert -c $opts: file differs from qemu-img's"
      qemu-img check -q cz_s.qcow2 || fail "convert -c $opts: check"
      qemu-img compare -q cz_src.raw cz_s.qcow2 || fail "convert -c $opts: contents"
    done
  done
done
checks=$((checks + 1))
qemu-img convert -c -O raw cz_src.raw cz_q.raw > cz_q.out 2>&1; q_rc=$?
"$strata_img" convert -c -O raw cz_src.raw cz_s.raw 2>&1 | sed 's/^strata-img: /qemu-img: /' > cz_s.out
[ $q_rc = "${PIPESTATUS[0]}" ] && cmp -s cz_q.out cz_s.out && [ ! -e cz_s.raw ] ||
  fail "convert -c -O raw: $(cat cz_s.out) vs $(cat cz_q.out)"
# qemu-io write -c: one cluster per request (QEMU compresses several clusters of one
# request in parallel, so their order in the file is not fixed), refusals, overwrites.
mkdir -p czq czs
ln -sf "$(command -v qemu-io)" czq/qemu-io
ln -sf "$strata_io" czs/qemu-io
for d in czq czs; do
  qemu-img create -q -f qcow2 $d/w.qcow2 1M
  (cd $d && ./qemu-io -c "write -c -P 0x41 0 64k" -c "write -c 0 64k" -c "write -c 64k 4k" \
    -c "write -c 512 64k" -c "write -c -P 0x42 960k 64k" -c "write -c -P 0x43 128k 64k" \
    -c "write -P 0x44 132k 4k" -c "write -c -P 0x45 256k 64k" -c "discard 256k 64k" \
    -c "write -c -P 0x46 256k 64k" -c "write -c -s ../cz_noise.bin 320k 64k" \
    -c "read -P 0x43 128k 4k" -c "read -P 0x44 132k 4k" -c "read -P 0x46 256k 64k" w.qcow2 \
    2>&1 | sed -E 's/ [0-9.]+ sec \(.*$//' > out.txt)
done
checks=$((checks + 1))
cmp -s czq/out.txt czs/out.txt || fail "qemu-io write -c: $(diff czq/out.txt czs/out.txt)"
cmp -s czq/w.qcow2 czs/w.qcow2 || fail "qemu-io write -c: image differs from qemu-io's"
qemu-img check -q czs/w.qcow2 || fail "qemu-io write -c: check"

# Persistent bitmaps, both ways: QEMU's own reader (qemu-nbd -B, read by nbdinfo --map)
# must see every write strata made as dirty, in bitmaps either tool created; strata's
# open must leave them consistent (no warning, no in-use flag after a clean close).
dirty_map() {  # dirty_map IMAGE BITMAP: the dirty ranges as QEMU's NBD export reports them
  rm -f bm/sock
  qemu-nbd -r -f qcow2 -B "$2" -k "$work/bm/sock" -t "$1" &
  local pid=$! i
  for i in $(seq 50); do [ -S bm/sock ] && break; sleep 0.1; done
  nbdinfo --map="qemu:dirty-bitmap:$2" "nbd+unix:///?socket=$work/bm/sock" 2>&1
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
mkdir -p bm
for maker in qemu strata; do
  if [ "$maker" = qemu ]; then img=qemu-img; else img=$strata_img; fi
  qemu-img create -q -f qcow2 bm/q.qcow2 4M
  cp bm/q.qcow2 bm/s.qcow2
  for f in q s; do
    "$img" bitmap --add bm/$f.qcow2 bm0
    "$img" bitmap --add -g 4k --disable bm/$f.qcow2 off
  done
  ops=(-c "write 0 64k" -c "write -z 1M 8k" -c "discard 3M 4k" -c "write 4190208 4096")
  qemu-io "${ops[@]}" bm/q.qcow2 >/dev/null
  "$strata_io" "${ops[@]}" bm/s.qcow2 >/dev/null
  for b in bm0 off; do
    checks=$((checks + 1))
    [ "$(dirty_map bm/q.qcow2 $b)" = "$(dirty_map bm/s.qcow2 $b)" ] ||
      fail "bitmaps ($maker made them): $b after strata's writes is not what QEMU's are"
  done
  checks=$((checks + 1))
  qemu-img info bm/s.qcow2 2>&1 | grep -q "lacking bitmap support\|in-use" &&
    fail "bitmaps ($maker made them): left inconsistent by a clean strata close"
  qemu-img check -q bm/s.qcow2 || fail "bitmaps ($maker made them): check"
done
# A crash while open for writing leaves them in use, so QEMU refuses to trust them.
checks=$((checks + 1))
"$strata_io" -c "write 0 4k" -c abort bm/s.qcow2 >/dev/null 2>&1
qemu-img info bm/s.qcow2 2>&1 | grep -q "in-use" || fail "bitmaps: not in use after a crash"

echo "$checks interop checks, $failures failed (seed $seed)"
[ "$failures" -eq 0 ]
