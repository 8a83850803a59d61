"""Demo alerts copied from real ZTF alerts shipped with finkdl (``data/``; see its NOTICE).

Each real alert is one object and its 30-day history (``prv_candidates``: detections and
upper limits). A copy of an object gives one alert per detection, each with the history
before it, as Fink's successive alerts of one object do: the object's alerts draw its real
light curve. The first copy of each object is the real one, names and ids as ZTF gave them
(``ZTF26aaaldio``, the README's example, opens every demo topic); copy ``k`` is seen ``k``
nights earlier, under a new name, and its ids and file names carry that night as ZTF's do
(a candid is its night number × 10¹⁵ + …, a pid the night × 10⁹ + …): every id stays unique,
since no two ids of the sample end alike (tests/test_demo_alerts.py checks it).

Only an object's latest alert carries its stamps (40 KB of the 45-65 KB of a full packet);
its earlier alerts have null stamps. Every object can be shown with ``finkdl cutouts`` and
``finkdl lightcurve`` while a 50,000-alert demo stays near 600 MB.

fastavro takes about 3 ms to encode one alert of this schema, minutes for a demo, so copies
are not encoded: each real alert is cut once into encoded pieces, leaving out the fields a
copy changes (ids, names, times), and a copy is those pieces joined with these fields' bytes.
"""
from __future__ import annotations

import functools
import io
import json
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Callable, Iterator

import fastavro

from ..avrobin import long_bytes
from ..errors import ConfigError

DATA = resources.files(__package__) / "data"
ALERTS_FILE = "alerts-ztf-2026-03-22.avro"
SCHEMA_FILE = "schema-ztf-ftransfer-2026-03-23.json"
MAX_NIGHTS_BACK = 3000  # the sample's oldest night is ZTF's night 3340: ids stay positive
FIRST_NAME = 3 * 26**5  # copies' names start at ZTFyyadaaaaa, past the sample's (ZTFyyaa…, ZTFyyac…)
CANDID_NIGHT, PID_NIGHT = 10**15, 10**9  # what one night adds to a ZTF candid, a pid
STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # Fink's `timestamp`, the observation time (UTC), when read
NULL = b"\x02"  # the second branch of a ["type", "null"] union
NO_STAMPS = (NULL + NULL) * len(STAMPS)  # {fileName: null, stampData: null} three times

# The pieces rely on this order of the schema's fields (checked when the sample is cut).
TOP_HEAD = ["candid", "schemavsn", "publisher", "objectId", "candidate", "prv_candidates", *STAMPS]
TOP_TAIL = ["timestamp", "year", "month", "day", "finkclass", "tnsclass"]
# The first fields of a candidate and of a history entry, written here: they hold the night.
HEAD = [("jd", "double"), ("fid", "int"), ("pid", "long"), ("diffmaglim", "float"),
        ("pdiffimfilename", "string"), ("programpi", "string"), ("programid", "int"), ("candid", "long")]


@dataclass(frozen=True)
class Head:
    """The first fields (``HEAD``) of a candidate or a history entry: those holding its night."""

    jd: float
    pid: int | None
    candid: int | None
    file_name: str | None  # pdiffimfilename, as a template of its night (see _night_template)
    night: datetime | None
    fid: bytes  # fid, encoded
    diffmaglim: bytes  # diffmaglim, encoded
    program: bytes  # programpi, programid, encoded

    def moved(self, nights: int) -> bytes:
        """These fields encoded, ``nights`` later."""
        file_name = self.file_name
        if self.night is not None:
            file_name = file_name.format(*_night_parts(self.night + timedelta(days=nights)))
        return b"".join([
            _double(self.jd + nights), self.fid, _long(_moved_id(self.pid, nights, PID_NIGHT)),
            self.diffmaglim, _string(file_name), self.program,
            _long(_moved_id(self.candid, nights, CANDID_NIGHT))])


@dataclass(frozen=True)
class Source:
    """A real alert cut into encoded pieces. Its detections are the history entries with a
    candid, then its own candidate; a detection's candidate has the entry's values where
    the entry has the field (all of ``HEAD`` among them), the alert's own elsewhere."""

    object_id: str
    meta: bytes  # schemavsn, publisher
    heads: tuple[Head, ...]  # those of the history entries, in time order, then the candidate's
    entries: tuple[bytes, ...]  # the history entries' fields after HEAD, encoded
    detections: tuple[tuple[int, bytes], ...]  # per detection: its place in heads, its candidate's fields after HEAD
    stamps: tuple[tuple[str, bytes], ...]  # per cutout: its fileName, its encoded stampData
    fink: bytes  # the fields between the stamps and `timestamp`: Fink's added values
    timestamp: datetime  # the alert's `timestamp`
    labels: bytes  # finkclass, tnsclass


