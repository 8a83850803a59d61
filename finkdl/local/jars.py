"""Jars fetched from Maven Central with ``mvn`` on first use, cached under ``$FINKDL_CACHE``
(default ``~/.cache/finkdl``), shared by every run: Apache Kafka's for the local broker here,
the S3A connector's for Spark in :mod:`.sparkjars`."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from ..errors import BrokerError, FinkdlError

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


def cache_dir() -> Path:
    """Where downloaded tools are kept between runs: ``$FINKDL_CACHE``, else ``~/.cache/finkdl``."""
    return Path(os.environ.get("FINKDL_CACHE", Path.home() / ".cache" / "finkdl"))


def kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """The folder of Kafka's jars, fetched with Maven on first use."""
    return maven_jars(cache_dir() / f"kafka-{version}", _POM.format(version=version),
                      f"kafka_2.13-{version}.jar", f"Kafka {version}", BrokerError)


def maven_jars(work: Path, pom: str, marker: str, what: str,
               error: type[FinkdlError] = FinkdlError) -> Path:
    """``work/libs``: the runtime jars of ``pom``'s dependencies, fetched with Maven on first use.

    Several first runs may share the cache at once (two users' jobs, a Slurm array's first
    start): one fetches while the others wait on a lock in ``work``, then find the jars there.
    The fetch fills ``libs.partial`` and renames it, so ``libs`` is whole or absent; ``marker``
    is a jar whose presence says it is whole. A failed fetch raises ``error`` naming ``what``.
    """
    libs = work / "libs"
    if (libs / marker).exists():
        return libs
    work.mkdir(parents=True, exist_ok=True)
    with _cache_lock(work / "fetch.lock"):
        if (libs / marker).exists():  # fetched by another run while this one waited
            return libs
        tmp = work / "libs.partial"
        shutil.rmtree(tmp, ignore_errors=True)  # left by a fetch that was killed
        _maven_fetch(work, tmp, pom, what, error)
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
    return libs


def _maven_fetch(work: Path, out: Path, pom: str, what: str, error: type[FinkdlError]) -> None:
    """The pom's dependencies and theirs (runtime scope) from Maven Central into ``out``."""
    (work / "pom.xml").write_text(pom)
    try:
        done = subprocess.run(["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
                               f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise error(f"could not fetch {what} from Maven Central: no mvn on PATH",
                    hint="install Maven (apt-get install maven)") from None
    if done.returncode != 0:
        raise error(f"could not fetch {what} from Maven Central",
                    hint=_maven_error(done.stdout + done.stderr))


def _maven_error(output: str) -> str:
    """Maven's first error lines, which say what failed (an artifact it could not transfer, an
    offline repository); its last lines are the same advice whatever failed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    errors = [line.removeprefix("[ERROR]").strip() for line in text.splitlines()
              if line.startswith("[ERROR]")]
    found = " | ".join([line for line in errors if line and not line.startswith("[ERROR]")][:2])
    return found[:500] or text[-500:]


@contextlib.contextmanager
def _cache_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, waited for, released on exit (and by the kernel if the
    process dies). Where the filesystem has no locks (some Lustre mounts), nothing is locked."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        yield  # closing the file releases the lock
