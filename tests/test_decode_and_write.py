"""Alert → Avro → Arrow → files → same values, without a broker."""
import json
import os

import fastavro
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from finkdl.local import generator
from finkdl.arrow_schema import arrow_schema
from finkdl.buffer import PartitionBuffer
from finkdl.config import FlushPolicy
from finkdl.decode import decode_values, read_record
from finkdl.fastdecode import decode_batch
from finkdl.partitioning import Partitioning, partitioning_for, segment
from finkdl.schema import parse_schema
from finkdl.naming import FileRange
from finkdl.storage import LocalDisk
from finkdl.verify import verify
from finkdl.writer import Spool, write_parquet

from conftest import write_buffer


def _schema(**kw):
    return parse_schema(json.dumps(generator.ztf_schema(**kw)), "test")


def _encode(schema, records):
    return [generator.encode(schema.parsed, r) for r in records]


@pytest.mark.parametrize("slim,cutouts", [(True, False), (False, True)])
def test_decoded_values_equal_fastavro(slim, cutouts):
    schema = _schema(slim=slim, cutouts=cutouts)
    values = _encode(schema, generator.alerts(50, slim=slim, cutouts=cutouts, hostile=True))
    decoded = decode_values(values, schema, arrow_schema(schema.avro))
    assert not decoded.bad
    for row, value in zip(decoded.table.to_pylist(), values):
        if row["mangrove"] is not None:
            row["mangrove"] = dict(row["mangrove"])
        assert row == read_record(value, schema)


def test_a_corrupt_value_is_set_aside_and_its_neighbours_kept():
    schema = _schema(slim=True, cutouts=False)
    values = _encode(schema, generator.alerts(3, slim=True, cutouts=False))
    values.insert(1, b"\xff\x00garbage")
    values.append(values[0] + b"trailing")
    decoded = decode_values(values, schema, arrow_schema(schema.avro))
    assert decoded.indices == [0, 2, 3] and [u.index for u in decoded.bad] == [1, 4]


def _buffer(schema, records, values=None, first=0, part=Partitioning()):
    """A buffer holding ``records`` (or ``values``) from offset ``first``, and its decoder."""
    values = values or _encode(schema, records)
    buf = PartitionBuffer(first=first, part=part, keep_raw=True)
    decode = _decoder(schema)
    buf.add(values, list(range(first, first + len(values))), [None] * len(values),
            [0] * len(values), now=0.0, labelled=decode(values) if part.keys else None)
    return buf, decode


def _decoder(schema):
    return lambda values: decode_values(values, schema, arrow_schema(schema.avro))


def _fast_decoder(schema):
    """Labels and rows as a worker reads them: the label's column alone, then whole values."""
    target = arrow_schema(schema.avro)
    return (lambda values: decode_batch(values, schema, target, only="finkclass"),
            lambda values: decode_batch(values, schema, target))


def test_the_largest_label_leaves_the_buffer_alone_with_its_rows_in_offset_order():
    schema = _schema(slim=True, cutouts=False)
    part = partitioning_for("finkclass", "ztf", schema)
    records = list(generator.alerts(200, slim=True, cutouts=False))
    values = _encode(schema, records)
    label, decode = _fast_decoder(schema)
    buf = PartitionBuffer(first=0, part=part)
    for start in (0, 120):
        chunk = values[start:start + 120]
        buf.add(chunk, list(range(start, start + len(chunk))), [None] * len(chunk), [0] * len(chunk),
                now=0.0, labelled=label(chunk))
    largest = buf.largest()
    expected = [r["candid"] for r in records if (r["finkclass"],) == largest]
    held = buf.held
    groups, raw = buf.release(decode, largest)
    assert list(groups) == [largest] and raw is None
    [table] = groups[largest]
    assert table["candid"].to_pylist() == expected
    assert largest not in buf.labels and buf.held == held - sum(
        len(v) for v, r in zip(values, records) if (r["finkclass"],) == largest)
    groups, _ = buf.release(decode)
    assert sum(t.num_rows for tables in groups.values() for t in tables) == 200 - len(expected)
    rest = buf.take("t", 0)
    assert (rest.first, rest.last, rest.messages) == (0, 199, 200) and buf.messages == 0


