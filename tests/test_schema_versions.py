"""Schema versions in one folder, without a broker: merging, widening, conflicts, the diff,
casting tables and files to the folder's schema, and the column selection."""
from __future__ import annotations

import datetime
import json
import re
import shutil
from pathlib import Path

import fastavro
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from finkdl.local import generator
from finkdl.arrow_schema import arrow_schema
from finkdl.buffer import PartitionBuffer
from finkdl.commands.inspect import print_diff
from finkdl.layout import layout_for
from finkdl.config import Connection, DownloadConfig
from finkdl.conform import conform
from finkdl.decode import decode_values
from finkdl.errors import ConfigError, SchemaError
from finkdl.folder import Folder, FolderSchema, from_json, read_folder_schema, to_json
from finkdl.merge import merge_or_refuse, merge_schemas, merge_types
from finkdl.naming import META_DIR, QUARANTINE_DIR, file_name, parse_file_name
from finkdl.storage import LocalDisk
from finkdl.schema import parse_schema
from finkdl.verify import verify

import versions
from conftest import write_buffer

V1 = parse_schema(json.dumps(versions.v1_schema()), "v1")
V2 = parse_schema(json.dumps(versions.v2_schema()), "v2")
CONFLICTING = parse_schema(json.dumps(versions.conflicting_schema()), "v3")


def _config(**kw) -> DownloadConfig:
    return DownloadConfig(topic="t", outdir=Path("."), connection=Connection("127.0.0.1:9", "g"), **kw)


# --- merging ---------------------------------------------------------------------------
def test_a_field_of_one_version_only_is_kept_and_nullable():
    old = pa.schema([pa.field("a", pa.int64(), nullable=False), pa.field("gone", pa.string())])
    new = pa.schema([pa.field("a", pa.int64(), nullable=False), pa.field("new", pa.float64(), nullable=False)])
    merged, _ = merge_schemas(old, new)
    assert merged.names == ["a", "gone", "new"]
    assert [f.nullable for f in merged] == [False, True, True]


def test_numbers_widen_int_to_long_to_double_and_float_to_double():
    widen = {(pa.int32(), pa.int64()): pa.int64(), (pa.int64(), pa.int32()): pa.int64(),
             (pa.int64(), pa.float64()): pa.float64(), (pa.int32(), pa.float32()): pa.float64(),
             (pa.float32(), pa.float64()): pa.float64(), (pa.null(), pa.string()): pa.string()}
    for (old, new), common in widen.items():
        assert merge_types(old, new)[0] == common


def test_records_lists_of_records_and_map_values_merge_field_by_field():
    merged, changes = merge_schemas(arrow_schema(V1.avro), arrow_schema(V2.avro))
    assert merged.field("candidate").type.field("fid").type == pa.int64()
    assert merged.field("candidate").type.field("magpsf").type == pa.float64()
    assert merged.field("lc_features_g").type.names == ["mean", "amplitude", "std"]
    assert "pid" in merged.field("prv_candidates").type.value_type.names
    assert {(c.path, c.kind) for c in changes} == {
        ("candidate.fid", "widened"), ("candidate.magpsf", "widened"),
        ("prv_candidates.pid", "removed"), ("rf_snia_vs_nonia", "removed"),
        ("lc_features_g.std", "added"), ("anomaly_score", "added")}
    maps, _ = merge_types(pa.map_(pa.string(), pa.int32()), pa.map_(pa.string(), pa.float64()))
    assert maps == pa.map_(pa.string(), pa.float64())


def test_a_timestamp_meeting_text_becomes_the_text_fink_writes_in_either_order():
    stamp = pa.schema([("timestamp", pa.timestamp("us", tz="UTC")), ("night", pa.date32())])
    text = pa.schema([("timestamp", pa.string()), ("night", pa.string())])
    assert merge_schemas(stamp, text)[0] == text == merge_schemas(text, stamp)[0]
    when = datetime.datetime(2020, 3, 18, 14, 5, 42, 981000, tzinfo=datetime.timezone.utc)
    table = pa.table({"timestamp": pa.array([when, None], stamp.field(0).type),
                      "night": pa.array([when.date(), None], pa.date32())})
    assert conform(table, text).to_pylist() == [
        {"timestamp": "2020-03-18 14:05:42.981000", "night": "2020-03-18"},
        {"timestamp": None, "night": None}]


