"""make bench's HATS catalog rows (issue 28): ``finkdl hats`` against hats-import run directly,
and a later download added to a catalog against rebuilding it.

One run starts a local Kafka broker in a temporary folder and produces two topics of
generated light-curve alerts, as two of Fink's nightly topics: N alerts over the whole sky,
then N/10 more (new ids) from a later night, which, like a real night of ZTF, covers part of
the sky only (NIGHT_SKY: a quarter of the catalog's 12 order-0 pixels). ``finkdl download`` takes the first into OUTDIR1 and the second into
OUTDIR2, and each of the following is measured as its own process tree (wall time, CPU
seconds of every process, peak RSS; bench/measure.py):

1. ``finkdl hats OUTDIR1 CAT``: a catalog of the N alerts;
2. the same catalog made without finkdl (bench/hats_direct.py): hats-import's Parquet reader
   cannot read the position out of ``candidate``, so a flat copy with top-level ``ra``/``dec``
   (pyarrow), then hats-import's pipeline on it, with a Dask cluster of finkdl's size and
   the highest order and pixel threshold finkdl chose;
3. ``finkdl hats OUTDIR2 CAT``: the N/10 alerts added to the catalog (pixel files rewritten
   and left as they were, by inode and mtime);
4. the second topic downloaded into OUTDIR1 too (a folder holds several topics), and
   ``finkdl hats OUTDIR1 CAT_ALL``: the catalog of both, built again.

Every catalog is opened with ``lsdb.read_hats`` and its ids counted (all there, none twice).
It prints a table and writes it, with the date, the machine and the command line, to
bench/results-hats.md.

    .venv/bin/python bench/hats.py            # 1,000,000 alerts + 100,000 (make bench)
    .venv/bin/python bench/hats.py --quick    # 50,000 + 5,000, for development
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import fastavro
from rich.console import Console
from rich.table import Table

# This script's folder comes last on the module path: its name would hide the hats package
# (``import hats``, which lsdb does too), and its neighbours (measure, run, samples) are still found.
BENCH = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]

import finkdl
from finkdl.avrobin import long_bytes
from finkdl.catalog.client import local_cluster_options
from finkdl.catalog.settings import DEFAULT_ORDER
from finkdl.local import generator
from finkdl.local.broker import KAFKA_VERSION, LocalBroker

from measure import Measurement, read_output, run_measured
from run import wait_for_group_coordinator
from samples import POOL, schema_and_values

RESULTS = BENCH / "results-hats.md"
NOTES = "## Notes"  # written by hand below this line: kept when the table is written again
PARTITIONS = 4
FIRST_ID = 10**12  # generator.values' first candid
RUN_LIMIT_S = 3600.0
MB = 1_000_000
# The second topic's sky: RA 0-45 deg, Dec -30-+30 deg. The first topic is spread over the whole
# sky (the generator's positions), and a catalog of it is 12 pixels of order 0 at finkdl's
# default threshold; a second topic as spread touches all 12, so adding it rewrites every pixel
# file and is no quicker than a rebuild (the previous run: 132 s against 126 s). A real next
# night of ZTF covers the fields observed that night, part of the sky: this band (6 % of the
# sky) falls in 3 of the 12 pixels (0, 4 and 8), a quarter, and adding it should leave the other
# 9 files untouched.
NIGHT_SKY = (0.0, 45.0, -30.0, 30.0)  # RA from, to; Dec from, to (degrees)

console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Row:
    """One measured step."""

    what: str
    seconds: float | None
    alerts: int  # the alerts the step took in
    cpu_seconds: float | None
    peak_rss: int | None
    pixels: int | None = None
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.alerts / self.seconds if self.seconds else None


def renumbered(values: Iterator[bytes], first_id: int, sizes: list[int]) -> Iterator[bytes]:
    """generator.values' alerts with ids from ``first_id`` (they start at FIRST_ID): the id
    is the record's first field, its union branch and zig-zag varint. ``sizes`` gets the
    bytes of each topic's alerts."""
    sizes.append(0)
    for i, value in enumerate(values):
        head = 1 + len(long_bytes(FIRST_ID + i))
        value = b"\x00" + long_bytes(first_id + i) + value[head:]
        sizes[-1] += len(value)
        yield value


