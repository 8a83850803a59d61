"""finkdl as users install it: a wheel built from this checkout, in a fresh virtualenv, whose
command runs from any folder, the checkout's own root included (where the sources sit beside
the installed package and must not be imported instead of it)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh virtualenv holding a wheel of this checkout and its dependencies."""
    work = tmp_path_factory.mktemp("install")
    # built from a copy holding what a clone holds: a build/ folder left in the checkout would
    # otherwise put modules since removed into the wheel
    ignored = [line.strip("/") for line in (ROOT / ".gitignore").read_text().split() if not line.startswith("#")]
    source = work / "finkdl"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", *ignored))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(work / "wheels"), str(source)], check=True, capture_output=True)
    [wheel] = (work / "wheels").glob("finkdl-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    done = subprocess.run([str(bin_dir / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return bin_dir


def _checkout_modules() -> set[str]:
    """Every module of the sources, named as installed (``workers/`` becomes ``finkdl.workers``)."""
    names = set()
    for top, package in (("finkdl", "finkdl"), ("workers", "finkdl.workers")):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT / top).with_suffix("").parts
            names.add(".".join((package, *parts)).removesuffix(".__init__"))
    return names


def test_the_wheel_holds_and_imports_every_module_of_the_checkout(installed, tmp_path):
    listing = subprocess.run(
        [str(installed / "python"), "-c",
         "import importlib, pkgutil, finkdl, finkdl.errors\n"
         "names = ['finkdl'] + [m.name for m in pkgutil.walk_packages(finkdl.__path__, 'finkdl.')]\n"
         "for name in names:\n"
         "    try:\n"
         "        name.endswith('__main__') or importlib.import_module(name)  # __main__ would run finkdl\n"
         "    except finkdl.errors.FinkdlError as exc:  # the plots, HATS: without their extras\n"
         "        assert \"pip install 'finkdl[\" in exc.hint, exc\n"
         "print('\\n'.join(names))"],
        cwd=tmp_path, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert _checkout_modules() == set(listing.stdout.split()) - {"finkdl._avro"}  # _avro: compiled


@pytest.mark.parametrize("where", ["the checkout's root", "another folder"])
def test_the_installed_command_runs_the_demo_from_any_folder_and_its_read_line_works(where, installed, tmp_path):
    cwd = ROOT if where == "the checkout's root" else tmp_path
    out = tmp_path / "demo"
    done = subprocess.run([str(installed / "finkdl"), "demo", "--alerts", "2000", "--outdir", str(out),
                           "--progress", "plain"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [ln.split("read them with: ", 1)[1] for ln in (done.stdout + done.stderr).splitlines() if "read them with: " in ln]
    read = subprocess.run([str(installed / "python"), "-c", f"import pandas\ndf = {line}\n"
                           "print(len(df), df['candid'].dtype, df['candid'].is_unique)"],
                          cwd=cwd, capture_output=True, text=True)
    assert read.stdout.split() == ["2000", "int64[pyarrow]", "True"], read.stdout + read.stderr
    verify, show = (subprocess.run([str(installed / "finkdl"), command, str(out)], cwd=cwd,
                                   capture_output=True, text=True) for command in ("verify", "show"))
    assert verify.returncode == 0 and "verify: OK" in verify.stdout, verify.stdout + verify.stderr
    assert show.returncode == 0 and "2,000" in show.stdout, show.stdout + show.stderr
