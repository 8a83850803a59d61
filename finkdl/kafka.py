"""The edge with Kafka: consumer settings, topic lookups, and errors made readable.

librdkafka retries forever on an unreachable server or a refused password; here every
lookup has a deadline and a failure becomes one ``BrokerError``/``AuthError``/``TopicError``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from .config import Connection
from .errors import AuthError, BrokerError, ConfigError, TopicError

_AUTH_CODES = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
               KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}
# Partition EOF tells a worker it is caught up; the rest are tuned so a worker's memory
# stays bounded whatever the message size (librdkafka prefetches up to these amounts).
CONSUMER_DEFAULTS = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": True,
    "queued.max.messages.kbytes": 8192,
    "fetch.max.bytes": 8 * 1024 * 1024,
    "max.partition.fetch.bytes": 4 * 1024 * 1024,
    "fetch.queue.backoff.ms": 10,  # default 1000: a full queue would stall fetching for a second
    "session.timeout.ms": 30000,
    "heartbeat.interval.ms": 500,  # a forming group settles in about a second
    "max.poll.interval.ms": 600000,
    # A client connects to its bootstrap server, then again to the broker that server names,
    # and librdkafka spaces such connections by half this, at least ~10 ms (default 100: every
    # new consumer waited 50 ms for its second one; the plan, 0.13 s, took 0.04 s with 10).
    "reconnect.backoff.ms": 10,
}


def consumer_config(conn: Connection, **overrides: object) -> dict:
    return {**conn.kafka_config(), "group.id": conn.group_id, **CONSUMER_DEFAULTS, **overrides}


class _ErrorTrap:
    """Collects librdkafka's background errors, to fail fast on auth and unreachable servers."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError) -> None:
        self.errors.append(err)

    def take(self) -> list[KafkaError]:
        """The errors collected since the last call (a long outage repeats them every second)."""
        errors, self.errors = self.errors, []
        return errors

    def raise_auth(self, conn: Connection) -> None:
        for err in self.errors:
            if err.code() in _AUTH_CODES:
                raise AuthError(f"the servers {conn.servers} refused the credentials "
                                f"of user {conn.username!r}: {err.str()}",
                                hint=f"check the username and password (from {conn.source})")


def open_consumer(conn: Connection, **overrides: object) -> tuple[Consumer, _ErrorTrap]:
    trap = _ErrorTrap()
    try:
        return Consumer(consumer_config(conn, error_cb=trap, **overrides)), trap
    except KafkaException as exc:
        raise ConfigError(f"invalid Kafka settings: {exc.args[0].str()}",
                          hint=f"check the connection settings (from {conn.source})") from exc


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    partitions: list[int]


def describe_topic(consumer: Consumer, trap: _ErrorTrap, conn: Connection, topic: str,
                   timeout: float) -> TopicInfo:
    """The topic's partitions; clear errors for unreachable servers, auth and missing topics."""
    deadline = time.monotonic() + timeout
    while True:
        trap.raise_auth(conn)
        try:
            meta = consumer.list_topics(topic, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            consumer.poll(0)  # librdkafka calls error_cb only from poll(): collect auth errors
            trap.raise_auth(conn)
            if time.monotonic() < deadline:
                continue
            raise BrokerError(f"cannot reach the Kafka servers {conn.servers} "
                              f"within {timeout:.0f} s ({exc.args[0].str()})",
                              hint=f"check --servers (taken from {conn.source}) and your network") from exc
        trap.raise_auth(conn)
        info = meta.topics.get(topic)
        if info is None or info.error is not None and info.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise TopicError(f"topic {topic!r} does not exist on {conn.servers}",
                             hint="the transfer job may not have started yet, or matched no "
                                  "alert; check the name in the Fink Data Transfer page")
        if info.error is not None:
            if info.error.code() in _AUTH_CODES:
                raise AuthError(f"not allowed to read topic {topic!r}: {info.error.str()}",
                                hint=f"check the username (from {conn.source})")
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise TopicError(f"topic {topic!r} is not readable: {info.error.str()}")
        return TopicInfo(topic, sorted(info.partitions))


def topic_id(conn: Connection, topic: str, timeout: float) -> str | None:
    """The topic's Kafka id, which tells it from an earlier topic of the same name; None where
    the servers do not tell it (then only offsets tell a recreated topic apart)."""
    admin = AdminClient(conn.kafka_config())
    try:
        found = admin.describe_topics(TopicCollection([topic]), request_timeout=max(1.0, timeout))
        uuid = found[topic].result(timeout=max(1.0, timeout) + 1).topic_id
    except Exception:  # old servers, missing Describe rights: offsets still tell most cases
        return None
    value = str(uuid) if uuid is not None else ""
    return value if value and value.strip("A=") else None  # Kafka's "no id": all zeros


def group_members(conn: Connection, timeout: float) -> int | None:
    """How many consumers the group has now (other finkdl processes of a download, before this
    one's workers join); None where the servers do not tell."""
    admin = AdminClient(conn.kafka_config())
    try:
        found = admin.describe_consumer_groups([conn.group_id], request_timeout=max(1.0, timeout))
        return len(found[conn.group_id].result(timeout=max(1.0, timeout) + 1).members)
    except Exception:  # old servers, missing Describe rights on the group
        return None


def watermarks(consumer: Consumer, topic: str, partition: int, timeout: float = 10.0) -> tuple[int, int]:
    return _patiently(lambda t: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=t),
                      timeout, f"cannot read the offsets of {topic}[{partition}]")