def test_a_string_become_double_is_refused_naming_its_path_and_both_types():
    with pytest.raises(SchemaError) as caught:
        merge_or_refuse(arrow_schema(V1.avro), arrow_schema(CONFLICTING.avro), "the folder", "topic T")
    text = str(caught.value)
    assert "'candidate.isdiffpos' is string in the folder but double in topic T" in text
    assert "--outdir" in text and "--drop-columns candidate.isdiffpos" in text


# --- the diff ----------------------------------------------------------------------------
def _rows(out: str) -> set[tuple[str, ...]]:
    """The diff's table rows, cells apart (cells are separated by two spaces at least)."""
    return {tuple(re.split(r"\s{2,}", line.strip())) for line in out.splitlines()}


def test_diff_shows_fields_added_removed_and_changed_with_both_types_and_the_rules(capsys):
    print_diff(arrow_schema(V2.avro), "T2", arrow_schema(V1.avro), "T1", "topic")
    out = capsys.readouterr().out
    assert out.startswith("new: topic T2\nold: topic T1\n")
    assert {("new only", "anomaly_score", "-", "double"), ("old only", "rf_snia_vs_nonia", "double", "-"),
            ("widened", "candidate.fid", "int32", "int64"), ("widened", "candidate.magpsf", "float", "double"),
            ("old only", "prv_candidates.pid", "int64", "-")} <= _rows(out)
    assert "new only: a field of the new side only: null in the old side's rows" in out
    assert "widened: numbers widen" in out and "compatible" in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_diff_lines_stay_short_whatever_the_types(capsys):
    record = pa.struct([(f"f{i}", pa.float64()) for i in range(60)])
    print_diff(pa.schema([("rec", record)]), "T2", pa.schema([("old", pa.int64())]), "T1", "topic")
    out = capsys.readouterr().out
    assert ("new only", "rec", "-", "struct<60 fields>") in _rows(out)
    assert max(map(len, out.splitlines())) < 120


def test_diff_of_a_timestamp_become_text_says_it_reads_as_text(capsys):
    print_diff(pa.schema([("timestamp", pa.string())]), "T2026",
               pa.schema([("timestamp", pa.timestamp("us", tz="UTC"))]), "T2019", "topic")
    out = capsys.readouterr().out
    assert ("as text", "timestamp", "timestamp[us, tz=UTC]", "string") in _rows(out)
    assert "as text: times become UTC text as Fink writes it" in out and "compatible" in out


def test_diff_of_conflicting_versions_names_the_conflict_and_exits_1(capsys):
    with pytest.raises(SystemExit) as exited:
        print_diff(arrow_schema(CONFLICTING.avro), "T3", arrow_schema(V1.avro), "T1", "topic")
    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert ("conflict", "candidate.isdiffpos", "string", "double") in _rows(out)
    assert "--drop-columns candidate.isdiffpos" in out


def test_diff_against_a_folder_leaves_out_its_partition_keys(capsys):
    folder = pa.schema([f for f in arrow_schema(V1.avro) if f.name != "finkclass"])
    print_diff(arrow_schema(V1.avro), "T1", folder, "out/", "folder", ("finkclass",))
    assert capsys.readouterr().out.splitlines()[2:] == ["same schema"]


# --- casting tables ----------------------------------------------------------------------
def test_conform_fills_missing_fields_with_nulls_and_widens_nested_values():
    point = pa.struct([("a", pa.int32()), ("b", pa.string())])
    table = pa.table({
        "n": pa.array([1, 2, 3], pa.int32()),
        "rec": pa.array([{"a": 1, "b": "x"}, None, {"a": 3, "b": None}], point),
        "pts": pa.array([[{"a": 1, "b": "x"}, None], None, []], pa.list_(point)),
        "m": pa.array([[("k", 1)], None, [("j", None)]], pa.map_(pa.string(), pa.int32())),
    }).slice(1)  # a slice: children offsets must be honoured
    wide = pa.struct([("a", pa.float64()), ("b", pa.string()), ("c", pa.int64())])
    target = pa.schema([("n", pa.int64()), ("rec", wide), ("pts", pa.list_(wide)),
                        ("m", pa.map_(pa.string(), pa.float64())), ("added", pa.string())])
    out = conform(table, target)
    assert out.schema == target
    assert out.to_pylist() == [
        {"n": 2, "rec": None, "pts": None, "m": None, "added": None},
        {"n": 3, "rec": {"a": 3.0, "b": None, "c": None}, "pts": [], "m": [("j", None)], "added": None}]


