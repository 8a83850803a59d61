"""The progress displays are pure functions of worker snapshots: tested without a terminal."""
import io
import json
from pathlib import Path

from rich.console import Console

from finkdl.config import Connection, DownloadConfig
from finkdl.dashboard import progress_json, progress_line, render
from finkdl.kafka import TopicInfo
from finkdl.plan import PartitionPlan, RunPlan
from finkdl.progress import STUCK_S, Rate, RunView
from finkdl.stats import PartitionStats, WorkerSnapshot


def _view(now: float, received: int, view: RunView | None = None) -> RunView:
    """A run of 2 partitions of 1,000 alerts: worker 0 has received ``received`` of its
    partition at ``now``, worker 1 is done. Given ``view``, the reports arrive in it."""
    if view is None:
        cfg = DownloadConfig(topic="ftransfer_ztf_2026-11-28_1", outdir=Path("/data/out"),
                             connection=Connection("kafka:9092", "mygroup", password="hunter2"))
        plan = RunPlan(TopicInfo(cfg.topic, [0, 1]), schema=None, schema_source="topic",
                       partitions=[PartitionPlan(0, start=0, high=1000),
                                   PartitionPlan(1, start=0, high=1000)], stop_at=None)
        view = RunView(cfg, plan, started=0.0)
    view.now = now
    view.receive(WorkerSnapshot(
        worker=0, pid=4242, time=now, state="running", received=received, received_bytes=received * 2000,
        cpu_percent=97.0, rss=150 * 2**20,
        partitions=[PartitionStats(0, "fetching", committed=received // 2, position=received, high=1000,
                                   start=0, written=received // 2, files=2)]))
    view.receive(WorkerSnapshot(worker=1, pid=4243, time=now, state="done", done=True,
                                partitions=[PartitionStats(1, "done", committed=1000, position=1000,
                                                           high=1000, start=0, written=1000)],
                                received=1000, received_bytes=2_000_000))
    view.tick(now)
    return view


def _text(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=160, force_terminal=True, color_system=None).print(renderable)
    return out.getvalue()


def test_dashboard_shows_header_partitions_and_totals():
    view = _view(2.0, 400, _view(0.0, 0))
    text = _text(render(view, free_disk=50 * 2**30))
    assert "ftransfer_ztf_2026-11-28_1" in text and "mygroup" in text and "kafka:9092" in text
    assert "1,400/2,000 alerts" in text
    assert "4242" in text and "fetching" in text and "done" in text
    assert "200 alerts/s" in text  # 400 new alerts over 2 s for partition 0
    assert "hunter2" not in text


def test_dashboard_warns_when_disk_is_low():
    text = _text(render(_view(1.0, 10), free_disk=100 * 2**20))
    assert "low" in text


def test_eta_comes_from_the_recent_rate():
    view = _view(4.0, 600, _view(0.0, 200))  # 1,600 of 2,000 received; 100 alerts/s over 4 s
    assert view.eta_s == 4.0
    assert "ETA 0:04" in _text(render(view))


def test_rates_forget_what_is_older_than_their_window():
    rate = Rate(window_s=5.0)
    for t, n in [(0, 0), (1, 1000), (10, 1100), (11, 1200)]:
        rate.add(t, n, n * 10)
    assert rate.per_s == 100.0 and rate.bytes_per_s == 1000.0


def test_plain_progress_line_for_batch_jobs():
    line = progress_line(_view(10.0, 1000, _view(0.0, 0)))
    assert line.startswith("[0:10] 2,000/2,000 alerts (100.0%)")
    assert "partitions done 1/2, 1 fetching" in line


def test_plain_progress_line_says_what_a_worker_waits_for():
    view = _view(5.0, 100)
    view.workers[0].error = "Connection refused: 127.0.0.1:9092"
    assert progress_line(view).endswith("— Connection refused: 127.0.0.1:9092")


def test_a_worker_silent_for_seconds_is_shown_as_held_up():
    view = _view(9.0, 100)
    view.heard[0] = 4.0  # e.g. inside a commit that waits for a restarting broker
    assert "no report for 5 s" in progress_line(view)
    assert "no report for 5 s" in _text(render(view))


def test_a_worker_silent_past_the_limit_is_stuck_and_a_done_one_never_is():
    view = _view(400.0, 100)
    assert view.stuck(2) is None
    view.heard[0] = 400.0 - STUCK_S  # e.g. a file system that stopped answering
    view.heard[1] = 0.0  # done: it may stop reporting
    assert view.stuck(2) == 0
    assert view.stuck(3) == 0 and RunView(view.config, view.plan, started=0.0, now=STUCK_S).stuck(1) == 0


def test_json_progress_is_one_object_per_line():
    record = json.loads(progress_json(_view(3.0, 500)))
    assert record["received"] == 1500 and record["to_fetch"] == 2000
    assert {p["partition"]: p["state"] for p in record["partitions"]} == {0: "fetching", 1: "done"}