class HatsBench:
    """Owns the broker and the scratch folder."""

    def __init__(self, broker: LocalBroker, workdir: Path, timeout: float) -> None:
        self.broker, self.workdir, self.timeout = broker, workdir, timeout
        self.finkdl = Path(sys.executable).with_name("finkdl")
        self.env = {**os.environ, "HOME": str(workdir / "home")}
        self.sizes: list[int] = []  # bytes of each topic's alerts, as produced
        (workdir / "home").mkdir(exist_ok=True)

    def topic(self, n: int, seed: int, first_id: int,
              sky: tuple[float, float, float, float] | None = None) -> str:
        name = f"ftransfer_ztf_2026-11-{27 + seed}_{uuid.uuid4().int % 10**6:06d}"
        where = "the whole sky" if sky is None else _sky(sky)
        console.log(f"producing {n:,} light-curve alerts to {name} ({PARTITIONS} partitions, "
                    f"{where})")
        self.broker.create_topic(name, PARTITIONS)
        if sky is None:
            schema, values = schema_and_values("lightcurve", n, seed)
        else:
            schema, values = night_values(n, seed, sky)
        produced = generator.produce_values(self.broker.servers, name, schema,
                                            renumbered(values, first_id, self.sizes), PARTITIONS)
        assert produced == n, (produced, n)
        wait_for_group_coordinator(self.broker.servers, name)
        return name

    def download(self, what: str, topic: str, outdir: Path, expected: int) -> Row:
        """``finkdl download`` as a user runs it; time runs to the newest file written (it
        then waits its timeout for alerts that will not come)."""
        before = read_output(outdir).rows
        cmd = [str(self.finkdl), "download", topic, "--outdir", str(outdir),
               "--servers", self.broker.servers, "--group-id", f"bench-hats-{uuid.uuid4().hex[:10]}",
               "--partition-by", "finkclass", "--workers", str(PARTITIONS), "--survey", "ztf",
               "--timeout", f"{self.timeout:g}", "--progress", "quiet"]
        m = self.run(what, cmd)
        out = read_output(outdir)
        seconds = out.newest_mtime - m.started if out.newest_mtime is not None else None
        notes = [m.failure(), _count(out.rows - before, expected, "rows written"),
                 f"{out.files:,} files in the folder"]
        return Row(what, seconds, expected, m.cpu_seconds, m.peak_rss, None, _join(notes))

    def run(self, what: str, cmd: list[str]) -> Measurement:
        logs = Path(tempfile.mkdtemp(prefix="logs-", dir=self.workdir))
        console.log(f"{what}: {shlex.join(cmd)}")
        m = run_measured(cmd, logs, env=self.env, limit_s=RUN_LIMIT_S)
        console.log(f"  {m.ended - m.started:.1f} s, CPU {m.cpu_seconds or 0:.1f} s, "
                    f"peak RSS {m.peak_rss / MB:,.0f} MB" + (f" [red]{m.failure()}[/]" if m.failure() else ""))
        if m.failure():
            console.log(f"  logs in {logs}:\n{_tail(m.stderr)}")
        return m

    def hats(self, what: str, outdir: Path, catalog: Path, alerts: int, options: list[str],
             expected: int) -> tuple[Row, Measurement]:
        """``finkdl hats OUTDIR CATALOG`` (progress bars on, into its log: hats-import's
        stage times), then the catalog opened with LSDB."""
        cmd = [str(self.finkdl), "hats", str(outdir), str(catalog), "--progress", *options]
        m = self.run(what, cmd)
        check, pixels = check_catalog(catalog, expected)
        notes = [m.failure(), check, own_time(m.stdout), stage_times(m.stderr)]
        return Row(what, m.ended - m.started, alerts, m.cpu_seconds, m.peak_rss, pixels,
                   _join(notes)), m


