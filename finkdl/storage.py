"""Where output files live: every file operation of a download goes through a ``Storage``.

A download needs little of its output's medium: make a file durable under its final name,
list the files holding offset ranges, delete files, lock the folder, tell the free space.
``LocalDisk`` does it on a POSIX file system (a laptop's disk, an HPC cluster's shared
file system); another medium (object storage) is one more class with these methods.

Durability on a POSIX file system: a file is written under a hidden temporary name, fsynced,
renamed to its final name, and its folder fsynced, so that the rename is on disk too. Only
then may the offsets of the alerts it holds be committed (finkdl.commit).
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Protocol

from .errors import OutputError
from .naming import META_DIR, FileRange, parse_file_name, temporary_name, temporary_range

SYNC_THREADS = 8  # fsyncs in flight at once: together they share the journal's commits
LOCK_FILE = "folder.lock"
_NO_LOCKS = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK)


@dataclass(frozen=True)
class DataFile:
    """A finkdl file of the output and the offset range its name says it holds."""

    path: Path
    range: FileRange


class Storage(Protocol):
    """The operations a download makes on its output, and its readers on it.

    Paths are local ``Path`` objects under ``root`` whatever the medium (an object store maps
    them to keys): the writer names files from their folders, and ``url_of`` says how people
    and other tools name them.
    """

    root: Path
    url: str  # the output as the user names it: a folder, or s3://bucket/prefix

    def check_writable(self) -> None: ...
    def free_space(self) -> int | None: ...
    def files(self) -> list[DataFile]: ...
    def temporaries(self, topic: str, partition: int) -> list[Path]: ...
    def new_file(self, final: Path) -> Path: ...
    def written_back(self, path: Path, start: int) -> int: ...
    def publish(self, moves: list[tuple[Path, Path]]) -> None: ...
    def write_durably(self, path: Path, write: Callable[[BinaryIO], None]) -> int: ...
    def delete(self, paths: Iterable[Path]) -> None: ...
    def move(self, moves: list[tuple[Path, Path]]) -> None: ...
    def metadata(self, path: Path) -> dict[str, str]: ...
    def locked(self, exclusive: bool) -> contextmanager: ...
    def url_of(self, path: Path) -> str: ...
    def open(self, path: Path) -> BinaryIO: ...
    def entries(self) -> list[Path]: ...
    def read(self, path: Path) -> tuple[bytes, str] | None: ...
    def update_conditionally(self, path: Path, change: Callable[[bytes | None], bytes | None]
                             ) -> bytes | None: ...
    def several_writers_safe(self) -> bool: ...
    def arrow_dataset_source(self, paths: list[Path]) -> tuple[object, list[str], str]: ...


class LocalDisk:
    """The output folder on a local or shared POSIX file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def url_of(self, path: Path) -> str:
        return str(path)

    def open(self, path: Path) -> BinaryIO:
        return open(path, "rb")

    def entries(self) -> list[Path]:
        """Every file of the folder, finkdl's or not, less finkdl's own folder."""
        return [Path(root) / name for root, _dirs, names in self._walk() for name in names]

    def read(self, path: Path) -> tuple[bytes, str] | None:
        """A small file's bytes and a version that changes whenever it is replaced."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                return f.read(), f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"
        except FileNotFoundError:
            return None

    def update_conditionally(self, path: Path, change: Callable[[bytes | None], bytes | None]
                             ) -> bytes | None:
        """A small file replaced by ``change(its bytes)`` (None: left as it is); gives what it
        then holds. On a disk the folder's lock keeps writers apart: the caller holds it
        (``locked(exclusive=True)``)."""
        found = self.read(path)
        old = found[0] if found else None
        new = change(old)
        if new is None:
            return old
        self.write_durably(path, lambda f: f.write(new))
        return new

    def several_writers_safe(self) -> bool:
        """flock keeps them apart (where the file system has no locks, see ``locked``)."""
        return True

    def arrow_dataset_source(self, paths: list[Path]) -> tuple[object, list[str], str]:
        """What ``pyarrow.dataset.dataset`` takes to read these files: file system, their
        names in it, and the folder's (the base of its Hive partitions)."""
        import pyarrow.fs
        return pyarrow.fs.LocalFileSystem(), [str(p) for p in paths], str(self.root)

    def check_writable(self) -> None:
        """Create the folder and prove it writable, before any alert is fetched."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".finkdl-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:  # a file of that name: mkdir says it exists
            why = "is a file, not a folder" if self.root.is_file() else f"is not writable: {exc.strerror}"
            raise OutputError(f"output folder {self.root} {why}", hint="choose another --outdir") from exc

    def free_space(self) -> int | None:
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return None

    def files(self) -> list[DataFile]:
        """Every finkdl file of the folder (the quarantine's too), with its topic."""
        found = []
        for root, _dirs, names in self._walk():
            for name in names:
                parsed = parse_file_name(name)
                if parsed:
                    path = Path(root) / name
                    if parsed.topic is None:
                        parsed = dataclasses.replace(parsed, topic=self.metadata(path).get("finkdl.topic", ""))
                    found.append(DataFile(path, parsed))
        return found

    def _walk(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """The folder's tree, less finkdl's own folder (schemas, files set aside)."""
        for root, dirs, names in os.walk(self.root):
            if root == str(self.root):
                dirs[:] = [d for d in dirs if d != META_DIR]
            yield root, dirs, names

    def temporaries(self, topic: str, partition: int) -> list[Path]:
        """Half-written files of a topic's partition, left by a crash (never part of the output)."""
        found = []
        for root, _dirs, names in self._walk():
            for name in names:
                parsed = temporary_range(name)
                if parsed and parsed.partition == partition and parsed.topic in (topic, None):
                    found.append(Path(root) / name)
        return found

    def new_file(self, final: Path) -> Path:
        """Where to write what will be ``final``: a hidden name in its folder, made if needed."""
        with self._failing(final.parent):
            final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(temporary_name(final.name, str(os.getpid())))

    def written_back(self, path: Path, start: int) -> int:
        """Have the kernel start writing a file's pages from ``start`` on to disk, without
        waiting (POSIX_FADV_DONTNEED does, on Linux): by the time the file is published most
        of it is on disk, and its fsync has little left to do. Gives the file's size, where the
        next call starts (asked for the whole file each time, the kernel walks it all again)."""
        if not hasattr(os, "posix_fadvise"):
            return start
        with self._failing(path.parent):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, start, 0, os.POSIX_FADV_DONTNEED)
                return os.fstat(fd).st_size
            finally:
                os.close(fd)

    def publish(self, moves: list[tuple[Path, Path]]) -> None:
        """Written files (temporary, final) made durable under their final names, together."""
        with self._failing(self.root):
            _fsync_all(tmp for tmp, _ in moves)
            for tmp, final in moves:
                os.replace(tmp, final)
            _fsync_all({final.parent for _, final in moves})

    def write_durably(self, path: Path, write: Callable[[BinaryIO], None]) -> int:
        """A whole file written by ``write`` and published; gives its size."""
        with self._failing(path.parent):
            return write_whole(self, path, write)

    def delete(self, paths: Iterable[Path]) -> None:
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _output_error(path.parent, exc) from exc

    def move(self, moves: list[tuple[Path, Path]]) -> None:
        """Files renamed within the folder, durably (both folders fsynced)."""
        with self._failing(self.root):
            for source, target in moves:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            _fsync_all({p.parent for move in moves for p in move})

    def metadata(self, path: Path) -> dict[str, str]:
        """The ``finkdl.*`` facts a data file keeps in its own metadata (topic, topic id,
        offsets, messages): the Parquet footer's key-value metadata, the Avro header's."""
        if path.suffix == ".avro":
            import fastavro
            with open(path, "rb") as f:
                meta = fastavro.block_reader(f).metadata
            return {k: v for k, v in meta.items() if k.startswith("finkdl.")}
        import pyarrow.parquet as pq
        meta = pq.read_metadata(path).metadata or {}
        return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"finkdl.")}

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """The folder's lock, held by every process writing into it (a run's workers, other
        runs sharing the folder): shared while writing or deleting data files, exclusive while
        the folder's schema changes (finkdl.folder). Where the file system has no locks (Lustre
        mounted without ``flock``) they are skipped: a schema change is then safe only while
        nothing else writes."""
        folder = self.root / META_DIR
        with self._failing(folder):
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def _failing(self, folder: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise _output_error(folder, exc) from exc


def write_whole(storage: Storage, path: Path, write: Callable[[BinaryIO], None]) -> int:
    """What every storage's ``write_durably`` does: ``write`` fills a local temporary (a file
    beside ``path``, or in the object store's spool), which is then published under ``path``;
    a failure removes the temporary. Gives the size."""
    tmp = storage.new_file(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            size = f.tell()
        storage.publish([(tmp, path)])
    except BaseException:
        storage.delete([tmp])
        raise
    return size


def _output_error(folder: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {folder}: {exc.strerror or exc}",
                       hint="free some space or choose another --outdir; nothing past "
                            "the files already on disk was committed, rerun to resume")


def _fsync(path: Path) -> None:
    """fsync a file or a folder (a folder: so that a rename in it is on disk too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths: Iterable[Path]) -> None:
    """fsync several at once: one after the other, each would wait for a journal commit of its own."""
    paths = list(paths)
    if len(paths) == 1:
        _fsync(paths[0])
    elif paths:
        with ThreadPoolExecutor(min(SYNC_THREADS, len(paths))) as pool:
            list(pool.map(_fsync, paths))
