"""``finkdl demo``: the whole job on a local broker of its own."""
from __future__ import annotations


import click

from ..config import Connection, DownloadConfig
from .common import Output, err_console, handle_errors
from .download import run_download


@click.command("demo")
@click.option("--alerts", type=click.IntRange(1), default=50_000, show_default=True)
@click.option("--outdir", type=Output(), default="finkdl-demo", show_default=True,
              help="Output folder, or s3://BUCKET/PREFIX.")
@click.option("--partition-by", default="tnsclass", show_default=True,
              help="The demo's real alerts are all finkclass 'SN candidate'; their TNS classes vary.")
@click.option("--progress", type=click.Choice(["auto", "dashboard", "plain", "json", "quiet"]),
              default="auto", show_default=True)
@handle_errors
def demo_command(alerts: int, outdir: str, partition_by: str, progress: str) -> None:
    """Start a local Kafka broker, fill a topic with copies of real ZTF alerts, download it, stop.

    Each demo's topic is new: an earlier demo's files in OUTDIR are set aside (--start-over),
    and the summary says so."""
    from ..local.demo import demo_topic, example_object  # loaded here, not on every start

    err_console.print(f"starting a local Kafka broker and producing {alerts:,} alerts…")
    with demo_topic(alerts) as (broker, topic):
        cfg = DownloadConfig(topic=topic, outdir=outdir, partition_by=partition_by,
                             connection=Connection(broker.servers, "finkdl-demo"), timeout=3.0,
                             start_over=True)
        try:
            run_download(cfg, progress, 2.0)
        finally:
            err_console.print("stopping the local broker")
    name = example_object()
    click.echo(f"verify it: finkdl verify {outdir}\nlook at it: finkdl show {outdir} --plot summary.png\n"
               f"try an object: finkdl lightcurve {outdir} {name}   its stamps: finkdl cutouts {outdir} --object {name}")

