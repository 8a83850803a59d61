"""Credentials and TLS against a real broker secured like Fink's (SASL SCRAM-SHA-512).

One module-scoped broker listens three ways: PLAINTEXT (to create topics and produce),
SASL_PLAINTEXT and SASL_SSL (what finkdl connects to). The session ``broker`` fixture is
plain, so this module starts its own.
"""
from __future__ import annotations

import stat
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from finkdl.local import generator
from finkdl.config import Connection, DownloadConfig
from finkdl.download import download
from finkdl.errors import AuthError, BrokerError, ExitCode
from finkdl.local.broker import LocalBroker
from finkdl.plan import topic_offsets
from finkdl.verify import verify

from conftest import run_finkdl

pytestmark = pytest.mark.broker

WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory):
    node = LocalBroker(workdir=tmp_path_factory.mktemp("kafka-secure"), secure=True).start()
    yield node
    node.stop()


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch):
    """Runs must see only the credentials a test gives them, not the developer's."""
    for name in ("FINKDL_SERVERS", "FINKDL_GROUP_ID", "FINKDL_USERNAME", "FINKDL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def make_topic(broker: LocalBroker, n: int, partitions: int = 3) -> str:
    """A Fink-like topic of ``n`` alerts, produced through the PLAINTEXT listener."""
    topic = f"ftransfer_ztf_2026-11-28_sec{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, partitions)
    generator.produce(broker.servers, topic, generator.ztf_schema(slim=True, cutouts=False),
                      generator.alerts(n, slim=True, cutouts=False), partitions)
    return topic


def rows(outdir: Path) -> int:
    return len(pd.read_parquet(outdir, columns=["candid"]))


def assert_no_secret(done, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in done.stdout and secret not in done.stderr, "a password leaked"


def download_cli(broker: LocalBroker, topic: str, outdir: Path, password: str, *args: str,
                 servers: str | None = None, timeout: float = 120):
    """``finkdl download`` over SASL with credentials from the environment (a later
    ``--timeout`` in ``args`` overrides the 2 s default)."""
    env = {"FINKDL_USERNAME": broker.scram_user, "FINKDL_PASSWORD": password}
    return run_finkdl("download", topic, "--outdir", str(outdir), "--timeout", "2",
                      "--progress", "plain", *args, servers=servers or broker.sasl_servers,
                      group=f"sec-{uuid.uuid4().hex[:10]}", env=env, timeout=timeout)


def test_sasl_plaintext_download_gets_every_alert(secure_broker, tmp_path):
    topic = make_topic(secure_broker, 1500, partitions=3)
    done = download_cli(secure_broker, topic, tmp_path, secure_broker.scram_password)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path) == 1500
    assert_no_secret(done, secure_broker.scram_password)


def test_plaintext_clients_cannot_use_the_sasl_listener(secure_broker):
    """Sanity check of the fixture: without credentials the SASL listener answers nothing."""
    topic = make_topic(secure_broker, 10, partitions=1)
    with pytest.raises(BrokerError):
        topic_offsets(Connection(secure_broker.sasl_servers, "sec-nocreds"), topic, timeout=3)


def test_sasl_ssl_with_the_ca_file(secure_broker, tmp_path):
    """TLS at the library level: the command line has no way to pass a CA file yet."""
    topic = make_topic(secure_broker, 900, partitions=3)
    conn = Connection(secure_broker.ssl_servers, f"sec-{uuid.uuid4().hex[:10]}",
                      secure_broker.scram_user, secure_broker.scram_password,
                      ca_location=str(secure_broker.ca_file))
    assert conn.kafka_config()["security.protocol"] == "SASL_SSL"
    offsets = topic_offsets(conn, topic, timeout=10)
    assert sum(o.high - o.low for o in offsets) == 900 and len(offsets) == 3

    summary = download(DownloadConfig(topic=topic, outdir=tmp_path, connection=conn, timeout=2.0))
    assert summary.error is None, summary.error
    assert summary.outcome == ExitCode.OK
    # Counted on disk: summary.alerts can under-count when the group rebalances while the
    # workers wind down (a revoked partition's stats are dropped), whatever the transport.
    assert rows(tmp_path) == 900 and verify(tmp_path).ok


def test_sasl_ssl_checks_the_certificate(secure_broker):
    """Without our CA the broker's self-signed chain must be refused, not silently trusted."""
    topic = make_topic(secure_broker, 10, partitions=1)
    conn = Connection(secure_broker.ssl_servers, "sec-noca", secure_broker.scram_user,
                      secure_broker.scram_password, security_protocol="SASL_SSL")
    with pytest.raises(BrokerError):
        topic_offsets(conn, topic, timeout=3)


def test_sasl_ssl_wrong_password_is_an_auth_error(secure_broker):
    topic = make_topic(secure_broker, 10, partitions=1)
    conn = Connection(secure_broker.ssl_servers, "sec-badpw", secure_broker.scram_user,
                      WRONG_PASSWORD, ca_location=str(secure_broker.ca_file))
    started = time.monotonic()
    with pytest.raises(AuthError) as caught:
        topic_offsets(conn, topic, timeout=40)
    assert time.monotonic() - started < 30
    assert WRONG_PASSWORD not in str(caught.value) and WRONG_PASSWORD not in repr(conn)


@pytest.mark.parametrize("traceback", [False, True], ids=["plain", "traceback"])
def test_wrong_password_fails_fast_with_exit_5(secure_broker, tmp_path, traceback):
    topic = make_topic(secure_broker, 10, partitions=1)
    extra = ["--traceback"] if traceback else []
    started = time.monotonic()
    # --timeout 40: a run that gives up only at its timeout would break the 30 s bound
    done = download_cli(secure_broker, topic, tmp_path, WRONG_PASSWORD, *extra, "--timeout", "40",
                        timeout=90)
    elapsed = time.monotonic() - started
    assert done.returncode == ExitCode.AUTH, f"exit {done.returncode} after {elapsed:.1f} s:\n{done.stderr}"
    assert elapsed < 30, f"took {elapsed:.1f} s"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refused the credentials" in errors[0], done.stderr
    assert secure_broker.scram_user in errors[0]
    assert ("Traceback" in done.stderr) == traceback
    assert_no_secret(done, WRONG_PASSWORD, secure_broker.scram_password)
    assert not list(tmp_path.rglob("*.parquet"))


def test_register_writes_a_private_file_and_download_warns_when_it_is_not(secure_broker, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    password = secure_broker.scram_password
    # a new session has no controlling terminal, so getpass reads the password from stdin
    done = run_finkdl("register", "--username", secure_broker.scram_user,
                      "--group-id", f"sec-{uuid.uuid4().hex[:10]}",
                      "--servers", secure_broker.sasl_servers, env=env, input=password + "\n",
                      start_new_session=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_no_secret(done, password)
    path = home / ".finkclient" / "ztf_credentials.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password in path.read_text()

    topic = make_topic(secure_broker, 600, partitions=2)
    outdir = tmp_path / "out"
    quiet = run_finkdl("download", topic, "--outdir", str(outdir), "--timeout", "2",
                       "--progress", "plain", env=env, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "readable by other users" not in quiet.stderr
    assert rows(outdir) == 600

    path.chmod(0o644)
    loud = run_finkdl("download", topic, "--outdir", str(outdir), "--timeout", "2",
                      "--progress", "plain", env=env, timeout=120)
    assert loud.returncode == 0, loud.stderr
    assert "readable by other users" in loud.stderr and "chmod 600" in loud.stderr
    assert rows(outdir) == 600  # the group had committed everything: nothing new
    for run in (quiet, loud):
        assert_no_secret(run, password)
