"""Conditional writes: how several processes and hosts change one small object (the folder's
schema) without a lock. Each reads the object and its ETag, computes the new bytes, and writes
them only if the ETag is still the one read (If-Match; If-None-Match: * for a new object). A
refused write (412, or 409 for two conditional writes at once) reads again and retries, so no
change is lost and none is made on a stale copy.

Some S3 servers accept the headers and ignore them. ``honoured`` tells, by trying: the
second create-only PUT of a probe object and a PUT on a stale ETag must both be refused.
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable

from .errors import OutputError
from .s3client import status

STALE_ETAG = '"00000000000000000000000000000000"'


def read(client: Any, bucket: str, key: str) -> tuple[bytes, str] | None:
    """An object's bytes and ETag, or None when there is none."""
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if status(exc)[1] in ("NoSuchKey", "404"):
            return None
        raise
    return got["Body"].read(), got["ETag"]


def get_range(client: Any, bucket: str, key: str, span: str) -> tuple[bytes, str | None]:
    """Bytes ``span`` (an HTTP Range) of an object and its Content-Range; FileNotFoundError
    when there is no object."""
    try:
        got = client.get_object(Bucket=bucket, Key=key, Range=span)
    except Exception as exc:
        code, name = status(exc)
        if name in ("NoSuchKey", "404"):
            raise FileNotFoundError(f"s3://{bucket}/{key}") from None
        if code == 416:  # an empty object has no last bytes
            return b"", None
        raise
    return got["Body"].read(), got.get("ContentRange")


def update(client: Any, bucket: str, key: str, change: Callable[[bytes | None], bytes | None],
           where: str, attempts: int = 30) -> bytes | None:
    """``change`` applied to the object, retried until it lands on the copy it was computed from."""
    for attempt in range(attempts):
        found = read(client, bucket, key)
        old, etag = found if found else (None, None)
        new = change(old)
        if new is None or new == old:
            return old
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            client.put_object(Bucket=bucket, Key=key, Body=new, **condition)
            return new
        except Exception as exc:
            if status(exc)[0] not in (409, 412):
                raise
        time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))
    raise OutputError(f"{where} kept changing: {attempts} conditional writes refused",
                      hint="another finkdl writes the same prefix; rerun when it is done")


def honoured(client: Any, bucket: str, probe: str) -> bool:
    """Whether the server refuses conditional writes it must refuse (the probe key is removed)."""
    client.put_object(Bucket=bucket, Key=probe, Body=b"1", IfNoneMatch="*")
    try:
        return all(_refused(client, bucket, probe, **condition)
                   for condition in ({"IfNoneMatch": "*"}, {"IfMatch": STALE_ETAG}))
    finally:
        client.delete_object(Bucket=bucket, Key=probe)


def _refused(client: Any, bucket: str, key: str, **condition: str) -> bool:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"2", **condition)
        return False
    except Exception as exc:
        code, name = status(exc)
        if code == 412:
            return True
        if code == 501 or name == "NotImplemented":
            return False
        raise
