"""``finkdl download``: parse, build the one frozen config, run the download with its
progress display, and summarise what was done and how to read it."""
from __future__ import annotations

import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import click
from rich.live import Live
from rich.markup import escape

from ..config import (FORMATS, DownloadConfig, FlushPolicy, credentials_path, readable_by_others,
                      resolve_connection)
from ..dashboard import human_bytes, progress_json, progress_line, render
from ..download import download
from ..errors import ExitCode
from ..progress import RunView, Summary
from ..output import open_storage
from ..surveys import FINK_TOPIC_PREFIXES
from .common import Output, connection_options, err_console, handle_errors, label_help, names

KAFKA_LOG_ALL = 7  # librdkafka's syslog levels: 7 (debug) lets every line of its own through


@click.command("download")
@click.argument("topic")
@click.option("--outdir", required=True, type=Output(),
              help="Output folder, or s3://BUCKET/PREFIX (endpoint and credentials: AWS_* variables).")
@click.option("--partition-by", default="none", show_default=True, help=label_help())
@connection_options
@click.option("--workers", type=click.IntRange(1), help="Worker processes [default: one per partition].")
@click.option("--from-beginning", is_flag=True, help="Ignore the group's offsets; what the folder "
              "already holds is not downloaded again.")
@click.option("--start-over", is_flag=True, help="Partitions whose files here or group offsets "
              "belong to an earlier topic of the same name (exit code 10) begin again: their "
              "files are set aside in OUTDIR/_finkdl/set-aside/.")
