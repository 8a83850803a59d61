"""fink-client's command lines on finkdl: ``fink_datatransfer`` (before fink-client 12) and
``finkdl transfer`` (fink-client 12's ``finkctl transfer``), same flags, same credentials file."""
from __future__ import annotations

import re

import click

from ..config import FORMATS, DownloadConfig, resolve_connection
from ..errors import FinkdlError
from ..surveys import SURVEYS
from .common import CONTEXT, Output, handle_errors, label_help
from .download import run_download

_REGISTER = "your credentials file: finkdl register, or fink_client_register"
# finkdl download's flags as fink-client's commands spell them. The core's messages and hints
# name finkdl download's flags; these front ends say them their own way.
FINK_CLIENT_FLAGS = {
    "--survey": "-survey",
    "--partition-by": "-partitionby",
    "--from-beginning": "--restart_from_beginning",
    "--start-over": "--start_over",
    "--outdir": "-outdir",
    "--limit": "-limit",
    "--format": "-outformat",
    "--timeout": "-maxtimeout",
    "--workers": "-nconsumers",
    "--dump-schemas": "--dump_schemas",
    "--schema": "finkdl download --schema",
    "--columns": "finkdl download --columns",
    "--drop-columns": "finkdl download --drop-columns",
    "--drop-cutouts": "finkdl download --drop-cutouts",
    "--ca-file": "finkdl download --ca-file",
}
# Flags with no equivalent there, as what to do instead (their value, ID or HOST:PORT, dropped).
FINK_CLIENT_INSTEAD = {
    "--group-id": f"group id (group_id in {_REGISTER})",
    "--servers": f"servers (in {_REGISTER})",
}
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*[a-z])(?![\w-])( [A-Z][A-Z_:,.]*[A-Z])?")


def fink_client_spelling(text: str | None) -> str | None:
    """``text`` with finkdl download's flags as fink-client's commands spell them."""
    if text is None:
        return None

    def respell(match: re.Match) -> str:
        flag, value = match.group(1), match.group(2) or ""
        if flag in FINK_CLIENT_INSTEAD:
            return FINK_CLIENT_INSTEAD[flag]
        return FINK_CLIENT_FLAGS.get(flag, flag) + value
    return _FLAG.sub(respell, text)


def fink_client_command(name: str, about: str, *, survey_required: bool, outdir_default: str | None,
                        partition_default: str) -> click.Command:
    """A command taking fink-client's own flags (single dash), with finkdl's guarantees: users
    of either fink-client version switch with no new habit. Servers, group and timeout come
    from fink-client's credentials file, as they do for fink-client."""
    def transfer(topic: str, outdir: str, partitionby: str, limit: int | None, batchsize: int,
                 nconsumers: int, maxtimeout: float | None, number_partitions: int, survey: str,
                 outformat: str, restart_from_beginning: bool, start_over: bool, dump_schemas: bool,
                 verbose: bool) -> None:
        try:
            conn, file_timeout = resolve_connection(None, None, survey)
            cfg = DownloadConfig(
                topic=topic, outdir=outdir, connection=conn,
                partition_by="none" if partitionby in ("None", "") else partitionby,
                survey=survey, workers=nconsumers if nconsumers > 0 else None,
                from_beginning=restart_from_beginning, start_over=start_over, limit=limit,
                timeout=maxtimeout if maxtimeout is not None else (file_timeout or 10.0),
                fmt=outformat, dump_schemas=dump_schemas)
            run_download(cfg, "auto" if verbose else "quiet", spell=fink_client_spelling)
        except FinkdlError as exc:
            exc.message, exc.hint = fink_client_spelling(exc.message), fink_client_spelling(exc.hint)
            exc.args = (exc.message,)
            raise

    options = [
        click.option("-survey", type=click.Choice(list(SURVEYS)), help="Survey name.",
                     **({"required": True} if survey_required else {"default": "ztf", "show_default": True})),
        click.option("-topic", required=True, help="Topic name for the stream that contains the data."),
        click.option("-outdir", type=Output(),
                     help="Folder to store incoming alerts (created if needed), or s3://BUCKET/PREFIX.",
                     **({"required": True} if outdir_default is None
                        else {"default": outdir_default, "show_default": True})),
        click.option("-outformat", type=click.Choice(FORMATS), default="parquet", show_default=True),
        click.option("-partitionby", default=partition_default, show_default=True, help=label_help()),
        click.option("-limit", type=click.IntRange(0), help="Download only this many alerts."),
        click.option("-batchsize", type=int, default=100,
                     help="Accepted for compatibility; finkdl sizes its files itself."),
        click.option("-nconsumers", type=int, default=-1,
                     help="Consumer processes (-1: one per partition)."),
        click.option("-maxtimeout", type=float,
                     help="Seconds to wait for new alerts [default: from the credentials file]."),
        click.option("-number_partitions", type=int, default=10,
                     help="Accepted for compatibility; finkdl reads the partitions from the topic."),
        click.option("--restart_from_beginning", is_flag=True,
                     help="Start again from the first alert (what the folder holds is kept once)."),
        click.option("--start_over", is_flag=True,
                     help="Partitions whose files here or group offsets belong to an earlier topic "
                          "of the same name (exit code 10) begin again; their files are set aside."),
        click.option("--dump_schemas", is_flag=True, help="Write the schemas beside the data."),
        click.option("--verbose", is_flag=True, help="Live dashboard (plain lines without a terminal)."),
    ]
    command = handle_errors(transfer)
    for option in reversed(options):
        command = option(command)
    return click.command(name, context_settings=CONTEXT, help=about)(command)


fink_datatransfer = fink_client_command(
    "fink_datatransfer", "fink-client's fink_datatransfer (before version 12), with finkdl's "
    "speed and exactly-once guarantees.", survey_required=False, outdir_default=None,
    partition_default="time")
transfer_command = fink_client_command(
    "transfer", "fink-client 12's `finkctl transfer`, same flags, with finkdl's speed and "
    "exactly-once guarantees.", survey_required=True, outdir_default=".", partition_default="none")
