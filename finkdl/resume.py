"""Where a partition resumes, and when it must not: pure decisions from the files on disk,
the group's offset and what the broker holds now.

A folder and a group remember offsets of one topic. A topic deleted and created again under
the same name starts its offsets again at 0, and a new topic is told apart from the old one
only by its Kafka topic id (kept in every file's metadata, ``finkdl.topic_id``). Resuming into
such a folder would skip alerts (the folder's ranges said they were there) or write them twice
(under another range): ``stale`` finds those partitions, and the run stops before it writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import StaleError
from .naming import META_DIR, complete_ranges
from .storage import DataFile

SET_ASIDE = f"{META_DIR}/set-aside"  # where --start-over moves the files it replaces


@dataclass(frozen=True)
class Resume:
    """Where a partition starts, and what must go before it does."""

    start: int
    leftovers: list[Path]  # files of a crash at or past ``start``
    commit: bool  # complete ranges past the group's offset were kept: commit ``start`` at once


def resume(files: list[DataFile], low: int, committed_offset: int | None,
           from_beginning: bool = False) -> Resume:
    """The resume point of one partition from its files on disk and the group's offset.

    Complete ranges that continue from the group's offset (written, not yet committed) are
    kept and skipped over; with ``from_beginning`` the topic's first offset is the base and
    every range the folder holds is skipped, so nothing is downloaded twice.
    """
    base = low if (from_beginning or committed_offset is None) else max(committed_offset, low)
    start = base
    complete = complete_ranges(files)
    advanced = True
    while advanced:
        advanced = False
        for first, last in complete:
            if first <= start <= last:
                start, advanced = last + 1, True
    leftovers = [f.path for f in files if f.range.last >= start]
    ahead = start > (committed_offset if committed_offset is not None else -1)
    return Resume(start, leftovers, commit=start > base and ahead)


@dataclass(frozen=True)
class Stale:
    """A partition this folder or group must not be resumed into, and why (for the user)."""

    partition: int
    why: str
    files: bool = True  # the folder's files are the cause (else the group's offset alone)


def stale(partition: int, files: list[DataFile], high: int, committed_offset: int | None,
          topic_id: str | None, file_topic_ids: set[str], from_beginning: bool = False) -> Stale | None:
    """Whether the folder's files or the group's offset of a partition belong elsewhere than
    the topic the broker holds now: files of another topic id, offsets past its end.

    ``file_topic_ids`` are the topic ids the partition's files carry (files of finkdl before
    topic ids carry none: only their offsets are checked). With ``from_beginning`` the group's
    offset is not used, so it is not checked.
    """
    others = sorted(file_topic_ids - {topic_id}) if topic_id else []
    if others:
        return Stale(partition, f"its files in this folder come from an earlier topic of the same "
                                f"name (topic id {', '.join(others)}; the topic now is {topic_id})")
    last = max((f.range.last for f in files), default=None)
    if last is not None and last >= high:
        return Stale(partition, f"its files in this folder hold offsets up to {last:,}, but the "
                                f"topic now ends {_end(high)}")
    if committed_offset is not None and committed_offset > high and not from_beginning:
        return Stale(partition, f"the group's committed offset {committed_offset:,} lies past the "
                                f"topic's end {_end(high)}", files=False)
    return None


def _end(high: int) -> str:
    return "before its first offset (it is empty)" if high == 0 else f"at offset {high - 1:,}"


def stale_error(topic: str, outdir: object, found: list[Stale], flag: str = "--start-over") -> StaleError:
    """One message for every partition that must not be resumed, and what the user can do."""
    parts = ", ".join(str(s.partition) for s in found)
    first = found[0]
    more = f" (and {len(found) - 1} more partitions)" if len(found) > 1 else ""
    if any(s.files for s in found):
        hint = (f"download into another --outdir with another --group-id, or pass {flag} to set "
                f"this folder's files of partitions {parts} aside (in {SET_ASIDE}/) and download "
                "them again")
    else:
        hint = (f"download with another --group-id, or pass {flag} to read partitions {parts} "
                "again from their first offset")
    return StaleError(
        f"{topic} cannot be resumed into {outdir}: partition {first.partition}: {first.why}{more}; "
        "the topic was deleted and created again under the same name, or the folder or group "
        "were used for another topic of that name. Nothing was written", hint=hint)


def aside_path(root: Path, path: Path, folder: Path) -> Path:
    """Where --start-over puts a replaced file: in ``folder`` (under ``SET_ASIDE``), in its same
    sub-folder, renamed so that neither finkdl nor a reader's ``**/part-*.parquet`` glob takes
    it for a file of the download (readers skip ``_`` folders, but globs do not)."""
    return folder / path.parent.relative_to(root) / f"set-aside-{path.name}"
