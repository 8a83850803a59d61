"""Cutouts as the FITS files they are, and as PNG images for people.

ZTF sends each stamp as gzipped FITS in a record ``{fileName, stampData}`` (one 63×63 image);
Rubin/LSST as plain FITS bytes with three HDUs (the 30×30 image, its variance ``UNCERT``
and the ``PSFIMAGE``). A FITS file written here is the stamp's bytes, decompressed: headers
and extensions exactly as they came. A PNG shows the first image HDU, pixel for pixel,
enlarged by a whole factor, stretched as astronomers do (zscale or asinh).
"""
from __future__ import annotations

import gzip
import math
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, FinkdlError, NotFoundError, OutputError
from . import need
from .alerts import Alerts, examples, rows_where, typed
from .photometry import mjd, photometry, refuse_no_object

GZIP_MAGIC = b"\x1f\x8b"
FITS_MAGIC = b"SIMPLE  ="
PNG_MIN_PIXELS = 256  # a PNG is at least this wide: stamps are 30 to 63 pixels


@dataclass(frozen=True)
class Stamp:
    alert_id: int
    object_id: str
    mjd: float
    kind: str  # science, template, difference
    fits: bytes  # a whole FITS file

    @property
    def name(self) -> str:
        return f"{self.object_id}_{self.alert_id}_{self.kind}"


def kind_of(column: str) -> str:
    """``cutoutScience`` → ``science``."""
    return column.removeprefix("cutout").lower()


def stamp_columns(alerts: Alerts) -> dict[str, str]:
    """Kind → dotted path of the stamp's bytes, for the survey's cutouts this folder has."""
    out = {}
    for name in alerts.survey.cutouts:
        if alerts.has(name):
            nested = pa.types.is_struct(alerts.type_of(name))
            out[kind_of(name)] = f"{name}.stampData" if nested else name
    return out


def alert_columns(alerts: Alerts) -> dict[str, str]:
    """What a stamp needs besides its bytes: its alert, object and time."""
    phot = photometry(alerts.survey)
    columns = {"id": alerts.survey.id_column, "time": alerts.survey.time_column}
    if phot is not None and alerts.has(phot.object_column):
        columns["object"] = phot.object_column
    return columns


def find_stamps(alerts: Alerts, ids: list[str] = (), objects: list[str] = ()
                ) -> tuple[list[Stamp], int]:
    """The stamps of alerts ``ids`` or of every alert of ``objects``, and how many alerts were
    found (an alert may carry none, as the demo's copies of an object's earlier alerts);
    NotFoundError naming what is missing when any is, before anything is written."""
    kinds = stamp_columns(alerts)
    if not kinds:
        raise NotFoundError(f"{alerts.outdir} holds no cutouts" + (
            f" ({alerts.survey.title} alerts have none)" if not alerts.survey.cutouts
            else ": its alerts came without them, or were downloaded with --drop-cutouts"),
                            hint="download a topic whose alerts carry cutouts, without --drop-cutouts"
                            if alerts.survey.cutouts else None)
    columns = alert_columns(alerts)
    phot = photometry(alerts.survey)
    if objects and phot is None:
        raise ConfigError(f"finkdl knows no object id of {alerts.survey.title} alerts",
                          hint="name alerts with --id")
    key = phot.object_column if objects else columns["id"]
    wanted = typed(alerts, key, list(objects or ids))
    if objects:
        refuse_no_object(phot, wanted.to_pylist())
    rows = rows_where(alerts, key, wanted, {**columns, **kinds})
    found = set(rows["object" if objects else "id"].to_pylist())
    missing = [str(v) for v in wanted.to_pylist() if v not in found]
    if missing:
        raise NotFoundError(f"{'object' if objects else 'alert'}{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} not in {alerts.outdir}",
                            hint=f"its {key} values look like {examples(alerts, key)}")
    stamps = stamps_of(rows, alerts, kinds)
    bare = sorted({str(r) for r in (objects or ids)} - {s.object_id if objects else str(s.alert_id)
                                                        for s in stamps})
    if bare:
        raise NotFoundError(f"{'objects' if objects else 'alerts'} {', '.join(bare)} "
                            f"{'have' if len(bare) > 1 else 'has'} no cutouts (their stamps are null)")
    return stamps, rows.num_rows


def stamps_of(rows: pa.Table, alerts: Alerts, kinds: dict[str, str]) -> list[Stamp]:
    """Every non-null stamp of ``rows`` (columns of ``alert_columns`` and the kinds), by
    object, time and kind."""
    times = mjd(rows["time"].to_numpy(zero_copy_only=False).astype(float), alerts.survey)
    out = []
    objects = rows["object"].to_pylist() if "object" in rows.column_names else [None] * rows.num_rows
    for i, (alert, obj) in enumerate(zip(rows["id"].to_pylist(), objects)):
        for kind in kinds:
            raw = rows[kind][i].as_py()
            if raw is not None:
                what = f"{kind} stamp of alert {alert}"
                out.append(Stamp(alert, str(obj if obj is not None else alert), float(times[i]),
                                 kind, fits_bytes(raw, what)))
    order = list(kinds)
    return sorted(out, key=lambda s: (s.object_id, s.mjd, s.alert_id, order.index(s.kind)))