def night_values(n: int, seed: int, sky: tuple[float, float, float, float]
                 ) -> tuple[dict, Iterator[bytes]]:
    """bench/samples.py's light-curve alerts (generator.values with its pool) with every
    position in ``sky``: the candidate's ``ra``/``dec`` and its history's (which repeat them),
    scaled from the generator's whole sky (RA 0-360, Dec -90-+90, both uniform) into the band."""
    ra0, ra1, dec0, dec1 = sky
    schema = generator.ztf_schema(slim=True, cutouts=False)
    parsed = fastavro.parse_schema(schema)
    tails = []
    for record in generator.alerts(min(n, POOL), slim=True, cutouts=False, seed=seed):
        cand = record["candidate"]
        ra = (ra0 + cand["ra"] / 360 * (ra1 - ra0)) % 360
        dec = dec0 + (cand["dec"] + 90) / 180 * (dec1 - dec0)
        for point in [cand, *(record["prv_candidates"] or [])]:
            if point is not None:
                point["ra"], point["dec"] = ra, dec
        head = 1 + len(long_bytes(record["candid"]))
        tails.append(generator.encode(parsed, record)[head:])
    return schema, (b"\x00" + long_bytes(FIRST_ID + i) + tails[i % len(tails)] for i in range(n))


def sky_pixels(sky: tuple[float, float, float, float], order: int = 0) -> list[int]:
    """The HEALPix pixels of an order that a band of the sky falls in (a fine grid of it)."""
    import numpy as np
    from hats.pixel_math.healpix_shim import radec2pix

    ra0, ra1, dec0, dec1 = sky
    ra, dec = np.meshgrid(np.linspace(ra0, ra1, 400, endpoint=False) % 360,
                          np.linspace(dec0, dec1, 400, endpoint=False))
    return sorted(set(radec2pix(order, ra.ravel(), dec.ravel()).tolist()))


def check_catalog(catalog: Path, expected: int) -> tuple[str, int | None]:
    """The catalog as LSDB opens it: its ids, counted, and its pixels."""
    import lsdb

    try:
        opened = lsdb.read_hats(catalog, columns=["candid"])
        ids = opened.compute()["candid"]
    except Exception as exc:  # a catalog LSDB cannot read is a result to report
        return f"LSDB cannot read it: {type(exc).__name__}: {exc}", None
    rows, unique = len(ids), ids.nunique()
    if rows == expected and unique == rows:
        verdict = f"LSDB reads {rows:,} alerts, ids unique"
    else:
        verdict = f"LSDB reads {rows:,} alerts ({unique:,} ids) of {expected:,} expected: WRONG"
    console.log(f"  {catalog.name}: {verdict}, {opened.npartitions} pixels")
    return verdict, opened.npartitions


def own_time(stdout: Path) -> str | None:
    """The time finkdl hats gives in its summary: from the folder read (its positions scanned)
    to the catalog switched in; the rest of the wall time is Python's start and the scan."""
    line = _last(stdout, "built", "added")
    found = re.search(r", (\d+) s$", line or "")
    return f"{found.group(1)} s by finkdl hats' own count" if found else None


def pixel_files(catalog: Path) -> dict[str, tuple[int, int]]:
    """Each pixel file of a catalog: (inode, mtime in ns), by its path in the catalog."""
    files = {}
    for path in (catalog / "dataset").rglob("Npix=*"):
        for f in ([path] if path.is_file() else path.rglob("*.parquet")):
            st = f.stat()
            files[str(f.relative_to(catalog))] = (st.st_ino, st.st_mtime_ns)
    return files