def test_conform_leaves_out_fields_the_schema_lacks_and_keeps_a_table_already_fitting():
    table = pa.table({"a": [1], "rec": [{"x": 1, "y": 2}]})
    target = pa.schema([("rec", pa.struct([("y", pa.int64())]))])
    assert conform(table, target).to_pylist() == [{"rec": {"y": 2}}]
    assert conform(table, table.schema) is table


def test_a_long_widened_to_double_keeps_its_value_rounded():
    big = pa.table({"x": pa.array([2**60 + 1], pa.int64())})
    assert conform(big, pa.schema([("x", pa.float64())]))["x"][0].as_py() == float(2**60)


# --- --columns, --drop-columns and --drop-cutouts ----------------------------------------------------------
def _schema(avro: dict):
    return parse_schema(json.dumps(avro), "test")


def test_columns_keep_dotted_paths_the_alert_id_and_the_partition_column():
    layout = layout_for(V1, _config(columns=("objectId", "candidate.jd", "prv_candidates.magpsf"),
                                    partition_by="finkclass"))
    kept = layout.kept
    assert kept.names == ["candid", "objectId", "candidate", "prv_candidates", "finkclass"]
    assert kept.field("candidate").type.names == ["jd"]
    assert kept.field("prv_candidates").type.value_type.names == ["magpsf"]
    assert layout.written.names == ["candid", "objectId", "candidate", "prv_candidates"]
    timed = layout_for(V1, _config(columns=("objectId",), partition_by="time"))
    assert timed.kept.field("candidate").type.names == ["jd"]  # the time partitions' source


def test_unknown_columns_are_refused_naming_the_columns_that_exist():
    with pytest.raises(ConfigError) as caught:
        layout_for(V1, _config(columns=("objectId", "nope")))
    assert "'nope'" in str(caught.value) and "candid, schemavsn, objectId" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        layout_for(V1, _config(columns=("candidate.nope",)))
    assert "columns in candidate: jd, fid" in str(caught.value)


def test_drop_cutouts_removes_the_cutouts_each_survey_has():
    ztf = _schema(generator.ztf_schema(slim=True, cutouts=True))
    assert not {"cutoutScience", "cutoutTemplate", "cutoutDifference"} & set(
        layout_for(ztf, _config(drop_cutouts=True)).kept.names)
    lsst = _schema(generator.lsst_schema())
    assert layout_for(lsst, _config(drop_cutouts=True)).kept.names == [
        n for n in arrow_schema(lsst.avro).names if n != "cutoutDifference"]
    with pytest.raises(ConfigError):
        layout_for(ztf, _config(columns=("cutoutScience",), drop_cutouts=True))


def test_drop_columns_leaves_out_top_level_and_nested_columns_and_keeps_the_rest():
    layout = layout_for(V1, _config(drop_columns=("mangrove", "candidate.rb", "prv_candidates.pid")))
    full = arrow_schema(V1.avro)
    assert layout.kept.names == [n for n in full.names if n != "mangrove"]
    assert layout.kept.field("candidate").type.names == [
        n for n in full.field("candidate").type.names if n != "rb"]
    assert "pid" not in layout.kept.field("prv_candidates").type.value_type.names
    assert "pid" in layout.kept.field("candidate").type.names


