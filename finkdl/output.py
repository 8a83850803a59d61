"""Which storage an output is: a folder on a file system, or a prefix of an S3 bucket.

The one place that tells them apart: everything else works through the ``Storage`` it gets.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Mapping

from .errors import ConfigError
from .storage import LocalDisk, Storage


def is_object_storage(outdir: str | Path) -> bool:
    """An output in a bucket (``s3://bucket/prefix``) rather than a folder."""
    return str(outdir).startswith("s3://")


def location(outdir: str) -> str:
    """An output as the command line takes it: ``s3://bucket/prefix`` as given, a folder as an
    absolute path (workers and messages then name it the same from any working folder)."""
    return outdir if is_object_storage(outdir) else str(Path(outdir).expanduser().resolve())


def open_storage(outdir: str | Path, env: Mapping[str, str] = os.environ) -> Storage:
    """The storage of an output: an S3 prefix (``s3://…``) or a folder.

    For S3, ``FINKDL_SPOOL`` names the local folder files are written in before their upload
    (default: the temporary folder), ``FINKDL_S3_PART_MB`` the size of an upload's parts and
    ``FINKDL_S3_THREADS`` how many go up at once: memory held by uploads is at most their
    product. The S3 client's setup starts at once on a thread, to overlap what comes first
    (a download's questions to Kafka)."""
    if is_object_storage(outdir):
        from .objectstore import PART_SIZE, THREADS, ObjectStore  # boto3: only for s3:// outputs
        from .s3client import warm
        threading.Thread(target=warm, name="finkdl-s3-setup", daemon=True).start()
        spool = env.get("FINKDL_SPOOL")
        return ObjectStore(str(outdir), Path(spool) if spool else None,
                           part_size=_number(env, "FINKDL_S3_PART_MB", PART_SIZE >> 20, 5) << 20,
                           threads=_number(env, "FINKDL_S3_THREADS", THREADS, 1))
    return LocalDisk(Path(outdir))


def _number(env: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = env.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < least:
        raise ConfigError(f"{name}={text!r} is not a whole number of at least {least}",
                          hint=f"unset it to use {default}")
    return int(text)
