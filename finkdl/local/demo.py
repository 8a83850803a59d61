"""The embedded default: a local broker holding a topic of generated Fink-like alerts."""
from __future__ import annotations

import contextlib
from typing import Iterator

from . import generator
from .broker import LocalBroker

DEMO_TOPIC = "ftransfer_ztf_2026-11-28_demo"


@contextlib.contextmanager
def demo_topic(alerts: int, partitions: int = 4, cutouts: bool = False) -> Iterator[tuple[LocalBroker, str]]:
    """Start a broker, fill a topic (and its schema topic), yield both, stop the broker."""
    broker = LocalBroker()
    try:
        broker.start()
        broker.create_topic(DEMO_TOPIC, partitions)
        schema = generator.ztf_schema(slim=not cutouts, cutouts=cutouts)
        generator.produce_values(broker.servers, DEMO_TOPIC, schema,
                                 generator.values(alerts, slim=not cutouts, cutouts=cutouts), partitions)
        yield broker, DEMO_TOPIC
    finally:
        broker.remove()
