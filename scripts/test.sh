#!/usr/bin/env bash
# All tests: installs, builds, and runs every CTest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j 2 "$@"