def fits_bytes(raw: bytes, what: str) -> bytes:
    """A stamp's bytes as a FITS file: gunzipped when gzipped (ZTF), as they are otherwise."""
    try:
        data = gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw
    except (OSError, EOFError) as exc:  # BadGzipFile is an OSError
        raise FinkdlError(f"the {what} is damaged gzip ({exc})") from None
    if not data.startswith(FITS_MAGIC):
        raise FinkdlError(f"the {what} is not a FITS file (it starts with {data[:12]!r})")
    return data


def image(fits: bytes) -> np.ndarray:
    """The first 2-D image of a FITS file, as floats."""
    io_fits = need("astropy.io.fits")
    with warnings.catch_warnings():  # ZTF 2019 stamps: "SIMPLE card does not respect the standard"
        warnings.simplefilter("ignore")
        with io_fits.open(BytesIO(fits)) as hdus:
            for hdu in hdus:
                if hdu.data is not None and hdu.data.ndim == 2:
                    return np.asarray(hdu.data, dtype=float)
    raise FinkdlError("a stamp holds no 2-D image")


def scaled(data: np.ndarray, stretch: str = "zscale") -> np.ndarray:
    """Pixel values as grey levels in [0, 1]: zscale limits (IRAF's, faint detail visible), or
    an asinh stretch scaled from the stamp's percentiles (:func:`asinh_scale`: the sky dark,
    a faint source seen, bright cores not saturated); NaN pixels black."""
    visualization = need("astropy.visualization")
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros_like(data)
    if stretch == "zscale":
        low, high = visualization.ZScaleInterval().get_limits(data[finite])
        softening = None
    else:
        low, high, softening = asinh_scale(data[finite])
    if high <= low:  # a flat image
        high = low + 1.0
    levels = np.clip((np.where(finite, data, low) - low) / (high - low), 0.0, 1.0)
    if softening is not None:
        levels = visualization.AsinhStretch(a=softening)(levels)
    return np.where(finite, levels, 0.0)


SKY_SIGMAS_BELOW = 2.0  # black is this many noise sigmas under the sky
ASINH_LINEAR_SIGMAS = 2.0  # the stretch is linear up to about this many sigmas over black


def asinh_scale(values: np.ndarray) -> tuple[float, float, float]:
    """Limits and softening of an asinh stretch, from the stamp's percentiles: the sky is
    the median, its noise the distance from the 16th percentile to the median (one sigma of
    a normal noise, unmoved by a source, which only brightens pixels), black a little under
    the sky, white the brightest pixel (no core saturated). The softening ``a`` keeps the stretch linear over
    the noise and logarithmic above it: fixed (0.1) it lifted the sky to mid-grey on a
    noisy stamp, and the faint source disappeared in it."""
    low_tail, sigma_low, sky, high = np.percentile(values, [0.5, 15.87, 50.0, 100.0])
    noise = sky - sigma_low
    if noise <= 0:  # more than a third of the pixels equal: no noise to measure
        noise = max(sky - low_tail, (high - sky) / 100.0, 1e-12)
    low = sky - SKY_SIGMAS_BELOW * noise
    high = max(high, sky + noise)
    softening = float(np.clip(ASINH_LINEAR_SIGMAS * noise / (high - low), 1e-3, 1.0))
    return float(low), float(high), softening


def png_zoom(shape: tuple[int, ...]) -> int:
    """Whole factor by which a stamp is enlarged: each pixel stays a crisp square."""
    return max(1, math.ceil(PNG_MIN_PIXELS / max(shape)))


def write_stamps(stamps: list[Stamp], out: Path, fmt: str, stretch: str = "zscale") -> list[Path]:
    """Write each stamp as ``<object>_<alert>_<kind>.fits`` or ``.png`` in ``out``.

    PNG images are all made before the first file is written, so a stamp that cannot be
    read leaves nothing behind."""
    if fmt == "fits":
        contents = [s.fits for s in stamps]
    else:
        levels = [scaled(image(s.fits), stretch) for s in stamps]
        contents = [png_bytes(level) for level in levels]
    paths = [out / f"{stamp.name}.{fmt}" for stamp in stamps]
    for path, content in zip(paths, contents):
        write_file(path, content)
    return paths


def write_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path``, its folder made if need be; OutputError if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}",
                          hint="choose another --out") from exc


def png_bytes(levels: np.ndarray) -> bytes:
    """Grey levels as a PNG, enlarged, the FITS first row at the bottom (as ds9 shows it)."""
    pyplot_image = need("matplotlib.image")
    zoom = png_zoom(levels.shape)
    big = np.repeat(np.repeat(levels, zoom, axis=0), zoom, axis=1)
    buffer = BytesIO()
    pyplot_image.imsave(buffer, big, cmap="gray", vmin=0.0, vmax=1.0, origin="lower", format="png")
    return buffer.getvalue()
