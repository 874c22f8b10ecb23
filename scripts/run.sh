#!/usr/bin/env bash
# The main job: installs, builds, and runs the flagship sample on its built-in generator.
# Extra arguments go to the sample (try --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --target fraud_detection
exec "$root/build/samples/fraud_detection/fraud_detection" "$@"
