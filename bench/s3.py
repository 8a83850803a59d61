"""The object-storage row: the same alerts downloaded to local disk and to a local S3 server
(SeaweedFS, started here as the tests start it), with the server's own PUT throughput
measured in the same run as that row's ceiling.

The ceiling PUTs as many objects as finkdl wrote, of the same mean size, with boto3's own
transfer manager (not finkdl's uploader) from as many threads as finkdl's workers have upload
threads in all: what the server takes in with no Kafka, decoding or Parquet on the way.

S3 gives an object's time to the second (``LastModified``): a run's end is its newest
object's second plus 0.5 s, which is within ±0.5 s of the truth.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from finkdl.local.s3server import LocalS3Server
from finkdl.naming import parse_file_name
from finkdl.objectstore import PART_SIZE, THREADS
from finkdl.s3client import arrow_filesystem

from measure import Output

BUCKET = "finkdl-bench"
TARGET = 0.8  # finkdl to S3 ÷ finkdl to disk, where the server's ceiling allows


def start_server(workdir: Path) -> LocalS3Server:
    return LocalS3Server(workdir / "s3", buckets=(BUCKET,)).start()


def url_for(run: Path) -> str:
    return f"s3://{BUCKET}/{run.name}/out"


def environment(server: LocalS3Server, run: Path) -> dict[str, str]:
    """The standard AWS variables naming the server, the run's own spool folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **server.env(), "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent", "FINKDL_SPOOL": str(run / "spool")}


def _client(server: LocalS3Server, threads: int) -> Any:
    import boto3
    from botocore.config import Config
    env = server.env()
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(max_pool_connections=threads, s3={"addressing_style": "path"},
                                      request_checksum_calculation="when_required"))


def read_s3_output(server: LocalS3Server, url: str) -> Output:
    """Files, rows, bytes and newest time of the Parquet dataset under ``url``, as a reader
    of the bucket sees it (pyarrow's S3 file system; names starting with '_' left aside)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = _client(server, 1).get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix + "/")
    objects = [o for page in pages for o in page.get("Contents", [])
               if not any(part.startswith(("_", ".")) for part in o["Key"][len(prefix) + 1:].split("/"))]
    if not objects:
        return Output(0, 0, None)
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        dataset = ds.dataset(f"{bucket}/{prefix}", format="parquet", partitioning="hive",
                             filesystem=arrow_filesystem(server.endpoint))
        rows = dataset.count_rows()
    except Exception as exc:  # unreadable output is a result to report, not a crash
        return Output(0, 0, None, f"unreadable output: {type(exc).__name__}: {exc}")
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    newest = max(o["LastModified"].timestamp() for o in objects) + 0.5
    per_label = Counter((o["Key"].rpartition("/")[0], r.partition) for o in objects
                        if (r := parse_file_name(o["Key"].rpartition("/")[2])) is not None)
    return Output(len(objects), rows, newest, None, max(per_label.values(), default=0),
                  sum(o["Size"] for o in objects))


@dataclass(frozen=True)
class Ceiling:
    objects: int
    bytes: int
    seconds: float
    threads: int

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds


def put_ceiling(server: LocalS3Server, objects: int, total_bytes: int, workers: int) -> Ceiling:
    """``objects`` objects of ``total_bytes`` in all PUT from ``workers`` × finkdl's upload
    threads, in parts of finkdl's part size: the server's intake, timed."""
    from boto3.s3.transfer import TransferConfig
    threads = workers * THREADS
    size = max(1, total_bytes // max(1, objects))
    body = os.urandom(size)  # incompressible, as Parquet pages are
    client = _client(server, threads)
    config = TransferConfig(multipart_threshold=PART_SIZE + 1, multipart_chunksize=PART_SIZE,
                            max_concurrency=THREADS, use_threads=True)
    prefix = f"ceiling-{time.time_ns()}"

    def put(n: int) -> None:
        import io
        client.upload_fileobj(io.BytesIO(body), BUCKET, f"{prefix}/object-{n:06d}", Config=config)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(objects)))
    seconds = time.perf_counter() - started
    _delete_prefix(client, prefix)
    return Ceiling(objects, size * objects, seconds, threads)


def _delete_prefix(client: Any, prefix: str) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def target_line(name: str, disk_rate: float | None, s3_rate: float | None,
                ceiling_rate: float | None) -> str:
    """finkdl to S3 against finkdl to disk, the bar lowered to the server's ceiling where the
    server takes in less than finkdl writes to disk."""
    if not (disk_rate and s3_rate and ceiling_rate):
        return f"{name}: finkdl to S3 ÷ to local disk not measured"
    allowed = min(disk_rate, ceiling_rate)
    bar = "local disk" if allowed == disk_rate else "the server's PUT ceiling"
    ratio = s3_rate / allowed
    return (f"{name}: finkdl to S3 {s3_rate:,.0f} alerts/s ÷ {bar} {allowed:,.0f} = {ratio:.2f}× "
            f"(to disk {disk_rate:,.0f}/s, ceiling {ceiling_rate:,.0f}/s; target ≥ {TARGET:g}×): "
            + ("met" if ratio >= TARGET else "NOT met"))
