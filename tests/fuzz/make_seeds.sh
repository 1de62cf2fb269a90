#!/usr/bin/env bash
# Makes the fuzz targets' seed corpora in OUTDIR/<fuzzer>/, with QEMU's tools where the
# input is something they make (qcow2 images of every kind qemu-img creates; qemu-io
# scripts) and by hand from the specifications where not (NBD client transcripts,
# option strings, blkdebug configs).
#   make_seeds.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out"/{qcow2_image_fuzzer,options_fuzzer,blkdebug_config_fuzzer,qemu_io_fuzzer,nbd_server_fuzzer}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # qemu-img makes relative data files in the working directory

# qcow2 images: small, so mutations reach every structure.
q=$out/qcow2_image_fuzzer
n=0
seed_image() {  # seed_image CREATE_OPTIONS [qemu-io commands...]
  local opts=$1
  shift
  n=$((n + 1))
  local img=$work/s$n.qcow2
  qemu-img create -q -f qcow2 -o "$opts" "$img" 1M
  local cmd
  for cmd in "$@"; do
    case $cmd in
      snapshot:*) qemu-img snapshot -c "${cmd#snapshot:}" "$img" ;;
      bitmap:*) qemu-img bitmap --add "$img" "${cmd#bitmap:}" ;;
      *) qemu-io -f qcow2 -c "$cmd" "$img" >/dev/null ;;
    esac
  done
  cp "$img" "$q/seed$n.qcow2"
}
seed_image compat=1.1,cluster_size=65536
seed_image compat=0.10,cluster_size=512 "write -P 1 0 4k" "write -z 8k 4k"
seed_image cluster_size=4096,lazy_refcounts=on "write -P 2 0 64k" "discard 8k 4k"
seed_image cluster_size=4096 "write -P 3 0 16k" snapshot:s1 "write -P 4 4k 4k"
seed_image cluster_size=4096 "write -c -P 5 0 4k" "write -c 8k 4k"
seed_image cluster_size=4096,compression_type=zstd "write -c -P 6 0 8k"
seed_image cluster_size=16384,extended_l2=on "write -P 7 1k 2k" "write -z 8k 2k"
seed_image cluster_size=4096,refcount_bits=1 "write -P 8 0 12k"
seed_image cluster_size=4096,refcount_bits=64 "write -P 9 0 12k"
seed_image cluster_size=4096 "write -P 10 0 4k" bitmap:b0 "write -P 11 64k 4k"
seed_image cluster_size=4096,data_file=data.raw,data_file_raw=on "write -P 12 0 4k"
seed_image cluster_size=4096,preallocation=metadata
seed_image cluster_size=4096 "write -P 13 0 4k" snapshot:a snapshot:b "write -z 0 4k"

# Options: the first byte picks the parser (options_fuzzer.cc).
o=$out/options_fuzzer
printf '\x00driver=qcow2,file.driver=file,file.filename=a.qcow2,l2-cache-size=1M' > "$o/keyval1"
printf '\x00driver=raw,file.driver=blkdebug,file.image.filename=x,file.inject-error.0.event=read_aio' > "$o/keyval2"
printf '\x01{"driver":"qcow2","file":{"driver":"file","filename":"a"},"backing":null}' > "$o/json1"
printf '\x01{"a":[1,2,{"b":"c"}],"x.y":true,"n":-1.5e3}' > "$o/json2"
printf '\x02{"driver":"nbd","server":{"type":"unix","path":"s"},"export":"e"}' > "$o/json3"
printf '\x03driver=null-co,size=1G,read-zeroes=on' > "$o/keyval3"
printf '\x04%s' 1.5G > "$o/size1"
printf '\x04%s' 0x10000 > "$o/size2"

# blkdebug configs.
b=$out/blkdebug_config_fuzzer
printf '[inject-error]\nevent = "l2_update"\nerrno = "5"\nonce = "on"\n' > "$b/c1"
printf '[set-state]\nstate = "1"\nevent = "write_aio"\nnew_state = "2"\n\n[inject-error]\nstate = "2"\nevent = "read_aio"\nsector = "8"\niotype = "read"\nimmediately = "off"\n' > "$b/c2"

# qemu-io scripts.
i=$out/qemu_io_fuzzer
printf 'write -P 0xab 0 64k\nread -P 0xab 0 64k\nwritev -q 4k 512 1k\nreadv -v 4k 512 1k\nmap\n' > "$i/s1"
printf 'break write_aio A\naio_write 0 4k\nwait_break A\nread 8k 4k\nresume A\naio_flush\n' > "$i/s2"
printf 'write -z -u 0 128k\ndiscard 64k 64k\nalloc 0 1M\nlength\ninfo\nflush\n' > "$i/s3"
printf 'write -c 0 4k\nread -C 0 4k\ntruncate 2M\nreopen -r\nread 0 4k\nhelp read\n' > "$i/s4"

# NBD client transcripts (fixed newstyle; structured replies; meta contexts; requests).
python3 - "$out/nbd_server_fuzzer" <<'PY'
import struct, sys, os
out = sys.argv[1]
OPT = b"IHAVEOPT"
def opt(o, data=b""):
    return OPT + struct.pack(">II", o, len(data)) + data
def name(s):
    return struct.pack(">I", len(s)) + s
def meta(export, queries):
    d = name(export) + struct.pack(">I", len(queries))
    for q in queries:
        d += name(q)
    return d
def go(export, infos=()):
    return name(export) + struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos)
def req(t, off, ln, flags=0, handle=1, data=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, t, handle, off, ln) + data
flags = struct.pack(">I", 3)
seeds = {
    "go_read": flags + opt(8) + opt(7, go(b"", (0, 3))) + req(0, 0, 4096) + req(2, 0, 0),
    "write_flush": flags + opt(7, go(b"")) + req(1, 4096, 512, data=b"\xaa" * 512) + req(3, 0, 0) + req(2, 0, 0),
    "meta_status": flags + opt(8) + opt(10, meta(b"", [b"base:allocation", b"qemu:dirty-bitmap:b0", b"qemu:allocation-depth"])) +
                   opt(7, go(b"")) + req(7, 0, 1 << 20) + req(6, 0, 65536, flags=1) + req(4, 65536, 4096) + req(2, 0, 0),
    "list_info": flags + opt(3) + opt(9, meta(b"", [b"qemu:"])) + opt(6, go(b"", (1, 2))) + opt(2),
    "export_name": struct.pack(">I", 1) + opt(1, b""),
    "bad_magic": flags + b"XHAVEOPT" + struct.pack(">II", 7, 0),
}
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v)
PY