def test_a_value_whose_label_reads_but_which_will_not_decode_is_quarantined_with_its_offset():
    # Reading past a field checks only its length: a string that is not UTF-8 passes the label
    # reading and is caught when its label's values are decoded.
    schema = _schema(slim=True, cutouts=False)
    part = partitioning_for("finkclass", "ztf", schema)
    records = list(generator.alerts(6, slim=True, cutouts=False))
    values = _encode(schema, records)
    object_id = records[2]["objectId"].encode()
    values[2] = values[2].replace(object_id, b"\xff" + object_id[1:], 1)
    label, decode = _fast_decoder(schema)
    labelled = label(values)
    assert not labelled.bad  # its label was read
    buf = PartitionBuffer(first=100, part=part)
    buf.add(values, list(range(100, 106)), [None] * 6, [0] * 6, now=0.0, labelled=labelled)
    groups, _ = buf.release(decode)
    flush = buf.take("t", 0)
    assert [(q.offset, q.value) for q in flush.bad] == [(102, values[2])]
    kept = sorted(c for tables in groups.values() for t in tables for c in t["candid"].to_pylist())
    assert kept == sorted(r["candid"] for i, r in enumerate(records) if i != 2)


def test_hostile_and_null_labels_read_back_through_pandas_and_pyarrow(tmp_path):
    schema = _schema(slim=True, cutouts=False)
    records = list(generator.alerts(400, slim=True, cutouts=False, hostile=True))
    part = partitioning_for("finkclass", "ztf", schema)
    write_buffer(tmp_path, *_buffer(schema, records, part=part), "parquet", schema.text)
    # A label too long for a folder name reads back cut, with a hash (see README).
    expected = {r["candid"]: r["finkclass"] if r["finkclass"] not in ("x" * 300, None)
                else segment("x" * 300) if r["finkclass"] else "(null)" for r in records}
    df = pd.read_parquet(tmp_path)
    assert dict(zip(df["candid"], df["finkclass"].astype(object).where(df["finkclass"].notna(), None))) == expected
    table = ds.dataset(tmp_path, partitioning="hive").to_table()
    assert dict(zip(table["candid"].to_pylist(), table["finkclass"].to_pylist())) == expected
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))


def test_avro_output_is_a_container_file_fastavro_reads(tmp_path):
    schema = _schema(slim=True, cutouts=False)
    records = list(generator.alerts(30, slim=True, cutouts=False))
    _, [written] = write_buffer(tmp_path, *_buffer(schema, records), "avro", schema.text)
    with open(written.path, "rb") as f:
        reader = fastavro.reader(f)
        assert reader.metadata["finkdl.messages"] == "30"
        assert [r["candid"] for r in reader] == [r["candid"] for r in records]


def test_undecodable_messages_are_kept_raw_with_their_offsets(tmp_path):
    schema = _schema(slim=True, cutouts=False)
    values = _encode(schema, generator.alerts(5, slim=True, cutouts=False))
    values[2] = b"not avro at all"
    _, written = write_buffer(tmp_path, *_buffer(schema, None, values, first=100), "parquet", schema.text)
    quarantine = pd.read_parquet(tmp_path / "_quarantine")
    assert list(quarantine["offset"]) == [102] and quarantine["value"][0] == b"not avro at all"
    assert sum(w.rows for w in written) == 5
    assert len(pd.read_parquet(tmp_path)) == 4


def test_a_caught_up_buffer_flushes_at_once_when_a_tenth_full_else_after_a_quiet_moment():
    policy = FlushPolicy(max_rows=1000, idle_s=1.0)
    schema = _schema(slim=True, cutouts=False)

    def buffer_of(n):
        values = _encode(schema, generator.alerts(n, slim=True, cutouts=False))
        buf = PartitionBuffer(first=0)
        buf.add(values, list(range(n)), [None] * n, [0] * n, now=0.0)
        return buf

    small, tenth = buffer_of(50), buffer_of(100)
    assert not small.should_flush(policy, now=0.1, caught_up=True, idle_s=0.1)  # a live topic
    assert small.should_flush(policy, now=1.0, caught_up=True, idle_s=1.0)
    assert tenth.should_flush(policy, now=0.1, caught_up=True, idle_s=0.1)  # the end of a topic
    assert not tenth.should_flush(policy, now=0.1, caught_up=False, idle_s=0.1)


