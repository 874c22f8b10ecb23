#!/usr/bin/env bash
# The engine, checkpoint and event-time tests under AddressSanitizer + UndefinedBehavior-
# Sanitizer (build-asan/) and under ThreadSanitizer (build-tsan/). A developer's tool: a full
# run takes far longer than the CI budget, so .ci/run does not call it (docs/sanitizers.md).
#
#   scripts/sanitize.sh [asan|tsan|all] [--keep-going] [--tests "engine_test state_test"]
#
# Exits non-zero on any sanitizer report or failed test. Each test binary's output, reports
# included, goes to build-<kind>/sanitizer-logs/<test>.log; the end of a failed one is
# printed. --keep-going lets TSan and ASan go on after a report, to count them (UBSan still
# stops: the code is built with -fno-sanitize-recover); the exit status is still non-zero.
# SLUICE_SANITIZE_TIMEOUT bounds each test binary's run (seconds, default 1800).
# SLUICE_JOBS sets the build's parallelism (default 2); the build runs under nice.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

kinds=all
keep_going=0
tests=(engine_test checkpoint_test watermark_test window_test state_test join_test
       microbatch_test channels_test coordinator_test task_test)
while (($#)); do
  case "$1" in
    asan|tsan|all) kinds="$1" ;;
    --keep-going) keep_going=1 ;;
    --tests) shift; read -r -a tests <<< "${1:?--tests needs a list}" ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sanitize.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $kinds == all ]] && kinds="asan tsan"

jobs="${SLUICE_JOBS:-2}"
# Per-binary bound, so a deadlock under a sanitizer fails the run instead of hanging it.
test_timeout="${SLUICE_SANITIZE_TIMEOUT:-1800}"
halt=$((1 - keep_going))
status=0

build() { # kind flags
  local dir="$root/build-$1" flags="$2"
  # -O1 -g keeps stacks readable at tolerable speed; no NDEBUG, so assertions run too.
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
    -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" > /dev/null
  nice cmake --build "$dir" -j "$jobs" --target "${tests[@]}"
}

# What a sanitizer report starts with, to count them in a test's output.
reports_pattern='^WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:'

run_tests() { # kind
  local dir="$root/build-$1" logs="$root/build-$1/sanitizer-logs" t rc reports
  rm -rf "$logs"
  mkdir -p "$logs"
  for t in "${tests[@]}"; do
    local start=$SECONDS
    set +e
    (cd "$dir/tests" && run_one "$1" "./$t") > "$logs/$t.log" 2>&1
    rc=$?
    set -e
    reports=$(grep -cE "$reports_pattern" "$logs/$t.log" || true)
    echo "sanitize.sh: $1 $t: exit $rc, $reports report(s), $((SECONDS - start)) s"
    if ((rc != 0 || reports != 0)); then
      status=1
      echo "sanitize.sh: $1 $t failed; its output ($logs/$t.log) ends:"
      tail -n 60 "$logs/$t.log"
    fi
  done
}

# Reports go to stderr, into the test's log: UBSan ignores log_path when linked with ASan.
run_one() { # kind binary
  case "$1" in
    asan)
      ASAN_OPTIONS="halt_on_error=$halt:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1" \
      LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0" \
      UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        timeout "$test_timeout" "$2" --catch_system_errors=no ;;
    tsan)
      TSAN_OPTIONS="halt_on_error=$halt:exitcode=66:second_deadlock_stack=1:suppressions=$root/scripts/tsan.supp:print_suppressions=0" \
        timeout "$test_timeout" "$2" --catch_system_errors=no ;;
  esac
}

for kind in $kinds; do
  case "$kind" in
    asan) build asan "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" ;;
    tsan) build tsan "-fsanitize=thread" ;;
  esac
  run_tests "$kind"
done
if ((status)); then
  echo "sanitize.sh: FAILED (see the reports above)"
else
  echo "sanitize.sh: clean ($kinds)"
fi
exit "$status"
