"""An object's light curve from its alerts: each alert's own measurement and its history
(ZTF ``prv_candidates``: magnitudes, and limiting magnitudes where nothing was detected;
Rubin/LSST ``prvDiaSources``: difference-image fluxes). Alerts of one object repeat each
other's history: a measurement is kept once per time and band."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, NotFoundError
from ..surveys import Survey
from .alerts import Alerts, examples, leaf, parent, rows_where, typed
from .photometry import Photometry, mjd, photometry, refuse_no_object
from .stamps import Stamp, alert_columns, stamp_columns, stamps_of

FIELDS = ("time", "band", "value", "error", "limit")


@dataclass(frozen=True)
class LightCurve:
    object_id: str
    survey: Survey
    phot: Photometry
    alerts: int  # alerts of the object in the folder
    mjd: np.ndarray
    band: np.ndarray  # names: g, r, i, ...
    value: np.ndarray  # magnitude or flux; the limiting magnitude where ``limit``
    error: np.ndarray
    limit: np.ndarray  # True: no detection, ``value`` is an upper limit

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per band: detections, upper limits."""
        return {b: (int(np.sum((self.band == b) & ~self.limit)), int(np.sum((self.band == b) & self.limit)))
                for b in dict.fromkeys(self.band.tolist())}


def light_curve(alerts: Alerts, object_id: str) -> tuple[LightCurve, list[Stamp]]:
    """The object's light curve and the stamps of its latest alert that has any."""
    survey, phot = alerts.survey, photometry(alerts.survey)
    if phot is None:
        raise ConfigError(f"finkdl draws no light curves of {survey.title} alerts",
                          hint="light curves: ZTF and Rubin/LSST folders")
    record = parent(survey.time_column)
    columns = {**alert_columns(alerts), "band": survey.band_column,
               "value": f"{record}.{phot.value}", "error": f"{record}.{phot.error}"}
    absent = [columns[c] for c in ("band", "value", "error") if not alerts.has(columns[c])]
    if absent:
        raise NotFoundError(f"{alerts.outdir} has no column {', '.join(absent)}: no light curve",
                            hint="was it downloaded with --columns leaving them out?")
    if alerts.has(phot.history):
        columns["history"] = phot.history
    kinds = stamp_columns(alerts)
    wanted = typed(alerts, phot.object_column, [object_id])
    refuse_no_object(phot, wanted.to_pylist())
    rows = rows_where(alerts, phot.object_column, wanted, {**columns, **kinds})
    if rows.num_rows == 0:
        raise NotFoundError(f"object {object_id} is not in {alerts.outdir}",
                            hint=f"its {phot.object_column} values look like "
                                 f"{examples(alerts, phot.object_column)}")
    curve = LightCurve(object_id, survey, phot, rows.num_rows, *measurements(rows, survey, phot))
    stamps = stamps_of(rows, alerts, kinds) if kinds else []
    latest = max((s.mjd, s.alert_id) for s in stamps) if stamps else None
    return curve, [s for s in stamps if (s.mjd, s.alert_id) == latest]


def measurements(rows: pa.Table, survey: Survey, phot: Photometry) -> tuple[np.ndarray, ...]:
    """mjd, band, value, error, limit of the alerts' measurements and their histories, once
    each, in time order; entries measuring nothing (no value, no limit) left out."""
    own = {"time": rows["time"], "band": rows["band"], "value": rows["value"],
           "error": rows["error"], "limit": pa.nulls(rows.num_rows, pa.float64())}
    parts = [own]
    if "history" in rows.column_names:
        entries = pc.list_flatten(rows["history"])
        names = {"time": leaf(survey.time_column), "band": leaf(survey.band_column),
                 "value": phot.value, "error": phot.error, "limit": phot.upper_limit}
        kind = entries.type
        parts.append({key: pc.struct_field(entries, name)
                      if name is not None and kind.get_field_index(name) >= 0
                      else pa.nulls(len(entries), pa.float64()) for key, name in names.items()})
    arrays = {key: np.concatenate([_numpy(p[key], as_float=key != "band") for p in parts])
              for key in FIELDS}
    values, limits = arrays["value"].astype(float), arrays["limit"].astype(float)
    detected = np.isfinite(values)
    limit = ~detected & np.isfinite(limits)
    keep = detected | limit
    times = mjd(arrays["time"].astype(float), survey)[keep]
    bands = np.array([phot.bands.get(b, str(b)) for b in arrays["band"][keep].tolist()], dtype=object)
    value = np.where(limit, limits, values)[keep]
    error = np.where(limit, np.nan, arrays["error"].astype(float))[keep]
    limit = limit[keep]
    seen, unique = set(), []
    for i in np.argsort(times, kind="stable"):
        key = (round(float(times[i]), 6), bands[i], bool(limit[i]))
        if key not in seen:
            seen.add(key)
            unique.append(i)
    index = np.array(unique, dtype=int)
    return times[index], bands[index], value[index], error[index], limit[index]


def _numpy(values: pa.Array | pa.ChunkedArray, as_float: bool) -> np.ndarray:
    """Values as floats (nulls NaN), or as they are (band codes and names)."""
    if as_float:
        return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False))
    return np.array(values.to_pylist(), dtype=object)
