#!/usr/bin/env bash
# Builds a job outside the source tree the two ways a user would (issue 27).
#   install_test.sh installed  SOURCE_DIR BUILD_DIR WORK_DIR
#     `cmake --install` of BUILD_DIR (already built) into WORK_DIR/prefix; checks the
#     installed headers (no CAF, no include without the sluice/ prefix, each compiles
#     against the package alone) and a Kafka job links with COMPONENTS kafka (Sluice::kafka);
#     builds examples/starter with find_package(Sluice) and -DCMAKE_PREFIX_PATH, checks its
#     link line has no librdkafka; runs it on its data and compares with starter_expected.txt;
#     runs it on bad input and checks the error names the file, line and field.
#   install_test.sh subproject SOURCE_DIR BUILD_DIR WORK_DIR
#     configures tests/install/subproject (add_subdirectory of the source tree, which fails
#     if a test/sample/bench target or dependency leaked); with SLUICE_SUBPROJECT_BUILD=1
#     (scripts/soak.sh sets it) also builds the whole library there and runs the starter:
#     a second full library build is too long for CI's 30 minutes on a cold cache, and the
#     installed mode already builds and runs the starter.
# Builds run under `nice` with -j2 and ccache when there is one; WORK_DIR is kept between
# runs at the same path so that ccache hits.
set -euo pipefail
mode="$1" src="$2" build="$3" work="$4"
here="$src/tests/install"
jobs="${SLUICE_INSTALL_TEST_JOBS:-2}"
launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi

fail() { echo "install_test: FAILED: $*" >&2; exit 1; }

# run_starter BIN: the starter on its data equals the expected output, and on bad input it
# fails with exit code 1 and an error naming the file, the line and the field.
run_starter() {
  local bin="$1"
  "$bin" "$src/examples/starter/data" > "$work/starter.out"
  diff -u "$here/starter_expected.txt" "$work/starter.out" || fail "starter output differs (above)"
  local rc=0
  "$bin" "$here/bad_input" > /dev/null 2> "$work/starter.err" || rc=$?
  [[ $rc -eq 1 ]] || fail "starter on bad input exited $rc, expected 1"
  grep -q "malformed_record: .*views.jsonl:2: field 'time'" "$work/starter.err" ||
    fail "starter's error does not name file, line and field: $(cat "$work/starter.err")"
  echo "install_test: starter output matches; bad input: $(cat "$work/starter.err")"
}

case "$mode" in
installed)
  prefix="$work/prefix"
  rm -rf "$prefix" "$work/starter-build" "$work/consumer-build"
  mkdir -p "$work"
  cmake --install "$build" --prefix "$prefix" > "$work/install.log" ||
    { cat "$work/install.log"; fail "cmake --install (is the build tree built?)"; }
  [[ -f "$prefix/lib/cmake/Sluice/SluiceConfig.cmake" || -f "$prefix/lib64/cmake/Sluice/SluiceConfig.cmake" ]] ||
    fail "no SluiceConfig.cmake under $prefix/lib*/cmake/Sluice"
  if grep -rlE '#include <caf/' "$prefix/include"; then fail "installed headers above include CAF"; fi
  folders="$(cd "$src" && ls -d */ | tr -d / | paste -sd'|')"
  if grep -rnE "#include [\"<]($folders)/" "$prefix/include"; then
    fail "installed headers above include project headers without the sluice/ prefix"
  fi

  cmake -S "$here/consumer" -B "$work/consumer-build" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" > "$work/consumer-configure.log" ||
    { cat "$work/consumer-configure.log"; fail "configuring the installed-headers project"; }
  nice -n 10 cmake --build "$work/consumer-build" -j "$jobs" ||
    fail "the installed headers do not compile against the installed package"

  cmake -S "$src/examples/starter" -B "$work/starter-build" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix" > "$work/starter-configure.log" ||
    { cat "$work/starter-configure.log"; fail "configuring examples/starter against $prefix"; }
  nice -n 10 cmake --build "$work/starter-build" -j "$jobs" || fail "building examples/starter"
  # Sluice::sluice alone links no librdkafka (Kafka is the `kafka` component, Sluice::kafka).
  if grep -rlE 'rdkafka' "$work/starter-build" --include=build.ninja --include=link.txt; then
    fail "the starter (Sluice::sluice only) links librdkafka (in the build files above)"
  fi
  run_starter "$work/starter-build/starter"
  ;;
subproject)
  rm -rf "$work/subproject-build/CMakeCache.txt"
  mkdir -p "$work"
  # No build type: the parent's choice, which Sluice must leave alone (and -O0 builds fast).
  cmake -S "$here/subproject" -B "$work/subproject-build" "${generator[@]}" "${launcher[@]}" \
    -DSLUICE_SOURCE_DIR="$src" > "$work/subproject-configure.log" 2>&1 ||
    { cat "$work/subproject-configure.log"; fail "configuring Sluice as a subproject"; }
  if [[ "${SLUICE_SUBPROJECT_BUILD:-0}" != 1 ]]; then
    echo "install_test: subproject: configured (set SLUICE_SUBPROJECT_BUILD=1 to build it too)"
  else
    nice -n 10 cmake --build "$work/subproject-build" -j "$jobs" || fail "building Sluice as a subproject"
    run_starter "$work/subproject-build/starter"
  fi
  ;;
*)
  fail "unknown mode '$mode' (installed or subproject)"
  ;;
esac
echo "install_test: $mode: passed"
