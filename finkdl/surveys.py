"""Each kind of alert finkdl knows, described in one place: a new survey is one entry here.

What differs between Fink's surveys is where things are in an alert: the id that makes an
alert unique (``finkdl verify`` counts duplicates of it), the observation time
(``--partition-by time``), the cutouts (``--drop-cutouts``, ``finkdl cutouts``), the label
columns people partition by, how a topic is named and which fink-client credentials file
holds the servers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Survey:
    """Where a survey's alerts keep what finkdl needs."""

    name: str
    title: str
    id_column: str  # unique per alert
    time_column: str  # observation time, in days
    time_scale: str  # what the time column counts: "JD" or "MJD"
    day_offset: float  # time column minus this is days since 1970-01-01
    cutouts: tuple[str, ...]  # science, template, difference
    label_columns: tuple[str, ...]  # useful --partition-by columns, dotted when nested
    band_column: str  # filter of a detection, inside the time column's record
    topic_prefixes: tuple[str, ...]
    credentials: str  # fink-client's ~/.finkclient/<credentials>_credentials.yml


ZTF = Survey(
    name="ztf", title="ZTF", id_column="candid", time_column="candidate.jd", time_scale="JD",
    day_offset=2440587.5, cutouts=("cutoutScience", "cutoutTemplate", "cutoutDifference"),
    label_columns=("finkclass", "tnsclass", "cdsxmatch"), band_column="candidate.fid",
    topic_prefixes=("ftransfer_ztf_", "fxmatch_", "fink_ai_"), credentials="ztf")
LSST = Survey(
    name="lsst", title="Rubin/LSST", id_column="diaSourceId",
    time_column="diaSource.midpointMjdTai", time_scale="MJD", day_offset=40587.0,
    cutouts=("cutoutScience", "cutoutTemplate", "cutoutDifference"),
    label_columns=("tns_type_recomputed", "pred.main_label_crossmatch", "xm.simbad_otype",
                   "clf.cats_class"),
    band_column="diaSource.band", topic_prefixes=("ftransfer_lsst_",), credentials="lsst")
# Fink's alerts of the ELASTiCC challenge (simulated LSST alerts, schema lsst.v4_1): served
# by Fink's LSST servers, hence LSST's credentials.
ELASTICC = Survey(
    name="elasticc", title="ELASTiCC", id_column="alertId", time_column="diaSource.midPointTai",
    time_scale="MJD", day_offset=40587.0, cutouts=(), label_columns=("classId",),
    band_column="diaSource.filterName", topic_prefixes=("ftransfer_elasticc_",),
    credentials="lsst")

SURVEYS: dict[str, Survey] = {s.name: s for s in (ZTF, LSST, ELASTICC)}
FINK_TOPIC_PREFIXES = ("ftransfer_", "fxmatch_", "fink_ai_")


def survey(name: str) -> Survey:
    return SURVEYS[name]


def id_columns() -> tuple[str, ...]:
    """Every survey's alert id, in the order surveys are listed."""
    return tuple(dict.fromkeys(s.id_column for s in SURVEYS.values()))


def surveys_with(columns: Iterable[str]) -> list[Survey]:
    """The surveys whose alert id is among ``columns`` (a schema's or a file's column names)."""
    names = set(columns)
    return [s for s in SURVEYS.values() if s.id_column in names]
