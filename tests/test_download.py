"""The main job end to end against the real local Kafka broker."""
from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time

import fastavro
import pandas as pd
import pyarrow.dataset as ds
import pytest

from finkdl.local import generator
from finkdl.verify import verify

from conftest import SHARED, run_finkdl

pytestmark = pytest.mark.broker


def _candids(outdir):
    return pd.read_parquet(outdir, columns=["candid"])["candid"].tolist()


def test_exact_count_over_several_partitions_and_workers(topic_factory, finkdl, tmp_path):
    topic = topic_factory(6000, partitions=6)
    done = finkdl(topic, tmp_path, "--workers", "3", "--partition-by", "finkclass")
    assert done.returncode == 0, done.stderr
    ids = _candids(tmp_path)
    assert len(ids) == 6000 and len(set(ids)) == 6000
    report = verify(tmp_path)
    assert report.ok and sorted(report.topics[topic]) == list(range(6))
    assert report.ids.checked == {"candid": 6000} and not report.ids.unchecked


def test_rerun_adds_nothing_and_from_beginning_adds_no_duplicate(topic_factory, finkdl, tmp_path):
    topic = topic_factory(3000, partitions=3)
    assert finkdl(topic, tmp_path).returncode == 0
    files = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert finkdl(topic, tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files
    assert finkdl(topic, tmp_path, "--from-beginning").returncode == 0
    ids = _candids(tmp_path)
    assert len(ids) == 3000 == len(set(ids))
    assert verify(tmp_path).ok


def test_limit_commits_exactly_that_many_and_a_rerun_completes(topic_factory, finkdl, tmp_path):
    topic = topic_factory(4000, partitions=4)
    assert finkdl(topic, tmp_path, "--limit", "1500").returncode == 0
    assert len(_candids(tmp_path)) == 1500
    assert finkdl(topic, tmp_path).returncode == 0
    ids = _candids(tmp_path)
    assert len(ids) == 4000 == len(set(ids)) and verify(tmp_path).ok


def test_kill_9_mid_run_then_rerun_is_exact(broker, topic_factory, group_id, tmp_path):
    topic = topic_factory(60000, partitions=3)
    cmd = [sys.executable, "-m", "finkdl", "download", topic, "--outdir", str(tmp_path),
           "--servers", broker.servers, "--group-id", group_id, "--timeout", "2",
           "--flush-rows", "2000", "--progress", "quiet"]
    for delay in (3.0, 4.0):
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    ids = _candids(tmp_path)
    assert len(ids) == 60000 == len(set(ids))
    assert verify(tmp_path).ok


def test_hostile_and_null_labels_round_trip_through_pandas_and_pyarrow(topic_factory, finkdl, tmp_path):
    records = list(generator.alerts(2000, slim=True, cutouts=False, hostile=True))
    topic = topic_factory(0, records=records)
    assert finkdl(topic, tmp_path, "--partition-by", "finkclass").returncode == 0
    expected = {r["candid"]: "(null)" if r["finkclass"] is None else r["finkclass"]
                for r in records if r["finkclass"] != "x" * 300}
    df = pd.read_parquet(tmp_path, columns=["candid", "finkclass"])
    got = {c: (None if pd.isna(f) else f) for c, f in zip(df.candid, df.finkclass)}
    assert {c: got[c] for c in expected} == expected
    table = ds.dataset(tmp_path, partitioning="hive").to_table(columns=["candid", "finkclass"])
    assert table.num_rows == 2000
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("survey", ["ztf", "lsst"])
def test_time_partitions_follow_the_observation_date(survey, topic_factory, finkdl, tmp_path):
    records = list(generator.alerts(500, survey=survey, slim=True, cutouts=False))
    topic = topic_factory(0, survey=survey, records=records)
    assert finkdl(topic, tmp_path, "--partition-by", "time", "--survey", survey).returncode == 0
    df = pd.read_parquet(tmp_path)
    assert len(df) == 500
    for row in df.itertuples():
        if survey == "ztf":
            days = row.candidate["jd"] - 2440587.5
        else:
            days = row.diaSource["midpointMjdTai"] - 40587.0
        date = pd.Timestamp(days * 86400, unit="s")
        assert (row.year, row.month, row.day) == (date.year, date.month, date.day)


def test_avro_format_holds_every_alert_once(topic_factory, finkdl, tmp_path):
    topic = topic_factory(1000, partitions=2)
    assert finkdl(topic, tmp_path, "--format", "avro", "--partition-by", "tnsclass").returncode == 0
    ids = []
    for path in tmp_path.rglob("*.avro"):
        with open(path, "rb") as f:
            ids += [r["candid"] for r in fastavro.reader(f)]
    assert len(ids) == 1000 == len(set(ids)) and verify(tmp_path).ok


def test_verify_catches_a_deleted_file(topic_factory, finkdl, tmp_path):
    topic = topic_factory(3000, partitions=1)
    assert finkdl(topic, tmp_path, "--flush-rows", "1000").returncode == 0
    assert run_finkdl("verify", str(tmp_path)).returncode == 0
    victim = sorted(tmp_path.rglob("*.parquet"))[1]
    victim.unlink()
    done = run_finkdl("verify", str(tmp_path))
    assert done.returncode != 0 and "GAP" in done.stdout


def test_an_undecodable_message_is_kept_raw_and_the_rest_downloaded(broker, topic_factory, finkdl, tmp_path):
    topic = topic_factory(500, partitions=1)
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.servers})
    producer.produce(topic, value=b"\x01\x02 random bytes", partition=0)
    producer.flush(10)
    done = finkdl(topic, tmp_path)
    assert done.returncode == 7, done.stderr
    assert "could not be decoded" in done.stderr
    assert len(_candids(tmp_path)) == 500
    quarantine = pd.read_parquet(tmp_path / "_quarantine")
    assert list(quarantine.offset) == [500]
    assert verify(tmp_path).ok


