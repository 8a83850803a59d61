"""A real Apache Kafka broker (KRaft, one node, loopback, free ports) for tests, demo and bench.

Kafka's jars come from Maven Central (see :mod:`.jars`); the broker runs on the machine's Java.

With ``secure=True`` the broker also listens like Fink's servers do: SASL/SCRAM-SHA-512
over plain TCP and over TLS, with one SCRAM user, so authentication and TLS are tested
against the real protocol rather than a mock. The PLAINTEXT listener stays for admin
work and producing test alerts.
"""
from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from confluent_kafka.admin import AdminClient, NewTopic

from ..errors import BrokerError
from .service import LocalService, free_port
from .jars import KAFKA_VERSION, kafka_jars

_LOG4J = """Configuration:
  Appenders:
    Console: {name: out, target: SYSTEM_OUT, PatternLayout: {pattern: "[%d] %p %m (%c)%n"}}
  Loggers:
    Root: {level: WARN, AppenderRef: [{ref: out}]}
"""


def cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A new KRaft cluster id: 16 random bytes, base64url. One of 64 starts with '-', which
    kafka-storage's parser takes for an option ("argument --cluster-id: expected one
    argument"): such ids are drawn again, as Kafka's own ``Uuid.randomUuid`` does."""
    while True:
        cluster = base64.urlsafe_b64encode(random_bytes()).rstrip(b"=").decode()
        if not cluster.startswith("-"):
            return cluster


@dataclass(frozen=True)
class TlsFiles:
    """The broker's TLS material: a PKCS12 keystore for Kafka, the CA in PEM for clients."""

    ca_file: Path
    keystore: Path
    password: str


