#!/usr/bin/env bash
# The fraud-detection benchmark (issue 7): samples/fraud_detection with all four rules and 1 s
# checkpoints, each figure against a baseline measured in the same run.
#
#   ninja -C build fraud_detection kafka_pipeline sluice_kafka_load   # build these first
#   bench/fraud_bench.sh                          # everything, about 15 minutes
#   bench/fraud_bench.sh --only latency --runs 5  # one part: latency, sweep or kafka
#
# It builds nothing. Generator runs use --fraud-share 0.05 (enough alerts for a stable p99.9)
# and --quiet; the latency figures are the sample's own summary: source ingest to alert sink.
# 1. latency: --rate 100000 for --seconds 20, all four rules, 1 s checkpoints into a temporary
#    directory ("ckpt"), against the same command without checkpoints ("nockpt": the baseline,
#    so the ratio is what checkpointing costs the latency). --runs repetitions, alternating
#    which goes first; medians. A run sustains its rate when it read >= 95% of rate x elapsed.
# 2. sweep: the maximum sustained rate at p99 <= 10 ms, all rules, 1 s checkpoints: rates
#    --rates in order, --sweep-runs runs of --sweep-seconds each; a step passes when the
#    medians read >= 95% of the target rate and p99 <= 10 ms; the sweep stops at the first
#    failing step. Baseline: the same job unthrottled (--rate 1e9 for --sweep-seconds), i.e.
#    the job's raw throughput; the ratio is how much of it is usable under the latency bound.
# 3. kafka: a real broker on loopback (scripts/kafka-broker.sh, a temporary directory, stopped
#    on exit). A topic of --partitions partitions is filled with --kafka-records generated
#    transactions (--sink kafka-transactions), then read with --source kafka --bounded, rules,
#    --sink kafka (exactly-once, a transaction per 1 s checkpoint) to a fresh alerts topic.
#    Baseline: kafka_pipeline --map --bounded --delivery exactly-once (Kafka -> map -> Kafka,
#    1 s checkpoints) over a topic of as many payments of the transactions' mean JSON size
#    (kafka_pipeline cannot parse transactions), same partitions. Throughput = records / wall
#    time of the process (start to exit), both alike; the sample's own elapsed time and p99
#    are printed too. The map job writes every record, the rules only the alerts (~1.3%).
#    The alerts topic, read committed, must hold each alert of the summary exactly once, the
#    map's output each payment exactly once; a rules run that stops before the end of the
#    topic (SIGTERM from outside) is reported and not counted.
#
# Environment: SLUICE_BUILD (default build), SLUICE_KAFKA_JAVA_OPTS (broker JVM; default here
# "-Xms1g -Xmx1g -XX:+UseG1GC").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD:-$root/build}"
runs=3
rate=100000
seconds=20
sweep_runs=3
sweep_seconds=10
rates="50000 100000 150000 200000 300000 400000 600000 800000 1200000 1600000 2400000"
kafka_runs=3
kafka_records=1000000
partitions=4
share=0.05
extra=""
only="latency sweep kafka"

usage() {
  sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat << EOF
Options: --runs N ($runs)  --rate R ($rate)  --seconds S ($seconds)  --sweep-runs N ($sweep_runs)
         --sweep-seconds S ($sweep_seconds)  --rates "R1 R2 ..." ($rates)
         --kafka-runs N ($kafka_runs)  --kafka-records N ($kafka_records)  --partitions N ($partitions)
         --fraud-share F ($share)  --only "latency sweep kafka"  --build DIR ($build)
         --flags "..." (more fraud_detection flags for every run, e.g. "--parallelism 1")
EOF
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --sweep-runs) sweep_runs="$2"; shift 2 ;;
    --sweep-seconds) sweep_seconds="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    --kafka-runs) kafka_runs="$2"; shift 2 ;;
    --kafka-records) kafka_records="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --fraud-share) share="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --flags) extra="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage ;;
  esac
done

fraud="$build/samples/fraud_detection/fraud_detection"
pipeline="$build/samples/kafka_pipeline"
cmake --build "$build" --target sluice_kafka_load >/dev/null
load="$build/bench/sluice_kafka_load"
need=("$fraud")
[[ " $only " == *" kafka "* ]] && need+=("$pipeline" "$load")
for b in "${need[@]}"; do
  [[ -x "$b" ]] || {
    echo "missing $b: build it first: ninja -C $build fraud_detection kafka_pipeline sluice_kafka_load" >&2
    exit 2
  }
done
if [[ " $only " == *" kafka "* ]]; then
  command -v kcat > /dev/null || { echo "kcat not found (apt-get install kcat)" >&2; exit 2; }
fi

