"""A finkdl folder as a HATS catalog, for LSDB: built with hats-import, extended in place.

The data's way: the folder's ``part-…`` files → :mod:`.reader` (each file's rows in the
folder's schema, with ``ra``/``dec`` from the survey's position and the Hive labels) →
hats-import's pipeline on a Dask client (:mod:`.client`, :mod:`.build`) → a catalog written
beside the target and switched in at the end (:mod:`.versions`). A later download goes through
the same pipeline against the catalog's pixels, then :mod:`.extend` merges it pixel by pixel.

The libraries are the ``hats`` extra; :func:`.libraries.require` says so when they are missing.
"""
