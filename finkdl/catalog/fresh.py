"""A new catalog: hats-import's pipeline over the folder, written beside and moved in place."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from .client import dask_client
from .existing import finkdl_properties
from .position import DEC, RA
from .source import Source, default_threshold
from .settings import DEFAULT_ORDER, Outcome
from .versions import switch, work_dir


def import_arguments(source: Source, work: Path, name: str, highest_order: int,
                     threshold: int, **more):
    """hats-import's arguments for ``source``'s alerts, written under ``work/name``."""
    from hats_import.catalog.arguments import ImportArguments

    work.mkdir(parents=True, exist_ok=True)
    schema_file = work / f"{name}-schema.parquet"
    pq.write_table(source.schema.empty_table(), schema_file)
    return ImportArguments(
        output_path=str(work), output_artifact_name=name, input_file_list=list(source.files),
        file_reader=source.reader, ra_column=RA, dec_column=DEC,
        sort_columns=source.survey.id_column, use_schema_file=str(schema_file),
        highest_healpix_order=highest_order, pixel_threshold=threshold,
        expected_total_rows=source.rows, tmp_dir=str(work / "tmp"), resume=False,
        simple_progress_bar=True, **more)


def build(config, name: str, source: Source):
    """The folder's alerts as a new catalog at ``config.catalog``."""
    from hats_import.pipeline import pipeline_with_client


    order = DEFAULT_ORDER if config.highest_order is None else config.highest_order
    threshold = config.pixel_threshold or default_threshold(source.bytes_per_row)
    work = work_dir(config.catalog)
    args = import_arguments(source, work, name, order, threshold,
                            progress_bar=config.progress,
                            addl_hats_properties=finkdl_properties(source, order))
    with dask_client(config.scheduler, work / "dask") as client:
        pipeline_with_client(args, client)
    pixels = len(list((work / name / "dataset").rglob("Npix=*")))
    switch(work / name, config.catalog)
    return Outcome(config.catalog, False, source.rows, 0, source.rows, pixels, pixels, 0.0)
