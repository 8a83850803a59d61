"""finkdl demo's alerts: the real ZTF alerts shipped in the package, copied (finkdl.local.replicas).

The pure tests decode what the demo would produce; the last one runs ``finkdl demo`` and then
``cutouts`` and ``lightcurve`` on its folder, as the demo's closing lines suggest.
"""
from __future__ import annotations

import configparser
import fnmatch
import io
import itertools
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import fastavro
import pytest

from finkdl.errors import ConfigError
from finkdl.local import demo, replicas
from finkdl.schema import without_fastavro_keys
from conftest import run_finkdl

ROOT = Path(__file__).resolve().parents[1]
ZTF_NIGHT_ZERO = 2457754.5  # JD of 2017-01-01 00:00 UTC: a ZTF candid is its night number × 10¹⁵ + …
PARSED = fastavro.parse_schema(replicas.schema())
STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def _decode(value: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(value), PARSED, None)


def _encode(alert: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED, alert)
    return out.getvalue()


def night_date(jd: float) -> str:
    """The UTC date of a Julian date, as ZTF's file names write it."""
    return (datetime(2017, 1, 1) + timedelta(days=jd - ZTF_NIGHT_ZERO)).strftime("%Y%m%d")


def _per_round() -> int:
    """Alerts of one copy of every sample object."""
    return sum(len(s.detections) for s in replicas._sources())


def test_the_package_carries_the_sample_its_schema_and_their_notice():
    data = ROOT / "finkdl" / "local" / "data"
    notice = (data / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "fink-client" in notice
    assert (data / replicas.ALERTS_FILE).stat().st_size < 1_500_000
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["finkdl.local"].split(",")]
    shipped = {f"data/{p.name}" for p in data.iterdir() if not p.name.startswith(".")}  # not .gitattributes
    assert {f for f in shipped if any(fnmatch.fnmatch(f, p) for p in patterns)} == shipped
    sample = replicas.sample()
    assert len(sample) >= 10 and all(a["cutoutScience"]["stampData"] for a in sample)


def test_the_demo_topic_holds_the_real_alerts_byte_for_byte():
    values = list(replicas.values(_per_round()))
    ends = itertools.accumulate(len(s.detections) for s in replicas._sources())
    assert [values[end - 1] for end in ends] == [_encode(a) for a in replicas.sample()]


def test_the_example_object_opens_every_demo_and_is_the_readme_s():
    assert demo.example_object() == replicas.example_object() == "ZTF26aaaldio"
    [first] = [_decode(v) for v in replicas.values(1)]
    assert first["objectId"] == "ZTF26aaaldio" and first["candid"] == 3367418864115015002
    assert first["cutoutScience"]["stampData"].startswith(b"\x1f\x8b")
    readme = (ROOT / "README.md").read_text()
    assert "lightcurve alerts/ ZTF26aaaldio" in readme and "--id 3367418864115015002" in readme


def test_copies_have_unique_ids_that_carry_their_night_as_ztf_s_do():
    alerts = [_decode(v) for v in replicas.values(3 * _per_round() + 7)]
    ids = [a["candid"] for a in alerts]
    assert len(set(ids)) == len(ids)
    assert len({a["objectId"] for a in alerts}) == 3 * len(replicas.sample()) + 1
    for alert in alerts:
        candidate = alert["candidate"]
        assert alert["candid"] == candidate["candid"] and alert["objectId"][:3] == "ZTF"
        for measure in [candidate, *alert["prv_candidates"]]:
            night = int(measure["jd"] - ZTF_NIGHT_ZERO)
            assert measure["pid"] // 10**9 == night
            assert measure["candid"] is None or measure["candid"] // 10**15 == night
            assert f"ztf_{night_date(measure['jd'])}" in measure["pdiffimfilename"]
        assert (alert["year"], alert["month"], alert["day"]) == tuple(map(int, alert["timestamp"][:10].split("-")))
        assert alert["timestamp"][:10].replace("-", "") == night_date(candidate["jd"])


def test_an_object_s_alerts_are_its_detections_each_with_the_history_before_it():
    objects = defaultdict(list)
    for alert in map(_decode, replicas.values(2 * _per_round())):
        objects[alert["objectId"]].append(alert)
    assert len(objects) == 2 * len(replicas.sample())
    limits = [e for alerts in objects.values() for e in alerts[-1]["prv_candidates"] if e["candid"] is None]
    assert len(limits) > 100 and all(e["diffmaglim"] and e["magpsf"] is None for e in limits)
    for alerts in objects.values():
        times = [a["candidate"]["jd"] for a in alerts]
        assert times == sorted(times)
        latest = alerts[-1]
        assert all(latest[k]["stampData"] for k in STAMPS)
        assert all(a[k] == {"fileName": None, "stampData": None} for a in alerts[:-1] for k in STAMPS)
        assert str(latest["candid"]) in latest["cutoutScience"]["fileName"]
        detected = [e for e in latest["prv_candidates"] if e["candid"] is not None]
        assert [e["candid"] for e in detected] == [a["candid"] for a in alerts[:-1]]  # earlier alerts
        for alert in alerts:
            history = alert["prv_candidates"]
            assert history == latest["prv_candidates"][:len(history)]
            assert all(e["jd"] < alert["candidate"]["jd"] for e in history)


