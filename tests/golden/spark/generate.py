#!/usr/bin/env python3
"""Golden outputs from real Apache Spark Structured Streaming (windowed word count with watermark).

How to run (from the repository root):

    python3 -m venv /tmp/sparkvenv && /tmp/sparkvenv/bin/pip install 'pyspark==3.5.*'   # once; needs Java 17
    python3 tests/golden/spark/generate.py            # all cases
    python3 tests/golden/spark/generate.py guide late # some cases

If `pyspark` is not importable by the interpreter running this script, it re-executes itself with
$SPARK_VENV/bin/python (default /tmp/sparkvenv). Options: --keep keeps the /tmp work dirs (input
copies with set mtimes, checkpoints) for inspection.

For each cases/<case>/ (case.json + input/NNN.jsonl) and each trigger in (availableNow, once) and
output mode in (append, update, complete), it runs the query of the Spark programming guide

    lines  = spark.readStream.schema("timestamp TIMESTAMP, line STRING")
                  .option("maxFilesPerTrigger", N).json(input_dir)
    words  = lines.select(col("timestamp"), explode(split(col("line"), "\\\\s+")).alias("word"))
                  .where("word != ''")
    counts = words.withWatermark("timestamp", WATERMARK)
                  .groupBy(window(col("timestamp"), WINDOW, SLIDE), col("word")).count()

with foreachBatch, Spark in local[1], spark.sql.shuffle.partitions=1, session time zone UTC, a
fresh checkpoint dir per run, and writes

    cases/<case>/expected/<trigger>-<mode>.jsonl           one line per output row, rows of a batch
                                                            sorted by window start, then word
    cases/<case>/expected/<trigger>-<mode>.progress.jsonl  one line per batch, from recentProgress

Spark's file source orders files by modification time (not by name), so the inputs are copied to a
temp dir and given strictly increasing mtimes in file-name order; the script then checks, with an
input_file_name() query, that each availableNow batch holds exactly the next max_files_per_trigger
files in name order, and that numInputRows of every batch matches.
"""
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "cases")
TRIGGERS = ("availableNow", "once")
MODES = ("append", "update", "complete")
# Output dir -> extra SQL confs. "expected" is Spark 3.5 as shipped. Since Spark 3.4 (SPARK-40925,
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
time.tzset()

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql.functions import col, date_format, explode, input_file_name, split, window  # noqa: E402

ISO = "yyyy-MM-dd'T'HH:mm:ss'Z'"


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


def stage_input(case_dir, work):
    """Copy input files to a temp dir, mtimes strictly increasing in file-name order."""
    src = os.path.join(case_dir, "input")
    names = sorted(n for n in os.listdir(src) if n.endswith(".jsonl"))
    dst = os.path.join(work, "input")
    os.makedirs(dst)
    base = int(time.time()) - 10 * len(names) - 60
    rows = []
    for i, n in enumerate(names):
        shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
        os.utime(os.path.join(dst, n), (base + 10 * i, base + 10 * i))
        with open(os.path.join(src, n)) as f:
            rows.append(sum(1 for line in f if line.strip()))
    return dst, names, rows


def read_lines(spark, input_dir, params):
    return (
        spark.readStream.schema("timestamp TIMESTAMP, line STRING")
        .option("maxFilesPerTrigger", params["max_files_per_trigger"])
        .option("mode", "FAILFAST")
        .json(input_dir)
    )


def start(df, fn, mode, trigger, checkpoint):
    w = df.writeStream.foreachBatch(fn).outputMode(mode).option("checkpointLocation", checkpoint)
    w = w.trigger(availableNow=True) if trigger == "availableNow" else w.trigger(once=True)
    q = w.start()
    q.awaitTermination()
    if q.exception() is not None:
        raise RuntimeError(str(q.exception()))
    return q


def check_file_order(spark, input_dir, names, params, work):
    """Which files each availableNow batch reads (must be consecutive chunks in name order)."""
    seen = []

    def fn(df, batch_id):
        files = sorted({os.path.basename(r[0]) for r in df.select(input_file_name()).collect()})
        seen.append((batch_id, files))

    start(read_lines(spark, input_dir, params), fn, "append", "availableNow", os.path.join(work, "ckpt-files"))
    n = params["max_files_per_trigger"]
    want = [names[i:i + n] for i in range(0, len(names), n)]
    got = [files for _, files in sorted(seen)]
    if got != want:
        raise AssertionError(f"file batches {got} != expected {want}")
    return got


