"""Shared fixtures: one real Kafka broker per session, fresh topics and group ids per test."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from finkdl.buffer import PartitionBuffer
from finkdl.config import Connection, DownloadConfig
from finkdl.decode import decode_values
from finkdl.folder import Folder
from finkdl.layout import layout_for
from finkdl.local import generator
from finkdl.schema import parse_schema
from finkdl.local.broker import LocalBroker
from finkdl.storage import LocalDisk
from finkdl.writer import Spool

LSST_SAMPLE = ("lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json")
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fink"
_counter = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    node = LocalBroker(workdir=tmp_path_factory.mktemp("kafka")).start()
    yield node
    node.stop()


@pytest.fixture
def group_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def make_topic(broker, n: int, partitions: int = 3, survey: str = "ztf", schema: dict | None = None,
               records=None, **alert_options) -> str:
    """A new topic filled with generated alerts (or ``records``), as Fink fills one; its name."""
    name = f"ftransfer_{survey}_2026-11-28_{next(_counter)}{uuid.uuid4().hex[:6]}"
    broker.create_topic(name, partitions)
    if schema is None:
        schema = (generator.lsst_schema() if survey == "lsst" else
                  generator.ztf_schema(slim=alert_options.get("slim", True),
                                       cutouts=alert_options.get("cutouts", False)))
    if records is None:
        opts = {"slim": True, "cutouts": False, **alert_options}
        generator.produce_values(broker.servers, name, schema,
                                 generator.values(n, survey=survey, **opts), partitions)
    else:
        generator.produce(broker.servers, name, schema, records, partitions)
    return name


def recreate_topic(broker, topic: str, partitions: int, n: int) -> None:
    """Delete ``topic`` and create it again under its name with ``n`` new alerts."""
    admin = AdminClient({"bootstrap.servers": broker.servers})
    admin.delete_topics([topic])[topic].result()
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=5).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    for _ in range(50):  # the broker may still be removing it
        try:
            broker.create_topic(topic, partitions)
            break
        except Exception:
            time.sleep(0.3)
    generator.produce_values(broker.servers, topic, generator.ztf_schema(slim=True, cutouts=False),
                             generator.values(n, slim=True, cutouts=False, seed=1), partitions)


@pytest.fixture
def topic_factory(broker):
    """Create a topic filled with generated alerts; returns its name."""
    return lambda *args, **kw: make_topic(broker, *args, **kw)


def run_finkdl(*args: str, servers: str | None = None, group: str | None = None,
               timeout: float = 300, env: dict | None = None, check: bool = False,
               **popen) -> subprocess.CompletedProcess:
    """Run the installed command line as a user would."""
    cmd = [sys.executable, "-m", "finkdl", *args]
    if servers:
        cmd += ["--servers", servers]
    if group:
        cmd += ["--group-id", group]
    full_env = {**os.environ, "HOME": os.environ.get("FINKDL_TEST_HOME", "/nonexistent"), **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, **popen)
    if check and done.returncode != 0:
        raise AssertionError(f"finkdl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def download(broker, group: str, topic: str, outdir: Path, *args: str, **kw):
    """``finkdl download`` against the session broker, as a user runs it."""
    return run_finkdl("download", topic, "--outdir", str(outdir), "--timeout", "2",
                      "--progress", "plain", *args, servers=broker.servers, group=group, **kw)


@pytest.fixture
def finkdl(broker, group_id):
    """``finkdl download`` against the session broker with this test's group id."""
    return lambda topic, outdir, *args, group=None, **kw: download(
        broker, group or group_id, topic, outdir, *args, **kw)


def write_buffer(outdir: Path | None, buf, decode, fmt: str, schema_text: str, schema=None,
                 topic: str = "t", partition: int = 0, storage=None):
    """What ``buf`` holds, written as a worker writes a flush, without a broker (no commit):
    every label released to the flush's files, then the flush cut and its files put in place.
    Gives the flush and its files."""
    spool = Spool(storage or LocalDisk(outdir), topic, partition, buf.first, buf.part, fmt,
                  schema_text)
    spool.add(*buf.release(decode), schema)
    flush = buf.take(topic, partition)
    return flush, spool.finish(flush, schema)


def write_folder(outdir: Path, schema_json: dict, records: list[dict], survey: str,
                 partition_by: str = "none", topic: str = "ftransfer_ztf_2026-11-28_1") -> Path:
    """``records`` as one flush of partition 0 of ``topic``, written as a worker writes it
    (the folder's schema widened first, as a download does)."""
    schema = parse_schema(json.dumps(schema_json), "test")
    layout = layout_for(schema, DownloadConfig(topic=topic, outdir=outdir, survey=survey,
                                               partition_by=partition_by,
                                               connection=Connection("127.0.0.1:9", "g")))
    values = [generator.encode(schema.parsed, r) for r in records]
    decode = lambda v: decode_values(v, schema, layout.decoded)  # noqa: E731
    buf = PartitionBuffer(first=0, part=layout.part)
    buf.add(values, list(range(len(values))), [None] * len(values), [0] * len(values), now=0.0,
            labelled=decode(values))
    folder = Folder(LocalDisk(outdir))
    folder.fit(layout.written, layout.part.keys, "these alerts")
    with folder.writing() as folder_schema:
        write_buffer(outdir, buf, decode, "parquet", schema.text, folder_schema, topic=topic)
    return outdir


BUCKET = "finkdl-test"  # made by the session's S3 server


@pytest.fixture(scope="session")
def s3server(tmp_path_factory):
    pytest.importorskip("boto3", reason="boto3 is not installed: pip install 'finkdl[s3]'")
    from finkdl.errors import OutputError
    from finkdl.local.s3server import LocalS3Server, weed_binary
    try:
        weed_binary()
    except OutputError as exc:
        pytest.skip(f"no SeaweedFS server to test against: {exc.message} ({exc.hint})")
    server = LocalS3Server(tmp_path_factory.mktemp("s3"), buckets=(BUCKET,)).start()
    yield server
    server.stop()


@pytest.fixture
def s3env(s3server, monkeypatch):
    """The standard AWS variables pointing at the session's server, for this test only."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for name, value in s3server.env().items():
        monkeypatch.setenv(name, value)
    return s3server
