"""``finkdl register``: write fink-client's credentials file, never replacing other settings
without being asked."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import credentials_path, read_credentials, write_credentials
from ..errors import ConfigError
from ..surveys import SURVEYS, survey as find_survey
from .common import err_console, handle_errors

SETTINGS = ("username", "password", "group_id", "servers", "maxtimeout")


def changed_settings(old: dict, new: dict) -> list[str]:
    """The settings ``new`` gives another value than the file's ``old`` (its group id under
    either of fink-client's names, group_id or groupid)."""
    return [key for key in SETTINGS if _value(old, key) != _value(new, key)]


def _value(values: dict, key: str) -> object:
    if key == "group_id":
        return values.get("group_id", values.get("groupid"))
    if key == "maxtimeout":
        try:
            return float(values.get(key))
        except (TypeError, ValueError):
            return values.get(key)
    return values.get(key)


def merged(old: dict, new: dict) -> dict:
    """The new settings over the file's: the topics and keys finkdl does not write are kept,
    and fink-client 12's ``groupid`` follows ``group_id``."""
    values = {**old, **{k: v for k, v in new.items() if not (k == "mytopics" and "mytopics" in old)}}
    if "groupid" in old:
        values["groupid"] = new["group_id"]
    return values


@click.command("register")
@click.option("--username", prompt=True, help="Your Fink username.")
@click.option("--password", prompt=True, hide_input=True, help="Asked without echo when omitted.")
@click.option("--group-id", prompt=True, help="Your consumer group id.")
@click.option("--servers", prompt=True, help="Fink's Kafka servers HOST:PORT,...")
@click.option("--survey", type=click.Choice(list(SURVEYS)), default="ztf", show_default=True)
@click.option("--maxtimeout", type=float, default=10.0, show_default=True)
@click.option("--force", is_flag=True, help="Replace the settings of a file that holds others.")
@handle_errors
def register_command(username: str, password: str, group_id: str, servers: str, survey: str,
                     maxtimeout: float, force: bool) -> None:
    """Write the fink-client-compatible credentials file (mode 0600)."""
    path = credentials_path(survey)
    new = {"username": username, "password": password, "group_id": group_id, "servers": servers,
           "maxtimeout": maxtimeout, "mytopics": []}
    try:
        old = read_credentials(path) if path.exists() else {}
        changed = changed_settings(old, new) if old else []
    except ConfigError:  # not a credentials file: replaced whole, when asked
        old, changed = {}, ["all: it is not a credentials file"]
    if changed and not force:
        raise ConfigError(f"{path} already holds other settings ({', '.join(changed)})"
                          + shared_with(survey, path),
                          hint="pass --force to replace them")
    write_credentials(path, merged(old, new))
    if changed:
        err_console.print(f"credentials of {path} replaced ({', '.join(changed)} changed; "
                          f"readable by you only){shared_with(survey, path)}")
    else:
        err_console.print(f"credentials written to {path} (readable by you only)"
                          + shared_with(survey, path))


def shared_with(survey: str, path: Path) -> str:
    """Which surveys read this file besides ``survey`` (ELASTiCC's alerts come from Fink's LSST
    servers: fink-client, which knows ztf and lsst only, reads them with LSST's file)."""
    others = [s.title for s in SURVEYS.values()
              if s.name != survey and s.credentials == find_survey(survey).credentials]
    return f"; {' and '.join(others)} use{'s' if len(others) == 1 else ''} this file too" if others else ""
