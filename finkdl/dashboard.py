"""Rendering of a run's progress: a rich dashboard for terminals, plain or JSON lines for
batch jobs. Pure functions of a ``RunView`` (finkdl.progress), which holds the numbers and
the rates; nothing here talks to Kafka or the workers.

Bytes are named by where they are: *received* is what came from Kafka (message values),
*written* is what the files on disk hold; the two differ by Parquet's compression."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, JustifyMethod, OverflowMethod, RenderResult
from rich.measure import Measurement
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .progress import RunView
from .stats import PartitionStats, WorkerSnapshot

LOW_DISK_BYTES = 2 * 1024**3
BAR_WIDTH = 50
MIN_BAR_WIDTH = 20


def human_bytes(n: float) -> str:
    """Decimal units (1 MB = 10⁶ B), as the rates and the final summary count them."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render(view: RunView, free_disk: int | None = None) -> Dashboard:
    """The whole dashboard as one rich renderable; it lays itself out at the width of the
    console that draws it (rich's Live included)."""
    return Dashboard(view, free_disk)


@dataclass
class Dashboard:
    """The dashboard of one ``RunView``. As the console narrows, the per-partition table
    loses in turn the committed offset (offset and end then share a column), the CPU and
    memory of each worker (then on a line of their own), the MB/s and files, the pid and the
    state; offset/end, lag and rate stay. Numbers are never cut, and a unit never leaves its
    number: lines break between whole items."""

    view: RunView
    free_disk: int | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        view = self.view
        workers = sorted(view.workers.values(), key=lambda w: w.worker)
        yield _flow(_header_chunks(view), width)
        yield _flow(_place_chunks(view), width)
        yield _bar(view, width)
        table, columns = _table_for(view, console, options)
        yield table
        if view.workers and "RSS" not in columns:
            yield _flow([_chunk("workers:")] + [_worker_chunk(w) for w in workers], width)
        for w in workers:
            if trouble := view.trouble(w):
                yield Text(f"pid {w.pid}: {trouble}", style="yellow")
        yield _flow(_foot_chunks(view, self.free_disk), width)
        if view.stopping:
            yield Text(view.stopping, style="yellow")


Chunk = tuple[list[str], str]  # words (a number with its unit is one word), style


def _chunk(*words: str, style: str = "") -> Chunk:
    return list(words), style


def _header_chunks(view: RunView) -> list[Chunk]:
    cfg = view.config
    return [_chunk("finkdl", cfg.topic, style="bold"), _chunk("group", cfg.connection.group_id),
            _chunk("broker", cfg.connection.servers)]


def _place_chunks(view: RunView) -> list[Chunk]:
    return [_chunk("→", str(view.config.outdir)),
            _chunk("elapsed", human_time(view.now - view.started)), _chunk("ETA", human_time(view.eta_s))]


def _received_chunks(view: RunView) -> list[Chunk]:
    if view.to_fetch == 0:
        return [_chunk("nothing to fetch")]
    return [_chunk("received", f"{view.received:,}/{view.to_fetch:,} alerts",
                   f"({human_bytes(view.received_bytes)})"),
            _chunk(f"{view.rate.per_s:,.0f} alerts/s"), _chunk(f"{view.rate.bytes_per_s / 1e6:.1f} MB/s")]


def _foot_chunks(view: RunView, free_disk: int | None) -> list[Chunk]:
    chunks = [_chunk("written", f"{view.total('written'):,} alerts,",
                     human_bytes(view.total("written_bytes")), "in", f"{view.total('files')} files,",
                     f"{view.landed.bytes_per_s / 1e6:.1f} MB/s")]
    waiting = view.total("landing_bytes")
    if waiting:  # flushes being written out (uploaded, to object storage) and committed
        chunks.append(_chunk("landing", human_bytes(waiting), "received"))
    if free_disk is not None:
        low = free_disk < LOW_DISK_BYTES
        chunks.append(_chunk("free disk", human_bytes(free_disk), style="bold red" if low else ""))
        if low:
            chunks.append(_chunk(*"(low: the run stops cleanly if the disk fills)".split(), style="red"))
    return chunks


