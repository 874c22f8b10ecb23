#!/usr/bin/env bash
# Many more random seeds for the crash and restore tests than CI runs (CI keeps a fixed small
# set to stay under 30 minutes). Needs a build (scripts/test.sh or cmake --build build).
#
#   scripts/soak.sh [N]    N more seeds for each test (default 50)
#
# checkpoint_test.multi_source: 2-4 sources killed and restored in-process at random;
# kafka_crash_test.kafka_kill9: the Kafka pipeline killed with SIGKILL through a real broker
# (started by CTest's kafka_broker fixture). A failure prints the seed, each attempt's crash
# point and its log. cluster_process_test.cluster_processes: a two-node windowed_wordcount
# with node 0 and node 1 killed with SIGKILL at random, for N seeds (10 kills each at most);
# then the same test's kills at each checkpoint step (snapshot, snapshotted, completed,
# commit) on 2 and 3 nodes, every node a victim, each step's 1st, 2nd, 3rd, 5th and 8th
# occurrence (CI: 2 nodes, the 2nd only).
# cluster_process_test.cluster_partitions: the real partition cases (network namespaces,
# root only; skipped elsewhere), N/5 rounds (at least 1).
# kafka_cluster_test.kafka_cluster: kafka_pipeline on 2 and 3 nodes against the mock cluster
# with 100k payments instead of 3000 (the mock keeps about 5 MiB per partition: no more).
# Also the install test's full subproject build (a second library build,
# too long for CI), install_test.subproject with SLUICE_SUBPROJECT_BUILD=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-50}"
if ! [[ "$n" =~ ^[0-9]+$ ]] || (( n < 1 || n > 100000 )); then
  echo "soak.sh: N must be a whole number from 1 to 100000, not '$n'" >&2
  exit 2
fi
cd "$root/build"
SLUICE_MULTI_SOURCE_SEEDS="$n" SLUICE_KAFKA_CRASH_SEEDS="$n" \
  ctest --output-on-failure --timeout 0 -R 'checkpoint_test\.multi_source|kafka_crash_test\.kafka_kill9'
for ((seed = 1; seed <= n; ++seed)); do
  SLUICE_CLUSTER_SEED="$seed" SLUICE_CLUSTER_KILLS=10 \
    ctest --output-on-failure --timeout 0 -R 'cluster_process_test\.cluster_processes'
done
for nodes in 2 3; do
  SLUICE_CLUSTER_STEP_NODES="$nodes" SLUICE_CLUSTER_STEP_KILLS=1,2,3,5,8 tests/cluster_process_test \
    --run_test=cluster_processes/a_node_killed_at_each_checkpoint_step_loses_and_duplicates_nothing
done
for ((round = 1; round <= (n + 4) / 5; ++round)); do
  tests/cluster_process_test --run_test=cluster_partitions
done
SLUICE_KAFKA_CLUSTER_PAYMENTS=100000 \
  ctest --output-on-failure --timeout 0 -R 'kafka_cluster_test\.kafka_cluster'
SLUICE_SUBPROJECT_BUILD=1 ctest --output-on-failure --timeout 0 -R 'install_test\.subproject'
