"""finkdl as users install it: a wheel built from this checkout, in a fresh virtualenv, whose
command runs from any folder, the checkout's own root included (where the sources sit beside
the installed package and must not be imported instead of it)."""
from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``finkdl`` command of a wheel of this checkout, installed with its dependencies."""
    work = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(work / "wheels"), str(ROOT)], check=True, capture_output=True)
    [wheel] = (work / "wheels").glob("finkdl-*.whl")
    venv.create(work / "venv", with_pip=True)
    pip = work / "venv" / "bin" / "pip"
    done = subprocess.run([str(pip), "install", "-q", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return work / "venv" / "bin" / "finkdl"


@pytest.mark.parametrize("where", ["the checkout's root", "another folder"])
def test_the_installed_command_runs_the_demo_from_any_folder(where, installed, tmp_path):
    cwd = ROOT if where == "the checkout's root" else tmp_path
    out = tmp_path / "demo"
    done = subprocess.run([str(installed), "demo", "--alerts", "2000", "--outdir", str(out),
                           "--progress", "plain"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(out, columns=["candid"])) == 2000
    verify = subprocess.run([str(installed), "verify", str(out)], cwd=cwd, capture_output=True, text=True)
    assert verify.returncode == 0 and "verify: OK" in verify.stdout, verify.stdout + verify.stderr