def _worker_chunk(w: WorkerSnapshot) -> Chunk:
    state = "" if w.partitions else f" ({w.state})"  # a worker without partitions has no row
    return _chunk(f"pid {w.pid}{state}:", "CPU", f"{w.cpu_percent:.0f}%,", "RSS", human_bytes(w.rss))


def _flow(chunks: list[Chunk], width: int) -> Text:
    """Chunks two spaces apart on lines of at most ``width`` cells. A line breaks between
    chunks, or between the words of a chunk longer than a line; never inside a word, so a
    number keeps its unit."""
    out = Text()
    used = 0

    def put(sep: str, word: str, style: str) -> None:
        nonlocal used
        if used and used + len(sep) + len(word) > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(sep)
            used += len(sep)
        out.append(word, style=style)
        used += len(word)

    for words, style in chunks:
        if used and used + 2 + len(" ".join(words)) > width:
            out.append("\n")
            used = 0
        for i, word in enumerate(words):
            put(" " if i else "  ", word, style)
    return out


def _bar(view: RunView, width: int) -> Table:
    """The progress bar with the received totals at its right, or under it when they would
    leave it too short."""
    text = _flow(_received_chunks(view), width)
    growth = len(f"{view.to_fetch:,}") - len(f"{view.received:,}")  # room kept for the count to
    bar_width = min(BAR_WIDTH, width - text.cell_len - 1 - growth)  # grow, so the bar stays put
    completed = view.received if view.to_fetch else 1
    grid = Table.grid(padding=(0, 1))
    if "\n" not in text.plain and bar_width >= MIN_BAR_WIDTH:
        grid.add_column(width=bar_width, no_wrap=True)
        grid.add_column(width=text.cell_len, no_wrap=True)
        grid.add_row(ProgressBar(total=max(view.to_fetch, 1), completed=completed, width=bar_width), text)
    else:
        grid.add_row(ProgressBar(total=max(view.to_fetch, 1), completed=completed,
                                 width=min(BAR_WIDTH, width)))
        grid.add_row(text)
    return grid


# Per-partition table. Each column: header -> justify, cell of (view, worker, partition stats).
Cell = Callable[[RunView, WorkerSnapshot, PartitionStats], "str | Text"]
COLUMNS: dict[str, tuple[JustifyMethod, Cell]] = {
    "part": ("right", lambda v, w, st: str(st.partition)),
    "pid": ("right", lambda v, w, st: str(w.pid)),
    "state": ("left", lambda v, w, st: _state(st.state)),
    "committed": ("right", lambda v, w, st: _num(st.committed)),
    "offset": ("right", lambda v, w, st: _num(st.position)),
    "end": ("right", lambda v, w, st: _num(st.high)),
    "offset/end": ("right", lambda v, w, st: f"{_num(st.position)}/{_num(st.high)}"),
    "lag": ("right", lambda v, w, st: _num(st.lag)),
    "alerts/s": ("right", lambda v, w, st: f"{v.partition_rate(st.partition).per_s:,.0f}"),
    "MB/s": ("right", lambda v, w, st: f"{v.partition_rate(st.partition).bytes_per_s / 1e6:.1f}"),
    "files": ("right", lambda v, w, st: str(st.files)),
    "CPU %": ("right", lambda v, w, st: f"{w.cpu_percent:.0f}"),
    "RSS": ("right", lambda v, w, st: human_bytes(w.rss)),
}
LAYOUTS = (
    ("part", "pid", "state", "committed", "offset", "end", "lag", "alerts/s", "MB/s", "files", "CPU %",
     "RSS"),
    ("part", "pid", "state", "offset/end", "lag", "alerts/s", "MB/s", "files", "CPU %", "RSS"),
    ("part", "pid", "state", "offset/end", "lag", "alerts/s", "MB/s", "files"),
    ("part", "pid", "state", "offset/end", "lag", "alerts/s"),
    ("part", "state", "offset/end", "lag", "alerts/s"),
    ("part", "offset/end", "lag", "alerts/s"),
)


