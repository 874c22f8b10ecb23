#!/usr/bin/env bash
# Runs a sample as one job on N local node processes and supervises them (issue 24,
# docs/cluster.md), as systemd or a Kubernetes StatefulSet would in production.
#
#   scripts/cluster.sh N SAMPLE [ARGS...]
#   scripts/cluster.sh 2 windowed_wordcount --input in/ --output-dir out/ --checkpoint-dir cp/
#
# Node i runs `SAMPLE --cluster FILE --node i ARGS...`, with `{node}` in ARGS replaced by i
# (`--output out-{node}.jsonl`: processes on one machine must not share an output file).
# FILE lists N loopback endpoints on
# free ports (written to the log directory), or is $SLUICE_CLUSTER_FILE when set (it must
# list N nodes). Each node's stderr goes to node-i.log in the log directory, which is printed
# at start; stdout is this script's. A node that exits 0 is done; one that exits otherwise
# (or is killed) is started again after a short delay, at most $SLUICE_MAX_RESTARTS times.
# The script exits 0 when every node has exited 0, and 1 when a node failed once more after
# its last restart: it then stops the others and names the node and its log. Ctrl-C or
# SIGTERM stops every node (SIGTERM, then SIGKILL after a grace period).
#
# Environment:
#   SLUICE_BUILD_DIR        build directory holding samples/ (default: build, in the repository)
#   SLUICE_CLUSTER_FILE     an existing cluster file instead of a new one on loopback
#   SLUICE_CLUSTER_LOG_DIR  directory for node-i.log (default: a new one under $TMPDIR)
#   SLUICE_MAX_RESTARTS     restarts per node (default 3)
#   SLUICE_RESTART_DELAY    seconds before a restart (default 1)
#   SLUICE_CLUSTER_TIMEOUT  stop everything and fail after this many seconds (default 0: never)
#   SLUICE_CLUSTER_PROGRAM  run this program instead of the sample's binary (tests)
set -euo pipefail

me=cluster.sh
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  echo "usage: $me N SAMPLE [ARGS...]   (N: 1..64 node processes on this machine)" >&2
  exit 2
}
die() {
  echo "$me: $*" >&2
  exit 2
}
is_count() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 >= $2 && 10#$1 <= $3 )); }
is_seconds() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

