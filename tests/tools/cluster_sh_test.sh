#!/usr/bin/env bash
# scripts/cluster.sh's supervisor, with a fake node program instead of a sample (the real
# nodes need the multi-node runtime): restarts of a failing node, giving up on one that keeps
# failing (the others stopped, the node and its log named), the cluster file it writes or is
# given, SIGTERM stopping every node, and bad arguments.
#
#   cluster_sh_test.sh PATH/TO/cluster.sh
#
# Every run is bounded by SLUICE_CLUSTER_TIMEOUT and by `timeout`; nodes sleep at most 300 s.
set -euo pipefail

script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
expect_eq() { [[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"; }
expect_in() { [[ $2 == *"$3"* ]] || fail "$1: '$3' not in: $2"; }

# The fake node: counts its runs in $FAKE_STATE, records its arguments and the cluster file,
# then follows its plan, $FAKE_PLAN_<node>: one word per run (the last one repeats), a
# number to exit with, or "hang" to wait until it is killed (recording that it was).
fake="$tmp/fake-node"
cat >"$fake" <<'EOF'
#!/usr/bin/env bash
[[ $1 == --cluster && $3 == --node ]] || { echo "fake: bad arguments: $*" >&2; exit 99; }
cluster=$2 node=$4
shift 4
state=$FAKE_STATE
run=$(( $(cat "$state/runs-$node" 2>/dev/null || echo 0) + 1 ))
echo "$run" >"$state/runs-$node"
echo "$*" >"$state/args-$node"
cp "$cluster" "$state/cluster-$node"
echo "fake node $node: run $run" >&2
plan_var=FAKE_PLAN_$node
read -r -a plan <<<"${!plan_var:-0}"
step=${plan[$(( run <= ${#plan[@]} ? run - 1 : ${#plan[@]} - 1 ))]}
if [[ $step == hang ]]; then
  echo $$ >"$state/pid-$node"
  # The sleep holds no output pipe, so a node killed with SIGKILL keeps no reader waiting.
  sleep 300 </dev/null >/dev/null 2>&1 &
  sleeper=$!
  trap 'kill $sleeper; echo killed >"$state/killed-$node"; exit 143' TERM
  wait $sleeper
  exit 0
fi
exit "$step"
EOF
chmod +x "$fake"

# run NAME [VAR=VALUE ...] -- ARGS...: runs cluster.sh with the fake node, its own state and
# log directories; sets $status, $out, $err, $state and $logs.
run() {
  local name=$1
  shift
  local env=()
  while [[ $1 != -- ]]; do env+=("$1"); shift; done
  shift
  state="$tmp/$name/state" logs="$tmp/$name/logs"
  mkdir -p "$state"
  status=0
  env SLUICE_CLUSTER_PROGRAM="$fake" SLUICE_CLUSTER_LOG_DIR="$logs" SLUICE_RESTART_DELAY=0.1 \
    SLUICE_CLUSTER_TIMEOUT=60 FAKE_STATE="$state" "${env[@]}" \
    timeout 90 bash "$script" "$@" >"$tmp/$name/out" 2>"$tmp/$name/err" || status=$?
  out=$(cat "$tmp/$name/out")
  err=$(cat "$tmp/$name/err")
}

# A node failing twice, then succeeding: restarted twice, and the cluster ends with 0.
run restarts FAKE_PLAN_1="3 137 0" -- 3 some_sample --input in/ --flag "two words" --output "out-{node}.jsonl"
expect_eq "restarts: exit status" "$status" 0
expect_eq "restarts: runs of node 0" "$(cat "$state/runs-0")" 1
expect_eq "restarts: runs of node 1" "$(cat "$state/runs-1")" 3
expect_eq "restarts: runs of node 2" "$(cat "$state/runs-2")" 1
expect_eq "restarts: arguments passed on, {node} replaced" "$(cat "$state/args-1")" "--input in/ --flag two words --output out-1.jsonl"
expect_eq "restarts: node 2's arguments" "$(cat "$state/args-2")" "--input in/ --flag two words --output out-2.jsonl"
expect_in "restarts: stderr" "$err" "node 1 exited with status 3: restart 1 of 3"
expect_in "restarts: stderr" "$err" "node 1 exited with status 137: restart 2 of 3"
expect_in "restarts: stderr" "$err" "every node finished"
expect_eq "restarts: node 1's log keeps every run" "$(grep -c '^fake node 1: run' "$logs/node-1.log")" 3
expect_eq "restarts: node 0's log is its own" "$(grep -c 'fake node 1' "$logs/node-0.log" || true)" 0
# The cluster file: three loopback endpoints on distinct ports, the same for every node.
cluster=$(cat "$state/cluster-0")
expect_eq "restarts: nodes in the cluster file" "$(wc -l <<<"$cluster")" 3
expect_eq "restarts: distinct ports" "$(sed 's/.*://' <<<"$cluster" | sort -u | wc -l)" 3
[[ $(grep -cE '^127\.0\.0\.1:[0-9]+$' <<<"$cluster") == 3 ]] || fail "restarts: not loopback host:port lines: $cluster"
cmp -s "$state/cluster-0" "$state/cluster-2" || fail "restarts: nodes got different cluster files"
expect_in "restarts: the log directory is printed" "$err" "logs in $logs"

# A node failing every time: after SLUICE_MAX_RESTARTS restarts the cluster gives up, stops
# the other node (still running) and names the node and its log.
run gives_up SLUICE_MAX_RESTARTS=2 FAKE_PLAN_0=hang FAKE_PLAN_1=1 -- 2 some_sample
expect_eq "gives up: exit status" "$status" 1
expect_eq "gives up: runs of node 1 (1 + 2 restarts)" "$(cat "$state/runs-1")" 3
expect_in "gives up: names the node" "$err" "node 1 failed (exit status 1) after 2 restart(s)"
expect_in "gives up: names its log" "$err" "$logs/node-1.log"
[[ -f $state/killed-0 ]] || fail "gives up: the running node 0 was not stopped"
if [[ -f $state/pid-0 ]] && kill -0 "$(cat "$state/pid-0")" 2>/dev/null; then
  fail "gives up: node 0 still runs"
  kill "$(cat "$state/pid-0")" || true
fi

# With no restarts allowed, the first failure ends the cluster.
run no_restarts SLUICE_MAX_RESTARTS=0 FAKE_PLAN_0=5 -- 1 some_sample
expect_eq "no restarts: exit status" "$status" 1
expect_eq "no restarts: runs" "$(cat "$state/runs-0")" 1

# SLUICE_CLUSTER_FILE is used as given, and must list N nodes.
printf '# two nodes\n127.0.0.1:7101\n\n127.0.0.1:7102\n' >"$tmp/given"
run given_file SLUICE_CLUSTER_FILE="$tmp/given" -- 2 some_sample
expect_eq "given file: exit status" "$status" 0
cmp -s "$tmp/given" "$state/cluster-1" || fail "given file: node 1 got another cluster file"
run wrong_count SLUICE_CLUSTER_FILE="$tmp/given" -- 3 some_sample
expect_eq "wrong count: exit status" "$status" 2
expect_in "wrong count: names the file" "$err" "$tmp/given lists 2 node(s), not 3"
[[ ! -f $state/runs-0 ]] || fail "wrong count: a node was started"

# SIGTERM to the supervisor stops every node. Not under `timeout`, which would signal the
# nodes itself (its whole process group); SLUICE_CLUSTER_TIMEOUT bounds it instead.
mkdir -p "$tmp/term/state"
SLUICE_CLUSTER_PROGRAM="$fake" SLUICE_CLUSTER_LOG_DIR="$tmp/term/logs" SLUICE_CLUSTER_TIMEOUT=60 \
  FAKE_STATE="$tmp/term/state" FAKE_PLAN_0=hang FAKE_PLAN_1=hang \
  bash "$script" 2 some_sample 2>"$tmp/term/err" &
supervisor=$!
for _ in $(seq 300); do
  [[ -f $tmp/term/state/pid-0 && -f $tmp/term/state/pid-1 ]] && break
  sleep 0.1
done
[[ -f $tmp/term/state/pid-1 ]] || fail "term: the nodes did not start"
kill -TERM "$supervisor"
status=0
wait "$supervisor" || status=$?
expect_eq "term: exit status" "$status" 143
expect_in "term: says so" "$(cat "$tmp/term/err")" "SIGTERM: stopping every node"
for i in 0 1; do
  [[ -f $tmp/term/state/killed-$i ]] || fail "term: node $i was not stopped"
done

# A timeout stops a cluster that does not end.
run deadline SLUICE_CLUSTER_TIMEOUT=1 FAKE_PLAN_0=hang -- 1 some_sample
expect_eq "deadline: exit status" "$status" 1
expect_in "deadline: says why" "$err" "not done after 1s"
[[ -f $state/killed-0 ]] || fail "deadline: the node was not stopped"

# Bad arguments are refused before anything starts.
run bad_n -- 0 some_sample
expect_eq "N=0: exit status" "$status" 2
expect_in "N=0: message" "$err" "N must be a number of nodes from 1 to 64, got '0'"
run bad_n2 -- two some_sample
expect_eq "N=two: exit status" "$status" 2
run no_sample -- 2
expect_eq "no sample: exit status" "$status" 2
expect_in "no sample: usage" "$err" "usage: cluster.sh N SAMPLE"
status=0
err=$(SLUICE_BUILD_DIR="$tmp/nobuild" timeout 30 bash "$script" 2 windowed_wordcount 2>&1) || status=$?
expect_eq "missing sample binary: exit status" "$status" 2
expect_in "missing sample binary: names where it looked" "$err" "no sample 'windowed_wordcount' under $tmp/nobuild/samples"
run bad_restarts SLUICE_MAX_RESTARTS=-1 -- 1 some_sample
expect_eq "bad SLUICE_MAX_RESTARTS: exit status" "$status" 2
expect_in "bad SLUICE_MAX_RESTARTS: message" "$err" "SLUICE_MAX_RESTARTS must be 0..1000, got '-1'"

if (( failures > 0 )); then
  echo "cluster_sh_test: $failures failure(s)" >&2
  exit 1
fi
echo "cluster_sh_test: all passed"
