#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback, for
# tests that the librdkafka mock cluster cannot serve (transactions, read_committed, retention).
#
#   scripts/kafka-broker.sh start DIR      # prints host:port; writes DIR/bootstrap and DIR/pid
#   scripts/kafka-broker.sh bootstrap DIR  # prints host:port of the broker running in DIR
#   scripts/kafka-broker.sh stop DIR       # stops it and deletes its data (keeps DIR/broker.log)
#
# The broker and its jars come from Maven Central through scripts/kafka-broker/pom.xml (there is
# no Kafka tarball to fetch here) and are cached in ${XDG_CACHE_HOME:-~/.cache}/sluice, so only
# the first start on a machine touches the network. The broker logs to DIR/broker.log only.
#
# Environment: SLUICE_KAFKA_VERSION (default 4.1.1), SLUICE_KAFKA_START_TIMEOUT (seconds the
# broker has to answer, default 120), SLUICE_KAFKA_STOP_TIMEOUT (seconds between TERM and KILL,
# default 20), SLUICE_KAFKA_JAVA_OPTS (heap, GC and JIT flags; see set_jvm),
# SLUICE_KAFKA_BROKER_CONFIG (more server.properties settings, "key=value" separated by spaces,
# appended after ours; e.g. bench/kafka_bench.sh's). Needs java (17+), kcat, and mvn for the
# first start.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${SLUICE_KAFKA_VERSION:-4.1.1}"
start_timeout="${SLUICE_KAFKA_START_TIMEOUT:-120}"
stop_timeout="${SLUICE_KAFKA_STOP_TIMEOUT:-20}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sluice/kafka-$version"

say() { echo "kafka-broker: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  echo "usage: $0 start|stop|bootstrap DIR" >&2
  exit 2
}

need() { command -v "$1" > /dev/null || die "$1 not found ($2)"; }

# The pid in DIR/pid, if that process is still our broker. A stale pid file (a reboot, a KILL
# from outside) must not make us signal an unrelated process that reused the pid, and a zombie
# (empty cmdline; a container's init may never reap it) counts as gone.
running_pid() {
  local dir="$1" pid
  [[ -f "$dir/pid" ]] || return 1
  pid="$(< "$dir/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$dir/server.properties" || return 1
  echo "$pid"
}

# Fetches the broker's jars once per version. The lock lets parallel first starts share one
# download; the .complete marker means a half-copied directory is never used.
ensure_libs() {
  local log="$1"
  mkdir -p "$cache"
  exec 9> "$cache/.lock"
  flock 9
  if [[ ! -f "$cache/libs/.complete" ]]; then
    need mvn "install maven, or run scripts/test.sh which does"
    say "fetching Apache Kafka $version from Maven Central (once; cached in $cache)"
    rm -rf "$cache/libs" "$cache/libs.tmp"
    if ! mvn -B -q -f "$here/kafka-broker/pom.xml" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$cache/libs.tmp" > "$log" 2>&1; then
      tail -n 30 "$log" >&2
      die "could not fetch Kafka $version (full maven log: $log)"
    fi
    touch "$cache/libs.tmp/.complete"
    mv "$cache/libs.tmp" "$cache/libs"
  fi
  flock -u 9
  exec 9>&-
}

