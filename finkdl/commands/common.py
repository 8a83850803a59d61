"""What every command shares: the error console, the one place errors become exit codes,
the connection options and the parsing of comma-separated lists."""
from __future__ import annotations

import functools
import gc
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape

from ..errors import ExitCode, FinkdlError
from ..output import is_object_storage, location
from ..surveys import SURVEYS

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def reader_gone() -> NoReturn:
    """stdout's reader went away (``finkdl show DIR | head``): end quietly with 141, as a shell
    reports a closed pipe; 1 would read as ``verify`` finding a problem."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
    sys.exit(ExitCode.OUTPUT_CLOSED)


def out_console() -> Console:
    """A console on stdout, for a command's result (rich would exit 1 on a closed pipe)."""
    console = Console(highlight=False)
    console.on_broken_pipe = reader_gone
    return console
CONTEXT = {"help_option_names": ["-h", "--help"]}  # -h too, as fink-client's commands take it


def label_help() -> str:
    by_survey = "; ".join(f"{s.title}: {', '.join(s.label_columns)}" for s in SURVEYS.values())
    return (f"none, time (year/month/day of the observation), or any column, dotted for nested "
            f"ones. Label columns: {by_survey}.")


def handle_errors(func):
    """The one place where errors become a one-line message and an exit code.

    Whatever the outcome, what the command left is collected before the interpreter's
    teardown: Arrow's readers keep threads of their own until their objects are freed, and one
    still running when the interpreter tears Arrow down aborts a process that had done all its
    work ("terminate called without an active exception", exit -6; apache/arrow#34314)."""
    @functools.wraps(func)
    def wrapper(*args, traceback: bool = False, **kwargs):
        try:
            done = func(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe is told here, not at the interpreter's exit
            return done
        except BrokenPipeError:
            reader_gone()
        except FinkdlError as exc:
            if traceback:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            if exc.hint:  # escaped: "pip install 'finkdl[show]'" is not markup
                err_console.print(f"  [dim]hint:[/] {escape(exc.hint)}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(ExitCode.INTERRUPTED)
        finally:
            gc.collect()
    return click.option("--traceback", is_flag=True, help="Show a full traceback on errors.")(wrapper)


def connection_options(func):
    for option in reversed([
        click.option("--servers", envvar="FINKDL_SERVERS", help="Kafka servers HOST:PORT,... "
                     "[default: from FINKDL_SERVERS or ~/.finkclient/<survey>_credentials.yml]"),
        click.option("--group-id", envvar="FINKDL_GROUP_ID", help="Consumer group id (shared by "
                     "every finkdl of one download, on any host)."),
        click.option("--survey", type=click.Choice(list(SURVEYS)), default="ztf", show_default=True),
        click.option("--ca-file", envvar="FINKDL_CA_FILE", type=click.Path(exists=True, dir_okay=False),
                     help="CA certificate (PEM) of TLS servers: turns on SASL_SSL."),
    ]):
        func = option(func)
    return func


class Output(click.ParamType):
    """An output: a folder, or an S3 prefix ``s3://bucket/prefix``; ``must_exist`` for commands
    that read one (an S3 prefix is checked by reading it)."""

    name = "OUTDIR"

    def __init__(self, must_exist: bool = False) -> None:
        self.must_exist = must_exist

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if is_object_storage(text):
            return text
        if self.must_exist and not Path(text).is_dir():
            self.fail(f"folder {text!r} does not exist", param, ctx)
        return location(text)

def names(value: str | None) -> tuple[str, ...]:
    """``a, b,c.d`` → ('a', 'b', 'c.d')."""
    return tuple(name.strip() for name in (value or "").split(",") if name.strip())


def values(value: tuple[str, ...]) -> tuple[str, ...]:
    """``--id 1,2 --id 3`` → ('1', '2', '3')."""
    return tuple(v for item in value for v in names(item))
