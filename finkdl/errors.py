"""One exception hierarchy, with messages written for the person at the terminal.

Every error carries the exit code the command line returns for it, so scripts can tell
a wrong server from a missing topic without parsing text.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every finkdl command (documented in README)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    BROKER = 3
    TOPIC = 4
    AUTH = 5
    OUTPUT = 6
    PARTIAL = 7
    WORKER = 8
    NOT_FOUND = 9
    STALE = 10
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141  # stdout's reader went away (``| head``): what a shell reports for it


class FinkdlError(Exception):
    """Root of finkdl's errors: a one-line message and an optional hint on what to do."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(FinkdlError):
    """Bad flags, credentials file or option values."""

    exit_code = ExitCode.USAGE


def not_a_download(where: str) -> ConfigError:
    """The error of a folder (or prefix) holding nothing finkdl downloaded: an empty one, a
    mistyped path, another tool's output; every command reading a download says it alike."""
    return ConfigError(f"{where} holds no alerts downloaded by finkdl",
                       hint="give the --outdir of a `finkdl download`")


class BrokerError(FinkdlError):
    """The Kafka servers cannot be reached or answered with an error."""

    exit_code = ExitCode.BROKER


class AuthError(FinkdlError):
    """The servers refused the credentials."""

    exit_code = ExitCode.AUTH


class TopicError(FinkdlError):
    """The topic or its schema is missing, empty or unusable."""

    exit_code = ExitCode.TOPIC


class SchemaError(TopicError):
    """The Avro schema cannot be found, parsed, or does not fit the request."""


class OutputError(FinkdlError):
    """The output folder cannot be written (permissions, full disk) or is inconsistent."""

    exit_code = ExitCode.OUTPUT


class NotFoundError(FinkdlError):
    """An output folder does not hold what was asked of it: an alert, an object, cutouts."""

    exit_code = ExitCode.NOT_FOUND


class StaleError(FinkdlError):
    """The folder's files or the group's offsets belong to an earlier topic of the same name, or
    lie past the topic's end: resuming would skip or duplicate alerts, so nothing is written."""

    exit_code = ExitCode.STALE


class WorkerError(FinkdlError):
    """A worker process failed or died."""

    exit_code = ExitCode.WORKER


class Interrupted(FinkdlError):
    """The user stopped the run; what is on disk is committed and a rerun resumes."""

    exit_code = ExitCode.INTERRUPTED
