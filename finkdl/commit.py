"""A flush made permanent, always in one order, and where a partition resumes.

Every flush of a partition ends in this order; ``make_durable`` runs step 2 (off the
consumer loop, on the worker's lander: workers.landing) and ``commit_flush`` steps 3 and 4 (on
the loop, the one thread that talks to the consumer), in the order the flushes were cut:

1. the flush's files are written under temporary names (``finkdl.writer.Spool``);
2. they are made durable under their final names: each fsynced, renamed, its folder fsynced
   (``Storage.publish``);
3. ``last + 1`` is committed for the partition, synchronously, and the broker's answer checked;
4. when the broker refuses the commit, the files stay only if they are the partition's one copy
   of their offsets: the group's offset is past their first one (the commit landed after all,
   or the partition's next owner kept them as complete) and no other file holds any of those
   offsets. Otherwise they are deleted. A refusal because the group is handing partitions out
   again means the range is read again by the partition's next owner; any other stops the worker.
   A commit the broker left unanswered (``kafka.unanswered``) may still land: its files stay,
   and the worker stops. Files made durable for a range that is being read again (an earlier
   flush of the partition was refused) are never committed: ``abandon`` keeps them on the same
   rule as a refusal.

Nothing is committed before its files are durable, so a crash anywhere leaves at worst complete
files whose offsets are not committed. Whoever takes the partition next (``finkdl.resume``) keeps a
range only if all its files are present and it continues the committed offsets, and deletes
anything else at or past where it starts.
"""
from __future__ import annotations

from typing import Callable

from confluent_kafka import Consumer

from .buffer import Flush
from .errors import BrokerError
from .folder import Folder
from .kafka import commit_offset, committed, rebalancing, unanswered
from .writer import Spool, WrittenFile


def make_durable(flush: Flush, spool: Spool, folder: Folder) -> list[WrittenFile]:
    """Step 2 above: the flush's files, in the folder's schema, under their final names."""
    with folder.writing() as schema:
        return spool.finish(flush, schema)


def commit_flush(flush: Flush, files: list[WrittenFile], folder: Folder, consumer: Consumer,
                 waiting: Callable[[str], None]) -> list[WrittenFile] | None:
    """Steps 3-4 above for one durable flush: its files, or None when the group took the
    partition away meanwhile (the files went unless they are the only copy; the range is read
    again)."""
    error = commit_offset(consumer, flush.topic, flush.partition, flush.last + 1, waiting=waiting)
    if error is None:
        return files
    if not unanswered(error):
        abandon(flush, files, folder, consumer)
    if rebalancing(error):
        return None
    raise BrokerError(f"commit of partition {flush.partition} at offset {flush.last + 1} failed: "
                      f"{error.str()}", hint="rerun to resume: what is on disk is kept once")


def abandon(flush: Flush, files: list[WrittenFile], folder: Folder, consumer: Consumer) -> None:
    """Uncommitted files of a range read again: deleted, unless they are its only copy."""
    if not _only_copy(flush, files, folder, consumer):
        with folder.writing():
            folder.storage.delete(f.path for f in files)


def _only_copy(flush: Flush, files: list[WrittenFile], folder: Folder, consumer: Consumer) -> bool:
    """Whether uncommitted files are the one copy of their offsets (step 4). The group's offset
    is read first: an owner that went past it published its own files before committing."""
    try:
        done = committed(consumer, flush.topic, [flush.partition], timeout=10.0).get(flush.partition)
    except BrokerError:
        return True  # unknown: keeping them risks a duplicate `verify` shows, deleting them a loss
    if done is None or done <= flush.first:
        return False
    ours = {f.path for f in files}
    return not any(f.range.topic == flush.topic and f.range.partition == flush.partition
                   and f.path not in ours and f.range.first <= flush.last and f.range.last >= flush.first
                   for f in folder.storage.files())
