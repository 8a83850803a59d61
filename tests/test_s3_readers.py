"""Spark reads a download into object storage through ``s3a://``: a real Kafka broker, a real S3
server (SeaweedFS), and the S3A connector's jars fetched from Maven Central by
:func:`finkdl.local.sparkjars.s3a_jars` (13.5 MB, cached under ``$FINKDL_CACHE`` as Kafka's jars
are). Spark runs as a user runs it, in a process of its own (local mode, this machine's Java),
and must give the same rows, every 64-bit id exact, and the same nulls as pyarrow reading the
same objects."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pyarrow.dataset as ds
import pytest

from finkdl.errors import FinkdlError
from finkdl.local import generator
from finkdl.local.sparkjars import HADOOP_AWS_VERSION, s3a_jars, spark_hadoop_version
from finkdl.s3client import arrow_filesystem

from conftest import BUCKET

pytestmark = pytest.mark.broker
ALERTS = 600
BIG = 2**62 + 1  # ids past 2**53, which a float64 on the way would round
OFFLINE = ("Could not transfer", "UnknownHost", "Unknown host", "Connection refused",
           "Network is unreachable", "timed out", "offline")  # in Maven's error: no network

SPARK = """
import json, os, sys
from pyspark.sql import SparkSession
jars, url, *columns = sys.argv[1:]
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.jars", jars)
         .config("spark.hadoop.fs.s3a.endpoint", os.environ["AWS_ENDPOINT_URL"])
         .config("spark.hadoop.fs.s3a.path.style.access", "true")
         .config("spark.hadoop.fs.s3a.connection.ssl.enabled", "false")
         .config("spark.hadoop.fs.s3a.access.key", os.environ["AWS_ACCESS_KEY_ID"])
         .config("spark.hadoop.fs.s3a.secret.key", os.environ["AWS_SECRET_ACCESS_KEY"])
         .config("spark.hadoop.fs.s3a.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
         .getOrCreate())
df = spark.read.parquet(url).select(*columns)
print(json.dumps({"types": dict(df.dtypes), "rows": [list(r) for r in df.collect()]}))
spark.stop()
"""


@pytest.fixture(scope="module")
def jars() -> str:
    """The S3A jars, comma-separated as ``spark.jars`` takes them; skipped without pyspark of
    the matching Hadoop, Maven, or the network (a fetch that Maven refused for another reason,
    such as a missing artifact, fails the test)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'finkdl[test]'")
    if spark_hadoop_version() != HADOOP_AWS_VERSION:
        pytest.skip(f"this pyspark ships Hadoop {spark_hadoop_version()}; "
                    f"finkdl fetches hadoop-aws {HADOOP_AWS_VERSION}")
    if shutil.which("mvn") is None:
        pytest.skip("no mvn on PATH to fetch the S3A jars from Maven Central")
    try:
        found = s3a_jars()
    except FinkdlError as exc:
        if any(word in (exc.hint or "") for word in OFFLINE):
            pytest.skip(f"{exc.message}: Maven Central cannot be reached")
        raise
    return ",".join(map(str, found))


def test_spark_reads_a_download_in_a_bucket_through_s3a_with_exact_ids_and_nulls(
        jars, topic_factory, finkdl, s3env):
    records = list(generator.alerts(ALERTS, slim=True, cutouts=False))
    for i, record in enumerate(records):
        record["candid"] = BIG + 2 * i
    topic = topic_factory(0, partitions=2, schema=generator.ztf_schema(slim=True, cutouts=False),
                          records=records)
    url = f"s3://{BUCKET}/run-{uuid.uuid4().hex[:8]}/alerts"
    done = finkdl(topic, url, "--partition-by", "finkclass")
    assert done.returncode == 0, done.stderr

    columns = ["candid", "snn_sn_vs_all", "tnsclass", "finkclass"]
    started = time.monotonic()
    read = subprocess.run([sys.executable, "-c", SPARK, jars, "s3a" + url.removeprefix("s3"), *columns],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})  # Spark on loopback only
    assert read.returncode == 0, read.stderr[-3000:]
    seconds = time.monotonic() - started
    spark = json.loads(read.stdout.strip().splitlines()[-1])
    arrow = ds.dataset(url.removeprefix("s3://"), filesystem=arrow_filesystem(s3env.endpoint),
                       format="parquet", partitioning="hive").to_table(columns=columns)

    rows = sorted(map(tuple, spark["rows"]), key=repr)
    assert len(rows) == arrow.num_rows == ALERTS
    assert rows == sorted(zip(*(arrow.column(c).to_pylist() for c in columns)), key=repr)
    assert sorted(r[0] for r in rows) == [BIG + 2 * i for i in range(ALERTS)]  # exact, not rounded
    assert spark["types"]["candid"] == "bigint"
    for k, column in ((1, "snn_sn_vs_all"), (2, "tnsclass")):  # nulls where the alerts had them
        nulls = sum(r[column] is None for r in records)
        assert 0 < nulls < ALERTS and sum(r[k] is None for r in rows) == nulls
    print(f"\nREADER spark s3a: {len(rows):,} rows; types {spark['types']}; e.g. {max(rows)[0]}; "
          f"Spark's process {seconds:.1f} s")
