import datetime as dt
import os

import pyarrow as pa
import pytest

from finkdl.errors import ConfigError
from finkdl.local.generator import HOSTILE_LABELS, lsst_schema, ztf_schema
from finkdl.partitioning import (Partitioning, group_rows, label_columns, label_dir,
                                 partitioning_for, segment)
from finkdl.schema import parse_schema
import json


@pytest.mark.parametrize("label", [v for v in HOSTILE_LABELS if v is not None] + ["a\x00b", "/etc/passwd"])
def test_a_label_is_always_one_folder_component_inside_the_output(label):
    component = label_dir(Partitioning(keys=("finkclass",)), (label,))
    assert "/" not in component and "\x00" not in component
    assert len(component.encode()) <= 255
    folder = os.path.normpath(os.path.join("/out", component))
    assert os.path.dirname(folder) == "/out" and folder.startswith("/out/finkclass=")


def test_a_null_label_has_a_folder_of_its_own_that_every_reader_reads_alike():
    assert label_dir(Partitioning(keys=("finkclass",)), (None,)) == "finkclass=(null)"
    timed = Partitioning(keys=("year", "month", "day"), source="candidate.jd", day_offset=0.0)
    assert label_dir(timed, (None, None, None)) == "year=0/month=0/day=0"


def test_long_labels_stay_apart():
    assert segment("x" * 300) != segment("x" * 299 + "y")


def test_ztf_time_partition_comes_from_julian_date():
    part = partitioning_for("time", "ztf", parse_schema(json.dumps(ztf_schema(slim=True)), "t"))
    jd = 2460642.75  # 2024-11-28 06:00 UTC
    table = pa.table({"candidate": pa.array([{"jd": jd}, {"jd": 2451544.5}])})
    years, months, days = (c.to_pylist() for c in label_columns(table, part))
    assert list(zip(years, months, days)) == [(2024, 11, 28), (2000, 1, 1)]


def test_lsst_time_partition_comes_from_mjd():
    part = partitioning_for("time", "lsst", parse_schema(json.dumps(lsst_schema()), "t"))
    mjd = 60000.99  # 2023-02-25 23:45 UTC
    table = pa.table({"diaSource": pa.array([{"midpointMjdTai": mjd}])})
    assert [c.to_pylist()[0] for c in label_columns(table, part)] == [2023, 2, 25]
    expected = dt.datetime(1858, 11, 17) + dt.timedelta(days=mjd)
    assert (expected.year, expected.month, expected.day) == (2023, 2, 25)


def test_unknown_partition_column_is_refused_naming_the_columns_that_exist():
    schema = parse_schema(json.dumps(lsst_schema()), "t")
    with pytest.raises(ConfigError) as err:
        partitioning_for("finkclass", "lsst", schema)
    assert "diaSourceId" in str(err.value)


def test_rows_are_grouped_by_label_in_their_order():
    table = pa.table({"finkclass": ["a", None, "a", "b", None]})
    groups = group_rows(table, Partitioning(keys=("finkclass",), source="finkclass"))
    assert {k: list(v) for k, v in groups.items()} == {("a",): [0, 2], (None,): [1, 4], ("b",): [3]}


@pytest.mark.parametrize("column", ["candidate", "prv_candidates", "cutoutScience"])
def test_a_column_of_records_lists_or_bytes_is_refused_as_a_label_before_any_worker_starts(column):
    schema = parse_schema(json.dumps(ztf_schema(slim=False, cutouts=True)), "t")
    with pytest.raises(ConfigError, match="cannot name folders") as refused:
        partitioning_for(column, "ztf", schema)
    suggested = refused.value.hint
    assert "finkclass" in suggested and "candidate," not in suggested and "prv_candidates" not in suggested
    assert suggested.count("finkclass") == 1
