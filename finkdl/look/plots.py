"""Figures of a folder and of an object, drawn without a display (matplotlib's Agg canvas),
saved as images or as one self-contained HTML page (the image inline, the tables beside)."""
from __future__ import annotations

import base64
import html
from io import BytesIO
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import need
from .lightcurves import LightCurve
from .photometry import BAND_COLOURS
from .stamps import Stamp, image, scaled, write_file
from .summary import (MAG_BINS, MAG_RANGE, SKY_BINS, Section, Summary, day, label_title)

need("matplotlib")
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.dates import AutoDateLocator, DateFormatter, DayLocator  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, StrMethodFormatter  # noqa: E402

CLASSES_DRAWN = 9  # the most frequent classes get a colour each; the rest is "other"
OTHER, NO_LABEL = "other", "(null)"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf"]  # matplotlib's own, its greys kept for these two:
GREYS = {OTHER: "#7f7f7f", NO_LABEL: "#c7c7c7"}
LABEL_CHARS = 30  # longer labels are cut in figures (a legend of 200-character labels hides the plot)
# What --plot and --out draw (the README says so): images, documents, and for show a page.
FIGURE_FORMATS = ("png", "jpg", "jpeg", "pdf", "svg")
RA_TICKS = np.arange(0, 360, 30)  # degrees, labelled under the sky map


def figure_format(path: Path, html_allowed: bool = False) -> str:
    """The format a figure file's name asks for; ConfigError before any work if none."""
    suffix = path.suffix.lower().lstrip(".")
    formats = FIGURE_FORMATS + (("html",) if html_allowed else ())
    if suffix not in formats:
        raise ConfigError(f"cannot draw a figure as {path.name!r}",
                          hint="name it " + ", ".join(f".{f}" for f in formats))
    return suffix


def whole_counts(axis) -> None:
    """Ticks of a count axis at whole numbers only (no "0.5 alerts")."""
    axis.set_major_locator(MaxNLocator(integer=True))


def save(fig: Figure, path: Path, title: str = "", tables: list[Section] = ()) -> None:
    """Write the figure as its file name says (its folder made if need be); ``.html``: one
    page, the figure and ``tables``."""
    fmt = figure_format(path, html_allowed=True)
    drawn = BytesIO()
    fig.savefig(drawn, format="png" if fmt == "html" else fmt, dpi=100)
    content = drawn.getvalue() if fmt != "html" else page(
        title, base64.b64encode(drawn.getvalue()).decode(), tables).encode()
    write_file(path, content)


def page(title: str, png_base64: str, tables: list[Section]) -> str:
    """A self-contained HTML page: nothing fetched, opens from a laptop or a mail."""
    def table(section: Section) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in section.header) if any(section.header) else ""
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                       for row in section.rows)
        return f"<h2>{html.escape(section.title)}</h2><table><tr>{head}</tr>{body}</table>"
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}"
             "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}"
             "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png_base64}'>"
            + "".join(table(s) for s in tables) + "</body></html>\n")


def summary_figure(summary: Summary) -> Figure:
    """Alerts per night stacked by class, alerts per class, a sky map, magnitudes per band."""
    fig = Figure(figsize=(15, 11), layout="constrained")
    top, bottom = fig.subfigures(2, 1)  # laid out apart: the legend above does not shrink the map
    column = summary.class_column
    classes = _classes(summary, column)
    colours = _colours(classes)
    names = _legend_names(summary, column, classes)
    first_last = summary.night_range
    span = "" if first_last is None else f", {day(first_last[0])} to {day(first_last[1])}"
    name = summary.outdir.rstrip("/").rsplit("/", 1)[-1]  # a folder's, or an S3 prefix's
    fig.suptitle(f"{name}: {summary.rows:,} {summary.survey.title} alerts{span}",
                 fontsize=15)
    per_night, per_class = top.subplots(1, 2, width_ratios=[1.5, 1])
    _per_night(per_night, summary, column, classes, colours, names)
    _per_class(per_class, summary, column, classes, colours, names)
    grid = bottom.add_gridspec(1, 2, width_ratios=[1.5, 1])
    _sky(bottom.add_subplot(grid[0, 0], projection="mollweide"), summary, column, classes, colours)
    _magnitudes(bottom.add_subplot(grid[0, 1]), summary)
    return fig


def _classes(summary: Summary, column: str | None) -> list[str]:
    """Classes drawn in colour, most frequent first; then "other" if any is left."""
    if column is None:
        return ["alerts"]
    ranked = [_name(v) for v, _ in summary.labels[column].most_common()]
    return ranked[:CLASSES_DRAWN] + ([OTHER] if len(ranked) > CLASSES_DRAWN else [])


def _colours(classes: list[str]) -> dict[str, str]:
    """A colour of its own for each class drawn; the greys only for "other" and no label."""
    named = [c for c in classes if c not in GREYS]
    return {**{c: PALETTE[i % len(PALETTE)] for i, c in enumerate(named)}, **GREYS}


