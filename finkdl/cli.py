"""finkdl's command line: the ``finkdl`` group and its commands, one module per family.

Each command parses its flags, builds one config, calls the core and lets
:func:`finkdl.commands.common.handle_errors` map errors to exit codes; the families are in
``finkdl/commands/`` (download, fink-client's front ends, inspection, register, demo) and
``finkdl/look/commands.py`` (show, cutouts, lightcurve).
"""
from __future__ import annotations

import click

from . import __version__
from .commands.common import CONTEXT, connection_options, handle_errors
from .commands.demo import demo_command
from .commands.download import download_command, run_download
from .commands.fink_client import fink_datatransfer, transfer_command
from .commands.hats import hats_command
from .commands.inspect import offsets_command, schema_command, verify_command
from .commands.register import register_command
from .look.commands import cutouts_command, lightcurve_command, show_command

__all__ = ["main", "fink_datatransfer", "handle_errors", "connection_options", "run_download"]


@click.group(context_settings=CONTEXT)
@click.version_option(__version__)
def main() -> None:
    """Download Fink Data Transfer topics to partitioned Parquet, exactly once."""


for command in (download_command, transfer_command, verify_command, offsets_command,
                schema_command, register_command, demo_command, show_command, cutouts_command,
                lightcurve_command, hats_command):
    main.add_command(command)
