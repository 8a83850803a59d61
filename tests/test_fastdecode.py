"""The C batch decoder gives exactly what the fastavro reference gives, without a broker."""
import datetime
import decimal
import json
from pathlib import Path

import fastavro
import pytest

from finkdl import fastdecode, program
from finkdl.local import generator
from finkdl.arrow_schema import arrow_schema
from finkdl.decode import decode_values
from finkdl.fastdecode import decode_batch
from finkdl.partitioning import column
from finkdl.schema import parse_schema
from fuzzing import same as _same, zigzag

FINK_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fink"


def _schema(avro):
    return parse_schema(json.dumps(avro), "test")


def _encode(schema, records):
    return [generator.encode(schema.parsed, r) for r in records]


def _assert_same_as_reference(values, schema):
    """The fast decoder's result next to fastavro's, the one ``finkdl.decode`` gives."""
    target = arrow_schema(schema.avro)
    fast, ref = decode_batch(values, schema, target), decode_values(values, schema, target)
    assert fast.table.schema == ref.table.schema == target
    assert fast.indices == ref.indices
    assert [u.index for u in fast.bad] == [u.index for u in ref.bad]
    assert _same(fast.table.to_pylist(), ref.table.to_pylist())
    return fast


@pytest.fixture
def fast_path_only(monkeypatch):
    """Fail if the batch falls back to the reference, which would make equality trivial."""
    def refuse(*args):
        raise AssertionError("the batch fell back to the reference decoder")
    monkeypatch.setattr(fastdecode, "decode_values", refuse)


@pytest.mark.parametrize("slim,cutouts", [(True, False), (False, True)])
def test_generated_ztf_alerts_decode_fast_as_the_reference_does(slim, cutouts, fast_path_only):
    schema = _schema(generator.ztf_schema(slim=slim, cutouts=cutouts))
    values = _encode(schema, generator.alerts(150, slim=slim, cutouts=cutouts, hostile=True))
    table = _assert_same_as_reference(values, schema).table
    # The batch does hold what the comparison is about: nulls, maps, arrays of records, bytes.
    assert table["mangrove"].null_count and any(table["mangrove"].to_pylist())
    assert table["finkclass"].null_count and table["prv_candidates"].null_count
    assert any(None in (h or []) for h in table["prv_candidates"].to_pylist())
    if cutouts:
        assert len(table["cutoutScience"][0]["stampData"].as_py()) == 16_000


def test_generated_lsst_alerts_decode_fast_as_the_reference_does(fast_path_only):
    schema = _schema(generator.lsst_schema())
    _assert_same_as_reference(_encode(schema, generator.alerts(150, survey="lsst")), schema)


@pytest.mark.parametrize("alerts,schema_file", [
    ("ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json"),
    ("lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json"),
])
def test_real_fink_alerts_decode_fast_as_the_reference_does(alerts, schema_file, fast_path_only):
    if not FINK_DATA.is_dir():
        pytest.skip(f"no sample Fink alerts in {FINK_DATA}")
    schema = parse_schema((FINK_DATA / schema_file).read_text(), schema_file)
    with open(FINK_DATA / alerts, "rb") as f:
        records = list(fastavro.reader(f))
    assert not _assert_same_as_reference(_encode(schema, records), schema).bad


def test_corrupt_values_are_isolated_and_their_neighbours_kept():
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    values = _encode(schema, generator.alerts(8, slim=True, cutouts=False, hostile=True))
    values[1] = b"\xff\x00garbage"
    values[3] = values[3][:-4]
    values[5] = values[5] + b"trailing"
    values[6] = b""
    decoded = _assert_same_as_reference(values, schema)
    assert decoded.indices == [0, 2, 4, 7] and [u.index for u in decoded.bad] == [1, 3, 5, 6]


def test_a_value_holding_two_records_is_not_read_as_two_rows():
    # Any 16 bytes are a valid record here: only checking where each value ends tells.
    schema = _schema({"type": "record", "name": "r", "fields": [{"name": "x", "type": "double"},
                                                                {"name": "y", "type": "double"}]})
    a, b, c, d = _encode(schema, [{"x": i, "y": -i} for i in range(4)])
    decoded = _assert_same_as_reference([a, b + c, d], schema)
    assert decoded.indices == [0, 2] and [u.index for u in decoded.bad] == [1]


