"""The progress displays are pure functions of worker snapshots: tested without a terminal."""
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.live import Live

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
    assert "received 1,400/2,000 alerts (2.8 MB)" in text
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
    assert line.startswith("[0:10] received 2,000/2,000 alerts (100.0%), 4.0 MB, 100 alerts/s | ")
    assert "| partitions 1/2 done, 1 fetching" in line


def test_plain_line_names_bytes_received_and_bytes_written():
    view = _view(10.0, 1000, _view(0.0, 0))
    view.workers[0].written, view.workers[0].written_bytes, view.workers[0].files = 500, 219_600_000, 2
    line = progress_line(view)
    assert "received 2,000/2,000 alerts (100.0%), 4.0 MB," in line  # 2,000 B a message, from Kafka
    assert "| written 500 alerts, 219.6 MB in 2 files |" in line  # the files on disk


def _empty_view(workers: int = 0) -> RunView:
    """A run that finds nothing to fetch: its group has read every alert already."""
    cfg = DownloadConfig(topic="ftransfer_ztf_2026-11-28_1", outdir=Path("/data/out"),
                         connection=Connection("kafka:9092", "mygroup"))
    plan = RunPlan(TopicInfo(cfg.topic, [0, 1]), schema=None, schema_source="topic",
                   partitions=[PartitionPlan(p, start=1000, high=1000) for p in (0, 1)],
                   stop_at=None)
    view = RunView(cfg, plan, started=0.0)
    for w in range(workers):
        view.receive(WorkerSnapshot(worker=w, pid=4242 + w, time=0.0, state="done", done=True, partitions=[
            PartitionStats(w, "done", committed=1000, position=1000, high=1000, start=1000)]))
    view.tick(0.5)
    return view


def test_plain_line_with_nothing_to_fetch_reads_as_such():
    # Before any worker reports, the plan's partitions are counted as waiting (not "0/0").
    assert progress_line(_empty_view()) == (
        "[0:00] nothing to fetch | written 0 alerts, 0 B in 0 files | partitions 0/2 done, 2 waiting")
    assert progress_line(_empty_view(workers=2)) == (
        "[0:00] nothing to fetch | written 0 alerts, 0 B in 0 files | partitions 2/2 done")


def test_every_part_of_the_plain_line_starts_with_its_label():
    """No value glued to the label of the part before it (once: '0 B partitions done 0/0')."""
    for view in (_empty_view(), _view(10.0, 1000, _view(0.0, 0)), _busy_view()):
        head, *rest = progress_line(view).split(" — ")[0].split(" | ")
        assert re.fullmatch(r"\[\d+:\d\d\] (received \d[\d,]*/\d[\d,]* alerts \(.*|nothing to fetch)", head)
        labels = [part.split()[0] for part in rest]
        assert labels in (["written", "partitions"], ["written", "partitions", "ETA"])
        assert all(re.search(r"\d", part) for part in rest)


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
    view = _view(3.0, 500)
    view.workers[0].written_bytes = 123_000
    record = json.loads(progress_json(view))
    assert record["received"] == 1500 and record["to_fetch"] == 2000
    assert record["received_bytes"] == 3_000_000 and record["written_bytes"] == 123_000
    assert "bytes" not in record  # which bytes: each is named
    assert {p["partition"]: p["state"] for p in record["partitions"]} == {0: "fetching", 1: "done"}


