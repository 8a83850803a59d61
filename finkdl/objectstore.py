"""Output files in an S3 bucket: the ``Storage`` of ``--outdir s3://bucket/prefix``.

Client: boto3. It reads the whole standard AWS chain (profiles, SSO, AWS_ENDPOINT_URL_S3) and has
every call needed here (If-None-Match/If-Match on PUT, ListMultipartUploads, AbortMultipartUpload);
parts go up from a thread pool, whose socket writes run off the GIL (figures: ObjectStore report).

Paths: the store's paths are local ``Path``s under a spool folder whose layout mirrors the
bucket: ``spool/<key>`` stands for the object ``<key>``, and ``root`` is ``spool/<prefix>``.
A file is written under a temporary name in the spool (``new_file``), where pyarrow writes it as
on any disk, and ``publish`` uploads it to the key its final path stands for. So the writer
(finkdl.writer.Spool), which names a flush's files from its temporary's folder, and
finkdl.commit, which compares the paths it wrote with those ``files`` lists, work unchanged.
Only the spool's temporaries exist as local files: anything else reads through the store.

Exactly once without a rename: an object exists under its final name only complete, from one
PUT or from a multipart upload completed when all its parts are in; ``publish`` returns when
the server acknowledged every object, and only then may offsets be committed. A killed run leaves
at worst multipart uploads, which ``temporaries`` lists (as paths) and ``delete`` aborts.

Several writers: object storage has no ``flock``. ``locked`` holds nothing; the folder's schema
object is changed only by ``update_conditionally`` (If-Match on its ETag, If-None-Match when new,
retried on 412), which is safe where ``honours_conditional_writes`` (checked at start) is true.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from . import s3conditional as conditional
from .errors import OutputError
from .naming import META_DIR, parse_file_name, temporary_name, temporary_range
from .s3client import RangedFile, connect, endpoint_from_env, output_error, parse_url, status
from .storage import DataFile, write_whole

PART_SIZE = 16 << 20   # multipart part, and the size from which a file goes up in parts
THREADS = 8            # parts in flight: memory held by uploads is at most THREADS × PART_SIZE
ATTEMPTS = 10          # retries of a request after its first try (backoff between, 503 SlowDown too)
UPLOAD = "upload-"     # token of a temporary that stands for an unfinished multipart upload


class ObjectStore:
    """The output "folder" ``s3://bucket/prefix``, through a local spool folder."""

    def __init__(self, url: str, spool: Path | None = None, *, endpoint: str | None = None,
                 part_size: int = PART_SIZE, threads: int = THREADS, attempts: int = ATTEMPTS) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        base = spool or Path(tempfile.gettempdir()) / f"finkdl-spool-{os.getuid()}"
        self.spool = base / self.bucket
        self.root = self.spool / self.prefix if self.prefix else self.spool
        self.endpoint = endpoint or endpoint_from_env()
        self.part_size, self.threads, self.attempts = part_size, threads, attempts
        self._clients: dict[int, Any] = {}
        self._conditional: bool | None = None

    def __getstate__(self) -> dict:  # a worker process makes clients of its own
        return {**self.__dict__, "_clients": {}}

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r}, endpoint={self.endpoint!r})"

    # Keys and paths

    def key(self, path: Path) -> str:
        return path.relative_to(self.spool).as_posix()

    def path(self, key: str) -> Path:
        return self.spool / key

    def url_of(self, path: Path) -> str:
        """How people and other tools name a path: ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key(path)}".rstrip("/")

    @property
    def _listed(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _client(self, attempts: int | None = None) -> Any:
        attempts = attempts or self.attempts
        if attempts not in self._clients:
            self._clients[attempts] = connect(self.endpoint, attempts, self.threads + 2)
        return self._clients[attempts]

    @contextmanager
    def _failing(self, doing: str, where: str | None = None) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            endpoint = self.endpoint or self._client().meta.endpoint_url
            raise output_error(exc, doing, where or self.url, endpoint) from exc

    # The Storage protocol

    def check_writable(self) -> None:
        """Prove the bucket reachable and writable before any alert is fetched: few retries
        to reach it (a wrong endpoint is told in seconds), then all of them to write (a server
        that answered is busy, not wrong, when it says 503 SlowDown)."""
        with self._failing("reach"):
            self._client(attempts=2).head_bucket(Bucket=self.bucket)
        probe = f"{self._listed}.finkdl-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with self._failing("write into"):
            self._client().put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self._client().delete_object(Bucket=self.bucket, Key=probe)

    def free_space(self) -> int | None:
        return None

    def _objects(self) -> Iterator[str]:
        """Every key under the prefix, less finkdl's own folder and any folder marker."""
        pages = self._client().get_paginator("list_objects_v2")
        with self._failing("list"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=self._listed):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if not key.endswith("/") and key[len(self._listed):].split("/", 1)[0] != META_DIR:
                        yield key

    def files(self) -> list[DataFile]:
        """Every finkdl object of the prefix (the quarantine's too), with its topic."""
        found = []
        for key in self._objects():
            parsed = parse_file_name(key.rsplit("/", 1)[-1])
            if parsed:
                path = self.path(key)
                if parsed.topic is None:
                    parsed = dataclasses.replace(parsed, topic=self.metadata(path).get("finkdl.topic", ""))
                found.append(DataFile(path, parsed))
        return found

    def temporaries(self, topic: str, partition: int) -> list[Path]:
        """Multipart uploads of a topic's partition never completed (a killed run's), and this
        host's spool files of it: never part of the output, removed by ``delete``."""
        found = []
        pages = self._client().get_paginator("list_multipart_uploads")
        with self._failing("list the uploads of"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=self._listed):
                for upload in page.get("Uploads", []):
                    final = self.path(upload["Key"])
                    parsed = parse_file_name(final.name)
                    if parsed and parsed.partition == partition and parsed.topic in (topic, None):
                        token = UPLOAD + base64.b32encode(upload["UploadId"].encode()).decode().rstrip("=")
                        found.append(final.with_name(temporary_name(final.name, token)))
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                parsed = temporary_range(name)
                if parsed and parsed.partition == partition and parsed.topic in (topic, None):
                    found.append(Path(folder) / name)
        return found

    def new_file(self, final: Path) -> Path:
        """Where to write what will be ``final``: a temporary of the spool, its folder made."""
        self.key(final)  # a path outside the store is a mistake, told here rather than at upload
        try:
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise OutputError(f"cannot make the spool folder {final.parent}: {exc.strerror}",
                              hint="free some space there, or set TMPDIR to a larger disk") from exc
        return final.with_name(temporary_name(final.name, str(os.getpid())))

    def written_back(self, path: Path, start: int) -> int:
        """Nothing to do: the spool file is read back for its upload, best from the page cache."""
        return start

    def publish(self, moves: list[tuple[Path, Path]]) -> None:
        """Written spool files (temporary, final) uploaded to their final keys, all together;
        returns when the server acknowledged every one. The spool files are then removed."""
        from .s3upload import upload_all
        with self._failing("upload to"):
            upload_all(self._client(), self.bucket, [(tmp, self.key(final)) for tmp, final in moves],
                       self.part_size, self.threads)
        for tmp, _ in moves:
            tmp.unlink(missing_ok=True)

    def write_durably(self, path: Path, write: Callable[[BinaryIO], None]) -> int:
        """A whole object written by ``write`` (through the spool) and published; gives its size."""
        return write_whole(self, path, write)

    def delete(self, paths: Iterable[Path]) -> None:
        """Objects deleted, spool temporaries removed, unfinished uploads aborted."""
        keys = []
        for path in paths:
            parsed = temporary_range(path.name)
            token = path.name[1:].rsplit(".", 2)[1] if parsed else ""
            if token.startswith(UPLOAD):
                self._abort(path, token[len(UPLOAD):])
            elif parsed:
                path.unlink(missing_ok=True)
            else:
                keys.append(self.key(path))
        for start in range(0, len(keys), 1000):
            with self._failing("delete from"):
                done = self._client().delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
            if done.get("Errors"):
                error = done["Errors"][0]
                raise OutputError(f"cannot delete s3://{self.bucket}/{error['Key']}: {error['Code']}",
                                  hint="check that the credentials may delete in the bucket")

    def _abort(self, path: Path, token: str) -> None:
        upload_id = base64.b32decode(token + "=" * (-len(token) % 8)).decode()
        key = self.key(path.with_name(path.name[1:].rsplit(".", 2)[0]))
        with self._failing("abort an upload to"):
            try:
                self._client().abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception as exc:
                if status(exc)[1] != "NoSuchUpload":
                    raise

    def move(self, moves: list[tuple[Path, Path]]) -> None:
        """Objects renamed within the bucket: each copied (by the server), then the sources deleted."""
        client = self._client()
        with self._failing("copy within"):
            for source, target in moves:
                client.copy({"Bucket": self.bucket, "Key": self.key(source)}, self.bucket, self.key(target))
        self.delete(source for source, _ in moves)

    def metadata(self, path: Path) -> dict[str, str]:
        """The ``finkdl.*`` facts a data object keeps in its own metadata, read by ranged GETs:
        a Parquet footer is in the first request (its last 64 KB), an Avro header in the next."""
        with self.open(path) as f:
            if path.suffix == ".avro":
                import fastavro
                meta = fastavro.block_reader(f).metadata
                return {k: v for k, v in meta.items() if k.startswith("finkdl.")}
            import pyarrow.parquet as pq
            meta = pq.read_metadata(f).metadata or {}
        return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"finkdl.")}

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Nothing to hold: see the module's docstring (several writers)."""
        yield

    # What the folder's schema needs without a lock, and reading objects

    def open(self, path: Path) -> RangedFile:
        """An object as a seekable binary file (for pyarrow, fastavro), read by ranged GETs."""
        key, client = self.key(path), self._client()

        def get(span: str) -> tuple[bytes, str | None]:
            with self._failing("read", self.url_of(path)):
                return conditional.get_range(client, self.bucket, key, span)
        return RangedFile(get)

    def read(self, path: Path) -> tuple[bytes, str] | None:
        """A small object's bytes and ETag, or None when there is none."""
        with self._failing("read", self.url_of(path)):
            return conditional.read(self._client(), self.bucket, self.key(path))

    def update_conditionally(self, path: Path, change: Callable[[bytes | None], bytes | None]
                             ) -> bytes | None:
        """A small object replaced by ``change(its bytes)`` (None: left as it is) only if nobody
        changed it meanwhile (finkdl.s3conditional); gives what it then holds."""
        with self._failing("write", self.url_of(path)):
            return conditional.update(self._client(), self.bucket, self.key(path), change,
                                      self.url_of(path))

    def several_writers_safe(self) -> bool:
        """Several processes may write the prefix only where the folder's schema object is
        changed safely, by conditional writes."""
        return self.honours_conditional_writes()

    def entries(self) -> list[Path]:
        """Every object of the prefix, finkdl's or not, less finkdl's own folder."""
        return [self.path(key) for key in self._objects()]

    def arrow_dataset_source(self, paths: list[Path]) -> tuple[object, list[str], str]:
        """What ``pyarrow.dataset.dataset`` takes to read these objects: pyarrow's S3 file
        system (same credentials), their ``bucket/key`` names, and the prefix's."""
        from .s3client import arrow_filesystem
        return (arrow_filesystem(self.endpoint), [f"{self.bucket}/{self.key(p)}" for p in paths],
                f"{self.bucket}/{self.prefix}".rstrip("/"))

    def honours_conditional_writes(self) -> bool:
        """Whether the server refuses a second create-only PUT and a PUT on a stale ETag with 412
        (some S3 servers ignore both, silently): without it several writers are unsafe."""
        if self._conditional is None:
            probe = f"{self._listed}{META_DIR}/.conditional-probe-{uuid.uuid4().hex}"
            with self._failing("probe conditional writes in"):
                self._conditional = conditional.honoured(self._client(), self.bucket, probe)
        return self._conditional
