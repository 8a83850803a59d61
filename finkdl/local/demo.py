"""The embedded default: a local broker holding a topic of real ZTF alerts, copied.

The alerts are :mod:`.replicas` of the real alerts shipped with finkdl: full packets with
histories (detections and upper limits), the latest alert of each object with its stamps.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from . import generator, replicas
from .broker import LocalBroker

DEMO_TOPIC = "ftransfer_ztf_2026-11-28_demo"


@contextlib.contextmanager
def demo_topic(alerts: int, partitions: int = 4) -> Iterator[tuple[LocalBroker, str]]:
    """Start a broker, fill a topic (and its schema topic), yield both, stop the broker."""
    values = replicas.values(alerts)  # a count it cannot make is refused before the broker starts
    broker = LocalBroker()
    try:
        broker.start()
        broker.create_topic(DEMO_TOPIC, partitions)
        generator.produce_values(broker.servers, DEMO_TOPIC, replicas.schema(), values, partitions)
        yield broker, DEMO_TOPIC
    finally:
        broker.remove()


def example_object() -> str:
    """An object every demo topic holds, with stamps and a light curve of many points and
    upper limits: the one to try ``finkdl lightcurve`` and ``finkdl cutouts`` on."""
    return replicas.example_object()
