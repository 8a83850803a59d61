"""finkdl show, cutouts and lightcurve on folders written without a broker (as a worker writes
its files): what else a user keeps in the folder, folders of two surveys, and the figures
astronomers read closely (colours, ticks, the sky map's labels, legends, stretches)."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest

from finkdl.errors import ConfigError, ExitCode, NotFoundError
from finkdl.local import generator
from finkdl.look.alerts import ignored_note, open_alerts
from finkdl.look.lightcurves import LightCurve, light_curve
from finkdl.look.photometry import PHOTOMETRY
from finkdl.look.summary import sections, summarize
from finkdl.surveys import ZTF

from conftest import LSST_SAMPLE, SHARED, run_finkdl, write_folder

plots = pytest.importorskip("finkdl.look.plots")  # the show extra
stamps = pytest.importorskip("finkdl.look.stamps")

README = Path(__file__).resolve().parents[1] / "README.md"
needs_samples = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/fink is not present")


def ztf_folder(outdir: Path, n: int = 300, classes: int = 4, seed: int = 1) -> tuple[Path, list[dict]]:
    """ZTF-like alerts in ``classes`` finkclass folders (and some without a class)."""
    records = list(generator.alerts(n, slim=True, cutouts=False, seed=seed))
    rng = random.Random(seed)
    names = [f"class {i}" for i in range(classes)]
    for r in records:  # class i about twice as frequent as class i + 1
        r["finkclass"] = None if rng.random() < 0.05 else names[min(int(rng.expovariate(0.7)), classes - 1)]
    return write_folder(outdir, generator.ztf_schema(slim=True, cutouts=False), records, "ztf",
                        "finkclass"), records


@pytest.fixture(scope="module")
def lsst_sample(tmp_path_factory) -> tuple[Path, list[dict]]:
    if not SHARED.exists():
        pytest.skip("../shared/data/fink is not present")
    avro, schema = LSST_SAMPLE
    with open(SHARED / avro, "rb") as f:
        records = list(fastavro.reader(f))
    outdir = tmp_path_factory.mktemp("lsst-sample")
    return write_folder(outdir, json.loads((SHARED / schema).read_text()), records, "lsst", "time",
                        "ftransfer_lsst_2026-03-22_1"), records


def _folder_rows(summary) -> dict[str, str]:
    return dict(sections(summary)[0].rows)


# ---------------------------------------------------------------- files that are not finkdl's

def test_files_that_are_not_finkdls_are_left_aside_and_counted(tmp_path):
    outdir, records = ztf_folder(tmp_path / "alerts")
    untouched = open_alerts(outdir)
    clean = summarize(untouched)
    (outdir / "notes.txt").write_text("downloaded for the SN paper\n")
    (outdir / "mine.csv").write_text("a,b\n1,2\n")
    (outdir / "finkclass=class%200" / "look.png").write_bytes(b"\x89PNG not a table")
    (outdir / ".DS_Store").write_bytes(b"\0\0")  # hidden: no one's business
    (outdir / "finkclass=class%200" / ".part-x-P000-000000000000-000000000001-of1.parquet.1.tmp"
     ).write_bytes(b"half written")  # a crash's leftover
    (outdir / "_quarantine").mkdir()
    (outdir / "_quarantine" / "quarantine-t-P000-000000000000-000000000001-of1.parquet").write_bytes(b"x")
    alerts = open_alerts(outdir)
    assert alerts.ignored == 3
    summary = summarize(alerts, plot=True)
    assert (summary.rows, summary.nights, summary.labels) == (clean.rows, clean.nights, clean.labels)
    assert _folder_rows(summary)["other files"].startswith("3 left aside")
    assert "left aside 3 files" in ignored_note(alerts)
    assert "other files" not in _folder_rows(clean) and ignored_note(untouched) is None
    curve, _ = light_curve(alerts, records[0]["objectId"])  # lightcurve reads past them too
    assert curve.alerts >= 1


def test_shows_figure_saved_inside_the_folder_breaks_neither_the_next_show_nor_pandas(tmp_path):
    outdir, records = ztf_folder(tmp_path / "alerts")
    (outdir / "notes.txt").write_text("mine")
    for _ in range(2):
        done = run_finkdl("show", str(outdir), "--plot", str(outdir / "summary.png"))
        assert done.returncode == 0, done.stderr
        assert f"figure written to {outdir / '_summary.png'}" in done.stderr
    assert "other files" in done.stdout and "1 left aside" in done.stdout  # notes.txt
    assert (outdir / "_summary.png").read_bytes()[:4] == b"\x89PNG"
    (outdir / "notes.txt").unlink()
    assert len(pd.read_parquet(outdir, dtype_backend="pyarrow")) == len(records)


# ---------------------------------------------------------------- folders of several surveys

def test_nights_are_counted_over_the_rows_of_every_survey_of_the_folder(tmp_path):
    lsst = list(generator.alerts(40, survey="lsst", seed=2))
    elasticc = list(generator.alerts(60, survey="elasticc", seed=3))
    lsst_night = 61105.0  # 2026-03-06
    for i, r in enumerate(lsst):
        r["diaSource"]["midpointMjdTai"] = lsst_night + 0.1 + i / 1000
    elasticc_nights = (60673.0, 60674.0)  # 2024-12-29, 2024-12-30
    for i, r in enumerate(elasticc):
        r["diaSource"]["midPointTai"] = elasticc_nights[i % 2] + 0.2
    write_folder(tmp_path, generator.lsst_schema(), lsst, "lsst", topic="ftransfer_lsst_2026-03-06_1")
    write_folder(tmp_path, generator.elasticc_schema(), elasticc, "elasticc",
                 topic="ftransfer_elasticc_2024-12-29_1")
    summary = summarize(open_alerts(tmp_path))
    days = {str(np.datetime64(int(d), "D")): n for d, n in summary.nights.items()}
    assert days == {"2026-03-06": 40, "2024-12-29": 30, "2024-12-30": 30}
    rows = _folder_rows(summary)
    assert rows["nights"].startswith("2024-12-29 to 2026-03-06 (3 nights")
    assert rows["survey"] == "Rubin/LSST (40 alerts), ELASTiCC (60 alerts)"


# ---------------------------------------------------------------- figures

def test_every_class_drawn_has_a_colour_of_its_own_and_other_sums_the_rest(tmp_path):
    outdir, _records = ztf_folder(tmp_path, n=2000, classes=14)
    summary = summarize(open_alerts(outdir), plot=True)
    fig = plots.summary_figure(summary)
    per_class = next(ax for ax in fig.get_axes() if ax.get_title().startswith("Alerts per finkclass"))
    bars = per_class.containers[0]
    colours = [tuple(np.round(b.get_facecolor(), 3)) for b in bars]
    assert len(set(colours)) == len(colours) == plots.CLASSES_DRAWN + 1  # and "other"
    names = [t.get_text() for t in per_class.get_yticklabels()]
    assert names[0].startswith("other (") and sum(b.get_width() for b in bars) == summary.rows


def _ticks_are_whole(values) -> bool:
    return all(float(v).is_integer() for v in values)


def test_count_axes_have_whole_ticks_only(tmp_path):
    outdir, _records = ztf_folder(tmp_path, n=3, classes=2)
    fig = plots.summary_figure(summarize(open_alerts(outdir), plot=True))
    fig.canvas.draw()
    per_night, per_class, _sky, mags = fig.get_axes()[:4]
    for axis in (per_night.yaxis, per_class.xaxis, mags.yaxis):
        shown = [v for v in axis.get_majorticklocs() if axis.axes.viewLim.contains(
            *((v, axis.axes.viewLim.y0) if axis is axis.axes.xaxis else (axis.axes.viewLim.x0, v)))]
        assert shown and _ticks_are_whole(shown), (axis.axes.get_title(), shown)


def test_sky_map_labels_sit_under_the_map_with_their_units(tmp_path):
    outdir, _records = ztf_folder(tmp_path, n=50)
    fig = plots.summary_figure(summarize(open_alerts(outdir), plot=True))
    sky = next(ax for ax in fig.get_axes() if ax.name == "mollweide")
    assert all(t.get_text() == "" for t in sky.get_xticklabels())  # none along the equator
    ra = [t for t in sky.texts if t.get_text().endswith("°")]
    assert len(ra) == 12 and all(t.get_position()[1] < 0 and t.get_transform() == sky.transAxes
                                 for t in ra)
    assert "(°)" in sky.get_xlabel() and "RA" in sky.get_xlabel()
    assert "(°)" in sky.get_ylabel() and "Dec" in sky.get_ylabel()


def test_the_magnitude_legend_is_beside_the_histogram(tmp_path):
    outdir, _records = ztf_folder(tmp_path, n=200)
    fig = plots.summary_figure(summarize(open_alerts(outdir), plot=True))
    fig.canvas.draw()
    mags = next(ax for ax in fig.get_axes() if ax.get_title().startswith("Brightness"))
    legend = mags.get_legend().get_window_extent()
    assert legend.x0 >= mags.get_window_extent().x1


def test_a_band_of_upper_limits_only_is_not_listed_as_points():
    curve = LightCurve("ZTF26x", ZTF, PHOTOMETRY["ztf"], 1, mjd=np.array([1.0, 2.0, 3.0]),
                       band=np.array(["g", "g", "i"], dtype=object), value=np.array([18.0, 18.1, 20.0]),
                       error=np.array([0.1, 0.1, np.nan]), limit=np.array([False, False, True]))
    fig = plots.lightcurve_figure(curve, [])
    labels = [t.get_text() for t in fig.get_axes()[0].get_legend().get_texts()]
    assert labels == ["g (2)", "i upper limits (1)"]


@needs_samples
def test_diaobjectid_0_is_refused_as_no_object(lsst_sample):
    outdir, records = lsst_sample
    assert any(r["diaSource"]["diaObjectId"] == 0 for r in records)
    alerts = open_alerts(outdir)
    with pytest.raises(NotFoundError, match="diaObjectId 0 means no object"):
        light_curve(alerts, "0")
    with pytest.raises(NotFoundError, match="diaObjectId 0 means no object"):
        stamps.find_stamps(alerts, objects=["0"])
    real = next(str(r["diaSource"]["diaObjectId"]) for r in records if r["diaSource"]["diaObjectId"])
    assert light_curve(alerts, real)[0].alerts >= 1


@needs_samples
def test_codes_of_a_label_are_said_to_be_codes(lsst_sample):
    summary = summarize(open_alerts(lsst_sample[0]), plot=True)
    titles = [s.title for s in sections(summary)]
    assert "alerts per clf.cats_class (code)" in titles
    assert "alerts per tns_type_recomputed" in titles  # names, not codes
    fig = plots.summary_figure(summary)
    assert summary.class_column == "clf.cats_class"
    assert all("clf.cats_class (code)" in ax.get_title() for ax in fig.get_axes()[:2])


def _faint_stamp() -> tuple[np.ndarray, np.ndarray]:
    """Sky 100 ± 10, a source 5 sigmas high at the centre, a few hot pixels; the source's mask."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[:63, :63]
    source = np.exp(-((x - 31) ** 2 + (y - 31) ** 2) / 8)
    data = 100 + rng.normal(0, 10, (63, 63)) + 50 * source
    data[5, 5] = data[50, 10] = 5000.0
    return data, source > 0.6


