"""Fink-like alerts for tests and the benchmark, produced to a real topic (and the producer the
demo uses for its copies of real alerts, :mod:`.replicas`).

The ZTF-like schema mirrors what Fink's Data Transfer sends (Spark-style ``["T", "null"]``
unions, a ``candidate`` record, ``prv_candidates`` as an array of records, cutout records
with bytes, maps, Fink's added values); ``slim`` gives 2-3 KB light-curve-like alerts.
"""
from __future__ import annotations

import io
import json
import random
from typing import Iterator

import fastavro
from confluent_kafka import Producer

from ..avrobin import long_bytes

FINKCLASSES = ["SN candidate", "Early SN Ia candidate", "Microlensing candidate", "Solar System MPC",
               "Kilonova candidate", "Ambiguous", "Unknown", "RRLyr", "EB*", "QSO"]
HOSTILE_LABELS = ["**", "Ae*", "a/b", "../x", "ünïcödé ★", ".", "..", "x" * 300, None]
TNSCLASSES = ["SN Ia", "SN II", "TDE", "Unknown", None]


def _opt(avro_type) -> list:
    return [avro_type, "null"]


def _record(name: str, fields: list[tuple[str, object]]) -> dict:
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}


def ztf_schema(slim: bool = False, cutouts: bool = True) -> dict:
    cand = [("jd", _opt("double")), ("fid", _opt("int")), ("pid", _opt("long")),
            ("magpsf", _opt("float")), ("sigmapsf", _opt("float")), ("ra", _opt("double")),
            ("dec", _opt("double")), ("isdiffpos", _opt("string")), ("rb", _opt("float"))]
    if not slim:
        cand += [(f"extra{i}", _opt("double")) for i in range(60)]
    prv = _record("topLevelRecord.prv_candidates", cand[:7])
    fields = [("candid", _opt("long")), ("schemavsn", _opt("string")), ("objectId", _opt("string")),
              ("candidate", _record("topLevelRecord.candidate", cand + [("candid", _opt("long"))])),
              ("prv_candidates", _opt({"type": "array", "items": _opt(prv)}))]
    if cutouts:
        for kind in ("Science", "Template", "Difference"):
            fields.append((f"cutout{kind}", _record(f"topLevelRecord.cutout{kind}",
                                                    [("fileName", _opt("string")), ("stampData", _opt("bytes"))])))
    fields += [("mangrove", _opt({"type": "map", "values": _opt("string")})),
               ("rf_snia_vs_nonia", _opt("double")), ("snn_sn_vs_all", _opt("double")),
               ("lc_features_g", _opt(_record("topLevelRecord.lc_features_g",
                                              [("mean", _opt("double")), ("amplitude", _opt("double"))]))),
               ("is_transient", _opt("boolean")), ("finkclass", _opt("string")), ("tnsclass", _opt("string"))]
    return _record("topLevelRecord", fields)


def lsst_schema() -> dict:
    src = [("diaSourceId", _opt("long")), ("visit", _opt("long")), ("midpointMjdTai", _opt("double")),
           ("ra", _opt("double")), ("dec", _opt("double")), ("psfFlux", _opt("float")), ("band", _opt("string"))]
    return _record("topLevelRecord", [
        ("diaSourceId", _opt("long")),
        ("diaSource", _record("topLevelRecord.diaSource", src)),
        ("prvDiaSources", _opt({"type": "array", "items": _record("topLevelRecord.prvDiaSources", src)})),
        ("cutoutDifference", _opt("bytes")),
        ("clf", _opt(_record("topLevelRecord.clf", [("cats_class", _opt("int"))]))),
        ("tns_type_recomputed", _opt("string")),
    ])


def elasticc_schema() -> dict:
    """ELASTiCC alerts as Fink served them (the simulated LSST schema lsst.v4_1, with Fink's
    classId): no top-level diaSourceId, the id is alertId."""
    src = [("diaSourceId", _opt("long")), ("ccdVisitId", _opt("long")), ("diaObjectId", _opt("long")),
           ("midPointTai", _opt("double")), ("filterName", _opt("string")), ("ra", _opt("double")),
           ("decl", _opt("double")), ("psFlux", _opt("float")), ("psFluxErr", _opt("float")),
           ("snr", _opt("float"))]
    obj = [("diaObjectId", _opt("long")), ("ra", _opt("double")), ("decl", _opt("double")),
           ("hostgal_zphot", _opt("float"))]
    return _record("topLevelRecord", [
        ("alertId", _opt("long")),
        ("diaSource", _record("topLevelRecord.diaSource", src)),
        ("prvDiaSources", _opt({"type": "array", "items": _record("topLevelRecord.prvDiaSources", src)})),
        ("diaObject", _opt(_record("topLevelRecord.diaObject", obj))),
        ("classId", _opt("int")),
    ])