def make_tls_files(folder: Path) -> TlsFiles:
    """A throwaway CA and a broker certificate for 127.0.0.1/localhost, made once per folder.

    librdkafka checks the server's name against the certificate (the default
    ``ssl.endpoint.identification.algorithm=https``), so the certificate names both
    the IP clients dial and ``localhost``. openssl is used when present (milliseconds);
    otherwise the JDK's keytool, which is always there since Kafka needs Java (seconds).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "broker.p12", _tls_password(folder))
    if files.ca_file.exists() and files.keystore.exists():
        return files
    if shutil.which("openssl"):
        _tls_with_openssl(folder, files)
    elif shutil.which("keytool"):
        _tls_with_keytool(folder, files)
    else:
        raise BrokerError("cannot make TLS certificates for the local broker",
                          hint="install openssl, or a JDK that provides keytool")
    return files


def _tls_password(folder: Path) -> str:
    """The keystore password, kept beside the keystore so a restart can reopen it."""
    path = folder / "keystore.password"
    if not path.exists():
        path.write_text(secrets.token_hex(16))
    return path.read_text().strip()


_SAN = "IP:127.0.0.1,DNS:localhost"
_DAYS = "2"  # the files live in a temporary folder; they only need to outlast one run


def _run_tool(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerError(f"could not {what} for the local broker ({cmd[0]} failed)",
                          hint=(done.stdout + done.stderr)[-500:])


def _tls_with_openssl(folder: Path, files: TlsFiles) -> None:
    ca_key, key, csr, cert = (folder / n for n in ("ca.key", "broker.key", "broker.csr", "broker.pem"))
    ext = folder / "broker.ext"
    ext.write_text(f"subjectAltName={_SAN}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    steps = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
         "-out", str(files.ca_file), "-days", _DAYS, "-subj", "/CN=finkdl-test-ca"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(files.ca_file), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", _DAYS, "-extfile", str(ext)],
        ["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key),
         "-certfile", str(files.ca_file), "-name", "broker", "-out", str(files.keystore),
         "-passout", f"pass:{files.password}"],
    ]
    for cmd in steps:
        _run_tool(cmd, "make TLS certificates")


def _tls_with_keytool(folder: Path, files: TlsFiles) -> None:
    ca_store, csr, cert = folder / "ca.p12", folder / "broker.csr", folder / "broker.pem"
    pw = ["-storepass", files.password, "-keypass", files.password, "-storetype", "PKCS12"]
    key = ["-keyalg", "RSA", "-keysize", "2048", "-validity", _DAYS]
    steps = [
        ["keytool", "-genkeypair", "-alias", "ca", "-dname", "CN=finkdl-test-ca", "-ext", "bc:c",
         "-keystore", str(ca_store), *key, *pw],
        ["keytool", "-exportcert", "-rfc", "-alias", "ca", "-file", str(files.ca_file),
         "-keystore", str(ca_store), *pw],
        ["keytool", "-genkeypair", "-alias", "broker", "-dname", "CN=localhost",
         "-keystore", str(files.keystore), *key, *pw],
        ["keytool", "-certreq", "-alias", "broker", "-file", str(csr),
         "-keystore", str(files.keystore), *pw],
        ["keytool", "-gencert", "-alias", "ca", "-infile", str(csr), "-outfile", str(cert), "-rfc",
         "-ext", f"SAN={_SAN.replace('IP:', 'ip:').replace('DNS:', 'dns:')}",
         "-validity", _DAYS, "-keystore", str(ca_store), *pw],
        ["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(files.ca_file),
         "-keystore", str(files.keystore), *pw],
        ["keytool", "-importcert", "-alias", "broker", "-file", str(cert),
         "-keystore", str(files.keystore), *pw],
    ]
    for cmd in steps:
        _run_tool(cmd, "make TLS certificates")


class LocalBroker(LocalService):
    """Start, wait for, and stop one KRaft Kafka node. Use as a context manager.

    ``secure=True`` adds a SASL_PLAINTEXT and a SASL_SSL listener (SCRAM-SHA-512, as on
    Fink's servers) and creates the SCRAM user ``scram_user`` when the storage is formatted;
    the default stays PLAINTEXT only, so ordinary tests start as fast as possible.
    """

    stop_grace_s = 30.0

    def __init__(self, workdir: Path | None = None, version: str = KAFKA_VERSION, *,
                 secure: bool = False, scram_user: str = "alice",
                 scram_password: str | None = None) -> None:
        self.version = version
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="finkdl-kafka-"))
        self.port = free_port()
        self.controller_port = free_port()
        self.secure = secure
        # Hex only: the password goes into --add-scram's "[name=..,password=..]" syntax and
        # into a JAAS line, where quotes, commas and brackets would need escaping.
        self.scram_user = scram_user
        self.scram_password = scram_password or secrets.token_hex(12)
        self.sasl_port = free_port() if secure else None
        self.ssl_port = free_port() if secure else None
        self.tls: TlsFiles | None = None
        self.process: subprocess.Popen | None = None

    @property
    def servers(self) -> str:
        """The PLAINTEXT listener: no credentials, for admin work and producing."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_servers(self) -> str:
        """The SASL_PLAINTEXT listener (SCRAM-SHA-512, no TLS)."""
        return f"127.0.0.1:{self._secure_port(self.sasl_port)}"

    @property
    def ssl_servers(self) -> str:
        """The SASL_SSL listener (SCRAM-SHA-512 over TLS; trust :attr:`ca_file`)."""
        return f"127.0.0.1:{self._secure_port(self.ssl_port)}"

    @property
    def ca_file(self) -> Path:
        """The PEM CA certificate that signed the broker's certificate (``ssl.ca.location``)."""
        if self.tls is None:
            raise BrokerError("the local broker has no TLS listener yet",
                              hint="create it with secure=True and start it")
        return self.tls.ca_file

    def _secure_port(self, port: int | None) -> int:
        if port is None:
            raise BrokerError("the local broker was created without secure=True")
        return port

    def _security_props(self) -> dict[str, str]:
        """Listener settings for SCRAM over TCP and TLS; inter-broker traffic stays PLAINTEXT."""
        self.tls = make_tls_files(self.workdir / "tls")
        # The broker side of SCRAM needs a JAAS entry naming the login module, even though
        # it logs in nowhere itself (credentials live in the KRaft metadata).
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.tls.keystore),
            "ssl.keystore.password": self.tls.password,
            "ssl.key.password": self.tls.password,
            "ssl.client.auth": "none",
        }

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        listeners = {"PLAINTEXT": self.port}
        if self.secure:
            listeners.update(SASL_PLAINTEXT=self.sasl_port, SASL_SSL=self.ssl_port)
        advertised = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
        protocols = ",".join(f"{name}:{name}" for name in listeners)
        props = {
            "process.roles": "broker,controller", "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"{protocols},CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT", "log.dirs": str(data),
            "num.partitions": "1", "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
            # A new group's first member waits this long for others, and again as long as
            # members keep arriving; at 0 a group forms in several rounds. Kafka's default is 3 s.
            "group.initial.rebalance.delay.ms": "100", "message.max.bytes": "16777216",
            "log.segment.bytes": "268435456",
        }
        if self.secure:
            props.update(self._security_props())
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
            args = ["format", "-t", cluster_id(), "-c", str(config)]
            if self.secure:  # KRaft keeps SCRAM users in its metadata: add ours before first start
                args += ["--add-scram", f"SCRAM-SHA-512=[name={self.scram_user},"
                                        f"password={self.scram_password}]"]
            fmt = subprocess.run(self._java("kafka.tools.StorageTool", *args),
                                 capture_output=True, text=True)
            if fmt.returncode != 0:
                raise BrokerError("could not format the local Kafka storage",
                                  hint=(fmt.stdout + fmt.stderr)[-500:])
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

    def create_topic(self, name: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.servers, "log_level": 0})
        futures = admin.create_topics([NewTopic(name, partitions, 1)])
        for future in futures.values():
            future.result(30)
