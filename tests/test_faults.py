"""Faults against the real broker: whatever happens, a rerun leaves every alert on disk once.

Quick forms run in ``make test``; ``make soak`` (FINKDL_SOAK=1) repeats them longer.
"""
from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from finkdl import download as download_module
from finkdl.config import Connection, DownloadConfig, FlushPolicy
from finkdl.local import generator
from finkdl.errors import ExitCode
from finkdl.verify import verify

pytestmark = pytest.mark.broker
SOAK = os.environ.get("FINKDL_SOAK") == "1"
ROUNDS = range(3 if SOAK else 1)


def _cmd(broker, topic, outdir, group, *extra):
    return [sys.executable, "-m", "finkdl", "download", topic, "--outdir", str(outdir),
            "--servers", broker.servers, "--group-id", group, "--timeout", "2",
            "--flush-rows", "2000", "--progress", "plain", "--progress-interval", "1", *extra]


def _start(cmd, **kw):
    """A run as from a terminal, where Ctrl-C acts: tests started as a background job of a
    shell (a CI script run with &) would otherwise pass on an ignored SIGINT, which Python
    keeps ignoring, and a Ctrl-C test would only see the run end by itself."""
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_acts, **kw)


def _sigint_acts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _finish(proc, timeout):
    """stderr of a run; a run still going after ``timeout`` is killed and fails the test with
    the end of its progress lines, which say where it was stuck."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"still running after {timeout} s; its last output:\n" + "\n".join(err.splitlines()[-25:]))


def _workers(proc) -> list[psutil.Process]:
    """A run's worker processes: the fork server's children (the run's own children are the
    fork server and multiprocessing's resource tracker)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.ppid() != proc.pid]
        if workers:
            return workers
        time.sleep(0.1)
    raise AssertionError("no worker process started")


RUN_ALERTS = 60_000


def _started(broker, topic_factory, group_id, outdir, *extra):
    """A run over a new topic of RUN_ALERTS alerts in 3 partitions, once its first files are
    on disk (the moment the faults below strike)."""
    topic = topic_factory(RUN_ALERTS, partitions=3)
    proc = _start(_cmd(broker, topic, outdir, group_id, *extra))
    _wait_for_files(outdir)
    return topic, proc


def _wait_for_files(outdir, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not list(outdir.rglob("part-*.parquet")):
        time.sleep(0.2)


def _assert_exact(outdir, n, what=""):
    ids = pd.read_parquet(outdir, columns=["candid"])["candid"]
    report = verify(outdir)
    # One line per fault, for the record (shown with pytest -s, as `make soak` does).
    print(f"\nFAULT {what or os.environ.get('PYTEST_CURRENT_TEST', '').split(' ')[0]}: expected {n:,} rows, "
          f"on disk {len(ids):,}, duplicates {len(ids) - ids.nunique()}, verify {'OK' if report.ok else 'FAILED'}")
    assert len(ids) == n and ids.nunique() == n
    assert report.ok


def _rerun(broker, topic, outdir, group, n):
    done = subprocess.run(_cmd(broker, topic, outdir, group), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    _assert_exact(outdir, n)


@pytest.mark.parametrize("kills", [20 if SOAK else 5])
def test_repeated_kill_9_of_the_process_group_then_rerun_is_exact(kills, broker, topic_factory,
                                                                     group_id, tmp_path):
    n = 200_000 if SOAK else 40_000
    topic = topic_factory(n, partitions=4)
    rng = random.Random(kills)
    for _ in range(kills):
        proc = _start(_cmd(broker, topic, tmp_path, group_id))
        time.sleep(rng.uniform(1.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    _rerun(broker, topic, tmp_path, group_id, n)


@pytest.mark.parametrize("round_", ROUNDS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_within_10_s_and_commit_only_what_is_on_disk(round_, sig, broker, topic_factory,
                                                                             group_id, tmp_path):
    n = RUN_ALERTS
    topic, proc = _started(broker, topic_factory, group_id, tmp_path)
    sent = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what a terminal does
    else:
        proc.send_signal(sig)  # what a batch system does
    err = _finish(proc, 30)
    assert time.monotonic() - sent < 10
    assert proc.returncode in (ExitCode.INTERRUPTED, 0), err
    if proc.returncode == ExitCode.INTERRUPTED:
        assert "run the same command again to resume" in err
    _rerun(broker, topic, tmp_path, group_id, n)


@pytest.mark.parametrize("round_", ROUNDS)
def test_a_second_ctrl_c_stops_at_once_and_a_rerun_is_still_exact(round_, broker, topic_factory,
                                                                  group_id, tmp_path):
    n = RUN_ALERTS
    topic, proc = _started(broker, topic_factory, group_id, tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    err = _finish(proc, 30)
    took = time.monotonic() - sent
    assert took < 3, (f"finkdl ended {took:.1f} s after the second Ctrl-C; its last lines:\n"
                      + "\n".join(err.splitlines()[-8:]))
    # The first Ctrl-C may already have stopped the run: the second then ends the process while
    # it prints its summary (killed by SIGINT, as a shell reports Ctrl-C).
    assert proc.returncode in (ExitCode.INTERRUPTED, 0, -signal.SIGINT), err
    _rerun(broker, topic, tmp_path, group_id, n)


@pytest.mark.parametrize("round_", ROUNDS)
def test_a_worker_killed_alone_is_reported_and_the_run_does_not_hang(round_, broker, topic_factory,
                                                                     group_id, tmp_path):
    n = RUN_ALERTS
    topic, proc = _started(broker, topic_factory, group_id, tmp_path)
    _workers(proc)[-1].kill()
    err = _finish(proc, 60)
    assert proc.returncode in (ExitCode.WORKER, 0), err
    if proc.returncode:
        assert "died unexpectedly" in err
    _rerun(broker, topic, tmp_path, group_id, n)


@pytest.mark.parametrize("round_", ROUNDS)
def test_the_front_end_killed_alone_its_workers_stop_and_the_rerun_is_exact(round_, broker, topic_factory,
                                                                          group_id, tmp_path):
    """kill -9 of the front end only, not of its process group: no signal reaches the workers,
    whose parent, the worker server, outlives it while they run. They stop as if told to (what
    they fetched written and committed) rather than download on unseen, holding partitions
    the rerun then lacks, and never exit (their reports fill a pipe no one reads)."""
    topic, proc = _started(broker, topic_factory, group_id, tmp_path)
    rest = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()  # not its output: workers left running would hold its pipes open
    _, alive = psutil.wait_procs(rest, timeout=30)
    for left in alive:
        left.kill()
    proc.stdout.close()
    proc.stderr.close()
    assert not alive, f"still running 30 s after the front end was killed: {[p.pid for p in alive]}"
    _rerun(broker, topic, tmp_path, group_id, RUN_ALERTS)


@pytest.mark.parametrize("round_", ROUNDS)
def test_broker_down_20_s_mid_download_then_rerun_is_exact(round_, broker, topic_factory, group_id, tmp_path):
    n = RUN_ALERTS
    topic, proc = _started(broker, topic_factory, group_id, tmp_path, "--timeout", "30")
    broker.restart(pause_s=20)
    err = _finish(proc, 420)  # past the 300 s after which a silent worker is stopped
    assert proc.returncode in (0, ExitCode.BROKER, ExitCode.WORKER), err
    assert "Traceback" not in err
    shown = [line for line in err.splitlines() if " — " in line]  # the outage, as the user saw it
    print(f"\nFAULT broker down, shown as: {shown[0] if shown else None}")
    assert shown, err
    _rerun(broker, topic, tmp_path, group_id, n)


def test_a_worker_frozen_mid_download_is_stopped_and_the_rerun_is_exact(broker, topic_factory, group_id,
                                                                        tmp_path, monkeypatch):
    """A worker stuck in a call that never returns (here: SIGSTOP) does not hang the run."""
    n = 30_000
    topic = topic_factory(n, partitions=3)
    monkeypatch.setattr(download_module, "STUCK_S", 5.0)  # 300 s in real runs
    cfg = DownloadConfig(topic, tmp_path, Connection(broker.servers, group_id), timeout=2,
                         flush=FlushPolicy(max_rows=2000))
    frozen: list[int] = []

    def freeze_one(view):
        if not frozen and view.total("files"):
            frozen.append(min(view.workers))
            os.kill(view.workers[frozen[0]].pid, signal.SIGSTOP)
    started = time.monotonic()
    summary = download_module.download(cfg, on_update=freeze_one)
    print(f"\nFAULT worker frozen: run ended in {time.monotonic() - started:.1f} s: {summary.error}")
    assert summary.outcome == ExitCode.WORKER
    assert f"worker {frozen[0]} " in summary.error.message and "no sign of life" in summary.error.message
    _rerun(broker, topic, tmp_path, group_id, n)


def test_full_disk_is_a_clear_error_and_nothing_is_committed_past_the_disk(broker, topic_factory,
                                                                          group_id, tmp_path):
    n = 20_000
    topic = topic_factory(n, partitions=2)
    limit = 300_000  # bytes per file: the first flushes fit, a bigger one does not

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    done = subprocess.run(_cmd(broker, topic, tmp_path, group_id, "--flush-rows", "100000"),
                          capture_output=True, text=True, timeout=300, preexec_fn=small_disk)
    assert done.returncode == ExitCode.OUTPUT, done.stderr
    assert f"cannot write {tmp_path}" in done.stderr
    assert not list(tmp_path.rglob("*.tmp"))
    _rerun(broker, topic, tmp_path, group_id, n)


@pytest.mark.parametrize("round_", ROUNDS)
def test_second_finkdl_joining_the_group_splits_the_work_exactly(round_, broker, topic_factory, group_id, tmp_path):
    n = 80_000
    topic = topic_factory(n, partitions=6)
    first = _start(_cmd(broker, topic, tmp_path / "host1", group_id, "--workers", "3"))
    _wait_for_files(tmp_path / "host1")
    second = _start(_cmd(broker, topic, tmp_path / "host2", group_id, "--workers", "3"))
    for proc in (first, second):
        err = _finish(proc, 300)
        assert proc.returncode == 0, err
    ids = pd.concat([pd.read_parquet(tmp_path / h, columns=["candid"]) for h in ("host1", "host2")
                     if list((tmp_path / h).rglob("*.parquet"))])["candid"]
    print(f"\nFAULT second finkdl in the group: expected {n:,} rows, on disk {len(ids):,} "
          f"across both folders, duplicates {len(ids) - ids.nunique()}")
    assert len(ids) == n and ids.nunique() == n


ARRAY_ROUNDS = range(10 if SOAK else 1)


def _job_array(broker, topic, outdir, group, processes=3, apart_s=1.5):
    """Processes of one group writing into one folder, started apart, as a Slurm job array's
    tasks start (each with 2 workers)."""
    procs = []
    for i in range(processes):
        if i:
            time.sleep(apart_s)
        procs.append(_start(_cmd(broker, topic, outdir, group, "--workers", "2")))
    return procs


@pytest.mark.parametrize("round_", ARRAY_ROUNDS)
def test_processes_of_one_group_share_one_output_folder_exactly(round_, broker, topic_factory,
                                                                  group_id, tmp_path):
    n = 24_000
    topic = topic_factory(n, partitions=6)
    for proc in _job_array(broker, topic, tmp_path, group_id):
        err = _finish(proc, 300)
        assert proc.returncode == 0, err
    _assert_exact(tmp_path, n, f"3 processes, one folder, round {round_}")


@pytest.mark.parametrize("round_", ARRAY_ROUNDS)
def test_one_process_of_a_job_array_killed_then_a_rerun_leaves_the_shared_folder_exact(
        round_, broker, topic_factory, group_id, tmp_path):
    n = 120_000  # long enough that the second process is still at work when it is killed
    topic = topic_factory(n, partitions=6)
    procs = _job_array(broker, topic, tmp_path, group_id)
    _wait_for_files(tmp_path)
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].communicate()
    for proc in (procs[0], procs[2]):  # they take the killed one's partitions when its session ends
        err = _finish(proc, 300)
        assert proc.returncode == 0, err
    _rerun(broker, topic, tmp_path, group_id, n)


def test_messages_of_several_mb_are_downloaded_with_bounded_memory(broker, topic_factory, group_id, tmp_path):
    records = list(generator.alerts(48, slim=False, cutouts=True))
    for i, record in enumerate(records):
        record["cutoutScience"]["stampData"] = bytes([i]) * 6_000_000
    topic = topic_factory(0, partitions=2, schema=generator.ztf_schema(slim=False, cutouts=True),
                          records=records)
    proc = _start(_cmd(broker, topic, tmp_path, group_id, "--flush-mb", "32"))
    peak = 0
    while proc.poll() is None:
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            peak = max([peak] + [p.memory_info().rss for p in tree[1:]])
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.1)
    assert proc.returncode == 0, proc.stderr.read()
    table = pd.read_parquet(tmp_path, columns=["candid", "cutoutScience"])
    assert len(table) == 48 and all(len(c["stampData"]) == 6_000_000 for c in table.cutoutScience)
    print(f"\nFAULT 48 messages of 6 MB (288 MB): peak worker RSS {peak / 2**20:.0f} MB")
    # Bounded: peaks seen 194-240 MB. A first batch gathering many such messages at once went
    # past 550 MB; holding every message of the topic in each worker with its copies, past 1 GiB.
    assert peak < 512 * 2**20