def run(spark, input_dir, params, mode, trigger, checkpoint):
    lines = read_lines(spark, input_dir, params)
    words = lines.select(col("timestamp"), explode(split(col("line"), "\\s+")).alias("word")).where("word != ''")
    counts = (
        words.withWatermark("timestamp", params["watermark"])
        .groupBy(window(col("timestamp"), params["window"], params["slide"]), col("word"))
        .count()
    )
    batches = {}

    def fn(df, batch_id):
        rows = df.select(
            date_format(col("window.start"), ISO).alias("start"),
            date_format(col("window.end"), ISO).alias("end"),
            col("word"),
            col("count"),
        ).collect()
        if batch_id in batches:
            raise AssertionError(f"batch {batch_id} delivered twice")
        batches[batch_id] = sorted((r["start"], r["word"], r["end"], r["count"]) for r in rows)

    q = start(counts, fn, mode, trigger, checkpoint)
    progress = list(q.recentProgress)
    return batches, progress


def progress_line(p):
    ops = p.get("stateOperators") or []
    op = ops[0] if ops else {}
    return {
        "batchId": p["batchId"],
        "numInputRows": p.get("numInputRows"),
        "watermark": (p.get("eventTime") or {}).get("watermark"),
        "numRowsTotal": op.get("numRowsTotal"),
        "numRowsUpdated": op.get("numRowsUpdated"),
        "numRowsRemoved": op.get("numRowsRemoved"),
        "numRowsDroppedByWatermark": op.get("numRowsDroppedByWatermark"),
        "numOutputRows": (p.get("sink") or {}).get("numOutputRows"),
    }


def generate_case(spark, name, keep):
    case_dir = os.path.join(CASES_DIR, name)
    with open(os.path.join(case_dir, "case.json")) as f:
        params = json.load(f)
    work = tempfile.mkdtemp(prefix=f"sluice-spark-golden-{name}-")
    try:
        input_dir, names, rows_per_file = stage_input(case_dir, work)
        file_batches = check_file_order(spark, input_dir, names, params, work)
        print(f"[{name}] {params}")
        print(f"[{name}] availableNow file batches: {file_batches}")
        for variant, confs in VARIANTS.items():
            for k, v in confs.items():
                spark.conf.set(k, v)
            try:
                run_variant(spark, name, case_dir, variant, work, input_dir, names, rows_per_file, params)
            finally:
                for k in confs:
                    spark.conf.unset(k)
    finally:
        if keep:
            print(f"[{name}] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_variant(spark, name, case_dir, variant, work, input_dir, names, rows_per_file, params):
    out_dir = os.path.join(case_dir, variant)
    os.makedirs(out_dir, exist_ok=True)
    for trigger in TRIGGERS:
        for mode in MODES:
            ckpt = os.path.join(work, f"ckpt-{variant}-{trigger}-{mode}")
            batches, progress = run(spark, input_dir, params, mode, trigger, ckpt)
            ids = [p["batchId"] for p in progress]
            if ids != list(range(len(ids))):
                raise AssertionError(f"{name} {trigger}-{mode}: progress batchIds {ids}")
            if sorted(batches) != ids:
                raise AssertionError(f"{name} {trigger}-{mode}: foreachBatch ids {sorted(batches)} != {ids}")
            # Input rows per batch must match the files read (availableNow: chunks; once: all).
            n = params["max_files_per_trigger"] if trigger == "availableNow" else len(names)
            want = [sum(rows_per_file[i:i + n]) for i in range(0, len(names), n)]
            got = [p["numInputRows"] for p in progress if p["numInputRows"]]
            if got != want:
                raise AssertionError(f"{name} {trigger}-{mode}: numInputRows {got} != {want}")
            base = os.path.join(out_dir, f"{trigger}-{mode}")
            with open(base + ".jsonl", "w") as f:
                for b in ids:
                    for start_, word, end, count in batches[b]:
                        f.write(dumps({"batchId": b, "window": {"start": start_, "end": end},
                                       "word": word, "count": count}) + "\n")
            with open(base + ".progress.jsonl", "w") as f:
                for p in progress:
                    f.write(dumps(progress_line(p)) + "\n")
            summary = ", ".join(
                f"b{p['batchId']}:in={p['numInputRows']},wm={progress_line(p)['watermark']},out={len(batches[p['batchId']])}"
                for p in progress
            )
            print(f"[{name}] {variant}/{trigger}-{mode}: {summary}")


def main(argv):
    keep = "--keep" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    names = sorted(n for n in os.listdir(CASES_DIR) if os.path.isfile(os.path.join(CASES_DIR, n, "case.json")))
    for w in wanted:
        if w not in names:
            sys.exit(f"unknown case {w!r}; have {names}")
    spark = spark_session()
    print(f"Spark {spark.version}")
    try:
        for name in wanted or names:
            generate_case(spark, name, keep)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
