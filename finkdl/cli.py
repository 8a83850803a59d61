"""finkdl's command line: parse flags, build one config, call the core, map errors to exit codes."""
from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from . import __version__
from .arrow_schema import arrow_schema
from .config import (FORMATS, Connection, DownloadConfig, FlushPolicy, credentials_path,
                     readable_by_others, resolve_connection, write_credentials)
from .dashboard import progress_json, progress_line, render
from .download import download
from .errors import ConfigError, ExitCode, FinkdlError
from .folder import read_folder_schema
from .merge import ADDED, CONFLICT, REMOVED, RULES, merge_schemas
from .plan import find_schema, topic_offsets
from .progress import RunView, Summary
from .storage import LocalDisk
from .surveys import FINK_TOPIC_PREFIXES, SURVEYS
from .verify import IdCheck, verify

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
CONTEXT = {"help_option_names": ["-h", "--help"]}  # -h too, as fink-client's commands take it


def _label_help() -> str:
    by_survey = "; ".join(f"{s.title}: {', '.join(s.label_columns)}" for s in SURVEYS.values())
    return (f"none, time (year/month/day of the observation), or any column, dotted for nested "
            f"ones. Label columns: {by_survey}.")


def handle_errors(func):
    """The one place where errors become a one-line message and an exit code."""
    @functools.wraps(func)
    def wrapper(*args, traceback: bool = False, **kwargs):
        try:
            return func(*args, **kwargs)
        except FinkdlError as exc:
            if traceback:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            if exc.hint:  # escaped: "pip install 'finkdl[show]'" is not markup
                err_console.print(f"  [dim]hint:[/] {escape(exc.hint)}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(ExitCode.INTERRUPTED)
    return click.option("--traceback", is_flag=True, help="Show a full traceback on errors.")(wrapper)


def connection_options(func):
    for option in reversed([
        click.option("--servers", envvar="FINKDL_SERVERS", help="Kafka servers HOST:PORT,... "
                     "[default: from FINKDL_SERVERS or ~/.finkclient/<survey>_credentials.yml]"),
        click.option("--group-id", envvar="FINKDL_GROUP_ID", help="Consumer group id (shared by "
                     "every finkdl of one download, on any host)."),
        click.option("--survey", type=click.Choice(list(SURVEYS)), default="ztf", show_default=True),
        click.option("--ca-file", envvar="FINKDL_CA_FILE", type=click.Path(exists=True, dir_okay=False),
                     help="CA certificate (PEM) of TLS servers: turns on SASL_SSL."),
    ]):
        func = option(func)
    return func


@click.group(context_settings=CONTEXT)
@click.version_option(__version__)
def main() -> None:
    """Download Fink Data Transfer topics to partitioned Parquet, exactly once."""


@main.command("download")
@click.argument("topic")
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--partition-by", default="none", show_default=True, help=_label_help())
@connection_options
@click.option("--workers", type=click.IntRange(1), help="Worker processes [default: one per partition].")
@click.option("--from-beginning", is_flag=True, help="Ignore the group's offsets; what the folder "
              "already holds is not downloaded again.")
@click.option("--limit", type=click.IntRange(0), help="Download N alerts in total, and commit exactly those.")
@click.option("--timeout", type=float, help="Seconds without new alerts before a caught-up "
              "partition is finished [default: credentials maxtimeout, else 10].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True)
@click.option("--dump-schemas", is_flag=True, help="Write the Avro and Arrow schemas to OUTDIR/_finkdl.")
@click.option("--schema", "schema_file", type=click.Path(path_type=Path, exists=True),
              help="Avro schema file, instead of the <topic>_schema topic.")
@click.option("--columns", callback=lambda _ctx, _param, value: _names(value),
              help="Keep only these columns, comma-separated, dotted for nested ones "
                   "(objectId,candidate.jd). The alert id (candid, diaSourceId, alertId) is always "
                   "kept, so `finkdl verify` can check duplicates, and so is the --partition-by column.")
@click.option("--drop-columns", callback=lambda _ctx, _param, value: _names(value),
              help="Leave out these columns, comma-separated, dotted for nested ones "
                   "(mangrove,candidate.ssnamenr); the others are kept.")
@click.option("--drop-cutouts", is_flag=True, help="Leave out the cutout images (cutoutScience, "
              "cutoutTemplate, cutoutDifference: those the alerts have).")
@click.option("--flush-rows", type=click.IntRange(1), default=100_000, show_default=True,
              help="Close files after this many alerts per partition.")
@click.option("--flush-mb", type=click.IntRange(1), default=128, show_default=True,
              help="Close files after this many MB of alerts per partition.")
@click.option("--flush-seconds", type=float, default=60.0, show_default=True,
              help="Close files at least this often (less to redo after a crash).")
@click.option("--progress", type=click.Choice(["auto", "dashboard", "plain", "json", "quiet"]),
              default="auto", show_default=True,
              help="auto: dashboard on a terminal, plain lines otherwise.")
@click.option("--progress-interval", type=float, default=10.0, show_default=True,
              help="Seconds between plain or JSON progress lines.")
@click.option("--json-progress", is_flag=True, help="Same as --progress json.")
@click.option("--quiet", is_flag=True, help="Same as --progress quiet.")
@handle_errors
def download_command(topic: str, outdir: Path, partition_by: str, servers: str | None,
                     group_id: str | None, survey: str, ca_file: str | None, workers: int | None,
                     from_beginning: bool,
                     limit: int | None, timeout: float | None, fmt: str, dump_schemas: bool,
                     schema_file: Path | None, columns: tuple[str, ...],
                     drop_columns: tuple[str, ...], drop_cutouts: bool,
                     flush_rows: int, flush_mb: int, flush_seconds: float,
                     progress: str, progress_interval: float, json_progress: bool, quiet: bool) -> None:
    """Download TOPIC into OUTDIR; rerun the same command to resume."""
    conn, max_timeout = resolve_connection(servers, group_id, survey, ca_file=ca_file)
    cfg = DownloadConfig(
        topic=topic, outdir=outdir.resolve(), connection=conn, partition_by=partition_by,
        survey=survey, workers=workers, from_beginning=from_beginning, limit=limit,
        timeout=timeout if timeout is not None else (max_timeout or 10.0), fmt=fmt,
        dump_schemas=dump_schemas, schema_file=schema_file, columns=columns,
        drop_columns=drop_columns, drop_cutouts=drop_cutouts,
        flush=FlushPolicy(max_rows=flush_rows, max_bytes=flush_mb * 1024 * 1024,
                          max_age_s=flush_seconds))
    mode = "json" if json_progress else "quiet" if quiet else progress
    run_download(cfg, mode, progress_interval)


def run_download(cfg: DownloadConfig, mode: str = "auto", interval: float = 10.0) -> None:
    """Warn, download with the chosen progress display, summarise, and exit with the outcome."""
    warn_about(cfg.topic, cfg.survey)
    signal.signal(signal.SIGTERM, _interrupt)  # a batch system's stop: same as Ctrl-C
    if mode == "auto":
        mode = "dashboard" if err_console.is_terminal else "plain"
    summary = run_with_progress(cfg, mode, interval)
    print_summary(summary, quiet=mode == "quiet")
    if summary.error is not None:
        raise summary.error
    if summary.outcome != ExitCode.OK:
        sys.exit(summary.outcome)


def _names(value: str | None) -> tuple[str, ...]:
    """``a, b,c.d`` → ('a', 'b', 'c.d')."""
    return tuple(name.strip() for name in (value or "").split(",") if name.strip())


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def warn_about(topic: str, survey: str) -> None:
    if not topic.startswith(FINK_TOPIC_PREFIXES):
        err_console.print(f"[yellow]warning:[/] {topic!r} is not named like a Fink topic "
                          f"({', '.join(p + '…' for p in FINK_TOPIC_PREFIXES)}); going on")
    path = credentials_path(survey)
    if path.exists() and readable_by_others(path):
        err_console.print(f"[yellow]warning:[/] {path} is readable by other users; "
                          f"run: chmod 600 {path}")


def run_with_progress(cfg: DownloadConfig, mode: str, interval: float) -> Summary:
    if mode == "dashboard":
        latest: list[RunView] = []
        storage = LocalDisk(cfg.outdir)
        with Live(console=err_console, refresh_per_second=4, transient=False,
                  get_renderable=lambda: render(latest[-1], storage.free_space())
                  if latest else "finkdl: connecting…") as _live:
            return download(cfg, on_update=lambda view: latest[:1].clear() or latest.append(view))
    if mode in ("plain", "json"):
        last = [0.0]

        def report(view: RunView) -> None:
            if view.now - last[0] >= interval:
                last[0] = view.now
                line = progress_json(view) if mode == "json" else progress_line(view)
                click.echo(line, err=True)
        return download(cfg, on_update=report)
    return download(cfg)


def print_summary(summary: Summary, quiet: bool = False) -> None:
    """What was done, where it is, and how to read it."""
    cfg = summary.view.config
    wall = max(summary.wall_s, 1e-9)
    out = err_console
    status = "done" if summary.error is None else "stopped"
    out.print(f"[bold]{status}:[/] {summary.alerts:,} alerts, {summary.bytes / 1e6:,.1f} MB in "
              f"{summary.files} files, {wall:.1f} s ({summary.alerts / wall:,.0f} alerts/s)")
    if not quiet and cfg.partition_by != "none" and summary.labels:
        for label, n in sorted(summary.labels.items(), key=lambda kv: -kv[1])[:20]:
            out.print(f"  {n:>10,}  {label}")
    if summary.quarantined:
        out.print(f"[yellow]{summary.quarantined} message(s) could not be decoded[/]; kept raw with "
                  f"their offsets in {cfg.outdir / '_quarantine'}")
    if summary.alerts == 0 and summary.error is None and summary.view.plan.to_fetch == 0:
        out.print(nothing_to_fetch(cfg))
    out.print(f"files in {cfg.outdir}")
    out.print(f"read them with: {read_line(cfg.outdir)}"
              if cfg.fmt == "parquet" else "read them with: fastavro.reader(open(path, 'rb'))")
    if summary.error is not None:
        out.print("run the same command again to resume; nothing is downloaded twice")


def read_line(outdir: Path) -> str:
    """The line of Python that reads a folder back with every value exact (64-bit ids
    included, nested ones too, with their nulls)."""
    return f"pandas.read_parquet({str(outdir)!r}, dtype_backend='pyarrow')"


def nothing_to_fetch(cfg: DownloadConfig) -> str:
    """Why a run found nothing to download, and how to start again."""
    if cfg.from_beginning:
        return (f"[yellow]nothing to download:[/] {cfg.outdir} already holds every alert of "
                f"{cfg.topic}")
    return (f"[yellow]nothing to download:[/] the group {cfg.connection.group_id!r} has already "
            f"read every alert of {cfg.topic} (committed to the end). To download it again: "
            "--from-beginning (into this folder: only what it lacks), or another --group-id "
            "(into a new folder)")


@main.command("verify")
@click.argument("outdir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@handle_errors
def verify_command(outdir: Path) -> None:
    """Check OUTDIR: offset ranges per partition, gaps, overlaps, rows and duplicate ids."""
    report = verify(outdir)
    several = len(report.topics) > 1
    for topic, partitions in report.topics.items():
        for p, pr in partitions.items():
            ranges = ", ".join(f"{a}-{b}" for a, b in pr.merged)
            click.echo(f"{f'topic {topic} ' if several else ''}partition {p}: offsets {ranges}; "
                       f"{pr.rows:,} rows" + (f", {pr.quarantined} quarantined" if pr.quarantined else ""))
            for a, b in pr.gaps:
                click.echo(f"  GAP: offsets {a}-{b} missing")
            for a, b in pr.overlaps:
                click.echo(f"  OVERLAP: offsets {a}-{b} written twice")
            for text in pr.incomplete:
                click.echo(f"  INCOMPLETE: range {text}")
    n_partitions = sum(len(partitions) for partitions in report.topics.values())
    click.echo(f"total: {report.rows:,} rows in {n_partitions} partitions"
               + (f" of {len(report.topics)} topics" if several else ""))
    click.echo(id_check_line(report.ids))
    for reason, rows in sorted(report.ids.unchecked.items()):
        click.echo(f"  NOT CHECKED for duplicates: {rows:,} rows, as {reason}")
    for (name, value), n in sorted(report.duplicates.items(), key=str)[:20]:
        click.echo(f"  DUPLICATE: {name} {value} is on disk {n} times")
    if not report.ok:
        click.echo("verify: FAILED", err=True)
        sys.exit(ExitCode.ERROR)
    click.echo("verify: OK")


def id_check_line(ids: IdCheck) -> str:
    """How many rows the duplicate check covered, by which id, and what it found."""
    if not ids.checked:
        return "duplicates: no row could be checked (see below)"
    by = ", ".join(f"{n:,} by {name}" for name, n in ids.checked.items())
    return f"duplicates: {len(ids.duplicates)} duplicate id values among {sum(ids.checked.values()):,} rows checked ({by})"


@main.command("offsets")
@click.argument("topic")
@connection_options
@click.option("--timeout", type=float, default=10.0, show_default=True)
@handle_errors
def offsets_command(topic: str, servers: str | None, group_id: str | None, survey: str,
                    ca_file: str | None, timeout: float) -> None:
    """Committed offset, high watermark and lag of each partition of TOPIC for the group."""
    conn, _ = resolve_connection(servers, group_id, survey, ca_file=ca_file)
    rows = topic_offsets(conn, topic, timeout)
    click.echo(f"{topic}  group {conn.group_id}")  # a title, never wrapped inside a name
    table = Table(box=None, header_style="bold")
    for col in ("partition", "low", "committed", "high", "lag"):
        table.add_column(col, justify="right")
    for o in rows:
        table.add_row(str(o.partition), f"{o.low:,}", "-" if o.committed is None else f"{o.committed:,}",
                      f"{o.high:,}", f"{o.lag:,}")
    table.add_row("total", "", "", f"{sum(o.high - o.low for o in rows):,}",
                  f"{sum(o.lag for o in rows):,}", style="bold")
    Console().print(table)


@main.command("schema")
@click.argument("topic")
@connection_options
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the schema to this file.")
@click.option("--diff", "other", metavar="OTHER", help="Compare with OTHER, another topic or an "
              "output folder (a path that exists): fields added, removed, changed, and whether "
              "one folder can hold both (exit code 1 when they conflict).")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@handle_errors
def schema_command(topic: str, servers: str | None, group_id: str | None, survey: str,
                   ca_file: str | None, output: Path | None, other: str | None, timeout: float) -> None:
    """The Avro schema of TOPIC (from its <topic>_schema companion or its message keys), or
    with --diff how it differs from OTHER's."""
    conn, _ = resolve_connection(servers, group_id or "finkdl-schema", survey, ca_file=ca_file)
    schema, source = find_schema(conn, topic, timeout)
    text = json.dumps(schema.avro, indent=2)
    if output:
        output.write_text(text + "\n")
        err_console.print(f"schema of {topic} (from {source}) written to {output}")
    elif other is None:
        click.echo(text)
    if other is None:
        return
    if Path(other).exists():
        stored = read_folder_schema(LocalDisk(Path(other)))
        if stored is None:
            raise ConfigError(f"{other} holds no download of finkdl",
                              hint="name another topic, or an output folder of `finkdl download`")
        print_diff(arrow_schema(schema.avro), topic, stored.schema, other, "folder", stored.keys)
    else:
        other_schema, _ = find_schema(conn, other, timeout)
        print_diff(arrow_schema(schema.avro), topic, arrow_schema(other_schema.avro), other, "topic")


def print_diff(new: pa.Schema, topic: str, old: pa.Schema, other: str, kind: str,
               keys: tuple[str, ...] = ()) -> None:
    """What TOPIC (new) changes from OTHER (old), the rule that applies to each change, and
    whether one folder holds both; exits 1 on a conflict.

    A folder's Hive keys are in its folder names, not its files: they are left out of TOPIC too.
    """
    new = pa.schema([f for f in new if f.name not in keys])
    click.echo(f"new: topic {topic}\nold: {kind} {other}"
               + (f" (without {', '.join(keys)}: in its folder names, not its files)" if keys else ""))
    changes = merge_schemas(old, new)[1]
    if not changes:
        click.echo("same schema")
        return
    names = {ADDED: "new only", REMOVED: "old only"}
    rows = [("change", "field", "old type", "new type")] + [
        (names.get(c.kind, c.kind), c.path, short_type(c.old), short_type(c.new)) for c in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3])
    click.echo("rules:")
    for change_kind in dict.fromkeys(c.kind for c in changes):
        click.echo(f"  {names.get(change_kind, change_kind)}: {RULES[change_kind]}")
    conflicts = [c.path for c in changes if c.kind == CONFLICT]
    if conflicts:
        click.echo(f"conflict: {', '.join(conflicts)} have no common type; leave them out with "
                   f"--drop-columns {','.join(conflicts)}, or download into separate folders")
        sys.exit(ExitCode.ERROR)
    click.echo("compatible: one folder holds both")


def short_type(kind: pa.DataType | None, room: int = 40) -> str:
    """An Arrow type in a few words: records by their number of fields when long."""
    if kind is None:
        return "-"
    text = str(kind)
    if len(text) <= room:
        return text
    if pa.types.is_struct(kind):
        return f"struct<{kind.num_fields} fields>"
    if pa.types.is_map(kind):
        return f"map<{short_type(kind.key_type, room)}, {short_type(kind.item_type, room)}>"
    if pa.types.is_list(kind):
        return f"list<{short_type(kind.value_type, room)}>"
    return text


@main.command("register")
@click.option("--username", prompt=True, help="Your Fink username.")
@click.option("--password", prompt=True, hide_input=True, help="Asked without echo when omitted.")
@click.option("--group-id", prompt=True, help="Your consumer group id.")
@click.option("--servers", prompt=True, help="Fink's Kafka servers HOST:PORT,...")
@click.option("--survey", type=click.Choice(list(SURVEYS)), default="ztf", show_default=True)
@click.option("--maxtimeout", type=float, default=10.0, show_default=True)
@handle_errors
def register_command(username: str, password: str, group_id: str, servers: str, survey: str,
                     maxtimeout: float) -> None:
    """Write the fink-client-compatible credentials file (mode 0600)."""
    path = credentials_path(survey)
    write_credentials(path, {"username": username, "password": password, "group_id": group_id,
                             "servers": servers, "maxtimeout": maxtimeout, "mytopics": []})
    err_console.print(f"credentials written to {path} (readable by you only)")


@main.command("demo")
@click.option("--alerts", type=click.IntRange(1), default=50_000, show_default=True)
@click.option("--outdir", type=click.Path(path_type=Path), default=Path("finkdl-demo"), show_default=True)
@click.option("--partition-by", default="finkclass", show_default=True)
@click.option("--progress", type=click.Choice(["auto", "dashboard", "plain", "json", "quiet"]),
              default="auto", show_default=True)
@handle_errors
def demo_command(alerts: int, outdir: Path, partition_by: str, progress: str) -> None:
    """Start a local Kafka broker, fill a topic with Fink-like alerts, download it, stop."""
    from .local.demo import demo_topic  # the broker and generator: loaded here, not on every start

    err_console.print(f"starting a local Kafka broker and producing {alerts:,} alerts…")
    with demo_topic(alerts) as (broker, topic):
        cfg = DownloadConfig(topic=topic, outdir=outdir.resolve(), partition_by=partition_by,
                             connection=Connection(broker.servers, "finkdl-demo"), timeout=3.0)
        try:
            run_download(cfg, progress, 2.0)
        finally:
            err_console.print("stopping the local broker")
    click.echo(f"verify it: finkdl verify {outdir}\nlook at it: finkdl show {outdir} --plot summary.png")


class ProgressAfter:
    """A callback ``(done, total)`` drawing a progress bar on stderr once the work has taken
    ``delay`` seconds, and only on a terminal: quick looks and scripts see none."""

    def __init__(self, what: str, delay: float = 2.0) -> None:
        from time import monotonic
        self.what, self.deadline, self.clock = what, monotonic() + delay, monotonic
        self.bar, self.task = None, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and err_console.is_terminal and self.clock() >= self.deadline:
            from rich.progress import Progress
            self.bar = Progress(*Progress.get_default_columns(), console=err_console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> "ProgressAfter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _values(value: tuple[str, ...]) -> tuple[str, ...]:
    """``--id 1,2 --id 3`` → ('1', '2', '3')."""
    return tuple(v for item in value for v in _names(item))


@main.command("show")
@click.argument("outdir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--plot", "plot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw alerts per night by class, alerts per class, a sky map and "
                   "magnitudes per band: FILE.png (or .pdf, .svg), or FILE.html, one page with "
                   "the figure and these tables.")
@handle_errors
def show_command(outdir: Path, plot_file: Path | None) -> None:
    """What OUTDIR holds: alerts, survey, topics, nights, schema versions, alerts per label,
    files and bytes, columns."""
    from .look.alerts import open_alerts
    from .look.summary import sections, summarize
    if plot_file is not None:
        from .look.plots import figure_format
        figure_format(plot_file, html_allowed=True)  # a wrong name refused before the reading
    alerts = open_alerts(outdir)
    with ProgressAfter(f"reading {outdir}") as on_progress:
        summary = summarize(alerts, plot=plot_file is not None, on_progress=on_progress)
    tables = sections(summary)
    from rich.text import Text  # labels are text, never markup: a class "[x]" stays "[x]"
    out = Console(highlight=False)
    for section in tables:
        if section.header == ("column", "type"):
            out.print(Text.assemble((f"{section.title}: ", "bold"),
                                    ", ".join(f"{n} ({t})" for n, t in section.rows)))
            continue
        table = Table(title=Text(section.title, style="bold"), title_justify="left", box=None,
                      show_header=any(section.header), header_style="bold")
        for name in section.header:
            table.add_column(Text(name), justify="right" if name in ("alerts", "share") else "left",
                             overflow="fold")
        for row in section.rows:
            table.add_row(*map(Text, row))
        out.print(table)
    if plot_file is not None:
        from .look.plots import save, summary_figure
        save(summary_figure(summary), plot_file, f"finkdl show {outdir}", tables)
        err_console.print(Text(f"figure written to {plot_file}"))


@main.command("cutouts")
@click.argument("outdir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--id", "ids", multiple=True, callback=lambda _c, _p, v: _values(v), metavar="ID",
              help="Alert id (candid for ZTF, diaSourceId for Rubin/LSST); repeat it, or "
                   "separate ids with commas.")
@click.option("--object", "objects", multiple=True, callback=lambda _c, _p, v: _values(v),
              metavar="OBJECTID", help="Every alert of this object (objectId for ZTF, "
                                       "diaObjectId for Rubin/LSST); repeat it or use commas.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("cutouts"),
              show_default=True, help="Folder the files are written to.")
@click.option("--format", "fmt", type=click.Choice(["fits", "png"]), default="fits",
              show_default=True, help="fits: the stamps as sent (decompressed), headers intact; "
                                      "png: images for people.")
@click.option("--stretch", type=click.Choice(["zscale", "asinh"]), default="zscale",
              show_default=True, help="How pixel values become grey levels in PNG images.")
@handle_errors
def cutouts_command(outdir: Path, ids: tuple[str, ...], objects: tuple[str, ...], out: Path,
                    fmt: str, stretch: str) -> None:
    """The science, template and difference stamps of alerts of OUTDIR, one file each,
    named <object>_<alert>_<kind>.fits (or .png)."""
    if bool(ids) == bool(objects):
        raise ConfigError("name alerts with --id, or objects with --object (one of them)")
    from .look.alerts import open_alerts
    from .look.stamps import find_stamps, write_stamps
    stamps = find_stamps(open_alerts(outdir), ids=ids, objects=objects)
    for path in write_stamps(stamps, out, fmt, stretch):
        click.echo(path)
    alerts = len({s.alert_id for s in stamps})
    err_console.print(escape(f"{len(stamps)} stamps of {alerts} alert{'s' if alerts != 1 else ''} "
                             f"written to {out}"))


@main.command("lightcurve")
@click.argument("outdir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("object_id", metavar="OBJECTID")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Figure file: .png, .pdf or .svg  [default: OBJECTID.png]")
@click.option("--stretch", type=click.Choice(["zscale", "asinh"]), default="zscale",
              show_default=True, help="How the stamps' pixel values become grey levels.")
@handle_errors
def lightcurve_command(outdir: Path, object_id: str, out: Path | None, stretch: str) -> None:
    """The light curve of OBJECTID from its alerts in OUTDIR and their histories, per band
    (ZTF magnitudes and upper limits, Rubin/LSST difference fluxes), its latest stamps beside."""
    from .look.alerts import open_alerts
    from .look.lightcurves import light_curve
    from .look.plots import figure_format, lightcurve_figure, save
    out = out or Path(f"{object_id}.png")
    figure_format(out)
    curve, stamps = light_curve(open_alerts(outdir), object_id)
    save(lightcurve_figure(curve, stamps, stretch), out)
    per_band = ", ".join(f"{band} {seen}" + (f" (+{limits} upper limit{'s' if limits > 1 else ''})"
                                             if limits else "")
                         for band, (seen, limits) in curve.counts().items())
    click.echo(f"{object_id}: {per_band}; from {curve.alerts} alert{'s' if curve.alerts != 1 else ''}" +
               ("" if stamps else "; no cutouts in this folder"))
    err_console.print(escape(f"figure written to {out}"))


def fink_client_command(name: str, about: str, *, survey_required: bool, outdir_default: str | None,
                        partition_default: str) -> click.Command:
    """A command taking fink-client's own flags (single dash), with finkdl's guarantees: users
    of either fink-client version switch with no new habit. Servers, group and timeout come
    from fink-client's credentials file, as they do for fink-client."""
    def transfer(topic: str, outdir: Path, partitionby: str, limit: int | None, batchsize: int,
                 nconsumers: int, maxtimeout: float | None, number_partitions: int, survey: str,
                 outformat: str, restart_from_beginning: bool, dump_schemas: bool,
                 verbose: bool) -> None:
        conn, file_timeout = resolve_connection(None, None, survey)
        cfg = DownloadConfig(
            topic=topic, outdir=outdir.resolve(), connection=conn,
            partition_by="none" if partitionby in ("None", "") else partitionby,
            survey=survey, workers=nconsumers if nconsumers > 0 else None,
            from_beginning=restart_from_beginning, limit=limit,
            timeout=maxtimeout if maxtimeout is not None else (file_timeout or 10.0), fmt=outformat,
            dump_schemas=dump_schemas)
        run_download(cfg, "auto" if verbose else "quiet")

    options = [
        click.option("-survey", type=click.Choice(list(SURVEYS)), help="Survey name.",
                     **({"required": True} if survey_required else {"default": "ztf", "show_default": True})),
        click.option("-topic", required=True, help="Topic name for the stream that contains the data."),
        click.option("-outdir", type=click.Path(path_type=Path),
                     help="Folder to store incoming alerts (created if needed).",
                     **({"required": True} if outdir_default is None
                        else {"default": outdir_default, "show_default": True})),
        click.option("-outformat", type=click.Choice(FORMATS), default="parquet", show_default=True),
        click.option("-partitionby", default=partition_default, show_default=True, help=_label_help()),
        click.option("-limit", type=click.IntRange(0), help="Download only this many alerts."),
        click.option("-batchsize", type=int, default=100,
                     help="Accepted for compatibility; finkdl sizes its files itself."),
        click.option("-nconsumers", type=int, default=-1,
                     help="Consumer processes (-1: one per partition)."),
        click.option("-maxtimeout", type=float,
                     help="Seconds to wait for new alerts [default: from the credentials file]."),
        click.option("-number_partitions", type=int, default=10,
                     help="Accepted for compatibility; finkdl reads the partitions from the topic."),
        click.option("--restart_from_beginning", is_flag=True,
                     help="Start again from the first alert (what the folder holds is kept once)."),
        click.option("--dump_schemas", is_flag=True, help="Write the schemas beside the data."),
        click.option("--verbose", is_flag=True, help="Live dashboard (plain lines without a terminal)."),
    ]
    command = handle_errors(transfer)
    for option in reversed(options):
        command = option(command)
    return click.command(name, context_settings=CONTEXT, help=about)(command)


fink_datatransfer = fink_client_command(
    "fink_datatransfer", "fink-client's fink_datatransfer (before version 12), with finkdl's "
    "speed and exactly-once guarantees.", survey_required=False, outdir_default=None,
    partition_default="time")
main.add_command(fink_client_command(
    "transfer", "fink-client 12's `finkctl transfer`, same flags, with finkdl's speed and "
    "exactly-once guarantees.", survey_required=True, outdir_default=".", partition_default="none"))
