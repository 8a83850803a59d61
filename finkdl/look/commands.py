"""The look commands: ``finkdl show``, ``cutouts`` and ``lightcurve``. They parse flags and
print; the reading and drawing are in the modules beside this one, imported when a command
runs (plots need the ``show`` extra, and a download should not pay for their import)."""
from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..commands.common import Output, err_console, handle_errors, out_console, values
from ..errors import ConfigError
from ..output import is_object_storage


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



@click.command("show")
@click.argument("outdir", type=Output(must_exist=True))
@click.option("--plot", "plot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw alerts per night by class, alerts per class, a sky map and "
                   "magnitudes per band: FILE.png (or .jpg, .pdf, .svg), or FILE.html, one page with "
                   "the figure and these tables.")
@handle_errors
def show_command(outdir: str, plot_file: Path | None) -> None:
    """What OUTDIR holds: alerts, survey, topics, nights, schema versions, alerts per label,
    files and bytes, columns."""
    from .alerts import open_alerts
    from .summary import sections, summarize
    if plot_file is not None:
        from .plots import figure_format
        figure_format(plot_file, html_allowed=True)  # a wrong name refused before the reading
        plot_file = figure_path(plot_file, outdir)
    alerts = open_alerts(outdir)
    with ProgressAfter(f"reading {outdir}") as on_progress:
        summary = summarize(alerts, plot=plot_file is not None, on_progress=on_progress)
    tables = sections(summary)
    from rich.text import Text  # labels are text, never markup: a class "[x]" stays "[x]"
    out = out_console()
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
        from .plots import save, summary_figure
        save(summary_figure(summary), plot_file, f"finkdl show {outdir}", tables)
        err_console.print(Text(f"figure written to {plot_file}"))


def figure_path(plot_file: Path, outdir: str) -> Path:
    """Where a figure goes: inside the output folder its name starts with ``_``, so that the
    folder's readers (pandas, pyarrow, Spark read every file of it but ``_`` and ``.`` ones)
    leave it out; elsewhere where it was asked."""
    if is_object_storage(outdir) or plot_file.name.startswith(("_", ".")):
        return plot_file
    try:
        plot_file.resolve().relative_to(Path(outdir).resolve())
    except ValueError:
        return plot_file
    return plot_file.with_name("_" + plot_file.name)


@click.command("cutouts")
@click.argument("outdir", type=Output(must_exist=True))
@click.option("--id", "ids", multiple=True, callback=lambda _c, _p, v: values(v), metavar="ID",
              help="Alert id (candid for ZTF, diaSourceId for Rubin/LSST); repeat it, or "
                   "separate ids with commas.")
@click.option("--object", "objects", multiple=True, callback=lambda _c, _p, v: values(v),
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
def cutouts_command(outdir: str, ids: tuple[str, ...], objects: tuple[str, ...], out: Path,
                    fmt: str, stretch: str) -> None:
    """The science, template and difference stamps of alerts of OUTDIR, one file each,
    named <object>_<alert>_<kind>.fits (or .png)."""
    if bool(ids) == bool(objects):
        raise ConfigError("name alerts with --id, or objects with --object (one of them)")
    from .alerts import open_alerts
    from .stamps import find_stamps, write_stamps
    alerts = open_alerts(outdir)
    _note_ignored(alerts)
    stamps, found = find_stamps(alerts, ids=ids, objects=objects)
    for path in write_stamps(stamps, out, fmt, stretch):
        click.echo(path)
    n = len({s.alert_id for s in stamps})
    bare = f" (the other {found - n} of the {found} alerts found carry none)" if found > n else ""
    err_console.print(escape(f"{len(stamps)} stamps of {n} alert{'s' if n != 1 else ''} "
                             f"written to {out}{bare}"))


@click.command("lightcurve")
@click.argument("outdir", type=Output(must_exist=True))
@click.argument("object_id", metavar="OBJECTID")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Figure file: .png, .jpg, .pdf or .svg  [default: OBJECTID.png]")
@click.option("--stretch", type=click.Choice(["zscale", "asinh"]), default="zscale",
              show_default=True, help="How the stamps' pixel values become grey levels.")
@handle_errors
def lightcurve_command(outdir: str, object_id: str, out: Path | None, stretch: str) -> None:
    """The light curve of OBJECTID from its alerts in OUTDIR and their histories, per band
    (ZTF magnitudes and upper limits, Rubin/LSST difference fluxes), its latest stamps beside."""
    from .alerts import open_alerts
    from .lightcurves import light_curve
    from .plots import figure_format, lightcurve_figure, save
    out = out or Path(f"{object_id}.png")
    figure_format(out)
    alerts = open_alerts(outdir)
    _note_ignored(alerts)
    curve, stamps = light_curve(alerts, object_id)
    save(lightcurve_figure(curve, stamps, stretch), out)
    per_band = ", ".join(f"{band} {seen}" + (f" (+{limits} upper limit{'s' if limits > 1 else ''})"
                                             if limits else "")
                         for band, (seen, limits) in curve.counts().items())
    click.echo(f"{object_id}: {per_band}; from {curve.alerts} alert{'s' if curve.alerts != 1 else ''}" +
               ("" if stamps else "; no cutouts in this folder"))
    err_console.print(escape(f"figure written to {out}"))


def _note_ignored(alerts) -> None:
    """Say how many files of the folder were left aside as not finkdl's."""
    from .alerts import ignored_note
    note = ignored_note(alerts)
    if note:
        err_console.print(escape(note))
