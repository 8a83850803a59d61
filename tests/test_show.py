"""finkdl show, cutouts and lightcurve on folders made the way users make them: the real Fink
samples of ../shared and generated topics, downloaded from the local broker."""
from __future__ import annotations

import gzip
import io
import json
import math
import uuid
from collections import Counter
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finkdl.look import commands as cli
from finkdl.local import generator
from finkdl.errors import ExitCode
from finkdl.look import photometry as phot_module
from finkdl.look.alerts import detect_survey, open_alerts
from finkdl.look.lightcurves import light_curve, measurements
from finkdl.look.photometry import PHOTOMETRY, magnitudes
from finkdl.look.stamps import png_zoom, scaled
from finkdl.look.summary import MAG_BINS, MAG_RANGE, binned, summarize, value_rows
from finkdl.surveys import LSST, ZTF

from conftest import SHARED, run_finkdl

fits = pytest.importorskip("astropy.io.fits")
mpl_image = pytest.importorskip("matplotlib.image")

REAL = {"ztf": ("ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json"),
        "lsst": ("lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json")}
STAMPED_EVERY = 100  # generated alerts with FITS stamps: one in a hundred
needs_samples = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/fink is not present")


# ---------------------------------------------------------------- folders, made once per module

def _download(broker, outdir: Path, schema: dict, records: list[dict], survey: str, *args: str) -> Path:
    topic = f"ftransfer_{survey}_2026-03-22_show{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 2)
    generator.produce(broker.servers, topic, schema, records, 2)
    _fetch(broker, topic, outdir, survey, *args)
    return outdir


def _fetch(broker, topic: str, outdir: Path, survey: str, *args: str) -> None:
    run_finkdl("download", topic, "--outdir", str(outdir), "--timeout", "2", "--progress", "quiet",
               "--survey", survey, *args, servers=broker.servers,
               group=f"show-{uuid.uuid4().hex[:8]}", check=True)


def _real(survey: str) -> tuple[dict, list[dict]]:
    if not SHARED.exists():
        pytest.skip("../shared/data/fink is not present")
    avro, schema = REAL[survey]
    with open(SHARED / avro, "rb") as f:
        return json.loads((SHARED / schema).read_text()), list(fastavro.reader(f))


@pytest.fixture(scope="module")
def ztf_real(broker, tmp_path_factory):
    schema, records = _real("ztf")
    return _download(broker, tmp_path_factory.mktemp("ztf-real"), schema, records, "ztf",
                     "--partition-by", "finkclass"), records


@pytest.fixture(scope="module")
def lsst_real(broker, tmp_path_factory):
    schema, records = _real("lsst")
    return _download(broker, tmp_path_factory.mktemp("lsst-real"), schema, records, "lsst",
                     "--partition-by", "time"), records