export SLUICE_KAFKA_JAVA_OPTS="${SLUICE_KAFKA_JAVA_OPTS:--Xms1g -Xmx1g -XX:+UseG1GC}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fraud-bench.XXXXXX")"
broker_dir="$tmp/broker"
broker=0

cleanup() {
  local rc=$?
  ((broker)) && { "$root/scripts/kafka-broker.sh" stop "$broker_dir" > /dev/null 2>&1 || true; }
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "[$(date +%T)] $*" >&2; }
now_ns() { date +%s%N; }
results="$tmp/results"
: > "$results"
read -r -a more <<< "$extra"

# Parses a fraud_detection summary (stderr in file $1) into
# "read elapsed_s p50_us p99_us p999_us max_us alerts min_precision min_recall".
parse() {
  awk '
    /^fraud_detection: (stopped|finished) after/ {
      for (i = 1; i <= NF; i++) {
        if ($i == "after") el = $(i + 1)
        if ($i == "s:") rd = $(i + 1)
        if ($i ~ /^alerts/) al = $(i - 1)
      }
    }
    /^(small-then-large|velocity|impossible-travel|spend-spike) / {
      if ($5 != "-" && (pmin == "" || $5 + 0 < pmin)) pmin = $5 + 0
      if ($6 != "-" && (rmin == "" || $6 + 0 < rmin)) rmin = $6 + 0
    }
    /^latency, source ingest/ {
      for (i = 1; i <= NF; i++) {
        if ($i == "p50") p50 = $(i + 1)
        if ($i == "p99") p99 = $(i + 1)
        if ($i == "p99.9") p999 = $(i + 1)
        if ($i == "max") mx = $(i + 1)
      }
    }
    END {
      if (rd == "" || p99 == "") exit 1
      print rd, el, p50, p99, p999, mx, al, (pmin == "" ? "-" : pmin), (rmin == "" ? "-" : rmin)
    }' "$1"
}

# Runs fraud_detection with the generator; $1 tag, $2 rate, $3 seconds, $4 checkpoints (1/0).
# Prints the parsed summary; a run with an alert that is not in the ground truth fails.
gen_run() {
  local tag="$1" r="$2" secs="$3" ck="$4" line
  local args=(--rate "$r" --duration "${secs}s" --quiet --fraud-share "$share")
  ((ck)) && args+=(--checkpoint-dir "$tmp/ckpt-$tag" --checkpoint-interval 1s)
  "$fraud" "${args[@]}" "${more[@]}" > /dev/null 2> "$tmp/log" || {
    cat "$tmp/log" >&2
    exit 1
  }
  rm -rf "$tmp/ckpt-$tag"
  line="$(parse "$tmp/log")" || { cat "$tmp/log" >&2; echo "no summary" >&2; exit 1; }
  read -r _ _ _ _ _ _ _ pmin _ <<< "$line"
  if [[ "$pmin" != - ]] && awk -v p="$pmin" 'BEGIN { exit !(p < 1) }'; then
    cat "$tmp/log" >&2
    echo "precision below 1: alerts that are not in the ground truth" >&2
    exit 1
  fi
  echo "$line"
}

