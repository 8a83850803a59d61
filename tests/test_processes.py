"""The worker server: forked from the front end when that is safe, a new interpreter otherwise,
running workers and gone with the front end either way."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

FRONT_END = """
import sys, threading, time
from multiprocessing import forkserver
import psutil
from finkdl.processes import worker_context
if sys.argv[1] == "threaded":  # a thread the server would lack (in a test run, Kafka's)
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
ctx = worker_context()
server = psutil.Process(forkserver._forkserver._forkserver_pid)
queue = ctx.SimpleQueue()
worker = ctx.Process(target=queue.put, args=("ran",))
worker.start()
worker.join()
started = "forked" if server.cmdline() == psutil.Process().cmdline() else "spawned"
print(server.pid, started, queue.get())
"""


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("mode, started", [("single-threaded", "forked"), ("threaded", "spawned")])
def test_the_worker_server_is_forked_from_a_single_threaded_front_end_and_ends_with_it(mode, started):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # as finkdl's commands start (finkdl.startup)
    out = subprocess.run([sys.executable, "-c", FRONT_END, mode], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    server, how, worker = out.stdout.split()
    assert (how, worker) == (started, "ran")
    assert _gone(int(server)), "the worker server outlived its front end"
