#!/usr/bin/env bash
# The Kafka benchmark (issue 6): Kafka -> map -> Kafka through a real broker on loopback, for
# 100-byte JSON records, Sluice (samples/kafka_pipeline --map) against kcat piping the same
# topic to the same kind of output topic, in the same run.
#
#   ninja -C build kafka_pipeline sluice_kafka_load      # build these first
#   bench/kafka_bench.sh --priority -10                   # 5 repetitions, about 15 minutes
#   bench/kafka_bench.sh --runs 3 --records 1000000 --rate 10000 --seconds 20
#
# It starts its own broker (scripts/kafka-broker.sh) in a temporary directory and stops it on
# exit, and builds nothing. Three systems, each repetition in a rotated order:
#   sluice-alo  kafka_pipeline --map --delivery at-least-once, 1 s checkpoints, parallelism 2,
#               --scheduler sharing
#   sluice-eo   the same with --delivery exactly-once (a transaction per checkpoint)
#   kcat        kcat -C ... -e -f '%s\n' | kcat -P ...  (librdkafka defaults on both ends)
# 1. Throughput: a pre-filled input topic (--records payments, 4 partitions) is moved to a
#    fresh output topic (4 partitions); wall time of the whole process (pipe), start to exit.
#    Every output topic is then read back read_committed and must hold each id exactly once.
# 2. Latency: fresh topics; the system runs, sluice_kafka_load writes --rate records/s for
#    --seconds with sent_us = the send time, and a read_committed consumer of the output takes
#    receive time - sent_us (the first --warmup seconds are not measured). Every record must
#    arrive; the load goes on at the same rate until they have. For exactly-once, readers see
#    records only when the checkpoint's transaction commits, so the latency is about the
#    checkpoint interval. A fourth row, direct, reads the input topic itself: what the broker
#    and the driver add to every row.
# Prints every repetition, then medians, ranges, and ratios to kcat.
#
# The broker's data goes to /dev/shm when there is one (--tmp): with it on disk, the broker
# once fenced itself mid-run (its KRaft session timed out, most likely behind the writeback of
# the gigabytes the throughput part writes). Output topics are deleted once checked. On a
# machine shared with other sessions, use --priority (see --help).
#
# The broker verifies transactions (transaction.partition.verification.enable, its default
# since Kafka 3.6) unless --txn-verification off. Session 22 turned it off here: exactly-once
# output stalled for 3-30 s in about half of the runs with it. Session 25 found the stalls'
# cause in librdkafka 2.0.2's idempotent producer (docs/kafka.md, "Producer settings"); with
# the sink's new settings, 10 runs of 10 with verification on had none (BENCHMARKS.md).
#
# Environment: SLUICE_BUILD (default build), SLUICE_KAFKA_JAVA_OPTS (broker JVM; default here
# "-Xms1g -Xmx1g -XX:+UseG1GC": full JIT, unlike the tests' fast-start default).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD:-$root/build}"
records=2000000
runs=5
rate=5000
seconds=20
warmup=2
parallelism=2
partitions=4
interval=1s
settle=3
# CAF's sharing scheduler: the default work-stealing workers spin when idle and, on 2 cores
# shared with the broker, starved it and librdkafka's threads (stalls of seconds at 5k rec/s).
extra="--scheduler sharing"
priority=""
systems_arg=""
ref_pipeline=""
args=("$@")
tmp_root="${TMPDIR:-/tmp}"
[[ -d /dev/shm && -w /dev/shm ]] && tmp_root=/dev/shm
only="throughput latency"
txn_verification=on

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  cat << EOF
Options: --records N ($records)  --runs N ($runs)  --rate R ($rate)  --seconds S ($seconds)
         --warmup S ($warmup)  --parallelism P ($parallelism)  --partitions N ($partitions)
         --checkpoint-interval D ($interval)  --only throughput|latency  --build DIR ($build)
         --systems "sluice-eo ..." (only these of sluice-alo sluice-eo kcat direct; default all)
         --ref-pipeline PATH (adds sluice-eo-ref: sluice-eo with this kafka_pipeline binary,
                              e.g. an older commit's, interleaved with the others)
         --pipeline-flags "..." (more kafka_pipeline flags; default "$extra")
         --tmp DIR ($tmp_root: the broker's data and the checkpoints)
         --txn-verification on|off ($txn_verification: the broker's
                       transaction.partition.verification.enable; see above)
         --priority N (e.g. -10, needs root: run in a session of its own whose scheduler
                       autogroup, and the broker's, get nice N; on a machine shared with
                       other sessions, plain nice does nothing across sessions)
EOF
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    --txn-verification) txn_verification="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --parallelism) parallelism="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --checkpoint-interval) interval="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --pipeline-flags) extra="$2"; shift 2 ;;
    --tmp) tmp_root="$2"; shift 2 ;;
    --priority) priority="$2"; shift 2 ;;
    --systems) systems_arg="$2"; shift 2 ;;
    --ref-pipeline) ref_pipeline="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage ;;
  esac