def _legend_names(summary: Summary, column: str | None, classes: list[str]) -> dict[str, str]:
    """How each class drawn is named in the figure: "other" says how many values it sums."""
    names = {c: _short(c) for c in classes}
    if column is not None and OTHER in classes:
        names[OTHER] = f"other ({len(summary.labels[column]) - (len(classes) - 1):,} values)"
    return names


def _name(value: object) -> str:
    return NO_LABEL if value is None else str(value)


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…"


def _drawn(value: object, classes: list[str]) -> str:
    name = _name(value)
    return name if name in classes else OTHER


def _per_night(ax, summary: Summary, column: str | None, classes: list[str], colours: dict,
               names: dict) -> None:
    nights = sorted(d for d in summary.nights if d is not None)
    if not nights:
        ax.text(0.5, 0.5, "no observation times", ha="center", transform=ax.transAxes)
        return
    index = {d: i for i, d in enumerate(nights)}
    counts = {c: np.zeros(len(nights)) for c in classes}
    source = summary.by_night[column].items() if column else (((d, None), n) for d, n in summary.nights.items())
    for (night, value), n in source:
        if night is not None:
            counts[_drawn(value, classes) if column else "alerts"][index[night]] += n
    dates = np.array(nights, dtype="datetime64[D]")
    bottom = np.zeros(len(nights))
    for c in classes:
        ax.bar(dates, counts[c], bottom=bottom, width=0.8, color=colours[c], label=names[c])
        bottom += counts[c]
    title = label_title(summary, column) if column else None
    ax.set_title(f"Alerts per night (UTC date){f', by {title}' if title else ''}")
    few = nights[-1] - nights[0] < 10  # whole days as ticks, not the hours of one night
    ax.xaxis.set_major_locator(DayLocator() if few else AutoDateLocator())
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    if few:
        ax.set_xlim(dates[0] - np.timedelta64(1, "D"), dates[-1] + np.timedelta64(1, "D"))
    ax.set_xlabel("night (UTC date)")
    ax.set_ylabel("alerts")
    whole_counts(ax.yaxis)
    ax.tick_params(axis="x", labelrotation=30)
    if column:
        ax.legend(fontsize=8, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _per_class(ax, summary: Summary, column: str | None, classes: list[str], colours: dict,
               names: dict) -> None:
    """The classes the other panels colour, each in its colour, the rest summed as "other"."""
    if column is None:
        ax.text(0.5, 0.5, "no label column", ha="center", transform=ax.transAxes)
        return
    counts = dict.fromkeys(classes, 0)
    for value, n in summary.labels[column].items():
        counts[_drawn(value, classes)] += n
    drawn = classes[::-1]  # the most frequent at the top, "other" at the bottom
    bars = ax.barh([names[c] for c in drawn], [counts[c] for c in drawn],
                   color=[colours[c] for c in drawn])
    ax.bar_label(bars, labels=[f"{counts[c]:,}" for c in drawn], padding=3, fontsize=8)
    ax.set_title(f"Alerts per {label_title(summary, column)}")
    ax.set_xlabel("alerts")
    whole_counts(ax.xaxis)
    ax.margins(x=0.15)


def _sky(ax, summary: Summary, column: str | None, classes: list[str], colours: dict) -> None:
    """Mollweide map in equatorial coordinates, east (RA increasing) to the left as on the sky."""
    ax.set_title("Sky (equatorial, J2000)" + (f", colours by {label_title(summary, column)} as above"
                                               if summary.sky and summary.sky.points and column else ""),
                 pad=22)
    ax.grid(True, alpha=0.4)
    _ra_labels_under(ax)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel("declination Dec (°)")
    sky = summary.sky
    if sky is None:
        ax.text(0, 0, "no positions", ha="center")
        return
    if sky.points:
        import pyarrow as pa
        points = pa.concat_tables(sky.points)
        ra, dec = (points[c].to_numpy(zero_copy_only=False).astype(float) for c in ("ra", "dec"))
        values = points[column].to_pylist() if column else [None] * len(ra)
        drawn = np.array([_drawn(v, classes) if column else "alerts" for v in values])
        for c in classes:
            mine = drawn == c
            if mine.any():
                ax.scatter(_lon(ra[mine]), np.radians(dec[mine]), s=40 if len(ra) < 1000 else 10,
                           color=colours[c], alpha=0.8, edgecolors="none")
        return
    # Cell j of the map spans longitude -180 + 2j to -178 + 2j, that is RA 178 - 2j to 180 - 2j.
    columns = (SKY_BINS[0] // 2 - 1 - np.arange(SKY_BINS[0])) % SKY_BINS[0]
    counts = np.ma.masked_equal(sky.counts[columns], 0)
    mesh = ax.pcolormesh(np.radians(np.linspace(-180, 180, SKY_BINS[0] + 1)),
                         np.radians(np.linspace(-90, 90, SKY_BINS[1] + 1)), counts.T,
                         norm=LogNorm(), cmap="viridis")
    bar = ax.figure.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.6, pad=0.1,
                             label=f"alerts per {360 // SKY_BINS[0]}°×{180 // SKY_BINS[1]}° cell")
    bar.ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # whole counts: 1, 2, 5, 10…
    bar.ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    bar.ax.xaxis.set_minor_formatter(NullFormatter())


def _ra_labels_under(ax) -> None:
    """RA meridians every 30°, labelled in a row under the map rather than along the equator,
    where they sat on the alerts. On a Mollweide map the equator is a straight line across
    the axes: the meridian of longitude λ crosses it at x = 0.5 + λ/2π of the axes' width."""
    ax.set_xticks(_lon(RA_TICKS.astype(float)), [])
    for ra in RA_TICKS:
        x = 0.5 + float(_lon(np.array([float(ra)]))[0]) / (2 * np.pi)
        ax.text(x, -0.03, f"{ra}°", transform=ax.transAxes, ha="center", va="top", fontsize=8)
    ax.set_xlabel("right ascension RA (°), growing to the left (east)", labelpad=24)


def _lon(ra: np.ndarray) -> np.ndarray:
    """RA in degrees as the map's longitude in radians: 0h at the centre, east to the left."""
    return np.radians(-np.where(ra > 180, ra - 360, ra))


def _magnitudes(ax, summary: Summary) -> None:
    if not summary.magnitudes:
        ax.text(0.5, 0.5, "no brightness column", ha="center", transform=ax.transAxes)
        return
    edges = np.linspace(*MAG_RANGE, MAG_BINS + 1)
    used = np.nonzero(sum(summary.magnitudes.values()))[0]
    for band, counts in sorted(summary.magnitudes.items(), key=lambda kv: "ugrizy".find(kv[0])):
        ax.stairs(counts, edges, label=f"{band} ({int(counts.sum()):,})", linewidth=1.8,
                  color=BAND_COLOURS.get(band))
    if used.size:
        ax.set_xlim(edges[used[0]] - 0.5, edges[used[-1] + 1] + 0.5)
    ax.set_title(f"Brightness of the alerts, per band ({summary.brightness})")
    ax.set_xlabel(f"{summary.brightness} (mag)")
    ax.set_ylabel("alerts per 0.1 mag")
    whole_counts(ax.yaxis)
    ax.legend(title="band", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: never on a bin


def lightcurve_figure(curve: LightCurve, stamps: list[Stamp], stretch: str = "zscale") -> Figure:
    """The light curve per band, and beside it the latest alert's science, template and
    difference stamps."""
    fig = Figure(figsize=(14, 6.5), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[3.2, 1]) if stamps else fig.add_gridspec(1, 1)
    ax = fig.add_subplot(grid[:, 0] if stamps else grid[0, 0])
    phot = curve.phot
    for band in sorted(dict.fromkeys(curve.band.tolist()), key=lambda b: "ugrizy".find(b)):
        colour = BAND_COLOURS.get(band)
        seen = (curve.band == band) & ~curve.limit
        if seen.any():  # a band of upper limits only is listed by its limits alone
            ax.errorbar(curve.mjd[seen], curve.value[seen], yerr=curve.error[seen], fmt="o", ms=5,
                        color=colour, capsize=2, label=f"{band} ({int(seen.sum())})")
        limits = (curve.band == band) & curve.limit
        if limits.any():
            ax.scatter(curve.mjd[limits], curve.value[limits], marker="v", s=30, color=colour,
                       alpha=0.35, label=f"{band} upper limits ({int(limits.sum())})")
    if phot.is_flux:
        ax.axhline(0, color="#888888", linewidth=0.8)
        ax.set_ylabel(f"difference-image flux {phot.value} (nJy)")
    else:
        ax.invert_yaxis()
        ax.set_ylabel(f"{phot.value} (mag)")
    ax.set_xlabel("MJD")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("upper limits" in labels[i], i))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], title="band (points)",
              fontsize=9)
    limits = f", {int(np.sum(curve.limit))} upper limits" if phot.upper_limit else ""
    ax.set_title(f"{curve.object_id} ({curve.survey.title}): {int(np.sum(~curve.limit))} "
                 f"detections{limits}, from {curve.alerts} alert{'s' if curve.alerts != 1 else ''}"
                 " in the folder", fontsize=12)
    for row, stamp in enumerate(stamps[:3]):
        sub = fig.add_subplot(grid[row, 1])
        sub.imshow(scaled(image(stamp.fits), stretch), cmap="gray", origin="lower", vmin=0, vmax=1,
                   interpolation="nearest")
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"{stamp.kind} ({stretch})", fontsize=10)
        if row == len(stamps[:3]) - 1:
            sub.set_xlabel(f"latest alert {stamp.alert_id}\nMJD {stamp.mjd:.4f}", fontsize=9)
    return fig
