#!/usr/bin/env bash
# Runs a sample program and compares its stdout, sorted, with an expected file.
#
#   run_sample.sh EXPECTED -- PROGRAM ARGS...
#
# Sorted, because the sample prints from several sinks and key groups whose interleaving
# is not fixed; each line is a whole result, so sorting loses nothing. PROGRAM gets 30 s
# and must exit with 0. With SLUICE_UPDATE_EXPECTED=1 the sorted output replaces EXPECTED
# instead: check every line by hand before committing it (samples/iot_sensors/README.md).
set -euo pipefail

expected=$1
shift
[[ ${1:-} == "--" ]] || { echo "run_sample.sh: expected -- before the program" >&2; exit 2; }
shift

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
timeout 30 "$@" >"$tmp/stdout" 2>"$tmp/stderr" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run_sample.sh: $* exited with $status; its stderr:" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi
LC_ALL=C sort "$tmp/stdout" >"$tmp/sorted"
if [[ ${SLUICE_UPDATE_EXPECTED:-0} == 1 ]]; then
  cp "$tmp/sorted" "$expected"
  echo "run_sample.sh: wrote $expected"
  exit 0
fi
if ! diff -u "$expected" "$tmp/sorted"; then
  echo "run_sample.sh: the sorted output differs from $expected (- expected, + got)" >&2
  exit 1
fi