def test_asinh_keeps_the_sky_dark_and_a_faint_source_seen():
    data, core = _faint_stamp()
    levels = stamps.scaled(data, "asinh")
    sky = np.median(levels[~core])
    assert sky < 0.3  # the sky not lifted to grey (a fixed softening put it at 0.75)
    assert np.median(levels[core]) - sky > 0.12  # the source stands out of it
    assert levels[5, 5] == 1.0 and levels[core].max() < 0.6  # its core not saturated


# ---------------------------------------------------------------- figure file names

def test_figure_formats_are_those_the_readme_names():
    for name in ("out.png", "out.jpg", "out.JPEG", "out.pdf", "out.svg"):
        assert plots.figure_format(Path(name)) == name.rsplit(".", 1)[1].lower()
    assert plots.figure_format(Path("s.html"), html_allowed=True) == "html"
    for name in ("out.tif", "out.eps", "out.webp", "out.html", "out"):
        with pytest.raises(ConfigError, match="cannot draw"):
            plots.figure_format(Path(name))
    sentence = re.search(r"a\s+figure name it cannot draw \(not (.*?)\)", README.read_text(), re.S)
    named = set(re.findall(r"`\.(\w+)`", sentence.group(1)))
    assert named == set(plots.FIGURE_FORMATS) | {"html"}


