"""The heap a worker warms while its group forms is the one its batches then use."""
from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import pytest

from finkdl.processes import _worker_memory

ALLOCATE = """
import resource
from finkdl.workers.worker import warm_heap
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
warm_heap({warm})
before = faults()
batch = [bytes(48_000) for _ in range(1_000)]  # 48 MB of messages the size of alerts with cutouts
print(faults() - before)
"""


def _faults_after_warming(warm: int) -> int:
    with mock.patch.dict(os.environ):  # the settings workers start with, for the child only
        _worker_memory()
        env = dict(os.environ)
    run = subprocess.run([sys.executable, "-c", ALLOCATE.format(warm=warm)], env=env,
                         capture_output=True, text=True, check=True)
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap and page faults")
def test_a_warmed_heap_takes_a_batch_without_faulting_its_pages_in():
    cold = _faults_after_warming(0)
    warm = _faults_after_warming(64 << 20)
    assert cold > 10_000  # 48 MB in 4 KB pages, faulted in one by one
    assert warm < cold / 10