def fits_stamp(seed: int, kind: str) -> bytes:
    """A gzipped 63×63 FITS stamp as ZTF sends them: a star on noise, a masked corner."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:63, :63]
    data = 100 + rng.normal(0, 5, (63, 63)) + 2000 * np.exp(-((x - 31) ** 2 + (y - 29) ** 2) / 8)
    data = data.astype(np.float32)
    data[:3, :3] = np.nan
    hdu = fits.PrimaryHDU(data)
    hdu.header["CANDID"] = (seed, "alert id")
    hdu.header["STAMP"] = kind
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return gzip.compress(buffer.getvalue())


@pytest.fixture(scope="module")
def generated_topic(broker):
    """3,000 ZTF-like alerts (hostile finkclass labels), one in a hundred with FITS stamps."""
    records = list(generator.alerts(3000, slim=True, cutouts=True, hostile=True, seed=21))
    for i, alert in enumerate(records):
        for kind in ("Science", "Template", "Difference"):
            alert[f"cutout{kind}"]["stampData"] = (fits_stamp(alert["candid"], kind)
                                                  if i % STAMPED_EVERY == 0 else None)
    topic = f"ftransfer_ztf_2026-11-28_show{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 3)
    generator.produce(broker.servers, topic, generator.ztf_schema(slim=True, cutouts=True), records, 3)
    return topic, records


@pytest.fixture(scope="module")
def generated(broker, generated_topic, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("generated")
    _fetch(broker, generated_topic[0], outdir, "ztf", "--partition-by", "finkclass")
    return outdir, generated_topic[1]


@pytest.fixture(scope="module")
def no_cutouts(broker, generated_topic, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("no-cutouts")
    _fetch(broker, generated_topic[0], outdir, "ztf", "--drop-cutouts")
    return outdir, generated_topic[1]


@pytest.fixture(scope="module")
def lsst_generated(broker, tmp_path_factory):
    records = list(generator.alerts(500, survey="lsst", seed=5))
    return _download(broker, tmp_path_factory.mktemp("lsst-generated"), generator.lsst_schema(),
                     records, "lsst", "--partition-by", "time"), records


# ---------------------------------------------------------------- what pandas says

def _pandas_counts(df: pd.DataFrame, path: str) -> Counter:
    head, *rest = path.split(".")
    values = df[head].astype(object)
    for name in rest:
        values = values.map(lambda r, name=name: None if r is None else r[name])
    return Counter(None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                   for v in values.tolist())


def _pandas_nights(df: pd.DataFrame, survey) -> Counter:
    record, name = survey.time_column.split(".")
    return Counter(int(math.floor(r[name] - survey.day_offset)) for r in df[record])


def _assert_summary_is_pandas(outdir: Path) -> None:
    summary = summarize(open_alerts(outdir), plot=True)
    df = pd.read_parquet(outdir)
    assert summary.rows == len(df) == int(summary.sky.counts.sum())
    assert summary.nights == _pandas_nights(df, summary.survey)
    assert summary.labels, "no label counted"
    for column, counts in summary.labels.items():
        assert counts == _pandas_counts(df, column), column
    record, band = summary.survey.time_column.split(".")[0], summary.survey.band_column.split(".")[1]
    phot = PHOTOMETRY[summary.survey.name]
    entries = df[record].tolist()
    codes = np.array([e[band] for e in entries], dtype=object)
    mags = magnitudes(np.array([np.nan if e[phot.value] is None else e[phot.value] for e in entries],
                               dtype=float), phot)
    for code in set(codes.tolist()) - {None}:
        inside = (codes == code) & (mags >= MAG_RANGE[0]) & (mags <= MAG_RANGE[1])
        assert summary.magnitudes[phot.bands.get(code, str(code))].sum() == inside.sum(), code


# ---------------------------------------------------------------- without a broker

def test_survey_is_told_by_its_id_and_observation_columns():
    ztf = pa.schema([("candid", pa.int64()), ("candidate", pa.struct([("jd", pa.float64())]))])
    lsst = pa.schema([("diaSourceId", pa.int64()),
                      ("diaSource", pa.struct([("midpointMjdTai", pa.float64())]))])
    assert detect_survey(ztf) is ZTF and detect_survey(lsst) is LSST
    assert detect_survey(pa.schema([("candid", pa.int64())])) is None


def test_measurements_repeated_by_several_alerts_are_kept_once_in_time_order():
    entry = pa.struct([("jd", pa.float64()), ("fid", pa.int32()), ("magpsf", pa.float32()),
                       ("sigmapsf", pa.float32()), ("diffmaglim", pa.float32())])
    history = [{"jd": 2460001.5, "fid": 1, "magpsf": 18.0, "sigmapsf": 0.1, "diffmaglim": 20.0},
               {"jd": 2460000.5, "fid": 2, "magpsf": None, "sigmapsf": None, "diffmaglim": 19.5},
               {"jd": 2459999.5, "fid": 2, "magpsf": None, "sigmapsf": None, "diffmaglim": None}]
    rows = pa.table({"time": [2460003.5, 2460002.5], "band": pa.array([1, 2], pa.int32()),
                     "value": pa.array([17.5, 17.8], pa.float32()),
                     "error": pa.array([0.05, 0.06], pa.float32()),
                     "history": pa.array([history, history[:2]], pa.list_(entry))})
    times, bands, values, errors, limits = measurements(rows, ZTF, PHOTOMETRY["ztf"])
    assert times.tolist() == [60000.0, 60001.0, 60002.0, 60003.0]  # MJD, the empty entry left out
    assert bands.tolist() == ["r", "g", "r", "g"]
    assert limits.tolist() == [True, False, False, False]
    assert values[0] == 19.5 and math.isnan(errors[0])  # the limiting magnitude


def test_flux_becomes_ab_magnitude_and_negative_flux_has_none():
    mags = magnitudes(np.array([3631e9, 1.0, -5.0]), PHOTOMETRY["lsst"])
    assert mags[0] == pytest.approx(0.0, abs=1e-3) and mags[1] == pytest.approx(31.4)
    assert math.isnan(mags[2])
    assert phot_module.mjd(np.array([2400000.5]), ZTF)[0] == 0.0


def test_bins_are_those_of_numpy_histogram():
    values = np.random.default_rng(1).normal(20, 3, 10_000)
    values[:5] = [np.nan, 8.0, 32.0, 7.99, 32.01]
    bins = binned(values, MAG_RANGE, MAG_BINS)
    mine = np.bincount(bins[bins >= 0], minlength=MAG_BINS)
    theirs = np.histogram(values[np.isfinite(values)], bins=MAG_BINS, range=MAG_RANGE)[0]
    assert np.abs(mine - theirs).sum() <= 2  # floating rounding at a few bin edges, no more
    assert mine.sum() == theirs.sum()


def test_stretched_stamp_is_not_blank_and_nan_pixels_are_black():
    data = gzip.decompress(fits_stamp(7, "Science"))
    image = fits.getdata(io.BytesIO(data)).astype(float)
    for stretch in ("zscale", "asinh"):
        levels = scaled(image, stretch)
        assert levels.min() >= 0 and levels.max() <= 1 and levels.std() > 0.05
        assert (levels[:3, :3] == 0).all()
    assert (scaled(np.full((5, 5), np.nan)) == 0).all()
    assert png_zoom((63, 63)) == 5 and png_zoom((30, 30)) == 9


def test_value_rows_list_the_most_frequent_and_sum_the_rest():
    rows = value_rows(Counter({"a": 5, None: 3, "b": 1, "c": 1}), 10, shown=2)
    assert rows == [("a", "5", "50.0%"), ("(null)", "3", "30.0%"), ("… 2 more values", "2", "20.0%")]


def test_progress_bar_shows_only_after_the_delay_and_on_a_terminal(monkeypatch):
    from rich.console import Console
    monkeypatch.setattr(cli, "err_console", Console(file=io.StringIO(), force_terminal=True))
    with cli.ProgressAfter("reading", delay=3600) as update:
        update(1, 10)
        assert update.bar is None
    with cli.ProgressAfter("reading", delay=0) as update:
        update(1, 10)
        assert update.bar is not None
    monkeypatch.setattr(cli, "err_console", Console(file=io.StringIO(), force_terminal=False))
    with cli.ProgressAfter("reading", delay=0) as update:
        update(1, 10)
        assert update.bar is None


# ---------------------------------------------------------------- show

@pytest.mark.broker
@pytest.mark.parametrize("folder", ["ztf_real", "lsst_real", "generated", "lsst_generated",
                                    "no_cutouts"])
def test_show_counts_equal_pandas_counts(folder, request):
    _assert_summary_is_pandas(request.getfixturevalue(folder)[0])


@pytest.mark.broker
def test_show_counts_a_folder_of_two_schema_versions_as_pandas_does(broker, tmp_path):
    import versions
    _download(broker, tmp_path, versions.v1_schema(), versions.v1_alerts(300), "ztf",
              "--partition-by", "finkclass")
    _download(broker, tmp_path, versions.v2_schema(), versions.v2_alerts(300), "ztf",
              "--partition-by", "finkclass")
    _assert_summary_is_pandas(tmp_path)


@pytest.mark.broker
def test_show_reports_progress_up_to_every_row(generated):
    seen = []
    summary = summarize(open_alerts(generated[0]), on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (summary.rows, summary.rows) == (3000, 3000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.broker
def test_show_prints_the_summary_and_draws_png_and_html(generated, tmp_path):
    outdir, records = generated
    png, page = tmp_path / "summary.png", tmp_path / "summary.html"
    done = run_finkdl("show", str(outdir), "--plot", str(png), check=True)
    assert "ZTF" in done.stdout and "3,000" in done.stdout and "alerts per finkclass" in done.stdout
    assert "tnsclass" in done.stdout and "3.3" in done.stdout  # a label and the schema version
    first = min(r["candidate"]["jd"] for r in records)
    night = str(np.datetime64(int(first - ZTF.day_offset), "D"))
    assert night in done.stdout
    _assert_picture(png, (1100, 1500))
    run_finkdl("show", str(outdir), "--plot", str(page), check=True)
    text = page.read_text()
    assert "<img" in text and "data:image/png;base64," in text and "alerts per finkclass" in text


@needs_samples
@pytest.mark.broker
@pytest.mark.parametrize("folder,survey,label", [("ztf_real", "ZTF", "SN candidate"),
                                                 ("lsst_real", "Rubin/LSST", "lsst.v10_0")])
def test_show_of_the_real_samples_names_survey_rows_and_labels(folder, survey, label, request,
                                                               tmp_path):
    outdir, records = request.getfixturevalue(folder)
    done = run_finkdl("show", str(outdir), "--plot", str(tmp_path / "summary.png"), check=True)
    assert survey in done.stdout and label in done.stdout and f" {len(records)} " in done.stdout
    _assert_picture(tmp_path / "summary.png", (1100, 1500))


# ---------------------------------------------------------------- cutouts

def _stamp_bytes(record: dict, kind: str) -> bytes:
    """What a stamp of a source alert holds, decompressed: what finkdl must write."""
    value = record[f"cutout{kind.capitalize()}"]
    raw = value["stampData"] if isinstance(value, dict) else value
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _object_of(record: dict) -> str:
    return record["objectId"] if "objectId" in record else str(record["diaSource"]["diaObjectId"])


def _id_of(record: dict) -> int:
    return record["candid"] if "candid" in record else record["diaSourceId"]


@needs_samples
@pytest.mark.broker
@pytest.mark.filterwarnings("ignore:Found a SIMPLE card")  # ZTF's stamps' own header, as sent
@pytest.mark.parametrize("folder", ["ztf_real", "lsst_real"])
def test_cutouts_fits_equal_the_source_stamps_decompressed(folder, request, tmp_path):
    outdir, records = request.getfixturevalue(folder)
    chosen = records[:3]
    done = run_finkdl("cutouts", str(outdir), "--id", ",".join(str(_id_of(r)) for r in chosen),
                      "--out", str(tmp_path), check=True)
    written = sorted(tmp_path.iterdir())
    assert len(written) == 9 and sorted(done.stdout.split()) == sorted(str(p) for p in written)
    for record in chosen:
        for kind in ("science", "template", "difference"):
            path = tmp_path / f"{_object_of(record)}_{_id_of(record)}_{kind}.fits"
            assert path.read_bytes() == _stamp_bytes(record, kind)
            with fits.open(path) as hdus:  # a FITS file astropy reads, headers intact
                assert hdus[0].header["NAXIS"] == 2
                assert len(hdus) == (3 if folder == "lsst_real" else 1)  # LSST: image, UNCERT, PSF


@pytest.mark.broker
def test_cutouts_of_an_object_are_its_generated_stamps_as_sent(generated, tmp_path):
    outdir, records = generated
    stamped = [r for i, r in enumerate(records) if i % STAMPED_EVERY == 0][:2]
    args = [a for r in stamped for a in ("--object", r["objectId"])]
    run_finkdl("cutouts", str(outdir), *args, "--out", str(tmp_path), check=True)
    assert len(list(tmp_path.iterdir())) == 6
    for record in stamped:
        path = tmp_path / f"{record['objectId']}_{record['candid']}_template.fits"
        assert path.read_bytes() == _stamp_bytes(record, "template")
        assert fits.getheader(path)["CANDID"] == record["candid"]


def _assert_picture(path: Path, size: tuple[int, int]) -> None:
    """A PNG of ``size`` (rows, columns) that is not one flat colour."""
    pixels = mpl_image.imread(path)
    assert pixels.shape[:2] == size
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.02 and len(np.unique(np.round(grey, 2))) > 10


@needs_samples
@pytest.mark.broker
@pytest.mark.parametrize("folder,stretch,side", [("ztf_real", "zscale", 315), ("lsst_real", "asinh", 270)])
def test_cutouts_png_have_the_expected_size_and_are_not_blank(folder, stretch, side, request, tmp_path):
    outdir, records = request.getfixturevalue(folder)
    record = records[0]
    run_finkdl("cutouts", str(outdir), "--object", _object_of(record), "--format", "png",
               "--stretch", stretch, "--out", str(tmp_path), check=True)
    pngs = sorted(tmp_path.glob(f"*_{_id_of(record)}_*.png"))
    assert len(pngs) == 3
    for png in pngs:
        _assert_picture(png, (side, side))  # 63 px × 5 (ZTF), 30 px × 9 (LSST)


# ---------------------------------------------------------------- light curves

def _expected_curve(record: dict, survey) -> Counter:
    """Detections (band, False) and upper limits (band, True) of one source alert."""
    phot = PHOTOMETRY[survey.name]
    record_name, time_name = survey.time_column.split(".")
    band = survey.band_column.split(".")[1]
    entries = [record[record_name]] + [e for e in record[phot.history] or [] if e is not None]
    seen, counts = set(), Counter()
    for e in entries:
        value = e[phot.value]
        limit = value is None or (isinstance(value, float) and math.isnan(value))
        if limit and (phot.upper_limit is None or e.get(phot.upper_limit) is None):
            continue
        key = (round(e[time_name] - survey.day_offset, 6), e[band], limit)
        if key not in seen:
            seen.add(key)
            counts[(phot.bands.get(e[band], e[band]), limit)] += 1
    return counts


@needs_samples
@pytest.mark.broker
@pytest.mark.parametrize("folder,survey", [("ztf_real", ZTF), ("lsst_real", LSST)])
def test_lightcurve_holds_every_measurement_of_the_alert_and_its_history(folder, survey, request,
                                                                          tmp_path):
    outdir, records = request.getfixturevalue(folder)
    history = PHOTOMETRY[survey.name].history
    record = max((r for r in records if _object_of(r) != "0"), key=lambda r: len(r[history] or []))
    curve, stamps = light_curve(open_alerts(outdir), _object_of(record))
    got = Counter(zip(curve.band.tolist(), curve.limit.tolist()))
    assert got == _expected_curve(record, survey) and sum(got.values()) > 20
    assert [s.kind for s in stamps] == ["science", "template", "difference"]
    assert stamps[0].fits == _stamp_bytes(record, "science")
    figure = tmp_path / "curve.png"
    done = run_finkdl("lightcurve", str(outdir), _object_of(record), "--out", str(figure), check=True)
    assert _object_of(record) in done.stdout
    _assert_picture(figure, (650, 1400))


@pytest.mark.broker
def test_lightcurve_of_a_folder_without_cutouts_is_the_curve_alone(no_cutouts, tmp_path):
    outdir, records = no_cutouts
    record = records[1]
    done = run_finkdl("lightcurve", str(outdir), record["objectId"], check=True, cwd=tmp_path)
    assert "no cutouts in this folder" in done.stdout
    _assert_picture(tmp_path / f"{record['objectId']}.png", (650, 1400))


# ---------------------------------------------------------------- bad input

@pytest.mark.broker
@pytest.mark.parametrize("folder,args,code,words", [
    ("generated", ["cutouts", "--id", "1"], ExitCode.NOT_FOUND, "alert 1 not in"),
    ("generated", ["cutouts", "--object", "ZTF24nothere"], ExitCode.NOT_FOUND, "not in"),
    ("generated", ["lightcurve", "ZTF24nothere"], ExitCode.NOT_FOUND, "is not in"),
    ("generated", ["cutouts", "--object", "ZTF240000001"], ExitCode.NOT_FOUND, "no cutouts"),
    ("no_cutouts", ["cutouts", "--id", str(10**12 + 5)], ExitCode.NOT_FOUND, "--drop-cutouts"),
    ("lsst_generated", ["cutouts", "--object", "ZTF240000001"], ExitCode.NOT_FOUND, "no column"),
    ("lsst_real", ["lightcurve", "ZTF26aaaldio"], ExitCode.NOT_FOUND, "Rubin/LSST alerts"),
    ("lsst_generated", ["cutouts", "--id", str(5 * 10**15)], ExitCode.ERROR, "not a FITS file"),
    ("generated", ["cutouts"], ExitCode.USAGE, "--id, or objects with --object"),
    ("generated", ["show", "--plot", "summary.jpeg2000"], ExitCode.USAGE, "cannot draw"),
    ("generated", ["lightcurve", "ZTF240000000", "--out", "curve.txt"], ExitCode.USAGE, "cannot draw"),
])
def test_bad_input_gives_a_message_and_an_exit_code_and_writes_nothing(folder, args, code, words,
                                                                        request, tmp_path):
    outdir = request.getfixturevalue(folder)[0]
    command, *rest = args
    done = run_finkdl(command, str(outdir), *rest, *(["--out", "out"] if command == "cutouts" else []),
                      cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert words in done.stderr and "error:" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_alerts_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), other / "part-t-P000-000000000000-000000000001-of1.parquet")
    for folder, words in ((empty, "holds no alerts downloaded by finkdl"),
                          (other, "holds no alerts of a survey finkdl knows")):
        done = run_finkdl("show", str(folder))
        assert done.returncode == ExitCode.USAGE and words in done.stderr


@pytest.mark.broker
def test_without_the_show_extra_plots_name_what_to_install(generated, tmp_path):
    """A fake matplotlib and astropy that fail to import, first on the path."""
    for name in ("matplotlib", "astropy"):
        (tmp_path / "blocked" / name).mkdir(parents=True)
        (tmp_path / "blocked" / name / "__init__.py").write_text("raise ImportError('blocked')\n")
    env = {"PYTHONPATH": str(tmp_path / "blocked")}
    outdir, records = generated
    done = run_finkdl("show", str(outdir), "--plot", str(tmp_path / "s.png"), env=env)
    assert done.returncode == ExitCode.USAGE and "pip install 'finkdl[show]'" in done.stderr
    assert not (tmp_path / "s.png").exists()
    assert run_finkdl("show", str(outdir), env=env).returncode == 0  # counting needs no extra
    done = run_finkdl("cutouts", str(outdir), "--id", str(records[0]["candid"]), "--out",
                      str(tmp_path / "fits"), env=env)  # nor do FITS files
    assert done.returncode == 0 and len(list((tmp_path / "fits").iterdir())) == 3
