"""Alert schema versions for the tests: version 1 is the generator's slim ZTF schema; version 2
edits it as Fink's schema changed over the years; a third conflicts with the first."""
from __future__ import annotations

import copy

from finkdl.local import generator

V2_START = 100_000  # version 2 alerts' candids start at 10**12 + V2_START


def v1_schema() -> dict:
    return generator.ztf_schema(slim=True, cutouts=False)


def _field(record: dict, name: str) -> dict:
    return next(f for f in record["fields"] if f["name"] == name)


def _record(field: dict) -> dict:
    """The record type of a field, through its ``[T, "null"]`` union and array."""
    kind = field["type"]
    kind = kind[0] if isinstance(kind, list) else kind
    kind = kind.get("items", kind)
    return kind[0] if isinstance(kind, list) else kind


def v2_schema() -> dict:
    """A field added (anomaly_score) and one removed (rf_snia_vs_nonia), an int made long
    (candidate.fid), a float made double (candidate.magpsf), a record gaining a field
    (lc_features_g.std), an array of records losing one (prv_candidates.pid)."""
    schema = copy.deepcopy(v1_schema())
    fields = schema["fields"]
    fields.remove(_field(schema, "rf_snia_vs_nonia"))
    fields.insert(len(fields) - 2, {"name": "anomaly_score", "type": ["double", "null"]})
    candidate = _record(_field(schema, "candidate"))
    _field(candidate, "fid")["type"] = ["long", "null"]
    _field(candidate, "magpsf")["type"] = ["double", "null"]
    _record(_field(schema, "lc_features_g"))["fields"].append({"name": "std", "type": ["double", "null"]})
    history = _record(_field(schema, "prv_candidates"))
    history["fields"].remove(_field(history, "pid"))
    return schema


def v1_alerts(n: int) -> list[dict]:
    return list(generator.alerts(n, slim=True, cutouts=False))


def v2_alerts(n: int) -> list[dict]:
    alerts = []
    for i, alert in enumerate(generator.alerts(n, slim=True, cutouts=False, seed=2, start=V2_START)):
        del alert["rf_snia_vs_nonia"]
        alert["anomaly_score"] = i / 10
        if alert["lc_features_g"] is not None:
            alert["lc_features_g"]["std"] = 0.5
        for point in alert["prv_candidates"] or []:
            if point is not None:
                del point["pid"]
        alerts.append(alert)
    return alerts


def conflicting_schema() -> dict:
    """Version 1 with candidate.isdiffpos, a string, become a double."""
    schema = copy.deepcopy(v1_schema())
    _field(_record(_field(schema, "candidate")), "isdiffpos")["type"] = ["double", "null"]
    return schema


def conflicting_alerts(n: int) -> list[dict]:
    alerts = list(generator.alerts(n, slim=True, cutouts=False, seed=3, start=2 * V2_START))
    for alert in alerts:
        alert["candidate"]["isdiffpos"] = 1.0
    return alerts