[[ $# -ge 2 ]] || usage
is_count "$1" 1 64 || die "N must be a number of nodes from 1 to 64, got '$1'"
nodes=$((10#$1))
sample=$2
shift 2
args=("$@")

max_restarts=${SLUICE_MAX_RESTARTS:-3}
is_count "$max_restarts" 0 1000 || die "SLUICE_MAX_RESTARTS must be 0..1000, got '$max_restarts'"
max_restarts=$((10#$max_restarts))
delay=${SLUICE_RESTART_DELAY:-1}
is_seconds "$delay" || die "SLUICE_RESTART_DELAY must be seconds (e.g. 1 or 0.5), got '$delay'"
timeout=${SLUICE_CLUSTER_TIMEOUT:-0}
is_seconds "$timeout" || die "SLUICE_CLUSTER_TIMEOUT must be seconds, got '$timeout'"

# The program: the sample's binary, at build/samples/NAME or build/samples/NAME/NAME.
if [[ -n ${SLUICE_CLUSTER_PROGRAM:-} ]]; then
  program=$SLUICE_CLUSTER_PROGRAM
  [[ -x $program ]] || die "SLUICE_CLUSTER_PROGRAM $program is not an executable file"
else
  [[ $sample =~ ^[A-Za-z0-9_]+$ ]] || die "SAMPLE must be a sample's name (e.g. windowed_wordcount), got '$sample'"
  build=${SLUICE_BUILD_DIR:-build}
  [[ $build == /* ]] || build="$root/$build"
  program=""
  for candidate in "$build/samples/$sample" "$build/samples/$sample/$sample"; do
    if [[ -f $candidate && -x $candidate ]]; then
      program=$candidate
      break
    fi
  done
  [[ -n $program ]] ||
    die "no sample '$sample' under $build/samples (build it: cmake --build $build --target $sample)"
fi

if [[ -n ${SLUICE_CLUSTER_LOG_DIR:-} ]]; then
  logs=$SLUICE_CLUSTER_LOG_DIR
  mkdir -p "$logs"
else
  logs=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cluster.XXXXXX")
fi

# N free loopback ports, held open together so they differ, then released for the nodes.
free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
    return
  fi
  # Without Python: ports nobody listens on (ss), from a random start.
  local taken port count=0 out=() tries=0
  taken=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  port=$((20000 + RANDOM % 30000))
  while (( count < $1 && tries < 1000 )); do
    tries=$((tries + 1))
    port=$((port + 1))
    if ! grep -qx "$port" <<<"$taken"; then
      out+=("$port")
      count=$((count + 1))
    fi
  done
  (( count == $1 )) || return 1
  echo "${out[*]}"
}

if [[ -n ${SLUICE_CLUSTER_FILE:-} ]]; then
  cluster_file=$SLUICE_CLUSTER_FILE
  [[ -f $cluster_file ]] || die "SLUICE_CLUSTER_FILE $cluster_file is not a file"
  listed=$(grep -cvE '^[[:space:]]*(#|$)' "$cluster_file" || true)
  [[ $listed -eq $nodes ]] ||
    die "SLUICE_CLUSTER_FILE $cluster_file lists $listed node(s), not $nodes"
else
  cluster_file="$logs/cluster"
  ports=$(free_ports "$nodes") || die "could not find $nodes free loopback ports"
  : >"$cluster_file"
  for p in $ports; do
    echo "127.0.0.1:$p" >>"$cluster_file"
  done
fi

echo "$me: $nodes node(s) of $program, cluster file $cluster_file, logs in $logs" >&2

declare -a pid=() runs=() state=() timer=()
# state: running, waiting (for its restart), done (exited 0)

start_node() {
  local i=$1
  runs[i]=$((${runs[i]:-0} + 1))
  echo "== $(date -u +%FT%TZ) start ${runs[i]} of node $i: $program --cluster $cluster_file --node $i ${args[*]//\{node\}/$i}" \
    >>"$logs/node-$i.log"
  "$program" --cluster "$cluster_file" --node "$i" "${args[@]//\{node\}/$i}" 2>>"$logs/node-$i.log" &
  pid[i]=$!
  state[i]=running
}

stop_all() {
  local i left
  for i in "${!pid[@]}"; do
    [[ ${state[i]} == running ]] && kill -TERM "${pid[i]}" 2>/dev/null || true
    [[ -n ${timer[i]:-} ]] && kill "${timer[i]}" 2>/dev/null || true
  done
  [[ -n ${deadline_pid:-} ]] && kill "$deadline_pid" 2>/dev/null || true
  # A grace period of at most 5 s, then SIGKILL.
  for _ in $(seq 50); do
    left=0
    for i in "${!pid[@]}"; do
      [[ ${state[i]} == running ]] && kill -0 "${pid[i]}" 2>/dev/null && left=1
    done
    (( left )) || break
    sleep 0.1
  done
  for i in "${!pid[@]}"; do
    [[ ${state[i]} == running ]] && kill -KILL "${pid[i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

on_signal() {
  trap - INT TERM
  echo "$me: SIG$1: stopping every node (logs in $logs)" >&2
  stop_all
  if [[ $1 == INT ]]; then exit 130; else exit 143; fi
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
# Whatever ends the script (an error included) leaves no node behind.
trap 'stop_all' EXIT

deadline_pid=""
if [[ $timeout != 0 ]]; then
  sleep "$timeout" &
  deadline_pid=$!
fi

for ((i = 0; i < nodes; i++)); do
  start_node "$i"
done

done_count=0
while (( done_count < nodes )); do
  finished=""
  status=0
  wait -n -p finished || status=$?
  # A signal interrupted the wait (its trap exits), or nothing was left to wait for.
  [[ -n $finished ]] || continue
  if [[ $finished == "$deadline_pid" ]]; then
    echo "$me: not done after ${timeout}s (SLUICE_CLUSTER_TIMEOUT): stopping every node (logs in $logs)" >&2
    deadline_pid=""
    stop_all
    exit 1
  fi
  for ((i = 0; i < nodes; i++)); do
    if [[ ${state[i]} == waiting && ${timer[i]:-} == "$finished" ]]; then
      timer[i]=""
      start_node "$i"
      break
    fi
    [[ ${state[i]} == running && ${pid[i]} == "$finished" ]] || continue
    if (( status == 0 )); then
      state[i]=done
      done_count=$((done_count + 1))
      echo "$me: node $i finished" >&2
    elif (( runs[i] > max_restarts )); then
      state[i]=failed
      echo "$me: node $i failed (exit status $status) after $max_restarts restart(s): stopping the others; its log: $logs/node-$i.log" >&2
      stop_all
      exit 1
    else
      state[i]=waiting
      echo "$me: node $i exited with status $status: restart $((runs[i])) of $max_restarts in ${delay}s (log: $logs/node-$i.log)" >&2
      sleep "$delay" &
      timer[i]=$!
    fi
    break
  done
done
[[ -n $deadline_pid ]] && kill "$deadline_pid" 2>/dev/null || true
echo "$me: every node finished" >&2
exit 0