def test_an_empty_batch_gives_an_empty_table_of_the_target_schema():
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    decoded = decode_batch([], schema, arrow_schema(schema.avro))
    assert decoded.table.num_rows == 0 and decoded.table.schema == arrow_schema(schema.avro)
    assert decoded.indices == [] and decoded.bad == []


OTHER_TYPES = {"type": "record", "name": "r", "fields": [
    {"name": "kind", "type": ["null", {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}]},
    {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "night", "type": ["null", {"type": "int", "logicalType": "date"}]},
    {"name": "nothing", "type": "null"},
    {"name": "flux", "type": "float"},
    {"name": "bands", "type": {"type": "map", "values": {"type": "array", "items": {
        "type": "record", "name": "Point", "fields": [
            {"name": "mag", "type": ["null", "double"]},
            {"name": "tags", "type": {"type": "map", "values": "int"}}]}}}},
]}


def _other(i):
    seen = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i)
    return {"kind": [None, "A", "C"][i % 3], "digest": bytes([i]) * 4, "price": decimal.Decimal(f"{i}.25"),
            "seen": seen, "night": None if i % 4 else datetime.date(2025, 1, 1 + i % 28), "nothing": None,
            "flux": float("nan") if i % 5 == 0 else i / 8,
            "bands": {"g": [{"mag": None, "tags": {}}, {"mag": 18.5, "tags": {"x": i}}]} if i % 2 else {}}


def test_enums_fixed_decimals_dates_and_nested_maps_decode_fast_as_the_reference_does(fast_path_only):
    schema = _schema(OTHER_TYPES)
    _assert_same_as_reference(_encode(schema, [_other(i) for i in range(40)]), schema)


def test_a_map_repeating_a_key_decodes_as_the_reference_does():
    # fastavro keeps the last value of a repeated key; an Arrow map would keep both entries.
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    record = next(generator.alerts(1, slim=True, cutouts=False)) | {"mangrove": {"k": "a", "z": "b"}}
    value = generator.encode(schema.parsed, record)
    entries = b"\x02k\x00\x02a\x02z"  # key "k", branch 0, value "a", key "z"
    at = value.index(entries) + len(entries) - 1
    repeated = value[:at] + b"k" + value[at + 1:]
    decoded = _assert_same_as_reference([value, repeated], schema)
    assert decoded.table["mangrove"][1].as_py() == [("k", "b")]


def test_a_uuid_schema_is_left_to_the_reference_decoder():
    # fastavro reads a uuid as a uuid.UUID, not as the text the program would give.
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}}]})
    assert program.compiled(schema.text) is None


def _one_by_one_as_reference(values, schema):
    """Each value alone, fast and reference: same rows, or both refusing it."""
    target = arrow_schema(schema.avro)
    for value in values:
        fast, ref = decode_batch([value], schema, target), decode_values([value], schema, target)
        assert fast.indices == ref.indices and len(fast.bad) == len(ref.bad)
        assert _same(fast.table.to_pylist(), ref.table.to_pylist())


def test_damaged_values_decode_as_the_reference_does_or_go_to_it():
    # Every byte of a value changed in turn, or the value cut there: whatever the C decoder
    # accepts must read exactly as fastavro reads it; what it refuses, fastavro decides.
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    value = _encode(schema, generator.alerts(1, slim=True, cutouts=False, hostile=True, seed=3))[0]
    damaged = [value[:i] + bytes([value[i] ^ flip]) + value[i + 1:]
               for i in range(len(value)) for flip in (0x01, 0x80)]
    _one_by_one_as_reference(damaged + [value[:i] for i in range(0, len(value), 7)], schema)


def test_strings_that_are_not_utf8_and_odd_tags_go_to_the_reference():
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "s", "type": ["null", "string"]}, {"name": "b", "type": "boolean"}]})
    good = _encode(schema, [{"s": "é", "b": True}])[0]
    values = [good,
              b"\x02\x04\xc3\x28\x01",  # invalid UTF-8
              b"\x02\x06\xed\xa0\x80\x01",  # a UTF-16 surrogate, which Python refuses too
              b"\x02\x04\xc0\xaf\x01",  # an overlong "/"
              b"\x04\x00\x01",  # union branch 2 of 2
              b"\x00\x02",  # a boolean byte of 2 (fastavro reads True)
              b"\x01\x00\x01"]  # union branch -1 (fastavro reads the last branch)
    _one_by_one_as_reference(values, schema)
    decoded = decode_batch(values, schema, arrow_schema(schema.avro))
    assert [u.index for u in decoded.bad] == [1, 2, 3, 4]