def test_schema_in_message_keys_is_accepted(broker, group_id, tmp_path):
    topic = f"fink_livestream_{group_id}"
    broker.create_topic(topic, 1)
    schema = generator.ztf_schema(slim=True, cutouts=False)
    generator.produce(broker.servers, topic, schema, generator.alerts(200, slim=True, cutouts=False), 1,
                      with_schema_topic=False, key_schema=True)
    done = run_finkdl("download", topic, "--outdir", str(tmp_path), "--timeout", "2",
                      servers=broker.servers, group=group_id)
    assert done.returncode == 0, done.stderr
    assert len(_candids(tmp_path)) == 200


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/fink is not present")
@pytest.mark.parametrize("survey,avro,schema", [
    ("ztf", "ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json"),
    ("lsst", "lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json"),
])
def test_real_fink_samples_decode_to_the_values_fastavro_gives(survey, avro, schema, topic_factory,
                                                                finkdl, tmp_path):
    writer_schema = json.loads((SHARED / schema).read_text())
    with open(SHARED / avro, "rb") as f:
        records = list(fastavro.reader(f))
    topic = topic_factory(0, partitions=2, survey=survey, schema=writer_schema, records=records)
    assert finkdl(topic, tmp_path, "--survey", survey).returncode == 0
    parsed = fastavro.parse_schema(writer_schema)
    expected = [fastavro.schemaless_reader(io.BytesIO(generator.encode(parsed, r)), parsed, None)
                for r in records]
    key = "candid" if survey == "ztf" else "diaSourceId"
    rows = {r[key]: r for r in ds.dataset(tmp_path).to_table().to_pylist()}
    assert len(rows) == len(records)
    for record in expected:
        assert _plain(rows[record[key]]) == _plain(record)


def _plain(value):
    """Arrow gives maps as lists of pairs; compare them as dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value
