"""Looking at a folder or a topic without downloading: ``finkdl verify``, ``offsets`` and
``schema`` (with ``--diff``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pyarrow as pa
from rich.table import Table

from ..arrow_schema import arrow_schema
from ..config import resolve_connection
from ..errors import ConfigError, ExitCode
from ..folder import read_folder_schema
from ..merge import ADDED, CONFLICT, REMOVED, RULES, merge_schemas
from ..plan import find_schema, topic_offsets
from ..schema import without_fastavro_keys
from ..output import is_object_storage, location, open_storage
from ..verify import IdCheck, verify
from .common import Output, connection_options, err_console, handle_errors, out_console


@click.command("verify")
@click.argument("outdir", type=Output(must_exist=True))
@handle_errors
def verify_command(outdir: str) -> None:
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
            for text in pr.problems:
                click.echo(f"  {text}")
    n_partitions = sum(len(partitions) for partitions in report.topics.values())
    click.echo(f"total: {report.rows:,} rows in {n_partitions} partitions"
               + (f" of {len(report.topics)} topics" if several else ""))
    click.echo(id_check_line(report.ids))
    for reason, rows in sorted(report.ids.unchecked.items()):
        click.echo(f"  NOT CHECKED for duplicates: {rows:,} rows, as {reason}")
    for (name, value), n in sorted(report.duplicates.items(), key=str)[:20]:
        click.echo(f"  DUPLICATE: {name} {value} is on disk {n} times")
    if not report.ok:
        click.echo("verify: FAILED")
        sys.exit(ExitCode.ERROR)
    click.echo("verify: OK")


def id_check_line(ids: IdCheck) -> str:
    """How many rows the duplicate check covered, by which id, and what it found."""
    if not ids.checked:
        return "duplicates: no row could be checked (see below)"
    by = ", ".join(f"{n:,} by {name}" for name, n in ids.checked.items())
    return f"duplicates: {len(ids.duplicates)} duplicate id values among {sum(ids.checked.values()):,} rows checked ({by})"


@click.command("offsets")
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
    past = [o.partition for o in rows if o.committed is not None and o.committed > o.high]
    for o in rows:
        table.add_row(str(o.partition), f"{o.low:,}", "-" if o.committed is None else f"{o.committed:,}",
                      f"{o.high:,}", "past the end" if o.partition in past else f"{o.lag:,}")
    table.add_row("total", "", "", f"{sum(o.high - o.low for o in rows):,}",
                  f"{sum(o.lag for o in rows):,}", style="bold")
    out_console().print(table)
    if past:
        err_console.print(f"[yellow]warning:[/] the group's offset lies past the end of partition"
                          f"{'s' if len(past) > 1 else ''} {', '.join(map(str, past))}: the topic was "
                          "created again under its name, or the group read another topic of that "
                          "name; `finkdl download` stops there (exit code 10) until --start-over")


@click.command("schema")
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
    text = json.dumps(without_fastavro_keys(schema.avro), indent=2)
    if output:
        output.write_text(text + "\n")
        err_console.print(f"schema of {topic} (from {source}) written to {output}")
    elif other is None:
        click.echo(text)
    if other is None:
        return
    if is_object_storage(other) or Path(other).exists():
        stored = read_folder_schema(open_storage(location(other)))
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

