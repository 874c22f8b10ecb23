#!/usr/bin/env python3
"""Golden outputs from real Apache Spark Structured Streaming, one query kind per case.

How to run (from the repository root):

    python3 -m venv /tmp/sparkvenv && /tmp/sparkvenv/bin/pip install 'pyspark==4.*'   # once; needs Java 17
    python3 tests/golden/spark/generate.py            # all cases
    python3 tests/golden/spark/generate.py guide late # some cases
    python3 tests/golden/spark/generate.py --random session 7 --random dedup_window 7
                                                      # write random_<kind>_s<seed> cases, then run them
    python3 tests/golden/spark/generate.py --cases-dir /tmp/x   # cases in another directory

If `pyspark` is not importable by the interpreter running this script, it re-executes itself with
$SPARK_VENV/bin/python (default /tmp/sparkvenv). Options: --keep keeps the /tmp work dirs (input
copies with set mtimes, checkpoints) for inspection.

Each cases/<case>/case.json names a query kind ("query", default "wordcount", see QUERIES) and its
parameters. For each trigger in (availableNow, once) and output mode in (append, update, complete),
the query runs with foreachBatch, Spark in local[1], spark.sql.shuffle.partitions=1, session time
zone UTC and a fresh checkpoint dir per run, and writes

    cases/<case>/<variant>/<trigger>-<mode>.jsonl           one line per output row, rows of a batch
                                                             sorted (see ROW_SORT)
    cases/<case>/<variant>/<trigger>-<mode>.progress.jsonl  one line per batch, from recentProgress
    cases/<case>/<variant>/refused.json                     {mode: {"errorClass", "message"}} for the
                                                             modes Spark refuses at start

Spark's file source orders files by modification time (not by name), so the inputs are copied to a
temp dir and given strictly increasing mtimes in file-name order; the script then checks, with an
input_file_name() query, that each availableNow batch holds exactly the next max_files_per_trigger
files in name order, and that numInputRows of every batch matches.
"""
import json
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "cases")
TRIGGERS = ("availableNow", "once")
MODES = ("append", "update", "complete")
# Output dir -> extra SQL confs. "expected" is Spark 4.x as shipped. Since Spark 3.4 (SPARK-40925,
# statefulOperator.allowMultiple=true) a row is dropped as late against the watermark of the
# PREVIOUS batch, while state is evicted / append output emitted against the current batch's
# watermark. allowMultiple=false restores the single-watermark rule (late and eviction both use the
# current batch's watermark), as Spark <= 3.3 did.
VARIANTS = {
    "expected": {},
    "expected_single_watermark": {"spark.sql.streaming.statefulOperator.allowMultiple": "false"},
}

try:
    import pyspark  # noqa: F401
