"""fink-client's transfer tool, installed from PyPI into a virtualenv of its own.

Its own venv keeps its dependencies (astropy, polars, matplotlib...) from ever meeting
finkdl's, and the version measured is whatever PyPI serves today. It reads the servers and
the group id only from its credentials file, ``$HOME/.finkclient/<survey>_credentials.yml``
(what ``finkctl auth register`` writes), so each run gets a temporary HOME holding one.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from finkdl.local.jars import cache_dir

INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class FinkClient:
    """How to run ``finkctl transfer``, or why it cannot be run."""

    version: str | None
    finkctl: Path | None
    problem: str | None = None

    def command(self, topic: str, outdir: Path, partition_by: str, consumers: int,
                timeout: float, survey: str = "ztf") -> list[str]:
        """The command line of a transfer with the same settings finkdl gets.

        ``-batchsize`` stays at fink-client's default, what its users get.
        """
        return [str(self.finkctl), "transfer", "-survey", survey, "-topic", topic,
                "-outdir", str(outdir), "-partitionby", partition_by,
                "-nconsumers", str(consumers), "-maxtimeout", str(timeout)]

    def environment(self, home: Path, servers: str, group_id: str, timeout: float,
                    survey: str = "ztf") -> dict[str, str]:
        """A process environment whose HOME holds credentials for the local broker."""
        folder = home / ".finkclient"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{survey}_credentials.yml"
        path.write_text(yaml.safe_dump({"survey": survey, "username": "bench", "password": None,
                                        "groupid": group_id, "servers": servers,
                                        "maxtimeout": timeout}))
        path.chmod(0o600)
        return {**os.environ, "HOME": str(home)}


def venv_dir() -> Path:
    return cache_dir() / "bench-venv"


def install(venv: Path | None = None) -> FinkClient:
    """Create the venv and pip-install fink-client once; later runs reuse it."""
    venv = venv or venv_dir()
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(venv)])
        if _version(python) is None:
            _run([str(python), "-m", "pip", "install", "-q", "fink-client"])
    except (OSError, subprocess.SubprocessError) as exc:
        return FinkClient(None, None, f"could not install fink-client: {_why(exc)}")
    version = _version(python)
    finkctl = venv / "bin" / "finkctl"
    if not finkctl.exists():
        return FinkClient(version, None, f"fink-client {version} has no `finkctl` command")
    try:
        _run([str(finkctl), "transfer", "--help"])
    except (OSError, subprocess.SubprocessError) as exc:
        return FinkClient(version, None, f"`finkctl transfer --help` failed: {_why(exc)}")
    return FinkClient(version, finkctl)


def _version(python: Path) -> str | None:
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                           "print(m.version('fink-client'))"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)


def _why(exc: BaseException) -> str:
    """The last line of a failed command's output, else the exception itself."""
    output = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or ""
    lines = [line for line in str(output).splitlines() if line.strip()]
    return lines[-1][:200] if lines else str(exc)[:200]
