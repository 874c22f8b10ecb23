#!/usr/bin/env bash
# Smoke test of the kafka_broker fixture: a topic on the real broker takes three keyed messages
# from kcat and gives back exactly those, in order, to a read_committed consumer.
# Needs SLUICE_KAFKA_DIR (set by sluice_kafka_broker_test in CMake).
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -n "${SLUICE_KAFKA_DIR:-}" ]] || fail "SLUICE_KAFKA_DIR is not set (run through ctest)"
[[ -s "$SLUICE_KAFKA_DIR/bootstrap" ]] || fail "no $SLUICE_KAFKA_DIR/bootstrap: broker not started"
bootstrap="$(< "$SLUICE_KAFKA_DIR/bootstrap")"
# A fresh name per run: the fixture's broker is shared by every test of one ctest run.
topic="sluice-smoke-$$-$RANDOM"

# kcat cannot send CreateTopics, so the first produce creates the topic through the broker's
# auto-creation (num.partitions=1, which keeps the order of all messages). acks=all and
# idempotence: kcat exits non-zero if any message is not acknowledged.
printf 'k1:one\nk2:two\nk3:three\n' |
  timeout 60 kcat -P -b "$bootstrap" -t "$topic" -K: -X acks=all -X enable.idempotence=true ||
  fail "producing to $topic failed"

metadata="$(timeout 30 kcat -L -b "$bootstrap" -t "$topic" -m 10)" || fail "no metadata for $topic"
grep -q "topic \"$topic\" with 1 partitions" <<< "$metadata" ||
  fail "expected $topic with 1 partition, metadata says: $metadata"

# -e: stop at the end of the partition; the messages were acknowledged above, so they are
# there and the consumer cannot stop short of them.
got="$(timeout 60 kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q \
  -X isolation.level=read_committed -f '%k=%s@%o\n')" || fail "consuming $topic failed"
want=$'k1=one@0\nk2=two@1\nk3=three@2'
[[ "$got" == "$want" ]] || fail "consumed:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"
echo "kcat roundtrip through $bootstrap ($topic): 3 messages back, in order"
