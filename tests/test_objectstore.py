"""Object storage (finkdl.objectstore) against a real S3 server: SeaweedFS, started once per
session on loopback (finkdl.local.s3server)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.broker  # needs a server started for the session, as the Kafka tests do


@pytest.fixture(scope="session")
def s3server(tmp_path_factory):
    pytest.importorskip("boto3", reason="boto3 is not installed: pip install 'finkdl[s3]'")
    from finkdl.errors import OutputError
    from finkdl.local.s3server import LocalS3Server, weed_binary
    try:
        weed_binary()
    except OutputError as exc:
        pytest.skip(f"no SeaweedFS server to test against: {exc.message} ({exc.hint})")
    server = LocalS3Server(tmp_path_factory.mktemp("s3"), buckets=("finkdl-test",)).start()
    yield server
    server.stop()


@pytest.fixture
def s3env(s3server, monkeypatch):
    """The standard AWS variables pointing at the session's server, for this test only."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3server.env().items():
        monkeypatch.setenv(name, value)
    return s3server


def test_the_server_refuses_a_second_create_only_write_with_412(s3env):
    import boto3
    from botocore.exceptions import ClientError
    client = boto3.client("s3")
    client.put_object(Bucket="finkdl-test", Key="probe/once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket="finkdl-test", Key="probe/once", Body=b"2", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket="finkdl-test", Key="probe/once")["Body"].read() == b"1"
