"""Real Fink alerts of several eras, downloaded into shared folders from the real broker, read
back by every reader people use: the same rows, every 64-bit id exact with its nulls, and an
integer type for ids in each.

Folder "lsst": the real Rubin/LSST 2026 alerts (copies with new ids, a few with a null id) and
ELASTiCC-like alerts, whose top-level diaSourceId is null and whose id is alertId. Folder
"ztf": the real ZTF alerts of 2026 and of 2019/2020 (whose ``timestamp`` is a timestamp where
2026's is text), partitioned by observation time.
"""
from __future__ import annotations

import copy
import datetime
import json
import subprocess
import sys

import fastavro
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from finkdl.local import generator

from conftest import SHARED, download, make_topic, run_finkdl

pytestmark = [pytest.mark.broker,
              pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/fink is not present")]
LSST_COPIES = 40  # of each of the 7 real alerts
NULL_IDS = 3  # copies whose top-level diaSourceId is null
ELASTICC = 300


def _real(path: str) -> tuple[dict, list[dict]]:
    with open(SHARED / path, "rb") as f:
        reader = fastavro.reader(f)
        return reader.writer_schema, list(reader)


def _lsst_copies() -> tuple[dict, list[dict]]:
    """Copies of the real LSST alerts, each with an id of its own past 2**53."""
    schema = json.loads((SHARED / "lsst/schema-lsst-ftransfer-2026-03-18.json").read_text())
    _, records = _real("lsst/alerts-lsst-2026-03.avro")
    copies = []
    for k in range(LSST_COPIES):
        for record in records:
            one = copy.deepcopy(record)
            one["diaSourceId"] = record["diaSourceId"] + 1_000_003 * k
            one["diaSource"]["diaSourceId"] = one["diaSourceId"]
            copies.append(one)
    for one in copies[:NULL_IDS]:
        one["diaSourceId"] = None
    return schema, copies


def _download(broker, outdir, schema, records, *args) -> None:
    topic = make_topic(broker, 0, partitions=2, schema=schema, records=records)
    done = download(broker, "readers", topic, outdir, *args)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def folders(broker, tmp_path_factory):
    """The folders, downloaded once for the module; ``ztf-first-2019`` has the eras the other
    way round (its 2019 files rewritten when 2026's text arrives)."""
    root = tmp_path_factory.mktemp("readers")
    lsst_schema, lsst = _lsst_copies()
    _download(broker, root / "lsst", lsst_schema, lsst, "--survey", "lsst")
    elasticc = list(generator.alerts(ELASTICC, survey="elasticc"))
    _download(broker, root / "lsst", generator.elasticc_schema(), elasticc, "--survey", "elasticc")
    ztf_schema = json.loads((SHARED / "ztf/schema-ztf-ftransfer-2026-03-23.json").read_text())
    _, ztf = _real("ztf/alerts-ztf-2026-03-22.avro")
    old_schema, old = _real("ztf-2019/alerts-ztf-2019-fink-distribution.avro")
    _download(broker, root / "ztf", ztf_schema, ztf, "--partition-by", "time")
    _download(broker, root / "ztf", old_schema, old, "--partition-by", "time")
    _download(broker, root / "ztf-first-2019", old_schema, old)
    _download(broker, root / "ztf-first-2019", ztf_schema, ztf)
    return {"lsst": (root / "lsst", lsst, elasticc), "ztf": (root / "ztf", ztf, old),
            "ztf-first-2019": (root / "ztf-first-2019", ztf, old)}


# --- the readers, each as a user writes it -------------------------------------------------
def read_pandas(outdir, columns):
    return pd.read_parquet(outdir)[columns]


def read_pandas_arrow(outdir, columns):
    return pd.read_parquet(outdir, dtype_backend="pyarrow")[columns]


def read_pyarrow(outdir, columns):
    return ds.dataset(outdir, partitioning="hive").to_table(columns=columns)


def read_polars(outdir, columns):
    import polars as pl
    return pl.read_parquet(f"{outdir}/**/part-*.parquet", hive_partitioning=True).select(columns)


def read_duckdb(outdir, columns):
    import duckdb
    return duckdb.sql(f"select {', '.join(columns)} from "
                      f"read_parquet('{outdir}/**/part-*.parquet', hive_partitioning = true)")


SPARK = """
import json, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
df = spark.read.parquet(sys.argv[1]).select(*sys.argv[2:])
print(json.dumps({"types": dict(df.dtypes), "rows": [list(r) for r in df.collect()]}, default=str))
spark.stop()
"""


@pytest.fixture(scope="module")
def spark_reads(folders):
    """Spark (local mode, on this machine's Java) reads each folder once, in a process of its
    own (its JVM, and its logs, stay out of the test process)."""
    columns = {"lsst": ["diaSourceId", "alertId"], "ztf": ["candid", "timestamp", "year"]}
    out = {}
    for name, (outdir, *_rest) in folders.items():
        if name not in columns:
            continue
        done = subprocess.run([sys.executable, "-c", SPARK, str(outdir), *columns[name]],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _as_rows(result, columns) -> tuple[list[tuple], dict[str, str]]:
    """Rows as tuples of Python values (None for nulls) and each column's type, whatever read them."""
    if isinstance(result, pd.DataFrame):
        rows = [tuple(None if v is pd.NA or v is None or (isinstance(v, float) and v != v) else v
                      for v in row) for row in result.astype(object).itertuples(index=False)]
        return rows, {c: str(result[c].dtype) for c in columns}
    if isinstance(result, pa.Table):
        return list(zip(*(result.column(c).to_pylist() for c in columns))), \
            {c: str(result.schema.field(c).type) for c in columns}
    if hasattr(result, "fetchall"):  # duckdb
        return result.fetchall(), dict(zip(columns, map(str, result.types)))
    return result.rows(), {c: str(result.schema[c]) for c in columns}  # polars


INTEGER_TYPES = {"Int64", "int64", "int64[pyarrow]", "BIGINT", "bigint"}
READERS = {"pandas": read_pandas, "pandas pyarrow backend": read_pandas_arrow,
           "pyarrow.dataset": read_pyarrow, "polars": read_polars, "duckdb": read_duckdb}


@pytest.mark.parametrize("reader", [*READERS, "spark"])
def test_every_reader_gives_every_lsst_and_elasticc_id_exactly_with_its_nulls(reader, folders, spark_reads):
    outdir, lsst, elasticc = folders["lsst"]
    columns = ["diaSourceId", "alertId"]
    if reader == "spark":
        rows = [tuple(r) for r in spark_reads["lsst"]["rows"]]
        types = spark_reads["lsst"]["types"]
    else:
        rows, types = _as_rows(READERS[reader](outdir, columns), columns)
    expected = sorted([(r["diaSourceId"], None) for r in lsst] + [(None, r["alertId"]) for r in elasticc],
                      key=repr)
    assert sorted(rows, key=repr) == expected
    assert all(isinstance(v, int) for row in rows for v in row if v is not None)
    assert {types[c] for c in columns} <= INTEGER_TYPES, types
    print(f"\nREADER {reader}: {len(rows):,} rows; types {types}; "
          f"{sum(r[0] is None for r in rows)} null diaSourceId, e.g. {max(r[0] or 0 for r in rows)}")


def _year(jd: float) -> int:
    return (datetime.datetime(1970, 1, 1) + datetime.timedelta(days=jd - 2440587.5)).year


def _ztf_expected(new: list[dict], old: list[dict]) -> dict[int, str]:
    """candid → timestamp: 2026's text as sent, 2019's timestamps as the UTC text Fink writes."""
    expected = {r["candid"]: r["timestamp"] for r in new}
    expected.update({r["candid"]: r["timestamp"].astimezone(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S.%f") for r in old})
    return expected


@pytest.mark.parametrize("reader", [*READERS, "spark"])
def test_every_reader_reads_both_eras_of_ztf_in_one_folder_with_times_as_text(reader, folders, spark_reads):
    outdir, new, old = folders["ztf"]
    columns = ["candid", "timestamp", "year"]
    if reader == "spark":
        rows = [tuple(r) for r in spark_reads["ztf"]["rows"]]
        types = spark_reads["ztf"]["types"]
    else:
        rows, types = _as_rows(READERS[reader](outdir, columns), columns)
    assert {row[0]: row[1] for row in rows} == _ztf_expected(new, old) and len(rows) == len(new) + len(old)
    assert types["candid"] in INTEGER_TYPES
    years = {r["candid"]: _year(r["candidate"]["jd"]) for r in new + old}
    assert all(int(row[2]) == years[row[0]] for row in rows)
    print(f"\nREADER {reader}: {len(rows):,} ZTF rows of 2019 and 2026; types {types}; "
          f"e.g. {min(rows, key=repr)[:2]}")


def test_the_older_era_first_is_rewritten_as_text_when_the_newer_arrives(folders):
    outdir, new, old = folders["ztf-first-2019"]
    table = read_pyarrow(outdir, ["candid", "timestamp"])
    assert table.schema.field("timestamp").type == pa.string()
    assert dict(zip(*(table.column(c).to_pylist() for c in ("candid", "timestamp")))) == _ztf_expected(new, old)
    assert run_finkdl("verify", str(outdir)).returncode == 0


def test_verify_says_which_id_checked_which_rows_and_how_many_it_could_not_check(folders):
    outdir, lsst, elasticc = folders["lsst"]
    done = run_finkdl("verify", str(outdir))
    assert done.returncode == 0, done.stdout + done.stderr
    checked = len(lsst) - NULL_IDS
    assert (f"duplicates: 0 duplicate id values among {checked + len(elasticc):,} rows checked "
            f"({checked:,} by diaSourceId, {len(elasticc):,} by alertId)") in done.stdout
    assert f"NOT CHECKED for duplicates: {NULL_IDS} rows, as their id is null" in done.stdout
    assert "verify: OK" in done.stdout


def test_schema_diff_of_the_two_ztf_eras_says_timestamps_become_text(broker, folders):
    outdir = folders["ztf"][0]
    old_schema, old = _real("ztf-2019/alerts-ztf-2019-fink-distribution.avro")
    topic = make_topic(broker, 0, partitions=1, schema=old_schema, records=old[:2])
    done = run_finkdl("schema", topic, "--diff", str(outdir), servers=broker.servers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as text: times become UTC text as Fink writes it" in done.stdout
    assert "compatible: one folder holds both" in done.stdout
