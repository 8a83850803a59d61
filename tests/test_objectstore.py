"""Object storage (finkdl.objectstore) against a real S3 server: SeaweedFS, started once per
session on loopback (finkdl.local.s3server); each test writes under a prefix of its own."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from finkdl.errors import OutputError
from finkdl.naming import file_name

pytestmark = pytest.mark.broker  # needs a server started for the session, as the Kafka tests do
from conftest import BUCKET, write_buffer
MB = 1 << 20


def _store(tmp_path, bucket=BUCKET, **kw):
    from finkdl.objectstore import ObjectStore
    return ObjectStore(f"s3://{bucket}/run-{uuid.uuid4().hex[:8]}/out", spool=tmp_path / "spool", **kw)


@pytest.fixture
def store(s3env, tmp_path):
    return _store(tmp_path)


def _client():
    import boto3
    return boto3.client("s3")


def _keys(store) -> list[str]:
    """Every object under the store's prefix, as the server lists them (markers included)."""
    pages = _client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=store.prefix + "/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _spooled(store, final, data: bytes):
    tmp = store.new_file(final)
    tmp.write_bytes(data)
    return tmp, final


def test_published_files_are_listed_exactly_and_no_folder_marker_or_spool_file_is_left(store):
    finals = [store.root / folder / file_name(p, 10 * p, 10 * p + 9, 1, "parquet", "t")
              for p, folder in ((0, "finkclass=SN"), (1, "finkclass=SN"), (2, "finkclass=(null)"))]
    moves = [_spooled(store, final, b"x" * 100) for final in finals]
    store.publish(moves)
    assert sorted(f.path for f in store.files()) == sorted(finals)
    assert {f.range.partition for f in store.files()} == {0, 1, 2}
    assert _keys(store) == sorted(store.key(f) for f in finals)  # no "finkclass=SN/" object
    assert not any(tmp.exists() for tmp, _ in moves)
    assert store.temporaries("t", 0) == []


def test_a_multipart_upload_is_invisible_until_complete_then_whole(s3env, tmp_path):
    from finkdl import s3upload
    store = _store(tmp_path, part_size=5 * MB)
    final = store.root / file_name(3, 0, 99, 1, "parquet", "t")
    data = os.urandom(12 * MB)
    tmp, _ = _spooled(store, final, data)
    client, key = store._client(), store.key(final)
    upload = s3upload.begin(client, BUCKET, key)
    parts = [s3upload.put_part(client, BUCKET, key, upload, tmp, n, off, min(5 * MB, len(data) - off))
             for n, off in enumerate(range(0, len(data), 5 * MB), 1)]
    assert len(parts) == 3 and store.files() == [] and _keys(store) == []
    s3upload.complete(client, BUCKET, key, upload, parts)
    assert [f.path for f in store.files()] == [final]
    assert _client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    # publish takes the same way for a file above the part size
    other = final.with_name(file_name(3, 100, 199, 1, "parquet", "t"))
    store.publish([_spooled(store, other, data[::-1])])
    assert _client().get_object(Bucket=BUCKET, Key=store.key(other))["Body"].read() == data[::-1]


def test_an_abandoned_multipart_upload_is_a_temporary_of_its_partition_and_is_aborted(store):
    client = store._client()
    key = store.key(store.root / "finkclass=SN" / file_name(4, 0, 99, 2, "parquet", "t"))
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1, Body=b"y" * (5 * MB))
    assert store.temporaries("t", 3) == [] and store.temporaries("other", 4) == []
    [left] = store.temporaries("t", 4)
    assert left.parent == store.root / "finkclass=SN" and store.files() == []
    store.delete([left])
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix).get("Uploads", []) == []
    assert store.temporaries("t", 4) == [] and _keys(store) == []


def _buffer(n: int, first: int = 0):
    from finkdl.arrow_schema import arrow_schema
    from finkdl.buffer import PartitionBuffer
    from finkdl.decode import decode_values
    from finkdl.local import generator
    from finkdl.partitioning import partitioning_for
    from finkdl.schema import parse_schema
    schema = parse_schema(json.dumps(generator.ztf_schema(cutouts=False)), "test")
    part = partitioning_for("finkclass", "ztf", schema)
    values = [generator.encode(schema.parsed, r) for r in generator.alerts(n, cutouts=False)]
    decode = lambda v: decode_values(v, schema, arrow_schema(schema.avro))  # noqa: E731
    buf = PartitionBuffer(first=first, part=part, keep_raw=True)
    buf.add(values, list(range(first, first + n)), [None] * n, [0] * n, now=0.0, labelled=decode(values))
    return buf, decode, schema


