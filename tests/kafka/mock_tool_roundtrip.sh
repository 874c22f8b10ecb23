#!/usr/bin/env bash
# sluice-kafka-mock end to end: the tool prints its bootstrap line, kcat produces to and
# consumes from the topic it created, and the tool stops on SIGTERM and on stdin closing.
# Usage: mock_tool_roundtrip.sh PATH-TO-sluice-kafka-mock
set -euo pipefail

tool="${1:?usage: $0 PATH-TO-sluice-kafka-mock}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pid=""
# Every run passes --exit-on-stdin-close, so the tool also ends when this script dies; the trap
# covers the rest of a failed run.
trap '[[ -z "$pid" ]] || kill -KILL "$pid" 2> /dev/null || true' EXIT

# Starts the tool as a coprocess (its stdin is our pipe) and sets `bootstrap` from its first
# line. The bounded read is the readiness poll: the tool prints only once it serves.
start_tool() {
  coproc MOCK { exec "$tool" "$@" 2>&1; }
  local line
  IFS= read -r -t 30 line <&"${MOCK[0]}" || fail "no line from $tool within 30s"
  [[ "$line" == bootstrap=127.0.0.1:* ]] || fail "unexpected first line: $line"
  bootstrap="${line#bootstrap=}"
}

# Waits (bounded) for the tool (global `pid`) to exit and checks its status. Bash reaps its
# children as they exit, so kill -0 fails once the tool is gone and `wait` gives its status.
expect_exit() {
  local how="$1" status=0 deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2> /dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -0 "$pid" 2> /dev/null && fail "tool still running 30s after $how"
  wait "$pid" || status=$?
  pid=""
  ((status == 0)) || fail "tool exited with $status after $how"
}

# Run 1: three brokers, a two-partition topic; stopped by closing its stdin.
start_tool --brokers 3 --topic orders:2 --exit-on-stdin-close
pid=$MOCK_PID
[[ "$(tr ',' '\n' <<< "$bootstrap" | wc -l)" == 3 ]] || fail "expected 3 brokers in $bootstrap"

metadata="$(timeout 30 kcat -L -b "$bootstrap" -t orders -m 10)" || fail "no metadata"
grep -q 'topic "orders" with 2 partitions' <<< "$metadata" || fail "metadata: $metadata"

# -p 0 and -p 1: one message set per partition, so the consumer's per-partition order is known.
printf 'k1:a\nk2:b\nk3:c\n' | timeout 30 kcat -P -b "$bootstrap" -t orders -p 0 -K: -X acks=all ||
  fail "producing to orders/0 failed"
printf 'k4:d\nk5:e\n' | timeout 30 kcat -P -b "$bootstrap" -t orders -p 1 -K: -X acks=all ||
  fail "producing to orders/1 failed"

# -e stops once every partition is at its end; both partitions interleave, so compare sorted.
got="$(timeout 30 kcat -C -b "$bootstrap" -t orders -o beginning -e -q -f '%p:%o:%k=%s\n' | sort)" ||
  fail "consuming failed"
want=$'0:0:k1=a\n0:1:k2=b\n0:2:k3=c\n1:0:k4=d\n1:1:k5=e'
[[ "$got" == "$want" ]] || fail "consumed:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"

stdin_fd=${MOCK[1]}
exec {stdin_fd}>&-
expect_exit "stdin closed"

# Run 2: default broker count, stopped by SIGTERM (the ordinary way to stop it).
start_tool --exit-on-stdin-close
pid=$MOCK_PID
printf 'x\n' | timeout 30 kcat -P -b "$bootstrap" -t auto -X acks=all || fail "producing to auto failed"
kill -TERM "$pid"
expect_exit "SIGTERM"

# Bad arguments are refused before anything starts.
if "$tool" --topic orders:0 > /dev/null 2>&1; then fail "--topic orders:0 was accepted"; fi
echo "sluice-kafka-mock roundtrip: 5 messages over 2 partitions on 3 brokers; stops on EOF and SIGTERM"
