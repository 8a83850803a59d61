"""What finkdl suggests when it refuses: time columns that are times, flags spelled as the
command the user typed takes them, a credentials file replaced only when asked, an output
that is a file. No broker."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from finkdl.commands.fink_client import fink_client_spelling
from finkdl.commands.register import changed_settings, merged
from finkdl.errors import OutputError
from finkdl.partitioning import time_like_columns
from finkdl.storage import LocalDisk

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fink"


def _real_schema(survey: str) -> dict:
    found = sorted(SHARED.glob(f"{survey}/schema-*.json"))
    if not found:
        pytest.skip(f"no real {survey} schema in {SHARED}")
    return json.loads(found[-1].read_text())


def test_time_columns_of_real_ztf_alerts_are_times_not_records_arrays_or_durations():
    found = time_like_columns(_real_schema("ztf"))
    assert found[0] == "candidate.jd" and "candidate.jdstarthist" in found
    for not_a_time in ("candidate", "prv_candidates", "candidate.exptime", "delta_time",
                       "jdstarthist_dt", "timestamp"):  # timestamp: a string
        assert not_a_time not in found


def test_time_columns_of_real_lsst_alerts_match_words_not_letters():
    found = time_like_columns(_real_schema("lsst"))
    assert found[0] == "diaSource.midpointMjdTai" and "mpc_orbits.epoch_mjd" in found
    assert "diaSource.shape_flag_not_contained" not in found  # 'tai' inside 'contained'
    assert "mpc_orbits.peri_time_unc" not in found  # an uncertainty, not a time


def test_elasticc_time_column_is_found_by_its_word_tai():
    schema = {"type": "record", "name": "a", "fields": [
        {"name": "diaSource", "type": {"type": "record", "name": "s", "fields": [
            {"name": "midPointTai", "type": "double"}, {"name": "detail", "type": "string"}]}},
        {"name": "brokerTime", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]}]}
    assert time_like_columns(schema) == ["diaSource.midPointTai", "brokerTime"]


def test_fink_client_front_ends_spell_flags_their_own_way():
    hint = ("time-like columns they have: a; partition by one with --partition-by COLUMN; or, as "
            "these look like Rubin/LSST alerts, --survey lsst")
    assert fink_client_spelling(hint) == ("time-like columns they have: a; partition by one with "
                                          "-partitionby COLUMN; or, as these look like Rubin/LSST "
                                          "alerts, -survey lsst")
    again = fink_client_spelling("To download it again: --from-beginning, or, into a new folder, "
                                 "another --group-id")
    assert "--restart_from_beginning" in again and "--group-id" not in again
    stale = fink_client_spelling("download into another --outdir with another --group-id, or pass --start-over")
    assert "--start_over" in stale and "-outdir" in stale and "--start-over" not in stale
    assert "group_id in your credentials file: finkdl register, or fink_client_register" in again
    assert fink_client_spelling("pass --group-id ID, or --servers HOST:PORT") == (
        "pass group id (group_id in your credentials file: finkdl register, or fink_client_register),"
        " or servers (in your credentials file: finkdl register, or fink_client_register)")
    assert fink_client_spelling("drop --format avro; --drop-columns a,b; another --outdir") == (
        "drop -outformat avro; finkdl download --drop-columns a,b; another -outdir")
    assert fink_client_spelling("x--survey, --survey-x, --unknown") == "x--survey, --survey-x, --unknown"
    assert fink_client_spelling(None) is None


def test_register_names_the_settings_it_would_change():
    old = {"username": "astro", "password": "a", "groupid": "g", "servers": "s:1", "maxtimeout": 10,
           "mytopics": ["t"], "survey": "lsst"}
    same = {"username": "astro", "password": "a", "group_id": "g", "servers": "s:1",
            "maxtimeout": 10.0, "mytopics": []}
    assert changed_settings(old, same) == []
    assert changed_settings(old, {**same, "servers": "s:2", "password": "b"}) == ["password", "servers"]
    kept = merged(old, {**same, "group_id": "h"})
    assert kept["mytopics"] == ["t"] and kept["survey"] == "lsst"
    assert kept["group_id"] == kept["groupid"] == "h"  # fink-client 12 reads groupid


def test_an_output_folder_that_is_a_file_is_told_as_such(tmp_path):
    (tmp_path / "alerts").write_text("")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        LocalDisk(tmp_path / "alerts").check_writable()