def test_array_blocks_with_byte_sizes_decode_as_the_reference_does(fast_path_only):
    # Writers may send a block as a negative count followed by its size in bytes.
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "int"}}]})
    xs = b"\x03\x04\x02\x04" + b"\x02\x06" + b"\x00"  # block of -2 items (2 bytes), block of 1
    m = b"\x01\x06\x02a\x02" + b"\x00"  # block of -1 entry (3 bytes): a -> 1
    _assert_same_as_reference([xs + m, b"\x00\x00"], schema)


def test_a_schema_naming_its_types_decodes_as_the_reference_does(fast_path_only):
    point = {"type": "record", "name": "Point", "namespace": "sky", "fields": [
        {"name": "ra", "type": "double"}, {"name": "dec", "type": ["null", "double"]}]}
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "here", "type": point}, {"name": "there", "type": ["null", "sky.Point"]},
        {"name": "path", "type": {"type": "array", "items": "sky.Point"}}]})
    records = [{"here": {"ra": i, "dec": None}, "there": None if i % 2 else {"ra": -i, "dec": 1.5},
                "path": [{"ra": j, "dec": j / 2} for j in range(i % 4)]} for i in range(30)]
    _assert_same_as_reference(_encode(schema, records), schema)


# --- one column read alone (a worker's labels) ----------------------------------------------
def _assert_column_alone_as_reference(values, schema, path):
    """Read alone, a column holds what the whole reference decode holds in it."""
    target = arrow_schema(schema.avro)
    alone, ref = decode_batch(values, schema, target, only=path), decode_values(values, schema, target)
    assert alone.indices == ref.indices
    assert _same(column(alone.table, path).to_pylist(), column(ref.table, path).to_pylist())
    return alone


@pytest.mark.parametrize("path", ["finkclass", "candidate.jd", "objectId"])
@pytest.mark.parametrize("slim,cutouts", [(True, False), (False, True)])
def test_a_column_read_alone_is_that_column_of_the_whole_decode(path, slim, cutouts, fast_path_only):
    schema = _schema(generator.ztf_schema(slim=slim, cutouts=cutouts))
    values = _encode(schema, generator.alerts(150, slim=slim, cutouts=cutouts, hostile=True))
    alone = _assert_column_alone_as_reference(values, schema, path)
    assert alone.table.column_names == [path.split(".")[0]]  # the rest was read past
    assert alone.table.nbytes < sum(map(len, values)) / 20


@pytest.mark.parametrize("alerts,schema_file,path", [
    ("ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json", "candidate.jd"),
    ("ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json", "finkclass"),
    ("lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json", "diaSource.midpointMjdTai"),
])
def test_a_column_of_real_fink_alerts_read_alone_is_that_column_of_the_whole_decode(
        alerts, schema_file, path, fast_path_only):
    if not FINK_DATA.is_dir():
        pytest.skip(f"no sample Fink alerts in {FINK_DATA}")
    schema = parse_schema((FINK_DATA / schema_file).read_text(), schema_file)
    with open(FINK_DATA / alerts, "rb") as f:
        records = list(fastavro.reader(f))
    _assert_column_alone_as_reference(_encode(schema, records), schema, path)


@pytest.mark.parametrize("path", ["night", "flux", "bands", "kind"])
def test_a_column_after_enums_fixed_decimals_and_maps_reads_alone(path, fast_path_only):
    schema = _schema(OTHER_TYPES)
    _assert_column_alone_as_reference(_encode(schema, [_other(i) for i in range(40)]), schema, path)


def test_a_column_inside_a_null_record_reads_alone_as_null(fast_path_only):
    point = {"type": "record", "name": "Point", "fields": [
        {"name": "ra", "type": "double"}, {"name": "dec", "type": ["null", "double"]}]}
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "path", "type": {"type": "array", "items": point}},
        {"name": "there", "type": ["null", "Point"]}]})
    records = [{"path": [{"ra": j, "dec": j / 2} for j in range(i % 4)],
                "there": None if i % 2 else {"ra": -i, "dec": 1.5}} for i in range(30)]
    alone = _assert_column_alone_as_reference(_encode(schema, records), schema, "there.dec")
    assert column(alone.table, "there.dec").to_pylist()[:2] == [1.5, None]