except ImportError:
    venv = os.environ.get("SPARK_VENV", "/tmp/sparkvenv")
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(venv_python, [venv_python, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("pyspark not found: create the venv first (see the top of this file)")

os.environ["TZ"] = "UTC"
# Python workers (transformWithState) must run this interpreter, which has pyspark's deps.
os.environ["PYSPARK_PYTHON"] = sys.executable
time.tzset()

from pyspark.errors import PySparkException  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql.functions import (  # noqa: E402
    col, concat, date_format, explode, expr, input_file_name, lit, session_window, split, window,
    window_time)
from pyspark.sql.functions import sum as sum_  # noqa: E402

ISO = "yyyy-MM-dd'T'HH:mm:ss'Z'"
KV_SCHEMA = "timestamp TIMESTAMP, key STRING, value BIGINT"


def dumps(obj):
    return json.dumps(obj, separators=(", ", ": "), ensure_ascii=False)


def spark_session():
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("sluice-golden")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---------------------------------------------------------------------------------------------
# Query kinds. Each takes (spark, read, params) where read(dir_name, schema) is the streaming
# file source of cases/<case>/<dir_name>/, and returns (DataFrame, row function). The row function
# turns a collected Row into the dict written to the .jsonl file (keys in output order).


def ts(c):
    return date_format(col(c), ISO)


def window_row(r, key_name="key"):
    return {"window": {"start": r["start"], "end": r["end"]}, key_name: r[key_name], "count": r["count"]}


def q_wordcount(spark, read, p):
    """The programming guide's windowed word count."""
    lines = read("input", "timestamp TIMESTAMP, line STRING")
    words = lines.select(col("timestamp"), explode(split(col("line"), "\\s+")).alias("word")).where("word != ''")
    counts = (
        words.withWatermark("timestamp", p["watermark"])
        .groupBy(window(col("timestamp"), p["window"], p["slide"]), col("word"))
        .count()
    )
    return counts.select(ts("window.start").alias("start"), ts("window.end").alias("end"), "word", "count"), \
        lambda r: window_row(r, "word")


def q_session(spark, read, p):
    """Count per key in session windows with a fixed gap."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    counts = df.groupBy(session_window(col("timestamp"), p["gap"]).alias("session"), col("key")).count()
    return counts.select(ts("session.start").alias("start"), ts("session.end").alias("end"), "key", "count"), \
        lambda r: {"session": {"start": r["start"], "end": r["end"]}, "key": r["key"], "count": r["count"]}


def q_session_dynamic(spark, read, p):
    """Count per key in session windows whose gap is the row's `value`, in minutes."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    gap = concat(col("value").cast("string"), lit(" minutes"))
    counts = df.groupBy(session_window(col("timestamp"), gap).alias("session"), col("key")).count()
    return counts.select(ts("session.start").alias("start"), ts("session.end").alias("end"), "key", "count"), \
        lambda r: {"session": {"start": r["start"], "end": r["end"]}, "key": r["key"], "count": r["count"]}


def q_dedup_window(spark, read, p):
    """dropDuplicatesWithinWatermark on `value` (an event id), then a tumbling count per key."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    counts = df.dropDuplicatesWithinWatermark(["value"]).groupBy(window(col("timestamp"), p["window"]), col("key")).count()
    return counts.select(ts("window.start").alias("start"), ts("window.end").alias("end"), "key", "count"), window_row


def row_kv(r):
    return {"timestamp": r["timestamp"], "key": r["key"], "value": r["value"]}


def q_dedup(spark, read, p):
    """dropDuplicates on (key, event time) with a watermark: state ends with the watermark."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"]).dropDuplicates(["key", "timestamp"])
    return df.select(ts("timestamp").alias("timestamp"), "key", "value"), row_kv


def q_dedup_forever(spark, read, p):
    """dropDuplicates on key without a watermark: Spark keeps every key forever."""
    df = read("input", KV_SCHEMA).dropDuplicates(["key"])
    return df.select(ts("timestamp").alias("timestamp"), "key", "value"), row_kv


def q_static_join(spark, read, p):
    """The stream joined on key with cases/<case>/static.jsonl ({"key", "name"}) or static.csv
    (a header line, then key,name), read as a user reads a table."""
    if os.path.exists(p["_static_csv"]):
        static = spark.read.csv(p["_static_csv"], header=True, schema="key STRING, name STRING")
    else:
        static = spark.read.schema("key STRING, name STRING").json(p["_static"])
    df = read("input", KV_SCHEMA).join(static, "key", p["join"])
    return df.select(ts("timestamp").alias("timestamp"), "key", "value", "name"), \
        lambda r: {"timestamp": r["timestamp"], "key": r["key"], "value": r["value"], "name": r["name"]}