def test_a_flush_spooled_in_several_parts_is_one_file_per_label_and_a_discard_leaves_nothing(tmp_path):
    schema = _schema(slim=True, cutouts=False)
    part = partitioning_for("finkclass", "ztf", schema)
    records = list(generator.alerts(300, slim=True, cutouts=False))
    values = _encode(schema, records)
    buf, decode = PartitionBuffer(first=1000, part=part), _decoder(schema)
    spool = Spool(LocalDisk(tmp_path), "t", 2, 1000, part, "parquet", schema.text)
    for start in range(0, 300, 100):  # three spills while the alerts arrive
        chunk = values[start:start + 100]
        offsets = list(range(1000 + start, 1100 + start))
        buf.add(chunk, offsets, [None] * 100, [0] * 100, now=0.0, labelled=decode(chunk))
        if start < 200:
            spool.add(*buf.release(decode, buf.largest()), None)
    assert LocalDisk(tmp_path).temporaries("t", 2) and not LocalDisk(tmp_path).files()  # invisible until finished
    spool.add(*buf.release(decode), None)  # the flush's last rows
    written = spool.finish(buf.take("t", 2), None)
    labels = {r["finkclass"] for r in records}
    assert len(written) == len(labels) and not LocalDisk(tmp_path).temporaries("t", 2)
    assert {f.range for f in LocalDisk(tmp_path).files()} == {FileRange(2, 1000, 1299, len(labels), "parquet", "t")}
    table = pd.read_parquet(tmp_path)
    assert sorted(table["candid"]) == sorted(r["candid"] for r in records)
    assert verify(tmp_path).ok

    dropped = Spool(LocalDisk(tmp_path / "dropped"), "t", 2, 0, part, "parquet", schema.text)
    held, decode = _buffer(schema, records[:50], part=part)
    dropped.add(*held.release(decode), None)
    dropped.discard()  # a revoked partition: its range will be read again
    assert not [f for f in (tmp_path / "dropped").rglob("*") if f.is_file()]


def test_binary_columns_that_do_not_shrink_are_written_uncompressed(tmp_path):
    # Cutouts are gzipped FITS: compressing them again costs time and saves nothing.
    table = pa.table({"noise": [os.urandom(2_000) for _ in range(20)],
                      "text_like": [b"0123456789" * 200 for _ in range(20)],
                      "flux": [float(i) for i in range(20)]})
    assert _codecs(tmp_path, table) == {"noise": "UNCOMPRESSED", "text_like": "SNAPPY", "flux": "ZSTD"}


def test_files_of_rows_as_large_as_cutouts_use_snappy_instead_of_zstd(tmp_path):
    # Such rows make small row groups, whose tiny pages zstd compresses at a loss.
    table = pa.table({"noise": [os.urandom(20_000) for _ in range(20)],
                      "flux": [float(i) for i in range(20)]})
    assert _codecs(tmp_path, table) == {"noise": "UNCOMPRESSED", "flux": "SNAPPY"}


def test_blobs_in_several_chunks_are_judged_by_the_first_chunk_holding_data(tmp_path):
    # A flush's first rows may come in chunks, the first of them empty.
    noise = pa.chunked_array([pa.array([], pa.binary()),
                              pa.array([os.urandom(20_000) for _ in range(10)]),
                              pa.array([b"0" * 20_000 for _ in range(10)])])
    table = pa.table({"noise": noise, "flux": [float(i) for i in range(20)]})
    assert _codecs(tmp_path, table) == {"noise": "UNCOMPRESSED", "flux": "SNAPPY"}


def test_incompressible_blobs_get_no_statistics_and_other_columns_keep_theirs(tmp_path):
    # Min and max of values past 4 KB are never stored; computing them was wasted time.
    table = pa.table({"noise": [os.urandom(20_000) for _ in range(20)],
                      "flux": [float(i) for i in range(20)]})
    assert _codecs(tmp_path, table)["noise"] == "UNCOMPRESSED"  # the blob: not compressed either
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    stats = {columns.column(i).path_in_schema: columns.column(i).statistics
             for i in range(columns.num_columns)}
    assert stats["noise"] is None
    assert (stats["flux"].min, stats["flux"].max) == (0.0, 19.0)


def _codecs(tmp_path, table: pa.Table) -> dict[str, str]:
    """Write ``table`` as finkdl does; each column's codec in the file."""
    with open(tmp_path / "t.parquet", "wb") as f:
        write_parquet(f, [table], {})
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    assert pq.read_table(tmp_path / "t.parquet").equals(table)
    return {columns.column(i).path_in_schema: columns.column(i).compression
            for i in range(columns.num_columns)}
