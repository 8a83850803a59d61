"""Talking to an S3 server: a client from the standard AWS chain, its failures as finkdl's
errors (one line and a hint), and an object read like a file by ranged GETs.

Endpoint and credentials come as S3 users already set them: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws``,
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` for a server other than AWS, the region. No
message names a secret: botocore's own never do, and ours name the bucket, the key and the
endpoint only.
"""
from __future__ import annotations

import functools
import io
import os
import threading
from typing import Any, Callable

from .errors import ConfigError, OutputError

DEFAULT_REGION = "us-east-1"  # any region is accepted by servers other than AWS
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                "ExpiredToken", "TokenRefreshRequired", "403"}
_NO_BUCKET = {"NoSuchBucket"}
_UNREACHABLE_HINT = ("check AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) and that the server is up; "
                     "nothing past the objects already written was committed, rerun to resume")


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → (``bucket``, ``some/prefix``)."""
    if not url.startswith("s3://"):
        raise ConfigError(f"{url} is not an s3:// address", hint="write it as s3://BUCKET/PREFIX")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ConfigError(f"{url} names no bucket", hint="write it as s3://BUCKET/PREFIX")
    return bucket, "/".join(part for part in prefix.split("/") if part)


def endpoint_from_env() -> str | None:
    """The endpoint the environment names, if any (a profile's own is found by boto3 itself)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def connect(endpoint: str | None, attempts: int, connections: int) -> Any:
    """An S3 client: up to ``attempts`` retries with backoff after a try (503 SlowDown too), a
    pool of ``connections`` (one per upload thread), path-style addresses on a named endpoint
    (Ceph RGW, SeaweedFS, MinIO do not all serve bucket host names). Checksums only where the
    server requires them: SigV4 signs the payload's SHA-256 over HTTP, TLS guards it over
    HTTPS, and the CRC trailers botocore adds by default are refused by older servers."""
    session = _session(_aws_environment())
    from botocore.config import Config
    config = Config(region_name=session.region_name or DEFAULT_REGION,
                    retries={"mode": "standard", "max_attempts": attempts},
                    max_pool_connections=connections, connect_timeout=5, read_timeout=120,
                    tcp_keepalive=True, s3={"addressing_style": "path"} if endpoint else None,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    with _CREATING:
        return session.client("s3", endpoint_url=endpoint, config=config)


_CREATING = threading.Lock()  # a boto3 session is not thread-safe; its clients are


@functools.lru_cache(maxsize=4)
def _session(environment: frozenset[tuple[str, str]]) -> Any:
    """One boto3 session per process and AWS environment: its first client costs ~0.25 s of
    CPU (it loads the S3 service's description), the next ones ~0.02 s."""
    try:
        import boto3
    except ImportError as exc:
        raise OutputError("writing to s3:// needs boto3, which is not installed",
                          hint="pip install 'finkdl[s3]'") from exc
    return boto3.session.Session()


def _aws_environment() -> frozenset[tuple[str, str]]:
    """What a session is made of: a changed variable (a test's, a user's) makes a new one."""
    return frozenset((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))


def warm() -> None:
    """Import boto3 and load the S3 service's description into this process's session (~0.5 s
    of CPU): by the worker server before it forks workers writing to object storage, instead
    of by each of them, and on a thread of the front end while it asks Kafka about the topic.
    A client with placeholder keys, never used: no credential is looked up here. It never
    fails: boto3 missing or broken is told by the first real request, in one line. Once per
    session: the storage is opened more than once in a run."""
    try:
        _load_description(_aws_environment())
    except Exception:  # noqa: BLE001 - see above
        pass


@functools.lru_cache(maxsize=4)
def _load_description(environment: frozenset[tuple[str, str]]) -> None:
    with _CREATING:
        _session(environment).client("s3", region_name=DEFAULT_REGION, aws_access_key_id="-",
                                     aws_secret_access_key="-")


def status(exc: BaseException) -> tuple[int | None, str]:
    """A client error's HTTP status and code (``(None, '')`` for any other exception)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, ""
    return (response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            str(response.get("Error", {}).get("Code", "")))


def output_error(exc: Exception, doing: str, where: str, endpoint: str) -> OutputError:
    """One line saying what failed and what to do, for any failure of boto3/botocore."""
    from botocore import exceptions as bx
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return OutputError(f"no S3 credentials to {doing} {where}",
                           hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError,
                        bx.ReadTimeoutError, bx.ConnectionClosedError)):
        return OutputError(f"the S3 endpoint {endpoint} does not answer ({type(exc).__name__})",
                           hint=_UNREACHABLE_HINT)
    code, name = status(exc)
    if name in _CREDENTIALS or code == 403:
        return OutputError(f"the S3 server {endpoint} refused the credentials to {doing} {where} ({name})",
                           hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE): "
                                "they need to list, read, write and delete in the bucket")
    bucket = where.removeprefix("s3://").split("/", 1)[0]
    if name in _NO_BUCKET or (code == 404 and doing == "reach"):
        return OutputError(f"bucket {bucket} does not exist at {endpoint}",
                           hint=f"create it (aws s3 mb s3://{bucket}) or correct the s3:// address")
    detail = f"{name} {exc.response['Error'].get('Message', '')}".strip() if code else str(exc)
    return OutputError(f"cannot {doing} {where}: {detail.splitlines()[0] if detail else type(exc).__name__}",
                       hint="nothing past the objects already written was committed, rerun to resume")


class RangedFile(io.RawIOBase):
    """An object read as a seekable file by ranged GETs: its tail comes with the first request
    (a Parquet footer is there), other reads in blocks of at least ``block`` bytes (an Avro
    header is read a few bytes at a time)."""

    def __init__(self, get: Callable[[str], tuple[bytes, str | None]], tail: int = 1 << 16,
                 block: int = 1 << 18) -> None:
        super().__init__()
        self._get, self._block = get, block
        data, content_range = get(f"bytes=-{tail}")
        self.size = int(content_range.rsplit("/", 1)[1]) if content_range else len(data)
        self._tail = (self.size - len(data), data)
        self._recent = self._tail
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self._pos)
        if n <= 0:
            return 0
        chunk = self._slice(self._pos, n)
        buffer[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def _slice(self, start: int, n: int) -> bytes:
        for begin, data in (self._tail, self._recent):
            if begin <= start and start + n <= begin + len(data):
                return data[start - begin:start - begin + n]
        end = min(self.size, start + max(n, self._block))
        data, _ = self._get(f"bytes={start}-{end - 1}")
        self._recent = (start, data)
        return data[:n]


def arrow_filesystem(endpoint: str | None) -> Any:
    """pyarrow's S3 file system with the credentials boto3 finds (the same chain), for the
    readers of an s3:// output: paths in it are ``bucket/key``."""
    from pyarrow import fs
    session = _session(_aws_environment())
    found = session.get_credentials()
    creds = found.get_frozen_credentials() if found else None
    return fs.S3FileSystem(access_key=creds.access_key if creds else None,
                           secret_key=creds.secret_key if creds else None,
                           session_token=creds.token if creds else None,
                           region=session.region_name or DEFAULT_REGION, endpoint_override=endpoint)
