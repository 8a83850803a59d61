"""The local broker's pure parts, and its jar cache under concurrent first runs.

The cache tests put a fake ``mvn`` first on PATH: it writes into ``-DoutputDirectory`` as
Maven's copy-dependencies does (the folder, a first jar, then after a while Kafka's own jar),
so the locking is tested through the real fetch code without the network. The real fetch
from Maven Central runs whenever the session broker starts on an empty cache.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finkdl.errors import BrokerError
from finkdl.local.broker import cluster_id
from finkdl.local.jars import KAFKA_VERSION, kafka_jars

FAKE_MVN = """#!/bin/sh
echo "$$" >> "$FAKE_MVN_LOG"
[ -n "$FAKE_MVN_FAIL" ] && { echo "[ERROR] Could not resolve dependencies"; exit 1; }
for arg; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done
mkdir -p "$out" && touch "$out/kafka-clients-VERSION.jar"
sleep "${FAKE_MVN_SECONDS:-0}"
touch "$out/kafka_2.13-VERSION.jar"
"""


@pytest.fixture
def fake_maven(tmp_path, monkeypatch) -> dict[str, str]:
    """An empty cache and a fake mvn; the environment for processes that use them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN.replace("VERSION", KAFKA_VERSION))
    mvn.chmod(0o755)
    env = {"FINKDL_CACHE": str(tmp_path / "cache"), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_MVN_LOG": str(tmp_path / "mvn.log")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _fetches(env: dict[str, str]) -> int:
    log = Path(env["FAKE_MVN_LOG"])
    return len(log.read_text().split()) if log.exists() else 0


def test_a_cluster_id_never_starts_with_a_dash_which_kafka_storage_takes_for_an_option():
    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # the first encodes as "-A…"
    assert cluster_id(lambda: next(draws)) == "A" * 22


def test_cluster_ids_are_22_characters_of_base64url_and_differ():
    ids = {cluster_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_first_runs_at_once_fetch_kafka_once_and_the_others_wait_and_use_it(fake_maven):
    env = {**os.environ, **fake_maven, "FAKE_MVN_SECONDS": "1.5"}
    code = "from finkdl.local.broker import kafka_jars; print(kafka_jars())"
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [run.communicate(timeout=60) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err[-2000:]
    libs = Path(fake_maven["FINKDL_CACHE"]) / f"kafka-{KAFKA_VERSION}" / "libs"
    assert {out.strip() for out, _ in results} == {str(libs)}
    assert _fetches(fake_maven) == 1
    assert sorted(p.name for p in libs.iterdir()) == [f"kafka-clients-{KAFKA_VERSION}.jar",
                                                      f"kafka_2.13-{KAFKA_VERSION}.jar"]
    assert not (libs.parent / "libs.partial").exists()


def test_a_filled_cache_is_used_without_fetching(fake_maven):
    first = kafka_jars()
    assert kafka_jars() == first and _fetches(fake_maven) == 1


def test_a_failed_fetch_says_so_leaves_no_jars_and_the_next_run_fetches_again(fake_maven, monkeypatch):
    monkeypatch.setenv("FAKE_MVN_FAIL", "1")
    with pytest.raises(BrokerError, match=f"could not fetch Kafka {KAFKA_VERSION}") as failed:
        kafka_jars()
    assert "Could not resolve dependencies" in failed.value.hint
    monkeypatch.delenv("FAKE_MVN_FAIL")
    assert (kafka_jars() / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()  # the lock was let go
    assert _fetches(fake_maven) == 2


def test_what_a_killed_fetch_left_is_replaced(fake_maven):
    work = Path(fake_maven["FINKDL_CACHE"]) / f"kafka-{KAFKA_VERSION}"
    for leftover in (work / "libs.partial", work / "libs"):  # a partial download; a libs without Kafka's jar
        leftover.mkdir(parents=True)
        (leftover / "half-written.jar").write_bytes(b"PK")
    libs = kafka_jars()
    assert sorted(p.name for p in libs.iterdir()) == [f"kafka-clients-{KAFKA_VERSION}.jar",
                                                      f"kafka_2.13-{KAFKA_VERSION}.jar"]
    assert not (work / "libs.partial").exists()