def q_window_filter(spark, read, p):
    """A tumbling count per key, then only the rows with count >= min_count."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    counts = df.groupBy(window(col("timestamp"), p["window"]), col("key")).count().where(col("count") >= p["min_count"])
    return counts.select(ts("window.start").alias("start"), ts("window.end").alias("end"), "key", "count"), window_row


def q_stream_join(spark, read, p):
    """input/ joined with input_right/ on key, right time within `bound` of left time, both
    watermarked; `join` is inner (default) or left_outer."""
    left = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    right = read("input_right", KV_SCHEMA).select(
        col("timestamp").alias("rtimestamp"), col("key").alias("rkey"), col("value").alias("rvalue")
    ).withWatermark("rtimestamp", p["watermark"])
    bound = p["bound"]
    cond = expr(f"key = rkey AND rtimestamp >= timestamp - interval {bound} AND rtimestamp <= timestamp + interval {bound}")
    df = left.join(right, cond, p.get("join", "inner"))
    return df.select(ts("timestamp").alias("timestamp"), "key", "value",
                     ts("rtimestamp").alias("right_timestamp"), col("rvalue").alias("right_value")), \
        lambda r: {"timestamp": r["timestamp"], "key": r["key"], "value": r["value"],
                   "right_timestamp": r["right_timestamp"], "right_value": r["right_value"]}


def q_chained(spark, read, p):
    """A tumbling count per key, then the sum of those counts in a coarser window over window_time."""
    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    first = df.groupBy(window(col("timestamp"), p["window"]), col("key")).count()
    second = (first.select(window_time(col("window")).alias("wt"), "key", "count")
              .groupBy(window(col("wt"), p["window2"]), col("key")).agg(sum_("count").alias("count")))
    return second.select(ts("window.start").alias("start"), ts("window.end").alias("end"), "key", "count"), window_row


def q_keyed_timer(spark, read, p):
    """transformWithState (event time): per key, count rows and keep the latest event time; an
    event-time timer at latest + gap (moved on every row) emits {key, count, last} and clears the
    key, like an inactivity session written by hand."""
    from pyspark.sql import Row
    from pyspark.sql.streaming.stateful_processor import StatefulProcessor

    gap_ms = int(p["gap"].split()[0]) * 60 * 1000
    assert p["gap"].split()[1].startswith("minute"), "keyed_timer: gap in minutes"

    class Timeout(StatefulProcessor):
        def init(self, handle):
            self.handle = handle
            self.state = handle.getValueState("state", "count LONG, last LONG")

        def handleInputRows(self, key, rows, timerValues):
            count, last = self.state.get() if self.state.exists() else (0, None)
            for r in rows:
                t = int(r["timestamp"].timestamp() * 1000)
                count += 1
                last = t if last is None else max(last, t)
            for old in list(self.handle.listTimers()):
                self.handle.deleteTimer(old)
            self.handle.registerTimer(last + gap_ms)
            self.state.update((count, last))
            return iter([])

        def handleExpiredTimer(self, key, timerValues, expiredTimerInfo):
            count, last = self.state.get()
            self.state.clear()
            return iter([Row(key=key[0], count=count, last=last)])

        def close(self):
            pass

    df = read("input", KV_SCHEMA).withWatermark("timestamp", p["watermark"])
    out = df.groupBy("key").transformWithState(
        Timeout(), "key STRING, count LONG, last LONG", p["_mode"].capitalize(), "EventTime")
    out = out.select("key", "count", date_format((col("last") / 1000).cast("timestamp"), ISO).alias("last"))
    return out, lambda r: {"key": r["key"], "count": r["count"], "last": r["last"]}


QUERIES = {
    "keyed_timer": q_keyed_timer,
    "wordcount": q_wordcount,
    "session": q_session,
    "session_dynamic": q_session_dynamic,
    "dedup_window": q_dedup_window,
    "dedup": q_dedup,
    "dedup_forever": q_dedup_forever,
    "static_join": q_static_join,
    "window_filter": q_window_filter,
    "stream_join": q_stream_join,
    "chained": q_chained,
}


# Extra SQL confs a kind needs (set for its case only).
KIND_CONFS = {
    # transformWithState runs only on the RocksDB state store.
    "keyed_timer": {"spark.sql.streaming.stateStore.providerClass":
                    "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"},
}


def row_sort_key(row):
    """Rows of a batch: by window/session start, then the rest (code point order)."""
    w = row.get("window") or row.get("session")
    return (w["start"] if w else "", dumps(row))


# ---------------------------------------------------------------------------------------------


def input_dirs(case_dir):
    return [d for d in ("input", "input_right") if os.path.isdir(os.path.join(case_dir, d))]


def stage_input(case_dir, work, dir_name):
    """Copy input files to a temp dir, mtimes strictly increasing in file-name order."""
    src = os.path.join(case_dir, dir_name)
    names = sorted(n for n in os.listdir(src) if n.endswith(".jsonl"))
    dst = os.path.join(work, dir_name)
    os.makedirs(dst)
    base = int(time.time()) - 10 * len(names) - 60
    rows = []
    for i, n in enumerate(names):
        shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
        os.utime(os.path.join(dst, n), (base + 10 * i, base + 10 * i))
        with open(os.path.join(src, n)) as f:
            rows.append(sum(1 for line in f if line.strip()))
    return dst, names, rows


def reader(spark, staged, params):
    def read(dir_name, schema):
        return (
            spark.readStream.schema(schema)
            .option("maxFilesPerTrigger", params["max_files_per_trigger"])
            .option("mode", "FAILFAST")
            .json(staged[dir_name][0])
        )
    return read


class Refused(Exception):
    """Spark refused the query when it started (analysis), as opposed to failing while running."""

    def __init__(self, e):
        super().__init__(str(e))
        self.error_class = e.getCondition() if hasattr(e, "getCondition") else e.getErrorClass()
        self.message = str(e).strip().splitlines()[0]


def start(df, fn, mode, trigger, checkpoint):
    w = df.writeStream.foreachBatch(fn).outputMode(mode).option("checkpointLocation", checkpoint)
    w = w.trigger(availableNow=True) if trigger == "availableNow" else w.trigger(once=True)
    try:
        q = w.start()
    except PySparkException as e:
        raise Refused(e) from e
    try:
        q.awaitTermination()
    except PySparkException as e:
        raise RuntimeError(f"the query failed while running: {e}") from e
    if q.exception() is not None:
        raise RuntimeError(str(q.exception()))
    return q


def check_file_order(spark, staged, params, work):
    """Which files each availableNow batch reads (must be consecutive chunks in name order)."""
    out = {}
    n = params["max_files_per_trigger"]
    for dir_name, (path, names, _) in staged.items():
        seen = []

        def fn(df, batch_id):
            files = sorted({os.path.basename(r[0]) for r in df.select(input_file_name()).collect()})
            seen.append((batch_id, files))

        lines = (spark.readStream.schema("timestamp TIMESTAMP").option("maxFilesPerTrigger", n).json(path))
        start(lines, fn, "append", "availableNow", os.path.join(work, f"ckpt-files-{dir_name}"))
        want = [names[i:i + n] for i in range(0, len(names), n)]
        got = [files for _, files in sorted(seen)]
        if got != want:
            raise AssertionError(f"{dir_name}: file batches {got} != expected {want}")
        out[dir_name] = got
    return out


def run(spark, staged, params, mode, trigger, checkpoint):
    df, to_row = QUERIES[params.get("query", "wordcount")](spark, reader(spark, staged, params),
                                                           {**params, "_mode": mode})
    batches = {}

    def fn(batch, batch_id):
        rows = [to_row(r) for r in batch.collect()]
        if batch_id in batches:
            raise AssertionError(f"batch {batch_id} delivered twice")
        batches[batch_id] = sorted(rows, key=row_sort_key)

    q = start(df, fn, mode, trigger, checkpoint)
    progress = list(q.recentProgress)
    return batches, progress


def op_fields(op):
    return {
        "numRowsTotal": op.get("numRowsTotal"),
        "numRowsUpdated": op.get("numRowsUpdated"),
        "numRowsRemoved": op.get("numRowsRemoved"),
        "numRowsDroppedByWatermark": op.get("numRowsDroppedByWatermark"),
    }


def progress_line(p):
    ops = p.get("stateOperators") or []
    line = {
        "batchId": p["batchId"],
        "numInputRows": p.get("numInputRows"),
        "watermark": (p.get("eventTime") or {}).get("watermark"),
        **op_fields(ops[0] if ops else {}),
        "numOutputRows": (p.get("sink") or {}).get("numOutputRows"),
    }
    if len(ops) > 1:
        # Several stateful operators: all of them, in Spark's order (the one nearest the sink first).
        line["stateOperators"] = [{"operatorName": op.get("operatorName"), **op_fields(op)} for op in ops]
    return line


def generate_case(spark, cases_dir, name, keep):
    case_dir = os.path.join(cases_dir, name)
    with open(os.path.join(case_dir, "case.json")) as f:
        params = json.load(f)
    if params.get("query", "wordcount") not in QUERIES:
        raise ValueError(f"{name}: unknown query {params['query']!r}; have {sorted(QUERIES)}")
    params["_static"] = os.path.join(case_dir, "static.jsonl")
    params["_static_csv"] = os.path.join(case_dir, "static.csv")
    work = tempfile.mkdtemp(prefix=f"sluice-spark-golden-{name}-")
    try:
        staged = {d: stage_input(case_dir, work, d) for d in input_dirs(case_dir)}
        file_batches = check_file_order(spark, staged, params, work)
        print(f"[{name}] {params}")
        print(f"[{name}] availableNow file batches: {file_batches}")
        for variant, confs in VARIANTS.items():
            if variant not in params.get("variants", VARIANTS):
                continue
            confs = {**confs, **KIND_CONFS.get(params.get("query", "wordcount"), {})}
            for k, v in confs.items():
                spark.conf.set(k, v)
            try:
                run_variant(spark, name, case_dir, variant, work, staged, params)
            finally:
                for k in confs:
                    spark.conf.unset(k)
    finally:
        if keep:
            print(f"[{name}] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def expected_input_rows(staged, params, trigger):
    """Input rows per data batch: chunk i of every source (availableNow), or everything (once)."""
    n = params["max_files_per_trigger"]
    per_batch = {}
    for _, names, rows in staged.values():
        step = n if trigger == "availableNow" else len(names)
        for b, i in enumerate(range(0, len(names), step)):
            per_batch[b] = per_batch.get(b, 0) + sum(rows[i:i + step])
    return [per_batch[b] for b in sorted(per_batch)]


def run_variant(spark, name, case_dir, variant, work, staged, params):
    out_dir = os.path.join(case_dir, variant)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    refused = {}
    for trigger in params.get("triggers", TRIGGERS):
        for mode in MODES:
            if mode in refused:
                continue
            ckpt = os.path.join(work, f"ckpt-{variant}-{trigger}-{mode}")
            try:
                batches, progress = run(spark, staged, params, mode, trigger, ckpt)
            except Refused as e:
                refused[mode] = {"errorClass": e.error_class, "message": e.message}
                print(f"[{name}] {variant}/{trigger}-{mode}: refused {refused[mode]}")
                continue
            ids = [p["batchId"] for p in progress]
            if ids != list(range(len(ids))):
                raise AssertionError(f"{name} {trigger}-{mode}: progress batchIds {ids}")
            if sorted(batches) != ids:
                raise AssertionError(f"{name} {trigger}-{mode}: foreachBatch ids {sorted(batches)} != {ids}")
            want = expected_input_rows(staged, params, trigger)
            got = [p["numInputRows"] for p in progress if p["numInputRows"]]
            if got != [w for w in want if w]:
                raise AssertionError(f"{name} {trigger}-{mode}: numInputRows {got} != {want}")
            base = os.path.join(out_dir, f"{trigger}-{mode}")
            with open(base + ".jsonl", "w") as f:
                for b in ids:
                    for row in batches[b]:
                        f.write(dumps({"batchId": b, **row}) + "\n")
            with open(base + ".progress.jsonl", "w") as f:
                for p in progress:
                    f.write(dumps(progress_line(p)) + "\n")
            summary = ", ".join(
                f"b{p['batchId']}:in={p['numInputRows']},wm={progress_line(p)['watermark']},out={len(batches[p['batchId']])}"
                for p in progress
            )
            print(f"[{name}] {variant}/{trigger}-{mode}: {summary}")
    if refused:
        with open(os.path.join(out_dir, "refused.json"), "w") as f:
            f.write(json.dumps(refused, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# Random cases (the differential test): seeded, out of order, with late rows.

RANDOM_KINDS = {
    # kind -> case.json
    "session": {"query": "session", "gap": "5 minutes", "watermark": "10 minutes", "max_files_per_trigger": 1},
    "dedup_window": {"query": "dedup_window", "window": "10 minutes", "watermark": "10 minutes",
                     "max_files_per_trigger": 1},
}


def random_rows(kind, seed):
    """5 files of 4-9 rows: times mostly moving forward by up to 4 minutes, 35% of the rows 9 to 18
    minutes behind the latest time so far; keys a and b (c rarely), so sessions touch and merge; for
    dedup_window, ids (value) repeated 35% of the time, also after their state may have expired.
    Then, per file, up to 2 rows aimed at issue 25's edge, using the watermark Spark will run the
    file's batch with (availableNow, one file per trigger, 10-minute delay): times behind this
    batch's watermark but not the previous one's; for sessions, within the gap of an earlier row of
    the same key whose session this batch's watermark has passed."""
    rng = random.Random(f"{kind}:{seed}")
    delay, gap = 600, 300
    files = []
    t = 12 * 3600 + rng.randrange(0, 600)
    next_id = 1
    ids = []
    earlier = []  # (key, time) of the rows of earlier files
    latest = None  # max time of the earlier files
    w_prev = w_cur = 0
    for _ in range(5):
        rows = []
        for _ in range(rng.randint(4, 9)):
            t += rng.randint(0, 240)
            when = t - (rng.randint(9 * 60, 18 * 60) if rng.random() < 0.35 else rng.randint(0, 60))
            rows.append([when, rng.choice("aabbc")])
        for _ in range(rng.randint(0, 2)):
            if kind == "session":
                near = [(k, tp) for k, tp in earlier if w_prev - gap < tp and tp + gap <= w_cur]
                if near:
                    k, tp = rng.choice(near)
                    lo, hi = max(w_prev + 1, tp - gap), min(tp + gap, w_cur)
                    if lo <= hi:
                        rows.insert(rng.randrange(len(rows) + 1), [rng.randint(lo, hi), k])
            elif w_prev < w_cur:
                # At most 15 minutes back: batch 1's previous watermark is 0 (1970).
                lo = max(w_prev + 1, w_cur - 15 * 60)
                rows.insert(rng.randrange(len(rows) + 1), [rng.randint(lo, w_cur), rng.choice("aabbc")])
        out = []
        for when, key in rows:
            if kind == "dedup_window" and ids and rng.random() < 0.35:
                value = rng.choice(ids)
            else:
                value, next_id = next_id, next_id + 1
                ids.append(value)
            if kind == "session":
                value = 1
            hh, rest = divmod(when, 3600)
            out.append({"timestamp": f"2026-01-01T{hh:02d}:{rest // 60:02d}:{rest % 60:02d}Z", "key": key, "value": value})
        files.append(out)
        earlier += [(key, when) for when, key in rows]
        latest = max([when for when, _ in rows] + ([latest] if latest is not None else []))
        w_prev, w_cur = w_cur, max(w_cur, latest - delay)
    return files


