"""The S3A connector's jars, so Spark reads an ``s3://`` download as ``s3a://``: fetched from
Maven Central with ``mvn`` on first use and cached as Kafka's are (:mod:`.jars`).

``hadoop-aws`` 3.4+ depends on the AWS SDK v2 ``bundle`` jar, every AWS service in one jar of
over 500 MB. S3A calls only S3 (and STS for assumed roles, which a non-AWS endpoint does not
use), so the bundle is left out and the few SDK modules S3A loads are named instead: ``s3``,
``s3-transfer-manager`` (uploads and copies), ``apache-client`` (S3A's HTTP client) and
``netty-nio-client`` (its async client), at the versions of the SDK's BOM (Hadoop 3.5.0 was
built on SDK 2.35.4; 2.59.1 reads and writes through S3A alike). Spark already ships Netty,
Apache HttpClient 4 (with commons-codec) and SLF4J, so those are left out too: a second Netty
of another version beside Spark's would mix classes of both. The set is 13.5 MB in 36 jars.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from ..errors import OutputError
from .jars import cache_dir, maven_jars

HADOOP_AWS_VERSION = "3.5.0"  # must be the Hadoop of the Spark that loads it (pyspark 4.x: 3.5.0)
AWS_SDK_VERSION = "2.59.1"
_NO = "<exclusion><groupId>{}</groupId><artifactId>{}</artifactId></exclusion>"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>finkdl</groupId><artifactId>spark-s3a</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement><dependencies>
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>bom</artifactId><version>{sdk}</version>
      <type>pom</type><scope>import</scope></dependency>
  </dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-aws</artifactId><version>{hadoop}</version>
      <exclusions>{no_bundle}</exclusions></dependency>
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>s3</artifactId>
      <exclusions>{no_apache5}{no_netty}{no_slf4j}</exclusions></dependency>
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>s3-transfer-manager</artifactId></dependency>
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>apache-client</artifactId>
      <exclusions>{no_all}</exclusions></dependency>
    <dependency><groupId>software.amazon.awssdk</groupId><artifactId>netty-nio-client</artifactId>
      <exclusions>{no_netty}{no_slf4j}</exclusions></dependency>
  </dependencies>
</project>
"""


def s3a_jars(hadoop: str = HADOOP_AWS_VERSION, sdk: str = AWS_SDK_VERSION) -> list[Path]:
    """The jars to give Spark (``spark.jars``, comma-separated) to read ``s3a://``.

    Fetched once into ``$FINKDL_CACHE/spark-s3a-HADOOP-SDK/libs``, under the same lock as
    Kafka's jars, so concurrent first runs fetch once. Raises :class:`OutputError` when Maven
    is missing or cannot fetch them.
    """
    pom = _POM.format(hadoop=hadoop, sdk=sdk,
                      no_bundle=_NO.format("software.amazon.awssdk", "bundle"),
                      no_apache5=_NO.format("software.amazon.awssdk", "apache5-client"),
                      no_netty=_NO.format("io.netty", "*"), no_slf4j=_NO.format("org.slf4j", "*"),
                      no_all=_NO.format("*", "*"))  # HttpClient 4, commons-codec: Spark's
    libs = maven_jars(cache_dir() / f"spark-s3a-{hadoop}-{sdk}", pom, f"hadoop-aws-{hadoop}.jar",
                      f"the S3A connector (hadoop-aws {hadoop}, AWS SDK {sdk})", OutputError)
    return sorted(libs.glob("*.jar"))


def spark_hadoop_version() -> str | None:
    """The Hadoop version of the installed pyspark (from its ``hadoop-client-api`` jar), which
    hadoop-aws must match; None without pyspark or that jar."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for jar in Path(folder, "jars").glob("hadoop-client-api-*.jar"):
            found = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
            if found:
                return found.group(1)
    return None
