"""finkdl hats: a folder as a HATS catalog that LSDB opens, searches and cross-matches, and a
later download added to it (hats, hats-import and lsdb: the hats extra)."""
from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from pathlib import Path

import fastavro
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

pytest.importorskip("hats_import", reason="the hats extra (hats-import) is not installed")
lsdb = pytest.importorskip("lsdb", reason="the hats extra (lsdb) is not installed")

from astropy import units as u  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402

from finkdl.catalog import extend as extend_module  # noqa: E402
from finkdl.catalog.build import run_hats  # noqa: E402
from finkdl.catalog.settings import HatsConfig  # noqa: E402
from finkdl.errors import ConfigError, ExitCode  # noqa: E402
from finkdl.local import generator  # noqa: E402
from finkdl.s3client import arrow_filesystem  # noqa: E402

from conftest import BUCKET, LSST_SAMPLE, SHARED, run_finkdl, write_folder  # noqa: E402



def ztf_records(n: int, start: int, ra: tuple[float, float], dec: tuple[float, float],
                seed: int) -> list[dict]:
    """Generated ZTF alerts with ids ``10**12 + start…``, spread over a patch of sky."""
    rng = random.Random(seed)
    records = list(generator.alerts(n, slim=True, cutouts=False, seed=seed, start=start))
    for r in records:
        r["candidate"]["ra"] = rng.uniform(*ra)
        r["candidate"]["dec"] = rng.uniform(*dec)
    return records


def ztf_folder(outdir: Path, records: list[dict]) -> Path:
    return write_folder(outdir, generator.ztf_schema(slim=True, cutouts=False), records, "ztf",
                        "finkclass", "ftransfer_ztf_2026-11-28_1")