@click.option("--limit", type=click.IntRange(0), help="Download N alerts in total, and commit exactly those.")
@click.option("--timeout", type=float, help="Seconds without new alerts before a caught-up "
              "partition is finished [default: credentials maxtimeout, else 10].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True)
@click.option("--dump-schemas", is_flag=True, help="Write the Avro and Arrow schemas to OUTDIR/_finkdl.")
@click.option("--schema", "schema_file", type=click.Path(path_type=Path, exists=True),
              help="Avro schema file, instead of the <topic>_schema topic.")
@click.option("--columns", callback=lambda _ctx, _param, value: names(value),
              help="Keep only these columns, comma-separated, dotted for nested ones "
                   "(objectId,candidate.jd). The alert id (candid, diaSourceId, alertId) is always "
                   "kept, so `finkdl verify` can check duplicates, and so is the --partition-by column.")
@click.option("--drop-columns", callback=lambda _ctx, _param, value: names(value),
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
@click.option("--verbose", is_flag=True, help="Also show the Kafka client's own log lines "
              "(librdkafka's, such as %6|…|BGQUEUE|…), off otherwise.")
@handle_errors
def download_command(topic: str, outdir: str, partition_by: str, servers: str | None,
                     group_id: str | None, survey: str, ca_file: str | None, workers: int | None,
                     from_beginning: bool, start_over: bool,
                     limit: int | None, timeout: float | None, fmt: str, dump_schemas: bool,
                     schema_file: Path | None, columns: tuple[str, ...],
                     drop_columns: tuple[str, ...], drop_cutouts: bool,
                     flush_rows: int, flush_mb: int, flush_seconds: float,
                     progress: str, progress_interval: float, json_progress: bool, quiet: bool,
                     verbose: bool) -> None:
    """Download TOPIC into OUTDIR; rerun the same command to resume."""
    conn, max_timeout = resolve_connection(servers, group_id, survey, ca_file=ca_file)
    if verbose:
        conn = replace(conn, log_level=KAFKA_LOG_ALL)
    cfg = DownloadConfig(
        topic=topic, outdir=outdir, connection=conn, partition_by=partition_by,
        survey=survey, workers=workers, from_beginning=from_beginning, start_over=start_over,
        limit=limit, timeout=timeout if timeout is not None else (max_timeout or 10.0), fmt=fmt,
        dump_schemas=dump_schemas, schema_file=schema_file, columns=columns,
        drop_columns=drop_columns, drop_cutouts=drop_cutouts,
        flush=FlushPolicy(max_rows=flush_rows, max_bytes=flush_mb * 1024 * 1024,
                          max_age_s=flush_seconds))
    mode = "json" if json_progress else "quiet" if quiet else progress
    run_download(cfg, mode, progress_interval)


def run_download(cfg: DownloadConfig, mode: str = "auto", interval: float = 10.0,
                 spell: Callable[[str], str] = str) -> None:
    """Warn, download with the chosen progress display, summarise, and exit with the outcome.
    ``spell`` rewrites the flags the summary names, for front ends that spell them otherwise."""
    warn_about(cfg.topic, cfg.survey)
    signal.signal(signal.SIGTERM, _interrupt)  # a batch system's stop: same as Ctrl-C
    if mode == "auto":
        mode = "dashboard" if err_console.is_terminal else "plain"
    summary = run_with_progress(cfg, mode, interval)
    print_summary(summary, quiet=mode == "quiet", spell=spell)
    if summary.error is not None:
        raise summary.error
    if summary.outcome != ExitCode.OK:
        sys.exit(summary.outcome)


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
        storage = open_storage(cfg.outdir)
        with Live(console=err_console, refresh_per_second=4, transient=False,
                  get_renderable=lambda: render(latest[-1], storage.free_space())
                  if latest else "finkdl: connecting…"):
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


SHOWN_LABELS = 20


def print_summary(summary: Summary, quiet: bool = False, spell: Callable[[str], str] = str) -> None:
    """What was done, where it is, and how to read it."""
    cfg = summary.view.config
    wall = max(summary.wall_s, 1e-9)
    out = err_console
    status = "done" if summary.error is None else "stopped"
    out.print(f"[bold]{status}:[/] {summary.alerts:,} alerts, {human_bytes(summary.bytes)} written in "
              f"{summary.files} files, {wall:.1f} s ({summary.alerts / wall:,.0f} alerts/s)")
    plan = summary.view.plan
    if plan.started_over:
        parts = ", ".join(str(s.partition) for s in plan.started_over)
        first = plan.started_over[0]
        then = (f"the files they had here are set aside in {plan.set_aside} (kept until you "
                "delete it; readers skip it)" if plan.set_aside
                else "read again from their first offset")
        out.print(f"[yellow]started over:[/] partition{'s' if len(plan.started_over) > 1 else ''} "
                  f"{parts} of {cfg.topic} (partition {first.partition}: {escape(first.why)}); {then}")
    if not quiet and cfg.partition_by != "none" and summary.labels:
        ranked = sorted(summary.labels.items(), key=lambda kv: -kv[1])
        for label, n in ranked[:SHOWN_LABELS]:
            out.print(f"  {n:>10,}  {escape(str(label))}")
        if len(ranked) > SHOWN_LABELS:
            rest = sum(n for _, n in ranked[SHOWN_LABELS:])
            out.print(f"  {rest:>10,}  in {len(ranked) - SHOWN_LABELS} more labels (finkdl show {cfg.outdir})")
    if summary.quarantined:
        out.print(f"[yellow]{summary.quarantined} message(s) could not be decoded[/]; kept raw with "
                  f"their offsets in {cfg.outdir}/_quarantine")
    if summary.alerts == 0 and summary.error is None and summary.view.plan.to_fetch == 0:
        out.print(spell(nothing_to_fetch(cfg)))
    out.print(f"files in {cfg.outdir}")
    out.print(f"read them with: {read_line(cfg.outdir)}"
              if cfg.fmt == "parquet" else "read them with: fastavro.reader(open(path, 'rb'))")
    if summary.error is not None:
        out.print("run the same command again to resume; nothing is downloaded twice")


def read_line(outdir: str) -> str:
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
            "--from-beginning (into this folder: only what it lacks), or, into a new folder, "
            "another --group-id")

