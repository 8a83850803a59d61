"""``finkdl register``: write fink-client's credentials file."""
from __future__ import annotations

import click

from ..config import credentials_path, write_credentials
from ..surveys import SURVEYS
from .common import err_console, handle_errors


@click.command("register")
@click.option("--username", prompt=True, help="Your Fink username.")
@click.option("--password", prompt=True, hide_input=True, help="Asked without echo when omitted.")
@click.option("--group-id", prompt=True, help="Your consumer group id.")
@click.option("--servers", prompt=True, help="Fink's Kafka servers HOST:PORT,...")
@click.option("--survey", type=click.Choice(list(SURVEYS)), default="ztf", show_default=True)
@click.option("--maxtimeout", type=float, default=10.0, show_default=True)
@handle_errors
def register_command(username: str, password: str, group_id: str, servers: str, survey: str,
                     maxtimeout: float) -> None:
    """Write the fink-client-compatible credentials file (mode 0600)."""
    path = credentials_path(survey)
    write_credentials(path, {"username": username, "password": password, "group_id": group_id,
                             "servers": servers, "maxtimeout": maxtimeout, "mytopics": []})
    err_console.print(f"credentials written to {path} (readable by you only)")

