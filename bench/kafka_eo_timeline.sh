#!/usr/bin/env bash
# One exactly-once latency run with a timeline of each checkpoint (where a record's latency
# goes): kafka_pipeline --map --delivery exactly-once with --log-level debug, the fixed-rate
# load of sluice_kafka_load latency --arrivals, then bench/kafka_eo_timeline.py over both.
#
#   scripts/kafka-broker.sh start /dev/shm/k      # a broker (or let the benchmark's run)
#   bench/kafka_eo_timeline.sh --bootstrap 127.0.0.1:PORT --checkpoint-interval 200ms
#
# Options: --bootstrap B (required) --checkpoint-interval D (1s) --rate R (5000)
#          --seconds S (15) --parallelism P (2) --keep DIR (keep the log and arrivals there)
#          --pipeline-flags "..." (more kafka_pipeline flags; default "--scheduler sharing")
# Builds nothing: ninja -C build kafka_pipeline sluice_kafka_load first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD:-$root/build}"
bootstrap=""
interval=1s
rate=5000
seconds=15
parallelism=2
keep=""
extra="--scheduler sharing"
while (($#)); do
  case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --checkpoint-interval) interval="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --parallelism) parallelism="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --pipeline-flags) extra="$2"; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$bootstrap" ]] || { echo "--bootstrap is required" >&2; exit 2; }
load="$build/bench/sluice_kafka_load"
pipeline="$build/samples/kafka_pipeline"
# /dev/shm when there is one: the checkpoint store syncs each completion, and on a disk
# shared with compiles one sync took seconds.
tmp_root="${TMPDIR:-/tmp}"
[[ -d /dev/shm && -w /dev/shm ]] && tmp_root=/dev/shm
tmp="$(mktemp -d "$tmp_root/sluice-eo-timeline.XXXXXX")"
tag="tl-$$-$RANDOM"
pid=""
cleanup() {
  [[ -z "$pid" ]] || { kill -TERM "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; }
  "$load" --bootstrap "$bootstrap" delete --topic "$tag-in" > /dev/null 2>&1 || true
  "$load" --bootstrap "$bootstrap" delete --topic "$tag-out" > /dev/null 2>&1 || true
  if [[ -n "$keep" ]]; then mkdir -p "$keep" && cp "$tmp"/pipeline.log "$tmp"/arrivals "$keep"/ 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$load" --bootstrap "$bootstrap" create --topic "$tag-in" --partitions 4
"$load" --bootstrap "$bootstrap" create --topic "$tag-out" --partitions 4
read -r -a more <<< "$extra"
"$pipeline" --bootstrap "$bootstrap" --input "$tag-in" --output "$tag-out" --map \
  --delivery exactly-once --checkpoint-dir "$tmp/ckpt" --checkpoint-interval "$interval" \
  --group "$tag" --transactional-id-prefix "$tag" --parallelism "$parallelism" \
  --log-level debug "${more[@]}" 2> "$tmp/pipeline.log" &
pid=$!
sleep 3
"$load" --bootstrap "$bootstrap" latency --in "$tag-in" --out "$tag-out" --rate "$rate" \
  --seconds "$seconds" --warmup 3 --drain 60 --series --arrivals "$tmp/arrivals"
kill -TERM "$pid"
wait "$pid" || true
pid=""
python3 "$root/bench/kafka_eo_timeline.py" "$tmp/pipeline.log" "$tmp/arrivals"
