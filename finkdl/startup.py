"""The console scripts: on a download, the worker server starts before anything else
(finkdl.processes), so that it imports the workers' code while this process imports the CLI."""
from __future__ import annotations

import os
import sys

from .processes import worker_context


def _single_threaded_numpy() -> None:
    """finkdl does no linear algebra, but NumPy's OpenBLAS starts a thread per core when
    imported, which spins before it sleeps: in the front end and in the worker server, at
    start-up, while the cores are busy importing. Set before NumPy's first import; a user's
    own setting wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _writes_to_object_storage(argv: list[str]) -> bool:
    """An s3:// output folder on the command line (``--outdir s3://…``, ``-outdir=s3://…``):
    the worker server then loads boto3 too. A guess before parsing, for speed only."""
    return any(arg.startswith("s3://") or "=s3://" in arg for arg in argv[1:])


def main() -> None:
    """``finkdl``."""
    _single_threaded_numpy()
    if sys.argv[1:2] in (["download"], ["transfer"]):
        worker_context(_writes_to_object_storage(sys.argv))
    from .cli import main as cli
    cli()


def fink_datatransfer() -> None:
    """``fink_datatransfer``: fink-client's command line, which always downloads."""
    _single_threaded_numpy()
    worker_context(_writes_to_object_storage(sys.argv))
    from .cli import fink_datatransfer as cli
    cli()
