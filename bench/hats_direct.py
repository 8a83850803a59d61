"""A HATS catalog of a finkdl folder without finkdl: what a user does with pyarrow and
hats-import alone (bench/hats.py measures each step as its own process).

hats-import's own Parquet reader (``file_reader="parquet"``) cannot take the position from a
record: ``ra_column="candidate.ra"`` fails in its mapping stage ("Column candidate.ra does not
exist in schema": pyarrow reads the leaf as the record ``candidate`` holding ``ra``). Nor
does it see the Hive labels (``finkclass=…/``), which live in the folder names. So a user
first writes a flat copy with top-level ``ra``/``dec`` and the labels as a column, then runs
hats-import on it:

    python bench/hats_direct.py flatten alerts/ flat/
    python bench/hats_direct.py import flat/ catalogs/direct --highest-order 8 \\
        --pixel-threshold 200000 --workers 2 --memory-limit 8GB
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# Not this script's folder on the module path: bench/hats.py there would hide the hats package.
HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE]

ROWS_PER_FILE = 100_000  # as finkdl's files at most: hats-import maps one file per task


def flatten(outdir: Path, flat: Path) -> None:
    """Every alert of ``outdir`` with ``ra`` and ``dec`` copied out of ``candidate``, and the
    folder's labels as columns, streamed into files of at most ROWS_PER_FILE rows."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(outdir, format="parquet", partitioning="hive")
    columns = {name: ds.field(name) for name in dataset.schema.names}
    columns["ra"] = ds.field("candidate", "ra")
    columns["dec"] = ds.field("candidate", "dec")
    ds.write_dataset(dataset.scanner(columns=columns), flat, format="parquet",
                     max_rows_per_file=ROWS_PER_FILE, max_rows_per_group=ROWS_PER_FILE,
                     existing_data_behavior="error")


def hats_import(flat: Path, catalog: Path, highest_order: int, threshold: int, workers: int,
                memory_limit: str, id_column: str) -> None:
    """hats-import's pipeline over the flat copy, on a local Dask cluster of ``workers``
    single-threaded processes."""
    from dask.distributed import Client, LocalCluster
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    args = ImportArguments(
        input_path=str(flat), file_reader="parquet", ra_column="ra", dec_column="dec",
        sort_columns=id_column, highest_healpix_order=highest_order, pixel_threshold=threshold,
        output_path=str(catalog.parent), output_artifact_name=catalog.name,
        tmp_dir=str(catalog.parent / f".{catalog.name}-tmp"), resume=False,
        simple_progress_bar=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0",
                      local_directory=str(catalog.parent / f".{catalog.name}-dask"),
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        pipeline_with_client(args, client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    flat = steps.add_parser("flatten", help="a flat copy of a finkdl folder, ra/dec top-level")
    flat.add_argument("outdir", type=Path)
    flat.add_argument("flat", type=Path)
    imp = steps.add_parser("import", help="hats-import's pipeline over the flat copy")
    imp.add_argument("flat", type=Path)
    imp.add_argument("catalog", type=Path)
    imp.add_argument("--highest-order", type=int, required=True)
    imp.add_argument("--pixel-threshold", type=int, required=True)
    imp.add_argument("--workers", type=int, required=True)
    imp.add_argument("--memory-limit", required=True, help="per worker, as Dask takes it")
    imp.add_argument("--id-column", default="candid")
    args = parser.parse_args()
    if args.step == "flatten":
        flatten(args.outdir, args.flat)
    else:
        hats_import(args.flat, args.catalog, args.highest_order, args.pixel_threshold,
                    args.workers, args.memory_limit, args.id_column)


if __name__ == "__main__":
    main()