def committed(consumer: Consumer, topic: str, partitions: list[int], timeout: float = 10.0) -> dict[int, int | None]:
    """The group's committed offset per partition (None when never committed)."""
    tps = _patiently(lambda t: consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=t),
                     timeout, f"cannot read the committed offsets of {topic}")
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}


def _patiently(call, timeout: float, what: str):
    """Retry a lookup while the broker says "try again" (e.g. a group coordinator starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(max(0.5, deadline - time.monotonic()))
        except KafkaException as exc:
            err = exc.args[0]
            if not retriable(err) or time.monotonic() >= deadline:
                raise BrokerError(f"{what}: {err.str()}") from exc
            time.sleep(0.2)


# Errors that say "try again": librdkafka marks some retriable, not these.
_RETRIABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
              KafkaError._WAIT_COORD, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
              KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.REQUEST_TIMED_OUT}
# Errors of a commit made while the group hands its partitions out again.
_REBALANCING = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST}


def retriable(error: KafkaError) -> bool:
    """The broker will likely answer if asked again (restarting, electing a coordinator)."""
    return error.retriable() or error.code() in _RETRIABLE


def rebalancing(error: KafkaError) -> bool:
    """The group took or is taking the partition away: its next owner reads it again."""
    return error.code() in _REBALANCING


# librdkafka's synchronous commit has no deadline of its own, and after a broker restart it can
# wait for an answer that never comes (confluent-kafka-python#1801): a worker would hang there.
COMMIT_ANSWER_S = 30.0


def commit_offset(consumer: Consumer, topic: str, partition: int, next_offset: int,
                  patience_s: float = 60.0, sleep=time.sleep, clock=time.monotonic,
                  waiting: Callable[[str], None] = lambda reason: None,
                  answer_s: float = COMMIT_ANSWER_S) -> KafkaError | None:
    """Commit synchronously; the broker's refusal, None when it took the commit.

    A broker that is restarting is waited for (up to ``patience_s``, telling ``waiting`` why
    each time): the files are already durable, so waiting only delays the commit. A commit left
    unanswered for ``answer_s`` gives up with ``_TIMED_OUT``, whose outcome is unknown
    (``unanswered``): it may still land.
    """
    deadline = clock() + patience_s
    tp = TopicPartition(topic, partition, next_offset)
    while True:
        error = _answered(lambda: consumer.commit(offsets=[tp], asynchronous=False), answer_s)
        if error is None or unanswered(error) or not retriable(error) or clock() >= deadline:
            return error
        waiting(f"waiting to commit partition {partition}: {error.str()}")
        sleep(1.0)


def unanswered(error: KafkaError) -> bool:
    """A commit given up while the broker had not answered: it may land later, or never."""
    return error.code() == KafkaError._TIMED_OUT and error.str().startswith(_UNANSWERED)


_UNANSWERED = "no answer from the broker"


def _answered(commit: Callable[[], list | None], answer_s: float) -> KafkaError | None:
    """Run one synchronous commit in a thread, and stop waiting for it after ``answer_s``."""
    outcome: list[KafkaError | None] = []

    def call() -> None:
        try:
            result = commit()
            outcome.append(next((r.error for r in result or [] if r.error), None))
        except KafkaException as exc:
            outcome.append(exc.args[0])

    thread = threading.Thread(target=call, name="finkdl-commit", daemon=True)
    thread.start()
    thread.join(answer_s)
    if outcome:
        return outcome[0]
    return KafkaError(KafkaError._TIMED_OUT, f"{_UNANSWERED} within {answer_s:.0f} s")


def close_within(consumer: Consumer, seconds: float = 10.0) -> None:
    """Leave the group, giving up after ``seconds``: closing waits on the same broker answers as
    a commit does. A process whose consumer did not close in time exits all the same."""
    thread = threading.Thread(target=consumer.close, name="finkdl-close", daemon=True)
    thread.start()
    thread.join(seconds)


def read_all(conn: Connection, topic: str, timeout: float) -> list:
    """Every message of a small topic (the schema topic), from the beginning, without a group."""
    consumer, trap = open_consumer(conn, **{"group.id": "finkdl-schema-reader",
                                            "enable.partition.eof": True})
    try:
        info = describe_topic(consumer, trap, conn, topic, timeout)
        ends, left = {}, 0
        for p in info.partitions:
            low, high = watermarks(consumer, topic, p, timeout)
            if high > low:
                ends[p], left = high, left + high - low
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        messages, deadline = [], time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            # Asking for exactly what is left returns as soon as it arrived.
            for msg in consumer.consume(max(1, min(left - len(messages), 1000)), timeout=0.5):
                if msg.error():
                    continue
                messages.append(msg)
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
        return messages
    finally:
        consumer.close()
