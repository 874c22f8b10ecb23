#!/usr/bin/env bash
# Runs a tutorial program and compares its stdout with an expected file.
#
#   run_tutorial.sh EXPECTED [--serve FILE] [--kafka-mock TOPIC:N ...] [--exit N] [--any-row-order] -- PROGRAM ARGS...
#
# PROGRAM must exit with status N (default 0: --exit 1 for a tutorial that shows a failure).
# In PROGRAM's arguments @TMP@ becomes a fresh temporary directory (removed afterwards),
# @PORT@ the loopback port where --serve FILE is served once (a listener this script starts,
# like `nc -l 127.0.0.1 PORT < FILE`: the program in $SLUICE_SERVE_ONCE), @BOOTSTRAP@ the
# address of a sluice-kafka-mock cluster started with --kafka-mock (the program in
# $SLUICE_KAFKA_MOCK).
# Everything is bounded: the program gets 30 s, the listener 30 s.
# With SLUICE_UPDATE_EXPECTED=1 the output replaces EXPECTED instead (check it by hand first).
set -euo pipefail

expected=$1
shift
serve=""
topics=()
want_exit=0
any_row_order=0
while [[ $# -gt 0 && $1 != "--" ]]; do
  case $1 in
    --serve) serve=$2; shift 2 ;;
    --kafka-mock) topics+=(--topic "$2"); shift 2 ;;
    --exit) want_exit=$2; shift 2 ;;
    --any-row-order) any_row_order=1; shift ;;
    *) echo "run_tutorial.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shift # --

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port=""
if [[ -n $serve ]]; then
  # A one-shot loopback listener (serve_once.cpp): it writes its port to a file, sends FILE
  # to the first client, closes, and gives up after 30 s without one.
  "${SLUICE_SERVE_ONCE:?set SLUICE_SERVE_ONCE to the serve_once program}" "$serve" "$tmp/port" &
  pids+=($!)
  for _ in $(seq 300); do [[ -f $tmp/port ]] && break; sleep 0.1; done
  port=$(cat "$tmp/port")
fi

bootstrap=""
if [[ ${#topics[@]} -gt 0 ]]; then
  # The mock cluster lives while its stdin (this fifo, held open here) stays open.
  mkfifo "$tmp/mock-in"
  "${SLUICE_KAFKA_MOCK:?set SLUICE_KAFKA_MOCK to the sluice-kafka-mock program}" \
    --brokers 1 "${topics[@]}" --exit-on-stdin-close <"$tmp/mock-in" >"$tmp/mock-out" &
  pids+=($!)
  exec 3>"$tmp/mock-in"
  for _ in $(seq 300); do grep -q '^bootstrap=' "$tmp/mock-out" 2>/dev/null && break; sleep 0.1; done
  bootstrap=$(sed -n 's/^bootstrap=//p' "$tmp/mock-out")
  [[ -n $bootstrap ]] || { echo "run_tutorial.sh: the Kafka mock did not start" >&2; exit 1; }
fi

args=()
for a in "$@"; do
  a=${a//@TMP@/$tmp}
  a=${a//@PORT@/$port}
  a=${a//@BOOTSTRAP@/$bootstrap}
  args+=("$a")
done

status=0
timeout 30 "${args[@]}" >"$tmp/stdout" || status=$?
if [[ $status -ne $want_exit ]]; then
  echo "run_tutorial.sh: ${args[*]} exited with $status, not $want_exit; its output:" >&2
  cat "$tmp/stdout" >&2
  exit 1
fi
if [[ ${SLUICE_UPDATE_EXPECTED:-0} == 1 ]]; then
  cp "$tmp/stdout" "$expected"
  echo "run_tutorial.sh: wrote $expected"
  exit 0
fi
# --any-row-order: the rows of a console table may come in any order (an aggregation's
# update and complete output, as in Spark, follow its hash tables), so each table's rows
# are sorted on both sides before comparing.
sort_table_rows() {
  awk '/^\|/ { print | "LC_ALL=C sort"; next } { close("LC_ALL=C sort"); print } END { close("LC_ALL=C sort") }' "$1"
}
if [[ $any_row_order == 1 ]]; then
  sort_table_rows "$expected" >"$tmp/expected.sorted"
  sort_table_rows "$tmp/stdout" >"$tmp/stdout.sorted"
  expected="$tmp/expected.sorted"
  mv "$tmp/stdout.sorted" "$tmp/stdout"
fi
if ! diff -u "$expected" "$tmp/stdout"; then
  echo "run_tutorial.sh: the output differs from $expected (- expected, + got)" >&2
  exit 1
fi