def rewritten_note(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    changed = sorted(path for path, stat in after.items() if before.get(path) != stat)
    same = len(after) - len(changed)
    gone = len(set(before) - set(after))
    npix = [m.group(1) for m in (re.search(r"Npix=(\d+)", path) for path in changed) if m]
    npix.sort(key=int)
    which = f" (Npix {', '.join(npix)})" if npix and len(npix) < len(after) else ""
    return (f"{len(changed):,} of {len(after):,} pixel files rewritten{which}, {same:,} left "
            f"untouched (same inode and mtime)" + (f", {gone:,} split into children" if gone else ""))


STAGE = re.compile(r"(\w[\w ]*?)\s*:\s*100%\|[^\[]*\[(?:(\d+):)?(\d+):(\d+)<")


def stage_times(stderr: Path) -> str | None:
    """hats-import's stages and their times, from the progress bars in a log."""
    try:
        text = stderr.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return None
    stages: dict[str, int] = {}
    for m in STAGE.finditer(text):
        name = m.group(1).strip().split()[-1]
        stages[name] = int(m.group(2) or 0) * 3600 + int(m.group(3)) * 60 + int(m.group(4))
    return "stages " + ", ".join(f"{k} {v} s" for k, v in stages.items()) if stages else None


def catalog_settings(catalog: Path) -> tuple[int, int]:
    """The highest order and pixel threshold finkdl chose for a catalog."""
    import hats

    info = hats.read_hats(catalog).catalog_info
    return int(info.extra_dict().get("finkdl_highest_order", DEFAULT_ORDER)), int(info.hats_max_rows)


def direct(bench: HatsBench, outdir: Path, flat: Path, catalog: Path, reference: Path,
           alerts: int) -> list[Row]:
    """hats-import without finkdl, as bench/hats_direct.py does it: the flat copy, then the
    pipeline, each measured; and both as one row."""
    order, threshold = catalog_settings(reference)
    cluster = local_cluster_options(bench.workdir)
    script = [sys.executable, str(BENCH / "hats_direct.py")]
    m_flat = bench.run("flat copy", [*script, "flatten", str(outdir), str(flat)])
    flat_out = read_output(flat)
    flat_row = Row("  flat copy, ra/dec top-level (pyarrow)", m_flat.ended - m_flat.started,
                   alerts, m_flat.cpu_seconds, m_flat.peak_rss, None,
                   _join([m_flat.failure(), _count(flat_out.rows, alerts, "rows"),
                          f"{flat_out.files:,} files, {flat_out.bytes / MB:,.0f} MB"]))
    cmd = [*script, "import", str(flat), str(catalog), "--highest-order", str(order),
           "--pixel-threshold", str(threshold), "--workers", str(cluster["n_workers"]),
           "--memory-limit", str(cluster["memory_limit"])]
    m_import = bench.run("hats-import", cmd)
    check, pixels = check_catalog(catalog, alerts)
    same = same_pixels(reference, catalog)
    import_row = Row("  hats-import on the flat copy", m_import.ended - m_import.started, alerts,
                     m_import.cpu_seconds, m_import.peak_rss, pixels,
                     _join([m_import.failure(), check, same, f"order {order}, threshold "
                            f"{threshold:,}", stage_times(m_import.stderr)]))
    both = Row("hats-import direct: flat copy + hats-import", _sum(flat_row.seconds, import_row.seconds),
               alerts, _sum(flat_row.cpu_seconds, import_row.cpu_seconds),
               max(flat_row.peak_rss or 0, import_row.peak_rss or 0) or None, pixels,
               f"{cluster['n_workers']} Dask workers of {cluster['memory_limit'] / 2**30:.1f} GiB "
               f"as finkdl's; peak RSS: the larger step's")
    return [both, flat_row, import_row]


def same_pixels(a: Path, b: Path) -> str:
    import hats

    pa, pb = (set(hats.read_hats(c).get_healpix_pixels()) for c in (a, b))
    return "the same pixels as finkdl's" if pa == pb else \
        f"pixels differ from finkdl's ({len(pb)} against {len(pa)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1_000_000,
                        help="alerts of the first download; the second has a tenth [1,000,000]")
    parser.add_argument("--quick", action="store_true", help="50,000 alerts, for development")
    parser.add_argument("--pixel-threshold", type=int, help="finkdl hats' --pixel-threshold "
                        "[finkdl's default: about 512 MB of alerts a pixel]")
    parser.add_argument("--highest-order", type=int, help="finkdl hats' --highest-order "
                        f"[finkdl's default: {DEFAULT_ORDER}]")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds finkdl download waits for new alerts before finishing [5]")
    parser.add_argument("--night-sky", default=",".join(f"{v:g}" for v in NIGHT_SKY),
                        metavar="RA0,RA1,DEC0,DEC1",
                        help="the second topic's band of the sky in degrees, or 'all' for the "
                        "whole sky [%(default)s: 3 of the 12 order-0 pixels]")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    n = 50_000 if args.quick else args.alerts
    n_next = n // 10
    sky = None if args.night_sky == "all" else tuple(float(v) for v in args.night_sky.split(","))
    if sky is not None and (len(sky) != 4 or not (sky[0] < sky[1] and -90 <= sky[2] < sky[3] <= 90)):
        parser.error("--night-sky takes RA0,RA1,DEC0,DEC1 (RA0 < RA1, -90 <= DEC0 < DEC1 <= 90) or 'all'")
    options = [f"--pixel-threshold={args.pixel_threshold}"] if args.pixel_threshold else []
    options += [f"--highest-order={args.highest_order}"] if args.highest_order is not None else []

    workdir = Path(tempfile.mkdtemp(prefix="finkdl-bench-hats-"))
    console.log(f"scratch folder {workdir}")
    broker = LocalBroker(workdir / "kafka")
    bench = HatsBench(broker, workdir, args.timeout)
    out1, out2 = workdir / "alerts", workdir / "alerts-next"
    cat, cat_all = workdir / "catalogs" / "ztf", workdir / "catalogs" / "ztf_rebuilt"
    rows: list[Row] = []
    try:
        broker.start()
        first = bench.topic(n, seed=1, first_id=FIRST_ID)
        second = bench.topic(n_next, seed=2, first_id=FIRST_ID + n, sky=sky)
        rows.append(bench.download("finkdl download, 1st topic → OUTDIR1", first, out1, n))
        rows.append(bench.download("finkdl download, 2nd topic → OUTDIR2", second, out2, n_next))

        built, _ = bench.hats("finkdl hats OUTDIR1 CAT (build)", out1, cat, n, options, n)
        rows.append(built)
        rows += direct(bench, out1, workdir / "flat", workdir / "catalogs" / "direct", cat, n)
        if not args.keep:
            shutil.rmtree(workdir / "flat", ignore_errors=True)
            shutil.rmtree(workdir / "catalogs" / "direct", ignore_errors=True)

        before = pixel_files(cat)
        extended, _ = bench.hats("finkdl hats OUTDIR2 CAT (extend)", out2, cat, n_next, [],
                                 n + n_next)
        rows.append(_with_note(extended, rewritten_note(before, pixel_files(cat))))

        into_one = bench.download("finkdl download, 2nd topic → OUTDIR1 too", second, out1, n_next)
        rows.append(into_one)
        rebuilt, _ = bench.hats("finkdl hats OUTDIR1 CAT_ALL (rebuild)", out1, cat_all, n + n_next,
                                options, n + n_next)
        rows.append(_with_note(rebuilt, "OUTDIR1 holding both topics"))
        outdir_mb = read_output(out1).bytes / MB
    finally:
        broker.remove()
        if args.keep:
            console.log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    write_markdown(rows, header(n, n_next, options, bench.sizes, outdir_mb, sky))
    console.log(f"table written to {RESULTS}")