def schema() -> dict:
    """The Avro schema Fink published for the sample's transfer: the demo topic's schema."""
    return json.loads((DATA / SCHEMA_FILE).read_text())


def sample() -> list[dict]:
    """The real alerts, as fastavro reads them."""
    with (DATA / ALERTS_FILE).open("rb") as f:
        return list(fastavro.reader(f))


def example_object() -> str:
    """The object whose real alerts open every demo topic, stamps and history included."""
    with (DATA / ALERTS_FILE).open("rb") as f:
        return next(iter(fastavro.reader(f)))["objectId"]


def max_alerts() -> int:
    return (MAX_NIGHTS_BACK + 1) * sum(len(s.detections) for s in _sources())


def values(n: int) -> Iterator[bytes]:
    """``n`` encoded demo alerts: copies of the sample's objects, object after object, each
    object's alerts in time order. An object cut short by ``n`` keeps its latest alerts, the
    one with stamps among them."""
    if n > max_alerts():
        raise ConfigError(f"the demo makes at most {max_alerts():,} alerts", hint="ask for fewer with --alerts")
    return _values(n, _sources())


def _values(n: int, sources: tuple[Source, ...]) -> Iterator[bytes]:
    left = n
    for copy in range(MAX_NIGHTS_BACK + 1):
        for index, source in enumerate(sources):
            if left <= 0:
                return
            count = min(left, len(source.detections))
            name = source.object_id if copy == 0 else _name(source, -copy, (copy - 1) * len(sources) + index)
            yield from copy_alerts(source, name, -copy, count)
            left -= count


def copy_alerts(source: Source, name: str, nights: int, count: int) -> Iterator[bytes]:
    """The latest ``count`` alerts of ``source``, as object ``name``, ``nights`` later."""
    heads = [head.moved(nights) for head in source.heads]
    entries = [b"\x00" + head + rest for head, rest in zip(heads, source.entries)]
    own = source.heads[-1]
    for place, candidate in source.detections[-count:]:
        head = source.heads[place]
        when = source.timestamp + timedelta(days=nights + head.jd - own.jd)
        yield b"".join([
            _long(_moved_id(head.candid, nights, CANDID_NIGHT)), source.meta, _string(name),
            heads[place], candidate, _array(entries[:place]),
            _stamps(source, nights) if head is own else NO_STAMPS, source.fink,
            _string(_fink_time(when)), _long(when.year), _long(when.month), _long(when.day),
            source.labels])


def _name(source: Source, nights: int, serial: int) -> str:
    """A ZTF name: the year of the first detection, then seven letters (``serial``)."""
    first_jd = source.heads[source.detections[0][0]].jd
    first = source.timestamp + timedelta(days=nights + first_jd - source.heads[-1].jd)
    letters = ""
    n = FIRST_NAME + serial
    for _ in range(7):
        n, digit = divmod(n, 26)
        letters = chr(ord("a") + digit) + letters
    return f"ZTF{first.year % 100:02d}{letters}"


def _fink_time(when: datetime) -> str:
    """A time as Fink's `timestamp` (Spark's text of a timestamp): no trailing zeros."""
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{when.microsecond:06d}".rstrip("0") if when.microsecond else text


def _moved_id(value: int | None, nights: int, night: int) -> int | None:
    return value + nights * night if value is not None else None


def _stamps(source: Source, nights: int) -> bytes:
    """The source's three stamps, their file names (``candid…_pid…_…``) given the copy's ids."""
    own = source.heads[-1]
    renames = [(str(own.candid), str(_moved_id(own.candid, nights, CANDID_NIGHT))),
               (f"pid{own.pid}", f"pid{_moved_id(own.pid, nights, PID_NIGHT)}")]
    out = []
    for name, data in source.stamps:
        for old, new in renames if nights and name else ():
            name = name.replace(old, new)
        out.append(_string(name) + data)
    return b"".join(out)


@functools.cache
def _sources() -> tuple[Source, ...]:
    cut = _cutter(schema())
    return tuple(cut(alert) for alert in sample())


