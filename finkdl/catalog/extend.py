"""A later download added to a catalog: hats-import against the catalog's pixels, then a merge.

hats-import's incremental mode (``existing_pixels``, hats-import PR 629) maps the new
alerts onto the catalog's pixels where they fall inside them, and onto new pixels elsewhere,
into a separate catalog. Each of its pixels is then merged with the catalog's (see
:mod:`.pixels`) into the next version; the catalog's other pixels, and those that gained no
alert, are hard links to their files, not rewritten. ``_metadata``, the partition list, the
point map and ``properties`` are written for the new version, which is switched in at the
end (:mod:`.versions`).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import OutputError
from .existing import Existing
from .fresh import import_arguments
from .settings import Outcome
from .pixels import Merged, merge_pixel
from .source import Source
from .versions import link_or_copy, switch, work_dir

Pixel = tuple[int, int]


def extend(config, current: Existing, source: Source):
    """``source``'s alerts added to the catalog ``current``."""
    from hats_import.pipeline import pipeline_with_client

    from .client import dask_client

    work = work_dir(current.path)
    args = import_arguments(source, work, "increment", current.highest_order, current.threshold,
                            existing_pixels=[(p.order, p.pixel) for p in current.pixels],
                            progress_bar=config.progress, should_write_skymap=False)
    new = work / "catalog"
    with dask_client(config.scheduler, work / "dask") as client:
        pipeline_with_client(args, client)
        results = merge(client, current, work / "increment", new, config.progress)
    rewritten = {p for p, m in results.items() if m.written}
    pixels = [p for p in _pairs(current) if p not in rewritten]
    for order, pixel in pixels:
        link_or_copy(_file(current.path, order, pixel), _file(new, order, pixel))
    pixels += [w for m in results.values() for w in m.written]
    cells: dict[int, int] = {}
    for m in results.values():
        for cell, n in m.added_cells.items():
            cells[cell] = cells.get(cell, 0) + n
    added = sum(m.added for m in results.values())
    finish(current, new, pixels, cells, int(current.properties.total_rows) + added)
    switch(new, current.path)
    return Outcome(current.path, True, added, sum(m.skipped for m in results.values()),
                   int(current.properties.total_rows) + added, len(pixels),
                   sum(len(m.written) for m in results.values()), 0.0)


def merge(client, current: Existing, increment: Path, new: Path, progress: bool
          ) -> dict[Pixel, Merged]:
    """Each pixel of the increment merged into ``new``, as Dask tasks."""
    import hats
    from dask.distributed import as_completed
    from hats_import.pipeline_resume_plan import print_progress

    old = set(_pairs(current))
    futures = {}
    for p in hats.read_hats(increment).get_healpix_pixels():
        key = (p.order, p.pixel)
        if key not in old and _overlaps(key, old):
            raise OutputError(f"new pixel {key} overlaps the catalog's pixels: not merged")
        futures[client.submit(
            merge_pixel, str(_file(current.path, *key)) if key in old else None,
            str(_file(increment, *key)), str(new), p.order, p.pixel, current.id_column,
            current.threshold, current.highest_order, _map_order(current), pure=False)] = key
    results = {}
    for future in print_progress(as_completed(futures), total=len(futures), stage_name="Merging",
                                 pipeline_name="Catalog", use_progress_bar=progress,
                                 simple_progress_bar=True):
        results[futures[future]] = future.result()
    return results


def finish(current: Existing, new: Path, pixels: list[Pixel], cells: dict[int, int],
           total: int) -> None:
    """The new version's partition list, ``_metadata``, point map and ``properties``."""
    from hats.catalog import PartitionInfo
    from hats.io import file_io, paths
    from hats.io.parquet_metadata import write_parquet_metadata
    from hats.io.skymap import write_skymap
    from hats.pixel_math import HealpixPixel

    info = PartitionInfo.from_healpix([HealpixPixel(o, p) for o, p in sorted(pixels)])
    info.write_to_file(paths.get_partition_info_pointer(new))
    rows = write_parquet_metadata(new)
    if rows != total:
        raise OutputError(f"the new version of {current.path} holds {rows:,} alerts, not "
                          f"{total:,}: left as it was")
    point_map = current.path / "point_map.fits"
    if point_map.exists():
        histogram = file_io.read_fits_image(point_map)
        for cell, n in cells.items():
            histogram[cell] += n
        file_io.write_fits_image(histogram, paths.get_point_map_file_pointer(new))
        write_skymap(histogram, new, current.properties.skymap_alt_orders)
    properties = current.properties.copy_and_update(
        total_rows=total, hats_order=info.get_highest_order(),
        moc_sky_fraction=round(float(info.calculate_fractional_coverage()), 5))
    properties.to_properties_file(new)


def _pairs(current: Existing) -> list[Pixel]:
    return [(p.order, p.pixel) for p in current.pixels]


def _file(root: Path, order: int, pixel: int) -> Path:
    from hats.io import paths
    from hats.pixel_math import HealpixPixel

    return Path(paths.pixel_catalog_file(root, HealpixPixel(order, pixel)).path)


def _overlaps(pixel: Pixel, others: set[Pixel]) -> bool:
    order, number = pixel
    return any((o <= order and number >> 2 * (order - o) == n) or
               (o > order and n >> 2 * (o - order) == number) for o, n in others)


def _map_order(current: Existing) -> int:
    """The order of the catalog's point map (its highest order when it has none)."""
    return int(current.properties.skymap_order or current.highest_order)