def _write_flush(store, n: int = 300):
    """A flush's files written into the store as a worker writes them (conftest's write_buffer)."""
    buf, decode, schema = _buffer(n)
    return write_buffer(None, buf, decode, "parquet", schema.text, storage=store)


def test_a_spool_writes_a_flush_into_the_store_and_metadata_reads_its_footer(store):
    flush, written = _write_flush(store)
    assert len(written) > 1
    assert sorted(f.path for f in store.files()) == sorted(w.path for w in written)
    for w in written:
        meta = store.metadata(w.path)
        assert meta["finkdl.topic"] == "t" and meta["finkdl.first_offset"] == "0"
        assert meta["finkdl.last_offset"] == str(flush.last)
        assert meta["finkdl.files"] == str(len(written)) and meta["finkdl.rows"] == str(w.rows)
    assert sum(w.rows for w in written) == 300
    assert not [p for p in store.spool.rglob("*") if p.is_file()]  # nothing left in the spool
    assert not any(k.endswith("/") for k in _keys(store))


def test_pyarrow_and_pandas_read_the_published_parquet_back_from_s3(store, s3env):
    import pandas as pd
    import pyarrow.dataset as ds
    from pyarrow import fs

    from finkdl.s3client import arrow_filesystem
    flush, written = _write_flush(store)
    s3 = fs.S3FileSystem(access_key=s3env.access_key, secret_key=s3env.secret_key,
                         endpoint_override=s3env.endpoint, region="us-east-1")
    table = ds.dataset(f"{BUCKET}/{store.prefix}", filesystem=s3, format="parquet",
                       partitioning="hive").to_table()
    assert table.num_rows == 300 and "finkclass" in table.column_names
    frame = pd.read_parquet(f"{BUCKET}/{store.prefix}", filesystem=s3)
    assert len(frame) == 300 and frame["candid"].dtype == "Int64"
    assert sorted(frame["candid"]) == sorted(table.column("candid").to_pylist())
    same = arrow_filesystem(store.endpoint)  # found from the environment, as boto3 finds them
    assert ds.dataset(store.url_of(store.root).removeprefix("s3://"), filesystem=same,
                      format="parquet", partitioning="hive").count_rows() == 300


def test_the_server_honours_conditional_writes_and_an_update_retries_on_a_conflict(store):
    assert store.honours_conditional_writes() and store.several_writers_safe()
    path = store.root / "_finkdl" / "folder-schema.json"
    assert store.update_conditionally(path, lambda old: b"a") == b"a"
    calls = []

    def add_b(old):  # another writer changes the object between our read and our write, once
        calls.append(old)
        if len(calls) == 1:
            store.update_conditionally(path, lambda o: o + b"c")
        return old + b"b"
    assert store.update_conditionally(path, add_b) == b"acb"
    assert calls == [b"a", b"ac"]  # the first write got 412
    assert store.files() == []  # finkdl's own folder holds no data file


def test_write_durably_move_and_delete(store):
    first = store.root / file_name(0, 0, 9, 1, "parquet", "t")
    assert store.write_durably(first, lambda f: f.write(b"abc")) == 3
    second = store.root / "_finkdl" / "set-aside" / first.name
    store.move([(first, second)])
    assert store.files() == [] and store.read(second)[0] == b"abc"
    store.delete([second])
    assert _keys(store) == []


def _one_line(exc: OutputError) -> str:
    assert "\n" not in exc.message and exc.hint
    return exc.message


def test_a_wrong_secret_is_one_line_naming_no_secret(s3env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123")
    with pytest.raises(OutputError) as refused:
        _store(tmp_path).check_writable()
    assert "refused the credentials" in _one_line(refused.value)
    assert "not-the-secret-0123" not in str(refused.value) and s3env.secret_key not in str(refused.value)


def test_a_missing_bucket_is_one_line(s3env, tmp_path):
    with pytest.raises(OutputError) as missing:
        _store(tmp_path, bucket="no-such-bucket").check_writable()
    assert "bucket no-such-bucket does not exist" in _one_line(missing.value)


def test_an_endpoint_that_does_not_answer_is_one_line_within_seconds(s3env, tmp_path, monkeypatch):
    from finkdl.local.service import free_port
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(OutputError) as silent:
        _store(tmp_path).check_writable()
    assert "does not answer" in _one_line(silent.value) and time.monotonic() - started < 10
