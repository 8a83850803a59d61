"""What a folder holds, summed in one pass over the few columns it needs.

Rows, files and topics come from file names and Parquet footers; labels and nights from one
scan of the observation time and the label columns only (a label that names the folders
costs nothing to read). A folder may hold alerts of several surveys (ELASTiCC beside
Rubin/LSST: one merged schema): each row's night is that of whichever survey's observation
time it has. With ``plot=True`` the same pass also reads positions and
brightness, kept as histograms, so memory does not grow with the folder.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field as dataclass_field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..partitioning import TIME_KEYS
from ..surveys import SURVEYS, Survey
from .alerts import Alerts, parent, scan
from .photometry import magnitudes, photometry

Progress = Callable[[int, int], None]  # rows done, rows in all

VERSION_COLUMNS = ("schemavsn", "lsst_schema_version")  # ZTF's, Rubin/LSST's
SKY_BINS = (180, 90)  # ra by dec, 2° by 2°
MAG_RANGE, MAG_BINS = (8.0, 32.0), 240  # 0.1 mag
SCATTER_MAX = 20_000  # up to this many alerts the sky map shows each one
SHOWN_VALUES = 15  # values listed per label; the rest summed in one line


@dataclass
class Sky:
    """Where the alerts are: counts on a grid of (ra, dec), and each alert of a small folder."""

    counts: np.ndarray = dataclass_field(default_factory=lambda: np.zeros(SKY_BINS))
    points: list[pa.Table] = dataclass_field(default_factory=list)  # ra, dec, labels

    def add(self, ra: np.ndarray, dec: np.ndarray) -> None:
        cells = binned(ra, (0.0, 360.0), SKY_BINS[0]) * SKY_BINS[1] + binned(dec, (-90.0, 90.0), SKY_BINS[1])
        self.counts += np.bincount(cells[cells >= 0], minlength=SKY_BINS[0] * SKY_BINS[1]
                                   ).reshape(SKY_BINS)


@dataclass
class Summary:
    outdir: str
    survey: Survey
    keys: tuple[str, ...]
    rows: int
    files: int
    bytes: int
    topics: dict[str, int]  # rows per topic
    columns: list[tuple[str, str]]  # name, short type
    nights: Counter = dataclass_field(default_factory=Counter)  # Unix day (None: no time) → rows
    by_night: dict[str, Counter] = dataclass_field(default_factory=dict)  # label → (day, value) → rows
    sky: Sky | None = None
    magnitudes: dict[str, np.ndarray] = dataclass_field(default_factory=dict)  # band → per 0.1 mag
    brightness: str | None = None  # what ``magnitudes`` counts
    ignored: int = 0  # files of the folder that are not finkdl's, left aside
    times: dict[str, float] = dataclass_field(default_factory=dict)  # scan column → day offset
    surveys: dict[str, str] = dataclass_field(default_factory=dict)  # scan column → survey title
    timed: Counter = dataclass_field(default_factory=Counter)  # scan column → rows with a time there
    coded: frozenset[str] = frozenset()  # label columns whose values are codes without names

    @property
    def labels(self) -> dict[str, Counter]:
        """Rows per value of each label column."""
        out = {}
        for column, counts in self.by_night.items():
            out[column] = Counter()
            for (_night, value), n in counts.items():
                out[column][value] += n
        return out

    @property
    def class_column(self) -> str | None:
        """The label that tells alerts apart best: the one the folders are named by, else the
        first of the survey's labels with more than one value."""
        labels = {c: v for c, v in self.labels.items() if c not in VERSION_COLUMNS}
        for column in self.keys:
            if column in labels:
                return column
        varied = [c for c, counts in labels.items() if len([v for v in counts if v is not None]) > 1]
        return (varied or list(labels) or [None])[0]

    @property
    def night_range(self) -> tuple[int, int] | None:
        days = [d for d in self.nights if d is not None]
        return (min(days), max(days)) if days else None


def label_columns(alerts: Alerts) -> list[str]:
    """Columns counted per value: the folders' labels, the survey's, the schema version."""
    wanted = [k for k in alerts.keys if k not in TIME_KEYS] + list(alerts.survey.label_columns) \
        + list(VERSION_COLUMNS)
    return [c for c in dict.fromkeys(wanted) if alerts.has(c)]


