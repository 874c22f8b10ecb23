#!/usr/bin/env bash
# Runs a program that prints Spark's rate source on the real clock through the console sink
# (tutorial 01's `--source rate`) and checks the structure of its output, which no expected
# file can hold (the clock decides the timestamps and how many rows come):
#
#   check_rate_clock.sh ROWS_PER_SECOND -- PROGRAM ARGS...
#
# - the `Batch: N` headers count 0, 1, 2, ... in order;
# - the values are 0..N-1, each exactly once, in increasing order (one partition), and N is
#   a whole number of seconds' worth: at least one second's, at most one per started second
#   of the program's run;
# - value v is stamped creation + v / ROWS_PER_SECOND (Spark's formula without ramp-up), so
#   the timestamps never decrease, and the creation time lies within the run.
# The program gets 30 s.
set -euo pipefail
rps=$1
[[ $2 == -- ]] || { echo "check_rate_clock.sh: usage: ROWS_PER_SECOND -- PROGRAM ARGS..." >&2; exit 2; }
shift 2

out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() {
  echo "check_rate_clock.sh: FAILED: $*; the output was:" >&2
  cat "$out" >&2
  exit 1
}

started_ms=$(date +%s%3N)
status=0
timeout 30 "$@" >"$out" || status=$?
ended_ms=$(date +%s%3N)
[[ $status -eq 0 ]] || fail "$* exited with $status"

# Batch headers in order.
mapfile -t batches < <(sed -n 's/^Batch: \([0-9]*\)$/\1/p' "$out")
[[ ${#batches[@]} -gt 0 ]] || fail "no 'Batch: N' header"
for i in "${!batches[@]}"; do
  [[ ${batches[$i]} -eq $i ]] || fail "header $((i + 1)) is 'Batch: ${batches[$i]}', expected 'Batch: $i'"
done

# Rows: |<timestamp>|<value>| (the header row names the columns, not a timestamp).
mapfile -t rows < <(sed -n 's/^|\([0-9-]*T[0-9:.]*Z\)| *\([0-9]*\)|$/\1 \2/p' "$out")
n=${#rows[@]}
(( n >= rps )) || fail "$n rows: fewer than one second's worth ($rps)"
(( n % rps == 0 )) || fail "$n rows: not a whole number of seconds' worth ($rps a second)"
max_seconds=$(( (ended_ms - started_ms + 999) / 1000 ))
(( n <= rps * max_seconds )) ||
  fail "$n rows: more than $rps a second over the ${max_seconds} s the program ran"

creation_ms=""
for i in "${!rows[@]}"; do
  read -r ts value <<<"${rows[$i]}"
  [[ $value -eq $i ]] || fail "row $((i + 1)) has value $value, expected $i (values 0..N-1 once, in order)"
  ms=$(date -u -d "$ts" +%s%3N) || fail "unreadable timestamp '$ts'"
  # Spark: creation + 1000 * s + round((v - s * rps) * 1000 / rps), s = v / rps.
  offset=$(( 1000 * (value / rps) + ((value % rps) * 2000 / rps + 1) / 2 ))
  if [[ -z $creation_ms ]]; then
    creation_ms=$(( ms - offset ))
    (( creation_ms >= started_ms - 1000 && creation_ms <= ended_ms )) ||
      fail "creation time $creation_ms ms is not within the run ($started_ms..$ended_ms ms)"
  fi
  (( ms == creation_ms + offset )) ||
    fail "value $value stamped $ts, expected creation + $offset ms"
done
echo "check_rate_clock.sh: ${#batches[@]} batches, values 0..$((n - 1)) once each, stamped from one creation time"
