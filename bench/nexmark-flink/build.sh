#!/usr/bin/env bash
# Compiles this module's classes for the bench scripts without packaging a jar:
#   bench/nexmark-flink/build.sh OUT     # OUT/classes and OUT/cp.txt (the dependencies)
# then run with  java -cp "OUT/classes:$(cat OUT/cp.txt)" sluice.bench.NexmarkFlink ...
# Maven resolves Flink's jars on first use (Maven Central, or ~/.m2).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
mkdir -p "$out/classes"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:build-classpath \
  -Dmdep.outputFile="$out/cp.txt" >&2
javac --release 17 -cp "$(cat "$out/cp.txt")" -d "$out/classes" \
  $(find "$here/src/main/java" -name '*.java' | sort)
