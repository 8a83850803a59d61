"""Run one command the way a user would, and measure what it cost and what it left on disk.

Every tool is measured the same way: wall-clock start just before the process starts,
peak memory as the RSS summed over the whole process tree (the tools fan out into worker
processes) and as the largest RSS one process of it reached, the CPU time (user + system)
of every process of the tree, and, for downloaders, the end as the newest output file's
mtime, because both tools then sit idle for their timeout waiting for alerts that will not come.

CPU time is the kernel's count for each process of the tree, as its parent reaps it: this
process is the tree's subreaper (Linux), so a descendant orphaned by its parent's exit (a
fork server, a pool's worker) is reaped here rather than by init, and counted too.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow.dataset as ds

from finkdl.naming import parse_file_name

SAMPLE_EVERY_S = 0.2


@dataclass(frozen=True)
class Measurement:
    """One process tree's run: when it started and ended (wall clock), its peak memory."""

    started: float
    ended: float
    peak_rss: int
    peak_process_rss: int  # the largest one process reached (for finkdl: a worker)
    cpu_seconds: float | None  # user + system of every process of the tree (None: not counted)
    returncode: int
    killed: bool
    stdout: Path
    stderr: Path

    def failure(self) -> str | None:
        """A one-line reason when the run did not end normally, else None."""
        if self.killed:
            return f"killed after {self.ended - self.started:.0f} s"
        if self.returncode != 0:
            return f"exit {self.returncode}: {last_line(self.stderr) or last_line(self.stdout)}"
        return None


@dataclass(frozen=True)
class Output:
    """What a downloader left in its output folder, as a Parquet reader sees it."""

    files: int
    rows: int
    newest_mtime: float | None
    error: str | None = None
    most_files_per_label: int = 0  # finkdl names: the most files one (Kafka partition, label) got
    bytes: int = 0


def tree_rss(root: psutil.Process) -> dict[int, int]:
    """RSS of a process and each of its descendants, by pid; processes may vanish while we look."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    sizes = {}
    for proc in procs:
        try:
            sizes[proc.pid] = proc.memory_info().rss
        except psutil.Error:
            pass
    return sizes


def run_measured(cmd: list[str], logs: Path, env: dict[str, str] | None = None,
                 limit_s: float = 1800.0) -> Measurement:
    """Run ``cmd`` to completion, sampling the tree's RSS every 0.2 s, on a synced disk.

    The process gets its own session so a run past ``limit_s`` (a stuck tool) can be killed
    with all its workers, without touching anything else on the machine.
    """
    logs.mkdir(parents=True, exist_ok=True)
    counted = become_subreaper()
    os.sync()  # the previous run's files (fink-client writes tens of thousands) reach the disk first
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        cpu_before = children_cpu()
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        root = psutil.Process(proc.pid)
        peak, peak_process, killed = 0, 0, False
        while True:
            sizes = tree_rss(root)
            peak = max(peak, sum(sizes.values()))
            peak_process = max(peak_process, *sizes.values(), 0)
            try:
                proc.wait(SAMPLE_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                if time.time() - started > limit_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed = True
                    break
        ended = time.time()
        reap_group(proc.pid)
    cpu = children_cpu() - cpu_before if counted else None
    return Measurement(started, ended, peak, peak_process, cpu, proc.returncode, killed, stdout, stderr)


def become_subreaper() -> bool:
    """Orphaned descendants of this process are handed to it, not to init (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    PR_SET_CHILD_SUBREAPER = 36
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap_group(pgid: int) -> None:
    """Wait for what is left of a finished run's process group (orphans handed to us)."""
    while True:
        try:
            os.waitpid(-pgid, 0)
        except ChildProcessError:
            return


def children_cpu() -> float:
    """User + system CPU seconds of every child reaped so far, and of their reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_output(outdir: Path) -> Output:
    """Files, rows and newest mtime of the Parquet dataset in ``outdir``.

    pyarrow's discovery skips names starting with '.' or '_', i.e. temporary files and
    finkdl's ``_quarantine``: what is counted is exactly what ``pandas.read_parquet`` reads.
    """
    if not outdir.is_dir():
        return Output(0, 0, None)
    try:
        dataset = ds.dataset(outdir, format="parquet", partitioning="hive")
        files = dataset.files
        rows = dataset.count_rows()
    except Exception as exc:  # unreadable output is a result to report, not a crash
        return Output(0, 0, None, f"unreadable output: {type(exc).__name__}: {exc}")
    newest = max((os.stat(f).st_mtime for f in files), default=None)
    per_label = Counter((os.path.dirname(f), r.partition) for f in files
                        if (r := parse_file_name(os.path.basename(f))) is not None)
    return Output(len(files), rows, newest, None, max(per_label.values(), default=0),
                  sum(os.stat(f).st_size for f in files))


def last_line(path: Path) -> str:
    """The last non-empty line of a log (progress bars' carriage returns split lines too)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