def test_a_jpg_figure_is_drawn(tmp_path):
    outdir, _records = ztf_folder(tmp_path / "alerts", n=20)
    done = run_finkdl("show", str(outdir), "--plot", str(tmp_path / "out.jpg"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.jpg").read_bytes()[:2] == b"\xff\xd8"
    done = run_finkdl("show", str(outdir), "--plot", str(tmp_path / "out.tif"))
    assert done.returncode == ExitCode.USAGE and "cannot draw" in done.stderr
    assert not (tmp_path / "out.tif").exists()


def test_a_figure_saved_inside_the_output_folder_gets_a_name_its_readers_skip(tmp_path):
    from finkdl.look.commands import figure_path
    outdir = tmp_path / "alerts"
    outdir.mkdir()
    assert figure_path(outdir / "summary.png", str(outdir)) == outdir / "_summary.png"
    assert figure_path(outdir / "sub" / "x.png", str(outdir)) == outdir / "sub" / "_x.png"
    assert figure_path(tmp_path / "summary.png", str(outdir)) == tmp_path / "summary.png"
    assert figure_path(outdir / "_mine.png", str(outdir)) == outdir / "_mine.png"


def test_a_reader_gone_from_the_pipe_ends_show_and_verify_quietly_with_141(tmp_path):
    """``finkdl verify DIR | head``: the reader leaves early. 141, as a shell reports a closed
    pipe, and nothing on stderr; 1 would read as verify finding a problem."""
    outdir, _ = ztf_folder(tmp_path / "alerts", n=50)
    for command in ("show", "verify"):
        unread, stdout = os.pipe()
        os.close(unread)  # the reader has gone before the first line
        done = subprocess.run([sys.executable, "-m", "finkdl", command, str(outdir)], stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=120)
        os.close(stdout)
        assert done.returncode == ExitCode.OUTPUT_CLOSED and done.stderr == "", (command, done.stderr)
