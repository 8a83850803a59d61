"""A catalog's next version is written beside it and switched in at the end.

Everything is written under ``.<catalog>.finkdl-work/`` next to the catalog (same file
system: pixels the new alerts do not touch are hard links to the old version's files, not
copies). When the new version is whole, one ``renameat2(RENAME_EXCHANGE)`` swaps it with the
old directory; where the system has no such call, two renames do, and a run finding the
catalog missing and its old version set aside puts the old one back. A crash at any point
leaves the catalog readable: the old version or the new one, never part of either.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import OutputError

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def work_dir(catalog: Path) -> Path:
    return catalog.parent / f".{catalog.name}.finkdl-work"


def set_aside(catalog: Path) -> Path:
    return catalog.parent / f".{catalog.name}.finkdl-old"


@contextmanager
def locked(catalog: Path) -> Iterator[None]:
    """One run at a time per catalog; leftovers of an interrupted run cleared first."""
    catalog.parent.mkdir(parents=True, exist_ok=True)
    with open(catalog.parent / f".{catalog.name}.finkdl-lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another finkdl hats is writing {catalog}",
                              hint="wait for it to end") from None
        recover(catalog)
        yield


def recover(catalog: Path) -> None:
    """The catalog as the last run left it: an old version set aside and not replaced goes
    back; unfinished work is removed."""
    old = set_aside(catalog)
    if old.exists() and not catalog.exists():
        os.rename(old, catalog)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work_dir(catalog), ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as the same file as ``source`` (a hard link), or a copy keeping its times."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ≥ 3.15); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OutputError(f"cannot switch {b} to its new version: {os.strerror(ctypes.get_errno())}")


def switch(new: Path, catalog: Path) -> None:
    """Make ``new`` (a whole catalog) the catalog; the previous version is removed."""
    if not catalog.exists():
        os.rename(new, catalog)
    elif _exchange(new, catalog):
        shutil.rmtree(new)
    else:
        old = set_aside(catalog)
        os.rename(catalog, old)
        os.rename(new, catalog)
        shutil.rmtree(old)
    shutil.rmtree(work_dir(catalog), ignore_errors=True)