def _cutter(avro_schema: dict) -> Callable[[dict], Source]:
    """A function cutting alerts of ``avro_schema`` into a :class:`Source`."""
    top = _check_layout(avro_schema)
    candidate = _type_of(avro_schema, "candidate")
    entry = _type_of(avro_schema, "prv_candidates")[0]["items"][0]
    meta = _encoder(avro_schema, "schemavsn", "publisher")
    candidate_rest = _encoder(candidate, candidate["fields"][len(HEAD)]["name"], None)
    entry_rest = _encoder(entry, entry["fields"][len(HEAD)]["name"], None)
    stamp_data = fastavro.parse_schema(_type_of(avro_schema, STAMPS[0])["fields"][1]["type"])
    fink = _encoder(avro_schema, top[len(TOP_HEAD)], top[-len(TOP_TAIL) - 1])
    labels = _encoder(avro_schema, "finkclass", "tnsclass")

    def head(record: dict) -> Head:
        file_name, night = _night_template(record["pdiffimfilename"])
        return Head(record["jd"], record["pid"], record["candid"], file_name, night, _long(record["fid"]),
                    _float(record["diffmaglim"]), _string(record["programpi"]) + _long(record["programid"]))

    def cut(alert: dict) -> Source:
        own = alert["candidate"]
        history = alert["prv_candidates"] or []
        detections = [(i, candidate_rest({**own, **e})) for i, e in enumerate(history) if e["candid"] is not None]
        detections.append((len(history), candidate_rest(own)))
        return Source(
            object_id=alert["objectId"], meta=meta(alert), heads=tuple(head(r) for r in [*history, own]),
            entries=tuple(entry_rest(e) for e in history), detections=tuple(detections),
            stamps=tuple((alert[k]["fileName"], _encode(stamp_data, alert[k]["stampData"])) for k in STAMPS),
            fink=fink(alert), timestamp=datetime.strptime(alert["timestamp"], TIME_FORMAT),
            labels=labels(alert))

    return cut


def _night_template(name: str | None) -> tuple[str | None, datetime | None]:
    """A ZTF file name (``/ztf/archive/sci/2026/0223/389861/ztf_20260223389861_…``) as a
    format string of its night, and the night; ``(name, None)`` for a name without one."""
    found = re.search(r"ztf_(\d{8})", name or "")
    if found is None:
        return name, None
    escaped = name.replace("{", "{{").replace("}", "}}")
    template = re.sub(r"(?<=ztf_)\d{8}", "{0}{1}", re.sub(r"/\d{4}/\d{4}/", "/{0}/{1}/", escaped))
    return template, datetime.strptime(found.group(1), "%Y%m%d")


@functools.lru_cache(maxsize=4096)
def _night_parts(night: datetime) -> tuple[str, str]:
    """A night's year and month-day as ZTF's file names write them."""
    return f"{night.year:04d}", f"{night.month:02d}{night.day:02d}"


def _check_layout(avro_schema: dict) -> list[str]:
    """The top-level field names, after checking that the pieces fit the schema."""
    top = [f["name"] for f in avro_schema["fields"]]
    records = [_type_of(avro_schema, "candidate"), _type_of(avro_schema, "prv_candidates")[0]["items"][0]]
    heads = [[(f["name"], f["type"][0]) for f in record["fields"][:len(HEAD)]] for record in records]
    if top[:len(TOP_HEAD)] != TOP_HEAD or top[-len(TOP_TAIL):] != TOP_TAIL or heads != [HEAD, HEAD]:
        raise ValueError("the demo's sample schema does not have the field order of Fink's ZTF schema")
    return top


def _type_of(record_schema: dict, name: str):
    return next(f["type"] for f in record_schema["fields"] if f["name"] == name)


def _encoder(record_schema: dict, first: str, last: str | None) -> Callable[[dict], bytes]:
    """Encodes fields ``first`` to ``last`` (to the end if None) of records of
    ``record_schema``: exactly the bytes these fields take in the whole record, since Avro
    writes a record's fields one after another with nothing between them."""
    names = [f["name"] for f in record_schema["fields"]]
    stop = names.index(last) + 1 if last is not None else len(names)
    parsed = fastavro.parse_schema({"type": "record", "name": record_schema["name"],
                                    "fields": record_schema["fields"][names.index(first):stop]})
    return lambda record: _encode(parsed, record)


def _encode(parsed, value) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, value)
    return out.getvalue()


# Values of ["type", "null"] unions: branch 0 and the value, or branch 1.
def _long(n: int | None) -> bytes:
    return b"\x00" + long_bytes(n) if n is not None else NULL


def _double(x: float | None) -> bytes:
    return b"\x00" + struct.pack("<d", x) if x is not None else NULL


def _float(x: float | None) -> bytes:
    return b"\x00" + struct.pack("<f", x) if x is not None else NULL


def _string(text: str | None) -> bytes:
    if text is None:
        return NULL
    data = text.encode()
    return b"\x00" + long_bytes(len(data)) + data


def _array(items: list[bytes]) -> bytes:
    """A non-null array of encoded items: one block, then the end marker."""
    return b"\x00" + long_bytes(len(items)) + b"".join(items) + b"\x00" if items else b"\x00\x00"
