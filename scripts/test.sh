#!/usr/bin/env bash
# All tests: installs, builds, and runs every CTest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Kafka tests run a real broker (scripts/kafka-broker.sh): Java, Maven to fetch it once,
# and kcat to probe it and to produce and consume from the test scripts.
SLUICE_EXTRA_PACKAGES="kcat openjdk-17-jre-headless maven" "$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j 2 "$@"
