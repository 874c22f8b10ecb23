#!/usr/bin/env bash
# The keyed workloads W2 and W4 on Sluice and on Flink 2.3 (issue 28: "Sluice >= 10x Flink"),
# alternating in the same run: each round runs every workload once on each engine (the
# order flips every round), then it prints the median records/s per engine and workload
# and the ratio Sluice / Flink.
#
#   ninja -C build sluice_bench            # build this first; the Flink side builds itself
#   bench/keyed_flink.sh                   # W2, W4 1 s, W4 10 ms; 10M records; 5 rounds; p = 2
#   bench/keyed_flink.sh --records 1000000 --runs 3 --workloads "w2 w4:10ms"
#
# Sluice: `sluice_bench w2|w4 --runs 1` (the engine's line; sluice_bench also times its
# hand-written loop in the same process, not used here). Flink: KeyedFlink of
# bench/nexmark-flink (the same records, keys, values and timestamps, instance i of p making
# every p-th record as Sluice's generator does; heap state, object reuse, a local
# mini-cluster) run --flink-runs times (default 2) in one JVM, the last run counted: the
# earlier ones warm its JIT, as sluice_bench's process is warm after its loop. records/s =
# records / the job's own runtime on both sides. Each result (W2: updates and the sum of
# their running counts; W4: windows and the sum of their counts) must be equal on both
# engines, else the script fails. `cat /proc/loadavg` is printed before every run.
#
# Environment: SLUICE_BUILD (default build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD:-$root/build}"
records=10000000
runs=5
parallelism=2
workloads="w2 w4:1s w4:10ms"
flink_runs=2

while [[ $# -gt 0 ]]; do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --parallelism) parallelism="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --flink-runs) flink_runs="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "keyed_flink.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in records runs parallelism flink_runs; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "keyed_flink.sh: --${v//_/-} must be a positive integer, got '${!v}'" >&2; exit 2; }
done
for w in $workloads; do
  [[ "$w" == w2 || "$w" =~ ^w4:[1-9][0-9]*(s|ms|us)$ ]] ||
    { echo "keyed_flink.sh: --workloads: '$w' is not w2 or w4:SIZE (w4:1s, w4:10ms)" >&2; exit 2; }
done

bench="$build/bench/sluice_bench"
[[ -x "$bench" ]] || { echo "keyed_flink.sh: $bench is missing: ninja -C $build sluice_bench" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/bench/nexmark-flink/build.sh" "$tmp/flink"
cp="$tmp/flink/classes:$(cat "$tmp/flink/cp.txt")"

# result LINE: "A B" from "(count=A sum=B)" or "(results=A sum=B)".
result() { sed -nE 's/.*\((count|results)=([0-9]+) sum=([0-9]+)\).*/\2 \3/p' <<<"$1"; }

# measure ENGINE WORKLOAD: one run; appends "rate" to $tmp/ENGINE.WORKLOAD, prints a row.
measure() {
  local engine="$1" w="$2" load line rate res
  local kind="${w%%:*}" args=()
  [[ "$w" == *:* ]] && args=(--window "${w#*:}")
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ "$engine" == sluice ]]; then
    "$bench" "$kind" --records "$records" --runs 1 --parallelism "$parallelism" "${args[@]}" \
      > "$tmp/out" 2> "$tmp/err" || { echo "keyed_flink.sh: sluice_bench $w failed:" >&2; cat "$tmp/err" "$tmp/out" >&2; exit 1; }
    line="$(grep -E '^  engine:' "$tmp/out")"
    rate="$(sed -nE 's/^  engine: +([0-9.]+) M records\/s.*/\1/p' <<<"$line" | awk '{printf "%.0f", $1 * 1e6}')"
  else
    java -cp "$cp" sluice.bench.KeyedFlink "$kind" --records "$records" --parallelism "$parallelism" \
      --runs "$flink_runs" "${args[@]}" > "$tmp/out" 2> "$tmp/err" ||
      { echo "keyed_flink.sh: Flink $w failed:" >&2; cat "$tmp/err" "$tmp/out" >&2; exit 1; }
    line="$(grep -E '^flink ' "$tmp/out")"
    rate="$(sed -nE 's/.* ([0-9]+) records\/s.*/\1/p' <<<"$line")"
  fi
  res="$(result "$line")"
  [[ -n "$rate" && -n "$res" ]] || { echo "keyed_flink.sh: no result in $engine's output:" >&2; cat "$tmp/out" >&2; exit 1; }
  if [[ -f "$tmp/result.$w" ]]; then
    [[ "$(cat "$tmp/result.$w")" == "$res" ]] ||
      { echo "keyed_flink.sh: $engine $w gave '$res', earlier runs '$(cat "$tmp/result.$w")'" >&2; exit 1; }
  else
    echo "$res" > "$tmp/result.$w"
  fi
  echo "$rate" >> "$tmp/$engine.$w"
  printf "| %5s | %-9s | %-6s | %-14s | %12s | %-28s |\n" "$round" "$w" "$engine" "$load" "$rate" "$res"
}

echo "# W2/W4, Sluice vs Flink: $records records, parallelism $parallelism, $runs rounds, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
echo
echo "| round | workload  | engine | load before    |    records/s | result (count/windows, sum)  |"
echo "|-------|-----------|--------|----------------|--------------|------------------------------|"
for round in $(seq 1 "$runs"); do
  for w in $workloads; do
    if (( round % 2 )); then measure sluice "$w"; measure flink "$w"
    else measure flink "$w"; measure sluice "$w"; fi
  done
done

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "| workload  | Sluice median rec/s | Flink median rec/s | Sluice / Flink | result |"
echo "|-----------|---------------------|--------------------|----------------|--------|"
for w in $workloads; do
  s="$(median "$tmp/sluice.$w")" f="$(median "$tmp/flink.$w")"
  awk -v w="$w" -v s="$s" -v f="$f" -v r="$(cat "$tmp/result.$w")" \
    'BEGIN { printf "| %-9s | %19.0f | %18.0f | %14.2f | %s |\n", w, s, f, s / f, r }'
done