@pytest.fixture(scope="module")
def scheduler():
    """One in-process Dask cluster for the module's builds (each run's own would start two
    worker processes importing hats-import: ~15 s)."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def first(tmp_path_factory, scheduler):
    """A catalog of 2,000 ZTF alerts over 40°–60° × 0°–20°, at most 300 per pixel."""
    base = tmp_path_factory.mktemp("hats")
    records = ztf_records(2000, 0, (40, 60), (0, 20), seed=1)
    outdir = ztf_folder(base / "alerts", records)
    outcome = run_hats(HatsConfig(outdir, base / "catalog", highest_order=6, pixel_threshold=300,
                                  scheduler=scheduler))
    return base, records, outcome


def test_the_catalog_holds_the_folders_rows_with_exact_ids(first):
    base, records, outcome = first
    catalog = lsdb.read_hats(base / "catalog")
    df = catalog.compute()
    assert outcome.total == len(df) == len(records) and outcome.pixels == catalog.npartitions > 1
    assert str(df["candid"].dtype) == "int64[pyarrow]"
    assert sorted(df["candid"].tolist()) == sorted(r["candid"] for r in records)
    by_id = {r["candid"]: r for r in records}
    row = df.iloc[0]
    assert row["ra"] == by_id[row["candid"]]["candidate"]["ra"]
    assert set(df["finkclass"].dropna()) <= set(generator.FINKCLASSES) | {"(null)"}
    assert "nested" in str(df["prv_candidates"].dtype)  # LSDB's nested column
    assert catalog.hc_structure.catalog_info.hats_max_rows == 300


def test_a_cone_search_returns_exactly_the_alerts_within_the_radius(first):
    base, records, _ = first
    centre, radius = (50.0, 10.0), 3600.0  # arcseconds
    found = lsdb.read_hats(base / "catalog").cone_search(*centre, radius).compute()
    coords = SkyCoord([r["candidate"]["ra"] for r in records] * u.deg,
                      [r["candidate"]["dec"] for r in records] * u.deg)
    inside = coords.separation(SkyCoord(*centre, unit="deg")).arcsec < radius
    expected = {r["candid"] for r, keep in zip(records, inside) if keep}
    assert 0 < len(expected) < len(records)
    assert sorted(found["candid"].tolist()) == sorted(expected)


def test_a_cross_match_finds_the_known_positions(first, tmp_path):
    import pandas as pd

    base, records, _ = first
    chosen = records[::400]
    targets = pd.DataFrame({"target": [f"t{i}" for i in range(len(chosen))],
                            "ra": [r["candidate"]["ra"] + 0.5 / 3600 for r in chosen],
                            "dec": [r["candidate"]["dec"] for r in chosen]})
    lsdb.from_dataframe(targets, catalog_name="targets").write_catalog(tmp_path / "targets")
    matched = lsdb.read_hats(base / "catalog").crossmatch(
        lsdb.read_hats(tmp_path / "targets"), radius_arcsec=2, n_neighbors=1,
        suffixes=("", "_t")).compute()
    pairs = {(c, t) for c, t in zip(matched["candid"], matched["target_t"])}
    close = {(r["candid"], f"t{i}") for i, r in enumerate(chosen)}
    assert close <= pairs
    # any other pair is an alert as close to a target, which 2″ makes all but impossible here
    assert pairs == close


def _pixel_files(catalog: Path) -> dict[Path, tuple[int, int, bytes]]:
    return {p.relative_to(catalog): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in catalog.rglob("Npix=*.parquet")}


def test_a_later_download_is_added_once_and_untouched_pixels_stay(first, tmp_path, scheduler):
    base, records, _ = first
    catalog = tmp_path / "catalog"
    shutil.copytree(base / "catalog", catalog)  # times kept
    before = _pixel_files(catalog)
    new = ztf_records(600, 2000, (40, 44), (0, 4), seed=2)  # one corner, crowded
    second = ztf_folder(tmp_path / "second", records[1500:] + new)  # 500 already there
    outcome = run_hats(HatsConfig(second, catalog, scheduler=scheduler))
    assert (outcome.added, outcome.skipped, outcome.total) == (600, 500, 2600)
    df = lsdb.read_hats(catalog).compute()
    assert sorted(df["candid"].tolist()) == sorted(r["candid"] for r in records + new)
    after = _pixel_files(catalog)
    kept = [p for p in before if p in after and after[p] == before[p]]
    assert 0 < len(kept) < len(before)  # untouched: same file (inode), mtime and bytes
    assert len(after) > len(before)  # the corner's pixel split into smaller ones
    order = lambda path: int(path.parts[1].removeprefix("Norder="))  # noqa: E731
    assert max(map(order, after)) > max(map(order, before))
    assert max(pq.ParquetFile(catalog / p).metadata.num_rows for p in after) <= 300
    assert not list(tmp_path.glob(".catalog.finkdl-*/"))


def test_a_crash_before_the_switch_leaves_the_old_catalog_whole(first, tmp_path, scheduler,
                                                                 monkeypatch):
    base, records, _ = first
    catalog = tmp_path / "catalog"
    shutil.copytree(base / "catalog", catalog)  # times kept
    before = _pixel_files(catalog)
    second = ztf_folder(tmp_path / "second", ztf_records(50, 5000, (50, 51), (5, 6), seed=3))

    def crash(*args, **kwargs):
        raise RuntimeError("killed")
    monkeypatch.setattr(extend_module, "finish", crash)
    with pytest.raises(RuntimeError):
        run_hats(HatsConfig(second, catalog, scheduler=scheduler))
    assert _pixel_files(catalog) == before
    assert len(lsdb.read_hats(catalog).compute()) == len(records)
    monkeypatch.undo()
    assert run_hats(HatsConfig(second, catalog, scheduler=scheduler)).total == len(records) + 50


def test_bad_input_is_one_line_an_exit_code_and_nothing_changed(first, tmp_path):
    base, _, _ = first
    catalog = base / "catalog"
    stamp = sorted((p, p.stat().st_mtime_ns) for p in catalog.rglob("*"))
    lsst = write_folder(tmp_path / "lsst", generator.lsst_schema(),
                        list(generator.alerts(20, survey="lsst")), "lsst", "none",
                        "ftransfer_lsst_2026-11-28_1")
    not_hats = tmp_path / "notes"
    not_hats.mkdir()
    (not_hats / "notes.txt").write_text("mine")
    cases = [(HatsConfig(lsst, catalog), "holds Rubin/LSST alerts"),
             (HatsConfig(base / "alerts", not_hats), "is not a HATS catalog"),
             (HatsConfig(base / "alerts", tmp_path / "new", ra="candidate.nowhere"),
              "no column candidate.nowhere"),
             (HatsConfig(not_hats, tmp_path / "new"), "holds no alerts downloaded by finkdl")]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            run_hats(config)
    done = run_finkdl("hats", str(lsst), str(catalog))  # as the command line says it
    assert done.returncode == ExitCode.USAGE and done.stdout == ""
    assert done.stderr.splitlines()[0] == (f"error: {lsst} holds Rubin/LSST alerts, {catalog} "
                                           "ztf alerts")
    assert sorted((p, p.stat().st_mtime_ns) for p in catalog.rglob("*")) == stamp
    assert not (tmp_path / "new").exists() and os.listdir(not_hats) == ["notes.txt"]


@pytest.mark.broker
def test_a_folder_in_a_bucket_is_read_from_the_bucket_into_a_local_catalog(
        topic_factory, finkdl, s3env, tmp_path, scheduler):
    """``finkdl hats s3://…`` as a user runs it (a local cluster: its workers, processes of
    their own, read the bucket with the AWS variables they inherit), then the same folder
    added again on the module's cluster: nothing added."""
    topic = topic_factory(1500, partitions=3)
    url = f"s3://{BUCKET}/hats-{uuid.uuid4().hex[:8]}/alerts"
    assert finkdl(topic, url, "--partition-by", "finkclass").returncode == 0
    stored = ds.dataset(url.removeprefix("s3://"), filesystem=arrow_filesystem(s3env.endpoint),
                        format="parquet", partitioning="hive").to_table(columns=["candid"])
    catalog = tmp_path / "catalog"
    done = run_finkdl("hats", url, str(catalog), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"built {catalog}: 1,500 alerts in ")
    df = lsdb.read_hats(catalog).compute()
    assert len(df) == stored.num_rows == 1500
    assert sorted(df["candid"].tolist()) == sorted(stored["candid"].to_pylist())
    assert set(df["finkclass"].dropna()) <= set(generator.FINKCLASSES) | {"(null)"}
    again = run_hats(HatsConfig(url, catalog, scheduler=scheduler))
    assert (again.added, again.skipped, again.total) == (0, 1500, 1500)