def time_columns(alerts: Alerts) -> dict[str, Survey]:
    """The observation time of every survey whose alerts the folder may hold (its id and
    time columns are there), the folder's own survey first: a dotted path → its survey."""
    found = {alerts.survey.time_column: alerts.survey}
    for survey in SURVEYS.values():
        if alerts.has(survey.id_column) and alerts.has(survey.time_column):
            found.setdefault(survey.time_column, survey)
    return found


def coded_labels(alerts: Alerts, labels: list[str]) -> frozenset[str]:
    """Label columns of integers (``clf.cats_class``): the alerts carry codes, not names."""
    return frozenset(c for c in labels if c not in VERSION_COLUMNS
                     and pa.types.is_integer(alerts.type_of(c)))


def label_title(summary: Summary, column: str) -> str:
    """A label column as figures and tables name it: ``clf.cats_class (code)`` when its
    values are codes the survey's alerts give no names for."""
    return f"{column} (code)" if column in summary.coded else column


def summarize(alerts: Alerts, plot: bool = False, on_progress: Progress | None = None) -> Summary:
    """Count everything ``finkdl show`` prints (and, with ``plot``, what it draws)."""
    summary = _from_footers(alerts)
    survey, labels = alerts.survey, label_columns(alerts)
    summary.coded = coded_labels(alerts, labels)
    times = {f"time{i or ''}": (path, s) for i, (path, s) in enumerate(time_columns(alerts).items())}
    summary.times = {name: s.day_offset for name, (_path, s) in times.items()}
    summary.surveys = {name: s.title for name, (_path, s) in times.items()}
    columns = {**{name: path for name, (path, _s) in times.items()}, **{c: c for c in labels}}
    record = parent(survey.time_column)
    phot = photometry(survey)
    wanted = {"ra": f"{record}.ra", "dec": f"{record}.dec", "band": survey.band_column}
    if phot is not None:
        wanted["value"] = f"{record}.{phot.value}"
        summary.brightness = f"AB magnitude of {phot.value}" if phot.is_flux else phot.value
    if plot:
        columns.update({name: path for name, path in wanted.items() if alerts.has(path)})
        summary.sky = Sky() if "ra" in columns and "dec" in columns else None
    summary.by_night = {c: Counter() for c in labels}
    done = 0
    for _file, batch in scan(alerts, columns):
        add_batch(summary, batch, keep_points=summary.rows <= SCATTER_MAX)
        done += batch.num_rows
        if on_progress is not None:
            on_progress(done, summary.rows)
    return summary


def add_batch(summary: Summary, batch: pa.Table, keep_points: bool = False) -> None:
    """Add one batch of the scan (columns ``time``, the labels, and those a plot needs)."""
    offsets = summary.times or {"time": summary.survey.day_offset}
    unix_days = pc.coalesce(*[pc.floor(pc.subtract(pc.cast(batch[name], pa.float64()), offset))
                              for name, offset in offsets.items()])
    table = pa.table({"night": pc.cast(unix_days, pa.int64()), **{
        c: batch[c] for c in summary.by_night}})
    summary.nights.update(_counts(table, ["night"]))
    for name in offsets:
        summary.timed[name] += len(batch[name]) - batch[name].null_count
    for column, counts in summary.by_night.items():
        counts.update(_counts(table, ["night", column]))
    names = batch.column_names
    if summary.sky is not None:
        ra, dec = (batch[c].to_numpy(zero_copy_only=False) for c in ("ra", "dec"))
        summary.sky.add(ra, dec)
        if keep_points:
            summary.sky.points.append(pa.table({c: batch[c] for c in ["ra", "dec", *summary.by_night]}))
    if "band" in names and "value" in names:
        phot = photometry(summary.survey)
        values = magnitudes(batch["value"].to_numpy(zero_copy_only=False).astype(float), phot)
        bands = pc.dictionary_encode(batch["band"].combine_chunks())
        codes = bands.indices.to_numpy(zero_copy_only=False)
        for i, code in enumerate(bands.dictionary.to_pylist()):
            if code is None:
                continue
            name = phot.bands.get(code, str(code))
            bins = binned(values[codes == i], MAG_RANGE, MAG_BINS)
            histogram = np.bincount(bins[bins >= 0], minlength=MAG_BINS)
            summary.magnitudes[name] = summary.magnitudes.get(name, 0) + histogram


