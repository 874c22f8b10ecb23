#!/usr/bin/env bash
# Runs the engine-core workloads with two builds of sluice_bench, alternating A B B A B A per
# workload, and prints each run's engine/loop ratio (the same-run baseline) and the load.
# Usage: bench/compare_commits.sh BASE_BENCH NEW_BENCH
#   e.g. git worktree add --detach /tmp/base 9b503fe
#        cmake -S /tmp/base -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
#        cmake --build /tmp/base/build -j2 --target sluice_bench
#        bench/compare_commits.sh /tmp/base/build/bench/sluice_bench build/bench/sluice_bench
# WORKLOADS (one per line) replaces the default list, e.g.
#   WORKLOADS=$'w4 --runs 5 --window 10ms\nsession --runs 5 --gap 2ms' bench/compare_commits.sh A B
set -euo pipefail
base=${1:?base sluice_bench}
new=${2:?new sluice_bench}
workloads=("w1 --runs 5" "w2 --runs 5" "w4 --runs 5 --parallelism 1" "w4 --runs 5 --parallelism 2")
if [[ -n ${WORKLOADS:-} ]]; then
  mapfile -t workloads <<<"$WORKLOADS"
fi
printf '%-32s %-5s %10s %10s %6s %5s\n' workload side engine loop ratio load
for w in "${workloads[@]}"; do
  for side in base new new base base new; do
    bin=$base
    [[ $side == new ]] && bin=$new
    # shellcheck disable=SC2086 # the workload is several words on purpose
    out=$("$bin" $w 2>&1)
    engine=$(awk '/engine:/ {print $2}' <<<"$out")
    loop=$(awk '/^ *loop:/ {print $2}' <<<"$out")
    ratio=$(awk '/ratio engine\/loop/ {print $NF}' <<<"$out")
    printf '%-32s %-5s %10s %10s %6s %5s\n' "$w" "$side" "$engine" "$loop" "$ratio" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
