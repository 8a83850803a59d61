"""A real Apache Kafka broker (KRaft, one node, loopback, free ports) for tests, demo and bench.

Kafka's jars come from Maven Central through ``mvn`` and are cached under
``$FINKDL_CACHE`` (default ``~/.cache/finkdl``); the broker runs on the machine's Java.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from .errors import BrokerError

KAFKA_VERSION = "4.1.1"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>finkdl</groupId><artifactId>local-kafka</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.16</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
"""
_LOG4J = """Configuration:
  Appenders:
    Console: {name: out, target: SYSTEM_OUT, PatternLayout: {pattern: "[%d] %p %m (%c)%n"}}
  Loggers:
    Root: {level: WARN, AppenderRef: [{ref: out}]}
"""


def cache_dir() -> Path:
    return Path(os.environ.get("FINKDL_CACHE", Path.home() / ".cache" / "finkdl"))


def kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """The folder of Kafka's jars, fetched with Maven on first use."""
    libs = cache_dir() / f"kafka-{version}" / "libs"
    if (libs / f"kafka_2.13-{version}.jar").exists():
        return libs
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(version=version))
    tmp = work / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run(["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
                           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerError(f"could not fetch Kafka {version} from Maven Central",
                          hint=(done.stdout + done.stderr)[-500:])
    tmp.rename(libs)
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """Start, wait for, and stop one KRaft Kafka node. Use as a context manager."""

    def __init__(self, workdir: Path | None = None, version: str = KAFKA_VERSION) -> None:
        self.version = version
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="finkdl-kafka-"))
        self.port = free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        props = {
            "process.roles": "broker,controller", "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT", "log.dirs": str(data),
            "num.partitions": "1", "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0", "message.max.bytes": "16777216",
            "log.segment.bytes": "268435456",
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.workdir / "log4j2.yaml").write_text(_LOG4J)
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.yaml'}",
                "-cp", f"{kafka_jars(self.version)}/*", main, *args]

    def start(self, timeout: float = 90.0) -> "LocalBroker":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.workdir / "data" / "meta.properties").exists():
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster,
                                            "-c", str(config)), capture_output=True, text=True)
            if fmt.returncode != 0:
                raise BrokerError("could not format the local Kafka storage", hint=fmt.stderr[-500:])
        log = open(self.workdir / "broker.log", "ab")
        self.process = subprocess.Popen(self._java("kafka.Kafka", str(config)), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.servers, "log_level": 0})
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise BrokerError(f"the local Kafka broker exited (see {self.workdir}/broker.log)")
            try:
                admin.list_topics(timeout=1.0)
                return
            except Exception:
                time.sleep(0.3)
        raise BrokerError(f"the local Kafka broker did not start within {timeout:.0f} s "
                          f"(see {self.workdir}/broker.log)")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, pause_s: float = 0.0) -> None:
        """Stop, stay down ``pause_s`` seconds, start again on the same ports and data."""
        self.stop()
        time.sleep(pause_s)
        self.start()

    def create_topic(self, name: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.servers})
        futures = admin.create_topics([NewTopic(name, partitions, 1)])
        for future in futures.values():
            future.result(30)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
