"""Rendering of a run's progress: a rich dashboard for terminals, plain or JSON lines for
batch jobs. Pure functions of a ``RunView`` (finkdl.progress), which holds the numbers and
the rates; nothing here talks to Kafka or the workers."""
from __future__ import annotations

import json
from collections import Counter

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .progress import RunView

LOW_DISK_BYTES = 2 * 1024**3


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render(view: RunView, free_disk: int | None = None):
    """The whole dashboard as one rich renderable."""
    cfg = view.config
    elapsed = view.now - view.started
    received, target = view.received, view.to_fetch
    rate, mbps, eta = view.rate.per_s, view.rate.bytes_per_s, view.eta_s
    header = Text.assemble(("finkdl ", "bold cyan"), (cfg.topic, "bold"),
                           f"  group {cfg.connection.group_id}  broker {cfg.connection.servers}\n",
                           f"→ {cfg.outdir}   elapsed {human_time(elapsed)}   ETA {human_time(eta)}")
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(target, 1), completed=received, width=50),
                f"{received:,}/{target:,} alerts", f"{rate:,.0f} alerts/s", f"{mbps / 1e6:.1f} MB/s")
    table = Table(expand=False, header_style="bold", box=None, padding=(0, 1))
    for col in ("part", "pid", "state", "committed", "position", "high", "lag", "alerts/s",
                "MB/s", "files", "CPU %", "RSS", "error"):
        table.add_column(col, justify="left" if col in ("state", "error") else "right")
    rows = sorted(((st.partition, w, st) for w in view.workers.values() for st in w.partitions),
                  key=lambda r: r[0])
    for p, w, st in rows:
        p_rate = view.partition_rate(p)
        table.add_row(str(p), str(w.pid), _state(st.state), _num(st.committed), _num(st.position),
                      _num(st.high), _num(st.lag), f"{p_rate.per_s:,.0f}", f"{p_rate.bytes_per_s / 1e6:.1f}",
                      str(st.files), f"{w.cpu_percent:.0f}", human_bytes(w.rss), view.trouble(w))
    for w in view.workers.values():
        if not w.partitions:
            table.add_row("-", str(w.pid), _state(w.state), *[""] * 7,
                          f"{w.cpu_percent:.0f}", human_bytes(w.rss), view.trouble(w))
    foot = Text(f"written {view.total('written'):,} alerts in {view.total('files')} files")
    if free_disk is not None:
        foot.append(f"   free disk {human_bytes(free_disk)}",
                    style="bold red" if free_disk < LOW_DISK_BYTES else "")
        if free_disk < LOW_DISK_BYTES:
            foot.append("  (low: the run stops cleanly if the disk fills)", style="red")
    if view.stopping:
        foot.append(f"\n{view.stopping}", style="yellow")
    return Group(header, bar, table, foot)


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


_STATE_STYLE = {"done": "green", "caught up": "cyan", "writing": "magenta", "error": "red",
                "joining": "dim"}


def _state(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def progress_line(view: RunView) -> str:
    """One plain line for logs of batch jobs."""
    received, nbytes, target, rate = view.received, view.received_bytes, view.to_fetch, view.rate.per_s
    done = sum(1 for w in view.workers.values() for st in w.partitions if st.state == "done")
    parts = sum(len(w.partitions) for w in view.workers.values())
    pct = 100.0 * received / target if target else 100.0
    states = Counter(st.state for w in view.workers.values() for st in w.partitions if st.state != "done")
    errors = sorted({view.trouble(w) for w in view.workers.values()} - {""})
    return (f"[{human_time(view.now - view.started)}] {received:,}/{target:,} alerts ({pct:.1f}%) "
            f"{rate:,.0f} alerts/s {human_bytes(nbytes)} partitions done {done}/{parts}"
            + "".join(f", {n} {state}" for state, n in sorted(states.items()))
            + (f" — {errors[0]}" if errors else ""))


def progress_json(view: RunView) -> str:
    """One JSON line per report, for machines."""
    received, nbytes, target = view.received, view.received_bytes, view.to_fetch
    return json.dumps({
        "elapsed_s": round(view.now - view.started, 3), "received": received, "bytes": nbytes,
        "to_fetch": target,
        "partitions": [{"partition": st.partition, "state": st.state, "committed": st.committed,
                        "position": st.position, "high": st.high, "lag": st.lag, "files": st.files}
                       for w in view.workers.values() for st in w.partitions]})