def test_blocks_with_byte_sizes_are_read_past_item_by_item(fast_path_only):
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "int"}},
        {"name": "after", "type": "int"}]})
    xs = b"\x03\x04\x02\x04" + b"\x02\x06" + b"\x00"  # block of -2 items (2 bytes), block of 1
    m = b"\x01\x06\x02a\x02" + b"\x00"  # block of -1 entry (3 bytes): a -> 1
    alone = _assert_column_alone_as_reference([xs + m + b"\x0e", b"\x00\x00\x02"], schema, "after")
    assert column(alone.table, "after").to_pylist() == [7, 1]


LABEL_AFTER_ITEMS = {"type": "record", "name": "r", "fields": [
    {"name": "xs", "type": {"type": "array", "items": "long"}}, {"name": "label", "type": "string"}]}


@pytest.mark.parametrize("hex_value", [
    "030202000006616263",  # a block of 2 items said to take 1 byte: 1, 0; then "abc"
    "037e02040006616263",  # said to take 63 bytes, more than the value holds: 1, 2
    "030102040006616263",  # said to take -1 byte: 1, 2
])
def test_a_block_whose_declared_size_lies_is_read_as_the_reference_reads_it(hex_value):
    # The label read alone once jumped over a block by its declared size and read "" here, where
    # the whole decode and fastavro read the items and then "abc": a row filed under another label.
    schema = _schema(LABEL_AFTER_ITEMS)
    values = [bytes.fromhex(hex_value)]
    alone = _assert_column_alone_as_reference(values, schema, "label")
    whole = _assert_same_as_reference(values, schema)
    assert column(alone.table, "label").to_pylist() == column(whole.table, "label").to_pylist()
    assert whole.table.to_pylist()[0]["label"] == "abc"


def test_a_map_block_whose_declared_size_lies_is_read_as_the_reference_reads_it(fast_path_only):
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "m", "type": {"type": "map", "values": "int"}}, {"name": "label", "type": "string"}]})
    value = b"\x01\x00\x02a\x02\x00" + b"\x06abc"  # a block of 1 entry said to take 0 bytes
    alone = _assert_column_alone_as_reference([value], schema, "label")
    assert column(alone.table, "label").to_pylist() == ["abc"]


def _nulls(avro_type):
    """A value of a type that is null wherever it can be (a record's fields)."""
    return {f["name"]: _nulls(f["type"]) for f in avro_type["fields"]} if isinstance(avro_type, dict) else None


def test_a_real_alert_whose_block_size_lies_is_filed_under_its_own_label(fast_path_only):
    # The crafted alert: its history a block said to end inside a file name of its first
    # item, which holds the end of an alert labelled "Forged"; read whole, it is "SN candidate".
    if not FINK_DATA.is_dir():
        pytest.skip(f"no sample Fink alerts in {FINK_DATA}")
    text = (FINK_DATA / "ztf/schema-ztf-ftransfer-2026-03-23.json").read_text()
    schema = parse_schema(text, "ztf")
    with open(FINK_DATA / "ztf/alerts-ztf-2026-03-22.avro", "rb") as f:
        alert = next(r for r in fastavro.reader(f) if r["prv_candidates"])
    fields = [f["name"] for f in schema.avro["fields"]]
    at, label = fields.index("prv_candidates"), fields.index("finkclass")
    before = _schema(schema.avro | {"fields": schema.avro["fields"][:at]})
    start = len(generator.encode(before.parsed, alert)) + 1  # where the history's items begin
    nulls = {f["name"]: _nulls(f["type"]) for f in schema.avro["fields"][at + 1:label]}
    forged = generator.encode(schema.parsed, alert | nulls | {  # no more items, then a forged rest
        "prv_candidates": [], "finkclass": "Forged"})[start:]
    alert |= {"finkclass": "SN candidate", "prv_candidates": [
        alert["prv_candidates"][0] | {"pdiffimfilename": forged.decode()}] + alert["prv_candidates"][1:]}
    honest = generator.encode(schema.parsed, alert)
    jump = honest.index(forged, start) - (start + 1)
    count = len(alert["prv_candidates"])
    crafted = honest[:start] + zigzag(-count) + zigzag(jump) + honest[start + 1:]
    target = arrow_schema(schema.avro)
    alone = decode_batch([crafted], schema, target, only="finkclass")
    assert column(alone.table, "finkclass").to_pylist() == ["SN candidate"]
    assert decode_values([crafted], schema, target).table["finkclass"].to_pylist() == ["SN candidate"]


