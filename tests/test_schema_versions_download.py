"""Topics of different schema versions downloaded into one folder, against the real broker."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from finkdl.local import generator
from finkdl.errors import ExitCode
from finkdl.verify import verify

import versions
from conftest import run_finkdl

pytestmark = pytest.mark.broker
V2_FIRST = 10**12 + versions.V2_START


def _snapshot(outdir):
    return {p: p.stat().st_mtime_ns for p in outdir.rglob("*")}


def _lag(broker, topic, group):
    done = run_finkdl("offsets", topic, servers=broker.servers, group=group, check=True)
    return int(done.stdout.splitlines()[-1].split()[-1].replace(",", ""))


def _versions_per_file(outdir):
    """For each data file, which versions its rows come from (1, 2 or both)."""
    return [{1 if c < V2_FIRST else 2 for c in pq.read_table(p, columns=["candid"])["candid"].to_pylist()}
            for p in outdir.rglob("part-*.parquet")]


def _livestream(broker, group_id, partitions, *schemas_and_alerts):
    topic = f"fink_livestream_{group_id}"
    broker.create_topic(topic, partitions)
    for schema, alerts in schemas_and_alerts:
        generator.produce(broker.servers, topic, schema, alerts, partitions,
                          with_schema_topic=False, key_schema=True)
    return topic


def test_two_schema_versions_in_one_folder_read_back_as_one_table(topic_factory, finkdl, tmp_path):
    v1, v2 = versions.v1_alerts(300), versions.v2_alerts(300)
    first = topic_factory(0, partitions=2, schema=versions.v1_schema(), records=v1)
    second = topic_factory(0, partitions=2, schema=versions.v2_schema(), records=v2)
    assert finkdl(first, tmp_path, "--partition-by", "finkclass").returncode == 0
    files_of_first = {p.relative_to(tmp_path) for p in tmp_path.rglob("part-*.parquet")}
    done = finkdl(second, tmp_path, "--partition-by", "finkclass")
    assert done.returncode == 0, done.stderr
    assert files_of_first < {p.relative_to(tmp_path) for p in tmp_path.rglob("part-*.parquet")}

    df = pd.read_parquet(tmp_path).set_index("candid")
    table = ds.dataset(tmp_path, partitioning="hive").to_table()
    assert len(df) == table.num_rows == 600 and df.index.is_unique
    assert set(table.schema.names) == set(df.columns) | {"candid"}
    rows = {r["candid"]: r for r in table.to_pylist()}
    for alert in v1[:5]:
        row, frame = rows[alert["candid"]], df.loc[alert["candid"]]
        assert row["candidate"]["fid"] == alert["candidate"]["fid"]  # int → long
        assert row["candidate"]["magpsf"] == float(np.float32(alert["candidate"]["magpsf"]))  # float → double
        assert row["rf_snia_vs_nonia"] == frame.rf_snia_vs_nonia == alert["rf_snia_vs_nonia"]
        assert row["anomaly_score"] is None and math.isnan(frame.anomaly_score)
        assert row["lc_features_g"] is None or row["lc_features_g"]["std"] is None
        history = [p for p in row["prv_candidates"] or [] if p is not None]
        assert [p["pid"] for p in history] == [p["pid"] for p in alert["prv_candidates"] or [] if p is not None]
        assert frame.finkclass == (alert["finkclass"] or "(null)")  # a null label's folder
    for alert in v2[:5]:
        row, frame = rows[alert["candid"]], df.loc[alert["candid"]]
        assert row["candidate"]["magpsf"] == alert["candidate"]["magpsf"]
        assert row["anomaly_score"] == frame.anomaly_score == alert["anomaly_score"]
        assert row["rf_snia_vs_nonia"] is None and math.isnan(frame.rf_snia_vs_nonia)
        assert row["lc_features_g"] is None or row["lc_features_g"]["std"] == 0.5
        assert all(p is None or p["pid"] is None for p in row["prv_candidates"] or [])
    assert df.rf_snia_vs_nonia.notna().sum() == 300 and df.anomaly_score.notna().sum() == 300
    done = run_finkdl("verify", str(tmp_path))
    assert done.returncode == 0 and "verify: OK" in done.stdout


def test_a_conflicting_version_is_refused_before_anything_is_written(broker, topic_factory, finkdl,
                                                                    group_id, tmp_path):
    first = topic_factory(0, partitions=1, schema=versions.v1_schema(), records=versions.v1_alerts(100))
    conflicting = topic_factory(0, partitions=1, schema=versions.conflicting_schema(),
                                records=versions.conflicting_alerts(100))
    assert finkdl(first, tmp_path).returncode == 0
    before = _snapshot(tmp_path)
    done = finkdl(conflicting, tmp_path)
    assert done.returncode == ExitCode.TOPIC
    assert "'candidate.isdiffpos' is string in the folder" in done.stderr and "but double in topic" in done.stderr
    assert "--outdir" in done.stderr and "--drop-columns candidate.isdiffpos" in done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(tmp_path) == before
    assert _lag(broker, conflicting, group_id) == 100


def test_a_livestream_topic_changing_schema_mid_topic_is_written_version_by_version(broker, finkdl,
                                                                                   group_id, tmp_path):
    topic = _livestream(broker, group_id, 2, (versions.v1_schema(), versions.v1_alerts(200)),
                        (versions.v2_schema(), versions.v2_alerts(200)))
    done = finkdl(topic, tmp_path)
    assert done.returncode == 0, done.stderr
    df = pd.read_parquet(tmp_path)
    assert len(df) == 400 and df.candid.is_unique
    old, new = df[df.candid < V2_FIRST], df[df.candid >= V2_FIRST]
    assert len(old) == len(new) == 200
    assert old.anomaly_score.isna().all() and new.rf_snia_vs_nonia.isna().all()
    assert sorted(new.anomaly_score) == [i / 10 for i in range(200)]
    assert all(len(found) == 1 for found in _versions_per_file(tmp_path))  # no file mixes versions
    assert ds.dataset(tmp_path, partitioning="hive").to_table().num_rows == 400
    assert verify(tmp_path).ok


def test_a_conflicting_schema_mid_topic_stops_before_writing_any_of_it(broker, finkdl, group_id, tmp_path):
    topic = _livestream(broker, group_id, 1, (versions.v1_schema(), versions.v1_alerts(150)),
                        (versions.conflicting_schema(), versions.conflicting_alerts(50)))
    done = finkdl(topic, tmp_path)
    assert done.returncode == ExitCode.TOPIC
    assert "candidate.isdiffpos" in done.stderr and "offset 150" in done.stderr
    assert sorted(pd.read_parquet(tmp_path).candid) == [a["candid"] for a in versions.v1_alerts(150)]
    assert _lag(broker, topic, group_id) == 50


def test_columns_drop_columns_and_drop_cutouts_keep_only_those_columns(topic_factory, finkdl, group_id, tmp_path):
    topic = topic_factory(100, partitions=1, cutouts=True)
    done = finkdl(topic, tmp_path / "some", "--columns", "objectId, candidate.jd", "--partition-by", "finkclass")
    assert done.returncode == 0, done.stderr
    some = pd.read_parquet(tmp_path / "some")
    assert sorted(some.columns) == ["candid", "candidate", "finkclass", "objectId"]
    assert len(some) == 100 and all(set(c) == {"jd"} for c in some.candidate)

    done = finkdl(topic, tmp_path / "light", "--drop-cutouts", group=group_id + "-light")
    assert done.returncode == 0, done.stderr
    light = pd.read_parquet(tmp_path / "light")
    assert len(light) == 100 and not any(c.startswith("cutout") for c in light.columns)
    assert {"candid", "candidate", "prv_candidates", "finkclass"} <= set(light.columns)
    assert verify(tmp_path / "some").ok and verify(tmp_path / "light").ok

    done = finkdl(topic, tmp_path / "fewer", "--drop-columns", "mangrove, candidate.rb,prv_candidates.pid",
                  group=group_id + "-fewer")
    assert done.returncode == 0, done.stderr
    fewer = ds.dataset(tmp_path / "fewer", partitioning="hive").to_table()
    assert fewer.num_rows == 100 and "mangrove" not in fewer.schema.names
    assert "cutoutScience" in fewer.schema.names
    candidate = fewer.schema.field("candidate").type
    assert "rb" not in candidate.names and "jd" in candidate.names
    assert "pid" not in fewer.schema.field("prv_candidates").type.value_type.names

    done = finkdl(topic, tmp_path / "none", "--columns", "objectId,nope", group=group_id + "-none")
    assert done.returncode == ExitCode.USAGE
    assert "'nope'" in done.stderr and "candid, schemavsn, objectId" in done.stderr
    assert not list((tmp_path / "none").rglob("*.parquet"))


def _cells(out: str) -> set[tuple[str, ...]]:
    return {tuple(re.split(r"\s{2,}", line.strip())) for line in out.splitlines()}


def test_schema_diff_between_topics_and_against_a_folder(broker, topic_factory, finkdl, group_id, tmp_path):
    first = topic_factory(0, partitions=1, schema=versions.v1_schema(), records=versions.v1_alerts(20))
    second = topic_factory(0, partitions=1, schema=versions.v2_schema(), records=versions.v2_alerts(20))
    conflicting = topic_factory(0, partitions=1, schema=versions.conflicting_schema(),
                                records=versions.conflicting_alerts(5))
    done = run_finkdl("schema", second, "--diff", first, servers=broker.servers, group=group_id)
    assert done.returncode == 0, done.stderr
    lines = _cells(done.stdout)
    assert ("new only", "anomaly_score", "-", "double") in lines
    assert ("old only", "rf_snia_vs_nonia", "double", "-") in lines
    assert ("widened", "candidate.fid", "int32", "int64") in lines
    assert "compatible" in done.stdout

    assert finkdl(first, tmp_path, "--partition-by", "finkclass").returncode == 0
    done = run_finkdl("schema", conflicting, "--diff", str(tmp_path), servers=broker.servers, group=group_id)
    assert done.returncode == 1
    assert ("conflict", "candidate.isdiffpos", "string", "double") in _cells(done.stdout)
    assert "without finkclass: in its folder names" in done.stdout
