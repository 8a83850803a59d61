"""The front end of a download: plan, start one worker process per partition, watch them.

Workers report snapshots through a queue; this module only gathers them and hands a
``RunView`` to whoever displays progress. It never prints: the CLI decides what to show.
"""
from __future__ import annotations

import queue as queue_module
import time
from typing import Callable

from .config import DownloadConfig, WorkerPlan
from .errors import ExitCode, FinkdlError, Interrupted, WorkerError
from .output import is_object_storage
from .plan import committed_to_end, make_plan
from .progress import STUCK_S, RunView, Summary
from .processes import run_worker, worker_context
from .stats import WorkerFailure

GRACE_S = 9.0  # workers flush and commit within this; with shutdown, the run ends within 10 s
JOIN_WAIT_S = 10.0
RECHECK_S = 2.0  # how often to ask the group about partitions no worker of this run finished


def download(cfg: DownloadConfig, on_update: Callable[[RunView], None] = lambda v: None,
             clock: Callable[[], float] = time.monotonic) -> Summary:
    """Run a whole download; returns its summary (errors of workers are in it, not raised)."""
    started = clock()
    ctx = worker_context(is_object_storage(cfg.outdir))
    plan = make_plan(cfg)
    view = RunView(cfg, plan, started=started, now=clock())
    if plan.to_fetch == 0 and not any(p.commit for p in plan.partitions):
        return Summary(view, clock() - started, ExitCode.OK)  # known at once: no worker waits
    n_workers = max(1, min(cfg.workers or len(plan.topic.partitions), len(plan.topic.partitions)))
    reports, stop, go = ctx.Queue(), ctx.Event(), ctx.Event()
    worker_plan = WorkerPlan(cfg, plan.schema.text, plan.stop_at, plan.key_schemas,
                             plan.topic_id, frozenset(s.partition for s in plan.started_over))
    # The workers' parent is the worker server, which outlives this process while they run:
    # nothing tells them if it dies (kill -9). The reading end of this pipe does: this process
    # holds its only writing end, and they stop as if told to once it is closed.
    watched, held = ctx.Pipe(duplex=False)
    procs = [ctx.Process(target=run_worker, args=(worker_plan, i, reports, stop, go, watched),
                         name=f"finkdl-worker-{i}") for i in range(n_workers)]
    for proc in procs:
        proc.start()
    error: FinkdlError | None = None
    try:
        error = _watch(procs, reports, go, view, on_update, clock)
    except KeyboardInterrupt:
        view.stopping = "interrupted: writing what was fetched, then committing"
        error = Interrupted("interrupted by the user; everything written is committed",
                            hint="run the same command again to resume")
    finally:
        _wind_down(procs, reports, stop, view, on_update, clock)
        held.close()
    if error is None and view.failures:
        error = _as_error(view.failures[0])
    outcome = ExitCode.OK
    if error is not None:
        outcome = error.exit_code
    summary = Summary(view, clock() - view.started, outcome, error)
    if outcome == ExitCode.OK and summary.quarantined:
        summary.outcome = ExitCode.PARTIAL
    return summary


def _watch(procs, reports, go, view: RunView, on_update, clock) -> FinkdlError | None:
    """Gather snapshots until every worker is done, one fails, dies or is stuck.

    Workers hold back fetching until each has its partitions (or ``JOIN_WAIT_S`` passed):
    the first to join the group is otherwise given every partition, and its work is redone
    when the others arrive.
    """
    checked = float("-inf")
    while True:
        _drain(reports, view, timeout=0.2)
        view.tick(clock())
        if not go.is_set() and (view.now - view.started > JOIN_WAIT_S or (
                len(view.workers) == len(procs) and all(w.partitions for w in view.workers.values()))):
            go.set()
        on_update(view)
        if view.failures:
            return _as_error(view.failures[0])
        stuck = view.stuck(len(procs), STUCK_S)
        if stuck is not None:
            return WorkerError(f"worker {stuck} (pid {procs[stuck].pid}) gave no sign of life for "
                               f"{STUCK_S:.0f} s: a call to the broker or the disk never returned",
                               hint="it was stopped; what is on disk is kept once; rerun to resume")
        for i, proc in enumerate(procs):
            if proc.exitcode is not None and not (i in view.workers and view.workers[i].done):
                _drain(reports, view, timeout=0.5)
                if view.failures:
                    return _as_error(view.failures[0])
                return WorkerError(f"worker {i} (pid {proc.pid}) died unexpectedly "
                                   f"(exit code {proc.exitcode})",
                                   hint="files of finished ranges are committed; rerun to resume")
        if len(view.workers) == len(procs) and all(w.done for w in view.workers.values()):
            missing = sorted({p.partition for p in view.plan.partitions} - _done_partitions(view))
            if not missing:
                return None
            # Partitions none of ours finished: another finkdl of the group may have them, or a
            # member a kill -9 left in the group until its session expires (then they come back).
            if view.now - checked >= RECHECK_S:
                checked = view.now
                if committed_to_end(view.config.connection, view.config.topic, missing,
                                    view.plan.stop_at):
                    return None


def _done_partitions(view: RunView) -> set[int]:
    return {st.partition for w in view.workers.values() for st in w.partitions if st.state == "done"}


def _wind_down(procs, reports, stop, view: RunView, on_update, clock) -> None:
    """Let workers flush and commit (up to GRACE_S); a second Ctrl-C kills them at once,
    wherever it lands: a worker left alive would be waited for at exit."""
    try:
        stop.set()
        deadline = clock() + GRACE_S
        while any(p.is_alive() for p in procs) and clock() < deadline:
            _drain(reports, view, timeout=0.1)
            view.tick(clock())
            on_update(view)
    except KeyboardInterrupt:
        view.stopping = "stopped at once: nothing uncommitted was kept"
    finally:
        killed = [proc for proc in procs if proc.is_alive()]
        for proc in killed:  # all killed before any is waited for
            proc.kill()
        for proc in procs:
            proc.join()
    if not killed:  # one killed while sending a report may have left half of it in the queue
        _drain(reports, view, timeout=0.0)
    view.tick(clock())


def _drain(reports, view: RunView, timeout: float) -> None:
    try:
        item = reports.get(timeout=timeout) if timeout else reports.get_nowait()
        while True:
            view.receive(item)
            item = reports.get_nowait()
    except queue_module.Empty:
        return


def _as_error(failure: WorkerFailure) -> FinkdlError:
    from . import errors
    cls = getattr(errors, failure.kind, None)
    if not (isinstance(cls, type) and issubclass(cls, FinkdlError)):
        cls = WorkerError
    return cls(f"worker {failure.worker}: {failure.message}", failure.hint)
