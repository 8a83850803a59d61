import pytest

from finkdl.config import Connection, readable_by_others, resolve_connection
from finkdl.errors import ConfigError


def _creds(home, text, mode=0o600):
    path = home / ".finkclient" / "ztf_credentials.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_flags_win_over_environment_and_file(tmp_path):
    _creds(tmp_path, "servers: file:9092\ngroup_id: filegroup\n")
    conn, _ = resolve_connection("flag:1", "flaggroup", "ztf", env={"FINKDL_SERVERS": "env:1"}, home=tmp_path)
    assert (conn.servers, conn.group_id) == ("flag:1", "flaggroup")


def test_fink_client_credentials_file_is_enough(tmp_path):
    _creds(tmp_path, "username: astro\npassword: s3cret\nservers: a:1,b:2\ngroupid: g\nmaxtimeout: 7\n")
    conn, maxtimeout = resolve_connection(None, None, "ztf", env={}, home=tmp_path)
    assert (conn.servers, conn.group_id, conn.username, maxtimeout) == ("a:1,b:2", "g", "astro", 7.0)
    assert conn.kafka_config()["sasl.mechanism"] == "SCRAM-SHA-512"


def test_password_never_shows_in_repr():
    conn = Connection("s:1", "g", username="u", password="hunter2")
    assert "hunter2" not in repr(conn)


def test_malformed_credentials_file_is_a_clear_error(tmp_path):
    _creds(tmp_path, "servers: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_connection(None, None, "ztf", env={}, home=tmp_path)


def test_missing_servers_says_where_they_can_come_from(tmp_path):
    with pytest.raises(ConfigError, match="no Kafka servers") as err:
        resolve_connection(None, "g", "ztf", env={}, home=tmp_path)
    assert "finkdl register" in str(err.value)


def test_credentials_readable_by_others_are_detected(tmp_path):
    assert readable_by_others(_creds(tmp_path, "servers: a\n", mode=0o644))