# A port nothing listens on, chosen below the kernel's ephemeral range (32768+) so an outgoing
# connection cannot take it between this probe and the broker's bind. A rare race with another
# listener remains; start() retries on "Address already in use".
free_port() {
  local port tries
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

write_config() {
  local dir="$1" port="$2" cport="$3"
  cat > "$dir/server.properties" << EOF
# Written by scripts/kafka-broker.sh: one node that is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# One node: internal topics cannot have more replicas than brokers.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions: the first group join and first transaction come up faster.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
# Tests join groups and expect their assignment at once, not after the default 3 s.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.partitions=1
EOF
  local setting
  for setting in ${SLUICE_KAFKA_BROKER_CONFIG:-}; do
    [[ "$setting" == *=* ]] || die "SLUICE_KAFKA_BROKER_CONFIG: '$setting' is not key=value"
    echo "$setting" >> "$dir/server.properties"
  done
  cat > "$dir/log4j2.properties" << EOF
# The broker logs to broker.log only: test output stays readable.
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# Kafka's Uuid: 16 random bytes in URL-safe base64 without padding (22 characters); made here
# because "kafka-storage.sh random-uuid" would cost a JVM start.
# One starting with '-' would be read as an option by the storage tool: draw again.
cluster_id() {
  local id
  while id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; [[ "$id" == -* ]]; do
    :
  done
  printf '%s' "$id"
}

# The JVM command line, in the array jvm. C1 only (TieredStopAtLevel=1) starts the broker in
# about two thirds of the time on two cores, at a cost in peak throughput that tests do not
# feel; SLUICE_KAFKA_JAVA_OPTS replaces these flags (a benchmark would want full JIT). Heap is
# small because tests move little data.
set_jvm() {
  local dir="$1" opts
  read -r -a opts <<< "${SLUICE_KAFKA_JAVA_OPTS:--Xms128m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1}"
  jvm=(java "${opts[@]}" -Djava.awt.headless=true "-XX:ErrorFile=$dir/hs_err_pid%p.log"
    "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$cache/libs/*")
}

# True once the broker answers metadata requests and lists itself, i.e. it is unfenced and
# ready for produce requests and topic auto-creation. The plain TCP probe first: kcat against a
# closed port backs off and would notice the broker late.
answers() {
  local bootstrap="$1"
  (exec 3<> "/dev/tcp/${bootstrap%:*}/${bootstrap##*:}") 2> /dev/null || return 1
  kcat -L -b "$bootstrap" -m 5 2> /dev/null | grep -q "broker 1 at"
}

start() {
  local dir="$1" pid
  if pid="$(running_pid "$dir")"; then
    if [[ -f "$dir/bootstrap" ]] && answers "$(< "$dir/bootstrap")"; then
      say "already running (pid $pid)"
      cat "$dir/bootstrap"
      return 0
    fi
    say "pid $pid does not answer; restarting"
    stop "$dir"
  fi
  need java "install openjdk-17-jre-headless"
  need kcat "install kcat"
  mkdir -p "$dir"
  rm -rf "$dir/data" "$dir/pid" "$dir/bootstrap"
  ensure_libs "$dir/mvn.log"
  local jvm
  set_jvm "$dir"

  local attempt port cport deadline
  for attempt in 1 2 3; do
    port="$(free_port)"
    cport="$(free_port)"
    [[ "$port" != "$cport" ]] || continue
    write_config "$dir" "$port" "$cport"
    : > "$dir/broker.log"
    if ! "${jvm[@]}" kafka.tools.StorageTool format --ignore-formatted \
        -t "$(cluster_id)" -c "$dir/server.properties" >> "$dir/broker.log" 2>&1; then
      tail -n 30 "$dir/broker.log" >&2
      die "formatting KRaft storage in $dir/data failed"
    fi
    # setsid: the broker outlives this script and is not hit by signals sent to the caller's
    # process group (a CTest timeout). Its output goes to files, so CTest does not wait on it.
    # shellcheck disable=SC2016 # $$ is the inner shell's pid, which exec hands to java
    setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$dir/pid" \
      "${jvm[@]}" kafka.Kafka "$dir/server.properties" \
      >> "$dir/broker.log" 2>&1 < /dev/null &
    deadline=$((SECONDS + start_timeout))
    while [[ ! -s "$dir/pid" ]] && ((SECONDS < deadline)); do sleep 0.05; done
    while ((SECONDS < deadline)); do
      if answers "127.0.0.1:$port"; then
        echo "127.0.0.1:$port" > "$dir/bootstrap"
        say "up at 127.0.0.1:$port (pid $(< "$dir/pid"), log $dir/broker.log)"
        echo "127.0.0.1:$port"
        return 0
      fi
      running_pid "$dir" > /dev/null || break
      sleep 0.1
    done
    if running_pid "$dir" > /dev/null; then
      tail -n 40 "$dir/broker.log" >&2
      stop "$dir"
      die "broker did not answer on 127.0.0.1:$port within ${start_timeout}s (log: $dir/broker.log)"
    fi
    rm -f "$dir/pid"
    if grep -q "Address already in use" "$dir/broker.log"; then
      say "port taken while starting (attempt $attempt); trying other ports"
      rm -rf "$dir/data"
      continue
    fi
    tail -n 40 "$dir/broker.log" >&2
    die "broker exited while starting (log: $dir/broker.log)"
  done
  die "could not start the broker on a free port after 3 attempts"
}

stop() {
  local dir="$1" pid ticks
  if pid="$(running_pid "$dir")"; then
    kill -TERM "$pid" 2> /dev/null || true
    for ((ticks = stop_timeout * 10; ticks > 0; ticks--)); do
      running_pid "$dir" > /dev/null || break
      sleep 0.1
    done
    if running_pid "$dir" > /dev/null; then
      say "pid $pid ignored TERM for ${stop_timeout}s; killing it"
      kill -KILL "$pid" 2> /dev/null || true
      for ((ticks = 100; ticks > 0; ticks--)); do
        running_pid "$dir" > /dev/null || break
        sleep 0.1
      done
      running_pid "$dir" > /dev/null && die "pid $pid survived KILL"
    fi
    say "stopped (pid $pid)"
  fi
  rm -rf "$dir/data" "$dir/pid" "$dir/bootstrap"
}

bootstrap() {
  local dir="$1"
  if ! running_pid "$dir" > /dev/null || [[ ! -f "$dir/bootstrap" ]]; then
    die "no broker running in $dir"
  fi
  cat "$dir/bootstrap"
}

(($# == 2)) || usage
dir="$2"
[[ "$dir" == /* ]] || dir="$PWD/$dir"
case "$1" in
  start) start "$dir" ;;
  stop) stop "$dir" ;;
  bootstrap) bootstrap "$dir" ;;
  *) usage ;;
esac
