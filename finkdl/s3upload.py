"""Local files uploaded to S3 keys, each complete or not at all.

A file up to the part size goes up in one PUT; a larger one as a multipart upload, completed
only once every part is in: until then no object has its name, and a failed upload is aborted
(one a killed process left is found by ``ObjectStore.temporaries``). All parts of all files of
a publish share one pool of threads, so a flush of many small files and one of a single large
file both keep ``threads`` requests in flight, and memory holds at most ``threads`` parts.
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

MIN_PART = 5 << 20  # S3's smallest part but the last


def upload_all(client: Any, bucket: str, jobs: list[tuple[Path, str]], part_size: int,
               threads: int) -> None:
    """Every (file, key) of ``jobs`` uploaded; returns when the server acknowledged them all."""
    if part_size < MIN_PART:
        raise ValueError(f"a part is at least {MIN_PART} bytes")
    uploads: dict[str, str] = {}  # key → upload id, of multipart uploads not yet completed
    try:
        with ThreadPoolExecutor(threads) as pool:
            puts: list[Future] = []
            parts: dict[str, list[Future]] = {}
            for path, key in jobs:
                size = path.stat().st_size
                if size <= part_size:
                    puts.append(pool.submit(put_whole, client, bucket, path, key))
                    continue
                uploads[key] = begin(client, bucket, key)
                parts[key] = [pool.submit(put_part, client, bucket, key, uploads[key], path, n,
                                          offset, min(part_size, size - offset))
                              for n, offset in enumerate(range(0, size, part_size), 1)]
            _all(puts + [f for futures in parts.values() for f in futures])
            _all([pool.submit(complete, client, bucket, key, uploads[key], [f.result() for f in futures])
                  for key, futures in parts.items()])
            uploads.clear()
    finally:
        for key, upload_id in uploads.items():
            abort(client, bucket, key, upload_id)


def _all(futures: list[Future]) -> None:
    """Wait for every future; on the first failure cancel those not started and raise it."""
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    for future in done:
        future.result()


def put_whole(client: Any, bucket: str, path: Path, key: str) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def begin(client: Any, bucket: str, key: str) -> str:
    """A multipart upload started for ``key``: its upload id."""
    return client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]


def put_part(client: Any, bucket: str, key: str, upload_id: str, path: Path, number: int,
             offset: int, length: int) -> dict:
    """One part, read from the file in the thread that sends it: (its number, its ETag)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        body = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(body) != length:
        raise OSError(f"{path} shrank while it was uploaded")
    done = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    return {"PartNumber": number, "ETag": done["ETag"]}


def complete(client: Any, bucket: str, key: str, upload_id: str, parts: list[dict]) -> None:
    """The object made visible under ``key``, whole."""
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])})


def abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    """An unfinished upload's parts dropped, as far as the server can be reached (else it stays
    an upload of the prefix, which the partition's next owner aborts)."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:
        pass