done

# --priority: the kernel shares the CPU between sessions (autogroups) before nice counts, so
# the benchmark runs in a session of its own and raises that session's and the broker's share.
if [[ -n "$priority" && -z "${SLUICE_KAFKA_BENCH_SESSION:-}" ]]; then
  SLUICE_KAFKA_BENCH_SESSION=1 setsid "${BASH_SOURCE[0]}" "${args[@]}" &
  child=$!
  trap 'kill -TERM "$child" 2> /dev/null || true' INT TERM
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2> /dev/null || exit "$rc"
  done
fi
set_priority() { [[ -z "$priority" ]] || echo "$priority" > "/proc/$1/autogroup"; }
set_priority $$

pipeline="$build/samples/kafka_pipeline"
# A copied build (binaries only, e.g. to measure an older commit) has no build system.
[[ ! -f "$build/CMakeCache.txt" ]] || cmake --build "$build" --target sluice_kafka_load >/dev/null
load="$build/bench/sluice_kafka_load"
for b in "$pipeline" "$load"; do
  [[ -x "$b" ]] || {
    echo "missing $b: build it first: ninja -C $build kafka_pipeline sluice_kafka_load" >&2
    exit 2
  }
done
command -v kcat > /dev/null || { echo "kcat not found (apt-get install kcat)" >&2; exit 2; }

export SLUICE_KAFKA_JAVA_OPTS="${SLUICE_KAFKA_JAVA_OPTS:--Xms1g -Xmx1g -XX:+UseG1GC}"
case "$txn_verification" in
  on) verification=true ;;
  off) verification=false ;;
  *) echo "--txn-verification: on or off, got '$txn_verification'" >&2; exit 2 ;;
esac
export SLUICE_KAFKA_BROKER_CONFIG="transaction.partition.verification.enable=$verification"
tmp="$(mktemp -d "$tmp_root/sluice-kafka-bench.XXXXXX")"
broker_dir="$tmp/broker"
pids=()
cmd=()

cleanup() {
  local rc=$?
  stop_copy
  "$root/scripts/kafka-broker.sh" stop "$broker_dir" > /dev/null 2>&1 || true
  if ((rc != 0)) && [[ -f "$broker_dir/broker.log" ]]; then
    cp "$broker_dir/broker.log" "${TMPDIR:-/tmp}/sluice-kafka-bench-broker.log" || true
    echo "failed (rc $rc); broker log kept in ${TMPDIR:-/tmp}/sluice-kafka-bench-broker.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "[$(date +%T)] $*" >&2; }
now_ns() { date +%s%N; }

say "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
say "starting the broker (SLUICE_KAFKA_JAVA_OPTS=$SLUICE_KAFKA_JAVA_OPTS; $SLUICE_KAFKA_BROKER_CONFIG)"
bootstrap="$("$root/scripts/kafka-broker.sh" start "$broker_dir")"
set_priority "$(< "$broker_dir/pid")"
results="$tmp/results"
: > "$results"

systems=(sluice-alo sluice-eo kcat)
# direct: no copy, the load driver reads the topic it writes (the broker's and the driver's
# share of every latency figure).
lat_systems=(sluice-alo sluice-eo kcat direct)
if [[ -n "$systems_arg" ]]; then
  read -r -a lat_systems <<< "$systems_arg"
  systems=()
  for sys in "${lat_systems[@]}"; do
    case "$sys" in
      sluice-alo | sluice-eo | kcat) systems+=("$sys") ;;
      direct) ;;
      *) echo "unknown system '$sys' in --systems (sluice-alo sluice-eo kcat direct)" >&2; exit 2 ;;
    esac
  done