def test_drop_columns_refuses_unknown_columns_the_alert_id_and_the_partition_column():
    with pytest.raises(ConfigError, match="no column 'nope'"):
        layout_for(V1, _config(drop_columns=("nope",)))
    with pytest.raises(ConfigError, match="candid cannot be left out"):
        layout_for(V1, _config(drop_columns=("candid",)))
    with pytest.raises(ConfigError, match="candidate.jd cannot be left out"):
        layout_for(V1, _config(drop_columns=("candidate",), partition_by="time"))
    with pytest.raises(ConfigError, match="--columns keeps objectId"):
        layout_for(V1, _config(columns=("objectId",), drop_columns=("objectId",)))


# --- the folder's schema -------------------------------------------------------------------
def _files(outdir: Path, schema, records, first: int, part_by: str = "finkclass", garbage: bool = False,
           topic: str = "t"):
    """Write one flush of ``records`` (version ``schema``) of ``topic`` as a worker does;
    ``garbage`` adds a value that goes to the quarantine."""
    layout = layout_for(schema, _config(partition_by=part_by))
    values = [generator.encode(schema.parsed, r) for r in records] + ([b"garbage"] if garbage else [])
    buf = PartitionBuffer(first=first, part=layout.part)
    decode = lambda values: decode_values(values, schema, layout.decoded)  # noqa: E731
    buf.add(values, list(range(first, first + len(values))), [None] * len(values),
            [0] * len(values), now=0.0, labelled=decode(values))
    folder = Folder(LocalDisk(outdir))
    folder.fit(layout.written, layout.part.keys, "this version")
    with folder.writing() as folder_schema:
        return write_buffer(outdir, buf, decode, "parquet", schema.text, folder_schema, topic=topic)[1]


def _finkdl_meta(path: Path) -> dict:
    return {k: v for k, v in pq.read_metadata(path).metadata.items() if k.startswith(b"finkdl.")}


def _data_names(outdir: Path) -> set[Path]:
    return {p.relative_to(outdir) for p in outdir.rglob("part-*.parquet") if QUARANTINE_DIR not in p.parts}


def test_folder_schema_file_round_trips_and_is_readable(tmp_path):
    folder = FolderSchema(arrow_schema(V2.avro), ("finkclass",))
    text = to_json(folder)
    assert from_json(text, "x") == folder
    assert "candidate: struct<jd: double, fid: int64" in text


def test_a_widening_rewrites_older_files_in_place_keeping_their_names_and_metadata(tmp_path):
    _files(tmp_path, V1, versions.v1_alerts(200), first=0, garbage=True)
    before = _data_names(tmp_path)
    meta = {p: _finkdl_meta(tmp_path / p) for p in before}
    [quarantine] = (tmp_path / QUARANTINE_DIR).iterdir()
    quarantine_bytes = quarantine.read_bytes()
    _files(tmp_path, V2, versions.v2_alerts(200), first=201)
    assert before < _data_names(tmp_path)
    assert {p: _finkdl_meta(tmp_path / p) for p in before} == meta and all(meta.values())
    assert quarantine.read_bytes() == quarantine_bytes
    stored = read_folder_schema(LocalDisk(tmp_path))
    assert all(pq.read_schema(tmp_path / p).equals(stored.schema) for p in _data_names(tmp_path))
    for table in (pd.read_parquet(tmp_path), ds.dataset(tmp_path, partitioning="hive").to_table().to_pandas()):
        assert len(table) == 400
        old, new = table[table.candid < 10**12 + versions.V2_START], table[table.candid >= 10**12 + versions.V2_START]
        assert old.anomaly_score.isna().all() and new.rf_snia_vs_nonia.isna().all()
        assert old.rf_snia_vs_nonia.notna().all() and sorted(new.anomaly_score) == [i / 10 for i in range(200)]
    assert verify(tmp_path).ok


def test_a_conflicting_version_changes_nothing_in_the_folder(tmp_path):
    _files(tmp_path, V1, versions.v1_alerts(50), first=0)
    snapshot = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    schema_text = (tmp_path / META_DIR / "folder-schema.json").read_text()
    with pytest.raises(SchemaError, match="candidate.isdiffpos"):
        _files(tmp_path, CONFLICTING, versions.conflicting_alerts(50), first=50)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == snapshot
    assert (tmp_path / META_DIR / "folder-schema.json").read_text() == schema_text


