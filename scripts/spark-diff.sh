#!/usr/bin/env bash
# The randomized differential test against real Spark, with new seeds: writes N random cases
# per kind (session windows, dropDuplicatesWithinWatermark + tumbling count), runs them through
# pyspark (tests/golden/spark/generate.py --random) and then through Sluice
# (spark_golden_test's cases_from_env suite), and prints every difference.
#
#   scripts/spark-diff.sh N [FIRST_SEED] [BUILD_DIR]
#
# Seeds FIRST_SEED .. FIRST_SEED+N-1 (default: 1000 + a random start, printed, so a failing run
# can be repeated); BUILD_DIR defaults to build. The cases stay in a temp dir (printed) to
# inspect, or to copy into tests/golden/spark/cases when a seed is worth keeping. Needs the
# pyspark venv of tests/golden/spark/README.md and a built spark_golden_test. Exits non-zero
# when Sluice differs from Spark on any case.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:?usage: scripts/spark-diff.sh N [FIRST_SEED] [BUILD_DIR]}"
first="${2:-$((1000 + RANDOM))}"
build="${3:-$here/build}"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "spark-diff.sh: N must be a positive count, got '$n'" >&2; exit 2; }
[[ "$first" =~ ^[0-9]+$ ]] || { echo "spark-diff.sh: FIRST_SEED must be a number, got '$first'" >&2; exit 2; }
test_bin="$build/tests/spark_golden_test"
[[ -x "$test_bin" ]] || { echo "spark-diff.sh: $test_bin not built (cmake --build $build --target spark_golden_test)" >&2; exit 2; }

cases="$(mktemp -d /tmp/sluice-spark-diff.XXXXXX)"
args=()
for ((s = first; s < first + n; ++s)); do
  args+=(--random session "$s" --random dedup_window "$s")
done
echo "seeds $first..$((first + n - 1)), cases in $cases"
if ! python3 "$here/tests/golden/spark/generate.py" --cases-dir "$cases" "${args[@]}" >"$cases/spark.log" 2>&1; then
  tail -20 "$cases/spark.log" >&2
  echo "spark-diff.sh: Spark failed (log: $cases/spark.log)" >&2
  exit 2
fi
SLUICE_GOLDEN_CASES="$cases" "$test_bin" --run_test=cases_from_env
