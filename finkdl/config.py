"""The frozen settings of a run, and where servers and credentials come from.

Order of precedence: command-line flags, then ``FINKDL_*`` environment variables, then
fink-client's credentials file, so a user registered with Fink needs nothing new.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import ConfigError
from .surveys import survey

FORMATS = ("parquet", "avro")


@dataclass(frozen=True)
class Connection:
    """How to reach the Kafka servers; the password never shows in a repr."""

    servers: str
    group_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_protocol: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    ca_location: str | None = None
    source: str = "flags"
    log_level: int = 0  # librdkafka's own log lines: none; 7 (--verbose) passes them all to stderr

    def kafka_config(self) -> dict[str, str | int]:
        """librdkafka settings common to every client of this run.

        As with fink-client, SASL is used when a password is given (a username alone,
        as fink-client writes for open servers, means none). librdkafka's own log lines
        (``%6|…|BGQUEUE|…``) are off unless asked for: errors reach the user through
        error_cb and finkdl's own messages.
        """
        conf: dict[str, str | int] = {"bootstrap.servers": self.servers, "log_level": self.log_level}
        sasl = bool(self.username and self.password)
        protocol = self.security_protocol
        if protocol is None and sasl:
            protocol = "SASL_SSL" if self.ca_location else "SASL_PLAINTEXT"
        if protocol:
            conf["security.protocol"] = protocol
        if sasl:
            conf.update({"sasl.mechanism": self.sasl_mechanism,
                         "sasl.username": self.username,
                         "sasl.password": self.password or ""})
        if self.ca_location:
            conf["ssl.ca.location"] = self.ca_location
        return conf


@dataclass(frozen=True)
class FlushPolicy:
    """When a worker closes its files and commits (bigger files vs. less rework after a crash)."""

    max_rows: int = 100_000
    max_bytes: int = 128 * 1024 * 1024
    max_age_s: float = 60.0
    idle_s: float = 1.0


@dataclass(frozen=True)
class DownloadConfig:
    """Everything a download needs; built once by the CLI, shared read-only by every worker."""

    topic: str
    outdir: str  # a folder's absolute path, or s3://bucket/prefix (finkdl.storage.location)
    connection: Connection
    partition_by: str = "none"
    survey: str = "ztf"
    workers: int | None = None
    from_beginning: bool = False
    start_over: bool = False  # partitions stale in this folder or group begin again (finkdl.resume)
    limit: int | None = None
    timeout: float = 10.0
    fmt: str = "parquet"
    dump_schemas: bool = False
    schema_file: Path | None = None
    flush: FlushPolicy = FlushPolicy()
    columns: tuple[str, ...] = ()  # --columns: keep only these (dotted paths); () keeps all
    drop_columns: tuple[str, ...] = ()  # --drop-columns: leave these out (dotted paths)
    drop_cutouts: bool = False


def credentials_path(survey_name: str, home: Path | None = None) -> Path:
    """fink-client's credentials file for a survey."""
    return (home or Path.home()) / ".finkclient" / f"{survey(survey_name).credentials}_credentials.yml"


def read_credentials(path: Path) -> dict:
    """Read a fink-client credentials file; malformed content is a ConfigError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}") from exc
    import yaml  # here: most runs read no credentials file, and yaml takes 25 ms to import

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"credentials file {path} is not valid YAML",
                          hint="rewrite it with `finkdl register`") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"credentials file {path} does not hold key: value pairs",
                          hint="rewrite it with `finkdl register`")
    return data


def write_credentials(path: Path, values: dict) -> None:
    """Write a fink-client-compatible credentials file, readable by its owner only."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        yaml.safe_dump(values, f, sort_keys=False)


def readable_by_others(path: Path) -> bool:
    """True when a secrets file can be read by group or others (finkdl warns about it)."""
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def resolve_connection(servers: str | None, group_id: str | None, survey: str,
                       env: Mapping[str, str] | None = None, home: Path | None = None,
                       ca_file: str | None = None) -> tuple[Connection, float | None]:
    """Servers, group id and credentials from flags, environment or fink-client's file.

    Returns the connection and the credentials file's ``maxtimeout`` (None when absent).
    """
    env = os.environ if env is None else env
    servers = servers or env.get("FINKDL_SERVERS")
    group_id = group_id or env.get("FINKDL_GROUP_ID")
    username = env.get("FINKDL_USERNAME")
    password = env.get("FINKDL_PASSWORD")
    ca_file = ca_file or env.get("FINKDL_CA_FILE")
    source = "flags/environment"
    max_timeout = None
    path = credentials_path(survey, home)
    if (not servers or not group_id) and path.exists():
        creds = read_credentials(path)
        servers = servers or _as_servers(creds.get("servers"))
        group_id = group_id or creds.get("group_id") or creds.get("groupid")
        username = username or creds.get("username")
        password = password or creds.get("password")
        max_timeout = creds.get("maxtimeout")
        source = str(path)
    if not servers:
        raise ConfigError("no Kafka servers given",
                          hint=f"pass --servers HOST:PORT, set FINKDL_SERVERS, or run "
                               f"`finkdl register` to write {path}")
    if not group_id:
        raise ConfigError("no consumer group id given",
                          hint=f"pass --group-id ID, set FINKDL_GROUP_ID, or add group_id to {path}")
    return (Connection(servers=servers, group_id=str(group_id), username=username or None,
                       password=password or None, ca_location=ca_file or None, source=source),
            float(max_timeout) if max_timeout is not None else None)


def _as_servers(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class WorkerPlan:
    """What the front end decided before starting workers (shared by all of them)."""

    config: DownloadConfig
    schema_text: str
    stop_at: dict[int, int] | None = None  # --limit: absolute end offset per partition
    key_schemas: bool = False  # each message's key holds its schema (livestream style)
    topic_id: str | None = None  # the topic's Kafka id, kept in every file (finkdl.resume)
    restart: frozenset[int] = frozenset()  # partitions begun again (--start-over): group offset unused
