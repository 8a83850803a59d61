"""Where each survey's alerts keep an object's brightness: what light curves and magnitude
plots need beyond what ``finkdl.surveys`` says (id, time, band, cutouts, labels)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NotFoundError
from ..surveys import Survey

MJD_UNIX_DAY = 40587.0  # MJD of 1970-01-01
AB_ZERO_POINT_NJY = 31.4  # AB magnitude of 1 nJy


@dataclass(frozen=True)
class Photometry:
    """Brightness columns of one survey; field names are inside the time column's record
    (``candidate``, ``diaSource``) and inside each entry of ``history``."""

    object_column: str  # the object an alert belongs to (dotted when nested)
    history: str  # earlier measurements of the object, a list of records like the alert's
    value: str  # magnitude (ZTF magpsf) or difference-image flux in nJy (LSST psfFlux)
    error: str
    is_flux: bool
    upper_limit: str | None = None  # limiting magnitude of a history entry without detection
    bands: dict[object, str] = field(default_factory=dict)  # band codes → names (ZTF fid)
    no_object: object = None  # the object id of alerts that belong to no object


PHOTOMETRY = {
    "ztf": Photometry(object_column="objectId", history="prv_candidates", value="magpsf",
                      error="sigmapsf", is_flux=False, upper_limit="diffmaglim",
                      bands={1: "g", 2: "r", 3: "i"}),
    "lsst": Photometry(object_column="diaSource.diaObjectId", history="prvDiaSources",
                       value="psfFlux", error="psfFluxErr", is_flux=True, no_object=0),
}

# Colours astronomers expect per band (blue to red), for every survey's band names.
BAND_COLOURS = {"u": "#56b4e9", "g": "#009e73", "r": "#d55e00", "i": "#cc79a7",
                "z": "#7f3c8d", "y": "#444444"}


def photometry(survey: Survey) -> Photometry | None:
    return PHOTOMETRY.get(survey.name)


def refuse_no_object(phot: Photometry, objects: list) -> None:
    """NotFoundError for an object id that names no object: Rubin/LSST's ``diaObjectId`` 0
    is that of every source associated with none (a solar system object's, for one), so its
    alerts are no object's light curve or stamps."""
    if phot.no_object is not None and phot.no_object in objects:
        name = phot.object_column.rpartition(".")[2]
        raise NotFoundError(f"{name} {phot.no_object} means no object: the alerts that carry it "
                            "belong to no object, so they make no object's light curve or stamps",
                            hint="name a real object, or name those alerts by id with "
                                 "`finkdl cutouts --id`")


def mjd(times: np.ndarray, survey: Survey) -> np.ndarray:
    """A survey's observation times (JD or MJD) as MJD."""
    return times - survey.day_offset + MJD_UNIX_DAY


def magnitudes(values: np.ndarray, phot: Photometry) -> np.ndarray:
    """Magnitudes of ``values``: as they are, or AB magnitudes of positive nJy fluxes
    (negative difference fluxes have none: NaN)."""
    if not phot.is_flux:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, AB_ZERO_POINT_NJY - 2.5 * np.log10(values), np.nan)