def test_copies_spread_over_nights_and_keep_the_real_light_curves():
    real, rounds = replicas.sample()[0], 40
    first = len(replicas._sources()[0].detections)  # the first object's alerts open each round
    latest = {k * _per_round() + first - 1 for k in range(rounds)}
    copies = [_decode(v) for i, v in enumerate(replicas.values(rounds * _per_round())) if i in latest]
    shifts = [round(c["candidate"]["jd"] - real["candidate"]["jd"], 6) for c in copies]
    assert shifts == [-k for k in range(rounds)]  # copy k is seen k nights earlier
    for copy, shift in zip(copies, shifts):
        assert copy["candidate"]["magpsf"] == real["candidate"]["magpsf"]
        assert [round(e["jd"] - shift, 6) for e in copy["prv_candidates"]] == \
            [round(e["jd"], 6) for e in real["prv_candidates"]]
        assert [e["magpsf"] for e in copy["prv_candidates"]] == [e["magpsf"] for e in real["prv_candidates"]]
        assert [e["diffmaglim"] for e in copy["prv_candidates"]] == [e["diffmaglim"] for e in real["prv_candidates"]]


def test_a_demo_cut_short_keeps_each_object_s_latest_alert_the_one_with_stamps():
    first_object = len(replicas._sources()[0].detections)
    for n in (1, 5, first_object + 3):
        alerts = [_decode(v) for v in replicas.values(n)]
        assert len(alerts) == n
        last_of_each = {a["objectId"]: a for a in alerts}
        assert all(a["cutoutScience"]["stampData"] for a in last_of_each.values())


def test_no_two_ids_of_the_sample_end_alike_so_no_two_copies_share_an_id():
    ids = [m["candid"] for a in replicas.sample() for m in [a["candidate"], *a["prv_candidates"]]
           if m["candid"] is not None]
    assert len({i % 10**15 for i in ids}) == len(ids)
    assert min(i // 10**15 for i in ids) > replicas.MAX_NIGHTS_BACK  # ids stay positive


def test_a_demo_larger_than_the_copies_allow_is_refused_before_anything_starts():
    with pytest.raises(ConfigError, match="at most"):
        replicas.values(replicas.max_alerts() + 1)


@pytest.mark.broker
def test_the_demo_s_folder_has_cutouts_and_light_curves_of_its_example_object(tmp_path):
    out = tmp_path / "demo"
    done = run_finkdl("demo", "--alerts", "400", "--outdir", str(out), "--progress", "plain", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    name = demo.example_object()
    cut = run_finkdl("cutouts", str(out), "--object", name, "--out", str(tmp_path / "stamps"), cwd=tmp_path)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert "3 stamps of 1 alert written" in cut.stderr and "the other 52 of the 53 alerts" in cut.stderr
    assert sorted(p.name for p in (tmp_path / "stamps").iterdir()) == [
        f"{name}_3367418864115015002_{kind}.fits" for kind in ("difference", "science", "template")]
    curve = run_finkdl("lightcurve", str(out), name, "--out", str(tmp_path / "curve.png"), cwd=tmp_path)
    assert curve.returncode == 0, curve.stdout + curve.stderr
    assert "upper limit" in curve.stdout and "from 53 alerts" in curve.stdout
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_the_published_schema_is_printed_without_fastavros_own_keys():
    """Fink publishes the schema fastavro parsed (``__fastavro_parsed``, and ``__named_schemas``
    repeating every record): ``finkdl schema`` prints the Avro schema alone, the same fields."""
    published = replicas.schema()
    assert "__named_schemas" in published
    plain = without_fastavro_keys(published)
    assert "__" not in json.dumps(list(_keys(plain)))
    assert [f["name"] for f in plain["fields"]] == [f["name"] for f in published["fields"]]
    fastavro.parse_schema(plain)


def _keys(avro):
    if isinstance(avro, dict):
        for k, v in avro.items():
            yield k
            yield from _keys(v)
    elif isinstance(avro, list):
        for v in avro:
            yield from _keys(v)
