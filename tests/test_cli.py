"""What a user sees: one clear line per error with a distinct exit code, and the extra commands."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from finkdl.local import generator
from finkdl.errors import ExitCode

from conftest import run_finkdl

pytestmark = pytest.mark.broker
BIN = Path(sys.executable).parent


def _creds(home: Path, servers: str, group: str, survey: str = "ztf") -> None:
    path = home / ".finkclient" / f"{survey}_credentials.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"username: nobody\nservers: {servers}\ngroup_id: {group}\nmaxtimeout: 2\n")
    path.chmod(0o600)


def test_unreachable_server_fails_fast_naming_it(tmp_path):
    start = time.monotonic()
    done = run_finkdl("download", "ftransfer_ztf_x_1", "--outdir", str(tmp_path), "--timeout", "3",
                      servers="127.0.0.1:9", group="g")
    assert done.returncode == ExitCode.BROKER
    assert "127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - start < 30


def test_missing_topic_says_the_job_may_not_have_started(broker, tmp_path):
    done = run_finkdl("download", "ftransfer_ztf_2026-01-01_missing", "--outdir", str(tmp_path),
                      servers=broker.servers, group="g")
    assert done.returncode == ExitCode.TOPIC and "does not exist" in done.stderr


def test_missing_schema_is_an_error_not_a_silent_success(broker, group_id, tmp_path):
    topic = f"ftransfer_ztf_2026-11-28_noschema{group_id}"
    broker.create_topic(topic, 1)
    generator.produce(broker.servers, topic, generator.ztf_schema(slim=True, cutouts=False),
                      generator.alerts(10, slim=True, cutouts=False), 1, with_schema_topic=False)
    done = run_finkdl("download", topic, "--outdir", str(tmp_path), "--timeout", "2",
                      servers=broker.servers, group=group_id)
    assert done.returncode == ExitCode.TOPIC and "no schema found" in done.stderr


def test_unknown_partition_column_is_refused_before_downloading(topic_factory, finkdl, tmp_path):
    topic = topic_factory(20, partitions=1, survey="lsst")
    done = finkdl(topic, tmp_path, "--partition-by", "finkclass", "--survey", "lsst")
    assert done.returncode == ExitCode.USAGE
    assert "diaSourceId" in done.stderr and not list(tmp_path.rglob("*.parquet"))


def test_output_folder_that_cannot_be_written_is_named(topic_factory, finkdl, tmp_path):
    topic = topic_factory(20, partitions=1)
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = finkdl(topic, blocker / "out")
    assert done.returncode == ExitCode.OUTPUT and str(blocker / "out") in done.stderr


def test_topic_not_named_like_fink_is_warned_about_and_downloaded(broker, group_id, tmp_path):
    topic = f"mytopic_{group_id}"
    broker.create_topic(topic, 1)
    generator.produce(broker.servers, topic, generator.ztf_schema(slim=True, cutouts=False),
                      generator.alerts(50, slim=True, cutouts=False), 1)
    done = run_finkdl("download", topic, "--outdir", str(tmp_path), "--timeout", "2",
                      servers=broker.servers, group=group_id)
    assert done.returncode == 0 and "not named like a Fink topic" in done.stderr
    assert len(pd.read_parquet(tmp_path)) == 50


def test_missing_and_malformed_credentials_are_usage_errors(tmp_path):
    done = run_finkdl("download", "ftransfer_ztf_x_1", "--outdir", str(tmp_path),
                      env={"FINKDL_TEST_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert done.returncode == ExitCode.USAGE and "finkdl register" in done.stderr
    bad = tmp_path / ".finkclient" / "ztf_credentials.yml"
    bad.parent.mkdir()
    bad.write_text("servers: [oops\n")
    done = run_finkdl("download", "ftransfer_ztf_x_1", "--outdir", str(tmp_path), env={"HOME": str(tmp_path)})
    assert done.returncode == ExitCode.USAGE and "not valid YAML" in done.stderr


def test_traceback_only_on_request(tmp_path):
    done = run_finkdl("download", "t", "--outdir", str(tmp_path), "--timeout", "1", "--traceback",
                      servers="127.0.0.1:9", group="g")
    assert "Traceback" in done.stderr


def test_fink_datatransfer_flags_work_unchanged(broker, topic_factory, group_id, tmp_path):
    topic = topic_factory(1500, partitions=3)
    _creds(tmp_path, broker.servers, group_id)
    cmd = [str(BIN / "fink_datatransfer"), "-topic", topic, "-outdir", str(tmp_path / "out"),
           "-partitionby", "finkclass", "-batchsize", "100", "-nconsumers", "2", "-maxtimeout", "2",
           "-survey", "ztf", "-outformat", "parquet", "--dump_schemas"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "out")) == 1500
    assert (tmp_path / "out" / "_finkdl" / "schema.avsc").exists()
    again = subprocess.run(cmd + ["--restart_from_beginning"], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert again.returncode == 0 and len(pd.read_parquet(tmp_path / "out")) == 1500


def test_finkdl_transfer_takes_fink_client_12_s_flags(broker, topic_factory, group_id, tmp_path):
    topic = topic_factory(1200, partitions=3)
    _creds(tmp_path, broker.servers, group_id)
    cmd = ["transfer", "-survey", "ztf", "-topic", topic, "-outdir", str(tmp_path / "out"),
           "-outformat", "parquet", "-partitionby", "finkclass", "-limit", "1000", "-batchsize", "100",
           "-nconsumers", "2", "-maxtimeout", "2", "-number_partitions", "10", "--dump_schemas"]
    env = {"HOME": str(tmp_path)}
    done = run_finkdl(*cmd, env=env)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "out")) == 1000
    assert (tmp_path / "out" / "_finkdl" / "schema.avsc").exists()
    again = run_finkdl("transfer", "-survey", "ztf", "-topic", topic, "-outdir", str(tmp_path / "out"),
                       "-partitionby", "finkclass", "-maxtimeout", "2", "--restart_from_beginning",
                       "--verbose", env=env)
    assert again.returncode == 0, again.stderr
    assert len(pd.read_parquet(tmp_path / "out")) == 1200
    assert "-survey" in run_finkdl("transfer", "-h").stdout  # -h, as finkctl takes it
    missing = run_finkdl("transfer", "-topic", topic, env=env)
    assert missing.returncode == ExitCode.USAGE and "-survey" in missing.stderr


def test_fink_datatransfer_answers_minus_h_as_fink_client_does():
    done = subprocess.run([str(BIN / "fink_datatransfer"), "-h"], capture_output=True, text=True)
    assert done.returncode == 0 and "-partitionby" in done.stdout and "-maxtimeout" in done.stdout


def test_a_run_with_nothing_left_says_so_and_how_to_start_again(topic_factory, finkdl, tmp_path):
    topic = topic_factory(300, partitions=2)
    assert finkdl(topic, tmp_path / "a").returncode == 0
    again = finkdl(topic, tmp_path / "b")
    assert again.returncode == 0
    assert "has already read every alert of" in again.stderr
    assert "--from-beginning" in again.stderr and "--group-id" in again.stderr
    same = finkdl(topic, tmp_path / "a", "--from-beginning")
    assert "already holds every alert" in same.stderr


def test_partitioning_by_time_without_the_survey_s_time_column_names_the_time_like_ones(
        broker, topic_factory, finkdl, tmp_path):
    from finkdl.local.generator import elasticc_schema, alerts
    topic = topic_factory(0, partitions=1, schema=elasticc_schema(), records=list(alerts(5, survey="elasticc")))
    done = finkdl(topic, tmp_path, "--partition-by", "time", "--survey", "lsst")
    assert done.returncode == ExitCode.TOPIC
    assert "'diaSource.midpointMjdTai'" in done.stderr and "does not have" in done.stderr
    assert "diaSource.midPointTai" in done.stderr and "check --survey" not in done.stderr
    assert finkdl(topic, tmp_path, "--partition-by", "time", "--survey", "elasticc").returncode == 0


def test_an_unknown_label_column_is_answered_with_the_survey_s_label_columns(topic_factory, finkdl, tmp_path):
    topic = topic_factory(20, partitions=1, survey="lsst")
    done = finkdl(topic, tmp_path, "--partition-by", "classId", "--survey", "lsst")
    assert done.returncode == ExitCode.USAGE and "label columns these alerts carry: tns_type_recomputed" in done.stderr


def test_offsets_title_is_one_line_whatever_the_group_name(broker, topic_factory, tmp_path):
    topic = topic_factory(10, partitions=1)
    group = "a-very-long-group-name-" + "x" * 60
    done = run_finkdl("offsets", topic, servers=broker.servers, group=group, env={"COLUMNS": "60"})
    assert done.stdout.splitlines()[0] == f"{topic}  group {group}"


def test_offsets_and_schema_commands(broker, topic_factory, finkdl, group_id, tmp_path):
    topic = topic_factory(300, partitions=2)
    before = run_finkdl("offsets", topic, servers=broker.servers, group=group_id)
    assert before.returncode == 0 and "300" in before.stdout
    assert finkdl(topic, tmp_path / "out").returncode == 0
    after = run_finkdl("offsets", topic, servers=broker.servers, group=group_id)
    assert after.stdout.splitlines()[-1].split()[-1] == "0"  # no lag left
    out = tmp_path / "schema.json"
    assert run_finkdl("schema", topic, "-o", str(out), servers=broker.servers).returncode == 0
    assert '"candidate"' in out.read_text()


def test_register_writes_a_private_fink_client_file(tmp_path):
    done = run_finkdl("register", "--username", "astro", "--group-id", "g", "--servers", "s:1",
                      env={"HOME": str(tmp_path)}, input="s3cret\n")
    path = tmp_path / ".finkclient" / "ztf_credentials.yml"
    assert done.returncode == 0 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert "s3cret" in path.read_text() and "s3cret" not in done.stdout + done.stderr


def test_demo_runs_the_whole_job_on_its_own_broker(tmp_path):
    done = run_finkdl("demo", "--alerts", "3000", "--outdir", str(tmp_path / "demo"), "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "demo")) == 3000
    assert "pandas.read_parquet" in done.stderr


def test_fink_datatransfer_hints_spell_flags_as_fink_datatransfer_takes_them(broker, topic_factory,
                                                                             group_id, tmp_path):
    topic = topic_factory(20, partitions=1, survey="lsst")
    _creds(tmp_path, broker.servers, group_id)
    done = subprocess.run([str(BIN / "fink_datatransfer"), "-topic", topic, "-outdir", str(tmp_path / "out"),
                           "-maxtimeout", "2"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == ExitCode.TOPIC, done.stderr
    assert "-survey lsst" in done.stderr and "-partitionby" in done.stderr
    assert "--survey" not in done.stderr and "--partition-by" not in done.stderr


def test_register_for_elasticc_does_not_silently_replace_the_lsst_settings(tmp_path):
    def register(*args: str, servers: str = "lsst:1"):
        return run_finkdl("register", "--username", "astro", "--group-id", "g", "--servers", servers,
                          *args, env={"HOME": str(tmp_path)}, input="s3cret\n")
    assert register("--survey", "lsst").returncode == 0
    path = tmp_path / ".finkclient" / "lsst_credentials.yml"
    refused = register("--survey", "elasticc", servers="elasticc:1")
    assert refused.returncode == ExitCode.USAGE and "lsst:1" in path.read_text()
    assert f"{path} already holds other settings (servers)" in refused.stderr and "--force" in refused.stderr
    same = register("--survey", "elasticc")  # the same settings: nothing to replace
    assert same.returncode == 0 and "Rubin/LSST uses this file too" in same.stderr
    forced = register("--survey", "elasticc", "--force", servers="elasticc:1")
    assert forced.returncode == 0 and "elasticc:1" in path.read_text()
    assert f"credentials of {path} replaced (servers changed" in forced.stderr


def test_kafka_client_log_lines_are_shown_with_verbose_only(tmp_path):
    args = ("download", "ftransfer_ztf_x_1", "--outdir", str(tmp_path), "--timeout", "2")
    quiet = run_finkdl(*args, servers="127.0.0.1:9", group="g")
    verbose = run_finkdl(*args, "--verbose", servers="127.0.0.1:9", group="g")
    assert quiet.returncode == verbose.returncode == ExitCode.BROKER
    assert "%3|" not in quiet.stderr and "%3|" in verbose.stderr, verbose.stderr  # librdkafka's own lines
