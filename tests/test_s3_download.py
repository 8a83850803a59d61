"""Downloads straight into object storage: a real Kafka broker and a real S3 server (SeaweedFS),
both started once per session; the command line run as a user runs it, with the standard AWS
variables naming the server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import pyarrow.dataset as ds
import pytest

from finkdl.errors import ExitCode
from finkdl.objectstore import ObjectStore
from finkdl.s3client import arrow_filesystem
from finkdl.verify import verify

import versions
from conftest import BUCKET, make_topic, recreate_topic, run_finkdl
from s3proxy import SlowDownProxy

pytestmark = pytest.mark.broker
ARRAY_ROUNDS = range(10 if os.environ.get("FINKDL_SOAK") == "1" else 1)


def _url(name: str = "alerts") -> str:
    return f"s3://{BUCKET}/run-{uuid.uuid4().hex[:8]}/{name}"


def _keys(url: str) -> list[str]:
    prefix = url.split("/", 3)[3] + "/"
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _uploads(url: str) -> list[str]:
    prefix = url.split("/", 3)[3] + "/"
    found = boto3.client("s3").list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in found.get("Uploads", [])]


def test_a_download_into_a_bucket_is_exact_and_every_reader_reads_it_back(
        topic_factory, finkdl, s3env, tmp_path):
    """pandas (the summary's line), pyarrow, polars and DuckDB read the bucket's copy with the
    rows, ids and nulls of the same topic downloaded to a disk."""
    topic = topic_factory(3000, partitions=3)
    url = _url()
    done = finkdl(topic, url, "--partition-by", "finkclass")
    assert done.returncode == 0, done.stderr
    on_disk = finkdl(topic, tmp_path / "disk", "--partition-by", "finkclass",
                     group=f"disk-{uuid.uuid4().hex[:8]}")
    assert on_disk.returncode == 0, on_disk.stderr
    disk = ds.dataset(tmp_path / "disk", format="parquet", partitioning="hive").to_table()
    ids, nulls = sorted(disk["candid"].to_pylist()), disk["snn_sn_vs_all"].null_count
    assert len(ids) == 3000 and 0 < nulls < 3000
    assert f"files in {url}" in done.stderr
    report = verify(url)
    assert report.ok and report.rows == 3000 and report.ids.checked == {"candid": 3000}
    keys = _keys(url)
    assert not [k for k in keys if k.endswith("/")]  # no folder markers: s3fs readers trip on them
    assert any("/finkclass=" in k for k in keys)

    # The read line the summary prints, run as printed, in a fresh interpreter.
    line = next(text for text in done.stderr.splitlines() if text.startswith("read them with: "))
    code = (f"import pandas; df = {line.removeprefix('read them with: ')}; "
            "print(df['snn_sn_vs_all'].isna().sum(), *sorted(df['candid']))")
    read = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert read.stdout.split() == [str(nulls), *map(str, ids)], read.stderr

    dataset = ds.dataset(url.removeprefix("s3://"), filesystem=arrow_filesystem(s3env.endpoint),
                         format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["candid", "snn_sn_vs_all"])
    assert sorted(table["candid"].to_pylist()) == ids and table["snn_sn_vs_all"].null_count == nulls
    polars = pytest.importorskip("polars")
    options = {"aws_endpoint_url": s3env.endpoint, "aws_allow_http": "true", "aws_region": "us-east-1",
               "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
               "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"]}
    frame = polars.read_parquet(f"{url}/**/part-*.parquet", hive_partitioning=True, storage_options=options)
    assert frame["candid"].sort().to_list() == ids and frame["snn_sn_vs_all"].null_count() == nulls
    duckdb = pytest.importorskip("duckdb")  # through pyarrow: DuckDB's own httpfs is fetched online
    assert [r[0] for r in duckdb.sql("select candid from dataset order by 1").fetchall()] == ids
    assert duckdb.sql("select count(*) from dataset where snn_sn_vs_all is null").fetchall() == [(nulls,)]

    again = finkdl(topic, url, "--partition-by", "finkclass")
    assert again.returncode == 0 and _keys(url) == keys  # nothing twice
    shown = run_finkdl("show", url)
    assert shown.returncode == 0 and "3,000" in shown.stdout, shown.stderr


def test_a_server_answering_503_slowdown_is_retried_with_backoff_and_the_download_is_exact(
        topic_factory, finkdl, s3env):
    """A busy S3 answers writes 503 SlowDown, here the first three in a row (the startup
    probe's every try but the last) and every third after: the run backs off and tries again,
    probe, uploads and folder schema alike, rather than failing, and writes every alert once."""
    topic = topic_factory(3000, partitions=3)
    url = _url()
    with SlowDownProxy(s3env.endpoint, first=3, every=3) as proxy:
        done = finkdl(topic, url, "--partition-by", "finkclass", env={"AWS_ENDPOINT_URL": proxy.endpoint})
    assert done.returncode == 0, done.stderr
    assert proxy.refused > 3 and proxy.seen > proxy.refused, (proxy.seen, proxy.refused)
    report = verify(url)  # through the server itself, not the proxy
    assert report.ok and report.rows == 3000 and not report.duplicates, report
    assert _uploads(url) == []


def test_kill_9_during_uploads_then_rerun_is_exact_and_leaves_no_unfinished_upload(
        broker, topic_factory, group_id, s3env, tmp_path):
    # Messages with cutouts and 5 MB parts: files of a flush go up as multipart uploads.
    topic = topic_factory(1500, partitions=2, slim=False, cutouts=True)
    url = _url()
    env = {**os.environ, "FINKDL_S3_PART_MB": "5", "FINKDL_SPOOL": str(tmp_path / "spool"),
           "HOME": "/nonexistent"}
    cmd = [sys.executable, "-m", "finkdl", "download", topic, "--outdir", url, "--servers", broker.servers,
           "--group-id", group_id, "--timeout", "2", "--progress", "plain", "--flush-mb", "12"]
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    deadline = time.monotonic() + 120
    while not (_uploads(url) or [k for k in _keys(url) if "/part-" in k]) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = verify(url)
    assert report.ok and report.rows == 1500, report
    assert _uploads(url) == []  # what the killed run left was aborted, nothing half-visible


def test_wrong_credentials_and_a_missing_bucket_are_one_line_each_and_nothing_is_committed(
        broker, topic_factory, finkdl, group_id, s3env):
    topic = topic_factory(200, partitions=1)
    wrong = finkdl(topic, _url(), env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    missing = finkdl(topic, f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/x")
    for done in (wrong, missing):
        assert done.returncode == ExitCode.OUTPUT, done.stderr
        assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
        assert "not-the-secret" not in done.stderr and os.environ["AWS_SECRET_ACCESS_KEY"] not in done.stderr
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": broker.servers, "group.id": group_id})
    assert consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 0  # none
    consumer.close()


def test_an_object_store_that_ignores_conditional_writes_refuses_a_second_writer(
        broker, topic_factory, group_id, s3env, monkeypatch, tmp_path):
    """Where the server ignores If-Match/If-None-Match, a second finkdl of the group into the
    same prefix is refused: two writers could overwrite each other's folder schema."""
    from confluent_kafka import Consumer
    monkeypatch.setattr(ObjectStore, "honours_conditional_writes", lambda self: False)
    topic = topic_factory(100, partitions=1)
    member = Consumer({"bootstrap.servers": broker.servers, "group.id": group_id})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    try:
        from finkdl.config import Connection, DownloadConfig
        from finkdl.errors import OutputError
        from finkdl.plan import make_plan
        cfg = DownloadConfig(topic=topic, outdir=_url(), connection=Connection(broker.servers, group_id))
        with pytest.raises(OutputError, match="does not honour conditional writes"):
            make_plan(cfg)
    finally:
        member.close()


def _host(broker, topic, url, group, spool, *extra) -> subprocess.Popen:
    """One finkdl of a job array: a host of its own, with its own spool."""
    env = {**os.environ, "FINKDL_SPOOL": str(spool), "HOME": "/nonexistent"}
    return subprocess.Popen(
        [sys.executable, "-m", "finkdl", "download", topic, "--outdir", url, "--servers",
         broker.servers, "--group-id", group, "--timeout", "3", "--progress", "quiet",
         "--partition-by", "finkclass", *extra], env=env, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


@pytest.mark.parametrize("round_", ARRAY_ROUNDS)
def test_three_processes_of_one_group_into_one_prefix_one_killed_then_rerun_is_exact(
        round_, broker, topic_factory, group_id, s3env, tmp_path):
    """A job array into one bucket prefix: each process a host of its own, the folder's schema
    written by whichever comes first; one is killed mid-run, the others take its partitions,
    a rerun finishes: every alert once."""
    n = 24_000
    topic = topic_factory(n, partitions=6)
    url = _url()
    procs = []
    for host in range(3):
        procs.append(_host(broker, topic, url, group_id, tmp_path / f"host{host}", "--workers", "2"))
        time.sleep(1.0)
    deadline = time.monotonic() + 120
    while not [k for k in _keys(url) if "/part-" in k] and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].communicate()
    for proc in (procs[0], procs[2]):  # they take the killed one's partitions when its session ends
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    rerun = _host(broker, topic, url, group_id, tmp_path / "host1")
    _out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    report = verify(url)
    assert report.ok and report.rows == n and not report.duplicates, f"round {round_}"
    assert _uploads(url) == []


def test_the_server_down_20_s_mid_run_then_a_rerun_is_exact(broker, topic_factory, group_id, s3env, tmp_path):
    """The run waits and retries with backoff, or stops with an exit code; either way the
    rerun leaves every alert once."""
    n = 30_000
    topic = topic_factory(n, partitions=2, slim=False, cutouts=True)
    url = _url()
    run = _host(broker, topic, url, group_id, tmp_path / "spool", "--flush-rows", "2000")
    deadline = time.monotonic() + 120
    while not [k for k in _keys(url) if "/part-" in k] and time.monotonic() < deadline:
        time.sleep(0.1)
    s3env.restart(pause_s=20)
    _out, err = run.communicate(timeout=400)
    assert run.returncode in (0, ExitCode.OUTPUT), err
    assert "Traceback" not in err
    rerun = _host(broker, topic, url, group_id, tmp_path / "spool")
    _out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    report = verify(url)
    assert report.ok and report.rows == n and not report.duplicates


def test_a_prefix_holding_alerts_of_a_conflicting_schema_is_refused_in_one_line(
        topic_factory, finkdl, s3env):
    url = _url()
    first = topic_factory(0, partitions=1, schema=versions.v1_schema(), records=versions.v1_alerts(100))
    other = topic_factory(0, partitions=1, schema=versions.conflicting_schema(),
                          records=versions.conflicting_alerts(100))
    assert finkdl(first, url).returncode == 0
    keys = _keys(url)
    refused = finkdl(other, url)
    assert refused.returncode == ExitCode.TOPIC, refused.stderr
    assert "'candidate.isdiffpos' is string in the folder" in refused.stderr
    assert refused.stderr.count("error:") == 1 and "Traceback" not in refused.stderr
    assert _keys(url) == keys  # nothing of the other topic written


def test_a_recreated_topic_started_over_in_a_bucket_says_where_in_the_bucket_its_old_files_went(
        broker, finkdl, s3env):
    """The message names the s3:// place the earlier files were moved to (not the local spool),
    the new topic is downloaded exactly, and readers skip what was set aside."""
    topic = make_topic(broker, 400, partitions=2)
    url = _url()
    assert finkdl(topic, url).returncode == 0
    recreate_topic(broker, topic, 2, 200)
    refused = finkdl(topic, url)
    assert refused.returncode == ExitCode.STALE, refused.stderr
    again = finkdl(topic, url, "--start-over")
    assert again.returncode == 0, again.stderr
    said = "".join(again.stderr.split())  # rich may fold the long line anywhere
    assert f"setasidein{url}/_finkdl/set-aside/" in said
    assert [k for k in _keys(url) if "/_finkdl/set-aside/" in k and "set-aside-part-" in k]
    report = verify(url)
    assert report.ok and report.rows == 200