# --- the table ------------------------------------------------------------------------

HEADERS = ["What", "Wall s", "Alerts/s", "CPU s", "Peak RSS MB", "Pixels", "Note"]


def cells(row: Row) -> list[str]:
    return [row.what,
            f"{row.seconds:,.1f}" if row.seconds is not None else "—",
            f"{row.rate:,.0f}" if row.rate else "—",
            f"{row.cpu_seconds:,.1f}" if row.cpu_seconds is not None else "—",
            f"{row.peak_rss / MB:,.0f}" if row.peak_rss else "—",
            f"{row.pixels:,}" if row.pixels is not None else "",
            row.note]


def print_table(rows: list[Row]) -> None:
    table = Table(*HEADERS, title="finkdl hats benchmark")
    for row in rows:
        table.add_row(*cells(row))
    out = Console()
    if not out.is_terminal:
        out = Console(width=220)
    out.print(table)


def header(n: int, n_next: int, options: list[str], sizes: list[int], outdir_mb: float,
           sky: tuple[float, float, float, float] | None) -> str:
    command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cluster = local_cluster_options(Path("."))
    import hats_import
    import lsdb
    where = ("in RA and Dec over the whole sky" if sky is None else
             f"in {_sky(sky)} only (a later night's fields: order-0 pixels "
             f"{', '.join(map(str, sky_pixels(sky)))} of the 12)")
    return (f"# finkdl hats benchmark\n\n`{command}` — {date}\n\n"
            f"{os.cpu_count()} CPUs ({cluster['n_workers']} usable: Dask workers of "
            f"{cluster['memory_limit'] / 2**30:.1f} GiB), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, one local Kafka {KAFKA_VERSION} broker; "
            f"finkdl {finkdl.__version__}, hats-import {hats_import.__version__}, "
            f"lsdb {lsdb.__version__}; finkdl hats options: {' '.join(options) or 'defaults'}.\n\n"
            f"Topics: {n:,} generated light-curve alerts (ZTF, histories of 40-70 detections; "
            f"{POOL:,} distinct alerts repeated with new ids, bench/samples.py), uniform in RA "
            f"and Dec over the whole sky, then {n_next:,} more of other ids and positions, "
            f"uniform {where}, "
            f"{PARTITIONS} partitions each ({sum(sizes) / (n + n_next) / 1000:,.1f} kB an alert "
            f"in Avro); "
            f"OUTDIR1 ended with {outdir_mb:,.0f} MB of Parquet (both topics).")


