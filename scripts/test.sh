#!/usr/bin/env bash
# All tests: installs, builds, and runs every CTest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Kafka tests run a real broker (scripts/kafka-broker.sh): Java, Maven to fetch it once,
# and kcat to probe it and to produce and consume from the test scripts. The monitor's tests
# load the status page in headless Chromium and check /metrics with promtool (prometheus).
SLUICE_EXTRA_PACKAGES="kcat openjdk-17-jre-headless maven chromium prometheus" "$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j 2 "$@"