def binned(values: np.ndarray, bounds: tuple[float, float], bins: int) -> np.ndarray:
    """Index of each value's bin among ``bins`` equal ones; -1 outside or NaN (np.histogram
    does the same with a binary search: 4 times slower on millions of values)."""
    low, high = bounds
    with np.errstate(invalid="ignore"):
        index = np.floor((values - low) * (bins / (high - low)))
        inside = (index >= 0) & (index < bins) | (values == high)
    return np.where(inside, np.minimum(index, bins - 1), -1).astype(np.int64)


def _counts(table: pa.Table, keys: list[str]) -> Counter:
    """Rows per combination of ``keys`` (nulls a value of their own)."""
    grouped = table.group_by(keys).aggregate([([], "count_all")])
    values = [grouped[k].to_pylist() for k in keys]
    tuples = zip(*values) if len(keys) > 1 else values[0]
    return Counter(dict(zip(tuples, grouped["count_all"].to_pylist())))


def _from_footers(alerts: Alerts) -> Summary:
    """Rows, files, bytes and rows per topic, without reading any data."""
    topics: Counter = Counter()
    size = 0
    parquet = [f for f in alerts.files if f.range.ext == "parquet"]
    for f in parquet:
        with alerts.storage.open(f.path) as fo:
            topics[f.range.topic] += pq.read_metadata(fo).num_rows
            size += fo.seek(0, 2)
    schema = alerts.dataset.schema
    columns = [(f.name, short_type(f.type) + (", from folder names" if f.name in alerts.keys else ""))
               for f in schema]
    return Summary(alerts.outdir, alerts.survey, alerts.keys, sum(topics.values()), len(parquet),
                   size, dict(topics), columns, ignored=alerts.ignored)


def short_type(kind: pa.DataType) -> str:
    """A column's type in a few words: nested records by their size, not their fields."""
    if pa.types.is_struct(kind):
        return f"record of {kind.num_fields} fields"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list of {short_type(kind.value_type)}"
    if pa.types.is_map(kind):
        return f"map of {short_type(kind.item_type)}"
    return str(kind)


@dataclass(frozen=True)
class Section:
    """One table of the summary, as text, for the terminal and the HTML page alike."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]


def day(unix_day: int) -> str:
    return str(np.datetime64(int(unix_day), "D"))


def sections(summary: Summary) -> list[Section]:
    """The summary as tables: the folder, its topics, rows per label, its columns."""
    nights = summary.night_range
    count = len([d for d in summary.nights if d is not None])
    when = "no observation times" if nights is None else (
        f"{day(nights[0])} to {day(nights[1])} "
        f"({count} night{'s' if count != 1 else ''} with alerts, UTC dates)")
    folder = [("survey", surveys_line(summary)), ("alerts", f"{summary.rows:,}"),
              ("nights", when), ("files", f"{summary.files:,} ({summary.bytes / 1e6:,.1f} MB)"),
              ("partitioned by", "/".join(summary.keys) or "nothing")]
    if summary.ignored:
        folder.append(("other files", f"{summary.ignored:,} left aside (not finkdl's: "
                                      "only its part-… files are read)"))
    out = [Section(str(summary.outdir), ("", ""), folder),
           Section("topics", ("topic", "alerts"),
                   [(t, f"{n:,}") for t, n in sorted(summary.topics.items())])]
    for column, counts in summary.labels.items():
        title = label_title(summary, column)
        out.append(Section(f"alerts per {title}", (title, "alerts", "share"),
                           value_rows(counts, summary.rows)))
    out.append(Section(f"{len(summary.columns)} columns", ("column", "type"), summary.columns))
    return out


def surveys_line(summary: Summary) -> str:
    """The folder's survey; with alerts of several (ELASTiCC beside Rubin/LSST), each with
    its alerts (those that have its observation time)."""
    held = [(summary.surveys[name], summary.timed[name]) for name in summary.surveys
            if summary.timed[name]]
    if len(held) < 2:
        return summary.survey.title
    return ", ".join(f"{title} ({n:,} alerts)" for title, n in held)


def value_rows(counts: Counter, total: int, shown: int = SHOWN_VALUES) -> list[tuple[str, ...]]:
    """Most frequent values first, the rest summed in one row; null shown as (null)."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    rows = [("(null)" if v is None else str(v), f"{n:,}", f"{100 * n / max(total, 1):.1f}%")
            for v, n in ranked[:shown]]
    rest = ranked[shown:]
    if rest:
        n = sum(c for _, c in rest)
        rows.append((f"… {len(rest)} more values", f"{n:,}", f"{100 * n / max(total, 1):.1f}%"))
    return rows
