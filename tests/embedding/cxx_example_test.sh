#!/usr/bin/env bash
# The C++ API as an embedder gets it: libstrata.so and <strata/*.h> installed under a
# prefix (scripts/install-files), then plain g++ with pkg-config, outside Bazel.
#  1. Every installed header compiles on its own: the public set is self-contained.
#  2. A caller cannot reach the driver API: the internal headers are not installed, a
#     program that asks a Node for its driver instance does not compile, and the library
#     exports no symbol of the node internals or the driver hooks.
#  3. examples/cxx_example.cc builds, runs on a QEMU-made image (writes from two queues
#     with a snapshot taken meanwhile), and QEMU checks the result.
set -euo pipefail
root=$(pwd)
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/embedcxx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/install-files" "$root/capi/libstrata.so" "$root/include" "$tmp/prefix"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags strata-cpp)
libs=$(pkg-config --libs strata-cpp)

headers=0
for h in "$tmp"/prefix/include/strata/*.h; do
  name=$(basename "$h")
  [ "$name" = strata.h ] && continue
  echo "#include <strata/$name>" > "$tmp/one.cc"
  g++ $cflags -Wall -Werror -fsyntax-only "$tmp/one.cc"
  headers=$((headers + 1))
done
echo "public headers compiled alone: $headers"
[ "$headers" -ge 15 ]

# Nothing but <strata/...> is installed.
if find "$tmp/prefix/include" -type f ! -path "*/include/strata/*" | grep -q .; then
  echo "FAIL: installed headers outside include/strata"; exit 1
fi
cat > "$tmp/hook.cc" <<'CC'
#include <strata/image.h>
void f(strata::Image& image) { image.root().instance().MakeEmpty(); }
CC
if g++ $cflags -fsyntax-only "$tmp/hook.cc" 2> "$tmp/hook.err"; then
  echo "FAIL: a caller reached the driver instance"; exit 1
fi
grep -q "has no member named 'instance'" "$tmp/hook.err"
cat > "$tmp/internal.cc" <<'CC'
#include "block/driver_instance.h"
CC
if g++ $cflags -I"$tmp/prefix/include" -fsyntax-only "$tmp/internal.cc" 2>/dev/null; then
  echo "FAIL: an internal header is reachable"; exit 1
fi
exported=$(nm -DC --defined-only "$tmp/prefix/lib/libstrata.so")
if grep -E " [TWVD] (typeinfo for |vtable for )?strata::(BlockDriverState|DriverInstance|BlockDriver|BlockBackend|Qcow2[A-Za-z]*|DriverRegistry|BdrvChild|OpenContext|aio|nbd)::" <<<"$exported"; then
  echo "FAIL: internal symbols exported"; exit 1
fi
echo "exported C++ functions: $(grep -c ' strata::' <<<"$exported")"

g++ -Wall -Werror "$root/examples/cxx_example.cc" $cflags $libs -o "$tmp/cxx_example"
qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 1M
"$tmp/cxx_example" "$tmp/disk.qcow2" | tee "$tmp/out"
grep -qx "snapshot mid-write" "$tmp/out"
qemu-img check -q "$tmp/disk.qcow2"
qemu-img snapshot -l "$tmp/disk.qcow2" | grep -q "mid-write"
qemu-io -c "read -P 0xa5 0 256k" "$tmp/disk.qcow2" | head -1
echo PASS