def ztf_alert(rng: random.Random, n: int, slim: bool, cutouts: bool, labels: list) -> dict:
    jd = 2460000.5 + rng.random() * 30  # a month of observations, as a typical transfer query
    cand = {"jd": jd, "fid": rng.choice([1, 2]), "pid": rng.getrandbits(40), "magpsf": 15 + rng.random() * 6,
            "sigmapsf": rng.random() / 10, "ra": rng.random() * 360, "dec": rng.random() * 180 - 90,
            "isdiffpos": rng.choice(["t", "f"]), "rb": rng.random(), "candid": 10**12 + n}
    if not slim:
        cand.update({f"extra{i}": (rng.random() if i % 7 else None) for i in range(60)})
    first7 = {k: cand[k] for k in list(cand)[:7]}
    history = [None if rng.random() < 0.05 else {**first7, "jd": jd - d - 1, "magpsf": 15 + d / 10}
               for d in range(rng.randint(40, 70) if slim else rng.randint(0, 30))]
    alert = {"candid": 10**12 + n, "schemavsn": "3.3", "objectId": f"ZTF24{n:07d}",
             "candidate": cand, "prv_candidates": history if rng.random() > 0.03 else None,
             "mangrove": {"2MASS_name": f"J{n}", "lum_dist": None} if rng.random() < 0.3 else None,
             "rf_snia_vs_nonia": rng.random(), "snn_sn_vs_all": None if rng.random() < 0.1 else rng.random(),
             "lc_features_g": {"mean": rng.random(), "amplitude": None} if rng.random() < 0.8 else None,
             "is_transient": rng.random() < 0.5, "finkclass": rng.choice(labels),
             "tnsclass": rng.choice(TNSCLASSES)}
    if cutouts:
        for kind in ("Science", "Template", "Difference"):
            alert[f"cutout{kind}"] = {"fileName": f"candid{n}_{kind}.fits.gz",
                                      "stampData": rng.randbytes(16_000)}
    return alert


def lsst_alert(rng: random.Random, n: int) -> dict:
    mjd = 60800.0 + rng.random() * 30
    src = {"diaSourceId": 5 * 10**15 + n, "visit": rng.getrandbits(30), "midpointMjdTai": mjd,
           "ra": rng.random() * 360, "dec": rng.random() * 90 - 90, "psfFlux": rng.random() * 1e4,
           "band": rng.choice("ugrizy")}
    return {"diaSourceId": src["diaSourceId"], "diaSource": src,
            "prvDiaSources": [dict(src, midpointMjdTai=mjd - d - 1) for d in range(rng.randint(0, 5))],
            "cutoutDifference": rng.randbytes(2000), "clf": {"cats_class": rng.choice([11, 12, None])},
            "tns_type_recomputed": rng.choice(TNSCLASSES)}


def elasticc_alert(rng: random.Random, n: int) -> dict:
    mjd = 60300.0 + rng.random() * 30
    obj = 10**9 + n // 3
    src = {"diaSourceId": 2 * 10**11 + n, "ccdVisitId": rng.getrandbits(30), "diaObjectId": obj,
           "midPointTai": mjd, "filterName": rng.choice("ugrizY"), "ra": rng.random() * 360,
           "decl": rng.random() * 90 - 90, "psFlux": rng.random() * 1e4, "psFluxErr": rng.random() * 100,
           "snr": rng.random() * 50}
    return {"alertId": 10**9 + n, "diaSource": src,
            "prvDiaSources": [dict(src, diaSourceId=None, midPointTai=mjd - d - 1) for d in range(rng.randint(0, 4))],
            "diaObject": None if rng.random() < 0.1 else {"diaObjectId": obj, "ra": src["ra"],
                                                          "decl": src["decl"], "hostgal_zphot": None},
            "classId": rng.choice([111, 112, 2222, 2244, None])}


def alerts(n: int, survey: str = "ztf", slim: bool = False, cutouts: bool = True,
           hostile: bool = False, seed: int = 0, start: int = 0) -> Iterator[dict]:
    rng = random.Random(seed)
    labels = FINKCLASSES + (HOSTILE_LABELS if hostile else [None])
    for i in range(start, start + n):
        if survey == "lsst":
            yield lsst_alert(rng, i)
        elif survey == "elasticc":
            yield elasticc_alert(rng, i)
        else:
            yield ztf_alert(rng, i, slim, cutouts, labels)


def values(n: int, survey: str = "ztf", slim: bool = False, cutouts: bool = True,
           hostile: bool = False, seed: int = 0, pool: int = 997) -> Iterator[bytes]:
    """Encoded alerts at producer speed: a pool of encoded alerts, each copy given a new id.

    The alert id (``candid``/``diaSourceId``) is the record's first field, so a copy is the
    union branch and zig-zag varint of its new id followed by the pooled record's other bytes.
    """
    schema = fastavro.parse_schema(lsst_schema() if survey == "lsst" else ztf_schema(slim, cutouts))
    id_field = schema["fields"][0]["name"]
    tails = []
    for record in alerts(min(n, pool), survey, slim, cutouts, hostile, seed):
        head = b"\x00" + long_bytes(record[id_field])
        encoded = encode(schema, record)
        tails.append(encoded[len(head):])
    base = 5 * 10**15 if survey == "lsst" else 10**12
    for i in range(n):
        yield b"\x00" + long_bytes(base + i) + tails[i % len(tails)]


def encode(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def produce(servers: str, topic: str, schema: dict, records, partitions: int,
            with_schema_topic: bool = True, key_schema: bool = False, first: int = 0) -> int:
    """Produce records round-robin over partitions, and the schema as Fink does."""
    parsed = fastavro.parse_schema(schema)
    return produce_values(servers, topic, schema, (encode(parsed, r) for r in records), partitions,
                          with_schema_topic, key_schema, first)


def produce_values(servers: str, topic: str, schema: dict, encoded, partitions: int,
                   with_schema_topic: bool = True, key_schema: bool = False, first: int = 0) -> int:
    """Produce encoded alerts round-robin over partitions, and the schema as Fink does."""
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 50, "batch.size": 1_000_000,
                         "message.max.bytes": 16_000_000, "queue.buffering.max.kbytes": 512_000,
                         "log_level": 3})
    text = json.dumps(schema)
    if with_schema_topic:
        producer.produce(f"{topic}_schema", key=text.encode(), value=b"")
    count = 0
    for i, value in enumerate(encoded):
        while True:
            try:
                producer.produce(topic, value=value, key=text.encode() if key_schema else None,
                                 partition=(first + i) % partitions)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    if producer.flush(60) != 0:
        raise RuntimeError("could not deliver every generated alert")
    return count