fi
if [[ -n "$ref_pipeline" ]]; then
  [[ -x "$ref_pipeline" ]] || { echo "--ref-pipeline $ref_pipeline is not executable" >&2; exit 2; }
  [[ " ${lat_systems[*]} " == *" sluice-eo-ref "* ]] || lat_systems+=(sluice-eo-ref)
  [[ " ${systems[*]} " == *" sluice-eo-ref "* ]] || systems+=(sluice-eo-ref)
fi

# The systems of list `1` in repetition `2`'s order (rotated: no system always runs first).
order() {
  local -n list="$1"
  local r="$2" i n=${#list[@]}
  for ((i = 0; i < n; i++)); do echo "${list[$(((i + r) % n))]}"; done
}

# Sets `cmd` to kafka_pipeline in map mode for `sys` (its delivery, checkpoints every
# $interval), reading `in` and writing `out`; more flags after. Run as "${cmd[@]}", not from a
# function put in the background: $! must be the pipeline itself, which stop_copy signals.
pipeline_cmd() {
  local sys="$1" in="$2" out="$3" tag="$4"
  shift 4
  local delivery=at-least-once more bin="$pipeline"
  [[ "$sys" == sluice-eo* ]] && delivery=exactly-once
  [[ "$sys" == sluice-eo-ref ]] && bin="$ref_pipeline"
  read -r -a more <<< "$extra"
  cmd=("$bin" --bootstrap "$bootstrap" --input "$in" --output "$out" --map
    --delivery "$delivery" --checkpoint-dir "$tmp/ckpt-$tag" --checkpoint-interval "$interval"
    --group "bench-$tag" --transactional-id-prefix "bench-$tag" --parallelism "$parallelism"
    "${more[@]}" "$@")
}

throughput() {
  say "throughput: filling thr-in with $records payments of 100 bytes ($partitions partitions)"
  "$load" --bootstrap "$bootstrap" fill --topic thr-in --records "$records" \
    --partitions "$partitions" >&2
  # Untimed warm-up of the broker's JIT and page cache: one kcat copy.
  "$load" --bootstrap "$bootstrap" create --topic thr-warm --partitions "$partitions"
  kcat -C -b "$bootstrap" -t thr-in -o beginning -e -q -f '%s\n' | kcat -P -b "$bootstrap" -t thr-warm
  "$load" --bootstrap "$bootstrap" delete --topic thr-warm
  local r sys out t0 t1 secs
  for ((r = 1; r <= runs; r++)); do
    for sys in $(order systems "$r"); do
      out="thr-out-$sys-$r"
      "$load" --bootstrap "$bootstrap" create --topic "$out" --partitions "$partitions"
      t0="$(now_ns)"
      if [[ "$sys" == kcat ]]; then
        kcat -C -b "$bootstrap" -t thr-in -o beginning -e -q -f '%s\n' |
          kcat -P -b "$bootstrap" -t "$out"
      else
        pipeline_cmd "$sys" thr-in "$out" "thr-$sys-$r" --bounded
        "${cmd[@]}" 2> "$tmp/log" || {
          cat "$tmp/log" >&2
          exit 1
        }
      fi
      t1="$(now_ns)"
      rm -rf "$tmp/ckpt-thr-$sys-$r"
      secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
      "$load" --bootstrap "$bootstrap" count --topic "$out" --expect "$records" >&2
      "$load" --bootstrap "$bootstrap" delete --topic "$out"
      echo "thr $sys $r $secs $(awk -v n="$records" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')" |
        tee -a "$results" >&2
    done
  done
}

# Starts `sys` copying lat-in-$tag to lat-out-$tag in the background; its pids in `pids`.
start_copy() {
  local sys="$1" tag="$2"
  if [[ "$sys" == kcat ]]; then
    # -u: kcat's stdout is a pipe, which stdio would buffer (records would wait for 4 KB).
    rm -f "$tmp/fifo" && mkfifo "$tmp/fifo"
    kcat -C -b "$bootstrap" -t "lat-in-$tag" -o beginning -u -q -f '%s\n' > "$tmp/fifo" &
    pids+=("$!")
    kcat -P -b "$bootstrap" -t "lat-out-$tag" < "$tmp/fifo" &
    pids+=("$!")
  else
    pipeline_cmd "$sys" "lat-in-$tag" "lat-out-$tag" "lat-$tag"
    "${cmd[@]}" 2> "$tmp/log" &
    pids+=("$!")
  fi
}

# Stops what start_copy started: SIGTERM (the pipeline drains and exits; kcat -C exits and
# kcat -P flushes at the end of its input). Not SIGINT: background jobs of a script ignore it.
alive() { # a child that has exited is a zombie until waited for
  local st
  st="$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null)" || return 1
  [[ -n "$st" && "$st" != Z ]]
}

stop_copy() {
  local p t
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[0]}" 2> /dev/null || true
  for p in "${pids[@]}"; do
    for ((t = 0; t < 600; t++)); do
      alive "$p" || break
      sleep 0.1
    done
    if alive "$p"; then
      say "pid $p still runs 60 s after SIGTERM; killing it"
      kill -KILL "$p" 2> /dev/null || true
    fi
    wait "$p" 2> /dev/null || true
  done
  pids=()
}

