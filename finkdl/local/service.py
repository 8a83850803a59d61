"""What the local Kafka broker and the local S3 server share: a server process of their own,
stopped gently (then killed), restarted on the same ports and data, removed with its folder."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TypeVar

S = TypeVar("S", bound="LocalService")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalService:
    """A server started by ``start`` (which sets ``process``) in ``workdir``. Use as a context
    manager."""

    workdir: Path
    process: subprocess.Popen | None = None
    stop_grace_s = 20.0  # after SIGTERM, before SIGKILL

    def start(self: S, timeout: float = 60.0) -> S:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, pause_s: float = 0.0) -> None:
        """Stop, stay down ``pause_s`` seconds, start again on the same ports and data."""
        self.stop()
        time.sleep(pause_s)
        self.start()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