def _busy_view() -> RunView:
    """6 partitions of 2,000,000 alerts read by 3 workers for 90 s; one worker silent for
    10 s; the last partition has written and committed 1,000,000 alerts in 11 files."""
    cfg = DownloadConfig(topic="ftransfer_ztf_2026-11-28_120k", outdir=Path("/tmp/dash2"),
                         connection=Connection("127.0.0.1:49739", "dash-25959"))
    plan = RunPlan(TopicInfo(cfg.topic, list(range(6))), schema=None, schema_source="topic",
                   partitions=[PartitionPlan(p, start=0, high=2_000_000) for p in range(6)], stop_at=None)
    view = RunView(cfg, plan, started=0.0)
    for now, share in ((0.0, 0.0), (90.0, 1.0)):
        view.now = now
        for w in range(3):
            parts = [PartitionStats(p, "fetching", committed=1_000_000 if p == 5 else None,
                                    position=int(share * (800_000 + 10_000 * p)), high=2_000_000, start=0,
                                    fetched_bytes=int(share * (800_000 + 10_000 * p)) * 1300,
                                    written=1_000_000 if p == 5 else 0, files=11 if p == 5 else 0)
                     for p in (2 * w, 2 * w + 1)]
            view.receive(WorkerSnapshot(
                worker=w, pid=21436 + w, time=now, state="running", partitions=parts,
                received=sum(st.position for st in parts),
                received_bytes=sum(st.fetched_bytes for st in parts),
                written=sum(st.written for st in parts), written_bytes=219_600_000 if w == 2 else 0,
                files=sum(st.files for st in parts), cpu_percent=18.0 + w, rss=300_500_000))
        view.tick(now)
    view.heard[1] = 80.0
    return view


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
UNITS = {"B", "KB", "MB", "GB", "TB", "MB/s", "alerts", "alerts/s", "files", "%"}


def _lines(renderable, width: int) -> list[str]:
    """What a terminal of ``width`` columns shows, colours taken out."""
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True).print(renderable)
    return [ANSI.sub("", line).rstrip() for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("width", [80, 100, 132])
def test_dashboard_fits_the_terminal_and_keeps_what_matters(width):
    view = _busy_view()
    lines = _lines(render(view, free_disk=73_200_000_000), width)
    text = "\n".join(lines)
    assert all(len(line) <= width for line in lines), text
    assert "…" not in text, text  # no cell cut short
    for line in lines:
        if line.split() and line.split()[0] == "part":
            continue  # the table's header names the units of its columns
        words = [w.strip("(),") for w in line.split()]
        for i, word in enumerate(words):
            if word in UNITS:  # a unit always follows its number, on the same line
                assert i > 0 and re.search(r"\d", words[i - 1]), (line, text)
    for p in range(6):
        st = next(st for w in view.workers.values() for st in w.partitions if st.partition == p)
        row = next(line for line in lines if re.match(rf"\s*{p}\s", line))
        assert f"{st.position:,}" in row and f"{st.high:,}" in row, row  # offset/end
        assert f"{st.lag:,}" in row and f"{view.partition_rate(p).per_s:,.0f}" in row, row  # lag, rate
    assert "received 4,950,000/12,000,000 alerts (6.4 GB)" in text and "55,000 alerts/s" in text
    assert "71.5 MB/s" in text and "written 1,000,000 alerts, 219.6 MB in 11 files" in text
    assert "ETA 2:08" in text and "free disk 73.2 GB" in text
    assert "pid 21437: no report for 10 s" in text
    assert "300.5 MB" in text  # each worker's memory: in the table, or on the workers' line


def test_dashboard_lays_itself_out_at_the_width_of_the_console_that_draws_it():
    dashboard = render(_busy_view(), free_disk=73_200_000_000)
    wide, compact = "\n".join(_lines(dashboard, 132)), "\n".join(_lines(dashboard, 80))
    assert "committed" in wide and "CPU %" in wide and "workers:" not in wide
    assert "committed" not in compact and "offset/end" in compact
    assert "workers:" in compact and "pid 21436: CPU 18%, RSS 300.5 MB" in compact


@pytest.mark.parametrize("width", [40, 50, 64])
def test_a_narrower_terminal_still_gets_every_partition_uncut(width):
    lines = _lines(render(_busy_view()), width)
    assert all(len(line) <= width for line in lines) and "…" not in "\n".join(lines)
    assert sum(1 for line in lines if re.match(r"\s*\d\s", line)) >= 6


def test_dashboard_with_nothing_to_fetch():
    text = "\n".join(_lines(render(_empty_view(workers=2)), 80))
    assert "nothing to fetch" in text and "0/0" not in text


def test_live_draws_the_dashboard_at_its_console_width():
    """As the CLI shows it: rich's Live pulls ``render(...)`` and lays it out at its width."""
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True)
    with Live(console=console, auto_refresh=False, get_renderable=lambda: render(_busy_view())):
        pass
    lines = [ANSI.sub("", line).rstrip() for line in out.getvalue().splitlines()]
    assert "offset/end" in "\n".join(lines) and all(len(line) <= 80 for line in lines)
