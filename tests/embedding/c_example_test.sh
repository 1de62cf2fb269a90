#!/usr/bin/env bash
# The C example built the way an embedder builds it: the library and headers installed
# under a prefix (scripts/install-files, what scripts/install runs after its build), then
# plain gcc with pkg-config, outside Bazel; the program then runs on an image QEMU made,
# and QEMU checks what it wrote.
set -euo pipefail
root=$(pwd)
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/embed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/install-files" "$root/capi/libstrata.so" "$root/include" "$tmp/prefix"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
gcc -std=c99 -Wall -Werror "$root/examples/c_example.c" $(pkg-config --cflags --libs strata) \
  -o "$tmp/c_example"
g++ -x c++ -std=c++17 -Wall -Werror "$root/examples/c_example.c" \
  $(pkg-config --cflags --libs strata) -o "$tmp/cxx_example"
qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 1M
"$tmp/c_example" "$tmp/disk.qcow2"
"$tmp/cxx_example" "$tmp/disk.qcow2" > /dev/null
qemu-img check -q "$tmp/disk.qcow2"
qemu-io -c "read -P 0xa5 0 256k" "$tmp/disk.qcow2" | head -1
echo PASS