def test_a_folder_partitioned_otherwise_is_refused(tmp_path):
    _files(tmp_path, V1, versions.v1_alerts(50), first=0, part_by="finkclass")
    with pytest.raises(ConfigError, match="partitioned by finkclass, this download by year/month/day"):
        _files(tmp_path, V1, versions.v1_alerts(50), first=50, part_by="time")


def test_a_folder_without_its_schema_file_takes_the_schema_of_its_files(tmp_path):
    _files(tmp_path, V1, versions.v1_alerts(50), first=0)
    (tmp_path / META_DIR / "folder-schema.json").unlink()
    stored = read_folder_schema(LocalDisk(tmp_path))
    assert stored.keys == ("finkclass",)
    assert stored.schema.equals(pa.schema([f for f in arrow_schema(V1.avro) if f.name != "finkclass"]))


def test_files_a_crash_left_in_an_older_schema_are_rewritten_before_the_next_run(tmp_path):
    old, out = tmp_path / "old", tmp_path / "out"
    _files(old, V1, versions.v1_alerts(50), first=0)
    _files(out, V1, versions.v1_alerts(50), first=0)
    _files(out, V2, versions.v2_alerts(50), first=50)
    stale = sorted(old.rglob("part-*.parquet"))[0]
    twin = out / stale.relative_to(old)
    shutil.copy(stale, twin)  # as if a crash stopped the rewrite before this file
    layout = layout_for(V2, _config(partition_by="finkclass"))
    Folder(LocalDisk(out)).fit(layout.written, layout.part.keys, "topic t", check_files=True)
    assert pq.read_schema(twin).equals(read_folder_schema(LocalDisk(out)).schema)


def test_avro_files_are_left_as_they_are(tmp_path):
    layout = layout_for(V1, _config())
    values = [generator.encode(V1.parsed, r) for r in versions.v1_alerts(20)]
    buf = PartitionBuffer(first=0, keep_raw=True)
    buf.add(values, list(range(20)), [None] * 20, [0] * 20, now=0.0)
    _, [avro] = write_buffer(tmp_path, buf, lambda v: decode_values(v, V1, layout.decoded), "avro", V1.text)
    content = avro.path.read_bytes()
    v2 = layout_for(V2, _config())
    Folder(LocalDisk(tmp_path)).fit(layout.written, (), "v1")
    Folder(LocalDisk(tmp_path)).fit(v2.written, (), "v2", check_files=True)
    assert avro.path.read_bytes() == content
    with open(avro.path, "rb") as f:
        assert len(list(fastavro.reader(f))) == 20


# --- several topics in one folder ----------------------------------------------------------
def test_file_names_hold_the_topic_so_several_topics_share_a_folder():
    name = file_name(3, 1000, 1999, 4, "parquet", "ftransfer_ztf_2026-11-28_12-x.y")
    assert name == "part-ftransfer_ztf_2026-11-28_12-x.y-P003-000000001000-000000001999-of4.parquet"
    parsed = parse_file_name(name)
    assert (parsed.topic, parsed.partition, parsed.first, parsed.last, parsed.files) == (
        "ftransfer_ztf_2026-11-28_12-x.y", 3, 1000, 1999, 4)
    assert parse_file_name("part-P003-000000001000-000000001999-of4.parquet").topic is None


def test_a_file_named_without_its_topic_takes_it_from_its_metadata(tmp_path):
    [written] = _files(tmp_path, V1, versions.v1_alerts(10), first=0, part_by="none")
    old_name = written.path.with_name(file_name(0, 0, 9, 1, "parquet"))
    written.path.rename(old_name)
    [found] = LocalDisk(tmp_path).files()
    assert found.path == old_name and found.range.topic == "t"


def test_verify_checks_each_topic_of_a_folder_apart(tmp_path):
    _files(tmp_path, V1, versions.v1_alerts(50), first=0, part_by="none")
    _files(tmp_path, V2, versions.v2_alerts(50), first=0, part_by="none", topic="t2")
    report = verify(tmp_path)
    assert report.ok and sorted(report.topics) == ["t", "t2"] and report.rows == 100