def test_a_catalog_in_object_storage_is_refused_in_one_line(tmp_path):
    done = run_finkdl("hats", str(tmp_path / "alerts"), f"s3://{BUCKET}/catalog", cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: s3://{BUCKET}/catalog: the catalog is written to a folder of a local or shared "
        "file system, not to object storage (OUTDIR may be s3://)"]
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/fink is not present")
def test_real_rubin_alerts(tmp_path, scheduler):
    """Real Rubin/LSST alerts: positions from diaSource, ids exact, histories nested."""
    avro, schema = LSST_SAMPLE
    with open(SHARED / avro, "rb") as f:
        records = list(fastavro.reader(f))
    outdir = write_folder(tmp_path / "lsst", json.loads((SHARED / schema).read_text()), records,
                          "lsst", "time", "ftransfer_lsst_2026-03-22_1")
    outcome = run_hats(HatsConfig(outdir, tmp_path / "rubin", scheduler=scheduler))
    assert outcome.total == len(records)
    df = lsdb.read_hats(tmp_path / "rubin").compute()
    assert sorted(df["diaSourceId"].tolist()) == sorted(r["diaSourceId"] for r in records)
    assert np.allclose(sorted(df["dec"]), sorted(r["diaSource"]["dec"] for r in records))
    assert "nested" in str(df["prvDiaSources"].dtype)
