#!/usr/bin/env python3
"""Where an exactly-once record's latency goes: a per-checkpoint timeline.

Reads the kafka_pipeline log (--log-level debug: the coordinator's "checkpoint N complete: B
bytes in D us" and the Kafka sink's "pre-commit N ... took T us" / "commit N ... took T us")
and the arrivals of `sluice_kafka_load latency --arrivals FILE` ("receive_us sent_us", wall
clock), and prints, per checkpoint:

  barrier    the coordinator injected checkpoint N's barriers (complete time - duration)
  at_sink    the last sink instance got the barrier (pre-commit start)
  snap       the last sink instance finished its pre-commit (marker sent, records kept)
  complete   the checkpoint's metadata is durable
  commit     the last sink instance returned from commit(N)
  visible    the first record sent before barrier N and after barrier N-1 reached the
             read_committed reader, and the last one

then the median (and worst) of each step over the checkpoints, and the share of each step in
the latency of the records of each transaction. Times are ms after the barrier. The log's
timestamps have millisecond resolution.

  bench/kafka_eo_timeline.sh runs a pipeline and the load and calls this.
"""
import re
import sys
from datetime import datetime, timezone
from statistics import median

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) ")
COMPLETE = re.compile(r"checkpoint (\d+) complete: \d+ bytes in (\d+) us")
PRE = re.compile(r"kafka sink '[^']*' instance (\d+): pre-commit (\d+)\b(?:.*took (\d+) us)?")
COMMIT = re.compile(r"kafka sink '[^']*' instance (\d+): commit (\d+)\b.*took (\d+) us")


def log_us(line):
    m = LOG_TIME.match(line)
    if not m:
        return None
    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1e6)


def main(log_file, arrivals_file):
    ck = {}  # id -> dict of times (µs)
    for line in open(log_file, errors="replace"):
        t = log_us(line)
        if t is None:
            continue
        if m := COMPLETE.search(line):
            c = ck.setdefault(int(m.group(1)), {})
            c["complete"] = t
            c["barrier"] = t - int(m.group(2))
        elif m := PRE.search(line):
            c = ck.setdefault(int(m.group(2)), {})
            took = int(m.group(3) or 0)
            c["at_sink"] = max(c.get("at_sink", 0), t - took)
            c["snap"] = max(c.get("snap", 0), t)
        elif m := COMMIT.search(line):
            c = ck.setdefault(int(m.group(2)), {})
            took = int(m.group(3))
            c["commit_call"] = max(c.get("commit_call", 0), t - took)
            c["commit"] = max(c.get("commit", 0), t)
    ids = sorted(i for i, c in ck.items() if "barrier" in c and "commit" in c)
    arrivals = []
    for line in open(arrivals_file):
        r, s = line.split()
        arrivals.append((int(r), int(s)))
    arrivals.sort(key=lambda a: a[1])
    steps = ["at_sink", "snap", "complete", "commit_call", "commit", "vis_first", "vis_last"]
    rows = []
    prev = None
    print(f"{'ckpt':>5} {'records':>8} " + " ".join(f"{s:>11}" for s in steps) +
          f" {'p50 lat':>8} {'max lat':>8}   (ms after the barrier; latencies in ms)")
    for i in ids:
        c = ck[i]
        if prev is None:
            prev = c["barrier"]
            continue
        recs = [a for a in arrivals if prev <= a[1] < c["barrier"]]
        prev_b, prev = prev, c["barrier"]
        if not recs:
            continue
        recv = sorted(a[0] for a in recs)
        lats = sorted(a[0] - a[1] for a in recs)
        c["vis_first"], c["vis_last"] = recv[0], recv[-1]
        row = {s: (c[s] - c["barrier"]) / 1e3 for s in steps if s in c}
        row["p50"] = lats[len(lats) // 2] / 1e3
        row["max"] = lats[-1] / 1e3
        row["interval"] = (c["barrier"] - prev_b) / 1e3
        rows.append(row)
        print(f"{i:>5} {len(recs):>8} " +
              " ".join(f"{row[s]:>11.1f}" if s in row else f"{'-':>11}" for s in steps) +
              f" {row['p50']:>8.1f} {row['max']:>8.1f}")
    if not rows:
        print("no checkpoint with measured records")
        return 1
    print()
    print("median [max] over the checkpoints, ms after the barrier:")
    for s in steps + ["p50", "max", "interval"]:
        v = [r[s] for r in rows if s in r]
        if v:
            print(f"  {s:>11}: {median(v):8.1f} [{max(v):8.1f}]")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