def test_fields_of_every_width_are_read_past_as_the_whole_decode_reads_them(fast_path_only):
    # Records' fields have a quicker way past them: one-byte branches, varints of 1 to 10 bytes.
    point = {"type": "record", "name": "P", "fields": [
        {"name": "a", "type": "long"}, {"name": "b", "type": ["null", "int"]},
        {"name": "c", "type": "float"}, {"name": "d", "type": ["double", "null"]},
        {"name": "e", "type": ["null", "string"]}, {"name": "f", "type": "boolean"}]}
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "xs", "type": {"type": "array", "items": point}},
        {"name": "after", "type": "string"}]})
    longs = [0, -1, 63, -64, 2**31 - 1, -2**31, 2**63 - 1, -2**63]
    records = [{"xs": [{"a": longs[(i + j) % 8], "b": None if j % 2 else -2**31 + j, "c": 1.5,
                        "d": None if j % 3 else 2.0 ** j, "e": None if j % 4 else "é" * j, "f": j % 2 == 0}
                       for j in range(i % 9)], "after": f"label {i}"} for i in range(40)]
    _assert_column_alone_as_reference(_encode(schema, records), schema, "after")


def test_a_path_not_through_records_alone_reads_the_whole_value():
    schema = _schema(OTHER_TYPES)
    target = arrow_schema(schema.avro)
    assert program.projection(schema.text, target, "bands.mag") is None
    assert program.projection(schema.text, target, "nowhere") is None
    values = _encode(schema, [_other(i) for i in range(5)])
    assert decode_batch(values, schema, target, only="nowhere").table.schema == target


def test_damaged_values_read_alone_never_give_a_label_the_reference_would_not():
    # What reading past accepts, the whole decode later checks: a value may pass here and go
    # to the quarantine then; but a value read here gives its true label or none.
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    target = arrow_schema(schema.avro)
    value = _encode(schema, generator.alerts(1, slim=True, cutouts=False, hostile=True, seed=3))[0]
    damaged = [value[:i] + bytes([value[i] ^ flip]) + value[i + 1:]
               for i in range(len(value)) for flip in (0x01, 0x80)] + [value[:i] for i in range(0, len(value), 7)]
    for one in damaged:
        alone, ref = decode_batch([one], schema, target, only="finkclass"), decode_values([one], schema, target)
        if ref.indices and alone.indices:
            assert _same(column(alone.table, "finkclass").to_pylist(), column(ref.table, "finkclass").to_pylist())


# --- values at the edges of their types, and items that take no bytes --------------------------
def _one_field(avro_type):
    return _schema({"type": "record", "name": "r", "fields": [{"name": "x", "type": avro_type}]})


def test_a_negative_time_decodes_as_the_reference_reads_it():
    # fastavro reads -1 ms as 00:00:00.999 where the C decoder read 23:59:59.999: it now leaves
    # any time outside its day to the reference.
    for logical, base in (("time-millis", "int"), ("time-micros", "long")):
        decoded = _assert_same_as_reference([zigzag(-1), zigzag(0)], _one_field({"type": base, "logicalType": logical}))
        assert decoded.table["x"][0].as_py() == datetime.time(0, 0, 0, 999999 if logical == "time-micros" else 999000)


@pytest.mark.parametrize("logical,base,day", [("time-millis", "int", 86_400_000),
                                              ("time-micros", "long", 86_400_000_000)])
def test_a_time_of_a_whole_day_is_refused_as_the_reference_refuses_it(logical, base, day):
    schema = _one_field({"type": base, "logicalType": logical})
    decoded = _assert_same_as_reference([zigzag(day - 1), zigzag(day)], schema)
    assert decoded.indices == [0] and [u.index for u in decoded.bad] == [1]


@pytest.mark.parametrize("logical,base,first,last", [
    ("date", "int", -719_162, 2_932_896),
    ("timestamp-millis", "long", -62_135_596_800_000, 253_402_300_799_999),
    ("timestamp-micros", "long", -62_135_596_800_000_000, 253_402_300_799_999_999)])
def test_dates_and_timestamps_beyond_years_1_to_9999_are_refused_as_the_reference_refuses_them(
        logical, base, first, last):
    schema = _one_field({"type": base, "logicalType": logical})
    decoded = _assert_same_as_reference([zigzag(v) for v in (first - 1, first, last, last + 1)], schema)
    assert decoded.indices == [1, 2] and [u.index for u in decoded.bad] == [0, 3]