LEGEND = """\
Each step runs as its own process tree (bench/measure.py): wall time from its start to its
exit (for a download: to its newest file, as bench/run.py counts it), CPU seconds (user +
system) of every process of the tree, Dask's workers included, and peak RSS summed over
the tree, sampled every 0.2 s. Alerts/s: the alerts the step took in (for the extension, the
new ones alone) over its wall time. `finkdl hats` ran with its progress bars on, into its
log, for the stage times in the notes (hats-import's tqdm bars, rounded to the second).
"hats-import direct" is what a user does without finkdl (bench/hats_direct.py): hats-import's
own Parquet reader cannot take `candidate.ra` as `ra_column` (its mapping stage fails:
"Column candidate.ra does not exist in schema") and does not see the `finkclass=…` folders,
so a flat copy with top-level `ra`/`dec` and the label as a column (pyarrow's
`write_dataset`, files of 100,000 rows), then hats-import's pipeline over it with
`file_reader="parquet"`, on a local Dask cluster of finkdl's size (one single-threaded worker
per core, 80 % of the memory shared), with the highest order and pixel threshold finkdl chose.
The second topic is a later night's: its positions (`candidate.ra`/`candidate.dec` and its
history's, which repeat them) are the generator's scaled into a band of the sky (`--night-sky`),
as a night of ZTF covers only the fields observed that night, so adding it touches some of the
catalog's pixels. The extension's rewritten pixels are counted from the pixel files' inodes and
mtimes before and after: a file left untouched is a hard link to the previous version's.
The rebuild needs a folder holding both downloads (`finkdl hats` takes one OUTDIR): the
second topic was downloaded into OUTDIR1 as well, as a folder holds several topics. Every
catalog was opened with `lsdb.read_hats(..., columns=["candid"])` and its ids counted.
"""


def write_markdown(rows: list[Row], head: str) -> None:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |" for row in rows]
    old = RESULTS.read_text() if RESULTS.exists() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""  # written by hand: kept
    RESULTS.write_text(head + "\n\n" + "\n".join(lines) + "\n\n" + LEGEND
                       + ("\n" + notes if notes else ""))


# --- small helpers ----------------------------------------------------------------------

def _with_note(row: Row, note: str) -> Row:
    return Row(row.what, row.seconds, row.alerts, row.cpu_seconds, row.peak_rss, row.pixels,
               _join([row.note, note]))


def _sky(sky: tuple[float, float, float, float]) -> str:
    ra0, ra1, dec0, dec1 = sky
    return f"RA {ra0:g}-{ra1:g} deg and Dec {dec0:+g} to {dec1:+g} deg"


def _count(count: int, expected: int, what: str) -> str | None:
    return f"{count:,} {what} of {expected:,}: WRONG" if count != expected else None


def _join(notes: list[str | None]) -> str:
    return "; ".join(n for n in notes if n)


def _sum(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


def _last(path: Path, *starts: str) -> str | None:
    """The last line of a log starting with one of ``starts`` (finkdl hats' summary)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line.strip() for line in lines if line.strip().startswith(starts)]
    return found[-1] if found else None


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").replace("\r", "\n").splitlines()[-n:])
    except OSError:
        return ""


if __name__ == "__main__":
    main()
