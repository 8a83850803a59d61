"""The alerts the benchmark measures on: generated light curves and cutouts, and copies of the
real ZTF and Rubin/LSST alerts in ``../shared/data/fink`` (a checkout's sibling folder).

A real alert's copy differs from it by its id (the record's first field: its union branch
and zig-zag varint are replaced), so the LSST copies repeat the sample's 7 alerts: their
columns compress better than a night's alerts would. The ZTF copies are the demo's
(finkdl.local.replicas): each object's detections become alerts with their own histories.
"""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import fastavro

from finkdl.avrobin import long_bytes
from finkdl.local import generator
from finkdl.schema import Schema, parse_schema, without_fastavro_keys

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fink"
LSST_ALERTS = DATA / "lsst" / "alerts-lsst-2026-03.avro"
POOL = 20_000  # distinct generated alerts: fewer repeat within a file's pages (and compress)


@dataclass(frozen=True)
class Case:
    survey: str
    stage_alerts: int  # alerts bench/stages.py runs through a partition


CASES = {"lightcurve": Case("ztf", 50_000), "cutouts": Case("ztf", 5_000),
         "ztf": Case("ztf", 5_000), "lsst": Case("lsst", 700)}


def schema_and_values(case: str, n: int, seed: int = 1) -> tuple[dict, Iterator[bytes]]:
    """The writer schema (as JSON) of a case and ``n`` encoded alerts of it."""
    if case in ("lightcurve", "cutouts"):
        cutouts = case == "cutouts"
        return (generator.ztf_schema(slim=not cutouts, cutouts=cutouts),
                generator.values(n, slim=not cutouts, cutouts=cutouts, seed=seed, pool=POOL))
    if case == "ztf":
        from finkdl.local import replicas  # the demo's copies, in finkdl since the demo
        return replicas.schema(), replicas.values(n)
    return lsst_values(n)


def lsst_values(n: int) -> tuple[dict, Iterator[bytes]]:
    """Copies of the real Rubin/LSST alerts, each with a new ``diaSourceId``."""
    with open(LSST_ALERTS, "rb") as f:
        reader = fastavro.reader(f)
        schema, records = reader.writer_schema, list(reader)
    tails = []
    for record in records:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, record)
        tails.append(out.getvalue()[len(b"\x00" + long_bytes(record["diaSourceId"])):])
    base = records[0]["diaSourceId"]
    copies = (b"\x00" + long_bytes(base + i) + tail
              for i, tail in zip(range(n), itertools.cycle(tails)))
    return without_fastavro_keys(schema), copies


def prepared(case: str, n: int) -> tuple[Schema, list[bytes]]:
    """A case's schema, parsed as finkdl parses a topic's, and its values in memory."""
    schema, values = schema_and_values(case, n)
    return parse_schema(json.dumps(schema), case), list(values)