def _table_for(view: RunView, console: Console, options: ConsoleOptions) -> tuple[Table, tuple[str, ...]]:
    """The widest layout whose every cell fits unbroken in the console's width; the narrowest,
    with cells folded rather than cut, when none does."""
    for columns in LAYOUTS:
        table = _table(view, columns)
        # measured as if the console had no edge: a measure is clamped to the width given
        if Measurement.get(console, options.update_width(10_000), table).maximum <= options.max_width:
            break
    else:
        table = _table(view, LAYOUTS[-1], overflow="fold")
    return table, columns


def _table(view: RunView, columns: tuple[str, ...], overflow: OverflowMethod = "ellipsis") -> Table:
    table = Table(expand=False, header_style="bold", box=None, padding=(0, 1), pad_edge=False)
    for name in columns:
        table.add_column(name, justify=COLUMNS[name][0], overflow=overflow, no_wrap=overflow == "ellipsis",
                         min_width=STATE_WIDTH if name == "state" else None)  # a new state keeps the layout
    for w, st in _partition_rows(view):
        table.add_row(*(COLUMNS[name][1](view, w, st) for name in columns))
    for w in view.workers.values():
        if not w.partitions and "pid" in columns:
            row = {"part": "-", "state": _state(w.state), "pid": str(w.pid),
                   "CPU %": f"{w.cpu_percent:.0f}", "RSS": human_bytes(w.rss)}
            table.add_row(*(row.get(name, "") for name in columns))
    return table


def _partition_rows(view: RunView) -> list[tuple[WorkerSnapshot, PartitionStats]]:
    rows = ((w, st) for w in view.workers.values() for st in w.partitions)
    return sorted(rows, key=lambda r: r[1].partition)


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


_STATE_STYLE = {"done": "green", "caught up": "cyan", "writing": "magenta", "error": "red",
                "joining": "dim"}
STATE_WIDTH = max(len(state) for state in _STATE_STYLE)


def _state(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def progress_line(view: RunView) -> str:
    """One plain line for logs of batch jobs: what was received from Kafka, what is written
    on disk, the partitions, the ETA; parts apart with ' | ' so no number reads as the next
    label's."""
    received, target = view.received, view.to_fetch
    if target:
        fetched = (f"received {received:,}/{target:,} alerts ({100.0 * received / target:.1f}%), "
                   f"{human_bytes(view.received_bytes)}, {view.rate.per_s:,.0f} alerts/s")
    else:
        fetched = "nothing to fetch"
    written = (f"written {view.total('written'):,} alerts, {human_bytes(view.total('written_bytes'))} "
               f"in {view.total('files')} files")
    stats = [st for w in view.workers.values() for st in w.partitions]
    states = Counter(st.state for st in stats if st.state != "done")
    planned = len(view.plan.partitions)  # before the workers report, the plan knows them
    states["waiting"] = max(0, planned - len(stats))
    partitions = (f"partitions {len(stats) - sum(states.values()) + states['waiting']}/"
                  f"{max(planned, len(stats))} done"
                  + "".join(f", {n} {state}" for state, n in sorted(states.items()) if n))
    parts = [f"[{human_time(view.now - view.started)}] {fetched}", written, partitions]
    if view.eta_s is not None:
        parts.append(f"ETA {human_time(view.eta_s)}")
    errors = sorted({view.trouble(w) for w in view.workers.values()} - {""})
    return " | ".join(parts) + (f" — {errors[0]}" if errors else "")


def progress_json(view: RunView) -> str:
    """One JSON line per report, for machines. Bytes as in the other displays: received from
    Kafka, written to disk."""
    return json.dumps({
        "elapsed_s": round(view.now - view.started, 3), "received": view.received,
        "received_bytes": view.received_bytes, "to_fetch": view.to_fetch,
        "written": view.total("written"), "written_bytes": view.total("written_bytes"),
        "files": view.total("files"), "landing_bytes": view.total("landing_bytes"),
        "written_bytes_per_s": round(view.landed.bytes_per_s), "eta_s": None if view.eta_s is None else round(view.eta_s, 1),
        "partitions": [{"partition": st.partition, "state": st.state, "committed": st.committed,
                        "position": st.position, "high": st.high, "lag": st.lag, "files": st.files,
                        "received_bytes": st.fetched_bytes, "written": st.written,
                        "written_bytes": st.written_bytes}
                       for w in view.workers.values() for st in w.partitions]})