@pytest.mark.parametrize("avro_type,values", [
    ({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
     [b"\x06\x01\x86\xa0", b"\x04\x27\x0f", b"\x04\x27\x10", b"\x04\xd8\xf1", b"\x04\xd8\xf0"]),
    ({"type": "fixed", "name": "f", "size": 2, "logicalType": "decimal", "precision": 4, "scale": 2},
     [b"\x86\xa0", b"\x27\x0f", b"\x27\x10", b"\xd8\xf1", b"\xd8\xf0"]),
])
def test_a_decimal_beyond_its_precision_is_refused_as_the_reference_refuses_it(avro_type, values):
    # 100000 as a decimal(4, 2) read 1000.00 in C; the reference cannot hold it in Arrow.
    decoded = _assert_same_as_reference(values, _one_field(avro_type))
    assert decoded.indices == [1, 3] and [u.index for u in decoded.bad] == [0, 2, 4]


def test_a_fixed_whose_size_is_not_an_integer_is_left_to_the_reference():
    schema = _one_field({"type": "fixed", "name": "f", "size": 4.0})
    assert program.compiled(schema.text) is None
    decoded = _assert_same_as_reference([b"abcd"], schema)  # fastavro refuses it: no TypeError
    assert [u.index for u in decoded.bad] == [0]


@pytest.mark.parametrize("items", ["null", {"type": "record", "name": "empty", "fields": []}])
def test_items_that_take_no_bytes_are_bounded_to_one_per_byte_of_the_value(items, monkeypatch):
    # 4,000 blocks of 2^20 nulls in 16 KB: over a billion items, once decoded in 5 s; blocks of
    # empty records as many as the bytes left, which grew quadratically with the value.
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "xs", "type": {"type": "array", "items": items}}, {"name": "label", "type": "string"}]})
    billion = zigzag(2**20) * 4000 + b"\x00\x06abc"
    quadratic = b"".join(zigzag(n) for n in range(4000, 0, -1)) + b"\x00\x06abc"
    within = zigzag(6) + b"\x00\x06abc"  # 6 items in 6 bytes
    over = zigzag(7) + b"\x00\x06abc"
    read_by_fastavro = []
    monkeypatch.setattr(fastavro, "schemaless_reader", lambda fo, *args, read=fastavro.schemaless_reader: (
        read_by_fastavro.append(fo.getvalue()) or read(fo, *args)))
    values = [within, billion, quadratic, over, within]
    decoded = _assert_same_as_reference(values, schema)
    assert decoded.indices == [0, 4] and decoded.table["xs"][0].as_py() in ([None] * 6, [{}] * 6)
    assert [(u.index, u.reason) for u in decoded.bad] == [
        (i, "more array items and map entries than bytes") for i in (1, 2, 3)]
    assert set(read_by_fastavro) == {within}  # the reference never built the others' items
    assert column(decode_batch(values, schema, arrow_schema(schema.avro), only="label").table,
                  "label").to_pylist() == ["abc", "abc"]


def test_values_whose_items_take_bytes_are_not_read_past_before_fastavro():
    # They cannot hold more items than bytes: the reference reads them as fastavro does.
    schema = _schema(generator.ztf_schema(slim=True, cutouts=False))
    assert program.read_past([b""], schema) is None
    assert program.read_past([b"\x00"], _schema(LABEL_AFTER_ITEMS | {"fields": [
        {"name": "xs", "type": {"type": "array", "items": "null"}}]})) == [program.READ]


def test_an_empty_string_first_and_a_map_of_two_empty_keys_decode_as_the_reference_does():
    # Once undefined behaviour, harmless but reported by UBSan (make fuzz): a copy of 0 bytes to
    # a buffer not yet allocated, and a comparison of two empty keys in no buffer at all.
    schema = _schema({"type": "record", "name": "r", "fields": [
        {"name": "s", "type": "string"}, {"name": "m", "type": {"type": "map", "values": "int"}}]})
    decoded = _assert_same_as_reference([b"\x00\x00", b"\x00\x04\x00\x02\x00\x04\x00"], schema)
    assert decoded.table.to_pylist() == [{"s": "", "m": []}, {"s": "", "m": [("", 2)]}]
