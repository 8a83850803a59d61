"""The folder's schema: every data file of an output folder has it, so the folder reads as one table.

``pandas.read_parquet`` and ``pyarrow.dataset`` take a dataset's schema from one file (the first
they find): files of different schema versions side by side read with columns missing, or
fail. So finkdl keeps one merged schema per output folder (finkdl.merge) and holds every
file to it:

- before a download, the schema of its alerts is merged into the folder's, or refused on a
  conflict before anything is written; a changed schema is written first, atomically, to
  ``_finkdl/folder-schema.json`` (Arrow IPC bytes for programs, the fields as text for
  people, and the Hive keys), so a later download knows what it must fit and a reader never
  guesses;
- each table is cast to the folder's schema as it is written (finkdl.conform);
- when the schema widens, every Parquet data file not yet in it is rewritten to it,
  atomically and under its same name, keeping its ``finkdl.*`` metadata: offset-range names,
  resuming and ``finkdl verify`` are unaffected. The schema file, written first, is the
  truth: files a crash left in an older schema are rewritten by the next run;
- the Hive keys are not in the files (``drop_label_columns``), so not in the folder's schema
  either: the folder records them and refuses a download partitioned otherwise, whose
  folders would not read as one table;
- ``_quarantine`` keeps its own fixed schema; Avro files are left as they are: each carries
  its writer schema, and Avro readers resolve versions themselves.

Every process writing into the folder (a run's workers, other runs sharing it) holds the
folder's lock (``Storage.locked``): shared while writing or deleting data files, exclusive
while widening. So no file is written in a schema being replaced, and no file deleted (a
crash's leftover) comes back through a rewrite. Object storage has no lock: there the schema
file is changed only by a conditional write (``Storage.update_conditionally``), merged again
from what another writer put there when it lost the race; a file a writer published in the
older schema meanwhile is rewritten by the next run's check.
"""
from __future__ import annotations

import base64
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConfigError, OutputError
from .merge import merge_or_refuse
from .naming import META_DIR, QUARANTINE_DIR
from .storage import DataFile, Storage
from .writer import rewrite

SCHEMA_FILE = "folder-schema.json"


@dataclass(frozen=True)
class FolderSchema:
    """What every data file of a folder holds, and the Hive keys of its folders (() if none)."""

    schema: pa.Schema
    keys: tuple[str, ...]


def to_json(folder: FolderSchema) -> str:
    return json.dumps({
        "finkdl_folder_schema": 1,
        "partition_keys": list(folder.keys),
        "fields": [f"{f.name}: {f.type}" for f in folder.schema],  # for people
        "arrow_ipc": base64.b64encode(folder.schema.serialize().to_pybytes()).decode(),
    }, indent=1)


def from_json(text: str, origin: str) -> FolderSchema:
    try:
        data = json.loads(text)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["arrow_ipc"])))
        return FolderSchema(schema, tuple(data["partition_keys"]))
    except (ValueError, KeyError, TypeError) as exc:  # ArrowInvalid is a ValueError
        raise OutputError(f"{origin} is damaged ({type(exc).__name__}: {exc})",
                          hint="delete it: the next download rebuilds it from the data files") from exc


def read_folder_schema(storage: Storage) -> FolderSchema | None:
    """The folder's schema: from its file, else from its data files (a folder written before
    finkdl kept that file), else None (a new folder)."""
    outdir = storage.root
    path = outdir / META_DIR / SCHEMA_FILE
    found = storage.read(path)
    if found is not None:
        return from_json(found[0].decode(), storage.url_of(path))
    return schema_of_files(storage)


def schema_of_files(storage: Storage) -> FolderSchema | None:
    """The schema the data files of a folder hold together (None: it has none)."""
    outdir = storage.root
    files = data_files(storage)
    if not files:
        return None
    schema = pa.schema([])
    for f in files:
        if f.range.ext == "parquet":
            schema = merge_or_refuse(schema, file_schema(storage, f.path),
                                     f"other files of {storage.url}", storage.url_of(f.path))
    nested = [f.path.parent.relative_to(outdir).parts for f in files if f.path.parent != outdir]
    keys = tuple(part.split("=", 1)[0] for part in nested[0]) if nested else ()
    return FolderSchema(schema, keys)


def data_files(storage: Storage) -> list[DataFile]:
    """finkdl's data files of a folder, without the quarantine."""
    return [f for f in storage.files() if QUARANTINE_DIR not in f.path.relative_to(storage.root).parts]


def file_schema(storage: Storage, path: Path) -> pa.Schema:
    with storage.open(path) as f:
        return pq.read_schema(f).remove_metadata()


def stale_files(storage: Storage, schema: pa.Schema) -> list[Path]:
    """Parquet data files not in ``schema``."""
    return [f.path for f in data_files(storage)
            if f.range.ext == "parquet" and not file_schema(storage, f.path).equals(schema)]


def _partitioned_by(keys: tuple[str, ...]) -> str:
    return "/".join(keys) or "nothing (--partition-by none)"


class Folder:
    """One process's handle on an output folder's schema and lock."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.path = storage.root / META_DIR / SCHEMA_FILE
        self._seen: str | None = None
        self._schema: pa.Schema | None = None

    def fit(self, written: pa.Schema, keys: tuple[str, ...], what: str,
            check_files: bool = False) -> pa.Schema:
        """Merge ``written`` (files' schema of ``what``) into the folder's, or refuse it.

        Nothing is written on a refusal. A widened schema is written first, then the files are
        brought to it; ``check_files`` brings to it any file still in an older schema (a crash
        mid-way), once, before a run.
        """
        url = self.storage.url
        changes: list[bool] = []

        def merge(old: bytes | None) -> bytes | None:
            """The folder's schema file with ``written`` merged in; None when it holds it."""
            stored = (from_json(old.decode(), self.storage.url_of(self.path)) if old is not None
                      else schema_of_files(self.storage))
            if stored is not None and stored.keys != tuple(keys):
                raise ConfigError(f"{url} is partitioned by {_partitioned_by(stored.keys)}, "
                                  f"this download by {_partitioned_by(keys)}: its folders would "
                                  "not read as one table",
                                  hint="use the same --partition-by as before, or another --outdir")
            merged = written if stored is None else merge_or_refuse(
                stored.schema, written, f"the folder {url}", what)
            changes.append(old is None or not merged.equals(stored.schema))
            return to_json(FolderSchema(merged, tuple(keys))).encode() if changes[-1] else None

        with self.storage.locked(exclusive=True):
            merged = from_json(self.storage.update_conditionally(self.path, merge).decode(),
                               self.storage.url_of(self.path)).schema
            changed = changes[-1]
            if changed or check_files:
                for path in stale_files(self.storage, merged):
                    rewrite(self.storage, path, merged)
            return merged

    @contextmanager
    def writing(self) -> Iterator[pa.Schema]:
        """Hold the folder (shared) while writing or deleting data files; gives its schema."""
        with self.storage.locked(exclusive=False):
            yield self.current()

    def current(self) -> pa.Schema:
        """The folder's schema, read again only when its file changed."""
        found = self.storage.read(self.path)
        if found is None:
            raise OutputError(f"{self.storage.url_of(self.path)} disappeared during the download",
                              hint="rerun: it is rebuilt from the data files")
        text, version = found
        if version != self._seen or self._schema is None:
            self._schema = from_json(text.decode(), self.storage.url_of(self.path)).schema
            self._seen = version
        return self._schema