# Median of column `col` of the rows of `results` whose first two fields are $1 $2.
med() {
  awk -v k="$1" -v s="$2" -v c="$3" '$1 == k && $2 == s { print $c }' "$results" |
    sort -g | awk '{ a[NR] = $1 } END {
      if (NR == 0) { print "-"; exit }
      print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
range() {
  awk -v k="$1" -v s="$2" -v c="$3" '$1 == k && $2 == s { print $c }' "$results" |
    sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

latency() {
  local r sys line
  for ((r = 1; r <= runs; r++)); do
    for sys in $( ((r % 2)) && echo ckpt nockpt || echo nockpt ckpt); do
      say "latency run $r $sys: --rate $rate --duration ${seconds}s"
      line="$(gen_run "lat-$sys-$r" "$rate" "$seconds" "$([[ $sys == ckpt ]] && echo 1 || echo 0)")"
      # lat sys run read elapsed p50 p99 p999 max alerts pmin rmin achieved-rate
      echo "lat $sys $r $line $(awk -v l="$line" 'BEGIN { split(l, a, " "); printf "%.0f", a[1] / a[2] }')" |
        tee -a "$results" >&2
    done
  done
}

sweep() {
  local r step line ach p99 pass
  say "sweep baseline: unthrottled (--rate 1e9), ${sweep_seconds}s x $sweep_runs"
  for ((r = 1; r <= sweep_runs; r++)); do
    line="$(gen_run "raw-$r" 1000000000 "$sweep_seconds" 1)"
    echo "raw all $r $line $(awk -v l="$line" 'BEGIN { split(l, a, " "); printf "%.0f", a[1] / a[2] }')" |
      tee -a "$results" >&2
  done
  for step in $rates; do
    for ((r = 1; r <= sweep_runs; r++)); do
      say "sweep $step tx/s, run $r"
      line="$(gen_run "sw-$step-$r" "$step" "$sweep_seconds" 1)"
      echo "sw $step $r $line $(awk -v l="$line" 'BEGIN { split(l, a, " "); printf "%.0f", a[1] / a[2] }')" |
        tee -a "$results" >&2
    done
    ach="$(med sw "$step" 13)"
    p99="$(med sw "$step" 7)"
    pass="$(awk -v a="$ach" -v t="$step" -v p="$p99" 'BEGIN { print (a >= 0.95 * t && p <= 10000) ? "pass" : "fail" }')"
    echo "step $step $ach $p99 $pass" | tee -a "$results" >&2
    [[ "$pass" == pass ]] || break
  done
}

kafka() {
  say "starting the broker (SLUICE_KAFKA_JAVA_OPTS=$SLUICE_KAFKA_JAVA_OPTS)"
  broker=1
  # Up to 3 tries: kafka-broker.sh's random cluster id can start with "-", which the storage
  # tool takes for an option (1 start in 64 fails).
  local try
  for try in 1 2 3; do
    bootstrap="$("$root/scripts/kafka-broker.sh" start "$broker_dir")" && break
    ((try < 3)) || exit 1
  done
  "$load" --bootstrap "$bootstrap" create --topic fraud-in --partitions "$partitions"
  say "filling fraud-in with $kafka_records transactions ($partitions partitions)"
  "$fraud" --sink kafka-transactions --bootstrap "$bootstrap" --topic fraud-in --rate 1e9 \
    --count "$kafka_records" --fraud-share "$share" 2> "$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
  tail -1 "$tmp/log" >&2
  grep -q "wrote $kafka_records transactions" "$tmp/log" ||
    { echo "the fill stopped early (a SIGTERM from outside?)" >&2; exit 1; }
  # The mean JSON size of a transaction, for the baseline's payments.
  local size
  size="$(kcat -C -b "$bootstrap" -t fraud-in -o beginning -c 2000 -e -q -f '%s\n' |
    awk '{ n += length($0) } END { printf "%.0f", n / NR }')"
  say "transactions are $size bytes of JSON on average; filling map-in with as many payments"
  "$load" --bootstrap "$bootstrap" --size "$size" fill --topic map-in --records "$kafka_records" \
    --partitions "$partitions" >&2
  # Untimed warm-up of the broker (JIT, page cache): one read of each topic.
  kcat -C -b "$bootstrap" -t fraud-in -o beginning -e -q -f '%s\n' > /dev/null
  kcat -C -b "$bootstrap" -t map-in -o beginning -e -q -f '%s\n' > /dev/null
  local r sys t0 t1 secs line
  # Run 0 is an untimed warm-up of both jobs (the broker's transaction coordinator, the JIT).
  for ((r = 0; r <= kafka_runs; r++)); do
    for sys in $( ((r % 2)) && echo rules map || echo map rules); do
      "$load" --bootstrap "$bootstrap" create --topic "out-$sys-$r" --partitions "$partitions"
      say "kafka run $r $sys"
      t0="$(now_ns)"
      if [[ "$sys" == rules ]]; then
        "$fraud" --source kafka --bounded --bootstrap "$bootstrap" --topic fraud-in \
          --sink kafka --alerts-topic "out-$sys-$r" --checkpoint-dir "$tmp/ckpt-k-$r" \
          --checkpoint-interval 1s --quiet "${more[@]}" > /dev/null 2> "$tmp/log" ||
          { cat "$tmp/log" >&2; exit 1; }
      else
        "$pipeline" --bootstrap "$bootstrap" --input map-in --output "out-$sys-$r" --map \
          --bounded --delivery exactly-once --checkpoint-dir "$tmp/ckpt-m-$r" \
          --checkpoint-interval 1s --group "bench-map-$r" --transactional-id-prefix "bench-map-$r" \
          2> "$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
      fi
      t1="$(now_ns)"
      rm -rf "$tmp/ckpt-k-$r" "$tmp/ckpt-m-$r"
      secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
      if [[ "$sys" == rules ]]; then
        line="$(parse "$tmp/log")" || { cat "$tmp/log" >&2; exit 1; }
        read -r n el _ p99 _ _ al _ _ <<< "$line"
        # Exactly-once: the alerts topic, read committed, holds each alert once.
        local got
        got="$(kcat -C -b "$bootstrap" -t "out-$sys-$r" -o beginning -e -q -f '%s\n' \
          -X isolation.level=read_committed | sort -u | wc -l)"
        [[ "$got" == "$al" ]] || { echo "out-$sys-$r holds $got distinct alerts, not $al" >&2; exit 1; }
        ((r)) || continue
        if [[ "$n" != "$kafka_records" ]]; then
          cat "$tmp/log" >&2
          say "run $r of the rules read $n of $kafka_records transactions: not counted"
          echo "kf-incomplete rules $r $n" >> "$results"
          continue
        fi
        # kf rules run wall_s rec/s(wall) engine_s p99_us alerts
        echo "kf rules $r $secs $(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') $el $p99 $al" |
          tee -a "$results" >&2
      else
        "$load" --bootstrap "$bootstrap" count --topic "out-$sys-$r" --expect "$kafka_records" >&2
        ((r)) || continue
        el="$(awk '/kafka_pipeline: (finished|stopped) after/ { print $4 }' "$tmp/log")"
        echo "kf map $r $secs $(awk -v n="$kafka_records" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') $el - -" |
          tee -a "$results" >&2
      fi
    done
  done
}

[[ " $only " == *" latency "* ]] && latency
[[ " $only " == *" sweep "* ]] && sweep
[[ " $only " == *" kafka "* ]] && kafka

# -- summary -----------------------------------------------------------------------------------
echo
echo "fraud_detection, all four rules, --fraud-share $share${extra:+, $extra}; medians [min-max]"
if [[ " $only " == *" latency "* ]]; then
  echo
  echo "1. latency at $rate tx/s for ${seconds} s, $runs runs each (us, source ingest to alert sink):"
  printf "%-8s %12s %22s %22s %22s %10s %8s\n" run "read tx/s" p50 p99 p99.9 alerts sustained
  for sys in ckpt nockpt; do
    a="$(med lat $sys 13)"
    printf "%-8s %12s %8s [%11s] %8s [%11s] %8s [%11s] %10s %8s\n" "$sys" "$a" \
      "$(med lat $sys 6)" "$(range lat $sys 6)" "$(med lat $sys 7)" "$(range lat $sys 7)" \
      "$(med lat $sys 8)" "$(range lat $sys 8)" "$(med lat $sys 10)" \
      "$(awk -v a="$a" -v t="$rate" 'BEGIN { print (a >= 0.95 * t) ? "yes" : "NO" }')"
  done
  echo "ratios ckpt / nockpt: p50 $(ratio "$(med lat ckpt 6)" "$(med lat nockpt 6)")," \
    "p99 $(ratio "$(med lat ckpt 7)" "$(med lat nockpt 7)")," \
    "p99.9 $(ratio "$(med lat ckpt 8)" "$(med lat nockpt 8)");" \
    "target p99 <= 1000 us with checkpoints:" \
    "$(awk -v p="$(med lat ckpt 7)" 'BEGIN { print (p <= 1000) ? "met" : "NOT met" }')"
fi
if [[ " $only " == *" sweep "* ]]; then
  echo
  echo "2. sweep, 1 s checkpoints, ${sweep_seconds} s x $sweep_runs per step (medians):"
  printf "%10s %12s %10s %6s\n" "target" "read tx/s" "p99 us" ""
  awk '$1 == "step" { printf "%10s %12s %10s %6s\n", $2, $3, $4, $5 }' "$results"
  best="$(awk '$1 == "step" && $5 == "pass" { b = $2 } END { print b + 0 }' "$results")"
  raw="$(med raw all 13)"
  echo "maximum sustained rate at p99 <= 10 ms: $best tx/s; unthrottled (baseline): $raw tx/s" \
    "[$(range raw all 13)], p99 $(med raw all 7) us; ratio $(ratio "$best" "$raw")"
fi
if [[ " $only " == *" kafka "* ]]; then
  echo
  echo "3. Kafka -> job -> Kafka, exactly-once, 1 s checkpoints, $kafka_records records," \
    "$partitions partitions, $kafka_runs runs (wall time of the process):"
  printf "%-6s %22s %10s %10s %8s\n" job "rec/s" "engine s" "p99 us" alerts
  for sys in rules map; do
    printf "%-6s %8s [%11s] %10s %10s %8s\n" "$sys" "$(med kf $sys 5)" "$(range kf $sys 5)" \
      "$(med kf $sys 6)" "$(med kf $sys 7)" "$(med kf $sys 8)"
  done
  echo "ratio rules / map throughput: $(ratio "$(med kf rules 5)" "$(med kf map 5)")"
  awk '$1 == "kf-incomplete" { print "rules run " $3 " stopped early after " $4 " transactions" }' "$results"
fi
