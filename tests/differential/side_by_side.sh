# Sourced by the differential tests: side_by_side TOOL STRATA_BINARY sets up $work with
# two folders, qemu/ and strata/, each holding TOOL (e.g. qemu-io): the real one from
# PATH in qemu/, a symlink to STRATA_BINARY in strata/ (strata's tools take their name
# from argv[0]). $work is removed on exit. Exits 1 if the real tool is not installed.
side_by_side() {
  local tool=$1 strata real
  strata=$(readlink -f "$2")
  real=$(command -v "$tool") || { echo "$tool not installed"; exit 1; }
  work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/$tool.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/strata" "$work/qemu"
  ln -s "$strata" "$work/strata/$tool"
  ln -s "$real" "$work/qemu/$tool"
}
