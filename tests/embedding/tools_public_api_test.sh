#!/usr/bin/env bash
# The tools are callers like any other: every #include "..." in tools/ names a public
# header (strata/...), a library's (absl/, google/protobuf/, gtest/) or the tools' own
# code (tools/...). Bazel visibility enforces the same for their deps (//:internal does
# not list //tools); this test catches an include that slips through a transitive dep.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.." 2>/dev/null || true
root=${TEST_SRCDIR:+$TEST_SRCDIR/$TEST_WORKSPACE}
[ -n "$root" ] && [ -d "$root/tools" ] && cd "$root"
files=$(find -L tools -name '*.cc' -o -name '*.h' | sort)
[ -n "$files" ] || { echo "FAIL: no tool sources found"; exit 1; }
bad=$(grep -nH '^#include "' $files |
      grep -vE '#include "(strata|absl|google/protobuf|gtest|tools)/' || true)
if [ -n "$bad" ]; then
  echo "FAIL: tools include internal headers:"
  echo "$bad"
  exit 1
fi
echo "tool sources checked: $(echo "$files" | wc -l)"
echo PASS
