#!/usr/bin/env bash
# Where the CPU of W2 on two node processes goes (issue 24): `perf record` (cpu-clock, every
# thread of both processes) over `cluster_bench w2 --nodes-only`, then each sample's symbol
# sorted into encode, send/receive (link, ZeroMQ, kernel TCP and poll), decode, the job's
# operators, and the rest (scheduling, wake-ups, allocation). Self time only: a symbol
# inlined into another counts there.
#
#   bench/cluster_profile.sh [RECORDS]     (default 20000000; needs perf)
#
# Prints the share of each category and the CPU nanoseconds per record it stands for, the
# share of each kind of thread (the link's I/O thread keeps the process's name: node 1 is
# "exe", started through /proc/self/exe), and the largest symbols left uncategorized.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLUICE_BUILD_DIR:-$root/build}"
cmake --build "$build" --target cluster_bench >/dev/null
records="${1:-20000000}"
if ! [[ "$records" =~ ^[0-9]+$ ]] || (( records < 1000 )); then
  echo "cluster_profile.sh: RECORDS must be a whole number of at least 1000, not '$records'" >&2
  exit 2
fi
command -v perf >/dev/null || { echo "cluster_profile.sh: needs perf" >&2; exit 2; }
bench="$build/bench/cluster_bench"
[[ -x "$bench" ]] || { echo "cluster_profile.sh: no $bench (build the cluster_bench target)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
freq=1999
perf record -q -F "$freq" -e cpu-clock -o "$tmp/perf.data" -- \
  "$bench" w2 --records "$records" --runs 1 --threads 1 --nodes-only
perf report -i "$tmp/perf.data" --sort comm,sym --stdio --no-children -F overhead,sample,comm,sym 2>/dev/null |
  grep -v '^#' | grep -v '^$' > "$tmp/report"
python3 - "$tmp/report" "$records" "$freq" <<'PY'
import re, sys
report, records, freq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cats = [
  ("encode", re.compile(r"binary_writer|binary_write|put_fixed|put_raw|put_varint|encode_batch|encode_data_frame|encode_frame")),
  ("decode", re.compile(r"binary_reader|binary_read|get_fixed|get_varint|decode_batch|decode_frame|decode_data")),
  ("send/receive", re.compile(r"net::link|zmq::|zmq_|tcp_|\[k\] (sock_|skb|__tcp|ip_|__ip|net_rx|process_backlog|__netif|__dev|loopback|do_sys_poll|__sys_|sys_recv|sys_send|ep_|do_epoll|_copy_to_iter|_copy_from_iter|__skb|__kfree_skb)|__poll|epoll_wait|__libc_recv|__libc_send|sendto|recvfrom")),
  ("operators", re.compile(r"aggregate_operator|hash_router|generator_source|sink_operator|key_total|counting_sink|make_record")),
]
totals = {name: 0 for name, _ in cats}
totals["rest"] = 0
rest_syms = {}
by_thread = {}
samples = 0
for line in open(report):
    m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+(.*)$", line)
    if not m:
        continue
    n, comm, sym = int(m.group(2)), m.group(3), m.group(4)
    samples += n
    thread = "ZeroMQ I/O threads" if comm.startswith("ZMQbg") else \
             "CAF threads (tasks, stand-ins, bridge)" if comm.startswith("caf.") else \
             "link I/O threads" if comm in ("cluster_bench", "exe") else comm
    by_thread[thread] = by_thread.get(thread, 0) + n
    key = comm + " " + sym
    for name, rx in cats:
        if rx.search(sym) or (name == "send/receive" and comm.startswith("ZMQbg")):
            totals[name] += n
            break
    else:
        totals["rest"] += n
        rest_syms[key] = rest_syms.get(key, 0) + n
ns_per_sample = 1e9 / freq
print(f"{samples} samples, {samples * ns_per_sample / 1e9:.2f} CPU s over {records} records")
for name in ["encode", "send/receive", "decode", "operators", "rest"]:
    n = totals[name]
    print(f"  {name:13s} {100.0 * n / samples:5.1f}%  {n * ns_per_sample / records:6.1f} ns/record")
print("  by thread:")
for thread, n in sorted(by_thread.items(), key=lambda kv: -kv[1]):
    print(f"    {100.0 * n / samples:5.1f}%  {thread}")
print("  largest in rest:")
for key, n in sorted(rest_syms.items(), key=lambda kv: -kv[1])[:8]:
    print(f"    {100.0 * n / samples:5.1f}%  {key[:110]}")
PY