latency() {
  local r sys tag line out
  # Untimed warm-up of a fresh broker (JIT): 5 s of the load on its own. With a Sluice
  # system, also 5 s of its copying (exactly-once when measured, else at-least-once): the
  # first offset commit creates the broker's __consumer_offsets topic, and the first
  # transactional producer __transaction_state (50 partitions each), which stalled the first
  # measured run for up to seconds (session 25, at-least-once at 50k rec/s: stalls of
  # 0.4-1.2 s in the first run of each of two passes, none in their second runs).
  "$load" --bootstrap "$bootstrap" create --topic lat-warm --partitions "$partitions"
  "$load" --bootstrap "$bootstrap" latency --in lat-warm --out lat-warm --rate "$rate" \
    --seconds 5 --warmup 0 > /dev/null || true
  "$load" --bootstrap "$bootstrap" delete --topic lat-warm
  local warm_sys=""
  [[ " ${lat_systems[*]} " == *" sluice-alo "* ]] && warm_sys=sluice-alo
  [[ " ${lat_systems[*]} " == *" sluice-eo"* ]] && warm_sys=sluice-eo
  if [[ -n "$warm_sys" ]]; then
    "$load" --bootstrap "$bootstrap" create --topic lat-in-warm --partitions "$partitions"
    "$load" --bootstrap "$bootstrap" create --topic lat-out-warm --partitions "$partitions"
    start_copy "$warm_sys" warm
    sleep "$settle"
    "$load" --bootstrap "$bootstrap" latency --in lat-in-warm --out lat-out-warm --rate "$rate" \
      --seconds 5 --warmup 0 --drain 60 > /dev/null || true
    stop_copy
    rm -rf "$tmp/ckpt-lat-warm"
    "$load" --bootstrap "$bootstrap" delete --topic lat-in-warm
    "$load" --bootstrap "$bootstrap" delete --topic lat-out-warm
  fi
  for ((r = 1; r <= runs; r++)); do
    for sys in $(order lat_systems "$r"); do
      tag="$sys-$r"
      out="lat-out-$tag"
      "$load" --bootstrap "$bootstrap" create --topic "lat-in-$tag" --partitions "$partitions"
      if [[ "$sys" == direct ]]; then
        out="lat-in-$tag"
      else
        "$load" --bootstrap "$bootstrap" create --topic "$out" --partitions "$partitions"
        start_copy "$sys" "$tag"
        sleep "$settle"
      fi
      line="$("$load" --bootstrap "$bootstrap" latency --in "lat-in-$tag" --out "$out" \
        --rate "$rate" --seconds "$seconds" --warmup "$warmup" --drain 60 --series)" || {
        echo "$line" >&2
        cat "$tmp/log" >&2 || true
        exit 1
      }
      stop_copy
      rm -rf "$tmp/ckpt-lat-$tag"
      "$load" --bootstrap "$bootstrap" delete --topic "lat-in-$tag"
      [[ "$out" == "lat-in-$tag" ]] || "$load" --bootstrap "$bootstrap" delete --topic "$out"
      echo "$line" >&2
      # "... p50_ms X p99_ms Y p999_ms Z max_ms W: OK"
      awk -v s="$sys" -v r="$r" '{
        for (i = 1; i <= NF; i++) v[$i] = $(i + 1)
        sub(":", "", v["max_ms"])
        print "lat", s, r, v["p50_ms"], v["p99_ms"], v["p999_ms"], v["max_ms"]
      }' <<< "$line" | tee -a "$results" >&2
    done
  done
}

