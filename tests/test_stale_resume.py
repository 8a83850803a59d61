"""A folder or group of an earlier topic of the same name is never resumed into silently.

Against the real broker: a topic deleted and created again with fewer and with more alerts,
a group offset past the topic's end; each stops with exit code 10 and writes nothing, and
--start-over sets the old files aside and downloads the new topic exactly.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition

from finkdl.errors import ExitCode
from finkdl.naming import file_name, parse_file_name
from finkdl.resume import SET_ASIDE, Stale, aside_path, stale
from finkdl.storage import DataFile
from finkdl.verify import verify

from conftest import make_topic, recreate_topic, run_finkdl

PARTITIONS = 2


def _file(first: int, last: int) -> DataFile:
    name = file_name(0, first, last, 1, "parquet", "t")
    return DataFile(Path("/out") / name, parse_file_name(name))


# --- pure decisions -----------------------------------------------------------------------
def test_files_past_the_topic_s_end_are_stale():
    found = stale(0, [_file(0, 499)], high=250, committed_offset=None, topic_id=None, file_topic_ids=set())
    assert found is not None and "up to 499" in found.why and "at offset 249" in found.why


def test_files_of_another_topic_id_are_stale_even_within_the_topic_s_end():
    found = stale(0, [_file(0, 99)], high=1000, committed_offset=100, topic_id="new", file_topic_ids={"old"})
    assert found == Stale(0, found.why) and "earlier topic" in found.why and "old" in found.why


def test_a_group_offset_past_the_end_is_stale_unless_the_group_s_offsets_are_not_used():
    assert stale(3, [], high=10, committed_offset=11, topic_id="x", file_topic_ids=set()) is not None
    assert stale(3, [], high=10, committed_offset=11, topic_id="x", file_topic_ids=set(),
                 from_beginning=True) is None


def test_a_partition_that_continues_its_files_is_not_stale():
    assert stale(0, [_file(0, 99)], high=100, committed_offset=100, topic_id="x", file_topic_ids={"x"}) is None
    assert stale(0, [_file(0, 99)], high=500, committed_offset=None, topic_id=None, file_topic_ids=set()) is None


def test_no_file_is_ever_named_with_a_first_offset_after_its_last():
    with pytest.raises(ValueError):
        file_name(0, 500, 249, 1, "parquet", "t")


def test_a_file_set_aside_keeps_its_sub_folder_and_leaves_readers_globs():
    root = Path("/out")
    moved = aside_path(root, root / "finkclass=SN" / "part-t-P000-000000000000-000000000009-of1.parquet",
                       root / SET_ASIDE / "stamp")
    assert moved == root / SET_ASIDE / "stamp" / "finkclass=SN" / "set-aside-part-t-P000-000000000000-000000000009-of1.parquet"
    assert parse_file_name(moved.name) is None and not moved.name.startswith("part-")


# --- against the real broker ---------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.broker
@pytest.mark.parametrize("second", [300, 900], ids=["fewer", "more"])
def test_a_topic_recreated_under_its_name_stops_the_rerun_then_start_over_is_exact(
        second, broker, finkdl, tmp_path):
    topic = make_topic(broker, 600, partitions=PARTITIONS)
    assert finkdl(topic, tmp_path).returncode == 0
    recreate_topic(broker, topic, PARTITIONS, second)
    before = _snapshot(tmp_path)

    refused = finkdl(topic, tmp_path)
    assert refused.returncode == ExitCode.STALE, refused.stderr
    assert "cannot be resumed" in refused.stderr and "--start-over" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _snapshot(tmp_path) == before  # nothing written, nothing removed

    done = finkdl(topic, tmp_path, "--start-over")
    assert done.returncode == 0, done.stderr
    assert "set aside" in done.stderr
    candids = pd.read_parquet(tmp_path, columns=["candid"])["candid"].tolist()
    assert len(candids) == second == len(set(candids))
    assert verify(tmp_path).ok
    aside = list((tmp_path / SET_ASIDE).rglob("set-aside-part-*.parquet"))
    assert sum(pd.read_parquet(p).shape[0] for p in aside) == 600  # the old download, kept whole
    assert finkdl(topic, tmp_path).returncode == 0  # and it resumes as usual from there on


@pytest.mark.broker
def test_a_group_offset_past_the_topic_s_end_stops_the_run_until_started_over(
        broker, finkdl, group_id, tmp_path):
    topic = make_topic(broker, 200, partitions=PARTITIONS)
    consumer = Consumer({"bootstrap.servers": broker.servers, "group.id": group_id})
    consumer.commit(offsets=[TopicPartition(topic, p, 5000) for p in range(PARTITIONS)], asynchronous=False)
    consumer.close()

    refused = finkdl(topic, tmp_path)
    assert refused.returncode == ExitCode.STALE, refused.stderr
    assert "committed offset 5,000" in refused.stderr
    assert "read partitions 0, 1 again" in refused.stderr and "files" not in refused.stderr.split("hint:")[1]
    assert not list(tmp_path.rglob("*.parquet"))

    done = finkdl(topic, tmp_path, "--start-over")
    assert done.returncode == 0, done.stderr
    assert "read again from their first offset" in done.stderr and not (tmp_path / SET_ASIDE).exists()
    assert len(pd.read_parquet(tmp_path, columns=["candid"])) == 200 and verify(tmp_path).ok


def test_verify_reports_a_file_named_first_after_last(tmp_path):
    good = tmp_path / file_name(0, 0, 9, 1, "parquet", "t")
    bad = tmp_path / "part-t-P000-000000000500-000000000249-of1.parquet"
    pd.DataFrame({"candid": list(range(10))}).to_parquet(good)
    pd.DataFrame({"candid": list(range(100, 110))}).to_parquet(bad)
    report = verify(tmp_path)
    assert not report.ok
    assert any("REVERSED" in text and bad.name in text for text in report.topics["t"][0].problems)


def test_verify_of_a_folder_finkdl_never_wrote_to_is_an_error_not_an_ok(tmp_path):
    done = run_finkdl("verify", str(tmp_path))
    assert done.returncode == ExitCode.USAGE and "verify: OK" not in done.stdout
    assert "holds no alerts downloaded by finkdl" in done.stderr


@pytest.mark.broker
def test_a_second_demo_with_fewer_alerts_starts_over_and_says_so(tmp_path):
    outdir = tmp_path / "demo"
    first = run_finkdl("demo", "--alerts", "2000", "--outdir", str(outdir), "--progress", "plain")
    assert first.returncode == 0, first.stderr
    second = run_finkdl("demo", "--alerts", "1000", "--outdir", str(outdir), "--progress", "plain")
    assert second.returncode == 0, second.stderr
    assert "started over" in second.stderr and "set aside" in second.stderr
    assert "%6|" not in first.stderr + second.stderr  # librdkafka's own log lines stay out
    assert len(pd.read_parquet(outdir, columns=["candid"])) == 1000
    assert verify(outdir).ok
