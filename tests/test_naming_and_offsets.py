import threading
import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from finkdl.naming import file_name, parse_file_name, temporary_name, temporary_range
from finkdl.resume import Resume, resume
from finkdl.kafka import _answered, unanswered
from finkdl.storage import DataFile


def _file(first, last, n, label="a"):
    name = file_name(0, first, last, n, "parquet")
    return DataFile(Path(label) / name, parse_file_name(name))


def test_file_name_round_trips_partition_and_offsets():
    parsed = parse_file_name(file_name(7, 1000, 1999, 3, "parquet"))
    assert (parsed.partition, parsed.first, parsed.last, parsed.files, parsed.ext) == (7, 1000, 1999, 3, "parquet")


def test_temporary_names_are_not_taken_for_data_files():
    name = file_name(1, 0, 9, 1, "parquet")
    assert parse_file_name(temporary_name(name, "123")) is None
    assert temporary_name(name, "1").startswith(".")


def test_a_crash_s_temporary_file_tells_its_partition():
    assert temporary_range(temporary_name(file_name(7, 0, 9, 1, "parquet"), "42")).partition == 7
    assert temporary_range("notes.tmp") is None


def test_resume_keeps_complete_uncommitted_ranges_skips_them_and_commits_past_them():
    files = [_file(0, 99, 1), _file(100, 199, 2, "a"), _file(100, 199, 2, "b")]
    assert resume(files, low=0, committed_offset=100) == Resume(200, [], commit=True)


def test_resume_removes_incomplete_range_left_by_a_crash():
    files = [_file(0, 99, 1), _file(100, 199, 2, "a")]
    assert resume(files, low=0, committed_offset=100) == Resume(100, [files[1].path], commit=False)


def test_resume_from_beginning_skips_what_the_folder_holds():
    files = [_file(0, 99, 1), _file(100, 199, 1)]
    assert resume(files, 0, 200, from_beginning=True) == Resume(200, [], commit=False)
    assert resume(files, 0, None, from_beginning=True) == Resume(200, [], commit=True)


def test_resume_with_nothing_on_disk_starts_at_the_committed_offset():
    assert resume([], 0, 42) == Resume(42, [], commit=False)


def test_resume_of_a_partition_never_committed_starts_at_its_first_offset():
    assert resume([], 10, None) == Resume(10, [], commit=False)


def test_resume_after_a_topic_s_first_offsets_expired_starts_at_the_first_kept():
    assert resume([], 500, 42) == Resume(500, [], commit=False)


def test_a_commit_the_broker_leaves_unanswered_is_given_up_and_marked_unanswered():
    release = threading.Event()
    started = time.monotonic()
    error = _answered(lambda: release.wait() and [], answer_s=0.2)  # a commit waiting on no answer
    release.set()
    assert time.monotonic() - started < 2
    assert error.code() == KafkaError._TIMED_OUT and unanswered(error)  # not asked again


def test_a_commit_s_answer_is_its_first_partition_error_or_none():
    refused = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)
    assert _answered(lambda: [TopicPartition("t", 0, 5)], answer_s=5) is None

    def raises():
        raise KafkaException(refused)
    error = _answered(raises, answer_s=5)
    assert error.code() == KafkaError.REBALANCE_IN_PROGRESS and not unanswered(error)
    timed_out = KafkaError(KafkaError._TIMED_OUT)  # librdkafka's own timeout: answered, retried
    assert not unanswered(timed_out)