def write_random_case(cases_dir, kind, seed):
    name = f"random_{kind}_s{seed}"
    case_dir = os.path.join(cases_dir, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(os.path.join(case_dir, "input"))
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        f.write(json.dumps({**RANDOM_KINDS[kind], "seed": seed, "triggers": ["availableNow"]}, indent=2) + "\n")
    for i, rows in enumerate(random_rows(kind, seed)):
        with open(os.path.join(case_dir, "input", f"{i + 1:03d}.jsonl"), "w") as f:
            for r in rows:
                f.write(dumps(r) + "\n")
    return name


def main(argv):
    keep = "--keep" in argv
    cases_dir = CASES_DIR
    wanted, randoms = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--cases-dir":
            cases_dir, i = argv[i + 1], i + 1
        elif a == "--random":
            if argv[i + 1] not in RANDOM_KINDS:
                sys.exit(f"--random: unknown kind {argv[i + 1]!r}; have {sorted(RANDOM_KINDS)}")
            randoms.append((argv[i + 1], int(argv[i + 2])))
            i += 2
        elif not a.startswith("--"):
            wanted.append(a)
        i += 1
    os.makedirs(cases_dir, exist_ok=True)
    for kind, seed in randoms:
        wanted.append(write_random_case(cases_dir, kind, seed))
    names = sorted(n for n in os.listdir(cases_dir) if os.path.isfile(os.path.join(cases_dir, n, "case.json")))
    for w in wanted:
        if w not in names:
            sys.exit(f"unknown case {w!r}; have {names}")
    spark = spark_session()
    print(f"Spark {spark.version}")
    try:
        for name in wanted or names:
            generate_case(spark, cases_dir, name, keep)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
