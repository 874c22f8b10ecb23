#!/usr/bin/env bash
# Nexmark on Sluice (issue 26): every query of samples/nexmark at --events (default 10M) at
# parallelism 1 and 2, and q0-q2 as a plain loop over the same generator (nexmark_loop) for
# the ratio engine / loop.
#
#   ninja -C build nexmark nexmark_loop     # build these first; it builds nothing
#   bench/nexmark.sh                        # all queries, 10M events, p = 1 and 2
#   bench/nexmark.sh --events 1000000 --queries "0 5" --parallelism "2" --splits interleaved
#
# Parallelism above 1 runs once per --splits mode (ranges: Beam's split into consecutive
# ranges; interleaved: every p-th event; docs/nexmark.md). --checkpoint-interval 1s adds
# checkpoints into a fresh temporary directory per run, and the result rows also go exactly
# once into CSV part files there (--output-dir: the transactional file sink); the loops run
# without.
# --flink adds every query of --queries as a Flink 2.3 DataStream job (bench/nexmark-flink:
# the same generator rules with the JDK's Random, instance i of p generating every p-th
# event as --split interleaved, the DDL's watermark dateTime - 4 s, heap state, a local
# mini-cluster, object reuse on) at each parallelism; Maven resolves Flink's jars on first
# use. Its events/s is the job's net runtime; its CPU includes the JVM's and the
# mini-cluster's start (~7 s of CPU) and the JIT; "job ev/s/core" divides by the JVM's CPU
# from the job's submission to its end only (the Sluice rows have no such column). Its
# rows and checksum are computed as the sample's and must equal them (q12: processing-time
# windows, the rows differ from run to run); a difference makes the script fail.
# Per run: events/s (events / the job's own elapsed time, as the sample prints it),
# events/s per core (events / (user + sys CPU seconds) from /usr/bin/time -v: what one
# fully used core would do), peak RSS, the result rows and their checksum (equal at every
# parallelism, and for q0-q2 equal to the loop's), the 1-minute load average just before the
# run (the machine may be shared). Unthrottled: the source emits as fast as
# it can; event time runs at Beam's 10 000 events/s timeline.
#
# Environment: SLUICE_BUILD (default build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD:-$root/build}"
events=10000000
queries="0 1 2 3 4 5 6 7 8 9 11 12 13 14 15 17"
parallelism="1 2"
splits="ranges interleaved"
checkpoints=""
flink=0
mismatch=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --queries) queries="$2"; shift 2 ;;
    --parallelism) parallelism="$2"; shift 2 ;;
    --splits) splits="$2"; shift 2 ;;
    --checkpoint-interval) checkpoints="$2"; shift 2 ;;
    --flink) flink=1; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "nexmark.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

sample="$build/samples/nexmark/nexmark"
cmake --build "$build" --target nexmark_loop >/dev/null
loop="$build/bench/nexmark_loop"
for b in "$sample" "$loop"; do
  [[ -x "$b" ]] || { echo "nexmark.sh: $b is missing: ninja -C $build nexmark nexmark_loop" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "nexmark.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ "$flink" == 1 ]]; then
  "$root/bench/nexmark-flink/build.sh" "$tmp/flink"
fi

# run NAME CMD...: one measured run; prints a table row.
run() {
  local name="$1"; shift
  if [[ -n "$checkpoints" && "$1" == "$sample" ]]; then
    rm -rf "$tmp/ckpt" "$tmp/rows"
    set -- "$@" --checkpoint-dir "$tmp/ckpt" --checkpoint-interval "$checkpoints" \
      --output-dir "$tmp/rows"
  fi
  local load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/time -v -o "$tmp/time" "$@" > "$tmp/out" 2> "$tmp/err" || {
    echo "nexmark.sh: $name failed:" >&2; cat "$tmp/err" "$tmp/out" >&2; exit 1; }
  local line rate rows sum user sys rss
  line="$(grep -E '^(nexmark(_loop)?|flink) q' "$tmp/out" | tail -1)"
  rate="$(sed -E 's/.* ([0-9]+) events\/s.*/\1/' <<<"$line")"
  rows="$(sed -E 's/.* ([0-9]+) result rows.*/\1/' <<<"$line")"
  sum="-"
  [[ "$line" == *checksum* ]] && sum="$(sed -E 's/.*checksum ([0-9a-f]+).*/\1/' <<<"$line")"
  local jobcpu
  jobcpu="$(sed -nE 's/.*job CPU ([0-9.]+) s.*/\1/p' <<<"$line")"
  user="$(awk -F': ' '/User time/ {print $2}' "$tmp/time")"
  sys="$(awk -F': ' '/System time/ {print $2}' "$tmp/time")"
  rss="$(awk -F': ' '/Maximum resident/ {print $2}' "$tmp/time")"
  last_rows="$rows" last_sum="$sum"
  awk -v n="$name" -v r="$rate" -v e="$events" -v u="$user" -v s="$sys" -v m="$rss" \
      -v rows="$rows" -v sum="$sum" -v l="$load" -v j="$jobcpu" 'BEGIN {
    cpu = u + s; per = cpu > 0 ? e / cpu : 0
    job = j > 0 ? sprintf("%.0f", e / j) : "-"
    printf "| %-22s | %11.0f | %14.0f | %7.2f | %8.0f | %10s | %s | %5s | %9s |\n", n, r, per, cpu, m / 1024, rows, sum, l, job }'
}

echo "# Nexmark, $events events${checkpoints:+, checkpoints every $checkpoints}, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run                    |    events/s | events/s/core | CPU s   | RSS MiB  |       rows | checksum | load  | job ev/s/core |"
echo "|------------------------|-------------|----------------|---------|----------|------------|----------|-------|---------------|"
for q in $queries; do
  if [[ "$q" == 0 || "$q" == 1 || "$q" == 2 ]]; then
    run "loop q$q" "$loop" --query "$q" --events "$events"
  fi
  for p in $parallelism; do
    if [[ "$p" == 1 ]]; then
      run "q$q p=1" "$sample" --query "$q" --events "$events" --parallelism 1
      continue
    fi
    for s in $splits; do
      run "q$q p=$p $s" "$sample" --query "$q" --events "$events" --parallelism "$p" --split "$s"
    done
  done
  want_rows="$last_rows" want_sum="$last_sum"
  if [[ "$flink" == 1 ]]; then
    for p in $parallelism; do
      run "flink q$q p=$p" java -cp "$tmp/flink/classes:$(cat "$tmp/flink/cp.txt")" \
        sluice.bench.NexmarkFlink "$q" "$events" "$p"
      if [[ "$q" != 12 && ( "$last_rows" != "$want_rows" || "$last_sum" != "$want_sum" ) ]]; then
        echo "nexmark.sh: flink q$q p=$p gave $last_rows rows, checksum $last_sum; the sample" \
             "$want_rows rows, checksum $want_sum" >&2
        mismatch=1
      fi
    done
  fi
done
exit "$mismatch"