[[ " $only " == *" throughput "* ]] && throughput
[[ " $only " == *" latency "* ]] && latency

say "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"

# -- summary -----------------------------------------------------------------------------------
# Median and range of column `col` of the `kind` rows of `sys`.
stat() {
  local kind="$1" sys="$2" col="$3"
  awk -v k="$kind" -v s="$sys" -v c="$col" '$1 == k && $2 == s { print $c }' "$results" |
    sort -g | awk '{ a[NR] = $1 } END {
      if (NR == 0) { print "- - -"; exit }
      m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      print m, a[1], a[NR] }'
}

echo
echo "Kafka -> map -> Kafka, $records x 100-byte records, $partitions partitions, loopback broker"
echo "(JVM: $SLUICE_KAFKA_JAVA_OPTS${priority:+, autogroup nice $priority}), Sluice parallelism $parallelism ${extra:+($extra) }checkpoints" \
  "every $interval, $runs repetitions (median [min-max]); ratios are median / kcat's median."
if [[ " $only " == *" throughput "* ]]; then
  read -r kt _ _ <<< "$(stat thr kcat 5)"
  echo
  printf "%-11s %28s %8s\n" system "throughput rec/s" "vs kcat"
  for sys in "${systems[@]}"; do
    read -r m lo hi <<< "$(stat thr "$sys" 5)"
    printf "%-11s %10.0f [%7.0f-%7.0f] %8.2f\n" "$sys" "$m" "$lo" "$hi" \
      "$(awk -v a="$m" -v b="$kt" 'BEGIN { print (b + 0 == 0) ? "nan" : a / b }')"
  done
fi
if [[ " $only " == *" latency "* ]]; then
  read -r k99 _ _ <<< "$(stat lat kcat 5)"
  echo
  echo "latency at $rate rec/s for ${seconds} s (first ${warmup} s not measured), ms:"
  printf "%-11s %22s %22s %22s %10s %8s\n" system p50 p99 p99.9 "max(med)" "p99/kcat"
  for sys in "${lat_systems[@]}"; do
    read -r a alo ahi <<< "$(stat lat "$sys" 4)"
    read -r b blo bhi <<< "$(stat lat "$sys" 5)"
    read -r c clo chi <<< "$(stat lat "$sys" 6)"
    read -r d _ _ <<< "$(stat lat "$sys" 7)"
    printf "%-11s %8.2f [%5.2f-%5.2f] %8.2f [%5.2f-%5.2f] %8.2f [%5.2f-%5.2f] %10.2f %8.2f\n" \
      "$sys" "$a" "$alo" "$ahi" "$b" "$blo" "$bhi" "$c" "$clo" "$chi" "$d" \
      "$(awk -v a="$b" -v b="$k99" 'BEGIN { print (b + 0 == 0) ? "nan" : a / b }')"
  done
fi
